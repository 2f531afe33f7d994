use kernbench_tl::prelude::*;

#[kernel]
fn k(x: Ptr<f32>, n: usize) -> Tile<f32> {
    tl::load(x, [n])
}

fn main() {}
