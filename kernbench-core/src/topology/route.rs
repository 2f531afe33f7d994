//! Deterministic routing in O(hops) over the precomputed link tables.
//!
//! - Inside a cube: the first-hop table of the router mesh (XY; a shortest
//!   detour, X first, where excluded routers are in the way).
//! - Between cubes of one SIP: XY over the cube mesh, one UCIe crossing per
//!   step; the UCIe connection of every crossing is `spread % connections`,
//!   where `spread` is the source PE's index (else the destination PE's, else 0),
//!   so different PEs of a cube spread over the parallel connections.
//! - To and from the IO chiplet: over the cube mesh to the cube at the IO
//!   chiplet's UCIe port nearest to the cube, across it, through the IO NOC.
//! - Between SIPs: IO chiplet -> system switch -> IO chiplet.

use super::graph::{Fabric, Link, LinkId, HERE, NONE};
use super::validate::Layout;
use super::TopologyError;
use crate::ids::{CubeId, PeId, Ps, SipId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a transfer starts or ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Endpoint {
    /// A PE (its DMA / TCM side).
    Pe(PeId),
    /// That PE's HBM slice.
    Hbm(PeId),
    /// A cube's SRAM.
    Sram(CubeId),
    /// A cube's M_CPU.
    MCpu(CubeId),
    /// A SIP's IO_CPU.
    IoCpu(SipId),
    /// Host memory, reached through that SIP's PCIe endpoint.
    Host(SipId),
}

impl Endpoint {
    /// Its node of the structure graph (every host endpoint is the one
    /// host node).
    pub fn node(self) -> super::graph::Node {
        use super::graph::Node;
        match self {
            Endpoint::Pe(p) => Node::Pe(p),
            Endpoint::Hbm(p) => Node::HbmSlice(p),
            Endpoint::Sram(c) => Node::Sram(c),
            Endpoint::MCpu(c) => Node::MCpu(c),
            Endpoint::IoCpu(s) => Node::IoCpu(s),
            Endpoint::Host(_) => Node::Host,
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Endpoint::Pe(p) => write!(f, "PE sip{}/cube{}/pe{}", p.sip, p.cube, p.pe),
            Endpoint::Hbm(p) => write!(f, "HBM slice sip{}/cube{}/hbm{}", p.sip, p.cube, p.pe),
            Endpoint::Sram(c) => write!(f, "SRAM sip{}/cube{}", c.sip, c.cube),
            Endpoint::MCpu(c) => write!(f, "M_CPU sip{}/cube{}", c.sip, c.cube),
            Endpoint::IoCpu(s) => write!(f, "IO_CPU sip{}", s.0),
            Endpoint::Host(s) => write!(f, "host (through sip{})", s.0),
        }
    }
}

/// One link of a route. Its entry overhead is the link's own
/// ([`Link::overhead_ps`]): a launch keeps a route per channel, a million
/// of them for a 1024-PE all-to-all, so a hop holds the link alone.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hop {
    /// The link.
    pub link: LinkId,
}

/// A path of links from one endpoint to another.
///
/// A transfer of `bytes` over it costs about
/// `fixed_ps() + bytes / bottleneck_gbps` when alone (cut-through).
#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    /// The links, in order.
    pub hops: Vec<Hop>,
    /// Sum of the link latencies, ps.
    pub latency_ps: Ps,
    /// Sum of the per-transfer node overheads, ps.
    pub overhead_ps: Ps,
    /// Smallest link bandwidth on the path, GB/s (`f64::INFINITY` for an empty route).
    pub bottleneck_gbps: f64,
}

impl Route {
    /// The empty route (an endpoint to itself).
    pub fn empty() -> Route {
        Route {
            hops: Vec::new(),
            latency_ps: 0,
            overhead_ps: 0,
            bottleneck_gbps: f64::INFINITY,
        }
    }

    /// Number of links.
    pub fn hop_count(&self) -> usize {
        self.hops.len()
    }

    /// Latency plus overhead: the time of a zero-byte transfer, ps.
    pub fn fixed_ps(&self) -> Ps {
        self.latency_ps.saturating_add(self.overhead_ps)
    }

    /// The time to move `bytes` alone over the route:
    /// `fixed_ps() + bytes / bottleneck_gbps`, ps.
    pub fn transfer_ps(&self, bytes: u64) -> Ps {
        if self.hops.is_empty() {
            return 0;
        }
        self.fixed_ps()
            .saturating_add(crate::ids::transfer_ps(bytes, self.bottleneck_gbps))
    }

    /// Time for an IPCQ credit of `credit_bytes` to cross back to the
    /// sender of a channel over this route (taken as the way back too), ps.
    pub fn credit_ps(&self, credit_bytes: u64) -> Ps {
        self.fixed_ps().saturating_add(crate::ids::transfer_ps(
            credit_bytes,
            self.bottleneck_gbps.max(1e-9),
        ))
    }

    /// How long one ring slot of an IPCQ channel over this route stays
    /// taken when the receiver has its receive posted: a full slot's packet
    /// crosses and drains into the ring at `drain_gbps`, and its credit
    /// crosses back. A channel carries at most `slots` slots per cycle.
    pub fn slot_cycle_ps(&self, slot_bytes: u64, credit_bytes: u64, drain_gbps: f64) -> Ps {
        self.transfer_ps(slot_bytes)
            .saturating_add(crate::ids::transfer_ps(slot_bytes, drain_gbps))
            .saturating_add(self.credit_ps(credit_bytes))
    }

    /// The link ids, in order.
    pub fn links(&self) -> impl Iterator<Item = LinkId> + '_ {
        self.hops.iter().map(|h| h.link)
    }
}

/// Where an endpoint meets the fabric's routing core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Loc {
    /// A router of a cube.
    Router { sip: u16, cube: u16, router: u16 },
    /// A SIP's IO NOC hub.
    Hub(u16),
}

/// Accumulates a route.
pub(crate) struct Acc<'a> {
    links: &'a [Link],
    route: Route,
    /// A leg had no live path.
    pub(crate) broken: bool,
}

impl<'a> Acc<'a> {
    pub(crate) fn new(fabric: &'a Fabric) -> Acc<'a> {
        Acc {
            links: &fabric.links,
            route: Route::empty(),
            broken: false,
        }
    }

    fn push(&mut self, id: u32) {
        debug_assert_ne!(id, NONE, "routing reached a link that does not exist");
        let i = id as usize;
        let link = &self.links[i];
        let overhead_ps = link.overhead_ps;
        let r = &mut self.route;
        r.hops.push(Hop { link: LinkId(id) });
        r.latency_ps = r.latency_ps.saturating_add(link.latency_ps);
        r.overhead_ps = r.overhead_ps.saturating_add(overhead_ps);
        r.bottleneck_gbps = r.bottleneck_gbps.min(link.gbps);
    }

    /// The route, its hops held in a buffer of their own length: a launch
    /// keeps one route per channel (a million for a 1024-PE all-to-all),
    /// and the doubling growth of the walk would leave up to half of each
    /// buffer unused.
    pub(crate) fn finish(mut self) -> Route {
        self.route.hops.shrink_to_fit();
        self.route
    }
}

/// The routing core, borrowing a topology's layout and fabric.
pub(crate) struct Router<'a> {
    pub layout: &'a Layout,
    pub fabric: &'a Fabric,
}

impl Router<'_> {
    fn cubes_per_sip(&self) -> u16 {
        self.layout.cube_rows * self.layout.cube_cols
    }

    fn global(&self, sip: u16, cube: u16) -> usize {
        usize::from(sip) * usize::from(self.cubes_per_sip()) + usize::from(cube)
    }

    fn base(&self, sip: u16, cube: u16) -> u32 {
        self.fabric.cube_base[self.global(sip, cube)]
    }

    /// Whether an endpoint exists.
    pub(crate) fn exists(&self, ep: Endpoint) -> bool {
        let l = self.layout;
        let cube_ok = |c: CubeId| c.sip < l.sips && c.cube < self.cubes_per_sip();
        match ep {
            Endpoint::Pe(p) | Endpoint::Hbm(p) => cube_ok(p.cube_id()) && p.pe < l.pes_per_cube,
            Endpoint::Sram(c) | Endpoint::MCpu(c) => cube_ok(c),
            Endpoint::IoCpu(s) | Endpoint::Host(s) => s.0 < l.sips,
        }
    }

    /// The UCIe connection used for a transfer between these endpoints.
    fn connection(&self, src: Endpoint, dst: Endpoint) -> u32 {
        let key = match (src, dst) {
            (Endpoint::Pe(p) | Endpoint::Hbm(p), _) | (_, Endpoint::Pe(p) | Endpoint::Hbm(p)) => {
                p.pe
            }
            _ => 0,
        };
        u32::from(key % self.layout.connections)
    }

    /// Router-mesh walk inside one cube.
    fn walk_noc(&self, acc: &mut Acc<'_>, sip: u16, cube: u16, from: u16, to: u16) {
        let t = &self.fabric.template;
        let n = usize::from(self.layout.noc_rows) * usize::from(self.layout.noc_cols);
        let cols = usize::from(self.layout.noc_cols);
        let base = self.base(sip, cube);
        let (mut cur, to) = (usize::from(from), usize::from(to));
        let mut steps = 0;
        while cur != to {
            let d = t.next[cur * n + to];
            assert!(
                d != HERE && steps < n,
                "routing table has no path from router {cur} to router {to} (validation \
                 guarantees a connected mesh)"
            );
            let d = usize::from(d);
            acc.push(base + t.noc_out[cur][d]);
            cur = match d {
                0 => cur - cols,
                1 => cur + 1,
                2 => cur + cols,
                _ => cur - 1,
            };
            steps += 1;
        }
    }

    /// XY over the cube mesh from `(cube, router)` `from` to `to`.
    fn walk_cubes(&self, acc: &mut Acc<'_>, sip: u16, from: (u16, u16), to: (u16, u16), k: u32) {
        let ((c1, r1), (c2, r2)) = (from, to);
        use super::config::Side;
        let cols = self.layout.cube_cols;
        let (mut cube, mut router) = (c1, r1);
        while cube != c2 {
            let (r, c, tr, tc) = (cube / cols, cube % cols, c2 / cols, c2 % cols);
            let side = if tc > c {
                Side::E
            } else if tc < c {
                Side::W
            } else if tr > r {
                Side::S
            } else {
                Side::N
            };
            self.walk_noc(
                acc,
                sip,
                cube,
                router,
                self.layout.ucie_router[side.index()],
            );
            let out = self.fabric.sides[self.global(sip, cube)][side.index()]
                .expect("a cube has a UCIe endpoint towards each neighbouring cube");
            acc.push(out.attach_out);
            acc.push(out.cross_out + k);
            let next = super::graph::cube_neighbour(cube, side, self.layout.cube_rows, cols)
                .expect("XY over the cube mesh stays inside it");
            let back = side.opposite();
            let inn = self.fabric.sides[self.global(sip, next)][back.index()]
                .expect("a cube has a UCIe endpoint towards each neighbouring cube");
            acc.push(inn.attach_in);
            cube = next;
            router = self.layout.ucie_router[back.index()];
        }
        self.walk_noc(acc, sip, cube, router, r2);
    }

    fn cube_to_hub(&self, acc: &mut Acc<'_>, sip: u16, cube: u16, router: u16, k: u32) {
        let side = self.layout.io_side;
        let port = self.fabric.cube_io_port[usize::from(cube)];
        let tc = self.fabric.io_cube[usize::from(port)];
        self.walk_cubes(
            acc,
            sip,
            (cube, router),
            (tc, self.layout.ucie_router[side.index()]),
            k,
        );
        let out = self.fabric.sides[self.global(sip, tc)][side.index()]
            .expect("a cube on the IO side has a UCIe endpoint towards the IO chiplet");
        acc.push(out.attach_out);
        acc.push(out.cross_out + k);
        acc.push(self.fabric.io[usize::from(sip)].port_to_hub[usize::from(port)]);
    }

    fn hub_to_cube(&self, acc: &mut Acc<'_>, sip: u16, cube: u16, router: u16, k: u32) {
        let side = self.layout.io_side;
        let port = usize::from(self.fabric.cube_io_port[usize::from(cube)]);
        let tc = self.fabric.io_cube[port];
        let io = &self.fabric.io[usize::from(sip)];
        acc.push(io.hub_to_port[port]);
        acc.push(io.port_cross[port] + k);
        let inn = self.fabric.sides[self.global(sip, tc)][side.index()]
            .expect("a cube on the IO side has a UCIe endpoint towards the IO chiplet");
        acc.push(inn.attach_in);
        self.walk_cubes(
            acc,
            sip,
            (tc, self.layout.ucie_router[side.index()]),
            (cube, router),
            k,
        );
    }

    fn hub_to_hub(&self, acc: &mut Acc<'_>, s1: u16, s2: u16) {
        if s1 != s2 {
            acc.push(self.fabric.io[usize::from(s1)].sys_up);
            acc.push(self.fabric.io[usize::from(s2)].sys_down);
        }
    }

    /// Pushes the links from an endpoint to its location.
    pub(crate) fn egress(&self, acc: &mut Acc<'_>, ep: Endpoint) -> Loc {
        let l = self.layout;
        let t = &self.fabric.template;
        let at = |c: CubeId, router: u16| Loc::Router {
            sip: c.sip,
            cube: c.cube,
            router,
        };
        match ep {
            Endpoint::Pe(p) => {
                acc.push(self.base(p.sip, p.cube) + t.pe_up[usize::from(p.pe)]);
                at(p.cube_id(), l.pe_router[usize::from(p.pe)])
            }
            Endpoint::Hbm(p) => {
                let base = self.base(p.sip, p.cube);
                let home = usize::from(l.slice_home[usize::from(p.pe)]);
                acc.push(base + t.slice_to_port[usize::from(p.pe)]);
                acc.push(base + t.hbm_up[home]);
                at(p.cube_id(), l.hbm_port_router[home])
            }
            Endpoint::Sram(c) => {
                acc.push(self.base(c.sip, c.cube) + t.sram_up);
                at(c, l.sram_router)
            }
            Endpoint::MCpu(c) => {
                acc.push(self.base(c.sip, c.cube) + t.mcpu_up);
                at(c, l.mcpu_router)
            }
            Endpoint::IoCpu(s) => {
                acc.push(self.fabric.io[usize::from(s.0)].cpu_to_hub);
                Loc::Hub(s.0)
            }
            Endpoint::Host(s) => {
                let io = &self.fabric.io[usize::from(s.0)];
                acc.push(io.host_to_ep);
                acc.push(io.ep_to_hub);
                Loc::Hub(s.0)
            }
        }
    }

    /// The location an endpoint is reached from.
    pub(crate) fn loc(&self, ep: Endpoint) -> Loc {
        let l = self.layout;
        let at = |c: CubeId, router: u16| Loc::Router {
            sip: c.sip,
            cube: c.cube,
            router,
        };
        match ep {
            Endpoint::Pe(p) => at(p.cube_id(), l.pe_router[usize::from(p.pe)]),
            Endpoint::Hbm(p) => {
                let home = usize::from(l.slice_home[usize::from(p.pe)]);
                at(p.cube_id(), l.hbm_port_router[home])
            }
            Endpoint::Sram(c) => at(c, l.sram_router),
            Endpoint::MCpu(c) => at(c, l.mcpu_router),
            Endpoint::IoCpu(s) | Endpoint::Host(s) => Loc::Hub(s.0),
        }
    }

    /// Pushes the links from an endpoint's location into the endpoint.
    pub(crate) fn ingress(&self, acc: &mut Acc<'_>, ep: Endpoint) {
        let l = self.layout;
        let t = &self.fabric.template;
        match ep {
            Endpoint::Pe(p) => acc.push(self.base(p.sip, p.cube) + t.pe_down[usize::from(p.pe)]),
            Endpoint::Hbm(p) => {
                let base = self.base(p.sip, p.cube);
                let home = usize::from(l.slice_home[usize::from(p.pe)]);
                acc.push(base + t.hbm_down[home]);
                acc.push(base + t.port_to_slice[usize::from(p.pe)]);
            }
            Endpoint::Sram(c) => acc.push(self.base(c.sip, c.cube) + t.sram_down),
            Endpoint::MCpu(c) => acc.push(self.base(c.sip, c.cube) + t.mcpu_down),
            Endpoint::IoCpu(s) => acc.push(self.fabric.io[usize::from(s.0)].hub_to_cpu),
            Endpoint::Host(s) => {
                let io = &self.fabric.io[usize::from(s.0)];
                acc.push(io.hub_to_ep);
                acc.push(io.ep_to_host);
            }
        }
    }

    /// Pushes the links between two locations.
    pub(crate) fn between(&self, acc: &mut Acc<'_>, a: Loc, b: Loc, k: u32) {
        match (a, b) {
            _ if a == b => {}
            (
                Loc::Router {
                    sip: s1,
                    cube: c1,
                    router: r1,
                },
                Loc::Router {
                    sip: s2,
                    cube: c2,
                    router: r2,
                },
            ) => {
                if s1 == s2 {
                    self.walk_cubes(acc, s1, (c1, r1), (c2, r2), k);
                } else {
                    self.cube_to_hub(acc, s1, c1, r1, k);
                    self.hub_to_hub(acc, s1, s2);
                    self.hub_to_cube(acc, s2, c2, r2, k);
                }
            }
            (Loc::Router { sip, cube, router }, Loc::Hub(s2)) => {
                self.cube_to_hub(acc, sip, cube, router, k);
                self.hub_to_hub(acc, sip, s2);
            }
            (Loc::Hub(s1), Loc::Router { sip, cube, router }) => {
                self.hub_to_hub(acc, s1, sip);
                self.hub_to_cube(acc, sip, cube, router, k);
            }
            (Loc::Hub(s1), Loc::Hub(s2)) => self.hub_to_hub(acc, s1, s2),
        }
    }

    /// Pushes the whole route between two existing endpoints: the
    /// dimension-order route, or where that crosses a failed link, the
    /// shortest live path (see [`super::failures`]).
    pub(crate) fn push_route(&self, acc: &mut Acc<'_>, src: Endpoint, dst: Endpoint) {
        if self.fabric.dead.is_empty() {
            return self.push_ordered(acc, src, dst);
        }
        let mut ordered = Acc::new(self.fabric);
        self.push_ordered(&mut ordered, src, dst);
        let dead = &self.fabric.dead;
        if ordered.route.hops.iter().all(|h| !dead[h.link.0 as usize]) {
            for h in &ordered.route.hops {
                acc.push(h.link.0);
            }
            return;
        }
        match super::failures::live_path(self.fabric, src.node(), dst.node()) {
            Some(links) => links.into_iter().for_each(|l| acc.push(l)),
            None => acc.broken = true,
        }
    }

    /// The dimension-order route between two existing endpoints.
    fn push_ordered(&self, acc: &mut Acc<'_>, src: Endpoint, dst: Endpoint) {
        let t = &self.fabric.template;
        match (src, dst) {
            _ if src == dst => {}
            (Endpoint::Host(_), Endpoint::Host(_)) => {}
            (Endpoint::Pe(a), Endpoint::Hbm(b)) if a == b => {
                acc.push(self.base(a.sip, a.cube) + t.pe_to_slice[usize::from(a.pe)]);
            }
            (Endpoint::Hbm(a), Endpoint::Pe(b)) if a == b => {
                acc.push(self.base(a.sip, a.cube) + t.slice_to_pe[usize::from(a.pe)]);
            }
            _ => {
                let k = self.connection(src, dst);
                let from = self.egress(acc, src);
                let to = self.loc(dst);
                self.between(acc, from, to, k);
                self.ingress(acc, dst);
            }
        }
    }

    /// The route between two endpoints, or which one does not exist.
    pub(crate) fn route(
        &self,
        name: &str,
        src: Endpoint,
        dst: Endpoint,
    ) -> Result<Route, TopologyError> {
        for ep in [src, dst] {
            if !self.exists(ep) {
                return Err(TopologyError::NoSuchEndpoint {
                    topology: name.to_string(),
                    endpoint: ep,
                });
            }
        }
        let mut acc = Acc::new(self.fabric);
        self.push_route(&mut acc, src, dst);
        if acc.broken {
            return Err(TopologyError::Unreachable {
                topology: name.to_string(),
                src,
                dst,
            });
        }
        Ok(acc.finish())
    }
}
