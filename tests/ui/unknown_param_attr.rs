use kernbench_tl::prelude::*;

#[kernel]
fn k(#[inline] x: Ptr<f32>, #[constexpr(8)] block: usize) {
    let _ = (x, block);
}

fn main() {}
