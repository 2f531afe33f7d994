use kernbench_tl::prelude::*;

#[kernel]
fn k(x: Ptr<f32>, _: usize) {
    let _ = x;
}

fn main() {}
