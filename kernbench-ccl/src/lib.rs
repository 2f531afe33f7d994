//! Collectives written in the KernBench kernel language: ring, 2D mesh, tree
//! and hierarchical all-reduce, reduce-scatter, all-gather and broadcast; their
//! registry; a driver that runs and checks them; and cost models.
#![warn(missing_docs)]

pub mod algorithms;
pub mod cost;
pub mod dist;
pub mod registry;
pub mod run;
pub mod table;
pub mod tp;
pub mod verify;

pub use registry::{Algorithm, Collective, MapKind, Registry};
pub use run::{run, run_on, RedOp, RunResult, RunSpec};
