//! Collectives written in the KernBench kernel language: ring, 2D mesh, tree
//! and hierarchical all-reduce, reduce-scatter, all-gather and broadcast; their
//! registry; a driver that runs and checks them; and cost models.
//!
//! Each built-in algorithm is its kernel and an
//! [`algorithms::Builtin`] (collective, maps, cost model) in its family's
//! file under [`algorithms`]; [`algorithms::BUILTIN`] lists them for the
//! registry, the model and the tuner.
//!
//! ```
//! use kernbench_ccl::run::{run, RunSpec};
//! use kernbench_ccl::Registry;
//! use kernbench_core::sim::FabricModel;
//! use kernbench_core::topology::Topology;
//! use kernbench_core::DType;
//!
//! // A ring all-reduce of 1024 f32 per rank over the 16 PEs of `tiny`,
//! // every element of the result checked.
//! let topo = Topology::builtin("tiny").unwrap();
//! let registry = Registry::builtin();
//! let algo = registry.get("ring_allreduce").unwrap();
//! let spec = RunSpec { data: true, ..RunSpec::timing(1024, DType::F32, FabricModel::Messages) };
//! let r = run(&topo, algo, &spec).unwrap();
//! assert_eq!((r.pes.len(), r.wrong), (16, 0));
//! assert_eq!(r.checked, 16 * 1024);
//! assert!(r.outcome.report.sim_ps() > 0);
//! ```
#![warn(missing_docs)]

pub mod algorithms;
pub mod cost;
pub mod dist;
pub mod registry;
pub mod run;
pub mod table;
pub mod tp;
pub mod tune;
pub mod verify;

pub use registry::{Algorithm, Collective, EntryError, MapKind, RegisterError, Registry};

#[doc(hidden)]
pub use kernbench_tl::inventory;
pub use run::{run, run_on, RedOp, RunResult, RunSpec};
