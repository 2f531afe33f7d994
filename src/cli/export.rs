//! `kernbench export`: a run written out for other tools (Chakra execution traces for ASTRA-sim).

use super::args;
use super::run::{simulate, LaunchArgs};
use super::{out, usage, Result};
use clap::Args;
use kernbench_core::export::chakra;
use std::io::Write;
use std::path::PathBuf;

/// Flags of `kernbench export`.
#[derive(Args, Debug)]
#[command(
    after_help = "The kernel or algorithm is named and launched as with `kernbench run` (timing only). \
--chakra DIR writes one Chakra execution trace per rank, DIR/NAME.RANK.et, which ASTRA-sim reads \
with --workload-configuration=DIR/NAME.\n\n\
Examples:\n  kernbench export --chakra et ring_allreduce --topology tiny --size 64K\n  \
kernbench export --chakra et hello_send --topology tiny --set n_elem=1024 --set t.len=16384"
)]
pub struct ExportArgs {
    /// Write Chakra execution traces (ASTRA-sim's workload input) into DIR, one file per rank.
    #[arg(long, value_name = "DIR")]
    pub chakra: PathBuf,
    /// The kernel or algorithm, and where and how to launch it.
    #[command(flatten)]
    pub launch: LaunchArgs,
}

/// Runs `kernbench export`.
pub(crate) fn run(a: &ExportArgs, cat: &super::user::Catalog, w: &mut dyn Write) -> Result<()> {
    // Refuse a folder that cannot be made before spending time on the run.
    if a.chakra.exists() && !a.chakra.is_dir() {
        return Err(usage(format!(
            "--chakra {}: exists and is not a folder",
            a.chakra.display()
        )));
    }
    let created = !a.chakra.exists();
    std::fs::create_dir_all(&a.chakra).map_err(|e| {
        usage(format!(
            "--chakra {}: cannot create it: {e}",
            a.chakra.display()
        ))
    })?;
    let sim = args::topology(a.launch.topology.as_deref())
        .and_then(|topo| simulate(&a.launch, cat, &topo, false, true, false));
    let sim = match sim {
        Ok(s) => s,
        Err(e) => {
            if created {
                // Leave nothing behind for a run that never started; the
                // folder is still empty, so this cannot remove anything else.
                let _ = std::fs::remove_dir(&a.chakra);
            }
            return Err(e);
        }
    };
    let written = chakra::write(&a.chakra, &a.launch.name, sim.outcome())
        .map_err(|e| usage(format!("--chakra {}: {e}", a.chakra.display())))?;
    let types: Vec<String> = written
        .by_type
        .iter()
        .map(|(t, n)| format!("{} {n}", t.as_str_name()))
        .collect();
    let files = match written.files.len() {
        1 => format!("{}.0.et", a.launch.name),
        n => format!("{}.0.et .. {}.{}.et", a.launch.name, a.launch.name, n - 1),
    };
    if written.rounded_up > 0 {
        eprintln!(
            "note: {} compute node(s) ran under 0.5 us and are written as 1 us, the least \
             positive Chakra duration (exact times are in each node's duration_ps)",
            written.rounded_up
        );
    }
    out(
        w,
        &format!(
            "wrote {} Chakra trace(s) ({files}) to {}: {} nodes ({})\n\
         ASTRA-sim: --workload-configuration={}\n",
            written.files.len(),
            a.chakra.display(),
            written.nodes(),
            types.join(", "),
            a.chakra.join(&a.launch.name).display()
        ),
    )
}
