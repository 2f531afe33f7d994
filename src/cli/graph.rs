//! `kernbench graph`: the command graph of one program instance.

use super::args::{self, Axes, Set};
use super::user::Catalog;
use super::{out, usage, Result};
use clap::Args;
use kernbench_core::ir::ArgValue;
use std::io::Write;

/// Flags of `kernbench graph`.
#[derive(Args, Debug)]
#[command(
    after_help = "Pointer parameters get a synthetic buffer (length NAME.len, default 2^24 elements); \
tensor parameters need a shape (--set NAME=ROWSxCOLS); every scalar needs a value.\n\n\
Examples:\n  kernbench graph hello_send --set n_elem=1024\n  \
kernbench graph hello_send --set n_elem=1024 --grid 8,2 --pid 3,1\n  \
kernbench graph gemm_blocked --set a=256x256 --set b=256x256 --set c=256x256 --set bm=64 --set bn=64 --set bk=64 --dot\n  \
kernbench graph flash_attention --datatype f16 --set q=64x32 --set k=64x32 --set v=64x32 --set o=64x32 --set scale=0.25 --set bm=32 --set bn=32 --after fuse"
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
    /// Show the graph as it leaves this pass: `trace` (as traced) or `fuse`
    /// (after epilogue fusion, as a run simulates it).
    #[arg(long, value_enum, default_value_t = Pass::Trace, value_name = "PASS")]
    pub after: Pass,
}

/// The passes whose output `kernbench graph` can show.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    /// The graph as the kernel traced it.
    Trace,
    /// After epilogue fusion: elementwise tails folded into GEMM epilogues.
    Fuse,
}

/// Runs `kernbench graph`.
pub(crate) fn run(a: &GraphArgs, cat: &Catalog, w: &mut dyn Write) -> Result<()> {
    let (kernel, defaults, typed) = cat.kernel_typed(&a.kernel)?;
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
        // What pays off depends on the PE: the embedded default machine's,
        // the one `run` uses without --topology.
        let topo = kernbench_core::topology::Topology::embedded_default();
        g = kernbench_core::passes::fuse_epilogues(g, topo.pe_spec());
    }
    out(w, &if a.dot { g.to_dot() } else { g.to_text() })
}
