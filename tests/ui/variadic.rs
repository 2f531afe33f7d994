use kernbench_tl::prelude::*;

#[kernel]
fn k(n: usize, rest: ...) {
    let _ = n;
}

fn main() {}
