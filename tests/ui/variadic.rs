use kernbench_tl::prelude::*;

#[kernel]
fn k(n: usize, ...) {
    let _ = n;
}

fn main() {}
