//! The driver behind the per-collective example binaries: nccl-tests flags,
//! a sweep over sizes, and the nccl-tests table with the data checked on every row.

use crate::cli::args::{dtype, redop, size};
use clap::Parser;
use kernbench_ccl::table::{
    format_row, header, header_tuned, measure, sizes, Row, Settings, Tuned,
};
use kernbench_ccl::{RedOp, Registry};
use kernbench_core::sim::FabricModel;
use kernbench_core::topology::Topology;
use kernbench_core::DType;
use std::path::PathBuf;
use std::process::ExitCode;

/// Flags shared by the collective examples (nccl-tests spellings).
#[derive(Parser, Debug)]
#[command(about = "Run a collective on the modelled machine and print the nccl-tests table")]
pub struct Args {
    /// Smallest size in bytes per rank (K, M, G suffixes).
    #[arg(short = 'b', long = "minbytes", default_value = "64K", value_parser = size)]
    pub min: u64,
    /// Largest size in bytes per rank.
    #[arg(short = 'e', long = "maxbytes", default_value = "1M", value_parser = size)]
    pub max: u64,
    /// Multiplication factor between sizes.
    #[arg(short = 'f', long = "stepfactor", default_value_t = 4)]
    pub factor: u64,
    /// Element type: float, half, bfloat16, int32 (or f32, f16, bf16, i32).
    #[arg(short = 'd', long = "datatype", default_value = "float", value_parser = dtype)]
    pub dtype: DType,
    /// Reduction: sum, max, min.
    #[arg(short = 'o', long = "op", default_value = "sum", value_parser = redop)]
    pub op: RedOp,
    /// Root rank (broadcast, reduce, gather).
    #[arg(short = 'r', long = "root", default_value_t = 0)]
    pub root: usize,
    /// Check the data (1) or time only (0).
    #[arg(short = 'c', long = "check", default_value_t = 1)]
    pub check: u8,
    /// Topology file; the embedded default machine when absent.
    #[arg(long)]
    pub topology: Option<PathBuf>,
    /// Algorithm registry file; the shipped configs/ccl.yaml when absent.
    #[arg(long)]
    pub registry: Option<PathBuf>,
    /// Number of ranks (PEs, in structural order); the algorithm's world size when absent.
    #[arg(short = 'n', long = "ranks")]
    pub ranks: Option<usize>,
    /// Print one JSON object per row instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Write a Chrome trace (Perfetto, chrome://tracing) of the largest size's run to FILE.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// How IPCQ messages cross the fabric: `messages` (O(1) events a
    /// message) or `slots` (every ring slot its own events; the reference).
    #[arg(long, default_value = "messages")]
    pub fabric: FabricModel,
    /// Which of one instant's events the engine handles first: `scheduled`
    /// (in the order they were scheduled, the default), `reversed` (the
    /// last scheduled first) or `ranked` (op completions first, then by PE,
    /// whenever each was scheduled). Where two of them ask for one link or
    /// HBM pseudo-channel the first handled is served first; running more
    /// than one shows how much a result depends on that order.
    #[arg(long, default_value = "scheduled")]
    pub ties: kernbench_core::sim::TieOrder,
    /// `auto`: at each size, run the registry algorithm of this example's
    /// collective that the cost model predicts fastest on the ranks (every
    /// PE, or --ranks); the table shows it and the runner-up.
    #[arg(short = 'a', long = "algos", value_name = "auto")]
    pub algos: Option<String>,
    /// After the table, print why the largest size's run is as slow as it
    /// is: the busiest links and engines, the waits, and the critical path.
    #[arg(long, conflicts_with = "json")]
    pub why: bool,
}

/// Runs the example for the registry algorithm `name` with the process's arguments.
pub fn main_for(name: &str) -> ExitCode {
    let args = Args::parse();
    match run(name, &args) {
        Ok(rows) => {
            if rows.iter().any(|r| r.wrong > 0) {
                eprintln!("error: the result is wrong on some rows (#wrong > 0)");
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs the sweep and prints it; returns the rows.
pub fn run(name: &str, args: &Args) -> Result<Vec<Row>, Box<dyn std::error::Error>> {
    let topo = match &args.topology {
        Some(p) => Topology::resolve(&p.to_string_lossy())?,
        None => Topology::embedded_default(),
    };
    let reg = match &args.registry {
        Some(p) => Registry::load(p)?,
        None => Registry::try_builtin()?,
    };
    let algo = reg.get(name)?.clone();
    let auto = match args.algos.as_deref() {
        None => false,
        Some(kernbench_ccl::tune::AUTO) => true,
        Some(x) => {
            return Err(format!(
                "--algos {x}: the examples take --algos auto; `{name}` runs without it"
            )
            .into())
        }
    };
    let mut pes = if auto {
        topo.pes().collect()
    } else {
        kernbench_ccl::run::ranks(&topo, &algo)?
    };
    if let Some(n) = args.ranks {
        let all: Vec<_> = topo.pes().collect();
        if n == 0 || n > all.len() {
            return Err(format!(
                "--ranks {n}: topology `{}` has {} PEs",
                topo.name(),
                all.len()
            )
            .into());
        }
        pes = all[..n].to_vec();
    }
    let sweep = sizes(args.min, args.max, args.factor)?;
    let cands = if auto {
        let c = kernbench_ccl::tune::candidates(&topo, reg.algorithms(), algo.collective, &pes);
        if c.is_empty() {
            return Err(
                kernbench_ccl::tune::no_candidates(&topo, algo.collective, pes.len()).into(),
            );
        }
        c
    } else {
        Vec::new()
    };
    if auto && !args.json {
        println!(
            "# auto ({}) on `{}`: {} ranks, the fastest by the model of {} algorithms at each size, {}",
            algo.collective.name(),
            topo.name(),
            pes.len(),
            cands.len(),
            checked_and_models(args)
        );
        println!("{}", header_tuned());
    } else if !args.json {
        println!(
            "# {} ({}) on `{}`: {} ranks, {} IPCQ buffers, {} B per message, {}",
            algo.name,
            algo.collective.name(),
            topo.name(),
            pes.len(),
            format!("{:?}", algo.ipcq.buffer).to_lowercase(),
            algo.seg_bytes,
            checked_and_models(args)
        );
        println!("{}", header());
    }
    let how = Settings {
        dtype: args.dtype,
        op: args.op,
        root: args.root,
        data: args.check != 0,
        fabric: args.fabric,
        ties: args.ties,
    };
    let mut rows = Vec::new();
    let mut last = algo.clone();
    for bytes in sweep {
        let (run, tuned) = if auto {
            let d = args.dtype.size() as u64;
            let b = (bytes / d).max(1) * d;
            let p = kernbench_ccl::tune::pick(&topo, &cands, &pes, b as f64).ok_or_else(|| {
                kernbench_ccl::tune::no_candidates(&topo, algo.collective, pes.len())
            })?;
            (p.best.algo.clone(), Some(Tuned::of(&p)))
        } else {
            (algo.clone(), None)
        };
        let row = Row {
            tuned,
            ..measure(&topo, &run, &pes, bytes, &how)?
        };
        last = run;
        if args.json {
            println!("{}", serde_json::to_string(&row)?);
        } else {
            println!("{}", format_row(&row));
        }
        rows.push(row);
    }
    let mut why = None;
    if args.trace.is_some() || args.why {
        let count = (args.max / args.dtype.size() as u64).max(1) as usize;
        let spec = kernbench_ccl::RunSpec {
            fabric: args.fabric,
            ties: args.ties,
            max_memory: None,
            progress: Default::default(),
            count,
            dtype: args.dtype,
            op: args.op,
            root: args.root,
            data: false,
            trace: args.trace.is_some(),
            why: args.why,
        };
        // The largest size's algorithm (the tuner's pick there, with --algos auto).
        let r = kernbench_ccl::run_on(&topo, &last, &pes, &spec)?;
        if let Some(path) = &args.trace {
            let opts = kernbench_core::export::chrome::TraceOptions::default();
            kernbench_core::export::chrome::write_chrome_trace(path, &r.outcome, &topo, &opts)?;
            eprintln!(
                "wrote {} (open it at https://ui.perfetto.dev)",
                path.display()
            );
        }
        if args.why {
            why = Some(kernbench_core::sim::why::Why::of(&r.outcome)?);
        }
    }
    if !args.json {
        let wrong: i64 = rows.iter().map(|r| r.wrong.max(0)).sum();
        let avg = rows.iter().map(|r| r.busbw).sum::<f64>() / rows.len().max(1) as f64;
        println!(
            "# out of bounds values : {wrong} {}",
            if wrong == 0 { "OK" } else { "FAILED" }
        );
        println!("# avg bus bandwidth    : {avg:.3} GB/s");
    }
    if let Some(why) = why {
        print!("at {} B per rank, {why}", args.max);
    }
    Ok(rows)
}

/// How a table was made, for its header: whether the data are checked, and
/// the fabric model and tie order where they are not the defaults.
fn checked_and_models(args: &Args) -> String {
    let mut s = String::from(if args.check != 0 {
        "data checked"
    } else {
        "timing only"
    });
    if args.fabric != FabricModel::default() {
        s += &format!(", {} fabric", args.fabric);
    }
    if args.ties != kernbench_core::sim::TieOrder::default() {
        s += &format!(", {} ties", args.ties);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_header_names_the_models_only_when_they_are_not_the_defaults() {
        let header = |flags: &[&str]| {
            let args = Args::try_parse_from(["collective"].iter().chain(flags)).unwrap();
            checked_and_models(&args)
        };
        assert_eq!(header(&[]), "data checked");
        assert_eq!(header(&["--check", "0"]), "timing only");
        assert_eq!(
            header(&["--ties", "reversed", "--fabric", "slots"]),
            "data checked, slots fabric, reversed ties"
        );
        assert_eq!(header(&["--ties", "scheduled"]), "data checked");
    }
}
