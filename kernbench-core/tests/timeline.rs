//! The pure parts of `export::chrome`: exact microseconds from picoseconds,
//! Perfetto's rounding, and the trace checker on hand-written traces (runs
//! of real kernels are checked in the root package's `tests/timeline.rs`).

use kernbench_core::export::chrome::{
    check_chrome_trace, perfetto_ns, ps_to_us, BadTrace, TraceOptions,
};
use serde_json::{json, Value};

#[test]
fn microseconds_are_exact_quotients_of_picoseconds() {
    assert_eq!(ps_to_us(0), 0.0);
    assert_eq!(ps_to_us(1), 1e-6);
    assert_eq!(ps_to_us(348_500), 0.3485);
    assert_eq!(ps_to_us(1_234_567_890_123), 1_234_567.890123);
    // The text form reads back to the same picoseconds.
    for ps in [1u64, 999, 1_500, 123_456_789, 98_765_432_101] {
        let text = serde_json::to_string(&ps_to_us(ps)).unwrap();
        let back: f64 = text.parse().unwrap();
        assert_eq!((back * 1e6).round() as u64, ps, "{text}");
    }
}

#[test]
fn perfetto_reads_whole_nanoseconds() {
    assert_eq!(perfetto_ns(0.0), 0);
    assert_eq!(perfetto_ns(2.0), 2000);
    assert_eq!(perfetto_ns(ps_to_us(1_499)), 1);
    assert_eq!(perfetto_ns(ps_to_us(2_501)), 3);
    assert_eq!(perfetto_ns(ps_to_us(7)), 0, "7 ps is written 7e-6");
    assert_eq!(perfetto_ns(ps_to_us(123_456_789)), 123_457);
}

#[test]
fn default_options_keep_everything() {
    let o = TraceOptions::default();
    assert_eq!(o.pes, None);
    assert_eq!(o.window_ns, None);
    assert!(o.links);
    assert_eq!(o.max_events, 2_000_000);
}

fn meta(pid: u64, tids: &[u64]) -> Vec<Value> {
    let mut v = vec![json!({"name": "process_name", "ph": "M", "pid": pid, "args": {"name": "p"}})];
    for t in tids {
        v.push(
            json!({"name": "thread_name", "ph": "M", "pid": pid, "tid": t, "args": {"name": "t"}}),
        );
    }
    v
}

fn x(tid: u64, ts: f64, dur: f64) -> Value {
    json!({"name": "op", "cat": "op", "ph": "X", "pid": 1, "tid": tid, "ts": ts, "dur": dur})
}

fn flow(ph: &str, tid: u64, ts: f64) -> Value {
    let mut e =
        json!({"name": "m", "cat": "ipcq", "ph": ph, "id": 1, "pid": 1, "tid": tid, "ts": ts});
    if ph == "f" {
        e["bp"] = "e".into();
    }
    e
}

fn trace(mut events: Vec<Value>) -> Value {
    let mut all = meta(1, &[1, 2]);
    all.append(&mut events);
    json!({"traceEvents": all, "displayTimeUnit": "ns"})
}

#[test]
fn a_well_formed_trace_passes_with_its_counts() {
    let t = trace(vec![
        x(1, 1.0, 2.0),
        flow("s", 1, 1.5),
        x(2, 2.0, 2.0),
        x(1, 3.0, 1.0),
        flow("f", 2, 4.0),
        json!({"name": "go", "ph": "i", "s": "g", "pid": 1, "tid": 1, "ts": 4.5}),
    ]);
    let s = check_chrome_trace(&t).unwrap();
    assert_eq!((s.slices, s.flows, s.instants, s.metadata), (3, 1, 1, 3));
    assert_eq!((s.processes, s.tracks), (1, 2));
    assert!(!s.truncated);
}

#[test]
fn malformed_traces_are_refused_with_a_reason() {
    let cases: Vec<(Value, &str)> = vec![
        (json!([]), "not a JSON object"),
        (json!({"displayTimeUnit": "ns"}), "traceEvents"),
        (
            json!({"traceEvents": [], "displayTimeUnit": "us"}),
            "displayTimeUnit",
        ),
        (
            trace(vec![
                json!({"name": "op", "ph": "X", "pid": 1, "tid": 1, "ts": 1.0}),
            ]),
            "dur",
        ),
        (
            trace(vec![
                json!({"name": "op", "ph": "B", "pid": 1, "tid": 1, "ts": 1.0}),
            ]),
            "unsupported phase",
        ),
        (
            trace(vec![x(1, 2.0, 1.0), x(2, 1.0, 1.0)]),
            "out of time order",
        ),
        (trace(vec![x(3, 1.0, 1.0)]), "no thread_name"),
        (
            trace(vec![
                json!({"name": "op", "ph": "X", "pid": 1, "tid": 0, "ts": 1.0, "dur": 1.0}),
            ]),
            "tid 0",
        ),
        // Partial overlap on one track.
        (
            trace(vec![x(1, 1.0, 2.0), x(1, 2.0, 2.0)]),
            "crosses the end",
        ),
        // 1.5 ns + 1.5 ns touching a slice at 3 ns: Perfetto makes [2, 4) and [3, ...).
        (
            trace(vec![x(1, 0.0015, 0.0015), x(1, 0.003, 0.002)]),
            "crosses the end",
        ),
        // A flow end without bp "e" would bind to the next slice.
        (
            trace(vec![
                x(1, 1.0, 1.0),
                flow("s", 1, 1.5),
                x(2, 2.0, 1.0),
                json!({"name": "m", "cat": "ipcq", "ph": "f", "id": 1, "pid": 1, "tid": 2, "ts": 2.5}),
            ]),
            "bp",
        ),
        // Outside any slice.
        (
            trace(vec![
                x(1, 1.0, 1.0),
                flow("s", 1, 2.5),
                x(2, 3.0, 1.0),
                flow("f", 2, 3.5),
            ]),
            "does not hold it",
        ),
        // At the instant one slice ends and the next begins, Perfetto reads the
        // next slice first: the flow end meant for the first binds to the second.
        (
            trace(vec![
                x(1, 0.5, 0.2),
                flow("s", 1, 0.6),
                x(2, 1.0, 1.0),
                flow("f", 2, 2.0),
                x(2, 2.0, 1.0),
            ]),
            "two slices meet",
        ),
        // A start without an end.
        (trace(vec![x(1, 1.0, 1.0), flow("s", 1, 1.5)]), "has no end"),
    ];
    for (t, want) in cases {
        let err = check_chrome_trace(&t).expect_err(want);
        assert!(
            err.to_string().contains(want),
            "wanted `{want}`, got: {err}"
        );
        // Faults of one event name the event; the others name what they miss.
        match want {
            "no thread_name" => assert!(matches!(err, BadTrace::UnnamedTrack { pid: 1, tid: 3 })),
            "has no end" => assert!(matches!(err, BadTrace::FlowWithoutEnd { .. })),
            "not a JSON object" => assert_eq!(err, BadTrace::NotObject),
            "traceEvents" => assert_eq!(err, BadTrace::NoEvents),
            "displayTimeUnit" => assert!(matches!(err, BadTrace::DisplayTimeUnit(_))),
            _ => assert!(matches!(err, BadTrace::Event { .. }), "{err:?}"),
        }
    }
}
