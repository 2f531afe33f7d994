use kernbench_tl::prelude::*;

#[kernel_fn]
async fn receive(n: usize) -> Tile<f32> {
    tl::recv::<f32>(Dir::W, [n])
}

#[kernel]
fn k(x: Ptr<f32>, n: usize) {
    let t = receive(n).await;
    tl::store(x, &t);
}

fn main() {}
