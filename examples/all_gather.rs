//! `all_gather` on the embedded default machine (or `--topology FILE`), swept over
//! sizes with the nccl-tests flags (`-b -e -f -d`), every row checked.
//!
//! Run: `cargo run --release --example all_gather -- -b 64K -e 4M -f 4`

fn main() -> std::process::ExitCode {
    kernbench::cli::collective::main_for("all_gather")
}
