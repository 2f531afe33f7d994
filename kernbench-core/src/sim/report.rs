//! What a run reports: per PE and per engine, per link, and in total.
//!
//! Bytes are counted where they are served as well as by who moved them: a
//! DMA of one PE into another PE's HBM slice is that PE's remote traffic and
//! the owner's served HBM traffic, so a kernel whose buffers live on one PE
//! shows all its bytes on that PE's slice. Each PE's analytic bound is the
//! largest of its compute time at peak, its slice's bytes (its own and those
//! it served) at the effective HBM bandwidth, and its remote bytes over the
//! link of their routes they load the most.

use super::engine::Engine;
use crate::passes::lower::{Unit, UNITS};
use crate::passes::route::RemoteRoute;
use crate::topology::{Endpoint, Route, Topology};
use crate::{PeId, Ps};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// Busy time of each engine of a PE, ps.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct EngineBusy {
    /// PE_CPU + PE_SCHEDULER.
    pub cpu: Ps,
    /// DMA_IN.
    pub dma_in: Ps,
    /// GEMM.
    pub gemm: Ps,
    /// MATH.
    pub math: Ps,
    /// DMA_WB.
    pub dma_wb: Ps,
    /// The comm DMA (packet injection).
    pub comm: Ps,
}

impl EngineBusy {
    fn from(b: &[Ps; UNITS]) -> Self {
        EngineBusy {
            cpu: b[Unit::Cpu as usize],
            dma_in: b[Unit::DmaIn as usize],
            gemm: b[Unit::Gemm as usize],
            math: b[Unit::Math as usize],
            dma_wb: b[Unit::DmaWb as usize],
            comm: b[Unit::Comm as usize],
        }
    }

    /// (name, busy) pairs in report order.
    pub fn pairs(&self) -> [(&'static str, Ps); UNITS] {
        [
            ("PE_CPU", self.cpu),
            ("DMA_IN", self.dma_in),
            ("GEMM", self.gemm),
            ("MATH", self.math),
            ("DMA_WB", self.dma_wb),
            ("COMM", self.comm),
        ]
    }

    /// The sum of the stages' busy times.
    pub fn sum(&self) -> Ps {
        self.pairs().iter().map(|p| p.1).sum()
    }
}

/// One PE's part of a run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PeReport {
    /// The PE.
    pub pe: PeId,
    /// When its kernel started, ps.
    pub start_ps: Ps,
    /// When its first op began in the engine, ps (`None` for a kernel with
    /// no commands): where IO_CPU's common start shows.
    pub first_op_ps: Option<Ps>,
    /// When its last command completed, ps.
    pub end_ps: Ps,
    /// Engine busy times.
    pub busy: EngineBusy,
    /// Bytes its own DMAs read from its HBM slice.
    pub hbm_read: u64,
    /// Bytes its own DMAs wrote to its HBM slice.
    pub hbm_write: u64,
    /// Bytes other PEs' DMAs read from its HBM slice.
    pub hbm_served_read: u64,
    /// Bytes other PEs' DMAs wrote to its HBM slice.
    pub hbm_served_write: u64,
    /// Bytes its DMAs read from memory elsewhere (other PEs' HBM slices,
    /// SRAM, M_CPU, IO_CPU, the host).
    pub remote_read: u64,
    /// Bytes its DMAs wrote to memory elsewhere.
    pub remote_write: u64,
    /// The link its remote DMAs load the most (bytes over bandwidth), if
    /// they moved any bytes over a link.
    pub remote_link: Option<RemoteLink>,
    /// Bytes sent over IPCQ.
    pub sent: u64,
    /// Bytes received over IPCQ.
    pub received: u64,
    /// FLOPs (GEMM: 2 per multiply-add; MATH: one per element and pass).
    pub flops: u64,
    /// Peak TCM use, bytes.
    pub tcm_peak: u64,
    /// Its analytic bound.
    pub bound: PeBound,
}

impl PeReport {
    /// Bytes its HBM slice moved: its own DMAs' and those it served other PEs.
    pub fn hbm_bytes(&self) -> u64 {
        self.hbm_read + self.hbm_write + self.hbm_served_read + self.hbm_served_write
    }

    /// Bytes its HBM slice served to other PEs.
    pub fn hbm_served(&self) -> u64 {
        self.hbm_served_read + self.hbm_served_write
    }

    /// Bytes its DMAs moved to or from memory elsewhere.
    pub fn remote_bytes(&self) -> u64 {
        self.remote_read + self.remote_write
    }
}

/// The link a PE's remote DMAs load the most.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RemoteLink {
    /// Link index.
    pub link: u32,
    /// What it connects.
    pub name: String,
    /// Bytes of the PE's remote DMAs that cross it.
    pub bytes: u64,
    /// Its bandwidth, GB/s.
    pub gbps: f64,
}

/// Which term of an analytic bound is the largest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BoundBy {
    /// FLOPs at the GEMM peak.
    Compute,
    /// The HBM slice's bytes (own and served) at the effective bandwidth.
    Hbm,
    /// Remote bytes over the link of their routes they load the most.
    Remote,
}

impl fmt::Display for BoundBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BoundBy::Compute => "compute",
            BoundBy::Hbm => "HBM",
            BoundBy::Remote => "remote",
        })
    }
}

/// One PE's analytic bound, ns: the largest of its terms.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PeBound {
    /// FLOPs / peak GEMM FLOP rate.
    pub compute_ns: f64,
    /// (own + served HBM bytes) / effective HBM bandwidth.
    pub hbm_ns: f64,
    /// Bytes of its remote DMAs on the link they load the most / that
    /// link's bandwidth (0 without remote traffic).
    pub remote_ns: f64,
    /// The largest term.
    pub ns: f64,
    /// Which term it is (the first of compute, HBM, remote on a tie).
    pub by: BoundBy,
}

impl PeBound {
    /// The bound of three terms.
    pub fn new(compute_ns: f64, hbm_ns: f64, remote_ns: f64) -> Self {
        let (mut ns, mut by) = (compute_ns, BoundBy::Compute);
        for (t, b) in [(hbm_ns, BoundBy::Hbm), (remote_ns, BoundBy::Remote)] {
            if t > ns {
                (ns, by) = (t, b);
            }
        }
        PeBound {
            compute_ns,
            hbm_ns,
            remote_ns,
            ns,
            by,
        }
    }
}

/// Bytes the launch's remote DMAs moved to or from one memory.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MemoryUse {
    /// The memory (`HBM slice sip0/cube0/hbm3`, `SRAM sip0/cube1`, ...).
    pub memory: String,
    /// The PE whose HBM slice it is; `None` for SRAM, M_CPU, IO_CPU and the host.
    pub owner: Option<PeId>,
    /// `true` when `owner` is one of the launch's PEs.
    pub launched: bool,
    /// Bytes read from it.
    pub read: u64,
    /// Bytes written to it.
    pub write: u64,
}

impl MemoryUse {
    /// Bytes read and written.
    pub fn bytes(&self) -> u64 {
        self.read + self.write
    }
}

/// The kernel's analytic bound: the largest bound of any PE, or of an HBM
/// slice outside the launch that the kernel's DMAs used.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Bound {
    /// ns.
    pub ns: f64,
    /// The PE whose bound it is (or whose HBM slice).
    pub pe: Option<PeId>,
    /// The term that binds.
    pub by: BoundBy,
    /// For a remote bound, the link it is set by.
    pub link: Option<String>,
    /// `false` for the slice of a PE outside the launch.
    pub launched: bool,
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(pe) = self.pe else {
            return f.write_str("no PE");
        };
        match self.by {
            BoundBy::Compute => write!(f, "compute on PE {pe}"),
            BoundBy::Hbm if self.launched => write!(f, "HBM of PE {pe}"),
            BoundBy::Hbm => write!(f, "HBM of PE {pe}, outside the launch"),
            BoundBy::Remote => write!(
                f,
                "remote traffic of PE {pe} over link {}",
                self.link.as_deref().unwrap_or("?")
            ),
        }
    }
}

/// One busy link.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LinkUse {
    /// Link index.
    pub link: u32,
    /// What it connects.
    pub name: String,
    /// Busy time, ps.
    pub busy_ps: Ps,
    /// Bytes carried.
    pub bytes: u64,
}

/// The report of one launch.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// Kernel name.
    pub kernel: String,
    /// Topology name.
    pub topology: String,
    /// The common start every PE's kernel began at, ps (after launch dispatch).
    pub start_ps: Ps,
    /// When the last PE finished, ps.
    pub end_ps: Ps,
    /// Per PE, in launch order.
    pub pes: Vec<PeReport>,
    /// Busy links, busiest first.
    pub links: Vec<LinkUse>,
    /// The memories the launch's remote DMAs used, in endpoint order.
    pub memory: Vec<MemoryUse>,
    /// Events the simulator processed.
    pub events: u64,
    /// Peak GEMM FLOP/ns of one PE (for rooflines).
    pub gemm_peak_flops_per_ns: f64,
    /// Effective HBM bandwidth of one PE, GB/s.
    pub hbm_gbps: f64,
}

impl Report {
    /// Kernel time: from the common start to the last PE's end, ps.
    pub fn sim_ps(&self) -> Ps {
        self.end_ps - self.start_ps
    }

    /// Kernel time in ns.
    pub fn sim_ns(&self) -> f64 {
        self.sim_ps() as f64 / 1000.0
    }

    /// Total FLOPs.
    pub fn flops(&self) -> u64 {
        self.pes.iter().map(|p| p.flops).sum()
    }

    /// Bytes every HBM slice moved (read + write): the PEs' DMAs into their
    /// own slices and every remote DMA into an HBM slice.
    pub fn hbm_bytes(&self) -> u64 {
        let own: u64 = self.pes.iter().map(|p| p.hbm_read + p.hbm_write).sum();
        let remote: u64 = self
            .memory
            .iter()
            .filter(|m| m.owner.is_some())
            .map(MemoryUse::bytes)
            .sum();
        own + remote
    }

    /// Bytes the PEs' DMAs moved to or from memory elsewhere.
    pub fn remote_bytes(&self) -> u64 {
        self.pes.iter().map(PeReport::remote_bytes).sum()
    }

    /// The analytic bound: the largest PE bound (see [`PeBound`]), or the
    /// bytes an HBM slice outside the launch served at the effective HBM
    /// bandwidth if that is larger.
    pub fn bound(&self) -> Bound {
        let mut best = Bound {
            ns: 0.0,
            pe: None,
            by: BoundBy::Compute,
            link: None,
            launched: true,
        };
        for p in &self.pes {
            if best.pe.is_none() || p.bound.ns > best.ns {
                best = Bound {
                    ns: p.bound.ns,
                    pe: Some(p.pe),
                    by: p.bound.by,
                    link: match p.bound.by {
                        BoundBy::Remote => p.remote_link.as_ref().map(|l| l.name.clone()),
                        _ => None,
                    },
                    launched: true,
                };
            }
        }
        for m in self.memory.iter().filter(|m| !m.launched) {
            let Some(pe) = m.owner else { continue };
            let ns = m.bytes() as f64 / self.hbm_gbps;
            if ns > best.ns {
                best = Bound {
                    ns,
                    pe: Some(pe),
                    by: BoundBy::Hbm,
                    link: None,
                    launched: false,
                };
            }
        }
        best
    }

    /// A note when the kernel time is below the analytic bound. The bound
    /// charges every PE its compute, its HBM and its remote bytes, and
    /// every HBM slice all the bytes it serves; the engine serves all of
    /// them on the same engines, links and pseudo-channels (ADR 0033), so
    /// a run below its bound means the two disagree, and the note says by
    /// how much rather than hiding it.
    pub fn below_bound_note(&self) -> Option<String> {
        let bound = self.bound();
        let sim = self.sim_ns();
        (sim < bound.ns).then(|| {
            format!(
                "the kernel time is {:.1}% below the analytic bound ({}): the simulation \
                 and the bound disagree on this kernel",
                (1.0 - sim / bound.ns) * 100.0,
                bound.by,
            )
        })
    }

    /// The analytic bound, ns (see [`Report::bound`]).
    pub fn bound_ns(&self) -> f64 {
        self.bound().ns
    }

    /// The spread of the times the PEs began their first op (0 when
    /// IO_CPU's common start holds); PEs without commands do not count.
    pub fn start_spread_ps(&self) -> Ps {
        let firsts = || self.pes.iter().filter_map(|p| p.first_op_ps);
        let min = firsts().min().unwrap_or(0);
        let max = firsts().max().unwrap_or(0);
        max - min
    }
}

/// The memories the remote DMAs of a run used: bytes (read, written) by endpoint.
fn memory_use(eng: &Engine, ends: &[Endpoint]) -> BTreeMap<Endpoint, (u64, u64)> {
    let mut mem: BTreeMap<Endpoint, (u64, u64)> = BTreeMap::new();
    for (&(read, write), ep) in eng.route_bytes.iter().zip(ends) {
        if read + write > 0 {
            let m = mem.entry(*ep).or_default();
            m.0 += read;
            m.1 += write;
        }
    }
    mem
}

/// The link the remote DMAs over `routes` (with their bytes) load the most:
/// the largest bytes / bandwidth, the lowest link index on a tie.
fn most_loaded<'a>(
    topo: &Topology,
    routes: impl Iterator<Item = (u64, &'a Route)>,
) -> Option<RemoteLink> {
    let mut load: BTreeMap<u32, u64> = BTreeMap::new();
    for (bytes, r) in routes.filter(|(b, _)| *b > 0) {
        for h in &r.hops {
            *load.entry(h.link.0).or_default() += bytes;
        }
    }
    let mut best: Option<RemoteLink> = None;
    for (link, bytes) in load {
        let l = &topo.links()[link as usize];
        let ns = bytes as f64 / l.gbps;
        if best.as_ref().is_none_or(|b| ns > b.bytes as f64 / b.gbps) {
            best = Some(RemoteLink {
                link,
                name: format!("{} -> {}", l.from, l.to),
                bytes,
                gbps: l.gbps,
            });
        }
    }
    best
}

pub(crate) fn build(
    topo: &Topology,
    kernel: &str,
    start: Ps,
    eng: &Engine,
    (routes, ends): (&[RemoteRoute], &[Endpoint]),
) -> Report {
    let spec = topo.pe_spec();
    let gemm_peak = spec.gemm_flops_per_ns(2);
    let hbm_gbps = spec.hbm_effective_gbps();
    let mem = memory_use(eng, ends);
    let launched: HashMap<PeId, usize> = eng
        .insts
        .iter()
        .enumerate()
        .map(|(i, s)| (s.pe, i))
        .collect();
    let pes: Vec<PeReport> = eng
        .insts
        .iter()
        .map(|s| {
            let (served_read, served_write) =
                mem.get(&Endpoint::Hbm(s.pe)).copied().unwrap_or_default();
            // Reads load the links of the way back; writes, of the way out.
            let remote_link = most_loaded(
                topo,
                s.bind.routes.iter().flat_map(|&r| {
                    let (read, write) = eng.route_bytes[r as usize];
                    let rt = &routes[r as usize];
                    [(read, &rt.back), (write, &rt.out)]
                }),
            );
            let hbm = s.hbm_read + s.hbm_write + served_read + served_write;
            let bound = PeBound::new(
                s.flops as f64 / gemm_peak,
                hbm as f64 / hbm_gbps,
                remote_link
                    .as_ref()
                    .map_or(0.0, |l| l.bytes as f64 / l.gbps),
            );
            PeReport {
                pe: s.pe,
                start_ps: start,
                first_op_ps: s.first_op_ps,
                end_ps: s.end_ps,
                busy: EngineBusy::from(&s.busy_ps),
                hbm_read: s.hbm_read,
                hbm_write: s.hbm_write,
                hbm_served_read: served_read,
                hbm_served_write: served_write,
                remote_read: s.remote_read,
                remote_write: s.remote_write,
                remote_link,
                sent: s.sent,
                received: s.received,
                flops: s.flops,
                tcm_peak: s.prog.tcm_peak,
                bound,
            }
        })
        .collect();
    let memory: Vec<MemoryUse> = mem
        .into_iter()
        .map(|(ep, (read, write))| {
            let owner = match ep {
                Endpoint::Hbm(p) => Some(p),
                _ => None,
            };
            MemoryUse {
                memory: ep.to_string(),
                owner,
                launched: owner.is_some_and(|p| launched.contains_key(&p)),
                read,
                write,
            }
        })
        .collect();
    let mut links: Vec<LinkUse> = eng
        .fabric
        .busy_links()
        .map(|(i, busy, bytes)| {
            let l = &topo.links()[i];
            LinkUse {
                link: i as u32,
                name: format!("{} -> {}", l.from, l.to),
                busy_ps: busy,
                bytes,
            }
        })
        .collect();
    links.sort_by(|a, b| b.busy_ps.cmp(&a.busy_ps).then(a.link.cmp(&b.link)));
    let end = pes.iter().map(|p| p.end_ps).max().unwrap_or(start);
    Report {
        kernel: kernel.to_string(),
        topology: topo.name().to_string(),
        start_ps: start,
        end_ps: end,
        pes,
        links,
        memory,
        events: eng.events,
        gemm_peak_flops_per_ns: gemm_peak,
        hbm_gbps,
    }
}

fn us(ps: Ps) -> f64 {
    ps as f64 / 1e6
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let span = self.sim_ps().max(1);
        writeln!(
            f,
            "kernel {} on {}: {} PE(s), {:.3} us (start at {:.3} us after launch), {} events",
            self.kernel,
            self.topology,
            self.pes.len(),
            us(self.sim_ps()),
            us(self.start_ps),
            self.events
        )?;
        let flops = self.flops();
        let hbm = self.hbm_bytes();
        let remote = self.remote_bytes();
        let served: u64 = self
            .memory
            .iter()
            .filter(|m| m.owner.is_some())
            .map(MemoryUse::bytes)
            .sum();
        let bound = self.bound();
        let served = if served > 0 {
            format!(" ({served} B of it for other PEs)")
        } else {
            String::new()
        };
        let remote = if remote > 0 {
            format!(
                "{remote} B remote ({} read, {} written)",
                self.pes.iter().map(|p| p.remote_read).sum::<u64>(),
                self.pes.iter().map(|p| p.remote_write).sum::<u64>()
            )
        } else {
            "0 B remote".to_string()
        };
        writeln!(
            f,
            "  {flops} FLOP, {hbm} B HBM{served}, {remote}, {} B sent; bound {:.3} us ({bound})",
            self.pes.iter().map(|p| p.sent).sum::<u64>(),
            bound.ns / 1000.0
        )?;
        if let Some(note) = self.below_bound_note() {
            writeln!(f, "  note: {note}")?;
        }
        let pes = self.pes.len().max(1) as f64;
        let gflops = flops as f64 / span as f64 * 1000.0 / pes;
        let gbps = hbm as f64 / span as f64 * 1000.0 / pes;
        writeln!(
            f,
            "  roofline per PE: {gflops:.1} GFLOP/s = {:.1}% of the {:.0} GFLOP/s peak; {gbps:.1} GB/s HBM = {:.1}% of {:.1} GB/s",
            gflops / self.gemm_peak_flops_per_ns * 100.0,
            self.gemm_peak_flops_per_ns,
            gbps / self.hbm_gbps * 100.0,
            self.hbm_gbps
        )?;
        // Engine utilisation summed over PEs.
        let mut tot = [0u64; UNITS];
        for p in &self.pes {
            for (k, (_, b)) in p.busy.pairs().iter().enumerate() {
                tot[k] += b;
            }
        }
        write!(f, "  engine utilisation (mean over PEs):")?;
        for (k, (name, _)) in EngineBusy::default().pairs().iter().enumerate() {
            let u = tot[k] as f64 / (span as f64 * self.pes.len() as f64) * 100.0;
            write!(f, " {name} {u:.1}%")?;
        }
        writeln!(f)?;
        let shown = self.pes.len().min(8);
        writeln!(
            f,
            "  {:<12} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>12} {:>12} {:>10} {:>10} by",
            "PE",
            "end us",
            "DMA_IN",
            "GEMM",
            "MATH",
            "DMA_WB",
            "COMM",
            "HBM B",
            "remote B",
            "sent B",
            "bound us"
        )?;
        for p in &self.pes[..shown] {
            writeln!(
                f,
                "  {:<12} {:>10.3} {:>10.3} {:>10.3} {:>10.3} {:>10.3} {:>10.3} {:>12} {:>12} {:>10} {:>10.3} {}",
                p.pe.to_string(),
                us(p.end_ps - p.start_ps),
                us(p.busy.dma_in),
                us(p.busy.gemm),
                us(p.busy.math),
                us(p.busy.dma_wb),
                us(p.busy.comm),
                p.hbm_bytes(),
                p.remote_bytes(),
                p.sent,
                p.bound.ns / 1000.0,
                p.bound.by
            )?;
        }
        if self.pes.len() > shown {
            writeln!(f, "  ... {} more PEs", self.pes.len() - shown)?;
        }
        // Memory the launch's PEs do not own: HBM slices of PEs outside it,
        // SRAM, M_CPU, IO_CPU, the host.
        for m in self.memory.iter().filter(|m| !m.launched) {
            writeln!(
                f,
                "  {}: {} B read, {} B written by remote DMAs",
                m.memory, m.read, m.write
            )?;
        }
        for l in self.links.iter().take(3) {
            writeln!(
                f,
                "  link {}: busy {:.3} us ({:.1}%), {} B",
                l.name,
                us(l.busy_ps),
                l.busy_ps as f64 / span as f64 * 100.0,
                l.bytes
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pe(p: u16, flops: u64, own: u64, remote: (u64, u64)) -> PeReport {
        PeReport {
            pe: PeId::new(0, 0, p),
            start_ps: 0,
            first_op_ps: Some(0),
            end_ps: 10_000,
            busy: EngineBusy::default(),
            hbm_read: own,
            hbm_write: 0,
            hbm_served_read: 0,
            hbm_served_write: 0,
            remote_read: remote.0,
            remote_write: remote.1,
            remote_link: (remote.0 + remote.1 > 0).then(|| RemoteLink {
                link: 7,
                name: "a -> b".into(),
                bytes: remote.0 + remote.1,
                gbps: 100.0,
            }),
            sent: 0,
            received: 0,
            flops,
            tcm_peak: 0,
            bound: PeBound::new(
                flops as f64 / 1000.0,
                own as f64 / 200.0,
                (remote.0 + remote.1) as f64 / 100.0,
            ),
        }
    }

    fn report(pes: Vec<PeReport>, memory: Vec<MemoryUse>) -> Report {
        Report {
            kernel: "k".into(),
            topology: "t".into(),
            start_ps: 0,
            end_ps: 10_000,
            pes,
            links: Vec::new(),
            memory,
            events: 1,
            gemm_peak_flops_per_ns: 1000.0,
            hbm_gbps: 200.0,
        }
    }

    #[test]
    fn the_largest_term_binds_and_the_first_wins_a_tie() {
        let b = PeBound::new(2.0, 2.0, 1.0);
        assert_eq!((b.ns, b.by), (2.0, BoundBy::Compute));
        let b = PeBound::new(1.0, 3.0, 3.0);
        assert_eq!((b.ns, b.by), (3.0, BoundBy::Hbm));
        let b = PeBound::new(1.0, 0.0, 3.5);
        assert_eq!((b.ns, b.by), (3.5, BoundBy::Remote));
    }

    #[test]
    fn other_memory_is_reported_apart_from_hbm_and_a_remote_bound_names_its_link() {
        let sram = MemoryUse {
            memory: Endpoint::Sram(crate::ids::CubeId { sip: 0, cube: 1 }).to_string(),
            owner: None,
            launched: false,
            read: 3000,
            write: 1000,
        };
        let r = report(
            vec![pe(0, 1000, 400, (0, 0)), pe(1, 0, 0, (3000, 1000))],
            vec![sram],
        );
        // SRAM bytes are remote bytes, not HBM bytes.
        assert_eq!(r.hbm_bytes(), 400);
        assert_eq!(r.remote_bytes(), 4000);
        let b = r.bound();
        assert_eq!(
            (b.ns, b.pe, b.by),
            (40.0, Some(PeId::new(0, 0, 1)), BoundBy::Remote)
        );
        assert_eq!(b.link.as_deref(), Some("a -> b"));
        let text = r.to_string();
        assert!(
            text.contains("bound 0.040 us (remote traffic of PE (0,0,1) over link a -> b)"),
            "{text}"
        );
        assert!(
            text.contains("  SRAM sip0/cube1: 3000 B read, 1000 B written by remote DMAs"),
            "{text}"
        );
        // The kernel took 10 ns: below the 40 ns bound, and the report says so.
        assert!(
            text.contains(
                "  note: the kernel time is 75.0% below the analytic bound (remote): the \
                 simulation and the bound disagree on this kernel"
            ),
            "{text}"
        );
    }

    #[test]
    fn an_empty_launch_has_a_zero_bound() {
        let r = report(Vec::new(), Vec::new());
        assert_eq!(r.bound_ns(), 0.0);
        assert_eq!(r.bound().to_string(), "no PE");
    }
}
