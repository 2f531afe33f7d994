//! The distributed API over the host runtime: collectives between ranks
//! (rank = SIP) that run as kernels on the device, and kernel launches
//! checked against a `#[kernel]`'s signature.
//!
//! Each rank's tensor lives in its own SIP, placed by a data-parallel policy
//! over cube x PE, with its own virtual address. A collective pairs the
//! ranks' shards: shard `k` of every rank forms group `k`, and group `k`
//! runs the registry algorithm's ring (or 2D torus, or tree) over its PEs,
//! one PE per SIP. All groups run in one launch on a `[world, shards]` grid, instance
//! `(r, k)` on the PE of rank `r`'s shard `k`, with the groups' neighbour
//! maps merged. The kernels take one pointer, `buf`, bound per instance
//! ([`Launch::per_instance`]): instance `(r, k)` sees rank `r`'s tensor and
//! works in place on `buf[k * n ..]`, its own shard. Nothing is staged or
//! copied on the host, and a collective takes every rank the machine has.
//!
//! Process groups ([`new_group`], [`Rank::new_group`]) run the same
//! collectives over a subset of the ranks: `r` above is then the group rank,
//! the launch covers the members' PEs only and advances only their SIPs'
//! times, and groups that do not share a rank (tensor-parallel groups, say,
//! beside data-parallel ones) meet independently. The `_in` functions take
//! a group, the `_with` functions run over every rank, and the free
//! functions ([`all_reduce`], [`broadcast`], [`all_gather`],
//! [`reduce_scatter`]) take the
//! worker's rank from the thread, as `torch.distributed` does.
//!
//! ```no_run
//! use kernbench_ccl::dist::Collectives;
//! use kernbench_core::runtime::{Placement, Runtime};
//! use kernbench_core::DType;
//!
//! let rt = Runtime::new()?; // 2 SIPs
//! rt.spawn(2, |rank| {
//!     let t = rank.full(&[4, 8], DType::F32, rank.get_rank() as f64 + 1.0, &Placement::single())?;
//!     rank.all_reduce(&t)?; // 1 + 2 everywhere, on every rank
//!     assert!(t.to_ndarray::<f32>()?.iter().all(|v| *v == 3.0));
//!     Ok(())
//! })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::algorithms::alltoall::pairwise_all_to_all_in;
use crate::algorithms::bruck::{bruck_all_gather_in, bruck_reduce_scatter_in};
use crate::algorithms::common::{
    chunk, out_window, pieces, ring_all_gather, ring_all_reduce, ring_pipeline,
    ring_reduce_scatter, Phases, Ring, RingJob,
};
use crate::algorithms::doubling::recursive_doubling_allreduce_in;
use crate::algorithms::dtree::double_tree_allreduce_in;
use crate::algorithms::halving::rabenseifner_allreduce_in;
use crate::algorithms::rooted::{binomial_gather_in, binomial_reduce_in, Group};
use crate::registry::{Algorithm, Collective, MapKind, Registry};
use crate::run::{torus_shape, RedOp};
use kernbench_core::ir::{ArgValue, KernelArgs};
use kernbench_core::neighbors::NeighborMap;
use kernbench_core::program::Program;
use kernbench_core::runtime::{
    Args, CollectiveError, DeviceTensor, LaunchHandle, LaunchSetupError, Param, ProcessGroup, Rank,
    Runtime, RuntimeError, Stream,
};
use kernbench_core::sim::{Launch, Report};
use kernbench_core::topology::Topology;
use kernbench_core::{DType, PeId};
use kernbench_tl::prelude::*;
use kernbench_tl::Kernel;
use std::collections::BTreeSet;
use std::sync::Arc;

/// The default process group of the worker on this thread: `dist::get_rank()`
/// and friends, as in `torch.distributed` (see [`kernbench_core::runtime::dist`]).
pub use kernbench_core::runtime::dist::{
    barrier, barrier_async, current, current_for, get_group_rank, get_rank, get_world_size,
    init_process_group, is_initialized, new_group,
};

/// The all-reduce algorithms that run between ranks: what the rank
/// all-reduce kernel's `algo` argument selects, and the map each needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RankAllReduce {
    /// The registry's `ring_allreduce` (`E`/`W`).
    Ring,
    /// `mesh_allreduce`: a 2D torus (`E`/`W` along rows, `S`/`N` along columns).
    Torus,
    /// `tree_allreduce`: the binary range tree (`Parent`/`Left`/`Right`).
    Tree,
    /// `recursive_doubling`, addressed by rank.
    Doubling,
    /// `rabenseifner`, addressed by rank.
    Rabenseifner,
    /// `double_tree_allreduce`, addressed by rank.
    DoubleTree,
    /// `hierarchical_allreduce`: inside each rank, then across ranks. When
    /// every shard of a rank holds the whole tensor (replicated), each
    /// shard all-reduces one chunk of it with the same shard of the other
    /// ranks (`E`/`W`), and the rank's shards then all-gather the chunks among
    /// themselves (`S`/`N`): the bytes between ranks are one copy's, not
    /// one per replica. When the shards hold different parts, each part
    /// is already one PE's chunk, and only the ring across ranks is left.
    Hierarchical,
}

impl RankAllReduce {
    const ALL: [RankAllReduce; 7] = [
        RankAllReduce::Ring,
        RankAllReduce::Torus,
        RankAllReduce::Tree,
        RankAllReduce::Doubling,
        RankAllReduce::Rabenseifner,
        RankAllReduce::DoubleTree,
        RankAllReduce::Hierarchical,
    ];

    /// The kernel argument.
    pub fn code(self) -> usize {
        self as usize
    }

    fn from_code(c: usize) -> Option<Self> {
        Self::ALL.get(c).copied()
    }

    /// The one a registry algorithm runs as between ranks: by its kernel
    /// for those addressed by rank, else by its map; `None` when it has no
    /// form between ranks.
    pub fn of(a: &Algorithm) -> Option<Self> {
        match (a.kernel.as_str(), a.topology) {
            ("recursive_doubling", MapKind::Ranks) => Some(RankAllReduce::Doubling),
            ("rabenseifner", MapKind::Ranks) => Some(RankAllReduce::Rabenseifner),
            ("double_tree", MapKind::Ranks) => Some(RankAllReduce::DoubleTree),
            (_, MapKind::Ring) => Some(RankAllReduce::Ring),
            (_, MapKind::Torus2d) => Some(RankAllReduce::Torus),
            (_, MapKind::Tree) => Some(RankAllReduce::Tree),
            (_, MapKind::Hierarchical) => Some(RankAllReduce::Hierarchical),
            _ => None,
        }
    }
}

/// How an all-gather or reduce-scatter runs between ranks: what the rank
/// kernels' `form` argument selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RankGather {
    /// A ring per shard group (`E`/`W`).
    Ring,
    /// Bruck's log-step algorithm, addressed by rank.
    Bruck,
    /// Inside each rank, then across ranks. When every shard of a rank
    /// holds the whole tensor (replicated), each shard moves one part of
    /// every rank's block across the ranks (`E`/`W`), and the rank's shards
    /// then gather the parts among themselves (`S`/`N`); otherwise the ring.
    Hierarchical,
}

impl RankGather {
    const ALL: [RankGather; 3] = [
        RankGather::Ring,
        RankGather::Bruck,
        RankGather::Hierarchical,
    ];

    /// The kernel argument.
    pub fn code(self) -> usize {
        self as usize
    }

    fn from_code(c: usize) -> Option<Self> {
        Self::ALL.get(c).copied()
    }

    /// The map its launch needs.
    fn map(self) -> MapKind {
        match self {
            RankGather::Ring => MapKind::Ring,
            RankGather::Bruck => MapKind::Ranks,
            RankGather::Hierarchical => MapKind::Hierarchical,
        }
    }
}

/// The two rings of a hierarchical collective between ranks, for instance
/// `(r, k)`: across the ranks of shard group `k` (`E`/`W`) and across the
/// `s` shards of rank `r` (`S`/`N`).
fn hierarchy(w: usize, r: usize, k: usize, s: usize) -> (Ring, Ring) {
    let across = Ring {
        next: Dir::E,
        prev: Dir::W,
        rank: r,
        size: w,
    };
    let inside = Ring {
        next: Dir::S,
        prev: Dir::N,
        rank: k,
        size: s,
    };
    (across, inside)
}

/// All-reduce of shard group `k = program_id(1)` among `num_programs(0)`
/// ranks: this instance's vector is `buf[k * n .. (k + 1) * n]`. `algo` is
/// a [`RankAllReduce`] code; a torus has `cols` columns. `replicated`: every
/// shard of a rank holds the same vector (the hierarchical form splits the
/// work between them).
#[kernel_fn]
pub fn rank_all_reduce_body<T: Element>(
    buf: Ptr<T>,
    n: usize,
    seg: usize,
    op: RedOp,
    algo: usize,
    (cols, replicated): (usize, bool),
) {
    let (w, r, k) = (tl::num_programs(0), tl::program_id(0), tl::program_id(1));
    let base = k * n;
    let (g, _) = shard_group();
    let s = tl::num_programs(1);
    let (across, inside) = hierarchy(w, r, k, s);
    match RankAllReduce::from_code(algo) {
        Some(RankAllReduce::Hierarchical) if replicated && s > 1 => {
            // Shard `k` takes chunk `k + 1` (the chunk a ring
            // reduce-scatter inside the rank would have left it), reduces
            // it across ranks, and the rank's shards gather the chunks.
            let mine = chunk(n, s, (k + 1) % s);
            ring_all_reduce(buf, base, mine, across, seg, op);
            ring_all_gather(buf, base, (0, n), inside, 1, seg);
        }
        Some(RankAllReduce::Tree) => {
            crate::algorithms::tree::tree_allreduce_at(buf, base, n, seg, op, w, r);
        }
        Some(RankAllReduce::Torus) if cols > 0 => {
            let torus = crate::algorithms::mesh::Torus {
                rank: r,
                size: w,
                cols,
            };
            crate::algorithms::mesh::torus_all_reduce(buf, base, n, seg, op, torus);
        }
        Some(RankAllReduce::Doubling) => {
            recursive_doubling_allreduce_in(buf, base, n, seg, op, g);
        }
        Some(RankAllReduce::Rabenseifner) => {
            rabenseifner_allreduce_in(buf, base, n, seg, op, g);
        }
        Some(RankAllReduce::DoubleTree) => {
            double_tree_allreduce_in(buf, base, n, seg, op, g);
        }
        Some(RankAllReduce::Ring | RankAllReduce::Torus | RankAllReduce::Hierarchical) => {
            ring_all_reduce(buf, base, (0, n), across, seg, op);
        }
        None => panic!("no all-reduce between ranks has code {algo}"),
    }
}

/// Pipelined chain broadcast of shard group `program_id(1)` from rank `root`
/// along the ring `E`/`W` (the registry's ring broadcast, per group).
#[kernel_fn]
pub fn rank_broadcast_body<T: Element>(buf: Ptr<T>, n: usize, seg: usize, root: usize) {
    let (w, r, k) = (tl::num_programs(0), tl::program_id(0), tl::program_id(1));
    if w <= 1 {
        return;
    }
    let base = k * n;
    let pos = (r + w - root % w) % w;
    let ps = pieces(0, n, seg);
    if pos == 0 {
        for (off, len) in &ps {
            let x = tl::load(buf.offset(base + off), [*len]);
            tl::send(Dir::E, &x);
        }
        return;
    }
    let windows = ps.len().div_ceil(crate::algorithms::common::WINDOW);
    let mut pending: Vec<(RecvFuture<T>, usize)> = Vec::new();
    for (off, len) in out_window(&ps, 0) {
        pending.push((tl::recv_async::<T>(Dir::W, [len]), off));
    }
    for k in 0..windows {
        let current = std::mem::take(&mut pending);
        for (off, len) in out_window(&ps, k + 1) {
            pending.push((tl::recv_async::<T>(Dir::W, [len]), off));
        }
        for (f, off) in current {
            let x = tl::wait(f);
            if pos + 1 < w {
                tl::send(Dir::E, &x);
            }
            tl::store(buf.offset(base + off), &x);
        }
    }
}

/// All-gather of shard group `k = program_id(1)`: the group's region is
/// `buf[k * w * n ..][.. w * n]`, rank `r` starts with its chunk `r` (`n`
/// elements) and ends with all of them. `form` is a [`RankGather`] code;
/// `replicated`: every shard of a rank holds the same region.
#[kernel_fn]
pub fn rank_all_gather_body<T: Element>(
    buf: Ptr<T>,
    n: usize,
    seg: usize,
    form: usize,
    replicated: bool,
) {
    let (w, r, k) = (tl::num_programs(0), tl::program_id(0), tl::program_id(1));
    let (s, base) = (tl::num_programs(1), k * w * n);
    let (across, inside) = hierarchy(w, r, k, s);
    match RankGather::from_code(form) {
        Some(RankGather::Bruck) => {
            let (g, _) = shard_group();
            bruck_all_gather_in(buf, base, w * n, seg, g);
        }
        Some(RankGather::Hierarchical) if replicated && s > 1 => {
            // Part `k` of every rank's block across the ranks, then every
            // block's parts among this rank's shards.
            let job = RingJob {
                buf,
                base,
                ring: across,
                f: 0,
                seg,
                op: RedOp::Sum,
                phases: Phases::AllGather,
                block: n,
            };
            ring_pipeline(job, chunk(n, s, k));
            for j in 0..w {
                ring_all_gather(buf, base, (j * n, n), inside, 0, seg);
            }
        }
        Some(_) => ring_all_gather(buf, base, (0, w * n), across, 0, seg),
        None => panic!("no all-gather between ranks has code {form}"),
    }
}

/// Reduce-scatter of shard group `k = program_id(1)`: the group's region is
/// `buf[k * w * n ..][.. w * n]`, and afterwards its chunk `r` (`n`
/// elements) on rank `r` holds the reduction of every rank's chunk `r`.
/// `form` and `replicated` as for [`rank_all_gather_body`].
#[kernel_fn]
pub fn rank_reduce_scatter_body<T: Element>(
    buf: Ptr<T>,
    n: usize,
    seg: usize,
    op: RedOp,
    (form, replicated): (usize, bool),
) {
    let (w, r, k) = (tl::num_programs(0), tl::program_id(0), tl::program_id(1));
    let (s, base) = (tl::num_programs(1), k * w * n);
    let (across, inside) = hierarchy(w, r, k, s);
    match RankGather::from_code(form) {
        Some(RankGather::Bruck) => {
            let (g, _) = shard_group();
            bruck_reduce_scatter_in(buf, base, w * n, seg, op, g);
        }
        Some(RankGather::Hierarchical) if replicated && s > 1 => {
            // Part `k` of every block reduced across the ranks (rank `r`
            // keeps its block's), then this rank's block's parts gathered
            // among its shards.
            let job = RingJob {
                buf,
                base,
                ring: across,
                f: 0,
                seg,
                op,
                phases: Phases::ReduceScatter,
                block: n,
            };
            ring_pipeline(job, chunk(n, s, k));
            ring_all_gather(buf, base, (r * n, n), inside, 0, seg);
        }
        Some(_) => ring_reduce_scatter(buf, base, (0, w * n), across, 0, seg, op),
        None => panic!("no reduce-scatter between ranks has code {form}"),
    }
}

/// Copies chunk `r` of shard `k = program_id(0)` of `src` (`n` elements at
/// `k * w * n + r * n`) into shard `k` of `dst` (`n` elements at `k * n`):
/// the local step after a reduce-scatter.
#[kernel_fn]
pub fn take_chunk_body<T: Element>(
    src: Ptr<T>,
    dst: Ptr<T>,
    n: usize,
    w: usize,
    r: usize,
    seg: usize,
) {
    let k = tl::program_id(0);
    for (off, len) in pieces(0, n, seg) {
        let x = tl::load(src.offset(k * w * n + r * n + off), [len]);
        tl::store(dst.offset(k * n + off), &x);
    }
}

/// The shard group `k = program_id(1)` of a rank-addressed collective: the
/// `num_programs(0)` ranks of the group are the launch ranks `k w ..`.
fn shard_group() -> (Group, usize) {
    let (w, r, k) = (tl::num_programs(0), tl::program_id(0), tl::program_id(1));
    (
        Group {
            w,
            r,
            offset: k * w,
        },
        k,
    )
}

/// Reduce of shard group `k = program_id(1)` to rank `root` over a binomial
/// tree addressed by rank (the registry's `binomial_reduce`, per group): this
/// instance's vector is `buf[k * n ..][.. n]`.
#[kernel_fn]
pub fn rank_reduce_body<T: Element>(buf: Ptr<T>, n: usize, seg: usize, op: RedOp, root: usize) {
    let (g, k) = shard_group();
    binomial_reduce_in(buf, k * n, n, seg, op, root, g);
}

/// Gather of shard group `k = program_id(1)` to rank `root` over a binomial
/// tree addressed by rank (the registry's `binomial_gather`, per group): the
/// group's region is `buf[k * w * n ..][.. w * n]`, rank `r` contributes its
/// chunk `r` (`n` elements).
#[kernel_fn]
pub fn rank_gather_body<T: Element>(buf: Ptr<T>, n: usize, seg: usize, root: usize) {
    let (g, k) = shard_group();
    binomial_gather_in(buf, k * g.w * n, g.w * n, seg, root, g);
}

/// All-to-all of shard group `k = program_id(1)` by pairwise exchange
/// addressed by rank (the registry's `pairwise_alltoall`, per group): block
/// `j` of this instance's vector `buf[k * n ..][.. n]` (blocks of `n / w`)
/// ends as block `r` of rank `j`'s.
#[kernel_fn]
pub fn rank_all_to_all_body<T: Element>(buf: Ptr<T>, n: usize, seg: usize) {
    let (g, k) = shard_group();
    pairwise_all_to_all_in(buf, k * n, n, seg, g);
}

/// Copies shard `k = program_id(0)` of `src` (`n` elements at `k * n`) into
/// chunk `r` of shard `k` of `dst` (`w * n` elements at `k * w * n`): the
/// local step of an all-gather.
#[kernel_fn]
pub fn place_chunk_body<T: Element>(
    src: Ptr<T>,
    dst: Ptr<T>,
    n: usize,
    w: usize,
    r: usize,
    seg: usize,
) {
    let k = tl::program_id(0);
    for (off, len) in pieces(0, n, seg) {
        let x = tl::load(src.offset(k * n + off), [len]);
        tl::store(dst.offset(k * w * n + r * n + off), &x);
    }
}

/// All-reduce among ranks, in place in each rank's `buf` (see [`rank_all_reduce_body`]).
#[kernel]
pub fn rank_all_reduce<T: Element>(
    buf: Ptr<T>,
    n: usize,
    #[constexpr] seg: usize,
    #[constexpr] op: RedOp,
    #[constexpr] algo: usize,
    cols: usize,
    replicated: bool,
) {
    rank_all_reduce_body(buf, n, seg, op, algo, (cols, replicated));
}

/// Broadcast among ranks from `root`, in place (see [`rank_broadcast_body`]).
#[kernel]
pub fn rank_broadcast<T: Element>(buf: Ptr<T>, n: usize, #[constexpr] seg: usize, root: usize) {
    rank_broadcast_body(buf, n, seg, root);
}

/// All-gather among ranks, in place in each rank's output (see [`rank_all_gather_body`]).
#[kernel]
pub fn rank_all_gather<T: Element>(
    buf: Ptr<T>,
    n: usize,
    #[constexpr] seg: usize,
    #[constexpr] form: usize,
    replicated: bool,
) {
    rank_all_gather_body(buf, n, seg, form, replicated);
}

/// Reduce-scatter among ranks, in place in each rank's input (see [`rank_reduce_scatter_body`]).
#[kernel]
pub fn rank_reduce_scatter<T: Element>(
    buf: Ptr<T>,
    n: usize,
    #[constexpr] seg: usize,
    #[constexpr] op: RedOp,
    #[constexpr] form: usize,
    replicated: bool,
) {
    rank_reduce_scatter_body(buf, n, seg, op, (form, replicated));
}

/// Copies this rank's chunk of each shard of `src` into `dst` (see [`take_chunk_body`]).
#[kernel]
pub fn take_chunk<T: Element>(
    src: Ptr<T>,
    dst: Ptr<T>,
    n: usize,
    w: usize,
    r: usize,
    #[constexpr] seg: usize,
) {
    take_chunk_body(src, dst, n, w, r, seg);
}

/// Copies each shard of `src` into this rank's chunk of `dst` (see [`place_chunk_body`]).
#[kernel]
pub fn place_chunk<T: Element>(
    src: Ptr<T>,
    dst: Ptr<T>,
    n: usize,
    w: usize,
    r: usize,
    #[constexpr] seg: usize,
) {
    place_chunk_body(src, dst, n, w, r, seg);
}

/// Reduce among ranks to `root`, in place in each rank's `buf` (see [`rank_reduce_body`]).
#[kernel]
pub fn rank_reduce<T: Element>(
    buf: Ptr<T>,
    n: usize,
    #[constexpr] seg: usize,
    #[constexpr] op: RedOp,
    root: usize,
) {
    rank_reduce_body(buf, n, seg, op, root);
}

/// Gather among ranks to `root`, in place in each rank's output (see [`rank_gather_body`]).
#[kernel]
pub fn rank_gather<T: Element>(buf: Ptr<T>, n: usize, #[constexpr] seg: usize, root: usize) {
    rank_gather_body(buf, n, seg, root);
}

/// All-to-all among ranks, in place in each rank's `buf` (see [`rank_all_to_all_body`]).
#[kernel]
pub fn rank_all_to_all<T: Element>(buf: Ptr<T>, n: usize, #[constexpr] seg: usize) {
    rank_all_to_all_body(buf, n, seg);
}

/// Refuses a mask tensor before a collective picks its kernel.
fn numeric(what: &str, t: &DeviceTensor) -> Result<(), RuntimeError> {
    if t.dtype().is_numeric() {
        Ok(())
    } else {
        Err(RuntimeError::Collective {
            what: what.into(),
            kind: CollectiveError::NotNumeric { dtype: t.dtype() },
        })
    }
}

/// The parameters of a `#[kernel]`, for [`Runtime::launch_checked`].
pub fn signature(kernel: &dyn Kernel) -> Vec<Param> {
    kernel
        .meta()
        .params
        .iter()
        .map(|p| Param {
            name: p.name.to_string(),
            kind: p.kind,
            dtype: p.dtype,
            generic: p.generic.map(str::to_string),
        })
        .collect()
}

/// Launches a `#[kernel]` with its arguments checked against its signature
/// before anything runs: a missing parameter, an argument of the wrong kind
/// or type, or an argument the kernel does not take is an error naming it.
/// Tensors bind as pointers or tensors as each parameter asks.
pub fn launch<K: Kernel>(
    rt: &Runtime,
    kernel: &K,
    grid: &[u32],
    args: &Args,
) -> Result<Report, RuntimeError> {
    rt.launch_checked(kernel, &signature(kernel), grid, args)
}

/// The algorithms collectives run, from a registry.
#[derive(Clone, Debug)]
pub struct Backend {
    /// The all-reduce algorithm (ring, mesh, tree, hierarchical, double
    /// tree, recursive doubling or Rabenseifner; see [`Backend::with`]).
    pub all_reduce: Algorithm,
    /// The broadcast algorithm (a `ring` broadcast).
    pub broadcast: Algorithm,
    /// The all-gather algorithm (ring, Bruck or hierarchical).
    pub all_gather: Algorithm,
    /// The reduce-scatter algorithm (ring, Bruck or hierarchical).
    pub reduce_scatter: Algorithm,
    /// The reduce algorithm (a `ranks` reduce: `binomial_reduce`).
    pub reduce: Algorithm,
    /// The gather algorithm (a `ranks` gather: `binomial_gather`).
    pub gather: Algorithm,
    /// The all-to-all algorithm (a `ranks` all-to-all: `pairwise_alltoall`).
    pub all_to_all: Algorithm,
    /// When set ([`Backend::auto`]), all-reduce, all-gather and
    /// reduce-scatter run, at each call, the algorithm of this list that the
    /// cost model predicts fastest for the call's size over the group's
    /// ranks, among those with a form between ranks, in place of the fixed
    /// ones above.
    pub tuned: Option<Arc<[Algorithm]>>,
}

impl Default for Backend {
    /// `ring_allreduce`, `broadcast`, `all_gather`, `reduce_scatter`, `binomial_reduce`,
    /// `binomial_gather` and `pairwise_alltoall` of the shipped registry.
    fn default() -> Self {
        let r = Registry::builtin();
        let get = |n: &str| {
            r.get(n)
                .expect("the shipped registry has the algorithms between ranks")
                .clone()
        };
        Backend {
            all_reduce: get("ring_allreduce"),
            broadcast: get("broadcast"),
            all_gather: get("all_gather"),
            reduce_scatter: get("reduce_scatter"),
            reduce: get("binomial_reduce"),
            gather: get("binomial_gather"),
            all_to_all: get("pairwise_alltoall"),
            tuned: None,
        }
    }
}

impl Backend {
    /// The default backend with the registry's all-reduce algorithm `name`
    /// (`ring_allreduce`, `ring_allreduce_hbm`, `mesh_allreduce`, ...).
    pub fn with_all_reduce(registry: &Registry, name: &str) -> Result<Backend, RuntimeError> {
        let a = algorithm("all_reduce", registry, name)?;
        rank_all_reduce_of(a)?;
        Backend::default().with(registry, name)
    }

    /// The default backend, with all-reduce, all-gather and reduce-scatter
    /// chosen at each call by the tuner (`-a auto`) among the registry's
    /// algorithms: the one the cost model predicts fastest for the call's
    /// size over the group's ranks (the PEs of shard group 0, one per SIP).
    pub fn auto(registry: &Registry) -> Backend {
        Backend {
            tuned: Some(registry.algorithms().into()),
            ..Backend::default()
        }
    }

    /// The algorithm a collective `c` runs for `bytes` per rank over `pes`:
    /// the tuner's pick among the algorithms that `fits` when the backend is
    /// tuned, else `fixed`.
    fn choose(
        &self,
        c: Collective,
        fixed: &Algorithm,
        topo: &Topology,
        pes: &[PeId],
        bytes: f64,
        fits: impl Fn(&Algorithm) -> bool,
    ) -> Algorithm {
        let Some(all) = &self.tuned else {
            return fixed.clone();
        };
        let fit: Vec<Algorithm> = all.iter().filter(|a| fits(a)).cloned().collect();
        let cands = crate::tune::candidates(topo, &fit, c, pes);
        crate::tune::pick(topo, &cands, pes, bytes)
            .map(|p| p.best.algo.clone())
            .unwrap_or_else(|| fixed.clone())
    }

    /// The all-gather or reduce-scatter algorithm `c` runs for `bytes` per
    /// rank among the ranks of `cs`, and the form it runs in.
    fn choose_gather_form(
        &self,
        c: Collective,
        fixed: &Algorithm,
        topo: &Topology,
        cs: &[Contribution],
        bytes: f64,
    ) -> Result<(Algorithm, RankGather), RuntimeError> {
        // The tuner weighs one PE per rank, where the hierarchical form is
        // the ring: it is chosen by name only.
        let algo = self.choose(
            c,
            fixed,
            topo,
            &group_pes(cs),
            bytes,
            |a| matches!(rank_gather_of(a, c), Ok(f) if f != RankGather::Hierarchical),
        );
        let form = rank_gather_of(&algo, c)?;
        Ok((algo, form))
    }

    /// This backend with the registry's algorithm `name` for the collective
    /// it implements, checked to have a form between ranks: all-reduce by
    /// ring, mesh, tree, hierarchical, double tree, recursive doubling or
    /// Rabenseifner;
    /// all-gather and reduce-scatter by ring, Bruck or hierarchical.
    ///
    /// ```
    /// use kernbench_ccl::dist::Backend;
    /// use kernbench_ccl::Registry;
    ///
    /// let reg = Registry::builtin();
    /// let b = Backend::default()
    ///     .with(&reg, "double_tree_allreduce")?
    ///     .with(&reg, "bruck_allgather")?;
    /// assert_eq!(b.all_gather.name, "bruck_allgather");
    /// assert!(Backend::default().with(&reg, "intercube_allreduce_ring").is_err());
    /// # Ok::<(), kernbench_core::runtime::RuntimeError>(())
    /// ```
    pub fn with(mut self, registry: &Registry, name: &str) -> Result<Backend, RuntimeError> {
        let a = algorithm("backend", registry, name)?;
        let slot = match a.collective {
            Collective::AllReduce => {
                rank_all_reduce_of(a)?;
                &mut self.all_reduce
            }
            Collective::AllGather => {
                rank_gather_of(a, Collective::AllGather)?;
                &mut self.all_gather
            }
            Collective::ReduceScatter => {
                rank_gather_of(a, Collective::ReduceScatter)?;
                &mut self.reduce_scatter
            }
            Collective::Broadcast => {
                check_algorithm(a, Collective::Broadcast, &[MapKind::Ring])?;
                &mut self.broadcast
            }
            Collective::Reduce => {
                check_algorithm(a, Collective::Reduce, &[MapKind::Ranks])?;
                &mut self.reduce
            }
            Collective::Gather => {
                check_algorithm(a, Collective::Gather, &[MapKind::Ranks])?;
                &mut self.gather
            }
            Collective::AllToAll => {
                check_algorithm(a, Collective::AllToAll, &[MapKind::Ranks])?;
                &mut self.all_to_all
            }
        };
        *slot = a.clone();
        Ok(self)
    }
}

/// The form an all-gather or reduce-scatter algorithm takes between ranks
/// (a ring, Bruck's or the hierarchical one), or why it has none.
fn rank_gather_of(a: &Algorithm, c: Collective) -> Result<RankGather, RuntimeError> {
    check_algorithm(a, c, &[MapKind::Ring, MapKind::Ranks])?;
    let (bruck, hierarchical) = match c {
        Collective::AllGather => ("bruck_allgather", "hier_all_gather"),
        _ => ("bruck_reducescatter", "hier_reduce_scatter"),
    };
    match a.topology {
        MapKind::Ring => Ok(RankGather::Ring),
        _ if a.kernel == bruck => Ok(RankGather::Bruck),
        _ if a.kernel == hierarchical => Ok(RankGather::Hierarchical),
        _ => Err(RuntimeError::Collective {
            what: c.name().into(),
            kind: CollectiveError::NoRankForm {
                algorithm: a.name.clone(),
                kernel: a.kernel.clone(),
                runs: match c {
                    Collective::AllGather => "the ring, Bruck and hierarchical all_gather",
                    _ => "the ring, Bruck and hierarchical reduce_scatter",
                },
            },
        }),
    }
}

/// The registry's algorithm `name`, for `what`.
fn algorithm<'r>(
    what: &str,
    registry: &'r Registry,
    name: &str,
) -> Result<&'r Algorithm, RuntimeError> {
    registry.get(name).map_err(|_| RuntimeError::Collective {
        what: what.into(),
        kind: CollectiveError::UnknownAlgorithm {
            name: name.into(),
            known: registry
                .algorithms()
                .iter()
                .map(|a| a.name.clone())
                .collect(),
        },
    })
}

/// The form an all-reduce algorithm takes between ranks, or why it has none.
fn rank_all_reduce_of(a: &Algorithm) -> Result<RankAllReduce, RuntimeError> {
    check_algorithm(
        a,
        Collective::AllReduce,
        &[
            MapKind::Ring,
            MapKind::Torus2d,
            MapKind::Tree,
            MapKind::Hierarchical,
            MapKind::Ranks,
        ],
    )?;
    RankAllReduce::of(a).ok_or_else(|| RuntimeError::Collective {
        what: "all_reduce".into(),
        kind: CollectiveError::NoRankForm {
            algorithm: a.name.clone(),
            kernel: a.kernel.clone(),
            runs: "the ring, mesh, tree and hierarchical all-reduce and recursive_doubling, \
                   rabenseifner and double_tree",
        },
    })
}

fn check_algorithm(a: &Algorithm, c: Collective, maps: &[MapKind]) -> Result<(), RuntimeError> {
    let err = |kind| RuntimeError::Collective {
        what: c.name().into(),
        kind,
    };
    if a.collective != c {
        return Err(err(CollectiveError::WrongCollective {
            algorithm: a.name.clone(),
            implements: a.collective.name(),
            wanted: c.name(),
        }));
    }
    if !maps.contains(&a.topology) {
        return Err(err(CollectiveError::MapKind {
            algorithm: a.name.clone(),
            map: format!("{:?}", a.topology),
            runs: maps.iter().map(|m| format!("{m:?}")).collect(),
        }));
    }
    Ok(())
}

/// What a rank brings to a collective.
#[derive(Clone, Debug)]
struct Contribution {
    rank: usize,
    va: u64,
    dtype: DType,
    storage: usize,
    shape: Vec<usize>,
    shard_len: Option<usize>,
    pes: Vec<PeId>,
    /// Every shard holds the whole tensor.
    whole: bool,
    arg: u64,
    op: Option<RedOp>,
}

impl Contribution {
    fn of(rank: usize, t: &DeviceTensor, arg: u64) -> Contribution {
        Contribution {
            rank,
            va: t.va(),
            dtype: t.dtype(),
            storage: t.storage_len(),
            shape: t.shape().to_vec(),
            shard_len: t.uniform_shard_len(),
            pes: t.shards().iter().map(|s| s.pe_id()).collect(),
            whole: whole_shards(t),
            arg,
            op: None,
        }
    }

    fn reducing(self, op: RedOp) -> Contribution {
        Contribution {
            op: Some(op),
            ..self
        }
    }
}

/// The PEs of shard group 0, one per rank in group rank order: where the
/// tuner weighs a collective between ranks.
fn group_pes(cs: &[Contribution]) -> Vec<PeId> {
    cs.iter().filter_map(|c| c.pes.first().copied()).collect()
}

/// Checks that the ranks' tensors pair up; returns (shards, shard length).
fn pair_up(
    what: &str,
    cs: &[Contribution],
    arg_name: &str,
) -> Result<(usize, usize), RuntimeError> {
    let err = |kind| RuntimeError::Collective {
        what: what.into(),
        kind,
    };
    let c0 = &cs[0];
    let Some(len) = c0.shard_len else {
        return Err(err(CollectiveError::UnequalShards { rank: c0.rank }));
    };
    for c in &cs[1..] {
        if (c.dtype, &c.shape, c.pes.len(), c.shard_len)
            != (c0.dtype, &c0.shape, c0.pes.len(), c0.shard_len)
        {
            return Err(err(CollectiveError::TensorMismatch {
                rank: c.rank,
                shape: c.shape.clone(),
                dtype: c.dtype,
                shards: c.pes.len(),
                first_rank: c0.rank,
                first_shape: c0.shape.clone(),
                first_dtype: c0.dtype,
                first_shards: c0.pes.len(),
            }));
        }
        if c.arg != c0.arg {
            return Err(err(CollectiveError::ArgMismatch {
                rank: c.rank,
                arg: arg_name.into(),
                value: c.arg,
                first_rank: c0.rank,
                first_value: c0.arg,
            }));
        }
        if let (Some(a), Some(b)) = (c.op, c0.op) {
            if a != b {
                return Err(err(CollectiveError::OpMismatch {
                    rank: c.rank,
                    op: a.name(),
                    first_rank: c0.rank,
                    first_op: b.name(),
                }));
            }
        }
    }
    let mut seen = BTreeSet::new();
    for c in cs {
        for p in &c.pes {
            if !seen.insert(*p) {
                let other = cs
                    .iter()
                    .find(|o| o.rank != c.rank && o.pes.contains(p))
                    .map_or(c.rank, |o| o.rank);
                return Err(err(CollectiveError::SharedPe {
                    rank: c.rank,
                    other,
                    pe: *p,
                }));
            }
        }
    }
    Ok((c0.pes.len(), len))
}

/// The one launch of a collective over every rank's shards: grid `[w, shards]`,
/// instance `(r, k)` on the PE of rank `r`'s shard `k`, a map per group.
fn group_launch<'a>(
    kernel: &'a dyn Program,
    cs: &[Contribution],
    shards: usize,
    map: MapKind,
    args: KernelArgs,
) -> Result<Launch<'a>, RuntimeError> {
    let w = cs.len();
    let mut pes = Vec::with_capacity(w * shards);
    let mut neighbors = NeighborMap::empty(match map {
        MapKind::Torus2d | MapKind::Hierarchical => "torus2d",
        MapKind::Tree => "tree",
        MapKind::Ranks => "ranks",
        _ => "ring",
    });
    if map == MapKind::Hierarchical {
        // A row per shard group (`E`/`W` across ranks), a column per rank
        // (`S`/`N` across its shards).
        pes = (0..shards)
            .flat_map(|k| cs.iter().map(move |c| c.pes[k]))
            .collect();
        neighbors =
            NeighborMap::grid2d(&pes, shards, w, true).map_err(|e| RuntimeError::Collective {
                what: kernel.name().into(),
                kind: CollectiveError::Map(e),
            })?;
    }
    for k in (0..shards).filter(|_| map != MapKind::Hierarchical) {
        let group: Vec<PeId> = cs.iter().map(|c| c.pes[k]).collect();
        if map == MapKind::Ranks {
            // The kernel addresses its peers by rank: no map.
            pes.extend(group);
            continue;
        }
        let m = match map {
            MapKind::Torus2d => {
                let (rows, cols) = torus_shape(w);
                NeighborMap::grid2d(&group, rows, cols, true)
            }
            MapKind::Tree => Ok(crate::run::range_tree_map(&group)),
            _ => NeighborMap::ring(&group),
        }
        .map_err(|e| RuntimeError::Collective {
            what: kernel.name().into(),
            kind: CollectiveError::Map(e),
        })?;
        neighbors.merge(&m);
        pes.extend(group);
    }
    // Instance `(r, k)` works on rank `r`'s own tensor.
    let bufs: Vec<ArgValue> = (0..shards)
        .flat_map(|_| {
            cs.iter().map(|c| ArgValue::Ptr {
                va: c.va,
                dtype: c.dtype,
                len: c.storage,
            })
        })
        .collect();
    Ok(Launch::new(kernel, args, pes)
        .per_instance("buf", bufs)
        .grid(&[w as u32, shards as u32])
        .neighbors(neighbors))
}

fn seg_elems(a: &Algorithm, d: DType) -> usize {
    (a.seg_bytes / d.size() as u64).max(1) as usize
}

/// All-reduces `t` across the members of `group` with `op`, in place, with
/// the backend's algorithm: every member ends with the reduction of every
/// member's tensor. Every member must call it with a tensor of the same
/// shape, type and placement (on its own SIP); the last to arrive runs the
/// collective kernel once (a ring or torus over the members' PEs, in group
/// rank order) and every member gets its report. A rank that is not a
/// member gets [`RuntimeError::ProcessGroup`].
pub fn all_reduce_in(
    rank: &Rank,
    t: &DeviceTensor,
    op: RedOp,
    group: &ProcessGroup,
    backend: &Backend,
) -> Result<Report, RuntimeError> {
    all_reduce_meet(rank, t, op, group, backend, None)?.ran()
}

/// [`all_reduce_in`] issued on `stream` of each member's device: every
/// member passes its own stream, and the collective waits for the work
/// each member issued on it before, and is then the stream's last launch.
/// It returns at once with a handle; no host waits for it. It runs when
/// the last member arrives, together with everything the members had
/// issued by then on any stream, so compute issued before it on other
/// streams overlaps it (ADR 0028). Wait on the handle, the stream or a
/// read of `t` to see its result.
pub fn all_reduce_async_in(
    rank: &Rank,
    t: &DeviceTensor,
    op: RedOp,
    group: &ProcessGroup,
    backend: &Backend,
    stream: &Stream,
) -> Result<LaunchHandle, RuntimeError> {
    all_reduce_meet(rank, t, op, group, backend, Some(stream))?.issued()
}

fn all_reduce_meet(
    rank: &Rank,
    t: &DeviceTensor,
    op: RedOp,
    group: &ProcessGroup,
    backend: &Backend,
    stream: Option<&Stream>,
) -> Result<Met, RuntimeError> {
    numeric("all_reduce", t)?;
    rank.group_rank(group)?;
    let fixed = backend.all_reduce.clone();
    rank_all_reduce_of(&fixed)?;
    let backend = backend.clone();
    let rt = rank.runtime().clone();
    let c = Contribution::of(rank.get_rank(), t, op.code() as u64);
    meet(rank, group, "all_reduce", (c, t.sip()), stream, move |cs| {
        all_reduce_launch(&rt, cs, op, &backend, &fixed)
    })
}

/// How a collective between ranks came out: run to completion, or issued
/// on the members' streams.
#[derive(Clone)]
enum Met {
    Ran(Report),
    Issued(LaunchHandle),
}

impl Met {
    fn ran(self) -> Result<Report, RuntimeError> {
        match self {
            Met::Ran(r) => Ok(r),
            Met::Issued(h) => h.wait().map(|c| (*c.run).clone()),
        }
    }

    fn issued(self) -> Result<LaunchHandle, RuntimeError> {
        match self {
            Met::Issued(h) => Ok(h),
            Met::Ran(_) => unreachable!("a collective given streams is issued on them"),
        }
    }
}

/// Meets the members of `group` and, at the last one's arrival, runs the
/// collective's launch (`build` of every member's contribution) to
/// completion, or with a stream of each member (`stream`, on the device of
/// the member's tensor, `sip`) issues it on them ([`Runtime::enqueue_across`]).
fn meet<F>(
    rank: &Rank,
    group: &ProcessGroup,
    what: &str,
    (c, sip): (Contribution, u16),
    stream: Option<&Stream>,
    build: F,
) -> Result<Met, RuntimeError>
where
    F: FnOnce(&[Contribution]) -> Result<Launch<'static>, RuntimeError>,
{
    let rt = rank.runtime().clone();
    let Some(stream) = stream else {
        return rank.rendezvous_in(group, what, c, move |cs| {
            rt.simulate(&build(&cs)?).map(Met::Ran)
        });
    };
    if stream.sip() != usize::from(sip) {
        return Err(stream_device(what, stream, sip));
    }
    let what = format!("{what} (asynchronous)");
    rank.rendezvous_in(group, &what, (c, stream.clone()), move |cs| {
        let (cs, streams): (Vec<Contribution>, Vec<Stream>) = cs.into_iter().unzip();
        rt.enqueue_across(build(&cs)?, &streams).map(Met::Issued)
    })
}

/// The all-reduce kernel's launch over the members' contributions.
fn all_reduce_launch(
    rt: &Runtime,
    cs: &[Contribution],
    op: RedOp,
    backend: &Backend,
    fixed: &Algorithm,
) -> Result<Launch<'static>, RuntimeError> {
    let (shards, n) = pair_up("all_reduce", cs, "op")?;
    let d = cs[0].dtype;
    let algo = backend.choose(
        Collective::AllReduce,
        fixed,
        rt.topology(),
        &group_pes(cs),
        (n * d.size()) as f64,
        // The tuner weighs one PE per rank, where the hierarchical form is
        // the ring: it is chosen by name only.
        |a| matches!(rank_all_reduce_of(a), Ok(k) if k != RankAllReduce::Hierarchical),
    );
    let kind = rank_all_reduce_of(&algo)?;
    // A torus of one row is a ring.
    let cols = match kind {
        RankAllReduce::Torus if torus_shape(cs.len()).0 > 1 => torus_shape(cs.len()).1,
        _ => 0,
    };
    let map = match kind {
        RankAllReduce::Torus if cols > 0 => MapKind::Torus2d,
        RankAllReduce::Ring | RankAllReduce::Torus => MapKind::Ring,
        RankAllReduce::Tree => MapKind::Tree,
        RankAllReduce::Hierarchical => MapKind::Hierarchical,
        _ => MapKind::Ranks,
    };
    let args = rank_all_reduce::args()
        .n(n)
        .seg(seg_elems(&algo, d))
        .op(op)
        .algo(kind.code())
        .cols(cols)
        .replicated(cs[0].whole)
        .into();
    Ok(group_launch(&rank_all_reduce, cs, shards, map, args)?.ipcq(algo.ipcq.clone()))
}

/// Broadcasts rank `root`'s `t` to every member's `t`, in place (see
/// [`all_reduce_in`]). `root` is a global rank, as in `torch.distributed`,
/// and must be a member of `group`.
pub fn broadcast_in(
    rank: &Rank,
    t: &DeviceTensor,
    root: usize,
    group: &ProcessGroup,
    backend: &Backend,
) -> Result<Report, RuntimeError> {
    broadcast_meet(rank, t, root, group, backend, None)?.ran()
}

/// [`broadcast_in`] issued on `stream` of each member's device and
/// returning a handle at once, as [`all_reduce_async_in`] is.
pub fn broadcast_async_in(
    rank: &Rank,
    t: &DeviceTensor,
    root: usize,
    group: &ProcessGroup,
    backend: &Backend,
    stream: &Stream,
) -> Result<LaunchHandle, RuntimeError> {
    broadcast_meet(rank, t, root, group, backend, Some(stream))?.issued()
}

fn broadcast_meet(
    rank: &Rank,
    t: &DeviceTensor,
    root: usize,
    group: &ProcessGroup,
    backend: &Backend,
    stream: Option<&Stream>,
) -> Result<Met, RuntimeError> {
    numeric("broadcast", t)?;
    let algo = backend.broadcast.clone();
    check_algorithm(&algo, Collective::Broadcast, &[MapKind::Ring])?;
    let root_g = group_root("broadcast", rank, group, root)?;
    let c = Contribution::of(rank.get_rank(), t, root as u64);
    meet(rank, group, "broadcast", (c, t.sip()), stream, move |cs| {
        let (shards, n) = pair_up("broadcast", cs, "root")?;
        let d = cs[0].dtype;
        let args = rank_broadcast::args()
            .n(n)
            .seg(seg_elems(&algo, d))
            .root(root_g)
            .into();
        Ok(group_launch(&rank_broadcast, cs, shards, MapKind::Ring, args)?.ipcq(algo.ipcq.clone()))
    })
}

/// Whether every shard of `t` holds the whole tensor (replicated, or on one PE).
fn whole_shards(t: &DeviceTensor) -> bool {
    let (r, c) = match t.shape() {
        [n] => (1, *n),
        [r, c] => (*r, *c),
        _ => return false,
    };
    t.shards()
        .iter()
        .all(|s| s.rows == (0..r) && s.cols == (0..c))
}

/// Gathers every member's `input` into every member's `output`, concatenated
/// along the first dimension in group rank order (`output` is `[size * rows,
/// cols]` for a `[rows, cols]` input, `[size * n]` for `[n]`, `size` the
/// group's).
///
/// Both tensors must be replicated (or on one PE) over the same PEs: each
/// rank first copies its input into its chunk of every replica of its output
/// (a launch on its own PEs), then one collective launch gathers the chunks.
pub fn all_gather_in(
    rank: &Rank,
    output: &DeviceTensor,
    input: &DeviceTensor,
    group: &ProcessGroup,
    backend: &Backend,
) -> Result<Report, RuntimeError> {
    gather_all(rank, (output, input), group, backend, false, None)?.ran()
}

/// [`all_gather_in`] issued on `stream` of each member's device and
/// returning a handle at once, as [`all_reduce_async_in`] is: the copy of
/// the member's own input into its chunk of `output` is issued on `stream`
/// first, then the collective.
pub fn all_gather_async_in(
    rank: &Rank,
    output: &DeviceTensor,
    input: &DeviceTensor,
    group: &ProcessGroup,
    backend: &Backend,
    stream: &Stream,
) -> Result<LaunchHandle, RuntimeError> {
    gather_all(rank, (output, input), group, backend, false, Some(stream))?.issued()
}

/// [`all_gather_in`] shard by shard, for tensors split over PEs as well:
/// shard `k` of `output` (`size` times as long as shard `k` of `input`, on
/// the same PE) ends with shard `k` of every member's `input`, in group rank
/// order. For a replicated (or one-PE) tensor this is [`all_gather_in`];
/// for a row-split one, output rows interleave the members' row bands
/// (shard `k`'s rows of member 0, then of member 1, ...), the layout
/// sequence parallelism keeps ([`reduce_scatter_shards_in`] undoes it).
pub fn all_gather_shards_in(
    rank: &Rank,
    output: &DeviceTensor,
    input: &DeviceTensor,
    group: &ProcessGroup,
    backend: &Backend,
) -> Result<Report, RuntimeError> {
    gather_all(rank, (output, input), group, backend, true, None)?.ran()
}

/// [`all_gather_shards_in`] issued on `stream`, as [`all_gather_async_in`].
pub fn all_gather_shards_async_in(
    rank: &Rank,
    output: &DeviceTensor,
    input: &DeviceTensor,
    group: &ProcessGroup,
    backend: &Backend,
    stream: &Stream,
) -> Result<LaunchHandle, RuntimeError> {
    gather_all(rank, (output, input), group, backend, true, Some(stream))?.issued()
}

fn gather_all(
    rank: &Rank,
    (output, input): (&DeviceTensor, &DeviceTensor),
    group: &ProcessGroup,
    backend: &Backend,
    shardwise: bool,
    stream: Option<&Stream>,
) -> Result<Met, RuntimeError> {
    numeric("all_gather", input)?;
    numeric("all_gather", output)?;
    rank.group_rank(group)?;
    let fixed = backend.all_gather.clone();
    rank_gather_of(&fixed, Collective::AllGather)?;
    let n = check_gathered("all_gather", rank, group, output, input, shardwise)?;
    check_stream("all_gather", stream, output)?;
    place_own_chunk(rank, group, (output, input), &fixed, stream)?;
    let d = input.dtype();
    let backend = backend.clone();
    let rt = rank.runtime().clone();
    let c = Contribution::of(rank.get_rank(), output, 0);
    meet(
        rank,
        group,
        "all_gather",
        (c, output.sip()),
        stream,
        move |cs| {
            let (shards, _) = pair_up("all_gather", cs, "argument")?;
            let (algo, form) = backend.choose_gather_form(
                Collective::AllGather,
                &fixed,
                rt.topology(),
                cs,
                (cs.len() * n * d.size()) as f64,
            )?;
            let args = rank_all_gather::args()
                .n(n)
                .seg(seg_elems(&algo, d))
                .form(form.code())
                .replicated(cs[0].whole)
                .into();
            let map = form.map();
            Ok(group_launch(&rank_all_gather, cs, shards, map, args)?.ipcq(algo.ipcq.clone()))
        },
    )
}

/// Reduces every member's `input` with `op` and leaves block `r` of the
/// result in group rank `r`'s `output` (`torch.distributed.reduce_scatter_tensor`):
/// `input` is `[size * rows, cols]` (or `[size * n]`), cut along its first
/// dimension into `size` blocks, and `output` `[rows, cols]` (or `[n]`).
/// Both must be replicated (or on one PE) over the same PEs. One collective
/// launch reduces in place in the inputs (a ring per shard group; the
/// inputs end with partial sums outside their own block), then each member
/// copies its block into its output (a launch on its own PEs).
pub fn reduce_scatter_in(
    rank: &Rank,
    output: &DeviceTensor,
    input: &DeviceTensor,
    op: RedOp,
    group: &ProcessGroup,
    backend: &Backend,
) -> Result<Report, RuntimeError> {
    scatter_reduced(rank, (output, input), op, group, backend, false, None)?.ran()
}

/// [`reduce_scatter_in`] issued on `stream` of each member's device,
/// returning at once with the handle of the member's last launch, the copy
/// of its block into `output` (waiting for it waits for the collective;
/// see [`all_reduce_async_in`]).
pub fn reduce_scatter_async_in(
    rank: &Rank,
    output: &DeviceTensor,
    input: &DeviceTensor,
    op: RedOp,
    group: &ProcessGroup,
    backend: &Backend,
    stream: &Stream,
) -> Result<LaunchHandle, RuntimeError> {
    scatter_reduced(
        rank,
        (output, input),
        op,
        group,
        backend,
        false,
        Some(stream),
    )?
    .issued()
}

/// [`reduce_scatter_in`] shard by shard, for tensors split over PEs as
/// well: shard `k` of `input` is cut into `size` chunks, and chunk `r` of
/// the reduction over the members lands in shard `k` of group rank `r`'s
/// `output`, on the same PE. The inverse layout of [`all_gather_shards_in`].
pub fn reduce_scatter_shards_in(
    rank: &Rank,
    output: &DeviceTensor,
    input: &DeviceTensor,
    op: RedOp,
    group: &ProcessGroup,
    backend: &Backend,
) -> Result<Report, RuntimeError> {
    scatter_reduced(rank, (output, input), op, group, backend, true, None)?.ran()
}

/// [`reduce_scatter_shards_in`] issued on `stream`, as
/// [`reduce_scatter_async_in`].
pub fn reduce_scatter_shards_async_in(
    rank: &Rank,
    output: &DeviceTensor,
    input: &DeviceTensor,
    op: RedOp,
    group: &ProcessGroup,
    backend: &Backend,
    stream: &Stream,
) -> Result<LaunchHandle, RuntimeError> {
    scatter_reduced(
        rank,
        (output, input),
        op,
        group,
        backend,
        true,
        Some(stream),
    )?
    .issued()
}

/// The collective's report when run synchronously; the copy's handle when
/// issued on a stream.
fn scatter_reduced(
    rank: &Rank,
    (output, input): (&DeviceTensor, &DeviceTensor),
    op: RedOp,
    group: &ProcessGroup,
    backend: &Backend,
    shardwise: bool,
    stream: Option<&Stream>,
) -> Result<Met, RuntimeError> {
    numeric("reduce_scatter", input)?;
    numeric("reduce_scatter", output)?;
    let me = rank.group_rank(group)?;
    let fixed = backend.reduce_scatter.clone();
    rank_gather_of(&fixed, Collective::ReduceScatter)?;
    // The input plays the gathered tensor's part.
    let n = check_gathered("reduce_scatter", rank, group, input, output, shardwise)?;
    check_stream("reduce_scatter", stream, input)?;
    let (d, w, r) = (input.dtype(), group.size(), rank.get_rank());
    // The local copy after the collective moves pieces of the fixed algorithm's size.
    let take_seg = seg_elems(&fixed, d);
    let backend = backend.clone();
    let rt = rank.runtime().clone();
    let c = Contribution::of(r, input, 0).reducing(op);
    let met = meet(
        rank,
        group,
        "reduce_scatter",
        (c, input.sip()),
        stream,
        move |cs| {
            let (shards, _) = pair_up("reduce_scatter", cs, "argument")?;
            let (algo, form) = backend.choose_gather_form(
                Collective::ReduceScatter,
                &fixed,
                rt.topology(),
                cs,
                (cs.len() * n * d.size()) as f64,
            )?;
            let seg = seg_elems(&algo, d);
            let args = rank_reduce_scatter::args()
                .n(n)
                .seg(seg)
                .op(op)
                .form(form.code())
                .replicated(cs[0].whole)
                .into();
            let map = form.map();
            Ok(group_launch(&rank_reduce_scatter, cs, shards, map, args)?.ipcq(algo.ipcq.clone()))
        },
    )?;
    let sizes = take_chunk::args().n(n).w(w).r(me).seg(take_seg);
    let take = KernelArgs::from(sizes)
        .with("src", input.arg_ptr())
        .with("dst", output.arg_ptr());
    let pes: Vec<PeId> = input.shards().iter().map(|s| s.pe_id()).collect();
    let take = Launch::new(&take_chunk, take, pes);
    match stream {
        // Stream order puts the copy after the collective.
        Some(s) => rank.runtime().enqueue(take, s).map(Met::Issued),
        None => {
            let report = met.ran()?;
            rank.simulate(&take)?;
            Ok(Met::Ran(report))
        }
    }
}

/// The group rank of the global rank `root`, after checking that this rank
/// is a member of `group`; an error when `root` is not a rank of the run or
/// not a member.
fn group_root(
    what: &str,
    rank: &Rank,
    group: &ProcessGroup,
    root: usize,
) -> Result<usize, RuntimeError> {
    rank.group_rank(group)?;
    let err = |kind| RuntimeError::Collective {
        what: what.into(),
        kind,
    };
    if root >= rank.get_world_size() {
        return Err(err(CollectiveError::RootNotRank {
            root,
            world: rank.get_world_size(),
        }));
    }
    group.group_rank(root).ok_or_else(|| {
        err(CollectiveError::RootNotMember {
            root,
            ranks: group.ranks().to_vec(),
        })
    })
}

/// Reduces `t` over the members of `group` with `op` into rank `root`'s `t`
/// (`root` a global rank and a member), in place,
/// with the backend's algorithm (a binomial tree addressed by rank): the
/// root ends with the reduction of every rank's tensor; the other ranks'
/// tensors end with partial results (the reductions of their subtrees).
/// Every rank must call it with a tensor of the same shape, type and
/// placement (on its own SIP), the same root and the same `op`; shard `k`
/// of every rank reduces with shard `k` of the others.
pub fn reduce_in(
    rank: &Rank,
    t: &DeviceTensor,
    root: usize,
    op: RedOp,
    group: &ProcessGroup,
    backend: &Backend,
) -> Result<Report, RuntimeError> {
    reduce_meet(rank, t, (root, op), group, backend, None)?.ran()
}

/// [`reduce_in`] issued on `stream` of each member's device and returning
/// a handle at once, as [`all_reduce_async_in`] is.
pub fn reduce_async_in(
    rank: &Rank,
    t: &DeviceTensor,
    root: usize,
    op: RedOp,
    group: &ProcessGroup,
    backend: &Backend,
    stream: &Stream,
) -> Result<LaunchHandle, RuntimeError> {
    reduce_meet(rank, t, (root, op), group, backend, Some(stream))?.issued()
}

fn reduce_meet(
    rank: &Rank,
    t: &DeviceTensor,
    (root, op): (usize, RedOp),
    group: &ProcessGroup,
    backend: &Backend,
    stream: Option<&Stream>,
) -> Result<Met, RuntimeError> {
    numeric("reduce", t)?;
    let algo = backend.reduce.clone();
    check_algorithm(&algo, Collective::Reduce, &[MapKind::Ranks])?;
    let root_g = group_root("reduce", rank, group, root)?;
    let c = Contribution::of(rank.get_rank(), t, root as u64).reducing(op);
    meet(rank, group, "reduce", (c, t.sip()), stream, move |cs| {
        let (shards, n) = pair_up("reduce", cs, "root")?;
        let d = cs[0].dtype;
        let args = rank_reduce::args()
            .n(n)
            .seg(seg_elems(&algo, d))
            .op(op)
            .root(root_g)
            .into();
        Ok(group_launch(&rank_reduce, cs, shards, MapKind::Ranks, args)?.ipcq(algo.ipcq.clone()))
    })
}

/// The `[world * rows, cols]` (or `[world * n]`) tensor a `[rows, cols]`
/// (or `[n]`) input gathers into, checked against `output`: both whole on
/// every shard (replicated, or on one PE) and on the same PEs.
///
/// `shardwise`: split tensors too, gathered shard by shard (the shards of
/// `output` each `size` times as long as those of `input`). Returns the
/// length of an input shard.
fn check_gathered(
    what: &str,
    rank: &Rank,
    group: &ProcessGroup,
    output: &DeviceTensor,
    input: &DeviceTensor,
    shardwise: bool,
) -> Result<usize, RuntimeError> {
    let err = |kind| RuntimeError::Collective {
        what: what.into(),
        kind,
    };
    let (w, r) = (group.size(), rank.get_rank());
    if !shardwise && (!whole_shards(input) || !whole_shards(output)) {
        return Err(err(CollectiveError::GatherSplit { rank: r }));
    }
    let want: Vec<usize> = match input.shape() {
        [n] => vec![w * n],
        [rows, cols] => vec![w * rows, *cols],
        _ => unreachable!("tensors are 1-D or 2-D"),
    };
    if output.shape() != want.as_slice() || output.dtype() != input.dtype() {
        return Err(err(CollectiveError::GatherShape {
            rank: r,
            world: w,
            input: input.shape().to_vec(),
            dtype: input.dtype(),
            want,
            output: output.shape().to_vec(),
            output_dtype: output.dtype(),
        }));
    }
    let in_pes: Vec<PeId> = input.shards().iter().map(|s| s.pe_id()).collect();
    let out_pes: Vec<PeId> = output.shards().iter().map(|s| s.pe_id()).collect();
    if in_pes != out_pes {
        return Err(err(CollectiveError::GatherPes { rank: r }));
    }
    match (input.uniform_shard_len(), output.uniform_shard_len()) {
        (Some(i), Some(o)) if o == w * i => Ok(i),
        _ => Err(err(CollectiveError::GatherShards { rank: r, world: w })),
    }
}

/// Copies rank `rank`'s `input` into its chunk of every replica of `output`
/// (a launch on its own PEs, issued on `stream` when given): the local step
/// of a gather.
fn place_own_chunk(
    rank: &Rank,
    group: &ProcessGroup,
    (output, input): (&DeviceTensor, &DeviceTensor),
    algo: &Algorithm,
    stream: Option<&Stream>,
) -> Result<(), RuntimeError> {
    let d = input.dtype();
    let n = input
        .uniform_shard_len()
        .expect("checked by check_gathered");
    let sizes = place_chunk::args()
        .n(n)
        .w(group.size())
        .r(rank.group_rank(group)?)
        .seg(seg_elems(algo, d));
    // The tensors bind by name: they are the runtime's, not `Buffer`s.
    let place = KernelArgs::from(sizes)
        .with("src", input.arg_ptr())
        .with("dst", output.arg_ptr());
    let pes: Vec<PeId> = input.shards().iter().map(|s| s.pe_id()).collect();
    let place = Launch::new(&place_chunk, place, pes);
    match stream {
        Some(s) => rank.runtime().enqueue(place, s).map(drop),
        None => rank.simulate(&place).map(drop),
    }
}

/// An error when `stream` is not on the SIP of the tensor the collective
/// works on; checked before any launch of it is issued.
fn check_stream(what: &str, stream: Option<&Stream>, t: &DeviceTensor) -> Result<(), RuntimeError> {
    match stream {
        Some(s) if s.sip() != usize::from(t.sip()) => Err(stream_device(what, s, t.sip())),
        _ => Ok(()),
    }
}

fn stream_device(what: &str, stream: &Stream, sip: u16) -> RuntimeError {
    RuntimeError::launch(
        format!("rank_{what}"),
        LaunchSetupError::StreamDevice {
            stream: stream.sip(),
            tensor: sip.into(),
        },
    )
}

/// Gathers every member's `input` into rank `root`'s `output` (`root` a
/// global rank and a member), concatenated along the first dimension in
/// group rank order, with the backend's algorithm (a
/// binomial tree addressed by rank). Every rank passes an `output` of the
/// gathered shape, as for [`all_gather_with`]; each first copies its input
/// into its own chunk of it, and the other ranks' outputs end with the
/// chunks of their subtrees.
pub fn gather_in(
    rank: &Rank,
    output: &DeviceTensor,
    input: &DeviceTensor,
    root: usize,
    group: &ProcessGroup,
    backend: &Backend,
) -> Result<Report, RuntimeError> {
    gather_meet(rank, (output, input), root, group, backend, None)?.ran()
}

/// [`gather_in`] issued on `stream` of each member's device and returning a
/// handle at once, as [`all_gather_async_in`] is.
pub fn gather_async_in(
    rank: &Rank,
    output: &DeviceTensor,
    input: &DeviceTensor,
    root: usize,
    group: &ProcessGroup,
    backend: &Backend,
    stream: &Stream,
) -> Result<LaunchHandle, RuntimeError> {
    gather_meet(rank, (output, input), root, group, backend, Some(stream))?.issued()
}

fn gather_meet(
    rank: &Rank,
    (output, input): (&DeviceTensor, &DeviceTensor),
    root: usize,
    group: &ProcessGroup,
    backend: &Backend,
    stream: Option<&Stream>,
) -> Result<Met, RuntimeError> {
    numeric("gather", input)?;
    numeric("gather", output)?;
    let algo = backend.gather.clone();
    check_algorithm(&algo, Collective::Gather, &[MapKind::Ranks])?;
    let root_g = group_root("gather", rank, group, root)?;
    let n = check_gathered("gather", rank, group, output, input, false)?;
    check_stream("gather", stream, output)?;
    place_own_chunk(rank, group, (output, input), &algo, stream)?;
    let d = input.dtype();
    let c = Contribution::of(rank.get_rank(), output, root as u64);
    meet(
        rank,
        group,
        "gather",
        (c, output.sip()),
        stream,
        move |cs| {
            let (shards, _) = pair_up("gather", cs, "root")?;
            let args = rank_gather::args()
                .n(n)
                .seg(seg_elems(&algo, d))
                .root(root_g)
                .into();
            Ok(
                group_launch(&rank_gather, cs, shards, MapKind::Ranks, args)?
                    .ipcq(algo.ipcq.clone()),
            )
        },
    )
}

/// Exchanges blocks between the members of `group`, in place, with the
/// backend's algorithm (a pairwise exchange addressed by rank): `t` is cut
/// along its first dimension into `size` blocks (the group's size), and
/// block `j` of group rank `r` ends as block `r` of group rank `j` (`torch.distributed.all_to_all_single` with equal
/// splits). `t` must be whole on every shard (replicated, or on one PE) and
/// its first dimension a multiple of the world size.
pub fn all_to_all_in(
    rank: &Rank,
    t: &DeviceTensor,
    group: &ProcessGroup,
    backend: &Backend,
) -> Result<Report, RuntimeError> {
    all_to_all_meet(rank, t, group, backend, None)?.ran()
}

/// [`all_to_all_in`] issued on `stream` of each member's device and
/// returning a handle at once, as [`all_reduce_async_in`] is.
pub fn all_to_all_async_in(
    rank: &Rank,
    t: &DeviceTensor,
    group: &ProcessGroup,
    backend: &Backend,
    stream: &Stream,
) -> Result<LaunchHandle, RuntimeError> {
    all_to_all_meet(rank, t, group, backend, Some(stream))?.issued()
}

fn all_to_all_meet(
    rank: &Rank,
    t: &DeviceTensor,
    group: &ProcessGroup,
    backend: &Backend,
    stream: Option<&Stream>,
) -> Result<Met, RuntimeError> {
    numeric("all_to_all", t)?;
    let algo = backend.all_to_all.clone();
    check_algorithm(&algo, Collective::AllToAll, &[MapKind::Ranks])?;
    rank.group_rank(group)?;
    let (w, r) = (group.size(), rank.get_rank());
    let err = |kind| RuntimeError::Collective {
        what: "all_to_all".into(),
        kind,
    };
    if !whole_shards(t) {
        return Err(err(CollectiveError::AllToAllSplit { rank: r }));
    }
    let rows = t.shape()[0];
    if rows % w != 0 {
        return Err(err(CollectiveError::AllToAllBlocks {
            rank: r,
            rows,
            world: w,
        }));
    }
    let c = Contribution::of(r, t, 0);
    meet(rank, group, "all_to_all", (c, t.sip()), stream, move |cs| {
        let (shards, n) = pair_up("all_to_all", cs, "argument")?;
        let d = cs[0].dtype;
        let args = rank_all_to_all::args().n(n).seg(seg_elems(&algo, d)).into();
        Ok(
            group_launch(&rank_all_to_all, cs, shards, MapKind::Ranks, args)?
                .ipcq(algo.ipcq.clone()),
        )
    })
}

/// [`all_reduce_in`] over every rank: every rank ends with the reduction
/// of every rank's tensor.
pub fn all_reduce_with(
    rank: &Rank,
    t: &DeviceTensor,
    op: RedOp,
    backend: &Backend,
) -> Result<Report, RuntimeError> {
    all_reduce_in(rank, t, op, &rank.world_group(), backend)
}

/// [`broadcast_in`] over every rank.
pub fn broadcast_with(
    rank: &Rank,
    t: &DeviceTensor,
    root: usize,
    backend: &Backend,
) -> Result<Report, RuntimeError> {
    broadcast_in(rank, t, root, &rank.world_group(), backend)
}

/// [`all_gather_in`] over every rank.
pub fn all_gather_with(
    rank: &Rank,
    output: &DeviceTensor,
    input: &DeviceTensor,
    backend: &Backend,
) -> Result<Report, RuntimeError> {
    all_gather_in(rank, output, input, &rank.world_group(), backend)
}

/// [`reduce_in`] over every rank.
pub fn reduce_with(
    rank: &Rank,
    t: &DeviceTensor,
    root: usize,
    op: RedOp,
    backend: &Backend,
) -> Result<Report, RuntimeError> {
    reduce_in(rank, t, root, op, &rank.world_group(), backend)
}

/// [`gather_in`] over every rank.
pub fn gather_with(
    rank: &Rank,
    output: &DeviceTensor,
    input: &DeviceTensor,
    root: usize,
    backend: &Backend,
) -> Result<Report, RuntimeError> {
    gather_in(rank, output, input, root, &rank.world_group(), backend)
}

/// [`all_to_all_in`] over every rank.
pub fn all_to_all_with(
    rank: &Rank,
    t: &DeviceTensor,
    backend: &Backend,
) -> Result<Report, RuntimeError> {
    all_to_all_in(rank, t, &rank.world_group(), backend)
}

/// Collectives on a rank with the default [`Backend`] (the shipped
/// registry's ring algorithms), in the `torch.distributed` style.
pub trait Collectives {
    /// Sums `t` over all ranks, in place (see [`all_reduce_with`]).
    fn all_reduce(&self, t: &DeviceTensor) -> Result<Report, RuntimeError>;
    /// Reduces `t` over all ranks with `op`, in place.
    fn all_reduce_op(&self, t: &DeviceTensor, op: RedOp) -> Result<Report, RuntimeError>;
    /// Copies rank `root`'s `t` into every rank's `t` (see [`broadcast_with`]).
    fn broadcast(&self, t: &DeviceTensor, root: usize) -> Result<Report, RuntimeError>;
    /// Gathers every rank's `input` into `output` (see [`all_gather_with`]).
    fn all_gather(
        &self,
        output: &DeviceTensor,
        input: &DeviceTensor,
    ) -> Result<Report, RuntimeError>;
    /// Reduces `t` over all ranks with `op` into rank `root`'s `t` (see [`reduce_with`]).
    fn reduce(&self, t: &DeviceTensor, root: usize, op: RedOp) -> Result<Report, RuntimeError>;
    /// Gathers every rank's `input` into rank `root`'s `output` (see [`gather_with`]).
    fn gather(
        &self,
        output: &DeviceTensor,
        input: &DeviceTensor,
        root: usize,
    ) -> Result<Report, RuntimeError>;
    /// Exchanges the blocks of `t` between all ranks, in place (see [`all_to_all_with`]).
    fn all_to_all(&self, t: &DeviceTensor) -> Result<Report, RuntimeError>;
    /// Reduces `t` over the members of `group` with `op`, in place (see [`all_reduce_in`]).
    fn all_reduce_in(
        &self,
        t: &DeviceTensor,
        op: RedOp,
        group: &ProcessGroup,
    ) -> Result<Report, RuntimeError>;
    /// Copies rank `root`'s `t` into every member's `t` (see [`broadcast_in`]).
    fn broadcast_in(
        &self,
        t: &DeviceTensor,
        root: usize,
        group: &ProcessGroup,
    ) -> Result<Report, RuntimeError>;
    /// Gathers every member's `input` into `output` (see [`all_gather_in`]).
    fn all_gather_in(
        &self,
        output: &DeviceTensor,
        input: &DeviceTensor,
        group: &ProcessGroup,
    ) -> Result<Report, RuntimeError>;
    /// Reduces the members' `input` and scatters the blocks (see [`reduce_scatter_in`]).
    fn reduce_scatter_in(
        &self,
        output: &DeviceTensor,
        input: &DeviceTensor,
        op: RedOp,
        group: &ProcessGroup,
    ) -> Result<Report, RuntimeError>;
}

fn default_backend() -> &'static Backend {
    static B: std::sync::OnceLock<Backend> = std::sync::OnceLock::new();
    B.get_or_init(Backend::default)
}

impl Collectives for Rank {
    fn all_reduce(&self, t: &DeviceTensor) -> Result<Report, RuntimeError> {
        all_reduce_with(self, t, RedOp::Sum, default_backend())
    }

    fn all_reduce_op(&self, t: &DeviceTensor, op: RedOp) -> Result<Report, RuntimeError> {
        all_reduce_with(self, t, op, default_backend())
    }

    fn broadcast(&self, t: &DeviceTensor, root: usize) -> Result<Report, RuntimeError> {
        broadcast_with(self, t, root, default_backend())
    }

    fn all_gather(
        &self,
        output: &DeviceTensor,
        input: &DeviceTensor,
    ) -> Result<Report, RuntimeError> {
        all_gather_with(self, output, input, default_backend())
    }

    fn reduce(&self, t: &DeviceTensor, root: usize, op: RedOp) -> Result<Report, RuntimeError> {
        reduce_with(self, t, root, op, default_backend())
    }

    fn gather(
        &self,
        output: &DeviceTensor,
        input: &DeviceTensor,
        root: usize,
    ) -> Result<Report, RuntimeError> {
        gather_with(self, output, input, root, default_backend())
    }

    fn all_to_all(&self, t: &DeviceTensor) -> Result<Report, RuntimeError> {
        all_to_all_with(self, t, default_backend())
    }

    fn all_reduce_in(
        &self,
        t: &DeviceTensor,
        op: RedOp,
        group: &ProcessGroup,
    ) -> Result<Report, RuntimeError> {
        all_reduce_in(self, t, op, group, default_backend())
    }

    fn broadcast_in(
        &self,
        t: &DeviceTensor,
        root: usize,
        group: &ProcessGroup,
    ) -> Result<Report, RuntimeError> {
        broadcast_in(self, t, root, group, default_backend())
    }

    fn all_gather_in(
        &self,
        output: &DeviceTensor,
        input: &DeviceTensor,
        group: &ProcessGroup,
    ) -> Result<Report, RuntimeError> {
        all_gather_in(self, output, input, group, default_backend())
    }

    fn reduce_scatter_in(
        &self,
        output: &DeviceTensor,
        input: &DeviceTensor,
        op: RedOp,
        group: &ProcessGroup,
    ) -> Result<Report, RuntimeError> {
        reduce_scatter_in(self, output, input, op, group, default_backend())
    }
}

/// `torch.distributed.reduce_scatter_tensor(output, input, op, group)` for
/// the worker on this thread (see [`reduce_scatter_in`]).
pub fn reduce_scatter(
    output: &DeviceTensor,
    input: &DeviceTensor,
    op: RedOp,
    group: Option<&ProcessGroup>,
) -> Result<Report, RuntimeError> {
    let rank = current_for("dist::reduce_scatter")?;
    reduce_scatter_in(
        &rank,
        output,
        input,
        op,
        &or_world(&rank, group),
        default_backend(),
    )
}

/// The group a free collective runs over: `group`, or every rank.
fn or_world(rank: &Rank, group: Option<&ProcessGroup>) -> ProcessGroup {
    group.cloned().unwrap_or_else(|| rank.world_group())
}

/// `torch.distributed.all_reduce(t, op, group)` for the worker on this
/// thread (after [`init_process_group`]), with the default [`Backend`]:
/// over `group`, or every rank when `None`.
pub fn all_reduce(
    t: &DeviceTensor,
    op: RedOp,
    group: Option<&ProcessGroup>,
) -> Result<Report, RuntimeError> {
    let rank = current_for("dist::all_reduce")?;
    all_reduce_in(&rank, t, op, &or_world(&rank, group), default_backend())
}

/// `torch.distributed.all_reduce(t, op, group, async_op=True)` for the
/// worker on this thread, issued on `stream` (see [`all_reduce_async_in`]):
/// returns a handle at once.
pub fn all_reduce_async(
    t: &DeviceTensor,
    op: RedOp,
    group: Option<&ProcessGroup>,
    stream: &Stream,
) -> Result<LaunchHandle, RuntimeError> {
    let rank = current_for("dist::all_reduce_async")?;
    all_reduce_async_in(
        &rank,
        t,
        op,
        &or_world(&rank, group),
        default_backend(),
        stream,
    )
}

/// `torch.distributed.broadcast(t, src, group)` for the worker on this
/// thread: `src` is a global rank (see [`broadcast_in`]).
pub fn broadcast(
    t: &DeviceTensor,
    src: usize,
    group: Option<&ProcessGroup>,
) -> Result<Report, RuntimeError> {
    let rank = current_for("dist::broadcast")?;
    broadcast_in(&rank, t, src, &or_world(&rank, group), default_backend())
}

/// `torch.distributed.all_gather_into_tensor(output, input, group)` for the
/// worker on this thread (see [`all_gather_in`]).
pub fn all_gather(
    output: &DeviceTensor,
    input: &DeviceTensor,
    group: Option<&ProcessGroup>,
) -> Result<Report, RuntimeError> {
    let rank = current_for("dist::all_gather")?;
    all_gather_in(
        &rank,
        output,
        input,
        &or_world(&rank, group),
        default_backend(),
    )
}

/// [`all_gather`] issued on `stream` (`async_op=True`): see
/// [`all_gather_async_in`].
pub fn all_gather_async(
    output: &DeviceTensor,
    input: &DeviceTensor,
    group: Option<&ProcessGroup>,
    stream: &Stream,
) -> Result<LaunchHandle, RuntimeError> {
    let rank = current_for("dist::all_gather_async")?;
    let group = or_world(&rank, group);
    all_gather_async_in(&rank, output, input, &group, default_backend(), stream)
}

/// [`reduce_scatter`] issued on `stream` (`async_op=True`): see
/// [`reduce_scatter_async_in`].
pub fn reduce_scatter_async(
    output: &DeviceTensor,
    input: &DeviceTensor,
    op: RedOp,
    group: Option<&ProcessGroup>,
    stream: &Stream,
) -> Result<LaunchHandle, RuntimeError> {
    let rank = current_for("dist::reduce_scatter_async")?;
    let group = or_world(&rank, group);
    reduce_scatter_async_in(&rank, output, input, op, &group, default_backend(), stream)
}

/// [`broadcast`] issued on `stream` (`async_op=True`): see
/// [`broadcast_async_in`].
pub fn broadcast_async(
    t: &DeviceTensor,
    src: usize,
    group: Option<&ProcessGroup>,
    stream: &Stream,
) -> Result<LaunchHandle, RuntimeError> {
    let rank = current_for("dist::broadcast_async")?;
    let group = or_world(&rank, group);
    broadcast_async_in(&rank, t, src, &group, default_backend(), stream)
}
