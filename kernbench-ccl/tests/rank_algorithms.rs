//! The rank-addressed Rabenseifner all-reduce and Bruck all-gather and
//! reduce-scatter: every
//! world size (powers of two or not), element types and operators, checked
//! numerically through the timing model and symbolically.

use kernbench_ccl::{run_on, verify, Collective, RedOp, Registry, RunSpec};
use kernbench_core::topology::Topology;
use kernbench_core::{DType, PeId};

mod common;

const ALGOS: [&str; 3] = ["rabenseifner", "bruck_allgather", "bruck_reducescatter"];

/// Elements a run checks: a reduce-scatter promises each rank its chunk.
fn promised(name: &str, w: usize, count: usize) -> usize {
    if name == "bruck_reducescatter" {
        count
    } else {
        w * count
    }
}

fn spec(count: usize, dtype: DType, op: RedOp) -> RunSpec {
    common::data_spec(count, dtype, op, 0)
}

fn check(name: &str, topo: &Topology, pes: &[PeId], s: &RunSpec) {
    common::check_data(name, topo, pes, s, promised(name, pes.len(), s.count));
}

fn symbolic(name: &str, topo: &Topology, pes: &[PeId], count: usize) {
    let reg = Registry::builtin();
    let rep = verify::symbolic(topo, reg.get(name).unwrap(), pes, count).unwrap();
    assert!(
        rep.is_ok(),
        "{name} on {} PEs, count {count}:\n{rep}",
        pes.len()
    );
    assert_eq!(rep.checked, promised(name, pes.len(), count));
}

#[test]
fn they_are_rank_addressed_registry_entries() {
    let want = [
        ("rabenseifner", Collective::AllReduce),
        ("bruck_allgather", Collective::AllGather),
        ("bruck_reducescatter", Collective::ReduceScatter),
    ];
    for (name, coll) in want {
        common::assert_rank_entry(name, coll);
    }
}

#[test]
fn every_world_size_on_tiny() {
    let topo = Topology::builtin("tiny").unwrap();
    let all: Vec<PeId> = topo.pes().collect();
    for name in ALGOS {
        for w in 1..=all.len() {
            // Fewer elements than ranks (empty chunks), uneven chunks, and
            // more than one piece per chunk (16 KiB pieces).
            for count in [3, 37, 20_000] {
                check(name, &topo, &all[..w], &spec(count, DType::F32, RedOp::Sum));
            }
            symbolic(name, &topo, &all[..w], 37);
        }
    }
}

#[test]
fn every_dtype_and_operator() {
    let topo = Topology::builtin("tiny").unwrap();
    let all: Vec<PeId> = topo.pes().collect();
    for w in [6, 16] {
        for dtype in [DType::F32, DType::F16, DType::Bf16, DType::I32] {
            for op in [RedOp::Sum, RedOp::Max, RedOp::Min] {
                check("rabenseifner", &topo, &all[..w], &spec(333, dtype, op));
                check(
                    "bruck_reducescatter",
                    &topo,
                    &all[..w],
                    &spec(333, dtype, op),
                );
            }
            check(
                "bruck_allgather",
                &topo,
                &all[..w],
                &spec(333, dtype, RedOp::Sum),
            );
        }
    }
}

#[test]
fn default_with_and_without_a_power_of_two() {
    let topo = Topology::embedded_default();
    let all: Vec<PeId> = topo.pes().collect();
    for name in ALGOS {
        for w in [all.len(), 200] {
            check(name, &topo, &all[..w], &spec(4096, DType::F32, RedOp::Sum));
            symbolic(name, &topo, &all[..w], 100);
        }
    }
}

/// The point of both: fewer steps or fewer bytes than the algorithm they improve on.
#[test]
fn they_beat_what_they_improve_on_where_they_should() {
    let topo = Topology::builtin("tiny").unwrap();
    let all: Vec<PeId> = topo.pes().collect();
    let reg = Registry::builtin();
    let time = |name: &str, pes: &[PeId], count: usize| {
        let s = RunSpec::timing(count, DType::F32, Default::default());
        let r = run_on(&topo, reg.get(name).unwrap(), pes, &s).unwrap();
        r.outcome.report.sim_ns()
    };
    // Large vectors: Rabenseifner sends 2 (p-1)/p of the vector per rank,
    // recursive doubling log2 p whole vectors.
    for w in [all.len(), 12] {
        let (rab, rd) = (
            time("rabenseifner", &all[..w], 1 << 18),
            time("recursive_doubling", &all[..w], 1 << 18),
        );
        assert!(
            rab < rd,
            "{w} PEs: rabenseifner {rab} ns, recursive doubling {rd} ns"
        );
    }
    // Small vectors: Bruck takes ceil(log2 w) steps, the ring w - 1.
    let (bruck, ring) = (
        time("bruck_allgather", &all, 16),
        time("all_gather", &all, 16),
    );
    assert!(bruck < ring, "bruck {bruck} ns, ring {ring} ns");
    let (bruck, ring) = (
        time("bruck_reducescatter", &all, 16),
        time("reduce_scatter", &all, 16),
    );
    assert!(
        bruck < ring,
        "bruck reduce-scatter {bruck} ns, ring {ring} ns"
    );
}

/// The model column: per step, the slowest message with the bytes of the
/// step that share its busiest link, or the rank's HBM traffic. It stays
/// within a factor of two of the simulation here (the far steps of Bruck on
/// `default` cross the SIP switch together, which it must account for).
#[test]
fn the_model_column_follows_the_simulation() {
    common::assert_model_within_2x(
        &ALGOS,
        &[
            ("tiny", 16, 65536),
            ("tiny", 12, 1 << 20),
            ("default", 256, 65536),
        ],
    );
}
