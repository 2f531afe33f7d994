//! Rabenseifner's all-reduce, addressed by rank: a reduce-scatter by
//! recursive halving, then an all-gather by recursive doubling.
//!
//! With `p` a power of two, the vector is cut into `p` chunks. In the
//! reduce-scatter, rank `v` starts with every chunk and, at distances
//! `d = 1, 2, .., p/2`, swaps half of the chunks it still holds with rank
//! `v ^ d`: it keeps the half on its side of bit `d`, combining the
//! partner's copy of it into its own, and hands the other half over. After
//! `log2 p` steps rank `v` holds one chunk (the one at `v`'s bits reversed)
//! reduced over every rank. The all-gather runs the steps backwards: at
//! distances `p/2, .., 1` each rank swaps the block of chunks it holds with
//! its partner's, doubling it. Every rank sends `2 (p-1)/p` of its vector
//! in `2 log2 p` messages (of pieces), against recursive doubling's
//! `log2 p` whole vectors.
//!
//! The distances grow while the halves shrink (MPICH's order): with ranks
//! in structural order, the halves go to the nearest ranks (the same cube)
//! and the far partners (other SIPs) get `1/p` of the vector each way.
//!
//! A world size that is not a power of two is folded in as
//! [`recursive_doubling`](super::doubling) does: each even rank below
//! `2 (w - p)` hands its vector to the next rank, sits out, and gets the
//! result back at the end.

use super::common::*;
use super::doubling::{pow2_floor, real_rank, role, Role};
use super::rooted::Group;
use super::Builtin;
use crate::cost::{steps_ns, with_leads, PeFigures, Step};
use crate::registry::{Collective, MapKind};
use kernbench_core::PeId;
use kernbench_tl::prelude::*;
use kernbench_tl::Element;

/// Start and length of the elements of chunks `[lo, hi)` of `n` elements cut into `p` chunks.
pub fn chunk_span(n: usize, p: usize, (lo, hi): (usize, usize)) -> (usize, usize) {
    let start = chunk(n, p, lo).0;
    if hi <= lo {
        return (start, 0);
    }
    let (s, l) = chunk(n, p, hi - 1);
    (start, s + l - start)
}

/// The chunk blocks virtual rank `v` of `p` keeps and gives away in the
/// reduce-scatter step at distance `d`, holding chunks `held` before it.
pub fn halve(v: usize, d: usize, held: (usize, usize)) -> ((usize, usize), (usize, usize)) {
    let (lo, hi) = held;
    let mid = lo + (hi - lo) / 2;
    if v & d == 0 {
        ((lo, mid), (mid, hi))
    } else {
        ((mid, hi), (lo, mid))
    }
}

/// The block the partner `v ^ d` holds in the all-gather step at distance
/// `d` when `v` holds `held`: the other half `v` and it split at that
/// distance in the reduce-scatter.
pub fn sibling(v: usize, d: usize, held: (usize, usize)) -> (usize, usize) {
    let (lo, hi) = held;
    let size = hi - lo;
    if v & d == 0 {
        (hi, hi + size)
    } else {
        (lo - size, lo)
    }
}

/// Rabenseifner all-reduce of `n` elements per rank (rank `r`'s vector at `buf[r n..]`).
#[kernel_fn]
pub fn rabenseifner_allreduce<T: Element>(buf: Ptr<T>, n: usize, seg: usize, op: RedOp) {
    let g = Group::launch();
    rabenseifner_allreduce_in(buf, g.r * n, n, seg, op, g);
}

/// Rabenseifner all-reduce among the ranks of `g`, this rank's `n` elements
/// at `buf[base..]`.
#[kernel_fn]
pub fn rabenseifner_allreduce_in<T: Element>(
    buf: Ptr<T>,
    base: usize,
    n: usize,
    seg: usize,
    op: RedOp,
    g: Group,
) {
    let (w, r) = (g.w, g.r);
    if w == 1 {
        return;
    }
    let p = pow2_floor(w);
    let whole = pieces(0, n, seg);
    let store = Landing::Store;
    let (v, helper) = match role(w, r) {
        Role::Fold(to) => {
            exchange(buf, base, g.peer(to), &whole, g.peer(to), &[], store);
            exchange(buf, base, g.peer(to), &[], g.peer(to), &whole, store);
            return;
        }
        Role::Virtual(v, helper) => (v, helper),
    };
    if let Some(h) = helper {
        // The helper is the lower rank: its vector goes on the left.
        let land = Landing::Combine {
            op,
            theirs_first: true,
        };
        exchange(buf, base, g.peer(h), &[], g.peer(h), &whole, land);
    }
    // Reduce-scatter by recursive halving, the distance doubling.
    let log = p.trailing_zeros();
    let mut held = (0, p);
    for k in 0..log {
        let d = 1 << k;
        let partner = real_rank(w, v ^ d);
        let (keep, give) = halve(v, d, held);
        let (gs, gl) = chunk_span(n, p, give);
        let (ks, kl) = chunk_span(n, p, keep);
        // The lower virtual rank's partial goes on the left.
        let land = Landing::Combine {
            op,
            theirs_first: v & d != 0,
        };
        exchange(
            buf,
            base,
            g.peer(partner),
            &pieces(gs, gl, seg),
            g.peer(partner),
            &pieces(ks, kl, seg),
            land,
        );
        held = keep;
    }
    // All-gather by recursive doubling, the distance halving.
    for k in (0..log).rev() {
        let d = 1 << k;
        let partner = real_rank(w, v ^ d);
        let theirs = sibling(v, d, held);
        let (lo, hi) = held;
        let (ms, ml) = chunk_span(n, p, held);
        let (ts, tlen) = chunk_span(n, p, theirs);
        exchange(
            buf,
            base,
            g.peer(partner),
            &pieces(ms, ml, seg),
            g.peer(partner),
            &pieces(ts, tlen, seg),
            store,
        );
        held = (lo.min(theirs.0), hi.max(theirs.1));
    }
    if let Some(h) = helper {
        exchange(buf, base, g.peer(h), &whole, g.peer(h), &[], store);
    }
}

/// Rabenseifner all-reduce addressed by rank: a reduce-scatter by recursive halving, then an all-gather by recursive doubling, with the ranks past a power of two folded in first.
#[kernel]
pub fn rabenseifner<T: Element>(
    buf: Ptr<T>,
    n: usize,
    #[constexpr] seg: usize,
    #[constexpr] op: RedOp,
) {
    rabenseifner_allreduce(buf, n, seg, op);
}

/// The steps of the Rabenseifner all-reduce of `bytes` per rank over `pes`
/// (see [`rabenseifner_allreduce`]): the fold-in of the ranks
/// past a power of two, the reduce-scatter halving the data as the distance
/// doubles, the all-gather back, and the fold-out.
pub fn rabenseifner_steps(pes: &[PeId], bytes: f64) -> Vec<Step> {
    let w = pes.len();
    if w <= 1 {
        return Vec::new();
    }
    let log = pow2_floor(w).trailing_zeros();
    // A reduce-scatter step reads the half it gives and the half it keeps
    // and writes the kept half back; an all-gather step reads its block and
    // writes the partner's.
    let step = |d: usize, touches: f64| {
        let x = bytes / (2 * d) as f64;
        Step {
            msgs: super::doubling::exchanges(pes, d, x),
            hbm_bytes: touches * x,
            issue_ns: 0.0,
            lead: None,
        }
    };
    let mut middle: Vec<Step> = (0..log).map(|k| step(1 << k, 3.0)).collect();
    middle.extend((0..log).rev().map(|k| step(1 << k, 2.0)));
    // A fold-in receiver reads its own vector and writes the combination.
    super::doubling::with_folds(pes, bytes, (2.0 * bytes, bytes), middle)
}

/// [`rabenseifner`]: its steps ([`rabenseifner_steps`]).
pub const RABENSEIFNER: Builtin = Builtin {
    kernel: &rabenseifner,
    collective: Collective::AllReduce,
    maps: &[MapKind::Ranks],
    cost: |m| {
        // Halving steps combine what lands; doubling steps (and the
        // fold-out) store it.
        let pe = PeFigures::of(m.topo);
        let steps = rabenseifner_steps(m.pes, m.bytes);
        let half = steps.len() / 2;
        let mut steps = with_leads(steps, m.seg(), |x| pe.store_and_forward(x));
        let reduce = with_leads(steps[..half].to_vec(), m.seg(), |x| {
            pe.combine_and_forward(x)
        });
        steps.splice(..half, reduce);
        steps_ns(m.topo, &steps)
    },
    leaves_out: Some(
        "loads and stores queue for the slice's pseudo-channels: the machine pays part of the sum of HBM and wire time, the model the larger",
    ),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halving_leaves_each_rank_one_chunk_and_doubling_gives_back_all() {
        for p in [1, 2, 4, 8, 16, 64] {
            let mut owner = vec![None; p];
            for v in 0..p {
                let mut held = (0, p);
                let mut trail = Vec::new();
                for k in 0..p.trailing_zeros() {
                    let d = 1 << k;
                    let (keep, give) = halve(v, d, held);
                    // The partner holds the same chunks before the step and
                    // keeps what this rank gives away.
                    assert_eq!(halve(v ^ d, d, held), (give, keep), "p {p} v {v} d {d}");
                    assert_eq!(keep.1 - keep.0, p / (2 * d));
                    trail.push((held, d, give));
                    held = keep;
                }
                assert_eq!(held.1 - held.0, 1, "p {p} v {v}");
                assert!(
                    owner[held.0].replace(v).is_none(),
                    "p {p}: chunk {} twice",
                    held.0
                );
                // The all-gather steps back through the same blocks.
                for (before, d, give) in trail.into_iter().rev() {
                    assert_eq!(sibling(v, d, held), give, "p {p} v {v} d {d}");
                    held = (held.0.min(give.0), held.1.max(give.1));
                    assert_eq!(held, before);
                }
            }
        }
    }

    #[test]
    fn chunk_spans_tile_the_vector() {
        for (n, p) in [(1, 4), (37, 8), (1000, 16), (5, 2)] {
            assert_eq!(chunk_span(n, p, (0, p)), (0, n));
            for c in 0..p {
                assert_eq!(chunk_span(n, p, (c, c + 1)), chunk(n, p, c));
                let (a, la) = chunk_span(n, p, (0, c));
                let (b, lb) = chunk_span(n, p, (c, p));
                assert_eq!((a, a + la), (0, b));
                assert_eq!(b + lb, n);
            }
        }
    }
}
