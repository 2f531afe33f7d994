//! Errors of the host runtime: each names the rank, the parameter, the shard
//! or the tensor it is about.

use crate::machine::MemError;
use crate::neighbors::NeighborError;
use crate::sim::{LaunchError, SimError};
use crate::{DType, PeId};
use std::fmt;

/// Why a runtime call failed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RuntimeError {
    /// A machine whose memory cannot be laid out from its topology (an
    /// address layout or an HBM slice that does not fit).
    #[error("machine: {0}")]
    Machine(MemError),
    /// A shard index past a tensor's shards.
    #[error("the tensor has {shards} shard(s); there is no shard {shard}")]
    NoSuchShard {
        /// The index asked for.
        shard: usize,
        /// The tensor's shards.
        shards: usize,
    },
    /// An event waited on or timed before it was recorded on a stream.
    #[error("the event was never recorded on a stream")]
    EventNotRecorded,
    /// A SIP that is not in the machine.
    #[error("device {sip} does not exist: the machine has {sips} SIP(s)")]
    NoSuchDevice {
        /// The SIP asked for.
        sip: usize,
        /// SIPs in the machine.
        sips: usize,
    },
    /// A placement that cannot be resolved for a tensor.
    #[error("placement of a {shape:?} tensor: {kind}")]
    Placement {
        /// The tensor's shape.
        shape: Vec<usize>,
        /// What is wrong.
        kind: PlacementError,
    },
    /// A tensor shape the runtime does not handle, or host data of
    /// another shape than the tensor or slice it is copied into.
    #[error("shape {shape:?}: {kind}")]
    Shape {
        /// The shape (of the tensor asked for, or of the host array).
        shape: Vec<usize>,
        /// What is wrong.
        kind: TensorShapeError,
    },
    /// Host data of the wrong element type for a tensor.
    #[error("{what}: the tensor holds {tensor}, the host array {host}")]
    DType {
        /// What was attempted.
        what: String,
        /// The tensor's element type.
        tensor: DType,
        /// The host array's element type.
        host: DType,
    },
    /// A slice outside the tensor.
    #[error("slice rows {rows:?}, cols {cols:?} is outside the {shape:?} tensor")]
    SliceOutOfRange {
        /// Rows asked for.
        rows: std::ops::Range<usize>,
        /// Columns asked for.
        cols: std::ops::Range<usize>,
        /// The tensor's shape.
        shape: Vec<usize>,
    },
    /// A slice that is not inside a single shard.
    #[error(
        "slice rows {rows:?}, cols {cols:?} crosses shards {}: a slice must lie inside one \
         shard (read the whole tensor, or copy it from a host array, instead)",
        joined(.shards, ", ")
    )]
    CrossShard {
        /// Rows asked for.
        rows: std::ops::Range<usize>,
        /// Columns asked for.
        cols: std::ops::Range<usize>,
        /// The PEs of the shards it touches, in shard order.
        shards: Vec<crate::PeId>,
    },
    /// A memory error of the machine (allocation, translation).
    #[error("{what}: {err}")]
    Memory {
        /// What was attempted.
        what: MemoryOp,
        /// The machine's error.
        err: Box<MemError>,
    },
    /// A kernel parameter with no argument.
    #[error("launch of `{kernel}`: no argument for parameter `{param}` ({msg})")]
    MissingArg {
        /// The kernel.
        kernel: String,
        /// The parameter.
        param: String,
        /// What the kernel expects.
        msg: String,
    },
    /// An argument of the wrong kind or element type for its parameter.
    #[error("launch of `{kernel}`: argument `{param}`: {msg}")]
    WrongArg {
        /// The kernel.
        kernel: String,
        /// The parameter.
        param: String,
        /// What is wrong.
        msg: String,
    },
    /// An argument no parameter of the kernel takes.
    #[error(
        "launch of `{kernel}`: the kernel has no parameter `{param}` (it takes {})",
        joined(&.known.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>(), ", ")
    )]
    UnknownArg {
        /// The kernel.
        kernel: String,
        /// The argument's name.
        param: String,
        /// The kernel's parameters, in order.
        known: Vec<String>,
    },
    /// A launch that cannot be set up (grid, PEs, streams).
    #[error("launch of `{kernel}`: {kind}")]
    Launch {
        /// The kernel.
        kernel: String,
        /// What is wrong.
        kind: LaunchSetupError,
    },
    /// The simulation of a launch failed.
    #[error("launch of `{kernel}`: {err}")]
    Sim {
        /// The kernel.
        kernel: String,
        /// The simulator's error (it names the PE and the kernel line).
        err: Box<SimError>,
    },
    /// `spawn` was asked for no rank, or more ranks than the machine has SIPs.
    #[error("world size {world}: one rank per SIP; the machine has {sips} SIP(s)")]
    WorldSize {
        /// The world size asked for.
        world: usize,
        /// SIPs in the machine.
        sips: usize,
    },
    /// A collective or barrier was abandoned because other ranks failed.
    #[error("rank {rank}: released from `{what}` because rank(s) {} failed", list(.failed))]
    Aborted {
        /// The rank that was waiting (or about to wait).
        rank: usize,
        /// What it waited in.
        what: String,
        /// The ranks whose failure aborted the run.
        failed: Vec<usize>,
    },
    /// A rank waits in a collective that another rank, already finished, never joined.
    #[error("rank {rank}: `{what}` can never complete: rank {exited} has already returned")]
    RankExited {
        /// The waiting rank.
        rank: usize,
        /// What it waits in.
        what: String,
        /// The rank that returned without joining.
        exited: usize,
    },
    /// Ranks called different collectives at the same point of the program.
    #[error("rank {rank} called `{called}` while rank(s) {} wait in `{pending}`", list(.waiting))]
    CollectiveMismatch {
        /// The rank that arrived with a different call.
        rank: usize,
        /// What it called.
        called: String,
        /// What the others wait in.
        pending: String,
        /// The ranks waiting.
        waiting: Vec<usize>,
    },
    /// A collective whose contributions do not fit together, or that cannot run.
    #[error("{what}: {kind}")]
    Collective {
        /// The collective (or the kernel it launches).
        what: String,
        /// What is wrong (naming the ranks).
        kind: CollectiveError,
    },
    /// A rank's worker panicked.
    #[error("rank {rank} panicked: {msg}")]
    Panicked {
        /// The rank.
        rank: usize,
        /// The panic message.
        msg: String,
    },
    /// A worker-context function called on a thread that runs no worker.
    #[error(
        "{call}() called outside a worker: it works inside the workers of Runtime::spawn \
         (elsewhere, use the methods of a Rank or Runtime handle)"
    )]
    NoWorker {
        /// The function.
        call: String,
    },
    /// A process group that cannot be set up or used (ranks out of range or
    /// repeated, a rank not in the group, the default group not initialised).
    #[error("process group: {0}")]
    ProcessGroup(GroupError),
    /// A tensor-parallel layer that cannot be built or run.
    #[error("tensor parallel: {0}")]
    TensorParallel(TpError),
}

// The wrapped errors of `RuntimeError` are part of its message, so they are
// not also its `source()`: a report that walks the chain would print them
// twice. `#[from]` would make them sources; these conversions do not.
impl From<GroupError> for RuntimeError {
    fn from(e: GroupError) -> Self {
        RuntimeError::ProcessGroup(e)
    }
}

impl From<TpError> for RuntimeError {
    fn from(e: TpError) -> Self {
        RuntimeError::TensorParallel(e)
    }
}

impl RuntimeError {
    /// A launch of `kernel` that cannot be set up.
    pub fn launch(kernel: impl Into<String>, kind: LaunchSetupError) -> RuntimeError {
        RuntimeError::Launch {
            kernel: kernel.into(),
            kind,
        }
    }
}

/// Why the runtime cannot set up a launch (see [`RuntimeError::Launch`]).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum LaunchSetupError {
    /// A grid that is empty, has more than three axes or an axis of 0.
    #[error("grid {grid:?} must have 1 to 3 non-zero axes")]
    Grid {
        /// The grid given.
        grid: Vec<u32>,
    },
    /// A grid with more instances than the current device has PEs.
    #[error("grid {grid:?} has {instances} instances; SIP {sip} has {pes} PEs")]
    TooFewPes {
        /// The grid given.
        grid: Vec<u32>,
        /// Its instances.
        instances: usize,
        /// The current device.
        sip: usize,
        /// PEs of that SIP.
        pes: usize,
    },
    /// A stream of another runtime.
    #[error("the stream belongs to another runtime")]
    ForeignStream,
    /// One of several streams belongs to another runtime.
    #[error("a stream belongs to another runtime")]
    ForeignStreams,
    /// A stream on another SIP than the tensor it works on.
    #[error("the stream is on SIP {stream}, the tensor on SIP {tensor}")]
    StreamDevice {
        /// The stream's SIP.
        stream: usize,
        /// The tensor's SIP.
        tensor: usize,
    },
    /// A launch the simulator cannot set up (grid and PEs, per-instance
    /// arguments, TCM plan).
    #[error(transparent)]
    Sim(LaunchError),
}

impl LaunchSetupError {
    /// A grid of `instances` instances given `pes` PEs.
    pub fn grid_size(grid: &[u32], instances: usize, pes: usize) -> LaunchSetupError {
        LaunchSetupError::Sim(LaunchError::GridSize {
            grid: grid.to_vec(),
            instances: Some(instances),
            pes,
        })
    }
}

/// Why a shape does not fit (see [`RuntimeError::Shape`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TensorShapeError {
    /// A tensor of no dimension or more than two.
    #[error("only 1-D and 2-D tensors are supported")]
    Rank,
    /// A tensor with a dimension of 0.
    #[error("a tensor needs at least one element")]
    Empty,
    /// A host array of another shape than the tensor it is copied into.
    #[error("the host array does not match the tensor's shape {tensor:?}")]
    HostArray {
        /// The tensor's shape.
        tensor: Vec<usize>,
    },
    /// A host array of another shape than the slice it is written to.
    #[error("the host array does not match the slice of {rows} x {cols}")]
    HostSlice {
        /// Rows of the slice.
        rows: usize,
        /// Columns of the slice.
        cols: usize,
    },
}

/// Why a placement cannot be resolved for a tensor (see
/// [`RuntimeError::Placement`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    /// A tensor of no dimension or more than two.
    #[error("only 1-D and 2-D tensors can be placed")]
    Rank,
    /// More cubes (or none) than a SIP has.
    #[error("{asked} cubes asked for; a SIP has {have}")]
    Cubes {
        /// Cubes asked for.
        asked: usize,
        /// Cubes of a SIP.
        have: usize,
    },
    /// More PEs per cube (or none) than a cube has.
    #[error("{asked} PEs per cube asked for; a cube has {have}")]
    Pes {
        /// PEs per cube asked for.
        asked: usize,
        /// PEs of a cube.
        have: usize,
    },
    /// Fewer rows or columns than the parts they are split into.
    #[error("cannot split {len} {dim} over {parts} {level}: use fewer {level}, or replicate")]
    TooFew {
        /// Rows or columns of the block split.
        len: usize,
        /// `rows` or `columns`.
        dim: &'static str,
        /// Parts asked for.
        parts: usize,
        /// `cubes` or `PEs`.
        level: &'static str,
    },
    /// A tile grid whose tiles are not one per unit.
    #[error("a {rows}x{cols} tile grid needs {} {level}, the placement uses {units}", rows * cols)]
    TileGrid {
        /// Tile rows.
        rows: usize,
        /// Tile columns.
        cols: usize,
        /// `cubes` or `PEs`.
        level: &'static str,
        /// Cubes or PEs the placement uses.
        units: usize,
    },
}

/// What the runtime did with a tensor's memory when the machine refused
/// (see [`RuntimeError::Memory`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MemoryOp {
    /// Allocating a tensor.
    #[error("allocating a {shape:?} {dtype} tensor")]
    Alloc {
        /// The tensor's shape.
        shape: Vec<usize>,
        /// Its element type.
        dtype: DType,
    },
    /// Reading a shard.
    #[error("read")]
    Read,
    /// Writing a shard.
    #[error("write")]
    Write,
    /// Freeing a tensor.
    #[error("free")]
    Free,
}

/// `items` joined by `sep`, each as it displays.
fn joined<T: std::fmt::Display>(items: &[T], sep: &str) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(sep)
}

/// `0, 2, 3`
pub(crate) fn list(v: &[usize]) -> String {
    // Runs of three or more consecutive ranks as `a-b`, so that a failure
    // that stops every rank of a large run stays one line.
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1] == v[j] + 1 {
            j += 1;
        }
        if j >= i + 2 {
            parts.push(format!("{}-{}", v[i], v[j]));
        } else {
            parts.extend(v[i..=j].iter().map(|r| r.to_string()));
        }
        i = j + 1;
    }
    parts.join(", ")
}

/// What a worker returns on failure: any error (runtime errors convert with `?`).
pub type WorkerError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// One rank's failure in a [`spawn`](crate::runtime::Runtime::spawn)ed run.
#[derive(Debug)]
pub struct RankFailure {
    /// The rank.
    pub rank: usize,
    /// Its error (a [`RuntimeError::Panicked`] when it panicked).
    pub error: WorkerError,
}

/// Why a [`spawn`](crate::runtime::Runtime::spawn)ed run failed.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The run could not start.
    #[error(transparent)]
    Invalid(RuntimeError),
    /// Ranks failed: the root causes, and the ranks released because of them.
    #[error("{}", describe(.failures, .released))]
    Failed {
        /// The root-cause ranks and their errors, in rank order.
        failures: Vec<RankFailure>,
        /// Ranks that stopped only because a sibling failed (released from a
        /// collective or barrier with [`RuntimeError::Aborted`]).
        released: Vec<usize>,
    },
}

impl SpawnError {
    /// The root-cause ranks, in rank order (empty when the run could not start).
    pub fn root_ranks(&self) -> Vec<usize> {
        match self {
            SpawnError::Invalid(_) => Vec::new(),
            SpawnError::Failed { failures, .. } => failures.iter().map(|f| f.rank).collect(),
        }
    }
}

fn describe(failures: &[RankFailure], released: &[usize]) -> String {
    // Ranks that failed with the same message are told once, with their
    // ranks (a kernel error on every rank of a 4096-rank run is one line).
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    let mut of_msg: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for f in failures {
        let msg = f.error.to_string();
        match of_msg.get(&msg) {
            Some(&g) => groups[g].1.push(f.rank),
            None => {
                of_msg.insert(msg.clone(), groups.len());
                groups.push((msg, vec![f.rank]));
            }
        }
    }
    let mut s = String::new();
    for (i, (msg, ranks)) in groups.iter().enumerate() {
        if i > 0 {
            s.push_str("; ");
        }
        let who = if ranks.len() == 1 { "rank" } else { "ranks" };
        s.push_str(&format!("{who} {} failed: {msg}", list(ranks)));
    }
    if !released.is_empty() {
        s.push_str(&format!(" (rank(s) {} were released)", list(released)));
    }
    s
}

impl fmt::Display for RankFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rank {}: {}", self.rank, self.error)
    }
}

/// Why a process group cannot be set up or used (see [`RuntimeError::ProcessGroup`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    /// `new_group` with no ranks.
    #[error("new_group({ranks:?}) on rank {on}: a group needs at least one rank")]
    Empty {
        /// The list passed.
        ranks: Vec<usize>,
        /// The calling rank.
        on: usize,
    },
    /// `new_group` naming a rank the run does not have.
    #[error("new_group({ranks:?}) on rank {on}: rank {rank} is not in the run (ranks 0..{world})")]
    OutOfRange {
        /// The list passed.
        ranks: Vec<usize>,
        /// The calling rank.
        on: usize,
        /// The rank out of range.
        rank: usize,
        /// Ranks in the run.
        world: usize,
    },
    /// `new_group` naming a rank twice.
    #[error("new_group({ranks:?}) on rank {on}: rank {rank} is listed twice")]
    Repeated {
        /// The list passed.
        ranks: Vec<usize>,
        /// The calling rank.
        on: usize,
        /// The rank listed twice.
        rank: usize,
    },
    /// Ranks that passed different lists to one `new_group`.
    #[error(
        "new_group: rank {rank} passed {passed:?}, rank {first_rank} passed {first:?}: every \
         rank must create the same groups in the same order"
    )]
    Disagree {
        /// A rank whose list differs from the first's.
        rank: usize,
        /// Its list.
        passed: Vec<usize>,
        /// The first rank to arrive.
        first_rank: usize,
        /// Its list.
        first: Vec<usize>,
    },
    /// A group used by a rank of another run.
    #[error("rank {rank}: the group {ranks:?} was made by another run")]
    OtherRun {
        /// The calling rank.
        rank: usize,
        /// The group's ranks.
        ranks: Vec<usize>,
    },
    /// A rank using a group it is not a member of.
    #[error("rank {rank} is not a member of the group of ranks {ranks:?}")]
    NotMember {
        /// The calling rank.
        rank: usize,
        /// The group's ranks.
        ranks: Vec<usize>,
    },
    /// `init_process_group` with values other than the worker's.
    #[error(
        "init_process_group(world_size = {world_size}, rank = {rank}) in the worker of rank \
         {have_rank} of a world of {have_world}: pass the rank and world size the worker was \
         spawned with"
    )]
    InitMismatch {
        /// The world size passed.
        world_size: usize,
        /// The rank passed.
        rank: usize,
        /// The worker's rank.
        have_rank: usize,
        /// The run's world size.
        have_world: usize,
    },
    /// A `dist` function called before `init_process_group`.
    #[error("{call}() in the worker of rank {rank} before dist::init_process_group")]
    NotInitialized {
        /// The function.
        call: String,
        /// The worker's rank.
        rank: usize,
    },
}

/// Why a collective between ranks cannot run (see [`RuntimeError::Collective`]):
/// the algorithm chosen, or the ranks' contributions, with the ranks and
/// values that do not fit.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CollectiveError {
    /// A tensor of a type collectives do not move (a mask).
    #[error(
        "collectives move f32, f16, bf16 or i32 tensors, not {dtype} masks; cast the mask to a \
         number type in a kernel first"
    )]
    NotNumeric {
        /// The tensor's element type.
        dtype: DType,
    },
    /// An algorithm name the registry does not hold.
    #[error("no algorithm `{name}` in the registry (known: {})", .known.join(", "))]
    UnknownAlgorithm {
        /// The name asked for.
        name: String,
        /// The registry's algorithms.
        known: Vec<String>,
    },
    /// An algorithm of another collective than the one it is used for.
    #[error("algorithm `{algorithm}` implements {implements}, not {wanted}")]
    WrongCollective {
        /// The algorithm.
        algorithm: String,
        /// The collective it implements.
        implements: &'static str,
        /// The collective it was asked to run.
        wanted: &'static str,
    },
    /// An algorithm whose neighbour map the runtime does not run between ranks.
    #[error(
        "algorithm `{algorithm}` needs a {map} map; between ranks this runtime runs [{}] \
         algorithms",
        .runs.join(", ")
    )]
    MapKind {
        /// The algorithm.
        algorithm: String,
        /// The map it needs.
        map: String,
        /// The maps the runtime runs between ranks for this collective.
        runs: Vec<String>,
    },
    /// An algorithm whose kernel has no form between ranks.
    #[error(
        "algorithm `{algorithm}` (kernel `{kernel}`) has no form between ranks; between ranks \
         this runtime runs {runs}"
    )]
    NoRankForm {
        /// The algorithm.
        algorithm: String,
        /// Its kernel.
        kernel: String,
        /// What the runtime runs between ranks for this collective.
        runs: &'static str,
    },
    /// A rank's tensor whose shards differ in length.
    #[error("rank {rank}'s tensor has shards of different sizes; a collective needs equal shards")]
    UnequalShards {
        /// The rank.
        rank: usize,
    },
    /// Ranks whose tensors differ in shape, type or number of shards.
    #[error(
        "rank {rank}'s tensor is {shape:?} {dtype} in {shards} shards, rank {first_rank}'s \
         {first_shape:?} {first_dtype} in {first_shards} shards: every rank must pass a tensor \
         of the same shape, type and placement"
    )]
    TensorMismatch {
        /// A rank whose tensor differs from the first's.
        rank: usize,
        /// Its shape.
        shape: Vec<usize>,
        /// Its element type.
        dtype: DType,
        /// Its shards.
        shards: usize,
        /// The first rank.
        first_rank: usize,
        /// Its shape.
        first_shape: Vec<usize>,
        /// Its element type.
        first_dtype: DType,
        /// Its shards.
        first_shards: usize,
    },
    /// Ranks that passed different values for an argument (a root, an op).
    #[error("rank {rank} passed {arg} {value}, rank {first_rank} passed {first_value}")]
    ArgMismatch {
        /// A rank whose value differs from the first's.
        rank: usize,
        /// The argument.
        arg: String,
        /// Its value.
        value: u64,
        /// The first rank.
        first_rank: usize,
        /// Its value.
        first_value: u64,
    },
    /// Ranks that reduce with different operations.
    #[error("rank {rank} reduces with {op}, rank {first_rank} with {first_op}")]
    OpMismatch {
        /// A rank whose operation differs from the first's.
        rank: usize,
        /// Its operation.
        op: &'static str,
        /// The first rank.
        first_rank: usize,
        /// Its operation.
        first_op: &'static str,
    },
    /// Two ranks with a shard on the same PE.
    #[error(
        "ranks {other} and {rank} both hold a shard on PE {pe}: each rank's tensor must live on \
         its own SIP (set_device)"
    )]
    SharedPe {
        /// The rank found to repeat the PE.
        rank: usize,
        /// The other rank on it.
        other: usize,
        /// The PE.
        pe: PeId,
    },
    /// A neighbour map that cannot be built over the ranks' PEs.
    #[error(transparent)]
    Map(NeighborError),
    /// A root that is not a rank of the run.
    #[error("root {root} is not a rank (world size {world})")]
    RootNotRank {
        /// The root given.
        root: usize,
        /// Ranks in the run.
        world: usize,
    },
    /// A root that is not a member of the group.
    #[error("root {root} is not a member of the group of ranks {ranks:?}")]
    RootNotMember {
        /// The root given.
        root: usize,
        /// The group's ranks.
        ranks: Vec<usize>,
    },
    /// A gather's input or output split over PEs (only the shardwise form takes them).
    #[error(
        "rank {rank}: input and output must be replicated (or on one PE), not split (the \
         _shards form gathers split tensors shard by shard)"
    )]
    GatherSplit {
        /// The rank.
        rank: usize,
    },
    /// A gather's output of the wrong shape or type for the gathered blocks.
    #[error(
        "rank {rank}: {world} blocks of {input:?} {dtype} make a {want:?} {dtype} tensor, not \
         {output:?} {output_dtype}"
    )]
    GatherShape {
        /// The rank.
        rank: usize,
        /// Members of the group.
        world: usize,
        /// The input's shape.
        input: Vec<usize>,
        /// The input's element type.
        dtype: DType,
        /// The shape the output must have.
        want: Vec<usize>,
        /// The output's shape.
        output: Vec<usize>,
        /// The output's element type.
        output_dtype: DType,
    },
    /// A gather's input and output on different PEs.
    #[error("rank {rank}: input and output must be placed on the same PEs")]
    GatherPes {
        /// The rank.
        rank: usize,
    },
    /// A gather's output shards not `world` times its input shards.
    #[error(
        "rank {rank}: every shard of the output must be {world} times as long as the input's \
         shard on its PE (split both the same way)"
    )]
    GatherShards {
        /// The rank.
        rank: usize,
        /// Members of the group.
        world: usize,
    },
    /// An all-to-all tensor split over PEs.
    #[error(
        "rank {rank}: the tensor must be replicated (or on one PE), not split: its blocks are \
         rows of the whole tensor"
    )]
    AllToAllSplit {
        /// The rank.
        rank: usize,
    },
    /// An all-to-all tensor whose rows do not cut into one block per member.
    #[error("rank {rank}: a first dimension of {rows} does not cut into {world} equal blocks")]
    AllToAllBlocks {
        /// The rank.
        rank: usize,
        /// The tensor's first dimension.
        rows: usize,
        /// Members of the group.
        world: usize,
    },
    /// Ranks whose rendezvous results are of different types.
    #[error("ranks disagreed on the result type")]
    ResultType,
    /// Ranks released from a collective with no rank that failed.
    #[error("rank(s) {} were released with no failing rank", list(.released))]
    ReleasedWithoutFailure {
        /// The ranks released.
        released: Vec<usize>,
    },
}

/// Why a tensor-parallel setting or layer cannot be built or run (see
/// [`RuntimeError::TensorParallel`]): what went wrong, and the layer and
/// rank it happened in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TpError {
    /// The layer (`ColumnParallelLinear`, `RowParallelLinear`, ...), absent
    /// for the settings of the run as a whole.
    pub layer: Option<&'static str>,
    /// The rank, for an error while running a layer.
    pub rank: Option<usize>,
    /// What went wrong.
    pub kind: TpErrorKind,
}

impl TpError {
    /// An error of the settings, in no layer.
    pub fn new(kind: TpErrorKind) -> TpError {
        TpError {
            layer: None,
            rank: None,
            kind,
        }
    }

    /// An error while building `layer`.
    pub fn build(layer: &'static str, kind: TpErrorKind) -> TpError {
        TpError {
            layer: Some(layer),
            rank: None,
            kind,
        }
    }

    /// An error while running `layer` on `rank`.
    pub fn forward(layer: &'static str, rank: usize, kind: TpErrorKind) -> TpError {
        TpError {
            layer: Some(layer),
            rank: Some(rank),
            kind,
        }
    }
}

impl fmt::Display for TpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.layer, self.rank) {
            (Some(l), Some(r)) => write!(f, "{l} on rank {r}: {}", self.kind),
            (Some(l), None) => write!(f, "{l}: {}", self.kind),
            (None, Some(r)) => write!(f, "rank {r}: {}", self.kind),
            (None, None) => write!(f, "{}", self.kind),
        }
    }
}

impl std::error::Error for TpError {}

/// What went wrong in a tensor-parallel setting or layer (see [`TpError`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TpErrorKind {
    /// A tensor-parallel size that does not divide the world size.
    #[error(
        "tensor-parallel size {tp} must divide the world size {world} (the data-parallel size \
         is world / tp)"
    )]
    Degree {
        /// The tensor-parallel size asked for.
        tp: usize,
        /// Ranks in the run.
        world: usize,
    },
    /// Activation rows that do not split into the bands of sequence parallelism.
    #[error("sequence parallelism: {rows} rows do not split into {tp} ranks x {pes} PEs")]
    SequenceRows {
        /// Rows of the activation.
        rows: usize,
        /// The tensor-parallel size.
        tp: usize,
        /// PEs each rank splits its rows over.
        pes: usize,
    },
    /// A global batch that does not split over the data-parallel replicas.
    #[error("a batch of {rows} rows does not split over {dp} data-parallel replicas")]
    Batch {
        /// Rows of the batch.
        rows: usize,
        /// The data-parallel size.
        dp: usize,
    },
    /// Weights of a type the layers do not run in.
    #[error("weights of type {dtype}; the layers run in f32, f16 or bf16")]
    WeightDType {
        /// The weights' element type.
        dtype: DType,
    },
    /// A column-parallel weight whose output features do not split over the ranks.
    #[error("{features} output features do not split over {tp} ranks")]
    SplitOutputs {
        /// Output features (columns of the weight).
        features: usize,
        /// The tensor-parallel size.
        tp: usize,
    },
    /// A row-parallel weight whose input features do not split over the ranks.
    #[error("{features} input features do not split over {tp} ranks")]
    SplitInputs {
        /// Input features (rows of the weight).
        features: usize,
        /// The tensor-parallel size.
        tp: usize,
    },
    /// A bias whose length is not the weight's output features.
    #[error("a bias of {len} elements for {features} output features")]
    BiasLength {
        /// Elements of the bias.
        len: usize,
        /// Output features of the weight.
        features: usize,
    },
    /// A block of width or MLP width 0.
    #[error("hidden size {hidden} and MLP size {ffn} must not be 0")]
    ZeroWidth {
        /// The hidden size.
        hidden: usize,
        /// The MLP's width.
        ffn: usize,
    },
    /// Attention heads that do not divide the hidden size.
    #[error("{heads} heads do not split the hidden size {hidden} into equal heads")]
    HeadWidth {
        /// Heads asked for.
        heads: usize,
        /// The hidden size.
        hidden: usize,
    },
    /// Attention heads that do not split over the tensor-parallel ranks.
    #[error(
        "{heads} heads do not split over {tp} tensor-parallel ranks (the heads must be a \
         multiple of tp)"
    )]
    HeadsPerRank {
        /// Heads asked for.
        heads: usize,
        /// The tensor-parallel size.
        tp: usize,
    },
    /// A weight matrix of the wrong shape.
    #[error("{name} is {got:?}, expected {want:?}")]
    WeightShape {
        /// The weight.
        name: &'static str,
        /// Its shape.
        got: (usize, usize),
        /// The shape the other weights call for.
        want: (usize, usize),
    },
    /// A weight vector (bias, norm scale) of the wrong length.
    #[error("{name} has {got} elements, expected {want}")]
    WeightLength {
        /// The weight.
        name: &'static str,
        /// Its length.
        got: usize,
        /// The length the other weights call for.
        want: usize,
    },
    /// An input that is not 2-D.
    #[error("the input must be 2-D, got {shape:?}")]
    InputRank {
        /// The input's shape.
        shape: Vec<usize>,
    },
    /// An input of the wrong width for a block.
    #[error("the input must be [seq, {hidden}], got {shape:?}")]
    InputWidth {
        /// The block's width.
        hidden: usize,
        /// The input's shape.
        shape: Vec<usize>,
    },
    /// An input whose features are not the layer's input features.
    #[error("the input has {got} features, the layer takes {want}")]
    InputFeatures {
        /// The input's features (columns).
        got: usize,
        /// The layer's input features.
        want: usize,
    },
    /// An input of another element type than the layer's weights.
    #[error("the input is {input}, the layer's weights {weights}")]
    InputDType {
        /// The input's element type.
        input: DType,
        /// The weights' element type.
        weights: DType,
    },
    /// An input not placed as the layer's activations are: rows split
    /// evenly over the layout's PEs.
    #[error(
        "the input's {rows} rows must split evenly over the layout's {pes} PEs, placed with \
         the layer's activation placement (use ModelParallel::input)"
    )]
    InputPlacement {
        /// The input's rows.
        rows: usize,
        /// PEs of the layout.
        pes: usize,
    },
    /// Output features that do not split into one chunk per rank for the
    /// overlapped GEMM and all-reduce.
    #[error("the layer's {features} output features do not split into one chunk per rank of {tp}")]
    OverlapChunks {
        /// Output features of the layer.
        features: usize,
        /// The tensor-parallel size.
        tp: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::AddressLayout;
    use std::error::Error as _;

    #[test]
    fn rank_lists_fold_runs_of_three_or_more() {
        assert_eq!(list(&[0, 2]), "0, 2");
        assert_eq!(list(&[0, 1]), "0, 1");
        assert_eq!(list(&[0, 1, 2, 3, 7, 9, 10, 11]), "0-3, 7, 9-11");
        assert_eq!(list(&[]), "");
    }

    #[test]
    fn ranks_that_fail_alike_are_told_once() {
        let fail = |rank: usize, msg: &str| RankFailure {
            rank,
            error: msg.to_string().into(),
        };
        let mut failures: Vec<RankFailure> = (0..256).map(|r| fail(r, "bad shape")).collect();
        failures[7] = fail(7, "out of memory");
        let e = SpawnError::Failed {
            failures,
            released: vec![300, 301, 302],
        };
        assert_eq!(
            e.to_string(),
            "ranks 0-6, 8-255 failed: bad shape; rank 7 failed: out of memory \
             (rank(s) 300-302 were released)"
        );
    }

    #[test]
    fn a_machine_error_says_the_memory_error_once() {
        let mem = MemError::from(AddressLayout::new(0, 1 << 30, 0, 0).unwrap_err());
        let e = RuntimeError::Machine(mem.clone());
        assert_eq!(e.to_string(), format!("machine: {mem}"));
        crate::testing::assert_said_once(&e);
        assert!(matches!(e, RuntimeError::Machine(m) if m == mem));
    }

    #[test]
    fn wrapped_errors_are_said_once() {
        let group = GroupError::Empty {
            ranks: vec![],
            on: 3,
        };
        let e = RuntimeError::from(group.clone());
        assert_eq!(e.to_string(), format!("process group: {group}"));
        crate::testing::assert_said_once(&e);
        let tp = TpError::new(TpErrorKind::Batch { rows: 3, dp: 2 });
        let e = RuntimeError::from(tp.clone());
        assert_eq!(e.to_string(), format!("tensor parallel: {tp}"));
        crate::testing::assert_said_once(&e);
    }

    #[test]
    fn a_collective_error_keeps_its_wording_and_sources() {
        let e = RuntimeError::Collective {
            what: "spawn".into(),
            kind: CollectiveError::ReleasedWithoutFailure {
                released: vec![0, 2],
            },
        };
        assert_eq!(
            e.to_string(),
            "spawn: rank(s) 0, 2 were released with no failing rank"
        );
        let map = crate::neighbors::NeighborMap::ring(&[]).unwrap_err();
        let kind = CollectiveError::Map(map.clone());
        // The map's error stands for the collective's: its words, its sources.
        assert_eq!(kind.to_string(), map.to_string());
        assert_eq!(
            kind.source().map(|s| s.to_string()),
            map.source().map(|s| s.to_string())
        );
        crate::testing::assert_said_once(&kind);
    }

    #[test]
    fn a_tensor_parallel_error_names_its_layer_and_rank() {
        let kind = TpErrorKind::Batch { rows: 3, dp: 2 };
        let msg = "a batch of 3 rows does not split over 2 data-parallel replicas";
        let e = RuntimeError::from(TpError::new(kind.clone()));
        assert_eq!(e.to_string(), format!("tensor parallel: {msg}"));
        let e = TpError::build("RowParallelLinear", kind.clone());
        assert_eq!(e.to_string(), format!("RowParallelLinear: {msg}"));
        let e = TpError::forward("RowParallelLinear", 3, kind.clone());
        assert_eq!(e.to_string(), format!("RowParallelLinear on rank 3: {msg}"));
        let e = TpError {
            rank: Some(1),
            ..TpError::new(kind)
        };
        assert_eq!(e.to_string(), format!("rank 1: {msg}"));
    }
}
