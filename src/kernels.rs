//! Kernels that ship with KernBench, registered so `kernbench list` and
//! `kernbench graph` find them.

use crate::prelude::*;
use kernbench_tl::Element;

/// Each PE sends its slice east and stores what arrives from the west.
#[kernel]
pub fn hello_send(t: Ptr<f16>, n_elem: usize) {
    let rank = tl::program_id(1) * tl::num_programs(0) + tl::program_id(0);
    let x = tl::load(t.offset(rank * n_elem), [n_elem]);
    tl::send(Dir::E, &x);
    let y = tl::recv::<f16>(Dir::W, [n_elem]);
    tl::store(t.offset(rank * n_elem), &y);
}

/// `z = x + y` over `n` elements, `block` elements per program instance.
#[kernel]
pub fn vector_add(x: Ptr<f32>, y: Ptr<f32>, z: Ptr<f32>, n: usize, #[constexpr] block: usize) {
    let start = tl::program_id(0) * block;
    if start < n {
        let len = block.min(n - start);
        let a = tl::load(x.offset(start), [len]);
        let b = tl::load(y.offset(start), [len]);
        tl::store(z.offset(start), &(a + b));
    }
}

/// `c = a x b` as one composite GEMM: both operands stay in HBM and are
/// streamed tile by tile, the product accumulates in f32.
#[kernel_fn]
pub fn gemm_body<T: Element<Acc = f32>>(a: Tensor<T>, b: Tensor<T>, c: Tensor<f32>) {
    let a = tl::stream(a.all(), a.shape());
    let b = tl::stream(b.all(), b.shape());
    let p = tl::gemm(&a, &b, None, &[]);
    tl::store(c.all(), &p);
}

/// `c = relu(scale * (a x b) + bias)`: a composite GEMM whose epilogue runs
/// on MATH per output tile before the write-back.
#[kernel_fn]
pub fn gemm_bias_relu_body<T: Element<Acc = f32>>(
    a: Tensor<T>,
    b: Tensor<T>,
    bias: Ptr<f32>,
    c: Tensor<f32>,
    scale: f32,
) {
    let n = b.cols();
    let bias = tl::load(bias, [n]);
    let a = tl::stream(a.all(), a.shape());
    let b = tl::stream(b.all(), b.shape());
    let p = tl::gemm(
        &a,
        &b,
        None,
        &[
            Epilogue::Scale(scale as f64),
            Epilogue::Bias(&bias),
            Epilogue::Relu,
        ],
    );
    tl::store(c.all(), &p);
}

/// `c = a x b` on one PE, operands of any type that accumulates in f32
/// (f32, f16, bf16) streamed from HBM (see [`gemm_body`]). The operands'
/// tensors give the type: `kernbench run gemm -d half` runs it on f16, and
/// an i32 or mask operand is refused at launch.
#[kernel]
pub fn gemm<T: Element<Acc = f32>>(a: Tensor<T>, b: Tensor<T>, c: Tensor<f32>) {
    gemm_body(a, b, c);
}

/// `c = relu(scale * (a x b) + bias)` with operands of any type that
/// accumulates in f32 (see [`gemm_bias_relu_body`]).
#[kernel]
pub fn gemm_bias_relu<T: Element<Acc = f32>>(
    a: Tensor<T>,
    b: Tensor<T>,
    bias: Ptr<f32>,
    c: Tensor<f32>,
    scale: f32,
) {
    gemm_bias_relu_body(a, b, bias, c, scale);
}

/// A blocked GEMM in the Triton style: instance `(i, j)` computes the `bm x bn` block
/// of `c`, loading `bm x bk` and `bk x bn` blocks of the operands, accumulating with `dot_acc`.
#[kernel]
pub fn gemm_blocked(
    a: Tensor<f16>,
    b: Tensor<f16>,
    c: Tensor<f32>,
    #[constexpr] bm: usize,
    #[constexpr] bn: usize,
    #[constexpr] bk: usize,
) {
    let (i, j) = (tl::program_id(0), tl::program_id(1));
    let k_total = a.cols();
    let mut acc = tl::zeros::<f32>([bm, bn]);
    for k in 0..tl::cdiv(k_total, bk) {
        let x = tl::load(a.block([i * bm, k * bk], [bm, bk]), [bm, bk]);
        let y = tl::load(b.block([k * bk, j * bn], [bk, bn]), [bk, bn]);
        acc = tl::dot_acc(&x, &y, &acc);
    }
    tl::store(c.block([i * bm, j * bn], [bm, bn]), &acc);
}

/// Softmax over each row of `x` into `y`, `rows` rows per program instance.
#[kernel]
pub fn softmax_rows(x: Tensor<f32>, y: Tensor<f32>, #[constexpr] rows: usize) {
    let r0 = tl::program_id(0) * rows;
    if r0 < x.rows() {
        let n = rows.min(x.rows() - r0);
        let t = tl::load(x.block([r0, 0], [n, x.cols()]), [n, x.cols()]);
        let s = tl::softmax(&t, 1);
        tl::store(y.block([r0, 0], [n, x.cols()]), &s);
    }
}

pub mod nn;
pub use nn::*;
pub mod overlap;
pub use overlap::{gemm_parts, gemm_rs_fused};
