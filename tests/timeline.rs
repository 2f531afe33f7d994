//! Timelines of real runs in the Chrome trace event format: one process per
//! PE with a track per engine, link tracks, a flow per message, filters, the
//! event cap, and bytes that repeat run after run.

use kernbench::core::export::chrome::{
    check_chrome_trace, chrome_trace, ps_to_us, write_chrome_trace, TraceOptions,
};
use kernbench::core::ir::KernelArgs;
use kernbench::core::sim::{simulate_full, Outcome};
use kernbench::prelude::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Each PE sends its slice east, receives its neighbour's from the west, adds and stores.
#[kernel]
fn ping(t: Ptr<f32>, n: usize) {
    let rank = tl::program_id(0);
    let x = tl::load(t.offset(rank * n), [n]);
    tl::send(Dir::E, &x);
    let y = tl::recv::<f32>(Dir::W, [n]);
    tl::store(t.offset(rank * n), &(x + y));
}

fn run(n: usize) -> (Outcome, Topology, Vec<PeId>) {
    let topo = Topology::builtin("tiny").unwrap();
    let pes = vec![PeId::new(0, 0, 0), PeId::new(0, 1, 0)];
    let mut m = Machine::new(topo.clone()).unwrap();
    let buf = m.alloc(DType::F32, pes.len() * n, &pes).unwrap();
    let args = KernelArgs::new().with("t", buf.ptr()).int("n", n as i64);
    let launch = Launch::new(&ping, args, pes.clone())
        .neighbors(NeighborMap::ring(&pes).unwrap())
        .trace(true);
    let out = simulate_full(&mut m, &launch).unwrap();
    (out, topo, pes)
}

fn events(trace: &Value) -> &Vec<Value> {
    trace["traceEvents"].as_array().unwrap()
}

fn ps(v: &Value) -> u64 {
    (v.as_f64().unwrap() * 1e6).round() as u64
}

/// Names of processes and tracks: pid -> name, (pid, tid) -> name.
fn names(trace: &Value) -> (BTreeMap<u64, String>, BTreeMap<(u64, u64), String>) {
    let mut procs = BTreeMap::new();
    let mut tracks = BTreeMap::new();
    for e in events(trace).iter().filter(|e| e["ph"] == "M") {
        let pid = e["pid"].as_u64().unwrap();
        let name = e["args"]["name"].as_str().map(str::to_string);
        match e["name"].as_str().unwrap() {
            "process_name" => {
                procs.insert(pid, name.unwrap());
            }
            "thread_name" => {
                tracks.insert((pid, e["tid"].as_u64().unwrap()), name.unwrap());
            }
            _ => {}
        }
    }
    (procs, tracks)
}

/// Slices (start, end, name) of each track (pid, tid), in file order.
type Tracks = BTreeMap<(u64, u64), Vec<(u64, u64, String)>>;

fn slices(trace: &Value) -> Tracks {
    let mut out = Tracks::new();
    for e in events(trace).iter().filter(|e| e["ph"] == "X") {
        let key = (e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap());
        let s = ps(&e["ts"]);
        out.entry(key).or_default().push((
            s,
            s + ps(&e["dur"]),
            e["name"].as_str().unwrap().to_string(),
        ));
    }
    out
}

#[test]
fn a_two_pe_exchange_gives_a_valid_trace_with_every_op_and_message() {
    let (out, topo, pes) = run(3072);
    assert_eq!(out.messages.len(), 2, "one message each way");
    assert!(!out.link_spans.is_empty());
    // Each message's link spans name its sender and its receiver.
    let ends: BTreeSet<(Option<u32>, Option<u32>)> =
        out.link_spans.iter().map(|s| (s.inst, s.peer)).collect();
    assert_eq!(
        ends,
        BTreeSet::from([(Some(0), Some(1)), (Some(1), Some(0))]),
        "link spans by (sender, receiver)"
    );
    let trace = chrome_trace(&out, &topo, &TraceOptions::default());
    let sum = check_chrome_trace(&trace).unwrap_or_else(|e| panic!("invalid trace: {e}"));
    assert!(!sum.truncated);
    assert_eq!(sum.flows, out.messages.len(), "a flow per message");

    // A process per PE (plus the launch and the fabric), named by structural id.
    let (procs, tracks) = names(&trace);
    for pe in &pes {
        assert_eq!(
            procs.values().filter(|n| **n == format!("PE {pe}")).count(),
            1,
            "{procs:?}"
        );
    }
    assert_eq!(procs.len(), pes.len() + 2, "{procs:?}");
    let fabric = *procs.iter().find(|(_, n)| *n == "fabric").unwrap().0;
    assert!(tracks.keys().any(|(p, _)| *p == fabric), "a link track");
    for (pid, name) in &procs {
        if !name.starts_with("PE ") {
            continue;
        }
        let mine: BTreeSet<&str> = tracks
            .iter()
            .filter(|((p, _), _)| p == pid)
            .map(|(_, n)| n.as_str())
            .collect();
        for want in [
            "kernel", "PE_CPU", "DMA_IN", "MATH", "DMA_WB", "COMM", "RECV W", "slots E",
        ] {
            assert!(mine.contains(want), "{name} has no {want} track: {mine:?}");
        }
        assert!(!mine.contains("GEMM"), "no GEMM work, no GEMM track");
    }

    // A slice for every op, named after its command, with its kernel line.
    let ops: Vec<&Value> = events(&trace)
        .iter()
        .filter(|e| e["ph"] == "X" && e["cat"] == "op")
        .collect();
    assert_eq!(ops.len(), out.spans.len());
    let names: BTreeSet<&str> = ops.iter().map(|e| e["name"].as_str().unwrap()).collect();
    for want in ["load", "send E", "recv W", "add", "store"] {
        assert!(names.contains(want), "{names:?}");
    }
    assert!(ops
        .iter()
        .all(|e| e["args"]["loc"].as_str().unwrap().contains("timeline.rs:")));
    assert!(ops
        .iter()
        .filter(|e| e["name"] == "send E" && e["args"]["op"] == "send")
        .all(|e| e["args"]["bytes"] == 3072 * 4));

    // Per track: non-decreasing starts; engines run one op at a time.
    for ((pid, tid), list) in slices(&trace) {
        assert!(list.windows(2).all(|w| w[0].0 <= w[1].0), "{pid}/{tid}");
        let name = &tracks[&(pid, tid)];
        let in_order = ["PE_CPU", "DMA_IN", "GEMM", "MATH", "DMA_WB", "COMM"]
            .contains(&name.as_str())
            || name.contains(" -> ");
        if in_order {
            for w in list.windows(2) {
                assert!(w[0].1 <= w[1].0, "{name}: {:?} overlaps {:?}", w[0], w[1]);
            }
        }
    }

    // Every flow goes from a send on COMM to a receive on RECV W, forwards in time.
    let mut starts = BTreeMap::new();
    for e in events(&trace)
        .iter()
        .filter(|e| e["ph"] == "s" || e["ph"] == "f")
    {
        let track = &tracks[&(e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap())];
        let id = e["id"].as_u64().unwrap();
        if e["ph"] == "s" {
            assert_eq!(track, "COMM");
            starts.insert(id, ps(&e["ts"]));
        } else {
            assert_eq!(track, "RECV W");
            assert_eq!(e["bp"], "e");
            assert!(starts[&id] <= ps(&e["ts"]));
        }
    }

    // The launch: an instant at the common start and each PE's kernel from start to end.
    let start = out.report.start_ps;
    assert!(events(&trace)
        .iter()
        .any(|e| e["ph"] == "i" && e["s"] == "g" && ps(&e["ts"]) == start));
    let kernels = events(&trace)
        .iter()
        .filter(|e| e["cat"] == "kernel")
        .count();
    assert_eq!(kernels, pes.len());
    assert_eq!(ps_to_us(1_234_567), 1.234567);
}

#[test]
fn filters_by_pe_and_window_cut_events() {
    let (out, topo, pes) = run(3072);
    let all = chrome_trace(&out, &topo, &TraceOptions::default());
    let n_all = events(&all).len();

    let one = TraceOptions::default().filter_pes(&out, |pe| pe == pes[0]);
    let t = chrome_trace(&out, &topo, &one);
    let sum = check_chrome_trace(&t).unwrap();
    assert!(events(&t).len() < n_all);
    let (procs, _) = names(&t);
    assert!(procs.values().any(|n| *n == format!("PE {}", pes[0])));
    assert!(!procs.values().any(|n| *n == format!("PE {}", pes[1])));
    assert_eq!(sum.flows, 0, "a flow needs both of its PEs");

    let no_links = TraceOptions {
        links: false,
        ..TraceOptions::default()
    };
    let t = chrome_trace(&out, &topo, &no_links);
    check_chrome_trace(&t).unwrap();
    assert!(!names(&t).0.values().any(|n| n == "fabric"));

    // The middle third of the run.
    let (s, e) = (out.report.start_ps, out.report.end_ps);
    let (w0, w1) = (s + (e - s) / 3, s + 2 * (e - s) / 3);
    let win = TraceOptions {
        window_ns: Some((w0 as f64 / 1000.0, w1 as f64 / 1000.0)),
        ..TraceOptions::default()
    };
    let t = chrome_trace(&out, &topo, &win);
    check_chrome_trace(&t).unwrap();
    assert!(events(&t).len() < n_all);
    for list in slices(&t).values() {
        for (a, b, name) in list {
            assert!(
                *a <= w1 && *b + 1000 >= w0,
                "{name} [{a}, {b}] outside [{w0}, {w1}]"
            );
        }
    }
}

#[test]
fn the_event_cap_truncates_with_a_note_and_stays_valid() {
    let (out, topo, _) = run(3072);
    let capped = TraceOptions {
        max_events: 25,
        ..TraceOptions::default()
    };
    let t = chrome_trace(&out, &topo, &capped);
    let sum = check_chrome_trace(&t).unwrap_or_else(|e| panic!("{e}"));
    assert!(sum.truncated);
    assert!(sum.events - sum.metadata <= 26, "{sum:?}");
    let note = t["otherData"]["note"].as_str().unwrap();
    assert!(note.contains("max_events"), "{note}");
}

#[test]
fn the_written_file_is_the_same_bytes_as_the_value() {
    let (out, topo, _) = run(2048);
    let path = std::env::temp_dir().join(format!("kernbench-timeline-{}.json", std::process::id()));
    write_chrome_trace(&path, &out, &topo, &TraceOptions::default()).unwrap();
    let file = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let value =
        serde_json::to_string(&chrome_trace(&out, &topo, &TraceOptions::default())).unwrap();
    assert_eq!(file, value);
}

#[test]
fn the_same_run_gives_the_same_bytes() {
    let (a, topo, _) = run(2048);
    let (b, _, _) = run(2048);
    let ja = serde_json::to_string(&chrome_trace(&a, &topo, &TraceOptions::default())).unwrap();
    let jb = serde_json::to_string(&chrome_trace(&b, &topo, &TraceOptions::default())).unwrap();
    assert_eq!(ja, jb);
}

#[test]
fn a_ring_allreduce_trace_is_valid() {
    let topo = Topology::builtin("tiny").unwrap();
    let reg = kernbench::ccl::Registry::builtin();
    let algo = reg.get("ring_allreduce").unwrap();
    let pes = kernbench::ccl::run::ranks(&topo, algo).unwrap();
    let spec = kernbench::ccl::run::RunSpec {
        fabric: Default::default(),
        ties: Default::default(),
        max_memory: None,
        progress: Default::default(),
        count: 16 * 1024,
        dtype: DType::F32,
        op: kernbench::ccl::run::RedOp::Sum,
        root: 0,
        data: false,
        trace: true,
        why: false,
    };
    let r = kernbench::ccl::run::run_on(&topo, algo, &pes, &spec).unwrap();
    let t = chrome_trace(&r.outcome, &topo, &TraceOptions::default());
    let sum = check_chrome_trace(&t).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sum.flows, r.outcome.messages.len());
    assert!(sum.flows >= 2 * (pes.len() - 1) * pes.len());
}
