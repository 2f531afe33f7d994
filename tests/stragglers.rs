//! Degraded links: a link that keeps a share of its bandwidth and gains
//! latency, from the topology file (`degraded:`) or `--degrade`. A ring runs
//! at the pace of its slowest link; a tree crosses it on fewer of its steps.

use kernbench::ccl::{run_on, Registry, RunSpec};
use kernbench::core::topology::{TopologyError, TINY_YAML};
use kernbench::core::DType;
use kernbench::prelude::*;

/// The link the ring's channels load most on `tiny`.
const LINK: &str = "sip0/cube2/router(1,2) <-> sip0/cube2/router(1,1)";

fn degraded(share: &str, extra_ns: &str) -> String {
    assert!(!TINY_YAML.contains("\ndegraded:"));
    format!(
        "{TINY_YAML}\ndegraded:\n  links:\n    - link: \"{LINK}\"\n      bandwidth: {share}\n      extra_latency_ns: {extra_ns}\n"
    )
}

/// Simulated time of `algo` on every PE of `topo` at 1 MiB a rank, data checked.
fn time(topo: &Topology, algo: &str) -> f64 {
    let reg = Registry::builtin();
    let pes: Vec<PeId> = topo.pes().collect();
    let spec = RunSpec {
        data: true,
        ..RunSpec::timing(1 << 18, DType::F32, Default::default())
    };
    let r = run_on(topo, reg.get(algo).unwrap(), &pes, &spec).unwrap();
    assert_eq!(r.wrong, 0, "{algo}");
    r.outcome.report.sim_ns()
}

#[test]
fn a_ring_slows_with_its_slowest_link_and_a_tree_less() {
    let healthy = Topology::builtin("tiny").unwrap();
    let slow = Topology::from_yaml(&degraded("0.25", "0"), "slow.yaml").unwrap();
    let ring = time(&slow, "ring_allreduce") / time(&healthy, "ring_allreduce");
    let tree = time(&slow, "tree_allreduce") / time(&healthy, "tree_allreduce");
    println!("a quarter of one link's bandwidth: ring x{ring:.2}, tree x{tree:.2}");
    // The ring's every step crosses the link: it takes most of the 4x.
    assert!(ring > 3.0, "ring x{ring}");
    // The tree's steps that cross it are fewer.
    assert!(tree > 1.2 && tree < ring, "tree x{tree}, ring x{ring}");
    // The cost model reads the same figures.
    let reg = Registry::builtin();
    let pes: Vec<PeId> = healthy.pes().collect();
    let model = |t: &Topology| {
        kernbench::ccl::cost::model_ns(t, reg.get("ring_allreduce").unwrap(), &pes, 1048576.0)
    };
    assert!(model(&slow) > 2.0 * model(&healthy));
}

#[test]
fn extra_latency_adds_to_every_crossing() {
    let healthy = Topology::builtin("tiny").unwrap();
    let late = Topology::from_yaml(&degraded("1", "2000"), "late.yaml").unwrap();
    let link = late
        .links()
        .iter()
        .position(|l| format!("{} <-> {}", l.from, l.to) == LINK)
        .expect("the link is in the machine");
    assert_eq!(
        late.links()[link].latency_ps,
        healthy.links()[link].latency_ps + 2_000_000
    );
    assert_eq!(late.links()[link].gbps, healthy.links()[link].gbps);
    assert!(time(&late, "ring_allreduce") > 5.0 * time(&healthy, "ring_allreduce"));
}

#[test]
fn bad_degradations_name_the_field_and_line() {
    for (share, extra, field, want) in [
        ("0", "0", "degraded.links[0].bandwidth", "(0, 1]"),
        ("1.5", "0", "degraded.links[0].bandwidth", "(0, 1]"),
        ("0.5", "-3", "degraded.links[0].extra_latency_ns", "from 0"),
    ] {
        let e = Topology::from_yaml(&degraded(share, extra), "bad.yaml").unwrap_err();
        let TopologyError::Invalid { path, line, .. } = &e else {
            panic!("{e}")
        };
        assert_eq!(path, field, "{e}");
        assert!(*line > 1, "{e}");
        assert!(e.to_string().contains(want), "{e}");
    }
    let text = degraded("0.5", "0").replace(LINK, "sip0/cube2/router(1,2) -> nowhere");
    let e = Topology::from_yaml(&text, "bad.yaml").unwrap_err();
    assert!(e.to_string().contains("no `nowhere`"), "{e}");
}
