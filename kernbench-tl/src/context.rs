//! The tracing context: one program instance at a time per thread.

use crate::kernel::Kernel;
use kernbench_core::ir::{
    ArgError, ArgValue, CommandGraph, GraphBuilder, GraphHeader, KernelArgs, ParamKind, SrcLoc,
    TraceError, TraceErrorKind, TraceLimits, UsageError,
};
use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::Once;

pub(crate) struct TraceCtx {
    pub(crate) builder: GraphBuilder,
    pub(crate) grid: Vec<u32>,
    pub(crate) pid: Vec<u32>,
}

thread_local! {
    static CTX: RefCell<Option<TraceCtx>> = const { RefCell::new(None) };
    static FAILED: RefCell<Option<TraceError>> = const { RefCell::new(None) };
    /// Traces under way on this thread (a kernel body may trace another).
    static TRACING: Cell<u32> = const { Cell::new(0) };
    /// Where a kernel body panicked, and its message, as the panic hook saw them.
    static PANICKED: RefCell<Option<(Option<SrcLoc>, String)>> = const { RefCell::new(None) };
}

/// Installs, once per process, a panic hook that keeps quiet about panics
/// raised while a kernel is traced on the current thread and records their
/// location and message instead: [`trace_with`] turns such a panic into one
/// [`TraceError`] at that line, so a launch over many PEs reports it once
/// rather than printing it for every instance. Other panics go to the hook
/// that was installed before.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let tracing = TRACING.try_with(|t| t.get() > 0).unwrap_or(false);
            if !tracing {
                return previous(info);
            }
            let at = info.location().map(|l| SrcLoc {
                file: Cow::Owned(l.file().to_string()),
                line: l.line(),
                col: l.column(),
            });
            let payload = info.payload();
            let msg = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("a panic without a message");
            let _ = PANICKED.try_with(|p| {
                if let Ok(mut p) = p.try_borrow_mut() {
                    *p = Some((at, msg.to_string()));
                }
            });
        }));
    });
}

/// The payload that unwinds a trace after its first error (never seen by users:
/// [`trace`] catches it and returns the error; `resume_unwind` runs no panic hook).
struct TraceAbort;

/// The caller's location, for `#[track_caller]` functions.
#[track_caller]
pub(crate) fn loc() -> SrcLoc {
    SrcLoc::from_location(std::panic::Location::caller())
}

/// Stops the trace with an error at a kernel line.
pub(crate) fn fail(kind: TraceErrorKind, l: &SrcLoc) -> ! {
    let kernel = CTX.with(|c| {
        c.borrow()
            .as_ref()
            .map(|t| t.builder.kernel().to_string())
            .unwrap_or_default()
    });
    abort(TraceError {
        kernel,
        loc: Some(l.clone()),
        kind,
    })
}

fn abort(e: TraceError) -> ! {
    FAILED.with(|f| *f.borrow_mut() = Some(e));
    resume_unwind(Box::new(TraceAbort))
}

fn with_ctx<R>(f: impl FnOnce(&mut TraceCtx) -> Result<R, TraceError>) -> R {
    let r = CTX.with(|c| {
        let mut b = c.borrow_mut();
        match b.as_mut() {
            Some(ctx) => f(ctx),
            None => panic!(
                "a tl:: function was called outside a kernel trace; kernels run through \
                 kernbench_tl::trace or a launch, not by calling their body"
            ),
        }
    });
    match r {
        Ok(v) => v,
        Err(e) => abort(e),
    }
}

/// Runs `f` on the current trace's graph builder; an error ends the trace.
pub(crate) fn with_builder<R>(f: impl FnOnce(&mut GraphBuilder) -> Result<R, TraceError>) -> R {
    with_ctx(|c| f(&mut c.builder))
}

/// The grid position and size of the instance being traced.
pub(crate) fn grid_query(axis: usize, l: &SrcLoc, pid: bool) -> usize {
    with_ctx(|c| {
        let v = if pid { &c.pid } else { &c.grid };
        match v.get(axis) {
            Some(x) => Ok(*x as usize),
            None if axis < 3 => Ok(if pid { 0 } else { 1 }),
            None => Err(c.builder.error(
                TraceErrorKind::Invalid(Box::new(UsageError::GridAxis { axis })),
                l,
            )),
        }
    })
}

fn header<K: Kernel + ?Sized>(
    kernel: &K,
    args: &KernelArgs,
    grid: &[u32],
    pid: &[u32],
) -> GraphHeader {
    let meta = kernel.meta();
    let params = meta
        .params
        .iter()
        .map(|p| {
            let v = args.get(p.name);
            // A generic parameter's element type is its buffer's.
            let dtype = match v {
                Some(ArgValue::Ptr { dtype, .. } | ArgValue::Tensor { dtype, .. })
                    if p.generic.is_some() =>
                {
                    Some(*dtype)
                }
                _ => p.dtype,
            };
            let dtype = dtype.map(|d| d.name()).unwrap_or("?");
            match (p.kind, v) {
                (ParamKind::Ptr, _) => format!("{}: ptr<{dtype}>", p.name),
                (ParamKind::Tensor, Some(ArgValue::Tensor { shape, .. })) => {
                    format!("{}: tensor<{dtype},[{},{}]>", p.name, shape[0], shape[1])
                }
                (ParamKind::Tensor, _) => format!("{}: tensor<{dtype}>", p.name),
                (kind, v) => {
                    let val = match v {
                        Some(ArgValue::Int(i)) => usize::try_from(*i)
                            .ok()
                            .and_then(|c| p.variants.get(c))
                            .map_or_else(|| i.to_string(), |n| n.to_string()),
                        Some(ArgValue::Float(f)) => format!("{f:?}"),
                        Some(ArgValue::Bool(b)) => b.to_string(),
                        _ => "?".to_string(),
                    };
                    if kind == ParamKind::Constexpr {
                        format!("const {} = {val}", p.name)
                    } else {
                        format!("{} = {val}", p.name)
                    }
                }
            }
        })
        .collect();
    GraphHeader {
        kernel: meta.name.to_string(),
        params,
        grid: grid.to_vec(),
        pid: pid.to_vec(),
    }
}

/// Traces a kernel given by reference (what `Program::trace` of a kernel calls).
pub fn trace_program<K: Kernel + ?Sized>(
    kernel: &K,
    args: &KernelArgs,
    grid: &[u32],
    pid: &[u32],
) -> Result<CommandGraph, TraceError> {
    trace_with(kernel, args, grid, pid, TraceLimits::default())
}

/// Traces one program instance at grid position `pid` of `grid` under `args`.
pub fn trace(
    kernel: &dyn Kernel,
    args: &KernelArgs,
    grid: &[u32],
    pid: &[u32],
) -> Result<CommandGraph, TraceError> {
    trace_with(kernel, args, grid, pid, TraceLimits::default())
}

/// [`trace`] with explicit limits.
pub fn trace_with<K: Kernel + ?Sized>(
    kernel: &K,
    args: &KernelArgs,
    grid: &[u32],
    pid: &[u32],
    limits: TraceLimits,
) -> Result<CommandGraph, TraceError> {
    let meta = kernel.meta();
    let launch_err = |kind| TraceError {
        kernel: meta.name.to_string(),
        loc: None,
        kind,
    };
    if grid.is_empty() || grid.len() > 3 || grid.contains(&0) {
        return Err(launch_err(TraceErrorKind::Invalid(Box::new(
            UsageError::Grid {
                grid: grid.to_vec(),
            },
        ))));
    }
    if pid.len() != grid.len() || pid.iter().zip(grid).any(|(p, g)| p >= g) {
        return Err(launch_err(TraceErrorKind::Invalid(Box::new(
            UsageError::ProgramId {
                pid: pid.to_vec(),
                grid: grid.to_vec(),
            },
        ))));
    }
    for (name, _) in args.iter() {
        if !meta.params.iter().any(|p| p.name == name) {
            return Err(launch_err(TraceErrorKind::Arg {
                param: name.to_string(),
                err: Box::new(ArgError::Unknown {
                    known: meta.params.iter().map(|p| p.name.to_string()).collect(),
                }),
            }));
        }
    }
    let ctx = TraceCtx {
        builder: GraphBuilder::new(header(kernel, args, grid, pid), limits),
        grid: grid.to_vec(),
        pid: pid.to_vec(),
    };
    install_panic_hook();
    let previous = CTX.with(|c| c.borrow_mut().replace(ctx));
    TRACING.with(|t| t.set(t.get() + 1));
    let result = catch_unwind(AssertUnwindSafe(|| kernel.run_body(args)));
    TRACING.with(|t| t.set(t.get() - 1));
    let panicked = PANICKED.with(|p| p.borrow_mut().take());
    let ctx = CTX.with(|c| std::mem::replace(&mut *c.borrow_mut(), previous));
    match result {
        Ok(Ok(())) => Ok(ctx.expect("trace context present").builder.finish()),
        Ok(Err(e)) => Err(e),
        Err(payload) => {
            if payload.is::<TraceAbort>() {
                Err(FAILED
                    .with(|f| f.borrow_mut().take())
                    .expect("an aborted trace leaves its error"))
            } else {
                Err(panic_error(meta, payload.as_ref(), panicked))
            }
        }
    }
}

/// The error of a kernel body that panicked: at the line of the panic (from
/// the panic hook), or at the kernel's definition when that is unknown.
fn panic_error(
    meta: &crate::kernel::KernelMeta,
    payload: &(dyn std::any::Any + Send),
    panicked: Option<(Option<SrcLoc>, String)>,
) -> TraceError {
    let (at, msg) = panicked.unwrap_or_else(|| {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_string());
        (None, msg)
    });
    let defined = SrcLoc {
        file: Cow::Borrowed(meta.file),
        line: meta.line,
        col: 1,
    };
    let (loc, defined_at) = match at {
        Some(at) if at.file == defined.file => (at, None),
        Some(at) => (at, Some(Box::new(defined))),
        None => (defined, None),
    };
    TraceError {
        kernel: meta.name.to_string(),
        loc: Some(loc),
        kind: TraceErrorKind::Panicked {
            message: msg,
            defined_at,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::KernelMeta;

    static META: KernelMeta = KernelMeta {
        name: "k",
        generics: &[],
        params: &[],
        file: "src/k.rs",
        line: 7,
        module: "crate",
        doc: "",
    };

    fn at(file: &'static str, line: u32) -> Option<SrcLoc> {
        Some(SrcLoc {
            file: Cow::Borrowed(file),
            line,
            col: 5,
        })
    }

    #[test]
    fn a_panic_names_its_line_and_the_kernel_when_it_is_elsewhere() {
        let e = panic_error(&META, &"x", Some((at("src/k.rs", 9), "boom".into())));
        assert_eq!(
            e.to_string(),
            "kernel `k` at src/k.rs:9:5: the kernel body panicked: boom"
        );
        let panicked = |defined_at: Option<SrcLoc>| TraceErrorKind::Panicked {
            message: "boom".into(),
            defined_at: defined_at.map(Box::new),
        };
        assert_eq!(e.kind, panicked(None));
        let e = panic_error(&META, &"x", Some((at("src/util.rs", 40), "boom".into())));
        assert_eq!(
            e.to_string(),
            "kernel `k` at src/util.rs:40:5: the kernel body panicked in code it calls: boom \
             (kernel defined at src/k.rs:7)"
        );
        let defined = SrcLoc {
            file: Cow::Borrowed("src/k.rs"),
            line: 7,
            col: 1,
        };
        assert_eq!(e.kind, panicked(Some(defined)));
        // Without the hook's record: the payload, at the kernel's definition.
        let e = panic_error(&META, &String::from("late"), None);
        assert_eq!(
            e.to_string(),
            "kernel `k` at src/k.rs:7:1: the kernel body panicked: late"
        );
    }
}
