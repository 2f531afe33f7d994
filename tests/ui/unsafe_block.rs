use kernbench_tl::prelude::*;

#[kernel]
fn k(x: Ptr<f32>, n: usize) {
    let m = unsafe { std::ptr::read(&n) };
    let _ = tl::load(x, [m]);
}

fn main() {}
