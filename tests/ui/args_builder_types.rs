use kernbench_tl::prelude::*;
use kernbench_tl::{Buffer, KernelArgs};

#[derive(Clone, Copy, KernelEnum)]
enum Mode {
    Fast,
    Exact,
}

#[kernel]
fn scale(x: Ptr<f32>, n: usize, #[constexpr] mode: Mode) {
    let _ = (x, n, mode);
}

fn launch(buf: &Buffer) -> KernelArgs {
    // A pointer takes a buffer, a count an integer, an enum its own values.
    scale::args().x(1024).n(1.5).mode(1).into()
}

fn other(buf: &Buffer) -> KernelArgs {
    scale::args().x(buf).n(buf.len).mode(Mode::Exact).into()
}

fn main() {}
