//! Topology and registry files: the shipped files, mutated.
//!
//! A case parses one shipped file into a YAML tree and edits it (a value
//! set to zero, a negative, a huge number, NaN, a string or a collection;
//! a field deleted, an unknown one added, a subtree copied over another, a
//! value nested in lists or maps), writes it back out (or keeps the original
//! text, comments and all), then edits the text (a line repeated, so a key
//! is duplicated; an anchor and aliases; bytes flipped, inserted, removed;
//! a cut; indentation moved). Nesting stays at most [`MAX_DEPTH`] deep.
//!
//! The file must load, or fail with an error that names the file and, for a
//! topology, a line of it; a topology that loads must also summarise, route
//! and time a transfer of each probe case with its figures.

use kernbench::ccl::registry::{Registry, RegistryError};
use kernbench::ccl::run::{ranks, run_on, RunSpec};
use kernbench::core::sim::FabricModel;
use kernbench::core::topology::{
    Endpoint, Topology, TopologyError, DEFAULT_YAML, LARGE_YAML, TINY_YAML, XL_YAML,
};
use kernbench::core::DType;
use kernbench::probe::{probe_with, Case};
use proptest::prelude::*;
use serde_yaml::{Mapping, Value};

/// The registry shipped with the crate.
pub const CCL_YAML: &str = include_str!("../../configs/ccl.yaml");

/// The deepest nesting a case builds (the document's own levels included).
pub const MAX_DEPTH: usize = 64;

/// The most PEs a loaded topology may have for the case to summarise it
/// (summaries look at every pair of cubes; larger machines are only validated).
const SUMMARY_PES: usize = 256;

/// The most PEs a loaded topology may have for the case to probe transfers on it.
const PROBE_PES: usize = 64;

/// The file name errors must carry.
const TOPOLOGY_ORIGIN: &str = "fuzz/topology.yaml";
const REGISTRY_ORIGIN: &str = "fuzz/ccl.yaml";

/// A scalar a value is set to.
#[derive(Clone, Debug)]
pub enum Scalar {
    /// 0.
    Zero,
    /// A negative integer.
    Neg(i64),
    /// Any integer.
    Int(i64),
    /// u64::MAX.
    HugeInt,
    /// 1e300.
    HugeFloat,
    /// .nan
    Nan,
    /// .inf or -.inf.
    Inf(bool),
    /// A float.
    Float(f64),
    /// true / false.
    Bool(bool),
    /// null.
    Null,
    /// A string (possibly a number in quotes, or empty).
    Str(String),
}

impl Scalar {
    fn value(&self) -> Value {
        match self {
            Scalar::Zero => Value::from(0),
            Scalar::Neg(n) => Value::from(-(n.unsigned_abs().max(1) as i128) as i64),
            Scalar::Int(n) => Value::from(*n),
            Scalar::HugeInt => Value::from(u64::MAX),
            Scalar::HugeFloat => Value::from(1e300),
            Scalar::Nan => Value::from(f64::NAN),
            Scalar::Inf(neg) => Value::from(if *neg {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            }),
            Scalar::Float(f) => Value::from(*f),
            Scalar::Bool(b) => Value::from(*b),
            Scalar::Null => Value::Null,
            Scalar::Str(s) => Value::from(s.clone()),
        }
    }
}

fn scalar() -> impl Strategy<Value = Scalar> {
    prop_oneof![
        Just(Scalar::Zero),
        any::<i64>().prop_map(Scalar::Neg),
        prop_oneof![0i64..64, any::<i64>()].prop_map(Scalar::Int),
        Just(Scalar::HugeInt),
        Just(Scalar::HugeFloat),
        Just(Scalar::Nan),
        any::<bool>().prop_map(Scalar::Inf),
        prop_oneof![-4.0f64..4.0, any::<f64>()].prop_map(Scalar::Float),
        any::<bool>().prop_map(Scalar::Bool),
        Just(Scalar::Null),
        prop_oneof![
            Just(String::new()),
            Just("12".to_string()),
            Just("tcm".to_string()),
            Just("ring".to_string()),
            "[a-z_]{1,12}",
            "\\PC{0,8}",
        ]
        .prop_map(Scalar::Str),
    ]
}

/// A change of a number that keeps it a number.
#[derive(Clone, Copy, Debug)]
pub enum Tweak {
    /// x + 1.
    Inc,
    /// x - 1.
    Dec,
    /// 2x.
    Double,
    /// x / 2 (rounded down for integers).
    Half,
    /// -x.
    Negate,
    /// 1000 x.
    Times1000,
}

/// One edit of the YAML tree; `at` and `from` pick nodes in pre-order (modulo
/// their count), or for `Set` and `Tweak` among the scalars.
#[derive(Clone, Debug)]
pub enum Edit {
    /// Set a scalar to another.
    Set { at: usize, to: Scalar },
    /// Change a number a little or a lot.
    Tweak { at: usize, how: Tweak },
    /// Replace a node with a sequence or a mapping of scalars.
    WrongType {
        at: usize,
        seq: bool,
        items: Vec<Scalar>,
    },
    /// Delete a node from its parent.
    Delete { at: usize },
    /// Add a key to the nearest mapping at or above a node.
    Unknown { at: usize, key: String, to: Scalar },
    /// Copy one subtree over another.
    Copy { from: usize, at: usize },
    /// Wrap a node in `depth` lists or single-key maps.
    Nest { at: usize, depth: usize, seq: bool },
    /// Repeat the items of the nearest sequence at or above a node.
    Grow { at: usize, times: usize },
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => (any::<usize>(), scalar()).prop_map(|(at, to)| Edit::Set { at, to }),
        6 => (
            any::<usize>(),
            prop::sample::select(vec![
                Tweak::Inc,
                Tweak::Dec,
                Tweak::Double,
                Tweak::Half,
                Tweak::Negate,
                Tweak::Times1000,
            ])
        )
            .prop_map(|(at, how)| Edit::Tweak { at, how }),
        1 => (any::<usize>(), any::<bool>(), prop::collection::vec(scalar(), 0..3))
            .prop_map(|(at, seq, items)| Edit::WrongType { at, seq, items }),
        2 => any::<usize>().prop_map(|at| Edit::Delete { at }),
        1 => (
            any::<usize>(),
            prop_oneof!["[a-z_]{1,10}", Just("sips".to_string()), Just("<<".to_string())],
            scalar()
        )
            .prop_map(|(at, key, to)| Edit::Unknown { at, key, to }),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(from, at)| Edit::Copy { from, at }),
        1 => (any::<usize>(), 1..=MAX_DEPTH, any::<bool>())
            .prop_map(|(at, depth, seq)| Edit::Nest { at, depth, seq }),
        1 => (any::<usize>(), 2usize..6).prop_map(|(at, times)| Edit::Grow { at, times }),
    ]
}

/// One edit of the text; positions are taken modulo the text's length or line count.
#[derive(Clone, Debug)]
pub enum TextEdit {
    /// Write a line twice (a duplicated key, or one more list item).
    DupLine { line: usize },
    /// Anchor the value of one `key: value` line and alias it from others.
    Alias { from: usize, to: Vec<usize> },
    /// Replace a byte.
    Flip { at: usize, byte: u8 },
    /// Insert text.
    Insert { at: usize, text: String },
    /// Remove bytes.
    Remove { at: usize, len: usize },
    /// Cut the text short.
    Truncate { at: usize },
    /// Move a line's indentation by up to 4 columns either way.
    Indent { line: usize, by: i8 },
    /// Replace a line's indentation with a tab.
    Tab { line: usize },
}

fn text_edit() -> impl Strategy<Value = TextEdit> {
    prop_oneof![
        2 => any::<usize>().prop_map(|line| TextEdit::DupLine { line }),
        2 => (any::<usize>(), prop::collection::vec(any::<usize>(), 1..4))
            .prop_map(|(from, to)| TextEdit::Alias { from, to }),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| TextEdit::Flip { at, byte }),
        2 => (
            any::<usize>(),
            prop_oneof![
                Just(": ".to_string()),
                Just("- ".to_string()),
                Just("{".to_string()),
                Just("]".to_string()),
                Just("\n  x: 1\n".to_string()),
                Just("\n<<: *nowhere\n".to_string()),
                Just("!!binary ".to_string()),
                Just("&a ".to_string()),
                Just("*a".to_string()),
                Just("\"".to_string()),
                Just("\u{0}".to_string()),
                Just("\u{feff}".to_string()),
                Just("\n---\n".to_string()),
                Just("\n...\n".to_string()),
                Just("%YAML 1.2\n".to_string()),
                "\\PC{1,6}",
            ]
        )
            .prop_map(|(at, text)| TextEdit::Insert { at, text }),
        1 => (any::<usize>(), 1usize..40).prop_map(|(at, len)| TextEdit::Remove { at, len }),
        1 => any::<usize>().prop_map(|at| TextEdit::Truncate { at }),
        1 => (any::<usize>(), -4i8..=4).prop_map(|(line, by)| TextEdit::Indent { line, by }),
        1 => any::<usize>().prop_map(|line| TextEdit::Tab { line }),
    ]
}

/// One mutated file. A failure prints it whole: how it was made, and the text.
#[derive(Clone, Debug)]
#[allow(dead_code)] // `base` and the edits are read by `Debug` only
pub struct FileCase {
    /// Which shipped file it starts from.
    pub base: &'static str,
    /// Tree edits (the tree is written back out when there are any).
    pub edits: Vec<Edit>,
    /// Text edits, after.
    pub text_edits: Vec<TextEdit>,
    /// The file as the loader sees it.
    pub text: String,
}

fn file_case(bases: Vec<(&'static str, &'static str)>) -> impl Strategy<Value = FileCase> {
    (
        prop::sample::select(bases),
        prop::collection::vec(edit(), 0..5),
        prop_oneof![
            2 => Just(Vec::new()),
            1 => prop::collection::vec(text_edit(), 1..4),
        ],
    )
        .prop_map(|((base, original), edits, text_edits)| {
            let text = mutate(original, &edits, &text_edits);
            FileCase {
                base,
                edits,
                text_edits,
                text,
            }
        })
}

/// Mutated topology files (tiny, default, large, xl).
pub fn topology_case() -> impl Strategy<Value = FileCase> {
    file_case(vec![
        ("configs/tiny.yaml", TINY_YAML),
        ("configs/default.yaml", DEFAULT_YAML),
        ("configs/large.yaml", LARGE_YAML),
        ("configs/xl.yaml", XL_YAML),
    ])
}

/// Mutated registry files (ccl.yaml).
pub fn registry_case() -> impl Strategy<Value = FileCase> {
    file_case(vec![("configs/ccl.yaml", CCL_YAML)])
}

/// Applies tree edits (when there are any) and then text edits to `original`.
pub fn mutate(original: &str, edits: &[Edit], text_edits: &[TextEdit]) -> String {
    let mut text = if edits.is_empty() {
        original.to_string()
    } else {
        let mut v: Value = serde_yaml::from_str(original).expect("a shipped file parses");
        for e in edits {
            apply(&mut v, e);
        }
        serde_yaml::to_string(&v).expect("a YAML tree serialises")
    };
    for e in text_edits {
        text = apply_text(&text, e);
    }
    text
}

/// A step from a node to a child.
#[derive(Clone, Debug)]
enum Step {
    Key(Value),
    Index(usize),
}

fn paths(v: &Value, here: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    out.push(here.clone());
    match v {
        Value::Mapping(m) => {
            for (k, c) in m {
                here.push(Step::Key(k.clone()));
                paths(c, here, out);
                here.pop();
            }
        }
        Value::Sequence(s) => {
            for (i, c) in s.iter().enumerate() {
                here.push(Step::Index(i));
                paths(c, here, out);
                here.pop();
            }
        }
        Value::Tagged(t) => paths(&t.value, here, out),
        _ => {}
    }
}

fn node_mut<'a>(v: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    let mut cur = v;
    for s in path {
        if let Value::Tagged(t) = cur {
            cur = &mut t.value;
        }
        cur = match (s, cur) {
            (Step::Key(k), Value::Mapping(m)) => m.get_mut(k)?,
            (Step::Index(i), Value::Sequence(q)) => q.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn pick(v: &Value, at: usize) -> Vec<Step> {
    let mut all = Vec::new();
    paths(v, &mut Vec::new(), &mut all);
    all.swap_remove(at % all.len())
}

/// A scalar node (the root when the tree has none).
fn pick_leaf(v: &mut Value, at: usize) -> Vec<Step> {
    let mut all = Vec::new();
    paths(v, &mut Vec::new(), &mut all);
    let leaves: Vec<Vec<Step>> = all
        .into_iter()
        .filter(|p| {
            node_mut(v, p).is_some_and(|n| !matches!(n, Value::Mapping(_) | Value::Sequence(_)))
        })
        .collect();
    if leaves.is_empty() {
        return Vec::new();
    }
    leaves[at % leaves.len()].clone()
}

fn tweak(v: &Value, how: Tweak) -> Option<Value> {
    if let Some(i) = v.as_i64() {
        let r = match how {
            Tweak::Inc => i.checked_add(1),
            Tweak::Dec => i.checked_sub(1),
            Tweak::Double => i.checked_mul(2),
            Tweak::Half => Some(i / 2),
            Tweak::Negate => i.checked_neg(),
            Tweak::Times1000 => i.checked_mul(1000),
        };
        return Some(r.map_or_else(|| Value::from(i as f64 * 1000.0), Value::from));
    }
    let f = v.as_f64()?;
    Some(Value::from(match how {
        Tweak::Inc => f + 1.0,
        Tweak::Dec => f - 1.0,
        Tweak::Double => f * 2.0,
        Tweak::Half => f / 2.0,
        Tweak::Negate => -f,
        Tweak::Times1000 => f * 1000.0,
    }))
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Mapping(m) => 1 + m.values().map(depth).max().unwrap_or(0),
        Value::Sequence(s) => 1 + s.iter().map(depth).max().unwrap_or(0),
        Value::Tagged(t) => depth(&t.value),
        _ => 0,
    }
}

fn apply(root: &mut Value, e: &Edit) {
    match e {
        Edit::Set { at, to } => {
            let p = pick_leaf(root, *at);
            if let Some(n) = node_mut(root, &p) {
                *n = to.value();
            }
        }
        Edit::Tweak { at, how } => {
            let p = pick_leaf(root, *at);
            if let Some(n) = node_mut(root, &p) {
                if let Some(t) = tweak(n, *how) {
                    *n = t;
                }
            }
        }
        Edit::WrongType { at, seq, items } => {
            let p = pick(root, *at);
            let new = if *seq {
                Value::Sequence(items.iter().map(Scalar::value).collect())
            } else {
                let mut m = Mapping::new();
                for (i, s) in items.iter().enumerate() {
                    m.insert(Value::from(format!("k{i}")), s.value());
                }
                Value::Mapping(m)
            };
            if let Some(n) = node_mut(root, &p) {
                *n = new;
            }
        }
        Edit::Delete { at } => {
            let p = pick(root, *at);
            let Some((last, parent)) = p.split_last() else {
                *root = Value::Null;
                return;
            };
            match (last, node_mut(root, parent)) {
                (Step::Key(k), Some(Value::Mapping(m))) => {
                    m.remove(k);
                }
                (Step::Index(i), Some(Value::Sequence(s))) if *i < s.len() => {
                    s.remove(*i);
                }
                _ => {}
            }
        }
        Edit::Unknown { at, key, to } => {
            let mut p = pick(root, *at);
            loop {
                if let Some(Value::Mapping(m)) = node_mut(root, &p) {
                    m.insert(Value::from(key.clone()), to.value());
                    return;
                }
                if p.pop().is_none() {
                    return;
                }
            }
        }
        Edit::Copy { from, at } => {
            let src = pick(root, *from);
            let dst = pick(root, *at);
            let Some(sub) = node_mut(root, &src).map(|n| n.clone()) else {
                return;
            };
            // A copy must not deepen the file past the bound.
            if dst.len() + depth(&sub) > MAX_DEPTH {
                return;
            }
            if let Some(n) = node_mut(root, &dst) {
                *n = sub;
            }
        }
        Edit::Nest {
            at,
            depth: levels,
            seq,
        } => {
            let p = pick(root, *at);
            let room = MAX_DEPTH.saturating_sub(depth(root));
            let levels = (*levels).min(room);
            if let Some(n) = node_mut(root, &p) {
                let mut v = std::mem::take(n);
                for i in 0..levels {
                    v = if *seq {
                        Value::Sequence(vec![v])
                    } else {
                        let mut m = Mapping::new();
                        m.insert(Value::from(format!("n{i}")), v);
                        Value::Mapping(m)
                    };
                }
                *n = v;
            }
        }
        Edit::Grow { at, times } => {
            let mut p = pick(root, *at);
            loop {
                if let Some(Value::Sequence(s)) = node_mut(root, &p) {
                    let items = s.clone();
                    for _ in 1..*times {
                        s.extend(items.iter().cloned());
                    }
                    return;
                }
                if p.pop().is_none() {
                    return;
                }
            }
        }
    }
}

/// The largest char boundary of `s` at or below `at`.
fn floor_boundary(s: &str, at: usize) -> usize {
    let mut i = at.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The lines of `text` that hold `key: value` with a plain scalar value:
/// (line index, byte offset of the value within the line).
fn value_lines(lines: &[&str]) -> Vec<(usize, usize)> {
    lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            let c = l.find(": ")?;
            let v = l[c + 2..].trim();
            let plain = !v.is_empty()
                && !v.starts_with(['#', '&', '*', '!', '|', '>', '"', '\'', '{', '['])
                && !l.trim_start().starts_with('#');
            plain.then_some((i, c + 2))
        })
        .collect()
}

fn apply_text(text: &str, e: &TextEdit) -> String {
    let lines: Vec<&str> = text.split('\n').collect();
    let n = lines.len();
    let join = |ls: Vec<String>| ls.join("\n");
    let owned = || lines.iter().map(|l| l.to_string()).collect::<Vec<_>>();
    match e {
        TextEdit::DupLine { line } => {
            let mut ls = owned();
            let i = line % n;
            ls.insert(i, ls[i].clone());
            join(ls)
        }
        TextEdit::Alias { from, to } => {
            let vl = value_lines(&lines);
            if vl.len() < 2 {
                return text.to_string();
            }
            let mut ls = owned();
            let (fi, fc) = vl[from % vl.len()];
            ls[fi].insert_str(fc, "&fz ");
            for t in to {
                let (ti, tc) = vl[t % vl.len()];
                if ti != fi {
                    ls[ti].truncate(tc);
                    ls[ti].push_str("*fz");
                }
            }
            join(ls)
        }
        TextEdit::Flip { at, byte } => {
            if text.is_empty() {
                return text.to_string();
            }
            let mut b = text.as_bytes().to_vec();
            let i = at % b.len();
            b[i] = *byte;
            String::from_utf8_lossy(&b).into_owned()
        }
        TextEdit::Insert { at, text: ins } => {
            let i = floor_boundary(text, at % (text.len() + 1));
            let mut s = text.to_string();
            s.insert_str(i, ins);
            s
        }
        TextEdit::Remove { at, len } => {
            let a = floor_boundary(text, at % (text.len() + 1));
            let b = floor_boundary(text, a + len);
            format!("{}{}", &text[..a], &text[b..])
        }
        TextEdit::Truncate { at } => {
            let a = floor_boundary(text, at % (text.len() + 1));
            text[..a].to_string()
        }
        TextEdit::Indent { line, by } => {
            let mut ls = owned();
            let i = line % n;
            if *by >= 0 {
                ls[i].insert_str(0, &" ".repeat(*by as usize));
            } else {
                let strip = ls[i]
                    .chars()
                    .take((-*by) as usize)
                    .take_while(|c| *c == ' ')
                    .count();
                ls[i].drain(..strip);
            }
            join(ls)
        }
        TextEdit::Tab { line } => {
            let mut ls = owned();
            let i = line % n;
            let body = ls[i].trim_start_matches(' ').to_string();
            ls[i] = format!("\t{body}");
            join(ls)
        }
    }
}

/// A topology file loads, or fails naming the file and a line of it; one
/// that loads summarises, draws and routes.
pub fn check_topology(c: &FileCase) -> Result<&'static str, String> {
    let lines = c.text.lines().count().max(1);
    match Topology::from_yaml(&c.text, TOPOLOGY_ORIGIN) {
        Ok(t) => {
            let pes: Vec<_> = t.pes().collect();
            let (Some(first), Some(last)) = (pes.first(), pes.last()) else {
                return Err(format!("topology `{}` loaded with no PE", t.name()));
            };
            if let Err(e) = t.route(Endpoint::Pe(*first), Endpoint::Pe(*last)) {
                // A machine cut in two by failed links is refused at load.
                return Err(format!("no route across a loaded topology: {e}"));
            }
            if pes.len() <= SUMMARY_PES {
                let s = t.summary().to_string();
                if s.is_empty() {
                    return Err("empty summary".into());
                }
                let _ = t.to_dot();
            }
            if pes.len() > PROBE_PES {
                return Ok("loaded");
            }
            // Transfers timed with the file's figures: each gives a row with a
            // finite, non-negative latency, or a typed error.
            for case in Case::ALL {
                match probe_with(&t, case, 4096, FabricModel::default()) {
                    Ok(row) if !(row.latency_ns >= 0.0 && row.latency_ns.is_finite()) => {
                        return Err(format!("probe {case}: latency {} ns", row.latency_ns));
                    }
                    Ok(_) | Err(_) => {}
                }
            }
            Ok("loaded, probed")
        }
        Err(e) => {
            let msg = e.to_string();
            if !msg.starts_with(TOPOLOGY_ORIGIN) {
                return Err(format!("the error does not name the file: {msg}"));
            }
            let Some(line) = e.line() else {
                return Err(format!("the error names no line: {msg}"));
            };
            if line == 0 || line > lines + 1 {
                return Err(format!(
                    "line {line} is outside the file's {lines} lines: {msg}"
                ));
            }
            if !msg.contains(&format!("line {line}")) {
                return Err(format!("the message does not show line {line}: {msg}"));
            }
            Ok(match e {
                TopologyError::Parse { .. } => "parse error",
                TopologyError::Invalid { .. } => "invalid",
                _ => "other error",
            })
        }
    }
}

/// A registry file loads, or fails naming the file; one that loads names its
/// algorithms, and one of them runs on `tiny` at a small size.
pub fn check_registry(c: &FileCase) -> Result<&'static str, String> {
    let lines = c.text.lines().count().max(1);
    match Registry::from_yaml(&c.text, REGISTRY_ORIGIN) {
        Ok(r) => {
            let Some(algo) = r
                .algorithms()
                .get(c.text.len() % r.algorithms().len().max(1))
            else {
                return Ok("loaded, empty");
            };
            let topo = Topology::builtin("tiny").expect("tiny is built in");
            // Data execution on: the run checks every element.
            let spec = RunSpec {
                data: true,
                ..RunSpec::timing(64, DType::F32, FabricModel::default())
            };
            match ranks(&topo, algo) {
                Ok(pes) => match run_on(&topo, algo, &pes, &spec) {
                    Ok(res) if res.wrong > 0 => Err(format!(
                        "`{}` ran with {} wrong elements of {}",
                        algo.name, res.wrong, res.checked
                    )),
                    Ok(_) => Ok("loaded, ran"),
                    Err(_) => Ok("loaded, run refused"),
                },
                Err(_) => Ok("loaded, no ranks"),
            }
        }
        Err(e) => {
            let msg = e.to_string();
            if !msg.starts_with(REGISTRY_ORIGIN) {
                return Err(format!("the error does not name the file: {msg}"));
            }
            match &e {
                RegistryError::Entry { name, line, .. } => {
                    if !msg.contains(&format!("`{name}`")) {
                        return Err(format!("the error does not name the algorithm: {msg}"));
                    }
                    if *line == 0 || *line > lines + 1 {
                        return Err(format!(
                            "line {line} is outside the file's {lines} lines: {msg}"
                        ));
                    }
                }
                RegistryError::Yaml { line, .. } => {
                    if let Some(line) = line {
                        if *line == 0 || *line > lines + 1 {
                            return Err(format!(
                                "line {line} is outside the file's {lines} lines: {msg}"
                            ));
                        }
                    }
                }
                RegistryError::Unknown { .. } => {
                    return Err(format!("loading gave an unknown-algorithm error: {msg}"))
                }
                RegistryError::Register { .. } => {
                    return Err(format!("loading gave a registration error: {msg}"))
                }
                // Past the size, depth or alias limits: refused before parsing.
                RegistryError::Input { .. } => {}
            }
            Ok(match e {
                RegistryError::Entry { .. } => "bad entry",
                _ => "parse error",
            })
        }
    }
}
