use kernbench_tl::prelude::*;

#[kernel]
fn k(x: Ptr<f32>, y: Ptr<f16>, n: usize) {
    let a = tl::load(x, [n]);
    let b = tl::load(y, [n]);
    let m = a.gt(0.0);
    tl::store(x, &tl::where_(&m, &a, &b));
}

fn main() {}
