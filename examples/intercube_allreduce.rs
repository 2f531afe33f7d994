//! `intercube_allreduce_ring` (one PE per cube, a tree inside each SIP rooted
//! at the centre cube, the SIP roots on a ring) on the embedded default
//! machine, with the nccl-tests flags. `--registry`/`kernbench run` reach the
//! torus and mesh variants (`intercube_allreduce_torus`, `intercube_allreduce_mesh`).
//!
//! Run: `cargo run --release --example intercube_allreduce -- --topology configs/large.yaml -b 96K -e 96K`

fn main() -> std::process::ExitCode {
    kernbench::cli::collective::main_for("intercube_allreduce_ring")
}
