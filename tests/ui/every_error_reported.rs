use kernbench_tl::prelude::*;

/// Several mistakes at once: each is reported at its own span.
#[kernel]
pub fn k(x: &[f32], n: usize) -> usize {
    loop {
        println!("{n}");
        break;
    }
    let f = |i: usize| i + n;
    f(x.len())
}

fn main() {}
