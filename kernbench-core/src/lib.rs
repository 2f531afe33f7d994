//! The machine KernBench models and its simulation.
//!
//! A machine comes from a topology file (or a built-in one); its routes are
//! deterministic paths of links, and its memory holds buffers spread over
//! PEs' HBM slices. Kernels (see `kernbench-tl`) trace into command graphs
//! ([`ir`]); a [`program::Launch`] places one over PEs; the compiler
//! [`passes`] turn a launch's graphs into programs (fuse, lower, TCM plan,
//! pair, route) or a typed `CompileError`, which [`sim`] runs on the
//! machine, measuring as it goes (its report); [`export`] writes files for
//! other tools from what a run leaves, and [`runtime`] drives launches from
//! host threads.
//!
//! Layers, bottom up (ADR 0025): ground types ([`ids`], [`dtype`]),
//! [`topology`], [`addr`], [`ir`], [`machine`], [`neighbors`], [`program`],
//! [`passes`], [`sim`] and [`functional`], [`export`], [`runtime`]. A module
//! uses only those before it; `sim` re-exports what moved below it
//! (`sim::Launch`), and the report stays in `sim` (ADR 0031).
//!
//! ```
//! use kernbench_core::machine::Machine;
//! use kernbench_core::topology::{Endpoint, Topology};
//! use kernbench_core::{DType, PeId};
//!
//! let topo = Topology::builtin("tiny").unwrap();
//! assert_eq!(topo.pe_count(), 16);
//!
//! // A transfer between cubes crosses UCIe: its route and its cost alone.
//! let (a, b) = (PeId::new(0, 0, 0), PeId::new(0, 1, 0));
//! let route = topo.route(Endpoint::Pe(a), Endpoint::Pe(b)).unwrap();
//! assert!(route.hop_count() > 2 && route.fixed_ps() > 0);
//!
//! // A buffer over two PEs' HBM slices, written and read back.
//! let mut m = Machine::new(topo).unwrap();
//! let buf = m.alloc(DType::F16, 8, &[a, b]).unwrap();
//! m.write_buffer(&buf, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]).unwrap();
//! assert_eq!(m.read_buffer(&buf).unwrap()[7], 8.0);
//! ```
#![warn(missing_docs)]

pub mod addr;
pub mod dtype;
pub mod export;
pub mod ids;
pub mod topology;

pub use dtype::DType;
pub use ids::{CubeId, PeId, Ps, SipId};
pub mod functional;
pub mod input;
pub mod ir;
pub mod machine;
pub mod neighbors;
pub mod passes;
pub mod program;
pub mod runtime;
pub mod sim;

#[cfg(test)]
pub(crate) mod testing {
    use std::error::Error;

    /// Asserts that no error in `e`'s chain repeats its source's message. An
    /// error either says its cause in its own message or returns it from
    /// `source()`, never both: a report that walks the chain (`{:#}` of
    /// `anyhow`, for one) would print the cause twice.
    pub(crate) fn assert_said_once(e: &(dyn Error + 'static)) {
        let mut cur = e;
        while let Some(src) = cur.source() {
            let (outer, inner) = (cur.to_string(), src.to_string());
            assert!(
                !outer.contains(&inner),
                "{outer:?} repeats its source, {inner:?}"
            );
            cur = src;
        }
    }
}
