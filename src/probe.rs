//! Latency and effective bandwidth of one transfer between two endpoints of a
//! machine: what `kernbench probe` prints.
//!
//! PE-to-PE cases run a real two-instance kernel ([`probe_send`]) through the
//! simulator: instance 0 loads a tile from its HBM slice and sends it to
//! rank 1, which receives it from rank 0. The latency is the
//! send command's issue (PE_CPU + PE_SCHEDULER) plus the time from the send
//! starting to inject to the receive completing, both taken from the
//! simulator's op spans. `pe-hbm` times one `tl::load` ([`probe_load`]) from
//! its issue to its last tile; `host` moves bytes from host memory to a PE's
//! HBM slice over PCIe on an idle [`Fabric`].
//!
//! Each row also splits the latency into the parts the models predict:
//! `overhead` (per-command issue and per-transfer node overheads), `wire`
//! (route latency plus bytes over the bottleneck link), `drain` (the final
//! packet draining into the receiver's ring buffer) and `stall`, what is
//! left (tiling, credit waits, contention; it may be slightly negative where
//! the parts overlap).
//!
//! ```
//! use kernbench::core::topology::Topology;
//! use kernbench::probe::{probe, Case};
//!
//! let topo = Topology::builtin("tiny").unwrap();
//! let row = probe(&topo, Case::SameCube, 4096)?;
//! assert!(row.latency_ns > row.wire_ns);
//! # Ok::<(), kernbench::probe::ProbeError>(())
//! ```

use crate::prelude::*;
use kernbench_core::ids::transfer_ps;
use kernbench_core::passes::lower::{OpKind, PeProgram};
use kernbench_core::sim::fabric::Fabric;
use kernbench_core::sim::{simulate_full, FabricModel, Outcome, SimError};
use kernbench_core::topology::{Endpoint, Route, TopologyError};
use kernbench_core::SipId;
use serde::Serialize;
use std::fmt::{self, Write as _};

/// The PE-to-PE probe kernel: rank 0 loads `n` elements of `x` and sends
/// them to rank 1, which receives them from rank 0.
#[kernel]
pub fn probe_send(x: Ptr<f32>, n: usize) {
    if tl::rank() == 0 {
        let t = tl::load(x, [n]);
        tl::send(1, &t);
    } else {
        let _t = tl::recv::<f32>(0, [n]);
    }
}

/// The HBM probe kernel: one load of `n` elements of `x` into TCM.
#[kernel]
pub fn probe_load(x: Ptr<f32>, n: usize) {
    let _t = tl::load(x, [n]);
}

/// Which pair of endpoints a probe measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Case {
    /// A PE loading from its own HBM slice.
    PeHbm,
    /// PE (0,0,0) to the PE of cube 0 with the slowest route from it.
    SameCube,
    /// PE (0,0,0) to PE 0 of the cube of SIP 0 farthest from cube 0.
    CrossCube,
    /// PE (0,0,0) to PE (1,0,0).
    CrossSip,
    /// Host memory (through SIP 0's PCIe endpoint) to the HBM slice of PE (0,0,0).
    Host,
    /// The UCIe calibration pair ([`Topology::ucie_probe_pair`]): one crossing.
    Ucie,
}

impl Case {
    /// Every case, in the order `kernbench probe` prints them.
    pub const ALL: [Case; 6] = [
        Case::PeHbm,
        Case::SameCube,
        Case::Ucie,
        Case::CrossCube,
        Case::CrossSip,
        Case::Host,
    ];

    /// The name on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Case::PeHbm => "pe-hbm",
            Case::SameCube => "same-cube",
            Case::CrossCube => "cross-cube",
            Case::CrossSip => "cross-sip",
            Case::Host => "host",
            Case::Ucie => "ucie",
        }
    }

    /// Parses a name of [`Case::name`].
    pub fn parse(s: &str) -> Option<Case> {
        Case::ALL.into_iter().find(|c| c.name() == s)
    }

    /// Whether the case moves bytes between two PEs (through IPCQ).
    pub const fn is_pe_to_pe(self) -> bool {
        matches!(
            self,
            Case::SameCube | Case::CrossCube | Case::CrossSip | Case::Ucie
        )
    }
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a probe could not run.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The topology has no such pair (one SIP, one cube, one PE per cube).
    #[error("case `{case}` needs {what}, which topology `{topology}` does not have")]
    Unsupported {
        /// The case.
        case: Case,
        /// What it needs.
        what: &'static str,
        /// The topology's name.
        topology: String,
    },
    /// A size of zero bytes.
    #[error("a probe moves at least one byte")]
    Empty,
    /// The simulation failed (for example a tile larger than TCM).
    #[error(transparent)]
    Sim(#[from] SimError),
    /// A route that cannot be built.
    #[error(transparent)]
    Route(#[from] TopologyError),
    /// Memory that cannot be allocated.
    #[error("{0}")]
    Memory(String),
}

/// One measured transfer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProbeRow {
    /// The case.
    pub case: Case,
    /// Where the bytes start.
    pub from: String,
    /// Where they end.
    pub to: String,
    /// Links on the route.
    pub hops: usize,
    /// Bytes moved.
    pub bytes: u64,
    /// From the command's issue (the transfer's start for `host`) to the bytes being usable, ns.
    pub latency_ns: f64,
    /// Per-command issue overhead (PE_CPU + PE_SCHEDULER) plus per-transfer node overheads, ns.
    pub overhead_ns: f64,
    /// Route latency plus bytes over the bottleneck bandwidth, ns.
    pub wire_ns: f64,
    /// The final packet draining into the receiver's ring buffer, ns.
    pub drain_ns: f64,
    /// What the three parts do not explain (tiling, credit waits, contention), ns.
    pub stall_ns: f64,
    /// The time of the transfer itself, without the command's issue overhead
    /// (for PE-to-PE cases: the send starting to inject to the receive completing), ns.
    pub transfer_ns: f64,
    /// `bytes / latency`, GB/s.
    pub gbps: f64,
}

fn ns(ps: u64) -> f64 {
    ps as f64 / 1000.0
}

/// The two endpoints a case measures on a topology.
pub fn endpoints(topo: &Topology, case: Case) -> Result<(Endpoint, Endpoint), ProbeError> {
    let unsupported = |what| ProbeError::Unsupported {
        case,
        what,
        topology: topo.name().to_string(),
    };
    let p0 = PeId::new(0, 0, 0);
    Ok(match case {
        Case::PeHbm => (Endpoint::Pe(p0), Endpoint::Hbm(p0)),
        Case::Host => (Endpoint::Host(SipId(0)), Endpoint::Hbm(p0)),
        Case::SameCube => {
            if topo.pes_per_cube() < 2 {
                return Err(unsupported("two PEs in a cube"));
            }
            let mut best = (0, PeId::new(0, 0, 1));
            for p in 1..topo.pes_per_cube() {
                let pe = PeId::new(0, 0, p);
                let t = topo.route(Endpoint::Pe(p0), Endpoint::Pe(pe))?.fixed_ps();
                if t > best.0 {
                    best = (t, pe);
                }
            }
            (Endpoint::Pe(p0), Endpoint::Pe(best.1))
        }
        Case::CrossCube => {
            if topo.cubes_per_sip() < 2 {
                return Err(unsupported("two cubes in a SIP"));
            }
            // The cube farthest from cube 0 in the cube mesh (Manhattan), the last on ties.
            let far = (0..topo.cubes_per_sip())
                .max_by_key(|&c| {
                    let (r, k) = topo.cube_coord(c);
                    (r + k, c)
                })
                .unwrap_or(1);
            (Endpoint::Pe(p0), Endpoint::Pe(PeId::new(0, far, 0)))
        }
        Case::CrossSip => {
            if topo.num_sips() < 2 {
                return Err(unsupported("two SIPs"));
            }
            (Endpoint::Pe(p0), Endpoint::Pe(PeId::new(1, 0, 0)))
        }
        Case::Ucie => {
            if topo.cubes_per_sip() < 2 {
                return Err(unsupported("two cubes in a SIP"));
            }
            let (a, b) = topo.ucie_probe_pair();
            (Endpoint::Pe(a), Endpoint::Pe(b))
        }
    })
}

/// Measures one transfer of (about) `bytes` for a case. PE cases move whole
/// `f32` elements, so `bytes` is rounded up to a multiple of 4.
pub fn probe(topo: &Topology, case: Case, bytes: u64) -> Result<ProbeRow, ProbeError> {
    probe_with(topo, case, bytes, FabricModel::default())
}

/// [`probe`] with a chosen fabric model for the IPCQ cases.
pub fn probe_with(
    topo: &Topology,
    case: Case,
    bytes: u64,
    fabric: FabricModel,
) -> Result<ProbeRow, ProbeError> {
    if bytes == 0 {
        return Err(ProbeError::Empty);
    }
    let (from, to) = endpoints(topo, case)?;
    match (case, from, to) {
        (Case::Host, _, _) => Ok(host(topo, from, to, bytes)?),
        (Case::PeHbm, Endpoint::Pe(pe), _) => pe_hbm(topo, pe, bytes),
        (_, Endpoint::Pe(a), Endpoint::Pe(b)) => pe_to_pe(topo, case, a, b, bytes, fabric),
        _ => unreachable!("endpoints() gives PEs for every case but host"),
    }
}

/// Measures a case at each size, in order.
pub fn probe_sizes(
    topo: &Topology,
    case: Case,
    sizes: &[u64],
) -> Result<Vec<ProbeRow>, ProbeError> {
    sizes.iter().map(|&b| probe(topo, case, b)).collect()
}

fn row(
    case: Case,
    from: Endpoint,
    to: Endpoint,
    hops: usize,
    bytes: u64,
    parts: [u64; 5],
) -> ProbeRow {
    let [latency, overhead, wire, drain, transfer] = parts;
    let latency_ns = ns(latency);
    ProbeRow {
        case,
        from: from.to_string(),
        to: to.to_string(),
        hops,
        bytes,
        latency_ns,
        overhead_ns: ns(overhead),
        wire_ns: ns(wire),
        drain_ns: ns(drain),
        stall_ns: (latency as i64 - (overhead + wire + drain) as i64) as f64 / 1000.0,
        transfer_ns: ns(transfer),
        gbps: if latency == 0 {
            f64::INFINITY
        } else {
            bytes as f64 / latency_ns
        },
    }
}

fn host(topo: &Topology, from: Endpoint, to: Endpoint, bytes: u64) -> Result<ProbeRow, ProbeError> {
    let r = topo.route(from, to)?;
    let mut fabric = Fabric::new(topo.links());
    let (_, arrive) = fabric.transfer(0, &r, bytes);
    let wire = r.latency_ps + transfer_ps(bytes, r.bottleneck_gbps);
    Ok(row(
        Case::Host,
        from,
        to,
        r.hop_count(),
        bytes,
        [arrive, r.overhead_ps, wire, 0, arrive],
    ))
}

fn mem_err(e: impl fmt::Display) -> ProbeError {
    ProbeError::Memory(e.to_string())
}

/// The ops of instance `inst` (indices into its program) that `f` selects, with their spans.
fn spans_of<'a>(
    out: &'a Outcome,
    inst: u32,
    f: impl Fn(&PeProgram, usize) -> bool + 'a,
) -> impl Iterator<Item = (u64, u64)> + 'a {
    out.spans
        .iter()
        .filter(move |s| s.inst == inst && f(&out.programs[inst as usize], s.op as usize))
        .map(|s| (s.start, s.end))
}

fn elems(bytes: u64) -> usize {
    bytes.div_ceil(4) as usize
}

fn pe_hbm(topo: &Topology, pe: PeId, bytes: u64) -> Result<ProbeRow, ProbeError> {
    let n = elems(bytes);
    let bytes = n as u64 * 4;
    let mut m = Machine::new(topo.clone()).map_err(mem_err)?;
    let buf = m.alloc(DType::F32, n, &[pe]).map_err(mem_err)?;
    let args = KernelArgs::new().with("x", buf.ptr()).int("n", n as i64);
    let launch = Launch::new(&probe_load, args, vec![pe])
        .data(false)
        .trace(true);
    let out = simulate_full(&mut m, &launch)?;
    let (mut t0, mut t1, mut issue) = (u64::MAX, 0, 0);
    for (s, e) in spans_of(&out, 0, |_, _| true) {
        t0 = t0.min(s);
        t1 = t1.max(e);
    }
    for (s, e) in spans_of(&out, 0, |p, op| p.ops[op].kind == OpKind::Issue) {
        issue += e - s;
    }
    let spec = topo.pe_spec();
    let wire = spec.hbm_latency_ps() + transfer_ps(bytes, spec.hbm_effective_gbps());
    let r = topo.route(Endpoint::Pe(pe), Endpoint::Hbm(pe))?;
    let latency = t1.saturating_sub(t0);
    Ok(row(
        Case::PeHbm,
        Endpoint::Hbm(pe),
        Endpoint::Pe(pe),
        r.hop_count(),
        bytes,
        [latency, issue, wire, 0, latency - issue],
    ))
}

/// Bytes per second a receiver's ring buffer drains at.
fn drain_gbps(topo: &Topology) -> f64 {
    topo.ipcq_drain_gbps(topo.ipcq())
}

fn pe_to_pe(
    topo: &Topology,
    case: Case,
    a: PeId,
    b: PeId,
    bytes: u64,
    fabric: FabricModel,
) -> Result<ProbeRow, ProbeError> {
    let n = elems(bytes);
    let bytes = n as u64 * 4;
    let mut m = Machine::new(topo.clone()).map_err(mem_err)?;
    let buf = m.alloc(DType::F32, n, &[a]).map_err(mem_err)?;
    let pes = vec![a, b];
    let args = KernelArgs::new().with("x", buf.ptr()).int("n", n as i64);
    let launch = Launch::new(&probe_send, args, pes)
        .fabric(fabric)
        .data(false)
        .trace(true);
    let out = simulate_full(&mut m, &launch)?;
    let send = out.programs[0]
        .ops
        .iter()
        .position(|o| matches!(o.kind, OpKind::Send { .. }));
    let recv = out.programs[1]
        .ops
        .iter()
        .position(|o| matches!(o.kind, OpKind::Recv { .. }));
    let (Some(send), Some(recv)) = (send, recv) else {
        unreachable!("probe_send sends on instance 0 and receives on instance 1")
    };
    let send_cmd = out.programs[0].ops[send].cmd;
    debug_assert!(matches!(
        out.graphs[0].node(send_cmd).cmd,
        kernbench_core::ir::Command::Send { .. }
    ));
    let start = spans_of(&out, 0, |_, op| op == send).map(|s| s.0).min();
    let issue: u64 = spans_of(&out, 0, move |p, op| {
        p.ops[op].cmd == send_cmd && p.ops[op].kind == OpKind::Issue
    })
    .map(|(s, e)| e - s)
    .sum();
    let end = spans_of(&out, 1, |_, op| op == recv).map(|s| s.1).max();
    let (Some(start), Some(end)) = (start, end) else {
        unreachable!("a traced launch keeps a span for every op")
    };
    let r: Route = topo.route(Endpoint::Pe(a), Endpoint::Pe(b))?;
    let slot = topo.ipcq().slot_bytes.max(1);
    let last = bytes - (bytes - 1) / slot * slot;
    let transfer = end - start;
    let wire = r.latency_ps + transfer_ps(bytes, r.bottleneck_gbps);
    let drain = transfer_ps(last, drain_gbps(topo));
    Ok(row(
        case,
        Endpoint::Pe(a),
        Endpoint::Pe(b),
        r.hop_count(),
        bytes,
        [
            issue + transfer,
            issue + r.overhead_ps,
            wire,
            drain,
            transfer,
        ],
    ))
}

/// The probe table: a comment line naming the pair, then one row per size.
pub fn format_table(rows: &[ProbeRow]) -> String {
    let mut s = String::new();
    let mut case = None;
    for r in rows {
        if case != Some(r.case) {
            if case.is_some() {
                s.push('\n');
            }
            case = Some(r.case);
            writeln!(s, "# {}: {} -> {}, {} hops", r.case, r.from, r.to, r.hops).unwrap();
            writeln!(
                s,
                "{:>10} {:>12} {:>12} {:>12} {:>10} {:>10} {:>9}",
                "bytes", "latency_ns", "overhead_ns", "wire_ns", "drain_ns", "stall_ns", "GB/s"
            )
            .unwrap();
        }
        writeln!(
            s,
            "{:>10} {:>12.1} {:>12.1} {:>12.1} {:>10.1} {:>10.1} {:>9.2}",
            r.bytes, r.latency_ns, r.overhead_ns, r.wire_ns, r.drain_ns, r.stall_ns, r.gbps
        )
        .unwrap();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn within(got: f64, want: f64, tol: f64) -> bool {
        (got - want).abs() / want <= tol
    }

    #[test]
    fn one_ucie_crossing_matches_the_predecessor() {
        // The predecessor moved 64 KiB over one UCIe crossing in 545 ns and 1 MiB
        // in 8230 ns. Compared: the transfer time (wire + drain, from the send
        // starting to inject to the receive completing), without the command's
        // PE_CPU + PE_SCHEDULER issue overhead.
        let topo = Topology::embedded_default();
        for (bytes, want) in [(64 << 10, 545.0), (1 << 20, 8230.0)] {
            let r = probe(&topo, Case::Ucie, bytes).unwrap();
            assert!(
                within(r.transfer_ns, want, 0.02),
                "{bytes} B: {} ns, predecessor {want} ns",
                r.transfer_ns
            );
            assert!(r.latency_ns > r.transfer_ns);
        }
    }

    #[test]
    fn latency_grows_with_size_and_distance() {
        let topo = Topology::builtin("tiny").unwrap();
        for case in [Case::PeHbm, Case::SameCube, Case::CrossCube, Case::Host] {
            let rows = probe_sizes(&topo, case, &[4096, 65536]).unwrap();
            assert!(rows[0].latency_ns < rows[1].latency_ns, "{case}: {rows:?}");
        }
        let near = probe(&topo, Case::SameCube, 4096).unwrap();
        let far = probe(&topo, Case::CrossCube, 4096).unwrap();
        assert!(near.latency_ns < far.latency_ns, "{near:?} vs {far:?}");
    }

    #[test]
    fn missing_pairs_are_errors() {
        let topo = Topology::builtin("tiny").unwrap();
        let e = probe(&topo, Case::CrossSip, 4096).unwrap_err().to_string();
        assert!(e.contains("two SIPs") && e.contains("tiny"), "{e}");
        assert!(matches!(
            probe(&topo, Case::Ucie, 0),
            Err(ProbeError::Empty)
        ));
    }
}
