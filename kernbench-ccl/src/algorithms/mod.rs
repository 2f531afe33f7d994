//! The built-in collective algorithms, one file a family.
//!
//! Each family file holds, for each of its algorithms, everything the crate
//! knows about it:
//!
//! - its kernel: one generic `#[kernel]` whose element type is the buffer's,
//!   taking by name what the driver passes (see
//!   [`DRIVER_PARAMS`](crate::run::DRIVER_PARAMS));
//! - a [`Builtin`] naming that kernel, the collective it implements, the
//!   neighbour maps its peers are written for, and its cost model (built from
//!   the shared figures and formulas of [`cost`](crate::cost)).
//!
//! [`BUILTIN`] lists them. The registry's shipped kernel families are the
//! ones on it; the cost model (and so the tuner and the `model` and `bound`
//! columns) finds an algorithm's model there; and the command keeps the
//! crate linked through it. Adding an algorithm is its kernel and its
//! `Builtin` in a family file, the `Builtin` on that list, and an entry
//! naming the kernel in `configs/ccl.yaml`.
//!
//! A kernel family registered from Rust
//! ([`Registry::register_kernel`](crate::Registry::register_kernel)) is not on
//! the list: the registry knows it, and the model gives it no time.

pub mod alltoall;
pub mod bruck;
pub mod common;
pub mod doubling;
pub mod dtree;
pub mod halving;
pub mod hierarchical;
pub mod hierring;
pub mod intercube;
pub mod mesh;
pub mod ring;
pub mod rooted;
pub mod tree;

pub use alltoall::{pairwise_alltoall, PairwiseAlltoallArgs};
pub use bruck::{bruck_allgather, bruck_reducescatter, BruckAllgatherArgs, BruckReducescatterArgs};
pub use doubling::{recursive_doubling, RecursiveDoublingArgs};
pub use dtree::{double_tree, DoubleTreeArgs};
pub use halving::{rabenseifner, RabenseifnerArgs};
pub use hierarchical::{hierarchical_allreduce, HierarchicalAllreduceArgs};
pub use hierring::{
    hier_all_gather, hier_reduce_scatter, HierAllGatherArgs, HierReduceScatterArgs,
};
pub use intercube::{intercube_allreduce, IntercubeAllreduceArgs};
pub use mesh::{mesh_allreduce, MeshAllreduceArgs};
pub use ring::{
    all_gather, broadcast, reduce_scatter, ring_allreduce, AllGatherArgs, BroadcastArgs,
    ReduceScatterArgs, RingAllreduceArgs,
};
pub use rooted::{binomial_gather, binomial_reduce, BinomialGatherArgs, BinomialReduceArgs};
pub use tree::{tree_allreduce, TreeAllreduceArgs};

use crate::cost::{Cost, ModelInput};
use crate::registry::{Collective, MapKind};
use kernbench_tl::Kernel;

/// A built-in algorithm: the kernel a run launches, what it implements and
/// needs, and what the model says it costs.
///
/// A descriptor of plain fields rather than a trait: all but the cost are
/// constants the registry reads, so each algorithm is one `const` a reader
/// takes in at a glance, [`BUILTIN`] is a list of values, and the name is
/// the kernel's own, so a descriptor cannot name a kernel it does not launch.
#[derive(Clone, Copy)]
pub struct Builtin {
    /// The kernel; its name is the family's (`ring_allreduce`), which
    /// `configs/ccl.yaml` entries write as their `kernel`.
    pub kernel: &'static dyn Kernel,
    /// The collective it implements.
    pub collective: Collective,
    /// The maps its peers are written for: an entry naming the kernel must
    /// name one of them (on another map the kernel either pairs no message
    /// or, where the map happens to give the directions it uses, computes
    /// something else).
    pub maps: &'static [MapKind],
    /// Its cost model: the time of one run, with each term's share.
    pub cost: fn(&ModelInput<'_>) -> Cost,
    /// What the simulation pays that the cost model leaves out, in a few
    /// words; a table row whose model misses the simulated time by more
    /// than [`MODEL_TOLERANCE`](crate::cost::MODEL_TOLERANCE) names it.
    /// `None` when the model is meant to hold everywhere.
    pub leaves_out: Option<&'static str>,
}

impl Builtin {
    /// The family's name: its kernel's.
    pub fn name(&self) -> &'static str {
        self.kernel.meta().name
    }

    /// The built-in algorithm whose kernel is named `name`.
    pub fn find(name: &str) -> Option<&'static Builtin> {
        BUILTIN.iter().find(|b| b.name() == name)
    }
}

impl std::fmt::Debug for Builtin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builtin")
            .field("kernel", &self.name())
            .field("collective", &self.collective)
            .field("maps", &self.maps)
            .finish_non_exhaustive()
    }
}

/// Every built-in algorithm, in the order the registry lists their kernel
/// families.
pub static BUILTIN: &[Builtin] = &[
    intercube::INTERCUBE_ALLREDUCE,
    ring::RING_ALLREDUCE,
    mesh::MESH_ALLREDUCE,
    tree::TREE_ALLREDUCE,
    hierarchical::HIERARCHICAL_ALLREDUCE,
    ring::REDUCE_SCATTER,
    ring::ALL_GATHER,
    ring::BROADCAST,
    doubling::RECURSIVE_DOUBLING,
    halving::RABENSEIFNER,
    bruck::BRUCK_ALLGATHER,
    bruck::BRUCK_REDUCESCATTER,
    rooted::BINOMIAL_REDUCE,
    rooted::BINOMIAL_GATHER,
    alltoall::PAIRWISE_ALLTOALL,
    dtree::DOUBLE_TREE,
    hierring::HIER_REDUCE_SCATTER,
    hierring::HIER_ALL_GATHER,
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Registry;

    #[test]
    fn every_builtin_is_its_registered_kernel_once() {
        for b in BUILTIN {
            let k = kernbench_tl::find_kernel(b.name()).expect("registered");
            assert!(std::ptr::eq(k.meta(), b.kernel.meta()), "{b:?}");
            assert_eq!(BUILTIN.iter().filter(|c| c.name() == b.name()).count(), 1);
            assert!(std::ptr::eq(Builtin::find(b.name()).unwrap(), b));
            assert!(
                !b.maps.is_empty() && !b.maps.contains(&MapKind::Custom),
                "{b:?}"
            );
        }
        assert!(Builtin::find("nope").is_none());
    }

    #[test]
    fn the_registry_knows_the_builtins_and_the_shipped_file_uses_each() {
        let reg = Registry::new();
        let names: Vec<&str> = reg.kernels().iter().map(|k| k.name.as_str()).collect();
        let builtin: Vec<&str> = BUILTIN.iter().map(Builtin::name).collect();
        assert_eq!(names, builtin);
        for (k, b) in reg.kernels().iter().zip(BUILTIN) {
            assert_eq!(k.collective, b.collective);
            let maps: Vec<&str> = b.maps.iter().map(|m| m.name()).collect();
            assert_eq!(k.maps, maps);
        }
        let shipped = Registry::builtin();
        for b in BUILTIN {
            let entries: Vec<_> = shipped
                .algorithms()
                .iter()
                .filter(|a| a.kernel == b.name())
                .collect();
            assert!(
                !entries.is_empty(),
                "no entry of configs/ccl.yaml runs {b:?}"
            );
            for a in entries {
                assert_eq!(a.collective, b.collective, "{}", a.name);
                assert!(b.maps.contains(&a.topology), "{}", a.name);
            }
        }
    }
}
