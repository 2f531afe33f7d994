//! Reduce and gather to a root over binomial trees, addressed by rank: every
//! world size and several roots, element types and operators, checked
//! numerically through the timing model and symbolically.

use kernbench_ccl::{run_on, verify, Collective, RedOp, Registry, RunSpec};
use kernbench_core::topology::Topology;
use kernbench_core::{DType, PeId};

mod common;

const ALGOS: [&str; 2] = ["binomial_reduce", "binomial_gather"];

fn spec(count: usize, dtype: DType, op: RedOp, root: usize) -> RunSpec {
    common::data_spec(count, dtype, op, root)
}

fn check(name: &str, topo: &Topology, pes: &[PeId], s: &RunSpec) {
    // Only the root's vector is promised.
    common::check_data(name, topo, pes, s, s.count);
}

#[test]
fn they_are_rooted_rank_addressed_registry_entries() {
    let reg = Registry::builtin();
    for (name, coll) in [
        ("binomial_reduce", Collective::Reduce),
        ("binomial_gather", Collective::Gather),
    ] {
        common::assert_rank_entry(name, coll);
        let algo = reg.get(name).unwrap();
        assert!(coll.has_root());
        // A root that is not a rank is refused before anything runs.
        let topo = Topology::builtin("tiny").unwrap();
        let pes: Vec<PeId> = topo.pes().take(5).collect();
        let Err(e) = run_on(&topo, algo, &pes, &spec(8, DType::F32, RedOp::Sum, 5)) else {
            panic!("{name}: root 5 of 5 ranks ran");
        };
        let e = e.to_string();
        assert!(e.contains("root 5 is not a rank"), "{e}");
    }
    assert!(Collective::Reduce.reduces() && !Collective::Gather.reduces());
}

#[test]
fn every_world_size_and_root_on_tiny() {
    let topo = Topology::builtin("tiny").unwrap();
    let all: Vec<PeId> = topo.pes().collect();
    let reg = Registry::builtin();
    for name in ALGOS {
        for w in 1..=all.len() {
            let mut roots = vec![0, w / 2, w - 1];
            roots.dedup();
            for root in roots {
                for count in [3, 37, 20_000] {
                    check(
                        name,
                        &topo,
                        &all[..w],
                        &spec(count, DType::F32, RedOp::Sum, root),
                    );
                }
            }
            let rep = verify::symbolic(&topo, reg.get(name).unwrap(), &all[..w], 37).unwrap();
            assert!(rep.is_ok(), "{name} on {w} PEs:\n{rep}");
            assert_eq!(rep.checked, 37);
        }
    }
}

#[test]
fn every_dtype_and_operator() {
    let topo = Topology::builtin("tiny").unwrap();
    let all: Vec<PeId> = topo.pes().collect();
    for dtype in [DType::F32, DType::F16, DType::Bf16, DType::I32] {
        for op in [RedOp::Sum, RedOp::Max, RedOp::Min] {
            check(
                "binomial_reduce",
                &topo,
                &all[..11],
                &spec(333, dtype, op, 3),
            );
        }
        check(
            "binomial_gather",
            &topo,
            &all[..11],
            &spec(333, dtype, RedOp::Sum, 3),
        );
    }
}

#[test]
fn default_with_and_without_a_power_of_two() {
    let topo = Topology::embedded_default();
    let all: Vec<PeId> = topo.pes().collect();
    let reg = Registry::builtin();
    for name in ALGOS {
        for w in [all.len(), 200] {
            check(
                name,
                &topo,
                &all[..w],
                &spec(4096, DType::F32, RedOp::Sum, 131),
            );
            let rep = verify::symbolic(&topo, reg.get(name).unwrap(), &all[..w], 100).unwrap();
            assert!(rep.is_ok(), "{name} on {w} PEs:\n{rep}");
        }
    }
}

/// The model column adds up the tree's steps; it stays within a factor of
/// two of the simulation.
#[test]
fn the_model_column_follows_the_simulation() {
    common::assert_model_within_2x(
        &ALGOS,
        &[
            ("tiny", 16, 65536),
            ("tiny", 11, 1 << 20),
            ("default", 256, 65536),
        ],
    );
}
