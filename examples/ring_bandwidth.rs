//! Ring all-reduce bus bandwidth on an uncontended ring (one PE per cube,
//! cubes in a cycle so every hop crosses its own UCIe link) against the
//! ring's bottleneck link bandwidth, over sizes.
//!
//! Run: `cargo run --release --example ring_bandwidth [-- --topology FILE] [--fabric messages|slots]`

use kernbench::ccl::run::{run_on, RunSpec};
use kernbench::ccl::{RedOp, Registry};
use kernbench::core::topology::Endpoint;
use kernbench::prelude::*;

/// Ring all-reduce busbw on an uncontended ring, over sizes.
#[derive(clap::Parser, Debug)]
struct Args {
    /// A topology file or built-in name.
    #[arg(long, default_value = "tiny")]
    topology: String,
    /// How IPCQ messages cross the fabric: messages, or slots (the reference).
    #[arg(long, default_value = "messages")]
    fabric: kernbench::core::sim::FabricModel,
}

fn main() -> std::process::ExitCode {
    // Errors print as their message, not as a debug dump.
    kernbench::cli::exit_code(try_main().map_err(kernbench::cli::usage))
}

fn try_main() -> Result<(), Box<dyn std::error::Error>> {
    let args = <Args as clap::Parser>::parse();
    let topo = Topology::resolve(&args.topology)?;
    let fabric = args.fabric;
    let ring = kernbench::ccl::run::cube_cycle(&topo, 0)?;
    let bottleneck = ring
        .iter()
        .zip(ring.iter().cycle().skip(1))
        .map(|(a, b)| {
            topo.route(Endpoint::Pe(*a), Endpoint::Pe(*b))
                .map(|r| r.bottleneck_gbps)
        })
        .collect::<Result<Vec<f64>, _>>()?
        .into_iter()
        .fold(f64::INFINITY, f64::min);
    let reg = Registry::builtin();
    let algo = reg.get("ring_allreduce")?;
    println!(
        "ring over {} cubes: {:?}; bottleneck link {bottleneck:.1} GB/s",
        ring.len(),
        ring
    );
    println!(
        "{:>12} {:>10} {:>10} {:>8}",
        "size (B)", "time (us)", "busbw", "of link"
    );
    for shift in [20, 22, 24, 26] {
        let bytes = 1usize << shift;
        let spec = RunSpec {
            op: RedOp::Sum,
            ..RunSpec::timing(bytes / 4, DType::F32, fabric)
        };
        let r = run_on(&topo, algo, &ring, &spec)?;
        let t = r.outcome.report.sim_ns();
        let p = ring.len() as f64;
        let busbw = bytes as f64 / t * 2.0 * (p - 1.0) / p;
        println!(
            "{bytes:>12} {:>10.2} {busbw:>10.2} {:>7.1}%",
            t / 1000.0,
            busbw / bottleneck * 100.0
        );
    }
    Ok(())
}
