use kernbench_tl::prelude::*;

#[kernel]
async fn k(x: Ptr<f32>) {
    let _ = x;
}

fn main() {}
