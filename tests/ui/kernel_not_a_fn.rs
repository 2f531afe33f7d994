use kernbench_tl::prelude::*;

#[kernel]
struct NotAKernel {
    x: Ptr<f32>,
}

fn main() {}
