//! A ring all-reduce with a timeline: runs `ring_allreduce` on every PE of a
//! machine, writes its Chrome trace (one process per PE with a track per
//! engine, a track per busy link, an arrow per message), checks the file the
//! way Perfetto will import it, and says how to open it.
//!
//! Run: `cargo run --release --example trace_ring [-- --trace FILE --topology tiny|default|large|FILE --size 256K]`

use clap::Parser;
use kernbench::ccl::run::{ranks, run_on, RedOp, RunSpec};
use kernbench::ccl::Registry;
use kernbench::core::export::chrome::{check_chrome_trace, write_chrome_trace, TraceOptions};
use kernbench::core::sim::FabricModel;
use kernbench::prelude::*;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(about = "A ring all-reduce with its Chrome trace, checked as Perfetto imports it")]
struct Args {
    /// Where to write the trace.
    #[arg(long, default_value = "ring_allreduce.trace.json")]
    trace: PathBuf,
    /// A topology file or built-in name (tiny, default, large, xl).
    #[arg(long, default_value = "tiny")]
    topology: String,
    /// Bytes of each rank's vector (K, M, G suffixes).
    #[arg(long, default_value = "256K", value_parser = kernbench::cli::parse::size)]
    size: u64,
    /// How IPCQ messages cross the fabric: messages, slots.
    #[arg(long, default_value = "messages")]
    fabric: FabricModel,
}

fn main() -> std::process::ExitCode {
    // Errors print as their message, not as a debug dump.
    kernbench::cli::exit_code(try_main().map_err(kernbench::cli::usage))
}

fn try_main() -> Result<(), Box<dyn std::error::Error>> {
    let a = Args::parse();
    let (path, topo_name, bytes, fabric) = (a.trace, a.topology, a.size as usize, a.fabric);
    let topo = Topology::resolve(&topo_name)?;
    let registry = Registry::builtin();
    let algo = registry.get("ring_allreduce")?;
    let pes = ranks(&topo, algo)?;
    let spec = RunSpec {
        op: RedOp::Sum,
        data: true,
        trace: true,
        ..RunSpec::timing((bytes / 4).max(1), DType::F32, fabric)
    };
    let run = run_on(&topo, algo, &pes, &spec)?;
    if run.wrong > 0 {
        return Err(format!("{} of {} elements wrong", run.wrong, run.checked).into());
    }
    print!("{}", run.outcome.report);

    write_chrome_trace(&path, &run.outcome, &topo, &TraceOptions::default())?;
    // Read the file back and check it the way Perfetto will import it.
    let trace: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    let sum = check_chrome_trace(&trace).map_err(|e| format!("{}: {e}", path.display()))?;
    println!(
        "wrote {}: {} events ({} slices, {} flows, {} instants, {} metadata) on {} tracks of {} processes{}",
        path.display(),
        sum.events,
        sum.slices,
        sum.flows,
        sum.instants,
        sum.metadata,
        sum.tracks,
        sum.processes,
        if sum.truncated { " (truncated)" } else { "" }
    );
    println!(
        "open it at https://ui.perfetto.dev (Open trace file, or drag it in) or in chrome://tracing (Load)"
    );
    Ok(())
}
