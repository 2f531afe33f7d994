use kernbench_tl::prelude::*;

#[kernel]
fn k<T: Copy>(x: Ptr<T>) {
    let _ = x;
}

fn main() {}
