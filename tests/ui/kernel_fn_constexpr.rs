use kernbench_tl::prelude::*;

#[kernel_fn]
fn helper(#[constexpr] n: usize) -> usize {
    n * 2
}

#[kernel]
fn k(x: Ptr<f32>, n: usize) {
    let _ = tl::load(x, [helper(n)]);
}

fn main() {}
