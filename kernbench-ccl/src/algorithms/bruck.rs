//! Bruck's all-gather, addressed by rank: `ceil(log2 w)` steps for any world
//! size `w`. Before the step at distance `d` (`1, 2, 4, ..`), rank `r` holds
//! the `d` chunks `r, r+1, .., r+d-1` (mod `w`); it sends the first
//! `min(d, w - d)` of them to rank `r - d` and receives as many, starting at
//! chunk `r + d`, from rank `r + d`. Each rank sends `(w-1)/w` of the vector.
//!
//! [`bruck_reduce_scatter`] runs the same steps backwards, as their dual:
//! from the farthest distance to `1`, each rank sends the partial sums of
//! the chunks it received at that step in the all-gather to the rank it got
//! them from, which combines them into its own. Every contribution to chunk
//! `r` so reaches rank `r` once, along the reverse of the path chunk `r`
//! takes in the all-gather, in `ceil(log2 w)` steps for any `w`.
//!
//! Bruck's formulation packs the blocks a rank holds contiguously from its
//! own, and so ends with a local rotation. Here every received chunk is
//! stored at its place in the rank's vector, so the blocks of a step are at
//! most two contiguous regions (the run of chunks wraps past `w - 1`) and no
//! rotation is needed.

use super::common::*;
use super::rooted::Group;
use super::Builtin;
use crate::cost::{steps_ns, with_leads, PeFigures, Step};
use crate::registry::{Collective, MapKind};
use kernbench_core::PeId;
use kernbench_tl::prelude::*;
use kernbench_tl::Element;

/// The regions `(start, len)` of chunks `first, first+1, .., first+count-1`
/// (mod `w`) of `n` elements cut into `w` chunks: one, or two where the run wraps.
pub fn block_regions(n: usize, w: usize, first: usize, count: usize) -> Vec<(usize, usize)> {
    let first = first % w;
    let head = count.min(w - first);
    let span = |lo: usize, k: usize| {
        let (s, _) = chunk(n, w, lo);
        let (e, l) = chunk(n, w, lo + k - 1);
        (s, e + l - s)
    };
    let mut v = Vec::new();
    if head > 0 {
        v.push(span(first, head));
    }
    if count > head {
        v.push(span(0, count - head));
    }
    v
}

/// Steps of the all-gather among `w` ranks: `ceil(log2 w)`.
pub fn steps(w: usize) -> u32 {
    w.max(1).next_power_of_two().trailing_zeros()
}

/// The pieces of [`block_regions`], at most `seg` elements each.
pub fn block_pieces(
    n: usize,
    w: usize,
    first: usize,
    count: usize,
    seg: usize,
) -> Vec<(usize, usize)> {
    block_regions(n, w, first, count)
        .into_iter()
        .flat_map(|(s, l)| pieces(s, l, seg))
        .collect()
}

/// Bruck all-gather of `n` elements per rank: rank `r` contributes chunk `r`
/// of its vector (at `buf[r n..]`) and ends with every chunk.
#[kernel_fn]
pub fn bruck_all_gather<T: Element>(buf: Ptr<T>, n: usize, seg: usize) {
    let g = Group::launch();
    bruck_all_gather_in(buf, g.r * n, n, seg, g);
}

/// Bruck all-gather among the ranks of `g`, this rank's `n` elements at
/// `buf[base..]`.
#[kernel_fn]
pub fn bruck_all_gather_in<T: Element>(buf: Ptr<T>, base: usize, n: usize, seg: usize, g: Group) {
    let (w, r) = (g.w, g.r);
    for k in 0..steps(w) {
        let d = 1 << k;
        let count = d.min(w - d);
        let to = (r + w - d) % w;
        let from = (r + d) % w;
        exchange(
            buf,
            base,
            g.peer(to),
            &block_pieces(n, w, r, count, seg),
            g.peer(from),
            &block_pieces(n, w, from, count, seg),
            Landing::Store,
        );
    }
}

/// Bruck reduce-scatter of `n` elements per rank: rank `r` ends with chunk
/// `r` of its vector (at `buf[r n..]`) reduced over every rank by `op`.
///
/// Before the step at distance `d` (the largest power of two below `w`
/// first, `1` last), rank `r` holds partial sums of the chunks `r .. r+2d-1`
/// (mod `w`, at most `w` of them); it sends chunks `r+d ..` (`min(d, w-d)`
/// of them) to rank `r + d` and combines as many, from chunk `r` on, from
/// rank `r - d`. The two runs do not overlap, since `d + min(d, w-d) <= w`.
#[kernel_fn]
pub fn bruck_reduce_scatter<T: Element>(buf: Ptr<T>, n: usize, seg: usize, op: RedOp) {
    let g = Group::launch();
    bruck_reduce_scatter_in(buf, g.r * n, n, seg, op, g);
}

/// Bruck reduce-scatter among the ranks of `g`, this rank's `n` elements
/// at `buf[base..]`.
#[kernel_fn]
pub fn bruck_reduce_scatter_in<T: Element>(
    buf: Ptr<T>,
    base: usize,
    n: usize,
    seg: usize,
    op: RedOp,
    g: Group,
) {
    let (w, r) = (g.w, g.r);
    for k in (0..steps(w)).rev() {
        let d = 1 << k;
        let count = d.min(w - d);
        let to = (r + d) % w;
        let from = (r + w - d) % w;
        exchange(
            buf,
            base,
            g.peer(to),
            &block_pieces(n, w, r + d, count, seg),
            g.peer(from),
            &block_pieces(n, w, r, count, seg),
            Landing::Combine {
                op,
                theirs_first: false,
            },
        );
    }
}

/// Bruck all-gather addressed by rank: `ceil(log2 w)` steps, the step at distance `d` sending `min(d, w - d)` chunks to rank `r - d`.
#[kernel]
pub fn bruck_allgather<T: Element>(buf: Ptr<T>, n: usize, #[constexpr] seg: usize) {
    bruck_all_gather(buf, n, seg);
}

/// Bruck reduce-scatter addressed by rank: the all-gather's `ceil(log2 w)` steps run backwards, the step at distance `d` sending the partial sums of `min(d, w - d)` chunks to rank `r + d`.
#[kernel]
pub fn bruck_reducescatter<T: Element>(
    buf: Ptr<T>,
    n: usize,
    #[constexpr] seg: usize,
    #[constexpr] op: RedOp,
) {
    bruck_reduce_scatter(buf, n, seg, op);
}

/// The steps of the Bruck all-gather of `bytes` per rank over `pes` (see
/// [`bruck_all_gather`]): at distance `d`, `min(d, w - d)`
/// chunks of `bytes / w` to the rank `d` below.
pub fn bruck_steps(pes: &[PeId], bytes: f64) -> Vec<Step> {
    let w = pes.len();
    (0..steps(w))
        .map(|k| {
            let d = 1usize << k;
            let part = d.min(w - d) as f64 * bytes / w as f64;
            // Each rank reads what it sends and writes what it receives.
            Step {
                msgs: (0..w)
                    .map(|r| (pes[r], pes[(r + w - d) % w], part))
                    .collect(),
                hbm_bytes: 2.0 * part,
                issue_ns: 0.0,
                lead: None,
            }
        })
        .collect()
}

/// The steps of the Bruck reduce-scatter of `bytes` per rank over `pes`:
/// the all-gather's steps backwards, each rank sending at distance `d`
/// the partial sums of `min(d, w - d)` chunks to the rank `d` above.
pub fn bruck_reduce_scatter_steps(pes: &[PeId], bytes: f64) -> Vec<Step> {
    let w = pes.len();
    (0..steps(w))
        .rev()
        .map(|k| {
            let d = 1usize << k;
            let part = d.min(w - d) as f64 * bytes / w as f64;
            // Each rank reads what it sends, reads its own partial sums of
            // what it receives and writes their combination.
            Step {
                msgs: (0..w).map(|r| (pes[r], pes[(r + d) % w], part)).collect(),
                hbm_bytes: 3.0 * part,
                issue_ns: 0.0,
                lead: None,
            }
        })
        .collect()
}

/// [`bruck_allgather`]: its steps ([`bruck_steps`]).
pub const BRUCK_ALLGATHER: Builtin = Builtin {
    kernel: &bruck_allgather,
    collective: Collective::AllGather,
    maps: &[MapKind::Ranks],
    cost: |m| {
        let pe = PeFigures::of(m.topo);
        let steps = with_leads(bruck_steps(m.pes, m.bytes), m.seg(), |x| {
            pe.store_and_forward(x)
        });
        steps_ns(m.topo, &steps)
    },
    leaves_out: Some(
        "links held while a transfer waits on a slower link further on (wormhole); the model charges each link its own bytes only",
    ),
};

/// [`bruck_reducescatter`]: its steps ([`bruck_reduce_scatter_steps`]),
/// each followed by the combination of what it received
/// ([`combine`](crate::cost::combine)).
pub const BRUCK_REDUCESCATTER: Builtin = Builtin {
    kernel: &bruck_reducescatter,
    collective: Collective::ReduceScatter,
    maps: &[MapKind::Ranks],
    cost: |m| {
        let pe = PeFigures::of(m.topo);
        let steps = with_leads(bruck_reduce_scatter_steps(m.pes, m.bytes), m.seg(), |x| {
            pe.combine_and_forward(x)
        });
        steps_ns(m.topo, &steps)
    },
    leaves_out: Some(
        "links held while a transfer waits on a slower link further on (wormhole); the model charges each link its own bytes only",
    ),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_steps_bring_every_chunk_once() {
        for w in 1..40 {
            let n = 3 * w + 2;
            for r in 0..w {
                // Chunks this rank holds, by the steps' receives.
                let mut held = vec![false; n];
                let (s, l) = chunk(n, w, r);
                held[s..s + l].fill(true);
                let mut d = 1;
                while d < w {
                    let count = d.min(w - d);
                    // What it sends it holds.
                    for (s, l) in block_regions(n, w, r, count) {
                        assert!(held[s..s + l].iter().all(|h| *h), "w {w} r {r} d {d}");
                    }
                    for (s, l) in block_regions(n, w, r + d, count) {
                        assert!(held[s..s + l].iter().all(|h| !*h), "w {w} r {r} d {d}");
                        held[s..s + l].fill(true);
                    }
                    d *= 2;
                }
                assert!(held.iter().all(|h| *h), "w {w} r {r}");
            }
        }
    }

    #[test]
    fn the_reverse_steps_bring_each_contribution_to_its_chunk_once() {
        // Contributions as counts: part[r][c][q] is how many times rank
        // q's input to chunk c is in rank r's partial sum of chunk c.
        for w in 1..40 {
            let mut part: Vec<Vec<Vec<u32>>> = (0..w)
                .map(|r| {
                    (0..w)
                        .map(|_| (0..w).map(|q| u32::from(q == r)).collect())
                        .collect()
                })
                .collect();
            for k in (0..steps(w)).rev() {
                let d = 1usize << k;
                let count = d.min(w - d);
                let before = part.clone();
                for (r, held) in before.iter().enumerate() {
                    let to = (r + d) % w;
                    for j in 0..count {
                        let c = (r + d + j) % w;
                        // What it sends lands on the receiver's own run.
                        assert!(((c + w - to) % w) < count, "w {w} r {r} d {d}");
                        for (sum, add) in part[to][c].iter_mut().zip(&held[c]) {
                            *sum += add;
                        }
                    }
                }
            }
            for (r, sums) in part.iter().enumerate() {
                assert!(
                    sums[r].iter().all(|&m| m == 1),
                    "w {w} r {r}: {:?}",
                    sums[r]
                );
            }
        }
    }
}
