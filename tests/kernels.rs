//! The shipped row-wise kernels (softmax, layer norm, RMS norm, causal flash
//! attention, causal attention over packed heads, the residual add) compute
//! what an ndarray reference computes, in f32 and f16, on the tiny machine,
//! with a partial last block of rows.

use kernbench::core::machine::Buffer;
use kernbench::kernels::*;
use kernbench::prelude::*;
use kernbench::tl::Kernel;
use ndarray::{s, Array1, Array2, Axis};

/// Deterministic inputs in [-2, 2), rounded to `dtype`.
fn inputs(seed: u64, n: usize, dtype: DType) -> Vec<f32> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (x >> 40) as f32 / (1u64 << 24) as f32;
            dtype.round(4.0 * u - 2.0)
        })
        .collect()
}

/// A machine, the PEs one instance each runs on, and the buffers written so far.
struct Bench {
    m: Machine,
    pes: Vec<PeId>,
}

impl Bench {
    fn new(instances: usize) -> Bench {
        let topo = Topology::builtin("tiny").unwrap();
        let pes: Vec<PeId> = topo.pes().take(instances).collect();
        Bench {
            m: Machine::new(topo).unwrap(),
            pes,
        }
    }

    fn buffer(&mut self, dtype: DType, values: &[f32]) -> Buffer {
        let b = self.m.alloc(dtype, values.len(), &self.pes).unwrap();
        self.m.write_buffer(&b, values).unwrap();
        b
    }

    fn run(&mut self, k: &dyn Kernel, args: KernelArgs) {
        simulate(&mut self.m, &Launch::new(k, args, self.pes.clone())).unwrap();
    }

    fn read(&self, b: &Buffer, rows: usize, cols: usize) -> Array2<f32> {
        Array2::from_shape_vec((rows, cols), self.m.read_buffer(b).unwrap()).unwrap()
    }
}

/// Asserts `|got - want| <= atol + rtol * |want|` everywhere, naming the worst element.
fn assert_close(what: &str, got: &Array2<f32>, want: &Array2<f64>, atol: f64, rtol: f64) {
    assert_eq!(got.dim(), want.dim(), "{what}: shape");
    let mut worst = (0.0f64, (0, 0));
    for ((i, j), w) in want.indexed_iter() {
        let g = f64::from(got[(i, j)]);
        assert!(g.is_finite(), "{what}: element {:?} is {g}", (i, j));
        let excess = (g - w).abs() - (atol + rtol * w.abs());
        if excess > worst.0 {
            worst = (excess, (i, j));
        }
    }
    let (i, j) = worst.1;
    assert!(
        worst.0 <= 0.0,
        "{what}: element ({i}, {j}) is {}, the reference {} (tolerance {atol} + {rtol} x |ref|)",
        got[(i, j)],
        want[(i, j)]
    );
}

/// Tolerances per storage type: f32 keeps f32 rounding; f16 rounds its output
/// (and, in attention, the probabilities fed to the second product).
fn tol(dtype: DType) -> (f64, f64) {
    match dtype {
        DType::F32 => (1e-5, 1e-4),
        _ => (4e-3, 4e-3),
    }
}

fn as_f64(v: &[f32], rows: usize, cols: usize) -> Array2<f64> {
    Array2::from_shape_fn((rows, cols), |(i, j)| f64::from(v[i * cols + j]))
}

fn graph_text(k: &dyn Kernel, args: &KernelArgs, grid: u32, pid: u32) -> String {
    kernbench::tl::trace(k, args, &[grid], &[pid])
        .unwrap()
        .to_text()
}

const ROWS: usize = 10;
const COLS: usize = 24;
const BLOCK: usize = 4;

fn row_instances() -> usize {
    ROWS.div_ceil(BLOCK)
}

fn check_softmax(k: &dyn Kernel, dtype: DType) {
    let mut b = Bench::new(row_instances());
    let xv = inputs(1, ROWS * COLS, dtype);
    let x = b.buffer(dtype, &xv);
    let y = b.buffer(dtype, &vec![0.0; ROWS * COLS]);
    let args: KernelArgs = softmax::args()
        .x(x.view(ROWS, COLS).unwrap())
        .y(y.view(ROWS, COLS).unwrap())
        .rows(BLOCK)
        .into();
    for pid in 0..row_instances() as u32 {
        let text = graph_text(k, &args, row_instances() as u32, pid);
        assert!(!text.contains(" dot "), "softmax needs no product:\n{text}");
    }
    b.run(k, args);
    let xr = as_f64(&xv, ROWS, COLS);
    let mx = xr.map_axis(Axis(1), |r| r.fold(f64::NEG_INFINITY, |a, b| a.max(*b)));
    let e = Array2::from_shape_fn((ROWS, COLS), |(i, j)| (xr[(i, j)] - mx[i]).exp());
    let sum = e.sum_axis(Axis(1));
    let want = Array2::from_shape_fn((ROWS, COLS), |(i, j)| e[(i, j)] / sum[i]);
    let (atol, rtol) = tol(dtype);
    assert_close(
        &format!("softmax {dtype}"),
        &b.read(&y, ROWS, COLS),
        &want,
        atol,
        rtol,
    );
}

#[test]
fn softmax_matches_ndarray() {
    check_softmax(&softmax, DType::F32);
    check_softmax(&softmax, DType::F16);
}

/// `(x - mean) / sqrt(var + eps) * w (+ b)` per row, in f64.
fn norm_reference(
    x: &Array2<f64>,
    w: &Array1<f64>,
    b: Option<&Array1<f64>>,
    eps: f64,
    rms: bool,
) -> Array2<f64> {
    let n = x.ncols() as f64;
    let mut out = x.clone();
    for (i, row) in x.axis_iter(Axis(0)).enumerate() {
        let mean = if rms { 0.0 } else { row.sum() / n };
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
        let rstd = 1.0 / (var + eps).sqrt();
        for j in 0..row.len() {
            out[(i, j)] = (row[j] - mean) * rstd * w[j] + b.map_or(0.0, |b| b[j]);
        }
    }
    out
}

fn check_norm(k: &dyn Kernel, dtype: DType, rms: bool) {
    let mut bench = Bench::new(row_instances());
    let eps = 1e-5;
    let xv = inputs(2, ROWS * COLS, dtype);
    let wv = inputs(3, COLS, dtype);
    let bv = inputs(4, COLS, dtype);
    let x = bench.buffer(dtype, &xv);
    let w = bench.buffer(dtype, &wv);
    let bias = bench.buffer(dtype, &bv);
    let y = bench.buffer(dtype, &vec![0.0; ROWS * COLS]);
    let mut args = KernelArgs::new()
        .with("x", x.tensor(ROWS, COLS).unwrap())
        .with("w", w.ptr())
        .with("y", y.tensor(ROWS, COLS).unwrap())
        .float("eps", eps)
        .int("rows", BLOCK as i64);
    if !rms {
        args = args.with("b", bias.ptr());
    }
    for pid in 0..row_instances() as u32 {
        let text = graph_text(k, &args, row_instances() as u32, pid);
        assert!(!text.contains(" dot "), "a norm needs no product:\n{text}");
        assert!(text.contains("rsqrt"), "{text}");
    }
    bench.run(k, args);
    let to1 = |v: &[f32]| Array1::from_iter(v.iter().map(|x| f64::from(*x)));
    let (wr, br) = (to1(&wv), to1(&bv));
    let want = norm_reference(
        &as_f64(&xv, ROWS, COLS),
        &wr,
        (!rms).then_some(&br),
        eps,
        rms,
    );
    let (atol, rtol) = tol(dtype);
    let what = format!("{} {dtype}", if rms { "rmsnorm" } else { "layernorm" });
    assert_close(&what, &bench.read(&y, ROWS, COLS), &want, atol, rtol);
}

#[test]
fn layernorm_matches_ndarray() {
    check_norm(&layernorm, DType::F32, false);
    check_norm(&layernorm, DType::F16, false);
}

#[test]
fn rmsnorm_matches_ndarray() {
    check_norm(&rmsnorm, DType::F32, true);
    check_norm(&rmsnorm, DType::F16, true);
}

const SEQ: usize = 40;
const HEAD: usize = 16;
const BM: usize = 16;
const BN: usize = 8;

/// `softmax(scale * q k^T, keys after the query masked out) v`, in f64.
fn attention_reference(
    q: &Array2<f64>,
    k: &Array2<f64>,
    v: &Array2<f64>,
    scale: f64,
) -> Array2<f64> {
    let s = q.dot(&k.t()) * scale;
    let mut p = Array2::<f64>::zeros(s.dim());
    for i in 0..s.nrows() {
        let row = s.slice(s![i, ..=i]);
        let mx = row.fold(f64::NEG_INFINITY, |a, b| a.max(*b));
        let e: Vec<f64> = row.iter().map(|x| (x - mx).exp()).collect();
        let sum: f64 = e.iter().sum();
        for (j, ej) in e.iter().enumerate() {
            p[(i, j)] = ej / sum;
        }
    }
    p.dot(v)
}

fn check_attention(kernel: &dyn Kernel, dtype: DType) {
    let instances = SEQ.div_ceil(BM);
    let mut b = Bench::new(instances);
    let scale = 1.0 / (HEAD as f64).sqrt();
    let (qv, kv, vv) = (
        inputs(5, SEQ * HEAD, dtype),
        inputs(6, SEQ * HEAD, dtype),
        inputs(7, SEQ * HEAD, dtype),
    );
    let (q, k, v) = (
        b.buffer(dtype, &qv),
        b.buffer(dtype, &kv),
        b.buffer(dtype, &vv),
    );
    let o = b.buffer(dtype, &vec![0.0; SEQ * HEAD]);
    let t = |buf: &Buffer| buf.view(SEQ, HEAD).unwrap();
    let args = flash_attention::args()
        .q(t(&q))
        .k(t(&k))
        .v(t(&v))
        .o(t(&o))
        .scale(scale)
        .bm(BM)
        .bn(BN);
    b.run(kernel, args.into());
    let want = attention_reference(
        &as_f64(&qv, SEQ, HEAD),
        &as_f64(&kv, SEQ, HEAD),
        &as_f64(&vv, SEQ, HEAD),
        scale,
    );
    let (atol, rtol) = tol(dtype);
    assert_close(
        &format!("flash attention {dtype}"),
        &b.read(&o, SEQ, HEAD),
        &want,
        atol,
        rtol,
    );
}

#[test]
fn causal_flash_attention_matches_ndarray() {
    check_attention(&flash_attention, DType::F32);
    check_attention(&flash_attention, DType::F16);
}

/// `causal_attention_heads` over 2 heads packed as a column-parallel QKV
/// projection leaves them (`[q0 q1 | k0 k1 | v0 v1]`), 4 instances of 10
/// rows each reading earlier rows' keys and values from the others' PEs.
fn check_attention_heads(dtype: DType) {
    const HEADS: usize = 2;
    let instances = 4;
    let mut b = Bench::new(instances);
    let scale = 1.0 / (HEAD as f64).sqrt();
    let width = 3 * HEADS * HEAD;
    let qkv_v = inputs(8, SEQ * width, dtype);
    let qkv = b.buffer(dtype, &qkv_v);
    let o = b.buffer(dtype, &vec![0.0; SEQ * HEADS * HEAD]);
    let args = causal_attention_heads::args()
        .qkv(qkv.view(SEQ, width).unwrap())
        .o(o.view(SEQ, HEADS * HEAD).unwrap())
        .heads(HEADS)
        .scale(scale)
        .bn(BN);
    b.run(&causal_attention_heads, args.into());
    let all = as_f64(&qkv_v, SEQ, width);
    let got = b.read(&o, SEQ, HEADS * HEAD);
    let (atol, rtol) = tol(dtype);
    for h in 0..HEADS {
        let part = |p: usize| {
            let c = (p * HEADS + h) * HEAD;
            all.slice(s![.., c..c + HEAD]).to_owned()
        };
        let want = attention_reference(&part(0), &part(1), &part(2), scale);
        let got = got.slice(s![.., h * HEAD..(h + 1) * HEAD]).to_owned();
        assert_close(
            &format!("attention head {h} {dtype}"),
            &got,
            &want,
            atol,
            rtol,
        );
    }
}

#[test]
fn causal_attention_over_packed_heads_matches_ndarray() {
    check_attention_heads(DType::F32);
    check_attention_heads(DType::F16);
}

#[test]
fn add_rows_adds_every_band() {
    for dtype in [DType::F32, DType::F16] {
        let mut b = Bench::new(2);
        let (av, bv) = (
            inputs(9, ROWS * COLS, dtype),
            inputs(10, ROWS * COLS, dtype),
        );
        let (x, y) = (b.buffer(dtype, &av), b.buffer(dtype, &bv));
        let z = b.buffer(dtype, &vec![0.0; ROWS * COLS]);
        let args = add_rows::args()
            .a(x.view(ROWS, COLS).unwrap())
            .b(y.view(ROWS, COLS).unwrap())
            .y(z.view(ROWS, COLS).unwrap());
        b.run(&add_rows, args.into());
        // One rounding of an exact f32 sum: the host's, bit for bit.
        let want: Vec<f32> = av
            .iter()
            .zip(&bv)
            .map(|(p, q)| dtype.round(p + q))
            .collect();
        assert_eq!(
            b.read(&z, ROWS, COLS).into_raw_vec_and_offset().0,
            want,
            "{dtype}"
        );
    }
}
