//! Limits on what a user's input file may ask of the parser, checked before
//! it is parsed.
//!
//! The YAML parser underneath serde_yaml does work proportional to the
//! nesting depth for every token, so a file of 200 000 `[` takes minutes
//! before it is rejected; and aliases let a small file expand to more nodes
//! than memory holds (a "billion laughs"). [`check_yaml`] scans the text once,
//! in time linear in its length, and rejects it at the first place it breaks
//! one of the [`Limits`]: more than [`MAX_YAML_BYTES`] bytes, nesting deeper
//! than [`MAX_DEPTH`] levels, or aliases that expand to more than
//! [`MAX_ALIAS_NODES`] nodes. Files within the limits parse as before.
//!
//! ```
//! use kernbench_core::input::{check_yaml, InputError, Limits};
//!
//! assert!(check_yaml("name: tiny\nsip: {cubes: {rows: 2, cols: 2}}\n", &Limits::default()).is_ok());
//! let deep = format!("name: x\nsip: {}\n", "[".repeat(100));
//! let err = check_yaml(&deep, &Limits::default()).unwrap_err();
//! assert!(matches!(err, InputError::TooDeep { line: 2, .. }));
//! ```
//!
//! The scan is not a YAML parser: it follows flow brackets, block indentation,
//! quoted and block scalars, comments, anchors and aliases closely enough to
//! bound what the parser will do. Where it is unsure it overestimates, so a
//! file it accepts never costs the parser more than the limits allow.

use std::collections::HashMap;
use std::io::Read as _;
use std::path::Path;

/// The largest YAML input file (topology, algorithm registry): 1 MiB.
pub const MAX_YAML_BYTES: usize = 1 << 20;
/// The deepest nesting of collections a YAML input may have.
pub const MAX_DEPTH: usize = 64;
/// The most nodes the aliases of a YAML input may expand to, all aliases together.
pub const MAX_ALIAS_NODES: u64 = 100_000;

/// What a YAML input may ask of the parser.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes.
    pub max_bytes: usize,
    /// Deepest nesting of collections (flow and block together).
    pub max_depth: usize,
    /// Most nodes that all aliases together may expand to.
    pub max_alias_nodes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: MAX_YAML_BYTES,
            max_depth: MAX_DEPTH,
            max_alias_nodes: MAX_ALIAS_NODES,
        }
    }
}

/// An input file that breaks a limit. The message names the limit and,
/// except for the size, the line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// The file could not be read.
    #[error("cannot read: {0}")]
    Io(std::io::Error),
    /// The file is larger than the limit.
    #[error("the file is larger than {limit} bytes, the limit for this kind of input ({size} bytes or more)")]
    TooLarge {
        /// Its size, or the bytes read before giving up.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Collections nest deeper than the limit.
    #[error("line {line}, column {column}: collections nest deeper than {limit} levels, the limit for input files")]
    TooDeep {
        /// 1-based line of the collection that goes past the limit.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The limit.
        limit: usize,
    },
    /// Aliases expand to more nodes than the limit.
    #[error("line {line}: alias `*{name}` brings the nodes that aliases expand to past {limit}, the limit for input files")]
    AliasExpansion {
        /// 1-based line of the alias that goes past the limit.
        line: usize,
        /// The alias.
        name: String,
        /// The limit.
        limit: u64,
    },
    /// An alias names no complete anchor before it.
    #[error("line {line}: alias `*{name}` refers to no anchor `&{name}` complete before it")]
    UnknownAlias {
        /// 1-based line of the alias.
        line: usize,
        /// The alias.
        name: String,
    },
}

impl InputError {
    /// The 1-based line the error is about, when it is about one.
    pub fn line(&self) -> Option<usize> {
        match self {
            InputError::TooDeep { line, .. }
            | InputError::AliasExpansion { line, .. }
            | InputError::UnknownAlias { line, .. } => Some(*line),
            _ => None,
        }
    }
}

/// Reads a file as UTF-8 text, refusing it without reading further when it is
/// larger than `max_bytes` (its size is checked first, and the read stops one
/// byte past the limit for inputs whose size is not known, such as pipes).
pub fn read_limited(path: &Path, max_bytes: usize) -> Result<String, InputError> {
    let file = std::fs::File::open(path).map_err(InputError::Io)?;
    let limit = max_bytes as u64;
    if let Ok(m) = file.metadata() {
        if m.is_file() && m.len() > limit {
            return Err(InputError::TooLarge {
                size: m.len(),
                limit,
            });
        }
    }
    let mut buf = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(InputError::Io)?;
    if buf.len() as u64 > limit {
        return Err(InputError::TooLarge {
            size: buf.len() as u64,
            limit,
        });
    }
    String::from_utf8(buf)
        .map_err(|e| InputError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}

/// Checks YAML text against the limits before it is parsed (see the module docs).
pub fn check_yaml(text: &str, limits: &Limits) -> Result<(), InputError> {
    if text.len() > limits.max_bytes {
        return Err(InputError::TooLarge {
            size: text.len() as u64,
            limit: limits.max_bytes as u64,
        });
    }
    Scan::new(text, limits).run()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A block mapping whose keys start at this column.
    Map(usize),
    /// A block sequence whose dashes are at this column.
    Seq(usize),
    /// A sequence whose dashes sit at the column of its parent mapping's keys.
    Indentless(usize),
    /// `[` or `{`.
    Flow,
}

struct Level<'a> {
    kind: Kind,
    /// The anchor on this collection and the node count when it opened.
    anchor: Option<(&'a str, u64)>,
}

/// An anchor waiting for the node it names.
struct Pending<'a> {
    name: &'a str,
    line: usize,
    column: usize,
}

struct Scan<'a> {
    text: &'a str,
    b: &'a [u8],
    pos: usize,
    line: usize,
    line_start: usize,
    stack: Vec<Level<'a>>,
    flow: usize,
    /// Complete anchors: their size in nodes, aliases inside expanded.
    anchors: HashMap<&'a str, u64>,
    pending: Option<Pending<'a>>,
    /// Nodes so far, aliases expanded.
    nodes: u64,
    /// Nodes that aliases have expanded to so far.
    expanded: u64,
    limits: Limits,
}

fn blank(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r')
}

fn flow_indicator(c: u8) -> bool {
    matches!(c, b',' | b'[' | b']' | b'{' | b'}')
}

impl<'a> Scan<'a> {
    fn new(text: &'a str, limits: &Limits) -> Self {
        Scan {
            text,
            b: text.as_bytes(),
            pos: 0,
            line: 1,
            line_start: 0,
            stack: Vec::new(),
            flow: 0,
            anchors: HashMap::new(),
            pending: None,
            nodes: 0,
            expanded: 0,
            limits: *limits,
        }
    }

    fn at(&self, i: usize) -> Option<u8> {
        self.b.get(i).copied()
    }

    fn col(&self) -> usize {
        self.pos - self.line_start
    }

    /// Whether the byte at `i` ends a token: end of text, a space, a line break.
    fn ends(&self, i: usize) -> bool {
        match self.at(i) {
            None | Some(b'\n') => true,
            Some(c) => blank(c),
        }
    }

    fn newline(&mut self) {
        self.pos += 1;
        self.line += 1;
        self.line_start = self.pos;
    }

    fn skip_to_eol(&mut self) {
        while let Some(c) = self.at(self.pos) {
            if c == b'\n' {
                break;
            }
            self.pos += 1;
        }
    }

    /// The column of the current block collection, if any.
    fn indent(&self) -> Option<usize> {
        self.stack.iter().rev().find_map(|l| match l.kind {
            Kind::Map(c) | Kind::Seq(c) | Kind::Indentless(c) => Some(c),
            Kind::Flow => None,
        })
    }

    fn push(&mut self, kind: Kind, column: usize) -> Result<(), InputError> {
        let anchor = self.pending.take().map(|p| (p.name, self.nodes));
        self.nodes = self.nodes.saturating_add(1);
        self.stack.push(Level { kind, anchor });
        if self.stack.len() > self.limits.max_depth {
            return Err(InputError::TooDeep {
                line: self.line,
                column: column + 1,
                limit: self.limits.max_depth,
            });
        }
        Ok(())
    }

    fn pop(&mut self) {
        if let Some(l) = self.stack.pop() {
            if l.kind == Kind::Flow {
                self.flow -= 1;
            }
            if let Some((name, start)) = l.anchor {
                self.anchors.insert(name, self.nodes - start);
            }
        }
    }

    /// A scalar node (or an empty one): takes a pending anchor.
    fn scalar(&mut self) {
        if let Some(p) = self.pending.take() {
            self.anchors.insert(p.name, 1);
        }
        self.nodes = self.nodes.saturating_add(1);
    }

    /// A key in block context starts at `column`: opens a mapping there
    /// unless one is open at that column.
    fn key(&mut self, column: usize) -> Result<(), InputError> {
        if self.flow > 0 {
            return Ok(());
        }
        match self.indent() {
            Some(c) if c >= column => Ok(()),
            _ => self.push(Kind::Map(column), column),
        }
    }

    /// Closes the block collections that a line starting at `column` ends.
    fn unroll(&mut self, column: usize, entry: bool) {
        while let Some(l) = self.stack.last() {
            match l.kind {
                Kind::Map(c) | Kind::Seq(c) if c > column => self.pop(),
                Kind::Indentless(c) if c > column || (c == column && !entry) => self.pop(),
                _ => break,
            }
        }
    }

    /// The name after `&` or `*` at `self.pos`.
    fn name(&mut self) -> &'a str {
        let start = self.pos + 1;
        let mut i = start;
        while let Some(c) = self.at(i) {
            if c == b'\n' || blank(c) || flow_indicator(c) {
                break;
            }
            i += 1;
        }
        self.pos = i;
        &self.text[start..i]
    }

    fn run(mut self) -> Result<(), InputError> {
        let mut line_start = true;
        loop {
            while self.at(self.pos).is_some_and(blank) {
                self.pos += 1;
            }
            let Some(c) = self.at(self.pos) else { break };
            if c == b'\n' {
                self.newline();
                line_start = true;
                continue;
            }
            if c == b'#'
                && (self.pos == 0
                    || !matches!(self.at(self.pos - 1), Some(x) if !blank(x) && x != b'\n'))
            {
                self.skip_to_eol();
                continue;
            }
            let column = self.col();
            let first = line_start;
            line_start = false;
            if first && self.flow == 0 {
                if column == 0
                    && (self.b[self.pos..].starts_with(b"---")
                        || self.b[self.pos..].starts_with(b"..."))
                    && self.ends(self.pos + 3)
                {
                    while !self.stack.is_empty() {
                        self.pop();
                    }
                    if self.pending.is_some() {
                        self.scalar();
                    }
                    self.pos += 3;
                    continue;
                }
                if column == 0 && c == b'%' && self.stack.is_empty() {
                    self.skip_to_eol();
                    continue;
                }
                let entry = c == b'-' && self.ends(self.pos + 1);
                self.unroll(column, entry);
                // An anchor left on an earlier line names an empty node
                // unless this line opens something deeper.
                if self.pending.as_ref().is_some_and(|p| p.line < self.line) {
                    let deeper = match self.indent() {
                        None => true,
                        Some(i) => {
                            column > i
                                || (entry
                                    && matches!(self.stack.last(), Some(l) if l.kind == Kind::Map(i) && i == column))
                        }
                    };
                    if !deeper {
                        self.scalar();
                    }
                }
            }
            match c {
                b'-' if self.flow == 0 && self.ends(self.pos + 1) => {
                    match self.stack.last().map(|l| l.kind) {
                        Some(Kind::Map(i)) if i == column => {
                            self.push(Kind::Indentless(column), column)?
                        }
                        Some(Kind::Seq(i) | Kind::Indentless(i)) if i == column => {
                            if self.pending.is_some() {
                                self.scalar();
                            }
                        }
                        _ => match self.indent() {
                            Some(i) if i >= column => {}
                            _ => self.push(Kind::Seq(column), column)?,
                        },
                    }
                    self.pos += 1;
                }
                b'?' if self.ends(self.pos + 1) => {
                    self.key(column)?;
                    self.pos += 1;
                }
                b':' if self.ends(self.pos + 1)
                    || (self.flow > 0 && self.at(self.pos + 1).is_some_and(flow_indicator)) =>
                {
                    self.pos += 1;
                }
                b'[' | b'{' => {
                    self.flow += 1;
                    self.push(Kind::Flow, column)?;
                    self.pos += 1;
                }
                b']' | b'}' => {
                    if matches!(self.stack.last(), Some(l) if l.kind == Kind::Flow) {
                        self.pop();
                    }
                    self.pos += 1;
                }
                b',' if self.flow > 0 => self.pos += 1,
                b'&' => {
                    let line = self.line;
                    let name = self.name();
                    self.pending = Some(Pending { name, line, column });
                }
                b'*' => {
                    let line = self.line;
                    let name = self.name();
                    let Some(&size) = self.anchors.get(name) else {
                        return Err(InputError::UnknownAlias {
                            line,
                            name: name.to_string(),
                        });
                    };
                    self.nodes = self.nodes.saturating_add(size);
                    self.expanded = self.expanded.saturating_add(size);
                    if self.expanded > self.limits.max_alias_nodes {
                        return Err(InputError::AliasExpansion {
                            line,
                            name: name.to_string(),
                            limit: self.limits.max_alias_nodes,
                        });
                    }
                }
                b'!' => {
                    // A tag: skip it.
                    while let Some(c) = self.at(self.pos) {
                        if c == b'\n' || blank(c) || (self.flow > 0 && flow_indicator(c)) {
                            break;
                        }
                        self.pos += 1;
                    }
                }
                b'|' | b'>' if self.flow == 0 => {
                    self.scalar();
                    self.skip_to_eol();
                    self.block_scalar();
                    line_start = true;
                }
                b'\'' | b'"' => {
                    let line = self.line;
                    self.quoted(c);
                    if line == self.line && self.followed_by_colon() {
                        self.key(self.key_column(column))?;
                    }
                    self.scalar();
                }
                _ => {
                    if self.plain() && self.flow == 0 {
                        self.key(self.key_column(column))?;
                    }
                    self.scalar();
                    if self.flow == 0 && self.at(self.pos) == Some(b'\n') {
                        self.continuation();
                    }
                }
            }
        }
        while !self.stack.is_empty() {
            self.pop();
        }
        Ok(())
    }

    /// Where a key at `column` starts: at an anchor before it on its line.
    fn key_column(&self, column: usize) -> usize {
        match &self.pending {
            Some(p) if p.line == self.line => column.min(p.column),
            _ => column,
        }
    }

    /// Whether `:` and a space (or the line's end) follow, spaces skipped.
    fn followed_by_colon(&self) -> bool {
        let mut i = self.pos;
        while self.at(i).is_some_and(blank) {
            i += 1;
        }
        self.at(i) == Some(b':')
            && (self.ends(i + 1) || (self.flow > 0 && self.at(i + 1).is_some_and(flow_indicator)))
    }

    /// Skips a quoted scalar that opens at `self.pos`, across lines.
    fn quoted(&mut self, q: u8) {
        self.pos += 1;
        while let Some(c) = self.at(self.pos) {
            match c {
                b'\n' => {
                    self.newline();
                    continue;
                }
                b'\\' if q == b'"' => {
                    if self.at(self.pos + 1) == Some(b'\n') {
                        self.pos += 1;
                        self.newline();
                        continue;
                    }
                    self.pos += 2;
                    continue;
                }
                _ if c == q => {
                    if q == b'\'' && self.at(self.pos + 1) == Some(b'\'') {
                        self.pos += 2;
                        continue;
                    }
                    self.pos += 1;
                    return;
                }
                _ => self.pos += 1,
            }
        }
    }

    /// Skips a plain scalar on its line; returns whether it is a key (`: ` follows).
    fn plain(&mut self) -> bool {
        while let Some(c) = self.at(self.pos) {
            match c {
                b'\n' => return false,
                b':' if self.ends(self.pos + 1)
                    || (self.flow > 0 && self.at(self.pos + 1).is_some_and(flow_indicator)) =>
                {
                    return true
                }
                b'#' if self.at(self.pos - 1).is_some_and(blank) => return false,
                _ if self.flow > 0 && flow_indicator(c) => return false,
                _ => self.pos += 1,
            }
        }
        false
    }

    /// Skips the lines that continue a plain scalar in block context: lines
    /// indented deeper than the current block collection, up to a comment or `: `.
    fn continuation(&mut self) {
        let min = self.indent().map_or(0, |i| i + 1);
        loop {
            let Some(next) = self
                .at(self.pos)
                .filter(|&c| c == b'\n')
                .map(|_| self.pos + 1)
            else {
                return;
            };
            let mut i = next;
            while self.at(i) == Some(b' ') {
                i += 1;
            }
            match self.at(i) {
                None | Some(b'#') => return,
                Some(b'\n') | Some(b'\r') | Some(b'\t') => {
                    // A blank line: part of the scalar if more follows.
                    self.newline();
                    while self.at(self.pos).is_some_and(blank) {
                        self.pos += 1;
                    }
                    continue;
                }
                _ => {}
            }
            let column = i - next;
            let marker =
                column == 0 && (self.b[i..].starts_with(b"---") || self.b[i..].starts_with(b"..."));
            if column < min || marker {
                return;
            }
            self.newline();
            self.pos = i;
            while let Some(c) = self.at(self.pos) {
                match c {
                    b'\n' => break,
                    b':' if self.ends(self.pos + 1) => return,
                    b'#' if self.at(self.pos - 1).is_some_and(blank) => return,
                    _ => self.pos += 1,
                }
            }
        }
    }

    /// Skips the content lines of a block scalar (`|`, `>`), after its header line.
    fn block_scalar(&mut self) {
        let min = self.indent().map_or(1, |i| i + 1).max(1);
        while self.at(self.pos) == Some(b'\n') {
            let next = self.pos + 1;
            let mut i = next;
            while self.at(i) == Some(b' ') {
                i += 1;
            }
            let empty = matches!(self.at(i), Some(b'\n') | Some(b'\r') | None);
            if !empty && i - next < min {
                return;
            }
            if self.at(i).is_none() {
                return;
            }
            self.newline();
            self.skip_to_eol();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<(), InputError> {
        check_yaml(text, &Limits::default())
    }

    fn depth_limit(n: usize) -> Limits {
        Limits {
            max_depth: n,
            ..Limits::default()
        }
    }

    #[test]
    fn shipped_files_pass() {
        for text in [
            crate::topology::DEFAULT_YAML,
            crate::topology::TINY_YAML,
            crate::topology::LARGE_YAML,
            crate::topology::XL_YAML,
            include_str!("../../configs/ccl.yaml"),
        ] {
            check(text).unwrap();
        }
    }

    #[test]
    fn counts_flow_and_block_nesting() {
        let text = "a:\n  b:\n    - c: [1, {d: [2]}]\n";
        // a's map, b's map, the sequence, c's map, [, {, [ = 7 levels.
        assert!(check_yaml(text, &depth_limit(7)).is_ok());
        let e = check_yaml(text, &depth_limit(6)).unwrap_err();
        assert!(
            matches!(
                e,
                InputError::TooDeep {
                    line: 3,
                    column: 18,
                    limit: 6
                }
            ),
            "{e}"
        );
        // Compact nested sequences count one level a dash.
        let e = check_yaml("- - - - x\n", &depth_limit(3)).unwrap_err();
        assert!(matches!(e, InputError::TooDeep { line: 1, .. }), "{e}");
    }

    #[test]
    fn brackets_inside_scalars_and_comments_do_not_count() {
        let text = format!(
            "a: x{0}\nb: '{0}'\nc: \"{0}\"\n# {0}\nd: |\n  {0}\n  {0}\ne: text\n  {0} more\nf: 1 # {0}\n",
            "[[[[[[[[[["
        );
        assert!(check_yaml(&text, &depth_limit(2)).is_ok(), "{text}");
    }

    #[test]
    fn rejects_deep_nesting_at_its_line() {
        let text = format!("name: x\nsip:\n  cube: {}\n", "[".repeat(200_000));
        let e = check(&text).unwrap_err();
        assert!(
            matches!(
                e,
                InputError::TooDeep {
                    line: 3,
                    limit: 64,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("deeper than 64 levels"), "{e}");
    }

    #[test]
    fn measures_what_anchors_expand_to() {
        let text = "a: &a [1, 2, 3]\nb: &b {x: *a, y: *a}\nc: [*b, *b]\n";
        // a: 4 nodes; b: 1 + 2 keys + 2 x 4 = 11; aliases expand to 4 + 4 + 11 + 11.
        assert!(check_yaml(
            text,
            &Limits {
                max_alias_nodes: 30,
                ..Limits::default()
            }
        )
        .is_ok());
        let e = check_yaml(
            text,
            &Limits {
                max_alias_nodes: 29,
                ..Limits::default()
            },
        )
        .unwrap_err();
        assert!(
            matches!(&e, InputError::AliasExpansion { line: 3, name, limit: 29 } if name == "b"),
            "{e}"
        );
    }

    #[test]
    fn anchors_on_block_collections_end_with_their_indentation() {
        let text = "base: &base\n  gbps: 1\n  latency: 2\nother:\n  a: *base\n  b: *base\n";
        // base: the map and 4 scalars = 5; two aliases = 10.
        let lim = |n| Limits {
            max_alias_nodes: n,
            ..Limits::default()
        };
        assert!(check_yaml(text, &lim(10)).is_ok());
        assert!(check_yaml(text, &lim(9)).is_err());
        // An indentless sequence under a key.
        let text = "pes: &p\n- [1, 1]\n- [1, 2]\nx: *p\n";
        assert!(check_yaml(text, &lim(7)).is_ok());
        assert!(check_yaml(text, &lim(6)).is_err());
        // An anchor on an empty value.
        assert!(check_yaml("a: &e\nb: *e\n", &lim(1)).is_ok());
    }

    #[test]
    fn rejects_a_billion_laughs() {
        let mut text = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for i in 1..10 {
            let refs = vec![format!("*a{}", i - 1); 9].join(", ");
            text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        let e = check(&text).unwrap_err();
        assert!(
            matches!(e, InputError::AliasExpansion { limit: 100_000, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("100000"), "{e}");
    }

    #[test]
    fn an_alias_needs_a_complete_anchor_before_it() {
        let e = check("a: *nowhere\n").unwrap_err();
        assert!(matches!(e, InputError::UnknownAlias { line: 1, .. }), "{e}");
        let e = check("a: &a\n  b: *a\n").unwrap_err();
        assert!(matches!(e, InputError::UnknownAlias { line: 2, .. }), "{e}");
    }

    #[test]
    fn rejects_text_over_the_size_limit() {
        let e = check_yaml(
            "name: x\n",
            &Limits {
                max_bytes: 4,
                ..Limits::default()
            },
        )
        .unwrap_err();
        assert!(
            matches!(e, InputError::TooLarge { size: 8, limit: 4 }),
            "{e}"
        );
    }

    #[test]
    fn read_limited_stops_past_the_limit() {
        let dir = std::env::temp_dir().join(format!("kernbench-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("big.yaml");
        std::fs::write(&f, "x".repeat(100)).unwrap();
        assert!(matches!(
            read_limited(&f, 99),
            Err(InputError::TooLarge {
                size: 100,
                limit: 99
            })
        ));
        assert_eq!(read_limited(&f, 100).unwrap().len(), 100);
        let _ = std::fs::remove_dir_all(&dir);
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;
        use serde_yaml::Value;

        fn scalar() -> impl Strategy<Value = Value> {
            prop_oneof![
                any::<i64>().prop_map(Value::from),
                any::<bool>().prop_map(Value::from),
                // Text with the characters the scan treats specially.
                "[a-z\\[\\]{}&*#:,'\" |>!%-]{0,12}".prop_map(Value::from),
                "[a-z ]{0,8}\n[a-z\\[&*# ]{0,8}".prop_map(Value::from),
            ]
        }

        fn value() -> impl Strategy<Value = Value> {
            scalar().prop_recursive(8, 64, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Sequence),
                    prop::collection::vec(("[a-z]{1,6}", inner), 0..4).prop_map(|kv| {
                        Value::Mapping(kv.into_iter().map(|(k, v)| (Value::from(k), v)).collect())
                    }),
                ]
            })
        }

        /// Collections on the deepest path.
        fn depth(v: &Value) -> usize {
            match v {
                Value::Sequence(s) => 1 + s.iter().map(depth).max().unwrap_or(0),
                Value::Mapping(m) => 1 + m.values().map(depth).max().unwrap_or(0),
                _ => 0,
            }
        }

        proptest! {
            /// Whatever serde_yaml writes passes at its exact depth and fails one below.
            #[test]
            fn the_scan_measures_the_depth_serde_yaml_writes(v in value()) {
                let text = serde_yaml::to_string(&v).unwrap();
                let d = depth(&v);
                let lim = |n| Limits { max_depth: n, ..Limits::default() };
                prop_assert!(check_yaml(&text, &lim(d)).is_ok(), "depth {}:\n{}", d, text);
                if d > 0 {
                    prop_assert!(
                        matches!(check_yaml(&text, &lim(d - 1)), Err(InputError::TooDeep { .. })),
                        "depth {}:\n{}", d, text
                    );
                }
            }
        }
    }
}
