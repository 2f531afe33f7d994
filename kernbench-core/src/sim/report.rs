//! What a run reports: per PE and per engine, per link, and in total.

use super::engine::Engine;
use super::lower::{Unit, UNITS};
use crate::topology::Topology;
use crate::{PeId, Ps};
use serde::Serialize;
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
    /// Bytes read from its HBM slice.
    pub hbm_read: u64,
    /// Bytes written to its HBM slice.
    pub hbm_write: u64,
    /// Bytes moved to or from memory elsewhere.
    pub remote_bytes: u64,
    /// Bytes sent over IPCQ.
    pub sent: u64,
    /// Bytes received over IPCQ.
    pub received: u64,
    /// FLOPs (GEMM: 2 per multiply-add; MATH: one per element and pass).
    pub flops: u64,
    /// Peak TCM use, bytes.
    pub tcm_peak: u64,
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

    /// Total HBM bytes (read + write) of all PEs.
    pub fn hbm_bytes(&self) -> u64 {
        self.pes.iter().map(|p| p.hbm_read + p.hbm_write).sum()
    }

    /// The analytic bound of the busiest PE: `max(FLOPs / peak, HBM bytes / bandwidth)`, ns.
    pub fn bound_ns(&self) -> f64 {
        self.pes
            .iter()
            .map(|p| {
                let c = p.flops as f64 / self.gemm_peak_flops_per_ns;
                let m = (p.hbm_read + p.hbm_write) as f64 / self.hbm_gbps;
                c.max(m)
            })
            .fold(0.0, f64::max)
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

pub(crate) fn build(topo: &Topology, kernel: &str, start: Ps, eng: &Engine) -> Report {
    let pes: Vec<PeReport> = eng
        .insts
        .iter()
        .map(|s| PeReport {
            pe: s.pe,
            start_ps: start,
            first_op_ps: s.first_op_ps,
            end_ps: s.end_ps,
            busy: EngineBusy::from(&s.busy_ps),
            hbm_read: s.hbm_read,
            hbm_write: s.hbm_write,
            remote_bytes: s.remote_bytes,
            sent: s.sent,
            received: s.received,
            flops: s.flops,
            tcm_peak: s.prog.tcm_peak,
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
    let spec = topo.pe_spec();
    Report {
        kernel: kernel.to_string(),
        topology: topo.name().to_string(),
        start_ps: start,
        end_ps: end,
        pes,
        links,
        events: eng.events,
        gemm_peak_flops_per_ns: spec.gemm_flops_per_ns(2),
        hbm_gbps: spec.hbm_effective_gbps(),
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
        writeln!(
            f,
            "  {flops} FLOP, {hbm} B HBM, {} B sent; bound {:.3} us (max of compute and HBM on the busiest PE)",
            self.pes.iter().map(|p| p.sent).sum::<u64>(),
            self.bound_ns() / 1000.0
        )?;
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
            "  {:<12} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>12} {:>10}",
            "PE", "end us", "DMA_IN", "GEMM", "MATH", "DMA_WB", "COMM", "HBM B", "sent B"
        )?;
        for p in &self.pes[..shown] {
            writeln!(
                f,
                "  {:<12} {:>10.3} {:>10.3} {:>10.3} {:>10.3} {:>10.3} {:>10.3} {:>12} {:>10}",
                p.pe.to_string(),
                us(p.end_ps - p.start_ps),
                us(p.busy.dma_in),
                us(p.busy.gemm),
                us(p.busy.math),
                us(p.busy.dma_wb),
                us(p.busy.comm),
                p.hbm_read + p.hbm_write,
                p.sent
            )?;
        }
        if self.pes.len() > shown {
            writeln!(f, "  ... {} more PEs", self.pes.len() - shown)?;
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
