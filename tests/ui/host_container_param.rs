use kernbench_tl::prelude::*;

#[kernel]
fn k(x: Vec<f16>) {
    let _ = x;
}

fn main() {}
