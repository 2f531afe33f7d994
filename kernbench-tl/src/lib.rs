//! The kernel language of KernBench.
//!
//! Kernels are Rust functions marked `#[kernel]` whose bodies call `tl::*`.
//! Tracing a kernel for one program instance runs its body over trace-time
//! integers; every `tl::` call records a command, with its source location,
//! into that instance's [`CommandGraph`](kernbench_core::ir::CommandGraph).
//!
//! ```
//! use kernbench_tl::prelude::*;
//!
//! #[kernel]
//! fn double(x: Ptr<f32>, n: usize) {
//!     let pid = tl::program_id(0);
//!     let t = tl::load(x.offset(pid * n), [n]);
//!     tl::store(x.offset(pid * n), &(t * 2.0));
//! }
//!
//! let args = KernelArgs::new()
//!     .with("x", ArgValue::Ptr { va: 0x1000_0000_0000, dtype: DType::F32, len: 4 * 64 })
//!     .int("n", 64);
//! let g = kernbench_tl::trace(&double, &args, &[4], &[1]).unwrap();
//! assert!(g.to_text().contains("mul %0, 2.0"));
//! ```
#![warn(missing_docs)]

mod context;
mod kernel;
mod types;

pub mod tl;

pub use context::{trace, trace_program, trace_with};
pub use kernbench_core::machine::{Buffer, TensorRef};
pub use kernbench_macros::KernelEnum;
pub use kernel::{
    bind_elem, bind_param, elem_refused, enum_from_arg, Kernel, KernelEntry, KernelEnum,
    KernelMeta, KernelParam, ParamMeta,
};
pub use types::{Block, Element, Ptr, RecvFuture, StoreTile, Tensor, Tile, TileArg};

pub use half::{bf16, f16};
pub use kernbench_core::ir::{
    ArgError, ArgValue, Dir, Expected, KernelArgs, ParamKind, Peer, TraceError,
};
pub use kernbench_core::DType;

#[doc(hidden)]
pub use inventory;
#[doc(hidden)]
pub use kernbench_core;

/// Every kernel registered with `#[kernel]` in the program, sorted by name.
pub fn registered_kernels() -> Vec<&'static dyn Kernel> {
    let mut v: Vec<&'static dyn Kernel> = inventory::iter::<KernelEntry>
        .into_iter()
        .map(|e| e.kernel)
        .collect();
    v.sort_by_key(|k| k.meta().name);
    v
}

/// A registered kernel by name.
pub fn find_kernel(name: &str) -> Option<&'static dyn Kernel> {
    inventory::iter::<KernelEntry>
        .into_iter()
        .map(|e| e.kernel)
        .find(|k| k.meta().name == name)
}

/// What a kernel author imports: `use kernbench_tl::prelude::*;`.
pub mod prelude {
    pub use crate::tl;
    pub use crate::tl::Epilogue;
    pub use crate::{bf16, f16, Block, Dir, Element, Peer, Ptr, RecvFuture, Tensor, Tile};
    pub use crate::{ArgValue, DType, KernelArgs, KernelEnum};
    pub use kernbench_macros::{kernel, kernel_fn};
}
