//! The topology file format: serde structs whose defaults are the figures of
//! `HARDWARE.md`, so a file only states what differs.
//!
//! Every struct denies unknown fields. Figures whose default depends on other
//! figures (router positions, exclusions) are `Option`s, resolved by
//! validation; everything else carries its default directly.

use crate::ids::{ns_to_ps, Ps};
use serde::{Deserialize, Serialize};
use std::fmt;

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// A whole topology file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TopologyConfig {
    /// Name shown in summaries; defaults to the file name without its extension.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Number of SIPs (devices) in the system. Default 2.
    pub sips: u16,
    /// The interconnect between SIPs.
    pub system: SystemConfig,
    /// What every SIP looks like (all SIPs are alike).
    pub sip: SipConfig,
    /// What every PE looks like (all PEs are alike).
    pub pe: PeSpec,
    /// Inter-PE communication queues.
    pub ipcq: IpcqSpec,
    /// Kernel launch overheads.
    pub launch: LaunchSpec,
    /// Links and routers out of service; routes go around them.
    #[serde(skip_serializing_if = "Failures::is_empty")]
    pub failed: Failures,
    /// Links that work below their figures (a straggling link).
    #[serde(skip_serializing_if = "Degraded::is_empty")]
    pub degraded: Degraded,
    /// PEs, cubes or SIPs that compute slower or start late.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub slow: Vec<SlowPart>,
}

/// A part of the machine that straggles: its PEs issue and compute slower
/// (a lower clock, a throttled engine) and may start late.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlowPart {
    /// `sipS`, `sipS/cubeC` or `sipS/cubeC/peP`.
    pub at: String,
    /// The share of its speed it keeps, in (0, 1]: issue (PE_CPU and
    /// scheduler) and GEMM and MATH work take `1 / speed` as long. Memory
    /// and the fabric keep their pace. Default 1.
    #[serde(default = "one")]
    pub speed: f64,
    /// How much later than the others its PEs start, ns. Default 0.
    #[serde(default)]
    pub start_delay_ns: f64,
}

impl SlowPart {
    /// `(sip, cube, pe)` of `at`, each `None` where it names all.
    pub fn scope(&self) -> Option<(u16, Option<u16>, Option<u16>)> {
        let mut parts = self.at.trim().split('/');
        let num = |p: Option<&str>, key: &str| -> Option<Option<u16>> {
            match p {
                None => Some(None),
                Some(x) => x.strip_prefix(key)?.parse().ok().map(Some),
            }
        };
        let sip = num(parts.next(), "sip")??;
        let cube = num(parts.next(), "cube")?;
        let pe = num(parts.next(), "pe")?;
        if parts.next().is_some() || (pe.is_some() && cube.is_none()) {
            return None;
        }
        Some((sip, cube, pe))
    }

    /// Whether `pe` is in this part.
    pub fn covers(&self, pe: crate::PeId) -> bool {
        self.scope().is_some_and(|(s, c, p)| {
            s == pe.sip && c.is_none_or(|c| c == pe.cube) && p.is_none_or(|p| p == pe.pe)
        })
    }
}

impl std::str::FromStr for SlowPart {
    type Err = String;

    /// `AT=SPEED[+NS]`, e.g. `sip0/cube1/pe3=0.5` or `sip1=1+2000`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (at, figures) = s.rsplit_once('=').ok_or_else(|| {
            format!("`{s}`: write AT=SPEED[+NS], e.g. `sip0/cube1/pe3=0.5` or `sip1=1+2000`")
        })?;
        let (speed, delay) = figures.split_once('+').unwrap_or((figures, "0"));
        let num = |x: &str, what: &str| {
            x.trim()
                .parse::<f64>()
                .map_err(|_| format!("`{s}`: {what} `{}` is not a number", x.trim()))
        };
        Ok(SlowPart {
            at: at.trim().to_string(),
            speed: num(speed, "the speed")?,
            start_delay_ns: num(delay, "the start delay")?,
        })
    }
}

/// Links that carry traffic below their figures: a worn cable, a
/// throttled port. Named as reports print them, like [`Failures`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Degraded {
    /// The degraded links, each with what it loses.
    pub links: Vec<DegradedLink>,
}

impl Degraded {
    /// `true` when no link is degraded.
    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }
}

/// One degraded link (or pair of links).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DegradedLink {
    /// `from -> to` (one direction) or `a <-> b` (both).
    pub link: String,
    /// The share of its bandwidth it keeps, in (0, 1]. Default 1.
    #[serde(default = "one")]
    pub bandwidth: f64,
    /// Latency it adds, ns. Default 0.
    #[serde(default)]
    pub extra_latency_ns: f64,
}

fn one() -> f64 {
    1.0
}

impl std::str::FromStr for DegradedLink {
    type Err = String;

    /// `LINK=SHARE[+NS]`, e.g. `sip0/io/noc -> switch=0.5` or `a <-> b=1+200`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (link, figures) = s.rsplit_once('=').ok_or_else(|| {
            format!("`{s}`: write LINK=SHARE[+NS], e.g. `a <-> b=0.5` or `a -> b=1+200`")
        })?;
        let (share, extra) = figures.split_once('+').unwrap_or((figures, "0"));
        let num = |x: &str, what: &str| {
            x.trim()
                .parse::<f64>()
                .map_err(|_| format!("`{s}`: {what} `{}` is not a number", x.trim()))
        };
        Ok(DegradedLink {
            link: link.trim().to_string(),
            bandwidth: num(share, "the bandwidth share")?,
            extra_latency_ns: num(extra, "the extra latency")?,
        })
    }
}

/// Links and routers out of service, named as reports print them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Failures {
    /// Failed links: `from -> to` (one direction) or `a <-> b` (both), e.g.
    /// `sip0/cube0/router(0,3) <-> sip0/cube0/ucie_e`.
    pub links: Vec<String>,
    /// Failed routers (every link in and out of them), e.g. `sip0/cube1/router(1,1)`.
    pub routers: Vec<String>,
}

impl Failures {
    /// `true` when nothing failed.
    pub fn is_empty(&self) -> bool {
        self.links.is_empty() && self.routers.is_empty()
    }
}

impl Default for TopologyConfig {
    fn default() -> Self {
        TopologyConfig {
            name: None,
            sips: 2,
            system: SystemConfig::default(),
            sip: SipConfig::default(),
            pe: PeSpec::default(),
            ipcq: IpcqSpec::default(),
            launch: LaunchSpec::default(),
            failed: Failures::default(),
            degraded: Degraded::default(),
            slow: Vec::new(),
        }
    }
}

/// The kind of interconnect between SIPs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SystemKind {
    /// One switch; every SIP's IO chiplet has one link to it (one per direction).
    #[default]
    Switch,
}

/// The interconnect between SIPs (`system:` in the file).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SystemConfig {
    /// Shape of the interconnect. Default `switch`.
    pub kind: SystemKind,
    /// Bandwidth of each IO chiplet <-> switch link, per direction, GB/s. Default 64.
    pub gbps: f64,
    /// Latency of each IO chiplet <-> switch link, ns. Default 50.
    pub latency_ns: f64,
    /// Per-transfer forwarding overhead of the switch, ns. Default 50.
    pub switch_ns: f64,
}

impl Default for SystemConfig {
    fn default() -> Self {
        SystemConfig {
            kind: SystemKind::Switch,
            gbps: 64.0,
            latency_ns: 50.0,
            switch_ns: 50.0,
        }
    }
}

/// One side of a rectangle: of a cube (its UCIe endpoints) or of the cube mesh
/// (where the IO chiplet sits). Row 0 is north, column 0 is west.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// North (row 0).
    #[serde(alias = "north")]
    N,
    /// East (last column).
    #[serde(alias = "east")]
    E,
    /// South (last row).
    #[serde(alias = "south")]
    S,
    /// West (column 0).
    #[serde(alias = "west")]
    W,
}

impl Side {
    /// All four sides, in index order.
    pub const ALL: [Side; 4] = [Side::N, Side::E, Side::S, Side::W];

    /// 0 for N, 1 for E, 2 for S, 3 for W.
    pub const fn index(self) -> usize {
        match self {
            Side::N => 0,
            Side::E => 1,
            Side::S => 2,
            Side::W => 3,
        }
    }

    /// The side facing this one across a boundary.
    pub const fn opposite(self) -> Side {
        match self {
            Side::N => Side::S,
            Side::E => Side::W,
            Side::S => Side::N,
            Side::W => Side::E,
        }
    }

    /// The lower-case letter used in files and names.
    pub const fn name(self) -> &'static str {
        match self {
            Side::N => "n",
            Side::E => "e",
            Side::S => "s",
            Side::W => "w",
        }
    }

    /// The full word, for messages.
    pub const fn word(self) -> &'static str {
        match self {
            Side::N => "north",
            Side::E => "east",
            Side::S => "south",
            Side::W => "west",
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A link figure in a file: bandwidth and latency, every part optional (the
/// place that uses it supplies the defaults).
///
/// The latency is `latency_ns` if given, else `ns_per_mm * mm`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LinkSpec {
    /// Bandwidth per direction, GB/s (= bytes per ns).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gbps: Option<f64>,
    /// Latency, ns. Excludes `ns_per_mm` and `mm`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ns: Option<f64>,
    /// Wire delay, ns per mm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ns_per_mm: Option<f64>,
    /// Wire length, mm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mm: Option<f64>,
}

/// What every SIP looks like (`sip:`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipConfig {
    /// The 2D mesh of cubes. Default 4x4.
    pub cubes: CubeMeshConfig,
    /// The IO chiplet.
    pub io: IoConfig,
    /// What every cube looks like.
    pub cube: CubeConfig,
}

/// The 2D mesh of cubes inside a SIP (`sip.cubes:`); cube index = row * cols + col.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CubeMeshConfig {
    /// Rows of cubes. Default 4.
    pub rows: u16,
    /// Columns of cubes. Default 4.
    pub cols: u16,
}

impl Default for CubeMeshConfig {
    fn default() -> Self {
        CubeMeshConfig { rows: 4, cols: 4 }
    }
}

/// The IO chiplet of a SIP (`sip.io:`).
///
/// It sits along one side of the cube mesh and has one UCIe port per cube on
/// that side (each with the cube's UCIe figures), an IO NOC that joins the UCIe
/// ports, the PCIe endpoint, the IO_CPU and the link to the system interconnect.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IoConfig {
    /// The side of the cube mesh the IO chiplet sits on. Default `w`.
    pub side: Side,
    /// UCIe ports of the IO chiplet; the cube mesh may not have more cubes on
    /// `side` than this. Default 4.
    pub ucie_ports: u16,
    /// Each IO NOC link (hub <-> UCIe port, PCIe endpoint, IO_CPU, system port).
    /// Default 256 GB/s, 2 ns.
    pub noc: LinkSpec,
    /// Host <-> PCIe endpoint. Default 64 GB/s (PCIe 5.0 x16), 250 ns.
    pub pcie: LinkSpec,
}

impl Default for IoConfig {
    fn default() -> Self {
        IoConfig {
            side: Side::W,
            ucie_ports: 4,
            noc: LinkSpec::default(),
            pcie: LinkSpec::default(),
        }
    }
}

/// What every cube looks like (`sip.cube:`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CubeConfig {
    /// PEs per cube. Default 8.
    pub pes: u16,
    /// The router mesh.
    pub noc: NocConfig,
    /// Which router each part hangs off, and the attachment links.
    pub attach: AttachConfig,
    /// The UCIe endpoints.
    pub ucie: UcieConfig,
    /// Cube memories (SRAM, M_CPU memory, HBM ports).
    pub memory: MemorySpec,
}

impl Default for CubeConfig {
    fn default() -> Self {
        CubeConfig {
            pes: 8,
            noc: NocConfig::default(),
            attach: AttachConfig::default(),
            ucie: UcieConfig::default(),
            memory: MemorySpec::default(),
        }
    }
}

/// The router mesh of a cube (`sip.cube.noc:`). Routers are named `[row, col]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NocConfig {
    /// Router rows. Default 6.
    pub rows: u16,
    /// Router columns. Default 6.
    pub cols: u16,
    /// Routers that do not exist (room for the HBM). Default: the centre 2x2
    /// when the mesh is at least 6x6, else none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclude: Option<Vec<[u16; 2]>>,
    /// Local ports per router for PEs, M_CPU, SRAM and HBM ports (UCIe endpoints
    /// use an edge router's outward-facing port). Default 1.
    pub ports_per_router: u16,
    /// Each router-to-router link. Default 256 GB/s, 2 ns/mm x 2 mm (router pitch).
    pub links: LinkSpec,
}

impl Default for NocConfig {
    fn default() -> Self {
        NocConfig {
            rows: 6,
            cols: 6,
            exclude: None,
            ports_per_router: 1,
            links: LinkSpec::default(),
        }
    }
}

/// Where the parts of a cube attach to its router mesh (`sip.cube.attach:`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AttachConfig {
    /// Latency of a PE, M_CPU or HBM-port attachment link, ns. Default 0.5.
    pub latency_ns: f64,
    /// Bandwidth of a PE <-> router link, GB/s. Default 256.
    pub pe_gbps: f64,
    /// Bandwidth of the M_CPU <-> router link, GB/s. Default 128.
    pub mcpu_gbps: f64,
    /// Router of each PE, in PE order. Default: the free routers one step in
    /// from the mesh edge, row-major, then the others.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pes: Option<Vec<[u16; 2]>>,
    /// Router of the M_CPU. Default `[0, 0]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcpu: Option<[u16; 2]>,
    /// Router of the cube SRAM. Default the south-east corner.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sram: Option<[u16; 2]>,
    /// Routers of the HBM controller ports. Default (meshes of at least 4x4):
    /// four ports, one beside each side of the centre 2x2 (the HBM hole), a
    /// quarter turn apart (`[1,3], [3,4], [4,2], [2,1]` on 6x6); else the centre router.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hbm_ports: Option<Vec<[u16; 2]>>,
}

impl Default for AttachConfig {
    fn default() -> Self {
        AttachConfig {
            latency_ns: 0.5,
            pe_gbps: 256.0,
            mcpu_gbps: 128.0,
            pes: None,
            mcpu: None,
            sram: None,
            hbm_ports: None,
        }
    }
}

/// The UCIe endpoints of a cube (`sip.cube.ucie:`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UcieConfig {
    /// Parallel UCIe connections per side. Default 4.
    pub connections: u16,
    /// Bandwidth of one connection per direction, GB/s. Default 128.
    pub gbps: f64,
    /// Latency of one UCIe port, ns; a crossing passes two. Default 8.
    pub port_ns: f64,
    /// The edge router each side's endpoint attaches to.
    pub routers: UcieRouters,
}

impl Default for UcieConfig {
    fn default() -> Self {
        UcieConfig {
            connections: 4,
            gbps: 128.0,
            port_ns: 8.0,
            routers: UcieRouters::default(),
        }
    }
}

/// The router of each UCIe endpoint (`sip.cube.ucie.routers:`). Defaults: the
/// middle of each edge, a quarter turn apart (`n: [0, cols/2]`,
/// `e: [rows/2, cols-1]`, `s: [rows-1, (cols-1)/2]`, `w: [(rows-1)/2, 0]`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UcieRouters {
    /// North endpoint (must be in row 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<[u16; 2]>,
    /// East endpoint (must be in the last column).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e: Option<[u16; 2]>,
    /// South endpoint (must be in the last row).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s: Option<[u16; 2]>,
    /// West endpoint (must be in column 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub w: Option<[u16; 2]>,
}

impl UcieRouters {
    /// The configured router of a side, if any.
    pub fn get(&self, side: Side) -> Option<[u16; 2]> {
        match side {
            Side::N => self.n,
            Side::E => self.e,
            Side::S => self.s,
            Side::W => self.w,
        }
    }
}

/// Cube-level memories (`sip.cube.memory:`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemorySpec {
    /// Cube SRAM capacity, bytes. Default 32 MiB.
    pub sram_bytes: u64,
    /// SRAM intrinsic bandwidth, GB/s. Default 512.
    pub sram_gbps: f64,
    /// SRAM <-> router link bandwidth, GB/s. Default 128.
    pub sram_router_gbps: f64,
    /// SRAM access latency (on the SRAM <-> router link), ns. Default 2.
    pub sram_latency_ns: f64,
    /// HBM controller port <-> router link bandwidth, GB/s. Default 256.
    pub hbm_router_gbps: f64,
    /// M_CPU-local memory, bytes. Default 64 MiB.
    pub mcpu_bytes: u64,
}

impl Default for MemorySpec {
    fn default() -> Self {
        MemorySpec {
            sram_bytes: 32 * MIB,
            sram_gbps: 512.0,
            sram_router_gbps: 128.0,
            sram_latency_ns: 2.0,
            hbm_router_gbps: 256.0,
            mcpu_bytes: 64 * MIB,
        }
    }
}

/// Figures of one PE (`pe:`); all PEs are alike.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PeSpec {
    /// Clock, GHz. Default 1.0.
    pub clock_ghz: f64,
    /// GEMM peak for 2-byte types (f16, bf16), TFLOP/s; 4-byte types run at half. Default 8.0.
    pub gemm_tflops: f64,
    /// GEMM engine <-> TCM port, GB/s. Default 512.
    pub gemm_tcm_gbps: f64,
    /// MATH engine elements per cycle. Default 128.
    pub math_lanes: u32,
    /// MATH passes one special-function evaluation (exp2, log2, sqrt,
    /// rsqrt) takes per element, where a simple operation (add, multiply,
    /// compare) takes one. Default 4: a pick, as the hardware notes give no
    /// figure; GPUs evaluate such functions at a quarter to an eighth of
    /// their f32 add/multiply rate (16 results per clock per SM against 64
    /// or 128 in the CUDA programming guide's arithmetic throughput table).
    pub math_special_passes: u32,
    /// TCM capacity, bytes. Default 16 MiB.
    pub tcm_bytes: u64,
    /// TCM bandwidth, GB/s. Default 512.
    pub tcm_gbps: f64,
    /// PE <-> its HBM slice link, GB/s. Default 256.
    pub hbm_gbps: f64,
    /// Fraction of `hbm_gbps` a stream achieves, in (0, 1]. Default 0.8.
    pub hbm_efficiency: f64,
    /// HBM pseudo-channels of a slice (a power of two). Default 8.
    pub hbm_pcs: u32,
    /// HBM burst, bytes (a power of two; interleaving granule). Default 256.
    pub hbm_burst_bytes: u32,
    /// HBM access latency (on the HBM slice links), ns. Default 20.
    pub hbm_latency_ns: f64,
    /// Capacity of the PE's HBM slice, bytes. Default 2 GiB.
    pub hbm_slice_bytes: u64,
    /// PE_CPU overhead per command, ns. Default 2.
    pub cpu_overhead_ns: f64,
    /// PE_SCHEDULER overhead per command, ns. Default 1.
    pub sched_overhead_ns: f64,
    /// GEMM tile `[tm, tk, tn]`. Default `[128, 128, 128]`.
    pub gemm_tile: [u32; 3],
    /// Elementwise tile for DMA / MATH tiling, bytes. Default 32768.
    pub tile_bytes: u64,
    /// Tile buffers per stream in TCM (2 = double buffering). Default 2.
    pub tcm_buffers: u32,
    /// Fold higher address bits into the pseudo-channel index (XOR of each
    /// `log2(pcs)`-bit group above the burst), as HBM controllers do so that
    /// strided tiles spread over all channels. `false` gives the plain
    /// interleave `(addr >> log2(burst)) & (pcs - 1)`. Default `true`.
    pub hbm_pc_hash: bool,
}

impl Default for PeSpec {
    fn default() -> Self {
        PeSpec {
            clock_ghz: 1.0,
            gemm_tflops: 8.0,
            gemm_tcm_gbps: 512.0,
            math_lanes: 128,
            math_special_passes: 4,
            tcm_bytes: 16 * MIB,
            tcm_gbps: 512.0,
            hbm_gbps: 256.0,
            hbm_efficiency: 0.8,
            hbm_pcs: 8,
            hbm_burst_bytes: 256,
            hbm_latency_ns: 20.0,
            hbm_slice_bytes: 2 * GIB,
            cpu_overhead_ns: 2.0,
            sched_overhead_ns: 1.0,
            gemm_tile: [128, 128, 128],
            tile_bytes: 32 * KIB,
            tcm_buffers: 2,
            hbm_pc_hash: true,
        }
    }
}

impl PeSpec {
    /// GEMM peak in FLOP per ns for elements of `dtype_bytes` bytes: the full
    /// peak for 1- and 2-byte types, half of it for 4-byte types, a quarter for 8.
    pub fn gemm_flops_per_ns(&self, dtype_bytes: usize) -> f64 {
        let peak = self.gemm_tflops * 1000.0;
        if dtype_bytes <= 2 {
            peak
        } else {
            peak * 2.0 / dtype_bytes as f64
        }
    }

    /// The pseudo-channel of a (physical or virtual: they agree below the
    /// page) address.
    pub fn hbm_pc(&self, addr: u64) -> usize {
        let pcs = u64::from(self.hbm_pcs.max(1));
        let burst = u64::from(self.hbm_burst_bytes.max(1));
        let line = addr / burst;
        if !self.hbm_pc_hash || pcs == 1 {
            return (line % pcs) as usize;
        }
        let bits = pcs.trailing_zeros();
        let mut x = line;
        let mut pc = 0;
        while x != 0 {
            pc ^= x & (pcs - 1);
            x >>= bits;
        }
        pc as usize
    }

    /// HBM bandwidth a stream achieves: `hbm_gbps * hbm_efficiency`.
    pub fn hbm_effective_gbps(&self) -> f64 {
        self.hbm_gbps * self.hbm_efficiency
    }

    /// One clock cycle, ps (rounded).
    pub fn cycle_ps(&self) -> Ps {
        ns_to_ps(1.0 / self.clock_ghz)
    }

    /// MATH engine elements per ns: `math_lanes * clock_ghz`.
    pub fn math_elems_per_ns(&self) -> f64 {
        f64::from(self.math_lanes) * self.clock_ghz
    }

    /// PE_CPU overhead per command, ps.
    pub fn cpu_overhead_ps(&self) -> Ps {
        ns_to_ps(self.cpu_overhead_ns)
    }

    /// PE_SCHEDULER overhead per command, ps.
    pub fn sched_overhead_ps(&self) -> Ps {
        ns_to_ps(self.sched_overhead_ns)
    }

    /// HBM access latency, ps.
    pub fn hbm_latency_ps(&self) -> Ps {
        ns_to_ps(self.hbm_latency_ns)
    }

    /// Bytes of one GEMM tile step in TCM: A (tm x tk) and B (tk x tn) of
    /// `in_bytes` each plus the accumulator C (tm x tn) of `acc_bytes`.
    pub fn gemm_tile_bytes(&self, in_bytes: u64, acc_bytes: u64) -> u64 {
        let [tm, tk, tn] = self.gemm_tile.map(u64::from);
        (tm * tk + tk * tn) * in_bytes + tm * tn * acc_bytes
    }
}

/// Where IPCQ ring buffers live.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BufferKind {
    /// In the PE's TCM (default).
    #[default]
    Tcm,
    /// In the PE's HBM slice.
    Hbm,
    /// In the cube SRAM.
    Sram,
}

/// What a sender does when the peer's ring is full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backpressure {
    /// Sleep until a credit arrives (default).
    #[default]
    Sleep,
    /// Poll the credit counter.
    Poll,
}

/// Inter-PE communication queues (`ipcq:`), per direction of each PE.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IpcqSpec {
    /// Slots per ring. Default 4.
    pub slots: u32,
    /// Bytes per slot (a non-zero multiple of 16). Default 4096.
    pub slot_bytes: u64,
    /// Bytes of a credit message. Default 16.
    pub credit_bytes: u64,
    /// Where the rings live. Default `tcm`.
    pub buffer: BufferKind,
    /// Sender behaviour on a full ring. Default `sleep`.
    pub backpressure: Backpressure,
}

impl Default for IpcqSpec {
    fn default() -> Self {
        IpcqSpec {
            slots: 4,
            slot_bytes: 4096,
            credit_bytes: 16,
            buffer: BufferKind::Tcm,
            backpressure: Backpressure::Sleep,
        }
    }
}

impl IpcqSpec {
    /// Bytes of one ring: `slots * slot_bytes` (at most `u64::MAX`).
    pub fn ring_bytes(&self) -> u64 {
        u64::from(self.slots).saturating_mul(self.slot_bytes)
    }
}

/// Kernel launch overheads (`launch:`): host -> IO_CPU -> M_CPU -> PE_CPU.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LaunchSpec {
    /// IO_CPU per-transfer overhead for control traffic it forwards, ns. Default 10.
    pub io_cpu_ns: f64,
    /// M_CPU per-transfer overhead for control traffic it forwards, ns. Default 5.
    pub mcpu_ns: f64,
    /// PE_CPU overhead to receive a launch, ns. Default 2.
    pub pe_cpu_ns: f64,
}

impl Default for LaunchSpec {
    fn default() -> Self {
        LaunchSpec {
            io_cpu_ns: 10.0,
            mcpu_ns: 5.0,
            pe_cpu_ns: 2.0,
        }
    }
}

impl LaunchSpec {
    /// IO_CPU overhead, ps.
    pub fn io_cpu_ps(&self) -> Ps {
        ns_to_ps(self.io_cpu_ns)
    }

    /// M_CPU overhead, ps.
    pub fn mcpu_ps(&self) -> Ps {
        ns_to_ps(self.mcpu_ns)
    }

    /// PE_CPU receive overhead, ps.
    pub fn pe_cpu_ps(&self) -> Ps {
        ns_to_ps(self.pe_cpu_ns)
    }
}

/// Link defaults that depend on where a [`LinkSpec`] is used (`HARDWARE.md`
/// where it has a figure; the rest are this project's choices).
pub(crate) mod defaults {
    /// NOC router-to-router bandwidth, GB/s.
    pub const NOC_GBPS: f64 = 256.0;
    /// NOC wire delay, ns/mm.
    pub const NOC_NS_PER_MM: f64 = 2.0;
    /// Router pitch, mm.
    pub const NOC_MM: f64 = 2.0;
    /// IO NOC link bandwidth, GB/s.
    pub const IO_NOC_GBPS: f64 = 256.0;
    /// IO NOC link latency, ns.
    pub const IO_NOC_NS: f64 = 2.0;
    /// PCIe bandwidth per direction, GB/s.
    pub const PCIE_GBPS: f64 = 64.0;
    /// PCIe one-way latency, ns.
    pub const PCIE_NS: f64 = 250.0;
}
