//! Compute overlapped with communication: a GEMM whose partial blocks are
//! reduce-scattered while the next blocks compute, against the GEMM and then
//! the collective, both checked element by element.

use kernbench::core::topology::Topology;
use kernbench::kernels::overlap::compare;
use kernbench::prelude::*;

#[test]
fn the_fused_kernel_hides_communication_the_sequential_pair_exposes() {
    let topo = Topology::builtin("tiny").unwrap();
    let pes: Vec<PeId> = topo.pes().collect();
    for (w, shape) in [(16, (16, 64, 64)), (5, (8, 32, 32)), (1, (8, 16, 16))] {
        let o = compare(&topo, &pes[..w], shape).unwrap();
        println!(
            "{w} ranks {shape:?}: fused {:.2} us, sequential {:.2} + {:.2} us, compute {:.2} us, \
             exposed {:.2} vs {:.2} us",
            o.fused_ns / 1e3,
            o.gemm_ns / 1e3,
            o.collective_ns / 1e3,
            o.compute_ns / 1e3,
            o.exposed_fused_ns() / 1e3,
            o.exposed_sequential_ns() / 1e3
        );
        assert_eq!(o.wrong, (0, 0), "{w} ranks");
        assert_eq!(o.checked, w * shape.0 * shape.2);
        assert!(o.compute_ns > 0.0);
        if w > 1 {
            assert!(o.fused_ns < o.sequential_ns(), "{o:?}");
            assert!(o.exposed_fused_ns() < o.exposed_sequential_ns(), "{o:?}");
        }
    }
}
