//! Topology files, the structure graph and routes.
//!
//! A topology file (YAML) describes the machine of `HARDWARE.md`: SIPs, each an
//! IO chiplet and a 2D mesh of cubes; each cube a router mesh with PEs, M_CPU,
//! SRAM, HBM ports and UCIe endpoints; a system switch between SIPs. Every
//! figure has a default, so a file states only what differs:
//!
//! ```
//! use kernbench_core::topology::{Endpoint, Topology};
//! use kernbench_core::PeId;
//!
//! let topo = Topology::from_yaml("name: small\nsips: 1\nsip: {cubes: {rows: 2, cols: 2}}\n", "small.yaml")?;
//! assert_eq!(topo.pe_count(), 32);
//!
//! let route = topo.route(Endpoint::Pe(PeId::new(0, 0, 3)), Endpoint::Pe(PeId::new(0, 1, 4)))?;
//! assert_eq!(route.bottleneck_gbps, 128.0); // one UCIe connection
//! # Ok::<(), kernbench_core::topology::TopologyError>(())
//! ```
//!
//! Loading checks every rule (see [`TopologyError`]); a loaded [`Topology`]
//! routes any pair of endpoints in O(hops) with precomputed tables.

mod config;
mod error;
mod failures;
mod graph;
mod route;
mod summary;
mod validate;

pub use config::{
    AttachConfig, Backpressure, BufferKind, CubeConfig, CubeMeshConfig, Degraded, DegradedLink,
    Failures, IoConfig, IpcqSpec, LaunchSpec, LinkSpec, MemorySpec, NocConfig, PeSpec, Side,
    SipConfig, SlowPart, SystemConfig, SystemKind, TopologyConfig, UcieConfig, UcieRouters,
};
pub use error::{locate as field_line, TopologyError};
pub use graph::{Link, LinkId, LinkKind, Node, NodeRef};
pub use route::{Endpoint, Hop, Route};
pub use summary::{LinkKindSummary, RouteSummary, TopologySummary};

use crate::ids::{CubeId, PeId, Ps, SipId};
use graph::Fabric;
use petgraph::graph::DiGraph;
use route::{Acc, Router};
use std::path::Path;
use validate::Layout;

/// The text of `configs/default.yaml`.
pub const DEFAULT_YAML: &str = include_str!("../../../configs/default.yaml");
/// The text of `configs/tiny.yaml`.
pub const TINY_YAML: &str = include_str!("../../../configs/tiny.yaml");
/// The text of `configs/large.yaml`.
pub const LARGE_YAML: &str = include_str!("../../../configs/large.yaml");
/// The shipped extra-large machine (`configs/xl.yaml`): 16 SIPs x 4x4 cubes x 16 PEs = 4096 PEs.
pub const XL_YAML: &str = include_str!("../../../configs/xl.yaml");

/// A loaded, validated machine: its figures, structure graph, link table and routes.
#[derive(Clone, Debug)]
pub struct Topology {
    config: TopologyConfig,
    layout: Layout,
    fabric: Fabric,
}

impl Topology {
    /// Parses and validates a topology file's text. `origin` (usually the file
    /// name) names the file in errors and, when the file has no `name`, the topology.
    ///
    /// Text that breaks the [input limits](crate::input) (size, nesting,
    /// alias expansion) is refused before it is parsed.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Topology, TopologyError> {
        crate::input::check_yaml(text, &crate::input::Limits::default()).map_err(|err| {
            TopologyError::Input {
                origin: origin.to_string(),
                err,
            }
        })?;
        let config: TopologyConfig = if text.trim().is_empty() {
            TopologyConfig::default()
        } else {
            serde_yaml::from_str(text).map_err(|e| TopologyError::from_yaml(&e, origin, text))?
        };
        let stem = Path::new(origin)
            .file_stem()
            .and_then(|s| s.to_str())
            .filter(|s| !s.is_empty())
            .unwrap_or("topology");
        Self::from_config_in(config, origin, text, stem)
    }

    /// Validates a configuration built in code (errors carry no useful line).
    pub fn from_config(config: TopologyConfig) -> Result<Topology, TopologyError> {
        Self::from_config_in(config, "<config>", "", "topology")
    }

    fn from_config_in(
        config: TopologyConfig,
        origin: &str,
        text: &str,
        default_name: &str,
    ) -> Result<Topology, TopologyError> {
        let layout =
            validate::validate(&config, default_name).map_err(|e| TopologyError::Invalid {
                origin: origin.to_string(),
                line: error::locate(text, &e.path),
                path: e.path,
                message: e.message,
            })?;
        let mut fabric = graph::build(&layout);
        failures::apply(&config.failed, &mut fabric)
            .and_then(|()| failures::degrade(&config.degraded, &mut fabric))
            .and_then(|()| failures::check_slow(&config.slow, &fabric))
            .map_err(|e| TopologyError::Invalid {
                origin: origin.to_string(),
                line: error::locate(text, &e.path),
                path: e.path,
                message: e.message,
            })?;
        Ok(Topology {
            config,
            layout,
            fabric,
        })
    }

    /// Reads, parses and validates a topology file; a file larger than
    /// [`MAX_YAML_BYTES`](crate::input::MAX_YAML_BYTES) is refused unread.
    pub fn load(path: &Path) -> Result<Topology, TopologyError> {
        let origin = path.display().to_string();
        let text = crate::input::read_limited(path, crate::input::MAX_YAML_BYTES).map_err(
            |err| match err {
                crate::input::InputError::Io(err) => TopologyError::Io {
                    origin: origin.clone(),
                    err,
                },
                err => TopologyError::Input {
                    origin: origin.clone(),
                    err,
                },
            },
        )?;
        Self::from_yaml(&text, &origin)
    }

    /// The default machine (`configs/default.yaml`, built into the binary):
    /// 2 SIPs x 4x4 cubes x 8 PEs.
    pub fn embedded_default() -> Topology {
        Self::from_yaml(DEFAULT_YAML, "configs/default.yaml")
            .expect("the embedded configs/default.yaml is valid (a test checks it)")
    }

    /// A topology shipped with the crate: `"default"`, `"tiny"`, `"large"` or `"xl"`.
    pub fn builtin(name: &str) -> Option<Topology> {
        let (text, origin) = match name {
            "default" => (DEFAULT_YAML, "configs/default.yaml"),
            "tiny" => (TINY_YAML, "configs/tiny.yaml"),
            "large" => (LARGE_YAML, "configs/large.yaml"),
            "xl" => (XL_YAML, "configs/xl.yaml"),
            _ => return None,
        };
        Some(
            Self::from_yaml(text, origin).unwrap_or_else(|e| {
                panic!("the embedded {origin} is valid (a test checks it): {e}")
            }),
        )
    }

    /// A topology file, or else a built-in name: the one place a name or a
    /// path given by a user becomes a topology.
    pub fn resolve(spec: &str) -> Result<Topology, TopologyError> {
        let path = Path::new(spec);
        if path.exists() {
            return Self::load(path);
        }
        Self::builtin(spec).ok_or_else(|| TopologyError::Unknown {
            spec: spec.to_string(),
            builtins: Self::BUILTIN_NAMES.join(", "),
        })
    }

    /// Names accepted by [`Topology::builtin`].
    pub const BUILTIN_NAMES: [&'static str; 4] = ["default", "tiny", "large", "xl"];

    /// How PE `pe` straggles (the file's `slow` parts that cover it): the
    /// share of its speed it keeps, in thousandths, and how late it starts.
    pub fn straggle(&self, pe: PeId) -> (u32, Ps) {
        // The parts that cover it compound; each checked when loaded.
        let mut speed = 1.0f64;
        let mut delay = 0.0f64;
        for part in self.config.slow.iter().filter(|p| p.covers(pe)) {
            speed *= part.speed;
            delay += part.start_delay_ns;
        }
        (
            ((speed * 1000.0).round() as u32).max(1),
            (delay * 1000.0).round() as Ps,
        )
    }

    /// The configuration as parsed (defaults filled in, positions not resolved).
    pub fn config(&self) -> &TopologyConfig {
        &self.config
    }

    /// The topology's name.
    pub fn name(&self) -> &str {
        &self.layout.name
    }

    /// Number of SIPs.
    pub fn num_sips(&self) -> u16 {
        self.layout.sips
    }

    /// Rows and columns of the cube mesh of each SIP; cube index = row * cols + col.
    pub fn cube_mesh(&self) -> (u16, u16) {
        (self.layout.cube_rows, self.layout.cube_cols)
    }

    /// Cubes per SIP.
    pub fn cubes_per_sip(&self) -> u16 {
        self.layout.cube_rows * self.layout.cube_cols
    }

    /// PEs per cube.
    pub fn pes_per_cube(&self) -> u16 {
        self.layout.pes_per_cube
    }

    /// PEs in the system.
    pub fn pe_count(&self) -> usize {
        usize::from(self.layout.sips)
            * usize::from(self.cubes_per_sip())
            * usize::from(self.layout.pes_per_cube)
    }

    /// Every PE in structural order: by SIP, then cube, then PE.
    pub fn pes(&self) -> impl Iterator<Item = PeId> + '_ {
        let (cubes, pes) = (self.cubes_per_sip(), self.layout.pes_per_cube);
        (0..self.layout.sips).flat_map(move |s| {
            (0..cubes).flat_map(move |c| (0..pes).map(move |p| PeId::new(s, c, p)))
        })
    }

    /// Every cube in structural order: by SIP, then cube.
    pub fn cubes(&self) -> impl Iterator<Item = CubeId> + '_ {
        let cubes = self.cubes_per_sip();
        (0..self.layout.sips).flat_map(move |sip| (0..cubes).map(move |cube| CubeId { sip, cube }))
    }

    /// Whether the PE exists in this topology.
    pub fn contains(&self, pe: PeId) -> bool {
        self.router().exists(Endpoint::Pe(pe))
    }

    /// Whether the endpoint exists in this topology.
    pub fn contains_endpoint(&self, ep: Endpoint) -> bool {
        self.router().exists(ep)
    }

    /// The position of `pe` in [`Topology::pes`] order, if it exists (a flat key
    /// for code that needs one).
    pub fn pe_index(&self, pe: PeId) -> Option<usize> {
        self.contains(pe).then(|| {
            (usize::from(pe.sip) * usize::from(self.cubes_per_sip()) + usize::from(pe.cube))
                * usize::from(self.layout.pes_per_cube)
                + usize::from(pe.pe)
        })
    }

    /// The (row, col) of a cube in its SIP's cube mesh.
    pub fn cube_coord(&self, cube: u16) -> (u16, u16) {
        (cube / self.layout.cube_cols, cube % self.layout.cube_cols)
    }

    /// The router a PE attaches to, as `(row, col)` in its cube's router mesh.
    /// Panics if `pe` is beyond `pes_per_cube` (check with [`Topology::contains`]).
    pub fn pe_router(&self, pe: u16) -> (u16, u16) {
        let r = self.layout.pe_router[usize::from(pe)];
        (r / self.layout.noc_cols, r % self.layout.noc_cols)
    }

    /// The structure-graph node of an endpoint.
    pub fn node(&self, ep: Endpoint) -> Node {
        ep.node()
    }

    /// Parallel UCIe connections per cube side.
    pub fn ucie_connections(&self) -> u16 {
        self.layout.connections
    }

    /// The side of the cube mesh the IO chiplet sits on.
    pub fn io_side(&self) -> Side {
        self.layout.io_side
    }

    /// Figures of every PE.
    pub fn pe_spec(&self) -> &PeSpec {
        &self.config.pe
    }

    /// IPCQ figures.
    pub fn ipcq(&self) -> &IpcqSpec {
        &self.config.ipcq
    }

    /// Cube memory figures.
    pub fn memory(&self) -> &MemorySpec {
        &self.config.sip.cube.memory
    }

    /// Rate, GB/s, at which packets arriving on an IPCQ channel with these
    /// settings drain into the receiver's ring buffer: the bandwidth of the
    /// memory the rings live in.
    pub fn ipcq_drain_gbps(&self, ipcq: &IpcqSpec) -> f64 {
        match ipcq.buffer {
            BufferKind::Tcm => self.pe_spec().tcm_gbps,
            BufferKind::Hbm => self.pe_spec().hbm_effective_gbps(),
            BufferKind::Sram => self.memory().sram_router_gbps,
        }
    }

    /// Launch overheads.
    pub fn launch(&self) -> &LaunchSpec {
        &self.config.launch
    }

    /// Every directional link, indexed by `LinkId.0`.
    pub fn links(&self) -> &[Link] {
        &self.fabric.links
    }

    /// One link. Panics on an id that is not from this topology.
    pub fn link(&self, id: LinkId) -> &Link {
        &self.fabric.links[id.index()]
    }

    /// The per-transfer overhead of the node a link starts at, ps.
    pub fn link_overhead_ps(&self, id: LinkId) -> Ps {
        self.fabric.links[id.index()].overhead_ps
    }

    fn router(&self) -> Router<'_> {
        Router {
            layout: &self.layout,
            fabric: &self.fabric,
        }
    }

    /// The route from `src` to `dst`: deterministic, built in O(hops) from
    /// precomputed tables. An endpoint to itself (and host to host) is the
    /// empty route; a PE to its own HBM slice is its private HBM link.
    pub fn route(&self, src: Endpoint, dst: Endpoint) -> Result<Route, TopologyError> {
        self.router().route(self.name(), src, dst)
    }

    /// Graph searches the router has run since the topology was built: one
    /// per destination router to build the cube's routing table, and one
    /// per detour around a failed link. An ordinary route is a walk of
    /// precomputed tables, O(hops), and runs none.
    pub fn route_searches(&self) -> u64 {
        self.fabric.searches.get()
    }

    /// The control path of a kernel launch to `pe`: host -> PCIe -> IO NOC ->
    /// IO_CPU (its overhead) -> ... -> M_CPU of the PE's cube (its overhead) ->
    /// ... -> the PE. The PE_CPU's receive overhead is not a link: see
    /// [`Topology::launch_ps`]. Empty if `pe` is not in this topology.
    pub fn launch_route(&self, pe: PeId) -> Route {
        let r = self.router();
        if !r.exists(Endpoint::Pe(pe)) {
            return Route::empty();
        }
        let sip = SipId(pe.sip);
        let mut acc = Acc::new(&self.fabric);
        r.push_route(&mut acc, Endpoint::Host(sip), Endpoint::IoCpu(sip));
        r.push_route(&mut acc, Endpoint::IoCpu(sip), Endpoint::MCpu(pe.cube_id()));
        r.push_route(&mut acc, Endpoint::MCpu(pe.cube_id()), Endpoint::Pe(pe));
        acc.finish()
    }

    /// Time from the host issuing a launch to `pe` being ready to start:
    /// the launch route's fixed time plus the PE_CPU receive overhead, ps.
    pub fn launch_ps(&self, pe: PeId) -> Ps {
        self.launch_route(pe)
            .fixed_ps()
            .saturating_add(self.config.launch.pe_cpu_ps())
    }

    /// The common start time IO_CPU stamps on a launch: the longest
    /// [`Topology::launch_ps`] over the target PEs (0 for none).
    pub fn launch_start_ps(&self, pes: impl IntoIterator<Item = PeId>) -> Ps {
        pes.into_iter()
            .map(|p| self.launch_ps(p))
            .max()
            .unwrap_or(0)
    }

    /// The structure graph: one node per component, one edge per directional
    /// link, with edge weight = its [`LinkId`] (edge index == link index).
    pub fn graph(&self) -> &DiGraph<Node, LinkId> {
        &self.fabric.graph
    }

    /// The structure graph in Graphviz dot, one cluster per cube and per IO chiplet.
    pub fn to_dot(&self) -> String {
        summary::to_dot(self)
    }

    /// Counts, link figures and worst-case latencies, for `kernbench topo`.
    pub fn summary(&self) -> TopologySummary {
        summary::summarize(self)
    }

    /// The two PEs nearest to the UCIe endpoints on either side of the crossing
    /// between cubes 0 and 1 of SIP 0 (the calibration pair of the UCIe
    /// figures). Ties go to the lower PE index. With a single cube per SIP, PE
    /// (0,0,0) twice.
    pub fn ucie_probe_pair(&self) -> (PeId, PeId) {
        if self.cubes_per_sip() < 2 {
            return (PeId::new(0, 0, 0), PeId::new(0, 0, 0));
        }
        let pes = self.layout.pes_per_cube;
        let mut best: Option<(Ps, PeId, PeId)> = None;
        for a in 0..pes {
            for b in 0..pes {
                let (pa, pb) = (PeId::new(0, 0, a), PeId::new(0, 1, b));
                let mut acc = Acc::new(&self.fabric);
                self.router()
                    .push_route(&mut acc, Endpoint::Pe(pa), Endpoint::Pe(pb));
                let t = acc.finish().fixed_ps();
                if best.is_none_or(|(bt, _, _)| t < bt) {
                    best = Some((t, pa, pb));
                }
            }
        }
        best.map(|(_, a, b)| (a, b))
            .unwrap_or((PeId::new(0, 0, 0), PeId::new(0, 1, 0)))
    }

    pub(crate) fn layout(&self) -> &Layout {
        &self.layout
    }

    pub(crate) fn fabric(&self) -> &Fabric {
        &self.fabric
    }
}
