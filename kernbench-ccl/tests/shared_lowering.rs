//! Lowering once per graph shape against lowering every rank on its own:
//! every registry algorithm gives every rank the same program, channels,
//! routes and HBM splits either way.

use kernbench_ccl::{run::bound_programs, run::lowered_alone, Registry, RunSpec};
use kernbench_core::sim::FabricModel;
use kernbench_core::topology::Topology;
use kernbench_core::DType;

fn agree(topo: &Topology, bytes: u64) {
    let reg = Registry::builtin();
    for algo in reg.algorithms() {
        let spec = RunSpec::timing((bytes / 4) as usize, DType::F32, FabricModel::Messages);
        let what = format!("{} at {bytes} B on {}", algo.name, topo.name());
        let shared =
            bound_programs(topo, algo, &spec, false).unwrap_or_else(|e| panic!("{what}: {e}"));
        let each =
            bound_programs(topo, algo, &spec, true).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(shared.1, each.1, "{what}: routes");
        assert_eq!(shared.0.len(), each.0.len(), "{what}");
        for (r, (a, b)) in shared.0.iter().zip(&each.0).enumerate() {
            assert!(a == b, "{what}: rank {r}'s program differs");
        }
    }
}

#[test]
fn every_algorithm_lowers_alike_on_tiny() {
    let topo = Topology::builtin("tiny").unwrap();
    for bytes in [4096, 1 << 16] {
        agree(&topo, bytes);
    }
}

/// Ranks whose graphs differ only in ordering edges (each hierarchical rank
/// reduces its own chunk first, so its memory-ordering edges are its own)
/// still take one lowered program: only a few ranks lower on their own.
#[test]
fn ranks_that_differ_in_ordering_edges_share_a_lowering() {
    let topo = Topology::builtin("tiny").unwrap();
    let reg = Registry::builtin();
    for name in ["hierarchical_allreduce", "ring_allreduce"] {
        let mut algo = reg.get(name).unwrap().clone();
        algo.seg_bytes = 64 << 10;
        let algo = &algo;
        let spec = RunSpec::timing(100_000, DType::F32, FabricModel::Messages);
        let ranks = topo.pes().count();
        let alone = lowered_alone(&topo, algo, &spec).unwrap();
        assert!(
            alone * 4 <= ranks,
            "{name}: {alone} of {ranks} ranks lowered on their own"
        );
        // And each rank's program is the one it lowers to on its own.
        let shared = bound_programs(&topo, algo, &spec, false).unwrap();
        let each = bound_programs(&topo, algo, &spec, true).unwrap();
        assert_eq!(shared.1, each.1, "{name}: routes");
        for (r, (a, b)) in shared.0.iter().zip(&each.0).enumerate() {
            assert!(a == b, "{name}: rank {r}'s program differs");
        }
    }
}
