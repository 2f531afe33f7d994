//! A GEMM whose partial outputs are reduce-scattered over a ring while the
//! next blocks compute, in the style of TileLink and Triton-distributed, and
//! the GEMM it is compared with (the collective then runs as a launch of
//! its own).
//!
//! Rank `r` holds `a_r` (`w bm x k`, rows `r w bm ..` of `a`) and `b_r`
//! (`k x n`, rows `r k ..` of `b`), and its partial product `a_r b_r` is
//! `w` blocks of `bm` rows. After the reduce-scatter, rank `r` holds block
//! `r` of `sum_q a_q b_q` in rows `r w bm + r bm ..` of `c`: the
//! row-parallel layer of tensor parallelism with sequence parallelism.

use crate::prelude::*;

/// Rank `r`'s partial product of block `j`: `a_r[j bm ..] x b_r`.
#[kernel_fn]
pub fn part(a: Tensor<f32>, b: Tensor<f32>, r: usize, j: usize, bm: usize) -> Tile<f32> {
    let (w, k, n) = (tl::num_ranks(), a.cols(), b.cols());
    let x = tl::load(a.block([r * w * bm + j * bm, 0], [bm, k]), [bm, k]);
    let y = tl::load(b.block([r * k, 0], [k, n]), [k, n]);
    tl::dot(&x, &y)
}

/// The fused kernel: the ring reduce-scatter of the partial products, each
/// block computed just before the ring needs it, so the GEMM of block
/// `s + 1` runs while block `s` is on the wire.
#[kernel]
pub fn gemm_rs_fused(a: Tensor<f32>, b: Tensor<f32>, c: Tensor<f32>, #[constexpr] bm: usize) {
    let (w, r) = (tl::num_ranks(), tl::rank());
    let n = b.cols();
    let (next, prev) = ((r + 1) % w, (r + w - 1) % w);
    // The block the ring passes on at step `s` is r - 1 - s (mod w).
    let mut acc = part(a, b, r, (r + w - 1) % w, bm);
    for s in 0..w - 1 {
        tl::send(next, &acc);
        let mine = part(a, b, r, (r + 2 * w - 2 - s) % w, bm);
        let got = tl::recv::<f32>(prev, [bm, n]);
        acc = got + mine;
    }
    tl::store(c.block([r * w * bm + r * bm, 0], [bm, n]), &acc);
}

/// The GEMM alone: rank `r` stores its `w` partial blocks in its rows of `c`.
#[kernel]
pub fn gemm_parts(a: Tensor<f32>, b: Tensor<f32>, c: Tensor<f32>, #[constexpr] bm: usize) {
    let (w, r) = (tl::num_ranks(), tl::rank());
    let n = b.cols();
    for j in 0..w {
        let p = part(a, b, r, j, bm);
        tl::store(c.block([r * w * bm + j * bm, 0], [bm, n]), &p);
    }
}

/// The two schedules of one problem, simulated and checked.
#[derive(Clone, Debug)]
pub struct Overlap {
    /// Ranks.
    pub ranks: usize,
    /// The fused kernel's time, ns.
    pub fused_ns: f64,
    /// The GEMM launch's time, ns.
    pub gemm_ns: f64,
    /// The reduce-scatter launch's time after it, ns.
    pub collective_ns: f64,
    /// GEMM busy time of the busiest PE, ns: the compute both schedules do.
    pub compute_ns: f64,
    /// Elements checked (every rank's block), and how many were wrong, per schedule.
    pub checked: usize,
    /// Wrong elements of the fused and the sequential schedule.
    pub wrong: (usize, usize),
}

impl Overlap {
    /// The sequential schedule's time: the GEMM, then the collective.
    pub fn sequential_ns(&self) -> f64 {
        self.gemm_ns + self.collective_ns
    }

    /// Communication not hidden behind compute, fused: its time beyond the compute.
    pub fn exposed_fused_ns(&self) -> f64 {
        (self.fused_ns - self.compute_ns).max(0.0)
    }

    /// Communication not hidden behind compute, sequential.
    pub fn exposed_sequential_ns(&self) -> f64 {
        (self.sequential_ns() - self.compute_ns).max(0.0)
    }
}

/// The inputs: small integers, so every sum is exact in f32.
fn inputs(w: usize, bm: usize, k: usize, n: usize) -> (Vec<f32>, Vec<f32>) {
    let a = (0..w * w * bm * k)
        .map(|i| ((i * 7 + 3) % 5) as f32 - 2.0)
        .collect();
    let b = (0..w * k * n)
        .map(|i| ((i * 11 + 1) % 7) as f32 - 3.0)
        .collect();
    (a, b)
}

/// Wrong elements of `c` against `sum_q a_q b_q`, block `r` on rank `r`.
fn wrong(c: &[f32], a: &[f32], b: &[f32], (w, bm, k, n): (usize, usize, usize, usize)) -> usize {
    let mut bad = 0;
    for r in 0..w {
        for i in 0..bm {
            for j in 0..n {
                let mut want = 0.0f32;
                for q in 0..w {
                    let row = q * w * bm + r * bm + i;
                    for t in 0..k {
                        want += a[row * k + t] * b[(q * k + t) * n + j];
                    }
                }
                if c[(r * w * bm + r * bm + i) * n + j] != want {
                    bad += 1;
                }
            }
        }
    }
    bad
}

/// Runs the fused kernel and the sequential pair (`gemm_parts`, then the
/// ring reduce-scatter of `kernbench-ccl`) on `pes` of `topo`, with
/// `bm`-row blocks of a `k`-deep, `n`-wide product, data checked.
pub fn compare(
    topo: &kernbench_core::topology::Topology,
    pes: &[PeId],
    (bm, k, n): (usize, usize, usize),
) -> Result<Overlap, Box<dyn std::error::Error>> {
    use kernbench_core::machine::Machine;
    use kernbench_core::neighbors::NeighborMap;
    use kernbench_core::sim::{simulate, Launch};
    let w = pes.len();
    let (av, bv) = inputs(w, bm, k, n);
    let shape = (w, bm, k, n);
    let setup = || -> Result<_, Box<dyn std::error::Error>> {
        let mut m = Machine::new(topo.clone())?;
        let a = m.alloc(DType::F32, w * w * bm * k, pes)?;
        let b = m.alloc(DType::F32, w * k * n, pes)?;
        let c = m.alloc(DType::F32, w * w * bm * n, pes)?;
        m.write_buffer(&a, &av)?;
        m.write_buffer(&b, &bv)?;
        Ok((m, a, b, c))
    };
    let tensors = |a: &kernbench_core::machine::Buffer,
                   b: &kernbench_core::machine::Buffer,
                   c: &kernbench_core::machine::Buffer|
     -> Result<KernelArgs, Box<dyn std::error::Error>> {
        Ok(KernelArgs::new()
            .with("a", a.tensor(w * w * bm, k)?)
            .with("b", b.tensor(w * k, n)?)
            .with("c", c.tensor(w * w * bm, n)?)
            .int("bm", bm as i64))
    };
    let gemm_busy = |r: &kernbench_core::sim::Report| {
        r.pes.iter().map(|p| p.busy.gemm).max().unwrap_or(0) as f64 / 1000.0
    };
    // Fused.
    let (mut m, a, b, c) = setup()?;
    let fused = simulate(
        &mut m,
        &Launch::new(&gemm_rs_fused, tensors(&a, &b, &c)?, pes.to_vec()),
    )?;
    let wrong_fused = wrong(&m.read_buffer(&c)?, &av, &bv, shape);
    // Sequential: the GEMM, then the collective.
    let (mut m, a, b, c) = setup()?;
    let gemm = simulate(
        &mut m,
        &Launch::new(&gemm_parts, tensors(&a, &b, &c)?, pes.to_vec()),
    )?;
    let rs_args = KernelArgs::new()
        .with("buf", c.ptr())
        .int("n", (w * bm * n) as i64)
        .int("seg", (bm * n).min(4096) as i64)
        .int("op", 0);
    let rs = simulate(
        &mut m,
        &Launch::new(
            &kernbench_ccl::algorithms::reduce_scatter,
            rs_args,
            pes.to_vec(),
        )
        .neighbors(NeighborMap::ring(pes)?),
    )?;
    let wrong_seq = wrong(&m.read_buffer(&c)?, &av, &bv, shape);
    Ok(Overlap {
        ranks: w,
        fused_ns: fused.sim_ns(),
        gemm_ns: gemm.sim_ns(),
        collective_ns: rs.sim_ns(),
        compute_ns: gemm_busy(&fused).max(gemm_busy(&gemm)),
        checked: w * bm * n,
        wrong: (wrong_fused, wrong_seq),
    })
}
