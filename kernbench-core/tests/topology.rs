//! Behaviour of `kernbench_core::topology`: the shipped configs, routing,
//! calibration against the predecessor's measurements, the summary and errors.

use kernbench_core::topology::{Endpoint, LinkKind, Node, Route, Topology, TopologyError};
use kernbench_core::{CubeId, PeId, SipId};
use std::collections::HashSet;
use std::path::Path;

fn default() -> Topology {
    Topology::embedded_default()
}

fn tiny() -> Topology {
    Topology::builtin("tiny").expect("tiny is a builtin")
}

fn pe(t: &Topology, a: PeId, b: PeId) -> Route {
    t.route(Endpoint::Pe(a), Endpoint::Pe(b))
        .expect("both PEs exist")
}

fn nodes_of(t: &Topology, r: &Route) -> Vec<Node> {
    let mut out = Vec::new();
    for (i, h) in r.hops.iter().enumerate() {
        let l = t.link(h.link);
        if i == 0 {
            out.push(l.from);
        }
        out.push(l.to);
    }
    out
}

/// The route is a connected path from `src` to `dst` that never visits a node twice.
fn assert_path(t: &Topology, r: &Route, src: Node, dst: Node) {
    let nodes = nodes_of(t, r);
    assert_eq!(nodes.first(), Some(&src), "route starts at {src}");
    assert_eq!(nodes.last(), Some(&dst), "route ends at {dst}");
    for w in r.hops.windows(2) {
        assert_eq!(
            t.link(w[0].link).to,
            t.link(w[1].link).from,
            "hops are contiguous"
        );
    }
    let distinct: HashSet<_> = nodes.iter().collect();
    assert_eq!(
        distinct.len(),
        nodes.len(),
        "a route never visits a node twice"
    );
    let lat: u64 = r.hops.iter().map(|h| t.link(h.link).latency_ps).sum();
    let ovh: u64 = r.hops.iter().map(|h| t.link(h.link).overhead_ps).sum();
    assert_eq!((r.latency_ps, r.overhead_ps), (lat, ovh));
    let bn = r
        .hops
        .iter()
        .map(|h| t.link(h.link).gbps)
        .fold(f64::INFINITY, f64::min);
    assert_eq!(r.bottleneck_gbps, bn);
}

#[test]
fn shipped_configs_load_and_validate() {
    for name in Topology::BUILTIN_NAMES {
        let t = Topology::builtin(name).expect("builtin");
        assert_eq!(t.name(), name);
        assert_eq!(t.pes().count(), t.pe_count());
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../configs/{name}.yaml"));
        let loaded = Topology::load(&path).expect("the file on disk loads");
        assert_eq!(loaded.summary(), t.summary());
    }
    assert!(Topology::builtin("nope").is_none());
    let t = tiny();
    assert_eq!(
        (t.num_sips(), t.cube_mesh(), t.pes_per_cube(), t.pe_count()),
        (1, (2, 2), 4, 16)
    );
    let t = Topology::builtin("large").unwrap();
    assert!(t.pe_count() >= 1024);
    assert_eq!(t.num_sips(), 8);
    let t = Topology::builtin("xl").unwrap();
    assert_eq!(
        (t.num_sips(), t.cube_mesh(), t.pes_per_cube(), t.pe_count()),
        (16, (4, 4), 16, 4096)
    );
    // Every PE reaches every other across the 16-SIP address map.
    let pes: Vec<_> = t.pes().collect();
    let (first, last) = (pes[0], pes[pes.len() - 1]);
    assert!(t
        .route(
            kernbench_core::topology::Endpoint::Pe(first),
            kernbench_core::topology::Endpoint::Pe(last)
        )
        .is_ok());
}

#[test]
fn embedded_default_is_256_pes() {
    let t = default();
    assert_eq!(t.name(), "default");
    assert_eq!(t.pe_count(), 256);
    assert_eq!(
        (
            t.num_sips(),
            t.cube_mesh(),
            t.cubes_per_sip(),
            t.pes_per_cube()
        ),
        (2, (4, 4), 16, 8)
    );
    let spec = t.pe_spec();
    assert_eq!(spec.gemm_flops_per_ns(2), 8000.0);
    assert_eq!(spec.gemm_flops_per_ns(4), 4000.0);
    assert!((spec.hbm_effective_gbps() - 204.8).abs() < 1e-9);
    assert_eq!(t.ipcq().slots, 4);
    assert_eq!(t.ipcq().slot_bytes, 4096);
    assert_eq!(t.memory().sram_router_gbps, 128.0);
}

#[test]
fn an_empty_file_is_the_default_machine() {
    let empty = Topology::from_yaml("", "empty.yaml").unwrap();
    assert_eq!(empty.name(), "empty");
    let mut a = empty.summary();
    let b = default().summary();
    a.name = b.name.clone();
    assert_eq!(a, b, "the defaults in code equal configs/default.yaml");
    assert_eq!(empty.config().pe, default().config().pe);
}

#[test]
fn pes_are_in_structural_order() {
    let t = tiny();
    let pes: Vec<PeId> = t.pes().collect();
    let mut sorted = pes.clone();
    sorted.sort();
    assert_eq!(pes, sorted);
    for (i, &p) in pes.iter().enumerate() {
        assert!(t.contains(p));
        assert_eq!(t.pe_index(p), Some(i));
    }
    assert!(!t.contains(PeId::new(0, 0, 4)));
    assert!(!t.contains(PeId::new(0, 4, 0)));
    assert!(!t.contains(PeId::new(1, 0, 0)));
}

#[test]
fn every_pair_of_pes_has_a_route() {
    for t in [tiny(), default()] {
        let pes: Vec<PeId> = t.pes().collect();
        for &a in &pes {
            for &b in &pes {
                let r = pe(&t, a, b);
                if a == b {
                    assert_eq!(r, Route::empty());
                } else {
                    assert!(r.hop_count() >= 2, "{a} -> {b}");
                    assert!(r.bottleneck_gbps > 0.0);
                }
            }
        }
    }
}

#[test]
fn routes_are_contiguous_paths() {
    let t = default();
    let pes: Vec<PeId> = t.pes().step_by(7).collect();
    for &a in &pes {
        for &b in pes.iter().filter(|&&b| b != a) {
            assert_path(&t, &pe(&t, a, b), Node::Pe(a), Node::Pe(b));
        }
    }
    // Every kind of endpoint, both ways.
    let eps = [
        Endpoint::Pe(PeId::new(0, 5, 2)),
        Endpoint::Hbm(PeId::new(0, 5, 2)),
        Endpoint::Hbm(PeId::new(1, 9, 6)),
        Endpoint::Sram(CubeId { sip: 0, cube: 15 }),
        Endpoint::MCpu(CubeId { sip: 1, cube: 3 }),
        Endpoint::IoCpu(SipId(0)),
        Endpoint::IoCpu(SipId(1)),
        Endpoint::Host(SipId(1)),
    ];
    for &a in &eps {
        for &b in &eps {
            let r = t.route(a, b).unwrap();
            if a == b {
                assert_eq!(r, Route::empty());
            } else {
                assert_path(&t, &r, t.node(a), t.node(b));
            }
        }
    }
}

#[test]
fn a_pe_and_its_own_hbm_slice_use_the_private_link() {
    let t = default();
    let p = PeId::new(1, 7, 3);
    let r = t.route(Endpoint::Pe(p), Endpoint::Hbm(p)).unwrap();
    assert_eq!(r.hop_count(), 1);
    let l = t.link(r.hops[0].link);
    assert_eq!(
        (l.kind, l.from, l.to),
        (LinkKind::Hbm, Node::Pe(p), Node::HbmSlice(p))
    );
    assert_eq!(l.gbps, t.pe_spec().hbm_gbps);
    assert_eq!(r.latency_ps, 20_000);
    let back = t.route(Endpoint::Hbm(p), Endpoint::Pe(p)).unwrap();
    assert_eq!(t.link(back.hops[0].link).to, Node::Pe(p));
    // Another PE's slice goes over the NOC and an HBM port.
    let q = PeId::new(1, 7, 4);
    let r = t.route(Endpoint::Pe(p), Endpoint::Hbm(q)).unwrap();
    assert!(r
        .hops
        .iter()
        .any(|h| t.link(h.link).kind == LinkKind::HbmPort));
}

#[test]
fn intra_cube_routes_are_faster_than_inter_cube_routes() {
    let t = default();
    for a in t.pes().filter(|p| p.sip == 0) {
        let (mut same, mut other) = (0u64, u64::MAX);
        for b in t.pes().filter(|&b| b != a) {
            let ps = pe(&t, a, b).fixed_ps();
            if b.cube_id() == a.cube_id() {
                same = same.max(ps);
            } else {
                other = other.min(ps);
            }
        }
        assert!(
            same < other,
            "{a}: slowest in cube {same} ps >= fastest elsewhere {other} ps"
        );
    }
}

#[test]
fn cross_sip_routes_pass_both_io_chiplets_and_the_switch() {
    let t = default();
    let (a, b) = (PeId::new(0, 10, 1), PeId::new(1, 5, 6));
    let nodes = nodes_of(&t, &pe(&t, a, b));
    for n in [Node::IoNoc(SipId(0)), Node::Switch, Node::IoNoc(SipId(1))] {
        assert!(nodes.contains(&n), "{n} is on the route");
    }
    assert!(nodes
        .iter()
        .any(|n| matches!(n, Node::IoUcie { sip: SipId(0), .. })));
    assert!(nodes
        .iter()
        .any(|n| matches!(n, Node::IoUcie { sip: SipId(1), .. })));
    // Data does not pass through IO_CPU (only control traffic does).
    assert!(!nodes.iter().any(|n| matches!(n, Node::IoCpu(_))));
    let r = pe(&t, a, b);
    assert_eq!(r.bottleneck_gbps, 64.0);
    assert_eq!(r.overhead_ps, 50_000, "the switch's overhead only");
    // In the low hundreds of ns.
    assert!(
        (150_000..500_000).contains(&r.fixed_ps()),
        "{} ps",
        r.fixed_ps()
    );
}

#[test]
fn host_memory_traffic_bypasses_io_cpu() {
    let t = default();
    let p = PeId::new(0, 6, 0);
    let r = t.route(Endpoint::Host(SipId(0)), Endpoint::Hbm(p)).unwrap();
    let nodes = nodes_of(&t, &r);
    assert!(nodes.contains(&Node::PcieEp(SipId(0))));
    assert!(nodes.contains(&Node::IoNoc(SipId(0))));
    assert!(!nodes.contains(&Node::IoCpu(SipId(0))));
    assert_eq!(r.overhead_ps, 0);
    assert_eq!(r.bottleneck_gbps, 64.0);
}

#[test]
fn latency_grows_with_manhattan_distance_in_the_cube_mesh() {
    let t = default();
    let (rows, cols) = t.cube_mesh();
    for p in 0..t.pes_per_cube() {
        let a = PeId::new(0, 0, p);
        let mut by_dist: Vec<(u64, u64)> = vec![(u64::MAX, 0); usize::from(rows + cols)];
        for c in 1..t.cubes_per_sip() {
            let (r, col) = t.cube_coord(c);
            let d = usize::from(r + col);
            let ps = pe(&t, a, PeId::new(0, c, p)).fixed_ps();
            by_dist[d] = (by_dist[d].0.min(ps), by_dist[d].1.max(ps));
        }
        for d in 1..usize::from(rows + cols - 2) {
            assert!(
                by_dist[d].1 < by_dist[d + 1].0,
                "PE {p}: the slowest route at distance {d} ({} ps) is not faster than the \
                 fastest at distance {} ({} ps)",
                by_dist[d].1,
                d + 1,
                by_dist[d + 1].0
            );
        }
    }
}

#[test]
fn ucie_crossing_matches_the_predecessor() {
    let t = default();
    let (a, b) = t.ucie_probe_pair();
    assert_eq!((a.sip, a.cube, b.sip, b.cube), (0, 0, 0, 1));
    let r = pe(&t, a, b);
    assert_eq!(
        r.bottleneck_gbps, 128.0,
        "one UCIe connection is the bottleneck"
    );
    let fixed_ns = r.fixed_ps() as f64 / 1000.0;
    assert!((fixed_ns - 33.0).abs() <= 1.0, "fixed {fixed_ns} ns");
    for (bytes, measured_ns) in [(65536u64, 545.0), (1 << 20, 8230.0)] {
        let ns = fixed_ns + bytes as f64 / r.bottleneck_gbps;
        let err = (ns - measured_ns).abs() / measured_ns;
        assert!(
            err < 0.02,
            "{bytes} bytes: {ns} ns vs measured {measured_ns} ns"
        );
        assert!(
            ((r.transfer_ps(bytes) as f64 / 1000.0) - ns).abs() < 0.01,
            "Route::transfer_ps agrees"
        );
    }
    // Exactly one UCIe crossing.
    let crossings = r
        .hops
        .iter()
        .filter(|h| t.link(h.link).kind == LinkKind::Ucie)
        .count();
    assert_eq!(crossings, 1);
}

#[test]
fn parallel_ucie_connections_are_spread_over_pes() {
    let t = default();
    let mut used = HashSet::new();
    for p in 0..t.pes_per_cube() {
        let r = pe(&t, PeId::new(0, 0, p), PeId::new(0, 1, p));
        for h in &r.hops {
            if t.link(h.link).kind == LinkKind::Ucie {
                used.insert(h.link);
            }
        }
    }
    assert_eq!(used.len(), usize::from(t.ucie_connections()));
    // Opposite directions are different links.
    let there = pe(&t, PeId::new(0, 0, 0), PeId::new(0, 1, 0));
    let back = pe(&t, PeId::new(0, 1, 0), PeId::new(0, 0, 0));
    let there: HashSet<_> = there.links().collect();
    assert!(back.links().all(|l| !there.contains(&l)));
}

#[test]
fn routes_are_deterministic() {
    let (t1, t2) = (default(), default());
    let pes: Vec<PeId> = t1.pes().step_by(5).collect();
    for &a in &pes {
        for &b in &pes {
            let r = pe(&t1, a, b);
            assert_eq!(r, pe(&t1, a, b));
            assert_eq!(r, pe(&t2, a, b));
        }
    }
    assert_eq!(t1.to_dot(), t2.to_dot());
}

#[test]
fn launch_goes_through_io_cpu_and_m_cpu() {
    let t = default();
    let p = PeId::new(1, 13, 5);
    let r = t.launch_route(p);
    let nodes = nodes_of(&t, &r);
    assert_eq!(nodes.first(), Some(&Node::Host));
    assert_eq!(nodes.last(), Some(&Node::Pe(p)));
    assert!(nodes.contains(&Node::IoCpu(SipId(1))));
    assert!(nodes.contains(&Node::MCpu(p.cube_id())));
    assert_eq!(r.overhead_ps, 10_000 + 5_000, "IO_CPU and M_CPU overheads");
    assert_eq!(t.launch_ps(p), r.fixed_ps() + 2_000);
    let all = t.launch_start_ps(t.pes());
    assert!(t.pes().all(|q| t.launch_ps(q) <= all));
    assert_eq!(t.launch_route(PeId::new(9, 0, 0)), Route::empty());
}

#[test]
fn unknown_endpoints_are_errors_not_panics() {
    let t = tiny();
    for ep in [
        Endpoint::Pe(PeId::new(0, 0, 4)),
        Endpoint::Hbm(PeId::new(0, 4, 0)),
        Endpoint::Sram(CubeId { sip: 1, cube: 0 }),
        Endpoint::IoCpu(SipId(1)),
        Endpoint::Host(SipId(3)),
    ] {
        let err = t.route(Endpoint::Pe(PeId::new(0, 0, 0)), ep).unwrap_err();
        assert!(matches!(err, TopologyError::NoSuchEndpoint { .. }), "{err}");
        assert!(err.to_string().contains("tiny"));
    }
}

#[test]
fn the_graph_matches_the_link_table() {
    for t in [tiny(), default()] {
        let g = t.graph();
        assert_eq!(g.edge_count(), t.links().len());
        for e in g.edge_indices() {
            let id = g[e];
            assert_eq!(id.0 as usize, e.index());
            let (a, b) = g.edge_endpoints(e).unwrap();
            let l = t.link(id);
            assert_eq!((g[a], g[b]), (l.from, l.to));
            assert!(l.gbps > 0.0);
        }
        // Every physical connection has both directions.
        let dirs: HashSet<(Node, Node, LinkKind)> =
            t.links().iter().map(|l| (l.from, l.to, l.kind)).collect();
        for l in t.links() {
            assert!(
                dirs.contains(&(l.to, l.from, l.kind)),
                "{} -> {} has a reverse",
                l.from,
                l.to
            );
        }
        let nodes: HashSet<Node> = g.node_indices().map(|i| g[i]).collect();
        assert_eq!(nodes.len(), g.node_count(), "one node per component");
        let dot = t.to_dot();
        assert!(dot.starts_with("digraph"));
        assert_eq!(dot.matches(" -> ").count(), t.links().len());
    }
    // The default cube: 32 routers, 8 PEs + 8 slices + 4 HBM ports + SRAM + M_CPU.
    let t = default();
    let cube0 = t
        .graph()
        .node_indices()
        .filter(|&i| t.graph()[i].cube() == Some(CubeId { sip: 0, cube: 0 }));
    let routers = cube0
        .filter(|&i| matches!(t.graph()[i], Node::Router { .. }))
        .count();
    assert_eq!(routers, 32);
}

/// Brute force over all pairs of a small machine agrees with the summary's smart search.
#[test]
fn summary_worst_cases_match_brute_force() {
    let small = Topology::from_yaml(
        "name: small\nsips: 2\nsip: {cubes: {rows: 2, cols: 3}, io: {side: n, ucie_ports: 3}, cube: {pes: 5}}\n",
        "small.yaml",
    )
    .unwrap();
    for t in [tiny(), small, default()] {
        let s = t.summary();
        let pes: Vec<PeId> = t.pes().collect();
        let (mut same, mut cross, mut sip, mut hops) = (0u64, 0u64, 0u64, 0usize);
        for &a in pes.iter().filter(|p| p.sip == 0) {
            for &b in &pes {
                let r = pe(&t, a, b);
                hops = hops.max(r.hop_count());
                let slot = if a.sip != b.sip {
                    &mut sip
                } else if a.cube != b.cube {
                    &mut cross
                } else {
                    &mut same
                };
                *slot = (*slot).max(r.fixed_ps());
            }
        }
        let ns = |x: u64| x as f64 / 1000.0;
        assert_eq!(
            s.worst_same_cube.as_ref().map(|r| r.latency_ns),
            Some(ns(same)),
            "{}",
            t.name()
        );
        assert_eq!(
            s.worst_cross_cube.as_ref().map(|r| r.latency_ns),
            Some(ns(cross)),
            "{}",
            t.name()
        );
        let want_sip = (t.num_sips() > 1).then(|| ns(sip));
        assert_eq!(
            s.worst_cross_sip.as_ref().map(|r| r.latency_ns),
            want_sip,
            "{}",
            t.name()
        );
        assert_eq!(
            s.longest_route.as_ref().map(|r| r.hops),
            Some(hops),
            "{}",
            t.name()
        );
    }
}

#[test]
fn summary_prints_and_serialises() {
    let s = default().summary();
    let text = s.to_string();
    assert!(text.lines().any(|l| l == "256 PEs"), "{text}");
    for kind in ["noc", "ucie", "pcie", "system", "hbm"] {
        assert!(text.contains(kind), "{text}");
    }
    assert!(text.contains("longest route"));
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["pes"], 256);
    assert_eq!(json["sips"], 2);
    let worst = s.worst_cross_cube.as_ref().unwrap().latency_ns;
    assert!(
        worst < 573.0,
        "remote-cube worst {worst} ns is below the predecessor's 573 ns"
    );
    let same = s.worst_same_cube.as_ref().unwrap().latency_ns;
    assert!(
        same < 77.0,
        "same-cube worst {same} ns is below the predecessor's 77 ns"
    );
    let large = Topology::builtin("large").unwrap().summary();
    assert!(large.to_string().contains("1024 PEs"));
}

#[test]
fn a_4096_pe_machine_routes_without_search() {
    let t = Topology::from_yaml(
        "name: huge\nsips: 16\nsip: {cube: {pes: 16}}\n",
        "huge.yaml",
    )
    .unwrap();
    assert_eq!(t.pe_count(), 4096);
    // Building the routing table searches once per router of the cube
    // layout; after that, no route searches the graph.
    let built = t.route_searches();
    assert!(
        built > 0 && built <= 64,
        "{built} searches to build the table"
    );
    let pes: Vec<PeId> = t.pes().step_by(61).collect();
    let mut hops = 0;
    for &a in &pes {
        for &b in &pes {
            let r = pe(&t, a, b);
            assert!(a == b || r.hop_count() > 0);
            hops += r.hop_count();
        }
    }
    assert!(hops > 10 * pes.len() * pes.len(), "long routes were walked");
    assert_eq!(
        t.route_searches(),
        built,
        "{} routes ran graph searches",
        pes.len() * pes.len()
    );
    // The count is real: a detour around a failed link is one search.
    let (a, b) = (PeId::new(0, 0, 0), PeId::new(0, 1, 0));
    let ucie = t
        .route(Endpoint::Pe(a), Endpoint::Pe(b))
        .unwrap()
        .hops
        .iter()
        .map(|h| &t.links()[h.link.0 as usize])
        .find(|l| l.kind == LinkKind::Ucie)
        .map(|l| format!("{} <-> {}", l.from, l.to))
        .unwrap();
    let failed = Topology::from_yaml(
        &format!(
            "name: huge\nsips: 16\nsip: {{cube: {{pes: 16}}}}\nfailed: {{links: [\"{ucie}\"]}}\n"
        ),
        "huge.yaml",
    )
    .unwrap();
    let before = failed.route_searches();
    failed.route(Endpoint::Pe(a), Endpoint::Pe(b)).unwrap();
    assert_eq!(failed.route_searches(), before + 1);
}
