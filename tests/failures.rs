//! A machine with failed links and routers: routes go around them, a
//! collective pays for the detour, and a machine cut in parts is refused.

use kernbench::ccl::run::{run, RunSpec};
use kernbench::ccl::Registry;
use kernbench::core::sim::FabricModel;
use kernbench::core::topology::{Endpoint, LinkKind, TopologyError, DEFAULT_YAML, TINY_YAML};
use kernbench::core::DType;
use kernbench::prelude::*;

/// `yaml` with a `failed:` section.
fn with_failed(yaml: &str, links: &[String], routers: &[&str]) -> String {
    assert!(
        !yaml.contains("\nfailed:"),
        "the shipped file has no failures"
    );
    let q = |s: &str| format!("\"{s}\"");
    format!(
        "{yaml}\nfailed:\n  links: [{}]\n  routers: [{}]\n",
        links.iter().map(|l| q(l)).collect::<Vec<_>>().join(", "),
        routers.iter().map(|r| q(r)).collect::<Vec<_>>().join(", ")
    )
}

fn both_ways(topo: &Topology, link: u32) -> String {
    let l = &topo.links()[link as usize];
    format!("{} <-> {}", l.from, l.to)
}

#[test]
fn a_route_over_a_failed_ucie_link_goes_around_it() {
    let topo = Topology::builtin("tiny").unwrap();
    let (a, b) = (
        Endpoint::Pe(PeId::new(0, 0, 0)),
        Endpoint::Pe(PeId::new(0, 1, 0)),
    );
    let healthy = topo.route(a, b).unwrap();
    let ucie = healthy
        .hops
        .iter()
        .map(|h| h.link.0)
        .find(|&l| topo.links()[l as usize].kind == LinkKind::Ucie)
        .expect("the route crosses UCIe");
    let yaml = with_failed(TINY_YAML, &[both_ways(&topo, ucie)], &[]);
    let broken = Topology::from_yaml(&yaml, "tiny_failed.yaml").unwrap();
    let detour = broken.route(a, b).unwrap();
    assert!(
        detour.hops.iter().all(|h| h.link.0 != ucie),
        "the detour avoids the failed link"
    );
    assert!(
        detour.fixed_ps() > healthy.fixed_ps(),
        "the detour is longer: {} vs {} ps",
        detour.fixed_ps(),
        healthy.fixed_ps()
    );
    // Routes that did not cross the failed link keep their dimension order.
    let (c, d) = (
        Endpoint::Pe(PeId::new(0, 0, 0)),
        Endpoint::Pe(PeId::new(0, 0, 3)),
    );
    assert_eq!(broken.route(c, d).unwrap(), topo.route(c, d).unwrap());
}

#[test]
fn a_ring_all_reduce_on_default_pays_for_a_failed_link_and_still_checks() {
    let healthy_topo = Topology::embedded_default();
    let algo = Registry::builtin().get("ring_allreduce").unwrap().clone();
    let spec = RunSpec {
        data: true,
        ..RunSpec::timing(16 * 1024, DType::F32, FabricModel::Messages)
    };
    let healthy = run(&healthy_topo, &algo, &spec).unwrap();
    assert_eq!(healthy.wrong, 0);
    // Fail the link the healthy run kept busiest.
    let busiest = &healthy.outcome.report.links[0];
    let yaml = with_failed(DEFAULT_YAML, &[both_ways(&healthy_topo, busiest.link)], &[]);
    let broken_topo = Topology::from_yaml(&yaml, "default_failed.yaml").unwrap();
    let broken = run(&broken_topo, &algo, &spec).unwrap();
    assert_eq!(broken.wrong, 0, "the data still arrives, by the detour");
    assert!(broken.checked > 0);
    let (h, b) = (
        healthy.outcome.report.sim_ps(),
        broken.outcome.report.sim_ps(),
    );
    assert!(
        b > h,
        "a detour costs time: {b} ps failed vs {h} ps healthy"
    );
    assert!(
        broken
            .outcome
            .report
            .links
            .iter()
            .all(|l| l.link != busiest.link),
        "nothing crosses the failed link"
    );
}

#[test]
fn a_machine_cut_in_parts_names_the_unreachable_pairs() {
    let topo = Topology::builtin("tiny").unwrap();
    // Every link between PE 0 of cube 0 and the rest of the machine.
    let pe = "sip0/cube0/pe0";
    let links: Vec<String> = topo
        .links()
        .iter()
        .filter(|l| l.from.to_string() == pe && l.to.to_string().contains("router"))
        .map(|l| format!("{} <-> {}", l.from, l.to))
        .collect();
    assert!(!links.is_empty());
    let yaml = with_failed(TINY_YAML, &links, &[]);
    let err = Topology::from_yaml(&yaml, "cut.yaml").unwrap_err();
    let TopologyError::Invalid { path, message, .. } = &err else {
        panic!("expected a validation error, got {err}")
    };
    assert_eq!(path, "failed.links");
    assert!(message.contains("cut the machine in parts"), "{err}");
    assert!(
        message
            .ends_with("in parts: sip0/cube0/pe0 cannot reach or be reached from sip0/cube0/pe1"),
        "names the one pair, against the part that holds the rest: {err}"
    );
}

#[test]
fn a_failed_router_that_strands_its_pe_is_refused() {
    let yaml = with_failed(TINY_YAML, &[], &["sip0/cube1/router(0,0)"]);
    let err = Topology::from_yaml(&yaml, "router.yaml").unwrap_err();
    assert!(err.to_string().contains("cannot reach"), "{err}");
    assert_eq!(err.path(), Some("failed.routers"), "{err}");
}

#[test]
fn failures_that_name_nothing_are_errors_with_their_line() {
    let yaml = with_failed(TINY_YAML, &["sip0/cube0/pe0 -> sip9/cube0/pe0".into()], &[]);
    let err = Topology::from_yaml(&yaml, "typo.yaml").unwrap_err();
    assert_eq!(err.path(), Some("failed.links[0]"), "{err}");
    assert!(err.to_string().contains("no `sip9/cube0/pe0`"), "{err}");
    let yaml = with_failed(TINY_YAML, &["sip0/cube0/pe0".into()], &[]);
    let err = Topology::from_yaml(&yaml, "typo.yaml").unwrap_err();
    assert!(err.to_string().contains("is not a link"), "{err}");
    let yaml = with_failed(TINY_YAML, &["sip0/cube0/pe0 -> sip0/cube1/pe0".into()], &[]);
    let err = Topology::from_yaml(&yaml, "typo.yaml").unwrap_err();
    assert!(err.to_string().contains("no link joins"), "{err}");
    let yaml = with_failed(TINY_YAML, &[], &["sip0/cube0/pe0"]);
    let err = Topology::from_yaml(&yaml, "typo.yaml").unwrap_err();
    assert!(err.to_string().contains("is not a router"), "{err}");
}
