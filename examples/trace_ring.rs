//! A ring all-reduce with a timeline: runs `ring_allreduce` on every PE of a
//! machine, writes its Chrome trace (one process per PE with a track per
//! engine, a track per busy link, an arrow per message), checks the file the
//! way Perfetto will import it, and says how to open it.
//!
//! Run: `cargo run --release --example trace_ring [-- --trace FILE --topology tiny|default|large|FILE --size 256K]`

use kernbench::ccl::run::{ranks, run_on, RedOp, RunSpec};
use kernbench::ccl::Registry;
use kernbench::core::sim::timeline::{check_chrome_trace, write_chrome_trace, TraceOptions};
use kernbench::prelude::*;
use std::path::PathBuf;

fn size(text: &str) -> Result<usize, String> {
    let (num, mul) = match text.chars().last() {
        Some('K' | 'k') => (&text[..text.len() - 1], 1 << 10),
        Some('M' | 'm') => (&text[..text.len() - 1], 1 << 20),
        _ => (text, 1),
    };
    num.parse::<usize>()
        .map(|n| n * mul)
        .map_err(|_| format!("`{text}` is not a size (like 4096, 256K or 1M)"))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut path = PathBuf::from("ring_allreduce.trace.json");
    let mut topo_name = "tiny".to_string();
    let mut bytes = 256 << 10;
    let mut fabric = kernbench::core::sim::FabricModel::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--trace" => path = PathBuf::from(value()?),
            "--topology" => topo_name = value()?,
            "--size" => bytes = size(&value()?)?,
            "--fabric" => fabric = value()?.parse()?,
            "-h" | "--help" => {
                println!("usage: trace_ring [--trace FILE] [--topology tiny|default|large|xl|FILE] [--size BYTES] [--fabric messages|slots]");
                return Ok(());
            }
            other => return Err(format!("unknown argument `{other}` (try --help)").into()),
        }
    }
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
