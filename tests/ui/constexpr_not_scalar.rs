use kernbench_tl::prelude::*;

#[kernel]
fn k(#[constexpr] x: Ptr<f32>, #[constexpr] y: i8) {
    let _ = (x, y);
}

fn main() {}
