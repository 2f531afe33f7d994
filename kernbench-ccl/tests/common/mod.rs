//! What the per-algorithm test files share: a data run's spec, its check,
//! and the model-against-simulation bound.

// Each test binary uses the helpers it needs.
#![allow(dead_code)]

use kernbench_ccl::{run_on, RedOp, Registry, RunSpec};
use kernbench_core::topology::Topology;
use kernbench_core::{DType, PeId};

/// A run with data of `count` elements of `dtype`, reducing with `op`, rooted at `root`.
pub fn data_spec(count: usize, dtype: DType, op: RedOp, root: usize) -> RunSpec {
    RunSpec {
        data: true,
        op,
        root,
        ..RunSpec::timing(count, dtype, Default::default())
    }
}

/// Runs registry algorithm `name` on `pes` with data and checks that
/// `promised` elements were checked and none is wrong.
pub fn check_data(name: &str, topo: &Topology, pes: &[PeId], s: &RunSpec, promised: usize) {
    let reg = Registry::builtin();
    let what = format!(
        "{name} on {} PEs, root {}, count {}, {:?} {:?}",
        pes.len(),
        s.root,
        s.count,
        s.dtype,
        s.op
    );
    let r = run_on(topo, reg.get(name).unwrap(), pes, s).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(r.checked, promised, "{what}");
    assert_eq!(r.wrong, 0, "{what}: {} of {} wrong", r.wrong, r.checked);
}

/// The model column of each of `names` lands within 2x of the simulated
/// time, for every `(topology, world size, bytes)` case.
pub fn assert_model_within_2x(names: &[&str], cases: &[(&str, usize, usize)]) {
    assert_model_within(2.0, names, cases);
}

/// The model column of each of `names` lands within a factor `f` of the
/// simulated time, for every `(topology, world size, bytes)` case.
pub fn assert_model_within(f: f64, names: &[&str], cases: &[(&str, usize, usize)]) {
    let reg = Registry::builtin();
    for &(topo, w, bytes) in cases {
        let topo = Topology::builtin(topo).unwrap();
        let all: Vec<PeId> = topo.pes().collect();
        for name in names {
            let algo = reg.get(name).unwrap();
            let model = kernbench_ccl::cost::model_ns(&topo, algo, &all[..w], bytes as f64);
            let s = RunSpec::timing(bytes / 4, DType::F32, Default::default());
            let sim = run_on(&topo, algo, &all[..w], &s)
                .unwrap()
                .outcome
                .report
                .sim_ns();
            assert!(
                model > sim / f && model < sim * f,
                "{name} on {w} PEs of {}, {bytes} B: model {model:.0} ns, simulated {sim:.0} ns",
                topo.name()
            );
        }
    }
}

/// Registry algorithm `name` is a `coll` written for ranks: its entry runs
/// on the `ranks` map, and the same kernel on a direction map is refused,
/// naming what it runs on.
pub fn assert_rank_entry(name: &str, coll: kernbench_ccl::Collective) {
    let reg = Registry::builtin();
    let algo = reg.get(name).unwrap();
    assert_eq!(
        (algo.topology, algo.collective),
        (kernbench_ccl::MapKind::Ranks, coll),
        "{name}"
    );
    let e = Registry::from_yaml(
        &format!(
            "algorithms:\n  a:\n    kernel: {}\n    collective: {}\n    topology: ring\n",
            algo.kernel,
            coll.name()
        ),
        "t.yaml",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("runs on ranks"), "{name}: {e}");
}
