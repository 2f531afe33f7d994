use kernbench_tl::prelude::*;

#[kernel]
fn k(x: Ptr<f32>, y: Ptr<f16>, n: usize) {
    let a = tl::load(x, n);
    let b = tl::load(y, [n]);
    let c = tl::load(x, [n]);
    tl::store(x, &(c + b));
    tl::store(x, &(c * 2));
    tl::store(y, &c);
    let _ = tl::zeros::<f64>([n]);
    let _ = a;
}

fn main() {}
