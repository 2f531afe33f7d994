use kernbench_tl::prelude::*;

// `U` is the element type of no pointer, so no launch can bind it; a scalar
// cannot have the element type; `V`'s bound cannot be chosen at launch.
#[kernel]
fn k<T: Element, U: Element, V: Copy>(x: Ptr<T>, alpha: T, y: Ptr<V>) {
    let _ = (x, alpha, y);
}

// An accumulator the element types do not have.
#[kernel]
fn acc<T: Element<Acc = f16>>(x: Ptr<T>) {
    let _ = x;
}

fn main() {}
