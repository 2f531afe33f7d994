use kernbench_tl::prelude::*;

#[kernel]
const fn k(n: usize) {
    let _ = n;
}

fn main() {}
