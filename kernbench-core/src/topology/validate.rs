//! Validation: checks a [`TopologyConfig`] against the rules of the machine and
//! resolves every default into a [`Layout`] the graph builder can trust.

use super::config::{defaults, BufferKind, LinkSpec, Side, TopologyConfig};
use crate::ids::{ns_to_ps, Ps};
use std::collections::VecDeque;

/// Most routers in a cube's mesh (the routing table is routers squared).
pub(crate) const MAX_ROUTERS: usize = 1024;
/// Most routers in a system (bounds the size of the link table).
pub(crate) const MAX_SYSTEM_ROUTERS: usize = 1 << 20;
/// Most PEs in a system.
pub(crate) const MAX_PES: usize = 1 << 16;
/// Most cubes in a system.
pub(crate) const MAX_CUBES: usize = 1 << 13;
/// Most parallel UCIe connections per side.
pub(crate) const MAX_CONNECTIONS: u16 = 64;
/// Most local ports per router.
pub(crate) const MAX_PORTS_PER_ROUTER: u16 = 64;
/// Smallest page: memory sizes must be multiples of it.
const PAGE_BYTES: u64 = 4096;
/// Usable bytes of an AHBM cube die (HBM slices + M_CPU memory + SRAM).
const CUBE_DIE_BYTES: u64 = 256 << 30;

/// A rule broken by a field: its dotted path and what is wrong.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Invalid {
    pub path: String,
    pub message: String,
}

fn bad<T>(path: impl Into<String>, message: impl Into<String>) -> Result<T, Invalid> {
    Err(Invalid {
        path: path.into(),
        message: message.into(),
    })
}

/// A resolved link figure.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct LinkFig {
    pub gbps: f64,
    pub latency_ps: Ps,
}

/// Everything the graph builder needs, with every default resolved and every
/// rule checked. Routers are indexed `row * noc_cols + col`.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    pub name: String,
    pub sips: u16,
    pub cube_rows: u16,
    pub cube_cols: u16,
    pub pes_per_cube: u16,
    pub noc_rows: u16,
    pub noc_cols: u16,
    /// Per router: whether it exists.
    pub present: Vec<bool>,
    pub pe_router: Vec<u16>,
    pub mcpu_router: u16,
    pub sram_router: u16,
    pub hbm_port_router: Vec<u16>,
    /// Per PE: the HBM port that serves its slice from the NOC.
    pub slice_home: Vec<u16>,
    /// Per side (N, E, S, W): the router of the UCIe endpoint.
    pub ucie_router: [u16; 4],
    pub connections: u16,
    pub io_side: Side,
    pub noc: LinkFig,
    pub pe_link: LinkFig,
    pub mcpu_link: LinkFig,
    pub sram_link: LinkFig,
    pub hbm_port_link: LinkFig,
    pub slice_link: LinkFig,
    pub ucie_attach: LinkFig,
    pub ucie: LinkFig,
    pub io_noc: LinkFig,
    pub pcie: LinkFig,
    pub system: LinkFig,
    pub io_cpu_ps: Ps,
    pub mcpu_ps: Ps,
    pub switch_ps: Ps,
}

fn positive(path: &str, v: f64, unit: &str) -> Result<f64, Invalid> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        bad(
            path,
            format!("must be a positive finite number ({unit}), got {v}"),
        )
    }
}

fn non_negative(path: &str, v: f64, unit: &str) -> Result<f64, Invalid> {
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        bad(
            path,
            format!("must be a finite number >= 0 ({unit}), got {v}"),
        )
    }
}

fn at_least_one<T: Into<u64> + Copy>(path: &str, v: T, what: &str) -> Result<(), Invalid> {
    if v.into() == 0 {
        bad(path, format!("must be at least 1 ({what})"))
    } else {
        Ok(())
    }
}

/// The latency a link spec resolves to when it names none.
enum LatencyDefault {
    /// A fixed latency, ns.
    Fixed(f64),
    /// A wire: ns/mm and mm, each replaceable on its own.
    Wire { ns_per_mm: f64, mm: f64 },
}

fn link(
    path: &str,
    spec: &LinkSpec,
    gbps: f64,
    latency: LatencyDefault,
) -> Result<LinkFig, Invalid> {
    let gbps = positive(&format!("{path}.gbps"), spec.gbps.unwrap_or(gbps), "GB/s")?;
    let wire_given = spec.ns_per_mm.is_some() || spec.mm.is_some();
    let ns = match (spec.latency_ns, wire_given, latency) {
        (Some(_), true, _) => {
            return bad(
                format!("{path}.latency_ns"),
                "give either latency_ns or ns_per_mm and mm, not both",
            )
        }
        (Some(ns), false, _) => non_negative(&format!("{path}.latency_ns"), ns, "ns")?,
        (None, _, LatencyDefault::Wire { ns_per_mm, mm }) => {
            let per = non_negative(
                &format!("{path}.ns_per_mm"),
                spec.ns_per_mm.unwrap_or(ns_per_mm),
                "ns per mm",
            )?;
            per * non_negative(&format!("{path}.mm"), spec.mm.unwrap_or(mm), "mm")?
        }
        (None, true, LatencyDefault::Fixed(_)) => {
            let (Some(per), Some(mm)) = (spec.ns_per_mm, spec.mm) else {
                let missing = if spec.mm.is_none() { "mm" } else { "ns_per_mm" };
                return bad(
                    format!("{path}.{missing}"),
                    "a wire latency needs both ns_per_mm and mm (or give latency_ns)",
                );
            };
            non_negative(&format!("{path}.ns_per_mm"), per, "ns per mm")?
                * non_negative(&format!("{path}.mm"), mm, "mm")?
        }
        (None, false, LatencyDefault::Fixed(ns)) => ns,
    };
    if !ns.is_finite() || ns > 1e12 {
        return bad(path, format!("latency {ns} ns is not a sensible figure"));
    }
    Ok(LinkFig {
        gbps,
        latency_ps: ns_to_ps(ns),
    })
}

fn fixed(path: &str, gbps: f64, gbps_unit_path: &str, ns: f64) -> Result<LinkFig, Invalid> {
    let gbps = positive(gbps_unit_path, gbps, "GB/s")?;
    let ns = non_negative(path, ns, "ns")?;
    Ok(LinkFig {
        gbps,
        latency_ps: ns_to_ps(ns),
    })
}

/// The mesh of routers of one cube, for the checks of validation.
struct Mesh {
    rows: u16,
    cols: u16,
    present: Vec<bool>,
}

impl Mesh {
    fn index(&self, rc: [u16; 2]) -> Option<usize> {
        (rc[0] < self.rows && rc[1] < self.cols)
            .then(|| usize::from(rc[0]) * usize::from(self.cols) + usize::from(rc[1]))
    }

    fn coord(&self, i: usize) -> [u16; 2] {
        let cols = usize::from(self.cols);
        [(i / cols) as u16, (i % cols) as u16]
    }

    /// The router at `rc`, which must exist and not be excluded.
    fn router(&self, path: &str, rc: [u16; 2], what: &str) -> Result<u16, Invalid> {
        match self.index(rc) {
            None => bad(
                path,
                format!(
                    "{what} is on router [{}, {}], which does not exist in the {}x{} router mesh \
                     (rows 0..{}, cols 0..{})",
                    rc[0],
                    rc[1],
                    self.rows,
                    self.cols,
                    self.rows - 1,
                    self.cols - 1
                ),
            ),
            Some(i) if !self.present[i] => bad(
                path,
                format!(
                    "{what} is on router [{}, {}], which is excluded (sip.cube.noc.exclude)",
                    rc[0], rc[1]
                ),
            ),
            Some(i) => Ok(i as u16),
        }
    }

    fn neighbours(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        let [r, c] = self.coord(i);
        let cand = [
            (r > 0).then(|| [r - 1, c]),
            (c + 1 < self.cols).then(|| [r, c + 1]),
            (r + 1 < self.rows).then(|| [r + 1, c]),
            (c > 0).then(|| [r, c - 1]),
        ];
        cand.into_iter()
            .flatten()
            .filter_map(|rc| self.index(rc))
            .filter(|&j| self.present[j])
    }
}

/// The middle of each edge, chosen so the four are a quarter turn apart.
fn side_default(side: Side, rows: u16, cols: u16) -> [u16; 2] {
    match side {
        Side::N => [0, cols / 2],
        Side::E => [rows / 2, cols - 1],
        Side::S => [rows - 1, (cols - 1) / 2],
        Side::W => [(rows - 1) / 2, 0],
    }
}

fn on_edge(side: Side, rc: [u16; 2], rows: u16, cols: u16) -> bool {
    match side {
        Side::N => rc[0] == 0,
        Side::E => rc[1] == cols - 1,
        Side::S => rc[0] == rows - 1,
        Side::W => rc[1] == 0,
    }
}

/// Checks `cfg` and resolves it. `default_name` names the topology when the
/// file does not.
pub(crate) fn validate(cfg: &TopologyConfig, default_name: &str) -> Result<Layout, Invalid> {
    let name = match &cfg.name {
        Some(n) if n.trim().is_empty() => return bad("name", "must not be empty"),
        Some(n) => n.clone(),
        None => default_name.to_string(),
    };

    // --- system and SIP shape -------------------------------------------------
    if cfg.sips == 0 {
        return bad("sips", "a system needs at least 1 SIP");
    }
    let sys = &cfg.system;
    let system = fixed("system.latency_ns", sys.gbps, "system.gbps", sys.latency_ns)?;
    let switch_ns = non_negative("system.switch_ns", sys.switch_ns, "ns")?;

    let cubes = &cfg.sip.cubes;
    at_least_one("sip.cubes.rows", cubes.rows, "rows of cubes")?;
    at_least_one("sip.cubes.cols", cubes.cols, "columns of cubes")?;
    let cubes_per_sip = usize::from(cubes.rows) * usize::from(cubes.cols);
    if cubes_per_sip > usize::from(u16::MAX) {
        return bad(
            "sip.cubes",
            format!("{cubes_per_sip} cubes per SIP do not fit a cube id"),
        );
    }
    let total_cubes = cubes_per_sip * usize::from(cfg.sips);
    if total_cubes > MAX_CUBES {
        return bad(
            "sips",
            format!(
                "{} SIPs x {cubes_per_sip} cubes is {total_cubes} cubes; at most {MAX_CUBES} \
                 are supported",
                cfg.sips
            ),
        );
    }

    // --- IO chiplet -----------------------------------------------------------
    let io = &cfg.sip.io;
    at_least_one(
        "sip.io.ucie_ports",
        io.ucie_ports,
        "UCIe ports of the IO chiplet",
    )?;
    let (edge_cubes, field) = match io.side {
        Side::N | Side::S => (cubes.cols, "sip.cubes.cols"),
        Side::E | Side::W => (cubes.rows, "sip.cubes.rows"),
    };
    if edge_cubes > io.ucie_ports {
        return bad(
            field,
            format!(
                "the cube mesh has {edge_cubes} cubes on its {} side, but the IO chiplet there \
                 has only {} UCIe ports (sip.io.ucie_ports) to reach them; use at most {} or \
                 raise sip.io.ucie_ports",
                io.side.word(),
                io.ucie_ports,
                io.ucie_ports
            ),
        );
    }
    let io_noc = link(
        "sip.io.noc",
        &io.noc,
        defaults::IO_NOC_GBPS,
        LatencyDefault::Fixed(defaults::IO_NOC_NS),
    )?;
    let pcie = link(
        "sip.io.pcie",
        &io.pcie,
        defaults::PCIE_GBPS,
        LatencyDefault::Fixed(defaults::PCIE_NS),
    )?;

    // --- the cube's router mesh -----------------------------------------------
    let cube = &cfg.sip.cube;
    at_least_one("sip.cube.pes", cube.pes, "PEs per cube")?;
    let noc = &cube.noc;
    at_least_one("sip.cube.noc.rows", noc.rows, "router rows")?;
    at_least_one("sip.cube.noc.cols", noc.cols, "router columns")?;
    let routers = usize::from(noc.rows) * usize::from(noc.cols);
    if routers > MAX_ROUTERS {
        return bad(
            "sip.cube.noc",
            format!(
                "a {}x{} router mesh has {routers} routers; at most {MAX_ROUTERS} are supported",
                noc.rows, noc.cols
            ),
        );
    }
    if routers * total_cubes > MAX_SYSTEM_ROUTERS {
        return bad(
            "sip.cube.noc",
            format!(
                "{total_cubes} cubes x {routers} routers is more than the {MAX_SYSTEM_ROUTERS} \
                 routers a system may have"
            ),
        );
    }
    at_least_one(
        "sip.cube.noc.ports_per_router",
        noc.ports_per_router,
        "local ports",
    )?;
    if noc.ports_per_router > MAX_PORTS_PER_ROUTER {
        return bad(
            "sip.cube.noc.ports_per_router",
            format!("at most {MAX_PORTS_PER_ROUTER} local ports per router are supported"),
        );
    }
    let noc_link = link(
        "sip.cube.noc.links",
        &noc.links,
        defaults::NOC_GBPS,
        LatencyDefault::Wire {
            ns_per_mm: defaults::NOC_NS_PER_MM,
            mm: defaults::NOC_MM,
        },
    )?;

    let mut mesh = Mesh {
        rows: noc.rows,
        cols: noc.cols,
        present: vec![true; routers],
    };
    let exclude: Vec<[u16; 2]> = match &noc.exclude {
        Some(list) => list.clone(),
        None if noc.rows >= 6 && noc.cols >= 6 => {
            let (r, c) = (noc.rows / 2, noc.cols / 2);
            vec![[r - 1, c - 1], [r - 1, c], [r, c - 1], [r, c]]
        }
        None => Vec::new(),
    };
    for (i, &rc) in exclude.iter().enumerate() {
        match mesh.index(rc) {
            Some(j) => mesh.present[j] = false,
            None => {
                return bad(
                    format!("sip.cube.noc.exclude[{i}]"),
                    format!(
                        "router [{}, {}] does not exist in the {}x{} router mesh",
                        rc[0], rc[1], noc.rows, noc.cols
                    ),
                )
            }
        }
    }
    let Some(first) = mesh.present.iter().position(|&p| p) else {
        return bad("sip.cube.noc.exclude", "every router is excluded");
    };
    // Connectivity: every present router must reach every other.
    let mut seen = vec![false; routers];
    let mut queue = VecDeque::from([first]);
    seen[first] = true;
    while let Some(i) = queue.pop_front() {
        let next: Vec<usize> = mesh.neighbours(i).filter(|&j| !seen[j]).collect();
        for j in next {
            seen[j] = true;
            queue.push_back(j);
        }
    }
    if let Some(cut) = (0..routers).find(|&i| mesh.present[i] && !seen[i]) {
        let (a, b) = (mesh.coord(first), mesh.coord(cut));
        return bad(
            "sip.cube.noc.exclude",
            format!(
                "the excluded routers split the router mesh: router [{}, {}] cannot reach \
                 router [{}, {}]",
                a[0], a[1], b[0], b[1]
            ),
        );
    }

    // --- UCIe -------------------------------------------------------------------
    let ucie_cfg = &cube.ucie;
    at_least_one(
        "sip.cube.ucie.connections",
        ucie_cfg.connections,
        "UCIe connections per side",
    )?;
    if ucie_cfg.connections > MAX_CONNECTIONS {
        return bad(
            "sip.cube.ucie.connections",
            format!("at most {MAX_CONNECTIONS} connections per side are supported"),
        );
    }
    let ucie_gbps = positive("sip.cube.ucie.gbps", ucie_cfg.gbps, "GB/s")?;
    let port_ns = non_negative("sip.cube.ucie.port_ns", ucie_cfg.port_ns, "ns")?;
    let ucie = LinkFig {
        gbps: ucie_gbps,
        latency_ps: ns_to_ps(2.0 * port_ns),
    };
    let ucie_attach = LinkFig {
        gbps: ucie_gbps * f64::from(ucie_cfg.connections),
        latency_ps: 0,
    };
    let side_used = |side: Side| {
        io.side == side
            || match side {
                Side::N | Side::S => cubes.rows > 1,
                Side::E | Side::W => cubes.cols > 1,
            }
    };
    let mut ucie_router = [0u16; 4];
    for side in Side::ALL {
        let path = format!("sip.cube.ucie.routers.{}", side.name());
        let explicit = ucie_cfg.routers.get(side);
        if explicit.is_none() && !side_used(side) {
            continue;
        }
        let rc = explicit.unwrap_or_else(|| side_default(side, noc.rows, noc.cols));
        let what = if explicit.is_some() {
            format!("the {} UCIe endpoint", side.word())
        } else {
            format!("the {} UCIe endpoint (by default)", side.word())
        };
        let r = mesh.router(&path, rc, &what)?;
        if !on_edge(side, rc, noc.rows, noc.cols) {
            return bad(
                path,
                format!(
                    "router [{}, {}] is not on the {} edge of the router mesh, so it has no \
                     outward port for the {} UCIe endpoint",
                    rc[0],
                    rc[1],
                    side.word(),
                    side.word()
                ),
            );
        }
        ucie_router[side.index()] = r;
    }

    // --- attachments --------------------------------------------------------------
    let att = &cube.attach;
    let att_ns = non_negative("sip.cube.attach.latency_ns", att.latency_ns, "ns")?;
    let pe_link = fixed(
        "sip.cube.attach.latency_ns",
        att.pe_gbps,
        "sip.cube.attach.pe_gbps",
        att_ns,
    )?;
    let mcpu_link = fixed(
        "sip.cube.attach.latency_ns",
        att.mcpu_gbps,
        "sip.cube.attach.mcpu_gbps",
        att_ns,
    )?;

    let mem = &cube.memory;
    let hbm_port_link = fixed(
        "sip.cube.attach.latency_ns",
        mem.hbm_router_gbps,
        "sip.cube.memory.hbm_router_gbps",
        att_ns,
    )?;
    let sram_link = fixed(
        "sip.cube.memory.sram_latency_ns",
        mem.sram_router_gbps,
        "sip.cube.memory.sram_router_gbps",
        mem.sram_latency_ns,
    )?;
    positive("sip.cube.memory.sram_gbps", mem.sram_gbps, "GB/s")?;

    let ports = usize::from(noc.ports_per_router);
    let mut used: Vec<Vec<String>> = vec![Vec::new(); routers];
    let mut take = |path: &str, rc: [u16; 2], what: String| -> Result<u16, Invalid> {
        let r = mesh.router(path, rc, &what)?;
        let occupants = &mut used[usize::from(r)];
        if occupants.len() >= ports {
            return bad(
                path,
                format!(
                    "{what} is on router [{}, {}], which has {ports} local port(s) \
                     (sip.cube.noc.ports_per_router), already used by {}",
                    rc[0],
                    rc[1],
                    occupants.join(", ")
                ),
            );
        }
        occupants.push(what);
        Ok(r)
    };
    let mcpu_router = take(
        "sip.cube.attach.mcpu",
        att.mcpu.unwrap_or([0, 0]),
        "the M_CPU".to_string(),
    )?;
    let sram_router = take(
        "sip.cube.attach.sram",
        att.sram.unwrap_or([noc.rows - 1, noc.cols - 1]),
        "the SRAM".to_string(),
    )?;
    let hbm_positions: Vec<[u16; 2]> = match &att.hbm_ports {
        Some(list) => list.clone(),
        None if noc.rows >= 4 && noc.cols >= 4 => {
            // One on each side of the centre 2x2, a quarter turn apart.
            let (r, c) = (noc.rows / 2, noc.cols / 2);
            vec![[r - 2, c], [r, c + 1], [r + 1, c - 1], [r - 1, c - 2]]
        }
        None => vec![[noc.rows / 2, noc.cols / 2]],
    };
    if hbm_positions.is_empty() {
        return bad(
            "sip.cube.attach.hbm_ports",
            "a cube needs at least one HBM controller port on its NOC",
        );
    }
    let mut hbm_port_router = Vec::with_capacity(hbm_positions.len());
    for (i, &rc) in hbm_positions.iter().enumerate() {
        hbm_port_router.push(take(
            &format!("sip.cube.attach.hbm_ports[{i}]"),
            rc,
            format!("HBM port {i}"),
        )?);
    }
    let pes = usize::from(cube.pes);
    let pe_router: Vec<u16> = match &att.pes {
        Some(list) => {
            if list.len() != pes {
                return bad(
                    "sip.cube.attach.pes",
                    format!(
                        "lists {} routers but the cube has {pes} PEs (sip.cube.pes); give one \
                         router per PE",
                        list.len()
                    ),
                );
            }
            let mut out = Vec::with_capacity(pes);
            for (i, &rc) in list.iter().enumerate() {
                out.push(take(
                    &format!("sip.cube.attach.pes[{i}]"),
                    rc,
                    format!("PE {i}"),
                )?);
            }
            out
        }
        None => {
            // Ring one step in from the edge first, row-major; then the rest.
            let ring = |i: usize| {
                let [r, c] = mesh.coord(i);
                let d = r.min(c).min(noc.rows - 1 - r).min(noc.cols - 1 - c);
                (d.abs_diff(1), r, c)
            };
            let mut order: Vec<usize> = (0..routers).filter(|&i| mesh.present[i]).collect();
            order.sort_by_key(|&i| ring(i));
            let mut out = Vec::with_capacity(pes);
            'fill: for i in order {
                while used[i].len() < ports {
                    if out.len() == pes {
                        break 'fill;
                    }
                    used[i].push(format!("PE {}", out.len()));
                    out.push(i as u16);
                }
            }
            if out.len() < pes {
                let present = mesh.present.iter().filter(|&&p| p).count();
                let taken = 2 + hbm_port_router.len();
                return bad(
                    "sip.cube.pes",
                    format!(
                        "{pes} PEs plus the M_CPU, the SRAM and {} HBM ports need {} router \
                         ports, but the {}x{} router mesh has {present} routers x {ports} \
                         port(s) = {}; use fewer PEs, a larger mesh or more \
                         sip.cube.noc.ports_per_router",
                        hbm_port_router.len(),
                        pes + taken,
                        noc.rows,
                        noc.cols,
                        present * ports
                    ),
                );
            }
            out
        }
    };
    // Each slice is served from the NOC by its nearest HBM port (ties: lowest index).
    let coord = |r: u16| mesh.coord(usize::from(r));
    let slice_home: Vec<u16> = pe_router
        .iter()
        .map(|&pr| {
            let [a, b] = coord(pr);
            (0..hbm_port_router.len())
                .min_by_key(|&k| {
                    let [c, d] = coord(hbm_port_router[k]);
                    (a.abs_diff(c) + b.abs_diff(d), k)
                })
                .unwrap_or(0) as u16
        })
        .collect();

    // --- memories ---------------------------------------------------------------------
    let pe = &cfg.pe;
    for (path, v) in [
        ("sip.cube.memory.sram_bytes", mem.sram_bytes),
        ("sip.cube.memory.mcpu_bytes", mem.mcpu_bytes),
        ("pe.hbm_slice_bytes", pe.hbm_slice_bytes),
    ] {
        if v == 0 || v % PAGE_BYTES != 0 {
            return bad(
                path,
                format!("must be a non-zero multiple of 4096 bytes, got {v}"),
            );
        }
    }
    let die_bytes = (pe.hbm_slice_bytes as u128) * (pes as u128)
        + u128::from(mem.sram_bytes)
        + u128::from(mem.mcpu_bytes);
    if die_bytes > u128::from(CUBE_DIE_BYTES) {
        return bad(
            "pe.hbm_slice_bytes",
            format!(
                "{pes} HBM slices + M_CPU memory + SRAM = {die_bytes} bytes do not fit the \
                 256 GiB usable window of a cube die"
            ),
        );
    }

    // --- PE -----------------------------------------------------------------------------
    positive("pe.clock_ghz", pe.clock_ghz, "GHz")?;
    positive("pe.gemm_tflops", pe.gemm_tflops, "TFLOP/s")?;
    positive("pe.gemm_tcm_gbps", pe.gemm_tcm_gbps, "GB/s")?;
    at_least_one("pe.math_lanes", pe.math_lanes, "elements per cycle")?;
    at_least_one(
        "pe.math_special_passes",
        pe.math_special_passes,
        "MATH passes per special-function element",
    )?;
    positive("pe.tcm_gbps", pe.tcm_gbps, "GB/s")?;
    let hbm_gbps = positive("pe.hbm_gbps", pe.hbm_gbps, "GB/s")?;
    if !(pe.hbm_efficiency > 0.0 && pe.hbm_efficiency <= 1.0) {
        return bad(
            "pe.hbm_efficiency",
            format!(
                "must be in (0, 1] (a fraction of pe.hbm_gbps), got {}",
                pe.hbm_efficiency
            ),
        );
    }
    if !pe.hbm_pcs.is_power_of_two() {
        return bad(
            "pe.hbm_pcs",
            format!("must be a power of two >= 1, got {}", pe.hbm_pcs),
        );
    }
    if !pe.hbm_burst_bytes.is_power_of_two() {
        return bad(
            "pe.hbm_burst_bytes",
            format!("must be a power of two >= 1, got {}", pe.hbm_burst_bytes),
        );
    }
    let hbm_ns = non_negative("pe.hbm_latency_ns", pe.hbm_latency_ns, "ns")?;
    let slice_link = LinkFig {
        gbps: hbm_gbps,
        latency_ps: ns_to_ps(hbm_ns),
    };
    non_negative("pe.cpu_overhead_ns", pe.cpu_overhead_ns, "ns")?;
    non_negative("pe.sched_overhead_ns", pe.sched_overhead_ns, "ns")?;
    if let Some(i) = pe.gemm_tile.iter().position(|&t| t == 0) {
        let which = ["tm", "tk", "tn"][i];
        return bad(
            "pe.gemm_tile",
            format!("{which} is 0; every GEMM tile dimension [tm, tk, tn] must be at least 1"),
        );
    }
    at_least_one("pe.tile_bytes", pe.tile_bytes, "bytes")?;
    at_least_one("pe.tcm_buffers", pe.tcm_buffers, "buffers per stream")?;
    at_least_one("pe.tcm_bytes", pe.tcm_bytes, "bytes")?;
    // One f16 GEMM tile step: A and B in f16, the accumulator in f32.
    let gemm_tile_bytes = {
        let [tm, tk, tn] = pe.gemm_tile.map(u128::from);
        (tm * tk + tk * tn) * 2 + tm * tn * 4
    };
    let two_tiles = 2 * u128::from(pe.tile_bytes).max(gemm_tile_bytes);
    if u128::from(pe.tcm_bytes) < two_tiles {
        return bad(
            "pe.tcm_bytes",
            format!(
                "{} bytes of TCM cannot hold two tiles ({two_tiles} bytes: two of the larger \
                 of pe.tile_bytes = {} and one f16 GEMM tile step {:?} = {gemm_tile_bytes} bytes)",
                pe.tcm_bytes, pe.tile_bytes, pe.gemm_tile
            ),
        );
    }

    // --- IPCQ -----------------------------------------------------------------------------
    let q = &cfg.ipcq;
    at_least_one("ipcq.slots", q.slots, "slots per ring")?;
    if q.slot_bytes == 0 || q.slot_bytes % 16 != 0 {
        return bad(
            "ipcq.slot_bytes",
            format!(
                "must be a non-zero multiple of 16 bytes, got {}",
                q.slot_bytes
            ),
        );
    }
    at_least_one("ipcq.credit_bytes", q.credit_bytes, "bytes")?;
    let (room, room_name) = match q.buffer {
        BufferKind::Tcm => (pe.tcm_bytes, "pe.tcm_bytes"),
        BufferKind::Hbm => (pe.hbm_slice_bytes, "pe.hbm_slice_bytes"),
        BufferKind::Sram => (mem.sram_bytes, "sip.cube.memory.sram_bytes"),
    };
    if u128::from(q.slots) * u128::from(q.slot_bytes) > u128::from(room) {
        return bad(
            "ipcq.slot_bytes",
            format!(
                "{} slots x {} bytes do not fit the {room} bytes of {room_name}",
                q.slots, q.slot_bytes
            ),
        );
    }

    // --- launch -------------------------------------------------------------------------
    let l = &cfg.launch;
    let io_cpu_ns = non_negative("launch.io_cpu_ns", l.io_cpu_ns, "ns")?;
    let mcpu_ns = non_negative("launch.mcpu_ns", l.mcpu_ns, "ns")?;
    non_negative("launch.pe_cpu_ns", l.pe_cpu_ns, "ns")?;

    let total_pes = total_cubes * pes;
    if total_pes > MAX_PES {
        return bad(
            "sips",
            format!(
                "{} SIPs x {cubes_per_sip} cubes x {pes} PEs is {total_pes} PEs; at most \
                 {MAX_PES} are supported",
                cfg.sips
            ),
        );
    }

    Ok(Layout {
        name,
        sips: cfg.sips,
        cube_rows: cubes.rows,
        cube_cols: cubes.cols,
        pes_per_cube: cube.pes,
        noc_rows: noc.rows,
        noc_cols: noc.cols,
        present: mesh.present,
        pe_router,
        mcpu_router,
        sram_router,
        hbm_port_router,
        slice_home,
        ucie_router,
        connections: ucie_cfg.connections,
        io_side: io.side,
        noc: noc_link,
        pe_link,
        mcpu_link,
        sram_link,
        hbm_port_link,
        slice_link,
        ucie_attach,
        ucie,
        io_noc,
        pcie,
        system,
        io_cpu_ps: ns_to_ps(io_cpu_ns),
        mcpu_ps: ns_to_ps(mcpu_ns),
        switch_ps: ns_to_ps(switch_ns),
    })
}
