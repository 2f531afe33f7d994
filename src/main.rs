//! The `kernbench` command: inspect topologies and kernels, run kernels and
//! collectives on the modelled machine, probe transfers and sweep collectives.
//! `kernbench --help` lists the subcommands; each has its own `--help`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
