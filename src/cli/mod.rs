//! The `kernbench` command as a library: its subcommands, their flags, and
//! how failures become exit codes.
//!
//! [`run_args`] runs one command line and returns a [`Result`] instead of
//! exiting, writing what the command prints to a writer; the binary's
//! [`main`] calls it with the process's arguments and stdout, and turns the
//! result into an exit code with [`exit_code`].
//!
//! A program of one's own becomes `kernbench` with its kernels and collective
//! algorithms added by handing them to a [`Cli`] and calling [`Cli::main`].
//!
//! Exit codes: 0 on success, 1 when a check failed (a result with wrong
//! elements), 2 for bad usage or input (clap's own errors included). Errors go
//! to stderr as `error: ...`.
//!
//! ```
//! let mut out = Vec::new();
//! kernbench::cli::run_args(["kernbench", "topo", "tiny", "--json"], &mut out).unwrap();
//! let summary: serde_json::Value = serde_json::from_slice(&out).unwrap();
//! assert_eq!(summary["pes"], 16);
//! ```

pub(crate) mod args;

/// The command's value parsers (sizes with K/M/G suffixes, counts, element
/// types, reductions), for programs and examples that build their own flags
/// and want the same spellings and messages.
pub mod parse {
    pub use super::args::{count, dtype, redop, size};
}
/// The drivers of the example programs: flags parsed with the command's
/// own parsers, then library calls. `collective` runs a registry algorithm
/// over sizes and prints the nccl-tests table; `gemm` runs one composite
/// GEMM against its analytic bound.
pub mod collective;
mod export;
pub mod gemm;
mod graph;
mod html;
mod list;
mod probe;
mod progress;
mod run;
mod sweep;
mod topo;
mod user;

pub use user::{Cli, Defaults};

use clap::{Parser, Subcommand};
use std::ffi::OsString;
use std::fmt;
use std::io::Write;
use std::process::ExitCode;

/// Write accelerator kernels and collectives in Rust; see what they do on a modelled machine.
#[derive(Parser, Debug)]
#[command(name = "kernbench", version, propagate_version = true)]
struct CommandLine {
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

/// Why a command line failed.
#[derive(Debug)]
pub enum Fail {
    /// The command line does not parse: clap's error, which prints itself
    /// (exit code 2).
    Parse(clap::Error),
    /// Bad usage or input (exit code 2).
    Usage(String),
    /// A check failed: the run was fine but its result is wrong (exit code 1).
    Check(String),
    /// The reader of the output went away (`kernbench list | head`): the
    /// command stops quietly (exit code 0).
    Closed,
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fail::Parse(e) => write!(f, "{}", e.render()),
            Fail::Usage(m) | Fail::Check(m) => f.write_str(m),
            Fail::Closed => f.write_str("the output was closed"),
        }
    }
}

/// The result of a subcommand.
pub type Result<T> = std::result::Result<T, Fail>;

/// Bad usage or input: anything displayable.
pub fn usage(e: impl fmt::Display) -> Fail {
    Fail::Usage(e.to_string())
}

/// Writes a command's output; a closed pipe (`kernbench list | head`) stops
/// the command with [`Fail::Closed`].
pub(crate) fn out(w: &mut dyn Write, text: &str) -> Result<()> {
    match w.write_all(text.as_bytes()).and_then(|()| w.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Fail::Closed),
        Err(e) => Err(usage(format_args!("cannot write the output: {e}"))),
    }
}

/// Runs one command line: `args` as a process receives them (the first is
/// the program's name). What the command prints goes to `w` (`--help` and
/// `--version` too); notes and progress go to stderr. Nothing here exits
/// the process. It knows the `#[kernel]`s linked into the program and the
/// shipped algorithms; [`Cli::run_args`] adds a program's own algorithms and
/// kernel defaults.
pub fn run_args<I, T>(args: I, w: &mut dyn Write) -> Result<()>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    Cli::new().run_args(args, w)
}

impl CommandLine {
    /// The parsed command line; `None` when it was `--help` or `--version`,
    /// which is written to `w`.
    fn parse<I, T>(args: I, w: &mut dyn Write) -> Result<Option<CommandLine>>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        match CommandLine::try_parse_from(args) {
            Ok(cl) => Ok(Some(cl)),
            // `--help` and `--version` come back as errors meant for stdout.
            Err(e) if !e.use_stderr() => out(w, &e.render().to_string()).map(|()| None),
            Err(e) => Err(Fail::Parse(e)),
        }
    }

    /// Runs the subcommand over the kernels and algorithms of `cat`.
    fn dispatch(self, cat: &user::Catalog, w: &mut dyn Write) -> Result<()> {
        match self.command {
            Command::Topo(a) => topo::run(&a, w),
            Command::List(a) => list::run(&a, cat, w),
            Command::Graph(a) => graph::run(&a, cat, w),
            Command::Run(a) => run::run(&a, cat, w),
            Command::Probe(a) => probe::run(&a, w),
            Command::Export(a) => export::run(&a, cat, w),
            Command::Sweep(a) => sweep::run(&a, cat, w),
            Command::Merge(a) => sweep::merge(&a, w),
        }
    }
}

/// The exit code of a command's result, printing its error to stderr.
pub fn exit_code(r: Result<()>) -> ExitCode {
    match r {
        Ok(()) | Err(Fail::Closed) => ExitCode::SUCCESS,
        Err(Fail::Parse(e)) => {
            // clap's own rendering (colours on a terminal, usage line).
            let _ = e.print();
            ExitCode::from(2)
        }
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

/// The `kernbench` binary: runs the process's command line with stdout as
/// the output and returns its exit code. [`Cli::main`] does the same with a
/// program's own kernels and algorithms.
pub fn main() -> ExitCode {
    Cli::new().main()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        CommandLine::command().debug_assert();
    }
}
