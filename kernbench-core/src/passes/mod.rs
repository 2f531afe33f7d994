//! The compiler passes: from a launch to the programs the simulator runs.
//! Each pass is a function in its own file; [`compile`] runs them in order.
//!
//! - [`trace`]: runs each program instance to record its command graph.
//! - [`fuse`]: folds an elementwise tail after a GEMM into its epilogue.
//! - [`lower`]: turns one instance's graph into engine ops (its tile plans).
//! - [`tcm`]: places each tile of an instance in the PE's TCM.
//! - [`pair`]: pairs the sends of a launch with its receives, as channels.
//! - `route`: the fabric routes of remote DMAs and channels.
//!
//! Errors are [`crate::sim::SimError`]s, which name the PE and kernel line.

mod compile;
pub mod fuse;
pub mod lower;
pub mod pair;
pub(crate) mod route;
pub mod tcm;
pub mod trace;

pub(crate) use compile::{
    bound_program, compile, compile_instance, par_map, Binding, Compiled, Interner, PcTable,
};
pub use fuse::fuse_epilogues;
