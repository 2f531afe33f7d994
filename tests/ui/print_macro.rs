use kernbench_tl::prelude::*;

#[kernel]
fn k(x: Ptr<f32>, n: usize) {
    println!("n = {n}");
    let _ = tl::load(x, [n]);
}

fn main() {}
