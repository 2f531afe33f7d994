//! Hierarchical all-reduce over whole cubes and SIPs: reduce-scatter inside
//! each cube, all-reduce each PE's chunk across the cubes of its SIP, then
//! across SIPs, then all-gather back inside the cube.

use super::common::*;
use super::Builtin;
use crate::cost::{hierarchical, PeFigures};
use crate::registry::{Collective, MapKind};
use kernbench_tl::prelude::*;
use kernbench_tl::Element;

/// Hierarchical all-reduce: inside each cube, across cubes, across SIPs, and back.
///
/// Ranks are in structural order (`pes` per cube, `cubes` per SIP).
#[kernel]
pub fn hierarchical_allreduce<T: Element>(
    buf: Ptr<T>,
    n: usize,
    #[constexpr] seg: usize,
    #[constexpr] op: RedOp,
    pes: usize,
    cubes: usize,
) {
    let (w, r) = (tl::num_programs(0), tl::program_id(0));
    let (pes, cubes) = (pes.max(1), cubes.max(1));
    let sips = w / (pes * cubes);
    let base = r * n;
    let pe = r % pes;
    let cube = (r / pes) % cubes;
    let sip = r / (pes * cubes);
    let intra = Ring {
        next: Dir::E,
        prev: Dir::W,
        rank: pe,
        size: pes,
    };
    let across_cubes = Ring {
        next: Dir::S,
        prev: Dir::N,
        rank: cube,
        size: cubes,
    };
    let across_sips = Ring {
        next: Dir::SipE,
        prev: Dir::SipW,
        rank: sip,
        size: sips,
    };
    ring_reduce_scatter(buf, base, (0, n), intra, 1, seg, op);
    // This PE holds the cube's reduction of its chunk: reduce it across cubes.
    let mine = chunk(n, pes, (pe + 1) % pes);
    ring_reduce_scatter(buf, base, mine, across_cubes, 1, seg, op);
    if sips > 1 {
        // ... and its sub-chunk across SIPs.
        let (so, sl) = chunk(mine.1, cubes, (cube + 1) % cubes);
        let sub = (mine.0 + so, sl);
        ring_all_reduce(buf, base, sub, across_sips, seg, op);
    }
    ring_all_gather(buf, base, mine, across_cubes, 1, seg);
    ring_all_gather(buf, base, (0, n), intra, 1, seg);
}

/// [`hierarchical_allreduce`]: a ring reduce-scatter and all-gather at each
/// level, on what the level above left ([`hierarchical`]).
pub const HIERARCHICAL_ALLREDUCE: Builtin = Builtin {
    kernel: &hierarchical_allreduce,
    collective: Collective::AllReduce,
    maps: &[MapKind::Hierarchical],
    cost: |m| {
        let p = m.ranks();
        let pes_per = (m.topo.pes_per_cube() as usize).min(p);
        let cubes = (m.topo.cubes_per_sip() as usize).min(p / pes_per.max(1));
        let sips = p / (pes_per * cubes).max(1);
        hierarchical(
            &PeFigures::of(m.topo),
            &[
                (pes_per, m.measure_ring(&[Dir::E])),
                (cubes, m.measure_ring(&[Dir::S])),
                (sips, m.measure_ring(&[Dir::SipE])),
            ],
            m.bytes,
            m.seg(),
        )
    },
    leaves_out: Some(
        "loads and stores queue for the slice's pseudo-channels: the machine pays part of the sum of HBM and wire time, the model the larger; at small sizes on many cubes, the rings of a level (one per PE position) queue on the UCIe links they share beyond their bytes' share",
    ),
};
