use kernbench_tl::prelude::*;

#[kernel]
fn k(x: Ptr<f32>, n: usize) {
    let mut i = 0;
    loop {
        if i == n {
            break;
        }
        let _ = tl::load(x.offset(i), [1]);
        i += 1;
    }
}

fn main() {}
