//! Row-wise neural-network kernels written the way Triton users write them:
//! row statistics broadcast back over their rows (no ones-matrix products),
//! statistics in f32 whatever the storage type, and a causal mask built from
//! `arange`, a comparison and `where_`.
//!
//! Each body is a generic `#[kernel_fn]` that a generic kernel calls; the
//! launch's tensors choose the element type.

use crate::prelude::*;
use kernbench_tl::Element;

/// Softmax over each row of `x` into `y`, `rows` rows per program instance:
/// `e = exp(x - max(x))` and `e / sum(e)`, each statistic a `[rows, 1]`
/// column broadcast over its row.
#[kernel_fn]
pub fn softmax_body<T: Element>(x: Tensor<T>, y: Tensor<T>, rows: usize) {
    let r0 = tl::program_id(0) * rows;
    if r0 < x.rows() {
        let shape = [rows.min(x.rows() - r0), x.cols()];
        let t = tl::load(x.block([r0, 0], shape), shape).cast::<f32>();
        let e = tl::exp(&(t - tl::max(&t, 1)));
        let s = e / tl::sum(&e, 1);
        tl::store(y.block([r0, 0], shape), &s.cast::<T>());
    }
}

/// Layer normalisation of each row of `x` into `y`, `rows` rows per program
/// instance: `(x - mean) * rsqrt(var + eps) * w + b`, with the weight `w`
/// and bias `b` (`[cols]` each) broadcast over the rows.
#[kernel_fn]
pub fn layernorm_body<T: Element>(
    x: Tensor<T>,
    w: Ptr<T>,
    b: Ptr<T>,
    y: Tensor<T>,
    eps: f64,
    rows: usize,
) {
    let r0 = tl::program_id(0) * rows;
    if r0 < x.rows() {
        let cols = x.cols();
        let shape = [rows.min(x.rows() - r0), cols];
        let t = tl::load(x.block([r0, 0], shape), shape).cast::<f32>();
        let mean = tl::sum(&t, 1) / cols as f64;
        let xc = t - mean;
        let var = tl::sum(&(xc * xc), 1) / cols as f64;
        let rstd = tl::rsqrt(&(var + eps));
        let w = tl::load(w, [cols]).cast::<f32>();
        let b = tl::load(b, [cols]).cast::<f32>();
        let out = xc * rstd * w + b;
        tl::store(y.block([r0, 0], shape), &out.cast::<T>());
    }
}

/// RMS normalisation of each row of `x` into `y`, `rows` rows per program
/// instance: `x * rsqrt(mean(x^2) + eps) * w`, the weight `w` (`[cols]`)
/// broadcast over the rows.
#[kernel_fn]
pub fn rmsnorm_body<T: Element>(x: Tensor<T>, w: Ptr<T>, y: Tensor<T>, eps: f64, rows: usize) {
    let r0 = tl::program_id(0) * rows;
    if r0 < x.rows() {
        let cols = x.cols();
        let shape = [rows.min(x.rows() - r0), cols];
        let t = tl::load(x.block([r0, 0], shape), shape).cast::<f32>();
        let ms = tl::sum(&(t * t), 1) / cols as f64;
        let w = tl::load(w, [cols]).cast::<f32>();
        let out = t * tl::rsqrt(&(ms + eps)) * w;
        tl::store(y.block([r0, 0], shape), &out.cast::<T>());
    }
}

/// The causal attention of the `m` query rows `qt` (sequence rows `q0 ..`,
/// whose indices `rows` holds as an `[m, 1]` column) against keys and values at columns `ck ..` of `k` and `cv ..` of `v`
/// (`d` wide, `d` the queries' width): the key blocks of `bn` rows up to the
/// last query, with a running row maximum, a running denominator and an
/// f32 accumulator (the online softmax), masked `key index <= query index`
/// where a block crosses the diagonal. Returns the rows, in `T`.
#[kernel_fn]
pub fn causal_rows<T: Element<Acc = f32>>(
    qt: &Tile<T>,
    (q0, rows): (usize, &Tile<i32>),
    (k, ck): (Tensor<T>, usize),
    (v, cv): (Tensor<T>, usize),
    scale: f64,
    bn: usize,
) -> Tile<T> {
    let (m, d) = (qt.shape()[0], qt.shape()[1]);
    let seq = k.rows();
    let mut m_i = tl::full::<f32>([m, 1], f64::NEG_INFINITY);
    let mut l_i = tl::zeros::<f32>([m, 1]);
    let mut acc = tl::zeros::<f32>([m, d]);
    for j in 0..tl::cdiv(q0 + m, bn) {
        let k0 = j * bn;
        let n = bn.min(seq - k0);
        let kt = tl::load(k.block([k0, ck], [n, d]), [n, d]);
        let vt = tl::load(v.block([k0, cv], [n, d]), [n, d]);
        let mut s = tl::dot(qt, &kt.trans()) * scale;
        if k0 + n > q0 + 1 {
            let cols = tl::arange(k0, k0 + n).expand_dims(0);
            s = tl::where_(&cols.le(rows), s, f64::NEG_INFINITY);
        }
        let m_new = tl::maximum(&m_i, tl::max(&s, 1));
        let p = tl::exp(&(s - m_new));
        let alpha = tl::exp(&(m_i - m_new));
        l_i = l_i * alpha + tl::sum(&p, 1);
        acc = tl::gemm(&p.cast::<T>(), &vt, Some(&(acc * alpha)), &[]);
        m_i = m_new;
    }
    (acc / l_i).cast::<T>()
}

/// Causal attention `softmax(scale * q k^T + mask) v` in the flash style:
/// program instance `i` takes query rows `i * bm ..` and walks the key
/// blocks of `bn` rows up to its last query, keeping a running row maximum
/// `m`, a running denominator `l` and an f32 accumulator (the GEMM's
/// accumulator input). Key blocks that cross the diagonal are masked with
/// `key index <= query index` from two `arange`s; blocks wholly below it
/// need no mask. `q`, `k`, `v` and `o` are `[seq, d]`.
#[kernel_fn]
pub fn flash_attention_body<T: Element<Acc = f32>>(
    q: Tensor<T>,
    k: Tensor<T>,
    v: Tensor<T>,
    o: Tensor<T>,
    scale: f64,
    bm: usize,
    bn: usize,
) {
    let (seq, d) = (q.rows(), q.cols());
    let q0 = tl::program_id(0) * bm;
    if q0 < seq {
        let m = bm.min(seq - q0);
        let qt = tl::load(q.block([q0, 0], [m, d]), [m, d]);
        let rows = tl::arange(q0, q0 + m).expand_dims(1);
        let out = causal_rows(&qt, (q0, &rows), (k, 0), (v, 0), scale, bn);
        tl::store(o.block([q0, 0], [m, d]), &out);
    }
}

/// Causal attention over the heads one rank holds, in the layout a
/// column-parallel QKV projection leaves: `qkv` is `[seq, 3 heads d]`, head
/// `h`'s queries in columns `h d ..`, its keys in `(heads + h) d ..` and its
/// values in `(2 heads + h) d ..`; `o` is `[seq, heads d]`, head `h` in
/// columns `h d ..`. With the rows split over the `s` program instances,
/// instance `i` takes query rows `i seq / s ..` (its own shard) and, head by
/// head, walks the key blocks of `bn` rows up to its last query as
/// [`flash_attention_body`] does: scores `scale * q k^T`, masked with
/// `key index <= query index` where a block crosses the diagonal, an online
/// softmax in f32, times `v`. Keys and values of earlier rows are read from
/// the shards of the instances that hold them.
#[kernel_fn]
pub fn causal_heads_body<T: Element<Acc = f32>>(
    qkv: Tensor<T>,
    o: Tensor<T>,
    heads: usize,
    scale: f64,
    bn: usize,
) {
    let seq = qkv.rows();
    let d = o.cols() / heads;
    let m = seq / tl::num_programs(0);
    let q0 = tl::program_id(0) * m;
    let rows = tl::arange(q0, q0 + m).expand_dims(1);
    for h in 0..heads {
        let (cq, ck, cv) = (h * d, (heads + h) * d, (2 * heads + h) * d);
        let qt = tl::load(qkv.block([q0, cq], [m, d]), [m, d]);
        let out = causal_rows(&qt, (q0, &rows), (qkv, ck), (qkv, cv), scale, bn);
        tl::store(o.block([q0, cq], [m, d]), &out);
    }
}

/// `y = a + b` elementwise, in f32 and rounded to the tensors' type: each
/// of the `s` program instances adds its own band of `rows / s` rows (a
/// residual connection over row-split activations).
#[kernel_fn]
pub fn add_rows_body<T: Element>(a: Tensor<T>, b: Tensor<T>, y: Tensor<T>) {
    let m = a.rows() / tl::num_programs(0);
    let shape = [m, a.cols()];
    let r0 = tl::program_id(0) * m;
    let x = tl::load(a.block([r0, 0], shape), shape).cast::<f32>();
    let z = tl::load(b.block([r0, 0], shape), shape).cast::<f32>();
    tl::store(y.block([r0, 0], shape), &(x + z).cast::<T>());
}

/// Softmax over rows (see [`softmax_body`]).
#[kernel]
pub fn softmax<T: Element>(x: Tensor<T>, y: Tensor<T>, #[constexpr] rows: usize) {
    softmax_body(x, y, rows);
}

/// Layer normalisation of rows (see [`layernorm_body`]).
#[kernel]
pub fn layernorm<T: Element>(
    x: Tensor<T>,
    w: Ptr<T>,
    b: Ptr<T>,
    y: Tensor<T>,
    eps: f64,
    #[constexpr] rows: usize,
) {
    layernorm_body(x, w, b, y, eps, rows);
}

/// RMS normalisation of rows (see [`rmsnorm_body`]).
#[kernel]
pub fn rmsnorm<T: Element>(
    x: Tensor<T>,
    w: Ptr<T>,
    y: Tensor<T>,
    eps: f64,
    #[constexpr] rows: usize,
) {
    rmsnorm_body(x, w, y, eps, rows);
}

/// Causal flash attention (see [`flash_attention_body`]); tensors of any
/// type that accumulates in f32.
#[kernel]
pub fn flash_attention<T: Element<Acc = f32>>(
    q: Tensor<T>,
    k: Tensor<T>,
    v: Tensor<T>,
    o: Tensor<T>,
    scale: f64,
    #[constexpr] bm: usize,
    #[constexpr] bn: usize,
) {
    flash_attention_body(q, k, v, o, scale, bm, bn);
}

/// Causal attention over a rank's heads (see [`causal_heads_body`]); one
/// program instance per shard of the row-split `qkv`.
#[kernel]
pub fn causal_attention_heads<T: Element<Acc = f32>>(
    qkv: Tensor<T>,
    o: Tensor<T>,
    heads: usize,
    scale: f64,
    #[constexpr] bn: usize,
) {
    causal_heads_body(qkv, o, heads, scale, bn);
}

/// Elementwise `y = a + b` over row-split tensors (see [`add_rows_body`]).
#[kernel]
pub fn add_rows<T: Element>(a: Tensor<T>, b: Tensor<T>, y: Tensor<T>) {
    add_rows_body(a, b, y);
}
