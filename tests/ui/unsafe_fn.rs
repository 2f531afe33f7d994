use kernbench_tl::prelude::*;

#[kernel]
unsafe fn k(x: Ptr<f32>) {
    let _ = x;
}

fn main() {}
