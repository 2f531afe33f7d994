use kernbench_tl::prelude::*;

#[kernel]
fn k(&self, x: Ptr<f32>) {
    let _ = x;
}

fn main() {}
