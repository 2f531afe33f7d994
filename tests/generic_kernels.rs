//! Generic kernels: one `#[kernel] fn k<T: Element>(x: Ptr<T>, ..)` serves
//! every element type, which the launch's buffers give; enum-valued
//! `#[constexpr]` parameters; and the typed argument builder.

use kernbench::ccl::algorithms::ring_allreduce;
use kernbench::ccl::RedOp;
use kernbench::core::ir::{ArgError, Expected, ParamKind, TraceErrorKind};
use kernbench::kernels::gemm;
use kernbench::prelude::*;
use kernbench::tl::{Kernel, KernelEnum};

mod common;
use common::Bench;

/// How `axpy` combines: a `#[constexpr]` enum.
#[derive(Clone, Copy, Debug, PartialEq, KernelEnum)]
enum Combine {
    Add,
    Sub,
}

/// `y = a * x (+ or -) y` over `n` elements, in the buffers' element type.
#[kernel]
fn axpy<T: Element>(x: Ptr<T>, y: Ptr<T>, a: f64, n: usize, #[constexpr] how: Combine) {
    let vx = tl::load(x, [n]);
    let vy = tl::load(y, [n]);
    let out = if how == Combine::Add {
        vx * a + vy
    } else {
        vx * a - vy
    };
    tl::store(y, &out);
}

/// Copies `n` elements of `src` into `dst`, converting between two element types.
#[kernel]
fn convert<S: Element, D: Element>(src: Ptr<S>, dst: Ptr<D>, n: usize) {
    tl::store(dst, &tl::load(src, [n]).cast::<D>());
}

fn ptr(va: u64, dtype: DType, len: usize) -> ArgValue {
    ArgValue::Ptr { va, dtype, len }
}

fn axpy_args(tx: DType, ty: DType) -> KernelArgs {
    KernelArgs::new()
        .with("x", ptr(0x1000_0000, tx, 64))
        .with("y", ptr(0x2000_0000, ty, 64))
        .float("a", 2.0)
        .int("n", 64)
        .int("how", 1)
}

fn trace(k: &dyn Kernel, args: &KernelArgs, grid: &[u32], pid: &[u32]) -> String {
    kernbench::tl::trace(k, args, grid, pid).unwrap().to_text()
}

/// A graph's text with element type `t` written `T` and message sizes `N B`.
fn modulo(text: &str, t: &str) -> String {
    text.lines()
        .map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            (0..words.len())
                .map(|i| match words.get(i + 1) {
                    Some(&"B") if words[i].parse::<u64>().is_ok() => "N".to_string(),
                    _ => words[i].replace(t, "T"),
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn one_kernel_traces_every_element_type_to_the_same_graph() {
    let f32_text = trace(&axpy, &axpy_args(DType::F32, DType::F32), &[1], &[0]);
    let f16_text = trace(&axpy, &axpy_args(DType::F16, DType::F16), &[1], &[0]);
    assert!(
        f32_text
            .starts_with("kernel axpy(x: ptr<f32>, y: ptr<f32>, a = 2.0, n = 64, const how = sub)"),
        "{f32_text}"
    );
    assert!(f16_text.contains("tile<f16,[64]>"), "{f16_text}");
    assert!(!f16_text.contains("f32"), "{f16_text}");
    assert_eq!(modulo(&f32_text, "f32"), modulo(&f16_text, "f16"));

    // A shipped collective: one kernel for f32 and f16, the same commands.
    let args = |d: DType| {
        KernelArgs::new()
            .with("buf", ptr(0x1000_0000, d, 30))
            .int("n", 10)
            .int("seg", 2)
            .int("op", RedOp::Max.code())
    };
    let a = trace(&ring_allreduce, &args(DType::F32), &[3], &[1]);
    let b = trace(&ring_allreduce, &args(DType::F16), &[3], &[1]);
    assert!(a.contains("const op = max"), "{a}");
    assert!(a.contains(" = max %"), "{a}");
    assert_eq!(modulo(&a, "f32"), modulo(&b, "f16"));
    assert_ne!(a, b);
}

#[test]
fn pointers_of_one_type_parameter_must_agree() {
    let e =
        kernbench::tl::trace(&axpy, &axpy_args(DType::F32, DType::F16), &[1], &[0]).unwrap_err();
    let TraceErrorKind::Arg { param, err } = &e.kind else {
        panic!("not an argument error: {e}");
    };
    assert_eq!(param, "y");
    assert_eq!(
        **err,
        ArgError::ElemMismatch {
            dtype: DType::F16,
            ty: "Ptr<T>".into(),
            other: "x".into(),
            other_ty: "Ptr<T>".into(),
            other_dtype: DType::F32,
            generic: "T".into(),
        }
    );
    assert_eq!(
        err.message(param),
        "its buffer holds f16 but `x` holds f32: `x: Ptr<T>` and `y: Ptr<T>` share the \
         element type `T`, so their buffers must have one element type"
    );
    assert!(e.to_string().starts_with("kernel `axpy`"), "{e}");

    // No buffer gives `T`.
    let none = KernelArgs::new().float("a", 1.0).int("n", 4).int("how", 0);
    let e = kernbench::tl::trace(&axpy, &none, &[1], &[0]).unwrap_err();
    assert!(
        e.to_string().contains(
            "argument `x`: missing; the kernel takes a pointer `x: Ptr<T>`, whose buffer gives \
             the element type `T`"
        ),
        "{e}"
    );
    // A scalar where the pointer that gives `T` goes.
    let bad = axpy_args(DType::F32, DType::F32).int("x", 3);
    let e = kernbench::tl::trace(&axpy, &bad, &[1], &[0]).unwrap_err();
    assert!(
        e.to_string()
            .contains("argument `x`: expected a pointer (`Ptr<T>`), got"),
        "{e}"
    );
}

#[test]
fn a_bound_on_the_accumulator_refuses_other_types_at_launch() {
    let t = |d: DType, va: u64| ArgValue::Tensor {
        va,
        dtype: d,
        shape: [16, 16],
    };
    let args = |d: DType| {
        KernelArgs::new()
            .with("a", t(d, 0x1000_0000))
            .with("b", t(d, 0x2000_0000))
            .with("c", t(DType::F32, 0x3000_0000))
    };
    for d in [DType::F32, DType::F16, DType::Bf16] {
        kernbench::tl::trace(&gemm, &args(d), &[1], &[0]).unwrap();
    }
    let e = kernbench::tl::trace(&gemm, &args(DType::I32), &[1], &[0]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "kernel `gemm`: argument `a`: its buffer holds i32, which the kernel does not take: \
         `T: Element<Acc = f32>` is one of f32, f16, bf16"
    );
}

#[test]
fn two_type_parameters_are_bound_each_from_its_own_buffer() {
    let args = KernelArgs::new()
        .with("src", ptr(0x1000_0000, DType::F16, 8))
        .with("dst", ptr(0x2000_0000, DType::F32, 8))
        .int("n", 8);
    let text = trace(&convert, &args, &[1], &[0]);
    assert!(text.contains("load src[+0] : tile<f16,[8]>"), "{text}");
    assert!(text.contains("cast %0 : tile<f32,[8]>"), "{text}");
    assert_eq!(convert.meta().generics, ["S", "D"]);
}

#[test]
fn an_enum_parameter_takes_its_codes_only() {
    assert_eq!(Combine::NAMES, ["add", "sub"]);
    assert_eq!(Combine::from_code(1), Some(Combine::Sub));
    let e = kernbench::tl::trace(
        &axpy,
        &axpy_args(DType::F32, DType::F32).int("how", 2),
        &[1],
        &[0],
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("argument `how`: 2 is not a `Combine`: its codes are 0..2 (add, sub)"),
        "{e}"
    );
    let e = kernbench::tl::trace(
        &axpy,
        &axpy_args(DType::F32, DType::F32).float("how", 0.5),
        &[1],
        &[0],
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("argument `how`: expected a `Combine` (add, sub), got"),
        "{e}"
    );
}

#[test]
fn the_typed_builder_launches_a_generic_kernel_in_every_type() {
    let xs: Vec<f32> = (0..32).map(|i| i as f32 * 0.25).collect();
    let ys: Vec<f32> = (0..32).map(|i| 8.0 - i as f32).collect();
    for d in [DType::F32, DType::F16, DType::Bf16, DType::I32] {
        let mut b = Bench::new();
        let xs: Vec<f32> = xs.iter().map(|v| d.round(v.floor())).collect();
        let (x, y) = (b.buf(d, &xs), b.buf(d, &ys));
        let args = axpy::args().x(&x).y(&y).a(3.0).n(32).how(Combine::Add);
        let pe = b.pe;
        simulate(&mut b.m, &Launch::new(&axpy, args, vec![pe])).unwrap();
        let got = b.m.read_buffer(&y).unwrap();
        for i in 0..32 {
            assert_eq!(got[i], d.round(3.0 * xs[i] + ys[i]), "{d} element {i}");
        }
    }
}

/// The argument error of tracing `k` with `args`: its parameter and what is wrong.
fn arg_error(k: &dyn Kernel, args: &KernelArgs) -> (String, ArgError) {
    let e = kernbench::tl::trace(k, args, &[1], &[0]).unwrap_err();
    match e.kind {
        TraceErrorKind::Arg { param, err } => (param, *err),
        other => panic!("not an argument error: {other}"),
    }
}

#[test]
fn each_argument_error_names_what_the_parameter_takes_and_what_it_got() {
    let ok = || axpy_args(DType::F32, DType::F32);
    let none = KernelArgs::new().float("a", 1.0).int("n", 4).int("how", 0);
    let cases: Vec<(KernelArgs, &str, ArgError)> = vec![
        (
            ok().with("x", ArgValue::Int(3)),
            "x",
            ArgError::Expected {
                expected: Expected::Param {
                    kind: ParamKind::Ptr,
                    ty: "Ptr<T>".into(),
                },
                got: ArgValue::Int(3),
            },
        ),
        (
            none.clone(),
            "x",
            ArgError::MissingGeneric {
                kind: ParamKind::Ptr,
                ty: "Ptr<T>".into(),
                generic: "T".into(),
            },
        ),
        (
            ok().int("n", -1),
            "n",
            ArgError::IntRange {
                value: -1,
                ty: "usize",
            },
        ),
        (
            ok().with("a", ArgValue::Bool(true)),
            "a",
            ArgError::Expected {
                expected: Expected::Number("f64"),
                got: ArgValue::Bool(true),
            },
        ),
        (
            ok().int("how", 7),
            "how",
            ArgError::EnumCode {
                value: 7,
                ty: "Combine".into(),
                names: Combine::NAMES,
            },
        ),
        (
            ok().float("how", 0.5),
            "how",
            ArgError::Expected {
                expected: Expected::Enum {
                    ty: "Combine".into(),
                    names: Combine::NAMES,
                },
                got: ArgValue::Float(0.5),
            },
        ),
        (
            ok().int("z", 1),
            "z",
            ArgError::Unknown {
                known: ["x", "y", "a", "n", "how"].map(String::from).to_vec(),
            },
        ),
    ];
    for (args, param, want) in cases {
        let (p, err) = arg_error(&axpy, &args);
        assert_eq!((p.as_str(), &err), (param, &want));
        assert_eq!(
            err.is_missing(),
            matches!(want, ArgError::MissingGeneric { .. })
        );
    }

    // A concrete pointer, a tensor, a boolean, a missing scalar.
    let (p, err) = arg_error(&gemm, &KernelArgs::new().int("a", 1));
    assert_eq!(p, "a");
    assert!(
        matches!(
            err,
            ArgError::Expected {
                expected: Expected::Param {
                    kind: ParamKind::Tensor,
                    ..
                },
                got: ArgValue::Int(1),
            }
        ),
        "{err:?}"
    );
    let t = |d: DType| ArgValue::Tensor {
        va: 0x1000_0000,
        dtype: d,
        shape: [16, 16],
    };
    let args = KernelArgs::new()
        .with("a", t(DType::I32))
        .with("b", t(DType::I32))
        .with("c", t(DType::F32));
    let (p, err) = arg_error(&gemm, &args);
    assert_eq!(p, "a");
    assert!(
        matches!(
            err,
            ArgError::ElemRefused {
                dtype: DType::I32,
                ..
            }
        ),
        "{err:?}"
    );
    let args = KernelArgs::new()
        .with("a", t(DType::F32))
        .with("b", t(DType::F32))
        .with("c", ptr(0x3000_0000, DType::F32, 256));
    let (p, err) = arg_error(&gemm, &args);
    assert_eq!(p, "c");
    assert_eq!(
        err,
        ArgError::Expected {
            expected: Expected::Tensor(DType::F32),
            got: ptr(0x3000_0000, DType::F32, 256),
        }
    );
    let (p, err) = arg_error(&flag, &KernelArgs::new().int("on", 1));
    assert_eq!(p, "on");
    assert_eq!(
        err,
        ArgError::Expected {
            expected: Expected::Boolean,
            got: ArgValue::Int(1),
        }
    );
    let (p, err) = arg_error(&flag, &KernelArgs::new());
    assert_eq!(p, "on");
    assert_eq!(
        err,
        ArgError::Missing {
            kind: ParamKind::Scalar
        }
    );
    assert!(err.is_missing());
}

/// A kernel of one boolean parameter.
#[kernel]
fn flag(on: bool) {
    let _ = on;
}
