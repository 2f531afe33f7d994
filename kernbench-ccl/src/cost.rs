//! Alpha-beta cost models of the algorithms, and their figures on a machine.
//!
//! `alpha` is the cost of one message regardless of size (route latency plus
//! per-transfer and per-command overheads), `beta` the cost of one byte
//! (the inverse of the bottleneck bandwidth). Sizes are bytes of one rank's vector.

use crate::registry::{Algorithm, MapKind};
use kernbench_core::neighbors::NeighborMap;
use kernbench_core::topology::{Endpoint, Topology};
use kernbench_core::PeId;

/// The figures of one level of communication.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AlphaBeta {
    /// Per-message cost, ns.
    pub alpha_ns: f64,
    /// Per-byte cost, ns (1 / GB/s).
    pub beta_ns: f64,
}

impl AlphaBeta {
    /// Time of one message of `bytes`.
    pub fn msg(&self, bytes: f64) -> f64 {
        self.alpha_ns + bytes * self.beta_ns
    }
}

/// Ring reduce-scatter (or all-gather) of `bytes` over `p` ranks: `(p-1)(alpha + bytes/p beta)`.
pub fn ring_half(p: usize, bytes: f64, ab: AlphaBeta) -> f64 {
    if p <= 1 {
        return 0.0;
    }
    (p - 1) as f64 * ab.msg(bytes / p as f64)
}

/// Ring all-reduce: `2(p-1)(alpha + bytes/p beta)`.
pub fn ring_allreduce(p: usize, bytes: f64, ab: AlphaBeta) -> f64 {
    2.0 * ring_half(p, bytes, ab)
}

/// Pipelined chain broadcast in `k` pieces: `(p - 2 + k)(alpha + bytes/k beta)`.
pub fn chain_broadcast(p: usize, bytes: f64, k: usize, ab: AlphaBeta) -> f64 {
    if p <= 1 {
        return 0.0;
    }
    let k = k.max(1);
    (p - 2 + k) as f64 * ab.msg(bytes / k as f64)
}

/// Depth of a heap-ordered binary tree of `p` nodes (edges from root to the deepest leaf).
pub fn tree_depth(p: usize) -> usize {
    if p <= 1 {
        0
    } else {
        (usize::BITS - p.leading_zeros() - 1) as usize
    }
}

/// Pipelined tree all-reduce (reduce up, broadcast down) in `k` pieces:
/// `2 (depth + k - 1)(alpha + bytes/k beta)`, with a parent taking two children's pieces per step.
pub fn tree_allreduce(p: usize, bytes: f64, k: usize, ab: AlphaBeta) -> f64 {
    if p <= 1 {
        return 0.0;
    }
    let k = k.max(1);
    let piece = ab.alpha_ns + 2.0 * bytes / k as f64 * ab.beta_ns;
    2.0 * (tree_depth(p) + k - 1) as f64 * piece
}

/// Recursive doubling all-reduce: `log2(p)(alpha + bytes beta)`.
pub fn recursive_doubling(p: usize, bytes: f64, ab: AlphaBeta) -> f64 {
    (p.max(1) as f64).log2().ceil() * ab.msg(bytes)
}

/// Rabenseifner all-reduce on a power of two `p`: a reduce-scatter by
/// recursive halving and an all-gather by recursive doubling, each
/// `log2(p) alpha + (p-1)/p bytes beta`.
pub fn rabenseifner(p: usize, bytes: f64, ab: AlphaBeta) -> f64 {
    let p = p.max(1) as f64;
    2.0 * (p.log2().ceil() * ab.alpha_ns + (p - 1.0) / p * bytes * ab.beta_ns)
}

/// Bruck all-gather: `ceil(log2 p)` steps moving `(p-1)/p bytes` in all:
/// `ceil(log2 p) alpha + (p-1)/p bytes beta`.
pub fn bruck_allgather(p: usize, bytes: f64, ab: AlphaBeta) -> f64 {
    let p = p.max(1) as f64;
    p.log2().ceil() * ab.alpha_ns + (p - 1.0) / p * bytes * ab.beta_ns
}

/// 2D all-reduce on `rows x cols`: reduce-scatter and all-gather along rows,
/// a ring all-reduce of `bytes/cols` down columns.
pub fn torus_allreduce(
    rows: usize,
    cols: usize,
    bytes: f64,
    row: AlphaBeta,
    col: AlphaBeta,
) -> f64 {
    2.0 * ring_half(cols, bytes, row) + ring_allreduce(rows, bytes / cols as f64, col)
}

/// Hierarchical all-reduce: ring reduce-scatter and all-gather at each level
/// (`pes` in a cube, `cubes` in a SIP, `sips`), each on what the level above left.
pub fn hierarchical(levels: &[(usize, AlphaBeta)], bytes: f64) -> f64 {
    let mut t = 0.0;
    let mut b = bytes;
    for (p, ab) in levels {
        t += 2.0 * ring_half(*p, b, *ab);
        b /= (*p).max(1) as f64;
    }
    t
}

/// Alpha and beta of a ring's steps: a step's data crosses every hop of the
/// ring in turn over the whole collective, so its latency is the mean over
/// the hops, plus reading the local piece from HBM; the bandwidth is the
/// slowest hop's.
pub fn measure_ring(topo: &Topology, hops: impl IntoIterator<Item = (PeId, PeId)>) -> AlphaBeta {
    let hops: Vec<(PeId, PeId)> = hops.into_iter().collect();
    let worst = measure(topo, hops.iter().copied());
    let spec = topo.pe_spec();
    let per_msg = (spec.cpu_overhead_ps() + spec.sched_overhead_ps()) as f64 / 1000.0;
    let lat: Vec<f64> = hops
        .iter()
        .filter_map(|(a, b)| topo.route(Endpoint::Pe(*a), Endpoint::Pe(*b)).ok())
        .map(|r| r.fixed_ps() as f64 / 1000.0)
        .collect();
    if lat.is_empty() {
        return worst;
    }
    let hbm = spec.hbm_latency_ps() as f64 / 1000.0;
    AlphaBeta {
        alpha_ns: lat.iter().sum::<f64>() / lat.len() as f64 + per_msg + hbm,
        beta_ns: worst.beta_ns,
    }
}

/// Alpha and beta of the slowest of the given PE-to-PE hops.
pub fn measure(topo: &Topology, hops: impl IntoIterator<Item = (PeId, PeId)>) -> AlphaBeta {
    let spec = topo.pe_spec();
    let per_msg = (spec.cpu_overhead_ps() + spec.sched_overhead_ps()) as f64 / 1000.0;
    let (mut alpha, mut bw) = (0.0f64, f64::INFINITY);
    for (a, b) in hops {
        if let Ok(r) = topo.route(Endpoint::Pe(a), Endpoint::Pe(b)) {
            alpha = alpha.max(r.fixed_ps() as f64 / 1000.0);
            if !r.hops.is_empty() {
                bw = bw.min(r.bottleneck_gbps);
            }
        }
    }
    if !bw.is_finite() {
        bw = spec.tcm_gbps;
    }
    AlphaBeta {
        alpha_ns: alpha + per_msg,
        beta_ns: 1.0 / bw,
    }
}

fn hops_of(map: &NeighborMap, dirs: &[kernbench_core::ir::Dir]) -> Vec<(PeId, PeId)> {
    map.iter()
        .filter(|(_, d, _)| dirs.contains(d))
        .map(|(a, _, b)| (a, b))
        .collect()
}

/// The model time, ns, of an algorithm moving `bytes` per rank over `pes` on `topo`.
pub fn model_ns(topo: &Topology, algo: &Algorithm, pes: &[PeId], bytes: f64) -> f64 {
    use kernbench_core::ir::Dir;
    let p = pes.len();
    let Ok(map) = crate::run::algorithm_map(topo, algo, pes) else {
        return f64::NAN;
    };
    let k = (bytes / algo.seg_bytes as f64).ceil().max(1.0) as usize;
    match (algo.kernel.as_str(), algo.topology) {
        ("tree_allreduce", _) | (_, MapKind::Tree) => tree_allreduce(
            p,
            bytes,
            k,
            measure(topo, hops_of(&map, &[Dir::Left, Dir::Right])),
        ),
        ("mesh_allreduce", _) => {
            let (rows, cols) = crate::run::torus_shape(p);
            let row = measure(topo, hops_of(&map, &[Dir::E]));
            let col = measure(topo, hops_of(&map, &[Dir::S]));
            torus_allreduce(rows, cols, bytes, row, col)
        }
        ("hierarchical_allreduce", _) => {
            let pes_per = (topo.pes_per_cube() as usize).min(p);
            let cubes = (topo.cubes_per_sip() as usize).min(p / pes_per.max(1));
            let sips = p / (pes_per * cubes).max(1);
            hierarchical(
                &[
                    (pes_per, measure(topo, hops_of(&map, &[Dir::E]))),
                    (cubes, measure(topo, hops_of(&map, &[Dir::S]))),
                    (sips, measure(topo, hops_of(&map, &[Dir::SipE]))),
                ],
                bytes,
            )
        }
        ("intercube_allreduce", kind) => {
            let cubes = (topo.cubes_per_sip() as usize).min(p).max(1);
            let sips = p / cubes;
            let tree = measure(topo, hops_of(&map, &[Dir::Left, Dir::Right]));
            let sip = measure(topo, hops_of(&map, &[Dir::SipE, Dir::SipS]));
            let (rows, cols) = crate::run::torus_shape(sips);
            let top = match kind {
                MapKind::IntercubeRing => ring_allreduce(sips, bytes, sip),
                MapKind::IntercubeTorus2d => torus_allreduce(rows, cols, bytes, sip, sip),
                // Chains: reduce and broadcast along a row, then a column, pipelined in k pieces.
                _ => {
                    2.0 * (chain_broadcast(cols, bytes, k, sip)
                        + chain_broadcast(rows, bytes, k, sip))
                }
            };
            tree_allreduce(cubes, bytes, k, tree) + if sips > 1 { top } else { 0.0 }
        }
        ("reduce_scatter", _) | ("all_gather", _) => {
            ring_half(p, bytes, measure(topo, hops_of(&map, &[Dir::E])))
        }
        ("broadcast", _) => chain_broadcast(p, bytes, k, measure(topo, hops_of(&map, &[Dir::E]))),
        ("recursive_doubling", _) | ("rabenseifner", _) => {
            let w = crate::algorithms::doubling::pow2_floor(p.max(1));
            let hops = (0..p).flat_map(|r| {
                let mut bit = 1;
                let mut v = Vec::new();
                while bit < w {
                    if r ^ bit < p {
                        v.push((pes[r], pes[r ^ bit]));
                    }
                    bit <<= 1;
                }
                v
            });
            let ab = measure(topo, hops);
            // The fold-in of the ranks past a power of two: one message each way.
            let fold = if w < p { 2.0 * ab.msg(bytes) } else { 0.0 };
            if algo.kernel == "rabenseifner" {
                rabenseifner(w, bytes, ab) + fold
            } else {
                recursive_doubling(w, bytes, ab) + fold
            }
        }
        ("bruck_allgather", _) => {
            // Step `k` sends to the rank `2^k` below.
            let hops = (0..p).flat_map(|r| {
                (0..crate::algorithms::bruck::steps(p)).map(move |k| (r, (r + p - (1 << k)) % p))
            });
            let ab = measure(topo, hops.map(|(a, b)| (pes[a], pes[b])));
            bruck_allgather(p, bytes, ab)
        }
        // A kernel family registered from Rust: no model is known for it.
        (k, _) if !crate::registry::KERNELS.contains(&k) => f64::NAN,
        _ => ring_allreduce(p, bytes, measure_ring(topo, hops_of(&map, &[Dir::E]))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AB: AlphaBeta = AlphaBeta {
        alpha_ns: 10.0,
        beta_ns: 0.01,
    };

    #[test]
    fn ring_formulas() {
        assert_eq!(ring_allreduce(1, 1e6, AB), 0.0);
        // 2 (p-1) (alpha + n/p beta) with p = 4, n = 4000: 6 * (10 + 10) = 120.
        assert_eq!(ring_allreduce(4, 4000.0, AB), 120.0);
        assert_eq!(ring_half(4, 4000.0, AB), 60.0);
        // Large messages approach 2 (p-1)/p n beta.
        let t = ring_allreduce(8, 1e9, AB);
        assert!((t / (2.0 * 7.0 / 8.0 * 1e9 * 0.01) - 1.0).abs() < 1e-3);
    }

    #[test]
    fn tree_and_doubling_formulas() {
        assert_eq!(tree_depth(1), 0);
        assert_eq!(tree_depth(2), 1);
        assert_eq!(tree_depth(7), 2);
        assert_eq!(tree_depth(8), 3);
        // k = 1: 2 depth (alpha + 2 n beta).
        assert_eq!(tree_allreduce(7, 1000.0, 1, AB), 2.0 * 2.0 * (10.0 + 20.0));
        assert_eq!(recursive_doubling(8, 1000.0, AB), 3.0 * 20.0);
        assert_eq!(chain_broadcast(4, 1000.0, 1, AB), 3.0 * 20.0);
        // 2 (log2 p alpha + (p-1)/p n beta) with p = 8, n = 8000: 2 (30 + 70).
        assert_eq!(rabenseifner(8, 8000.0, AB), 200.0);
        // Five ranks take three steps: 3 alpha + 4/5 n beta.
        assert_eq!(bruck_allgather(5, 5000.0, AB), 30.0 + 40.0);
        assert_eq!(bruck_allgather(1, 5000.0, AB), 0.0);
    }

    #[test]
    fn hierarchy_and_torus() {
        // One level is a ring all-reduce.
        assert_eq!(
            hierarchical(&[(4, AB)], 4000.0),
            ring_allreduce(4, 4000.0, AB)
        );
        // Two levels: the second moves a quarter of the data.
        let two = hierarchical(&[(4, AB), (2, AB)], 4000.0);
        assert_eq!(
            two,
            ring_allreduce(4, 4000.0, AB) + ring_allreduce(2, 1000.0, AB)
        );
        assert_eq!(
            torus_allreduce(1, 4, 4000.0, AB, AB),
            ring_allreduce(4, 4000.0, AB)
        );
    }
}
