//! The model column against the simulation, where the model is meant to
//! predict it closely: the ring family (latency, link bandwidth shared by
//! the ring's channels, and the credit window of its slowest channel) and
//! recursive doubling (its exchanges step by step, piece after piece).

mod common;

#[test]
fn the_ring_model_predicts_the_simulation_within_15_percent() {
    common::assert_model_within(
        1.15,
        &["ring_allreduce", "all_gather"],
        &[
            ("tiny", 16, 4096),
            ("tiny", 16, 65536),
            ("tiny", 16, 1 << 20),
            ("default", 256, 65536),
        ],
    );
}

#[test]
fn the_recursive_doubling_model_predicts_the_simulation_within_30_percent() {
    common::assert_model_within(
        1.3,
        &["recursive_doubling"],
        &[
            ("tiny", 16, 4096),
            ("tiny", 16, 1 << 20),
            ("tiny", 12, 65536),
            ("default", 256, 65536),
        ],
    );
}

/// Every registry algorithm's model column on `tiny` at 4 KiB, 64 KiB and
/// 1 MiB, against the simulation. Only the ring family meets 15% today (the
/// test above); this one holds every other row to the factor it reaches
/// now, so no model gets worse unnoticed, and prints the table.
#[test]
fn every_algorithms_model_is_within_2_5x_on_tiny() {
    use kernbench_ccl::{run::ranks, run_on, Registry, RunSpec};
    use kernbench_core::topology::Topology;
    use kernbench_core::DType;
    let topo = Topology::builtin("tiny").unwrap();
    let reg = Registry::builtin();
    let mut worst: (f64, String) = (1.0, String::new());
    for algo in reg.algorithms() {
        let pes = ranks(&topo, algo).unwrap();
        let mut line = format!("{:<28}", algo.name);
        for bytes in [4096usize, 65536, 1 << 20] {
            let model = kernbench_ccl::cost::model_ns(&topo, algo, &pes, bytes as f64);
            assert!(
                model.is_finite() && model > 0.0,
                "{}: model {model}",
                algo.name
            );
            let s = RunSpec::timing(bytes / 4, DType::F32, Default::default());
            let sim = run_on(&topo, algo, &pes, &s)
                .unwrap()
                .outcome
                .report
                .sim_ns();
            let ratio = sim / model;
            line += &format!(" {ratio:6.2}");
            let off = ratio.max(1.0 / ratio);
            if off > worst.0 {
                worst = (off, format!("{} at {bytes} B", algo.name));
            }
            assert!(
                off < 2.5,
                "{} on {} PEs of tiny, {bytes} B: model {model:.0} ns, simulated {sim:.0} ns",
                algo.name,
                pes.len()
            );
        }
        println!("{line}");
    }
    println!("furthest: {:.2}x ({})", worst.0, worst.1);
}
