//! The kernel language's tile operations: what each computes (against a
//! reference on the host), the errors that name the kernel line, the text
//! each prints, and the MATH time each costs.

use kernbench::core::ir::{BoundsError, DTypeError, ShapeError, TraceErrorKind, UsageError};
use kernbench::core::sim::lower::OpKind;
use kernbench::core::sim::Unit;
use kernbench::core::sim::{simulate_full, Launch};
use kernbench::prelude::*;
use kernbench::tl::{Element, Kernel};

mod common;
use common::Bench;

/// The 1-based line of the first line of this file containing `marker`.
fn line_of(marker: &str) -> u32 {
    include_str!("language.rs")
        .lines()
        .position(|l| l.contains(marker) && !l.contains("line_of("))
        .map(|i| i as u32 + 1)
        .unwrap_or_else(|| panic!("no line holds {marker:?}"))
}

// ---------------------------------------------------------------------------
// Kernels under test.

/// Op `op` of the unary functions applied to `x`.
#[kernel_fn]
fn unary<T: Element>(x: &Tile<T>, op: usize) -> Tile<T> {
    match op {
        0 => tl::sqrt(x),
        1 => tl::rsqrt(x),
        2 => tl::log(x),
        3 => tl::log2(x),
        4 => tl::exp2(x),
        5 => tl::tanh(x),
        6 => tl::sigmoid(x),
        7 => tl::abs(x),
        8 => -x,
        9 => tl::exp(x),
        10 => tl::pow(x, 1.5),
        11 => tl::gelu(x),
        _ => tl::pow(x, x),
    }
}

type HostFn = fn(f64) -> f64;

const UNARY: [(&str, HostFn); 13] = [
    ("sqrt", f64::sqrt),
    ("rsqrt", |x| 1.0 / x.sqrt()),
    ("log", f64::ln),
    ("log2", f64::log2),
    ("exp2", f64::exp2),
    ("tanh", f64::tanh),
    ("sigmoid", |x| 1.0 / (1.0 + (-x).exp())),
    ("abs", f64::abs),
    ("neg", |x| -x),
    ("exp", f64::exp),
    ("pow 1.5", |x| x.powf(1.5)),
    // The tanh approximation, in f64 on the host.
    ("gelu", |x| {
        let k = (2.0 / std::f64::consts::PI).sqrt();
        0.5 * x * (1.0 + (k * (x + 0.044715 * x * x * x)).tanh())
    }),
    ("pow x", |x| x.powf(x)),
];

/// Op `op` of the unary functions applied to the elements of `x`, stored in
/// `y`: one kernel for every element type, which the launch's buffers give
/// (the test runs it on f32 and on f16 buffers).
///
/// Its arguments are bound with the typed builder `unary_op::args()`, so a
/// misspelt or mistyped argument does not compile.
#[kernel]
fn unary_op<T: Element>(x: Ptr<T>, y: Ptr<T>, n: usize, op: usize) {
    let t = tl::load(x, [n]);
    tl::store(y, &unary(&t, op));
}

/// `max(x - r, c) / (c + 2)` with `x: [m, n]`, a row `r: [n]` and a column
/// `c: [m, 1]`; and `2 - x` with the scalar on the left.
#[kernel]
fn broadcasts(x: Tensor<f32>, r: Ptr<f32>, c: Tensor<f32>, y: Tensor<f32>, z: Tensor<f32>) {
    let (m, n) = (x.rows(), x.cols());
    let xt = tl::load(x.all(), [m, n]);
    let rt = tl::load(r, [n]);
    let ct = tl::load(c.all(), [m, 1]);
    let out = tl::maximum(&(xt - rt), ct) / (ct + 2.0);
    tl::store(y.all(), &out);
    tl::store(z.all(), &(2.0 - &xt));
}

/// Comparison `op` of `x` and `y`, its mask as 0.0 and 1.0; and the logic of
/// masks with `where_`: `where(x < y & x >= 0 | !(x != y), x, -y)`.
#[kernel]
fn masks(x: Ptr<f32>, y: Ptr<f32>, cmp: Ptr<f32>, sel: Ptr<f32>, n: usize, op: usize) {
    let (a, b) = (tl::load(x, [n]), tl::load(y, [n]));
    let m = match op {
        0 => a.lt(b),
        1 => a.le(b),
        2 => a.gt(b),
        3 => a.ge(b),
        4 => a.eq(b),
        _ => a.ne(b),
    };
    tl::store(cmp, &m.cast::<f32>());
    let keep = (a.lt(b) & a.ge(0.0)) | !a.ne(b);
    let keep = keep ^ tl::full::<bool>([n], 0.0);
    tl::store(sel, &tl::where_(&keep, a, -b));
}

type HostCmp = fn(f32, f32) -> bool;

const CMP: [(&str, HostCmp); 6] = [
    ("lt", |a, b| a < b),
    ("le", |a, b| a <= b),
    ("gt", |a, b| a > b),
    ("ge", |a, b| a >= b),
    ("eq", |a, b| a == b),
    ("ne", |a, b| a != b),
];

/// Reductions along rows, `arange`, and the shape operations. `idx` holds
/// the row argmax, the row argmin, then `arange(3, 8)`.
#[kernel]
fn shapes(
    x: Tensor<f32>,
    mins: Ptr<f32>,
    idx: Ptr<i32>,
    xt: Tensor<f32>,
    spread: Tensor<f32>,
    folded: Tensor<f32>,
) {
    let (m, n) = (x.rows(), x.cols());
    let t = tl::load(x.all(), [m, n]);
    tl::store(mins, &tl::min(&t, 1));
    tl::store(idx, &tl::argmax(&t, 1));
    tl::store(idx.offset(m), &tl::argmin(&t, 1));
    tl::store(idx.offset(2 * m), &tl::arange(3, 8));
    tl::store(xt.all(), &tl::trans(&t));
    let first_col = tl::reshape(&t, [m * n]).reshape([m, n]);
    let row = tl::max(&first_col, 0).reshape([n]);
    tl::store(spread.all(), &tl::broadcast_to(&row, [m, n]));
    tl::store(
        folded.all(),
        &t.reshape([n, m]).trans().expand_dims(0).reshape([m, n]),
    );
}

/// A masked load (elements from `k` on read as -1) and masked stores: of the
/// loaded tile doubled where the element index is below `k`, and of a block
/// whose first two columns only are written (a `[1, cols]` mask).
#[kernel]
fn masked(x: Ptr<f32>, a: Ptr<f32>, b: Ptr<f32>, g: Tensor<f32>, n: usize, k: usize) {
    let m = tl::arange(0, n).lt(k as f64);
    let t = tl::load_masked(x, [n], &m, -1.0);
    tl::store(a, &t);
    tl::store_masked(b, &(t * 2.0), &m);
    let cols = tl::arange(0, g.cols()).expand_dims(0).lt(2.0);
    let ones = tl::full::<f32>(g.shape(), 1.0);
    tl::store_masked(g.all(), &ones, &cols);
}

/// `0.5 * (c + a x b)`: a GEMM with an accumulator and an epilogue.
#[kernel]
fn gemm_acc(a: Tensor<f32>, b: Tensor<f32>, c: Tensor<f32>, out: Tensor<f32>) {
    let at = tl::load(a.all(), a.shape());
    let bt = tl::load(b.all(), b.shape());
    let ct = tl::load(c.all(), c.shape());
    let p = tl::gemm(&at, &bt, Some(&ct), &[Epilogue::Scale(0.5)]);
    tl::store(out.all(), &p);
}

// ---------------------------------------------------------------------------
// Running kernels with data.

fn close(got: f32, want: f64, rel: f64) -> bool {
    let g = f64::from(got);
    (g.is_nan() && want.is_nan()) || (g - want).abs() <= rel * want.abs().max(1e-3)
}

#[test]
fn unary_functions_match_the_host_in_f32_and_f16() {
    // The kernel is one, generic over its element type.
    let meta = unary_op.meta();
    assert_eq!(meta.generics, ["T"]);
    let (x, n) = (&meta.params[0], &meta.params[2]);
    assert_eq!((x.generic, x.dtype, n.generic), (Some("T"), None, None));
    // Positive inputs (log, sqrt, pow of any exponent), then signed ones.
    let pos: Vec<f32> = (1..=40).map(|i| i as f32 * 0.1).collect();
    let signed: Vec<f32> = (0..40).map(|i| (i as f32 - 20.0) * 0.15).collect();
    // One kernel serves both element types: the buffers choose which.
    // f16 rounds each result to 11 significant bits.
    for (dtype, rel) in [(DType::F32, 1e-6), (DType::F16, 1e-3)] {
        for (op, (name, f)) in UNARY.iter().enumerate() {
            let input = if matches!(*name, "tanh" | "sigmoid" | "abs" | "neg" | "exp" | "gelu") {
                &signed
            } else {
                &pos
            };
            let input: Vec<f32> = input.iter().map(|v| dtype.round(*v)).collect();
            let mut b = Bench::new();
            let x = b.buf(dtype, &input);
            let y = b.buf(dtype, &vec![0.0; input.len()]);
            let args = unary_op::args().x(&x).y(&y).n(input.len()).op(op);
            b.run(&unary_op, args.into());
            for (i, (g, v)) in b.read(&y).iter().zip(&input).enumerate() {
                let want = f(f64::from(*v));
                assert!(
                    close(*g, want, rel),
                    "{name} {dtype} of {v} (element {i}): got {g}, want {want}"
                );
            }
        }
    }
}

#[test]
fn elementwise_operands_broadcast_by_numpys_rules() {
    use ndarray::{Array1, Array2};
    let (m, n) = (4, 6);
    let xv: Vec<f32> = (0..m * n).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
    let rv: Vec<f32> = (0..n).map(|j| j as f32 * 0.5 - 1.0).collect();
    let cv: Vec<f32> = (0..m).map(|i| i as f32 - 1.5).collect();
    let mut b = Bench::new();
    let (x, r, c) = (
        b.buf(DType::F32, &xv),
        b.buf(DType::F32, &rv),
        b.buf(DType::F32, &cv),
    );
    let y = b.buf(DType::F32, &vec![0.0; m * n]);
    let z = b.buf(DType::F32, &vec![0.0; m * n]);
    let args = KernelArgs::new()
        .with("x", x.tensor(m, n).unwrap())
        .with("r", r.ptr())
        .with("c", c.tensor(m, 1).unwrap())
        .with("y", y.tensor(m, n).unwrap())
        .with("z", z.tensor(m, n).unwrap());
    b.run(&broadcasts, args);
    // ndarray broadcasts the same way.
    let xa = Array2::from_shape_vec((m, n), xv.clone()).unwrap();
    let ra = Array1::from_vec(rv);
    let ca = Array2::from_shape_vec((m, 1), cv).unwrap();
    let diff = &xa - &ra;
    let want = ndarray::Zip::from(&diff)
        .and_broadcast(&ca)
        .map_collect(|d, c| d.max(*c) / (c + 2.0));
    assert_eq!(b.read(&y), want.into_raw_vec_and_offset().0);
    let want_z: Vec<f32> = xv.iter().map(|v| 2.0 - v).collect();
    assert_eq!(b.read(&z), want_z);
}

#[test]
fn comparisons_give_masks_and_where_chooses_with_them() {
    let xv = [-1.0f32, 0.0, 2.0, 3.0, 0.5, -2.0, 4.0, 1.0];
    let yv = [0.0f32, 0.0, 1.0, 3.0, 2.0, -2.0, 5.0, -1.0];
    for (op, (name, f)) in CMP.iter().enumerate() {
        let mut b = Bench::new();
        let (x, y) = (b.buf(DType::F32, &xv), b.buf(DType::F32, &yv));
        let cmp = b.buf(DType::F32, &[9.0; 8]);
        let sel = b.buf(DType::F32, &[9.0; 8]);
        let args = KernelArgs::new()
            .with("x", x.ptr())
            .with("y", y.ptr())
            .with("cmp", cmp.ptr())
            .with("sel", sel.ptr())
            .int("n", 8)
            .int("op", op as i64);
        b.run(&masks, args);
        let want: Vec<f32> = xv
            .iter()
            .zip(&yv)
            .map(|(a, c)| if f(*a, *c) { 1.0 } else { 0.0 })
            .collect();
        assert_eq!(b.read(&cmp), want, "{name}");
        let want_sel: Vec<f32> = xv
            .iter()
            .zip(&yv)
            .map(|(a, c)| {
                let keep = (a < c && *a >= 0.0) || a == c;
                if keep {
                    *a
                } else {
                    -c
                }
            })
            .collect();
        assert_eq!(b.read(&sel), want_sel);
    }
}

#[test]
fn reductions_arange_and_shape_operations() {
    let (m, n) = (3, 4);
    // Rows with a repeated maximum and minimum: the first index counts.
    let xv = [
        1.0f32, 5.0, 5.0, -1.0, //
        0.0, -3.0, 2.0, -3.0, //
        7.0, 7.0, 1.0, 0.5,
    ];
    let mut b = Bench::new();
    let x = b.buf(DType::F32, &xv);
    let mins = b.buf(DType::F32, &[0.0; 3]);
    let idx = b.buf(DType::I32, &[0.0; 11]);
    let xt = b.buf(DType::F32, &[0.0; 12]);
    let spread = b.buf(DType::F32, &[0.0; 12]);
    let folded = b.buf(DType::F32, &[0.0; 12]);
    let args = KernelArgs::new()
        .with("x", x.tensor(m, n).unwrap())
        .with("mins", mins.ptr())
        .with("idx", idx.ptr())
        .with("xt", xt.tensor(n, m).unwrap())
        .with("spread", spread.tensor(m, n).unwrap())
        .with("folded", folded.tensor(m, n).unwrap());
    b.run(&shapes, args);
    assert_eq!(b.read(&mins), [-1.0, -3.0, 0.5]);
    assert_eq!(
        b.read(&idx),
        [1.0, 2.0, 0.0, 3.0, 1.0, 3.0, 3.0, 4.0, 5.0, 6.0, 7.0],
        "argmax, argmin (first of equal extremes), arange"
    );
    let at = |i: usize, j: usize| xv[i * n + j];
    let want_t: Vec<f32> = (0..n).flat_map(|j| (0..m).map(move |i| at(i, j))).collect();
    assert_eq!(b.read(&xt), want_t);
    // Column maxima spread down every row.
    let colmax = [7.0, 7.0, 5.0, 0.5];
    assert_eq!(b.read(&spread), [colmax, colmax, colmax].concat());
    // x viewed as [n, m], transposed to [m, n]: element (i, j) is flat x[j * m + i].
    let want_f: Vec<f32> = (0..m)
        .flat_map(|i| (0..n).map(move |j| xv[j * m + i]))
        .collect();
    assert_eq!(b.read(&folded), want_f);
}

#[test]
fn masked_loads_read_other_and_masked_stores_leave_memory_alone() {
    let (n, k) = (10, 6);
    let xv: Vec<f32> = (0..n).map(|i| i as f32 + 0.5).collect();
    let mut b = Bench::new();
    let x = b.buf(DType::F32, &xv);
    let a = b.buf(DType::F32, &vec![7.0; n]);
    let out = b.buf(DType::F32, &vec![7.0; n]);
    let g = b.buf(DType::F32, &[3.0; 12]);
    let args = KernelArgs::new()
        .with("x", x.ptr())
        .with("a", a.ptr())
        .with("b", out.ptr())
        .with("g", g.tensor(3, 4).unwrap())
        .int("n", n as i64)
        .int("k", k as i64);
    b.run(&masked, args);
    let want_a: Vec<f32> = (0..n).map(|i| if i < k { xv[i] } else { -1.0 }).collect();
    assert_eq!(b.read(&a), want_a);
    let want_b: Vec<f32> = (0..n)
        .map(|i| if i < k { 2.0 * xv[i] } else { 7.0 })
        .collect();
    assert_eq!(b.read(&out), want_b, "unmasked elements keep their bytes");
    assert_eq!(b.read(&g), [[1.0, 1.0, 3.0, 3.0]; 3].concat());
}

#[test]
fn gemm_accumulates_before_its_epilogue() {
    use ndarray::Array2;
    let (m, k, n) = (8, 16, 8);
    let av: Vec<f32> = (0..m * k).map(|i| ((i * 7) % 11) as f32 - 5.0).collect();
    let bv: Vec<f32> = (0..k * n).map(|i| ((i * 3) % 5) as f32 - 2.0).collect();
    let cv: Vec<f32> = (0..m * n).map(|i| i as f32).collect();
    let mut bench = Bench::new();
    let (a, b, c) = (
        bench.buf(DType::F32, &av),
        bench.buf(DType::F32, &bv),
        bench.buf(DType::F32, &cv),
    );
    let out = bench.buf(DType::F32, &vec![0.0; m * n]);
    let args = KernelArgs::new()
        .with("a", a.tensor(m, k).unwrap())
        .with("b", b.tensor(k, n).unwrap())
        .with("c", c.tensor(m, n).unwrap())
        .with("out", out.tensor(m, n).unwrap());
    bench.run(&gemm_acc, args);
    let aa = Array2::from_shape_vec((m, k), av).unwrap();
    let ba = Array2::from_shape_vec((k, n), bv).unwrap();
    let ca = Array2::from_shape_vec((m, n), cv).unwrap();
    let want = (aa.dot(&ba) + ca) * 0.5;
    assert_eq!(bench.read(&out), want.into_raw_vec_and_offset().0);
}

// ---------------------------------------------------------------------------
// Errors name the kernel line.

#[kernel]
fn bad(x: Tensor<f32>, case: usize) {
    let t = tl::load(x.all(), x.shape());
    let col = tl::load(x.block([0, 0], [8, 2]), [8, 2]);
    let i = tl::arange(0, 8);
    let m = t.gt(0.0);
    match case {
        0 => tl::store(x.all(), &(t - col)), // error: no broadcast
        1 => {
            let _ = m + m; // error: mask arithmetic
        }
        2 => {
            let _ = tl::sqrt(&i); // error: sqrt of i32
        }
        3 => {
            let _ = i.trans(); // error: trans of 1D
        }
        4 => {
            let _ = t.reshape([7, 64]); // error: reshape count
        }
        5 => {
            let _ = t.expand_dims(3); // error: expand_dims axis
        }
        6 => {
            let _ = col.broadcast_to([8, 64]); // error: broadcast_to
        }
        7 => {
            let _ = tl::arange(5, 5); // error: empty arange
        }
        8 => {
            let _ = tl::load_masked(x.all(), x.shape(), &i.lt(3.0), 0.0); // error: mask shape
        }
        9 => {
            let _ = tl::argmax(&m, 1); // error: argmax of a mask
        }
        10 => {
            let _ = tl::gelu(&i); // error: gelu of i32
        }
        11 => {
            let a = tl::load(x.block([0, 0], [8, 8]), [8, 8]).cast::<i32>();
            let _ = tl::gemm(&a, &a, None, &[Epilogue::Gelu]); // error: gelu of an i32 product
        }
        _ => {
            let _ = tl::where_(&m, i.cast::<f32>(), 0.0); // error: where shapes
        }
    }
}

#[test]
fn shape_and_type_errors_name_the_kernel_line() {
    let cases: [(&str, &str); 13] = [
        ("error: no broadcast", "sub of [8, 64] and [8, 2]: the shapes do not broadcast (dimension 1 from the left of the broadcast shape: 64 against 2"),
        ("error: mask arithmetic", "add of bool masks: masks have no arithmetic"),
        ("error: sqrt of i32", "sqrt of i32: it takes floating-point tiles; cast first"),
        ("error: trans of 1D", "trans takes a 2D tile, not [8]"),
        ("error: reshape count", "reshape of [8, 64] (512 elements) to [7, 64] (448 elements)"),
        ("error: expand_dims axis", "expand_dims at axis 3 of a 2-D tile [8, 64]: the axis is at most 2"),
        ("error: broadcast_to", "[8, 2] does not broadcast to [8, 64]"),
        ("error: empty arange", "arange(5, 5): give start < end"),
        ("error: mask shape", "the mask [8] of a masked load does not broadcast to the region [8, 64]"),
        ("error: argmax of a mask", "argmax of a bool mask: masks have no arithmetic"),
        ("error: gelu of i32", "gelu of i32: it takes floating-point tiles; cast first"),
        ("error: gelu of an i32 product", "gelu in the epilogue of a product in i32: it takes floating-point products"),
        ("error: where shapes", "where of [8, 64] and [8]: the shapes do not broadcast"),
    ];
    // What each case breaks, with the values involved (see `bad_kinds`,
    // kept at the end of the file so that the kernels above keep their lines).
    let kinds = bad_kinds();
    let x = ArgValue::Tensor {
        va: 0x1000_0000_0000,
        dtype: DType::F32,
        shape: [8, 64],
    };
    for (case, (marker, msg)) in cases.iter().enumerate() {
        let args = KernelArgs::new()
            .with("x", x.clone())
            .int("case", case as i64);
        let e = kernbench::tl::trace(&bad, &args, &[1], &[0]).unwrap_err();
        let loc = e.loc.clone().unwrap_or_else(|| panic!("{marker}: {e}"));
        assert!(loc.file.ends_with("language.rs"), "{marker}: {e}");
        assert_eq!(loc.line, line_of(marker), "{marker}: {e}");
        assert!(e.to_string().contains(msg), "{marker}: {e}");
        assert_eq!(e.kind, kinds[case], "{marker}");
    }
}

// ---------------------------------------------------------------------------
// The text form of every new command.

#[kernel]
fn every_op(x: Tensor<f16>, y: Ptr<f16>, idx: Ptr<i32>) {
    let t = tl::load(x.all(), x.shape()).cast::<f32>();
    let row = tl::load(y, [x.cols()]).cast::<f32>();
    let u = tl::gelu(&tl::sigmoid(&tl::tanh(&(t - row))));
    let v = tl::pow(&tl::sqrt(&tl::abs(&u)), 2.0) + tl::rsqrt(&(u * u + 1.0));
    let w = tl::log(&tl::exp2(&v)) + tl::log2(&(-v + 4.0));
    let c = tl::arange(0, x.cols()).expand_dims(0);
    let keep = (c.ge(2.0) & t.le(w)) | !t.ne(0.0) ^ t.eq(1.0);
    let z = tl::where_(&keep, w, tl::minimum(&t, 0.0));
    let k = tl::load_masked(x.all(), x.shape(), &keep, 0.0);
    tl::store_masked(
        x.all(),
        &(z.cast::<f16>() + k),
        &keep.gt(tl::zeros::<bool>([1, 1])),
    );
    tl::store(
        idx,
        &tl::argmax(&tl::min(&z.trans(), 1).broadcast_to([x.cols(), 2]), 1),
    );
    tl::store(idx, &tl::argmin(&t, 1).reshape([1, x.rows()]));
}

#[test]
fn every_new_command_has_a_line_in_the_text_form() {
    let args = KernelArgs::new()
        .with(
            "x",
            ArgValue::Tensor {
                va: 0x1000_0000_0000,
                dtype: DType::F16,
                shape: [4, 8],
            },
        )
        .with(
            "y",
            ArgValue::Ptr {
                va: 0x1001_0000_0000,
                dtype: DType::F16,
                len: 8,
            },
        )
        .with(
            "idx",
            ArgValue::Ptr {
                va: 0x1002_0000_0000,
                dtype: DType::I32,
                len: 8,
            },
        );
    let text = kernbench::tl::trace(&every_op, &args, &[1], &[0])
        .unwrap()
        .to_text();
    for word in [
        "gelu",
        "sigmoid",
        "tanh",
        "pow",
        "sqrt",
        "abs",
        "rsqrt",
        "log",
        "exp2",
        "log2",
        "neg",
        "arange",
        "reshape",
        "ge",
        "le",
        "and",
        "ne",
        "not",
        "eq",
        "xor",
        "or",
        "where",
        "min",
        "mask",
        "other",
        "trans",
        "broadcast_to",
        "argmax",
        "argmin",
        "gt",
    ] {
        assert!(
            text.lines().any(|l| l.split([' ', ',']).any(|w| w == word)),
            "no `{word}` in\n{text}"
        );
    }
    insta::assert_snapshot!(text);
}

// ---------------------------------------------------------------------------
// What the MATH engine is charged.

#[kernel]
fn costs(x: Ptr<f32>, y: Ptr<f32>, n: usize) {
    let t = tl::load(x, [n]);
    let _ = t + 1.0; // cost: add
    let _ = tl::rsqrt(&t); // cost: rsqrt
    let _ = tl::exp(&t); // cost: exp
    let _ = tl::tanh(&t); // cost: tanh
    let _ = tl::gelu(&t); // cost: gelu
    let _ = tl::pow(&t, 0.5); // cost: pow
    let _ = t.lt(0.5); // cost: lt
    let _ = t.reshape([n / 16, 16]).trans(); // cost: trans
    let _ = t.expand_dims(0).broadcast_to([4, n]); // cost: broadcast_to
    let r = t.reshape([n / 16, 16]);
    let _ = tl::sum(&r, 1); // cost: sum
    let _ = tl::argmax(&r, 1); // cost: argmax
    let m = t.gt(0.0);
    let _ = tl::load_masked(x, [n], &m, 0.0); // cost: masked load
    tl::store_masked(y, &t, &m); // cost: masked store
}

#[test]
fn math_time_follows_the_pass_counts() {
    let n = 1024usize;
    let topo = Topology::builtin("tiny").unwrap();
    let spec = topo.pe_spec().clone();
    let pe = topo.pes().next().unwrap();
    let mut m = Machine::new(topo).unwrap();
    let x = m.alloc(DType::F32, n, &[pe]).unwrap();
    let y = m.alloc(DType::F32, n, &[pe]).unwrap();
    let args = KernelArgs::new()
        .with("x", x.ptr())
        .with("y", y.ptr())
        .int("n", n as i64);
    let out = simulate_full(
        &mut m,
        &Launch::new(&costs, args, vec![pe])
            .data(false)
            .keep_graphs(true),
    )
    .unwrap();
    let (g, prog) = (&out.graphs[0], &out.programs[0]);
    // MATH picoseconds of the commands on each marked line.
    let math_ps = |marker: &str| -> u64 {
        let line = line_of(marker);
        prog.ops
            .iter()
            .filter(|op| op.unit == Unit::Math && g.node(op.cmd).loc.line == line)
            .map(|op| match op.kind {
                OpKind::Fixed { ps, .. } => ps,
                _ => 0,
            })
            .sum()
    };
    // One pass over n elements.
    let pass = kernbench::core::ids::transfer_ps(n as u64, spec.math_elems_per_ns());
    let s = u64::from(spec.math_special_passes);
    assert_eq!(s, 4, "the default figure");
    for (marker, passes) in [
        ("cost: add", 1),
        ("cost: rsqrt", s),
        ("cost: exp", 1 + s),
        ("cost: tanh", 4 + s),
        ("cost: gelu", 7 + s),
        ("cost: pow", 1 + 2 * s),
        ("cost: lt", 1),
        ("cost: trans", 1),
        ("cost: broadcast_to", 0),
        ("cost: sum", 1),
        ("cost: argmax", 2),
        ("cost: masked load", 1),
        ("cost: masked store", 0),
    ] {
        assert_eq!(math_ps(marker), passes * pass, "{marker}");
    }
    // Views run on no engine and take no TCM of their own.
    for (id, node) in g.nodes() {
        if matches!(node.cmd.mnemonic(), "reshape" | "broadcast_to") {
            assert!(prog.tcm[id.index()].is_none(), "{id} has a TCM tile");
            assert!(prog
                .ops
                .iter()
                .filter(|op| op.cmd == id)
                .all(|op| matches!(op.unit, Unit::Cpu | Unit::Free)));
        }
    }
}

/// Writes its instance number into its own buffer `buf`.
#[kernel]
fn stamp_own(buf: Ptr<f32>, n: usize) {
    let x = tl::load(buf, [n]);
    tl::store(buf, &(x + tl::program_id(0) as f64));
}

#[test]
fn an_argument_bound_per_instance_gives_each_instance_its_own_value() {
    let n = 64usize;
    let topo = Topology::builtin("tiny").unwrap();
    let pes: Vec<_> = topo.pes().take(3).collect();
    let mut m = Machine::new(topo).unwrap();
    let bufs: Vec<_> = pes
        .iter()
        .map(|pe| m.alloc(DType::F32, n, &[*pe]).unwrap())
        .collect();
    let launch = Launch::new(
        &stamp_own,
        KernelArgs::new().int("n", n as i64),
        pes.clone(),
    )
    .per_instance("buf", bufs.iter().map(|b| b.ptr()).collect());
    simulate_full(&mut m, &launch).unwrap();
    for (i, b) in bufs.iter().enumerate() {
        assert!(
            m.read_buffer(b).unwrap().iter().all(|v| *v == i as f32),
            "instance {i} wrote only its own buffer"
        );
    }
    // One value short: refused before anything runs, naming the parameter.
    let short = Launch::new(&stamp_own, KernelArgs::new().int("n", n as i64), pes)
        .per_instance("buf", bufs[..2].iter().map(|b| b.ptr()).collect());
    let e = simulate_full(&mut m, &short).err().unwrap().to_string();
    assert!(
        e.contains("`buf` is bound per instance with 2 values, but the launch has 3 instances"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------
// Regions outside their memory name what they reach.

#[kernel]
fn outside(x: Tensor<f32>, y: Ptr<f32>, case: usize) {
    match case {
        0 => {
            let _ = tl::load(x.block([4, 60], [8, 8]), [8, 8]); // error: block outside
        }
        1 => {
            let _ = tl::load(x.block([usize::MAX, 0], [2, 8]), [2, 8]); // error: block overflow
        }
        3 => {
            let _ = tl::load(x.block([0, 0], [8, 2]), [8, 4]); // error: block access
        }
        4 => {
            // `usize::MAX` elements on is past the buffer for good: it does
            // not wrap round to one element back.
            let _ = tl::load(y.offset(usize::MAX).offset(8), [8]); // error: offset past
        }
        _ => {
            let _ = tl::load(y.offset(2), [8]); // error: address overflow
        }
    }
}

#[test]
fn regions_outside_their_memory_name_what_they_reach() {
    let args = |case: i64| {
        KernelArgs::new()
            .with(
                "x",
                ArgValue::Tensor {
                    va: 0x1000_0000_0000,
                    dtype: DType::F32,
                    shape: [8, 64],
                },
            )
            // A buffer whose last bytes would lie past the 64-bit space.
            .with(
                "y",
                ArgValue::Ptr {
                    va: u64::MAX - 15,
                    dtype: DType::F32,
                    len: 16,
                },
            )
            .int("case", case)
    };
    let e = kernbench::tl::trace(&outside, &args(0), &[1], &[0]).unwrap_err();
    assert_eq!(
        e.kind,
        TraceErrorKind::OutOfBounds(Box::new(BoundsError::Block {
            name: "x".into(),
            origin: [4, 60],
            shape: [8, 8],
            tensor: [8, 64],
        }))
    );
    assert_eq!(
        e.loc.as_ref().map(|l| l.line),
        Some(line_of("error: block outside"))
    );
    assert!(
        e.to_string()
            .contains("out of bounds: block rows 4..12, cols 60..68 of `x`, which is 8x64"),
        "{e}"
    );
    // A block whose end does not fit a usize is outside too, not a panic.
    let e = kernbench::tl::trace(&outside, &args(1), &[1], &[0]).unwrap_err();
    assert_eq!(
        e.kind,
        TraceErrorKind::OutOfBounds(Box::new(BoundsError::Block {
            name: "x".into(),
            origin: [usize::MAX, 0],
            shape: [2, 8],
            tensor: [8, 64],
        }))
    );
    assert_eq!(
        e.loc.as_ref().map(|l| l.line),
        Some(line_of("error: block overflow"))
    );
    // An access that names another shape than its block's is a shape error.
    let e = kernbench::tl::trace(&outside, &args(3), &[1], &[0]).unwrap_err();
    let access = ShapeError::BlockAccess {
        block: [8, 2],
        access: vec![8, 4],
    };
    assert_eq!(e.kind, TraceErrorKind::Shape(Box::new(access)));
    assert_eq!(
        e.loc.as_ref().map(|l| l.line),
        Some(line_of("error: block access"))
    );
    let e = kernbench::tl::trace(&outside, &args(4), &[1], &[0]).unwrap_err();
    let TraceErrorKind::OutOfBounds(bounds) = &e.kind else {
        panic!("{e:?}");
    };
    assert!(
        matches!(&**bounds, BoundsError::Elements { len: 16, .. }),
        "{e:?}"
    );
    assert_eq!(
        e.loc.as_ref().map(|l| l.line),
        Some(line_of("error: offset past"))
    );
    let e = kernbench::tl::trace(&outside, &args(2), &[1], &[0]).unwrap_err();
    let TraceErrorKind::OutOfBounds(bounds) = &e.kind else {
        panic!("{e:?}");
    };
    let BoundsError::AddressOverflow { region } = &**bounds else {
        panic!("{e:?}");
    };
    assert_eq!((&*region.name, &region.shape[..]), ("y", &[8][..]));
    assert_eq!(
        e.loc.as_ref().map(|l| l.line),
        Some(line_of("error: address overflow"))
    );
    assert!(
        e.to_string()
            .contains("y[+2] of shape [8] lies outside the 64-bit address space"),
        "{e}"
    );
}

/// The kind of error each case of `bad` gives.
fn bad_kinds() -> [TraceErrorKind; 13] {
    let shape = |e: ShapeError| TraceErrorKind::Shape(Box::new(e));
    let no_broadcast = |op, list: [&[usize]; 2], extents| {
        shape(ShapeError::Broadcast {
            op,
            shapes: list.iter().map(|s| s.to_vec()).collect(),
            dim: 1,
            extents,
        })
    };
    [
        no_broadcast("sub", [&[8, 64], &[8, 2]], [64, 2]),
        TraceErrorKind::DType(DTypeError::MaskArithmetic { op: "add" }),
        TraceErrorKind::DType(DTypeError::NotFloat {
            op: "sqrt",
            dtype: DType::I32,
        }),
        shape(ShapeError::TransRank { shape: vec![8] }),
        shape(ShapeError::Reshape {
            from: vec![8, 64],
            from_elems: 512,
            to: vec![7, 64],
            to_elems: 448,
        }),
        shape(ShapeError::ExpandDims {
            axis: 3,
            shape: vec![8, 64],
        }),
        shape(ShapeError::BroadcastTo {
            from: vec![8, 2],
            to: vec![8, 64],
        }),
        shape(ShapeError::Arange { start: 5, end: 5 }),
        shape(ShapeError::MaskBroadcast {
            access: "load",
            mask: vec![8],
            region: vec![8, 64],
        }),
        TraceErrorKind::DType(DTypeError::ReduceOfMask {
            op: "argmax",
            dtype: DType::Bool,
        }),
        TraceErrorKind::DType(DTypeError::NotFloat {
            op: "gelu",
            dtype: DType::I32,
        }),
        TraceErrorKind::DType(DTypeError::EpilogueNotFloat {
            op: "gelu",
            dtype: DType::I32,
        }),
        no_broadcast("where", [&[8, 64], &[8]], [64, 8]),
    ]
}

// ---------------------------------------------------------------------------
// A grid or program id the launch cannot have.

#[kernel]
fn third_axis(x: Tensor<f32>) {
    let t = tl::load(x.all(), x.shape());
    let _ = tl::program_id(3); // error: grid axis
    tl::store(x.all(), &t);
}

#[test]
fn grids_and_program_ids_outside_the_launch_are_refused() {
    let args = KernelArgs::new().with(
        "x",
        ArgValue::Tensor {
            va: 0x1000_0000_0000,
            dtype: DType::F32,
            shape: [8, 64],
        },
    );
    let usage = |grid: &[u32], pid: &[u32]| {
        let e = kernbench::tl::trace(&third_axis, &args, grid, pid).unwrap_err();
        let TraceErrorKind::Invalid(u) = e.kind else {
            panic!("{e:?}");
        };
        (*u, e.loc.map(|l| l.line))
    };
    let grid = UsageError::Grid {
        grid: vec![1, 1, 1, 1],
    };
    assert_eq!(usage(&[1, 1, 1, 1], &[0, 0, 0, 0]), (grid, None));
    let grid = UsageError::Grid { grid: vec![2, 0] };
    assert_eq!(usage(&[2, 0], &[0, 0]), (grid, None));
    let pid = UsageError::ProgramId {
        pid: vec![2],
        grid: vec![2],
    };
    assert_eq!(usage(&[2], &[2]), (pid, None));
    let axis = UsageError::GridAxis { axis: 3 };
    assert_eq!(usage(&[2], &[1]), (axis, Some(line_of("error: grid axis"))));
}
