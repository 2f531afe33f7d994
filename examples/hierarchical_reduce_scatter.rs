//! `hierarchical_reduce_scatter` on the embedded default machine (or `--topology FILE`), swept over
//! sizes with the nccl-tests flags (`-b -e -f -d`), every row checked.
//!
//! Run: `cargo run --release --example hierarchical_reduce_scatter -- -b 4K -e 1M -f 16`

fn main() -> std::process::ExitCode {
    kernbench::cli::collective::main_for("hierarchical_reduce_scatter")
}
