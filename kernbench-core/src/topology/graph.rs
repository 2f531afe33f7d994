//! The structure graph (one node per component, one edge per directional
//! link), the link table, and the per-cube tables that make routing O(hops).

use super::config::Side;
use super::validate::{Layout, LinkFig};
use crate::ids::{CubeId, PeId, Ps, SipId};
use petgraph::graph::{DiGraph, NodeIndex};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::fmt;

/// A directional link: an index into [`Topology::links`](super::Topology::links).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LinkId(pub u32);

impl LinkId {
    /// The index into the link table.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for LinkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "link{}", self.0)
    }
}

/// What a link is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkKind {
    /// Router to router inside a cube.
    Noc,
    /// PE to its router.
    PeNoc,
    /// M_CPU to its router.
    McpuNoc,
    /// Cube SRAM to its router (latency = SRAM access).
    Sram,
    /// HBM controller port to its router.
    HbmPort,
    /// An HBM slice to its PE or to its HBM port (latency = HBM access).
    Hbm,
    /// UCIe endpoint to its edge router.
    UcieAttach,
    /// One UCIe connection across a cube boundary, or between a cube and the
    /// IO chiplet (latency = two UCIe ports).
    Ucie,
    /// Inside the IO chiplet: hub to UCIe port, PCIe endpoint or IO_CPU.
    IoNoc,
    /// Host to a SIP's PCIe endpoint.
    Pcie,
    /// A SIP's IO chiplet to the system switch.
    System,
}

impl LinkKind {
    /// Every kind, in display order.
    pub const ALL: [LinkKind; 11] = [
        LinkKind::Noc,
        LinkKind::PeNoc,
        LinkKind::McpuNoc,
        LinkKind::Sram,
        LinkKind::HbmPort,
        LinkKind::Hbm,
        LinkKind::UcieAttach,
        LinkKind::Ucie,
        LinkKind::IoNoc,
        LinkKind::Pcie,
        LinkKind::System,
    ];

    /// The snake-case name (as in JSON).
    pub const fn name(self) -> &'static str {
        match self {
            LinkKind::Noc => "noc",
            LinkKind::PeNoc => "pe_noc",
            LinkKind::McpuNoc => "mcpu_noc",
            LinkKind::Sram => "sram",
            LinkKind::HbmPort => "hbm_port",
            LinkKind::Hbm => "hbm",
            LinkKind::UcieAttach => "ucie_attach",
            LinkKind::Ucie => "ucie",
            LinkKind::IoNoc => "io_noc",
            LinkKind::Pcie => "pcie",
            LinkKind::System => "system",
        }
    }
}

impl fmt::Display for LinkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A component of the machine: a node of the structure graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Node {
    /// The host (its memory and CPU); one per system.
    Host,
    /// The system switch between SIPs.
    Switch,
    /// A SIP's PCIe endpoint.
    PcieEp(SipId),
    /// A SIP's IO_CPU.
    IoCpu(SipId),
    /// A SIP's IO NOC (modelled as one hub).
    IoNoc(SipId),
    /// A UCIe port of a SIP's IO chiplet.
    IoUcie {
        /// The SIP.
        sip: SipId,
        /// The port.
        port: u16,
    },
    /// A router of a cube's NOC.
    Router {
        /// The cube.
        cube: CubeId,
        /// Router row (0 = north).
        row: u16,
        /// Router column (0 = west).
        col: u16,
    },
    /// A PE.
    Pe(PeId),
    /// A PE's HBM slice.
    HbmSlice(PeId),
    /// An HBM controller port of a cube.
    HbmPort {
        /// The cube.
        cube: CubeId,
        /// The port.
        port: u16,
    },
    /// A cube's SRAM.
    Sram(CubeId),
    /// A cube's M_CPU.
    MCpu(CubeId),
    /// A cube's UCIe endpoint on one side.
    Ucie {
        /// The cube.
        cube: CubeId,
        /// The side.
        side: Side,
    },
}

/// The node type links refer to.
pub type NodeRef = Node;

impl Node {
    /// The cube the node belongs to, if it is inside a cube.
    pub fn cube(&self) -> Option<CubeId> {
        match *self {
            Node::Router { cube, .. }
            | Node::HbmPort { cube, .. }
            | Node::Sram(cube)
            | Node::MCpu(cube)
            | Node::Ucie { cube, .. } => Some(cube),
            Node::Pe(pe) | Node::HbmSlice(pe) => Some(pe.cube_id()),
            _ => None,
        }
    }

    /// The SIP the node belongs to, if any (the host and the switch belong to none).
    pub fn sip(&self) -> Option<SipId> {
        match *self {
            Node::Host | Node::Switch => None,
            Node::PcieEp(s) | Node::IoCpu(s) | Node::IoNoc(s) | Node::IoUcie { sip: s, .. } => {
                Some(s)
            }
            _ => self.cube().map(|c| SipId(c.sip)),
        }
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cube =
            |f: &mut fmt::Formatter<'_>, c: CubeId| write!(f, "sip{}/cube{}/", c.sip, c.cube);
        match *self {
            Node::Host => f.write_str("host"),
            Node::Switch => f.write_str("switch"),
            Node::PcieEp(s) => write!(f, "sip{}/io/pcie_ep", s.0),
            Node::IoCpu(s) => write!(f, "sip{}/io/io_cpu", s.0),
            Node::IoNoc(s) => write!(f, "sip{}/io/noc", s.0),
            Node::IoUcie { sip, port } => write!(f, "sip{}/io/ucie{port}", sip.0),
            Node::Router { cube: c, row, col } => {
                cube(f, c)?;
                write!(f, "router({row},{col})")
            }
            Node::Pe(p) => write!(f, "sip{}/cube{}/pe{}", p.sip, p.cube, p.pe),
            Node::HbmSlice(p) => write!(f, "sip{}/cube{}/hbm{}", p.sip, p.cube, p.pe),
            Node::HbmPort { cube: c, port } => {
                cube(f, c)?;
                write!(f, "hbm_port{port}")
            }
            Node::Sram(c) => {
                cube(f, c)?;
                f.write_str("sram")
            }
            Node::MCpu(c) => {
                cube(f, c)?;
                f.write_str("m_cpu")
            }
            Node::Ucie { cube: c, side } => {
                cube(f, c)?;
                write!(f, "ucie_{side}")
            }
        }
    }
}

/// One directional link.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Link {
    /// What the link is.
    pub kind: LinkKind,
    /// Where bytes enter it.
    pub from: NodeRef,
    /// Where bytes leave it.
    pub to: NodeRef,
    /// Bandwidth, GB/s (bytes per ns).
    pub gbps: f64,
    /// Latency, ps.
    pub latency_ps: Ps,
    /// Overhead paid once per transfer at the node bytes enter it from (an
    /// IO_CPU, an M_CPU or the SIP switch; 0 elsewhere), ps.
    pub overhead_ps: Ps,
}

/// No link / no direction.
pub(crate) const NONE: u32 = u32::MAX;
/// No next hop (already there).
pub(crate) const HERE: u8 = u8::MAX;

/// Link offsets inside one cube's block of links; every cube has the same.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct CubeTemplate {
    /// Links per cube.
    pub links: u32,
    /// Per router, per direction (N, E, S, W): the link to the neighbour, or `NONE`.
    pub noc_out: Vec<[u32; 4]>,
    /// `next[src * routers + dst]`: the direction of the first hop, `HERE` if src == dst.
    pub next: Vec<u8>,
    pub pe_up: Vec<u32>,
    pub pe_down: Vec<u32>,
    pub pe_to_slice: Vec<u32>,
    pub slice_to_pe: Vec<u32>,
    pub slice_to_port: Vec<u32>,
    pub port_to_slice: Vec<u32>,
    pub hbm_up: Vec<u32>,
    pub hbm_down: Vec<u32>,
    pub sram_up: u32,
    pub sram_down: u32,
    pub mcpu_up: u32,
    pub mcpu_down: u32,
}

/// The links of one cube side that has a UCIe endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SideLinks {
    /// Router -> endpoint.
    pub attach_out: u32,
    /// Endpoint -> router.
    pub attach_in: u32,
    /// The first of `connections` consecutive links endpoint -> peer endpoint.
    pub cross_out: u32,
}

/// The links of one SIP's IO chiplet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IoLinks {
    pub host_to_ep: u32,
    pub ep_to_host: u32,
    pub ep_to_hub: u32,
    pub hub_to_ep: u32,
    pub cpu_to_hub: u32,
    pub hub_to_cpu: u32,
    /// Per used UCIe port.
    pub port_to_hub: Vec<u32>,
    pub hub_to_port: Vec<u32>,
    /// Per used UCIe port: the first of `connections` links port -> cube endpoint.
    pub port_cross: Vec<u32>,
    /// Hub -> switch and switch -> hub (`NONE` with one SIP).
    pub sys_up: u32,
    pub sys_down: u32,
}

/// The built machine: links, graph and routing tables.
#[derive(Clone, Debug)]
pub(crate) struct Fabric {
    pub links: Vec<Link>,
    pub graph: DiGraph<Node, LinkId>,
    pub template: CubeTemplate,
    /// Per global cube (`sip * cubes_per_sip + cube`): first link of its block.
    pub cube_base: Vec<u32>,
    /// Per global cube, per side.
    pub sides: Vec<[Option<SideLinks>; 4]>,
    /// Per SIP.
    pub io: Vec<IoLinks>,
    /// Per used IO UCIe port: the local cube it attaches to.
    pub io_cube: Vec<u16>,
    /// Per local cube: the IO UCIe port nearest to it.
    pub cube_io_port: Vec<u16>,
    /// Per link: out of service (empty when nothing failed).
    pub dead: Vec<bool>,
    /// Graph node of each component (filled only when something failed:
    /// rerouting needs it).
    pub index: HashMap<Node, NodeIndex>,
    /// Graph searches run so far: one per destination when the routing
    /// table is built, and one per detour around a failure; never one per
    /// ordinary route.
    pub searches: SearchCount,
}

/// A count of graph searches, safe to bump from any thread.
#[derive(Debug, Default)]
pub(crate) struct SearchCount(std::sync::atomic::AtomicU64);

impl SearchCount {
    pub(crate) fn bump(&self, n: u64) {
        self.0.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Clone for SearchCount {
    fn clone(&self) -> Self {
        SearchCount(std::sync::atomic::AtomicU64::new(self.get()))
    }
}

struct Builder<'a> {
    layout: &'a Layout,
    links: Vec<Link>,
    graph: DiGraph<Node, LinkId>,
    index: HashMap<Node, NodeIndex>,
}

impl Builder<'_> {
    fn node(&mut self, n: Node) -> NodeIndex {
        if let Some(&i) = self.index.get(&n) {
            return i;
        }
        let i = self.graph.add_node(n);
        self.index.insert(n, i);
        i
    }

    fn overhead_of(&self, n: Node) -> Ps {
        match n {
            Node::IoCpu(_) => self.layout.io_cpu_ps,
            Node::MCpu(_) => self.layout.mcpu_ps,
            Node::Switch => self.layout.switch_ps,
            _ => 0,
        }
    }

    fn link(&mut self, kind: LinkKind, from: Node, to: Node, fig: LinkFig) -> u32 {
        let id = u32::try_from(self.links.len()).expect("link count fits u32 (validation caps it)");
        let (a, b) = (self.node(from), self.node(to));
        self.graph.add_edge(a, b, LinkId(id));
        self.links.push(Link {
            kind,
            from,
            to,
            gbps: fig.gbps,
            latency_ps: fig.latency_ps,
            overhead_ps: self.overhead_of(from),
        });
        id
    }

    /// Both directions; returns (from -> to, to -> from).
    fn pair(&mut self, kind: LinkKind, a: Node, b: Node, fig: LinkFig) -> (u32, u32) {
        (self.link(kind, a, b, fig), self.link(kind, b, a, fig))
    }
}

/// The router one step from `r` in direction `d` (N, E, S, W), if inside the mesh.
pub(crate) fn step(r: usize, d: usize, rows: usize, cols: usize) -> Option<usize> {
    let (row, col) = (r / cols, r % cols);
    match d {
        0 if row > 0 => Some(r - cols),
        1 if col + 1 < cols => Some(r + 1),
        2 if row + 1 < rows => Some(r + cols),
        3 if col > 0 => Some(r - 1),
        _ => None,
    }
}

/// The first-hop table: a shortest path that prefers X (columns) first, then Y,
/// which is plain XY routing wherever the excluded routers do not interfere.
fn next_hop_table(layout: &Layout) -> Vec<u8> {
    let (rows, cols) = (usize::from(layout.noc_rows), usize::from(layout.noc_cols));
    let n = rows * cols;
    let mut next = vec![HERE; n * n];
    let mut dist = vec![u32::MAX; n];
    let mut queue = VecDeque::new();
    for dst in (0..n).filter(|&i| layout.present[i]) {
        dist.fill(u32::MAX);
        dist[dst] = 0;
        queue.clear();
        queue.push_back(dst);
        while let Some(i) = queue.pop_front() {
            for d in 0..4 {
                if let Some(j) = step(i, d, rows, cols) {
                    if layout.present[j] && dist[j] == u32::MAX {
                        dist[j] = dist[i] + 1;
                        queue.push_back(j);
                    }
                }
            }
        }
        let (dr, dc) = (dst / cols, dst % cols);
        for src in (0..n).filter(|&i| layout.present[i] && i != dst) {
            let (sr, sc) = (src / cols, src % cols);
            let mut prefs = Vec::with_capacity(6);
            if dc > sc {
                prefs.push(1);
            } else if dc < sc {
                prefs.push(3);
            }
            if dr > sr {
                prefs.push(2);
            } else if dr < sr {
                prefs.push(0);
            }
            prefs.extend([0, 1, 2, 3]);
            let want = dist[src].wrapping_sub(1);
            next[src * n + dst] = prefs
                .into_iter()
                .find(|&d| {
                    step(src, d, rows, cols).is_some_and(|j| layout.present[j] && dist[j] == want)
                })
                .map_or(HERE, |d| d as u8);
        }
    }
    next
}

/// Absolute link ids of one cube, in the order they are created.
#[derive(Default)]
struct CubeIds {
    noc_out: Vec<[u32; 4]>,
    pe_up: Vec<u32>,
    pe_down: Vec<u32>,
    pe_to_slice: Vec<u32>,
    slice_to_pe: Vec<u32>,
    slice_to_port: Vec<u32>,
    port_to_slice: Vec<u32>,
    hbm_up: Vec<u32>,
    hbm_down: Vec<u32>,
    sram: (u32, u32),
    mcpu: (u32, u32),
}

fn build_cube(b: &mut Builder<'_>, cube: CubeId) -> CubeIds {
    let l = b.layout;
    let (rows, cols) = (usize::from(l.noc_rows), usize::from(l.noc_cols));
    let router = |i: usize| Node::Router {
        cube,
        row: (i / cols) as u16,
        col: (i % cols) as u16,
    };
    let mut ids = CubeIds {
        noc_out: vec![[NONE; 4]; rows * cols],
        ..CubeIds::default()
    };
    for i in (0..rows * cols).filter(|&i| l.present[i]) {
        b.node(router(i));
    }
    for i in (0..rows * cols).filter(|&i| l.present[i]) {
        for d in 0..4 {
            if let Some(j) = step(i, d, rows, cols).filter(|&j| l.present[j]) {
                ids.noc_out[i][d] = b.link(LinkKind::Noc, router(i), router(j), l.noc);
            }
        }
    }
    for (p, &r) in l.pe_router.iter().enumerate() {
        let pe = PeId::new(cube.sip, cube.cube, p as u16);
        let (up, down) = b.pair(
            LinkKind::PeNoc,
            Node::Pe(pe),
            router(usize::from(r)),
            l.pe_link,
        );
        ids.pe_up.push(up);
        ids.pe_down.push(down);
        let (to, from) = b.pair(
            LinkKind::Hbm,
            Node::Pe(pe),
            Node::HbmSlice(pe),
            l.slice_link,
        );
        ids.pe_to_slice.push(to);
        ids.slice_to_pe.push(from);
    }
    for (k, &r) in l.hbm_port_router.iter().enumerate() {
        let port = Node::HbmPort {
            cube,
            port: k as u16,
        };
        let (up, down) = b.pair(
            LinkKind::HbmPort,
            port,
            router(usize::from(r)),
            l.hbm_port_link,
        );
        ids.hbm_up.push(up);
        ids.hbm_down.push(down);
    }
    for (p, &k) in l.slice_home.iter().enumerate() {
        let slice = Node::HbmSlice(PeId::new(cube.sip, cube.cube, p as u16));
        let port = Node::HbmPort { cube, port: k };
        let (up, down) = b.pair(LinkKind::Hbm, slice, port, l.slice_link);
        ids.slice_to_port.push(up);
        ids.port_to_slice.push(down);
    }
    ids.sram = b.pair(
        LinkKind::Sram,
        Node::Sram(cube),
        router(usize::from(l.sram_router)),
        l.sram_link,
    );
    ids.mcpu = b.pair(
        LinkKind::McpuNoc,
        Node::MCpu(cube),
        router(usize::from(l.mcpu_router)),
        l.mcpu_link,
    );
    ids
}

fn rel(v: &[u32], base: u32) -> Vec<u32> {
    v.iter()
        .map(|&x| if x == NONE { NONE } else { x - base })
        .collect()
}

fn template_of(ids: &CubeIds, base: u32, links: u32, next: Vec<u8>) -> CubeTemplate {
    CubeTemplate {
        links,
        noc_out: ids
            .noc_out
            .iter()
            .map(|a| a.map(|x| if x == NONE { NONE } else { x - base }))
            .collect(),
        next,
        pe_up: rel(&ids.pe_up, base),
        pe_down: rel(&ids.pe_down, base),
        pe_to_slice: rel(&ids.pe_to_slice, base),
        slice_to_pe: rel(&ids.slice_to_pe, base),
        slice_to_port: rel(&ids.slice_to_port, base),
        port_to_slice: rel(&ids.port_to_slice, base),
        hbm_up: rel(&ids.hbm_up, base),
        hbm_down: rel(&ids.hbm_down, base),
        sram_up: ids.sram.0 - base,
        sram_down: ids.sram.1 - base,
        mcpu_up: ids.mcpu.0 - base,
        mcpu_down: ids.mcpu.1 - base,
    }
}

/// The local cube a side of the cube mesh leads to from `cube`, if any.
pub(crate) fn cube_neighbour(cube: u16, side: Side, rows: u16, cols: u16) -> Option<u16> {
    let (r, c) = (cube / cols, cube % cols);
    let (r, c) = match side {
        Side::N if r > 0 => (r - 1, c),
        Side::E if c + 1 < cols => (r, c + 1),
        Side::S if r + 1 < rows => (r + 1, c),
        Side::W if c > 0 => (r, c - 1),
        _ => return None,
    };
    Some(r * cols + c)
}

/// Builds the machine from a validated layout.
pub(crate) fn build(layout: &Layout) -> Fabric {
    let mut b = Builder {
        layout,
        links: Vec::new(),
        graph: DiGraph::new(),
        index: HashMap::new(),
    };
    let sips = layout.sips;
    let (crows, ccols) = (layout.cube_rows, layout.cube_cols);
    let cubes_per_sip = crows * ccols;
    let conns = u32::from(layout.connections);
    let io_side = layout.io_side;

    // IO ports: one per cube on the IO side of the cube mesh.
    let io_cube: Vec<u16> = match io_side {
        Side::N => (0..ccols).collect(),
        Side::S => (0..ccols).map(|c| (crows - 1) * ccols + c).collect(),
        Side::W => (0..crows).map(|r| r * ccols).collect(),
        Side::E => (0..crows).map(|r| r * ccols + ccols - 1).collect(),
    };
    let cube_io_port: Vec<u16> = (0..cubes_per_sip)
        .map(|c| {
            let (r, col) = (c / ccols, c % ccols);
            (0..io_cube.len())
                .min_by_key(|&k| {
                    let t = io_cube[k];
                    ((t / ccols).abs_diff(r) + (t % ccols).abs_diff(col), k)
                })
                .unwrap_or(0) as u16
        })
        .collect();

    b.node(Node::Host);
    if sips > 1 {
        b.node(Node::Switch);
    }

    // IO chiplets.
    let mut io = Vec::with_capacity(usize::from(sips));
    for s in 0..sips {
        let sip = SipId(s);
        let hub = Node::IoNoc(sip);
        let ep = Node::PcieEp(sip);
        let (host_to_ep, ep_to_host) = b.pair(LinkKind::Pcie, Node::Host, ep, layout.pcie);
        let (ep_to_hub, hub_to_ep) = b.pair(LinkKind::IoNoc, ep, hub, layout.io_noc);
        let (cpu_to_hub, hub_to_cpu) =
            b.pair(LinkKind::IoNoc, Node::IoCpu(sip), hub, layout.io_noc);
        let mut port_to_hub = Vec::new();
        let mut hub_to_port = Vec::new();
        for k in 0..io_cube.len() {
            let port = Node::IoUcie {
                sip,
                port: k as u16,
            };
            let (up, down) = b.pair(LinkKind::IoNoc, port, hub, layout.io_noc);
            port_to_hub.push(up);
            hub_to_port.push(down);
        }
        io.push(IoLinks {
            host_to_ep,
            ep_to_host,
            ep_to_hub,
            hub_to_ep,
            cpu_to_hub,
            hub_to_cpu,
            port_to_hub,
            hub_to_port,
            port_cross: Vec::new(),
            sys_up: NONE,
            sys_down: NONE,
        });
    }

    // Cubes: every cube's internal links form one block with the same layout.
    let next = next_hop_table(layout);
    // One breadth-first search per destination router of the cube layout.
    let searches = SearchCount::default();
    searches.bump(layout.present.iter().filter(|p| **p).count() as u64);
    let total_cubes = usize::from(sips) * usize::from(cubes_per_sip);
    let mut cube_base = Vec::with_capacity(total_cubes);
    let mut template = None;
    for s in 0..sips {
        for c in 0..cubes_per_sip {
            let base = b.links.len() as u32;
            let ids = build_cube(&mut b, CubeId { sip: s, cube: c });
            let links = b.links.len() as u32 - base;
            cube_base.push(base);
            match &template {
                None => template = Some(template_of(&ids, base, links, next.clone())),
                Some(t) => debug_assert_eq!(
                    template_of(&ids, base, links, Vec::new()),
                    CubeTemplate {
                        next: Vec::new(),
                        ..t.clone()
                    },
                    "every cube has the same link layout"
                ),
            }
        }
    }
    let template = template.expect("validation guarantees at least one cube");

    // UCIe endpoints and crossings.
    let rtr = |cube: CubeId, r: u16| Node::Router {
        cube,
        row: r / layout.noc_cols,
        col: r % layout.noc_cols,
    };
    let mut sides: Vec<[Option<SideLinks>; 4]> = vec![[None; 4]; total_cubes];
    for s in 0..sips {
        for c in 0..cubes_per_sip {
            let cube = CubeId { sip: s, cube: c };
            let g = usize::from(s) * usize::from(cubes_per_sip) + usize::from(c);
            for side in Side::ALL {
                let to_cube = cube_neighbour(c, side, crows, ccols);
                let to_io = (side == io_side && to_cube.is_none())
                    .then(|| io_cube.iter().position(|&t| t == c))
                    .flatten();
                if to_cube.is_none() && to_io.is_none() {
                    continue;
                }
                let ep = Node::Ucie { cube, side };
                let router = rtr(cube, layout.ucie_router[side.index()]);
                let (attach_in, attach_out) =
                    b.pair(LinkKind::UcieAttach, ep, router, layout.ucie_attach);
                let peer = match (to_cube, to_io) {
                    (Some(n), _) => Node::Ucie {
                        cube: CubeId { sip: s, cube: n },
                        side: side.opposite(),
                    },
                    (None, Some(k)) => Node::IoUcie {
                        sip: SipId(s),
                        port: k as u16,
                    },
                    (None, None) => unreachable!("checked above"),
                };
                let cross_out = b.links.len() as u32;
                for _ in 0..conns {
                    b.link(LinkKind::Ucie, ep, peer, layout.ucie);
                }
                if let Some(k) = to_io {
                    let port = Node::IoUcie {
                        sip: SipId(s),
                        port: k as u16,
                    };
                    let first = b.links.len() as u32;
                    for _ in 0..conns {
                        b.link(LinkKind::Ucie, port, ep, layout.ucie);
                    }
                    let pc = &mut io[usize::from(s)].port_cross;
                    if pc.len() <= k {
                        pc.resize(k + 1, NONE);
                    }
                    pc[k] = first;
                }
                sides[g][side.index()] = Some(SideLinks {
                    attach_out,
                    attach_in,
                    cross_out,
                });
            }
        }
    }

    // System interconnect.
    if sips > 1 {
        for (s, links) in io.iter_mut().enumerate() {
            let hub = Node::IoNoc(SipId(s as u16));
            let (up, down) = b.pair(LinkKind::System, hub, Node::Switch, layout.system);
            links.sys_up = up;
            links.sys_down = down;
        }
    }

    Fabric {
        links: b.links,
        graph: b.graph,
        template,
        cube_base,
        sides,
        io,
        io_cube,
        cube_io_port,
        dead: Vec::new(),
        index: HashMap::new(),
        searches,
    }
}
