//! `kernbench run`: a kernel on the PEs of a topology, or a registry algorithm at one size.

use super::args::{self, Axes, Set};
use super::{out, usage, Result};
use clap::Args;
use kernbench_ccl::run::{neighbor_map, ranks, run_on, RunSpec};
use kernbench_ccl::table::{format_row, header, Row};
use kernbench_ccl::{Algorithm, MapKind, RedOp, Registry};
use kernbench_core::machine::Machine;
use kernbench_core::sim::{simulate_full, Launch, Report};
use kernbench_core::topology::Topology;
use kernbench_core::{DType, PeId};
use serde::Serialize;
use std::io::Write;

/// Flags of `kernbench run`.
#[derive(Args, Debug)]
#[command(
    after_help = "A kernel runs one instance per PE (in structural order: SIP, cube, PE). Each pointer \
or tensor parameter is allocated as one buffer split into equal contiguous shards over those PEs; \
size it with --set NAME.len=N (elements; default 2^24) or --set NAME=ROWSxCOLS so that each \
instance's slice lands in its own PE's shard.\n\n\
Examples:\n  kernbench run hello_send --set n_elem=1024 --set t.len=262144\n  \
kernbench run vector_add --pes 4 --set x.len=4096 --set y.len=4096 --set z.len=4096 --set n=4096 --set block=1024\n  \
kernbench run ring_allreduce --topology tiny --size 1M -d half --verify-data"
)]
pub struct RunArgs {
    /// A kernel (`kernbench list`) or a collective algorithm of the registry.
    pub name: String,
    /// A topology file, or a built-in name (default, tiny, large); the embedded default when absent.
    #[arg(long, value_name = "FILE")]
    pub topology: Option<String>,
    /// A kernel parameter: NAME=VALUE (scalar), NAME=ROWSxCOLS (tensor), NAME.len=N (pointer). Repeatable.
    #[arg(long, short = 's', value_name = "NAME=VALUE", value_parser = args::set)]
    pub set: Vec<Set>,
    /// Use the first N PEs of the topology (kernels: instances; algorithms: ranks).
    #[arg(long, value_name = "N")]
    pub pes: Option<usize>,
    /// The kernel's launch grid (its size is the number of PEs); `N` (1D) when absent.
    #[arg(long, value_parser = args::axes)]
    pub grid: Option<Axes>,
    /// The neighbour map a kernel's directions resolve through: ring, torus2d, tree, hierarchical, none.
    #[arg(long, default_value = "ring")]
    pub map: String,
    /// Execute the data as well as the timing; for an algorithm, check every
    /// element against the exact result (exit code 1 when one is wrong).
    #[arg(long)]
    pub verify_data: bool,
    /// How IPCQ messages cross the fabric: `messages` (O(1) events a
    /// message, the default) or `slots` (every ring slot its own events; the reference).
    #[arg(long, default_value = "messages")]
    pub fabric: kernbench_core::sim::FabricModel,
    /// The most memory the run may take (K, M, G suffixes); what the machine
    /// has available when absent. A run estimated above it stops before it starts.
    #[arg(long, value_name = "SIZE", value_parser = args::size)]
    pub max_memory: Option<u64>,
    /// Print JSON: the report, plus sim_ns, bound_ns, flops, hbm_bytes (and the table row of an algorithm).
    #[arg(long)]
    pub json: bool,
    /// Write a Chrome trace (Perfetto, chrome://tracing) of the run to FILE.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<std::path::PathBuf>,
    /// With --trace: only these PEs (`sip.cube.pe`, comma-separated).
    #[arg(long, value_name = "PES", requires = "trace", value_parser = crate::cli::args::pe_list)]
    pub trace_pes: Option<crate::cli::args::PeList>,
    /// With --trace: only this window of simulated time, `FROM_NS..TO_NS`.
    #[arg(long, value_name = "FROM..TO", requires = "trace", value_parser = crate::cli::args::window)]
    pub trace_window: Option<(f64, f64)>,
    /// Bytes of each rank's vector (K, M, G suffixes).
    #[arg(long, default_value = "1M", value_parser = args::size, help_heading = "Registry algorithms")]
    pub size: u64,
    /// Element type: float, half, bfloat16, int32 (or f32, f16, bf16, i32).
    #[arg(short = 'd', long = "datatype", default_value = "float", value_parser = args::dtype, help_heading = "Registry algorithms")]
    pub dtype: DType,
    /// Reduction: sum, max, min.
    #[arg(short = 'o', long = "op", default_value = "sum", value_parser = args::redop, help_heading = "Registry algorithms")]
    pub op: RedOp,
    /// Bytes per message (K, M, G suffixes); the registry's seg_bytes when absent.
    #[arg(long, value_name = "SIZE", value_parser = args::size, help_heading = "Registry algorithms")]
    pub seg: Option<u64>,
    /// Root rank (broadcast).
    #[arg(
        short = 'r',
        long,
        default_value_t = 0,
        help_heading = "Registry algorithms"
    )]
    pub root: usize,
}

#[derive(Serialize)]
struct RunJson<'a> {
    #[serde(flatten)]
    report: &'a Report,
    sim_ns: f64,
    bound_ns: f64,
    flops: u64,
    hbm_bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    row: Option<&'a Row>,
}

fn json(report: &Report, row: Option<&Row>) -> Result<String> {
    let j = RunJson {
        report,
        sim_ns: report.sim_ns(),
        bound_ns: report.bound_ns(),
        flops: report.flops(),
        hbm_bytes: report.hbm_bytes(),
        row,
    };
    Ok(format!(
        "{}\n",
        serde_json::to_string_pretty(&j).map_err(usage)?
    ))
}

fn first_pes(topo: &Topology, n: usize) -> Result<Vec<PeId>> {
    let all: Vec<PeId> = topo.pes().collect();
    if n == 0 || n > all.len() {
        return Err(usage(format!(
            "--pes {n}: topology `{}` has {} PEs",
            topo.name(),
            all.len()
        )));
    }
    Ok(all[..n].to_vec())
}

/// Runs `kernbench run`.
pub fn run(a: &RunArgs, w: &mut dyn Write) -> Result<()> {
    let topo = args::topology(a.topology.as_deref())?;
    let reg = Registry::builtin();
    match reg.get(&a.name) {
        Ok(algo) => run_algorithm(a, &topo, algo, w),
        Err(_) => run_kernel(a, &topo, w),
    }
}

fn run_kernel(a: &RunArgs, topo: &Topology, w: &mut dyn Write) -> Result<()> {
    let kernel = args::find_kernel(&a.name).map_err(|_| {
        usage(format!(
            "`{}` is neither a registered kernel nor a registry algorithm; `kernbench list` shows them",
            a.name
        ))
    })?;
    let grid_size = a
        .grid
        .as_ref()
        .map(|g| g.0.iter().map(|x| *x as usize).product::<usize>());
    let n = match (a.pes, grid_size) {
        (Some(n), Some(g)) if n != g => {
            return Err(usage(format!(
                "--grid {:?} has {g} instances but --pes is {n}",
                a.grid.as_ref().map(|g| &g.0)
            )))
        }
        (Some(n), _) | (None, Some(n)) => n,
        (None, None) => topo.pe_count(),
    };
    let pes = first_pes(topo, n)?;
    let grid = a
        .grid
        .as_ref()
        .map_or_else(|| vec![n as u32], |g| g.0.clone());
    let mut machine = Machine::new(topo.clone()).map_err(usage)?;
    let kargs = args::kernel_args(kernel.meta(), &a.set, &mut |b| {
        let buf = machine
            .alloc(b.dtype, b.len, &pes)
            .map_err(|e| usage(format!("parameter `{}`: {e}", b.param.name)))?;
        Ok(match b.shape {
            Some([r, c]) => buf.tensor(r, c).map_err(usage)?,
            None => buf.ptr(),
        })
    })?;
    let kind = match a.map.as_str() {
        "none" => None,
        "ring" => Some(MapKind::Ring),
        "torus2d" => Some(MapKind::Torus2d),
        "tree" => Some(MapKind::Tree),
        "hierarchical" => Some(MapKind::Hierarchical),
        other => {
            return Err(usage(format!(
                "--map {other}: use ring, torus2d, tree, hierarchical or none"
            )))
        }
    };
    let mut launch = Launch::new(kernel, kargs, pes.clone())
        .grid(&grid)
        .data(a.verify_data)
        .trace(a.trace.is_some())
        .fabric(a.fabric)
        .max_memory(a.max_memory);
    if let Some(kind) = kind {
        launch = launch.neighbors(neighbor_map(topo, kind, &pes).map_err(usage)?);
    }
    let outcome = simulate_full(&mut machine, &launch).map_err(usage)?;
    write_trace(a, &outcome, topo)?;
    if a.json {
        out(w, &json(&outcome.report, None)?)
    } else {
        out(w, &outcome.report.to_string())
    }
}

fn write_trace(a: &RunArgs, outcome: &kernbench_core::sim::Outcome, topo: &Topology) -> Result<()> {
    let Some(path) = &a.trace else { return Ok(()) };
    let opts = kernbench_core::sim::timeline::TraceOptions {
        pes: a.trace_pes.clone().map(|l| l.0),
        window_ns: a.trace_window,
        ..Default::default()
    };
    kernbench_core::sim::timeline::write_chrome_trace(path, outcome, topo, &opts)
        .map_err(|e| usage(format!("--trace {}: {e}", path.display())))?;
    eprintln!(
        "wrote {} (open it at https://ui.perfetto.dev)",
        path.display()
    );
    Ok(())
}

fn run_algorithm(a: &RunArgs, topo: &Topology, algo: &Algorithm, w: &mut dyn Write) -> Result<()> {
    if let Some(s) = a.set.first() {
        return Err(usage(format!(
            "--set {}: `{}` is a registry algorithm; it takes --size, -d, --op and --root",
            s.name, algo.name
        )));
    }
    if a.grid.is_some() || a.map != "ring" {
        return Err(usage(format!(
            "`{}` is a registry algorithm: its grid and neighbour map come from the registry",
            algo.name
        )));
    }
    let pes = match a.pes {
        Some(n) => first_pes(topo, n)?,
        None => ranks(topo, algo).map_err(usage)?,
    };
    let count = (a.size / a.dtype.size() as u64).max(1) as usize;
    let spec = RunSpec {
        fabric: a.fabric,
        max_memory: a.max_memory,
        count,
        dtype: a.dtype,
        op: a.op,
        root: a.root,
        data: a.verify_data,
        trace: a.trace.is_some(),
    };
    let mut algo = algo.clone();
    if let Some(seg) = a.seg {
        algo.seg_bytes = seg;
    }
    let algo = &algo;
    let r = run_on(topo, algo, &pes, &spec).map_err(usage)?;
    write_trace(a, &r.outcome, topo)?;
    let row = kernbench_ccl::table::row_of(topo, algo, &pes, &spec, &r);
    if a.json {
        out(w, &json(&r.outcome.report, Some(&row))?)?;
    } else {
        out(
            w,
            &format!("{}\n{}\n{}\n", r.outcome.report, header(), format_row(&row)),
        )?;
    }
    if a.verify_data && r.wrong > 0 {
        return Err(args::check(format!(
            "{} of {} elements are wrong ({} on `{}`, {} B, {})",
            r.wrong,
            r.checked,
            algo.name,
            topo.name(),
            row.size,
            row.dtype
        )));
    }
    Ok(())
}
