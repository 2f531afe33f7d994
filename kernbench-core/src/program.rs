//! What the simulator runs: a [`Program`] (anything that traces into a
//! command graph per program instance) and a [`Launch`] of it over a grid of
//! PEs, with its settings and the errors of a launch that cannot be set up.
//! Both the compiler passes and the simulator read a launch; it sits below
//! them.

use crate::addr::AddrError;
use crate::ir::{ArgValue, CommandGraph, KernelArgs, SrcLoc, TraceError, TraceLimits};
use crate::neighbors::NeighborMap;
use crate::{PeId, Ps};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// A program the simulator can launch: it traces into one command graph per
/// program instance. Kernels written with `#[kernel]` implement it.
pub trait Program: Sync {
    /// Its name.
    fn name(&self) -> &str;
    /// The command graph of the instance at `pid` of `grid` under `args`.
    fn trace(
        &self,
        args: &KernelArgs,
        grid: &[u32],
        pid: &[u32],
    ) -> Result<CommandGraph, TraceError>;

    /// [`Program::trace`] under explicit limits (a launch splits its command
    /// budget over its instances). The default ignores the limits.
    fn trace_limited(
        &self,
        args: &KernelArgs,
        grid: &[u32],
        pid: &[u32],
        limits: TraceLimits,
    ) -> Result<CommandGraph, TraceError> {
        let _ = limits;
        self.trace(args, grid, pid)
    }
}

/// One launch: a program over a grid of instances placed on PEs.
#[derive(Clone)]
pub struct Launch<'a> {
    /// The program (a `#[kernel]`).
    pub program: &'a dyn Program,
    /// Arguments, by parameter name.
    pub args: KernelArgs,
    /// Arguments that differ per instance, by parameter name: instance `i`
    /// sees value `i` of each list in place of (or besides) [`Launch::args`].
    /// An SPMD launch whose instances each pass their own buffer, as the
    /// ranks of a collective do, uses them (see [`Launch::per_instance`]).
    pub instance_args: Vec<(String, Vec<ArgValue>)>,
    /// The grid (1 to 3 axes); its size must equal the number of PEs.
    pub grid: Vec<u32>,
    /// The PE of each instance, instance 0 first (axis 0 fastest).
    pub pes: Vec<PeId>,
    /// The neighbour map the kernel's directions resolve through.
    pub neighbors: Option<NeighborMap>,
    /// Execute the data (ndarray); timing is the same either way.
    pub data: bool,
    /// Keep a span per op for timelines.
    pub trace: bool,
    /// Keep each op's span and each instance's program, without the link
    /// and message records of a trace, for [`crate::sim::why`] (what made the run as
    /// slow as it is). Off by default: the run then records nothing per op.
    pub why: bool,
    /// IPCQ settings for this launch (slots, slot size, buffer kind); the topology's when `None`.
    pub ipcq: Option<crate::topology::IpcqSpec>,
    /// How IPCQ messages cross the fabric.
    pub fabric: FabricModel,
    /// Which of one instant's events the engine handles first.
    pub ties: TieOrder,
    /// Keep every instance's graph, and its program's labels and TCM map, in
    /// the [`crate::sim::Outcome`] (for plans); implied by `data` and `trace`.
    pub keep_graphs: bool,
    /// The most memory the run may take, bytes; what the machine has
    /// available when `None`. A run estimated above it is refused before it starts.
    pub max_memory: Option<u64>,
    /// Where the run reports its progress (nowhere by default).
    pub progress: ProgressHook,
    /// Run the epilogue fusion pass ([`crate::passes::fuse`]) on every
    /// traced graph (on by default; off to see or time the unfused form).
    pub fuse: bool,
}

impl<'a> Launch<'a> {
    /// A launch of `program` with one instance per PE of `pes` on a 1D grid.
    /// `args` are [`KernelArgs`] or what converts into them, such as a
    /// kernel's typed argument builder (`my_kernel::args().x(&buf)`).
    pub fn new(program: &'a dyn Program, args: impl Into<KernelArgs>, pes: Vec<PeId>) -> Self {
        Launch {
            program,
            grid: vec![pes.len() as u32],
            args: args.into(),
            instance_args: Vec::new(),
            pes,
            neighbors: None,
            data: true,
            trace: false,
            why: false,
            ipcq: None,
            fabric: FabricModel::default(),
            ties: TieOrder::default(),
            max_memory: None,
            keep_graphs: false,
            progress: ProgressHook::default(),
            fuse: true,
        }
    }

    /// Binds parameter `name` per instance: instance `i` sees `values[i]`
    /// (one value per PE of the launch, in instance order). Replaces a value
    /// of the same name in [`Launch::args`] and an earlier per-instance
    /// binding of it.
    pub fn per_instance(mut self, name: &str, values: Vec<ArgValue>) -> Self {
        self.instance_args.retain(|(n, _)| n != name);
        self.instance_args.push((name.to_string(), values));
        self
    }

    /// The arguments instance `i` sees: [`Launch::args`] with its
    /// per-instance values written in.
    pub fn args_of(&self, i: usize) -> std::borrow::Cow<'_, KernelArgs> {
        if self.instance_args.is_empty() {
            return std::borrow::Cow::Borrowed(&self.args);
        }
        let mut args = self.args.clone();
        for (name, values) in &self.instance_args {
            if let Some(v) = values.get(i) {
                args.set(name, v.clone());
            }
        }
        std::borrow::Cow::Owned(args)
    }

    /// Switches the epilogue fusion pass on or off (see [`Launch::fuse`]).
    pub fn fuse(mut self, on: bool) -> Self {
        self.fuse = on;
        self
    }

    /// Sends progress to `hook` (see [`Launch::progress`]).
    pub fn progress(mut self, hook: ProgressHook) -> Self {
        self.progress = hook;
        self
    }

    /// Keeps the graphs and full programs in the outcome (see [`Launch::keep_graphs`]).
    pub fn keep_graphs(mut self, on: bool) -> Self {
        self.keep_graphs = on;
        self
    }

    /// Sets the memory limit (see [`Launch::max_memory`]).
    pub fn max_memory(mut self, bytes: Option<u64>) -> Self {
        self.max_memory = bytes;
        self
    }

    /// Chooses the fabric model.
    pub fn fabric(mut self, model: FabricModel) -> Self {
        self.fabric = model;
        self
    }

    /// Chooses which of one instant's events the engine handles first.
    pub fn ties(mut self, order: TieOrder) -> Self {
        self.ties = order;
        self
    }

    /// Sets the grid.
    pub fn grid(mut self, grid: &[u32]) -> Self {
        self.grid = grid.to_vec();
        self
    }

    /// Installs a neighbour map.
    pub fn neighbors(mut self, map: NeighborMap) -> Self {
        self.neighbors = Some(map);
        self
    }

    /// Switches data execution on or off.
    pub fn data(mut self, on: bool) -> Self {
        self.data = on;
        self
    }

    /// Overrides the topology's IPCQ settings.
    pub fn ipcq(mut self, spec: crate::topology::IpcqSpec) -> Self {
        self.ipcq = Some(spec);
        self
    }

    /// Keeps spans for a timeline.
    pub fn trace(mut self, on: bool) -> Self {
        self.trace = on;
        self
    }

    /// Keeps op spans and programs for [`crate::sim::why`] (see [`Launch::why`]).
    pub fn why(mut self, on: bool) -> Self {
        self.why = on;
        self
    }
}

/// Grid position of instance `i` (axis 0 fastest).
pub fn grid_pos(grid: &[u32], mut i: usize) -> Vec<u32> {
    grid.iter()
        .map(|g| {
            let p = (i % *g as usize) as u32;
            i /= *g as usize;
            p
        })
        .collect()
}

/// How the fabric moves IPCQ messages (see [`crate::sim::ipcq`]).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum FabricModel {
    /// A message costs O(1) events: its ring-slot train is derived in closed form.
    #[default]
    Messages,
    /// Every ring slot is its own packet, credit and drain event (the reference).
    Slots,
}

impl FabricModel {
    /// Both models, fast one first.
    pub const ALL: [FabricModel; 2] = [FabricModel::Messages, FabricModel::Slots];

    /// Its name on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            FabricModel::Messages => "messages",
            FabricModel::Slots => "slots",
        }
    }
}

impl fmt::Display for FabricModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FabricModel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "messages" => Ok(FabricModel::Messages),
            "slots" => Ok(FabricModel::Slots),
            _ => Err(format!("`{s}` is not a fabric model (messages, slots)")),
        }
    }
}

/// Which of one instant's events the engine handles first. Where two of
/// them ask for one link or HBM pseudo-channel, the one handled first is
/// served first, so this order can decide contended runs; running both shows
/// how much a result depends on it.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum TieOrder {
    /// In the order they were scheduled (first in, first out).
    #[default]
    Scheduled,
    /// The last scheduled first (last in, first out).
    Reversed,
    /// By rank, whenever each was scheduled: op completions first; then
    /// the slot model's sends, drains and credits, or the message model's
    /// injections and pumps; then PEs that begin, launches that open and
    /// engines an earlier run left busy. Within a kind, by instance (launch
    /// order, then PE order), then by op or channel. A fixed-priority
    /// arbiter: where two PEs ask for one link or channel in one instant,
    /// the lower goes first.
    Ranked,
}

impl TieOrder {
    /// Every order, the default first.
    pub const ALL: [TieOrder; 3] = [TieOrder::Scheduled, TieOrder::Reversed, TieOrder::Ranked];

    /// Its name on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            TieOrder::Scheduled => "scheduled",
            TieOrder::Reversed => "reversed",
            TieOrder::Ranked => "ranked",
        }
    }

    /// What the event queue does with an instant's events.
    pub(crate) const fn within(self) -> crate::sim::queue::Within {
        use crate::sim::queue::Within;
        match self {
            TieOrder::Scheduled => Within::Fifo,
            TieOrder::Reversed => Within::Lifo,
            TieOrder::Ranked => Within::Least,
        }
    }
}

impl fmt::Display for TieOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TieOrder {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "scheduled" => Ok(TieOrder::Scheduled),
            "reversed" => Ok(TieOrder::Reversed),
            "ranked" => Ok(TieOrder::Ranked),
            _ => Err(format!(
                "`{s}` is not a tie order (scheduled, reversed, ranked)"
            )),
        }
    }
}

/// A step of a run's progress.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Progress {
    /// Instances traced and lowered so far, of all.
    Compiled {
        /// Done.
        done: usize,
        /// In all.
        of: usize,
    },
    /// Events handled so far, and the simulated time reached.
    Simulated {
        /// Events handled.
        events: u64,
        /// Simulated time, ps.
        now_ps: Ps,
    },
}

/// Where a run sends its [`Progress`]: nowhere by default. The callback may
/// be called from the compiler's worker threads; it never changes a result.
#[derive(Clone, Default)]
pub struct ProgressHook(Option<Arc<dyn Fn(Progress) + Send + Sync>>);

impl ProgressHook {
    /// A hook calling `f`.
    pub fn new(f: impl Fn(Progress) + Send + Sync + 'static) -> Self {
        ProgressHook(Some(Arc::new(f)))
    }

    /// Reports `p`, if anyone listens.
    pub fn report(&self, p: Progress) {
        if let Some(f) = &self.0 {
            f(p);
        }
    }

    /// `true` when someone listens.
    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }
}

impl std::fmt::Debug for ProgressHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "ProgressHook(set)"
        } else {
            "ProgressHook(none)"
        })
    }
}

/// A launch that cannot be set up: its grid, its PEs, or a TCM plan the
/// allocator rejects.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum LaunchError {
    /// The launch names no PE.
    #[error("a launch needs at least one PE")]
    NoPes,
    /// The grid is empty, has more than three dimensions, or its size is not
    /// the number of PEs.
    #[error(
        "grid {grid:?} has {} instances but {pes} PEs were given",
        instances.map_or_else(|| "more than 2^64".to_string(), |g| g.to_string())
    )]
    GridSize {
        /// The grid.
        grid: Vec<u32>,
        /// Its number of instances, `None` when it overflows.
        instances: Option<usize>,
        /// The number of PEs given.
        pes: usize,
    },
    /// A PE the topology does not have.
    #[error("PE {pe} is not part of topology `{topology}`")]
    PeNotInTopology {
        /// The PE.
        pe: PeId,
        /// The topology's name.
        topology: String,
    },
    /// A per-instance argument without exactly one value per instance.
    #[error("argument `{name}` is bound per instance with {values} values, but the launch has {instances} instances")]
    InstanceArgs {
        /// The parameter.
        name: String,
        /// Values given.
        values: usize,
        /// Instances of the launch.
        instances: usize,
    },
    /// Launches of one run that ask for different fabric models.
    #[error("launch {launch} of the run uses the {fabric} fabric model, launch 0 the {first} one; a run has one")]
    MixedFabric {
        /// The launch that differs.
        launch: usize,
        /// Its model.
        fabric: FabricModel,
        /// The first launch's model.
        first: FabricModel,
    },
    /// Launches of one run that ask for different tie orders.
    #[error("launch {launch} of the run handles ties in the {ties} order, launch 0 in the {first} one; a run has one")]
    MixedTies {
        /// The launch that differs.
        launch: usize,
        /// Its order.
        ties: TieOrder,
        /// The first launch's order.
        first: TieOrder,
    },
    /// A launch of a run that waits for itself or a later launch.
    #[error("launch {launch} of the run waits for launch {after}, which is not an earlier one")]
    WaitsForLater {
        /// The launch.
        launch: usize,
        /// What it waits for.
        after: usize,
    },
    /// A PE listed twice.
    #[error("PE {pe} is given twice")]
    DuplicatePe {
        /// The PE.
        pe: PeId,
    },
    /// A PE's TCM size the tile allocator cannot manage.
    #[error("{0}")]
    TcmSize(AddrError),
    /// The tile allocator rejected a step of a TCM plan.
    #[error("TCM plan: {0}")]
    TcmPlan(AddrError),
    /// A value domain that cannot follow one of the commands of the launch
    /// (the symbolic check knows fewer ops than the timed run).
    #[error("{domain} cannot follow `{op}` (PE {pe} at {loc}): {supported}")]
    Unsupported {
        /// The domain, for example `symbolic verification`.
        domain: &'static str,
        /// The command's mnemonic.
        op: &'static str,
        /// The PE.
        pe: PeId,
        /// The kernel line.
        loc: SrcLoc,
        /// What the domain does follow.
        supported: &'static str,
    },
}
