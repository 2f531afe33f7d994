//! Pairwise-exchange all-to-all, addressed by rank: every world size on
//! `tiny`, counts that do and do not divide into blocks, every element type,
//! checked numerically through the timing model and symbolically.

use kernbench_ccl::{run_on, verify, Collective, Registry, RunSpec};
use kernbench_core::topology::Topology;
use kernbench_core::{DType, PeId};

mod common;

const NAME: &str = "pairwise_alltoall";

fn spec(count: usize, dtype: DType) -> RunSpec {
    common::data_spec(count, dtype, kernbench_ccl::RedOp::Sum, 0)
}

fn check(topo: &Topology, pes: &[PeId], s: &RunSpec) {
    // Every element of every rank is promised: a block moved, or the tail kept.
    common::check_data(NAME, topo, pes, s, s.count * pes.len());
}

#[test]
fn it_is_a_rank_addressed_all_to_all() {
    let reg = Registry::builtin();
    common::assert_rank_entry(NAME, Collective::AllToAll);
    let algo = reg.get(NAME).unwrap();
    let c = Collective::AllToAll;
    assert!(!c.reduces() && !c.has_root());
    assert_eq!(c.name(), "all_to_all");
    assert_eq!(c.busbw_factor(4), 0.75);
    // Fewer elements than ranks leaves no block to send: refused, not run.
    let topo = Topology::builtin("tiny").unwrap();
    let pes: Vec<PeId> = topo.pes().take(5).collect();
    let Err(e) = run_on(&topo, algo, &pes, &spec(4, DType::F32)) else {
        panic!("4 elements over 5 ranks ran");
    };
    let e = e.to_string();
    assert!(e.contains("count must be at least the world size"), "{e}");
}

#[test]
fn block_sources() {
    use kernbench_ccl::run::all_to_all_source;
    // 3 ranks, 7 elements: blocks of 2, element 6 is the tail.
    assert_eq!(all_to_all_source(7, 3, 0, 0), (0, 0));
    assert_eq!(all_to_all_source(7, 3, 0, 3), (1, 1));
    assert_eq!(all_to_all_source(7, 3, 2, 1), (0, 5));
    assert_eq!(all_to_all_source(7, 3, 1, 5), (2, 3));
    assert_eq!(all_to_all_source(7, 3, 1, 6), (1, 6));
}

#[test]
fn every_world_size_on_tiny() {
    let topo = Topology::builtin("tiny").unwrap();
    let all: Vec<PeId> = topo.pes().collect();
    let reg = Registry::builtin();
    for w in 1..=all.len() {
        for count in [w, 37.max(w), 20_000] {
            check(&topo, &all[..w], &spec(count, DType::F32));
        }
        let rep = verify::symbolic(&topo, reg.get(NAME).unwrap(), &all[..w], 37).unwrap();
        assert!(rep.is_ok(), "{NAME} on {w} PEs:\n{rep}");
        assert_eq!(rep.checked, 37 * w);
    }
}

#[test]
fn every_dtype() {
    let topo = Topology::builtin("tiny").unwrap();
    let all: Vec<PeId> = topo.pes().collect();
    for dtype in [DType::F32, DType::F16, DType::Bf16, DType::I32] {
        check(&topo, &all[..11], &spec(333, dtype));
        check(&topo, &all[..8], &spec(333, dtype));
    }
}

#[test]
fn default_with_and_without_a_power_of_two() {
    let topo = Topology::embedded_default();
    let all: Vec<PeId> = topo.pes().collect();
    let reg = Registry::builtin();
    for w in [all.len(), 200] {
        check(&topo, &all[..w], &spec(512, DType::F32));
        let rep = verify::symbolic(&topo, reg.get(NAME).unwrap(), &all[..w], w + 3).unwrap();
        assert!(rep.is_ok(), "{NAME} on {w} PEs:\n{rep}");
    }
}

/// The model column adds up the rounds; it stays within a factor of two of
/// the simulation.
#[test]
fn the_model_column_follows_the_simulation() {
    common::assert_model_within_2x(
        &[NAME],
        &[
            ("tiny", 16, 65536),
            ("tiny", 11, 1 << 20),
            ("default", 256, 65536),
        ],
    );
}
