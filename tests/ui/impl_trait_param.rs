use kernbench_tl::prelude::*;

#[kernel]
fn k(x: impl Copy) {
    let _ = x;
}

fn main() {}
