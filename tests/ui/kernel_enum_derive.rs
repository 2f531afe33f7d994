use kernbench_tl::prelude::*;

#[derive(Clone, Copy, KernelEnum)]
enum Numbered {
    Sum = 3,
    Max,
}

#[derive(Clone, Copy, KernelEnum)]
enum Carrying {
    Scaled(f32),
}

#[derive(Clone, Copy, KernelEnum)]
struct NotAnEnum;

#[derive(Clone, Copy)]
struct Plain;

// Not a kernel enum: it cannot be a `#[constexpr]` parameter.
#[kernel]
fn k(x: Ptr<f32>, #[constexpr] p: Plain) {
    let _ = (x, p);
}

fn main() {}
