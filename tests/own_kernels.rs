//! A program's own kernel and collective on the command, end to end: the
//! binary of `examples/my_kernel.rs`, run in-process through its
//! `kernbench::cli::Cli`, lists, graphs, runs and sweeps them; every
//! `cargo run --release --example my_kernel -- ...` command of the README runs;
//! a name taken twice, bad defaults and bad algorithms are clear errors.

#[allow(dead_code)]
#[path = "../examples/my_kernel.rs"]
mod my_kernel;

use kernbench::ccl::{Algorithm, Collective, MapKind};
use kernbench::cli::{Cli, Defaults, Fail};
use kernbench::prelude::*;

/// The command line's output, or its error.
fn run_with(cli: &Cli, args: &[&str]) -> Result<String, Fail> {
    let mut out = Vec::new();
    cli.run_args(
        std::iter::once("my_kernel").chain(args.iter().copied()),
        &mut out,
    )?;
    Ok(String::from_utf8(out).expect("the output is UTF-8"))
}

/// The example's command on `args`, which must succeed.
fn ok(args: &[&str]) -> String {
    run_with(&my_kernel::cli(), args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// Where `saxpy` is defined, as its metadata says (`file:line`).
fn saxpy_at() -> String {
    let m = kernbench::tl::Kernel::meta(&my_kernel::saxpy);
    format!("{}:{}", m.file, m.line)
}

/// A usage error's message.
fn usage_error(cli: &Cli, args: &[&str]) -> String {
    match run_with(cli, args) {
        Err(Fail::Usage(m)) => m,
        other => panic!(
            "{args:?}: expected a usage error, got {:?}",
            other.map(|_| ())
        ),
    }
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("kernbench-own-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn list_shows_the_programs_kernel_and_algorithm_with_the_shipped_ones() {
    let s = ok(&["list"]);
    let saxpy = "  saxpy(x: ptr<f32>, y: ptr<f32>, a: f64, n: usize, const block: usize)\n";
    let at = s.find(saxpy).unwrap_or_else(|| panic!("{s}"));
    let rest = &s[at + saxpy.len()..];
    assert!(
        rest.starts_with(&format!(
            "      {}  `y = a * x + y` over `n` elements",
            saxpy_at()
        )),
        "{rest}"
    );
    assert!(
        rest.lines().nth(1)
            == Some("      defaults: x.len=16384 y.len=16384 a=2.0 n=16384 block=1024 grid=16"),
        "{rest}"
    );
    // The shipped kernels and algorithms are still there.
    assert!(s.contains("  vector_add(x: ptr<f32>,"), "{s}");
    let shipped = kernbench::ccl::Registry::builtin().algorithms().len();
    let heading = format!(
        "collective algorithms ({}, {shipped} from configs/ccl.yaml, 1 from this program):",
        shipped + 1
    );
    assert!(s.contains(&heading), "{s}");
    let row = s
        .lines()
        .find(|l| l.trim_start().starts_with("relay_allreduce "))
        .unwrap_or_else(|| panic!("{s}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cols,
        [
            "relay_allreduce",
            "all_reduce",
            "relay_allreduce_<type>",
            "ring",
            "tcm",
            "16384",
            "all"
        ]
    );
    assert!(s
        .lines()
        .any(|l| l.trim_start().starts_with("ring_allreduce ")));

    let j: serde_json::Value = serde_json::from_str(&ok(&["list", "--json"])).unwrap();
    let kernels = j["kernels"].as_array().unwrap();
    let k = kernels.iter().find(|k| k["name"] == "saxpy").unwrap();
    assert!(k["module"].as_str().unwrap().ends_with("my_kernel"), "{k}");
    assert_eq!(k["params"].as_array().unwrap().len(), 5);
    let shipped = kernels.iter().find(|k| k["name"] == "vector_add").unwrap();
    assert_eq!(shipped["module"], "kernbench::kernels");
    assert!(shipped.get("defaults").is_none(), "{shipped}");
    let algos = j["algorithms"].as_array().unwrap();
    let a = algos
        .iter()
        .find(|a| a["name"] == "relay_allreduce")
        .unwrap();
    assert_eq!(
        (&a["kernel"], &a["collective"]),
        (&"relay_allreduce".into(), &"all_reduce".into())
    );
}

#[test]
fn graph_traces_the_programs_kernel_from_its_defaults_and_sets() {
    let g = ok(&["graph", "saxpy"]);
    let lines: Vec<&str> = g
        .lines()
        .map(|l| l.split(" @ ").next().unwrap().trim_end())
        .collect();
    assert_eq!(
        lines,
        [
            "kernel saxpy(x: ptr<f32>, y: ptr<f32>, a = 2.0, n = 16384, const block = 1024) grid=[16] pid=[0]",
            "  %0 = load x[+0] : tile<f32,[1024]>",
            "  %1 = load y[+0] : tile<f32,[1024]>",
            "  %2 = mul %0, 2.0 : tile<f32,[1024]>",
            "  %3 = add %2, %1 : tile<f32,[1024]>",
            "  %4 = store y[+0] %3 after %1",
        ],
        "{g}"
    );
    assert!(g.contains("@ my_kernel.rs:28"), "{g}");
    // The command line wins over the defaults; the grid is the default's.
    let g = ok(&[
        "graph",
        "saxpy",
        "--pid",
        "3",
        "--set",
        "a=0.5",
        "--set",
        "block=512",
    ]);
    assert!(g.starts_with("kernel saxpy(x: ptr<f32>, y: ptr<f32>, a = 0.5, n = 16384, const block = 512) grid=[16] pid=[3]"), "{g}");
    assert!(
        g.contains("load x[+1536] : tile<f32,[512]>") && g.contains("mul %0, 0.5"),
        "{g}"
    );
    // Past the end of `n`, the instance does nothing.
    let g = ok(&["graph", "saxpy", "--grid", "32", "--pid", "20"]);
    assert_eq!(g.lines().count(), 1, "{g}");
    let e = usage_error(&my_kernel::cli(), &["graph", "saxpy", "--set", "b=1"]);
    assert!(e.contains("kernel `saxpy` has no parameter `b`"), "{e}");
}

#[test]
fn run_launches_the_programs_kernel_with_its_defaults() {
    let s = ok(&["run", "saxpy", "--topology", "tiny"]);
    assert!(s.starts_with("kernel saxpy on tiny: 16 PE(s), "), "{s}");
    assert!(
        s.contains("32768 FLOP, 196608 B HBM, 0 B remote, 0 B sent"),
        "{s}"
    );
    // `--pes` overrides the default grid: a 1D grid of 8, half the vector.
    // With buffers sized so that each instance's slice is in its own PE's shard.
    let j: serde_json::Value = serde_json::from_str(&ok(&[
        "run",
        "saxpy",
        "--topology",
        "tiny",
        "--pes",
        "8",
        "--set",
        "x.len=8192",
        "--set",
        "y.len=8192",
        "--set",
        "n=8192",
        "--verify-data",
        "--json",
    ]))
    .unwrap();
    assert_eq!(j["flops"], 2 * 8 * 1024);
    assert_eq!(j["hbm_bytes"], 3 * 8 * 1024 * 4);
    let e = usage_error(
        &my_kernel::cli(),
        &["run", "saxpy", "--topology", "tiny", "--grid", "32"],
    );
    assert!(
        e.contains("--grid [32] has more instances than topology `tiny` has PEs (16)"),
        "{e}"
    );
    // `export` launches it the same way: one Chakra trace per instance.
    let d = temp_dir("export");
    let s = ok(&[
        "export",
        "--chakra",
        d.to_str().unwrap(),
        "saxpy",
        "--topology",
        "tiny",
    ]);
    assert!(s.contains("saxpy"), "{s}");
    let traces = std::fs::read_dir(&d).unwrap().filter(|e| {
        e.as_ref()
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("saxpy.")
    });
    assert_eq!(traces.count(), 16);
    let _ = std::fs::remove_dir_all(&d);
    let big = Cli::new().kernel_with(&my_kernel::saxpy, Defaults::new().grid(&[64]));
    let e = usage_error(&big, &["run", "saxpy", "--topology", "tiny"]);
    assert!(
        e.contains("the kernel's default grid [64] has more instances"),
        "{e}"
    );
}

fn row(j: &serde_json::Value) -> (f64, i64) {
    (
        j["row"]["time_us"].as_f64().unwrap(),
        j["row"]["wrong"].as_i64().unwrap(),
    )
}

#[test]
fn run_checks_the_programs_collective_and_it_is_slower_than_the_ring() {
    let args = [
        "--topology",
        "tiny",
        "--size",
        "64K",
        "--verify-data",
        "--json",
    ];
    let run = |name: &str, extra: &[&str]| -> serde_json::Value {
        let v = [&["run", name][..], &args[..], extra].concat();
        serde_json::from_str(&ok(&v)).unwrap()
    };
    let relay = run("relay_allreduce", &[]);
    let ring = run("ring_allreduce", &[]);
    let (t_relay, wrong) = row(&relay);
    assert_eq!(wrong, 0);
    assert_eq!(relay["row"]["algo"], "relay_allreduce");
    assert_eq!(relay["row"]["ranks"], 16);
    // Every rank sends its 64 KiB on to the next 15 times.
    let sent: u64 = relay["pes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["sent"].as_u64().unwrap())
        .sum();
    assert_eq!(sent, 16 * 15 * 65536);
    // And combines each of the 15 it receives into its own.
    assert_eq!(relay["flops"], 16 * 15 * 16384);
    assert!(
        t_relay > 2.0 * row(&ring).0,
        "relay {t_relay} us, ring {} us",
        row(&ring).0
    );
    // Each reduction, and each element type: one generic kernel serves them all.
    for (d, op) in [
        ("half", "sum"),
        ("float", "max"),
        ("float", "min"),
        ("bfloat16", "sum"),
        ("int32", "max"),
    ] {
        let (_, wrong) = row(&run("relay_allreduce", &["-d", d, "-o", op]));
        assert_eq!(wrong, 0, "-d {d} -o {op}");
    }
}

#[test]
fn sweep_runs_the_programs_collective_with_the_shipped_ones() {
    let d = temp_dir("sweep");
    let out = d.to_str().unwrap();
    let s = ok(&[
        "sweep",
        "--collective",
        "all_reduce",
        "--algos",
        "ring_allreduce,relay_allreduce",
        "--topology",
        "tiny",
        "-b",
        "16K",
        "-e",
        "64K",
        "--out",
        out,
        "-q",
    ]);
    assert!(
        s.contains("# relay_allreduce (all_reduce) on `tiny`"),
        "{s}"
    );
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(d.join("sweep.json")).unwrap()).unwrap();
    let relay: Vec<&serde_json::Value> = rows
        .iter()
        .filter(|r| r["algo"] == "relay_allreduce")
        .collect();
    assert_eq!(relay.len(), 3);
    assert!(relay.iter().all(|r| r["wrong"] == 0));
    assert!(std::fs::read_to_string(d.join("busbw.svg"))
        .unwrap()
        .contains("relay_allreduce"));
    // Every all-reduce when --algos is absent, the program's included.
    let all = d.join("all");
    let s = ok(&[
        "sweep",
        "--collective",
        "all_reduce",
        "--topology",
        "tiny",
        "-b",
        "16K",
        "-e",
        "16K",
        "--no-check",
        "--out",
        all.to_str().unwrap(),
        "-q",
    ]);
    assert!(
        s.contains("# relay_allreduce") && s.contains("# tree_allreduce"),
        "{s}"
    );
    // With a registry file, the program's algorithm joins the file's.
    let e = usage_error(
        &my_kernel::cli(),
        &[
            "sweep",
            "--collective",
            "all_reduce",
            "--algos",
            "nope",
            "--topology",
            "tiny",
            "--registry",
            concat!(env!("CARGO_MANIFEST_DIR"), "/configs/ccl.yaml"),
            "--out",
            out,
        ],
    );
    assert!(
        e.contains("no algorithm `nope`") && e.contains("relay_allreduce"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// The `my_kernel` arguments of every `cargo run --release --example
/// my_kernel -- ...` line of the README's shell blocks.
fn readme_commands() -> Vec<Vec<String>> {
    let readme = include_str!("../README.md");
    let mut out = Vec::new();
    let (mut in_sh, mut pending) = (false, String::new());
    for line in readme.lines() {
        if line.starts_with("```") {
            in_sh = line.trim() == "```sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        if let Some(head) = line.trim_end().strip_suffix('\\') {
            pending.push_str(head);
            continue;
        }
        let full = std::mem::take(&mut pending) + line;
        if let Some(args) = full
            .trim()
            .strip_prefix("cargo run --release --example my_kernel -- ")
        {
            out.push(args.split_whitespace().map(str::to_string).collect());
        }
    }
    out
}

#[test]
fn every_my_kernel_command_of_the_readme_runs() {
    let cmds = readme_commands();
    for sub in ["list", "graph", "run", "sweep"] {
        assert!(
            cmds.iter().any(|c| c[0] == sub),
            "the README shows `my_kernel -- {sub}`: {cmds:?}"
        );
    }
    assert!(cmds
        .iter()
        .any(|c| c[0] == "sweep" && c.iter().any(|a| a.contains("relay_allreduce"))));
    let d = temp_dir("readme");
    for c in &cmds {
        // Written files go to the test's folder.
        let mut args = c.clone();
        if let Some(i) = args.iter().position(|a| a == "--out") {
            args[i + 1] = d.join(&args[i + 1]).to_string_lossy().into_owned();
        }
        if args[0] == "run" || args[0] == "sweep" {
            args.push("-q".into());
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let s = ok(&refs);
        assert!(!s.is_empty(), "{c:?}");
    }
    let _ = std::fs::remove_dir_all(&d);
}

/// A kernel written by hand, not registered with `inventory`: what
/// `#[kernel]` generates, under a name of our choosing.
struct Named(&'static KernelMeta);

use kernbench::tl::KernelMeta;

impl kernbench::core::program::Program for Named {
    fn name(&self) -> &str {
        self.0.name
    }
    fn trace(
        &self,
        args: &KernelArgs,
        grid: &[u32],
        pid: &[u32],
    ) -> Result<kernbench::core::ir::CommandGraph, kernbench::tl::TraceError> {
        kernbench::tl::trace_program(self, args, grid, pid)
    }
}

impl kernbench::tl::Kernel for Named {
    fn meta(&self) -> &'static KernelMeta {
        self.0
    }
    fn run_body(&self, _: &KernelArgs) -> Result<(), kernbench::tl::TraceError> {
        Ok(())
    }
}

fn named(name: &'static str, module: &'static str) -> &'static Named {
    Box::leak(Box::new(Named(Box::leak(Box::new(KernelMeta {
        name,
        generics: &[],
        params: &[],
        file: "tests/own_kernels.rs",
        line: 1,
        module,
        doc: "",
    })))))
}

#[test]
fn a_name_taken_twice_is_refused_before_any_command() {
    let e = usage_error(
        &Cli::new().kernel(named("vector_add", "own_kernels")),
        &["topo", "tiny"],
    );
    assert!(
        e.starts_with("kernbench ships a kernel named `vector_add` (src/kernels.rs:")
            && e.contains("in `kernbench::kernels`); rename the kernel at tests/own_kernels.rs:1 in `own_kernels`"),
        "{e}"
    );
    let e = usage_error(
        &my_kernel::cli().kernel(named("saxpy", "own_kernels::other")),
        &["list"],
    );
    assert!(
        e.starts_with(&format!(
            "two kernels are named `saxpy`, at {} in `own_kernels::my_kernel` and at \
             tests/own_kernels.rs:1 in `own_kernels::other`; rename one",
            saxpy_at()
        )),
        "{e}"
    );
    let relay = || {
        Algorithm::new(
            "relay_allreduce",
            "relay_allreduce",
            Collective::AllReduce,
            MapKind::Ring,
        )
    };
    let kernel_named = format!("algorithm `saxpy`: a kernel has that name ({}", saxpy_at());
    let cases: [(Cli, &str); 4] = [
        (
            Cli::new().collective(Algorithm { name: "ring_allreduce".into(), ..relay() }),
            "algorithm `ring_allreduce`: configs/ccl.yaml has an algorithm of that name",
        ),
        (my_kernel::cli().collective(relay()), "algorithm `relay_allreduce`: it is added twice"),
        (
            Cli::new().collective(Algorithm { name: "saxpy".into(), ..relay() }).kernel(&my_kernel::saxpy),
            &kernel_named,
        ),
        (
            Cli::new().collective(Algorithm::new("x", "no_such", Collective::AllReduce, MapKind::Ring)),
            "algorithm `x`: no kernel `no_such` is registered: a run launches the `#[kernel]` named `no_such`",
        ),
    ];
    for (cli, want) in cases {
        let e = usage_error(&cli, &["list"]);
        assert!(e.starts_with(want), "{e}\nwanted: {want}");
    }
}

/// A collective kernel that takes what the driver does not pass.
#[kernel]
fn strided(buf: Ptr<f32>, n: usize, stride: usize) {
    let t = tl::load(buf.offset(tl::program_id(0) * n * stride), [n]);
    tl::store(buf, &t);
}

#[test]
fn bad_algorithms_and_defaults_are_clear_errors() {
    let algo = Algorithm::new("strided", "strided", Collective::AllReduce, MapKind::Ring);
    let e = usage_error(&Cli::new().collective(algo.clone()), &["list"]);
    assert!(
        e.starts_with("algorithm `strided`: its kernel `strided` (tests/own_kernels.rs:")
            && e.contains("takes `stride`, which the collective driver does not pass (it passes buf, n, seg, op,"),
        "{e}"
    );
    // The driver refuses it too, to a library caller.
    let topo = Topology::builtin("tiny").unwrap();
    let spec = kernbench::ccl::RunSpec::timing(64, DType::F32, Default::default());
    let Err(e) = kernbench::ccl::run(&topo, &algo, &spec) else {
        panic!("the driver ran a kernel that takes `stride`");
    };
    let e = e.to_string();
    assert!(
        e.contains("kernel `strided`")
            && e.contains("takes `stride`, which a collective's kernel cannot"),
        "{e}"
    );
    let relay = Algorithm::new("r", "relay_allreduce", Collective::AllReduce, MapKind::Ring);
    let mut slots = relay.clone();
    slots.ipcq.slots = 0;
    let bad = [
        (
            Algorithm {
                seg_bytes: 2,
                ..relay.clone()
            },
            "algorithm `r`: seg_bytes 2 is smaller than one element",
        ),
        (
            Algorithm {
                world: Some(0),
                ..relay.clone()
            },
            "algorithm `r`: world must be at least 1",
        ),
        (slots, "algorithm `r`: slots must be at least 1"),
        (
            Algorithm {
                name: String::new(),
                ..relay.clone()
            },
            "an algorithm has an empty name",
        ),
    ];
    for (a, want) in bad {
        let e = usage_error(
            &Cli::new().kernel(&my_kernel::relay_allreduce).collective(a),
            &["list"],
        );
        assert!(e.starts_with(want), "{e}");
    }
    let saxpy = |d: Defaults| Cli::new().kernel_with(&my_kernel::saxpy, d);
    let bad = [
        (
            Defaults::new().int("x", 3),
            "the default for `x: Ptr<f32>` is an integer; a pointer takes a length (Defaults::len)",
        ),
        (
            Defaults::new().len("n", 3),
            "the default for `n: usize` is a length; a scalar takes a value",
        ),
        (
            Defaults::new().shape("y", 4, 4),
            "the default for `y: Ptr<f32>` is a shape; a pointer takes a length",
        ),
        (
            Defaults::new().float("z", 1.0),
            "a default for `z`, which is not a parameter (it takes x, y, a, n, block)",
        ),
        (
            Defaults::new().len("x", 0),
            "the default for `x` has a 0 in it",
        ),
        (
            Defaults::new().grid(&[2, 0]),
            "the default grid [2, 0] must have 1 to 3 axes, none of them 0",
        ),
    ];
    for (d, want) in bad {
        let e = usage_error(&saxpy(d), &["list"]);
        assert!(
            e.starts_with(&format!(
                "kernel `saxpy` ({} in `own_kernels::my_kernel`): ",
                saxpy_at()
            )) && e.contains(want),
            "{e}\nwanted: {want}"
        );
    }
    let twice = Cli::new()
        .kernel_with(&my_kernel::saxpy, Defaults::new().int("n", 1))
        .kernel_with(&my_kernel::saxpy, Defaults::new().int("n", 2));
    assert!(usage_error(&twice, &["list"]).contains("is registered twice with different defaults"));
    // `--help` still works, so the program can be asked what it does.
    assert!(run_with(&twice, &["--help"])
        .unwrap()
        .contains("Usage: my_kernel"));
}
