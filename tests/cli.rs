//! The `kernbench` command end to end: output, exit codes and written files.

use std::path::PathBuf;
use std::process::{Command, Output};

fn kernbench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kernbench"))
        .args(args)
        .output()
        .expect("the kernbench binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs and expects success.
fn ok(args: &[&str]) -> String {
    let o = kernbench(args);
    assert!(
        o.status.success(),
        "kernbench {args:?} failed ({:?}): {}",
        o.status.code(),
        stderr(&o)
    );
    stdout(&o)
}

/// A fresh folder under the system's temp dir, unique to this test and process.
fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kernbench-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn topo_summarises_the_default_machine() {
    let s = ok(&["topo"]);
    assert!(s.contains("256 PEs"), "{s}");
    let j: serde_json::Value = serde_json::from_str(&ok(&["topo", "tiny", "--json"])).unwrap();
    assert_eq!(j["pes"], 16);
    let d = temp_dir("topo");
    let dot = d.join("tiny.dot");
    ok(&["topo", "tiny", "--dot", dot.to_str().unwrap()]);
    assert!(std::fs::read_to_string(&dot)
        .unwrap()
        .starts_with("digraph"));
    let o = kernbench(&["topo", "no-such-machine"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).starts_with("error:") && stderr(&o).contains("tiny"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn list_shows_kernels_and_algorithms() {
    let s = ok(&["list"]);
    assert!(s.contains("hello_send(t: ptr<f16>, n_elem: usize)"), "{s}");
    assert!(s.contains("src/kernels.rs:"), "{s}");
    assert!(s.contains("ring_allreduce"), "{s}");
    let j: serde_json::Value = serde_json::from_str(&ok(&["list", "--json"])).unwrap();
    let kernels = j["kernels"].as_array().unwrap();
    assert!(
        kernels.iter().any(|k| k["name"] == "ring_allreduce_f32"),
        "the ccl kernels are linked in"
    );
    assert!(j["algorithms"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["name"] == "ring_allreduce"));
}

#[test]
fn graph_prints_the_traced_commands() {
    let s = ok(&["graph", "hello_send", "--set", "n_elem=1024"]);
    assert!(s.contains("send E"), "{s}");
    assert!(s.contains("kernels.rs:"), "{s}");
    let s = ok(&[
        "graph",
        "hello_send",
        "--set",
        "n_elem=1024",
        "--grid",
        "8,2",
        "--pid",
        "3,1",
        "--dot",
    ]);
    assert!(s.starts_with("digraph"), "{s}");
}

#[test]
fn bad_usage_exits_2_with_an_error() {
    for args in [
        &["graph", "hello_send", "--no-such-flag"][..],
        &["no-such-command"],
        &["graph", "no_such_kernel"],
    ] {
        let o = kernbench(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).starts_with("error:"), "{args:?}: {}", stderr(&o));
    }
    let o = kernbench(&["graph", "hello_send"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).starts_with("error:") && stderr(&o).contains("n_elem"),
        "{}",
        stderr(&o)
    );
    for sub in ["topo", "list", "graph", "run", "probe", "sweep", "merge"] {
        let s = ok(&[sub, "--help"]);
        assert!(s.contains("Usage: kernbench"), "{sub}: {s}");
    }
}

#[test]
fn run_reports_a_kernel_and_an_algorithm() {
    let s = ok(&[
        "run",
        "hello_send",
        "--topology",
        "tiny",
        "--set",
        "n_elem=256",
        "--set",
        "t.len=4096",
    ]);
    assert!(s.contains("kernel hello_send on tiny: 16 PE(s)"), "{s}");
    let j: serde_json::Value = serde_json::from_str(&ok(&[
        "run",
        "ring_allreduce",
        "--topology",
        "tiny",
        "--size",
        "16K",
        "--verify-data",
        "--json",
    ]))
    .unwrap();
    assert!(j["sim_ns"].as_f64().unwrap() > 0.0);
    assert_eq!(j["row"]["wrong"], 0);
    assert_eq!(j["pes"].as_array().unwrap().len(), 16);
}

#[test]
fn probe_json_parses() {
    let j: serde_json::Value = serde_json::from_str(&ok(&[
        "probe",
        "--topology",
        "tiny",
        "--sizes",
        "4K,64K",
        "--json",
    ]))
    .unwrap();
    let rows = j.as_array().unwrap();
    assert!(rows.len() >= 8, "{rows:?}");
    for r in rows {
        assert!(
            r["bytes"].as_u64().unwrap() > 0 && r["latency_ns"].as_f64().unwrap() > 0.0,
            "{r}"
        );
    }
    let o = kernbench(&["probe", "--topology", "tiny", "--case", "cross-sip"]);
    assert_eq!(o.status.code(), Some(2), "tiny has one SIP");
}

const SWEEP: [&str; 13] = [
    "sweep",
    "--collective",
    "all_reduce",
    "--algos",
    "ring_allreduce,tree_allreduce",
    "--topology",
    "tiny",
    "-b",
    "4K",
    "-e",
    "8K",
    "-f",
    "2",
];

fn sweep(out: &std::path::Path, extra: &[&str]) {
    let mut a: Vec<&str> = SWEEP.to_vec();
    a.extend(["--out", out.to_str().unwrap(), "--quiet"]);
    a.extend(extra);
    ok(&a);
}

#[test]
fn sweep_writes_its_files_and_shards_merge_to_the_same_rows() {
    let d = temp_dir("sweep");
    let full = d.join("full");
    sweep(&full, &[]);
    for f in ["sweep.csv", "sweep.json", "busbw.svg"] {
        assert!(full.join(f).is_file(), "{f} written");
    }
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(full.join("sweep.json")).unwrap()).unwrap();
    let keys: Vec<(String, u64)> = rows
        .iter()
        .map(|r| {
            (
                r["algo"].as_str().unwrap().to_string(),
                r["size"].as_u64().unwrap(),
            )
        })
        .collect();
    let want: Vec<(String, u64)> = [
        ("ring_allreduce", 4096),
        ("ring_allreduce", 8192),
        ("tree_allreduce", 4096),
        ("tree_allreduce", 8192),
    ]
    .iter()
    .map(|(a, s)| (a.to_string(), *s))
    .collect();
    assert_eq!(keys, want);
    assert!(rows.iter().all(|r| r["wrong"] == 0));
    let csv = std::fs::read_to_string(full.join("sweep.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5);
    let svg = std::fs::read_to_string(full.join("busbw.svg")).unwrap();
    assert!(
        svg.contains("<svg")
            && svg.contains("tree_allreduce")
            && svg.matches("<polyline").count() == 2
    );

    let parts = d.join("parts");
    sweep(&parts, &["--shard", "1/2", "--jobs", "1"]);
    sweep(&parts, &["--shard", "2/2"]);
    assert!(parts.join("sweep.part-1-of-2.json").is_file());
    ok(&["merge", parts.to_str().unwrap()]);
    for f in ["sweep.json", "sweep.csv"] {
        assert_eq!(
            std::fs::read_to_string(parts.join(f)).unwrap(),
            std::fs::read_to_string(full.join(f)).unwrap(),
            "merged {f} equals the unsharded sweep's"
        );
    }
    // A missing part and a part given twice are errors.
    let p1 = parts.join("sweep.part-1-of-2.json");
    let o = kernbench(&["merge", p1.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("missing part(s) 2 of 2"),
        "{}",
        stderr(&o)
    );
    let p2 = parts.join("sweep.part-2-of-2.json");
    let o = kernbench(&[
        "merge",
        p1.to_str().unwrap(),
        p2.to_str().unwrap(),
        p1.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("given twice"), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_run_too_large_for_its_memory_limit_stops_at_once_naming_the_estimate_and_knobs() {
    let o = kernbench(&[
        "run",
        "ring_allreduce",
        "--topology",
        "large",
        "--size",
        "64M",
        "--max-memory",
        "64M",
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("this run needs about") && err.contains("1024 instances"),
        "{err}"
    );
    assert!(
        err.contains("--max-memory") && err.contains("--seg"),
        "{err}"
    );
    // The same run within the limit goes through.
    let s = ok(&[
        "run",
        "ring_allreduce",
        "--topology",
        "tiny",
        "--size",
        "64K",
        "--max-memory",
        "1G",
        "--fabric",
        "slots",
    ]);
    assert!(s.contains("ring_allreduce"), "{s}");
}

#[test]
fn hostile_input_files_are_refused_with_the_limit_and_line() {
    let d = temp_dir("hostile");
    let deep = d.join("deep.yaml");
    std::fs::write(&deep, format!("name: deep\nsip: {}\n", "[".repeat(200_000))).unwrap();
    let t = std::time::Instant::now();
    let o = kernbench(&["topo", deep.to_str().unwrap()]);
    let took = t.elapsed();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("deep.yaml: line 2") && err.contains("deeper than 64 levels"),
        "{err}"
    );
    // Generous: the process starts and refuses the file in milliseconds; the
    // parser alone took minutes on this file before it was bounded.
    assert!(took < std::time::Duration::from_secs(5), "took {took:?}");
    let reg = d.join("ccl.yaml");
    let mut text = String::from("algorithms:\n  a: &a0 [x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        text.push_str(&format!(
            "  a{i}: &a{i} [{}]\n",
            vec![format!("*a{}", i - 1); 8].join(", ")
        ));
    }
    std::fs::write(&reg, text).unwrap();
    let mut a: Vec<&str> = SWEEP.to_vec();
    a.extend([
        "--registry",
        reg.to_str().unwrap(),
        "--out",
        d.to_str().unwrap(),
    ]);
    let o = kernbench(&a);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("ccl.yaml: line ") && err.contains("past 100000"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&d);
}
