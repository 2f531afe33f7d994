//! A Graphviz rendering of a command graph.

use super::*;
use petgraph::visit::EdgeRef;
use std::fmt::Write as _;

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

impl CommandGraph {
    /// The graph in Graphviz DOT: one box per command (text and line), solid
    /// edges for data, dashed edges for ordering.
    pub fn to_dot(&self) -> String {
        let mut out = String::new();
        writeln!(out, "digraph \"{}\" {{", escape(&self.header.kernel)).unwrap();
        writeln!(out, "  label=\"{}\";", escape(&self.header_line())).unwrap();
        writeln!(out, "  node [shape=box, fontname=monospace];").unwrap();
        for (id, n) in self.nodes() {
            writeln!(
                out,
                "  n{} [label=\"{}\\l@ {}:{}\\l\"];",
                id.0,
                escape(&self.command_text(id)),
                escape(n.loc.file_name()),
                n.loc.line
            )
            .unwrap();
        }
        let mut edges: Vec<(usize, usize, DepKind)> = self
            .graph
            .edge_references()
            .map(|e| (e.source().index(), e.target().index(), *e.weight()))
            .collect();
        edges.sort_by_key(|&(a, b, k)| (a, b, k as u8));
        for (a, b, k) in edges {
            let style = match k {
                DepKind::Data => "solid",
                DepKind::Order => "dashed",
            };
            writeln!(out, "  n{a} -> n{b} [style={style}];").unwrap();
        }
        out.push_str("}\n");
        out
    }
}
