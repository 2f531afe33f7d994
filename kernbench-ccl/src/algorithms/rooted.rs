//! Reduce and gather to a root over a binomial tree, addressed by rank.
//!
//! Ranks are numbered relative to the root, `q = (r - root) mod w`. In the
//! step at distance `d` (`1, 2, 4, ..`), a rank whose lowest set bit of `q`
//! is `d` sends what it holds to `q - d` and is done; a rank with no bit set
//! below `2d` receives from `q + d`, when that rank exists. After
//! `ceil(log2 w)` steps the root holds everything. Each step is store and
//! forward: a rank sends up only once its whole subtree has arrived.

use super::bruck::{block_pieces, steps};
use super::common::*;
use super::Builtin;
use crate::cost::{steps_ns, with_leads, PeFigures, Step};
use crate::registry::{Collective, MapKind};
use kernbench_core::PeId;
use kernbench_tl::prelude::*;
use kernbench_tl::Element;

/// The rank of relative rank `q` among `w` ranks rooted at `root`.
pub fn absolute(w: usize, root: usize, q: usize) -> usize {
    (q + root) % w
}

/// Ranks `offset .. offset + w` of a launch, as a world of their own: a
/// collective among them addresses rank `q` of the group as `offset + q`.
/// (A kernel whose launch is one collective is the group at offset 0;
/// the distributed API runs one group per shard in one launch.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Group {
    /// Ranks in the group.
    pub w: usize,
    /// This rank's place in it.
    pub r: usize,
    /// The launch rank of the group's rank 0.
    pub offset: usize,
}

impl Group {
    /// The whole launch as one group.
    pub fn launch() -> Group {
        Group {
            w: tl::num_ranks(),
            r: tl::rank(),
            offset: 0,
        }
    }

    /// The launch rank of the group's rank `q`.
    pub fn peer(&self, q: usize) -> usize {
        self.offset + q
    }
}

/// Binomial-tree reduce to a root, addressed by rank: `ceil(log2 w)` store-and-forward steps.
///
/// The root ends with the reduction of every rank's vector (rank `r`'s at
/// `buf[r n..]`); the other ranks' vectors end with partial results.
#[kernel]
pub fn binomial_reduce<T: Element>(
    buf: Ptr<T>,
    n: usize,
    #[constexpr] seg: usize,
    #[constexpr] op: RedOp,
    root: usize,
) {
    let g = Group::launch();
    binomial_reduce_in(buf, g.r * n, n, seg, op, root, g);
}

/// Binomial reduce among `group` of the `n` elements at `buf[base..]`.
#[kernel_fn]
pub fn binomial_reduce_in<T: Element>(
    buf: Ptr<T>,
    base: usize,
    n: usize,
    seg: usize,
    op: RedOp,
    root: usize,
    group: Group,
) {
    let (w, r) = (group.w, group.r);
    let q = (r + w - root % w) % w;
    let whole = pieces(0, n, seg);
    for k in 0..steps(w) {
        let d = 1 << k;
        if q & d != 0 {
            let to = group.peer(absolute(w, root, q - d));
            exchange(buf, base, to, &whole, to, &[], Landing::Store);
            return;
        }
        if q + d < w {
            let from = group.peer(absolute(w, root, q + d));
            // The lower relative rank's partial goes on the left.
            let land = Landing::Combine {
                op,
                theirs_first: false,
            };
            exchange(buf, base, from, &[], from, &whole, land);
        }
    }
}

/// Binomial-tree gather to a root, addressed by rank: each rank forwards its subtree's run of chunks.
///
/// Rank `r` contributes chunk `r` of its vector (at `buf[r n..]`), and the
/// root ends with every chunk. A rank's subtree is the run of relative
/// ranks `q .. q + d`, so what it forwards is one run of chunks, at most
/// two regions of its vector.
#[kernel]
pub fn binomial_gather<T: Element>(buf: Ptr<T>, n: usize, #[constexpr] seg: usize, root: usize) {
    let g = Group::launch();
    binomial_gather_in(buf, g.r * n, n, seg, root, g);
}

/// Binomial gather among `group` of the `n` elements at `buf[base..]`.
#[kernel_fn]
pub fn binomial_gather_in<T: Element>(
    buf: Ptr<T>,
    base: usize,
    n: usize,
    seg: usize,
    root: usize,
    group: Group,
) {
    let (w, r) = (group.w, group.r);
    let q = (r + w - root % w) % w;
    for k in 0..steps(w) {
        let d = 1 << k;
        if q & d != 0 {
            let to = absolute(w, root, q - d);
            let mine = block_pieces(n, w, r, d.min(w - q), seg);
            exchange(
                buf,
                base,
                group.peer(to),
                &mine,
                group.peer(to),
                &[],
                Landing::Store,
            );
            return;
        }
        if q + d < w {
            let from = absolute(w, root, q + d);
            let theirs = block_pieces(n, w, from, d.min(w - q - d), seg);
            let f = group.peer(from);
            exchange(buf, base, f, &[], f, &theirs, Landing::Store);
        }
    }
}

/// The steps of the binomial reduce (`gather` false) or gather (`gather`
/// true) of `bytes` per rank over `pes` to rank `root` (see
/// [`binomial_reduce_in`]): at distance `d`, each relative
/// rank whose lowest set bit is `d` sends its vector (reduce) or its
/// subtree's chunks (gather) to the rank `d` below.
pub fn binomial_steps(pes: &[PeId], root: usize, bytes: f64, gather: bool) -> Vec<Step> {
    let w = pes.len();
    (0..steps(w))
        .map(|k| {
            let d = 1usize << k;
            let mut hbm = 0.0f64;
            let msgs = (0..w)
                .filter(|q| q & (2 * d - 1) == d)
                .map(|q| {
                    let x = if gather {
                        d.min(w - q) as f64 * bytes / w as f64
                    } else {
                        bytes
                    };
                    // A gather writes what arrives; a reduce reads its own
                    // vector and writes the combination.
                    hbm = hbm.max(if gather { x } else { 2.0 * x });
                    (pes[absolute(w, root, q)], pes[absolute(w, root, q - d)], x)
                })
                .collect();
            Step {
                msgs,
                hbm_bytes: hbm,
                issue_ns: 0.0,
                lead: None,
            }
        })
        .collect()
}

/// [`binomial_reduce`]: its steps ([`binomial_steps`]), modelled from root
/// 0, as for the broadcast.
pub const BINOMIAL_REDUCE: Builtin = Builtin {
    kernel: &binomial_reduce,
    collective: Collective::Reduce,
    maps: &[MapKind::Ranks],
    cost: |m| {
        let pe = PeFigures::of(m.topo);
        let steps = with_leads(binomial_steps(m.pes, 0, m.bytes, false), m.seg(), |x| {
            pe.combine_and_forward(x)
        });
        steps_ns(m.topo, &steps)
    },
    leaves_out: None,
};

/// [`binomial_gather`]: its steps ([`binomial_steps`]), from root 0.
pub const BINOMIAL_GATHER: Builtin = Builtin {
    kernel: &binomial_gather,
    collective: Collective::Gather,
    maps: &[MapKind::Ranks],
    cost: |m| {
        let pe = PeFigures::of(m.topo);
        let steps = with_leads(binomial_steps(m.pes, 0, m.bytes, true), m.seg(), |x| {
            pe.store_and_forward(x)
        });
        steps_ns(m.topo, &steps)
    },
    leaves_out: None,
};
