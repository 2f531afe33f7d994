//! The double binary tree all-reduce, addressed by rank: every world size on
//! `tiny` (even worlds mirror the second tree, odd ones shift it), element
//! types and operators, `default` with and without a power of two, checked
//! numerically through the timing model and symbolically.

use kernbench_ccl::{run_on, verify, Collective, RedOp, Registry, RunSpec};
use kernbench_core::topology::Topology;
use kernbench_core::{DType, PeId};

mod common;

const NAME: &str = "double_tree_allreduce";

fn spec(count: usize, dtype: DType, op: RedOp) -> RunSpec {
    common::data_spec(count, dtype, op, 0)
}

fn check(topo: &Topology, pes: &[PeId], s: &RunSpec) {
    common::check_data(NAME, topo, pes, s, pes.len() * s.count);
}

fn symbolic(topo: &Topology, pes: &[PeId], count: usize) {
    let reg = Registry::builtin();
    let rep = verify::symbolic(topo, reg.get(NAME).unwrap(), pes, count).unwrap();
    assert!(rep.is_ok(), "{} PEs, count {count}:\n{rep}", pes.len());
    assert_eq!(rep.checked, pes.len() * count);
}

#[test]
fn it_is_a_rank_addressed_registry_entry() {
    common::assert_rank_entry(NAME, Collective::AllReduce);
}

#[test]
fn every_world_size_on_tiny() {
    let topo = Topology::builtin("tiny").unwrap();
    let all: Vec<PeId> = topo.pes().collect();
    for w in 1..=all.len() {
        // One element (an empty half), uneven halves, and more pieces per
        // half than the broadcast's lag (16 KiB pieces).
        for count in [1, 37, 100_001] {
            check(&topo, &all[..w], &spec(count, DType::F32, RedOp::Sum));
        }
        symbolic(&topo, &all[..w], 37);
    }
}

#[test]
fn every_dtype_and_operator() {
    let topo = Topology::builtin("tiny").unwrap();
    let all: Vec<PeId> = topo.pes().collect();
    for w in [7, 16] {
        for dtype in [DType::F32, DType::F16, DType::Bf16, DType::I32] {
            for op in [RedOp::Sum, RedOp::Max, RedOp::Min] {
                check(&topo, &all[..w], &spec(333, dtype, op));
            }
        }
    }
}

#[test]
fn default_with_and_without_a_power_of_two() {
    let topo = Topology::embedded_default();
    let all: Vec<PeId> = topo.pes().collect();
    for w in [all.len(), 201] {
        check(&topo, &all[..w], &spec(4096, DType::F32, RedOp::Sum));
        symbolic(&topo, &all[..w], 100);
    }
}

/// Two trees each carrying half the vector beat one tree carrying all of
/// it once the vector spans many pieces.
#[test]
fn it_beats_the_single_tree_on_large_vectors() {
    let topo = Topology::builtin("tiny").unwrap();
    let all: Vec<PeId> = topo.pes().collect();
    let reg = Registry::builtin();
    let time = |name: &str, count: usize| {
        let s = RunSpec::timing(count, DType::F32, Default::default());
        let r = run_on(&topo, reg.get(name).unwrap(), &all, &s).unwrap();
        r.outcome.report.sim_ns()
    };
    let (two, one) = (time(NAME, 1 << 18), time("tree_allreduce", 1 << 18));
    assert!(two < one, "double tree {two} ns, tree {one} ns");
}

/// The model column: the first piece's climb to the root and back, then the
/// others at the pace of the busiest link or HBM slice. It stays within a
/// factor of two of the simulation here.
#[test]
fn the_model_column_follows_the_simulation() {
    common::assert_model_within_2x(
        &[NAME],
        &[
            ("tiny", 16, 4096),
            ("tiny", 11, 1 << 20),
            ("default", 256, 65536),
            ("default", 256, 1 << 20),
        ],
    );
}
