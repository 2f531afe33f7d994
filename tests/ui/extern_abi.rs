use kernbench_tl::prelude::*;

#[kernel]
extern "C" fn k(n: usize) {
    let _ = n;
}

fn main() {}
