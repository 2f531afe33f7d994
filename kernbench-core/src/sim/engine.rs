//! The event loop: wires PEs ([`super::pe`]), IPCQ channels
//! ([`super::ipcq`]) and links ([`super::fabric`]) on one timeline of integer
//! picoseconds.
//!
//! Ops start when their dependencies are done and, for engine ops, when they
//! reach the head of their engine's in-order queue with the engine idle. Each
//! start schedules one completion event. How a message crosses the fabric
//! depends on the [`FabricModel`]. Ties are broken by insertion order, so a
//! run is repeatable bit for bit.

use super::data::Races;
use super::domain::{Exec, ValueDomain};
use super::error::{Deadlock, NoProgress, SimError, Wait, Waiter};
use super::fabric::Fabric;
use super::id::{ChanId, InstId, OpId, OpRef};
use super::ipcq::{tickets, Chan, FabricModel, SendPoll, SlotGrant, SlotRecv};
use super::messages::MsgLog;
use super::pe::{Core, Dependents, OpProgress, PeBusy, PeState, DONE, STARTED};
use super::queue::{EventQueue, MixOp};
use super::race::RaceCheck;
use crate::ir::CommandGraph;
use crate::machine::Machine;
use crate::passes::lower::{OpKind, PeProgram, Unit, UNITS};
use crate::passes::pair::Channels;
use crate::passes::route::RemoteRoute;
use crate::passes::trace::CmdTable;
use crate::passes::{Binding, PcTable};
use crate::topology::{Endpoint, IpcqSpec, Link, PeSpec, Route};
use crate::{PeId, Ps};
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ev {
    /// An op of an instance finishes.
    OpDone(OpRef),
    /// Slot model: the comm DMA of a sender looks for granted slots again.
    SendNext(OpRef),
    /// Slot model: a packet has drained into the receiver's ring slot.
    Visible(ChanId),
    /// Slot model: a credit is back at the sender.
    Credit(ChanId),
    /// Message model: the comm DMA has injected a whole message.
    CommFree(InstId),
    /// Message model, shared route: the comm DMA takes the next slot batch.
    Pump(ChanId),
    /// A PE that starts late (a straggler) begins its program.
    Begin(InstId),
    /// A launch may begin: its start time has come (what it waits for has ended).
    Open(u32),
    /// An engine an earlier run left busy is free: `(core, engine)`.
    Idle(u32, u8),
    /// Test only: an event that reschedules itself forever, as a livelock would.
    #[cfg(test)]
    Spin(InstId),
}

/// An [`Ev`] in one word, as the queue holds it: a queue entry is then 16
/// bytes (time and event) where the enum would make it 24, and the radix
/// heap moves each entry a few times. Its order is the rank of
/// [`TieOrder::Ranked`](crate::program::TieOrder::Ranked): the tag (the
/// kind, in the order of [`Ev`]'s variants), then the instance, then the op
/// or channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Packed(u64);

/// Bits of a packed event below its tag.
const TAG_SHIFT: u32 = 60;
/// The most instances a run may have: an [`OpRef`] packs its instance in
/// the bits between its op and the tag. (Far more than memory allows: each
/// instance holds a program.)
const MAX_INSTS: usize = 1 << (TAG_SHIFT - 32);

impl Ev {
    fn pack(self) -> Packed {
        let op = |r: OpRef| (u64::from(r.inst.0) << 32) | u64::from(r.op.0);
        let (tag, payload) = match self {
            Ev::OpDone(r) => (0, op(r)),
            Ev::SendNext(r) => (1, op(r)),
            Ev::Visible(c) => (2, u64::from(c.0)),
            Ev::Credit(c) => (3, u64::from(c.0)),
            Ev::CommFree(i) => (4, u64::from(i.0)),
            Ev::Pump(c) => (5, u64::from(c.0)),
            Ev::Begin(i) => (6, u64::from(i.0)),
            Ev::Open(g) => (7, u64::from(g)),
            Ev::Idle(c, u) => (8, (u64::from(c) << 8) | u64::from(u)),
            #[cfg(test)]
            Ev::Spin(i) => (9, u64::from(i.0)),
        };
        debug_assert!(payload >> TAG_SHIFT == 0, "packed event payload overflows");
        Packed((tag << TAG_SHIFT) | payload)
    }

    fn unpack(p: Packed) -> Ev {
        let payload = p.0 & ((1 << TAG_SHIFT) - 1);
        let low = payload as u32;
        let op = || OpRef::new(InstId((payload >> 32) as u32), OpId(low));
        match p.0 >> TAG_SHIFT {
            0 => Ev::OpDone(op()),
            1 => Ev::SendNext(op()),
            2 => Ev::Visible(ChanId(low)),
            3 => Ev::Credit(ChanId(low)),
            4 => Ev::CommFree(InstId(low)),
            5 => Ev::Pump(ChanId(low)),
            6 => Ev::Begin(InstId(low)),
            7 => Ev::Open(low),
            8 => Ev::Idle((payload >> 8) as u32, low as u8),
            #[cfg(test)]
            9 => Ev::Spin(InstId(low)),
            t => unreachable!("packed event tag {t}"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Ev::OpDone(_) => "op done",
            Ev::SendNext(_) => "send next",
            Ev::Visible(_) => "slot visible",
            Ev::Credit(_) => "credit",
            Ev::CommFree(_) => "comm free",
            Ev::Pump(_) => "pump",
            Ev::Begin(_) => "begin",
            Ev::Open(_) => "open",
            Ev::Idle(..) => "engine idle",
            #[cfg(test)]
            Ev::Spin(_) => "spin",
        }
    }
}

#[cfg(test)]
thread_local! {
    /// Test only: start a [`Ev::Spin`] on instance 0 when a run begins.
    static SPIN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Test only: the progress limit of the last run on this thread.
    static LAST_LIMIT: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Timeline record of one op (for traces), kept only when asked for.
#[derive(Clone, Debug)]
pub struct Span {
    /// Instance index.
    pub inst: u32,
    /// Op index.
    pub op: u32,
    /// Start, ps.
    pub start: Ps,
    /// End, ps.
    pub end: Ps,
}

/// One launch of a run: its instances, when it may begin, what it waits
/// for, and its IPCQ settings.
pub(crate) struct Gate {
    /// Its instances, a contiguous range of the run's.
    pub(crate) insts: std::ops::Range<u32>,
    /// The earliest it may begin (the common start of its PEs).
    pub(crate) start: Ps,
    /// Earlier launches of the run (by index) that must end before it begins.
    pub(crate) after: Vec<u32>,
    /// Its IPCQ settings.
    pub(crate) ipcq: IpcqSpec,
    /// Rate at which its arrivals drain into the receive buffer.
    pub(crate) drain_gbps: f64,
}

/// A launch during a run: what it still waits for, and when it began and ended.
#[derive(Clone, Debug)]
pub(crate) struct GateRun {
    start: Ps,
    insts: std::ops::Range<u32>,
    /// Launches it waits for that have not ended.
    waiting: u32,
    /// Its instances not yet done.
    left: u32,
    /// Launches waiting for it.
    dependents: Vec<u32>,
    /// When it began (its instances were released), once it has.
    pub(crate) begin: Option<Ps>,
    /// When its last instance ended, once it has.
    pub(crate) end: Option<Ps>,
}

/// What a run is built from, apart from the lowered programs.
pub(crate) struct EngineConfig<'a> {
    /// The launches of the run (one for a plain launch), in order.
    pub(crate) gates: Vec<Gate>,
    /// The PE of each instance.
    pub(crate) pes: &'a [PeId],
    /// The traced graphs (data execution); empty when data is off.
    pub(crate) graphs: &'a [CommandGraph],
    /// What reports need of each command.
    pub(crate) tables: &'a [CmdTable],
    /// The channels of the launch.
    pub(crate) channels: &'a Channels,
    /// The route of each channel.
    pub(crate) chan_routes: Vec<Route>,
    /// Routes of remote DMAs, indexed by their ops.
    pub(crate) routes: &'a [RemoteRoute],
    /// The memory each of `routes` leads to.
    pub(crate) route_ends: &'a [Endpoint],
    /// The machine's links.
    pub(crate) links: &'a [Link],
    pub(crate) spec: &'a PeSpec,
    /// What the commands compute, when anything (data execution).
    pub(crate) domain: Option<Box<dyn ValueDomain + 'a>>,
    /// Keep link spans and the message log.
    pub(crate) trace: bool,
    /// Keep op spans.
    pub(crate) spans: bool,
    pub(crate) model: FabricModel,
    /// Which of one instant's events to handle first.
    pub(crate) ties: crate::program::TieOrder,
    /// Record the event queue's mix (for the queue benchmark).
    pub(crate) record_mix: bool,
    /// Per instance, how it straggles: the share of its speed it keeps in
    /// thousandths and how late it starts; empty when none does.
    pub(crate) slow: Vec<(u32, Ps)>,
    /// Where the run reports its progress.
    pub(crate) progress: super::progress::ProgressHook,
    /// What earlier runs left busy on the PEs, in this run's time.
    pub(crate) busy: Option<&'a HashMap<PeId, PeBusy>>,
}

pub(crate) struct Engine<'a> {
    pub(crate) now: Ps,
    queue: EventQueue<Packed>,
    pub(crate) insts: Vec<PeState>,
    /// Every instance's op progress.
    ops: OpProgress,
    /// The PEs of the run: engines and pseudo-channels its instances share.
    cores: Vec<Core>,
    /// The launches of the run.
    pub(crate) gates: Vec<GateRun>,
    /// The launch of each instance.
    inst_gate: Vec<u32>,
    pub(crate) chans: Vec<Chan>,
    pub(crate) fabric: Fabric,
    routes: &'a [RemoteRoute],
    /// Per route of [`Engine::routes`], the core whose pseudo-channels
    /// serve it (a route to another PE's HBM slice).
    route_core: Vec<Option<u32>>,
    graphs: &'a [CommandGraph],
    tables: &'a [CmdTable],
    of_cmd: &'a Channels,
    /// The PE spec's issue cost (PE_CPU + PE_SCHEDULER) and HBM latency,
    /// converted once: every op start reads them.
    issue_ps: Ps,
    hbm_latency_ps: Ps,
    model: FabricModel,
    /// What the commands compute, when anything.
    domain: Option<Box<dyn ValueDomain + 'a>>,
    /// The first error of a step that cannot return one (the run stops at it).
    failed: Option<SimError>,
    /// See [`EngineConfig::slow`].
    slow: Vec<(u32, Ps)>,
    /// The race detector, when data runs.
    races: Option<RaceCheck>,
    pub(crate) events: u64,
    /// IPCQ sends started.
    pub(crate) sends: u64,
    pub(crate) spans: Option<Vec<Span>>,
    op_start: Vec<Vec<Ps>>,
    /// Sends and receives of each channel, for a trace's flows; `None` unless tracing.
    pub(crate) msg_log: Option<MsgLog>,
    /// The run's HBM splits, with each channel's share of time.
    hbm: HbmSplits,
    /// Bytes (read, written) by the remote DMAs of each route of
    /// [`EngineConfig::routes`]; a route belongs to one instance.
    pub(crate) route_bytes: Vec<(u64, u64)>,
    progress: super::progress::ProgressHook,
}

/// The HBM splits of a run ([`PcTable`]) with the time each channel's share
/// takes, worked out once per row: the slice's bandwidth is split evenly
/// over its pseudo-channels.
pub(crate) struct HbmSplits {
    n: usize,
    /// `(channel, ps)` of each row's busy channels; row `r` is `at[r]..at[r + 1]`.
    parts: Vec<(u32, Ps)>,
    at: Vec<u32>,
}

impl HbmSplits {
    fn new(table: &PcTable, slice_gbps: f64) -> Self {
        let n = table.n;
        let pc_gbps = slice_gbps / n as f64;
        let mut parts = Vec::new();
        let mut at = vec![0u32];
        for r in 0..table.len() as u32 {
            for (pc, &b) in table.split(r).iter().enumerate() {
                if b > 0 {
                    parts.push((pc as u32, crate::ids::transfer_ps(u64::from(b), pc_gbps)));
                }
            }
            at.push(parts.len() as u32);
        }
        HbmSplits { n, parts, at }
    }

    /// Pseudo-channels per row.
    pub(crate) fn n(&self) -> usize {
        self.n
    }

    /// The busy channels of row `r`: `(channel, ps)`.
    pub(crate) fn row(&self, r: u32) -> &[(u32, Ps)] {
        &self.parts[self.at[r as usize] as usize..self.at[r as usize + 1] as usize]
    }
}

impl<'a> Engine<'a> {
    pub(crate) fn new(
        cfg: EngineConfig<'a>,
        progs: Vec<Arc<PeProgram>>,
        bindings: Vec<Binding>,
        pc_table: &PcTable,
    ) -> Self {
        let pcs = cfg.spec.hbm_pcs as usize;
        let hbm = HbmSplits::new(pc_table, cfg.spec.hbm_effective_gbps());
        let mut inst_gate = vec![0u32; cfg.pes.len()];
        for (g, gate) in cfg.gates.iter().enumerate() {
            for i in gate.insts.clone() {
                inst_gate[i as usize] = g as u32;
            }
        }
        // One core per PE, in order of first use.
        let mut core_of: HashMap<PeId, u32> = HashMap::new();
        let mut cores: Vec<Core> = Vec::new();
        // Instances that share a program share its dependents too.
        let mut dependents: HashMap<*const PeProgram, Arc<Dependents>> = HashMap::new();
        let mut ops = OpProgress::with_capacity(progs.iter().map(|p| p.ops.len()).sum());
        let insts: Vec<PeState> = super::huge::collect(
            progs
                .into_iter()
                .zip(bindings)
                .zip(cfg.pes)
                .enumerate()
                .map(|(i, ((prog, bind), pe))| {
                    let deps = Arc::clone(
                        dependents
                            .entry(Arc::as_ptr(&prog))
                            .or_insert_with(|| Arc::new(Dependents::of(&prog))),
                    );
                    let core = *core_of.entry(*pe).or_insert_with(|| {
                        cores.push(Core::new(*pe, pcs));
                        cores.len() as u32 - 1
                    });
                    cores[core as usize].insts.push(i as u32);
                    let start = cfg.gates[inst_gate[i] as usize].start;
                    PeState::new((*pe, core), prog, bind, deps, (start, &mut ops))
                }),
        );
        // The core whose pseudo-channels serve each route's remote HBM
        // slice; a slice of a PE that runs nothing gets a core of its own.
        let route_core = cfg
            .route_ends
            .iter()
            .map(|end| match *end {
                Endpoint::Hbm(pe) => Some(*core_of.entry(pe).or_insert_with(|| {
                    cores.push(Core::new(pe, pcs));
                    cores.len() as u32 - 1
                })),
                _ => None,
            })
            .collect();
        let mut gates: Vec<GateRun> = cfg
            .gates
            .iter()
            .map(|g| GateRun {
                start: g.start,
                insts: g.insts.clone(),
                waiting: g.after.len() as u32,
                left: 0,
                dependents: Vec::new(),
                begin: None,
                end: None,
            })
            .collect();
        for (g, gate) in cfg.gates.iter().enumerate() {
            for &a in &gate.after {
                gates[a as usize].dependents.push(g as u32);
            }
        }
        // A link carried by one channel only, and by no DMA, sees no interleaving.
        let mut users = vec![0u32; cfg.links.len()];
        for r in cfg.chan_routes.iter() {
            for h in &r.hops {
                users[h.link.0 as usize] += 1;
            }
        }
        for r in cfg.routes {
            for h in r.out.hops.iter().chain(&r.back.hops) {
                users[h.link.0 as usize] += 2;
            }
        }
        let chans =
            super::huge::collect(cfg.chan_routes.into_iter().enumerate().map(|(k, route)| {
                let private = route.hops.iter().all(|h| users[h.link.0 as usize] == 1);
                let gate = &cfg.gates[inst_gate[cfg.channels.list[k].src] as usize];
                Chan::new(route, &gate.ipcq, (gate.drain_gbps, private), cfg.model)
            }));
        let op_start = if cfg.spans {
            insts.iter().map(|i| vec![0; i.prog.ops.len()]).collect()
        } else {
            Vec::new()
        };
        debug_assert!(insts.len() < MAX_INSTS, "too many instances to pack");
        let mut queue = EventQueue::new()
            .recording(cfg.record_mix)
            .within(cfg.ties.within());
        let now = cfg.gates.iter().map(|g| g.start).min().unwrap_or(0);
        if let Some(busy) = cfg.busy {
            for (c, core) in cores.iter_mut().enumerate() {
                if let Some(b) = busy.get(&core.pe) {
                    let engines = core.resume(b, now);
                    // A core without instances lends only its channels.
                    if !core.insts.is_empty() {
                        for (u, t) in engines {
                            queue.push(t, Ev::Idle(c as u32, u as u8).pack());
                        }
                    }
                }
            }
        }
        let races = cfg.domain.is_some().then(|| {
            let after: Vec<Vec<u32>> = cfg.gates.iter().map(|g| g.after.clone()).collect();
            RaceCheck::new(cfg.graphs, cfg.pes).with_launches(inst_gate.clone(), &after)
        });
        Engine {
            progress: cfg.progress.clone(),
            hbm,
            route_bytes: vec![(0, 0); cfg.routes.len()],
            now,
            queue,
            insts,
            ops,
            cores,
            gates,
            inst_gate,
            chans,
            fabric: Fabric::new(cfg.links)
                .private_links(&users)
                .traced(cfg.trace),
            routes: cfg.routes,
            route_core,
            graphs: cfg.graphs,
            tables: cfg.tables,
            of_cmd: cfg.channels,
            issue_ps: cfg.spec.cpu_overhead_ps() + cfg.spec.sched_overhead_ps(),
            hbm_latency_ps: cfg.spec.hbm_latency_ps(),
            model: cfg.model,
            races,
            domain: cfg.domain,
            failed: None,
            slow: cfg.slow,
            events: 0,
            sends: 0,
            spans: cfg.spans.then(Vec::new),
            op_start,
            msg_log: cfg.trace.then(|| MsgLog::new(cfg.channels.list.len())),
        }
    }

    fn push(&mut self, t: Ps, ev: Ev) {
        self.queue.push(t, ev.pack());
    }

    /// The queue's recorded mix (empty unless asked for).
    pub(crate) fn take_mix(&mut self) -> Vec<MixOp> {
        self.queue.take_mix()
    }

    fn op(&self, r: OpRef) -> &crate::passes::lower::Op {
        &self.insts[r.inst.ix()].prog.ops[r.op.ix()]
    }

    /// The most events a run of this launch can take between two op
    /// completions: a generous multiple of its ops and IPCQ packets, which
    /// bound every event a healthy run schedules (each op ends in one
    /// completion; each packet brings a few events of the fabric model).
    fn progress_limit(&self) -> u64 {
        // The smallest slot of the run counts the most packets.
        let slot_bytes = self.chans.iter().map(|c| c.slot_bytes).min().unwrap_or(1);
        let mut per_prog: HashMap<*const PeProgram, u64> = HashMap::new();
        let mut work = 0u64;
        for s in &self.insts {
            let w = *per_prog.entry(Arc::as_ptr(&s.prog)).or_insert_with(|| {
                s.prog
                    .ops
                    .iter()
                    .map(|o| match o.kind {
                        OpKind::Send { bytes, .. }
                        | OpKind::SendGrant { bytes, .. }
                        | OpKind::Recv { bytes, .. } => 1 + tickets(bytes, slot_bytes),
                        _ => 1,
                    })
                    .sum()
            });
            work = work.saturating_add(w);
        }
        work.saturating_mul(8).saturating_add(1 << 16)
    }

    /// Runs to completion, or to a deadlock, or stops when events keep
    /// firing with no op completing.
    pub(crate) fn run(&mut self, machine: &mut Machine) -> Result<(), SimError> {
        let limit = self.progress_limit();
        let mut since_done = 0u64;
        #[cfg(test)]
        LAST_LIMIT.with(|l| l.set(limit));
        #[cfg(test)]
        if SPIN.with(|s| s.get()) {
            self.push(self.now, Ev::Spin(InstId(0)));
        }
        for g in 0..self.gates.len() {
            if self.gates[g].waiting == 0 {
                self.open_at(g as u32, self.gates[g].start);
            }
        }
        while let Some((t, ev)) = self.queue.pop() {
            let ev = Ev::unpack(ev);
            // The op the next event of this instant completes: its word in
            // the op progress is, at thousands of PEs, rarely cached.
            if let Some(&next) = self.queue.peek_now() {
                if let Ev::OpDone(r) = Ev::unpack(next) {
                    if let Some(s) = self.insts.get(r.inst.ix()) {
                        self.ops.prefetch(s, r.op);
                    }
                }
            }
            if self.failed.is_some() {
                break;
            }
            self.now = t;
            self.fabric.set_floor(t);
            self.events += 1;
            if self.events % super::progress::EVENTS_PER_REPORT == 0 {
                self.progress.report(super::progress::Progress::Simulated {
                    events: self.events,
                    now_ps: t,
                });
            }
            since_done += 1;
            if since_done > limit {
                return Err(SimError::NoProgress(
                    self.no_progress(ev, since_done, limit),
                ));
            }
            match ev {
                Ev::OpDone(r) => {
                    since_done = 0;
                    self.op_done(r, machine)?
                }
                #[cfg(test)]
                Ev::Spin(i) => self.push(self.now + 1, Ev::Spin(i)),
                Ev::SendNext(r) => self.slot_pump_send(r),
                Ev::Visible(c) => self.slot_visible(c),
                Ev::Credit(c) => {
                    self.chans[c.ix()].slot_mut().credits += 1;
                    self.slot_pump_grant(c);
                }
                Ev::Pump(c) => {
                    self.chans[c.ix()].pump_at = None;
                    self.msg_poll(c);
                }
                Ev::Begin(inst) => self.begin(inst),
                Ev::Open(g) => self.open(g),
                Ev::Idle(c, u) => {
                    let first = self.cores[c as usize].insts[0];
                    self.cores[c as usize].release(Unit::ALL[u as usize], t);
                    self.try_core(InstId(first), u as usize);
                }
                Ev::CommFree(inst) => self.free_unit(inst, Unit::Comm),
            }
        }
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        if self.insts.iter().any(|i| i.left > 0) {
            return Err(SimError::Deadlock(self.deadlock()));
        }
        Ok(())
    }

    /// Launch `g` may begin at `t` (now or later).
    fn open_at(&mut self, g: u32, t: Ps) {
        if t > self.now {
            self.push(t, Ev::Open(g));
        } else {
            self.open(g);
        }
    }

    /// Launch `g` begins: its instances start, stragglers late.
    fn open(&mut self, g: u32) {
        let now = self.now;
        let gate = &mut self.gates[g as usize];
        gate.begin = Some(now);
        let insts = gate.insts.clone();
        gate.left = insts
            .clone()
            .filter(|&i| self.insts[i as usize].left > 0)
            .count() as u32;
        for i in insts {
            let inst = InstId(i);
            let s = &mut self.insts[i as usize];
            s.end_ps = s.end_ps.max(now);
            match self.slow.get(i as usize) {
                Some(&(_, delay)) if delay > 0 => self.push(now + delay, Ev::Begin(inst)),
                _ => self.begin(inst),
            }
        }
        if self.gates[g as usize].left == 0 {
            self.close(g);
        }
    }

    /// Launch `g` has ended: the launches waiting only for it may begin.
    fn close(&mut self, g: u32) {
        let now = self.now;
        self.gates[g as usize].end = Some(now);
        for k in 0..self.gates[g as usize].dependents.len() {
            let d = self.gates[g as usize].dependents[k];
            let next = &mut self.gates[d as usize];
            next.waiting -= 1;
            if next.waiting == 0 {
                let start = next.start.max(now);
                self.open_at(d, start);
            }
        }
    }

    /// What the run leaves busy on each PE, for a later run to queue behind.
    pub(crate) fn left_busy(&self) -> HashMap<PeId, PeBusy> {
        self.cores.iter().map(|c| (c.pe, c.left_busy())).collect()
    }

    /// Starts what instance `inst` can start before anything has finished.
    fn begin(&mut self, inst: InstId) {
        let i = inst.ix();
        self.insts[i].started = true;
        for op in 0..self.insts[i].prog.ops.len() {
            if self.ops.remaining(&self.insts[i], OpId(op as u32)) == 0
                && self.insts[i].prog.ops[op].unit == Unit::Free
            {
                self.start(OpRef::new(inst, OpId(op as u32)));
            }
        }
        for u in 0..UNITS {
            self.try_unit(inst, u);
        }
    }

    fn try_unit(&mut self, inst: InstId, u: usize) {
        let s = &self.insts[inst.ix()];
        if !s.started || self.cores[s.core as usize].busy(u) {
            return;
        }
        if let Some(op) = s.ready_on(u, &self.ops) {
            self.start(OpRef::new(inst, op));
        }
    }

    /// Frees engine `u` of `inst`'s PE and gives it to the next op ready for
    /// it (see [`Engine::try_core`]).
    fn free_unit(&mut self, inst: InstId, u: Unit) {
        let core = self.insts[inst.ix()].core as usize;
        self.cores[core].release(u, self.now);
        self.try_core(inst, u as usize);
    }

    /// Offers idle engine `u` of `inst`'s PE to the instances on the PE in
    /// turn, round robin: the ones after `inst` first, `inst` last, so that
    /// one launch's queue cannot keep an engine from another's.
    fn try_core(&mut self, inst: InstId, u: usize) {
        let core = self.insts[inst.ix()].core as usize;
        let n = self.cores[core].insts.len();
        if n < 2 {
            self.try_unit(inst, u);
            return;
        }
        let at = self.cores[core]
            .insts
            .iter()
            .position(|&i| i == inst.0)
            .unwrap_or(0);
        for k in 1..=n {
            if self.cores[core].busy(u) {
                return;
            }
            let next = InstId(self.cores[core].insts[(at + k) % n]);
            self.try_unit(next, u);
        }
    }

    fn start(&mut self, r: OpRef) {
        let now = self.now;
        let (issue_ps, hbm_latency) = (self.issue_ps, self.hbm_latency_ps);
        // A straggler issues and computes at a share of its speed.
        let slow = &self.slow;
        let slowed = |ps: Ps| match slow.get(r.inst.ix()) {
            Some(&(speed, _)) if speed != 1000 => (u128::from(ps) * 1000 / u128::from(speed)) as Ps,
            _ => ps,
        };
        let s = &mut self.insts[r.inst.ix()];
        s.first_op_ps.get_or_insert(now);
        let unit = s.begin(r.op, &mut self.ops);
        let core = &mut self.cores[s.core as usize];
        core.take(unit);
        if let Some(st) = self.op_start.get_mut(r.inst.ix()) {
            st[r.op.ix()] = now;
        }
        let o = &s.prog.ops[r.op.ix()];
        let end = match &o.kind {
            OpKind::Issue => now + slowed(issue_ps),
            OpKind::Fixed { ps, flops } => {
                s.flops += flops;
                now + slowed(*ps)
            }
            OpKind::Nop => now,
            OpKind::Hbm { .. } => s.hbm(core, r.op, now, &self.hbm) + hbm_latency,
            &OpKind::Remote {
                route,
                pcs,
                bytes,
                write,
            } => {
                let ix = s.route(route);
                if write {
                    s.remote_write += bytes;
                    self.route_bytes[ix].1 += bytes;
                } else {
                    s.remote_read += bytes;
                    self.route_bytes[ix].0 += bytes;
                }
                let RemoteRoute { out, back } = &self.routes[ix];
                let by = (Some(r.inst.0), None);
                // Another PE's HBM slice: its own pseudo-channels serve the
                // access, shared with its owner's DMAs and everyone else's
                // (ADR 0033). The bytes stream through the channels and the
                // links at once; the slower of the two ends the DMA. A
                // write's bytes go out; a read's request goes out and its
                // bytes come back, over the links of the way back (ADR 0034).
                let owner = pcs.zip(self.route_core[ix]);
                let reached = now + out.latency_ps + out.overhead_ps;
                match owner {
                    Some((at, oc)) if write => {
                        let (_, arrive) = self.fabric.transfer_for(now, out, bytes, by);
                        let (_, served) =
                            self.cores[oc as usize].serve(s.split(at, &self.hbm), reached);
                        arrive.max(served) + hbm_latency
                    }
                    Some((at, oc)) => {
                        let (first, served) =
                            self.cores[oc as usize].serve(s.split(at, &self.hbm), reached);
                        let (_, arrive) = self.fabric.transfer_for(first, back, bytes, by);
                        arrive.max(served + back.latency_ps + back.overhead_ps) + hbm_latency
                    }
                    None if write => {
                        let (_, arrive) = self.fabric.transfer_for(now, out, bytes, by);
                        arrive + hbm_latency
                    }
                    None => {
                        let (_, arrive) = self.fabric.transfer_for(reached, back, bytes, by);
                        arrive + hbm_latency
                    }
                }
            }
            &OpKind::SendGrant { chan, bytes } => {
                let c = s.chan(chan);
                let n = tickets(bytes, self.chans[c.ix()].slot_bytes);
                match self.model {
                    FabricModel::Slots => {
                        let ch = self.chans[c.ix()].slot_mut();
                        debug_assert!(
                            ch.active_grant.is_none(),
                            "sends on one channel are ordered"
                        );
                        ch.active_grant = Some(SlotGrant {
                            by: r,
                            need: n as u32,
                        });
                        self.slot_pump_grant(c);
                    }
                    FabricModel::Messages => {
                        self.chans[c.ix()].msg.grant_start(r, now, n);
                        self.msg_poll(c);
                    }
                }
                return;
            }
            &OpKind::Send { chan, bytes } => {
                let c = s.chan(chan);
                let cmd = o.cmd;
                self.sends += 1;
                if let Some(d) = self.domain.as_mut() {
                    if let Err(e) = d.send(r.inst.ix(), &self.graphs[r.inst.ix()], cmd, c.0) {
                        self.failed.get_or_insert(e);
                    }
                }
                match self.model {
                    FabricModel::Slots => {
                        self.chans[c.ix()].slot_mut().sent = 0;
                        self.slot_pump_send(r);
                    }
                    FabricModel::Messages => {
                        let n = tickets(bytes, self.chans[c.ix()].slot_bytes);
                        self.chans[c.ix()].msg.send_start(r, now, bytes, n);
                        self.msg_poll(c);
                    }
                }
                return;
            }
            &OpKind::Recv { chan, bytes } => {
                let c = s.chan(chan);
                let n = tickets(bytes, self.chans[c.ix()].slot_bytes);
                match self.model {
                    FabricModel::Slots => {
                        let ch = &mut self.chans[c.ix()];
                        debug_assert!(
                            ch.slot_mut().active_recv.is_none(),
                            "receives on one channel are ordered"
                        );
                        let take = ch.slot_mut().queued.min(n as u32);
                        ch.slot_mut().queued -= take;
                        let credit_at = now + ch.credit_ps;
                        if take == n as u32 {
                            self.push(now, Ev::OpDone(r));
                        } else {
                            ch.slot_mut().active_recv = Some(SlotRecv {
                                by: r,
                                got: take,
                                need: n as u32,
                            });
                        }
                        for _ in 0..take {
                            self.push(credit_at, Ev::Credit(c));
                        }
                    }
                    FabricModel::Messages => {
                        let ch = &mut self.chans[c.ix()];
                        ch.msg.recv_start(r, now, n, ch.credit_ps);
                        self.msg_poll(c);
                    }
                }
                return;
            }
        };
        if unit != Unit::Free {
            self.insts[r.inst.ix()].busy_ps[unit as usize] += end - now;
        }
        self.push(end, Ev::OpDone(r));
    }

    /// Message model: advances whatever of channel `c` can advance (grant,
    /// injection, receive) and schedules the events that follow.
    ///
    /// One pass reaches the fixed point. An injection can only resolve the
    /// grant in progress (by recycling the ring entry it waits for), so the
    /// grant is looked at again after it; nothing else one step does makes
    /// another step possible: a receive completing frees no slot (a slot's
    /// return is fixed when its receive is posted), and a grant completing
    /// is an event of its own.
    fn msg_poll(&mut self, c: ChanId) {
        let slot_bytes = self.chans[c.ix()].slot_bytes;
        // The receiver names the link spans of a trace; untraced, the
        // channel's pairing is not read (at thousands of PEs, a miss).
        let to = self
            .fabric
            .trace
            .is_some()
            .then(|| self.of_cmd.list[c.ix()].dst as u32);
        let ch = &mut self.chans[c.ix()];
        if let Some((by, at)) = ch.msg.poll_grant() {
            self.queue.push(at, Ev::OpDone(by).pack());
        }
        let figures = (ch.credit_ps, slot_bytes, ch.drain_gbps);
        let horizon = (!ch.private).then_some(self.now);
        let route = &ch.route;
        let sender = ch.msg.sender();
        if sender.is_some() {
            self.fabric.prefetch(route);
            let fabric = &mut self.fabric;
            let mut packets = 0u64;
            let mut bytes = 0u64;
            let mut comm_ps = 0;
            let log = &mut self.msg_log;
            let by = (sender.map(|s| s.inst.0), to);
            let private = ch.private;
            let polled = ch.msg.poll_send(
                horizon,
                figures,
                // Over private links, a message's equal packets go as a
                // train: each derived from the first where none meets the
                // one before it.
                |t, b| {
                    if private {
                        fabric
                            .train_next(t, b)
                            .unwrap_or_else(|| fabric.train_first(t, route, b, by))
                    } else {
                        fabric.transfer_for(t, route, b, by)
                    }
                },
                |p| {
                    packets += 1;
                    bytes += p.bytes;
                    comm_ps += p.at.1 - p.at.0;
                    if let (Some(l), Some(s)) = (log.as_mut(), sender) {
                        l.packet(c, s, p.first, p.at, p.bytes);
                    }
                },
            );
            self.fabric.train_end();
            if packets > 0 {
                ch.packets += packets;
                ch.bytes += bytes;
                if let Some(s) = sender {
                    let st = &mut self.insts[s.inst.ix()];
                    st.sent += bytes;
                    st.busy_ps[Unit::Comm as usize] += comm_ps;
                }
            }
            match polled {
                SendPoll::Done(d) => {
                    self.queue.push(d.done, Ev::OpDone(d.by).pack());
                    self.queue.push(d.free, Ev::CommFree(d.by.inst).pack());
                }
                SendPoll::PumpAt(t) => {
                    let ch = &mut self.chans[c.ix()];
                    if ch.pump_at != Some(t) {
                        ch.pump_at = Some(t);
                        self.queue.push(t, Ev::Pump(c).pack());
                    }
                }
                SendPoll::Parked => {}
            }
        }
        let ch = &mut self.chans[c.ix()];
        if let Some((by, at)) = ch.msg.poll_recv() {
            self.queue.push(at, Ev::OpDone(by).pack());
        }
        if let Some((by, at)) = ch.msg.poll_grant() {
            self.queue.push(at, Ev::OpDone(by).pack());
        }
    }

    /// Slot model: injects every packet that has a granted slot, back to
    /// back; each starts when the previous one's tail has left the first link.
    fn slot_pump_send(&mut self, r: OpRef) {
        let now = self.now;
        let OpKind::Send { chan, bytes } = self.op(r).kind else {
            unreachable!("pump_send on a send op")
        };
        let c = self.insts[r.inst.ix()].chan(chan);
        let s = &mut self.insts[r.inst.ix()];
        let ch = &mut self.chans[c.ix()];
        let mut sent = ch.slot_mut().sent;
        if sent >= bytes.max(1) {
            // Every packet is on its way: the comm engine is free again.
            self.free_unit(r.inst, Unit::Comm);
            return;
        }
        if ch.slot_mut().granted == 0 {
            ch.slot_mut().waiting_send = Some(r);
            return;
        }
        let to = self.of_cmd.list[c.ix()].dst as u32;
        let mut t = now;
        while ch.slot_mut().granted > 0 && sent < bytes.max(1) {
            ch.slot_mut().granted -= 1;
            let pkt = ch.slot_bytes.min(bytes - sent).max(1);
            let first = sent == 0;
            sent += pkt;
            s.sent += pkt;
            ch.packets += 1;
            ch.bytes += pkt;
            let (free, arrive) =
                self.fabric
                    .transfer_for(t, &ch.route, pkt, (Some(r.inst.0), Some(to)));
            let drained = arrive + crate::ids::transfer_ps(pkt, ch.drain_gbps);
            let inject_end = free.max(t);
            s.busy_ps[Unit::Comm as usize] += inject_end - t;
            if let Some(log) = self.msg_log.as_mut() {
                log.packet(c, r, first, (t, inject_end), bytes);
            }
            self.queue.push(drained, Ev::Visible(c).pack());
            if sent >= bytes {
                // The last packet has its slot: the send completes for the kernel
                // (fire-and-forget); the engine finishes injecting in the background.
                self.queue.push(now, Ev::OpDone(r).pack());
            }
            t = inject_end;
        }
        ch.slot_mut().sent = sent;
        self.push(t, Ev::SendNext(r));
    }

    /// Slot model: hands free slots to the send acquiring them, and wakes a
    /// send waiting for a granted slot.
    fn slot_pump_grant(&mut self, c: ChanId) {
        let now = self.now;
        let ch = self.chans[c.ix()].slot_mut();
        if let Some(g) = ch.active_grant.as_mut() {
            let take = g.need.min(ch.credits);
            g.need -= take;
            ch.credits -= take;
            ch.granted += take;
            if g.need == 0 {
                let by = g.by;
                ch.active_grant = None;
                self.push(now, Ev::OpDone(by));
            }
        }
        let ch = self.chans[c.ix()].slot_mut();
        if ch.granted > 0 {
            if let Some(r) = ch.waiting_send.take() {
                self.slot_pump_send(r);
            }
        }
    }

    fn slot_visible(&mut self, c: ChanId) {
        let now = self.now;
        let ch = &mut self.chans[c.ix()];
        let credit_at = now + ch.credit_ps;
        match ch.slot_mut().active_recv.as_mut() {
            Some(rv) => {
                rv.got += 1;
                let (by, done) = (rv.by, rv.got == rv.need);
                if done {
                    ch.slot_mut().active_recv = None;
                }
                self.push(credit_at, Ev::Credit(c));
                if done {
                    self.push(now, Ev::OpDone(by));
                }
            }
            None => ch.slot_mut().queued += 1,
        }
    }

    fn op_done(&mut self, r: OpRef, machine: &mut Machine) -> Result<(), SimError> {
        let now = self.now;
        let i = r.inst.ix();
        let (unit, completes, cmd) = {
            let s = &mut self.insts[i];
            self.ops.set_state(s, r.op, DONE);
            s.left -= 1;
            s.end_ps = s.end_ps.max(now);
            let o = &s.prog.ops[r.op.ix()];
            (o.unit, o.completes, o.cmd)
        };
        if let (Some(spans), Some(st)) = (self.spans.as_mut(), self.op_start.get(i)) {
            spans.push(Span {
                inst: r.inst.0,
                op: r.op.0,
                start: st[r.op.ix()],
                end: now,
            });
        }
        if let OpKind::Recv { bytes, chan } = self.op(r).kind {
            self.insts[i].received += bytes;
            let c = self.insts[i].chan(chan);
            if let Some(log) = self.msg_log.as_mut() {
                log.recv(c, r, now);
            }
        }
        if completes {
            if let Some(d) = self.domain.as_mut() {
                let chan = self.of_cmd.of_cmd(i, cmd);
                let races = self.races.as_mut().map(|check| Races {
                    check,
                    graphs: self.graphs,
                    channels: self.of_cmd,
                });
                let pe = self.insts[i].pe;
                d.execute(
                    &mut Exec::new(machine, pe, i, &self.graphs[i], cmd, chan).with_races(races),
                )?;
            }
            if let Some(rc) = self.races.as_mut() {
                rc.completed(i, cmd);
            }
        }
        // A send frees its engine when its last packet is injected.
        let frees_unit = unit != Unit::Free && unit != Unit::Comm;
        if frees_unit {
            let core = self.insts[i].core as usize;
            self.cores[core].release(unit, now);
        }
        // On a PE shared by several launches, the engine this op freed goes
        // round robin (below), not first to this instance's next op.
        let shared = frees_unit && self.cores[self.insts[i].core as usize].insts.len() > 1;
        for k in self.insts[i].dependents_of(r.op, &self.ops) {
            let d = self.insts[i].dependent(k);
            let s = &mut self.insts[i];
            if self.ops.dependency_done(s, d) {
                let du = s.prog.ops[d.ix()].unit;
                if du == Unit::Free {
                    self.start(OpRef::new(r.inst, d));
                } else if !(shared && du == unit) {
                    self.try_unit(r.inst, du as usize);
                }
            }
        }
        if frees_unit {
            self.try_core(r.inst, unit as usize);
        }
        if self.insts[i].left == 0 {
            // The instance is done; its launch may be too.
            let g = self.inst_gate[i];
            let gate = &mut self.gates[g as usize];
            gate.left -= 1;
            if gate.left == 0 {
                self.close(g);
            }
        }
        Ok(())
    }

    /// The PEs an event concerns.
    fn pes_of(&self, ev: Ev) -> [Option<PeId>; 2] {
        let pe = |i: InstId| Some(self.insts[i.ix()].pe);
        let chan = |c: ChanId| {
            let ch = &self.of_cmd.list[c.ix()];
            [Some(self.insts[ch.src].pe), Some(self.insts[ch.dst].pe)]
        };
        match ev {
            Ev::OpDone(r) | Ev::SendNext(r) => [pe(r.inst), None],
            Ev::CommFree(i) | Ev::Begin(i) => [pe(i), None],
            Ev::Idle(c, _) => {
                let first = self.cores[c as usize].insts[0] as usize;
                [Some(self.insts[first].pe), None]
            }
            Ev::Open(g) => {
                let first = self.gates[g as usize].insts.start as usize;
                [self.insts.get(first).map(|s| s.pe), None]
            }
            #[cfg(test)]
            Ev::Spin(i) => [pe(i), None],
            Ev::Visible(c) | Ev::Credit(c) | Ev::Pump(c) => chan(c),
        }
    }

    /// Diagnoses a run whose events keep firing with no op completing: looks
    /// at the next events to name the PEs they concern, and lists who waits.
    fn no_progress(&mut self, first: Ev, events: u64, limit: u64) -> NoProgress {
        let at_ps = self.now;
        let mut pes: Vec<PeId> = Vec::new();
        let mut kinds: Vec<&'static str> = Vec::new();
        let mut note = |e: &Engine, ev: Ev| {
            pes.extend(e.pes_of(ev).into_iter().flatten());
            if !kinds.contains(&ev.name()) {
                kinds.push(ev.name());
            }
        };
        note(self, first);
        for _ in 0..1024 {
            let Some((_, ev)) = self.queue.pop() else {
                break;
            };
            note(self, Ev::unpack(ev));
        }
        pes.sort_unstable();
        pes.dedup();
        NoProgress {
            at_ps,
            events,
            limit,
            pes,
            events_firing: kinds.iter().map(|k| k.to_string()).collect(),
            waiters: self.deadlock().waiters,
        }
    }

    fn deadlock(&self) -> Deadlock {
        let mut waiters = Vec::new();
        for (i, s) in self.insts.iter().enumerate() {
            if s.left == 0 {
                continue;
            }
            let t = &self.tables[i];
            let mut found = false;
            let mut seen_cmd = None;
            for (op, o) in s.prog.ops.iter().enumerate() {
                if self.ops.state(s, op) != STARTED || seen_cmd == Some(o.cmd) {
                    continue;
                }
                let wait = match (&o.kind, t.peer(o.cmd)) {
                    (OpKind::SendGrant { chan, .. } | OpKind::Send { chan, .. }, Some(to)) => {
                        let k = s.chan(*chan).ix();
                        let c = &self.chans[k];
                        let ch = &self.of_cmd.list[k];
                        let peer = self.insts[ch.dst].pe;
                        Wait::Send {
                            to,
                            peer,
                            full: c.slots_held(self.model),
                            slots: c.slots,
                        }
                    }
                    (OpKind::Recv { chan, .. }, Some(to)) => {
                        let k = s.chan(*chan).ix();
                        let c = &self.chans[k];
                        let ch = &self.of_cmd.list[k];
                        let peer = self.insts[ch.src].pe;
                        let (got, need) = c.recv_progress(self.model);
                        Wait::Recv {
                            from: to,
                            peer,
                            got,
                            need,
                        }
                    }
                    _ => continue,
                };
                waiters.push(Waiter {
                    pe: s.pe,
                    wait,
                    loc: t.loc(o.cmd).clone(),
                });
                seen_cmd = Some(o.cmd);
                found = true;
            }
            if !found {
                // Not waiting on the fabric: name the first command not done.
                if let Some(o) = s
                    .prog
                    .ops
                    .iter()
                    .enumerate()
                    .find(|(op, _)| self.ops.state(s, *op) != DONE)
                    .map(|x| x.1)
                {
                    waiters.push(Waiter {
                        pe: s.pe,
                        wait: Wait::Earlier {
                            op: t.mnemonic(o.cmd),
                        },
                        loc: t.loc(o.cmd).clone(),
                    });
                }
            }
        }
        Deadlock {
            at_ps: self
                .insts
                .iter()
                .map(|s| s.end_ps)
                .max()
                .unwrap_or(self.now),
            waiters,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ChanId, Ev, InstId, OpId, OpRef, LAST_LIMIT, MAX_INSTS, SPIN};

    /// Every event comes out of the queue as it went in, at the widest
    /// values each field takes.
    #[test]
    fn events_pack_and_unpack() {
        let top = (MAX_INSTS - 1) as u32;
        let r = OpRef::new(InstId(top), OpId(u32::MAX));
        let all = [
            Ev::OpDone(r),
            Ev::OpDone(OpRef::new(InstId(0), OpId(0))),
            Ev::SendNext(r),
            Ev::Visible(ChanId(u32::MAX)),
            Ev::Credit(ChanId(7)),
            Ev::CommFree(InstId(u32::MAX)),
            Ev::Pump(ChanId(u32::MAX)),
            Ev::Begin(InstId(3)),
            Ev::Open(u32::MAX),
            Ev::Idle(u32::MAX, u8::MAX),
            Ev::Spin(InstId(top)),
        ];
        for ev in all {
            assert_eq!(Ev::unpack(ev.pack()), ev, "{ev:?}");
        }
        // Events that differ pack differently.
        assert_ne!(Ev::Credit(ChanId(1)).pack(), Ev::Visible(ChanId(1)).pack());
        assert_ne!(Ev::OpDone(r).pack(), Ev::SendNext(r).pack());
    }
    use crate::ir::{
        CommandGraph, Dir, GraphBuilder, GraphHeader, KernelArgs, SrcLoc, TileType, TraceError,
        TraceLimits,
    };
    use crate::machine::Machine;
    use crate::neighbors::NeighborMap;
    use crate::program::Program;
    use crate::sim::{simulate, FabricModel, Launch, SimError};
    use crate::topology::Topology;
    use crate::DType;

    /// Each instance posts a receive from the west, sends a tile of `n` f32
    /// east, and waits for what it receives.
    struct Shift {
        n: usize,
    }

    impl Program for Shift {
        fn name(&self) -> &str {
            "shift"
        }
        fn trace(
            &self,
            _: &KernelArgs,
            grid: &[u32],
            pid: &[u32],
        ) -> Result<CommandGraph, TraceError> {
            let header = GraphHeader {
                kernel: "shift".into(),
                params: vec![],
                grid: grid.to_vec(),
                pid: pid.to_vec(),
            };
            let mut b = GraphBuilder::new(header, TraceLimits::default());
            let loc = SrcLoc {
                file: "shift.rs".into(),
                line: 1,
                col: 1,
            };
            let ty = TileType::new(DType::F32, vec![self.n]);
            let t = b.full(1.0, ty.clone(), &loc)?;
            let f = b.recv(Dir::W, ty, true, &loc)?;
            b.send(Dir::E, t, &loc)?;
            b.wait(f, &loc)?;
            Ok(b.finish())
        }
    }

    fn run(n: usize, model: FabricModel) -> Result<crate::sim::Report, SimError> {
        let topo = Topology::builtin("tiny").unwrap();
        let pes: Vec<_> = topo.pes().take(4).collect();
        let map = NeighborMap::ring(&pes).unwrap();
        let mut machine = Machine::new(topo).unwrap();
        let prog = Shift { n };
        let launch = Launch::new(&prog, KernelArgs::new(), pes)
            .neighbors(map)
            .data(false)
            .fabric(model);
        simulate(&mut machine, &launch)
    }

    #[test]
    fn a_healthy_run_stays_far_below_the_progress_limit() {
        for model in [FabricModel::Slots, FabricModel::Messages] {
            for n in [1, 4096, 1 << 18] {
                let r = run(n, model).unwrap();
                let limit = LAST_LIMIT.with(|l| l.get());
                // The limit bounds the events between two completions; a
                // healthy run does not reach it even counting all its events.
                assert!(
                    r.events * 4 < limit,
                    "{model:?}, {n} elements: {} events, limit {limit}",
                    r.events
                );
            }
        }
    }

    #[test]
    fn a_run_whose_events_never_complete_an_op_stops_with_a_diagnosis() {
        SPIN.with(|s| s.set(true));
        let r = run(1 << 16, FabricModel::Messages);
        SPIN.with(|s| s.set(false));
        let Err(SimError::NoProgress(np)) = r else {
            panic!("expected NoProgress, got {r:?}");
        };
        assert_eq!(np.limit, LAST_LIMIT.with(|l| l.get()));
        assert!(np.events > np.limit);
        assert!(np.events_firing.iter().any(|k| k == "spin"), "{np}");
        let first = Topology::builtin("tiny").unwrap().pes().next().unwrap();
        assert!(np.pes.contains(&first), "{np}");
        let msg = SimError::NoProgress(np).to_string();
        assert!(
            msg.starts_with("no progress at") && msg.contains(&format!("PE(s) {first}")),
            "{msg}"
        );
    }
}
