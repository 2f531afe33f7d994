//! The shape of a command graph: everything lowering reads except addresses
//! and peers. Two instances whose graphs have one shape lower to one program
//! up to their DMAs, which [`super::compile`] resolves again on each
//! instance's own regions (see [`super::lower::DmaSite`]) instead of
//! lowering the graph again.
//!
//! The shape is the commands in order, each with its tile type, its
//! operands and scalars, the element type, shape and layout (flat or block)
//! of the region it moves, and its incoming data dependencies. What it
//! leaves out is where regions lie (base, offset, origin, tensor pitch),
//! their names, the peers of sends and receives, source lines, and ordering
//! dependencies: lowering reads the first only through DMA sites, the
//! ordering edges only as the first dependencies of some ops (which
//! [`super::lower::OrderUse`] patches per instance), the others not at all.

use crate::ir::{Command, CommandGraph, MemRef};
use petgraph::graph::NodeIndex;
use petgraph::visit::EdgeRef;
use petgraph::Direction;
use std::hash::{Hash, Hasher};

/// A hash of `g`'s shape (graphs of one shape hash alike), and its
/// ordering edges as `(command, earlier command)`, by command and then in
/// the graph's order of each command's edges (the order lowering reads them in).
pub(crate) fn shape_hash(g: &CommandGraph) -> (u64, Vec<(u32, u32)>) {
    let mut h = rustc_hash::FxHasher::default();
    let mut order = Vec::new();
    g.len().hash(&mut h);
    for (id, node) in g.nodes() {
        std::mem::discriminant(&node.cmd).hash(&mut h);
        node.ty.hash(&mut h);
        for v in node.cmd.operands() {
            v.0.hash(&mut h);
        }
        if let Some(r) = super::lower::region_of(&node.cmd) {
            region_key(r).hash(&mut h);
        }
        for e in g
            .graph
            .edges_directed(NodeIndex::new(id.index()), Direction::Incoming)
        {
            match e.weight() {
                crate::ir::DepKind::Data => e.source().index().hash(&mut h),
                crate::ir::DepKind::Order => order.push((id.0, e.source().index() as u32)),
            }
        }
    }
    (h.finish(), order)
}

/// Whether `a` and `b` have one shape.
pub(crate) fn same_shape(a: &CommandGraph, b: &CommandGraph) -> bool {
    a.len() == b.len()
        && a.nodes().zip(b.nodes()).all(|((id, x), (_, y))| {
            x.ty == y.ty
                && same_work(&x.cmd, &y.cmd)
                && incoming(a, id.index()).eq(incoming(b, id.index()))
        })
}

/// A region as lowering reads it, apart from where it lies.
fn region_key(
    r: &MemRef,
) -> (
    crate::DType,
    &[usize],
    std::mem::Discriminant<crate::ir::View>,
) {
    (r.dtype, &r.shape, std::mem::discriminant(&r.view))
}

/// The data dependencies of node `i`, in the graph's order.
fn incoming(g: &CommandGraph, i: usize) -> impl Iterator<Item = usize> + '_ {
    g.graph
        .edges_directed(NodeIndex::new(i), Direction::Incoming)
        .filter(|e| *e.weight() == crate::ir::DepKind::Data)
        .map(|e| e.source().index())
}

/// Whether two commands are equal but for their regions' places and their peers.
fn same_work(a: &Command, b: &Command) -> bool {
    use Command as C;
    match (a, b) {
        (C::Load { src: x, mask: m }, C::Load { src: y, mask: n }) => {
            region_key(x) == region_key(y) && m == n
        }
        (C::Stream { src: x }, C::Stream { src: y }) => region_key(x) == region_key(y),
        (
            C::Store {
                dst: x,
                value: v,
                mask: m,
            },
            C::Store {
                dst: y,
                value: w,
                mask: n,
            },
        ) => region_key(x) == region_key(y) && v == w && m == n,
        (C::Send { value: v, .. }, C::Send { value: w, .. }) => v == w,
        (C::Recv { is_async: x, .. }, C::Recv { is_async: y, .. }) => x == y,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Dir, GraphHeader, Peer, SrcLoc, View};
    use crate::ir::{GraphBuilder, TraceLimits};
    use crate::DType;

    fn region(base_va: u64, origin: [usize; 2], rows: usize) -> MemRef {
        MemRef {
            param: 0,
            name: "x".into(),
            base_va,
            view: View::Block {
                origin,
                tensor: [64, 64],
            },
            dtype: DType::F32,
            shape: vec![rows, 16].into(),
        }
    }

    /// load, send to `peer`, store: a step of a ring.
    fn graph(base_va: u64, origin: [usize; 2], peer: Dir, rows: usize) -> CommandGraph {
        let header = GraphHeader {
            kernel: "k".into(),
            params: vec![],
            grid: vec![1],
            pid: vec![0],
        };
        let mut b = GraphBuilder::new(header, TraceLimits::default());
        let loc = SrcLoc {
            file: "k.rs".into(),
            line: 1,
            col: 1,
        };
        let x = b.load(region(base_va, origin, rows), &loc).unwrap();
        b.send(Peer::Dir(peer), x, &loc).unwrap();
        let dst = region(base_va + 4096, origin, rows);
        b.store(dst, x, &loc).unwrap();
        b.finish()
    }

    #[test]
    fn places_and_peers_are_not_part_of_the_shape() {
        let a = graph(0x1000, [0, 0], Dir::E, 8);
        let b = graph(0x9000, [8, 16], Dir::W, 8);
        assert!(same_shape(&a, &b));
        assert_eq!(shape_hash(&a).0, shape_hash(&b).0);
    }

    #[test]
    fn a_region_of_another_size_is_another_shape() {
        let a = graph(0x1000, [0, 0], Dir::E, 8);
        let b = graph(0x1000, [0, 0], Dir::E, 4);
        assert!(!same_shape(&a, &b));
        assert!(!same_shape(&b, &a));
    }
}
