//! Megatron-style tensor parallelism across ranks (rank = SIP), with the
//! GEMMs run as device kernels and the partial sums combined by an
//! all-reduce on the device.
//!
//! - [`ColumnParallelLinear`]: `Y = X A` with `A` split by columns, rank `r`
//!   holding `A_r`; each rank computes its `Y_r = X A_r` (no communication).
//! - [`RowParallelLinear`]: `Z = Y B` with `B` split by rows; each rank
//!   computes `Y_r B_r` from its `Y_r`, and an all-reduce sums them.
//!
//! Column-parallel followed by row-parallel is the Megatron MLP: one
//! all-reduce per forward pass.
//!
//! Inside a SIP the layers are data-parallel over PEs: activations are split
//! by rows (the batch) over the layout's PEs and weights are replicated on
//! them, so each PE multiplies its band of rows by its copy of the weight
//! ([`shard_gemm_f32`]), and shard `k` of every rank holds the same rows,
//! which is what the all-reduce pairs up. Layers take `f32` (inputs of small
//! integers keep every result exact).

use crate::dist::Collectives;
use kernbench_core::runtime::ndarray::{s, Array2};
use kernbench_core::runtime::{Args, DeviceTensor, Placement, Rank, RuntimeError};
use kernbench_core::DType;
use kernbench_tl::prelude::*;

/// `y = x w` (with `relu` applied on MATH before the write-back when asked)
/// on every PE of the launch, each on its own shard: instance `i` of `s`
/// multiplies block `i` of `x` (`[x.rows() / s, k]`) by block `i` of `w`
/// (`[k, n]`, a replica) into block `i` of `y`, streaming the operands from
/// HBM as one composite GEMM.
#[kernel]
pub fn shard_gemm_f32(x: Tensor<f32>, w: Tensor<f32>, y: Tensor<f32>, relu: bool) {
    let (i, s) = (tl::program_id(0), tl::num_programs(0));
    let (m, k, n) = (x.rows() / s, x.cols(), w.cols());
    let a = tl::stream(x.block([i * m, 0], [m, k]), [m, k]);
    let b = tl::stream(w.block([i * k, 0], [k, n]), [k, n]);
    let p = if relu {
        tl::gemm(&a, &b, None, &[Epilogue::Relu])
    } else {
        tl::gemm(&a, &b, None, &[])
    };
    tl::store(y.block([i * m, 0], [m, n]), &p);
}

/// The tensor-parallel setting of one rank: the group (every rank of the
/// run) and the layout inside the rank's SIP.
#[derive(Clone, Debug)]
pub struct ModelParallel {
    rank: Rank,
    tp: usize,
    cubes: usize,
    pes: usize,
}

/// Sets up tensor parallelism of degree `tp` for this rank. The tensor-parallel
/// group is the whole run, so `tp` must equal the world size (data-parallel
/// groups of ranks are not modelled). Inside the SIP the layers use one PE
/// until [`ModelParallel::with_layout`] says otherwise.
pub fn initialize_model_parallel(rank: &Rank, tp: usize) -> Result<ModelParallel, RuntimeError> {
    let w = rank.get_world_size();
    if tp != w {
        return Err(RuntimeError::TensorParallel(format!(
            "tensor-parallel size {tp} must equal the world size {w} (one tensor-parallel group; data-parallel groups are not supported)"
        )));
    }
    Ok(ModelParallel {
        rank: rank.clone(),
        tp,
        cubes: 1,
        pes: 1,
    })
}

impl ModelParallel {
    /// Spreads the layers' rows over `pes` PEs of each of `cubes` cubes of the SIP.
    pub fn with_layout(mut self, cubes: usize, pes: usize) -> Self {
        self.cubes = cubes;
        self.pes = pes;
        self
    }

    /// The rank.
    pub fn rank(&self) -> &Rank {
        &self.rank
    }

    /// This rank's index in the tensor-parallel group.
    pub fn tp_rank(&self) -> usize {
        self.rank.get_rank()
    }

    /// The tensor-parallel group's size.
    pub fn tp_size(&self) -> usize {
        self.tp
    }

    /// Where activations live: rows split over the layout's PEs.
    pub fn activation_placement(&self) -> Placement {
        Placement::row_wise().cubes(self.cubes).pes(self.pes)
    }

    /// Where weights live: replicated on the layout's PEs.
    pub fn weight_placement(&self) -> Placement {
        Placement::replicate().cubes(self.cubes).pes(self.pes)
    }

    /// Places a host activation (`[batch, features]`) on this rank's SIP.
    pub fn input(&self, x: &Array2<f32>) -> Result<DeviceTensor, RuntimeError> {
        self.rank.from_array(x, &self.activation_placement())
    }

    fn shards(&self) -> usize {
        self.cubes * self.pes
    }

    /// `y = x w` on the device, `y` new, `[x.rows, w.cols]`.
    fn gemm(
        &self,
        x: &DeviceTensor,
        w: &DeviceTensor,
        relu: bool,
        layer: &str,
    ) -> Result<DeviceTensor, RuntimeError> {
        let err = |msg: String| {
            RuntimeError::TensorParallel(format!("{layer} on rank {}: {msg}", self.tp_rank()))
        };
        let [m, k] = match x.shape() {
            [m, k] => [*m, *k],
            s => return Err(err(format!("the input must be 2-D, got {s:?}"))),
        };
        let [wk, n] = [w.shape()[0], w.shape()[1]];
        if k != wk {
            return Err(err(format!(
                "the input has {k} features, the layer takes {wk}"
            )));
        }
        if x.dtype() != DType::F32 {
            return Err(err(format!(
                "the input is {}, the layer takes f32",
                x.dtype()
            )));
        }
        if x.placement() != &self.activation_placement() || m % self.shards() != 0 {
            return Err(err(format!(
                "the input must be placed with the layer's activation placement (rows split over {} PEs, a multiple of {} rows): use ModelParallel::input",
                self.shards(),
                self.shards()
            )));
        }
        let y = self
            .rank
            .zeros(&[m, n], DType::F32, &self.activation_placement())?;
        let args = Args::new()
            .tensor("x", x)
            .tensor("w", w)
            .tensor("y", &y)
            .bool("relu", relu);
        crate::dist::launch(
            self.rank.runtime(),
            &shard_gemm_f32,
            &[self.shards() as u32],
            &args,
        )?;
        Ok(y)
    }
}

/// A linear layer `Y = X A` whose weight `A` (`[in, out]`) is split by
/// columns: rank `r` holds `A[:, r * out/tp ..][.. out/tp]` and computes its
/// slice of `Y` (no communication; the output stays split, Megatron's
/// `gather_output = false`).
#[derive(Debug)]
pub struct ColumnParallelLinear {
    mp: ModelParallel,
    weight: DeviceTensor,
    relu: bool,
}

impl ColumnParallelLinear {
    /// The layer from the full weight (`[in, out]`, the same on every rank);
    /// this rank keeps its column block, placed on its SIP.
    pub fn new(mp: &ModelParallel, weight: &Array2<f32>) -> Result<Self, RuntimeError> {
        let (tp, r) = (mp.tp_size(), mp.tp_rank());
        let out = weight.ncols();
        if out % tp != 0 {
            return Err(RuntimeError::TensorParallel(format!(
                "ColumnParallelLinear: {out} output features do not split over {tp} ranks"
            )));
        }
        let per = out / tp;
        let local = weight.slice(s![.., r * per..(r + 1) * per]).to_owned();
        let weight = mp.rank.from_array(&local, &mp.weight_placement())?;
        Ok(ColumnParallelLinear {
            mp: mp.clone(),
            weight,
            relu: false,
        })
    }

    /// Applies ReLU to the output (in the GEMM's epilogue): the activation
    /// between the two layers of an MLP, elementwise, so it needs no communication.
    pub fn with_relu(mut self) -> Self {
        self.relu = true;
        self
    }

    /// This rank's weight block (`[in, out / tp]`).
    pub fn weight(&self) -> &DeviceTensor {
        &self.weight
    }

    /// `Y_r = X A_r` for the full input `X` (`[batch, in]`, placed with
    /// [`ModelParallel::input`]): this rank's `[batch, out / tp]` slice of `Y`.
    pub fn forward(&self, x: &DeviceTensor) -> Result<DeviceTensor, RuntimeError> {
        self.mp
            .gemm(x, &self.weight, self.relu, "ColumnParallelLinear")
    }
}

/// A linear layer `Z = Y B` whose weight `B` (`[in, out]`) is split by rows:
/// rank `r` holds `B[r * in/tp ..][.. in/tp, :]`, multiplies its input slice
/// `Y_r` (`[batch, in / tp]`, a column-parallel output) by it, and an
/// all-reduce sums the partial products: every rank ends with all of `Z`.
#[derive(Debug)]
pub struct RowParallelLinear {
    mp: ModelParallel,
    weight: DeviceTensor,
}

impl RowParallelLinear {
    /// The layer from the full weight (`[in, out]`, the same on every rank);
    /// this rank keeps its row block, placed on its SIP.
    pub fn new(mp: &ModelParallel, weight: &Array2<f32>) -> Result<Self, RuntimeError> {
        let (tp, r) = (mp.tp_size(), mp.tp_rank());
        let inp = weight.nrows();
        if inp % tp != 0 {
            return Err(RuntimeError::TensorParallel(format!(
                "RowParallelLinear: {inp} input features do not split over {tp} ranks"
            )));
        }
        let per = inp / tp;
        let local = weight.slice(s![r * per..(r + 1) * per, ..]).to_owned();
        let weight = mp.rank.from_array(&local, &mp.weight_placement())?;
        Ok(RowParallelLinear {
            mp: mp.clone(),
            weight,
        })
    }

    /// This rank's weight block (`[in / tp, out]`).
    pub fn weight(&self) -> &DeviceTensor {
        &self.weight
    }

    /// `Z = sum_r Y_r B_r`: the local GEMM, then an all-reduce across ranks
    /// (every rank must call it). Returns `Z` (`[batch, out]`) on this rank.
    pub fn forward(&self, y: &DeviceTensor) -> Result<DeviceTensor, RuntimeError> {
        let z = self.mp.gemm(y, &self.weight, false, "RowParallelLinear")?;
        self.mp.rank.all_reduce(&z)?;
        Ok(z)
    }
}
