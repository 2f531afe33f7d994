//! The error type of the topology module, and the locator that finds the line
//! of a field in a topology file.

use super::route::Endpoint;

/// What went wrong while loading a topology file or routing in a topology.
///
/// Errors about a file name the file (its origin), the field path (for
/// example `sip.cube.noc.links.gbps`) and a line number.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TopologyError {
    /// The file could not be read.
    #[error("{origin}: cannot read the topology file: {err}")]
    Io {
        /// The file.
        origin: String,
        /// The I/O error (part of the message, so not also its source).
        err: std::io::Error,
    },

    /// The file breaks a limit on input (size, nesting depth, alias
    /// expansion) and was not parsed; see [`crate::input`].
    #[error("{origin}: {err}")]
    Input {
        /// The file.
        origin: String,
        /// The limit broken, and where (part of the message).
        err: crate::input::InputError,
    },

    /// The text is not YAML, or does not fit the schema (unknown field, wrong type).
    #[error(
        "{origin}: line {line}, column {column}: {}{message}",
        path_prefix(path)
    )]
    Parse {
        /// The file.
        origin: String,
        /// The field path, empty when the error is not about one field.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the parser said.
        message: String,
    },

    /// A field parses but breaks a rule of the machine.
    #[error("{origin}: line {line}: {path}: {message}")]
    Invalid {
        /// The file.
        origin: String,
        /// The field path, for example `sip.cube.noc.links.gbps`.
        path: String,
        /// 1-based line of the field (or of its nearest parent present in the file).
        line: usize,
        /// What is wrong and what to write instead.
        message: String,
    },

    /// Neither a topology file nor a built-in name.
    #[error("`{spec}` is neither a topology file nor a built-in topology ({builtins})")]
    Unknown {
        /// What was given.
        spec: String,
        /// The built-in names.
        builtins: String,
    },

    /// A route endpoint does not exist in this topology.
    #[error("topology {topology}: there is no {endpoint}")]
    NoSuchEndpoint {
        /// The topology's name.
        topology: String,
        /// The endpoint.
        endpoint: Endpoint,
    },

    /// Failed links leave no live path between two endpoints.
    #[error("topology {topology}: no live path from {src} to {dst} (failed links and routers are in the way)")]
    Unreachable {
        /// The topology's name.
        topology: String,
        /// Where the transfer starts.
        src: Endpoint,
        /// Where it ends.
        dst: Endpoint,
    },
}

fn path_prefix(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("{path}: ")
    }
}

impl TopologyError {
    /// The field path the error is about, if it is about a field of a file.
    pub fn path(&self) -> Option<&str> {
        match self {
            TopologyError::Parse { path, .. } | TopologyError::Invalid { path, .. } => {
                Some(path.as_str())
            }
            _ => None,
        }
    }

    /// The 1-based line the error is about, if it is about a file's text.
    pub fn line(&self) -> Option<usize> {
        match self {
            TopologyError::Parse { line, .. } | TopologyError::Invalid { line, .. } => Some(*line),
            TopologyError::Input { err, .. } => err.line(),
            _ => None,
        }
    }

    /// Turns a serde_yaml error into a [`TopologyError::Parse`].
    pub(crate) fn from_yaml(err: &serde_yaml::Error, origin: &str, text: &str) -> TopologyError {
        let loc = err.location().map(|l| (l.line().max(1), l.column().max(1)));
        // serde_yaml writes " at line N column M"; we print the location ourselves.
        let full = err.to_string();
        let body = match loc {
            Some((line, column)) => {
                full.replacen(&format!(" at line {line} column {column}"), "", 1)
            }
            None => full,
        };
        let body = body.as_str();
        let (mut path, mut message) = split_path(body);
        if let Some(field) = unknown_field(&message) {
            path = if path.is_empty() {
                field.to_string()
            } else {
                format!("{path}.{field}")
            };
        }
        if message.is_empty() {
            message = body.to_string();
        }
        let (line, column) = loc.unwrap_or_else(|| (locate(text, &path), 1));
        TopologyError::Parse {
            origin: origin.to_string(),
            path,
            line,
            column,
            message,
        }
    }
}

/// Splits `"a.b[2]: message"` into the path and the message; a prefix with a
/// space in it is not a path.
fn split_path(body: &str) -> (String, String) {
    if let Some(i) = body.find(": ") {
        let head = &body[..i];
        if !head.is_empty() && !head.contains(char::is_whitespace) && !head.contains('`') {
            return (head.to_string(), body[i + 2..].to_string());
        }
    }
    (String::new(), body.to_string())
}

/// The field name of serde's "unknown field `x`, expected ..." message.
fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

/// One non-blank, non-comment line of YAML text, as the locator sees it.
struct YamlLine<'a> {
    /// 1-based line number.
    no: usize,
    /// Column of the first character (a dash counts).
    start: usize,
    /// Whether the line starts a sequence item (`- `).
    dash: bool,
    /// Column of the key, and the key, if the line holds `key:`.
    key: Option<(usize, &'a str)>,
}

fn scan(text: &str) -> Vec<YamlLine<'_>> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("---") {
            continue;
        }
        let start = raw.len() - trimmed.len();
        let (dash, content, content_col) = match trimmed.strip_prefix('-') {
            Some(rest) if rest.is_empty() || rest.starts_with(' ') => {
                let inner = rest.trim_start();
                (true, inner, start + 1 + (rest.len() - inner.len()))
            }
            _ => (false, trimmed, start),
        };
        out.push(YamlLine {
            no: i + 1,
            start,
            dash,
            key: key_of(content).map(|k| (content_col, k)),
        });
    }
    out
}

/// The key of `key: value`, `key:` or `"key": value`.
fn key_of(content: &str) -> Option<&str> {
    if let Some(q @ ('"' | '\'')) = content.chars().next() {
        let end = content[1..].find(q)? + 1;
        let after = &content[end + 1..];
        return after.starts_with(':').then(|| &content[1..end]);
    }
    if content.starts_with(['{', '[', '#', '&', '*', '!', '|', '>']) {
        return None;
    }
    let bytes = content.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b':' && (i + 1 == bytes.len() || bytes[i + 1] == b' ') {
            return Some(content[..i].trim_end());
        }
        if b == b'#' && i > 0 && bytes[i - 1] == b' ' {
            return None;
        }
    }
    None
}

/// Splits `a.b[2].c` into `[("a", []), ("b", [2]), ("c", [])]`.
fn segments(path: &str) -> Vec<(&str, Vec<usize>)> {
    path.split('.')
        .filter(|s| !s.is_empty())
        .map(|seg| {
            let (name, rest) = match seg.find('[') {
                Some(i) => (&seg[..i], &seg[i..]),
                None => (seg, ""),
            };
            let idx = rest
                .split(['[', ']'])
                .filter(|s| !s.is_empty())
                .filter_map(|s| s.parse().ok())
                .collect();
            (name, idx)
        })
        .collect()
}

/// The 1-based line of the field at a dotted `path` (`a.b[2].c`) in YAML
/// `text`, walking the text by indentation. When the field is not written in
/// the file (a default) or sits in a flow collection, the line of its nearest
/// parent that is; line 1 when none is. Other YAML files of the project (the
/// collective registry) use it to point at their fields too.
pub fn locate(text: &str, path: &str) -> usize {
    let lines = scan(text);
    let mut best = None;
    let (mut lo, mut hi) = (0usize, lines.len());
    let mut parent: isize = -1;
    'segs: for (name, idxs) in segments(path) {
        let level = lines[lo..hi]
            .iter()
            .filter_map(|l| l.key.map(|(c, _)| c))
            .filter(|&c| c as isize > parent)
            .min();
        let Some(level) = level else { break };
        let Some(pos) = (lo..hi).find(|&i| lines[i].key == Some((level, name))) else {
            break;
        };
        best = Some(lines[pos].no);
        // The key's children: deeper lines, or sequence items at the key's own column.
        let end = (pos + 1..hi)
            .find(|&j| lines[j].start < level || (lines[j].start == level && !lines[j].dash))
            .unwrap_or(hi);
        lo = pos + 1;
        hi = end;
        parent = level as isize;
        for idx in idxs {
            let Some(dash_col) = lines[lo..hi]
                .iter()
                .filter(|l| l.dash)
                .map(|l| l.start)
                .min()
            else {
                break 'segs;
            };
            let items: Vec<usize> = (lo..hi)
                .filter(|&j| lines[j].dash && lines[j].start == dash_col)
                .collect();
            let Some(&item) = items.get(idx) else {
                break 'segs;
            };
            best = Some(lines[item].no);
            let next = items.iter().copied().find(|&j| j > item).unwrap_or(hi);
            lo = item;
            hi = next;
            parent = dash_col as isize;
        }
    }
    best.unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# comment
name: x
sip:
  cubes: {rows: 4, cols: 4}
  cube:
    noc:
      rows: 6

      links:
        gbps: 256   # GB/s
    attach:
      pes:
        - [1, 1]
        - [1, 2]
      hbm_ports:
      - [2, 1]
      - [3, 1]
pe:
  gemm_tile: [128, 0, 128]
";

    #[test]
    fn finds_nested_fields() {
        assert_eq!(locate(TEXT, "name"), 2);
        assert_eq!(locate(TEXT, "sip"), 3);
        assert_eq!(locate(TEXT, "sip.cube.noc.rows"), 7);
        assert_eq!(locate(TEXT, "sip.cube.noc.links.gbps"), 10);
        assert_eq!(locate(TEXT, "pe.gemm_tile"), 19);
    }

    #[test]
    fn finds_sequence_items() {
        assert_eq!(locate(TEXT, "sip.cube.attach.pes[1]"), 14);
        assert_eq!(locate(TEXT, "sip.cube.attach.hbm_ports[1]"), 17);
    }

    #[test]
    fn falls_back_to_the_nearest_parent() {
        assert_eq!(locate(TEXT, "sip.cubes.rows"), 4);
        assert_eq!(locate(TEXT, "sip.cube.noc.exclude"), 6);
        assert_eq!(locate(TEXT, "sip.cube.attach.pes[5]"), 12);
        assert_eq!(locate(TEXT, "ipcq.slots"), 1);
        assert_eq!(locate("", "a.b"), 1);
    }

    #[test]
    fn does_not_match_keys_of_other_parents() {
        // `rows` under `noc` must not be found when asking for `sip.rows`.
        assert_eq!(locate(TEXT, "sip.rows"), 3);
    }
}
