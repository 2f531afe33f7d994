//! The driver behind the `gemm` and `qkv_gemm` examples: one composite GEMM on
//! one PE, its report, and the analytic bound `max(FLOPs / peak, bytes / HBM bandwidth)`.

use crate::kernels::gemm;
use clap::Parser;
use kernbench_core::machine::Machine;
use kernbench_core::sim::{simulate, Launch};
use kernbench_core::topology::Topology;
use kernbench_core::{DType, PeId};
use std::path::PathBuf;
use std::process::ExitCode;

/// Flags of the GEMM examples.
#[derive(Parser, Debug)]
#[command(about = "One GEMM on one PE of the modelled machine, against its analytic bound")]
pub struct Args {
    /// Rows of A and C.
    #[arg(long)]
    pub m: Option<usize>,
    /// Columns of A, rows of B.
    #[arg(long)]
    pub k: Option<usize>,
    /// Columns of B and C.
    #[arg(long)]
    pub n: Option<usize>,
    /// Operand type: f16, bf16, f32.
    #[arg(long, default_value = "f16", value_parser = dtype)]
    pub dtype: DType,
    /// Topology file; the embedded default when absent.
    #[arg(long)]
    pub topology: Option<PathBuf>,
    /// One JSON object instead of the report.
    #[arg(long)]
    pub json: bool,
}

fn dtype(s: &str) -> Result<DType, String> {
    match DType::parse(s) {
        Some(DType::I32) | None => {
            Err(format!("`{s}` is not a GEMM operand type (f16, bf16, f32)"))
        }
        Some(d) => Ok(d),
    }
}

/// Runs the example with default shape `(m, k, n)`.
pub fn main_with(defaults: (usize, usize, usize)) -> ExitCode {
    let args = Args::parse();
    match run(defaults, &args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(defaults: (usize, usize, usize), args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let (m, k, n) = (
        args.m.unwrap_or(defaults.0),
        args.k.unwrap_or(defaults.1),
        args.n.unwrap_or(defaults.2),
    );
    if m == 0 || k == 0 || n == 0 {
        return Err("--m, --k and --n must be at least 1".into());
    }
    let topo = match &args.topology {
        Some(p) => Topology::resolve(&p.to_string_lossy())?,
        None => Topology::embedded_default(),
    };
    let pe = PeId::new(0, 0, 0);
    let mut machine = Machine::new(topo)?;
    let a = machine.alloc(args.dtype, m * k, &[pe])?;
    let b = machine.alloc(args.dtype, k * n, &[pe])?;
    let c = machine.alloc(DType::F32, m * n, &[pe])?;
    let kargs = gemm::args()
        .a(a.view(m, k)?)
        .b(b.view(k, n)?)
        .c(c.view(m, n)?);
    let report = simulate(
        &mut machine,
        &Launch::new(&gemm, kargs, vec![pe]).data(false),
    )?;
    let spec = machine.topology().pe_spec();
    let flops = 2.0 * (m * n * k) as f64;
    let peak = spec.gemm_flops_per_ns(args.dtype.size());
    let es = args.dtype.size() as f64;
    // The least HBM traffic: read A and B once, write C once.
    let min_bytes = (m * k) as f64 * es + (k * n) as f64 * es + (m * n) as f64 * 4.0;
    let bound = (flops / peak).max(min_bytes / spec.hbm_effective_gbps());
    let sim = report.sim_ns();
    if args.json {
        let v = serde_json::json!({
            "kernel": report.kernel,
            "m": m, "k": k, "n": n, "dtype": args.dtype.name(),
            "sim_ns": sim,
            "bound_ns": bound,
            "compute_bound_ns": flops / peak,
            "memory_bound_ns": min_bytes / spec.hbm_effective_gbps(),
            "flops": report.flops(),
            "hbm_bytes": report.hbm_bytes(),
            "efficiency": bound / sim,
            "report": report,
        });
        println!("{v}");
    } else {
        print!("{report}");
        println!(
            "GEMM {m}x{k}x{n} {}: {sim:.1} ns simulated; bound {bound:.1} ns = max({:.1} ns compute at {:.0} GFLOP/s, {:.1} ns for {:.0} B at {:.1} GB/s); {:.1}% of the bound",
            args.dtype,
            flops / peak,
            peak,
            min_bytes / spec.hbm_effective_gbps(),
            min_bytes,
            spec.hbm_effective_gbps(),
            bound / sim * 100.0
        );
    }
    Ok(())
}
