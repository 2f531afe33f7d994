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
use kernbench_tl::prelude::*;
use kernbench_tl::Element;

/// The rank of relative rank `q` among `w` ranks rooted at `root`.
pub fn absolute(w: usize, root: usize, q: usize) -> usize {
    (q + root) % w
}

/// Binomial reduce of `n` elements per rank: the root ends with the
/// reduction of every rank's vector (rank `r`'s at `buf[r n..]`); the
/// other ranks' vectors end with partial results.
#[kernel_fn]
pub fn binomial_reduce<T: Element>(buf: Ptr<T>, n: usize, seg: usize, op: RedOp, root: usize) {
    let (w, r) = (tl::num_ranks(), tl::rank());
    let base = r * n;
    let q = (r + w - root % w) % w;
    let whole = pieces(0, n, seg);
    for k in 0..steps(w) {
        let d = 1 << k;
        if q & d != 0 {
            let to = absolute(w, root, q - d);
            exchange(buf, base, to, &whole, to, &[], Landing::Store);
            return;
        }
        if q + d < w {
            let from = absolute(w, root, q + d);
            // The lower relative rank's partial goes on the left.
            let land = Landing::Combine {
                op,
                theirs_first: false,
            };
            exchange(buf, base, from, &[], from, &whole, land);
        }
    }
}

/// Binomial gather of `n` elements per rank: rank `r` contributes chunk `r`
/// of its vector (at `buf[r n..]`), and the root ends with every chunk.
/// A rank's subtree is the run of relative ranks `q .. q + d`, so what it
/// forwards is one run of chunks, at most two regions of its vector.
#[kernel_fn]
pub fn binomial_gather<T: Element>(buf: Ptr<T>, n: usize, seg: usize, root: usize) {
    let (w, r) = (tl::num_ranks(), tl::rank());
    let base = r * n;
    let q = (r + w - root % w) % w;
    for k in 0..steps(w) {
        let d = 1 << k;
        if q & d != 0 {
            let to = absolute(w, root, q - d);
            let mine = block_pieces(n, w, r, d.min(w - q), seg);
            exchange(buf, base, to, &mine, to, &[], Landing::Store);
            return;
        }
        if q + d < w {
            let from = absolute(w, root, q + d);
            let theirs = block_pieces(n, w, from, d.min(w - q - d), seg);
            exchange(buf, base, from, &[], from, &theirs, Landing::Store);
        }
    }
}
