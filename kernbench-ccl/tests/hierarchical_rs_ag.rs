//! Hierarchical reduce-scatter and all-gather, addressed by rank: every
//! world size on `tiny` (whole cubes and a smaller last group at each
//! level), element
//! types and operators, `default` whole and cut short, checked numerically
//! through the timing model and symbolically.

use kernbench_ccl::{run_on, verify, Collective, RedOp, Registry, RunSpec};
use kernbench_core::topology::Topology;
use kernbench_core::{DType, PeId};

mod common;

const RS: &str = "hierarchical_reduce_scatter";
const AG: &str = "hierarchical_allgather";

fn spec(count: usize, dtype: DType, op: RedOp) -> RunSpec {
    common::data_spec(count, dtype, op, 0)
}

/// A reduce-scatter promises each rank its chunk; an all-gather every element.
fn promised(name: &str, w: usize, count: usize) -> usize {
    if name == RS {
        count
    } else {
        w * count
    }
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
    common::assert_rank_entry(RS, Collective::ReduceScatter);
    common::assert_rank_entry(AG, Collective::AllGather);
}

#[test]
fn every_world_size_on_tiny() {
    let topo = Topology::builtin("tiny").unwrap();
    let all: Vec<PeId> = topo.pes().collect();
    for name in [RS, AG] {
        for w in 1..=all.len() {
            // Fewer elements than ranks (empty chunks), uneven chunks, and
            // chunks of more than one piece (16 KiB pieces).
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
    for w in [7, 16] {
        for dtype in [DType::F32, DType::F16, DType::Bf16, DType::I32] {
            for op in [RedOp::Sum, RedOp::Max, RedOp::Min] {
                check(RS, &topo, &all[..w], &spec(333, dtype, op));
            }
            check(AG, &topo, &all[..w], &spec(333, dtype, RedOp::Sum));
        }
    }
}

fn on_default_whole_and_cut_short(name: &str) {
    let topo = Topology::embedded_default();
    let all: Vec<PeId> = topo.pes().collect();
    for w in [all.len(), 203] {
        check(name, &topo, &all[..w], &spec(4096, DType::F32, RedOp::Sum));
        symbolic(name, &topo, &all[..w], 100);
    }
}

#[test]
fn reduce_scatter_on_default_whole_and_cut_short() {
    on_default_whole_and_cut_short(RS);
}

#[test]
fn all_gather_on_default_whole_and_cut_short() {
    on_default_whole_and_cut_short(AG);
}

/// The point of both at small sizes: on `default` the flat ring takes 255
/// steps, the hierarchy 7 inside cubes, 15 across the cubes of a SIP and 1
/// across SIPs. (At 64 KiB the hierarchy is still about twice as fast; at
/// 1 MiB the two are within 6% of each other, both bound by the links
/// between cubes; on the 64 PEs of one SIP's first 8 cubes the flat ring's
/// 63 short hops cost about as much as the hierarchy's 14 steps.)
#[test]
fn they_beat_the_flat_ring_at_4_kib_on_default() {
    let topo = Topology::embedded_default();
    let pes: Vec<PeId> = topo.pes().collect();
    let reg = Registry::builtin();
    let time = |name: &str| {
        let s = RunSpec::timing(1024, DType::F32, Default::default());
        let r = run_on(&topo, reg.get(name).unwrap(), &pes, &s).unwrap();
        r.outcome.report.sim_ns()
    };
    for (hier, flat) in [(RS, "reduce_scatter"), (AG, "all_gather")] {
        let (h, f) = (time(hier), time(flat));
        assert!(h < 0.6 * f, "4 KiB: {hier} {h} ns, {flat} {f} ns");
    }
}

/// The model column adds up the ring steps inside and across groups, each
/// as long as its slowest message (with the bytes that share its busiest
/// link) or its HBM traffic; it stays within a factor of two of the
/// simulation here.
#[test]
fn the_model_column_follows_the_simulation() {
    common::assert_model_within_2x(
        &[RS, AG],
        &[
            ("tiny", 16, 65536),
            ("tiny", 11, 1 << 20),
            ("default", 256, 65536),
        ],
    );
}

/// Four SIPs of `tiny`: rings inside cubes, across the cubes of a SIP and
/// across SIPs, with smaller last groups at either level.
#[test]
fn three_levels_on_four_sips() {
    let yaml = kernbench_core::topology::TINY_YAML.replace("sips: 1", "sips: 4");
    let topo = Topology::from_yaml(&yaml, "quad.yaml").unwrap();
    let all: Vec<PeId> = topo.pes().collect();
    assert_eq!(all.len(), 64);
    for name in [RS, AG] {
        for w in [64, 50, 37, 19] {
            check(name, &topo, &all[..w], &spec(1000, DType::F32, RedOp::Sum));
            symbolic(name, &topo, &all[..w], 70);
        }
    }
}
