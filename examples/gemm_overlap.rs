//! A GEMM whose partial outputs are reduce-scattered while the next blocks
//! compute (`kernels::overlap::gemm_rs_fused`), beside the sequential
//! schedule: the GEMM, then a ring reduce-scatter. Both are checked element
//! by element against sums computed on the host (small integers, exact in
//! f32). The time is broken into compute (GEMM busy on the busiest PE),
//! communication and exposed communication (the time beyond compute), as
//! ASTRA-sim reports it.
//!
//! Run: `cargo run --release --example gemm_overlap` (every PE of the
//! embedded default topology), or `-- --topology tiny --bm 16 -k 64 -n 64`.

use clap::Parser;
use kernbench::core::topology::Topology;
use kernbench::kernels::overlap::compare;
use std::process::ExitCode;

/// Compute overlapped with communication: fused against sequential.
#[derive(Parser, Debug)]
struct Args {
    /// A topology file or built-in name; the embedded default when absent.
    #[arg(long)]
    topology: Option<String>,
    /// Ranks (the first PEs of the topology); every PE when absent.
    #[arg(long)]
    ranks: Option<usize>,
    /// Rows of each rank's output block.
    #[arg(long, default_value_t = 8)]
    bm: usize,
    /// Depth of the product (columns of a rank's `a`).
    #[arg(short, default_value_t = 32)]
    k: usize,
    /// Columns of the output.
    #[arg(short, default_value_t = 64)]
    n: usize,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> Result<bool, Box<dyn std::error::Error>> {
    let topo = match &args.topology {
        Some(t) => Topology::resolve(t)?,
        None => Topology::embedded_default(),
    };
    let all: Vec<_> = topo.pes().collect();
    let w = args.ranks.unwrap_or(all.len());
    if w == 0 || w > all.len() {
        return Err(format!("--ranks {w}: `{}` has {} PEs", topo.name(), all.len()).into());
    }
    if args.bm == 0 || args.k == 0 || args.n == 0 {
        return Err("--bm, -k and -n must be at least 1".into());
    }
    let o = compare(&topo, &all[..w], (args.bm, args.k, args.n))?;
    let us = |ns: f64| ns / 1e3;
    println!(
        "# GEMM + reduce-scatter on `{}`: {w} ranks, blocks of {} x {} from a depth of {}",
        topo.name(),
        args.bm,
        args.n,
        args.k
    );
    println!(
        "{:<12} {:>10} {:>10} {:>14} {:>18} {:>8}",
        "schedule", "time (us)", "compute", "communication", "exposed comm (us)", "#wrong"
    );
    println!(
        "{:<12} {:>10.2} {:>10.2} {:>14} {:>18.2} {:>8}",
        "sequential",
        us(o.sequential_ns()),
        us(o.compute_ns),
        format!("{:.2}", us(o.collective_ns)),
        us(o.exposed_sequential_ns()),
        o.wrong.1
    );
    println!(
        "{:<12} {:>10.2} {:>10.2} {:>14} {:>18.2} {:>8}",
        "fused",
        us(o.fused_ns),
        us(o.compute_ns),
        "overlapped",
        us(o.exposed_fused_ns()),
        o.wrong.0
    );
    println!(
        "# speedup {:.2}x; exposed communication {:.2} -> {:.2} us; {} elements checked per schedule",
        o.sequential_ns() / o.fused_ns,
        us(o.exposed_sequential_ns()),
        us(o.exposed_fused_ns()),
        o.checked
    );
    Ok(o.wrong == (0, 0))
}
