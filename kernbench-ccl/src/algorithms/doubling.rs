//! Recursive-doubling all-reduce, addressed by rank: in step `k` each rank
//! swaps its partial result with rank `r ^ 2^k` and combines the two, so after
//! `log2 w` steps every rank holds the reduction of all `w` vectors.
//!
//! A world size that is not a power of two is folded in first, as MPICH does:
//! with `p` the largest power of two below `w` and `extra = w - p`, each even
//! rank `2i < 2 extra` hands its vector to rank `2i + 1` and sits out; the
//! other `p` ranks run the doubling steps as virtual ranks `0..p`; the odd
//! ranks then hand the result back to their even neighbours.
//!
//! The vector moves piece by piece (at most `seg` elements a message); every
//! piece runs all steps, so the pieces pipeline through the butterfly. Each
//! step posts its receive before it sends, so no send waits on a receiver
//! that has not asked.

use super::common::*;
use super::rooted::Group;
use kernbench_tl::prelude::*;
use kernbench_tl::Element;

/// The role of rank `r` of `w` in the fold-in: `Fold(to)` hands its vector to
/// rank `to` and sits out the doubling; `Virtual(v, helper)` takes part as
/// virtual rank `v`, with `helper` the rank whose vector it folds in first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Sends its vector to this rank, then receives the result from it.
    Fold(usize),
    /// Virtual rank `v` of the doubling, with the rank it folds in (if any).
    Virtual(usize, Option<usize>),
}

/// The largest power of two not above `w` (`w >= 1`).
pub fn pow2_floor(w: usize) -> usize {
    1 << (usize::BITS - 1 - w.max(1).leading_zeros())
}

/// Rank `r`'s role among `w` ranks.
pub fn role(w: usize, r: usize) -> Role {
    let extra = w - pow2_floor(w);
    if r < 2 * extra {
        if r % 2 == 0 {
            Role::Fold(r + 1)
        } else {
            Role::Virtual(r / 2, Some(r - 1))
        }
    } else {
        Role::Virtual(r - extra, None)
    }
}

/// The real rank of virtual rank `v` among `w` ranks.
pub fn real_rank(w: usize, v: usize) -> usize {
    let extra = w - pow2_floor(w);
    if v < extra {
        2 * v + 1
    } else {
        v + extra
    }
}

/// Recursive-doubling all-reduce of `n` elements per rank (rank `r`'s vector at `buf[r n..]`).
#[kernel_fn]
pub fn recursive_doubling_allreduce<T: Element>(buf: Ptr<T>, n: usize, seg: usize, op: RedOp) {
    let g = Group::launch();
    recursive_doubling_allreduce_in(buf, g.r * n, n, seg, op, g);
}

/// Recursive-doubling all-reduce among the ranks of `g`, this rank's `n`
/// elements at `buf[base..]`.
#[kernel_fn]
pub fn recursive_doubling_allreduce_in<T: Element>(
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
    match role(w, r) {
        Role::Fold(to) => {
            for (off, len) in pieces(0, n, seg) {
                let x = tl::load(buf.offset(base + off), [len]);
                let back = tl::recv_async::<T>(g.peer(to), [len]);
                tl::send(g.peer(to), &x);
                tl::store(buf.offset(base + off), &tl::wait(back));
            }
        }
        Role::Virtual(v, helper) => {
            for (off, len) in pieces(0, n, seg) {
                let mut acc = tl::load(buf.offset(base + off), [len]);
                if let Some(h) = helper {
                    acc = combine(&tl::recv::<T>(g.peer(h), [len]), &acc, op);
                }
                for k in 0..p.trailing_zeros() {
                    let bit = 1 << k;
                    let partner = real_rank(w, v ^ bit);
                    let theirs = tl::recv_async::<T>(g.peer(partner), [len]);
                    tl::send(g.peer(partner), &acc);
                    let theirs = tl::wait(theirs);
                    // The lower virtual rank's partial goes first, so both
                    // partners compute the same value in the same order.
                    acc = if v & bit == 0 {
                        combine(&acc, &theirs, op)
                    } else {
                        combine(&theirs, &acc, op)
                    };
                }
                if let Some(h) = helper {
                    tl::send(g.peer(h), &acc);
                }
                tl::store(buf.offset(base + off), &acc);
            }
        }
    }
}

/// Recursive-doubling all-reduce addressed by rank: `log2 w` pairwise exchanges, with the ranks past a power of two folded in first.
#[kernel]
pub fn recursive_doubling<T: Element>(
    buf: Ptr<T>,
    n: usize,
    #[constexpr] seg: usize,
    #[constexpr] op: RedOp,
) {
    recursive_doubling_allreduce(buf, n, seg, op);
}

/// `middle`, steps among the largest power of two of `pes`' ranks, between
/// the fold-in of the ranks past it (each sends its vector of `bytes` to its
/// partner; `hbm.0` bytes of HBM traffic) and the fold-out (each gets the
/// result back; `hbm.1`), as [`recursive_doubling_allreduce`]
/// arranges them.
pub(crate) fn with_folds(
    pes: &[kernbench_core::PeId],
    bytes: f64,
    hbm: (f64, f64),
    middle: Vec<crate::cost::Step>,
) -> Vec<crate::cost::Step> {
    let w = pes.len();
    let fold: Vec<(kernbench_core::PeId, kernbench_core::PeId, f64)> = (0..w)
        .filter_map(|r| match role(w, r) {
            Role::Fold(to) => Some((pes[r], pes[to], bytes)),
            Role::Virtual(..) => None,
        })
        .collect();
    if fold.is_empty() {
        return middle;
    }
    let back = fold.iter().map(|&(a, b, x)| (b, a, x)).collect();
    let step = |msgs, hbm_bytes| crate::cost::Step {
        msgs,
        hbm_bytes,
        issue_ns: 0.0,
        lead: None,
    };
    let mut steps = vec![step(fold, hbm.0)];
    steps.extend(middle);
    steps.push(step(back, hbm.1));
    steps
}

/// The exchanges at distance `d` among the virtual ranks of `pes` (the
/// largest power of two of them), `x` bytes each way.
pub(crate) fn exchanges(
    pes: &[kernbench_core::PeId],
    d: usize,
    x: f64,
) -> Vec<(kernbench_core::PeId, kernbench_core::PeId, f64)> {
    let w = pes.len();
    (0..pow2_floor(w))
        .map(|v| (pes[real_rank(w, v)], pes[real_rank(w, v ^ d)], x))
        .collect()
}

/// The steps of the recursive-doubling all-reduce of one piece of `bytes`
/// over `pes` (see [`recursive_doubling_allreduce`]): the fold-in
/// of the ranks past a power of two, one exchange of the whole piece at
/// each distance, and the fold-out. Partials stay in TCM between steps:
/// only the first load and the last store reach HBM.
pub fn doubling_steps(pes: &[kernbench_core::PeId], bytes: f64) -> Vec<crate::cost::Step> {
    let w = pes.len();
    if w <= 1 {
        return Vec::new();
    }
    let log = pow2_floor(w).trailing_zeros();
    let middle = (0..log)
        .map(|k| crate::cost::Step {
            msgs: exchanges(pes, 1 << k, bytes),
            hbm_bytes: 0.0,
            issue_ns: 0.0,
            lead: None,
        })
        .collect();
    with_folds(pes, bytes, (0.0, 0.0), middle)
}

/// [`recursive_doubling`]: the steps of each piece ([`doubling_steps`]),
/// one piece after another: a rank's comm DMA runs its sends in order, so
/// a piece's first send waits for the last send of the piece before, which
/// waits for that piece's exchanges.
pub const RECURSIVE_DOUBLING: super::Builtin = super::Builtin {
    kernel: &recursive_doubling,
    collective: crate::Collective::AllReduce,
    maps: &[crate::MapKind::Ranks],
    cost: |m| {
        let k = m.pieces as f64;
        k * crate::cost::steps_ns(m.topo, &doubling_steps(m.pes, m.bytes / k))
    },
    leaves_out: Some(
        "links held while a transfer waits on a slower link further on (wormhole); the model charges each link its own bytes only",
    ),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_in_pairs_every_extra_rank_with_a_virtual_one() {
        for w in 1..70 {
            let p = pow2_floor(w);
            assert!(p <= w && 2 * p > w, "w {w} p {p}");
            let mut virtuals = vec![None; p];
            for r in 0..w {
                match role(w, r) {
                    Role::Fold(to) => assert_eq!(role(w, to), Role::Virtual(to / 2, Some(r))),
                    Role::Virtual(v, _) => {
                        assert!(virtuals[v].is_none(), "w {w}: virtual rank {v} twice");
                        virtuals[v] = Some(r);
                        assert_eq!(real_rank(w, v), r);
                    }
                }
            }
            assert!(virtuals.iter().all(Option::is_some), "w {w}");
        }
    }
}
