//! Files made from a finished run for other tools: they read an
//! [`Outcome`](crate::sim::Outcome), never the engine.
//!
//! - [`chakra`]: MLCommons Chakra execution traces, one per rank, for ASTRA-sim.
//! - [`chrome`]: Chrome trace event files (Perfetto, `chrome://tracing`), and
//!   a checker that replays Perfetto's import on them.

pub mod chakra;
pub mod chrome;
