use kernbench_tl::prelude::*;

#[kernel]
fn k(x: Ptr<f32>, n: usize) {
    let a = tl::load(x, [n]);
    tl::store(x, &tl::where_(&a, &a, 0.0));
    tl::store(x, &(!a));
}

fn main() {}
