use kernbench_tl::prelude::*;

#[kernel]
fn k(x: Ptr<f32>) {
    static BLOCK: usize = 64;
    let _ = tl::load(x, [BLOCK]);
}

fn main() {}
