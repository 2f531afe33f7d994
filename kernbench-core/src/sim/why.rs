//! Why a run is as slow as it is: the busiest links and engines, where the
//! PEs waited (for credits, for data, for an engine), and the critical path
//! from the start of the run to the op that finished last.
//!
//! The busiest links and engines come from the [`Report`] alone. Waits and
//! the critical path need each op's span and each instance's program: a
//! launch keeps them with [`Launch::why`](super::Launch::why) (or
//! [`Launch::trace`](super::Launch::trace)); a run without them records
//! nothing per op, and [`Why::of`] says so.
//!
//! The critical path is read back from the spans: starting at the op that
//! ended last, each step names what released it last, and the walk goes on
//! from there until it reaches an op that nothing held back:
//!
//! - a receive that was posted before its message had drained waited for
//!   **data**: the send of that message on the peer released it;
//! - a send that waited for ring slots (its slot grant, or the send itself
//!   with slots not yet granted) waited for **credits**: released by the
//!   receive on the peer that freed the slot (posted, on the path from its
//!   own start), or by the earlier send whose data still held it;
//! - any other op started when its last **dependency** finished, or, for an
//!   op on an engine that was ready before it started, when the op before
//!   it in the **engine**'s queue finished.

use super::lower::{OpKind, PeProgram, Unit, UNITS};
use super::report::{EngineBusy, LinkUse, Report};
use super::{CmdTable, Outcome};
use crate::ir::CmdId;
use crate::{PeId, Ps};
use std::collections::HashMap;
use std::fmt;

/// Time intervals `(from, to)`, ps.
type Intervals = Vec<(Ps, Ps)>;

/// One kind of wait of a PE.
type Pick = fn(&PeWaits) -> Ps;

/// Intervals merged into a sorted list of disjoint ones.
pub fn merge(mut v: Vec<(Ps, Ps)>) -> Vec<(Ps, Ps)> {
    v.sort_unstable();
    let mut out: Vec<(Ps, Ps)> = Vec::with_capacity(v.len());
    for (s, e) in v {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// The parts of `[start, end]` that no interval of the sorted, disjoint `busy` covers.
pub fn gaps(busy: &[(Ps, Ps)], start: Ps, end: Ps) -> Vec<(Ps, Ps)> {
    let mut out = Vec::new();
    let mut at = start;
    for &(s, e) in busy {
        if s > at && at < end {
            out.push((at, s.min(end)));
        }
        at = at.max(e);
    }
    if at < end {
        out.push((at, end));
    }
    out
}

/// How much of `[s, e]` the sorted, disjoint `set` covers.
pub fn covered(set: &[(Ps, Ps)], s: Ps, e: Ps) -> Ps {
    let from = set.partition_point(|x| x.1 <= s);
    set[from..]
        .iter()
        .take_while(|x| x.0 < e)
        .map(|x| x.1.min(e) - x.0.max(s))
        .sum()
}

/// The total length of disjoint intervals.
pub fn total(set: &[(Ps, Ps)]) -> Ps {
    set.iter().map(|x| x.1 - x.0).sum()
}

/// One engine of one PE and how long it was busy.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineLoad {
    /// The instance (launch order).
    pub inst: usize,
    /// Its PE.
    pub pe: PeId,
    /// The engine's name (`PE_CPU`, `DMA_IN`, `GEMM`, `MATH`, `DMA_WB`, `COMM`).
    pub engine: &'static str,
    /// Busy time, ps.
    pub busy_ps: Ps,
    /// The PE's kernel time (start to end), ps.
    pub kernel_ps: Ps,
}

impl EngineLoad {
    /// Busy time over the PE's kernel time.
    pub fn utilisation(&self) -> f64 {
        self.busy_ps as f64 / self.kernel_ps.max(1) as f64
    }
}

/// The `n` busiest engines of any PE, busiest first (launch order, then
/// engine order, on a tie); engines never busy are left out.
pub fn busiest_engines(report: &Report, n: usize) -> Vec<EngineLoad> {
    let mut all: Vec<EngineLoad> = Vec::new();
    for (i, p) in report.pes.iter().enumerate() {
        for (name, busy) in p.busy.pairs() {
            if busy > 0 {
                all.push(EngineLoad {
                    inst: i,
                    pe: p.pe,
                    engine: name,
                    busy_ps: busy,
                    kernel_ps: p.end_ps - p.start_ps,
                });
            }
        }
    }
    // A stable sort keeps launch and engine order among equals.
    all.sort_by_key(|e| std::cmp::Reverse(e.busy_ps));
    all.truncate(n);
    all
}

/// Each engine's busy time summed over the PEs, in report order.
pub fn engine_totals(report: &Report) -> [(&'static str, Ps); UNITS] {
    let mut tot = EngineBusy::default().pairs();
    for p in &report.pes {
        for (k, (_, b)) in p.busy.pairs().iter().enumerate() {
            tot[k].1 += b;
        }
    }
    tot
}

/// The `n` busiest links with their utilisation (busy time over the run's
/// kernel time), busiest first.
pub fn busiest_links(report: &Report, n: usize) -> Vec<(&LinkUse, f64)> {
    let span = report.sim_ps().max(1) as f64;
    report
        .links
        .iter()
        .take(n)
        .map(|l| (l, l.busy_ps as f64 / span))
        .collect()
}

/// Where one PE waited, ps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeWaits {
    /// Time with no engine busy (between its start and its end).
    pub stalled: Ps,
    /// Stalled time while a receive was outstanding: waiting for data.
    pub data: Ps,
    /// Stalled time while a send waited for ring slots (its slot grant, or
    /// the send on the comm DMA before its last slot was granted): waiting for credits.
    pub credits: Ps,
    /// Time some op was ready but waited for its engine, busy with another op.
    pub engine: Ps,
    /// `engine`, per engine (a PE may wait on two engines at once, so these
    /// may add up to more than `engine`).
    pub by_engine: [Ps; UNITS],
}

/// A kernel line whose receives or sends PEs stalled on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaitLine {
    /// `file:line`.
    pub loc: String,
    /// The command (`recv W`, `send E`).
    pub command: String,
    /// Stalled time while one of its receives or sends was outstanding, summed over PEs.
    pub stalled_ps: Ps,
    /// PEs that stalled there.
    pub pes: usize,
}

/// Where the PEs of a run waited.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waits {
    /// Per PE, in launch order.
    pub per_pe: Vec<PeWaits>,
    /// The kernel lines PEs stalled on most, longest first.
    pub lines: Vec<WaitLine>,
}

/// What one op's span says, by instance and op.
struct Spans {
    /// `(start, end)` of each op of each instance (`None` for an op that did not run).
    at: Vec<Vec<Option<(Ps, Ps)>>>,
}

impl Spans {
    fn of(outcome: &Outcome) -> Self {
        let mut at: Vec<Vec<Option<(Ps, Ps)>>> = outcome
            .programs
            .iter()
            .map(|p| vec![None; p.ops.len()])
            .collect();
        for sp in &outcome.spans {
            if let Some(x) = at
                .get_mut(sp.inst as usize)
                .and_then(|v| v.get_mut(sp.op as usize))
            {
                *x = Some((sp.start, sp.end));
            }
        }
        Spans { at }
    }

    fn get(&self, inst: usize, op: u32) -> Option<(Ps, Ps)> {
        self.at[inst][op as usize]
    }
}

/// When op `op` of `prog` was ready: the end of its last dependency, or
/// `start` for an op without dependencies.
fn ready(spans: &Spans, inst: usize, prog: &PeProgram, op: usize, start: Ps) -> Ps {
    prog.deps_of(op)
        .iter()
        .filter_map(|&d| spans.get(inst, d).map(|x| x.1))
        .max()
        .unwrap_or(start)
}

/// `file:line` of a command.
fn line_of(t: &CmdTable, c: CmdId) -> String {
    let l = t.loc(c);
    format!("{}:{}", l.file, l.line)
}

/// A command's name: its mnemonic and, for a send or receive, its peer.
fn command_of(t: &CmdTable, c: CmdId) -> String {
    match t.peer(c) {
        Some(p) => format!("{} {p}", t.mnemonic(c)),
        None => t.mnemonic(c).to_string(),
    }
}

/// Kernel lines kept in [`Waits::lines`].
pub const TOP_WAIT_LINES: usize = 8;

/// Where the PEs of a run waited. `None` when the run kept no op spans
/// (see the module's documentation).
pub fn waits(outcome: &Outcome) -> Option<Waits> {
    if !has_spans(outcome) {
        return None;
    }
    let r = &outcome.report;
    let n = r.pes.len();
    let spans = Spans::of(outcome);
    let mut busy: Vec<Vec<(Ps, Ps)>> = vec![Vec::new(); n];
    let mut data: Vec<Vec<(Ps, Ps)>> = vec![Vec::new(); n];
    let mut slots: Vec<Vec<(Ps, Ps)>> = vec![Vec::new(); n];
    // Each engine's busy time, and when its ops were ready and not started.
    let mut on_unit: Vec<[Vec<(Ps, Ps)>; UNITS]> = vec![Default::default(); n];
    let mut queued: Vec<[Vec<(Ps, Ps)>; UNITS]> = vec![Default::default(); n];
    for sp in &outcome.spans {
        let i = sp.inst as usize;
        let prog = &outcome.programs[i];
        let op = &prog.ops[sp.op as usize];
        if op.unit != Unit::Free {
            let from = ready(&spans, i, prog, sp.op as usize, r.pes[i].start_ps);
            if sp.start > from {
                queued[i][op.unit as usize].push((from, sp.start));
            }
            if sp.end > sp.start {
                on_unit[i][op.unit as usize].push((sp.start, sp.end));
            }
        }
        // A send's span runs until its last slot is granted: the comm DMA
        // holds it for want of slots, not for work (its injection time is
        // in the report's COMM busy time).
        let into = match (op.unit, op.kind) {
            (Unit::Free, OpKind::Recv { .. }) => &mut data[i],
            (_, OpKind::SendGrant { .. } | OpKind::Send { .. }) => &mut slots[i],
            (Unit::Free, _) => continue,
            _ => &mut busy[i],
        };
        if sp.end > sp.start {
            into.push((sp.start, sp.end));
        }
    }
    let idle: Vec<Vec<(Ps, Ps)>> = busy
        .into_iter()
        .zip(&r.pes)
        .map(|(b, p)| gaps(&merge(b), p.start_ps, p.end_ps))
        .collect();
    let per_pe = (0..n)
        .map(|i| {
            let stalled = |w: &[(Ps, Ps)]| {
                merge(w.to_vec())
                    .iter()
                    .map(|x| covered(&idle[i], x.0, x.1))
                    .sum()
            };
            // Ready ops queued while their engine was busy (an op held
            // only by the order of an idle engine's queue does not count).
            let held: [Vec<(Ps, Ps)>; UNITS] = std::array::from_fn(|u| {
                let busy = merge(std::mem::take(&mut on_unit[i][u]));
                let waits = merge(std::mem::take(&mut queued[i][u]));
                // Both sorted and disjoint: walk them together.
                let mut out = Vec::new();
                let mut b = 0;
                for &(a, e) in &waits {
                    while b < busy.len() && busy[b].1 <= a {
                        b += 1;
                    }
                    let mut k = b;
                    while k < busy.len() && busy[k].0 < e {
                        out.push((busy[k].0.max(a), busy[k].1.min(e)));
                        k += 1;
                    }
                }
                out
            });
            let by_engine = std::array::from_fn(|u| total(&held[u]));
            let engine = total(&merge(held.concat()));
            PeWaits {
                stalled: total(&idle[i]),
                data: stalled(&data[i]),
                credits: stalled(&slots[i]),
                engine,
                by_engine,
            }
        })
        .collect();
    // Each wait op's stalled time, by the kernel line that issued it (a
    // send's slot grant and the send itself count once).
    let mut held: HashMap<(String, String), Vec<Intervals>> = HashMap::new();
    for sp in &outcome.spans {
        let i = sp.inst as usize;
        let op = &outcome.programs[i].ops[sp.op as usize];
        if sp.end <= sp.start
            || !matches!(
                op.kind,
                OpKind::Recv { .. } | OpKind::SendGrant { .. } | OpKind::Send { .. }
            )
        {
            continue;
        }
        let table = &outcome.tables[i];
        let key = (line_of(table, op.cmd), command_of(table, op.cmd));
        held.entry(key).or_insert_with(|| vec![Vec::new(); n])[i].push((sp.start, sp.end));
    }
    let lines: HashMap<(String, String), (Ps, usize)> = held
        .into_iter()
        .map(|(key, per_pe)| {
            let mut sum = 0;
            let mut pes = 0;
            for (i, v) in per_pe.into_iter().enumerate() {
                let t: Ps = merge(v).iter().map(|x| covered(&idle[i], x.0, x.1)).sum();
                sum += t;
                pes += usize::from(t > 0);
            }
            (key, (sum, pes))
        })
        .filter(|(_, (t, _))| *t > 0)
        .collect();
    let mut lines: Vec<WaitLine> = lines
        .into_iter()
        .map(|((loc, command), (t, pes))| WaitLine {
            loc,
            command,
            stalled_ps: t,
            pes,
        })
        .collect();
    lines.sort_by(|a, b| {
        b.stalled_ps
            .cmp(&a.stalled_ps)
            .then_with(|| (&a.loc, &a.command).cmp(&(&b.loc, &b.command)))
    });
    lines.truncate(TOP_WAIT_LINES);
    Some(Waits { per_pe, lines })
}

/// `true` when the run kept what waits and the critical path need.
fn has_spans(outcome: &Outcome) -> bool {
    let ops: usize = outcome.programs.iter().map(|p| p.ops.len()).sum();
    outcome.programs.len() == outcome.report.pes.len()
        && outcome.tables.len() == outcome.report.pes.len()
        && (ops == 0 || !outcome.spans.is_empty())
}

/// What released a step of the critical path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cause {
    /// Nothing: it started with the run.
    Start,
    /// Its last dependency, the previous step, finished.
    Dependency,
    /// Its engine, busy with the previous step (or held in order by it), became free.
    Engine(Unit),
    /// A receive waited for the message the previous step sent.
    Data,
    /// A send waited for ring slots the previous step freed (a receive
    /// posted) or still held (an earlier send's data draining).
    Credits,
}

impl Cause {
    /// A short description.
    pub fn describe(self) -> String {
        match self {
            Cause::Start => "starts the run".into(),
            Cause::Dependency => "after its dependency".into(),
            Cause::Engine(u) => format!("waited for {}", u.name()),
            Cause::Data => "waited for data".into(),
            Cause::Credits => "waited for credits".into(),
        }
    }
}

/// One step of the critical path: an op, and when it released the next step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// The instance (launch order).
    pub inst: usize,
    /// Its PE.
    pub pe: PeId,
    /// The op (index into the instance's program).
    pub op: u32,
    /// The op's engine.
    pub unit: Unit,
    /// The command's `file:line`.
    pub loc: String,
    /// The command (`recv W`, `add`).
    pub command: String,
    /// When the op started and ended, ps.
    pub span: (Ps, Ps),
    /// When it released the next step (its end, or its start for a
    /// receive whose posting freed a slot), ps.
    pub at: Ps,
    /// What released this step.
    pub cause: Cause,
}

/// The critical path of a run, from its start to the op that ended last.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CriticalPath {
    /// Steps, earliest first; the last is the op that ended last.
    pub steps: Vec<Step>,
    /// The run's common start, ps.
    pub start_ps: Ps,
    /// When the last op ended, ps.
    pub end_ps: Ps,
}

/// How a channel's messages sit in the programs: its sends, slot grants and
/// receives, each `(instance, op)` in message order.
#[derive(Default)]
struct ChanOps {
    sends: Vec<(usize, u32)>,
    grants: Vec<(usize, u32)>,
    recvs: Vec<(usize, u32)>,
}

/// Which side of an op the walk explains: its end, or only its start.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Side {
    End,
    Start,
}

struct Walk<'a> {
    outcome: &'a Outcome,
    spans: Spans,
    chans: HashMap<u32, ChanOps>,
    /// `(channel, message index)` of each send, grant and receive op.
    msg_of: Vec<HashMap<u32, (u32, usize)>>,
    /// The op before each engine op in its engine's queue.
    prev_on_unit: Vec<HashMap<u32, u32>>,
}

impl<'a> Walk<'a> {
    fn new(outcome: &'a Outcome) -> Self {
        let mut chans: HashMap<u32, ChanOps> = HashMap::new();
        let mut msg_of = Vec::with_capacity(outcome.programs.len());
        let mut prev_on_unit = Vec::with_capacity(outcome.programs.len());
        for (i, p) in outcome.programs.iter().enumerate() {
            let mut m = HashMap::new();
            for (k, o) in p.ops.iter().enumerate() {
                let (chan, list) = match o.kind {
                    OpKind::Send { chan, .. } => (chan, 0),
                    OpKind::SendGrant { chan, .. } => (chan, 1),
                    OpKind::Recv { chan, .. } => (chan, 2),
                    _ => continue,
                };
                let c = chans.entry(chan).or_default();
                let v = match list {
                    0 => &mut c.sends,
                    1 => &mut c.grants,
                    _ => &mut c.recvs,
                };
                m.insert(k as u32, (chan, v.len()));
                v.push((i, k as u32));
            }
            msg_of.push(m);
            let mut prev = HashMap::new();
            for q in &p.queues {
                for w in q.windows(2) {
                    prev.insert(w[1], w[0]);
                }
            }
            prev_on_unit.push(prev);
        }
        Walk {
            outcome,
            spans: Spans::of(outcome),
            chans,
            msg_of,
            prev_on_unit,
        }
    }

    fn span(&self, inst: usize, op: u32) -> Option<(Ps, Ps)> {
        self.spans.get(inst, op)
    }

    /// What released the end of `(inst, op)` if something outside its PE
    /// held it: the step before, its side and the cause.
    fn end_cause(&self, inst: usize, op: u32) -> Option<((usize, u32), Side, Cause)> {
        let (s, e) = self.span(inst, op)?;
        if e <= s {
            return None;
        }
        let kind = self.outcome.programs[inst].ops[op as usize].kind;
        let &(chan, m) = self.msg_of[inst].get(&op)?;
        let c = self.chans.get(&chan)?;
        match kind {
            OpKind::Recv { .. } => {
                let &send = c.sends.get(m)?;
                let (_, se) = self.span(send.0, send.1)?;
                (se <= e).then_some((send, Side::End, Cause::Data))
            }
            OpKind::SendGrant { .. } | OpKind::Send { .. } => {
                // The receive of this message or an earlier one that was
                // posted last before the wait ended, and the send of that
                // receive's message: whichever released the slot later.
                let mut best: Option<((usize, u32), Side, Ps)> = None;
                let mut consider = |at: (usize, u32), side: Side, t: Ps| {
                    if at != (inst, op) && t <= e && best.is_none_or(|b| t > b.2) {
                        best = Some((at, side, t));
                    }
                };
                let mut posted: Option<(usize, Ps)> = None;
                for (k, &(ri, rop)) in c.recvs.iter().enumerate().take(m + 1) {
                    if let Some((rs, _)) = self.span(ri, rop) {
                        if rs <= e && posted.is_none_or(|p| rs >= p.1) {
                            posted = Some((k, rs));
                        }
                    }
                }
                if let Some((k, rs)) = posted {
                    consider(c.recvs[k], Side::Start, rs);
                    if let Some(&snd) = c.sends.get(k) {
                        if let Some((_, se)) = self.span(snd.0, snd.1) {
                            consider(snd, Side::End, se);
                        }
                    }
                }
                if matches!(kind, OpKind::Send { .. }) {
                    // The send injects only once its slot grant has begun.
                    if let Some(&g) = c.grants.get(m) {
                        if let Some((gs, _)) = self.span(g.0, g.1) {
                            consider(g, Side::Start, gs);
                        }
                    }
                }
                let (at, side, t) = best?;
                (t > s).then_some((at, side, Cause::Credits))
            }
            _ => None,
        }
    }

    /// What released the start of `(inst, op)`: its last dependency or the
    /// op before it on its engine, whichever finished later (the dependency
    /// on a tie); `None` for an op nothing held back.
    fn start_cause(&self, inst: usize, op: u32) -> Option<((usize, u32), Cause)> {
        let (s, _) = self.span(inst, op)?;
        let prog = &self.outcome.programs[inst];
        let mut best: Option<(u32, Ps, Cause)> = None;
        for &d in prog.deps_of(op as usize) {
            if let Some((_, de)) = self.span(inst, d) {
                if de <= s && best.is_none_or(|b| de > b.1) {
                    best = Some((d, de, Cause::Dependency));
                }
            }
        }
        let unit = prog.ops[op as usize].unit;
        if let Some(&p) = self.prev_on_unit[inst].get(&op) {
            if let Some((_, pe)) = self.span(inst, p) {
                if pe <= s && best.is_none_or(|b| pe > b.1) {
                    best = Some((p, pe, Cause::Engine(unit)));
                }
            }
        }
        best.map(|(o, _, c)| ((inst, o), c))
    }

    fn step(&self, inst: usize, op: u32, side: Side, cause: Cause) -> Step {
        let t = &self.outcome.tables[inst];
        let o = &self.outcome.programs[inst].ops[op as usize];
        let span = self.span(inst, op).unwrap_or_default();
        Step {
            inst,
            pe: self.outcome.report.pes[inst].pe,
            op,
            unit: o.unit,
            loc: line_of(t, o.cmd),
            command: command_of(t, o.cmd),
            span,
            at: match side {
                Side::End => span.1,
                Side::Start => span.0,
            },
            cause,
        }
    }
}

/// The critical path of a run. `None` when the run kept no op spans (see
/// the module's documentation) or ran no op.
pub fn critical_path(outcome: &Outcome) -> Option<CriticalPath> {
    if !has_spans(outcome) {
        return None;
    }
    let last = outcome
        .spans
        .iter()
        .max_by(|a, b| {
            a.end
                .cmp(&b.end)
                .then_with(|| (b.inst, b.op).cmp(&(a.inst, a.op)))
        })
        .map(|s| (s.inst as usize, s.op))?;
    let w = Walk::new(outcome);
    // Walk back from the last op; each step holds the cause that released it.
    let mut rev: Vec<(usize, u32, Side)> = Vec::new();
    let mut causes: Vec<Cause> = Vec::new();
    let mut seen: std::collections::HashSet<(usize, u32, bool)> = Default::default();
    let (mut at, mut side) = (last, Side::End);
    loop {
        if !seen.insert((at.0, at.1, side == Side::End)) {
            break;
        }
        rev.push((at.0, at.1, side));
        let next = match side {
            Side::End => w.end_cause(at.0, at.1),
            Side::Start => None,
        }
        .or_else(|| w.start_cause(at.0, at.1).map(|(o, c)| (o, Side::End, c)));
        match next {
            Some((o, s, c)) => {
                causes.push(c);
                (at, side) = (o, s);
            }
            None => {
                causes.push(Cause::Start);
                break;
            }
        }
    }
    let steps = rev
        .iter()
        .zip(&causes)
        .rev()
        .map(|(&(i, op, side), &c)| w.step(i, op, side, c))
        .collect();
    let end_ps = w.span(last.0, last.1).map_or(0, |x| x.1);
    Some(CriticalPath {
        steps,
        start_ps: outcome.report.start_ps,
        end_ps,
    })
}

/// Links and engines listed in the summary.
pub const TOP: usize = 3;

/// The bottleneck summary of a run: the busiest links and engines, the
/// waits, and the critical path.
#[derive(Clone, Debug)]
pub struct Why {
    /// Kernel time, ps.
    pub sim_ps: Ps,
    /// The run's common start, ps.
    pub start_ps: Ps,
    /// PEs.
    pub pes: Vec<PeId>,
    /// Each PE's kernel time, ps.
    pub kernel_ps: Vec<Ps>,
    /// The busiest links: name, busy ps, bytes, utilisation.
    pub links: Vec<(String, Ps, u64, f64)>,
    /// Links that carried traffic.
    pub links_used: usize,
    /// The busiest engines.
    pub engines: Vec<EngineLoad>,
    /// Where the PEs waited.
    pub waits: Waits,
    /// The critical path.
    pub path: CriticalPath,
}

/// Why [`Why::of`] has nothing to say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoSpans;

impl fmt::Display for NoSpans {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "the run kept no op spans: launch it with `Launch::why` (or a trace) to see why it is slow",
        )
    }
}

impl std::error::Error for NoSpans {}

impl Why {
    /// The summary of a run that kept its op spans.
    pub fn of(outcome: &Outcome) -> Result<Why, NoSpans> {
        let r = &outcome.report;
        let waits = waits(outcome).ok_or(NoSpans)?;
        let path = critical_path(outcome).unwrap_or(CriticalPath {
            steps: Vec::new(),
            start_ps: r.start_ps,
            end_ps: r.start_ps,
        });
        Ok(Why {
            sim_ps: r.sim_ps(),
            start_ps: r.start_ps,
            pes: r.pes.iter().map(|p| p.pe).collect(),
            kernel_ps: r.pes.iter().map(|p| p.end_ps - p.start_ps).collect(),
            links: busiest_links(r, TOP)
                .into_iter()
                .map(|(l, u)| (l.name.clone(), l.busy_ps, l.bytes, u))
                .collect(),
            links_used: r.links.len(),
            engines: busiest_engines(r, TOP),
            waits,
            path,
        })
    }
}

fn us(ps: Ps) -> String {
    format!("{:.3}", ps as f64 / 1e6)
}

/// The fewest steps folded into one line.
const FOLD_MIN: usize = 4;
/// How far back a step's like is looked for: a step whose kernel line,
/// command and cause came up in the last `FOLD_WINDOW` steps repeats them.
const FOLD_WINDOW: usize = 48;

/// What makes two steps alike for folding: the kernel line, the command and the cause.
fn shape(s: &Step) -> (&str, &str, Cause) {
    (&s.loc, &s.command, s.cause)
}

/// The path as lines of text, repetitive stretches folded: a stretch of at
/// least [`FOLD_MIN`] steps each of which repeats one of the
/// [`FOLD_WINDOW`] steps before it folds to one line that says how many
/// steps, of which commands, on which PEs and when. The first round of a
/// loop shows in full, and so does every step that is new; the last step
/// always shows.
fn path_lines(path: &CriticalPath) -> Vec<String> {
    let steps = &path.steps;
    let rel = |t: Ps| us(t.saturating_sub(path.start_ps));
    let loc_w = steps.iter().map(|s| s.loc.len()).max().unwrap_or(0);
    let cmd_w = steps.iter().map(|s| s.command.len()).max().unwrap_or(0);
    let line = |s: &Step| {
        // A receive whose posting freed a slot releases the next step when
        // posted, before it completes: the line ends there and says so.
        let (end, posted) = if s.at < s.span.1 {
            (rel(s.at), "; released the next step when posted")
        } else {
            (rel(s.span.1), "")
        };
        format!(
            "    {:>10} .. {:>10} us  PE {:<10} {:<loc_w$}  {:<cmd_w$}  {:<6}  {}{posted}",
            rel(s.span.0),
            end,
            s.pe.to_string(),
            s.loc,
            s.command,
            s.unit.name(),
            s.cause.describe()
        )
    };
    let repeats = |t: usize| {
        steps[t.saturating_sub(FOLD_WINDOW)..t]
            .iter()
            .any(|u| shape(u) == shape(&steps[t]))
    };
    let mut out = Vec::new();
    let mut k = 0;
    while k < steps.len() {
        let mut j = k;
        while j + 1 < steps.len() && repeats(j) {
            j += 1;
        }
        if j - k < FOLD_MIN {
            out.push(line(&steps[k]));
            k += 1;
            continue;
        }
        let folded = &steps[k..j];
        let mut names: Vec<&str> = Vec::new();
        for s in folded {
            let name = s.command.split(' ').next().unwrap_or("");
            if !names.contains(&name) {
                names.push(name);
            }
        }
        let mut pes: Vec<PeId> = Vec::new();
        for s in folded {
            if pes.last() != Some(&s.pe) {
                pes.push(s.pe);
            }
        }
        let pes_text = if pes.len() > 6 {
            let head: Vec<String> = pes[..3].iter().map(|p| p.to_string()).collect();
            format!("{} → ... → {}", head.join("→"), pes[pes.len() - 1])
        } else {
            pes.iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("→")
        };
        out.push(format!(
            "    ... {} more {} steps on PEs {} ({} .. {} us) ...",
            folded.len(),
            names.join("/"),
            pes_text,
            rel(folded[0].span.0),
            rel(folded[folded.len() - 1].at)
        ));
        k = j;
    }
    out
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = |part: Ps, whole: Ps| part as f64 / whole.max(1) as f64 * 100.0;
        writeln!(f, "why it is slow ({} us):", us(self.sim_ps))?;
        if self.links.is_empty() {
            writeln!(f, "  no link carried traffic")?;
        } else {
            writeln!(f, "  busiest links ({} carried traffic):", self.links_used)?;
            for (name, busy, bytes, u) in &self.links {
                writeln!(
                    f,
                    "    {name}: busy {} us = {:.1}% of the run, {bytes} B",
                    us(*busy),
                    u * 100.0
                )?;
            }
        }
        if !self.engines.is_empty() {
            writeln!(f, "  busiest engines:")?;
            for e in &self.engines {
                writeln!(
                    f,
                    "    {} of PE {}: busy {} us = {:.1}% of its kernel time",
                    e.engine,
                    e.pe,
                    us(e.busy_ps),
                    e.utilisation() * 100.0
                )?;
            }
        }
        let w = &self.waits.per_pe;
        writeln!(f, "  waiting, summed over PEs; the PE that waited most:")?;
        let kinds: [(&str, Pick); 4] = [
            ("stalled (no engine busy)", |x| x.stalled),
            ("for credits (send held, ring full)", |x| x.credits),
            ("for data (receive outstanding)", |x| x.data),
            ("for an engine (op ready, engine busy)", |x| x.engine),
        ];
        for (name, get) in kinds {
            let sum: Ps = w.iter().map(get).sum();
            let worst = w
                .iter()
                .enumerate()
                .max_by_key(|&(i, x)| (get(x), std::cmp::Reverse(i)));
            match worst.filter(|_| sum > 0) {
                Some((i, x)) => writeln!(
                    f,
                    "    {name:<40} {:>12} us; PE {} {} us = {:.1}% of its kernel time",
                    us(sum),
                    self.pes[i],
                    us(get(x)),
                    pct(get(x), self.kernel_ps[i])
                )?,
                None => writeln!(f, "    {name:<40} {:>12} us", us(0))?,
            }
        }
        let mut by_engine = [0 as Ps; UNITS];
        for x in w {
            for (k, t) in x.by_engine.iter().enumerate() {
                by_engine[k] += t;
            }
        }
        let names = EngineBusy::default().pairs().map(|p| p.0);
        let parts: Vec<String> = names
            .iter()
            .zip(by_engine)
            .filter(|(_, t)| *t > 0)
            .map(|(n, t)| format!("{n} {} us", us(t)))
            .collect();
        if !parts.is_empty() {
            writeln!(f, "    queued per engine: {}", parts.join(", "))?;
        }
        for l in self.waits.lines.iter().take(TOP) {
            writeln!(
                f,
                "    stalled at {} {}: {} us over {} PE(s)",
                l.loc,
                l.command,
                us(l.stalled_ps),
                l.pes
            )?;
        }
        match self.path.steps.last() {
            None => writeln!(f, "  critical path: no op ran")?,
            Some(last) => {
                writeln!(
                    f,
                    "  critical path: PE {} ends last with {} ({}) at {} us; {} steps from the start:",
                    last.pe,
                    last.command,
                    last.loc,
                    us(self.path.end_ps.saturating_sub(self.start_ps)),
                    self.path.steps.len()
                )?;
                for l in path_lines(&self.path) {
                    writeln!(f, "{l}")?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stalls_are_the_gaps_between_busy_engines() {
        let busy = merge(vec![(5, 10), (0, 3), (8, 12), (20, 25)]);
        assert_eq!(busy, vec![(0, 3), (5, 12), (20, 25)]);
        let idle = gaps(&busy, 0, 30);
        assert_eq!(idle, vec![(3, 5), (12, 20), (25, 30)]);
        assert_eq!(total(&idle), 15);
        assert_eq!(gaps(&busy, 6, 22), vec![(12, 20)]);
        assert_eq!(gaps(&[], 4, 9), vec![(4, 9)]);
        // A receive outstanding over 4..26 overlaps 1 + 8 + 1 of idle time.
        assert_eq!(covered(&idle, 4, 26), 10);
        assert_eq!(covered(&idle, 13, 14), 1);
        assert_eq!(covered(&idle, 30, 40), 0);
    }

    fn step(pe: u16, loc: &str, command: &str, cause: Cause, t: Ps) -> Step {
        Step {
            inst: pe as usize,
            pe: PeId::new(0, 0, pe),
            op: 0,
            unit: Unit::Free,
            loc: loc.into(),
            command: command.into(),
            span: (t, t + 1_000_000),
            at: t + 1_000_000,
            cause,
        }
    }

    #[test]
    fn a_repeating_stretch_of_the_path_folds_after_its_first_round() {
        let mut steps = vec![step(0, "k.rs:1", "load", Cause::Start, 0)];
        let mut t = 1_000_000;
        for r in 0..10u16 {
            steps.push(step(r, "k.rs:5", "recv W", Cause::Data, t));
            steps.push(step(r, "k.rs:6", "add", Cause::Dependency, t + 1_000_000));
            steps.push(step(
                r,
                "k.rs:7",
                "send E",
                Cause::Dependency,
                t + 2_000_000,
            ));
            t += 3_000_000;
        }
        steps.push(step(9, "k.rs:9", "store", Cause::Dependency, t));
        let path = CriticalPath {
            steps,
            start_ps: 0,
            end_ps: t + 1_000_000,
        };
        let lines = path_lines(&path);
        // The load, the first round, the fold of the other rounds, the store.
        assert_eq!(lines.len(), 1 + 3 + 1 + 1, "{lines:#?}");
        assert!(
            lines[4].contains(
                "... 27 more recv/add/send steps on PEs (0,0,1)→(0,0,2)→(0,0,3) → ... → (0,0,9) (4.000 .. 31.000 us) ..."
            ),
            "{}",
            lines[4]
        );
        assert!(lines[1].contains("k.rs:5") && lines[1].contains("waited for data"));
        assert!(lines[5].contains("store"));
        // A step that is new breaks the fold and shows.
        let mut odd = path.clone();
        odd.steps[16].loc = "k.rs:8".into();
        let lines = path_lines(&odd);
        assert!(lines.iter().any(|l| l.contains("k.rs:8")), "{lines:#?}");
        assert_eq!(
            lines.iter().filter(|l| l.contains(" more ")).count(),
            2,
            "{lines:#?}"
        );
    }
}
