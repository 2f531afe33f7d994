//! The algorithms, written in the kernel language, and their kernels per element type.

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

use kernbench_tl::prelude::*;

macro_rules! kernels {
    ($doc:literal, $body:path, $extra:tt; $($name:ident: $t:ty),* $(,)?) => {$(
        one_kernel!($doc, $body, $extra, $name, $t);
    )*};
}

macro_rules! one_kernel {
    ($doc:literal, $body:path, ($($extra:ident),*), $name:ident, $t:ty) => {
        #[doc = $doc]
        #[doc = concat!("\n\nElements of type `", stringify!($t), "`.")]
        #[kernel]
        pub fn $name(buf: Ptr<$t>, n: usize, #[constexpr] seg: usize, $($extra: usize),*) {
            $body(buf, n, seg, $($extra as _),*);
        }
    };
}

kernels!("Ring all-reduce: reduce-scatter then all-gather, pipelined in windows of pieces.",
    ring::ring_allreduce, (op);
    ring_allreduce_f32: f32, ring_allreduce_f16: f16, ring_allreduce_bf16: bf16, ring_allreduce_i32: i32);
kernels!("Ring reduce-scatter: rank `r` ends with the reduction of chunk `r` of the vector.",
    ring::ring_reduce_scatter_kernel, (op);
    reduce_scatter_f32: f32, reduce_scatter_f16: f16, reduce_scatter_bf16: bf16, reduce_scatter_i32: i32);
kernels!("Ring all-gather: rank `r` contributes chunk `r` of the vector and ends with all of it.",
    ring::ring_all_gather_kernel, ();
    all_gather_f32: f32, all_gather_f16: f16, all_gather_bf16: bf16, all_gather_i32: i32);
kernels!("Pipelined chain broadcast of the root's vector along the ring.",
    ring::ring_broadcast, (root);
    broadcast_f32: f32, broadcast_f16: f16, broadcast_bf16: bf16, broadcast_i32: i32);
kernels!("Tree all-reduce over a heap-ordered binary tree: reduce up, broadcast down.",
    tree::tree_allreduce, (op);
    tree_allreduce_f32: f32, tree_allreduce_f16: f16, tree_allreduce_bf16: bf16, tree_allreduce_i32: i32);
kernels!("2D all-reduce on a torus: reduce-scatter along rows, all-reduce down columns, all-gather along rows.",
    mesh::mesh_allreduce, (op, cols);
    mesh_allreduce_f32: f32, mesh_allreduce_f16: f16, mesh_allreduce_bf16: bf16, mesh_allreduce_i32: i32);
kernels!("Hierarchical all-reduce: inside each cube, across cubes, across SIPs, and back.",
    hierarchical::hierarchical_allreduce, (op, pes, cubes);
    hierarchical_allreduce_f32: f32, hierarchical_allreduce_f16: f16, hierarchical_allreduce_bf16: bf16, hierarchical_allreduce_i32: i32);
kernels!("Inter-cube all-reduce: one PE per cube, a tree inside each SIP rooted at the centre cube, the SIP roots over a ring, torus or mesh.",
    intercube::intercube_allreduce, (op, cubes, sip_cols, net);
    intercube_allreduce_f32: f32, intercube_allreduce_f16: f16, intercube_allreduce_bf16: bf16, intercube_allreduce_i32: i32);
kernels!("Recursive-doubling all-reduce addressed by rank: `log2 w` pairwise exchanges, with the ranks past a power of two folded in first.",
    doubling::recursive_doubling_allreduce, (op);
    recursive_doubling_f32: f32, recursive_doubling_f16: f16, recursive_doubling_bf16: bf16, recursive_doubling_i32: i32);
kernels!("Rabenseifner all-reduce addressed by rank: a reduce-scatter by recursive halving, then an all-gather by recursive doubling, with the ranks past a power of two folded in first.",
    halving::rabenseifner_allreduce, (op);
    rabenseifner_f32: f32, rabenseifner_f16: f16, rabenseifner_bf16: bf16, rabenseifner_i32: i32);
kernels!("Bruck all-gather addressed by rank: `ceil(log2 w)` steps, the step at distance `d` sending `min(d, w - d)` chunks to rank `r - d`.",
    bruck::bruck_all_gather, ();
    bruck_allgather_f32: f32, bruck_allgather_f16: f16, bruck_allgather_bf16: bf16, bruck_allgather_i32: i32);
kernels!("Binomial-tree reduce to a root, addressed by rank: `ceil(log2 w)` store-and-forward steps.",
    rooted::binomial_reduce, (op, root);
    binomial_reduce_f32: f32, binomial_reduce_f16: f16, binomial_reduce_bf16: bf16, binomial_reduce_i32: i32);
kernels!("Binomial-tree gather to a root, addressed by rank: each rank forwards its subtree's run of chunks.",
    rooted::binomial_gather, (root);
    binomial_gather_f32: f32, binomial_gather_f16: f16, binomial_gather_bf16: bf16, binomial_gather_i32: i32);
kernels!("Pairwise-exchange all-to-all addressed by rank: every pair of ranks swaps its blocks in one of `w - 1` rounds (`w` for odd `w`).",
    alltoall::pairwise_all_to_all, ();
    pairwise_alltoall_f32: f32, pairwise_alltoall_f16: f16, pairwise_alltoall_bf16: bf16, pairwise_alltoall_i32: i32);
kernels!("Double binary tree all-reduce addressed by rank (NCCL's): two complementary trees, each reducing and broadcasting half of the vector, pipelined piece by piece.",
    dtree::double_tree_allreduce, (op);
    double_tree_f32: f32, double_tree_f16: f16, double_tree_bf16: bf16, double_tree_i32: i32);
kernels!("Hierarchical reduce-scatter addressed by rank: a ring inside each group of `pes` ranks (a cube), then rings across the cubes of a SIP, then across SIPs; rank `r` ends with the reduction of chunk `r`.",
    hierring::hierarchical_reduce_scatter, (op, pes, cubes);
    hier_reduce_scatter_f32: f32, hier_reduce_scatter_f16: f16, hier_reduce_scatter_bf16: bf16, hier_reduce_scatter_i32: i32);
kernels!("Hierarchical all-gather addressed by rank: rings across SIPs, then across the cubes of a SIP, then inside each cube of `pes` ranks; rank `r` contributes chunk `r` and ends with all of them.",
    hierring::hierarchical_all_gather, (pes, cubes);
    hier_all_gather_f32: f32, hier_all_gather_f16: f16, hier_all_gather_bf16: bf16, hier_all_gather_i32: i32);
