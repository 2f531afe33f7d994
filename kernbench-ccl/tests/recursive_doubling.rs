//! The rank-addressed recursive-doubling all-reduce: every world size (the
//! ranks past a power of two folded in), every element type and operator,
//! checked numerically through the timing model and symbolically.

use kernbench_ccl::{verify, Collective, RedOp, Registry, RunSpec};
use kernbench_core::topology::Topology;
use kernbench_core::{DType, PeId};

mod common;

fn spec(count: usize, dtype: DType, op: RedOp) -> RunSpec {
    common::data_spec(count, dtype, op, 0)
}

fn check(topo: &Topology, pes: &[PeId], s: &RunSpec) {
    common::check_data("recursive_doubling", topo, pes, s, pes.len() * s.count);
}

#[test]
fn it_is_a_rank_addressed_registry_entry() {
    common::assert_rank_entry("recursive_doubling", Collective::AllReduce);
    let reg = Registry::builtin();
    assert_eq!(reg.get("recursive_doubling").unwrap().map_name(), "ranks");
}

#[test]
fn every_world_size_on_tiny() {
    let topo = Topology::builtin("tiny").unwrap();
    let all: Vec<PeId> = topo.pes().collect();
    let reg = Registry::builtin();
    let algo = reg.get("recursive_doubling").unwrap();
    for w in 1..=all.len() {
        for count in [1, 37, 1000] {
            check(&topo, &all[..w], &spec(count, DType::F32, RedOp::Sum));
            let rep = verify::symbolic(&topo, algo, &all[..w], count).unwrap();
            assert!(rep.is_ok(), "{w} PEs, count {count}:\n{rep}");
            assert_eq!(rep.checked, w * count);
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
                check(&topo, &all[..w], &spec(333, dtype, op));
            }
        }
    }
}

#[test]
fn default_with_and_without_a_power_of_two() {
    let topo = Topology::embedded_default();
    let all: Vec<PeId> = topo.pes().collect();
    let reg = Registry::builtin();
    let algo = reg.get("recursive_doubling").unwrap();
    for w in [all.len(), 200] {
        check(&topo, &all[..w], &spec(4096, DType::F32, RedOp::Sum));
        let rep = verify::symbolic(&topo, algo, &all[..w], 100).unwrap();
        assert!(rep.is_ok(), "{w} PEs:\n{rep}");
    }
}

#[test]
fn the_model_column_has_a_value() {
    let topo = Topology::builtin("tiny").unwrap();
    let reg = Registry::builtin();
    let algo = reg.get("recursive_doubling").unwrap();
    let all: Vec<PeId> = topo.pes().collect();
    let t16 = kernbench_ccl::cost::model_ns(&topo, algo, &all, 65536.0);
    let t12 = kernbench_ccl::cost::model_ns(&topo, algo, &all[..12], 65536.0);
    assert!(t16.is_finite() && t16 > 0.0, "{t16}");
    assert!(t12 > 0.0, "the fold-in of 12 ranks costs time: {t12}");
}
