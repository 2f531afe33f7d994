//! A program of its own that is the `kernbench` command with a kernel and a
//! collective algorithm added: `saxpy`, and `relay_allreduce`, an all-reduce
//! in which every rank's vector travels the whole ring.
//!
//! ```text
//! cargo run --release --example my_kernel -- list
//! cargo run --release --example my_kernel -- graph saxpy
//! cargo run --release --example my_kernel -- run saxpy --topology tiny
//! cargo run --release --example my_kernel -- run relay_allreduce --topology tiny --size 64K --verify-data
//! cargo run --release --example my_kernel -- sweep --collective all_reduce \
//!     --algos ring_allreduce,relay_allreduce --topology tiny -b 16K -e 256K --out sweep-relay
//! ```

use kernbench::ccl::algorithms::common::{combine, pieces};
use kernbench::ccl::RedOp;
use kernbench::ccl::{Algorithm, Collective, MapKind};
use kernbench::cli::{Cli, Defaults};
use kernbench::prelude::*;

/// `y = a * x + y` over `n` elements, `block` elements per program instance.
#[kernel]
pub fn saxpy(x: Ptr<f32>, y: Ptr<f32>, a: f64, n: usize, #[constexpr] block: usize) {
    let start = tl::program_id(0) * block;
    if start < n {
        let len = block.min(n - start);
        let vx = tl::load(x.offset(start), [len]);
        let vy = tl::load(y.offset(start), [len]);
        tl::store(y.offset(start), &(vx * a + vy));
    }
}

/// All-reduce by relay: each piece of a rank's vector is passed east `w - 1`
/// times, and every rank combines each piece that passes it into its own.
/// It moves `(w - 1) n` elements a rank, against `2 (w - 1) n / w` for the
/// shipped ring all-reduce.
#[kernel_fn]
pub fn relay<T: Element>(buf: Ptr<T>, n: usize, seg: usize, op: RedOp) {
    let (w, r) = (tl::num_programs(0), tl::program_id(0));
    if w == 1 {
        return;
    }
    for (off, len) in pieces(0, n, seg) {
        let at = buf.offset(r * n + off);
        let mine = tl::load(at, [len]);
        tl::send(Dir::E, &mine);
        let mut passing = tl::recv::<T>(Dir::W, [len]);
        let mut acc = combine(&mine, &passing, op);
        for _ in 2..w {
            tl::send(Dir::E, &passing);
            passing = tl::recv::<T>(Dir::W, [len]);
            acc = combine(&acc, &passing, op);
        }
        tl::store(at, &acc);
    }
}

/// Relay all-reduce (see [`relay`]), of vectors of the buffer's element type.
#[kernel]
pub fn relay_allreduce<T: Element>(
    buf: Ptr<T>,
    n: usize,
    #[constexpr] seg: usize,
    #[constexpr] op: RedOp,
) {
    relay(buf, n, seg, op);
}

/// The command: the shipped kernels and algorithms, `saxpy` with defaults
/// that launch it without `--set`, and `relay_allreduce` over a ring.
pub fn cli() -> Cli {
    Cli::new()
        .kernel_with(
            &saxpy,
            Defaults::new()
                .len("x", 16384)
                .len("y", 16384)
                .float("a", 2.0)
                .int("n", 16384)
                .int("block", 1024)
                .grid(&[16]),
        )
        .kernel(&relay_allreduce)
        .collective(Algorithm::new(
            "relay_allreduce",
            "relay_allreduce",
            Collective::AllReduce,
            MapKind::Ring,
        ))
}

fn main() -> std::process::ExitCode {
    cli().main()
}
