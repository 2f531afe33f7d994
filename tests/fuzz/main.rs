//! Fuzzing as part of the suite: random topology and registry files, command
//! lines and kernels, each of which must end in success or a typed error,
//! never a panic or a hang.
//!
//! Every kind runs a fixed number of cases from a fixed seed, so a run is
//! repeatable; a failure prints the seed and the smallest input proptest could
//! shrink it to. `KERNBENCH_FUZZ_SEED=N` runs other cases, and
//! `KERNBENCH_FUZZ_CASES=N` runs N cases of every kind (for longer runs; the
//! `fuzz/` folder holds libFuzzer targets over the same generators).
//!
//! The generators and checks live in one module per kind; `fuzz/` includes
//! the same files, so a case found by either runner can be replayed by both.

mod cli;
mod harness;
mod kernels;
mod regressions;
mod yaml;

use harness::fuzz;

// Cases per kind: about 10,000 in all. The cheap kinds (a file parsed and
// validated) carry most of them; a command line or a kernel runs a small
// simulation.
const TOPOLOGY_CASES: u32 = 4_000;
const REGISTRY_CASES: u32 = 2_000;
const KERNEL_CASES: u32 = 2_500;
const CLI_CASES: u32 = 1_500;

#[test]
fn topology_files() {
    fuzz(
        "topology_files",
        0x7090_0001,
        TOPOLOGY_CASES,
        yaml::topology_case(),
        yaml::check_topology,
    );
}

#[test]
fn registry_files() {
    fuzz(
        "registry_files",
        0x7090_0002,
        REGISTRY_CASES,
        yaml::registry_case(),
        yaml::check_registry,
    );
}

#[test]
fn kernels() {
    fuzz("kernels", 0x7090_0003, KERNEL_CASES, kernels::case(), |c| {
        kernels::check(c)
    });
}

#[test]
fn command_lines() {
    let dir = harness::temp_dir("cli");
    let ctx = cli::Ctx::new(&dir);
    fuzz("command_lines", 0x7090_0004, CLI_CASES, cli::case(), |c| {
        ctx.check(c)
    });
    let _ = std::fs::remove_dir_all(&dir);
}
