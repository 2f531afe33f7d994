use kernbench_tl::prelude::*;

#[kernel]
fn k(x: Ptr<f32>)
where
    f32: Copy,
{
    let _ = x;
}

fn main() {}
