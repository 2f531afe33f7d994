//! Files made from a finished run for other tools: they read an
//! [`Outcome`](crate::sim::Outcome), never the engine.
//!
//! - [`chakra`]: MLCommons Chakra execution traces, one per rank, for ASTRA-sim.

pub mod chakra;
