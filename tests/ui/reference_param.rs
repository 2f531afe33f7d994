use kernbench_tl::prelude::*;

#[kernel]
fn k(x: &[f32], y: &mut f32) {
    let _ = (x, y);
}

fn main() {}
