use kernbench_tl::prelude::*;

#[kernel_fn]
fn sum_rows(x: Ptr<f32>, rows: usize, n: usize) -> Tile<f32> {
    let mut acc = tl::zeros::<f32>([n]);
    let mut r = 0;
    while r < rows {
        acc = acc + tl::load(x.offset(r * n), [n]);
        r += 1;
    }
    acc
}

#[kernel]
fn k(x: Ptr<f32>, rows: usize, n: usize) {
    tl::store(x, &sum_rows(x, rows, n));
}

fn main() {}
