use kernbench_tl::prelude::*;

#[kernel]
fn k((a, b): (usize, usize)) {
    let _ = a + b;
}

fn main() {}
