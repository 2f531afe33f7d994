//! Every algorithm, checked element by element on small machines and odd world sizes.

use kernbench_ccl::{run_on, RedOp, Registry, RunSpec};
use kernbench_core::topology::Topology;
use kernbench_core::{DType, PeId};

fn spec(count: usize, dtype: DType, op: RedOp) -> RunSpec {
    RunSpec {
        count,
        dtype,
        op,
        root: 0,
        data: true,
        trace: false,
    }
}

fn check(algo: &str, topo: &Topology, pes: &[PeId], s: &RunSpec) {
    let reg = Registry::builtin();
    let a = reg.get(algo).unwrap();
    let r = run_on(topo, a, pes, s).unwrap_or_else(|e| panic!("{algo} on {} PEs: {e}", pes.len()));
    assert!(r.checked > 0);
    assert_eq!(
        r.wrong,
        0,
        "{algo} on {} PEs, count {}, {:?}: {} of {} wrong",
        pes.len(),
        s.count,
        s.dtype,
        r.wrong,
        r.checked
    );
}

#[test]
fn ring_family_on_tiny_and_odd_world_sizes() {
    let topo = Topology::builtin("tiny").unwrap();
    let all: Vec<PeId> = topo.pes().collect();
    for w in [1, 2, 3, 5, 7, 12, all.len()] {
        for algo in [
            "ring_allreduce",
            "reduce_scatter",
            "all_gather",
            "broadcast",
            "tree_allreduce",
        ] {
            for count in [1, 37, 1000] {
                check(algo, &topo, &all[..w], &spec(count, DType::F32, RedOp::Sum));
            }
        }
    }
}

#[test]
fn every_dtype_and_operator() {
    let topo = Topology::builtin("tiny").unwrap();
    let all: Vec<PeId> = topo.pes().collect();
    for dtype in [DType::F32, DType::F16, DType::Bf16, DType::I32] {
        for op in [RedOp::Sum, RedOp::Max, RedOp::Min] {
            check("ring_allreduce", &topo, &all[..5], &spec(333, dtype, op));
            check("tree_allreduce", &topo, &all[..6], &spec(333, dtype, op));
        }
    }
}

#[test]
fn mesh_and_hierarchical_on_tiny() {
    let topo = Topology::builtin("tiny").unwrap();
    let all: Vec<PeId> = topo.pes().collect();
    for count in [5, 999, 4096] {
        check(
            "mesh_allreduce",
            &topo,
            &all,
            &spec(count, DType::F32, RedOp::Sum),
        );
        check(
            "mesh_allreduce",
            &topo,
            &all[..6],
            &spec(count, DType::F32, RedOp::Sum),
        );
        check(
            "hierarchical_allreduce",
            &topo,
            &all,
            &spec(count, DType::F32, RedOp::Sum),
        );
    }
}

#[test]
fn ring_buffers_in_hbm_and_sram_work_too() {
    let topo = Topology::builtin("tiny").unwrap();
    let all: Vec<PeId> = topo.pes().collect();
    for algo in ["ring_allreduce_hbm", "ring_allreduce_sram"] {
        check(algo, &topo, &all, &spec(10_000, DType::F32, RedOp::Sum));
    }
}
