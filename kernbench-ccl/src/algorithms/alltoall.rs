//! Pairwise-exchange all-to-all, addressed by rank.
//!
//! Rank `r`'s vector (at `buf[r n..]`) is cut into `w` blocks of
//! `b = n / w` elements; block `j` goes to rank `j`, where it lands as
//! block `r`. The last `n mod w` elements are not part of the exchange and
//! stay where they are.
//!
//! Each round pairs every rank with one partner `p`, and the two swap: `r`
//! sends its block `p` and receives `p`'s block `r` into the same place. A
//! swap is what lets the exchange work in place. The shifted schedule
//! (send to `r + k`, receive from `r - k`) would land the block from
//! `r - k` on block `r - k`, which this rank has not yet sent when
//! `k < w - k`.
//!
//! For a power-of-two world the partner in round `k` is `r xor k`
//! (`w - 1` rounds). Otherwise the rounds are a round-robin tournament: with
//! `m` the world size rounded up to even, rank `m - 1` fixed and the others
//! on a circle, round `k` pairs `r` with `(k - r) mod (m - 1)`, and the rank
//! that would pair with itself with `m - 1` (`m - 1` rounds). For an odd
//! world, rank `m - 1` does not exist and its partner sits the round out.

use super::common::*;
use super::rooted::Group;
use super::Builtin;
use crate::cost::{steps_ns, Step};
use crate::registry::{Collective, MapKind};
use kernbench_core::PeId;
use kernbench_tl::prelude::*;
use kernbench_tl::Element;

/// Rounds of the exchange among `w` ranks: `w - 1`, or `w` for odd `w > 1`.
pub fn rounds(w: usize) -> usize {
    if w.is_power_of_two() {
        w - 1
    } else {
        w + (w & 1) - 1
    }
}

/// The partner of rank `r` in round `k` (`k < rounds(w)`), or `None` when
/// the rank sits the round out (odd world sizes only).
pub fn partner(w: usize, r: usize, k: usize) -> Option<usize> {
    if w.is_power_of_two() {
        return Some(r ^ (k + 1));
    }
    let m = w + (w & 1);
    let c = m - 1;
    let p = if r == c {
        // The circle rank `q` with `2 q = k (mod c)`; `m / 2` inverts 2.
        k * (m / 2) % c
    } else {
        let q = (k + c - r) % c;
        if q == r {
            c
        } else {
            q
        }
    };
    (p < w).then_some(p)
}

/// Pairwise all-to-all of `n` elements per rank: block `j` of rank `r`
/// ends as block `r` of rank `j` (blocks of `n / w` elements).
#[kernel_fn]
pub fn pairwise_all_to_all<T: Element>(buf: Ptr<T>, n: usize, seg: usize) {
    let g = Group::launch();
    pairwise_all_to_all_in(buf, g.r * n, n, seg, g);
}

/// Pairwise all-to-all among `group` of the `n` elements at `buf[base..]`.
#[kernel_fn]
pub fn pairwise_all_to_all_in<T: Element>(
    buf: Ptr<T>,
    base: usize,
    n: usize,
    seg: usize,
    group: Group,
) {
    let (w, r) = (group.w, group.r);
    let b = n / w;
    for k in 0..rounds(w) {
        if let Some(p) = partner(w, r, k) {
            let block = pieces(p * b, b, seg);
            let peer = group.peer(p);
            exchange(buf, base, peer, &block, peer, &block, Landing::Store);
        }
    }
}

/// Pairwise-exchange all-to-all addressed by rank: every pair of ranks swaps its blocks in one of `w - 1` rounds (`w` for odd `w`).
#[kernel]
pub fn pairwise_alltoall<T: Element>(buf: Ptr<T>, n: usize, #[constexpr] seg: usize) {
    pairwise_all_to_all(buf, n, seg);
}

/// The rounds of the pairwise all-to-all of `bytes` per rank over `pes`
/// (see [`pairwise_all_to_all`]): in each, every paired
/// rank swaps one block of `bytes / w` with its partner, reading the block
/// it sends and writing the one it receives.
pub fn pairwise_steps(pes: &[PeId], bytes: f64) -> Vec<Step> {
    let w = pes.len();
    let block = bytes / w.max(1) as f64;
    (0..rounds(w))
        .map(|k| Step {
            msgs: (0..w)
                .filter_map(|r| partner(w, r, k).map(|p| (pes[r], pes[p], block)))
                .collect(),
            hbm_bytes: 2.0 * block,
            issue_ns: 0.0,
            lead: None,
        })
        .collect()
}

/// [`pairwise_alltoall`]: its rounds ([`pairwise_steps`]).
pub const PAIRWISE_ALLTOALL: Builtin = Builtin {
    kernel: &pairwise_alltoall,
    collective: Collective::AllToAll,
    maps: &[MapKind::Ranks],
    cost: |m| steps_ns(m.topo, &pairwise_steps(m.pes, m.bytes)),
    leaves_out: Some(
        "links held while a transfer waits on a slower link further on (wormhole), and rounds that overlap in part",
    ),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pair_meets_once_and_the_pairing_is_mutual() {
        for w in 1..70 {
            let mut met = vec![vec![0; w]; w];
            for k in 0..rounds(w) {
                let mut idle = 0;
                for (r, row) in met.iter_mut().enumerate() {
                    match partner(w, r, k) {
                        Some(p) => {
                            assert_ne!(p, r, "w {w} k {k}");
                            assert_eq!(partner(w, p, k), Some(r), "w {w} k {k} r {r}");
                            row[p] += 1;
                        }
                        None => idle += 1,
                    }
                }
                assert_eq!(idle, w & 1, "w {w} k {k}");
            }
            for (r, row) in met.iter().enumerate() {
                for (p, &m) in row.iter().enumerate() {
                    assert_eq!(m, usize::from(p != r), "w {w}: {r} met {p} {m} times");
                }
            }
        }
    }
}
