//! Command lines: `run`, `graph`, `probe`, `sweep`, `topo` and `merge` with
//! random flags and values, through [`kernbench::cli::run_args`] (in this
//! process, no subprocess).
//!
//! Values mix what the flags take (kernels, algorithms, sizes, grids, PE
//! lists, shards) with what they do not (zero, huge, negative, garbage,
//! missing files, broken part files). Runs stay small: the `tiny` machine
//! (or a file derived from it), sizes of at most 16 KiB, short sweeps.
//! Paths are written `$TMP/...` and point into a folder of the test's own.
//!
//! A case must return: `Ok`, or a parse, usage or check error with a
//! message (a check error only where data is checked); output asked for as
//! JSON must be JSON, and a trace asked for must be written.

use kernbench::cli::{run_args, Fail};
use proptest::prelude::*;
use std::path::{Path, PathBuf};

/// One command line, and the part files a `merge` reads.
#[derive(Clone, Debug)]
pub struct CliCase {
    /// The arguments after the program's name; `$TMP` stands for the case's folder.
    pub args: Vec<String>,
    /// Files written into `$TMP/parts` before the command runs.
    pub parts: Vec<PartFile>,
}

/// A sweep part file for `merge`: a real one, maybe edited, under a name.
#[derive(Clone, Debug)]
pub struct PartFile {
    /// The file name.
    pub name: String,
    /// Which real part it starts from (1 or 2 of 2).
    pub shard: usize,
    /// An edit of its JSON.
    pub edit: Option<JsonEdit>,
}

/// An edit of a part file's JSON; `at` picks a node in pre-order.
#[derive(Clone, Debug)]
pub enum JsonEdit {
    /// Set a node to a value.
    Set { at: usize, to: serde_json::Value },
    /// Delete a node.
    Delete { at: usize },
    /// Cut the text short.
    Truncate { at: usize },
}

fn pick<T: Clone + std::fmt::Debug + 'static>(v: &[T]) -> impl Strategy<Value = T> {
    prop::sample::select(v.to_vec())
}

fn s(v: &[&'static str]) -> BoxedStrategy<String> {
    prop::sample::select(v.to_vec())
        .prop_map(str::to_string)
        .boxed()
}

/// A flag with a value, present or not.
fn opt(flag: &'static str, value: BoxedStrategy<String>) -> BoxedStrategy<Vec<String>> {
    prop::option::weighted(0.5, value)
        .prop_map(move |v| v.map_or_else(Vec::new, |v| vec![flag.to_string(), v]))
        .boxed()
}

/// A switch, present or not.
fn switch(flag: &'static str) -> BoxedStrategy<Vec<String>> {
    any::<bool>()
        .prop_map(move |on| if on { vec![flag.to_string()] } else { vec![] })
        .boxed()
}

fn topology() -> BoxedStrategy<String> {
    prop_oneof![
        6 => Just("tiny".to_string()),
        1 => Just("$TMP/tiny-copy.yaml".to_string()),
        1 => Just("$TMP/broken.yaml".to_string()),
        1 => Just("$TMP/missing.yaml".to_string()),
        1 => Just("no-such-machine".to_string()),
        1 => Just(String::new()),
    ]
    .boxed()
}

fn size() -> BoxedStrategy<String> {
    s(&[
        "4",
        "64",
        "100",
        "1K",
        "4K",
        "16K",
        "3",
        "0",
        "1",
        "-4",
        "1.5K",
        "8Q",
        "",
        "16M",
        "99999999999999999999",
    ])
}

fn dtype() -> BoxedStrategy<String> {
    s(&[
        "float", "half", "bfloat16", "int32", "f32", "i32", "f64", "",
    ])
}

fn op() -> BoxedStrategy<String> {
    s(&["sum", "max", "min", "prod", ""])
}

fn fabric() -> BoxedStrategy<String> {
    s(&["messages", "slots", "packets"])
}

fn small_int() -> BoxedStrategy<String> {
    prop_oneof![
        4 => (0u32..20).prop_map(|n| n.to_string()),
        1 => s(&["-1", "99999999999999999999", "x", "", "1e3"]),
    ]
    .boxed()
}

fn grid() -> BoxedStrategy<String> {
    s(&[
        "1",
        "16",
        "4,4",
        "2,2,4",
        "8,2",
        "0",
        "1,1,1,1",
        "x",
        "",
        "4,-1",
        "65536,65536",
    ])
}

fn kernel() -> BoxedStrategy<String> {
    s(&[
        "hello_send",
        "vector_add",
        "gemm_f32",
        "gemm_bias_relu_f16",
        "gemm_blocked",
        "softmax_rows",
        "probe_send",
        "probe_load",
        "shard_linear",
        "ring_allreduce_f32",
        "broadcast_bf16",
        "nope",
        "",
    ])
}

fn algorithm() -> BoxedStrategy<String> {
    s(&[
        "ring_allreduce",
        "ring_allreduce_hbm",
        "ring_allreduce_sram",
        "mesh_allreduce",
        "tree_allreduce",
        "hierarchical_allreduce",
        "reduce_scatter",
        "all_gather",
        "broadcast",
        "intercube_allreduce_ring",
        "intercube_allreduce_torus",
        "recursive_doubling",
        "rabenseifner",
        "bruck_allgather",
        "bruck_reducescatter",
        "binomial_reduce",
        "binomial_gather",
        "pairwise_alltoall",
        "double_tree_allreduce",
        "hierarchical_reduce_scatter",
        "hierarchical_allgather",
    ])
}

/// `--set NAME=VALUE` pairs, for the parameters of the shipped kernels and a few others.
fn sets() -> BoxedStrategy<Vec<String>> {
    let name = s(&[
        "n_elem",
        "n",
        "block",
        "t.len",
        "x.len",
        "y.len",
        "z.len",
        "a",
        "b",
        "c",
        "bm",
        "bn",
        "bk",
        "rows",
        "buf.len",
        "seg",
        "w",
        "r",
        "src.len",
        "dst.len",
        "bias.len",
        "scale",
        "relu",
        "x",
        "nope",
        "n_elem.len",
    ]);
    let value = prop_oneof![
        4 => (1u32..=512).prop_map(|n| n.to_string()),
        1 => (1u32..=1024).prop_map(|n| (n * 16).to_string()),
        2 => s(&["8x8", "16x16", "64x32", "32x64", "0x4", "4x", "1x1"]),
        2 => s(&[
            "0", "-1", "4K", "0x10", "true", "false", "1.5", "1e3", "nan", "abc", "",
            "99999999999999999999", "9223372036854775807",
        ]),
    ];
    prop::collection::vec(
        (name, value, any::<bool>()).prop_map(|(n, v, short)| {
            vec![
                if short { "-s" } else { "--set" }.to_string(),
                format!("{n}={v}"),
            ]
        }),
        0..5,
    )
    .prop_map(|v| v.concat())
    .boxed()
}

fn run_args_strategy() -> BoxedStrategy<Vec<String>> {
    (
        prop_oneof![kernel(), algorithm()],
        (
            topology().prop_map(|t| vec!["--topology".to_string(), t]),
            sets(),
            opt("--pes", small_int()),
            opt("--grid", grid()),
            opt(
                "--map",
                s(&["ring", "torus2d", "tree", "hierarchical", "none", "star"]),
            ),
            switch("--verify-data"),
            opt("--fabric", fabric()),
            opt("--max-memory", s(&["1", "1K", "64M", "1G", "0"])),
        ),
        (
            switch("--json"),
            opt(
                "--trace",
                s(&["$TMP/trace.json", "$TMP/no-such-dir/trace.json"]),
            ),
            opt(
                "--trace-pes",
                s(&["0.0.0", "0.0.0,0.1.2", "9.9.9", "x", "0.0"]),
            ),
            opt(
                "--trace-window",
                s(&["0..5000", "100..200", "5..1", "a..b", "-1..3"]),
            ),
            opt("--size", size()),
            opt("-d", dtype()),
            opt("-o", op()),
            opt("--seg", size()),
            opt("-r", small_int()),
        ),
    )
        .prop_map(|(name, a, b)| {
            let mut v = vec!["run".to_string(), name];
            v.extend(a.0);
            v.extend(a.1);
            v.extend(a.2);
            v.extend(a.3);
            v.extend(a.4);
            v.extend(a.5);
            v.extend(a.6);
            v.extend(a.7);
            v.extend(b.0);
            v.extend(b.1);
            v.extend(b.2);
            v.extend(b.3);
            v.extend(b.4);
            v.extend(b.5);
            v.extend(b.6);
            v.extend(b.7);
            v.extend(b.8);
            v
        })
        .boxed()
}

fn graph_args() -> BoxedStrategy<Vec<String>> {
    (
        kernel(),
        sets(),
        opt("--grid", grid()),
        opt("--pid", grid()),
        switch("--dot"),
    )
        .prop_map(|(k, sets, grid, pid, dot)| {
            [vec!["graph".to_string(), k], sets, grid, pid, dot].concat()
        })
        .boxed()
}

fn probe_args() -> BoxedStrategy<Vec<String>> {
    let case = prop::collection::vec(
        s(&[
            "pe-hbm",
            "same-cube",
            "ucie",
            "cross-cube",
            "cross-sip",
            "host",
            "nowhere",
        ]),
        1..3,
    )
    .prop_map(|v| v.join(","))
    .boxed();
    let sizes = prop::collection::vec(s(&["64", "4K", "16K", "0", "32M", "x"]), 1..3)
        .prop_map(|v| v.join(","))
        .boxed();
    (
        prop_oneof![
            4 => case.prop_map(|c| vec!["--case".to_string(), c]),
            1 => Just(vec![]),
        ],
        prop_oneof![
            4 => sizes.prop_map(|c| vec!["--sizes".to_string(), c]),
            1 => Just(vec![]),
        ],
        topology(),
        opt("--fabric", fabric()),
        switch("--json"),
    )
        .prop_map(|(case, sizes, topo, fabric, json)| {
            [
                vec!["probe".to_string(), "--topology".to_string(), topo],
                case,
                sizes,
                fabric,
                json,
            ]
            .concat()
        })
        .boxed()
}

fn topo_args() -> BoxedStrategy<Vec<String>> {
    (
        prop_oneof![topology(), Just("default".to_string())],
        switch("--json"),
        opt("--dot", s(&["$TMP/t.dot", "-", "$TMP/no-such-dir/t.dot"])),
    )
        .prop_map(|(t, json, dot)| [vec!["topo".to_string(), t], json, dot].concat())
        .boxed()
}

fn sweep_args() -> BoxedStrategy<Vec<String>> {
    let algos = prop::collection::vec(prop_oneof![algorithm(), s(&["nope", ""])], 1..3)
        .prop_map(|v| v.join(","))
        .boxed();
    // Sizes: a start and a span of at most 4x, so a sweep has a few points.
    let sizes = (
        pick(&[4u64, 64, 256, 1024, 4096]),
        pick(&[1u64, 2, 4]),
        any::<bool>(),
    )
        .prop_map(|(b, span, swap)| {
            let (b, e) = (b, b * span);
            let (b, e) = if swap { (e, b) } else { (b, e) };
            vec!["-b".into(), b.to_string(), "-e".into(), e.to_string()]
        })
        .boxed();
    (
        s(&[
            "all_reduce",
            "reduce_scatter",
            "all_gather",
            "broadcast",
            "gossip",
        ]),
        prop_oneof![
            4 => algos.prop_map(|a| vec!["--algos".to_string(), a]),
            1 => Just(vec![]),
        ],
        topology(),
        opt(
            "--registry",
            s(&[
                "$TMP/ccl-copy.yaml",
                "$TMP/broken.yaml",
                "$TMP/missing.yaml",
            ]),
        ),
        sizes,
        opt("-f", s(&["2", "4", "0", "1", "1000", "-2"])),
        (opt("-d", dtype()), opt("-o", op()), opt("-r", small_int())),
        (
            switch("--no-check"),
            opt("--fabric", fabric()),
            opt(
                "--shard",
                s(&["1/2", "2/2", "1/1", "3/2", "0/1", "1/0", "x"]),
            ),
            opt("-j", s(&["1", "2", "0"])),
            switch("-q"),
        ),
    )
        .prop_map(
            |(coll, algos, topo, reg, sizes, f, (d, o, r), (nc, fab, shard, j, q))| {
                [
                    vec![
                        "sweep".to_string(),
                        "--collective".to_string(),
                        coll,
                        "--topology".to_string(),
                        topo,
                        "--out".to_string(),
                        "$TMP/sweep".to_string(),
                    ],
                    algos,
                    reg,
                    sizes,
                    f,
                    d,
                    o,
                    r,
                    nc,
                    fab,
                    shard,
                    j,
                    q,
                ]
                .concat()
            },
        )
        .boxed()
}

fn json_edit() -> impl Strategy<Value = JsonEdit> {
    let value = prop_oneof![
        Just(serde_json::json!(0)),
        Just(serde_json::json!(-1)),
        Just(serde_json::json!(u64::MAX)),
        Just(serde_json::json!(1e300)),
        Just(serde_json::json!("x")),
        Just(serde_json::json!(null)),
        Just(serde_json::json!([])),
        Just(serde_json::json!({})),
        (0u64..5).prop_map(|n| serde_json::json!(n)),
    ];
    prop_oneof![
        3 => (any::<usize>(), value).prop_map(|(at, to)| JsonEdit::Set { at, to }),
        1 => any::<usize>().prop_map(|at| JsonEdit::Delete { at }),
        1 => any::<usize>().prop_map(|at| JsonEdit::Truncate { at }),
    ]
}

fn merge_case() -> BoxedStrategy<CliCase> {
    let part = (
        s(&[
            "sweep.part-1-of-2.json",
            "sweep.part-2-of-2.json",
            "sweep.part-1-of-1.json",
            "sweep.part-3-of-2.json",
        ]),
        1usize..=2,
        prop::option::weighted(0.5, json_edit()),
    )
        .prop_map(|(name, shard, edit)| PartFile { name, shard, edit });
    (
        prop::collection::vec(part, 0..4),
        prop::collection::vec(
            s(&[
                "$TMP/parts",
                "$TMP/parts/sweep.part-1-of-2.json",
                "$TMP/parts/sweep.part-2-of-2.json",
                "$TMP/missing",
                "$TMP/broken.yaml",
                "$TMP",
            ]),
            0..3,
        ),
        opt("--out", s(&["$TMP/merged", "$TMP/broken.yaml/x"])),
    )
        .prop_map(|(parts, paths, out)| CliCase {
            args: [vec!["merge".to_string()], paths, out].concat(),
            parts,
        })
        .boxed()
}

/// A kernel with `--set` values that fit it, and how many instances it runs
/// (`--pes` for `run`, the grid for `graph`; `None`: a 2D grid is in the sets).
fn recipe() -> BoxedStrategy<(String, Vec<String>, Vec<u32>)> {
    let set = |kv: Vec<String>| -> Vec<String> {
        kv.into_iter()
            .flat_map(|x| ["--set".to_string(), x])
            .collect()
    };
    let mats = || pick(&[8usize, 16, 32, 64]);
    prop_oneof![
        (1u32..=16, 1usize..=256).prop_map(move |(p, k)| (
            "hello_send".to_string(),
            set(vec![
                format!("n_elem={k}"),
                format!("t.len={}", k * p as usize)
            ]),
            vec![p],
        )),
        (1u32..=16, 1usize..=256, 0usize..8).prop_map(move |(p, block, short)| {
            let n = (block * p as usize).saturating_sub(short).max(1);
            let v = vec![
                format!("x.len={n}"),
                format!("y.len={n}"),
                format!("z.len={n}"),
                format!("n={n}"),
                format!("block={block}"),
            ];
            ("vector_add".to_string(), set(v), vec![p])
        }),
        (
            pick(&[
                "gemm_f32",
                "gemm_f16",
                "gemm_bf16",
                "gemm_bias_relu_f32",
                "gemm_bias_relu_bf16"
            ]),
            mats(),
            mats(),
            mats()
        )
            .prop_map(move |(k, m, kk, n)| {
                let mut v = vec![
                    format!("a={m}x{kk}"),
                    format!("b={kk}x{n}"),
                    format!("c={m}x{n}"),
                ];
                if k.contains("bias") {
                    v.push(format!("bias.len={n}"));
                    v.push("scale=0.5".to_string());
                }
                (k.to_string(), set(v), vec![1])
            }),
        (pick(&[8usize, 16]), 1u32..=4, 1u32..=4, 1usize..=3).prop_map(move |(b, gi, gj, kb)| {
            let (m, n, k) = (b * gi as usize, b * gj as usize, b * kb);
            let v = vec![
                format!("a={m}x{k}"),
                format!("b={k}x{n}"),
                format!("c={m}x{n}"),
                format!("bm={b}"),
                format!("bn={b}"),
                format!("bk={b}"),
            ];
            ("gemm_blocked".to_string(), set(v), vec![gi, gj])
        }),
        (1u32..=16, 1usize..=4, pick(&[8usize, 16, 64])).prop_map(move |(p, r, c)| {
            let rows = r * p as usize;
            let v = vec![
                format!("x={rows}x{c}"),
                format!("y={rows}x{c}"),
                format!("rows={r}"),
            ];
            ("softmax_rows".to_string(), set(v), vec![p])
        }),
        (1u32..=16, 1usize..=1024).prop_map(move |(p, n)| (
            "probe_load".to_string(),
            set(vec![format!("x.len={n}"), format!("n={n}")]),
            vec![p],
        )),
        (1usize..=1024).prop_map(move |n| (
            "probe_send".to_string(),
            set(vec![format!("x.len={n}"), format!("n={n}")]),
            vec![2],
        )),
        (
            pick(&[
                "ring_allreduce_f32",
                "reduce_scatter_i32",
                "all_gather_f16",
                "broadcast_bf16"
            ]),
            pick(&[2u32, 4, 8, 16]),
            pick(&[16usize, 64, 256]),
            pick(&[16usize, 64])
        )
            .prop_map(move |(k, p, n, seg)| {
                let mut v = vec![
                    format!("buf.len={}", n * p as usize),
                    format!("n={n}"),
                    format!("seg={seg}"),
                ];
                v.push(
                    if k.starts_with("broadcast") {
                        "root=0"
                    } else {
                        "op=0"
                    }
                    .to_string(),
                );
                if k.starts_with("all_gather") {
                    v.pop();
                }
                (k.to_string(), set(v), vec![p])
            }),
        (1u32..=4, mats(), mats(), 0usize..=3).prop_map(move |(p, m, n, act)| {
            let (rows, k) = (m * p as usize, 16);
            let v = vec![
                format!("x={rows}x{k}"),
                format!("w={}x{n}", k * p as usize),
                format!("y={rows}x{n}"),
                format!("act={act}"),
            ];
            ("shard_linear".to_string(), set(v), vec![p])
        }),
    ]
    .boxed()
}

/// Flags `run` takes that fit any kernel launch.
fn run_extras() -> BoxedStrategy<Vec<String>> {
    (
        opt(
            "--map",
            s(&["ring", "torus2d", "tree", "hierarchical", "none"]),
        ),
        switch("--verify-data"),
        opt("--fabric", s(&["messages", "slots"])),
        switch("--json"),
        prop::option::weighted(
            0.3,
            (
                opt("--trace-pes", s(&["0.0.0", "0.0.0,0.1.2", "0.3.3"])),
                opt("--trace-window", s(&["0..5000", "100..200", "0..1"])),
            ),
        ),
    )
        .prop_map(|(map, verify, fabric, json, trace)| {
            let mut v = [map, verify, fabric, json].concat();
            if let Some((pes, window)) = trace {
                v.extend(["--trace".to_string(), "$TMP/trace.json".to_string()]);
                v.extend(pes);
                v.extend(window);
            }
            v
        })
        .boxed()
}

/// `run` of a kernel with arguments that fit it.
fn run_recipe() -> BoxedStrategy<Vec<String>> {
    (recipe(), run_extras())
        .prop_map(|((k, sets, grid), extras)| {
            let mut v = vec![
                "run".to_string(),
                k,
                "--topology".to_string(),
                "tiny".to_string(),
            ];
            v.extend(sets);
            if grid.len() == 1 {
                v.extend(["--pes".to_string(), grid[0].to_string()]);
            } else {
                let g: Vec<String> = grid.iter().map(u32::to_string).collect();
                v.extend(["--grid".to_string(), g.join(",")]);
            }
            v.extend(extras);
            v
        })
        .boxed()
}

/// `run` of a registry algorithm at a small size.
fn run_algorithm() -> BoxedStrategy<Vec<String>> {
    (
        algorithm(),
        s(&["64", "256", "1K", "4K", "16K", "100"]),
        (
            opt("-d", s(&["float", "half", "bfloat16", "int32"])),
            opt("-o", s(&["sum", "max", "min"])),
            opt("--seg", s(&["64", "1K", "4K", "16K"])),
            opt("-r", s(&["0", "1", "3"])),
            opt("--pes", s(&["2", "4", "8", "16"])),
        ),
        run_extras(),
    )
        .prop_map(|(name, size, (d, o, seg, r, pes), extras)| {
            let mut v = vec![
                "run".to_string(),
                name,
                "--topology".to_string(),
                "tiny".to_string(),
                "--size".to_string(),
                size,
            ];
            v.extend([d, o, seg, r, pes].concat());
            // Algorithms take their map from the registry.
            let mut skip = false;
            v.extend(extras.into_iter().filter(|x| {
                if skip {
                    skip = false;
                    return false;
                }
                if x == "--map" {
                    skip = true;
                    return false;
                }
                true
            }));
            v
        })
        .boxed()
}

/// `graph` of a kernel with arguments that fit it.
fn graph_recipe() -> BoxedStrategy<Vec<String>> {
    (recipe(), any::<u32>(), switch("--dot"))
        .prop_map(|((k, sets, grid), pid, dot)| {
            let g: Vec<String> = grid.iter().map(u32::to_string).collect();
            let p: Vec<String> = grid.iter().map(|n| (pid % n).to_string()).collect();
            [
                vec!["graph".to_string(), k],
                sets,
                vec![
                    "--grid".to_string(),
                    g.join(","),
                    "--pid".to_string(),
                    p.join(","),
                ],
                dot,
            ]
            .concat()
        })
        .boxed()
}

/// A sweep of algorithms that implement the collective, over a few small sizes.
fn sweep_recipe() -> BoxedStrategy<Vec<String>> {
    let all_reduce = vec![
        "ring_allreduce",
        "ring_allreduce_hbm",
        "mesh_allreduce",
        "tree_allreduce",
        "hierarchical_allreduce",
        "intercube_allreduce_ring",
        "recursive_doubling",
        "rabenseifner",
        "double_tree_allreduce",
    ];
    (
        prop_oneof![
            3 => prop::sample::subsequence(all_reduce, 1..=2)
                .prop_map(|a| ("all_reduce", a.join(","))),
            1 => prop::sample::subsequence(vec!["reduce_scatter", "hierarchical_reduce_scatter"], 1..=2)
                .prop_map(|a| ("reduce_scatter", a.join(","))),
            1 => prop::sample::subsequence(vec!["all_gather", "bruck_allgather", "hierarchical_allgather"], 1..=2)
                .prop_map(|a| ("all_gather", a.join(","))),
            1 => Just(("broadcast", "broadcast".to_string())),
        ],
        pick(&[4u64, 64, 256, 1024]),
        pick(&[1u64, 2, 4]),
        (
            opt("-f", s(&["2", "4"])),
            opt("-d", s(&["float", "half", "bfloat16", "int32"])),
            opt("-o", s(&["sum", "max", "min"])),
            opt("-r", s(&["0", "1", "3"])),
        ),
        (
            prop::bool::weighted(0.3),
            opt("--fabric", s(&["messages", "slots"])),
            prop::option::weighted(0.2, s(&["1/2", "2/2"])),
            opt("-j", s(&["1", "2"])),
        ),
    )
        .prop_map(
            |((coll, algos), b, span, (f, d, o, r), (no_check, fabric, shard, j))| {
                let mut v: Vec<String> = [
                    "sweep",
                    "--collective",
                    coll,
                    "--algos",
                    &algos,
                    "--topology",
                    "tiny",
                    "-b",
                    &b.to_string(),
                    "-e",
                    &(b * span).to_string(),
                    "--out",
                    "$TMP/sweep",
                    "-q",
                ]
                .iter()
                .map(|x| x.to_string())
                .collect();
                v.extend([f, d, o, r, fabric, j].concat());
                if no_check {
                    v.push("--no-check".to_string());
                }
                if let Some(k) = shard {
                    v.extend(["--shard".to_string(), k]);
                }
                v
            },
        )
        .boxed()
}

/// A probe of cases tiny has, at small sizes.
fn probe_recipe() -> BoxedStrategy<Vec<String>> {
    (
        prop::sample::subsequence(
            vec!["pe-hbm", "same-cube", "ucie", "cross-cube", "host"],
            1..=2,
        ),
        prop::sample::subsequence(vec!["64", "4K", "16K"], 1..=2),
        opt("--fabric", s(&["messages", "slots"])),
        switch("--json"),
    )
        .prop_map(|(cases, sizes, fabric, json)| {
            [
                vec![
                    "probe".to_string(),
                    "--topology".to_string(),
                    "tiny".to_string(),
                    "--case".to_string(),
                    cases.join(","),
                    "--sizes".to_string(),
                    sizes.join(","),
                ],
                fabric,
                json,
            ]
            .concat()
        })
        .boxed()
}

/// One change to a well-formed command line: an argument dropped, or a value replaced.
fn perturb(lines: BoxedStrategy<Vec<String>>) -> BoxedStrategy<Vec<String>> {
    (
        lines,
        any::<usize>(),
        prop_oneof![
            Just(None),
            s(&[
                "0",
                "-1",
                "x",
                "",
                "99999999999999999999",
                "0x0",
                "1e9",
                "n=1"
            ])
            .prop_map(Some)
        ],
    )
        .prop_map(|(mut v, at, with)| {
            // Never the subcommand itself, nor a path: every file a case
            // writes stays in its folder.
            let i = 1 + at % (v.len() - 1).max(1);
            if i < v.len() && !v[i].contains("$TMP") {
                match with {
                    None => {
                        v.remove(i);
                    }
                    Some(w) => {
                        // Keep the name of a `--set NAME=VALUE`.
                        v[i] = match v[i].split_once('=') {
                            Some((n, _)) if !w.contains('=') => format!("{n}={w}"),
                            _ => w,
                        };
                    }
                }
            }
            v
        })
        .boxed()
}

/// Command lines of every subcommand, and a few that are not commands at all.
pub fn case() -> impl Strategy<Value = CliCase> {
    let plain = |s: BoxedStrategy<Vec<String>>| {
        s.prop_map(|args| CliCase {
            args,
            parts: vec![],
        })
        .boxed()
    };
    prop_oneof![
        5 => plain(run_recipe()),
        3 => plain(run_algorithm()),
        3 => plain(perturb(
            prop_oneof![
                run_recipe(),
                run_algorithm(),
                graph_recipe(),
                sweep_recipe(),
                probe_recipe()
            ]
            .boxed()
        )),
        3 => plain(run_args_strategy()),
        2 => plain(graph_recipe()),
        1 => plain(graph_args()),
        1 => plain(probe_recipe()),
        1 => plain(probe_args()),
        2 => plain(sweep_recipe()),
        1 => plain(sweep_args()),
        1 => plain(topo_args()),
        2 => merge_case(),
        1 => plain(
            prop::collection::vec(
                s(&["run", "--help", "-V", "list", "--json", "frobnicate", "-", "--", ""]),
                0..3
            )
            .boxed()
        ),
    ]
}

/// The fixtures the cases refer to, made once.
pub struct Ctx {
    root: PathBuf,
    parts: [String; 2],
}

impl Ctx {
    /// Writes the fixtures into `root`: a copy of tiny and of the registry, a
    /// broken file, and the two part files of a real sharded sweep.
    pub fn new(root: &Path) -> Ctx {
        let fixtures = root.join("fixtures");
        std::fs::create_dir_all(&fixtures).unwrap();
        std::fs::write(
            fixtures.join("tiny-copy.yaml"),
            kernbench::core::topology::TINY_YAML,
        )
        .unwrap();
        std::fs::write(fixtures.join("ccl-copy.yaml"), super::yaml::CCL_YAML).unwrap();
        std::fs::write(fixtures.join("broken.yaml"), "sips: [\n  - {\n").unwrap();
        let out = fixtures.join("sharded");
        for shard in ["1/2", "2/2"] {
            let args = [
                "kernbench",
                "sweep",
                "--collective",
                "all_gather",
                "--topology",
                "tiny",
                "-b",
                "1K",
                "-e",
                "4K",
                "-q",
                "--out",
                out.to_str().unwrap(),
                "--shard",
                shard,
            ];
            run_args(args, &mut Vec::new()).expect("a small sharded sweep runs");
        }
        let read = |k: usize| {
            std::fs::read_to_string(out.join(format!("sweep.part-{k}-of-2.json"))).unwrap()
        };
        Ctx {
            root: root.to_path_buf(),
            parts: [read(1), read(2)],
        }
    }

    /// Runs one case in a fresh folder and checks its result.
    pub fn check(&self, c: &CliCase) -> Result<&'static str, String> {
        let tmp = self.root.join("case");
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(tmp.join("parts")).map_err(|e| e.to_string())?;
        for f in ["tiny-copy.yaml", "ccl-copy.yaml", "broken.yaml"] {
            std::fs::copy(self.root.join("fixtures").join(f), tmp.join(f))
                .map_err(|e| e.to_string())?;
        }
        for p in &c.parts {
            let text = edit_json(&self.parts[p.shard - 1], p.edit.as_ref());
            std::fs::write(tmp.join("parts").join(&p.name), text).map_err(|e| e.to_string())?;
        }
        let t = tmp.to_str().expect("a UTF-8 temp path");
        let args: Vec<String> = std::iter::once("kernbench".to_string())
            .chain(c.args.iter().map(|a| a.replace("$TMP", t)))
            .collect();
        let has = |f: &str| c.args.iter().any(|a| a == f);
        let mut out = Vec::new();
        let r = run_args(args.clone(), &mut out);
        let text = String::from_utf8(out).map_err(|_| "the output is not UTF-8".to_string())?;
        match r {
            Ok(()) => {
                let sub = c.args.first().map(String::as_str);
                let help = has("--help") || has("-V");
                if has("--json") && !help && matches!(sub, Some("run" | "probe" | "topo")) {
                    let dot_to_stdout = c.args.windows(2).any(|w| w[0] == "--dot" && w[1] == "-");
                    if !dot_to_stdout {
                        serde_json::from_str::<serde_json::Value>(&text)
                            .map_err(|e| format!("--json printed no JSON ({e}):\n{text}"))?;
                    }
                }
                if sub == Some("run") && has("--trace") {
                    let path = args
                        .windows(2)
                        .find(|w| w[0] == "--trace")
                        .map(|w| PathBuf::from(&w[1]))
                        .expect("--trace has a value");
                    let trace = std::fs::read_to_string(&path)
                        .map_err(|e| format!("--trace wrote no {}: {e}", path.display()))?;
                    serde_json::from_str::<serde_json::Value>(&trace)
                        .map_err(|e| format!("the trace is not JSON: {e}"))?;
                }
                if sub == Some("sweep") && !has("--shard") && !tmp.join("sweep/sweep.csv").exists()
                {
                    return Err("a sweep succeeded without writing sweep.csv".into());
                }
                Ok(match sub {
                    Some("run") => "run ok",
                    Some("graph") => "graph ok",
                    Some("probe") => "probe ok",
                    Some("sweep") => "sweep ok",
                    Some("topo") => "topo ok",
                    Some("merge") => "merge ok",
                    _ => "other ok",
                })
            }
            Err(Fail::Parse(e)) => {
                if e.render().to_string().trim().is_empty() {
                    return Err("a parse error with no message".into());
                }
                Ok("parse error")
            }
            Err(Fail::Usage(m)) => {
                if m.trim().is_empty() {
                    return Err("a usage error with no message".into());
                }
                Ok("usage error")
            }
            // The shipped collectives compute the right result on any size
            // they accept: a wrong element is a bug, unless a merge read a
            // part file edited to say so.
            Err(Fail::Check(m)) => {
                let edited = c.parts.iter().any(|p| p.edit.is_some());
                if c.args.first().map(String::as_str) == Some("merge") && edited {
                    Ok("merge check failed")
                } else {
                    Err(format!("wrong elements: {m}"))
                }
            }
            Err(Fail::Closed) => Err("the output (a Vec) was reported closed".into()),
        }
    }
}

fn json_nodes(v: &serde_json::Value, here: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(here.clone());
    match v {
        serde_json::Value::Object(m) => {
            for (k, c) in m {
                here.push(k.clone());
                json_nodes(c, here, out);
                here.pop();
            }
        }
        serde_json::Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                here.push(i.to_string());
                json_nodes(c, here, out);
                here.pop();
            }
        }
        _ => {}
    }
}

fn pointer(path: &[String]) -> String {
    path.iter().map(|p| format!("/{p}")).collect()
}

/// A part file's text after one edit.
pub fn edit_json(text: &str, edit: Option<&JsonEdit>) -> String {
    let Some(edit) = edit else {
        return text.to_string();
    };
    let mut v: serde_json::Value = serde_json::from_str(text).expect("a part file is JSON");
    let mut all = Vec::new();
    json_nodes(&v, &mut Vec::new(), &mut all);
    match edit {
        JsonEdit::Set { at, to } => {
            if let Some(n) = v.pointer_mut(&pointer(&all[at % all.len()])) {
                *n = to.clone();
            }
        }
        JsonEdit::Delete { at } => {
            let p = &all[at % all.len()];
            if let Some((last, parent)) = p.split_last() {
                match v.pointer_mut(&pointer(parent)) {
                    Some(serde_json::Value::Object(m)) => {
                        m.remove(last);
                    }
                    Some(serde_json::Value::Array(a)) => {
                        let i: usize = last.parse().expect("an index");
                        if i < a.len() {
                            a.remove(i);
                        }
                    }
                    _ => {}
                }
            }
        }
        JsonEdit::Truncate { at } => {
            let s = serde_json::to_string_pretty(&v).expect("JSON serialises");
            return s[..at % (s.len() + 1)].to_string();
        }
    }
    serde_json::to_string_pretty(&v).expect("JSON serialises")
}
