//! What `#[kernel]` generates against: kernel metadata, parameter binding, registration.

use kernbench_core::ir::{ArgValue, KernelArgs, ParamKind, TraceError, TraceErrorKind};
use kernbench_core::DType;

/// One parameter of a kernel.
#[derive(Debug)]
pub struct ParamMeta {
    /// Its name.
    pub name: &'static str,
    /// Pointer, tensor, scalar or constexpr.
    pub kind: ParamKind,
    /// Element type for pointers and tensors.
    pub dtype: Option<DType>,
    /// The Rust type as written.
    pub ty: &'static str,
}

/// What `#[kernel]` records about a kernel.
#[derive(Debug)]
pub struct KernelMeta {
    /// The kernel's name.
    pub name: &'static str,
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
pub trait KernelParam: Sized {
    /// Pointer, tensor or scalar.
    const KIND: ParamKind;
    /// Element type of pointers and tensors.
    const DTYPE: Option<DType>;
    /// Binds a launch argument, or says what is wrong with it.
    fn from_arg(index: u16, name: &'static str, v: &ArgValue) -> Result<Self, String>;
}

/// Binds parameter `index` named `name` from the launch arguments.
pub fn bind_param<P: KernelParam>(
    args: &KernelArgs,
    kernel: &'static KernelMeta,
    index: u16,
    name: &'static str,
) -> Result<P, TraceError> {
    let err = |msg: String| TraceError {
        kernel: kernel.name.to_string(),
        loc: None,
        kind: TraceErrorKind::Arg {
            param: name.to_string(),
            msg,
        },
    };
    let v = args.get(name).ok_or_else(|| {
        let kind = kernel
            .params
            .get(index as usize)
            .map(|p| p.kind)
            .unwrap_or(P::KIND);
        err(format!("missing; the kernel takes a {kind} `{name}`"))
    })?;
    P::from_arg(index, name, v).map_err(err)
}

macro_rules! int_param {
    ($($t:ty),*) => {$(
        impl KernelParam for $t {
            const KIND: ParamKind = ParamKind::Scalar;
            const DTYPE: Option<DType> = None;
            fn from_arg(_: u16, _: &'static str, v: &ArgValue) -> Result<Self, String> {
                match v {
                    ArgValue::Int(i) => <$t>::try_from(*i).map_err(|_| {
                        format!("{i} does not fit in {}", stringify!($t))
                    }),
                    other => Err(format!("expected an integer ({}), got {}", stringify!($t), other.describe())),
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
            fn from_arg(_: u16, _: &'static str, v: &ArgValue) -> Result<Self, String> {
                match v {
                    ArgValue::Float(f) => Ok(*f as $t),
                    ArgValue::Int(i) => Ok(*i as $t),
                    other => Err(format!("expected a number ({}), got {}", stringify!($t), other.describe())),
                }
            }
        }
    )*};
}
float_param!(f32, f64);

impl KernelParam for bool {
    const KIND: ParamKind = ParamKind::Scalar;
    const DTYPE: Option<DType> = None;
    fn from_arg(_: u16, _: &'static str, v: &ArgValue) -> Result<Self, String> {
        match v {
            ArgValue::Bool(b) => Ok(*b),
            other => Err(format!("expected a boolean, got {}", other.describe())),
        }
    }
}
