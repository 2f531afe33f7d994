use kernbench_tl::prelude::*;

#[kernel_fn]
const BLOCK: usize = 64;

#[kernel]
fn k(x: Ptr<f32>) {
    let _ = tl::load(x, [BLOCK]);
}

fn main() {}
