use kernbench_tl::prelude::*;

#[kernel]
fn k(x: Ptr<f32>, n: usize) {
    std::thread::yield_now();
    let _ = tl::load(x, [n]);
}

fn main() {}
