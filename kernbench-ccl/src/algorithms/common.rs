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
use std::collections::VecDeque;

/// Pieces per window.
pub const WINDOW: usize = 4;

/// The reduction operators (the `op` argument of the kernels): a
/// `#[constexpr]` enum parameter, so that a graph names the reduction
/// (`const op = sum`) and a kernel branches on it at trace time. Its codes,
/// as the driver and the command line pass them, are `0` sum, `1` max and
/// `2` min.
///
/// It is defined with the driver ([`crate::run::RedOp`]), which applies the
/// same operator on the host to check a data run's result.
pub use crate::run::RedOp;

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
pub fn combine<T: Element>(a: &Tile<T>, b: &Tile<T>, op: RedOp) -> Tile<T> {
    if op == RedOp::Max {
        tl::maximum(a, b)
    } else if op == RedOp::Min {
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

/// Which halves of a ring all-reduce to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phases {
    /// Reduce-scatter only: afterwards chunk `(rank + f) mod size` holds the reduction.
    ReduceScatter,
    /// All-gather only: chunk `(rank + f) mod size` is this rank's to start with.
    AllGather,
    /// Both, as one stream of messages (all-reduce).
    Both,
}

/// Largest chunk one round keeps in flight, bytes: a round's received pieces
/// wait in TCM until they are forwarded, so larger regions run in rounds.
pub const ROUND_CHUNK_BYTES: usize = 2 << 20;

/// A ring over a region of this rank's vector, as one stream of messages.
///
/// Every message is a piece; a rank sends its pieces in a fixed order and
/// its neighbour receives them in the same order. A piece received in one
/// step is combined with this rank's own piece and forwarded in the next step
/// straight from TCM (reduce-scatter), or stored and forwarded (all-gather),
/// so HBM is touched once per piece and step. Receives are posted `WINDOW`
/// messages ahead of the sends, so a sender never waits on a neighbour that
/// has not asked.
#[kernel_fn]
pub fn ring_pipeline<T: Element>(job: RingJob<T>, region: (usize, usize)) {
    let w = job.ring.size;
    if w <= 1 {
        return;
    }
    // A round keeps one chunk's worth per rank in flight.
    let per_chunk = (ROUND_CHUNK_BYTES / T::DTYPE.size()).max(1);
    let round = if job.block == 0 {
        per_chunk * w
    } else {
        per_chunk
    };
    let (start, len) = region;
    for k in 0..len.div_ceil(round) {
        let from = k * round;
        ring_round(job, (start + from, round.min(len - from)));
    }
}

/// What one ring pass does, apart from the region it covers.
#[derive(Debug)]
pub struct RingJob<T> {
    /// The buffer.
    pub buf: Ptr<T>,
    /// This rank's vector starts at `buf[base]`.
    pub base: usize,
    /// The ring.
    pub ring: Ring,
    /// Chunk `(rank + f) mod size` is this rank's (see [`Phases`]).
    pub f: usize,
    /// Elements per piece.
    pub seg: usize,
    /// Reduction operator.
    pub op: RedOp,
    /// Which halves run.
    pub phases: Phases,
    /// `0`: the region is cut into `size` chunks. Else chunk `c` is the
    /// region's range inside block `c` of `block` elements
    /// (`[c * block + start, .. + len)`): the same part of every rank's
    /// block, as a hierarchical collective moves between ranks.
    pub block: usize,
}

impl<T> Clone for RingJob<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for RingJob<T> {}

/// One round of [`ring_pipeline`].
#[kernel_fn]
pub fn ring_round<T: Element>(job: RingJob<T>, region: (usize, usize)) {
    let RingJob {
        buf,
        base,
        ring,
        f,
        seg,
        op,
        phases,
        block,
    } = job;
    let (w, r) = (ring.size, ring.rank);
    // (step kind, piece) of every message, in send order; receives mirror it.
    let rs = phases != Phases::AllGather;
    let ag = phases != Phases::ReduceScatter;
    let mut sends: Vec<(u8, (usize, usize))> = Vec::new();
    let mut recvs: Vec<(usize, usize)> = Vec::new();
    if rs {
        for s in 0..w - 1 {
            let cs = (r + f + 2 * w - 1 - s) % w;
            let cr = (r + f + 2 * w - 2 - s) % w;
            let kind = if s == 0 { 0 } else { 1 };
            for p in chunk_pieces(block, region, w, cs, seg) {
                sends.push((kind, p));
            }
            recvs.extend(chunk_pieces(block, region, w, cr, seg));
        }
    }
    if ag {
        for g in 0..w - 1 {
            let cs = (r + f + w - g) % w;
            let cr = (r + f + 2 * w - 1 - g) % w;
            let kind = if g > 0 {
                4
            } else if rs {
                3
            } else {
                2
            };
            for p in chunk_pieces(block, region, w, cs, seg) {
                sends.push((kind, p));
            }
            recvs.extend(chunk_pieces(block, region, w, cr, seg));
        }
    }
    let mut posted = 0;
    let mut pending: VecDeque<RecvFuture<T>> = VecDeque::new();
    for (idx, (kind, (off, l))) in sends.iter().enumerate() {
        let ahead = recvs.len().min(idx + WINDOW + 1);
        for (_, l) in &recvs[posted.min(ahead)..ahead] {
            pending.push_back(tl::recv_async::<T>(ring.prev, [*l]));
        }
        posted = posted.max(ahead);
        let at = buf.offset(base + off);
        let x = match kind {
            // Reduce-scatter, first step / all-gather alone: this rank's own piece.
            0 | 2 => tl::load(at, [*l]),
            // Reduce-scatter: what arrived, combined with this rank's piece.
            1 => {
                let got = tl::wait(pending.pop_front().expect("a receive per forwarded piece"));
                combine(&got, &tl::load(at, [*l]), op)
            }
            // All-gather after reduce-scatter: the final reduction, stored and sent.
            3 => {
                let got = tl::wait(pending.pop_front().expect("a receive per forwarded piece"));
                let y = combine(&got, &tl::load(at, [*l]), op);
                tl::store(at, &y);
                y
            }
            // All-gather: store what arrived and pass it on.
            _ => {
                let got = tl::wait(pending.pop_front().expect("a receive per forwarded piece"));
                tl::store(at, &got);
                got
            }
        };
        tl::send(ring.next, &x);
    }
    for (_, l) in &recvs[posted..] {
        pending.push_back(tl::recv_async::<T>(ring.prev, [*l]));
    }
    // The last step's pieces end here.
    let tail_from = recvs.len() - pending.len();
    for (k, fut) in pending.into_iter().enumerate() {
        let (off, l) = recvs[tail_from + k];
        let at = buf.offset(base + off);
        let got = tl::wait(fut);
        if ag {
            tl::store(at, &got);
        } else {
            let y = combine(&got, &tl::load(at, [l]), op);
            tl::store(at, &y);
        }
    }
}

/// The pieces of chunk `c` of a ring pass over `region` (see [`RingJob::block`]).
pub fn chunk_pieces(
    block: usize,
    region: (usize, usize),
    w: usize,
    c: usize,
    seg: usize,
) -> Vec<(usize, usize)> {
    match block {
        0 => region_pieces(region.0, region.1, w, c, seg),
        _ => pieces(c * block + region.0, region.1, seg),
    }
}

/// The pieces of chunk `c` of the region `[start, start + len)` cut into `w` chunks.
pub fn region_pieces(
    start: usize,
    len: usize,
    w: usize,
    c: usize,
    seg: usize,
) -> Vec<(usize, usize)> {
    let (o, l) = chunk(len, w, c);
    pieces(start + o, l, seg)
}

/// Reduce-scatter over a ring on the region `[start, start + len)` of this
/// rank's vector: afterwards chunk `(rank + f) mod size` of the region holds
/// the reduction over the ring.
#[kernel_fn]
pub fn ring_reduce_scatter<T: Element>(
    buf: Ptr<T>,
    base: usize,
    region: (usize, usize),
    ring: Ring,
    f: usize,
    seg: usize,
    op: RedOp,
) {
    let phases = Phases::ReduceScatter;
    ring_pipeline(
        RingJob {
            buf,
            base,
            ring,
            f,
            seg,
            op,
            phases,
            block: 0,
        },
        region,
    );
}

/// All-gather over a ring on a region: chunk `(rank + f) mod size` is this
/// rank's to start with; afterwards every chunk is everywhere.
#[kernel_fn]
pub fn ring_all_gather<T: Element>(
    buf: Ptr<T>,
    base: usize,
    region: (usize, usize),
    ring: Ring,
    f: usize,
    seg: usize,
) {
    let phases = Phases::AllGather;
    ring_pipeline(
        RingJob {
            buf,
            base,
            ring,
            f,
            seg,
            op: RedOp::Sum,
            phases,
            block: 0,
        },
        region,
    );
}

/// All-reduce over a ring on a region, as one stream.
#[kernel_fn]
pub fn ring_all_reduce<T: Element>(
    buf: Ptr<T>,
    base: usize,
    region: (usize, usize),
    ring: Ring,
    seg: usize,
    op: RedOp,
) {
    ring_pipeline(
        RingJob {
            buf,
            base,
            ring,
            f: 1,
            seg,
            op,
            phases: Phases::Both,
            block: 0,
        },
        region,
    );
}

/// The `k`-th window of a piece list.
pub fn out_window(v: &[(usize, usize)], k: usize) -> Vec<(usize, usize)> {
    v.iter().copied().skip(k * WINDOW).take(WINDOW).collect()
}

/// What becomes of a piece [`exchange`] receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Landing {
    /// It is stored where it belongs.
    Store,
    /// It is combined with this rank's piece at the same place, and the
    /// result stored; `theirs_first` puts the received piece on the left.
    Combine {
        /// Reduction operator.
        op: RedOp,
        /// Whether the received piece is the left operand.
        theirs_first: bool,
    },
}

/// One step of a rank-addressed algorithm: this rank sends the pieces `sends`
/// of its vector (at `buf[base..]`) to rank `to` and receives the pieces
/// `recvs` from rank `from`, landing each as `land` says. The two lists may
/// differ in length; the sender of `recvs` must send exactly those pieces in
/// that order. Receives are posted up to `WINDOW` pieces ahead of the sends,
/// so a send never waits on a receiver that has not asked, and piece `i`
/// lands while piece `i + 1` is on its way.
#[kernel_fn]
pub fn exchange<T: Element>(
    buf: Ptr<T>,
    base: usize,
    to: usize,
    sends: &[(usize, usize)],
    from: usize,
    recvs: &[(usize, usize)],
    land: Landing,
) {
    let mut pending: VecDeque<RecvFuture<T>> = VecDeque::new();
    let mut posted = 0;
    for i in 0..sends.len().max(recvs.len()) {
        let ahead = recvs.len().min(i + WINDOW + 1);
        for &(_, len) in &recvs[posted.min(ahead)..ahead] {
            pending.push_back(tl::recv_async::<T>(from, [len]));
        }
        posted = posted.max(ahead);
        if let Some(&(off, len)) = sends.get(i) {
            let x = tl::load(buf.offset(base + off), [len]);
            tl::send(to, &x);
        }
        if let Some(&(off, len)) = recvs.get(i) {
            let got = tl::wait(pending.pop_front().expect("a receive per piece"));
            let at = buf.offset(base + off);
            let y = match land {
                Landing::Store => got,
                Landing::Combine { op, theirs_first } => {
                    let mine = tl::load(at, [len]);
                    if theirs_first {
                        combine(&got, &mine, op)
                    } else {
                        combine(&mine, &got, op)
                    }
                }
            };
            tl::store(at, &y);
        }
    }
}
