//! `double_tree_allreduce` on the embedded default machine (or `--topology FILE`), swept over
//! sizes with the nccl-tests flags (`-b -e -f -d`), every row checked.
//!
//! Run: `cargo run --release --example double_tree_allreduce -- -b 4K -e 1M -f 16`

fn main() -> std::process::ExitCode {
    kernbench::cli::collective::main_for("double_tree_allreduce")
}
