use kernbench_tl::prelude::*;
use kernbench_tl::{Buffer, KernelArgs};

#[kernel]
fn scale(x: Ptr<f32>, n: usize, #[constexpr] block: usize) {
    let _ = (x, n, block);
}

fn launch(buf: &Buffer) -> KernelArgs {
    // `m` is no parameter of `scale`.
    scale::args().x(buf).m(1024).block(64).into()
}

fn main() {}
