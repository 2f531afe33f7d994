//! `kernbench probe`: latency and effective bandwidth of one transfer.

use super::{args, out, usage, Result};
use crate::probe::{format_table, probe_with, Case, ProbeError};
use clap::Args;
use kernbench_ccl::table::MAX_SIZES;
use std::io::Write;

/// Flags of `kernbench probe`.
#[derive(Args, Debug)]
#[command(after_help = "Cases:\n  \
pe-hbm      a PE loading from its own HBM slice\n  \
same-cube   PE (0,0,0) to the PE of cube 0 with the slowest route from it\n  \
ucie        the two PEs nearest the UCIe crossing between cubes 0 and 1\n  \
cross-cube  PE (0,0,0) to PE 0 of the farthest cube of SIP 0\n  \
cross-sip   PE (0,0,0) to PE (1,0,0)\n  \
host        host memory to the HBM slice of PE (0,0,0), over PCIe\n\n\
Columns: latency = overhead + wire + drain + stall, where overhead is the command's \
PE_CPU + PE_SCHEDULER issue plus per-transfer node overheads, wire is the route latency \
plus bytes over the bottleneck link, drain is the last packet draining into the receiver's \
ring buffer, and stall is the rest (tiling, credit waits). GB/s = bytes / latency.\n\n\
Examples:\n  kernbench probe --case ucie\n  kernbench probe --topology tiny --sizes 4K,1M --json")]
pub struct ProbeArgs {
    /// Which transfers (comma-separated); every case the topology has when absent.
    #[arg(long, value_delimiter = ',', value_parser = case)]
    pub case: Vec<Case>,
    /// Sizes in bytes (K, M, G suffixes), comma-separated; PE cases hold the
    /// whole message in TCM, so at most its size (16 MiB by default).
    #[arg(long, value_delimiter = ',', default_value = "4K,16K,64K,256K,1M", value_parser = args::size)]
    pub sizes: Vec<u64>,
    /// A topology file, or a built-in name (default, tiny, large); the embedded default when absent.
    #[arg(long, value_name = "FILE")]
    pub topology: Option<String>,
    /// How IPCQ messages cross the fabric: messages (fast) or slots (reference).
    #[arg(long, default_value = "messages")]
    pub fabric: kernbench_core::sim::FabricModel,
    /// Print a JSON list of rows (case, from, to, hops, bytes, latency_ns, overhead_ns, wire_ns, drain_ns, stall_ns, transfer_ns, gbps).
    #[arg(long)]
    pub json: bool,
}

fn case(s: &str) -> std::result::Result<Case, String> {
    Case::parse(s).ok_or_else(|| {
        let names: Vec<&str> = Case::ALL.iter().map(|c| c.name()).collect();
        format!("`{s}` is not a case ({})", names.join(", "))
    })
}

/// Runs `kernbench probe`.
pub fn run(a: &ProbeArgs, w: &mut dyn Write) -> Result<()> {
    if a.sizes.len() > MAX_SIZES {
        return Err(usage(format!(
            "--sizes gives {} sizes; at most {MAX_SIZES} are probed in one run",
            a.sizes.len()
        )));
    }
    let topo = args::topology(a.topology.as_deref())?;
    let explicit = !a.case.is_empty();
    let cases = if explicit {
        a.case.clone()
    } else {
        Case::ALL.to_vec()
    };
    let mut rows = Vec::new();
    for c in cases {
        let r = a
            .sizes
            .iter()
            .map(|&b| probe_with(&topo, c, b, a.fabric).map_err(|e| (b, e)))
            .collect::<std::result::Result<Vec<_>, _>>();
        match r {
            Ok(r) => rows.extend(r),
            // Without --case, skip the pairs this machine does not have.
            Err((_, e @ ProbeError::Unsupported { .. })) if !explicit => {
                if !a.json {
                    eprintln!("note: {e}; skipped");
                }
            }
            Err((b, e)) => return Err(usage(format!("probe {c} at {b} B: {e}"))),
        }
    }
    if a.json {
        out(
            w,
            &format!("{}\n", serde_json::to_string_pretty(&rows).map_err(usage)?),
        )
    } else {
        out(
            w,
            &format!("# probe on `{}`\n{}", topo.name(), format_table(&rows)),
        )
    }
}
