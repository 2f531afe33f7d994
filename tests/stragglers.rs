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

/// `tiny` with one `slow` part.
fn slow(at: &str, speed: &str, delay_ns: &str) -> Topology {
    let text = format!(
        "{TINY_YAML}\nslow:\n  - at: \"{at}\"\n    speed: {speed}\n    start_delay_ns: {delay_ns}\n"
    );
    Topology::from_yaml(&text, "slow.yaml").unwrap()
}

/// Simulated time of `algo` on every PE of `topo` at `count` f32 a rank, data checked.
fn time_at(topo: &Topology, algo: &str, count: usize) -> f64 {
    let reg = Registry::builtin();
    let pes: Vec<PeId> = topo.pes().collect();
    let spec = RunSpec {
        data: true,
        ..RunSpec::timing(count, DType::F32, Default::default())
    };
    let r = run_on(topo, reg.get(algo).unwrap(), &pes, &spec).unwrap();
    assert_eq!(r.wrong, 0, "{algo}");
    r.outcome.report.sim_ns()
}

#[test]
fn one_slow_pe_holds_up_a_ring_more_than_a_tree() {
    let healthy = Topology::builtin("tiny").unwrap();
    let straggler = slow("sip0/cube0/pe0", "0.25", "0");
    // 4 KiB a rank: issue, not the wire, paces each step.
    let factor = |algo: &str| time_at(&straggler, algo, 1024) / time_at(&healthy, algo, 1024);
    let (ring, tree) = (factor("ring_allreduce"), factor("tree_allreduce"));
    println!("one PE at a quarter speed: ring x{ring:.3}, tree x{tree:.3}");
    // Every one of the ring's 2 (w - 1) steps waits on the slow PE; the
    // tree's only on the levels it sits on.
    assert!(ring > 1.15, "ring x{ring}");
    assert!(tree > 1.0 && tree < ring, "tree x{tree}, ring x{ring}");
}

#[test]
fn a_late_pe_delays_the_ring_by_its_delay() {
    let healthy = Topology::builtin("tiny").unwrap();
    let late = slow("sip0/cube2", "1", "20000");
    for algo in ["ring_allreduce", "tree_allreduce"] {
        let d = time_at(&late, algo, 1 << 18) - time_at(&healthy, algo, 1 << 18);
        // Everyone waits for the late cube's data; some of the delay hides
        // behind work that does not need it.
        assert!(d > 15_000.0 && d <= 20_000.0 + 1.0, "{algo}: {d} ns later");
    }
}

#[test]
fn a_slow_pe_computes_at_its_speed() {
    use kernbench::core::sim::{simulate, Launch};
    let run = |topo: &Topology| {
        let pe = PeId::new(0, 0, 0);
        let mut m = Machine::new(topo.clone()).unwrap();
        let (mm, kk, nn) = (256, 256, 256);
        let a = m.alloc(DType::F16, mm * kk, &[pe]).unwrap();
        let b = m.alloc(DType::F16, kk * nn, &[pe]).unwrap();
        let c = m.alloc(DType::F32, mm * nn, &[pe]).unwrap();
        let args = kernbench::kernels::gemm::args()
            .a(a.view(mm, kk).unwrap())
            .b(b.view(kk, nn).unwrap())
            .c(c.view(mm, nn).unwrap());
        let launch = Launch::new(&kernbench::kernels::gemm, args, vec![pe]).data(false);
        let r = simulate(&mut m, &launch).unwrap();
        (r.sim_ns(), r.pes[0].busy.gemm)
    };
    let healthy = run(&Topology::builtin("tiny").unwrap());
    let half = run(&slow("sip0/cube0/pe0", "0.5", "0"));
    println!("{healthy:?} {half:?}");
    let (h, s) = (healthy.1 as f64, half.1 as f64);
    assert!(h > 0.0);
    assert!(
        (s / h - 2.0).abs() < 0.01,
        "GEMM busy {h} ps, at half speed {s} ps"
    );
    assert!(half.0 > healthy.0);
}

#[test]
fn bad_slow_parts_name_the_field() {
    for (at, speed, delay, field, want) in [
        ("sip0/pe3", "0.5", "0", "slow[0].at", "not a part"),
        ("sip7", "0.5", "0", "slow[0].at", "no `sip7`"),
        ("sip0", "0", "0", "slow[0].speed", "(0, 1]"),
        ("sip0", "1", "-1", "slow[0].start_delay_ns", "from 0"),
    ] {
        let text = format!(
            "{TINY_YAML}\nslow:\n  - at: \"{at}\"\n    speed: {speed}\n    start_delay_ns: {delay}\n"
        );
        let e = Topology::from_yaml(&text, "bad.yaml").unwrap_err();
        let TopologyError::Invalid { path, line, .. } = &e else {
            panic!("{e}")
        };
        assert_eq!(path, field, "{e}");
        assert!(*line > 1, "{e}");
        assert!(e.to_string().contains(want), "{e}");
    }
}
