//! The `kernbench` command: inspect topologies and kernels, run kernels and
//! collectives on the modelled machine, probe transfers and sweep collectives.
//! `kernbench --help` lists the subcommands; each has its own `--help`.

fn main() -> std::process::ExitCode {
    kernbench::cli::main()
}
