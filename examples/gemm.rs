//! One GEMM on one PE (default: the predecessor's single-PE 32x128x32 f16),
//! its report and the analytic bound. `--json` prints one JSON object.
//!
//! Run: `cargo run --release --example gemm -- --m 1024 --k 1024 --n 1024`

fn main() -> std::process::ExitCode {
    kernbench::cli::gemm::main_with((32, 128, 32))
}
