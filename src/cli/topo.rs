//! `kernbench topo`: a topology's summary, or its structure graph in Graphviz dot.

use super::{args, out, usage, Result};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;

/// Flags of `kernbench topo`.
#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  kernbench topo\n  kernbench topo tiny --json\n  kernbench topo configs/large.yaml --dot large.dot"
)]
pub struct TopoArgs {
    /// A topology file, or a built-in name (default, tiny, large); the embedded default when absent.
    pub file: Option<String>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Write the structure graph in Graphviz dot to OUT (`-` for stdout, instead of the summary).
    #[arg(long, value_name = "OUT")]
    pub dot: Option<PathBuf>,
}

/// Runs `kernbench topo`.
pub fn run(a: &TopoArgs, w: &mut dyn Write) -> Result<()> {
    let topo = args::topology(a.file.as_deref())?;
    if let Some(path) = &a.dot {
        let dot = topo.to_dot();
        if path.as_os_str() == "-" {
            return out(w, &dot);
        }
        std::fs::write(path, dot)
            .map_err(|e| usage(format!("cannot write {}: {e}", path.display())))?;
        eprintln!("wrote {}", path.display());
    }
    let summary = topo.summary();
    if a.json {
        out(
            w,
            &format!(
                "{}\n",
                serde_json::to_string_pretty(&summary).map_err(usage)?
            ),
        )
    } else {
        out(w, &summary.to_string())
    }
}
