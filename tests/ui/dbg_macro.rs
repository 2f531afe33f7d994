use kernbench_tl::prelude::*;

#[kernel]
fn k(x: Ptr<f32>, n: usize) {
    let _ = tl::load(x, [dbg!(n)]);
}

fn main() {}
