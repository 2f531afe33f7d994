//! The subcommands of `kernbench`, their flags, and how failures become exit codes.
//!
//! Exit codes: 0 on success, 1 when a check failed (a result with wrong
//! elements), 2 for bad usage or input (clap's own errors included). Errors go
//! to stderr as `error: ...`.

mod args;
mod export;
mod graph;
mod html;
mod list;
mod probe;
mod progress;
mod run;
mod sweep;
mod topo;

use clap::{Parser, Subcommand};
use std::fmt;
use std::io::Write as _;
use std::process::ExitCode;

/// Write accelerator kernels and collectives in Rust; see what they do on a modelled machine.
#[derive(Parser, Debug)]
#[command(name = "kernbench", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print a topology's summary (counts, links, worst-case routes), or write its structure graph.
    Topo(topo::TopoArgs),
    /// List the registered kernels and the collective algorithms of the registry.
    List(list::ListArgs),
    /// Trace one program instance of a kernel and print its command graph.
    Graph(graph::GraphArgs),
    /// Run a kernel on the PEs of a topology, or a registry algorithm at one size.
    Run(run::RunArgs),
    /// Latency and effective bandwidth of one transfer between two endpoints.
    Probe(probe::ProbeArgs),
    /// Write a run out for other tools: Chakra execution traces (ASTRA-sim's workload input).
    Export(export::ExportArgs),
    /// Run collective algorithms over a range of sizes, in parallel; write CSV, JSON and a plot.
    Sweep(sweep::SweepArgs),
    /// Join the part files of a sharded sweep into sweep.csv, sweep.json and busbw.svg.
    Merge(sweep::MergeArgs),
}

/// Why a subcommand failed.
#[derive(Debug)]
pub enum Fail {
    /// Bad usage or input (exit code 2).
    Usage(String),
    /// A check failed: the run was fine but its result is wrong (exit code 1).
    Check(String),
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fail::Usage(m) | Fail::Check(m) => f.write_str(m),
        }
    }
}

/// The result of a subcommand.
pub type Result<T> = std::result::Result<T, Fail>;

/// Bad usage or input: anything displayable.
pub fn usage(e: impl fmt::Display) -> Fail {
    Fail::Usage(e.to_string())
}

/// Writes to stdout; a closed pipe (`kernbench list | head`) ends the process quietly.
pub fn out(text: &str) -> Result<()> {
    let mut o = std::io::stdout().lock();
    match o.write_all(text.as_bytes()).and_then(|()| o.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => Err(usage(format_args!("cannot write to stdout: {e}"))),
    }
}

/// Parses the process's arguments and runs the subcommand.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.command {
        Command::Topo(a) => topo::run(&a),
        Command::List(a) => list::run(&a),
        Command::Graph(a) => graph::run(&a),
        Command::Run(a) => run::run(&a),
        Command::Probe(a) => probe::run(&a),
        Command::Export(a) => export::run(&a),
        Command::Sweep(a) => sweep::run(&a),
        Command::Merge(a) => sweep::merge(&a),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fail::Usage(m)) => {
            eprintln!("error: {m}");
            ExitCode::from(2)
        }
        Err(Fail::Check(m)) => {
            eprintln!("error: {m}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
