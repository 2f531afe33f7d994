//! Pieces shared by the algorithms: chunking, reduction, ring phases.
//!
//! Every collective works on one vector of `n` elements per rank, stored at
//! `buf[rank * n ..]` (the buffer is sharded so that each rank's vector lives
//! in its own PE's HBM slice). A vector is cut into `w` chunks (the first
//! `n % w` one element longer), and each chunk into pieces of at most `seg`
//! elements, the unit of one message. Pieces move in windows of `WINDOW`:
//! a rank posts the receives of a window before it sends, so a sender never
//! waits on a receiver that has not asked, and it sends window `k + 1` while
//! it consumes window `k`, so the links stay busy.

use kernbench_tl::prelude::*;
use kernbench_tl::Element;

/// Pieces per window.
pub const WINDOW: usize = 4;

/// Reduction operators (the `op` argument of the kernels).
pub mod redop {
    /// Sum.
    pub const SUM: u32 = 0;
    /// Maximum.
    pub const MAX: u32 = 1;
    /// Minimum.
    pub const MIN: u32 = 2;
}

/// Start and length of chunk `c` of `n` elements cut into `w` chunks.
pub fn chunk(n: usize, w: usize, c: usize) -> (usize, usize) {
    let (q, r) = (n / w, n % w);
    let start = c * q + c.min(r);
    (start, q + usize::from(c < r))
}

/// The pieces `(offset, len)` of the region `[start, start + len)`, at most `seg` elements each.
pub fn pieces(start: usize, len: usize, seg: usize) -> Vec<(usize, usize)> {
    let seg = seg.max(1);
    (0..len.div_ceil(seg))
        .map(|k| (start + k * seg, seg.min(len - k * seg)))
        .collect()
}

/// `a (op) b` elementwise.
#[kernel_fn]
pub fn combine<T: Element>(a: &Tile<T>, b: &Tile<T>, op: u32) -> Tile<T> {
    if op == redop::MAX {
        tl::maximum(a, b)
    } else if op == redop::MIN {
        tl::minimum(a, b)
    } else {
        a + b
    }
}

/// One ring in a logical direction pair: this rank's position and the ring's size.
#[derive(Clone, Copy, Debug)]
pub struct Ring {
    /// Direction of the next rank.
    pub next: Dir,
    /// Direction of the previous rank.
    pub prev: Dir,
    /// This rank's position on the ring.
    pub rank: usize,
    /// Ranks on the ring.
    pub size: usize,
}

/// What a step does with a received piece.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consume {
    /// Combine it with the local piece and store the result.
    Reduce(u32),
    /// Store it.
    Copy,
}

/// One ring step: send the pieces of chunk region `out` to `next` while
/// receiving the pieces of region `inc` from `prev`, windowed and double buffered.
#[kernel_fn]
pub fn ring_step<T: Element>(buf: Ptr<T>, base: usize, ring: Ring, out: &[(usize, usize)], inc: &[(usize, usize)], how: Consume) {
    let windows = out.len().max(inc.len()).div_ceil(WINDOW);
    let mut pending: Vec<(RecvFuture<T>, (usize, usize))> = Vec::new();
    for k in 0..windows {
        if k == 0 {
            post_and_send(buf, base, ring, &out_window(out, 0), &out_window(inc, 0), &mut pending);
        }
        let current: Vec<(RecvFuture<T>, (usize, usize))> = std::mem::take(&mut pending);
        if k + 1 < windows {
            post_and_send(buf, base, ring, &out_window(out, k + 1), &out_window(inc, k + 1), &mut pending);
        }
        for (f, (off, len)) in current {
            let x = tl::wait(f);
            let dst = buf.offset(base + off);
            match how {
                Consume::Copy => tl::store(dst, &x),
                Consume::Reduce(op) => {
                    let mine = tl::load(dst, [len]);
                    tl::store(dst, &combine(&x, &mine, op));
                }
            }
        }
    }
}

/// The `k`-th window of a piece list.
pub fn out_window(v: &[(usize, usize)], k: usize) -> Vec<(usize, usize)> {
    v.iter().copied().skip(k * WINDOW).take(WINDOW).collect()
}

/// Posts the receives of one window, then sends its pieces.
#[kernel_fn]
pub fn post_and_send<T: Element>(
    buf: Ptr<T>,
    base: usize,
    ring: Ring,
    out: &[(usize, usize)],
    inc: &[(usize, usize)],
    pending: &mut Vec<(RecvFuture<T>, (usize, usize))>,
) {
    for (off, len) in inc {
        pending.push((tl::recv_async::<T>(ring.prev, [*len]), (*off, *len)));
    }
    for (off, len) in out {
        let x = tl::load(buf.offset(base + off), [*len]);
        tl::send(ring.next, &x);
    }
}

/// Reduce-scatter over a ring on the region `[start, start + len)` of this
/// rank's vector: afterwards chunk `(rank + f) mod size` of the region holds
/// the reduction over the ring.
#[kernel_fn]
pub fn ring_reduce_scatter<T: Element>(buf: Ptr<T>, base: usize, region: (usize, usize), ring: Ring, f: usize, seg: usize, op: u32) {
    let w = ring.size;
    let (start, len) = region;
    for s in 0..w.saturating_sub(1) {
        let cs = (ring.rank + f + 2 * w - 1 - s) % w;
        let cr = (ring.rank + f + 2 * w - 2 - s) % w;
        let (os, ls) = chunk(len, w, cs);
        let (or, lr) = chunk(len, w, cr);
        let out = pieces(start + os, ls, seg);
        let inc = pieces(start + or, lr, seg);
        ring_step(buf, base, ring, &out, &inc, Consume::Reduce(op));
    }
}

/// All-gather over a ring on a region: chunk `(rank + f) mod size` is this
/// rank's to start with; afterwards every chunk is everywhere.
#[kernel_fn]
pub fn ring_all_gather<T: Element>(buf: Ptr<T>, base: usize, region: (usize, usize), ring: Ring, f: usize, seg: usize) {
    let w = ring.size;
    let (start, len) = region;
    for s in 0..w.saturating_sub(1) {
        let cs = (ring.rank + f + w - s) % w;
        let cr = (ring.rank + f + 2 * w - 1 - s) % w;
        let (os, ls) = chunk(len, w, cs);
        let (or, lr) = chunk(len, w, cr);
        let out = pieces(start + os, ls, seg);
        let inc = pieces(start + or, lr, seg);
        ring_step(buf, base, ring, &out, &inc, Consume::Copy);
    }
}
