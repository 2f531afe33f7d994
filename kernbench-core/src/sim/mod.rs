//! The event-driven simulation of a launch: compile it ([`crate::passes`]:
//! trace, fuse, lower, plan TCM, pair, route) and run
//! all PEs on one timeline of integer picoseconds.
//!
//! Modules: `memory` (what a launch will hold, checked before it
//! compiles), then the run: `engine` (wiring only) over [`queue`] (the event
//! queue), `pe` (engines and HBM channels), [`ipcq`] (ring slots, credits,
//! posted receives, in the message or the slot model) and [`fabric`]
//! (links); `data` (numeric execution) and [`report`] read what it leaves.
//! [`lower`] and [`pairing`] are the passes' [`crate::passes::lower`] and
//! [`crate::passes::pair`], whose programs and channels the run reads.

pub(crate) mod data;
pub mod domain;
mod engine;
pub mod error;
pub mod fabric;
pub mod id;
pub mod ipcq;
mod memory;
pub mod messages;
mod pe;
pub mod progress;
pub mod queue;
pub(crate) mod race;
pub mod report;
pub mod why;

/// What MATH work costs; lowering reads it ([`crate::passes::cost`]).
pub use crate::passes::cost;
pub use crate::passes::lower;
pub use crate::passes::pair as pairing;
pub use crate::passes::tcm::TcmError;
pub use crate::passes::trace::{CmdTable, LAUNCH_COMMAND_BUDGET};
pub use engine::Span;
pub use error::{
    CommSide, Deadlock, LaunchError, Mismatch, NoProgress, PairingError, Race, RaceAccess,
    RouteError, SimError, Wait, Waiter,
};
pub use ipcq::FabricModel;
pub use lower::{PeProgram, Unit};
pub use memory::{available_memory, MemoryEstimate};
pub use messages::Message;
pub use progress::{Progress, ProgressHook};
pub use report::{
    Bound, BoundBy, EngineBusy, LinkUse, MemoryUse, PeBound, PeReport, RemoteLink, Report,
};

use crate::ir::{ArgValue, CommandGraph, KernelArgs};
use crate::machine::Machine;
use crate::neighbors::NeighborMap;
use crate::passes::{self, trace::check_launch};
use crate::program::Program;
use crate::{PeId, Ps};

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
    /// and message records of a trace, for [`why`] (what made the run as
    /// slow as it is). Off by default: the run then records nothing per op.
    pub why: bool,
    /// IPCQ settings for this launch (slots, slot size, buffer kind); the topology's when `None`.
    pub ipcq: Option<crate::topology::IpcqSpec>,
    /// How IPCQ messages cross the fabric.
    pub fabric: FabricModel,
    /// Keep every instance's graph, and its program's labels and TCM map, in
    /// the [`Outcome`] (for plans); implied by `data` and `trace`.
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

    /// Keeps op spans and programs for [`why`] (see [`Launch::why`]).
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

/// Everything a finished run leaves: the report, the traced graphs and lowered programs, and the spans.
pub struct Outcome {
    /// The report.
    pub report: Report,
    /// The graph of each instance, when the launch executed data or kept a
    /// trace; empty otherwise (the run keeps only [`Outcome::tables`]).
    pub graphs: Vec<CommandGraph>,
    /// Location, mnemonic and direction of every command of each instance.
    pub tables: Vec<CmdTable>,
    /// The lowered program of each instance, when the launch executed data or
    /// kept a trace, graphs or spans for [`why`]; empty otherwise.
    pub programs: Vec<PeProgram>,
    /// Op spans, when the launch asked for them ([`Launch::trace`] or [`Launch::why`]).
    pub spans: Vec<Span>,
    /// Link occupancy, when the launch asked for spans.
    pub link_spans: Vec<fabric::LinkSpan>,
    /// IPCQ messages from send to receive, when the launch asked for spans.
    pub messages: Vec<messages::Message>,
    /// IPCQ messages sent in the run.
    pub sends: u64,
    /// Distinct lowered programs the run held (instances with equal programs share one).
    pub distinct_programs: usize,
    /// Where the run's wall time went (host time, not simulated time: it
    /// varies from run to run).
    pub wall: WallTimes,
}

/// Host wall time of a run's phases.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct WallTimes {
    /// The memory estimate (tracing a sample of instances).
    pub estimate: std::time::Duration,
    /// Tracing, pairing and lowering every instance.
    pub compile: std::time::Duration,
    /// The event-driven run.
    pub simulate: std::time::Duration,
}

impl Outcome {
    /// IPCQ messages sent in the run.
    pub fn messages_sent(&self) -> u64 {
        self.sends
    }
}

/// Simulates a launch and returns its report.
pub fn simulate(machine: &mut Machine, launch: &Launch) -> Result<Report, SimError> {
    simulate_full(machine, launch).map(|o| o.report)
}

/// Simulates a launch and returns everything it produced.
pub fn simulate_full(machine: &mut Machine, launch: &Launch) -> Result<Outcome, SimError> {
    run_launch(machine, launch, false, None).map(|(o, _)| o)
}

/// Simulates a launch with `domain` computing what its commands do, in
/// simulated-time order: each command executes when its last op completes,
/// each message is put on its channel when its send starts. The launch's
/// own [`Launch::data`] is then moot (the domain is what runs); timing is
/// the same as without data.
///
/// With [`Numeric`](domain::Numeric) this is `--verify-data`; with a
/// symbolic domain it checks a collective in the order the machine would
/// run it rather than in program order.
pub fn simulate_in(
    machine: &mut Machine,
    launch: &Launch,
    domain: &mut dyn domain::ValueDomain,
) -> Result<Outcome, SimError> {
    // The domain walks the graphs.
    let launch = Launch {
        keep_graphs: true,
        ..launch.clone()
    };
    run_launch(machine, &launch, false, Some(domain)).map(|(o, _)| o)
}

/// Simulates a launch and records its event queue's mix of pushes and pops
/// (for the queue benchmark).
pub fn record_event_mix(
    machine: &mut Machine,
    launch: &Launch,
) -> Result<Vec<queue::MixOp>, SimError> {
    run_launch(machine, launch, true, None).map(|(_, m)| m)
}

fn run_launch(
    machine: &mut Machine,
    launch: &Launch,
    record_mix: bool,
    domain: Option<&mut dyn domain::ValueDomain>,
) -> Result<(Outcome, Vec<queue::MixOp>), SimError> {
    let topo = machine.topology().clone();
    check_launch(&topo, launch)?;
    let mut wall = WallTimes::default();
    let limit = launch
        .max_memory
        .map(|b| (b, true))
        .or_else(|| memory::available_memory().map(|b| (b, false)));
    let clock = std::time::Instant::now();
    if let Some((limit, explicit)) = limit {
        let estimate = memory::estimate(machine, launch)?;
        let held = if explicit { estimate.machine_bytes } else { 0 };
        if estimate.bytes.saturating_add(held) > limit {
            return Err(SimError::TooLarge {
                estimate,
                limit,
                explicit,
            });
        }
    }
    let passes::Compiled {
        programs,
        bindings,
        tables,
        graphs,
        channels,
        chan_routes,
        routes,
        route_ends,
        pcs,
    } = {
        wall.estimate = clock.elapsed();
        let clock = std::time::Instant::now();
        let c = passes::compile(machine, launch)?;
        wall.compile = clock.elapsed();
        c
    };
    let spec = topo.pe_spec().clone();
    // Launch: host -> IO_CPU -> M_CPU -> PE_CPU; IO_CPU stamps the common start.
    let start: Ps = topo.launch_start_ps(launch.pes.iter().copied());
    let ipcq = launch.ipcq.clone().unwrap_or_else(|| topo.ipcq().clone());
    let drain_gbps = topo.ipcq_drain_gbps(&ipcq);
    let mut domain: Option<Box<dyn domain::ValueDomain + '_>> = match domain {
        Some(d) => Some(Box::new(d)),
        None => launch
            .data
            .then(|| Box::new(domain::Numeric::new()) as Box<dyn domain::ValueDomain>),
    };
    if let Some(d) = domain.as_mut() {
        d.begin(&graphs, &channels)?;
    }
    let cfg = engine::EngineConfig {
        start,
        pes: &launch.pes,
        graphs: &graphs,
        tables: &tables,
        channels: &channels,
        chan_routes,
        routes: &routes,
        links: topo.links(),
        spec: &spec,
        ipcq: &ipcq,
        drain_gbps,
        domain,
        trace: launch.trace,
        spans: launch.trace || launch.why,
        model: launch.fabric,
        record_mix,
        progress: launch.progress.clone(),
        slow: if topo.config().slow.is_empty() {
            Vec::new()
        } else {
            launch.pes.iter().map(|&pe| topo.straggle(pe)).collect()
        },
    };
    let keep = launch.data || launch.trace || launch.keep_graphs || launch.why;
    let distinct_programs = {
        let mut p: Vec<*const PeProgram> = programs.iter().map(std::sync::Arc::as_ptr).collect();
        p.sort_unstable();
        p.dedup();
        p.len()
    };
    let mut eng = engine::Engine::new(cfg, programs, bindings, &pcs);
    let clock = std::time::Instant::now();
    eng.run(machine)?;
    wall.simulate = clock.elapsed();
    let mix = eng.take_mix();
    let sends = eng.sends;
    let report = report::build(
        &topo,
        launch.program.name(),
        start,
        &eng,
        (&routes, &route_ends),
    );
    // Each instance's program with its own channels and routes, for
    // plans and timelines; a run that kept no graphs leaves none.
    let programs: Vec<PeProgram> = if keep {
        eng.insts
            .iter_mut()
            .map(|s| {
                let prog = std::mem::take(&mut s.prog);
                passes::bound_program(prog, std::mem::take(&mut s.bind), &pcs)
            })
            .collect()
    } else {
        Vec::new()
    };
    let spans = eng.spans.take().unwrap_or_default();
    let link_spans = eng.fabric.trace.take().unwrap_or_default();
    let messages = eng
        .msg_log
        .take()
        .map(|l| l.messages(&channels))
        .unwrap_or_default();
    // The engine borrows the graphs and tables (its domain may hold on to them).
    drop(eng);
    Ok((
        Outcome {
            report,
            graphs,
            tables,
            programs,
            spans,
            link_spans,
            messages,
            sends,
            distinct_programs,
            wall,
        },
        mix,
    ))
}
