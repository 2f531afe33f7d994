//! `kernbench run`: a kernel on the PEs of a topology, or a registry algorithm at one size.

use super::args::{self, Axes, Set};
use super::user::Catalog;
use super::{out, usage, Result};
use crate::html::Page;
use clap::Args;
use kernbench_ccl::run::{neighbor_map, ranks, run_on, RunResult, RunSpec};
use kernbench_ccl::table::{format_row, header, header_tuned, Row};
use kernbench_ccl::{Algorithm, MapKind, RedOp, Registry};
use kernbench_core::machine::Machine;
use kernbench_core::sim::{simulate_full, Launch, Outcome, ProgressHook, Report};
use kernbench_core::topology::Topology;
use kernbench_core::{DType, PeId};
use serde::Serialize;
use std::io::Write;

/// What a launch from the command line names: a kernel or a registry
/// algorithm, the machine, and its parameters (shared by `run` and `export`).
#[derive(Args, Debug)]
pub struct LaunchArgs {
    /// A kernel (`kernbench list`) or a collective algorithm of the registry.
    pub name: String,
    /// A topology file, or a built-in name (default, tiny, large); the embedded default when absent.
    #[arg(long, value_name = "FILE")]
    pub topology: Option<String>,
    /// Degrade a link of the topology: LINK=SHARE[+NS] keeps SHARE of its
    /// bandwidth and adds NS of latency, e.g. `--degrade 'sip0/io/noc -> switch=0.5'`
    /// (`a <-> b` for both directions). Repeatable; adds to the file's `degraded`.
    #[arg(long, value_name = "LINK=SHARE[+NS]")]
    pub degrade: Vec<kernbench_core::topology::DegradedLink>,
    /// Slow a PE, cube or SIP: AT=SPEED[+NS] keeps SPEED of its issue and
    /// compute speed and starts it NS late, e.g. `--slow sip0/cube1/pe3=0.5`
    /// or `--slow sip1=1+2000`. Repeatable; adds to the file's `slow`.
    #[arg(long, value_name = "AT=SPEED[+NS]")]
    pub slow: Vec<kernbench_core::topology::SlowPart>,
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
    /// How IPCQ messages cross the fabric: `messages` (O(1) events a
    /// message, the default) or `slots` (every ring slot its own events; the reference).
    #[arg(long, default_value = "messages")]
    pub fabric: kernbench_core::sim::FabricModel,
    /// Which of one instant's events the engine handles first: `scheduled`
    /// (in the order they were scheduled, the default), `reversed` (the
    /// last scheduled first) or `ranked` (op completions first, then by PE,
    /// whenever each was scheduled). Where two of them ask for one link or
    /// HBM pseudo-channel the first handled is served first; running more
    /// than one shows how much a result depends on that order.
    #[arg(long, default_value = "scheduled")]
    pub ties: kernbench_core::sim::TieOrder,
    /// The most memory the run may take (K, M, G suffixes); what the machine
    /// has available when absent. A run estimated above it stops before it starts.
    #[arg(long, value_name = "SIZE", value_parser = args::size)]
    pub max_memory: Option<u64>,
    /// No progress bar (one shows on a terminal when a run takes over 2 s).
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Keep elementwise tails after a GEMM as separate MATH commands instead
    /// of folding them into its epilogue (`kernbench graph --after fuse`
    /// shows what folds).
    #[arg(long)]
    pub no_fuse: bool,
    /// Bytes of each rank's vector (K, M, G suffixes).
    #[arg(long, default_value = "1M", value_parser = args::size, help_heading = "Registry algorithms")]
    pub size: u64,
    /// Element type: float, half, bfloat16, int32 (or f32, f16, bf16, i32);
    /// also a generic kernel's type parameters (`--set T=TYPE` sets one).
    #[arg(short = 'd', long = "datatype", default_value = "float", value_parser = args::dtype)]
    pub dtype: DType,
    /// Reduction: sum, max, min.
    #[arg(short = 'o', long = "op", default_value = "sum", value_parser = args::redop, help_heading = "Registry algorithms")]
    pub op: RedOp,
    /// Bytes per message (K, M, G suffixes); the registry's seg_bytes when absent.
    #[arg(long, value_name = "SIZE", value_parser = args::size, help_heading = "Registry algorithms")]
    pub seg: Option<u64>,
    /// Root rank (broadcast, reduce, gather).
    #[arg(
        short = 'r',
        long,
        default_value_t = 0,
        help_heading = "Registry algorithms"
    )]
    pub root: usize,
    /// `auto`: run the registry algorithm the cost model predicts fastest at
    /// --size, among those of the collective NAME names (`all_reduce`,
    /// `broadcast`, ... or one of its algorithms) that run on --pes PEs
    /// (every PE when absent); the table shows it and the runner-up.
    #[arg(
        short = 'a',
        long = "algos",
        value_name = "auto",
        help_heading = "Registry algorithms"
    )]
    pub algos: Option<String>,
}

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
    /// The kernel or algorithm, and where and how to launch it.
    #[command(flatten)]
    pub launch: LaunchArgs,
    /// Execute the data as well as the timing; for an algorithm, check every
    /// element against the exact result (exit code 1 when one is wrong).
    #[arg(long)]
    pub verify_data: bool,
    /// Print JSON: the report, plus sim_ns, bound_ns, bound, flops, hbm_bytes, remote_bytes (and the table row of an algorithm).
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
    /// Print why the run is as slow as it is: the busiest links and
    /// engines, the time PEs waited for credits, data and engines, and the
    /// critical path from the start to the op that ended last, by kernel
    /// line. Keeps each op's span while it runs (simulated times do not change).
    #[arg(long, conflicts_with = "json")]
    pub why: bool,
    #[command(flatten)]
    pub html: super::html::HtmlArgs,
}

#[derive(Serialize)]
struct RunJson<'a> {
    #[serde(flatten)]
    report: &'a Report,
    sim_ns: f64,
    bound_ns: f64,
    bound: kernbench_core::sim::Bound,
    flops: u64,
    hbm_bytes: u64,
    remote_bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    row: Option<&'a Row>,
}

fn json(report: &Report, row: Option<&Row>) -> Result<String> {
    let j = RunJson {
        report,
        sim_ns: report.sim_ns(),
        bound_ns: report.bound_ns(),
        bound: report.bound(),
        flops: report.flops(),
        hbm_bytes: report.hbm_bytes(),
        remote_bytes: report.remote_bytes(),
        row,
    };
    Ok(format!(
        "{}\n",
        serde_json::to_string_pretty(&j).map_err(usage)?
    ))
}

/// The neighbour map `--map` names; `None` for `none`.
pub(crate) fn map_kind(name: &str) -> Result<Option<MapKind>> {
    Ok(match name {
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
    })
}

/// A machine of `topo` holding a buffer for each pointer and tensor of
/// `kernel`, spread over `pes`, and the kernel's arguments: the buffers and
/// the `--set` values (`elem` is the element type of generic buffers).
pub(crate) fn machine_with_args(
    topo: &Topology,
    kernel: &dyn kernbench_tl::Kernel,
    sets: &[Set],
    elem: DType,
    pes: &[PeId],
) -> Result<(Machine, kernbench_core::ir::KernelArgs)> {
    let mut machine = Machine::new(topo.clone()).map_err(usage)?;
    let kargs = args::kernel_args(kernel.meta(), sets, elem, &mut |b| {
        let buf = machine
            .alloc(b.dtype, b.len, pes)
            .map_err(|e| usage(format!("parameter `{}`: {e}", b.param.name)))?;
        Ok(match b.shape {
            Some([r, c]) => buf.tensor(r, c).map_err(usage)?,
            None => buf.ptr(),
        })
    })?;
    Ok((machine, kargs))
}

/// The first `n` PEs of `topo`, in structural order.
pub(crate) fn first_pes(topo: &Topology, n: usize) -> Result<Vec<PeId>> {
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

/// What a launch from the command line ran.
pub enum Simulated {
    /// A kernel: its outcome.
    Kernel(Outcome),
    /// A registry algorithm: the algorithm as run (with `--seg` applied), its
    /// ranks and spec, and its result.
    Algorithm {
        /// The algorithm.
        algo: Box<Algorithm>,
        /// Its ranks.
        pes: Vec<PeId>,
        /// What ran.
        spec: RunSpec,
        /// The outcome and the data check.
        result: RunResult,
        /// What the tuner weighed, when `--algos auto` chose the algorithm.
        tuned: Option<kernbench_ccl::table::Tuned>,
    },
}

impl Simulated {
    /// The simulation's outcome.
    pub fn outcome(&self) -> &Outcome {
        match self {
            Simulated::Kernel(o) => o,
            Simulated::Algorithm { result, .. } => &result.outcome,
        }
    }
}

/// Resolves `l.name` to an algorithm (of the registry or the program) or a
/// kernel of `cat` and simulates it on `topo`; `data` executes the data
/// too, `trace` keeps the graphs, programs, spans and messages, `why` the
/// programs and spans.
/// A progress bar shows on a terminal while it runs, unless `--quiet`.
pub(crate) fn simulate(
    l: &LaunchArgs,
    cat: &Catalog,
    topo: &Topology,
    data: bool,
    trace: bool,
    why: bool,
) -> Result<Simulated> {
    let algos = cat.algorithms(
        &Registry::try_builtin().map_err(super::usage)?,
        "configs/ccl.yaml",
    )?;
    let bar = super::progress::RunBar::new(l.quiet);
    let hook = bar.hook();
    if let Some(sel) = &l.algos {
        return simulate_tuned(l, topo, &algos, sel, (data, trace, why), hook);
    }
    match algos.iter().find(|a| a.name == l.name) {
        Some(algo) => simulate_algorithm(l, topo, algo, None, (data, trace, why), hook),
        // A collective's name, unless a kernel of the program takes it.
        None if kernbench_ccl::Collective::parse(&l.name).is_some()
            && cat.kernel_typed(&l.name).is_err() =>
        {
            Err(usage(format!(
                "`{}` is a collective, not one algorithm: add -a auto to run the one the model \
             predicts fastest, or name an algorithm (`kernbench list` shows them)",
                l.name
            )))
        }
        None => simulate_kernel(l, cat, topo, (data, trace, why), hook).map(Simulated::Kernel),
    }
}

/// `--algos auto`: the algorithm of `l.name`'s collective the model
/// predicts fastest at `--size`, simulated.
fn simulate_tuned(
    l: &LaunchArgs,
    topo: &Topology,
    algos: &[Algorithm],
    sel: &str,
    flags: (bool, bool, bool),
    progress: ProgressHook,
) -> Result<Simulated> {
    use kernbench_ccl::tune;
    if sel != tune::AUTO {
        return Err(usage(format!(
            "--algos {sel}: `kernbench run` takes --algos auto; name one algorithm as NAME to run it"
        )));
    }
    let coll = match algos.iter().find(|a| a.name == l.name) {
        Some(a) => a.collective,
        None => super::sweep::collective(&l.name).map_err(|_| {
            usage(format!(
                "--algos auto: `{}` is neither a collective (all_reduce, reduce_scatter, all_gather, \
                 broadcast, reduce, gather, all_to_all) nor a registry algorithm",
                l.name
            ))
        })?,
    };
    let pes = match l.pes {
        Some(n) => first_pes(topo, n)?,
        None => topo.pes().collect(),
    };
    // The candidates as they would run: with --seg applied.
    let pool: Vec<Algorithm> = algos
        .iter()
        .map(|a| Algorithm {
            seg_bytes: l.seg.unwrap_or(a.seg_bytes),
            ..a.clone()
        })
        .collect();
    let cands = tune::candidates(topo, &pool, coll, &pes);
    let bytes = (l.size / l.dtype.size() as u64).max(1) * l.dtype.size() as u64;
    let pick = tune::pick(topo, &cands, &pes, bytes as f64)
        .ok_or_else(|| usage(tune::no_candidates(topo, coll, pes.len())))?;
    let tuned = kernbench_ccl::table::Tuned::of(&pick);
    let sim = simulate_algorithm(l, topo, pick.best.algo, Some(pes), flags, progress)?;
    Ok(match sim {
        Simulated::Algorithm {
            algo,
            pes,
            spec,
            result,
            ..
        } => Simulated::Algorithm {
            algo,
            pes,
            spec,
            result,
            tuned: Some(tuned),
        },
        k => k,
    })
}

/// Runs `kernbench run`.
pub(crate) fn run(a: &RunArgs, cat: &Catalog, w: &mut dyn Write) -> Result<()> {
    a.html.check()?;
    let topo = args::with_stragglers(
        args::topology(a.launch.topology.as_deref())?,
        &a.launch.degrade,
        &a.launch.slow,
    )?;
    let trace = a.trace.is_some() || a.html.wanted();
    let sim = simulate(&a.launch, cat, &topo, a.verify_data, trace, a.why)?;
    write_trace(a, sim.outcome(), &topo)?;
    let why = || -> Result<String> {
        if !a.why {
            return Ok(String::new());
        }
        let w = kernbench_core::sim::why::Why::of(sim.outcome()).map_err(usage)?;
        Ok(w.to_string())
    };
    match &sim {
        Simulated::Kernel(outcome) => {
            a.html.write(&Page::new(
                format!("{} on {}", a.launch.name, topo.name()),
                &topo,
                outcome,
            ))?;
            if a.json {
                out(w, &json(&outcome.report, None)?)
            } else {
                out(w, &format!("{}{}", outcome.report, why()?))
            }
        }
        Simulated::Algorithm {
            algo,
            pes,
            spec,
            result: r,
            tuned,
        } => {
            let rows = [kernbench_ccl::table::Row {
                tuned: tuned.clone(),
                ..kernbench_ccl::table::row_of(&topo, algo, pes, spec, r)
            }];
            let row = &rows[0];
            a.html.write(
                &Page::new(
                    format!(
                        "{} ({}) on {}",
                        algo.name,
                        algo.collective.name(),
                        topo.name()
                    ),
                    &topo,
                    &r.outcome,
                )
                .run_label(format!(
                    "{} B per rank, {}, {} ranks",
                    row.size,
                    row.dtype,
                    pes.len()
                ))
                .results(algo.collective.name(), &rows),
            )?;
            if a.json {
                out(w, &json(&r.outcome.report, Some(row))?)?;
            } else {
                let head = if row.tuned.is_some() {
                    header_tuned()
                } else {
                    header()
                };
                out(
                    w,
                    &format!(
                        "{}\n{head}\n{}\n{}",
                        r.outcome.report,
                        format_row(row),
                        why()?
                    ),
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
    }
}

fn simulate_kernel(
    l: &LaunchArgs,
    cat: &Catalog,
    topo: &Topology,
    (data, trace, why): (bool, bool, bool),
    progress: ProgressHook,
) -> Result<Outcome> {
    let (kernel, defaults, typed) = cat.kernel_typed(&l.name).map_err(|_| {
        usage(format!(
            "`{}` is neither a registered kernel nor a registry algorithm; `kernbench list` shows them",
            l.name
        ))
    })?;
    // The kernel's default grid stands in for `--grid` when neither
    // `--grid` nor `--pes` says how many instances to launch.
    let default_grid = match (&l.grid, l.pes) {
        (None, None) => defaults.launch_grid().map(|g| Axes(g.to_vec())),
        _ => None,
    };
    let l_grid = l.grid.as_ref().or(default_grid.as_ref());
    let grid_size = match l_grid {
        None => None,
        Some(g) => Some(
            g.0.iter()
                .try_fold(1usize, |acc, x| acc.checked_mul(*x as usize))
                .filter(|&n| n <= topo.pe_count())
                .ok_or_else(|| {
                    let what = if l.grid.is_some() {
                        "--grid"
                    } else {
                        "the kernel's default grid"
                    };
                    usage(format!(
                        "{what} {:?} has more instances than topology `{}` has PEs ({}); \
                         give --grid or --pes",
                        g.0,
                        topo.name(),
                        topo.pe_count()
                    ))
                })?,
        ),
    };
    let n = match (l.pes, grid_size) {
        (Some(n), Some(g)) if n != g => {
            return Err(usage(format!(
                "--grid {:?} has {g} instances but --pes is {n}",
                l_grid.map(|g| &g.0)
            )))
        }
        (Some(n), _) | (None, Some(n)) => n,
        (None, None) => topo.pe_count(),
    };
    let pes = first_pes(topo, n)?;
    let grid = l_grid.map_or_else(|| vec![n as u32], |g| g.0.clone());
    let sets = [defaults.sets(), l.set.clone()].concat();
    let elem = typed.unwrap_or(l.dtype);
    let (mut machine, kargs) = machine_with_args(topo, kernel, &sets, elem, &pes)?;
    let kind = map_kind(&l.map)?;
    let mut launch = Launch::new(kernel, kargs, pes.clone())
        .grid(&grid)
        .data(data)
        .trace(trace)
        .why(why)
        .fabric(l.fabric)
        .ties(l.ties)
        .max_memory(l.max_memory)
        .fuse(!l.no_fuse)
        .progress(progress);
    if let Some(kind) = kind {
        launch = launch.neighbors(neighbor_map(topo, kind, &pes).map_err(usage)?);
    }
    simulate_full(&mut machine, &launch).map_err(usage)
}

fn write_trace(a: &RunArgs, outcome: &Outcome, topo: &Topology) -> Result<()> {
    let Some(path) = &a.trace else { return Ok(()) };
    let opts = kernbench_core::export::chrome::TraceOptions {
        pes: a.trace_pes.clone().map(|l| l.0),
        window_ns: a.trace_window,
        ..Default::default()
    };
    kernbench_core::export::chrome::write_chrome_trace(path, outcome, topo, &opts)
        .map_err(|e| usage(format!("--trace {}: {e}", path.display())))?;
    eprintln!(
        "wrote {} (open it at https://ui.perfetto.dev)",
        path.display()
    );
    Ok(())
}

fn simulate_algorithm(
    l: &LaunchArgs,
    topo: &Topology,
    algo: &Algorithm,
    pes: Option<Vec<PeId>>,
    (data, trace, why): (bool, bool, bool),
    progress: ProgressHook,
) -> Result<Simulated> {
    if let Some(s) = l.set.first() {
        return Err(usage(format!(
            "--set {}: `{}` is a registry algorithm; it takes --size, -d, --op and --root",
            s.name, algo.name
        )));
    }
    if l.grid.is_some() || l.map != "ring" {
        return Err(usage(format!(
            "`{}` is a registry algorithm: its grid and neighbour map come from the registry",
            algo.name
        )));
    }
    let pes = match (pes, l.pes) {
        (Some(pes), _) => pes,
        (None, Some(n)) => first_pes(topo, n)?,
        (None, None) => ranks(topo, algo).map_err(usage)?,
    };
    let count = (l.size / l.dtype.size() as u64).max(1) as usize;
    let spec = RunSpec {
        progress,
        fabric: l.fabric,
        ties: l.ties,
        max_memory: l.max_memory,
        count,
        dtype: l.dtype,
        op: l.op,
        root: l.root,
        data,
        trace,
        why,
    };
    let mut algo = algo.clone();
    if let Some(seg) = l.seg {
        algo.seg_bytes = seg;
    }
    let result = run_on(topo, &algo, &pes, &spec).map_err(usage)?;
    Ok(Simulated::Algorithm {
        algo: Box::new(algo),
        pes,
        spec,
        result,
        tuned: None,
    })
}
