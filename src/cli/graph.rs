//! `kernbench graph`: the command graph of one program instance.

use super::args::{self, Axes, Set};
use super::user::Catalog;
use super::{out, usage, Result};
use clap::Args;
use kernbench_ccl::run::neighbor_map;
use kernbench_core::ir::ArgValue;
use kernbench_core::passes;
use kernbench_core::sim::Launch;
use std::io::Write;

/// Flags of `kernbench graph`.
#[derive(Args, Debug)]
#[command(
    after_help = "Pointer parameters get a synthetic buffer (length NAME.len, default 2^24 elements); \
tensor parameters need a shape (--set NAME=ROWSxCOLS); every scalar needs a value.\n\n\
Examples:\n  kernbench graph hello_send --set n_elem=1024\n  \
kernbench graph hello_send --set n_elem=1024 --grid 8,2 --pid 3,1\n  \
kernbench graph gemm_blocked --set a=256x256 --set b=256x256 --set c=256x256 --set bm=64 --set bn=64 --set bk=64 --dot\n  \
kernbench graph flash_attention --datatype f16 --set q=64x32 --set k=64x32 --set v=64x32 --set o=64x32 --set scale=0.25 --set bm=32 --set bn=32 --after fuse\n  \
kernbench graph hello_send --set n_elem=256 --grid 2 --pid 1 --topology tiny --after pair\n\n\
With --after pair, tcm or lower, the launch is compiled as `kernbench run` would compile it: one \
instance per PE on the first PEs of --topology, its buffers allocated there, its directions \
resolved through --map; the instance at --pid is printed."
)]
pub struct GraphArgs {
    /// The kernel (see `kernbench list`).
    pub kernel: String,
    /// A parameter value: NAME=VALUE for scalars (integers, floats, true/false),
    /// NAME=ROWSxCOLS for tensors, NAME.len=N for a pointer's length in elements. Repeatable.
    #[arg(long, short = 's', value_name = "NAME=VALUE", value_parser = args::set)]
    pub set: Vec<Set>,
    /// The element type of a generic kernel's type parameters (`--set T=TYPE`
    /// sets one of them); a name `KERNEL_TYPE` (`softmax_f16`) gives it too.
    #[arg(short = 'd', long = "datatype", default_value = "float", value_parser = args::dtype)]
    pub dtype: kernbench_core::DType,
    /// The launch grid, 1 to 3 comma-separated axes; the kernel's default grid, or 1, when absent.
    #[arg(long, value_parser = args::axes)]
    pub grid: Option<Axes>,
    /// The traced instance's position in the grid (zeros when absent).
    #[arg(long, value_parser = args::axes)]
    pub pid: Option<Axes>,
    /// Print Graphviz dot instead of the text form.
    #[arg(long)]
    pub dot: bool,
    /// Show the output of this pass: `trace` (the graph as traced), `fuse`
    /// (the graph after epilogue fusion, as a run simulates it), `pair` (each
    /// send and receive with its channel and peer), `tcm` (each tile's TCM
    /// range) or `lower` (the engine ops).
    #[arg(long, value_enum, default_value_t = Pass::Trace, value_name = "PASS")]
    pub after: Pass,
    /// A topology file, or a built-in name (default, tiny, large): the PEs
    /// `fuse`, `pair`, `tcm` and `lower` compile for; the embedded default when absent.
    #[arg(long, value_name = "FILE")]
    pub topology: Option<String>,
    /// With --after pair, tcm or lower: the neighbour map directions resolve
    /// through: ring, torus2d, tree, hierarchical, none.
    #[arg(long, default_value = "ring")]
    pub map: String,
}

/// The passes whose output `kernbench graph` can show.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    /// The graph as the kernel traced it.
    Trace,
    /// After epilogue fusion: elementwise tails folded into GEMM epilogues.
    Fuse,
    /// After pairing: each send and receive with its channel and the other end.
    Pair,
    /// After the TCM plan: where each tile lives in TCM, and from when to when.
    Tcm,
    /// After lowering: the engine ops with their work and dependencies.
    Lower,
}

/// The passes whose output is not a command graph: they need a compiled launch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ProgramPass {
    Pair,
    Tcm,
    Lower,
}

impl Pass {
    /// The pass as one over a compiled launch; `None` for the graph passes.
    fn of_programs(self) -> Option<ProgramPass> {
        match self {
            Pass::Trace | Pass::Fuse => None,
            Pass::Pair => Some(ProgramPass::Pair),
            Pass::Tcm => Some(ProgramPass::Tcm),
            Pass::Lower => Some(ProgramPass::Lower),
        }
    }
}

/// Runs `kernbench graph`.
pub(crate) fn run(a: &GraphArgs, cat: &Catalog, w: &mut dyn Write) -> Result<()> {
    let (kernel, defaults, typed) = cat.kernel_typed(&a.kernel)?;
    if let Some(pass) = a.after.of_programs() {
        return compiled(a, pass, kernel, defaults, typed, w);
    }
    let sets = [defaults.sets(), a.set.clone()].concat();
    let kargs = args::kernel_args(kernel.meta(), &sets, typed.unwrap_or(a.dtype), &mut |b| {
        let va = 0x1000_0000_0000u64 + ((b.index as u64) << 32);
        Ok(match b.shape {
            Some(shape) => ArgValue::Tensor {
                va,
                dtype: b.dtype,
                shape,
            },
            None => ArgValue::Ptr {
                va,
                dtype: b.dtype,
                len: b.len,
            },
        })
    })?;
    let grid = match (&a.grid, defaults.launch_grid()) {
        (Some(g), _) => &g.0[..],
        (None, Some(g)) => g,
        (None, None) => &[1],
    };
    let pid = a.pid.clone().map_or_else(|| vec![0; grid.len()], |p| p.0);
    let mut g = kernbench_tl::trace(kernel, &kargs, grid, &pid).map_err(usage)?;
    if a.after == Pass::Fuse {
        // What pays off depends on the PE: the one `run` uses with the same
        // --topology.
        let topo = args::topology(a.topology.as_deref())?;
        g = kernbench_core::passes::fuse_epilogues(g, topo.pe_spec());
    }
    out(w, &if a.dot { g.to_dot() } else { g.to_text() })
}

/// `--after pair|tcm|lower`: compiles a launch of the kernel as `kernbench
/// run` would and prints the chosen instance's result of that pass.
fn compiled(
    a: &GraphArgs,
    pass: ProgramPass,
    kernel: &dyn kernbench_tl::Kernel,
    defaults: &super::user::Defaults,
    typed: Option<kernbench_core::DType>,
    w: &mut dyn Write,
) -> Result<()> {
    if a.dot {
        return Err(usage(
            "--dot draws a command graph: use it with --after trace or fuse",
        ));
    }
    let topo = args::topology(a.topology.as_deref())?;
    let grid = match (&a.grid, defaults.launch_grid()) {
        (Some(g), _) => g.0.clone(),
        (None, Some(g)) => g.to_vec(),
        (None, None) => vec![1],
    };
    let n = grid
        .iter()
        .try_fold(1usize, |acc, x| acc.checked_mul(*x as usize))
        .filter(|&n| n <= topo.pe_count())
        .ok_or_else(|| {
            usage(format!(
                "grid {grid:?} has more instances than topology `{}` has PEs ({})",
                topo.name(),
                topo.pe_count()
            ))
        })?;
    let pid = a.pid.clone().map_or_else(|| vec![0; grid.len()], |p| p.0);
    if pid.len() != grid.len() || pid.iter().zip(&grid).any(|(p, g)| p >= g) {
        return Err(usage(format!(
            "--pid {pid:?} is not a position in grid {grid:?}"
        )));
    }
    // The instance at `pid`, axis 0 fastest.
    let i = pid
        .iter()
        .zip(&grid)
        .rev()
        .fold(0usize, |acc, (p, g)| acc * *g as usize + *p as usize);
    let pes = super::run::first_pes(&topo, n)?;
    let sets = [defaults.sets(), a.set.clone()].concat();
    let elem = typed.unwrap_or(a.dtype);
    let (machine, kargs) = super::run::machine_with_args(&topo, kernel, &sets, elem, &pes)?;
    let mut launch = Launch::new(kernel, kargs, pes.clone())
        .grid(&grid)
        .data(false);
    if let Some(kind) = super::run::map_kind(&a.map)? {
        launch = launch.neighbors(neighbor_map(&topo, kind, &pes).map_err(usage)?);
    }
    let c = passes::inspect(&machine, &launch).map_err(usage)?;
    let (g, prog) = (&c.graphs[i], &c.programs[i]);
    let text = match pass {
        ProgramPass::Pair => passes::pair::pairing_text(&c.channels, &c.pes, i, g),
        ProgramPass::Tcm => format!(
            "instance {i} on PE {}: {}",
            c.pes[i],
            passes::tcm::tcm_text(prog, g, topo.pe_spec().tcm_bytes)
        ),
        ProgramPass::Lower => format!("instance {i} on PE {}: {}", c.pes[i], prog.ops_text()),
    };
    out(w, &text)
}
