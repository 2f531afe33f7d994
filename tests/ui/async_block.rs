use kernbench_tl::prelude::*;

#[kernel]
fn k(x: Ptr<f32>, n: usize) {
    let fut = async move { tl::load(x, [n]) };
    drop(fut);
}

fn main() {}
