//! Ring algorithms: all-reduce (reduce-scatter then all-gather), reduce-scatter,
//! all-gather, and a pipelined chain broadcast.

use super::common::*;
use kernbench_tl::prelude::*;
use kernbench_tl::Element;

fn ring(w: usize, r: usize) -> Ring {
    Ring {
        next: Dir::E,
        prev: Dir::W,
        rank: r,
        size: w,
    }
}

/// Ring all-reduce of `n` elements per rank.
#[kernel_fn]
pub fn ring_allreduce<T: Element>(buf: Ptr<T>, n: usize, seg: usize, op: RedOp) {
    let (w, r) = (tl::num_programs(0), tl::program_id(0));
    ring_all_reduce(buf, r * n, (0, n), ring(w, r), seg, op);
}

/// Ring reduce-scatter: rank `r` ends with the reduction of chunk `r`.
#[kernel_fn]
pub fn ring_reduce_scatter_kernel<T: Element>(buf: Ptr<T>, n: usize, seg: usize, op: RedOp) {
    let (w, r) = (tl::num_programs(0), tl::program_id(0));
    ring_reduce_scatter(buf, r * n, (0, n), ring(w, r), 0, seg, op);
}

/// Ring all-gather: rank `r` starts with chunk `r` and ends with every chunk.
#[kernel_fn]
pub fn ring_all_gather_kernel<T: Element>(buf: Ptr<T>, n: usize, seg: usize) {
    let (w, r) = (tl::num_programs(0), tl::program_id(0));
    ring_all_gather(buf, r * n, (0, n), ring(w, r), 0, seg);
}

/// Pipelined chain broadcast from `root` along the ring.
#[kernel_fn]
pub fn ring_broadcast<T: Element>(buf: Ptr<T>, n: usize, seg: usize, root: usize) {
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
