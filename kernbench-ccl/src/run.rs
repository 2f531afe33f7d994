//! Running a collective on a machine and checking its result element by element.
//!
//! Inputs are chosen as nccl-tests does, so that the exact result is
//! representable in the element type whatever the order of summation: small
//! integers whose sum over all ranks stays within the type's exact range
//! (2^11 for f16, 2^8 for bf16, 2^24 for f32 and i32), sparser when there are
//! many ranks. Every element of every rank is compared exactly.

use crate::registry::{Algorithm, Collective, MapKind};
use kernbench_core::ir::{ArgValue, Dir, KernelArgs};
use kernbench_core::machine::{Buffer, Machine, MemError};
use kernbench_core::neighbors::{NeighborError, NeighborMap};
use kernbench_core::passes::lower::PeProgram;
use kernbench_core::sim::{
    simulate_full, FabricModel, Launch, LaunchError, Outcome, ProgressHook, SimError, TieOrder,
};
use kernbench_core::topology::{Endpoint, Topology};
use kernbench_core::{DType, PeId};

/// A reduction operator: a `#[constexpr]` parameter of the reducing
/// collectives' kernels, whose codes are `0` sum, `1` max, `2` min.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, kernbench_tl::KernelEnum)]
#[serde(rename_all = "lowercase")]
pub enum RedOp {
    /// Sum.
    Sum,
    /// Maximum.
    Max,
    /// Minimum.
    Min,
}

impl RedOp {
    /// The kernels' code for it.
    pub fn code(self) -> i64 {
        match self {
            RedOp::Sum => 0,
            RedOp::Max => 1,
            RedOp::Min => 2,
        }
    }

    /// Parses `sum`, `max`, `min` (and nccl-tests' `prod` is refused).
    pub fn parse(s: &str) -> Option<RedOp> {
        match s {
            "sum" => Some(RedOp::Sum),
            "max" => Some(RedOp::Max),
            "min" => Some(RedOp::Min),
            _ => None,
        }
    }

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            RedOp::Sum => "sum",
            RedOp::Max => "max",
            RedOp::Min => "min",
        }
    }

    fn apply(self, a: f64, b: f64) -> f64 {
        match self {
            RedOp::Sum => a + b,
            RedOp::Max => a.max(b),
            RedOp::Min => a.min(b),
        }
    }
}

/// What to run.
#[derive(Clone, Debug)]
pub struct RunSpec {
    /// Elements of each rank's vector.
    pub count: usize,
    /// Element type.
    pub dtype: DType,
    /// Reduction (ignored by collectives that do not reduce).
    pub op: RedOp,
    /// Root rank (broadcast, reduce, gather).
    pub root: usize,
    /// Execute and check the data (timing is the same either way).
    pub data: bool,
    /// Keep op spans for a timeline.
    pub trace: bool,
    /// Keep op spans and programs for a bottleneck summary (see `Launch::why`).
    pub why: bool,
    /// How IPCQ messages cross the fabric.
    pub fabric: FabricModel,
    /// Which of one instant's events the engine handles first (see `Launch::ties`).
    pub ties: TieOrder,
    /// The most memory the run may take, bytes (see `Launch::max_memory`).
    pub max_memory: Option<u64>,
    /// Where the run reports its progress (see `Launch::progress`).
    pub progress: ProgressHook,
}

impl RunSpec {
    /// A timing-only run of `count` elements of `dtype` (sum, root 0, no data,
    /// no trace, no memory limit beyond the machine's).
    pub fn timing(count: usize, dtype: DType, fabric: FabricModel) -> Self {
        RunSpec {
            count,
            dtype,
            op: RedOp::Sum,
            root: 0,
            data: false,
            trace: false,
            why: false,
            fabric,
            ties: TieOrder::default(),
            max_memory: None,
            progress: ProgressHook::default(),
        }
    }
}

/// What a run gives.
pub struct RunResult {
    /// The simulation outcome (report, graphs, spans).
    pub outcome: Outcome,
    /// Elements that differ from the expected result (0 when the data was not run).
    pub wrong: usize,
    /// Elements checked.
    pub checked: usize,
    /// The ranks, in rank order.
    pub pes: Vec<PeId>,
}

/// Why a collective could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The simulation failed (trace, pairing, deadlock...).
    #[error(transparent)]
    Sim(#[from] SimError),
    /// An algorithm that asks for more ranks than the topology has (or none).
    #[error("algorithm `{algorithm}` asks for {world} ranks; topology `{topology}` has {pes} PEs")]
    WorldSize {
        /// The algorithm.
        algorithm: String,
        /// The ranks it asks for.
        world: usize,
        /// The topology's name.
        topology: String,
        /// The PEs the topology offers the algorithm.
        pes: usize,
    },
    /// A registered neighbour map that cannot be built over the PEs.
    #[error("algorithm `{algorithm}`: neighbour map `{map}`: {reason}")]
    CustomMap {
        /// The algorithm.
        algorithm: String,
        /// The map's registered name.
        map: String,
        /// What the map's builder said.
        reason: String,
    },
    /// A custom map kind asked of [`neighbor_map`], which only builds shipped kinds.
    #[error("a custom neighbour map is built by its algorithm (see `algorithm_map`)")]
    CustomMapKind,
    /// A shipped neighbour map that cannot be built over the PEs.
    #[error(transparent)]
    Neighbors(#[from] NeighborError),
    /// PEs the hierarchical map cannot cover: not whole cubes of whole SIPs
    /// in structural order.
    #[error("the hierarchical map needs whole cubes of whole SIPs in structural order; {pes} PEs are not")]
    HierarchicalOrder {
        /// The number of PEs.
        pes: usize,
    },
    /// More than one SIP, but not whole SIPs, for the hierarchical map.
    #[error("the hierarchical map needs whole SIPs ({per_sip} PEs each) when it spans several; got {pes}")]
    HierarchicalSips {
        /// PEs in one SIP.
        per_sip: usize,
        /// The number of PEs.
        pes: usize,
    },
    /// A number of PEs that is not one per cube of whole SIPs.
    #[error("the inter-cube maps need one PE per cube of whole SIPs ({cubes} per SIP); got {pes}")]
    IntercubeSips {
        /// Cubes in one SIP.
        cubes: usize,
        /// The number of PEs.
        pes: usize,
    },
    /// A cube mesh with no cycle through every cube.
    #[error(
        "a {rows}x{cols} cube mesh has no cycle through every cube (one dimension must be even)"
    )]
    NoCubeCycle {
        /// Mesh rows.
        rows: usize,
        /// Mesh columns.
        cols: usize,
    },
    /// A SIP the topology does not have.
    #[error("SIP {sip} is not in topology `{topology}`")]
    NoSuchSip {
        /// The SIP.
        sip: u16,
        /// The topology's name.
        topology: String,
    },
    /// An algorithm whose kernel is not registered.
    #[error("no kernel `{kernel}` is registered")]
    UnknownKernel {
        /// The kernel's name.
        kernel: String,
    },
    /// A count of zero elements.
    #[error("count must be at least 1")]
    ZeroCount,
    /// A root that is not a rank.
    #[error("root {root} is not a rank (world size {world})")]
    BadRoot {
        /// The root asked for.
        root: usize,
        /// The world size.
        world: usize,
    },
    /// An all-to-all with fewer elements per rank than ranks.
    #[error(
        "an all-to-all of {count} elements per rank over {world} ranks has no block to send: \
         the count must be at least the world size"
    )]
    AllToAllCount {
        /// Elements per rank.
        count: usize,
        /// The world size.
        world: usize,
    },
    /// A data run whose check would need more host memory than allowed.
    #[error(
        "checking {elems} elements ({world} ranks x {count}) needs more host memory than a data run may use \
         ({limit} elements); run timing only (data off, `-c 0`) or a smaller size"
    )]
    DataTooLarge {
        /// Elements to check.
        elems: usize,
        /// The world size.
        world: usize,
        /// Elements per rank.
        count: usize,
        /// The most elements a data run may check.
        limit: usize,
    },
    /// Setting up or reading the collective's buffer failed.
    #[error(transparent)]
    Memory(#[from] MemError),
    /// A kernel whose element type is fixed to another type than the run's.
    #[error(
        "kernel `{kernel}` ({file}:{line}) takes `{param}: {ty}`, so it runs {only} only, not {asked}: \
         make its element type a parameter (`fn {kernel}<T: Element>({param}: Ptr<T>, ..)`) \
         to run every type"
    )]
    FixedDtype {
        /// The kernel.
        kernel: String,
        /// Its source file.
        file: String,
        /// Its line.
        line: u32,
        /// The parameter.
        param: String,
        /// The parameter's declared type.
        ty: String,
        /// The element type the kernel is written for.
        only: DType,
        /// The element type of the run.
        asked: DType,
    },
    /// A kernel parameter the driver of a collective does not pass.
    #[error(
        "kernel `{kernel}` ({file}:{line}) takes `{param}`, which a collective's kernel cannot: \
         the driver passes {}",
        DRIVER_PARAMS.join(", ")
    )]
    UnknownParam {
        /// The kernel.
        kernel: String,
        /// Its source file.
        file: String,
        /// Its line.
        line: u32,
        /// The parameter.
        param: String,
    },
    /// An index past what a symbolic check can name.
    #[error("{value} is too large for a symbolic check")]
    SymbolicIndex {
        /// The index.
        value: usize,
    },
    /// A kernel that computes something the symbolic check cannot follow.
    #[error("{0}")]
    NotSymbolic(LaunchError),
}

/// The largest integer up to which every integer is exact in `dtype`.
fn exact_limit(dtype: DType) -> u64 {
    match dtype {
        DType::F16 => 2048,
        DType::Bf16 => 256,
        DType::F32 | DType::I32 => 1 << 24,
        DType::Bool => 1,
    }
}

/// The input of rank `r` at element `i`, for `w` ranks.
pub fn input(dtype: DType, w: usize, r: usize, i: usize) -> f32 {
    let per = exact_limit(dtype) / w as u64;
    if per >= 1 {
        let m = per.min(8) + 1;
        ((r as u64 * 7 + i as u64 * 13) % m) as f32
    } else {
        let k = (w as u64).div_ceil(exact_limit(dtype));
        f32::from(u8::from((r as u64 + i as u64) % k == 0))
    }
}

/// Writes `input(dtype, w, r, i)` for `i` in `0..out.len()` into `out`,
/// stepping the residue instead of dividing per element.
pub fn fill_input(dtype: DType, w: usize, r: usize, out: &mut [f32]) {
    let per = exact_limit(dtype) / w as u64;
    if per >= 1 {
        let m = per.min(8) + 1;
        let step = 13 % m;
        let mut x = (r as u64 * 7) % m;
        for o in out.iter_mut() {
            *o = x as f32;
            x += step;
            if x >= m {
                x -= m;
            }
        }
    } else {
        for (i, o) in out.iter_mut().enumerate() {
            *o = input(dtype, w, r, i);
        }
    }
}

/// The most elements (over all ranks) a run executes and checks on the host
/// (the inputs, the device memory and the expected values each hold them).
pub const MAX_CHECKED_ELEMS: usize = 1 << 28;

/// A value no correct result has (marks elements a collective must overwrite).
const POISON: f32 = -7.0;

/// One PE (the first) per cube, SIP by SIP; inside a SIP the centre cube
/// first, then the others by Manhattan distance from it (ties by index), so
/// that a heap-ordered tree over them is rooted at the centre cube.
pub fn intercube_ranks(topo: &Topology) -> Vec<PeId> {
    let (rows, cols) = topo.cube_mesh();
    let (cr, cc) = ((rows as i32 - 1) / 2, (cols as i32 - 1) / 2);
    let mut order: Vec<u16> = (0..topo.cubes_per_sip()).collect();
    order.sort_by_key(|c| {
        let (r, k) = (*c as i32 / cols as i32, *c as i32 % cols as i32);
        ((r - cr).abs() + (k - cc).abs(), *c)
    });
    (0..topo.num_sips())
        .flat_map(|s| order.iter().map(move |c| PeId::new(s, *c, 0)))
        .collect()
}

/// The ranks of an algorithm on a topology: its world size, or every PE, in
/// structural order (one PE per cube for the inter-cube maps).
pub fn ranks(topo: &Topology, algo: &Algorithm) -> Result<Vec<PeId>, RunError> {
    let all: Vec<PeId> = if algo.topology.one_pe_per_cube() {
        intercube_ranks(topo)
    } else {
        topo.pes().collect()
    };
    let w = algo.world.unwrap_or(all.len());
    if w == 0 || w > all.len() {
        return Err(RunError::WorldSize {
            algorithm: algo.name.clone(),
            world: w,
            topology: topo.name().to_string(),
            pes: all.len(),
        });
    }
    Ok(all[..w].to_vec())
}

/// The most square `rows x cols` factorisation of `w` (cols >= rows).
pub fn torus_shape(w: usize) -> (usize, usize) {
    let mut rows = (w as f64).sqrt() as usize;
    while rows > 1 && w % rows != 0 {
        rows -= 1;
    }
    (rows.max(1), w / rows.max(1))
}

/// The neighbour map of an algorithm over `pes`: its registered map, or its shipped kind's.
pub fn algorithm_map(
    topo: &Topology,
    algo: &Algorithm,
    pes: &[PeId],
) -> Result<NeighborMap, RunError> {
    match &algo.custom_map {
        Some(c) => c.build(topo, pes).map_err(|reason| RunError::CustomMap {
            algorithm: algo.name.clone(),
            map: c.name.clone(),
            reason,
        }),
        None => neighbor_map(topo, algo.topology, pes),
    }
}

/// The tree of [`range_tree`](crate::algorithms::tree::range_tree) over
/// `pes` in rank order (`Parent`, `Left`, `Right`): the map of
/// `tree_allreduce`, between PEs and between ranks.
pub fn range_tree_map(pes: &[PeId]) -> NeighborMap {
    let mut map = NeighborMap::empty("tree");
    for (r, pe) in pes.iter().enumerate() {
        let (parent, left, right) = crate::algorithms::tree::range_tree(pes.len(), r);
        for (d, q) in [
            (Dir::Parent, parent),
            (Dir::Left, left),
            (Dir::Right, right),
        ] {
            if let Some(q) = q {
                map.set(*pe, d, pes[q]);
            }
        }
    }
    map
}

/// The neighbour map of a shipped kind over `pes` (an empty one for
/// [`MapKind::Ranks`], whose kernels address their peers by rank).
pub fn neighbor_map(topo: &Topology, kind: MapKind, pes: &[PeId]) -> Result<NeighborMap, RunError> {
    let bad = RunError::Neighbors;
    match kind {
        MapKind::Ranks => Ok(NeighborMap::empty("ranks")),
        MapKind::Custom => Err(RunError::CustomMapKind),
        MapKind::Ring => NeighborMap::ring(pes).map_err(bad),
        MapKind::Torus2d => {
            let (rows, cols) = torus_shape(pes.len());
            NeighborMap::grid2d(pes, rows, cols, true).map_err(bad)
        }
        MapKind::Tree => Ok(range_tree_map(pes)),
        MapKind::Hierarchical => {
            let per_sip = topo.cubes_per_sip() as usize * topo.pes_per_cube() as usize;
            let whole: Vec<PeId> = topo.pes().take(pes.len()).collect();
            if pes.len() % per_sip != 0 && pes.len() % topo.pes_per_cube() as usize != 0
                || whole != pes
            {
                return Err(RunError::HierarchicalOrder { pes: pes.len() });
            }
            if pes.len() > per_sip && pes.len() % per_sip != 0 {
                return Err(RunError::HierarchicalSips {
                    per_sip,
                    pes: pes.len(),
                });
            }
            NeighborMap::hierarchical(pes).map_err(bad)
        }
        MapKind::IntercubeRing | MapKind::IntercubeTorus2d | MapKind::IntercubeMesh2d => {
            let cubes = topo.cubes_per_sip() as usize;
            if pes.len() % cubes != 0 {
                return Err(RunError::IntercubeSips {
                    cubes,
                    pes: pes.len(),
                });
            }
            let mut map = NeighborMap::empty("intercube");
            for sip in pes.chunks(cubes) {
                map.merge(&NeighborMap::tree(sip).map_err(bad)?);
            }
            let roots: Vec<PeId> = pes.chunks(cubes).map(|s| s[0]).collect();
            if roots.len() > 1 {
                let (rows, cols) = torus_shape(roots.len());
                match kind {
                    MapKind::IntercubeRing => {
                        map.merge(
                            &NeighborMap::ring_dirs("", &roots, Dir::SipE, Dir::SipW)
                                .map_err(bad)?,
                        );
                    }
                    _ => {
                        let wrap = kind == MapKind::IntercubeTorus2d;
                        let grid = NeighborMap::grid2d(&roots, rows, cols, wrap).map_err(bad)?;
                        for (a, d, b) in grid.iter() {
                            let sd = match d {
                                Dir::E => Dir::SipE,
                                Dir::W => Dir::SipW,
                                Dir::S => Dir::SipS,
                                _ => Dir::SipN,
                            };
                            map.set(a, sd, b);
                        }
                    }
                }
            }
            Ok(map)
        }
    }
}

/// Runs an algorithm once.
pub fn run(topo: &Topology, algo: &Algorithm, spec: &RunSpec) -> Result<RunResult, RunError> {
    let pes = ranks(topo, algo)?;
    run_on(topo, algo, &pes, spec)
}

/// `algo` set up on every PE of its world under `spec`, as a launch with
/// data off: what the queue benchmark and the lowering checks compile.
fn timing_launch(
    topo: &Topology,
    algo: &Algorithm,
    spec: &RunSpec,
) -> Result<(Machine, Launch<'static>), RunError> {
    let pes = ranks(topo, algo)?;
    let Setup {
        machine,
        kernel,
        args,
        map,
        ..
    } = setup(topo, algo, &pes, spec)?;
    let launch = Launch::new(kernel, args, pes)
        .neighbors(map)
        .ipcq(algo.ipcq.clone())
        .data(false)
        .fabric(spec.fabric)
        .ties(spec.ties);
    Ok((machine, launch))
}

/// The event queue's mix of pushes and pops in a run of `algo` on every PE
/// of its world (for the queue benchmark).
pub fn event_mix(
    topo: &Topology,
    algo: &Algorithm,
    spec: &RunSpec,
) -> Result<Vec<kernbench_core::sim::queue::MixOp>, RunError> {
    let (mut machine, launch) = timing_launch(topo, algo, spec)?;
    Ok(kernbench_core::sim::record_event_mix(
        &mut machine,
        &launch,
    )?)
}

/// Every rank's program as the engine would run `algo` under `spec` with
/// data and trace off, and the memory each remote route leads to (see
/// [`kernbench_core::passes::bound_programs`]): with `lower_each`, every
/// rank lowered on its own, else ranks of one graph shape lowering once.
#[doc(hidden)]
pub fn bound_programs(
    topo: &Topology,
    algo: &Algorithm,
    spec: &RunSpec,
    lower_each: bool,
) -> Result<(Vec<PeProgram>, Vec<Endpoint>), RunError> {
    let (machine, launch) = timing_launch(topo, algo, spec)?;
    kernbench_core::passes::bound_programs(&machine, &launch, lower_each)
        .map_err(|e| RunError::Sim(e.into()))
}

/// How many ranks of `algo` under `spec` a timing run lowers on their own
/// (see [`kernbench_core::passes::lowered_alone`]).
#[doc(hidden)]
pub fn lowered_alone(topo: &Topology, algo: &Algorithm, spec: &RunSpec) -> Result<usize, RunError> {
    let (machine, launch) = timing_launch(topo, algo, spec)?;
    kernbench_core::passes::lowered_alone(&machine, &launch).map_err(|e| RunError::Sim(e.into()))
}

/// Runs an algorithm on the given ranks.
pub fn run_on(
    topo: &Topology,
    algo: &Algorithm,
    pes: &[PeId],
    spec: &RunSpec,
) -> Result<RunResult, RunError> {
    let Setup {
        mut machine,
        buf,
        kernel,
        args,
        map,
    } = setup(topo, algo, pes, spec)?;
    let launch = Launch::new(kernel, args, pes.to_vec())
        .neighbors(map)
        .ipcq(algo.ipcq.clone())
        .data(spec.data)
        .trace(spec.trace)
        .why(spec.why)
        .fabric(spec.fabric)
        .ties(spec.ties)
        .max_memory(spec.max_memory)
        .progress(spec.progress.clone());
    let outcome = simulate_full(&mut machine, &launch)?;
    let (wrong, checked) = if spec.data {
        check(&machine, &buf, algo.collective, spec, pes.len())?
    } else {
        (0, 0)
    };
    Ok(RunResult {
        outcome,
        wrong,
        checked,
        pes: pes.to_vec(),
    })
}

/// A collective set up on a fresh machine, ready to launch: the buffer
/// (holding the inputs when the spec runs data), the kernel, its arguments
/// and the neighbour map.
pub(crate) struct Setup {
    /// The machine.
    pub(crate) machine: Machine,
    /// The buffer: rank `r`'s vector at elements `r * count ..`.
    pub(crate) buf: Buffer,
    /// The kernel for the spec's element type.
    pub(crate) kernel: &'static dyn kernbench_tl::Kernel,
    /// Its arguments.
    pub(crate) args: KernelArgs,
    /// The neighbour map.
    pub(crate) map: NeighborMap,
}

/// The parameters a collective's kernel may take, by name; the driver passes
/// each one the kernel declares, and refuses a kernel that takes another.
///
/// - `buf: Ptr<T>`: one buffer over the ranks, rank `r`'s vector at elements `r * n ..`;
/// - `n`: elements of each rank's vector; `seg`: elements of one message;
/// - `op`: the reduction (0 sum, 1 max, 2 min); `root`: the root of a broadcast, reduce or gather;
/// - `cols`: columns of the 2D torus over the ranks;
/// - `pes`, `cubes`: PEs of a cube and cubes of a SIP the hierarchical map spans;
/// - `sip_cols`, `net`: the inter-cube maps' SIP torus columns and network (0 ring, 1 torus, 2 mesh).
pub const DRIVER_PARAMS: [&str; 10] = [
    "buf", "n", "seg", "op", "root", "cols", "pes", "cubes", "sip_cols", "net",
];

/// Checks a spec against an algorithm and sets the collective up on `pes`.
pub(crate) fn setup(
    topo: &Topology,
    algo: &Algorithm,
    pes: &[PeId],
    spec: &RunSpec,
) -> Result<Setup, RunError> {
    let w = pes.len();
    let kernel =
        kernbench_tl::find_kernel(&algo.kernel).ok_or_else(|| RunError::UnknownKernel {
            kernel: algo.kernel.clone(),
        })?;
    if spec.count == 0 {
        return Err(RunError::ZeroCount);
    }
    if algo.collective.has_root() && spec.root >= w {
        return Err(RunError::BadRoot {
            root: spec.root,
            world: w,
        });
    }
    if algo.collective == Collective::AllToAll && spec.count < w {
        return Err(RunError::AllToAllCount {
            count: spec.count,
            world: w,
        });
    }
    let elems = w.saturating_mul(spec.count);
    if spec.data && elems > MAX_CHECKED_ELEMS {
        return Err(RunError::DataTooLarge {
            elems,
            world: w,
            count: spec.count,
            limit: MAX_CHECKED_ELEMS,
        });
    }
    let map = algorithm_map(topo, algo, pes)?;
    let mut machine = Machine::new(topo.clone())?;
    let n = spec.count;
    let buf = machine.alloc(spec.dtype, w * n, pes)?;
    let c = algo.collective;
    if spec.data {
        // Rank by rank, so setting up holds one rank's vector at a time.
        let mut init = vec![0f32; n];
        for r in 0..w {
            fill_input(spec.dtype, w, r, &mut init);
            match c {
                Collective::AllReduce
                | Collective::ReduceScatter
                | Collective::Reduce
                | Collective::AllToAll => {}
                Collective::AllGather | Collective::Gather => {
                    let (s, l) = kernbench_ccl_chunk(n, w, r);
                    init[..s].fill(POISON);
                    init[s + l..].fill(POISON);
                }
                Collective::Broadcast if r != spec.root => init.fill(POISON),
                Collective::Broadcast => {}
            }
            debug_assert!(init
                .iter()
                .enumerate()
                .all(|(i, x)| (*x == POISON) != holds_input(c, n, w, spec.root, r, i)));
            machine.write_buffer_range(&buf, r * n, &init)?;
        }
    }
    let es = spec.dtype.size() as u64;
    let seg = (algo.seg_bytes / es).max(1) as i64;
    let (_, cols) = torus_shape(w);
    // The cubes of a SIP the hierarchical kernel's cube ring spans: every
    // cube, or the whole cubes of a launch smaller than one SIP (which its
    // map accepts). The inter-cube kernels count every cube of a SIP.
    let mut cubes = topo.cubes_per_sip() as usize;
    if algo.topology == MapKind::Hierarchical {
        cubes = cubes.min((w / topo.pes_per_cube().max(1) as usize).max(1));
    }
    let all = KernelArgs::new()
        .with(
            "buf",
            ArgValue::Ptr {
                va: buf.va,
                dtype: spec.dtype,
                len: buf.len,
            },
        )
        .int("n", n as i64)
        .int("seg", seg)
        .int("op", spec.op.code())
        .int("root", spec.root as i64)
        .int("cols", cols as i64)
        .int("pes", topo.pes_per_cube() as i64)
        .int("cubes", cubes as i64)
        .int(
            "sip_cols",
            torus_shape((w / topo.cubes_per_sip().max(1) as usize).max(1)).1 as i64,
        )
        .int(
            "net",
            match algo.topology {
                MapKind::IntercubeTorus2d => 1,
                MapKind::IntercubeMesh2d => 2,
                _ => 0,
            },
        );
    debug_assert!(DRIVER_PARAMS.iter().all(|p| all.get(p).is_some()));
    let mut args = KernelArgs::new();
    let kname = kernel.meta().name;
    for p in kernel.meta().params {
        if let Some(d) = p.dtype.filter(|d| *d != spec.dtype) {
            return Err(RunError::FixedDtype {
                kernel: kname.to_string(),
                file: kernel.meta().file.to_string(),
                line: kernel.meta().line,
                param: p.name.to_string(),
                ty: p.ty.to_string(),
                only: d,
                asked: spec.dtype,
            });
        }
        let Some(v) = all.get(p.name) else {
            return Err(RunError::UnknownParam {
                kernel: kname.to_string(),
                file: kernel.meta().file.to_string(),
                line: kernel.meta().line,
                param: p.name.to_string(),
            });
        };
        args.set(p.name, v.clone());
    }
    Ok(Setup {
        machine,
        buf,
        kernel,
        args,
        map,
    })
}

/// Whether element `i` of rank `r` starts with the rank's input (the others
/// start poisoned: the collective must overwrite them).
pub(crate) fn holds_input(
    c: Collective,
    n: usize,
    w: usize,
    root: usize,
    r: usize,
    i: usize,
) -> bool {
    match c {
        Collective::AllReduce
        | Collective::ReduceScatter
        | Collective::Reduce
        | Collective::AllToAll => true,
        Collective::AllGather | Collective::Gather => {
            let (s, l) = kernbench_ccl_chunk(n, w, r);
            (s..s + l).contains(&i)
        }
        Collective::Broadcast => r == root,
    }
}

/// The rank whose chunk each element is in.
pub(crate) fn owners(n: usize, w: usize) -> Vec<usize> {
    let mut owner = vec![0usize; n];
    for q in 0..w {
        let (s, l) = kernbench_ccl_chunk(n, w, q);
        owner[s..s + l].fill(q);
    }
    owner
}

/// Whose input element `i` must end with: the reduction over every rank
/// (`None`), or one rank's (`Some`). `owner` is the owner of element `i`.
/// An all-to-all moves elements between places; see [`all_to_all_source`].
pub(crate) fn source_rank(c: Collective, owner: usize, root: usize) -> Option<usize> {
    match c {
        Collective::AllReduce | Collective::ReduceScatter | Collective::Reduce => None,
        Collective::AllGather | Collective::Gather => Some(owner),
        Collective::Broadcast => Some(root),
        Collective::AllToAll => None,
    }
}

/// Where element `i` of rank `r` comes from in an all-to-all of `n`
/// elements per rank over `w` ranks: `(rank, element)`. With blocks of
/// `b = n / w`, element `t` of block `j` comes from element `t` of block
/// `r` of rank `j`; the last `n mod w` elements stay where they are.
pub fn all_to_all_source(n: usize, w: usize, r: usize, i: usize) -> (usize, usize) {
    let b = n / w.max(1);
    if b == 0 || i >= w * b {
        return (r, i);
    }
    let (j, t) = (i / b, i % b);
    (j, r * b + t)
}

/// Whether element `i` (owned by `owner`) of rank `r` has a promised value.
pub(crate) fn is_checked(c: Collective, owner: usize, r: usize, root: usize) -> bool {
    match c {
        Collective::ReduceScatter => owner == r,
        Collective::Reduce | Collective::Gather => r == root,
        _ => true,
    }
}

/// Compares the buffer with the expected result: (wrong, checked) elements.
pub(crate) fn check(
    machine: &Machine,
    buf: &Buffer,
    c: Collective,
    spec: &RunSpec,
    w: usize,
) -> Result<(usize, usize), RunError> {
    let n = spec.count;
    // The expected vector, once: O(w n).
    let owner = owners(n, w);
    // A reduction over ranks depends on `i` only through its residue when
    // the inputs are periodic: fold each residue once.
    let per = exact_limit(spec.dtype) / w as u64;
    let period = if per >= 1 {
        (per.min(8) + 1) as usize
    } else {
        0
    };
    let reduced_at = |i: usize| {
        (1..w).fold(f64::from(input(spec.dtype, w, 0, i)), |a, q| {
            spec.op.apply(a, f64::from(input(spec.dtype, w, q, i)))
        })
    };
    // Element i has residue (13 i) mod m, which element (13^-1 ...) shares:
    // find, for each residue, the first element with it.
    let by_residue: Vec<Option<f64>> = if period > 0 {
        let mut t = vec![None; period];
        for i in 0..n.min(period * period) {
            let k = (i as u64 * 13 % period as u64) as usize;
            if t[k].is_none() {
                t[k] = Some(reduced_at(i));
            }
        }
        t
    } else {
        Vec::new()
    };
    let expect: Vec<f64> = (0..n)
        .map(|i| match source_rank(c, owner[i], spec.root) {
            None => by_residue
                .get((i as u64 * 13 % period.max(1) as u64) as usize)
                .copied()
                .flatten()
                .unwrap_or_else(|| reduced_at(i)),
            Some(q) => f64::from(input(spec.dtype, w, q, i)),
        })
        .collect();
    let (mut wrong, mut checked) = (0, 0);
    // Rank by rank, so the check holds one rank's vector at a time.
    for r in 0..w {
        let out = machine.read_buffer_range(buf, r * n, n)?;
        if c == Collective::AllToAll {
            for (i, got) in out.iter().enumerate() {
                let (q, j) = all_to_all_source(n, w, r, i);
                checked += 1;
                wrong += usize::from(f64::from(*got) != f64::from(input(spec.dtype, w, q, j)));
            }
        } else if (0..w).all(|q| is_checked(c, q, r, spec.root)) {
            // Every element promised (the common case): one tight pass.
            checked += n;
            wrong += out
                .iter()
                .zip(&expect)
                .filter(|(got, want)| f64::from(**got) != **want)
                .count();
        } else {
            for (i, (got, want)) in out.iter().zip(&expect).enumerate() {
                if is_checked(c, owner[i], r, spec.root) {
                    checked += 1;
                    wrong += usize::from(f64::from(*got) != *want);
                }
            }
        }
    }
    Ok((wrong, checked))
}

fn kernbench_ccl_chunk(n: usize, w: usize, c: usize) -> (usize, usize) {
    crate::algorithms::common::chunk(n, w, c)
}

/// One PE per cube of SIP `sip`, the cubes in a cycle of neighbouring cubes
/// (a serpentine through the cube mesh, closed along its first column), so
/// that a ring over them crosses one UCIe link per hop and no link twice:
/// an uncontended ring. Needs an even number of rows or of columns (or a
/// single row or column of at most two cubes).
pub fn cube_cycle(topo: &Topology, sip: u16) -> Result<Vec<PeId>, RunError> {
    let (rows, cols) = topo.cube_mesh();
    let (rows, cols) = (rows as usize, cols as usize);
    let at = |r: usize, c: usize| PeId::new(sip, (r * cols + c) as u16, 0);
    let mut v = Vec::new();
    if rows * cols <= 2 {
        for r in 0..rows {
            for c in 0..cols {
                v.push(at(r, c));
            }
        }
    } else if rows % 2 == 0 && cols >= 2 {
        // Down the first column, then serpentine back up through the others.
        for r in 0..rows {
            v.push(at(r, 0));
        }
        for r in (0..rows).rev() {
            if (rows - 1 - r) % 2 == 0 {
                for c in 1..cols {
                    v.push(at(r, c));
                }
            } else {
                for c in (1..cols).rev() {
                    v.push(at(r, c));
                }
            }
        }
    } else if cols % 2 == 0 && rows >= 2 {
        for c in 0..cols {
            v.push(at(0, c));
        }
        for c in (0..cols).rev() {
            if (cols - 1 - c) % 2 == 0 {
                for r in 1..rows {
                    v.push(at(r, c));
                }
            } else {
                for r in (1..rows).rev() {
                    v.push(at(r, c));
                }
            }
        }
    } else {
        return Err(RunError::NoCubeCycle { rows, cols });
    }
    if sip >= topo.num_sips() {
        return Err(RunError::NoSuchSip {
            sip,
            topology: topo.name().to_string(),
        });
    }
    Ok(v)
}
