use kernbench_tl::prelude::*;

#[kernel]
fn k(x: Ptr<f32>, c: char, o: Option<u8>) {
    let _ = (x, c, o);
}

#[kernel]
fn r#type(x: Ptr<f32>, r#in: usize) {
    let _ = (x, r#in);
}

fn main() {
    assert_eq!(kernbench_tl::find_kernel("type").unwrap().meta().params[1].name, "in");
}
