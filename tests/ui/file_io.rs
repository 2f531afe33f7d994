use kernbench_tl::prelude::*;

#[kernel]
fn k(x: Ptr<f32>) {
    let n = std::fs::read("n.txt").unwrap().len();
    let _ = tl::load(x, [n]);
}

fn main() {}
