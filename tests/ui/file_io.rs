use kernbench_tl::prelude::*;

#[kernel]
fn k(x: Ptr<f32>) {
    let n = std::fs::read("n.txt").map(|b| b.len()).unwrap_or(1);
    let _ = tl::load(x, [n]);
}

fn main() {}
