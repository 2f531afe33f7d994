use kernbench_tl::prelude::*;

#[kernel]
fn k<const BLOCK: usize>(x: Ptr<f32>) {
    let _ = x;
}

fn main() {}
