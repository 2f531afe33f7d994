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
    let ring = kernels
        .iter()
        .find(|k| k["name"] == "ring_allreduce")
        .expect("the ccl kernels are linked in");
    assert_eq!(ring["generics"], serde_json::json!(["T"]));
    assert_eq!(ring["params"][0]["generic"], "T");
    assert_eq!(
        ring["params"][3]["variants"],
        serde_json::json!(["sum", "max", "min"])
    );
    assert!(
        s.contains("ring_allreduce<T>(buf: ptr<T>, n: usize, const seg: usize, const op: RedOp)"),
        "{s}"
    );
    assert!(j["algorithms"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["name"] == "ring_allreduce"));
}

#[test]
fn graph_binds_a_generic_kernels_element_type_and_enum_parameters() {
    let base = [
        "graph",
        "ring_allreduce",
        "--set",
        "buf.len=64",
        "--set",
        "n=16",
        "--set",
        "seg=4",
        "--grid",
        "4",
        "--pid",
        "1",
    ];
    let with = |extra: &[&str]| {
        let mut a: Vec<&str> = base.to_vec();
        a.extend_from_slice(extra);
        ok(&a)
    };
    // The default element type is f32; `--datatype`, `--set T=..` and a
    // typed name choose another, and give the same graph.
    let f32_graph = with(&["--set", "op=sum"]);
    assert!(
        f32_graph.contains(
            "kernel ring_allreduce(buf: ptr<f32>, n = 16, const seg = 4, const op = sum)"
        ),
        "{f32_graph}"
    );
    let f16 = with(&["--set", "op=sum", "--datatype", "f16"]);
    assert!(f16.contains("buf: ptr<f16>"), "{f16}");
    assert_eq!(f16, with(&["--set", "op=sum", "--set", "T=f16"]));
    let mut typed: Vec<&str> = base.to_vec();
    typed[1] = "ring_allreduce_f16";
    typed.extend_from_slice(&["--set", "op=0"]);
    assert_eq!(f16, ok(&typed));
    // Modulo the element type (and the bytes a message of it takes), the
    // graphs agree.
    let modulo = |g: &str, t: &str| -> Vec<String> {
        g.lines()
            .map(|l| {
                let words: Vec<&str> = l.split_whitespace().collect();
                (0..words.len())
                    .map(|i| match words.get(i + 1) {
                        Some(&"B") if words[i].parse::<u64>().is_ok() => "N".to_string(),
                        _ => words[i].replace(t, "T"),
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    };
    assert_eq!(modulo(&f32_graph, "f32"), modulo(&f16, "f16"));
    assert_ne!(f32_graph, f16);
    // An enum takes a name or a code, and nothing else.
    assert!(with(&["--set", "op=max"]).contains("const op = max"));
    let o = kernbench(&[&base[..], &["--set", "op=prod"]].concat());
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--set op=prod: `prod` is not a `RedOp` (one of sum, max, min)"),
        "{}",
        stderr(&o)
    );
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
fn graph_prints_the_pairing_tcm_plan_and_ops_of_a_compiled_instance() {
    let with = |pass: &str| {
        ok(&[
            "graph",
            "hello_send",
            "--set",
            "n_elem=256",
            "--set",
            "t.len=512",
            "--grid",
            "2",
            "--pid",
            "1",
            "--topology",
            "tiny",
            "--after",
            pass,
        ])
    };
    // The CLI prints what tests/pass_output.rs snapshots, for instance 1.
    let pair = with("pair");
    assert!(
        pair.starts_with("pairing of instance 1 on PE (0,0,1): 2 send(s) and receive(s)"),
        "{pair}"
    );
    assert!(pair.contains("to instance 0 on PE (0,0,0)"), "{pair}");
    let tcm = with("tcm");
    assert!(
        tcm.starts_with("instance 1 on PE (0,0,1): TCM plan: peak 512 B"),
        "{tcm}"
    );
    assert!(
        tcm.contains("%2   recv  0x0     0x200  512    %2..%3"),
        "{tcm}"
    );
    let lower = with("lower");
    assert!(
        lower.starts_with("instance 1 on PE (0,0,1): 9 op(s)"),
        "{lower}"
    );
    assert!(lower.contains("hbm.write 512 B over 2 PCs  *"), "{lower}");
    // Passes that print no graph cannot draw one, and the instance must exist.
    for bad in [
        &["graph", "hello_send", "--after", "tcm", "--dot"][..],
        &[
            "graph",
            "hello_send",
            "--after",
            "lower",
            "--grid",
            "2",
            "--pid",
            "2",
        ],
        &["graph", "hello_send", "--after", "pair", "--map", "spiral"],
    ] {
        let o = kernbench(bad);
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", stderr(&o));
        assert!(stderr(&o).starts_with("error: "), "{}", stderr(&o));
    }
}

#[test]
fn graph_shows_the_graph_after_epilogue_fusion() {
    let args = [
        "graph",
        "flash_attention_f32",
        "--set",
        "q=64x32",
        "--set",
        "k=64x32",
        "--set",
        "v=64x32",
        "--set",
        "o=64x32",
        "--set",
        "scale=0.25",
        "--set",
        "bm=32",
        "--set",
        "bn=32",
    ];
    let traced = ok(&args);
    assert!(traced.contains("mul %9, 0.25"), "{traced}");
    let mut after = args.to_vec();
    after.extend(["--after", "fuse"]);
    let fused = ok(&after);
    assert!(fused.contains("epilogue[scale(0.25)]"), "{fused}");
    assert!(!fused.contains(" mul %9, 0.25"), "{fused}");
    assert_eq!(fused.lines().count() + 1, traced.lines().count());
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
    for sub in [
        "topo", "list", "graph", "run", "probe", "export", "sweep", "merge",
    ] {
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
        // The parts add up to the whole.
        let part = |k: &str| r[k].as_f64().unwrap();
        let sum = part("overhead_ns") + part("wire_ns") + part("drain_ns") + part("stall_ns");
        assert!((sum - part("latency_ns")).abs() < 1e-9, "{r}");
    }
    // The UCIe crossing on tiny, pinned: the calibration pair, its hops, and
    // where its time goes (a change to the UCIe figures or the drain shows here).
    let ucie: Vec<_> = rows.iter().filter(|r| r["case"] == "ucie").collect();
    let pinned = [
        (4096, 68.0, 57.0, 8.0, 60.235),
        (65536, 548.0, 537.0, 8.0, 119.591),
    ];
    assert_eq!(ucie.len(), pinned.len(), "{ucie:?}");
    for (r, (bytes, latency, wire, drain, gbps)) in ucie.iter().zip(pinned) {
        assert_eq!(r["from"], "PE sip0/cube0/pe1", "{r}");
        assert_eq!(r["to"], "PE sip0/cube1/pe2", "{r}");
        assert_eq!(r["hops"], 7, "{r}");
        assert_eq!(r["bytes"], bytes, "{r}");
        assert_eq!(r["latency_ns"].as_f64(), Some(latency), "{r}");
        assert_eq!(r["overhead_ns"].as_f64(), Some(3.0), "{r}");
        assert_eq!(r["wire_ns"].as_f64(), Some(wire), "{r}");
        assert_eq!(r["drain_ns"].as_f64(), Some(drain), "{r}");
        assert_eq!(r["stall_ns"].as_f64(), Some(0.0), "{r}");
        assert!((r["gbps"].as_f64().unwrap() - gbps).abs() < 1e-3, "{r}");
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

fn sweep_args<'a>(out: &'a std::path::Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a: Vec<&str> = SWEEP.to_vec();
    a.extend(["--out", out.to_str().unwrap(), "--quiet"]);
    a.extend(extra);
    a
}

fn sweep(out: &std::path::Path, extra: &[&str]) -> String {
    let o = kernbench(&sweep_args(out, extra));
    assert!(
        o.status.success(),
        "sweep {extra:?} failed ({:?}): {}",
        o.status.code(),
        stderr(&o)
    );
    stderr(&o)
}

/// Asserts that two sweep folders hold byte-identical sweep.csv and sweep.json.
fn same_files(a: &std::path::Path, b: &std::path::Path, what: &str) {
    for f in ["sweep.csv", "sweep.json"] {
        assert_eq!(
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
            "{what}: {f} differs from the uninterrupted sweep's"
        );
    }
}

/// The entries of a part file.
fn part_entries(p: &std::path::Path) -> Vec<serde_json::Value> {
    let j: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap())
        .unwrap_or_else(|e| panic!("{} is valid JSON: {e}", p.display()));
    j["entries"].as_array().unwrap().clone()
}

#[test]
fn sweep_writes_its_files_and_shards_merge_to_the_same_rows() {
    let d = temp_dir("sweep");
    let full = d.join("full");
    sweep(&full, &[]);
    for f in [
        "sweep.csv",
        "sweep.json",
        "busbw.svg",
        "sweep.part-1-of-1.json",
    ] {
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
    same_files(&parts, &full, "merged shards");

    // A shard stopped part-way, then resumed, merges to the same bytes.
    let cut = d.join("cut-parts");
    let err = sweep(
        &cut,
        &["--shard", "2/2", "--jobs", "1", "--stop-after", "1"],
    );
    assert!(err.contains("stopped after 1 point"), "{err}");
    assert_eq!(part_entries(&cut.join("sweep.part-2-of-2.json")).len(), 1);
    sweep(&cut, &["--shard", "1/2"]);
    let o = kernbench(&["merge", cut.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "an unfinished part does not merge"
    );
    assert!(
        stderr(&o).contains("holds 1 of the 2 point(s) of part 2 of 2")
            && stderr(&o).contains("--resume"),
        "{}",
        stderr(&o)
    );
    sweep(&cut, &["--shard", "2/2", "--resume"]);
    ok(&["merge", cut.to_str().unwrap()]);
    same_files(&cut, &full, "merged shards, one of them resumed");

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
fn a_sweep_gives_the_same_bytes_with_one_thread_all_threads_and_after_a_resume() {
    let d = temp_dir("bytes");
    let all = d.join("all");
    sweep(&all, &[]);
    let one = d.join("one");
    sweep(&one, &["--jobs", "1"]);
    same_files(&one, &all, "-j 1");
    let more = d.join("more");
    sweep(&more, &["--jobs", "3"]);
    same_files(&more, &all, "-j 3");

    // Stopped after one point, then after two more, then resumed to the end
    // with a different thread count each time.
    let cut = d.join("cut");
    let journal = cut.join("sweep.part-1-of-1.json");
    sweep(&cut, &["--jobs", "1", "--stop-after", "1"]);
    assert_eq!(part_entries(&journal).len(), 1);
    assert!(!cut.join("sweep.csv").exists(), "no table before the end");
    let err = sweep(&cut, &["--resume", "--stop-after", "2"]);
    assert!(err.contains("1 of 4 point(s) done, 3 to run"), "{err}");
    assert_eq!(part_entries(&journal).len(), 3);
    let err = sweep(&cut, &["--resume", "--jobs", "1"]);
    assert!(err.contains("3 of 4 point(s) done, 1 to run"), "{err}");
    same_files(&cut, &all, "stopped twice and resumed");
    // Resuming a finished sweep runs nothing and writes the same files.
    let err = sweep(&cut, &["--resume"]);
    assert!(err.contains("4 of 4 point(s) done, 0 to run"), "{err}");
    same_files(&cut, &all, "resumed when already finished");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn resume_runs_only_the_missing_points_and_refuses_another_sweep() {
    let d = temp_dir("resume");
    let cut = d.join("cut");
    let journal = cut.join("sweep.part-1-of-1.json");
    sweep(&cut, &["--jobs", "1", "--stop-after", "2"]);
    // Mark a saved point; the resumed sweep keeps it rather than running it again.
    let mut j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&journal).unwrap()).unwrap();
    j["entries"][1]["row"]["events"] = serde_json::json!(7);
    std::fs::write(&journal, serde_json::to_string_pretty(&j).unwrap()).unwrap();
    sweep(&cut, &["--resume"]);
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(cut.join("sweep.json")).unwrap()).unwrap();
    assert_eq!(rows[1]["events"], 7, "point 1 was not run again");
    assert_ne!(rows[2]["events"], 7);
    // Without --resume the sweep starts over.
    sweep(&cut, &[]);
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(cut.join("sweep.json")).unwrap()).unwrap();
    assert_ne!(rows[1]["events"], 7);

    // A journal of another sweep is refused, naming what differs.
    sweep(&cut, &["--stop-after", "1"]);
    assert!(
        !cut.join("sweep.csv").exists(),
        "the tables of the earlier sweep are gone when a new one starts"
    );
    let mut a = sweep_args(&cut, &["--resume"]);
    let e = a.iter().position(|x| *x == "-e").unwrap();
    a[e + 1] = "16K";
    let o = kernbench(&a);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("is from a different sweep: its sizes differ")
            && stderr(&o).contains("[4096, 8192, 16384] now"),
        "{}",
        stderr(&o)
    );
    let o = kernbench(&sweep_args(&cut, &["--resume", "--fabric", "slots"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("fabric models differ"),
        "{}",
        stderr(&o)
    );
    let o = kernbench(&sweep_args(&cut, &["--resume", "--ties", "reversed"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("tie orders differ"), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn merge_refuses_parts_of_different_sweeps() {
    let d = temp_dir("merge-diff");
    let (a, b, c) = (d.join("a"), d.join("b"), d.join("c"));
    sweep(&a, &["--shard", "1/2"]);
    // Other sizes.
    let mut args = sweep_args(&b, &["--shard", "2/2"]);
    let e = args.iter().position(|x| *x == "-e").unwrap();
    args[e + 1] = "16K";
    ok(&args);
    // Same name, other figures.
    let tiny = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/tiny.yaml"),
    )
    .unwrap();
    let topo = d.join("tiny.yaml");
    std::fs::write(
        &topo,
        format!(
            "{tiny}pe:
  clock_ghz: 2.0
"
        ),
    )
    .unwrap();
    let mut args = sweep_args(&c, &["--shard", "2/2"]);
    let t = args.iter().position(|x| *x == "--topology").unwrap();
    args[t + 1] = topo.to_str().unwrap();
    ok(&args);
    for (other, want) in [
        (&b, "sizes differ"),
        (&c, "topology figures (hashes) differ"),
    ] {
        let o = kernbench(&[
            "merge",
            a.join("sweep.part-1-of-2.json").to_str().unwrap(),
            other.join("sweep.part-2-of-2.json").to_str().unwrap(),
            "--out",
            d.join("m").to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(2));
        assert!(
            stderr(&o).contains("are parts of different sweeps") && stderr(&o).contains(want),
            "{}",
            stderr(&o)
        );
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_sweep_killed_at_any_moment_leaves_a_valid_journal_to_resume() {
    let d = temp_dir("kill");
    let args = |out: &std::path::Path| -> Vec<String> {
        [
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
            "1M",
            "--no-check",
            "--quiet",
            "--jobs",
            "1",
            "--out",
            out.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let whole = d.join("whole");
    let o = Command::new(env!("CARGO_BIN_EXE_kernbench"))
        .args(args(&whole))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let killed = d.join("killed");
    let journal = killed.join("sweep.part-1-of-1.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kernbench"))
        .args(args(&killed))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it as soon as it has saved a point.
    let t = std::time::Instant::now();
    loop {
        let saved = std::fs::read_to_string(&journal)
            .ok()
            .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
            .is_some_and(|j| !j["entries"].as_array().unwrap().is_empty());
        if saved || t.elapsed() > std::time::Duration::from_secs(60) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let n = part_entries(&journal).len();
    assert!(n >= 1, "the journal holds what was saved before the kill");
    if n < 18 {
        assert!(!killed.join("sweep.csv").exists());
    }
    let mut a = args(&killed);
    a.push("--resume".into());
    let o = Command::new(env!("CARGO_BIN_EXE_kernbench"))
        .args(&a)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("{n} of 18 point(s) done")),
        "{}",
        stderr(&o)
    );
    same_files(&killed, &whole, "killed and resumed");
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
fn run_prints_no_progress_off_a_terminal_and_takes_quiet() {
    for extra in [&[][..], &["--quiet"][..]] {
        let mut a = vec![
            "run",
            "ring_allreduce",
            "--topology",
            "tiny",
            "--size",
            "64K",
        ];
        a.extend(extra);
        let o = kernbench(&a);
        assert!(o.status.success(), "{}", stderr(&o));
        let err = stderr(&o);
        assert!(
            !err.contains("simulating") && !err.contains("compiling"),
            "no bar when stderr is not a terminal: {err}"
        );
    }
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

#[test]
fn user_sized_work_is_bounded_before_it_starts() {
    let refused = |args: &[&str], want: &str| {
        let o = kernbench(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
    };
    refused(
        &[
            "run",
            "hello_send",
            "--topology",
            "tiny",
            "--set",
            "n_elem=256",
            "--grid",
            "4294967295,4294967295,4294967295",
        ],
        "more instances than topology `tiny` has PEs (16)",
    );
    refused(
        &[
            "graph",
            "gemm_bf16",
            "--set",
            "a=4294967296x4294967296",
            "--set",
            "b=2x2",
            "--set",
            "c=2x2",
        ],
        "more elements than memory can address",
    );
    let many = vec!["4K"; 1025].join(",");
    refused(
        &["probe", "--topology", "tiny", "--sizes", &many],
        "at most 1024 are probed",
    );
    let d = temp_dir("bounds");
    let out = d.join("out");
    refused(
        &sweep_args(&out, &["--shard", "1/5"]),
        "only 4 point(s); split it into at most 4 shards",
    );
    // 65 algorithms x 1024 sizes is past the most points a sweep may have.
    let reg = d.join("ccl.yaml");
    let mut text = String::from("algorithms:\n");
    for i in 0..65 {
        text.push_str(&format!(
            "  r{i}: {{kernel: ring_allreduce, collective: all_reduce, topology: ring}}\n"
        ));
    }
    std::fs::write(&reg, text).unwrap();
    refused(
        &[
            "sweep",
            "--collective",
            "all_reduce",
            "--topology",
            "tiny",
            "--registry",
            reg.to_str().unwrap(),
            "-b",
            "1",
            "-e",
            "1024",
            "-f",
            "1",
            "--out",
            out.to_str().unwrap(),
        ],
        "65 algorithm(s) x 1024 size(s) is 66560 points, more than the 65536",
    );
    // A part file whose plan would size the merge past the limit.
    let part = d.join("sweep.part-1-of-1.json");
    let sizes: Vec<u64> = (1..=1024).collect();
    let algos: Vec<String> = (0..100).map(|i| format!("a{i}")).collect();
    let j = serde_json::json!({
        "shard": 1, "of": 1, "entries": [],
        "plan": {"collective": "all_reduce", "topology": "tiny", "algos": algos, "sizes": sizes,
                 "dtype": "f32", "op": "sum", "root": 0, "checked": true}
    });
    std::fs::write(&part, j.to_string()).unwrap();
    refused(
        &["merge", part.to_str().unwrap()],
        "a sweep of 102400 point(s); a sweep has 1 to 65536",
    );
    // A deeply nested part file is refused at once (the JSON parser is linear).
    std::fs::write(&part, "{\"x\": ".repeat(200_000)).unwrap();
    let t = std::time::Instant::now();
    refused(&["merge", part.to_str().unwrap()], "not a sweep part file");
    assert!(t.elapsed() < std::time::Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn run_counts_the_bytes_other_pes_move_in_a_pes_slice() {
    // Each buffer is split into 4 shards of 4096 elements, and the 4
    // instances read and write elements 0..4096: all in PE 0's slice.
    let args = [
        "run",
        "vector_add",
        "--pes",
        "4",
        "--set",
        "x.len=16384",
        "--set",
        "y.len=16384",
        "--set",
        "z.len=16384",
        "--set",
        "n=4096",
        "--set",
        "block=1024",
    ];
    let block = 1024 * 4u64;
    let s = ok(&args);
    assert!(
        s.contains(&format!(
            "{} B HBM ({} B of it for other PEs), {} B remote ({} read, {} written), 0 B sent; \
             bound 0.240 us (HBM of PE (0,0,0))",
            12 * block,
            9 * block,
            9 * block,
            6 * block,
            3 * block
        )),
        "{s}"
    );
    let pe1 = s
        .lines()
        .find(|l| l.trim_start().starts_with("(0,0,1)"))
        .unwrap();
    assert!(pe1.ends_with(" remote"), "{s}");
    let j: serde_json::Value =
        serde_json::from_str(&ok(&[&args[..], &["--json"]].concat())).unwrap();
    assert_eq!(j["hbm_bytes"], 12 * block);
    assert_eq!(j["remote_bytes"], 9 * block);
    // 12 blocks of f32 through PE 0's slice at 204.8 GB/s.
    assert_eq!(j["bound_ns"], 240.0);
    assert_eq!(j["bound"]["by"], "hbm");
    assert_eq!(j["bound"]["pe"]["pe"], 0);
    assert_eq!(j["memory"][0]["memory"], "HBM slice sip0/cube0/hbm0");
    assert_eq!(j["memory"][0]["read"], 6 * block);
    assert_eq!(j["memory"][0]["write"], 3 * block);
    let p0 = &j["pes"][0];
    assert_eq!(p0["hbm_served_read"], 6 * block);
    assert_eq!(p0["bound"]["hbm_ns"], 240.0);
    let p3 = &j["pes"][3];
    assert_eq!(
        (&p3["remote_read"], &p3["remote_write"]),
        (&(2 * block).into(), &block.into())
    );
    assert_eq!(p3["bound"]["by"], "remote");
    assert_eq!(
        p3["bound"]["remote_ns"],
        p3["remote_link"]["bytes"].as_f64().unwrap() / p3["remote_link"]["gbps"].as_f64().unwrap()
    );
}

#[test]
fn auto_runs_the_models_pick_and_a_sweep_draws_it_beside_the_best() {
    use kernbench::ccl::{tune, Collective, Registry};
    use kernbench::core::topology::Topology;
    // The table names the model's limiting term.
    let s = ok(&[
        "run",
        "ring_allreduce",
        "--topology",
        "tiny",
        "--size",
        "1M",
    ]);
    let head = s.lines().find(|l| l.contains("#wrong")).unwrap();
    assert!(head.trim_end().ends_with("model  bound"), "{s}");
    assert!(s.lines().last().unwrap().contains("  link sip0/"), "{s}");

    // `-a auto`: the model's pick among the all-reduces that run on every PE.
    let topo = Topology::builtin("tiny").unwrap();
    let reg = Registry::builtin();
    let pes: Vec<_> = topo.pes().collect();
    let cands = tune::candidates(&topo, reg.algorithms(), Collective::AllReduce, &pes);
    let p = tune::pick(&topo, &cands, &pes, 65536.0).unwrap();
    let runner_up = p.runner_up.as_ref().unwrap();
    let s = ok(&[
        "run",
        "all_reduce",
        "-a",
        "auto",
        "--topology",
        "tiny",
        "--size",
        "64K",
        "--verify-data",
    ]);
    assert!(s.contains("runner-up"), "{s}");
    let row = s.lines().last().unwrap();
    assert!(
        row.starts_with(&p.best.algo.name) && row.contains(&runner_up.algo.name),
        "{row}"
    );
    // Named by one of its algorithms, the collective is the same.
    let j: serde_json::Value = serde_json::from_str(&ok(&[
        "run",
        "tree_allreduce",
        "--algos",
        "auto",
        "--topology",
        "tiny",
        "--size",
        "64K",
        "--json",
    ]))
    .unwrap();
    assert_eq!(j["row"]["algo"], p.best.algo.name.as_str());
    assert_eq!(j["row"]["tuned"]["runner_up"], runner_up.algo.name.as_str());
    assert_eq!(j["row"]["tuned"]["candidates"], cands.len());
    for (args, want) in [
        (
            vec!["run", "all_reduce", "-a", "ring"],
            "takes --algos auto",
        ),
        (vec!["run", "nope", "-a", "auto"], "neither a collective"),
        (vec!["run", "all_reduce"], "add -a auto"),
    ] {
        let o = kernbench(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).contains(want), "{}", stderr(&o));
    }

    // A sweep with `auto` runs every candidate and adds the picks.
    let d = temp_dir("auto");
    let args = |out: &std::path::Path, extra: &[&str]| {
        let mut a: Vec<String> = [
            "sweep",
            "--collective",
            "all_gather",
            "--algos",
            "auto",
            "--topology",
            "tiny",
            "-b",
            "4K",
            "-e",
            "64K",
            "-f",
            "16",
            "--quiet",
            "--out",
        ]
        .iter()
        .map(|x| x.to_string())
        .collect();
        a.push(out.to_string_lossy().into_owned());
        a.extend(extra.iter().map(|x| x.to_string()));
        a
    };
    let full = d.join("full");
    let page = full.join("report.html");
    let a = args(&full, &["--html", page.to_str().unwrap()]);
    let s = ok(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(s.contains("# auto (all_gather) on `tiny`"), "{s}");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.contains("auto (model's pick)") && html.contains("best simulated"),
        "the page's plot draws the picks"
    );
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(full.join("sweep.json")).unwrap()).unwrap();
    let ag = tune::candidates(&topo, reg.algorithms(), Collective::AllGather, &pes);
    assert_eq!(rows.len(), 2 * ag.len() + 2);
    for (r, size) in rows[2 * ag.len()..].iter().zip([4096.0, 65536.0]) {
        let p = tune::pick(&topo, &ag, &pes, size).unwrap();
        assert_eq!(r["algo"], p.best.algo.name.as_str(), "{r}");
        assert_eq!(r["size"], size as u64);
        assert!(r["tuned"]["runner_up"].is_string(), "{r}");
    }
    let csv = std::fs::read_to_string(full.join("sweep.csv")).unwrap();
    assert_eq!(csv.lines().filter(|l| l.starts_with("auto,")).count(), 2);
    let svg = std::fs::read_to_string(full.join("busbw.svg")).unwrap();
    assert!(
        svg.contains("best simulated")
            && svg.contains("auto (model's pick)")
            && svg.contains("stroke-dasharray"),
        "{svg}"
    );
    assert_eq!(svg.matches("<polyline").count(), ag.len() + 2);
    // Shards merge to the same files, picks included.
    let parts = d.join("parts");
    for k in ["1/2", "2/2"] {
        let a = args(&parts, &["--shard", k]);
        ok(&a.iter().map(String::as_str).collect::<Vec<_>>());
    }
    ok(&["merge", parts.to_str().unwrap()]);
    same_files(&parts, &full, "merged shards of a tuned sweep");
    // An algorithm the tuner cannot weigh on every PE is refused.
    let a = args(&d.join("bad"), &[]);
    let mut a: Vec<&str> = a.iter().map(String::as_str).collect();
    a[2] = "all_reduce";
    a[4] = "ring_allreduce,auto,intercube_allreduce_ring";
    let o = kernbench(&a);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("cannot weigh `intercube_allreduce_ring`"),
        "{}",
        stderr(&o)
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn run_why_explains_the_time_after_the_report() {
    let base = [
        "run",
        "ring_allreduce",
        "--topology",
        "tiny",
        "--size",
        "16K",
        "-q",
    ];
    let plain = ok(&base);
    let why = ok(&[&base[..], &["--why"]].concat());
    // The report and table are the same bytes; the summary follows them.
    let rest = why
        .strip_prefix(plain.as_str())
        .unwrap_or_else(|| panic!("--why changed the report:\n{why}"));
    assert!(rest.starts_with("why it is slow ("), "{rest}");
    for part in [
        "busiest links (",
        "busiest engines:",
        "for credits (send held, ring full)",
        "for data (receive outstanding)",
        "for an engine (op ready, engine busy)",
        "critical path: PE ",
        "starts the run",
        "waited for data",
        "kernbench-ccl/src/algorithms/common.rs:",
    ] {
        assert!(rest.contains(part), "`{part}` missing:\n{rest}");
    }
    // A kernel too, by its own source lines.
    let k = ok(&[
        "run",
        "hello_send",
        "--topology",
        "tiny",
        "--set",
        "n_elem=1024",
        "--set",
        "t.len=16384",
        "--why",
        "-q",
    ]);
    assert!(k.contains("critical path: PE "), "{k}");
    assert!(k.contains("src/kernels.rs:13"), "{k}");
    // The summary is text: with --json it is refused, not dropped.
    let o = kernbench(&[
        "run",
        "ring_allreduce",
        "--topology",
        "tiny",
        "--why",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn degrade_and_slow_delay_the_run_and_name_a_bad_entry() {
    let base = [
        "run",
        "ring_allreduce",
        "--topology",
        "tiny",
        "--size",
        "4K",
        "-q",
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter().chain(extra).map(|a| a.to_string()).collect()
    };
    let time = |extra: &[&str]| -> f64 {
        let args = with(extra);
        let s = ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let row = s.lines().last().unwrap();
        row.split_whitespace().nth(5).unwrap().parse().unwrap()
    };
    let healthy = time(&[]);
    let link = "sip0/cube2/router(1,2) <-> sip0/cube2/router(1,1)=0.25+500";
    let slow_link = time(&["--degrade", link]);
    assert!(slow_link > healthy, "{slow_link} <= {healthy}");
    let late = time(&["--slow", "sip0/cube1=1+5000"]);
    assert!(late >= healthy + 4.0, "{late} us, healthy {healthy} us");
    for (extra, want) in [
        (
            ["--degrade", "sip0/cube2/router(1,2) -> nowhere=0.5"],
            "--degrade `sip0/cube2/router(1,2) -> nowhere`: there is no `nowhere`",
        ),
        (["--degrade", "a -> b"], "LINK=SHARE"),
        (
            ["--slow", "sip3/cube0=0.5"],
            "--slow `sip3/cube0`: this machine has no",
        ),
    ] {
        let args = with(&extra);
        let o = kernbench(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(o.status.code(), Some(2), "{extra:?}");
        assert!(stderr(&o).contains(want), "{}", stderr(&o));
    }
}
