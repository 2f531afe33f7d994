//! A collective of one's own, registered from Rust: a rank-addressed kernel
//! family and a custom neighbour map get the nccl-tests table, the checks,
//! and the command line's `list`, `run` and `sweep`.

use kernbench::ccl::algorithms::common::combine;
use kernbench::ccl::registry::{
    Collective, EntryError, Extension, RegisterError, Registry, RegistryError, UnknownMap,
};
use kernbench::ccl::run::RunError;
use kernbench::ccl::{table, verify, RedOp, RunSpec};
use kernbench::core::neighbors::NeighborMap;
use kernbench::prelude::*;

/// Direct all-reduce: every rank sends its vector to every other rank, by
/// rank, and adds what arrives in rank order, so every rank computes the
/// same sum.
#[kernel]
pub fn direct_allreduce<T: Element>(
    buf: Ptr<T>,
    n: usize,
    #[constexpr] seg: usize,
    #[constexpr] op: RedOp,
) {
    let (w, r) = (tl::num_ranks(), tl::rank());
    for off in (0..n).step_by(seg) {
        let len = seg.min(n - off);
        let mine = tl::load(buf.offset(r * n + off), [len]);
        let mut got = Vec::new();
        for q in 0..w {
            if q != r {
                got.push((q, tl::recv_async::<T>(q, [len])));
            }
        }
        for q in 0..w {
            if q != r {
                tl::send(q, &mine);
            }
        }
        let mut acc: Option<Tile<T>> = None;
        let mut got = got.into_iter();
        for q in 0..w {
            let x = if q == r {
                mine
            } else {
                tl::wait(got.next().unwrap().1)
            };
            acc = Some(match acc {
                None => x,
                Some(a) => combine(&a, &x, op),
            });
        }
        tl::store(buf.offset(r * n + off), &acc.unwrap());
    }
}

/// A naive ring all-reduce on any ring map: every piece of every vector
/// travels the whole ring, east, and each rank adds what passes. Written
/// for f32 only.
#[kernel]
pub fn naive_ring_allreduce(
    buf: Ptr<f32>,
    n: usize,
    #[constexpr] seg: usize,
    #[constexpr] op: RedOp,
) {
    let (w, r) = (tl::num_ranks(), tl::rank());
    for off in (0..n).step_by(seg) {
        let len = seg.min(n - off);
        let mut acc = tl::load(buf.offset(r * n + off), [len]);
        let mut x = acc;
        for _ in 1..w {
            let f = tl::recv_async::<f32>(Dir::W, [len]);
            tl::send(Dir::E, &x);
            x = tl::wait(f);
            acc = combine(&acc, &x, op);
        }
        tl::store(buf.offset(r * n + off), &acc);
    }
}

/// The ring, backwards: rank `r`'s `E` neighbour is rank `r - 1`.
fn reverse_ring(_topo: &Topology, pes: &[PeId]) -> Result<NeighborMap, String> {
    let rev: Vec<PeId> = pes.iter().rev().copied().collect();
    NeighborMap::ring(&rev).map_err(|e| e.to_string())
}

/// What this program adds to every registry, the command line's included.
fn register(reg: &mut Registry) -> Result<(), RegistryError> {
    reg.register_kernel("direct_allreduce", Collective::AllReduce, &["ranks"])?;
    reg.register_map("reverse_ring", reverse_ring)?;
    reg.register_kernel(
        "naive_ring_allreduce",
        Collective::AllReduce,
        &["ring", "reverse_ring"],
    )?;
    reg.add_yaml(
        "defaults:\n  seg_bytes: 8192\nalgorithms:\n  direct_allreduce:\n    kernel: direct_allreduce\n    collective: all_reduce\n    topology: ranks\n  reverse_ring_allreduce:\n    kernel: naive_ring_allreduce\n    collective: all_reduce\n    topology: reverse_ring\n",
        "custom_collective.rs",
    )
}

kernbench::ccl::inventory::submit! {
    Extension { name: "custom_collective", register }
}

fn tiny() -> Topology {
    Topology::builtin("tiny").unwrap()
}

#[test]
fn registered_algorithms_are_in_the_builtin_registry() {
    let reg = Registry::builtin();
    let d = reg.get("direct_allreduce").unwrap();
    assert_eq!((d.map_name(), d.seg_bytes), ("ranks", 8192));
    let r = reg.get("reverse_ring_allreduce").unwrap();
    assert_eq!(r.map_name(), "reverse_ring");
    // The shipped ones are still there, and a registry file read from disk
    // may name the registered family and map too.
    assert!(reg.get("recursive_doubling").is_ok());
    let dir = std::env::temp_dir().join(format!("kernbench-custom-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("mine.yaml");
    std::fs::write(
        &file,
        "algorithms:\n  mine:\n    kernel: direct_allreduce\n    collective: all_reduce\n    topology: ranks\n    world: 5\n",
    )
    .unwrap();
    let loaded = Registry::load(&file).unwrap();
    assert_eq!(loaded.get("mine").unwrap().world, Some(5));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn custom_algorithms_get_the_table_and_both_checks() {
    let topo = tiny();
    let reg = Registry::builtin();
    for name in ["direct_allreduce", "reverse_ring_allreduce"] {
        let algo = reg.get(name).unwrap();
        for w in [1, 5, 16] {
            let pes: Vec<PeId> = topo.pes().take(w).collect();
            let how = table::Settings {
                dtype: DType::F32,
                op: RedOp::Sum,
                root: 0,
                data: true,
                fabric: Default::default(),
                ties: Default::default(),
            };
            let row = table::measure(&topo, algo, &pes, 64 * 1024, &how).unwrap();
            assert_eq!(row.wrong, 0, "{name} on {w}");
            assert!(row.time_us > 0.0 || w == 1, "{name} on {w}");
            let rep = verify::symbolic(&topo, algo, &pes, 300).unwrap();
            assert!(rep.is_ok(), "{name} on {w}:\n{rep}");
            let spec = RunSpec {
                data: true,
                op: RedOp::Max,
                ..RunSpec::timing(300, DType::F32, Default::default())
            };
            assert_eq!(verify::functional(&topo, algo, &pes, &spec).unwrap().0, 0);
        }
    }
    // The map decides where the messages go: the reversed ring sends each
    // piece to the previous rank, over other links than the forward ring.
    let mut fwd = reg.get("reverse_ring_allreduce").unwrap().clone();
    fwd.custom_map = None;
    fwd.topology = kernbench::ccl::MapKind::Ring;
    let pes: Vec<PeId> = topo.pes().take(6).collect();
    let spec = RunSpec {
        trace: true,
        ..RunSpec::timing(4096, DType::F32, Default::default())
    };
    let first_hop = |a: &kernbench::ccl::Algorithm| {
        let out = kernbench::ccl::run_on(&topo, a, &pes, &spec)
            .unwrap()
            .outcome;
        let m = out.messages.iter().find(|m| m.src == 0).unwrap();
        m.dst
    };
    assert_eq!(first_hop(&fwd), 1);
    assert_eq!(first_hop(reg.get("reverse_ring_allreduce").unwrap()), 5);
}

#[test]
fn the_command_line_lists_runs_and_sweeps_them() {
    let mut out = Vec::new();
    kernbench::cli::run_args(["kernbench", "list"], &mut out).unwrap();
    let list = String::from_utf8(out).unwrap();
    assert!(
        list.lines()
            .any(|l| l.contains("reverse_ring_allreduce") && l.contains("reverse_ring ")),
        "{list}"
    );
    assert!(list.contains("direct_allreduce_<type>"), "{list}");
    let mut out = Vec::new();
    kernbench::cli::run_args(
        [
            "kernbench",
            "run",
            "direct_allreduce",
            "--topology",
            "tiny",
            "--pes",
            "6",
            "--quiet",
        ],
        &mut out,
    )
    .unwrap();
    let run = String::from_utf8(out).unwrap();
    assert!(run.contains("direct_allreduce"), "{run}");
    let dir = std::env::temp_dir().join(format!("kernbench-custom-sweep-{}", std::process::id()));
    let mut out = Vec::new();
    kernbench::cli::run_args(
        [
            "kernbench",
            "sweep",
            "--collective",
            "all_reduce",
            "--algos",
            "direct_allreduce,recursive_doubling",
            "--topology",
            "tiny",
            "-b",
            "4K",
            "-e",
            "16K",
            "--out",
            dir.to_str().unwrap(),
            "--quiet",
        ],
        &mut out,
    )
    .unwrap();
    let csv = std::fs::read_to_string(dir.join("sweep.csv")).unwrap();
    let rows: Vec<&str> = csv
        .lines()
        .filter(|l| l.starts_with("direct_allreduce,") || l.starts_with("recursive_doubling,"))
        .collect();
    assert_eq!(rows.len(), 6, "{csv}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn registration_errors_are_clear() {
    let mut reg = Registry::builtin();
    let e = reg
        .register_map("ring", reverse_ring)
        .unwrap_err()
        .to_string();
    assert!(e.contains("`ring`") && e.contains("already taken"), "{e}");
    let e = reg
        .register_map("reverse_ring", reverse_ring)
        .unwrap_err()
        .to_string();
    assert!(e.contains("already taken"), "{e}");
    let e = reg
        .register_kernel("direct_allreduce", Collective::AllReduce, &["ranks"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("already known"), "{e}");
    let e = reg
        .register_kernel("other", Collective::AllGather, &["hypercube"])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unknown topology `hypercube`") && e.contains("reverse_ring"),
        "{e}"
    );
    let e = reg.allow_map("nope", "ring").unwrap_err().to_string();
    assert!(e.contains("no kernel family `nope`"), "{e}");
    // Each as a variant with its names.
    let register = |r: Result<(), RegistryError>| match r {
        Err(RegistryError::Register(e)) => e,
        other => panic!("not a registration error: {other:?}"),
    };
    assert_eq!(
        register(reg.register_map("ring", reverse_ring)),
        RegisterError::MapTaken {
            name: "ring".into()
        }
    );
    assert_eq!(
        register(reg.register_kernel("direct_allreduce", Collective::AllReduce, &["ranks"])),
        RegisterError::FamilyKnown {
            family: "direct_allreduce".into()
        }
    );
    assert_eq!(
        register(reg.register_kernel("", Collective::AllReduce, &["ring"])),
        RegisterError::FamilyEmpty { family: "".into() }
    );
    assert!(matches!(
        register(reg.register_kernel("other", Collective::AllGather, &["hypercube"])),
        RegisterError::UnknownMap(UnknownMap { name, known })
            if name == "hypercube" && known.iter().any(|k| k == "reverse_ring")
    ));
    assert_eq!(
        register(reg.allow_map("nope", "ring")),
        RegisterError::NoFamily {
            family: "nope".into()
        }
    );
    // An entry that repeats a name, or names an unknown map, points at its line.
    let e = reg
        .add_yaml(
            "algorithms:\n  direct_allreduce:\n    kernel: direct_allreduce\n    collective: all_reduce\n    topology: ranks\n",
            "again.yaml",
        )
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("again.yaml: line 3:") && e.contains("already registered"),
        "{e}"
    );
    let e = reg
        .add_yaml(
            "algorithms:\n  x:\n    kernel: direct_allreduce\n    collective: all_gather\n    topology: ranks\n",
            "coll.yaml",
        )
        .unwrap_err();
    assert!(
        matches!(
            &e,
            RegistryError::Entry {
                line: 4,
                field: "collective",
                err,
                ..
            } if matches!(
                **err,
                EntryError::WrongCollective {
                    implements: Collective::AllReduce,
                    asked: Collective::AllGather,
                    ..
                }
            )
        ),
        "{e:?}"
    );
    let e = reg
        .add_yaml(
            "algorithms:\n  x:\n    kernel: direct_allreduce\n    collective: all_reduce\n    topology: hyper\n",
            "map.yaml",
        )
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("map.yaml: line 5:") && e.contains("unknown topology `hyper`"),
        "{e}"
    );
    // A map that cannot be built is an error of the run that names it.
    reg.register_map("broken", |_, pes| {
        Err(format!("cannot cover {} PEs", pes.len()))
    })
    .unwrap();
    reg.allow_map("naive_ring_allreduce", "broken").unwrap();
    reg.add_yaml(
        "algorithms:\n  b:\n    kernel: naive_ring_allreduce\n    collective: all_reduce\n    topology: broken\n",
        "b.yaml",
    )
    .unwrap();
    let topo = tiny();
    let pes: Vec<PeId> = topo.pes().take(3).collect();
    let spec = RunSpec::timing(64, DType::F32, Default::default());
    let Err(e @ RunError::CustomMap { .. }) =
        kernbench::ccl::run_on(&topo, reg.get("b").unwrap(), &pes, &spec)
    else {
        panic!("a map that cannot be built must fail the run")
    };
    let e = e.to_string();
    assert!(
        e.contains("algorithm `b`: neighbour map `broken`: cannot cover 3 PEs"),
        "{e}"
    );
    // A kernel written for one element type, run in another.
    let spec = RunSpec::timing(64, DType::F16, Default::default());
    let reg = Registry::builtin();
    let Err(e) = kernbench::ccl::run_on(
        &topo,
        reg.get("reverse_ring_allreduce").unwrap(),
        &pes,
        &spec,
    ) else {
        panic!("the kernel takes f32 only")
    };
    assert!(
        e.to_string()
            .contains("kernel `naive_ring_allreduce` (tests/custom_collective.rs:"),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("takes `buf: Ptr<f32>`, so it runs f32 only, not f16"),
        "{e}"
    );
    // The generic one runs every element type.
    for d in [DType::F16, DType::Bf16, DType::I32] {
        let spec = RunSpec::timing(64, d, Default::default());
        kernbench::ccl::run_on(&topo, reg.get("direct_allreduce").unwrap(), &pes, &spec).unwrap();
    }
}
