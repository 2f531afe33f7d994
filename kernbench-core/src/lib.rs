//! The machine KernBench models and its simulation.
#![warn(missing_docs)]

pub mod addr;
pub mod dtype;
pub mod ids;
pub mod topology;

pub use dtype::DType;
pub use ids::{CubeId, PeId, Ps, SipId};
pub mod functional;
pub mod input;
pub mod ir;
pub mod machine;
pub mod neighbors;
pub mod program;
pub mod runtime;
pub mod sim;
