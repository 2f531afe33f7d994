//! The algorithms, written in the kernel language, and their kernels: one
//! generic kernel per algorithm, whose element type is the buffer's.

pub mod alltoall;
pub mod bruck;
pub mod common;
pub mod doubling;
pub mod dtree;
pub mod halving;
pub mod hierarchical;
pub mod hierring;
pub mod intercube;
pub mod mesh;
pub mod ring;
pub mod rooted;
pub mod tree;

use common::RedOp;
use kernbench_tl::prelude::*;

#[doc = "Ring all-reduce: reduce-scatter then all-gather, pipelined in windows of pieces."]
#[kernel]
pub fn ring_allreduce<T: Element>(
    buf: Ptr<T>,
    n: usize,
    #[constexpr] seg: usize,
    #[constexpr] op: RedOp,
) {
    ring::ring_allreduce(buf, n, seg, op);
}

#[doc = "Ring reduce-scatter: rank `r` ends with the reduction of chunk `r` of the vector."]
#[kernel]
pub fn reduce_scatter<T: Element>(
    buf: Ptr<T>,
    n: usize,
    #[constexpr] seg: usize,
    #[constexpr] op: RedOp,
) {
    ring::ring_reduce_scatter_kernel(buf, n, seg, op);
}

#[doc = "Ring all-gather: rank `r` contributes chunk `r` of the vector and ends with all of it."]
#[kernel]
pub fn all_gather<T: Element>(buf: Ptr<T>, n: usize, #[constexpr] seg: usize) {
    ring::ring_all_gather_kernel(buf, n, seg);
}

#[doc = "Pipelined chain broadcast of the root's vector along the ring."]
#[kernel]
pub fn broadcast<T: Element>(buf: Ptr<T>, n: usize, #[constexpr] seg: usize, root: usize) {
    ring::ring_broadcast(buf, n, seg, root);
}

#[doc = "Tree all-reduce over a heap-ordered binary tree: reduce up, broadcast down."]
#[kernel]
pub fn tree_allreduce<T: Element>(
    buf: Ptr<T>,
    n: usize,
    #[constexpr] seg: usize,
    #[constexpr] op: RedOp,
) {
    tree::tree_allreduce(buf, n, seg, op);
}

#[doc = "2D all-reduce on a torus: reduce-scatter along rows, all-reduce down columns, all-gather along rows."]
#[kernel]
pub fn mesh_allreduce<T: Element>(
    buf: Ptr<T>,
    n: usize,
    #[constexpr] seg: usize,
    #[constexpr] op: RedOp,
    cols: usize,
) {
    mesh::mesh_allreduce(buf, n, seg, op, cols);
}

#[doc = "Hierarchical all-reduce: inside each cube, across cubes, across SIPs, and back."]
#[kernel]
pub fn hierarchical_allreduce<T: Element>(
    buf: Ptr<T>,
    n: usize,
    #[constexpr] seg: usize,
    #[constexpr] op: RedOp,
    pes: usize,
    cubes: usize,
) {
    hierarchical::hierarchical_allreduce(buf, n, seg, op, pes, cubes);
}

#[doc = "Inter-cube all-reduce: one PE per cube, a tree inside each SIP rooted at the centre cube, the SIP roots over a ring, torus or mesh."]
#[kernel]
pub fn intercube_allreduce<T: Element>(
    buf: Ptr<T>,
    n: usize,
    #[constexpr] seg: usize,
    #[constexpr] op: RedOp,
    cubes: usize,
    sip_cols: usize,
    net: usize,
) {
    intercube::intercube_allreduce(buf, n, seg, op, cubes, sip_cols, net);
}

#[doc = "Recursive-doubling all-reduce addressed by rank: `log2 w` pairwise exchanges, with the ranks past a power of two folded in first."]
#[kernel]
pub fn recursive_doubling<T: Element>(
    buf: Ptr<T>,
    n: usize,
    #[constexpr] seg: usize,
    #[constexpr] op: RedOp,
) {
    doubling::recursive_doubling_allreduce(buf, n, seg, op);
}

#[doc = "Rabenseifner all-reduce addressed by rank: a reduce-scatter by recursive halving, then an all-gather by recursive doubling, with the ranks past a power of two folded in first."]
#[kernel]
pub fn rabenseifner<T: Element>(
    buf: Ptr<T>,
    n: usize,
    #[constexpr] seg: usize,
    #[constexpr] op: RedOp,
) {
    halving::rabenseifner_allreduce(buf, n, seg, op);
}

#[doc = "Bruck all-gather addressed by rank: `ceil(log2 w)` steps, the step at distance `d` sending `min(d, w - d)` chunks to rank `r - d`."]
#[kernel]
pub fn bruck_allgather<T: Element>(buf: Ptr<T>, n: usize, #[constexpr] seg: usize) {
    bruck::bruck_all_gather(buf, n, seg);
}

#[doc = "Bruck reduce-scatter addressed by rank: the all-gather's `ceil(log2 w)` steps run backwards, the step at distance `d` sending the partial sums of `min(d, w - d)` chunks to rank `r + d`."]
#[kernel]
pub fn bruck_reducescatter<T: Element>(
    buf: Ptr<T>,
    n: usize,
    #[constexpr] seg: usize,
    #[constexpr] op: RedOp,
) {
    bruck::bruck_reduce_scatter(buf, n, seg, op);
}

#[doc = "Binomial-tree reduce to a root, addressed by rank: `ceil(log2 w)` store-and-forward steps."]
#[kernel]
pub fn binomial_reduce<T: Element>(
    buf: Ptr<T>,
    n: usize,
    #[constexpr] seg: usize,
    #[constexpr] op: RedOp,
    root: usize,
) {
    rooted::binomial_reduce(buf, n, seg, op, root);
}

#[doc = "Binomial-tree gather to a root, addressed by rank: each rank forwards its subtree's run of chunks."]
#[kernel]
pub fn binomial_gather<T: Element>(buf: Ptr<T>, n: usize, #[constexpr] seg: usize, root: usize) {
    rooted::binomial_gather(buf, n, seg, root);
}

#[doc = "Pairwise-exchange all-to-all addressed by rank: every pair of ranks swaps its blocks in one of `w - 1` rounds (`w` for odd `w`)."]
#[kernel]
pub fn pairwise_alltoall<T: Element>(buf: Ptr<T>, n: usize, #[constexpr] seg: usize) {
    alltoall::pairwise_all_to_all(buf, n, seg);
}

#[doc = "Double binary tree all-reduce addressed by rank (NCCL's): two complementary trees, each reducing and broadcasting half of the vector, pipelined piece by piece."]
#[kernel]
pub fn double_tree<T: Element>(
    buf: Ptr<T>,
    n: usize,
    #[constexpr] seg: usize,
    #[constexpr] op: RedOp,
) {
    dtree::double_tree_allreduce(buf, n, seg, op);
}

#[doc = "Hierarchical reduce-scatter addressed by rank: a ring inside each group of `pes` ranks (a cube), then rings across the cubes of a SIP, then across SIPs; rank `r` ends with the reduction of chunk `r`."]
#[kernel]
pub fn hier_reduce_scatter<T: Element>(
    buf: Ptr<T>,
    n: usize,
    #[constexpr] seg: usize,
    #[constexpr] op: RedOp,
    pes: usize,
    cubes: usize,
) {
    hierring::hierarchical_reduce_scatter(buf, n, seg, op, pes, cubes);
}

#[doc = "Hierarchical all-gather addressed by rank: rings across SIPs, then across the cubes of a SIP, then inside each cube of `pes` ranks; rank `r` contributes chunk `r` and ends with all of them."]
#[kernel]
pub fn hier_all_gather<T: Element>(
    buf: Ptr<T>,
    n: usize,
    #[constexpr] seg: usize,
    pes: usize,
    cubes: usize,
) {
    hierring::hierarchical_all_gather(buf, n, seg, pes, cubes);
}
