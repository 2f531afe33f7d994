//! The summary `kernbench topo` prints, and the Graphviz form of the structure graph.
//!
//! Worst cases are found without trying all pairs. Every cube is alike and
//! every SIP is alike, and a PE-to-PE route between different cubes is a sum
//! `E(a) + M + I(b)` where only `E` depends on the source PE and only `I` on
//! the destination PE (the UCIe connection a PE picks changes neither latency
//! nor hop count). So, for a pair of cubes, the worst pair of PEs is the worst
//! source for one fixed destination combined with the worst destination for
//! one fixed source. Across cubes, adding a step to the cube-mesh offset adds
//! one crossing and one transit and never shortens a route, so the worst pair
//! of cubes is one of the (at most 8) corner-to-corner offsets. Across SIPs,
//! `E` ranges over every PE of one SIP and `I` over every PE of another.

use super::graph::{LinkKind, Node};
use super::route::{Acc, Endpoint, Route, Router};
use super::Topology;
use crate::ids::PeId;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

/// Figures of all links of one kind.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LinkKindSummary {
    /// The kind.
    pub kind: LinkKind,
    /// Directional links of this kind.
    pub count: usize,
    /// Smallest bandwidth, GB/s.
    pub gbps_min: f64,
    /// Largest bandwidth, GB/s.
    pub gbps_max: f64,
    /// Smallest latency, ns.
    pub latency_ns_min: f64,
    /// Largest latency, ns.
    pub latency_ns_max: f64,
}

/// One PE-to-PE route, as the summary reports it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RouteSummary {
    /// Source PE.
    pub from: PeId,
    /// Destination PE.
    pub to: PeId,
    /// Links on the route.
    pub hops: usize,
    /// Link latencies plus node overheads ([`Route::fixed_ps`]), ns.
    pub latency_ns: f64,
    /// Smallest bandwidth on the route, GB/s.
    pub bottleneck_gbps: f64,
}

/// What `kernbench topo` prints (and `--json` serialises).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TopologySummary {
    /// The topology's name.
    pub name: String,
    /// SIPs.
    pub sips: u16,
    /// Rows and columns of cubes per SIP.
    pub cube_mesh: [u16; 2],
    /// Cubes in the system.
    pub cubes: usize,
    /// PEs per cube.
    pub pes_per_cube: u16,
    /// PEs in the system.
    pub pes: usize,
    /// Rows and columns of a cube's router mesh.
    pub router_mesh: [u16; 2],
    /// Routers per cube (without the excluded ones).
    pub routers_per_cube: usize,
    /// Parallel UCIe connections per cube side.
    pub ucie_connections: u16,
    /// Nodes of the structure graph.
    pub nodes: usize,
    /// Directional links.
    pub links: usize,
    /// Link figures by kind (kinds present only).
    pub link_kinds: Vec<LinkKindSummary>,
    /// The PE-to-PE route with the most hops (ties: the slower).
    pub longest_route: Option<RouteSummary>,
    /// The slowest PE-to-PE route inside one cube.
    pub worst_same_cube: Option<RouteSummary>,
    /// The slowest PE-to-PE route between cubes of one SIP.
    pub worst_cross_cube: Option<RouteSummary>,
    /// The slowest PE-to-PE route between SIPs.
    pub worst_cross_sip: Option<RouteSummary>,
    /// The UCIe calibration route ([`Topology::ucie_probe_pair`]).
    pub ucie_probe: Option<RouteSummary>,
    /// The longest launch (host to a PE ready to run, [`Topology::launch_ps`]), ns.
    pub worst_launch_ns: f64,
}

fn ns(ps: u64) -> f64 {
    ps as f64 / 1000.0
}

fn pe_route(t: &Topology, a: PeId, b: PeId) -> Route {
    let mut acc = Acc::new(t.fabric());
    Router {
        layout: t.layout(),
        fabric: t.fabric(),
    }
    .push_route(&mut acc, Endpoint::Pe(a), Endpoint::Pe(b));
    acc.finish()
}

fn summary_of(a: PeId, b: PeId, r: &Route) -> RouteSummary {
    RouteSummary {
        from: a,
        to: b,
        hops: r.hop_count(),
        latency_ns: ns(r.fixed_ps()),
        bottleneck_gbps: r.bottleneck_gbps,
    }
}

/// Orders routes by latency (then hops) or by hops (then latency).
#[derive(Clone, Copy)]
enum By {
    Latency,
    Hops,
}

fn key(r: &Route, by: By) -> (u64, u64) {
    let (l, h) = (r.fixed_ps(), r.hop_count() as u64);
    match by {
        By::Latency => (l, h),
        By::Hops => (h, l),
    }
}

/// Keeps the larger of two candidates (the first on a tie).
fn keep(best: &mut Option<(PeId, PeId, Route)>, a: PeId, b: PeId, r: Route, by: By) {
    let better = match best {
        None => true,
        Some((_, _, cur)) => key(cur, by) < key(&r, by),
    };
    if better {
        *best = Some((a, b, r));
    }
}

/// The worst pair with sources from `srcs` and destinations from `dsts`, for
/// routes of the form `E(a) + M + I(b)` (a and b never in the same cube).
fn worst_separable(
    t: &Topology,
    srcs: &[PeId],
    dsts: &[PeId],
    by: By,
) -> Option<(PeId, PeId, Route)> {
    let (&a0, &b0) = (srcs.first()?, dsts.first()?);
    let mut best_a = None;
    for &a in srcs {
        keep(&mut best_a, a, b0, pe_route(t, a, b0), by);
    }
    let mut best_b = None;
    for &b in dsts {
        keep(&mut best_b, a0, b, pe_route(t, a0, b), by);
    }
    let (a, b) = (best_a?.0, best_b?.1);
    Some((a, b, pe_route(t, a, b)))
}

fn cube_pes(t: &Topology, sip: u16, cube: u16) -> Vec<PeId> {
    (0..t.pes_per_cube())
        .map(|p| PeId::new(sip, cube, p))
        .collect()
}

fn sip_pes(t: &Topology, sip: u16) -> Vec<PeId> {
    (0..t.cubes_per_sip())
        .flat_map(|c| cube_pes(t, sip, c))
        .collect()
}

/// Worst by latency and by hops inside one cube (all pairs of one cube).
fn same_cube(t: &Topology) -> [Option<(PeId, PeId, Route)>; 2] {
    let pes = cube_pes(t, 0, 0);
    let (mut lat, mut hops) = (None, None);
    for &a in &pes {
        for &b in pes.iter().filter(|&&b| b != a) {
            let r = pe_route(t, a, b);
            keep(&mut hops, a, b, r.clone(), By::Hops);
            keep(&mut lat, a, b, r, By::Latency);
        }
    }
    [lat, hops]
}

/// Worst by latency and by hops between cubes of one SIP.
fn cross_cube(t: &Topology) -> [Option<(PeId, PeId, Route)>; 2] {
    let (rows, cols) = t.cube_mesh();
    let dims = |n: u16| {
        let m = i32::from(n) - 1;
        if m == 0 {
            vec![0]
        } else {
            vec![-m, 0, m]
        }
    };
    let (mut lat, mut hops) = (None, None);
    for dy in dims(rows) {
        for dx in dims(cols) {
            if dx == 0 && dy == 0 {
                continue;
            }
            let r0 = if dy >= 0 { 0 } else { i32::from(rows) - 1 };
            let c0 = if dx >= 0 { 0 } else { i32::from(cols) - 1 };
            let ca = (r0 * i32::from(cols) + c0) as u16;
            let cb = ((r0 + dy) * i32::from(cols) + c0 + dx) as u16;
            let (srcs, dsts) = (cube_pes(t, 0, ca), cube_pes(t, 0, cb));
            for (best, by) in [(&mut lat, By::Latency), (&mut hops, By::Hops)] {
                if let Some((a, b, r)) = worst_separable(t, &srcs, &dsts, by) {
                    keep(best, a, b, r, by);
                }
            }
        }
    }
    [lat, hops]
}

/// Worst by latency and by hops between SIPs.
fn cross_sip(t: &Topology) -> [Option<(PeId, PeId, Route)>; 2] {
    if t.num_sips() < 2 {
        return [None, None];
    }
    let (srcs, dsts) = (sip_pes(t, 0), sip_pes(t, 1));
    [
        worst_separable(t, &srcs, &dsts, By::Latency),
        worst_separable(t, &srcs, &dsts, By::Hops),
    ]
}

pub(crate) fn summarize(t: &Topology) -> TopologySummary {
    let layout = t.layout();
    let mut kinds: BTreeMap<LinkKind, LinkKindSummary> = BTreeMap::new();
    for l in t.links() {
        let lat = ns(l.latency_ps);
        let e = kinds.entry(l.kind).or_insert(LinkKindSummary {
            kind: l.kind,
            count: 0,
            gbps_min: l.gbps,
            gbps_max: l.gbps,
            latency_ns_min: lat,
            latency_ns_max: lat,
        });
        e.count += 1;
        e.gbps_min = e.gbps_min.min(l.gbps);
        e.gbps_max = e.gbps_max.max(l.gbps);
        e.latency_ns_min = e.latency_ns_min.min(lat);
        e.latency_ns_max = e.latency_ns_max.max(lat);
    }

    let categories = [same_cube(t), cross_cube(t), cross_sip(t)];
    let mut longest: Option<(PeId, PeId, Route)> = None;
    for [_, by_hops] in &categories {
        if let Some((a, b, r)) = by_hops {
            keep(&mut longest, *a, *b, r.clone(), By::Hops);
        }
    }
    let to_summary =
        |x: &Option<(PeId, PeId, Route)>| x.as_ref().map(|(a, b, r)| summary_of(*a, *b, r));
    let [same, cross, sip] = categories.map(|[lat, _]| lat);

    let ucie_probe = (t.cubes_per_sip() >= 2).then(|| {
        let (a, b) = t.ucie_probe_pair();
        summary_of(a, b, &pe_route(t, a, b))
    });
    let worst_launch = sip_pes(t, 0)
        .into_iter()
        .map(|p| t.launch_ps(p))
        .max()
        .unwrap_or(0);

    TopologySummary {
        name: t.name().to_string(),
        sips: t.num_sips(),
        cube_mesh: [layout.cube_rows, layout.cube_cols],
        cubes: usize::from(t.num_sips()) * usize::from(t.cubes_per_sip()),
        pes_per_cube: t.pes_per_cube(),
        pes: t.pe_count(),
        router_mesh: [layout.noc_rows, layout.noc_cols],
        routers_per_cube: layout.present.iter().filter(|&&p| p).count(),
        ucie_connections: layout.connections,
        nodes: t.graph().node_count(),
        links: t.links().len(),
        link_kinds: kinds.into_values().collect(),
        longest_route: to_summary(&longest),
        worst_same_cube: to_summary(&same),
        worst_cross_cube: to_summary(&cross),
        worst_cross_sip: to_summary(&sip),
        ucie_probe,
        worst_launch_ns: ns(worst_launch),
    }
}

fn fmt_range(f: &mut fmt::Formatter<'_>, lo: f64, hi: f64) -> fmt::Result {
    if lo == hi {
        write!(f, "{:>13}", format!("{lo:.1}"))
    } else {
        write!(f, "{:>13}", format!("{lo:.1}-{hi:.1}"))
    }
}

fn fmt_route(f: &mut fmt::Formatter<'_>, label: &str, r: &Option<RouteSummary>) -> fmt::Result {
    match r {
        None => writeln!(f, "  {label:<14} -"),
        Some(r) => writeln!(
            f,
            "  {label:<14} {:>8.1} ns  {:>3} hops  {:>6.1} GB/s  {} -> {}",
            r.latency_ns,
            r.hops,
            r.bottleneck_gbps,
            Node::Pe(r.from),
            Node::Pe(r.to)
        ),
    }
}

impl fmt::Display for TopologySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "topology {}", self.name)?;
        writeln!(
            f,
            "{} SIP{} x {} cubes ({}x{}) x {} PEs per cube",
            self.sips,
            if self.sips == 1 { "" } else { "s" },
            self.cube_mesh[0] as usize * self.cube_mesh[1] as usize,
            self.cube_mesh[0],
            self.cube_mesh[1],
            self.pes_per_cube
        )?;
        writeln!(f, "{} cubes", self.cubes)?;
        writeln!(f, "{} PEs", self.pes)?;
        writeln!(
            f,
            "cube NOC: {}x{} routers, {} present; {} UCIe connections per side",
            self.router_mesh[0], self.router_mesh[1], self.routers_per_cube, self.ucie_connections
        )?;
        writeln!(
            f,
            "structure graph: {} nodes, {} directional links",
            self.nodes, self.links
        )?;
        writeln!(f, "links by kind:")?;
        writeln!(
            f,
            "  {:<12} {:>7} {:>13} {:>13}",
            "kind", "count", "GB/s", "latency ns"
        )?;
        for k in &self.link_kinds {
            write!(f, "  {:<12} {:>7} ", k.kind.name(), k.count)?;
            fmt_range(f, k.gbps_min, k.gbps_max)?;
            f.write_char(' ')?;
            fmt_range(f, k.latency_ns_min, k.latency_ns_max)?;
            writeln!(f)?;
        }
        match &self.longest_route {
            Some(r) => writeln!(
                f,
                "longest route: {} hops, {:.1} ns ({} -> {})",
                r.hops,
                r.latency_ns,
                Node::Pe(r.from),
                Node::Pe(r.to)
            )?,
            None => writeln!(f, "longest route: -")?,
        }
        writeln!(f, "worst PE-to-PE latency (link latency + node overheads):")?;
        fmt_route(f, "same cube", &self.worst_same_cube)?;
        fmt_route(f, "across cubes", &self.worst_cross_cube)?;
        fmt_route(f, "across SIPs", &self.worst_cross_sip)?;
        fmt_route(f, "UCIe probe", &self.ucie_probe)?;
        writeln!(
            f,
            "worst launch (host -> IO_CPU -> M_CPU -> PE_CPU): {:.1} ns",
            self.worst_launch_ns
        )
    }
}

/// Quotes a string for dot.
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

pub(crate) fn to_dot(t: &Topology) -> String {
    let g = t.graph();
    let mut clusters: BTreeMap<(u16, u32), Vec<usize>> = BTreeMap::new();
    let mut top = Vec::new();
    for idx in g.node_indices() {
        let n = g[idx];
        match (n.sip(), n.cube()) {
            (_, Some(c)) => clusters
                .entry((c.sip, u32::from(c.cube)))
                .or_default()
                .push(idx.index()),
            (Some(s), None) => clusters
                .entry((s.0, u32::MAX))
                .or_default()
                .push(idx.index()),
            (None, None) => top.push(idx.index()),
        }
    }
    let mut out = String::new();
    let _ = writeln!(out, "digraph {} {{", quote(t.name()));
    let _ = writeln!(out, "  node [shape=box, fontsize=10];");
    let _ = writeln!(out, "  edge [fontsize=8];");
    let node_line = |out: &mut String, indent: &str, i: usize| {
        let n = g[petgraph::graph::NodeIndex::new(i)];
        let _ = writeln!(out, "{indent}n{i} [label={}];", quote(&n.to_string()));
    };
    for &i in &top {
        node_line(&mut out, "  ", i);
    }
    for ((sip, cube), nodes) in &clusters {
        let label = if *cube == u32::MAX {
            format!("sip{sip}/io")
        } else {
            format!("sip{sip}/cube{cube}")
        };
        let id = if *cube == u32::MAX {
            format!("cluster_s{sip}_io")
        } else {
            format!("cluster_s{sip}_c{cube}")
        };
        let _ = writeln!(out, "  subgraph {} {{", quote(&id));
        let _ = writeln!(out, "    label={};", quote(&label));
        for &i in nodes {
            node_line(&mut out, "    ", i);
        }
        let _ = writeln!(out, "  }}");
    }
    for e in g.edge_indices() {
        let (a, b) = g
            .edge_endpoints(e)
            .expect("an edge index from the graph has endpoints");
        let link = t.link(g[e]);
        let _ = writeln!(
            out,
            "  n{} -> n{} [label={}];",
            a.index(),
            b.index(),
            quote(&format!("{} {}", link.kind.name(), link.gbps))
        );
    }
    out.push_str("}\n");
    out
}
