//! The decision records come in pairs: the canonical English record in
//! `docs/adr/` and its Korean mirror in `docs/adr-ko/` (see
//! `docs/adr/README.md`). These tests keep the mirror from drifting: every
//! record has its partner under the same file name, the id in each title
//! matches its file name, and both files carry the same `Status:` line.
//!
//! A record is a file named `NNNN-slug.md` (four digits, a dash, a slug of
//! ASCII letters, digits, `-` and `_`). Anything else, such as a README, is
//! not a record and is skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::path::Path;

/// Which tree a file lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    En,
    Ko,
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Lang::En => "English",
            Lang::Ko => "Korean",
        })
    }
}

/// One broken rule. File names are bare names (`0008-message-level-fabric.md`);
/// both trees use the same name for a record.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Problem {
    /// A tree could not be listed, or a record could not be read as UTF-8.
    Unreadable { path: String, error: String },
    /// Two records of one tree share an id.
    DuplicateId {
        lang: Lang,
        id: String,
        files: Vec<String>,
    },
    /// An English record has no Korean record with its id.
    MissingKorean { file: String },
    /// A Korean record has no English record with its id.
    MissingEnglish { file: String },
    /// The two records of one id have different file names.
    NameMismatch { en: String, ko: String },
    /// The title line is missing or carries no id (`# 0008. Title`).
    NoId {
        file: String,
        lang: Lang,
        title: Option<String>,
    },
    /// The id in the title is not the id in the file name.
    IdMismatch {
        file: String,
        lang: Lang,
        in_title: String,
        in_name: String,
    },
    /// The record has no Status line between its title and its first section.
    NoStatus { file: String, lang: Lang },
    /// The two Status lines of a pair differ.
    StatusMismatch {
        file: String,
        en: String,
        ko: String,
    },
}

impl Problem {
    fn rule(&self) -> &'static str {
        match self {
            Problem::Unreadable { .. } => "readable records",
            Problem::DuplicateId { .. } => "unique ids",
            Problem::MissingKorean { .. } | Problem::MissingEnglish { .. } => "pair completeness",
            Problem::NameMismatch { .. } => "mirrored file names",
            Problem::NoId { .. } | Problem::IdMismatch { .. } => "ids match",
            Problem::NoStatus { .. } | Problem::StatusMismatch { .. } => "Status lines equal",
        }
    }

    /// The file (or directory) the problem is about, to group the report.
    fn subject(&self) -> &str {
        match self {
            Problem::Unreadable { path, .. } => path,
            Problem::DuplicateId { id, .. } => id,
            Problem::NameMismatch { en, .. } => en,
            Problem::MissingKorean { file }
            | Problem::MissingEnglish { file }
            | Problem::NoId { file, .. }
            | Problem::IdMismatch { file, .. }
            | Problem::NoStatus { file, .. }
            | Problem::StatusMismatch { file, .. } => file,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Unreadable { path, error } => write!(f, "{path}: cannot be read: {error}"),
            Problem::DuplicateId { lang, id, files } => write!(
                f,
                "{id}: {} {lang} records share this id: {}",
                files.len(),
                files.join(", ")
            ),
            Problem::MissingKorean { file } => {
                write!(f, "{file}: English record without a Korean mirror")
            }
            Problem::MissingEnglish { file } => {
                write!(f, "{file}: Korean record without an English original")
            }
            Problem::NameMismatch { en, ko } => write!(
                f,
                "{en}: the Korean mirror is named {ko}; both must have the same file name"
            ),
            Problem::NoId { file, lang, title } => match title {
                Some(title) => write!(f, "{file} ({lang}): title line {title:?} carries no id"),
                None => write!(f, "{file} ({lang}): no title line"),
            },
            Problem::IdMismatch {
                file,
                lang,
                in_title,
                in_name,
            } => write!(
                f,
                "{file} ({lang}): title has id {in_title}, file name has {in_name}"
            ),
            Problem::NoStatus { file, lang } => {
                write!(f, "{file} ({lang}): no Status line after the title")
            }
            Problem::StatusMismatch { file, en, ko } => {
                write!(
                    f,
                    "{file}: Status lines differ: English {en:?}, Korean {ko:?}"
                )
            }
        }?;
        write!(f, " [{}]", self.rule())
    }
}

/// The id of a record's file name (`0008` of `0008-message-level-fabric.md`),
/// or `None` if the file is not a record.
fn id_in_name(name: &str) -> Option<&str> {
    let stem = name.strip_suffix(".md")?;
    let (id, slug) = (stem.get(..4)?, stem.get(4..)?);
    let slug = slug.strip_prefix('-')?;
    let slug_ok = !slug.is_empty()
        && slug
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    (id.chars().all(|c| c.is_ascii_digit()) && slug_ok).then_some(id)
}

/// The id of a title line's text (after `# `): `0008. T`, `0008: T`,
/// `0008 — T`, `0008 – T`, `0008 - T`, `ADR-0008: T`.
fn id_in_title(title: &str) -> Option<&str> {
    let mut t = title.trim_start();
    if t.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("adr")) {
        t = &t[3..];
        t = t.strip_prefix(['-', ' ']).unwrap_or(t);
    }
    let end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (id, rest) = t.split_at(end);
    let separated = rest
        .trim_start()
        .starts_with(['.', ':', '-', '\u{2014}', '\u{2013}']);
    (!id.is_empty() && separated).then_some(id)
}

/// What the checker needs from one record.
struct Record {
    /// The first non-empty line, if any.
    title: Option<String>,
    /// The raw line carrying the status, if any.
    status: Option<String>,
}

/// Reads the title and the status of a record. Line endings are normalised
/// (CRLF to LF, then a trailing `\r` stripped) before anything is compared.
///
/// The status is looked for between the title and the first other heading:
/// a line `Status: X` or `**Status:** X` (the whole line is the status), or a
/// heading `## Status` (the next non-empty line is the status).
fn parse_record(text: &str) -> Record {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let text = text.replace("\r\n", "\n");
    let mut lines = text
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .skip_while(|line| line.trim().is_empty());
    let title = lines.next().map(str::to_owned);
    let mut status = None;
    while let Some(line) = lines.next() {
        if line.starts_with("Status:") || line.starts_with("**Status:**") {
            status = Some(line.to_owned());
            break;
        }
        if line.starts_with('#') {
            if line.trim_end() == "## Status" {
                status = lines
                    .find(|line| !line.trim().is_empty())
                    .filter(|line| !line.starts_with('#'))
                    .map(str::to_owned);
            }
            break;
        }
    }
    Record { title, status }
}

/// The records of one tree, by file name, with their ids. `Err` if the tree
/// cannot be listed.
fn list_records(dir: &Path) -> Result<BTreeMap<String, String>, Problem> {
    let unreadable = |error: std::io::Error| Problem::Unreadable {
        path: dir.display().to_string(),
        error: error.to_string(),
    };
    let mut records = BTreeMap::new();
    for entry in fs::read_dir(dir).map_err(unreadable)? {
        let entry = entry.map_err(unreadable)?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if let Some(id) = id_in_name(&name) {
            if entry.path().is_file() {
                records.insert(name.clone(), id.to_owned());
            }
        }
    }
    Ok(records)
}

/// Checks one record on its own: readable, id in the title, a Status line.
/// Returns its status line.
fn check_record(
    dir: &Path,
    file: &str,
    id: &str,
    lang: Lang,
    problems: &mut Vec<Problem>,
) -> Option<String> {
    let path = dir.join(file);
    let read = fs::read(&path).map_err(|error| error.to_string());
    let text = match read.and_then(|bytes| String::from_utf8(bytes).map_err(|e| e.to_string())) {
        Ok(text) => text,
        Err(error) => {
            let path = path.display().to_string();
            problems.push(Problem::Unreadable { path, error });
            return None;
        }
    };
    let record = parse_record(&text);
    let file = file.to_owned();
    match record
        .title
        .as_deref()
        .and_then(|line| line.strip_prefix("# "))
    {
        Some(title) => match id_in_title(title) {
            Some(in_title) if in_title == id => {}
            Some(in_title) => problems.push(Problem::IdMismatch {
                file: file.clone(),
                lang,
                in_title: in_title.to_owned(),
                in_name: id.to_owned(),
            }),
            None => problems.push(Problem::NoId {
                file: file.clone(),
                lang,
                title: record.title.clone(),
            }),
        },
        None => problems.push(Problem::NoId {
            file: file.clone(),
            lang,
            title: record.title.clone(),
        }),
    }
    if record.status.is_none() {
        problems.push(Problem::NoStatus { file, lang });
    }
    record.status
}

/// Every broken rule between the English tree `en_dir` and its Korean mirror
/// `ko_dir`, grouped by file.
fn check_pairs(en_dir: &Path, ko_dir: &Path) -> Vec<Problem> {
    let (en, ko) = match (list_records(en_dir), list_records(ko_dir)) {
        (Ok(en), Ok(ko)) => (en, ko),
        (en, ko) => return [en.err(), ko.err()].into_iter().flatten().collect(),
    };
    let mut problems = Vec::new();

    for (lang, records) in [(Lang::En, &en), (Lang::Ko, &ko)] {
        let mut by_id: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (file, id) in records {
            by_id.entry(id).or_default().push(file.clone());
        }
        for (id, files) in by_id.into_iter().filter(|(_, files)| files.len() > 1) {
            let id = id.to_owned();
            problems.push(Problem::DuplicateId { lang, id, files });
        }
    }

    // Records without a partner of the same name are paired by id: a Korean
    // record whose slug differs is a misnamed mirror, not a missing one.
    let unpaired = |records: &BTreeMap<String, String>, other: &BTreeMap<String, String>| {
        let mut by_id: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (file, id) in records
            .iter()
            .filter(|(file, _)| !other.contains_key(*file))
        {
            by_id.entry(id.clone()).or_default().push(file.clone());
        }
        by_id
    };
    let (en_left, ko_left) = (unpaired(&en, &ko), unpaired(&ko, &en));
    let ids: BTreeSet<&String> = en_left.keys().chain(ko_left.keys()).collect();
    for id in ids {
        let none = Vec::new();
        let en_files = en_left.get(id).unwrap_or(&none);
        let ko_files = ko_left.get(id).unwrap_or(&none);
        for i in 0..en_files.len().max(ko_files.len()) {
            problems.push(match (en_files.get(i), ko_files.get(i)) {
                (Some(en), Some(ko)) => Problem::NameMismatch {
                    en: en.clone(),
                    ko: ko.clone(),
                },
                (Some(file), None) => Problem::MissingKorean { file: file.clone() },
                (None, Some(file)) => Problem::MissingEnglish { file: file.clone() },
                (None, None) => unreachable!("i is below one of the lengths"),
            });
        }
    }

    let mut en_status = BTreeMap::new();
    for (file, id) in &en {
        en_status.insert(
            file,
            check_record(en_dir, file, id, Lang::En, &mut problems),
        );
    }
    for (file, id) in &ko {
        let ko_status = check_record(ko_dir, file, id, Lang::Ko, &mut problems);
        if let (Some(Some(en)), Some(ko)) = (en_status.get(file), ko_status) {
            if *en != ko {
                let (file, en) = (file.clone(), en.clone());
                problems.push(Problem::StatusMismatch { file, en, ko });
            }
        }
    }

    problems.sort_by(|a, b| a.subject().cmp(b.subject()));
    problems
}

fn report(problems: &[Problem]) -> String {
    problems.iter().map(|p| format!("  {p}\n")).collect()
}

fn fixture(case: &str) -> Vec<Problem> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/adr_pairs")
        .join(case);
    check_pairs(&dir.join("en"), &dir.join("ko"))
}

fn s(text: &str) -> String {
    text.to_owned()
}

#[test]
fn shipped_adrs_are_mirrored() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (en, ko) = (root.join("docs/adr"), root.join("docs/adr-ko"));
    let problems = check_pairs(&en, &ko);
    assert!(
        problems.is_empty(),
        "{} problem(s) between docs/adr and docs/adr-ko:\n{}",
        problems.len(),
        report(&problems)
    );
    let records = list_records(&en).expect("docs/adr is listed above");
    assert!(!records.is_empty(), "docs/adr holds no records");
}

#[test]
fn clean_pairs_pass() {
    // CRLF in a Korean record, em-dash, en-dash, dash, colon and `ADR-`
    // titles, all three Status forms, and files that are not records.
    let problems = fixture("clean");
    assert!(problems.is_empty(), "{}", report(&problems));
}

#[test]
fn a_record_without_its_korean_mirror_is_reported() {
    assert_eq!(
        fixture("missing_korean"),
        [Problem::MissingKorean {
            file: s("0002-b.md")
        }]
    );
}

#[test]
fn a_korean_record_without_its_english_original_is_reported() {
    assert_eq!(
        fixture("missing_english"),
        [Problem::MissingEnglish {
            file: s("0002-b.md")
        }]
    );
}

#[test]
fn a_mirror_under_another_slug_is_a_name_mismatch() {
    assert_eq!(
        fixture("name_mismatch"),
        [Problem::NameMismatch {
            en: s("0003-message-level-fabric.md"),
            ko: s("0003-message-fabric.md"),
        }]
    );
}

#[test]
fn a_title_id_unlike_the_file_id_is_reported_in_either_language() {
    assert_eq!(
        fixture("id_mismatch"),
        [
            Problem::IdMismatch {
                file: s("0001-a.md"),
                lang: Lang::Ko,
                in_title: s("0002"),
                in_name: s("0001"),
            },
            Problem::IdMismatch {
                file: s("0004-d.md"),
                lang: Lang::En,
                in_title: s("4"),
                in_name: s("0004"),
            },
        ]
    );
}

#[test]
fn a_title_without_an_id_is_reported() {
    assert_eq!(
        fixture("no_id"),
        [
            Problem::NoId {
                file: s("0001-a.md"),
                lang: Lang::En,
                title: Some(s("# A record without an id")),
            },
            Problem::NoId {
                file: s("0002-b.md"),
                lang: Lang::Ko,
                title: Some(s("# 0002 번호 뒤에 구분자가 없는 제목")),
            },
        ]
    );
}

#[test]
fn status_lines_must_be_equal_byte_for_byte() {
    assert_eq!(
        fixture("status_mismatch"),
        [
            Problem::StatusMismatch {
                file: s("0001-a.md"),
                en: s("Status: Accepted"),
                ko: s("Status: 승인됨"),
            },
            Problem::StatusMismatch {
                file: s("0002-b.md"),
                en: s("Status: Accepted"),
                ko: s("**Status:** Accepted"),
            },
        ]
    );
}

#[test]
fn a_missing_or_misplaced_status_line_is_reported() {
    assert_eq!(
        fixture("missing_status"),
        [
            Problem::NoStatus {
                file: s("0001-a.md"),
                lang: Lang::Ko,
            },
            Problem::NoStatus {
                file: s("0002-b.md"),
                lang: Lang::En,
            },
        ]
    );
}

#[test]
fn two_records_with_one_id_are_reported() {
    let files = vec![s("0001-a.md"), s("0001-b.md")];
    assert_eq!(
        fixture("duplicate_id"),
        [
            Problem::DuplicateId {
                lang: Lang::En,
                id: s("0001"),
                files: files.clone(),
            },
            Problem::DuplicateId {
                lang: Lang::Ko,
                id: s("0001"),
                files,
            },
        ]
    );
}

#[test]
fn underscores_in_a_slug_still_make_a_record_and_other_files_are_skipped() {
    // `0010-some_name.md` is a record without a mirror; README.md, notes.md,
    // 0011.md, 011-short.md and 0012-text.txt are not records.
    assert_eq!(
        fixture("underscore_slug"),
        [Problem::MissingKorean {
            file: s("0010-some_name.md"),
        }]
    );
}

#[test]
fn a_missing_tree_is_reported_instead_of_passing_empty() {
    let problems = fixture("missing_dir");
    assert!(
        matches!(&problems[..], [Problem::Unreadable { path, .. }] if path.ends_with("ko")),
        "{problems:?}"
    );
}

#[test]
fn problems_name_the_file_and_the_rule() {
    let problem = Problem::StatusMismatch {
        file: s("0008-message-level-fabric.md"),
        en: s("Status: Accepted"),
        ko: s("Status: 승인됨"),
    };
    assert_eq!(
        problem.to_string(),
        "0008-message-level-fabric.md: Status lines differ: English \"Status: Accepted\", \
         Korean \"Status: 승인됨\" [Status lines equal]"
    );
}
