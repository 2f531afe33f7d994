//! Ring algorithms: all-reduce (reduce-scatter then all-gather), reduce-scatter,
//! all-gather, and a pipelined chain broadcast.

use super::common::*;
use super::Builtin;
use crate::cost::{self, chain_broadcast_ring, PeFigures};
use crate::registry::{Collective, MapKind};
use kernbench_tl::prelude::*;
use kernbench_tl::Element;

/// What the ring family's models leave out: one text for every ring row.
macro_rules! held_link {
    () => {
        "a NOC link two ring channels share is held while each transfer waits on the slower UCIe link beyond it"
    };
}

fn ring(w: usize, r: usize) -> Ring {
    Ring {
        next: Dir::E,
        prev: Dir::W,
        rank: r,
        size: w,
    }
}

/// Ring all-reduce: reduce-scatter then all-gather, pipelined in windows of pieces.
#[kernel]
pub fn ring_allreduce<T: Element>(
    buf: Ptr<T>,
    n: usize,
    #[constexpr] seg: usize,
    #[constexpr] op: RedOp,
) {
    let (w, r) = (tl::num_programs(0), tl::program_id(0));
    ring_all_reduce(buf, r * n, (0, n), ring(w, r), seg, op);
}

/// Ring reduce-scatter: rank `r` ends with the reduction of chunk `r` of the vector.
#[kernel]
pub fn reduce_scatter<T: Element>(
    buf: Ptr<T>,
    n: usize,
    #[constexpr] seg: usize,
    #[constexpr] op: RedOp,
) {
    let (w, r) = (tl::num_programs(0), tl::program_id(0));
    ring_reduce_scatter(buf, r * n, (0, n), ring(w, r), 0, seg, op);
}

/// Ring all-gather: rank `r` contributes chunk `r` of the vector and ends with all of it.
#[kernel]
pub fn all_gather<T: Element>(buf: Ptr<T>, n: usize, #[constexpr] seg: usize) {
    let (w, r) = (tl::num_programs(0), tl::program_id(0));
    ring_all_gather(buf, r * n, (0, n), ring(w, r), 0, seg);
}

/// Pipelined chain broadcast of the root's vector along the ring.
#[kernel]
pub fn broadcast<T: Element>(buf: Ptr<T>, n: usize, #[constexpr] seg: usize, root: usize) {
    let (w, r) = (tl::num_programs(0), tl::program_id(0));
    let base = r * n;
    let pos = (r + w - root % w) % w;
    let ps = pieces(0, n, seg);
    let ring = ring(w, r);
    if w == 1 {
        return;
    }
    if pos == 0 {
        for (off, len) in &ps {
            let x = tl::load(buf.offset(base + off), [*len]);
            tl::send(ring.next, &x);
        }
        return;
    }
    let windows = ps.len().div_ceil(WINDOW);
    let mut pending: Vec<(RecvFuture<T>, (usize, usize))> = Vec::new();
    for (off, len) in out_window(&ps, 0) {
        pending.push((tl::recv_async::<T>(ring.prev, [len]), (off, len)));
    }
    for k in 0..windows {
        let current = std::mem::take(&mut pending);
        for (off, len) in out_window(&ps, k + 1) {
            pending.push((tl::recv_async::<T>(ring.prev, [len]), (off, len)));
        }
        for (f, (off, _)) in current {
            let x = tl::wait(f);
            if pos + 1 < w {
                tl::send(ring.next, &x);
            }
            tl::store(buf.offset(base + off), &x);
        }
    }
}

/// [`ring_allreduce`]: `2 (p - 1)` steps of `bytes / p` round the ring
/// ([`cost::ring_allreduce_on`]).
pub const RING_ALLREDUCE: Builtin = Builtin {
    kernel: &ring_allreduce,
    collective: Collective::AllReduce,
    maps: &[MapKind::Ring],
    cost: |m| {
        cost::ring_allreduce_on(
            &PeFigures::of(m.topo),
            m.ranks(),
            m.bytes,
            m.seg(),
            m.measure_ring(&[Dir::E]),
        )
    },
    leaves_out: Some(
        concat!(
            held_link!(),
            "; slots in SRAM drain through the cube's one SRAM port, which the model gives each channel whole"
        ),
    ),
};

/// [`reduce_scatter`]: half a ring all-reduce, each step loading and
/// combining ([`cost::ring_reduce_scatter`]).
pub const REDUCE_SCATTER: Builtin = Builtin {
    kernel: &reduce_scatter,
    collective: Collective::ReduceScatter,
    maps: &[MapKind::Ring],
    cost: |m| {
        cost::ring_reduce_scatter(
            &PeFigures::of(m.topo),
            m.ranks(),
            m.bytes,
            m.seg(),
            m.measure_ring(&[Dir::E]),
        )
    },
    leaves_out: Some(held_link!()),
};

/// [`all_gather`]: the other half, each step forwarding while DMA_WB
/// stores ([`cost::ring_all_gather`]).
pub const ALL_GATHER: Builtin = Builtin {
    kernel: &all_gather,
    collective: Collective::AllGather,
    maps: &[MapKind::Ring],
    cost: |m| {
        cost::ring_all_gather(
            &PeFigures::of(m.topo),
            m.ranks(),
            m.bytes,
            m.seg(),
            m.measure_ring(&[Dir::E]),
        )
    },
    leaves_out: Some(held_link!()),
};

/// [`broadcast`]: a chain along the ring in pieces ([`chain_broadcast_ring`]).
pub const BROADCAST: Builtin = Builtin {
    kernel: &broadcast,
    collective: Collective::Broadcast,
    maps: &[MapKind::Ring],
    cost: |m| {
        // The root loads its first piece before sending it; the last rank
        // stores the last piece after it lands.
        let pe = PeFigures::of(m.topo);
        let piece = m.bytes / m.pieces.max(1) as f64;
        let ends = if m.ranks() > 1 {
            2.0 * (pe.issue(1.0) + pe.hbm_op(piece))
        } else {
            crate::cost::Cost::zero()
        };
        ends + chain_broadcast_ring(m.ranks(), m.bytes, m.pieces, m.measure_ring(&[Dir::E]))
    },
    leaves_out: Some(
        "a few ns a hop at small sizes on several SIPs that the model does not attribute",
    ),
};
