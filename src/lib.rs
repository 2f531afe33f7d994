//! KernBench: write accelerator kernels and collectives as annotated Rust
//! functions, and see what they would do on a modelled machine.
//!
//! - [`core`]: the machine (topology, addresses, memory), the command-graph
//!   IR, and the event-driven simulation.
//! - [`tl`]: the kernel language (`tl::*`, `Ptr`, `Tile`, `Dir`) and `#[kernel]`.
//! - [`ccl`]: collectives written in that language, their registry and cost models.
//!
//! ```
//! use kernbench::prelude::*;
//!
//! #[kernel]
//! fn scale(x: Ptr<f32>, n: usize) {
//!     let pid = tl::program_id(0);
//!     let t = tl::load(x.offset(pid * n), [n]);
//!     tl::store(x.offset(pid * n), &(t * 2.0));
//! }
//! # let _ = scale;
//! ```
#![warn(missing_docs)]

pub mod cli;
pub mod collective_example;
pub mod gemm_example;
pub mod kernels;
pub mod probe;

pub use kernbench_ccl as ccl;
pub use kernbench_core as core;
pub use kernbench_tl as tl;

/// What kernel authors and host programs import.
pub mod prelude {
    pub use kernbench_core::machine::Machine;
    pub use kernbench_core::neighbors::NeighborMap;
    pub use kernbench_core::sim::{simulate, Launch, Report};
    pub use kernbench_core::topology::Topology;
    pub use kernbench_core::PeId;
    pub use kernbench_tl::prelude::*;
}

#[doc(hidden)]
pub mod __private {
    pub use kernbench_tl as tl;
}
