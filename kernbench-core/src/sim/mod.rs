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
//! [`crate::passes::pair`], whose programs and channels the run reads;
//! [`Launch`] and its settings are [`crate::program`]'s, and a
//! [`CompileError`] becomes the [`SimError`] of the same name.

mod cache;
pub(crate) mod data;
pub mod domain;
mod engine;
pub mod error;
pub mod fabric;
mod huge;
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
pub use crate::program::{
    grid_pos, FabricModel, Launch, LaunchError, Progress, ProgressHook, TieOrder,
};
pub use engine::Span;
pub use error::{
    CommSide, CompileError, Deadlock, Mismatch, NoProgress, PairingError, PeerHint, Race,
    RaceAccess, RouteError, SimError, Wait, Waiter,
};
pub use lower::{PeProgram, Unit};
pub use memory::{available_memory, MemoryEstimate};
pub use messages::Message;
pub use pe::PeBusy;
pub use report::{
    Bound, BoundBy, EngineBusy, LinkUse, MemoryUse, PeBound, PeReport, RemoteLink, Report,
};

use crate::ir::CommandGraph;
use crate::machine::Machine;
use crate::passes::{self, trace::check_launch};
use crate::{PeId, Ps};

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

/// A launch of a run of several ([`simulate_many`]): when the host issues
/// it and which earlier launches of the run it waits for.
#[derive(Clone)]
pub struct Queued<'a> {
    /// The launch.
    pub launch: Launch<'a>,
    /// When the host issues it, ps from the run's time zero. It begins its
    /// launch latency later ([`Topology::launch_start_ps`](crate::topology::Topology::launch_start_ps)),
    /// or when the last launch it waits for ends, whichever is later.
    pub issue_ps: Ps,
    /// Earlier launches of the run, by index, that must end before it begins
    /// (stream order, events waited on).
    pub after: Vec<usize>,
}

impl<'a> Queued<'a> {
    /// `launch` issued at time zero, waiting for nothing.
    pub fn new(launch: Launch<'a>) -> Self {
        Queued {
            launch,
            issue_ps: 0,
            after: Vec::new(),
        }
    }

    /// Issued by the host at `ps`.
    pub fn issued_at(mut self, ps: Ps) -> Self {
        self.issue_ps = ps;
        self
    }

    /// Waits for launch `k` of the run (an earlier one) to end.
    pub fn after(mut self, k: usize) -> Self {
        self.after.push(k);
        self
    }
}

/// When one launch of a run of several began and ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaunchTimes {
    /// The kernel.
    pub kernel: String,
    /// When it was issued, ps.
    pub issue_ps: Ps,
    /// When its instances were released (its start latency passed and
    /// what it waits for ended), ps.
    pub begin_ps: Ps,
    /// When its last instance ended, ps.
    pub end_ps: Ps,
}

/// What a run of several launches leaves: one outcome over all their
/// instances (in launch order, each launch's in its own order), and each
/// launch's times.
pub struct ManyOutcome {
    /// The run as a whole: its report covers every instance, link and
    /// memory of every launch, its kernel named after all of them.
    pub outcome: Outcome,
    /// Each launch's times, in the order given.
    pub launches: Vec<LaunchTimes>,
    /// The first instance of each launch in the outcome's instances, and
    /// one past the last as a final entry.
    pub first_instance: Vec<usize>,
    /// What the run leaves busy on its PEs, in its own time.
    pub busy: BusyUntil,
}

/// When each PE's engines and HBM pseudo-channels are free after a run:
/// what it leaves for a later run on those PEs to queue behind
/// ([`simulate_many_after`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BusyUntil(pub std::collections::HashMap<PeId, PeBusy>);

impl BusyUntil {
    /// The same times moved by `by` ps (earlier for a negative `by`, not before 0).
    pub fn shifted(&self, by: i128) -> BusyUntil {
        BusyUntil(self.0.iter().map(|(p, b)| (*p, b.shifted(by))).collect())
    }

    /// The later of the two, PE by PE and time by time.
    pub fn merge(&mut self, o: &BusyUntil) {
        for (pe, b) in &o.0 {
            match self.0.get_mut(pe) {
                Some(a) => a.merge(b),
                None => {
                    self.0.insert(*pe, b.clone());
                }
            }
        }
    }
}

/// Simulates several launches on one timeline: they contend for the PEs'
/// engines and HBM channels, and for the links, as the instances of one
/// launch do. Each begins when the host has issued it and its start
/// latency has passed, and when every launch it waits for has ended.
/// Instances of different launches placed on one PE share its engines:
/// each engine serves its instances' queues in turn.
///
/// The launches must agree on the fabric model and the tie order; data
/// execution, traces and kept graphs are on for all when one asks for them.
pub fn simulate_many(machine: &mut Machine, queued: &[Queued]) -> Result<ManyOutcome, SimError> {
    run_queued(machine, queued, false, None, None).map(|(o, _)| o)
}

/// [`simulate_many`] on PEs that an earlier run left busy: each engine and
/// HBM pseudo-channel of `busy` (in this run's time) serves the run's ops
/// only once it is free. The outcome's [`ManyOutcome::busy`] is what this
/// run leaves, for the next.
pub fn simulate_many_after(
    machine: &mut Machine,
    queued: &[Queued],
    busy: &BusyUntil,
) -> Result<ManyOutcome, SimError> {
    run_queued(machine, queued, false, None, Some(busy)).map(|(o, _)| o)
}

fn run_launch(
    machine: &mut Machine,
    launch: &Launch,
    record_mix: bool,
    domain: Option<&mut dyn domain::ValueDomain>,
) -> Result<(Outcome, Vec<queue::MixOp>), SimError> {
    let one = [Queued::new(launch.clone())];
    run_queued(machine, &one, record_mix, domain, None).map(|(o, mix)| (o.outcome, mix))
}

/// Checks a run's launches and brings their flags in line: what one asks
/// for (data, trace, graphs, spans) all get, since the run keeps one of
/// each per instance.
fn harmonise<'a>(
    topo: &crate::topology::Topology,
    queued: &[Queued<'a>],
) -> Result<Vec<Launch<'a>>, SimError> {
    let Some(first) = queued.first() else {
        return Err(SimError::Launch(LaunchError::NoPes));
    };
    let any = |f: fn(&Launch) -> bool| queued.iter().any(|q| f(&q.launch));
    let (data, trace, why, keep) = (
        any(|l| l.data),
        any(|l| l.trace),
        any(|l| l.why),
        any(|l| l.keep_graphs),
    );
    let mut out = Vec::with_capacity(queued.len());
    for (k, q) in queued.iter().enumerate() {
        check_launch(topo, &q.launch)?;
        if q.launch.fabric != first.launch.fabric {
            return Err(SimError::Launch(LaunchError::MixedFabric {
                launch: k,
                fabric: q.launch.fabric,
                first: first.launch.fabric,
            }));
        }
        if q.launch.ties != first.launch.ties {
            return Err(SimError::Launch(LaunchError::MixedTies {
                launch: k,
                ties: q.launch.ties,
                first: first.launch.ties,
            }));
        }
        if let Some(&a) = q.after.iter().find(|&&a| a >= k) {
            return Err(SimError::Launch(LaunchError::WaitsForLater {
                launch: k,
                after: a,
            }));
        }
        let mut l = q.launch.clone();
        (l.data, l.trace, l.why, l.keep_graphs) = (data, trace, why, keep);
        out.push(l);
    }
    Ok(out)
}

fn run_queued(
    machine: &mut Machine,
    queued: &[Queued],
    record_mix: bool,
    domain: Option<&mut dyn domain::ValueDomain>,
    busy: Option<&BusyUntil>,
) -> Result<(ManyOutcome, Vec<queue::MixOp>), SimError> {
    let topo = machine.topology().clone();
    let launches = harmonise(&topo, queued)?;
    let first = &launches[0];
    let mut wall = WallTimes::default();
    let limit = first
        .max_memory
        .map(|b| (b, true))
        .or_else(|| memory::available_memory().map(|b| (b, false)));
    let clock = std::time::Instant::now();
    if let Some((limit, explicit)) = limit {
        let mut estimate: Option<MemoryEstimate> = None;
        for l in &launches {
            let e = memory::estimate(machine, l)?;
            estimate = Some(match estimate {
                None => e,
                Some(t) => t.plus(&e),
            });
        }
        let estimate = estimate.expect("a run has a launch");
        let held = if explicit { estimate.machine_bytes } else { 0 };
        if estimate.bytes.saturating_add(held) > limit {
            return Err(SimError::TooLarge {
                estimate,
                limit,
                explicit,
            });
        }
    }
    wall.estimate = clock.elapsed();
    let clock = std::time::Instant::now();
    let spec = topo.pe_spec().clone();
    let mut gates = Vec::with_capacity(launches.len());
    let mut compiled: Option<passes::Compiled> = None;
    let mut first_instance = vec![0usize];
    let mut pes: Vec<PeId> = Vec::new();
    for (l, q) in launches.iter().zip(queued) {
        let c = passes::compile(machine, l)?;
        let at = pes.len() as u32;
        pes.extend_from_slice(&l.pes);
        first_instance.push(pes.len());
        let ipcq = l.ipcq.clone().unwrap_or_else(|| topo.ipcq().clone());
        gates.push(engine::Gate {
            insts: at..pes.len() as u32,
            // Launch: host -> IO_CPU -> M_CPU -> PE_CPU; IO_CPU stamps the common start.
            start: q.issue_ps + topo.launch_start_ps(l.pes.iter().copied()),
            after: q.after.iter().map(|&a| a as u32).collect(),
            drain_gbps: topo.ipcq_drain_gbps(&ipcq),
            ipcq,
        });
        match compiled.as_mut() {
            None => compiled = Some(c),
            Some(all) => all.append(c),
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
        lowered: _,
    } = compiled.expect("a run has a launch");
    wall.compile = clock.elapsed();
    let start = gates.iter().map(|g| g.start).min().unwrap_or(0);
    let mut domain: Option<Box<dyn domain::ValueDomain + '_>> = match domain {
        Some(d) => Some(Box::new(d)),
        None => first
            .data
            .then(|| Box::new(domain::Numeric::new()) as Box<dyn domain::ValueDomain>),
    };
    if let Some(d) = domain.as_mut() {
        d.begin(&graphs, &channels)?;
    }
    let slow = if topo.config().slow.is_empty() {
        Vec::new()
    } else {
        pes.iter().map(|&pe| topo.straggle(pe)).collect()
    };
    let cfg = engine::EngineConfig {
        gates,
        pes: &pes,
        graphs: &graphs,
        tables: &tables,
        channels: &channels,
        chan_routes,
        routes: &routes,
        route_ends: &route_ends,
        links: topo.links(),
        spec: &spec,
        domain,
        trace: first.trace,
        spans: first.trace || first.why,
        model: first.fabric,
        ties: first.ties,
        record_mix,
        progress: first.progress.clone(),
        slow,
        busy: busy.map(|b| &b.0),
    };
    let keep = first.data || first.trace || first.keep_graphs || first.why;
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
    let left_busy = BusyUntil(eng.left_busy());
    let names: Vec<&str> = launches.iter().map(|l| l.program.name()).collect();
    let report = report::build(
        &topo,
        &names.join(" + "),
        start,
        &eng,
        (&routes, &route_ends),
    );
    let times = eng
        .gates
        .iter()
        .zip(queued)
        .zip(&names)
        .map(|((g, q), name)| LaunchTimes {
            kernel: name.to_string(),
            issue_ps: q.issue_ps,
            begin_ps: g.begin.unwrap_or(start),
            end_ps: g.end.unwrap_or(start),
        })
        .collect();
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
        ManyOutcome {
            outcome: Outcome {
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
            launches: times,
            first_instance,
            busy: left_busy,
        },
        mix,
    ))
}
