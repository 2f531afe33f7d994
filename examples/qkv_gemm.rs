//! The QKV projection GEMM of the predecessor's benchmark (128x256x128) on one
//! PE, its report and the analytic bound. `--json` prints one JSON object.
//!
//! Run: `cargo run --release --example qkv_gemm`

fn main() -> std::process::ExitCode {
    kernbench::cli::gemm::main_with((128, 256, 128))
}
