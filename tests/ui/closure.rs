use kernbench_tl::prelude::*;

#[kernel]
fn k(x: Ptr<f32>, n: usize) {
    let t = tl::load(x, [n]);
    let scale = |s: f64| &t * s;
    tl::store(x, &scale(2.0));
}

fn main() {}
