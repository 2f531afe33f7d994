//! Timelines of a finished run in the Chrome trace event format, which
//! Perfetto (<https://ui.perfetto.dev>) and `chrome://tracing` open.
//!
//! [`chrome_trace`] lays out an [`Outcome`] of a launch run with
//! [`Launch::trace`](crate::sim::Launch::trace) on:
//!
//! - a process `launch` with the host's dispatch, the kernel from the common
//!   start ([`Report::start_ps`](crate::sim::Report::start_ps)) to the last PE's
//!   end, and a global instant at the common start;
//! - a process per PE, named by its structural id `(sip,cube,pe)`, with a
//!   track for its kernel (start to end), one per engine it used (`PE_CPU`,
//!   `DMA_IN`, `GEMM`, `MATH`, `DMA_WB`, `COMM`), one per direction it
//!   received from (`RECV W`), one per direction whose ring slots it waited
//!   for (`slots E`), and `waits` for zero-time joins. Each op is a slice
//!   named after its command (`load`, `dot`, `send E`), with the kernel line,
//!   the command id, the op's kind and label (tile or step) and its bytes;
//! - a process `fabric` with a track per link that carried traffic
//!   (`from -> to (GB/s)`), a slice per transfer occupying it;
//! - a flow arrow from each IPCQ send's first packet injection to the
//!   completion of the receive that consumed the message.
//!
//! The simulator's times are integer picoseconds; the format counts
//! microseconds, so every `ts` is `ps / 1e6` of an integer and every `dur`
//! the difference of two integers divided likewise. Events are sorted by
//! time (ties by process, track and position on the track), so the same run
//! gives the same bytes.
//!
//! Perfetto imports whole nanoseconds (it rounds each `ts` and `dur`
//! separately), reads events at one time complete ones first, and binds a
//! flow event to whatever slice is on top of its track's stack when it reads
//! it. So that every slice and arrow survives that:
//!
//! - a track whose slices would overlap, or start within the same
//!   nanosecond, spreads over lanes (`RECV W #2`);
//! - where rounding would make a slice overlap the next one on its track by
//!   1 ns (Perfetto drops the later slice), its `dur` is trimmed by less
//!   than a nanosecond, and its args keep the exact `end_ps`;
//! - a flow event sits at its instant (injection, completion) moved inside
//!   its slice, off the instants the slice shares with its neighbours, by at
//!   most a nanosecond.
//!
//! [`check_chrome_trace`] replays those import rules on a trace.

mod check;

pub use check::{check_chrome_trace, BadTrace, TraceSummary};

use crate::ir::{Command, Peer};
use crate::passes::lower::{OpKind, Unit, UNITS};
use crate::sim::Outcome;
use crate::topology::Topology;
use crate::{PeId, Ps};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::Path;

/// What [`chrome_trace`] keeps of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceOptions {
    /// Only these PEs (their tracks, the flows between two of them, and the
    /// link transfers they sent or receive); every PE when `None`.
    pub pes: Option<Vec<PeId>>,
    /// Only what overlaps `[t0, t1]`, ns since the launch began; everything when `None`.
    pub window_ns: Option<(f64, f64)>,
    /// Link tracks for the fabric.
    pub links: bool,
    /// At most this many events besides the metadata; the earliest are kept
    /// and `otherData.note` says where the trace was cut.
    pub max_events: usize,
}

impl Default for TraceOptions {
    fn default() -> Self {
        TraceOptions {
            pes: None,
            window_ns: None,
            links: true,
            max_events: 2_000_000,
        }
    }
}

impl TraceOptions {
    /// Keeps only the PEs of `outcome` for which `pred` holds.
    pub fn filter_pes(mut self, outcome: &Outcome, pred: impl Fn(PeId) -> bool) -> Self {
        self.pes = Some(
            outcome
                .report
                .pes
                .iter()
                .map(|p| p.pe)
                .filter(|pe| pred(*pe))
                .collect(),
        );
        self
    }
}

/// Picoseconds as the trace format's microseconds: `ps / 1e6`, correctly rounded.
pub fn ps_to_us(ps: Ps) -> f64 {
    ps as f64 / 1e6
}

/// The whole nanoseconds Perfetto's JSON importer makes of a `ts` or `dur`
/// of `us` microseconds as this module writes it: it reads the number's text
/// as `integer + fraction / 10^digits` (scaled by any exponent), takes an
/// integral value times 1000, and otherwise rounds `value * 1000` half away
/// from zero.
pub fn perfetto_ns(us: f64) -> i64 {
    let text = Value::from(us).to_string();
    let b = text.as_bytes();
    let mut i = 0;
    let neg = b.first() == Some(&b'-');
    if neg {
        i += 1;
    }
    let mut int_part: i64 = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        int_part = int_part
            .wrapping_mul(10)
            .wrapping_add(i64::from(b[i] - b'0'));
        i += 1;
    }
    let int_like = !text.contains(['.', 'e', 'E']);
    if int_like {
        let v = if neg { -int_part } else { int_part };
        return v.saturating_mul(1000);
    }
    let mut fraction = 0.0;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let mut f: i64 = 0;
        let mut div: u64 = 1;
        while i < b.len() && b[i].is_ascii_digit() {
            f = f.wrapping_mul(10).wrapping_add(i64::from(b[i] - b'0'));
            div = div.wrapping_mul(10);
            i += 1;
        }
        fraction = f as f64 / div as f64;
    }
    let mut exp: i64 = 0;
    let mut exp_neg = false;
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            exp_neg = b[i] == b'-';
            i += 1;
        }
        while i < b.len() && b[i].is_ascii_digit() {
            exp = exp * 10 + i64::from(b[i] - b'0');
            i += 1;
        }
    }
    let mut v = int_part as f64 + fraction;
    if exp_neg {
        v /= 10f64.powf(exp as f64);
    } else if exp > 0 {
        v *= 10f64.powf(exp as f64);
    }
    let v = if neg { -v } else { v };
    if v == v.trunc() {
        (v as i64).saturating_mul(1000)
    } else {
        (v * 1000.0).round() as i64
    }
}

/// The latest end `<= end` of a slice starting at `start` that Perfetto does
/// not see overlapping a slice starting at `next` on the same track.
fn perfetto_safe_end(start: Ps, end: Ps, next: Ps) -> Ps {
    let s = perfetto_ns(ps_to_us(start));
    let n = perfetto_ns(ps_to_us(next));
    let fits = |dur: Ps| s + perfetto_ns(ps_to_us(dur)) <= n;
    if next < end || fits(end - start) {
        return end;
    }
    // Whole nanoseconds plus 0.499 rounds down, away from any halfway case.
    let target = (n - s).max(0) as Ps;
    let mut dur = (target * 1000 + 499).min(end - start);
    while dur > 0 && !fits(dur) {
        dur = dur.saturating_sub(250);
    }
    start + dur
}

// Processes and tracks. Thread ids are never 0: Perfetto reads a zero tid as the pid.
const LAUNCH_PID: u32 = 1;
const PE_PID0: u32 = 2;
const KERNEL_TID: u32 = 1;
const UNIT_TID0: u32 = 2;
const WAIT_TID: u32 = 8;
const RECV_TID0: u32 = 16;
const SLOTS_TID0: u32 = 32;
const LANE: u32 = 64;

fn track_name(tid: u32) -> String {
    let (base, lane) = (tid % LANE, tid / LANE);
    let name = match base {
        KERNEL_TID => "kernel".to_string(),
        b if (UNIT_TID0..UNIT_TID0 + UNITS as u32).contains(&b) => {
            Unit::ALL[(b - UNIT_TID0) as usize].name().to_string()
        }
        b if (RECV_TID0..RECV_TID0 + Peer::KINDS as u32).contains(&b) => {
            format!("RECV {}", Peer::kind_name((b - RECV_TID0) as usize))
        }
        b if (SLOTS_TID0..SLOTS_TID0 + Peer::KINDS as u32).contains(&b) => {
            format!("slots {}", Peer::kind_name((b - SLOTS_TID0) as usize))
        }
        _ => "waits".to_string(),
    };
    format!("{name}{}", lane_suffix(lane))
}

/// ` #2` for the second lane of a track, and so on.
fn lane_suffix(lane: u32) -> String {
    if lane == 0 {
        String::new()
    } else {
        format!(" #{}", lane + 1)
    }
}

/// The track of an op, and whether ops on it may overlap (then they go to lanes).
fn track_of(unit: Unit, kind: &OpKind, cmd: &Command) -> (u32, bool) {
    if unit != Unit::Free {
        return (UNIT_TID0 + unit as u32, false);
    }
    match (kind, cmd) {
        (OpKind::Recv { .. }, Command::Recv { peer, .. }) => {
            (RECV_TID0 + peer.kind_index() as u32, true)
        }
        (OpKind::SendGrant { .. }, Command::Send { peer, .. }) => {
            (SLOTS_TID0 + peer.kind_index() as u32, true)
        }
        _ => (WAIT_TID, true),
    }
}

fn cmd_name(cmd: &Command) -> String {
    match cmd {
        Command::Send { peer, .. } | Command::Recv { peer, .. } => {
            format!("{} {peer}", cmd.mnemonic())
        }
        _ => cmd.mnemonic().to_string(),
    }
}

/// What an op does, in a word, and the bytes and FLOPs it moves or performs.
fn op_kind(kind: &OpKind) -> (&'static str, u64, u64) {
    match kind {
        OpKind::Issue => ("issue", 0, 0),
        OpKind::Hbm { bytes, write, .. } => {
            (if *write { "hbm.write" } else { "hbm.read" }, *bytes, 0)
        }
        OpKind::Remote { bytes, write, .. } => (
            if *write {
                "remote.write"
            } else {
                "remote.read"
            },
            *bytes,
            0,
        ),
        OpKind::Fixed { flops, .. } => ("compute", 0, *flops),
        OpKind::SendGrant { bytes, .. } => ("slots", *bytes, 0),
        OpKind::Send { bytes, .. } => ("send", *bytes, 0),
        OpKind::Recv { bytes, .. } => ("recv", *bytes, 0),
        OpKind::Nop => ("join", 0, 0),
    }
}

/// Where a slice comes from; its name and args are made only for the events written.
enum Src {
    /// An op: (instance, op).
    Op(u32, u32),
    /// A transfer on a link: index into `Outcome::link_spans`.
    Link(usize),
    /// Anything else.
    Other(String, Map<String, Value>),
}

struct Slice {
    pid: u32,
    /// The track before lanes.
    tid: u32,
    /// Whether slices of the track may overlap (a track of an in-order engine
    /// takes a second lane only for two slices Perfetto sees starting in the same ns).
    overlaps: bool,
    start: Ps,
    end: Ps,
    cat: &'static str,
    src: Src,
}

enum What {
    /// A slice (index) shown up to an end, ps.
    Slice(usize, Ps),
    /// A flow event: id, and `true` for the end.
    Flow(u64, bool),
    /// An instant event, ready.
    Ready(Value),
}

/// One timed event, with its place in the output order.
struct Item {
    ts: Ps,
    pid: u32,
    tid: u32,
    seq: u32,
    what: What,
}

fn ns_to_ps(ns: f64) -> Ps {
    // `as` saturates: negative and NaN give 0, huge gives Ps::MAX.
    (ns * 1000.0).round() as Ps
}

/// A trace laid out: metadata events, the timed events in order (not yet
/// JSON), and `otherData`.
struct Built<'a> {
    outcome: &'a Outcome,
    pe_of: Vec<PeId>,
    slices: Vec<Slice>,
    meta: Vec<Value>,
    items: Vec<Item>,
    other: Map<String, Value>,
}

impl Built<'_> {
    fn event(&self, it: &Item) -> Value {
        let (pid, tid) = (it.pid, it.tid);
        match &it.what {
            What::Ready(v) => v.clone(),
            What::Flow(id, is_end) => {
                let mut ev = json!({
                    "name": "message", "cat": "ipcq", "ph": if *is_end { "f" } else { "s" },
                    "id": id, "pid": pid, "tid": tid, "ts": ps_to_us(it.ts),
                });
                if *is_end {
                    ev["bp"] = "e".into();
                }
                ev
            }
            What::Slice(k, end) => {
                let s = &self.slices[*k];
                let (name, mut args) = self.name_args(&s.src);
                if *end != s.end {
                    args.insert("end_ps".into(), s.end.into());
                }
                json!({
                    "name": name, "cat": s.cat, "ph": "X", "pid": pid, "tid": tid,
                    "ts": ps_to_us(s.start), "dur": ps_to_us(end - s.start), "args": args,
                })
            }
        }
    }

    fn name_args(&self, src: &Src) -> (String, Map<String, Value>) {
        let out = self.outcome;
        match src {
            Src::Other(name, args) => (name.clone(), args.clone()),
            Src::Link(i) => {
                let ls = &out.link_spans[*i];
                let pe = |i: Option<u32>| match i {
                    Some(i) => self.pe_of[i as usize].to_string(),
                    None => "?".to_string(),
                };
                let name = if ls.peer.is_some() {
                    format!("{} -> {}", pe(ls.inst), pe(ls.peer))
                } else {
                    format!("{} dma", pe(ls.inst))
                };
                (name, obj(json!({"bytes": ls.bytes})))
            }
            Src::Op(inst, op) => {
                let prog = &out.programs[*inst as usize];
                let label = prog.label(*op as usize);
                let op = &prog.ops[*op as usize];
                let node = out.graphs[*inst as usize].node(op.cmd);
                let (what, bytes, flops) = op_kind(&op.kind);
                let mut args = Map::new();
                args.insert(
                    "loc".into(),
                    format!("{}:{}", node.loc.file, node.loc.line).into(),
                );
                args.insert("cmd".into(), op.cmd.to_string().into());
                args.insert("op".into(), what.into());
                if label != crate::passes::lower::Label::Whole {
                    args.insert("label".into(), label.to_string().into());
                }
                if bytes > 0 {
                    args.insert("bytes".into(), bytes.into());
                }
                if flops > 0 {
                    args.insert("flops".into(), flops.into());
                }
                (cmd_name(&node.cmd), args)
            }
        }
    }
}

fn build<'a>(outcome: &'a Outcome, topo: &Topology, opts: &TraceOptions) -> Built<'a> {
    let report = &outcome.report;
    let n = report.pes.len();
    let pe_of: Vec<PeId> = report.pes.iter().map(|p| p.pe).collect();
    let kept: Vec<bool> = match &opts.pes {
        None => vec![true; n],
        Some(list) => {
            let set: BTreeSet<PeId> = list.iter().copied().collect();
            pe_of.iter().map(|pe| set.contains(pe)).collect()
        }
    };
    let fabric_pid = PE_PID0 + n as u32;
    let (t0, t1) = match opts.window_ns {
        Some((a, b)) => (ns_to_ps(a), ns_to_ps(b)),
        None => (0, Ps::MAX),
    };
    let inside = |s: Ps, e: Ps| s <= t1 && e >= t0;
    let mut slices: Vec<Slice> = Vec::new();
    let other = |name: &str, args: Value| Src::Other(name.to_string(), obj(args));

    // The launch.
    if report.start_ps > 0 && inside(0, report.start_ps) {
        slices.push(Slice {
            pid: LAUNCH_PID,
            tid: KERNEL_TID,
            overlaps: true,
            start: 0,
            end: report.start_ps,
            cat: "launch",
            src: other(
                "dispatch",
                json!({"path": "host -> IO_CPU -> M_CPU -> PE_CPU"}),
            ),
        });
    }
    if inside(report.start_ps, report.end_ps) {
        slices.push(Slice {
            pid: LAUNCH_PID,
            tid: KERNEL_TID,
            overlaps: true,
            start: report.start_ps,
            end: report.end_ps,
            cat: "launch",
            src: other(
                &report.kernel,
                json!({"pes": n, "topology": report.topology}),
            ),
        });
    }

    // Each PE's kernel.
    for (i, p) in report.pes.iter().enumerate() {
        if kept[i] && inside(p.start_ps, p.end_ps) {
            let args = json!({
                "pe": p.pe.to_string(),
                "sent": p.sent,
                "received": p.received,
                "flops": p.flops,
                "hbm_bytes": p.hbm_bytes(),
                "hbm_served_bytes": p.hbm_served(),
                "remote_bytes": p.remote_bytes(),
            });
            slices.push(Slice {
                pid: PE_PID0 + i as u32,
                tid: KERNEL_TID,
                overlaps: true,
                start: p.start_ps,
                end: p.end_ps,
                cat: "kernel",
                src: other(&report.kernel, args),
            });
        }
    }

    // Ops.
    let msgs = &outcome.messages;
    let send_msg: BTreeMap<(u32, u32), usize> = msgs
        .iter()
        .enumerate()
        .map(|(k, m)| ((m.src, m.send_op), k))
        .collect();
    let mut slice_of: BTreeMap<(u32, u32), usize> = BTreeMap::new();
    for sp in &outcome.spans {
        if !kept[sp.inst as usize] {
            continue;
        }
        let op = &outcome.programs[sp.inst as usize].ops[sp.op as usize];
        let mut end = sp.end;
        if let OpKind::Send { .. } = op.kind {
            if let Some(&m) = send_msg.get(&(sp.inst, sp.op)) {
                // The comm engine is busy until the last packet has left.
                end = end.max(msgs[m].injected_ps);
            }
        }
        if !inside(sp.start, end) {
            continue;
        }
        let cmd = &outcome.graphs[sp.inst as usize].node(op.cmd).cmd;
        let (tid, overlaps) = track_of(op.unit, &op.kind, cmd);
        slice_of.insert((sp.inst, sp.op), slices.len());
        slices.push(Slice {
            pid: PE_PID0 + sp.inst,
            tid,
            overlaps,
            start: sp.start,
            end,
            cat: "op",
            src: Src::Op(sp.inst, sp.op),
        });
    }

    // Links.
    if opts.links {
        let by_kept = |i: Option<u32>| i.is_some_and(|i| kept[i as usize]);
        for (k, ls) in outcome.link_spans.iter().enumerate() {
            let mine = opts.pes.is_none() || by_kept(ls.inst) || by_kept(ls.peer);
            if mine && inside(ls.start, ls.end) {
                slices.push(Slice {
                    pid: fabric_pid,
                    tid: ls.link + 1,
                    overlaps: true,
                    start: ls.start,
                    end: ls.end,
                    cat: "link",
                    src: Src::Link(k),
                });
            }
        }
    }

    // Flow events of each slice: (ts, is_end, id).
    let mut marks_of: Vec<Vec<(Ps, bool, u64)>> = vec![Vec::new(); slices.len()];
    for (k, m) in msgs.iter().enumerate() {
        if let (Some(&s), Some(&r)) = (
            slice_of.get(&(m.src, m.send_op)),
            slice_of.get(&(m.dst, m.recv_op)),
        ) {
            marks_of[s].push((m.inject_ps, false, k as u64 + 1));
            marks_of[r].push((m.received_ps, true, k as u64 + 1));
        }
    }

    // Lanes: on each track, Perfetto's start (whole ns) strictly increases
    // and slices do not overlap, so the slice on top of a track's stack is
    // the last one begun and a flow event binds to the slice it is in.
    let n_links = topo.links().len().max(1) as u32;
    let stride = |pid: u32| if pid == fabric_pid { n_links } else { LANE };
    let mut by_base: BTreeMap<(u32, u32), Vec<usize>> = BTreeMap::new();
    for (k, s) in slices.iter().enumerate() {
        by_base.entry((s.pid, s.tid)).or_default().push(k);
    }
    let mut tracks: BTreeMap<(u32, u32), Vec<usize>> = BTreeMap::new();
    for ((pid, base), mut list) in by_base {
        list.sort_by_key(|&k| (slices[k].start, slices[k].end, k));
        // Per lane: (last end, Perfetto start of the last slice).
        let mut lanes: Vec<(Ps, i64)> = Vec::new();
        for k in list {
            let s = &slices[k];
            let a = perfetto_ns(ps_to_us(s.start));
            let fits = |l: &(Ps, i64)| a > l.1 && (l.0 <= s.start || !s.overlaps);
            let lane = match lanes.iter().position(fits) {
                Some(l) => l,
                None => {
                    lanes.push((0, -1));
                    lanes.len() - 1
                }
            };
            lanes[lane] = (s.end, a);
            tracks
                .entry((pid, base + stride(pid) * lane as u32))
                .or_default()
                .push(k);
        }
    }

    // Per track: Perfetto-safe ends, then each slice followed by its flow events.
    let mut items: Vec<Item> = Vec::new();
    for ((pid, tid), list) in tracks {
        let mut seq = 0u32;
        for (j, &k) in list.iter().enumerate() {
            let s = &slices[k];
            let next = list.get(j + 1).map(|&x| slices[x].start);
            let end = next.map_or(s.end, |nx| perfetto_safe_end(s.start, s.end, nx));
            // Perfetto's start of the next slice: a flow event must come before it.
            let next_ns = next.map(|nx| perfetto_ns(ps_to_us(nx)));
            items.push(Item {
                ts: s.start,
                pid,
                tid,
                seq,
                what: What::Slice(k, end),
            });
            seq += 1;
            let mut mk = std::mem::take(&mut marks_of[k]);
            mk.sort_unstable();
            for (ts, is_end, id) in mk {
                // Strictly inside the slice, off the instants it shares with its neighbours.
                let (lo, hi) = if end - s.start >= 2 {
                    (s.start + 1, end - 1)
                } else {
                    (s.start, end)
                };
                let mut ts = ts.clamp(lo, hi);
                if let Some(nx) = next_ns {
                    if perfetto_ns(ps_to_us(ts)) >= nx {
                        // Whole ns + 0.499 is read as that ns, before the next slice.
                        ts = ((nx - 1).max(0) as Ps * 1000 + 499).clamp(lo, hi);
                        if perfetto_ns(ps_to_us(ts)) >= nx {
                            ts = s.start;
                        }
                    }
                }
                items.push(Item {
                    ts,
                    pid,
                    tid,
                    seq,
                    what: What::Flow(id, is_end),
                });
                seq += 1;
            }
        }
    }
    let instant = |name: &str, ts: Ps, args: Value| Item {
        ts,
        pid: LAUNCH_PID,
        tid: KERNEL_TID,
        seq: u32::MAX,
        what: What::Ready(json!({
            "name": name, "cat": "launch", "ph": "i", "s": "g",
            "pid": LAUNCH_PID, "tid": KERNEL_TID, "ts": ps_to_us(ts), "args": args,
        })),
    };
    if t0 <= report.start_ps && report.start_ps <= t1 {
        let args = json!({"start_ps": report.start_ps});
        items.push(instant("launch start", report.start_ps, args));
    }
    items.sort_unstable_by_key(|it| (it.ts, it.pid, it.tid, it.seq));

    // The cap.
    let total = items.len();
    let mut note = None;
    if total > opts.max_events {
        items.truncate(opts.max_events);
        let mut halves: BTreeMap<u64, u8> = BTreeMap::new();
        for it in &items {
            if let What::Flow(id, _) = it.what {
                *halves.entry(id).or_default() += 1;
            }
        }
        items.retain(|it| match it.what {
            What::Flow(id, _) => halves.get(&id) == Some(&2),
            _ => true,
        });
        let cut = items.last().map_or(0, |it| it.ts);
        let text = format!(
            "truncated: kept the first {} of {total} events (by time, up to {} us); \
             raise TraceOptions::max_events, or narrow TraceOptions::pes or window_ns",
            items.len(),
            ps_to_us(cut)
        );
        items.push(instant(
            "trace truncated (max_events)",
            cut,
            json!({"note": text}),
        ));
        note = Some(text);
    }

    // Names of the processes and tracks that have events.
    let used: BTreeSet<(u32, u32)> = items.iter().map(|it| (it.pid, it.tid)).collect();
    let mut meta: Vec<Value> = Vec::with_capacity(2 * used.len() + 8);
    let mut last_pid = None;
    for &(pid, tid) in &used {
        if last_pid != Some(pid) {
            last_pid = Some(pid);
            let name = if pid == LAUNCH_PID {
                format!("launch: {} on {}", report.kernel, report.topology)
            } else if pid == fabric_pid {
                "fabric".to_string()
            } else {
                format!("PE {}", pe_of[(pid - PE_PID0) as usize])
            };
            meta.push(json!({
                "name": "process_name", "ph": "M", "pid": pid, "args": {"name": name},
            }));
            meta.push(json!({
                "name": "process_sort_index", "ph": "M", "pid": pid, "args": {"sort_index": pid},
            }));
        }
        let name = if pid == LAUNCH_PID {
            format!("launch{}", lane_suffix(tid / LANE))
        } else if pid == fabric_pid {
            let l = &topo.links()[((tid - 1) % n_links) as usize];
            let lane = lane_suffix((tid - 1) / n_links);
            format!("{} -> {} ({} GB/s){lane}", l.from, l.to, l.gbps)
        } else {
            track_name(tid)
        };
        meta.push(json!({
            "name": "thread_name", "ph": "M", "pid": pid, "tid": tid, "args": {"name": name},
        }));
        meta.push(json!({
            "name": "thread_sort_index", "ph": "M", "pid": pid, "tid": tid,
            "args": {"sort_index": tid},
        }));
    }
    let mut other = obj(json!({
        "end_ps": report.end_ps,
        "events": items.len(),
        "generator": "kernbench",
        "kernel": report.kernel,
        "start_ps": report.start_ps,
        "time": "ts and dur are integer picoseconds / 1e6 (us)",
        "topology": report.topology,
        "truncated": note.is_some(),
    }));
    if let Some(text) = note {
        other.insert("note".into(), text.into());
    }
    Built {
        outcome,
        pe_of,
        slices,
        meta,
        items,
        other,
    }
}

/// The Chrome trace event JSON of a run: `{"displayTimeUnit": "ns",
/// "otherData": {...}, "traceEvents": [...]}`. `topo` names the links. The
/// launch must have run with spans on ([`Launch::trace`](crate::sim::Launch::trace)),
/// else only the launch and the kernel of each PE show.
pub fn chrome_trace(outcome: &Outcome, topo: &Topology, opts: &TraceOptions) -> Value {
    let b = build(outcome, topo, opts);
    let mut events = Vec::with_capacity(b.meta.len() + b.items.len());
    events.extend(b.meta.iter().cloned());
    events.extend(b.items.iter().map(|it| b.event(it)));
    json!({"displayTimeUnit": "ns", "otherData": b.other, "traceEvents": events})
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Writes [`chrome_trace`] of a run to `path` as compact JSON, one event at
/// a time (the same bytes as serialising [`chrome_trace`]'s value, without
/// holding it).
pub fn write_chrome_trace(
    path: &Path,
    outcome: &Outcome,
    topo: &Topology,
    opts: &TraceOptions,
) -> std::io::Result<()> {
    let b = build(outcome, topo, opts);
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    w.write_all(b"{\"displayTimeUnit\":\"ns\",\"otherData\":")?;
    serde_json::to_writer(&mut w, &b.other)?;
    w.write_all(b",\"traceEvents\":[")?;
    let mut first = true;
    let meta = b.meta.iter().map(std::borrow::Cow::Borrowed);
    let timed = b
        .items
        .iter()
        .map(|it| std::borrow::Cow::Owned(b.event(it)));
    for ev in meta.chain(timed) {
        if !first {
            w.write_all(b",")?;
        }
        first = false;
        serde_json::to_writer(&mut w, ev.as_ref())?;
    }
    w.write_all(b"]}")?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfetto_rounding_follows_its_parser() {
        assert_eq!(perfetto_ns(ps_to_us(0)), 0);
        assert_eq!(perfetto_ns(ps_to_us(1_000_000)), 1000);
        assert_eq!(perfetto_ns(ps_to_us(1_499)), 1);
        assert_eq!(perfetto_ns(ps_to_us(1_500)), 2);
        assert_eq!(perfetto_ns(ps_to_us(5)), 0);
        assert_eq!(perfetto_ns(ps_to_us(123_456_789)), 123_457);
    }

    #[test]
    fn touching_slices_are_trimmed_only_when_perfetto_would_overlap_them() {
        // 1.5 ns + 1.5 ns: Perfetto makes 2 + 2 = 4 > round(3.0) = 3.
        let end = perfetto_safe_end(1_500, 3_000, 3_000);
        assert!(end < 3_000 && 3_000 - end < 1_000, "{end}");
        assert!(perfetto_ns(ps_to_us(1_500)) + perfetto_ns(ps_to_us(end - 1_500)) <= 3);
        // Whole nanoseconds need nothing.
        assert_eq!(perfetto_safe_end(1_000, 3_000, 3_000), 3_000);
        // A gap leaves the slice alone.
        assert_eq!(perfetto_safe_end(1_500, 3_000, 9_000), 3_000);
    }

    #[test]
    fn track_names() {
        use crate::ir::Dir;
        assert_eq!(track_name(KERNEL_TID), "kernel");
        assert_eq!(track_name(UNIT_TID0 + Unit::Comm as u32), "COMM");
        assert_eq!(track_name(RECV_TID0 + Dir::W.index() as u32), "RECV W");
        assert_eq!(
            track_name(RECV_TID0 + Dir::W.index() as u32 + LANE),
            "RECV W #2"
        );
        assert_eq!(track_name(SLOTS_TID0 + Dir::E.index() as u32), "slots E");
        let ranks = Peer::Rank(3).kind_index() as u32;
        assert_eq!(track_name(RECV_TID0 + ranks), "RECV ranks");
        assert_eq!(track_name(SLOTS_TID0 + ranks + LANE), "slots ranks #2");
        assert!(RECV_TID0 + Peer::KINDS as u32 <= SLOTS_TID0);
        assert!(SLOTS_TID0 + Peer::KINDS as u32 <= LANE);
    }
}
