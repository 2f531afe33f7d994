//! What `#[kernel]` generates against: kernel metadata, parameter binding, registration.

use kernbench_core::ir::{
    ArgError, ArgValue, Expected, KernelArgs, ParamKind, TraceError, TraceErrorKind,
};
use kernbench_core::DType;

/// One parameter of a kernel.
#[derive(Debug)]
pub struct ParamMeta {
    /// Its name.
    pub name: &'static str,
    /// Pointer, tensor, scalar or constexpr.
    pub kind: ParamKind,
    /// Element type for pointers and tensors; `None` for scalars and for
    /// pointers and tensors whose element type is a type parameter of the
    /// kernel (see [`ParamMeta::generic`]).
    pub dtype: Option<DType>,
    /// The type parameter that is this pointer's or tensor's element type
    /// (`"T"` for `x: Ptr<T>`): the launch's buffer gives its type.
    pub generic: Option<&'static str>,
    /// The names of an enum parameter's values, in the order of their codes
    /// (`["sum", "max", "min"]`); empty for other parameters.
    pub variants: &'static [&'static str],
    /// The Rust type as written.
    pub ty: &'static str,
}

/// What `#[kernel]` records about a kernel.
#[derive(Debug)]
pub struct KernelMeta {
    /// The kernel's name.
    pub name: &'static str,
    /// Its type parameters (`["T"]` for `fn k<T: Element>(..)`), each bound
    /// at launch to the element type of the buffers its pointers get.
    pub generics: &'static [&'static str],
    /// Parameters in order.
    pub params: &'static [ParamMeta],
    /// The file that defines it.
    pub file: &'static str,
    /// The line of its definition.
    pub line: u32,
    /// The module path of its definition (`kernbench::kernels`, `my_app::ops`):
    /// its first segment names the crate that defines it.
    pub module: &'static str,
    /// Its doc comment.
    pub doc: &'static str,
}

/// A kernel: metadata plus a body that can be traced for one program instance.
///
/// Implemented by the unit struct `#[kernel]` generates; use [`crate::trace`] to trace it.
pub trait Kernel: kernbench_core::program::Program + Sync {
    /// The kernel's metadata.
    fn meta(&self) -> &'static KernelMeta;
    /// Binds the arguments and runs the body once. Called by [`crate::trace`]
    /// inside a tracing context; not meant to be called directly.
    #[doc(hidden)]
    fn run_body(&self, args: &KernelArgs) -> Result<(), TraceError>;
}

/// A registration of a kernel, collected with `inventory`.
pub struct KernelEntry {
    /// The kernel.
    pub kernel: &'static dyn Kernel,
}

inventory::collect!(KernelEntry);

/// A type a kernel parameter may have.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a kernel parameter",
    label = "not a kernel parameter type",
    note = "a kernel takes `Ptr<T>`, `Tensor<T>`, an integer, a float, a `bool`, or an enum with `#[derive(KernelEnum)]`"
)]
pub trait KernelParam: Sized {
    /// Pointer, tensor or scalar.
    const KIND: ParamKind;
    /// Element type of pointers and tensors.
    const DTYPE: Option<DType>;
    /// The names of an enum's values, in the order of their codes; empty for
    /// other types.
    const VARIANTS: &'static [&'static str] = &[];
    /// What a kernel's typed argument builder takes for a parameter of this
    /// type: `&Buffer` for a pointer, `(&Buffer, [rows, cols])` for a tensor,
    /// the value itself for a scalar.
    type Input<'a>;
    /// The launch argument for a builder's input.
    fn input(v: Self::Input<'_>) -> ArgValue;
    /// Binds a launch argument, or says what is wrong with it.
    fn from_arg(index: u16, name: &'static str, v: &ArgValue) -> Result<Self, ArgError>;
}

/// Binds parameter `index` named `name` from the launch arguments.
pub fn bind_param<P: KernelParam>(
    args: &KernelArgs,
    kernel: &'static KernelMeta,
    index: u16,
    name: &'static str,
) -> Result<P, TraceError> {
    let err = |err: ArgError| TraceError {
        kernel: kernel.name.to_string(),
        loc: None,
        kind: TraceErrorKind::Arg {
            param: name.to_string(),
            err: Box::new(err),
        },
    };
    let v = args.get(name).ok_or_else(|| {
        let kind = kernel
            .params
            .get(index as usize)
            .map(|p| p.kind)
            .unwrap_or(P::KIND);
        err(ArgError::Missing { kind })
    })?;
    P::from_arg(index, name, v).map_err(err)
}

/// The element type a launch gives type parameter `generic` of a kernel: the
/// element type of the buffers passed to the pointers and tensors of that
/// element type, which must agree. An error names the parameters that differ.
pub fn bind_elem(
    args: &KernelArgs,
    kernel: &'static KernelMeta,
    generic: &'static str,
) -> Result<DType, TraceError> {
    let err = |param: &str, err: ArgError| TraceError {
        kernel: kernel.name.to_string(),
        loc: None,
        kind: TraceErrorKind::Arg {
            param: param.to_string(),
            err: Box::new(err),
        },
    };
    let mut bound: Option<(&'static ParamMeta, DType)> = None;
    let mut first = None;
    for p in kernel.params.iter().filter(|p| p.generic == Some(generic)) {
        first.get_or_insert(p);
        let Some(v) = args.get(p.name) else { continue };
        let dtype = match (p.kind, v) {
            (ParamKind::Ptr, ArgValue::Ptr { dtype, .. } | ArgValue::Tensor { dtype, .. })
            | (ParamKind::Tensor, ArgValue::Tensor { dtype, .. }) => *dtype,
            (kind, other) => {
                return Err(err(
                    p.name,
                    ArgError::Expected {
                        expected: Expected::Param {
                            kind,
                            ty: p.ty.to_string(),
                        },
                        got: other.clone(),
                    },
                ))
            }
        };
        match bound {
            None => bound = Some((p, dtype)),
            Some((q, d)) if d != dtype => {
                return Err(err(
                    p.name,
                    ArgError::ElemMismatch {
                        dtype,
                        ty: p.ty.to_string(),
                        other: q.name.to_string(),
                        other_ty: q.ty.to_string(),
                        other_dtype: d,
                        generic: generic.to_string(),
                    },
                ))
            }
            Some(_) => {}
        }
    }
    match (bound, first) {
        (Some((_, d)), _) => Ok(d),
        (None, Some(p)) => Err(err(
            p.name,
            ArgError::MissingGeneric {
                kind: p.kind,
                ty: p.ty.to_string(),
                generic: generic.to_string(),
            },
        )),
        (None, None) => Err(err(generic, ArgError::NoGenericParam)),
    }
}

/// The error of a launch whose buffers give a generic kernel's type
/// parameter a type its bound excludes.
#[doc(hidden)]
pub fn elem_refused(
    kernel: &'static KernelMeta,
    generic: &'static str,
    d: DType,
    allowed: &'static str,
) -> TraceError {
    let param = kernel
        .params
        .iter()
        .find(|p| p.generic == Some(generic))
        .map_or(generic, |p| p.name);
    TraceError {
        kernel: kernel.name.to_string(),
        loc: None,
        kind: TraceErrorKind::Arg {
            param: param.to_string(),
            err: Box::new(ArgError::ElemRefused { dtype: d, allowed }),
        },
    }
}

macro_rules! int_param {
    ($($t:ty),*) => {$(
        impl KernelParam for $t {
            const KIND: ParamKind = ParamKind::Scalar;
            const DTYPE: Option<DType> = None;
            type Input<'a> = $t;
            fn input(v: $t) -> ArgValue {
                // A value past `i64::MAX` wraps negative, and binding it back
                // fails with "does not fit".
                ArgValue::Int(v as i64)
            }
            fn from_arg(_: u16, _: &'static str, v: &ArgValue) -> Result<Self, ArgError> {
                match v {
                    ArgValue::Int(i) => <$t>::try_from(*i).map_err(|_| ArgError::IntRange {
                        value: *i,
                        ty: stringify!($t),
                    }),
                    other => Err(ArgError::Expected {
                        expected: Expected::Integer(stringify!($t)),
                        got: other.clone(),
                    }),
                }
            }
        }
    )*};
}
int_param!(usize, u32, u64, i32, i64, u16, u8, isize);

macro_rules! float_param {
    ($($t:ty),*) => {$(
        impl KernelParam for $t {
            const KIND: ParamKind = ParamKind::Scalar;
            const DTYPE: Option<DType> = None;
            type Input<'a> = $t;
            fn input(v: $t) -> ArgValue {
                ArgValue::Float(v as f64)
            }
            fn from_arg(_: u16, _: &'static str, v: &ArgValue) -> Result<Self, ArgError> {
                match v {
                    ArgValue::Float(f) => Ok(*f as $t),
                    ArgValue::Int(i) => Ok(*i as $t),
                    other => Err(ArgError::Expected {
                        expected: Expected::Number(stringify!($t)),
                        got: other.clone(),
                    }),
                }
            }
        }
    )*};
}
float_param!(f32, f64);

impl KernelParam for bool {
    const KIND: ParamKind = ParamKind::Scalar;
    const DTYPE: Option<DType> = None;
    type Input<'a> = bool;
    fn input(v: bool) -> ArgValue {
        ArgValue::Bool(v)
    }
    fn from_arg(_: u16, _: &'static str, v: &ArgValue) -> Result<Self, ArgError> {
        match v {
            ArgValue::Bool(b) => Ok(*b),
            other => Err(ArgError::Expected {
                expected: Expected::Boolean,
                got: other.clone(),
            }),
        }
    }
}

/// An enum a kernel parameter may have (usually a `#[constexpr]` one, such
/// as a reduction operator): its values are bound from their codes, `0` for
/// the first variant and so on, and named in graphs and on the command line.
///
/// Write `#[derive(KernelEnum)]` on a field-less enum; the derive implements
/// this trait and [`KernelParam`].
pub trait KernelEnum: Copy + 'static {
    /// The variants' names, in declaration order (lower-cased).
    const NAMES: &'static [&'static str];
    /// The variant of a code.
    fn from_code(code: usize) -> Option<Self>;
    /// The code of a variant: its position among the variants.
    fn code(self) -> usize;
}

/// [`KernelParam::from_arg`] of an enum: its code as an integer.
#[doc(hidden)]
pub fn enum_from_arg<E: KernelEnum>(ty: &str, v: &ArgValue) -> Result<E, ArgError> {
    match v {
        ArgValue::Int(i) => usize::try_from(*i)
            .ok()
            .and_then(E::from_code)
            .ok_or_else(|| ArgError::EnumCode {
                value: *i,
                ty: ty.to_string(),
                names: E::NAMES,
            }),
        other => Err(ArgError::Expected {
            expected: Expected::Enum {
                ty: ty.to_string(),
                names: E::NAMES,
            },
            got: other.clone(),
        }),
    }
}
