//! Inter-cube all-reduce: one PE per cube takes part. Inside each SIP the
//! cubes reduce up a binary tree rooted at the centre cube; the SIP roots
//! all-reduce over a ring, a 2D torus or a 2D mesh of SIPs; then each SIP
//! broadcasts the result back down its tree. Pipelined piece by piece.
//!
//! Ranks are ordered SIP by SIP; inside a SIP rank 0 is the centre cube and
//! the others follow by distance from it (see `run::intercube_ranks`), so the
//! heap-ordered tree keeps near cubes near the root.

use super::common::*;
use super::tree::{tree_broadcast, tree_reduce, TreeNode};
use super::Builtin;
use crate::cost::{
    chain_broadcast_ring, ring_allreduce_on, torus_allreduce, tree_allreduce_on, Cost, PeFigures,
};
use crate::registry::{Collective, MapKind};
use crate::run::torus_shape;
use kernbench_tl::prelude::*;
use kernbench_tl::Element;

/// How the SIP roots are connected.
pub mod sip_net {
    /// A ring over the SIPs (`SipE` / `SipW`).
    pub const RING: usize = 0;
    /// A 2D torus of SIPs (`SipE`/`SipW` along rows, `SipS`/`SipN` along columns).
    pub const TORUS: usize = 1;
    /// A 2D mesh of SIPs (no wrap-around): chains along rows, then columns.
    pub const MESH: usize = 2;
}

/// All-reduce along a line of ranks: `line` read as a ring whose ends are
/// not joined (no wrap-around). A pipelined chain reduce towards position 0
/// over `prev`, then a chain broadcast back over `next`.
#[kernel_fn]
pub fn line_all_reduce<T: Element>(
    buf: Ptr<T>,
    base: usize,
    n: usize,
    seg: usize,
    op: RedOp,
    line: Ring,
) {
    let Ring {
        next,
        prev,
        rank: pos,
        size: w,
    } = line;
    if w <= 1 {
        return;
    }
    for (off, len) in pieces(0, n, seg) {
        let mut acc = tl::load(buf.offset(base + off), [len]);
        if pos + 1 < w {
            acc = combine(&acc, &tl::recv::<T>(next, [len]), op);
        }
        if pos > 0 {
            tl::send(prev, &acc);
        } else {
            tl::store(buf.offset(base + off), &acc);
        }
    }
    for (off, len) in pieces(0, n, seg) {
        let x = if pos == 0 {
            tl::load(buf.offset(base + off), [len])
        } else {
            let x = tl::recv::<T>(prev, [len]);
            tl::store(buf.offset(base + off), &x);
            x
        };
        if pos + 1 < w {
            tl::send(next, &x);
        }
    }
}

/// Inter-cube all-reduce: one PE per cube, a tree inside each SIP rooted at the centre cube, the SIP roots over a ring, torus or mesh.
///
/// `cubes` ranks per SIP, the SIPs as `sip_cols` columns, connected by
/// `net` (see [`sip_net`]).
#[kernel]
pub fn intercube_allreduce<T: Element>(
    buf: Ptr<T>,
    n: usize,
    #[constexpr] seg: usize,
    #[constexpr] op: RedOp,
    cubes: usize,
    sip_cols: usize,
    net: usize,
) {
    let (w, r) = (tl::num_programs(0), tl::program_id(0));
    let cubes = cubes.max(1);
    let sips = w / cubes;
    let (sip, c) = (r / cubes, r % cubes);
    let base = r * n;
    // A heap-ordered tree over the SIP's cubes, rank 0 (the centre cube) at its root.
    let node = TreeNode {
        root: c == 0,
        left: 2 * c + 1 < cubes,
        right: 2 * c + 2 < cubes,
    };
    tree_reduce(buf, base, n, seg, op, node);
    if c == 0 && sips > 1 {
        let cols = sip_cols.clamp(1, sips);
        let rows = sips / cols;
        let (row, col) = (sip / cols, sip % cols);
        // Along a row of SIPs and down a column: rings on a torus, lines on a mesh.
        let along = Ring {
            next: Dir::SipE,
            prev: Dir::SipW,
            rank: col,
            size: cols,
        };
        let down = Ring {
            next: Dir::SipS,
            prev: Dir::SipN,
            rank: row,
            size: rows,
        };
        if net == sip_net::RING {
            let ring = Ring {
                next: Dir::SipE,
                prev: Dir::SipW,
                rank: sip,
                size: sips,
            };
            ring_all_reduce(buf, base, (0, n), ring, seg, op);
        } else if net == sip_net::TORUS {
            ring_reduce_scatter(buf, base, (0, n), along, 1, seg, op);
            let (cs, cl) = chunk(n, cols, (col + 1) % cols);
            ring_all_reduce(buf, base, (cs, cl), down, seg, op);
            ring_all_gather(buf, base, (0, n), along, 1, seg);
        } else {
            line_all_reduce(buf, base, n, seg, op, along);
            line_all_reduce(buf, base, n, seg, op, down);
        }
    }
    tree_broadcast(buf, base, n, seg, node);
}

/// [`intercube_allreduce`]: the tree inside a SIP
/// ([`tree_allreduce_on`]),
/// then the SIP roots' ring, torus or mesh of chains.
pub const INTERCUBE_ALLREDUCE: Builtin = Builtin {
    kernel: &intercube_allreduce,
    collective: Collective::AllReduce,
    maps: &[
        MapKind::IntercubeRing,
        MapKind::IntercubeTorus2d,
        MapKind::IntercubeMesh2d,
    ],
    cost: |m| {
        let (p, bytes, k) = (m.ranks(), m.bytes, m.pieces);
        let cubes = (m.topo.cubes_per_sip() as usize).min(p).max(1);
        let sips = p / cubes;
        let tree = m.measure(&[Dir::Left, Dir::Right]);
        let sip = m.measure(&[Dir::SipE, Dir::SipS]);
        let (rows, cols) = torus_shape(sips);
        let pe = PeFigures::of(m.topo);
        let top = match m.algo.topology {
            MapKind::IntercubeRing => ring_allreduce_on(&pe, sips, bytes, m.seg(), sip),
            MapKind::IntercubeTorus2d => {
                torus_allreduce(&pe, (rows, cols), bytes, m.seg(), sip, sip)
            }
            // Chains: reduce and broadcast along a row, then a column, pipelined in k pieces.
            _ => {
                2.0 * (chain_broadcast_ring(cols, bytes, k, sip)
                    + chain_broadcast_ring(rows, bytes, k, sip))
            }
        };
        tree_allreduce_on(m.topo, m.map, m.pes[0], bytes, k, tree)
            + if sips > 1 { top } else { Cost::zero() }
    },
    leaves_out: None,
};
