//! A checker of Chrome trace event files as [`write_chrome_trace`](super::write_chrome_trace)
//! writes them, which replays Perfetto's JSON import rules: the tests of the
//! writer and of every command that writes a trace run each trace through it.

use super::perfetto_ns;
use crate::Ps;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Why [`check_chrome_trace`] refused a trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BadTrace {
    /// The trace is not a JSON object.
    NotObject,
    /// It has no `traceEvents` array.
    NoEvents,
    /// Its `displayTimeUnit` (as written here) is neither "ms" nor "ns".
    DisplayTimeUnit(String),
    /// Event `index` of the file breaks a rule of the format or of Perfetto's import.
    Event {
        /// The event's position in `traceEvents`.
        index: usize,
        /// The event, as JSON.
        event: String,
        /// The rule it breaks.
        problem: &'static str,
    },
    /// A flow start has no end.
    FlowWithoutEnd {
        /// The flow's id.
        id: String,
    },
    /// A process has events but no `process_name`.
    UnnamedProcess {
        /// The process.
        pid: u64,
    },
    /// A track has events but no `thread_name`.
    UnnamedTrack {
        /// The process.
        pid: u64,
        /// The track.
        tid: u64,
    },
}

impl std::fmt::Display for BadTrace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadTrace::NotObject => write!(f, "the trace is not a JSON object"),
            BadTrace::NoEvents => write!(f, "the trace has no `traceEvents` array"),
            BadTrace::DisplayTimeUnit(u) => {
                write!(f, "displayTimeUnit {u} is neither \"ms\" nor \"ns\"")
            }
            BadTrace::Event {
                index,
                event,
                problem,
            } => write!(f, "event {index} {event}: {problem}"),
            BadTrace::FlowWithoutEnd { id } => write!(f, "flow {id} has no end"),
            BadTrace::UnnamedProcess { pid } => {
                write!(f, "process {pid} has events but no process_name")
            }
            BadTrace::UnnamedTrack { pid, tid } => {
                write!(f, "track {pid}/{tid} has events but no thread_name")
            }
        }
    }
}

impl std::error::Error for BadTrace {}

/// What [`check_chrome_trace`] counted in a valid trace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TraceSummary {
    /// Events of every phase.
    pub events: usize,
    /// Complete events (`X`).
    pub slices: usize,
    /// Flow arrows (an `s` and its `f`).
    pub flows: usize,
    /// Instant events (`i`).
    pub instants: usize,
    /// Metadata events (`M`).
    pub metadata: usize,
    /// Processes with events.
    pub processes: usize,
    /// Tracks (pid, tid) with events.
    pub tracks: usize,
    /// `otherData.truncated`.
    pub truncated: bool,
}

/// A timed event as Perfetto reads it.
struct Timed {
    file_ix: usize,
    ph: char,
    pid: u64,
    tid: u64,
    ts_ps: Ps,
    end_ps: Ps,
    ts_ns: i64,
    dur_ns: i64,
    /// Flow key (id, category, name) of `s` and `f`.
    flow: Option<String>,
}

/// How many slices of a track start, and end, at each instant (ps).
type Bounds = (BTreeMap<Ps, u32>, BTreeMap<Ps, u32>);

struct Open {
    start_ps: Ps,
    end_ps: Ps,
    end_ns: i64,
    dur_ns: i64,
}

/// Checks a trace against the Chrome trace event format as this module
/// writes it, and replays Perfetto's JSON import on it.
///
/// The format: the JSON object form with `traceEvents` (and
/// `displayTimeUnit` "ms" or "ns" if present); phases `X` (`ts`, `dur`),
/// `M` (`process_name`, `thread_name`, `*_sort_index` with their args), `s`
/// and `f` (`id`, `cat`, `f` with `bp: "e"`, so it binds to its enclosing
/// slice) and `i` (scope `g`, `p` or `t`); timed events sorted by time; no
/// `tid` 0 (Perfetto reads it as the pid); every process and track named.
///
/// Perfetto's import: times rounded to whole nanoseconds as
/// [`perfetto_ns`]; events taken by time, and at one time complete events
/// first, longest first, then the others in file order; on each track, a
/// slice must nest in or follow the one below it (Perfetto drops a slice
/// that crosses the end of its parent); a flow event binds to the slice on
/// top of its track's stack when it is read, which must be the slice whose
/// time span holds the event; each `s` is read before the one `f` of its
/// id, category and name.
pub fn check_chrome_trace(trace: &Value) -> Result<TraceSummary, BadTrace> {
    let top = trace.as_object().ok_or(BadTrace::NotObject)?;
    let evs = top
        .get("traceEvents")
        .and_then(Value::as_array)
        .ok_or(BadTrace::NoEvents)?;
    match top.get("displayTimeUnit").map(Value::as_str) {
        None | Some(Some("ms" | "ns")) => {}
        Some(other) => return Err(BadTrace::DisplayTimeUnit(format!("{other:?}"))),
    }
    let mut sum = TraceSummary {
        truncated: top
            .get("otherData")
            .and_then(|o| o.get("truncated"))
            .and_then(Value::as_bool)
            .unwrap_or(false),
        ..TraceSummary::default()
    };
    let mut named_pids = BTreeSet::new();
    let mut named_tracks = BTreeSet::new();
    let mut used: BTreeSet<(u64, u64)> = BTreeSet::new();
    let mut timed: Vec<Timed> = Vec::new();
    let mut last: Option<(f64, i64)> = None;
    // Per track: how many slices start and end at each instant, ps.
    let mut bounds: BTreeMap<(u64, u64), Bounds> = BTreeMap::new();
    let bad_at = |k: usize, problem: &'static str| BadTrace::Event {
        index: k,
        event: evs[k].to_string(),
        problem,
    };
    for (k, e) in evs.iter().enumerate() {
        let bad = |what: &'static str| bad_at(k, what);
        let ph = e
            .get("ph")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no `ph`"))?;
        let name = e
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no `name`"))?;
        let pid = e
            .get("pid")
            .and_then(Value::as_u64)
            .ok_or_else(|| bad("no integer `pid`"))?;
        let tid = e.get("tid").and_then(Value::as_u64);
        sum.events += 1;
        if ph == "M" {
            sum.metadata += 1;
            let args = e
                .get("args")
                .ok_or_else(|| bad("metadata without `args`"))?;
            let text = |key: &str| args.get(key).and_then(Value::as_str).map(|_| ());
            match name {
                "process_name" => {
                    text("name").ok_or_else(|| bad("no args.name"))?;
                    named_pids.insert(pid);
                }
                "thread_name" => {
                    text("name").ok_or_else(|| bad("no args.name"))?;
                    let tid = tid.ok_or_else(|| bad("thread_name without `tid`"))?;
                    named_tracks.insert((pid, tid));
                }
                "process_sort_index" | "thread_sort_index" => {
                    args.get("sort_index")
                        .and_then(Value::as_i64)
                        .ok_or_else(|| bad("no args.sort_index"))?;
                }
                _ => return Err(bad("unknown metadata name")),
            }
            continue;
        }
        let tid = tid.ok_or_else(|| bad("no integer `tid`"))?;
        if tid == 0 {
            return Err(bad("tid 0 (Perfetto reads it as the pid)"));
        }
        let ts = e
            .get("ts")
            .and_then(Value::as_f64)
            .ok_or_else(|| bad("no numeric `ts`"))?;
        if ts.is_nan() || ts < 0.0 {
            return Err(bad("negative `ts`"));
        }
        let ts_ns = perfetto_ns(ts);
        if let Some((lts, lns)) = last {
            if ts < lts || ts_ns < lns {
                return Err(bad("out of time order"));
            }
        }
        last = Some((ts, ts_ns));
        let ts_ps = (ts * 1e6).round() as Ps;
        used.insert((pid, tid));
        let mut t = Timed {
            file_ix: k,
            ph: ph.chars().next().unwrap_or(' '),
            pid,
            tid,
            ts_ps,
            end_ps: ts_ps,
            ts_ns,
            dur_ns: 0,
            flow: None,
        };
        match ph {
            "X" => {
                sum.slices += 1;
                let dur = e
                    .get("dur")
                    .and_then(Value::as_f64)
                    .ok_or_else(|| bad("no numeric `dur`"))?;
                if dur.is_nan() || dur < 0.0 {
                    return Err(bad("negative `dur`"));
                }
                t.dur_ns = perfetto_ns(dur);
                t.end_ps = ts_ps + (dur * 1e6).round() as Ps;
                let b = bounds.entry((pid, tid)).or_default();
                *b.0.entry(t.ts_ps).or_default() += 1;
                *b.1.entry(t.end_ps).or_default() += 1;
            }
            "s" | "f" => {
                let id = match e.get("id") {
                    Some(Value::Number(n)) => n.to_string(),
                    Some(Value::String(s)) => s.clone(),
                    _ => return Err(bad("flow event without `id`")),
                };
                let cat = e
                    .get("cat")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad("flow event without `cat`"))?;
                if ph == "f" && e.get("bp").and_then(Value::as_str) != Some("e") {
                    return Err(bad(
                        "flow end without bp \"e\" (it would bind to the next slice)",
                    ));
                }
                t.flow = Some(format!("{id}\u{1f}{cat}\u{1f}{name}"));
            }
            "i" => {
                sum.instants += 1;
                match e.get("s").map(Value::as_str) {
                    None | Some(Some("g" | "p" | "t")) => {}
                    _ => return Err(bad("instant scope is not g, p or t")),
                }
                continue;
            }
            _ => return Err(bad("unsupported phase")),
        }
        timed.push(t);
    }
    // Perfetto's order: by time, complete events first (longest first), then file order.
    timed.sort_by_key(|t| {
        let key = if t.ph == 'X' {
            i64::MAX - t.dur_ns
        } else {
            i64::MAX
        };
        (t.ts_ns, key, t.file_ix)
    });
    let mut stacks: BTreeMap<(u64, u64), Vec<Open>> = BTreeMap::new();
    let mut flows: BTreeMap<&str, (bool, bool)> = BTreeMap::new();
    for t in &timed {
        let bad = |what: &'static str| bad_at(t.file_ix, what);
        let stack = stacks.entry((t.pid, t.tid)).or_default();
        if t.ph == 'X' {
            while let Some(o) = stack.last() {
                let ended = o.end_ns < t.ts_ns
                    || (o.end_ns == t.ts_ns && !(o.dur_ns == 0 && t.dur_ns == 0));
                if !ended {
                    break;
                }
                stack.pop();
            }
            if let Some(o) = stack.last() {
                if t.ts_ns + t.dur_ns > o.end_ns {
                    return Err(bad(
                        "crosses the end of the slice below it (Perfetto drops it)",
                    ));
                }
                if t.ts_ps < o.end_ps && t.end_ps > o.end_ps {
                    return Err(bad("overlaps the slice before it on its track"));
                }
            }
            stack.push(Open {
                start_ps: t.ts_ps,
                end_ps: t.end_ps,
                end_ns: t.ts_ns + t.dur_ns,
                dur_ns: t.dur_ns,
            });
            continue;
        }
        let o = match stack.last() {
            Some(o) if o.start_ps <= t.ts_ps && t.ts_ps <= o.end_ps => o,
            _ => {
                return Err(bad(
                    "flow event would bind to a slice that does not hold it",
                ))
            }
        };
        // At an instant where its slice meets another, a viewer binding by
        // time could pick either.
        let (starts, ends) = &bounds[&(t.pid, t.tid)];
        let others = |m: &BTreeMap<Ps, u32>, own: bool| {
            m.get(&t.ts_ps).copied().unwrap_or(0) - u32::from(own)
        };
        if (t.ts_ps == o.start_ps && others(ends, o.end_ps == t.ts_ps) > 0)
            || (t.ts_ps == o.end_ps && others(starts, o.start_ps == t.ts_ps) > 0)
        {
            return Err(bad(
                "flow event where two slices meet (its slice is ambiguous)",
            ));
        }
        let key = t.flow.as_deref().unwrap_or("");
        let f = flows.entry(key).or_default();
        if t.ph == 's' {
            if f.0 {
                return Err(bad("a second flow start with this id"));
            }
            f.0 = true;
        } else {
            if !f.0 || f.1 {
                return Err(bad("a flow end read before its start, or a second end"));
            }
            f.1 = true;
            sum.flows += 1;
        }
    }
    if let Some((key, _)) = flows.iter().find(|(_, f)| !f.1) {
        let id = key.split('\u{1f}').next().unwrap_or("").to_string();
        return Err(BadTrace::FlowWithoutEnd { id });
    }
    for &(pid, tid) in &used {
        if !named_pids.contains(&pid) {
            return Err(BadTrace::UnnamedProcess { pid });
        }
        if !named_tracks.contains(&(pid, tid)) {
            return Err(BadTrace::UnnamedTrack { pid, tid });
        }
    }
    sum.processes = used.iter().map(|u| u.0).collect::<BTreeSet<_>>().len();
    sum.tracks = used.len();
    Ok(sum)
}
