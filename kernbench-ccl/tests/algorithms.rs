//! Every algorithm, checked element by element on small machines and odd world sizes.

use kernbench_ccl::{run_on, RedOp, Registry, RunSpec};
use kernbench_core::topology::Topology;
use kernbench_core::{DType, PeId};

fn spec(count: usize, dtype: DType, op: RedOp) -> RunSpec {
    RunSpec {
        fabric: Default::default(),
        ties: Default::default(),
        max_memory: None,
        progress: Default::default(),
        count,
        dtype,
        op,
        root: 0,
        data: true,
        trace: false,
        why: false,
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

#[test]
fn every_algorithm_on_every_pe_of_default() {
    let topo = Topology::embedded_default();
    let all: Vec<PeId> = topo.pes().collect();
    for algo in Registry::builtin().algorithms() {
        check(&algo.name, &topo, &all, &spec(700, DType::F32, RedOp::Sum));
    }
}

#[test]
fn an_uncontended_ring_reaches_its_bottleneck_link_bandwidth() {
    use kernbench_core::topology::Endpoint;
    let topo = Topology::embedded_default();
    let ring = kernbench_ccl::run::cube_cycle(&topo, 0).unwrap();
    let bottleneck = (0..ring.len())
        .map(|i| {
            let (a, b) = (ring[i], ring[(i + 1) % ring.len()]);
            topo.route(Endpoint::Pe(a), Endpoint::Pe(b))
                .unwrap()
                .bottleneck_gbps
        })
        .fold(f64::INFINITY, f64::min);
    let reg = Registry::builtin();
    let bytes = 4usize << 20;
    let s = RunSpec {
        fabric: Default::default(),
        ties: Default::default(),
        max_memory: None,
        progress: Default::default(),
        data: false,
        ..spec(bytes / 4, DType::F32, RedOp::Sum)
    };
    let r = run_on(&topo, reg.get("ring_allreduce").unwrap(), &ring, &s).unwrap();
    let p = ring.len() as f64;
    let busbw = bytes as f64 / r.outcome.report.sim_ns() * 2.0 * (p - 1.0) / p;
    assert!(
        busbw >= 0.9 * bottleneck && busbw <= bottleneck,
        "busbw {busbw:.1} GB/s against a bottleneck link of {bottleneck:.1} GB/s"
    );
}

#[test]
fn intercube_allreduce_on_every_sip_network() {
    for name in ["tiny", "default"] {
        let topo = Topology::builtin(name).unwrap();
        let reg = Registry::builtin();
        for algo in [
            "intercube_allreduce_ring",
            "intercube_allreduce_torus",
            "intercube_allreduce_mesh",
        ] {
            let pes = kernbench_ccl::run::ranks(&topo, reg.get(algo).unwrap()).unwrap();
            assert_eq!(
                pes.len(),
                topo.cubes_per_sip() as usize * topo.num_sips() as usize
            );
            for count in [3, 5000] {
                check(algo, &topo, &pes, &spec(count, DType::F32, RedOp::Sum));
                check(algo, &topo, &pes, &spec(count, DType::Bf16, RedOp::Max));
            }
        }
    }
}

/// The estimate a run too large for its memory limit stops with.
fn estimate_of(algo: &str, topo: &Topology) -> kernbench_core::sim::MemoryEstimate {
    let reg = Registry::builtin();
    let pes: Vec<PeId> = topo.pes().collect();
    let s = RunSpec {
        max_memory: Some(1),
        data: false,
        ..spec(4096, DType::F32, RedOp::Sum)
    };
    match run_on(topo, reg.get(algo).unwrap(), &pes, &s) {
        Err(kernbench_ccl::run::RunError::Sim(kernbench_core::sim::SimError::TooLarge {
            estimate,
            ..
        })) => estimate,
        other => panic!("{algo}: expected the memory error, got {:?}", other.err()),
    }
}

#[test]
fn the_memory_estimate_counts_channels_and_the_programs_roles_share() {
    // An all-to-all opens a channel from every rank to every other: at a
    // thousand ranks they outweigh the commands.
    let tiny = Topology::builtin("tiny").unwrap();
    let e = estimate_of("pairwise_alltoall", &tiny);
    assert_eq!(
        (e.instances, e.channels, e.programs),
        (16, 16 * 15, 1),
        "{e}"
    );
    // A binomial reduce lowers to one program per level of its tree; a
    // sample with repeats does not stand for one program per pair of ranks.
    let default = Topology::builtin("default").unwrap();
    let e = estimate_of("binomial_reduce", &default);
    assert!(e.programs >= 2 && e.programs <= 16, "{e}");
    assert!(e.channels > 0 && e.channels < 256, "{e}");
}
