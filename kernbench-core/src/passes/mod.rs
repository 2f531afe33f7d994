//! Compiler passes over a traced command graph, run between tracing and
//! lowering (each in its own file).
//!
//! - [`fuse`]: folds an elementwise tail after a GEMM into its epilogue.

pub mod fuse;

pub use fuse::fuse_epilogues;
