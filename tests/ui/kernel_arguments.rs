use kernbench_tl::prelude::*;

#[kernel(fast)]
fn k(x: Ptr<f32>) {
    let _ = x;
}

fn main() {}
