//! Kernels written with `#[kernel]` and `#[kernel_fn]`, traced.

use kernbench_tl::prelude::*;
use kernbench_tl::{ArgError, Expected, Kernel, ParamKind, TraceError};

/// Each PE sends its slice east and stores what arrives from the west.
#[kernel]
pub fn hello_send(t: Ptr<f16>, n_elem: usize) {
    let rank = tl::program_id(1) * tl::num_programs(0) + tl::program_id(0);
    let x = tl::load(t.offset(rank * n_elem), [n_elem]);
    tl::send(Dir::E, &x);
    let y = tl::recv::<f16>(Dir::W, [n_elem]);
    tl::store(t.offset(rank * n_elem), &y);
}

/// Doubles one block of `x` into `y`, through a helper.
#[kernel]
fn scaled_copy(x: Ptr<f32>, y: Ptr<f32>, #[constexpr] block: usize) {
    let pid = tl::program_id(0);
    if block == 0 {
        return;
    }
    let t = tl::load(x.offset(pid * block), [block]);
    tl::store(y.offset(pid * block), &double(&t));
}

/// A helper kernels call.
#[kernel_fn]
fn double(t: &Tile<f32>) -> Tile<f32> {
    t * 2.0
}

const VA: u64 = 0x1000_0000_0000;

fn hello_args() -> KernelArgs {
    KernelArgs::new()
        .with(
            "t",
            ArgValue::Ptr {
                va: VA,
                dtype: DType::F16,
                len: 16 * 1024,
            },
        )
        .int("n_elem", 1024)
}

/// The 1-based line of this file that contains `needle`.
fn line_of(needle: &str) -> usize {
    include_str!("macro_expand.rs")
        .lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .expect("needle in this file")
}

#[test]
fn hello_send_traces_with_its_source_lines() {
    let g = kernbench_tl::trace(&hello_send, &hello_args(), &[8, 2], &[3, 1]).unwrap();
    let text = g.to_text();
    let send = text.lines().find(|l| l.contains("send E")).expect("a send");
    assert!(send.contains(": 2048 B"), "{text}");
    let at = format!("macro_expand.rs:{}", line_of("tl::send(Dir::E, &x);"));
    assert!(send.ends_with(&at), "{send} should end with {at}");
    insta::assert_snapshot!(text);
}

#[test]
fn metadata_describes_the_kernel() {
    let m = hello_send.meta();
    assert_eq!(m.name, "hello_send");
    assert_eq!(
        m.doc,
        "Each PE sends its slice east and stores what arrives from the west."
    );
    assert!(m.file.ends_with("macro_expand.rs"), "{}", m.file);
    assert_eq!(m.line as usize, line_of("pub fn hello_send("));
    let params: Vec<_> = m
        .params
        .iter()
        .map(|p| (p.name, p.kind, p.dtype, p.ty))
        .collect();
    assert_eq!(
        params,
        [
            ("t", ParamKind::Ptr, Some(DType::F16), "Ptr<f16>"),
            ("n_elem", ParamKind::Scalar, None, "usize"),
        ]
    );
    let kinds: Vec<_> = scaled_copy.meta().params.iter().map(|p| p.kind).collect();
    assert_eq!(
        kinds,
        [ParamKind::Ptr, ParamKind::Ptr, ParamKind::Constexpr]
    );
}

#[test]
fn constexpr_parameters_are_in_the_header_and_helpers_are_callable() {
    let args = KernelArgs::new()
        .with(
            "x",
            ArgValue::Ptr {
                va: VA,
                dtype: DType::F32,
                len: 256,
            },
        )
        .with(
            "y",
            ArgValue::Ptr {
                va: VA + 0x10_0000,
                dtype: DType::F32,
                len: 256,
            },
        )
        .int("block", 64);
    let g = kernbench_tl::trace(&scaled_copy, &args, &[4], &[2]).unwrap();
    let text = g.to_text();
    assert!(
        text.lines().next().unwrap().contains("const block = 64"),
        "{text}"
    );
    let mul = text
        .lines()
        .find(|l| l.contains("mul"))
        .expect("the helper's multiply");
    assert!(
        mul.ends_with(&format!("macro_expand.rs:{}", line_of("t * 2.0"))),
        "{text}"
    );
    insta::assert_snapshot!(text);

    // `return` in a kernel body works: a zero block records nothing.
    let g = kernbench_tl::trace(&scaled_copy, &args.int("block", 0), &[4], &[2]).unwrap();
    assert_eq!(g.to_text().lines().count(), 1, "{}", g.to_text());
}

fn arg_error(kernel: &dyn Kernel, args: &KernelArgs) -> TraceError {
    kernbench_tl::trace(kernel, args, &[8, 2], &[3, 1]).unwrap_err()
}

#[test]
fn a_missing_argument_names_the_parameter() {
    let args = KernelArgs::new().int("n_elem", 1024);
    let e = arg_error(&hello_send, &args);
    let msg = e.to_string();
    assert!(msg.contains("`t`") && msg.contains("missing"), "{msg}");
    assert_eq!(
        e.kind,
        kernbench_tl::kernbench_core::ir::TraceErrorKind::Arg {
            param: "t".into(),
            err: Box::new(ArgError::Missing {
                kind: ParamKind::Ptr
            }),
        }
    );

    let args = KernelArgs::new()
        .with(
            "x",
            ArgValue::Ptr {
                va: VA,
                dtype: DType::F32,
                len: 256,
            },
        )
        .with(
            "y",
            ArgValue::Ptr {
                va: VA,
                dtype: DType::F32,
                len: 256,
            },
        );
    let msg = arg_error(&scaled_copy, &args).to_string();
    assert!(
        msg.contains("`block`") && msg.contains("constexpr"),
        "{msg}"
    );
}

#[test]
fn a_wrong_kind_of_argument_names_the_parameter() {
    let args = hello_args().int("t", 7);
    let e = arg_error(&hello_send, &args);
    assert_eq!(
        e.to_string(),
        "kernel `hello_send`: argument `t`: expected a pointer to f16, got the integer 7"
    );
    assert_eq!(
        e.kind,
        kernbench_tl::kernbench_core::ir::TraceErrorKind::Arg {
            param: "t".into(),
            err: Box::new(ArgError::Expected {
                expected: Expected::Pointer(DType::F16),
                got: ArgValue::Int(7),
            }),
        }
    );

    let args = hello_args().with("n_elem", ArgValue::Bool(true));
    let e = arg_error(&hello_send, &args);
    assert_eq!(
        e.to_string(),
        "kernel `hello_send`: argument `n_elem`: expected an integer (usize), got the boolean true"
    );
    assert_eq!(
        e.kind,
        kernbench_tl::kernbench_core::ir::TraceErrorKind::Arg {
            param: "n_elem".into(),
            err: Box::new(ArgError::Expected {
                expected: Expected::Integer("usize"),
                got: ArgValue::Bool(true),
            }),
        }
    );
}

#[test]
fn kernels_are_registered() {
    let names: Vec<&str> = kernbench_tl::registered_kernels()
        .iter()
        .map(|k| k.meta().name)
        .collect();
    assert!(
        names.contains(&"hello_send") && names.contains(&"scaled_copy"),
        "{names:?}"
    );
    let k = kernbench_tl::find_kernel("hello_send").expect("registered");
    assert_eq!(k.meta().params.len(), 2);
}
