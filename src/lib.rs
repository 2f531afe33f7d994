//! KernBench: write accelerator kernels and collectives as annotated Rust
//! functions, and see what they would do on a modelled machine.
//!
//! - [`core`]: the machine (topology, addresses, memory), the command-graph
//!   IR, and the event-driven simulation.
//! - [`tl`]: the kernel language (`tl::*`, `Ptr`, `Tile`, `Dir`) and `#[kernel]`.
//! - [`ccl`]: collectives written in that language, their registry and cost models.
//! - [`transformer`]: a tensor-parallel GPT-style block built from those parts.
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
//!
//! // Four PEs of `tiny`, each doubling its own 256 elements.
//! let mut m = Machine::new(Topology::builtin("tiny").unwrap()).unwrap();
//! let pes: Vec<PeId> = m.topology().pes().take(4).collect();
//! let x = m.alloc(DType::F32, 4 * 256, &pes).unwrap();
//! m.write_buffer(&x, &vec![1.5; 4 * 256]).unwrap();
//! let args = KernelArgs::new().with("x", x.ptr()).int("n", 256);
//! let report = simulate(&mut m, &Launch::new(&scale, args, pes)).unwrap();
//! assert!(m.read_buffer(&x).unwrap().iter().all(|v| *v == 3.0));
//! assert!(report.sim_ps() > 0);
//! ```
#![warn(missing_docs)]

pub mod cli;
pub mod html;
pub mod kernels;
pub mod probe;
pub mod svg;
pub mod transformer;

pub use kernbench_ccl as ccl;
pub use kernbench_core as core;
pub use kernbench_tl as tl;

/// What kernel authors and host programs import.
pub mod prelude {
    pub use kernbench_core::machine::Machine;
    pub use kernbench_core::neighbors::NeighborMap;
    pub use kernbench_core::sim::{simulate, simulate_many, Launch, Queued, Report};
    pub use kernbench_core::topology::Topology;
    pub use kernbench_core::PeId;
    pub use kernbench_tl::prelude::*;
}

#[doc(hidden)]
pub mod __private {
    pub use kernbench_tl as tl;
}
