//! Megatron-style tensor parallelism across ranks (rank = SIP), with the
//! GEMMs run as device kernels and the partial sums combined by an
//! all-reduce on the device.
//!
//! - [`ColumnParallelLinear`]: `Y = X A + a` with `A` (and the bias `a`)
//!   split by columns, rank `r` of the tensor-parallel group holding `A_r`;
//!   each rank computes its `Y_r = X A_r + a_r` (no communication).
//! - [`RowParallelLinear`]: `Z = Y B + b` with `B` split by rows; each rank
//!   computes `Y_r B_r` from its `Y_r`, and an all-reduce over the
//!   tensor-parallel group sums them. The bias is added once: by the GEMM of
//!   the group's rank 0, in its epilogue, before the sum.
//!
//! Column-parallel followed by row-parallel is the Megatron MLP: one
//! all-reduce per forward pass.
//!
//! [`RowParallelLinear::with_overlap`] runs the row-parallel GEMM and its
//! all-reduce as one launch over the tensor-parallel group
//! ([`linear_all_reduce`]): each rank computes its partial product a column
//! chunk at a time, and the chunks go round a ring (reduce-scatter, then
//! all-gather) while the next ones compute, so part of the communication
//! hides behind the GEMM. Every layer's forward pass can report what it
//! cost ([`LayerTime`]).
//!
//! [`initialize_model_parallel`] splits the run into tensor-parallel groups of
//! `tp` consecutive ranks and data-parallel groups of the ranks `tp` apart,
//! as Megatron does: with 8 ranks and `tp = 2`, the tensor-parallel groups
//! are `[0, 1]`, `[2, 3]`, ... and the data-parallel groups `[0, 2, 4, 6]`
//! and `[1, 3, 5, 7]`. Each data-parallel replica runs its own batch
//! ([`ModelParallel::local_batch`]); the groups' collectives meet
//! independently.
//!
//! Layers run in `f32`, `f16` or `bf16`, the type of the host arrays their
//! weights come from: operands are read in that type, the GEMM accumulates
//! in `f32` (and adds the bias and applies the activation there), and the output is
//! rounded to the layer's type, in which the all-reduce then sums.
//!
//! With sequence parallelism ([`ModelParallel::with_sequence_parallel`],
//! Megatron's `sequence_parallel=True`) the activations outside the pair of
//! layers are split by rows (tokens) over the tensor-parallel group as well:
//! the column-parallel layer all-gathers its input over the group before its
//! GEMM, and the row-parallel layer reduce-scatters its partial products
//! instead of all-reducing them, so each rank ends with its own rows of
//! `Z` ([`ModelParallel::sequence_rows`] says which).
//!
//! Inside a SIP the layers are data-parallel over PEs: activations are split
//! by rows (the batch) over the layout's PEs and weights are replicated on
//! them, so each PE multiplies its band of rows by its copy of the weight
//! ([`shard_linear`]), and shard `k` of every rank holds the same rows,
//! which is what the all-reduce pairs up.

use crate::dist::{Backend, Collectives};
use crate::run::RedOp;
use kernbench_core::ir::{ArgValue, KernelArgs};
use kernbench_core::neighbors::NeighborMap;
use kernbench_core::runtime::ndarray::{s, Array1, Array2};
use kernbench_core::runtime::{
    Args, CollectiveError, DeviceTensor, HostElement, Placement, ProcessGroup, Rank, RuntimeError,
    TpError, TpErrorKind,
};
use kernbench_core::sim::Launch;
use kernbench_core::{DType, PeId, Ps};
use kernbench_tl::prelude::*;
use kernbench_tl::Element;

/// The activation a [`ColumnParallelLinear`] applies to its output, in the
/// GEMM's epilogue after the bias: a kernel parameter of [`shard_linear`]
/// and [`shard_linear_bias`] (codes `0` none, `1` relu, `2` gelu).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, kernbench_tl::KernelEnum)]
pub enum Activation {
    /// The product (and bias) as it is.
    #[default]
    None,
    /// `max(x, 0)`.
    Relu,
    /// GELU in the tanh approximation of GPT-2 and Megatron
    /// (`0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))`, [`tl::gelu`]).
    Gelu,
}

impl Activation {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Activation::None => "none",
            Activation::Relu => "relu",
            Activation::Gelu => "gelu",
        }
    }

    /// The activation on the host, in f64 (GELU by the same tanh formula):
    /// what a reference applies.
    pub fn apply(self, x: f64) -> f64 {
        match self {
            Activation::None => x,
            Activation::Relu => x.max(0.0),
            Activation::Gelu => {
                let k = (2.0 / std::f64::consts::PI).sqrt();
                0.5 * x * (1.0 + (k * (x + 0.044715 * x * x * x)).tanh())
            }
        }
    }
}

/// The GEMM with `bias` (when given) and `act` in its epilogue, accumulated in f32.
#[kernel_fn]
fn linear_gemm<T: Element<Acc = f32>>(
    a: &Tile<T>,
    b: &Tile<T>,
    bias: Option<&Tile<f32>>,
    act: Activation,
) -> Tile<f32> {
    let mut ep = Vec::with_capacity(2);
    if let Some(bias) = bias {
        ep.push(Epilogue::Bias(bias));
    }
    match act {
        Activation::None => {}
        Activation::Relu => ep.push(Epilogue::Relu),
        Activation::Gelu => ep.push(Epilogue::Gelu),
    }
    tl::gemm(a, b, None, &ep)
}

/// `y = x w` (with the activation `act` applied on MATH before the
/// write-back) on every PE of the launch, each on its own shard: instance
/// `i` of `s` multiplies block `i` of `x` (`[x.rows() / s, k]`) by block
/// `i` of `w` (`[k, n]`, a replica) into block `i` of `y`, streaming the
/// operands from HBM as one composite GEMM that accumulates in f32; the
/// result is rounded to the operands' type.
#[kernel]
pub fn shard_linear<T: Element<Acc = f32>>(
    x: Tensor<T>,
    w: Tensor<T>,
    y: Tensor<T>,
    act: Activation,
) {
    let (i, s) = (tl::program_id(0), tl::num_programs(0));
    let (m, k, n) = (x.rows() / s, x.cols(), w.cols());
    let a = tl::stream(x.block([i * m, 0], [m, k]), [m, k]);
    let b = tl::stream(w.block([i * k, 0], [k, n]), [k, n]);
    let p = linear_gemm(&a, &b, None, act);
    tl::store(y.block([i * m, 0], [m, n]), &p.cast::<T>());
}

/// [`shard_linear`] with a bias: `y = act(x w + bias)`, the bias (`[n]`, a
/// replica on every PE) widened to f32 and added in the GEMM's epilogue
/// before the activation and the rounding.
#[kernel]
pub fn shard_linear_bias<T: Element<Acc = f32>>(
    x: Tensor<T>,
    w: Tensor<T>,
    bias: Tensor<T>,
    y: Tensor<T>,
    act: Activation,
) {
    let (i, s) = (tl::program_id(0), tl::num_programs(0));
    let (m, k, n) = (x.rows() / s, x.cols(), w.cols());
    let bias = tl::load(bias.block([i, 0], [1, n]), [1, n]).cast::<f32>();
    let a = tl::stream(x.block([i * m, 0], [m, k]), [m, k]);
    let b = tl::stream(w.block([i * k, 0], [k, n]), [k, n]);
    let p = linear_gemm(&a, &b, Some(&bias), act);
    tl::store(y.block([i * m, 0], [m, n]), &p.cast::<T>());
}

/// What one layer's forward pass cost on a rank's SIP, in simulated time:
/// its kernel launches (compute), its collectives (communication), and
/// launches that compute and communicate at once (overlapped, the
/// row-parallel layer [`RowParallelLinear::with_overlap`]). The runtime runs
/// launches one after the other (ADR 0005), so communication hides behind
/// compute only inside an overlapped launch: outside one, all of it is
/// exposed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LayerTime {
    /// The layer's compute-only kernel launches, ps.
    pub compute_ps: Ps,
    /// The layer's collectives, ps.
    pub comm_ps: Ps,
    /// The layer's launches that overlap compute with communication, ps.
    pub overlapped_ps: Ps,
}

impl LayerTime {
    /// The layer's simulated time: everything it launched, one after the other.
    pub fn total_ps(&self) -> Ps {
        self.compute_ps + self.comm_ps + self.overlapped_ps
    }
}

/// Columns `c0 .. c0 + cols` of this rank's partial product `y w` over the
/// rows of `a` (a band of `y`, already in TCM), plus the same columns of
/// the bias when `with_bias` (block `k` of the replicated `bias`), streaming
/// those columns of `w`'s block `k` from HBM; accumulated in f32 and
/// rounded to `T`.
#[kernel_fn]
pub fn partial_cols<T: Element<Acc = f32>>(
    a: &Tile<T>,
    w: Tensor<T>,
    bias: Tensor<T>,
    with_bias: bool,
    k: usize,
    c0: usize,
    cols: usize,
) -> Tile<T> {
    let kin = w.rows() / tl::num_programs(1);
    let b = tl::stream(w.block([k * kin, c0], [kin, cols]), [kin, cols]);
    if with_bias {
        let bias = tl::load(bias.block([k, c0], [1, cols]), [1, cols]).cast::<f32>();
        tl::gemm(a, &b, None, &[Epilogue::Bias(&bias)]).cast::<T>()
    } else {
        tl::gemm(a, &b, None, &[]).cast::<T>()
    }
}

/// The row-parallel GEMM with its all-reduce overlapped, on instance
/// `(r, k)` of a `[ranks, shards]` grid (group rank `r`, shard `k`): `y`,
/// `w` and `z` are rank `r`'s input (`[seq, in / tp]`, rows split over the
/// shards), weight block (replicated, `[shards * in / tp, n]`) and output
/// (`[seq, n]`). The `n` output columns of shard `k`'s rows are cut into
/// `ranks` chunks of `n / ranks` columns. Around the ring of shard `k` (`E`
/// next, `W` previous), a reduce-scatter passes each chunk's running sum on
/// while the GEMM of the next chunk computes, each partial sum rounded to
/// `T` as the ring all-reduce rounds it; then an all-gather passes the
/// reduced chunks round so every rank stores all of them. Group rank 0 adds
/// the bias (`with_bias`) in its GEMMs' epilogue.
#[kernel_fn]
pub fn linear_all_reduce_body<T: Element<Acc = f32>>(
    y: Tensor<T>,
    w: Tensor<T>,
    z: Tensor<T>,
    bias: Tensor<T>,
    with_bias: bool,
) {
    let (r, k) = (tl::program_id(0), tl::program_id(1));
    let (p, shards) = (tl::num_programs(0), tl::num_programs(1));
    let (kin, n) = (y.cols(), z.cols());
    let m = y.rows() / shards;
    let c = n / p;
    let r0 = k * m;
    let a = tl::load(y.block([r0, 0], [m, kin]), [m, kin]);
    let add_bias = with_bias && r == 0;
    // Reduce-scatter: at step s the ring passes chunk r - 1 - s on, and
    // after p - 1 steps this rank holds the sum of chunk r.
    let mut acc = partial_cols(&a, w, bias, add_bias, k, (r + p - 1) % p * c, c);
    for s in 0..p - 1 {
        let got = tl::recv_async::<T>(Dir::W, [m, c]);
        tl::send(Dir::E, &acc);
        let j = (r + 2 * p - 2 - s) % p;
        let mine = partial_cols(&a, w, bias, add_bias, k, j * c, c);
        acc = tl::wait(got) + mine;
    }
    tl::store(z.block([r0, r * c], [m, c]), &acc);
    // All-gather: at step s this rank receives the sum of chunk r - 1 - s.
    for s in 0..p - 1 {
        let got = tl::recv_async::<T>(Dir::W, [m, c]);
        tl::send(Dir::E, &acc);
        acc = tl::wait(got);
        let j = (r + 2 * p - 1 - s) % p;
        tl::store(z.block([r0, j * c], [m, c]), &acc);
    }
}

/// [`linear_all_reduce_body`] over a tensor-parallel group: `y`, `w` and
/// `z` are bound per instance ([`Launch::per_instance`]) to rank `r`'s own
/// input, weight and output, whose addresses differ from rank to rank.
#[kernel]
pub fn linear_all_reduce<T: Element<Acc = f32>>(
    y: Tensor<T>,
    w: Tensor<T>,
    z: Tensor<T>,
    bias: Tensor<T>,
    with_bias: bool,
) {
    linear_all_reduce_body(y, w, z, bias, with_bias);
}

/// What a rank brings to the overlapped row-parallel layer's launch.
#[derive(Clone, Debug)]
struct Operands {
    y: ArgValue,
    w: ArgValue,
    z: ArgValue,
    bias: Option<ArgValue>,
    pes: Vec<PeId>,
}

/// The parallel setting of one rank: its tensor- and data-parallel groups,
/// and the layout inside the rank's SIP.
#[derive(Clone, Debug)]
pub struct ModelParallel {
    rank: Rank,
    tp_group: ProcessGroup,
    dp_group: ProcessGroup,
    cubes: usize,
    pes: usize,
    sequence_parallel: bool,
}

/// Sets up tensor parallelism of degree `tp` for this rank, and data
/// parallelism of degree `world / tp` over the rest (Megatron's
/// `initialize_model_parallel`): tensor-parallel groups of `tp` consecutive
/// ranks, data-parallel groups of the ranks `tp` apart. Every rank of the run
/// must call it (it makes the groups, which is a rendezvous of every rank).
/// Inside the SIP the layers use one PE until [`ModelParallel::with_layout`]
/// says otherwise.
pub fn initialize_model_parallel(rank: &Rank, tp: usize) -> Result<ModelParallel, RuntimeError> {
    let w = rank.get_world_size();
    if tp == 0 || w % tp != 0 {
        return Err(TpError::new(TpErrorKind::Degree { tp, world: w }).into());
    }
    let dp = w / tp;
    let r = rank.get_rank();
    let mut tp_group = None;
    for g in 0..dp {
        let ranks: Vec<usize> = (g * tp..(g + 1) * tp).collect();
        let pg = rank.new_group(&ranks)?;
        if pg.contains(r) {
            tp_group = Some(pg);
        }
    }
    let mut dp_group = None;
    for j in 0..tp {
        let ranks: Vec<usize> = (0..dp).map(|g| g * tp + j).collect();
        let pg = rank.new_group(&ranks)?;
        if pg.contains(r) {
            dp_group = Some(pg);
        }
    }
    Ok(ModelParallel {
        rank: rank.clone(),
        tp_group: tp_group.expect("the tensor-parallel groups cover every rank"),
        dp_group: dp_group.expect("the data-parallel groups cover every rank"),
        cubes: 1,
        pes: 1,
        sequence_parallel: false,
    })
}

/// The element types the layers run in.
fn check_layer_dtype(layer: &'static str, dtype: DType) -> Result<(), RuntimeError> {
    match dtype {
        DType::F32 | DType::F16 | DType::Bf16 => Ok(()),
        _ => Err(TpError::build(layer, TpErrorKind::WeightDType { dtype }).into()),
    }
}

impl ModelParallel {
    /// Spreads the layers' rows over `pes` PEs of each of `cubes` cubes of the SIP.
    pub fn with_layout(mut self, cubes: usize, pes: usize) -> Self {
        self.cubes = cubes;
        self.pes = pes;
        self
    }

    /// Splits the activations outside the layers by rows over the
    /// tensor-parallel group: the column-parallel layer all-gathers its
    /// input, the row-parallel layer reduce-scatters its output (see the
    /// module docs).
    pub fn with_sequence_parallel(mut self) -> Self {
        self.sequence_parallel = true;
        self
    }

    /// The same setting with the activations outside the layers whole on
    /// every rank again: for a layer whose input is gathered by its caller.
    pub fn without_sequence_parallel(mut self) -> Self {
        self.sequence_parallel = false;
        self
    }

    /// Whether the layers run sequence-parallel.
    pub fn sequence_parallel(&self) -> bool {
        self.sequence_parallel
    }

    /// The rows of a `rows`-row activation (this replica's batch) that this
    /// rank holds under sequence parallelism, in the order it holds them.
    /// The gathers and scatters work shard by shard, so with `S` shards per
    /// SIP each of the `tp` ranks holds `S` bands of `q = rows / (tp S)`
    /// rows: band `k` of tensor-parallel rank `t` is rows
    /// `(k tp + t) q .. + q`. With one shard that is Megatron's contiguous
    /// split. `rows` must be a multiple of `tp S`.
    pub fn sequence_rows(&self, rows: usize) -> Result<Vec<usize>, RuntimeError> {
        let (tp, t, sh) = (self.tp_size(), self.tp_rank(), self.shards());
        if rows % (tp * sh) != 0 {
            return Err(TpError::new(TpErrorKind::SequenceRows { rows, tp, pes: sh }).into());
        }
        let q = rows / (tp * sh);
        Ok((0..sh)
            .flat_map(|k| (k * tp + t) * q..(k * tp + t + 1) * q)
            .collect())
    }

    /// This rank's rows of an activation (`[rows, features]`, this
    /// replica's batch) under sequence parallelism ([`Self::sequence_rows`]).
    pub fn sequence_shard<T: HostElement>(&self, x: &Array2<T>) -> Result<Array2<T>, RuntimeError> {
        let rows = self.sequence_rows(x.nrows())?;
        Ok(x.select(kernbench_core::runtime::ndarray::Axis(0), &rows))
    }

    /// The rank.
    pub fn rank(&self) -> &Rank {
        &self.rank
    }

    /// This rank's index in its tensor-parallel group.
    pub fn tp_rank(&self) -> usize {
        self.tp_group
            .group_rank(self.rank.get_rank())
            .expect("a rank is in its own group")
    }

    /// The tensor-parallel group's size.
    pub fn tp_size(&self) -> usize {
        self.tp_group.size()
    }

    /// The tensor-parallel group this rank is in.
    pub fn tp_group(&self) -> &ProcessGroup {
        &self.tp_group
    }

    /// This rank's index in its data-parallel group: the replica it belongs to.
    pub fn dp_rank(&self) -> usize {
        self.dp_group
            .group_rank(self.rank.get_rank())
            .expect("a rank is in its own group")
    }

    /// The data-parallel group's size: the number of replicas.
    pub fn dp_size(&self) -> usize {
        self.dp_group.size()
    }

    /// The data-parallel group this rank is in.
    pub fn dp_group(&self) -> &ProcessGroup {
        &self.dp_group
    }

    /// Sums `t` over the data-parallel group, in place (the gradient
    /// all-reduce of data parallelism).
    pub fn dp_all_reduce(&self, t: &DeviceTensor) -> Result<(), RuntimeError> {
        self.rank.all_reduce_in(t, RedOp::Sum, &self.dp_group)?;
        Ok(())
    }

    /// Where activations live: rows split over the layout's PEs.
    pub fn activation_placement(&self) -> Placement {
        Placement::row_wise().cubes(self.cubes).pes(self.pes)
    }

    /// Where weights and biases live: replicated on the layout's PEs.
    pub fn weight_placement(&self) -> Placement {
        Placement::replicate().cubes(self.cubes).pes(self.pes)
    }

    /// This replica's rows of a global batch (`[batch, features]`, the same
    /// on every rank): data-parallel rank `d` of `dp` takes rows
    /// `d * batch / dp ..`. The batch must split evenly.
    pub fn local_batch<T: HostElement>(&self, x: &Array2<T>) -> Result<Array2<T>, RuntimeError> {
        let (dp, d) = (self.dp_size(), self.dp_rank());
        let b = x.nrows();
        if b % dp != 0 {
            return Err(TpError::new(TpErrorKind::Batch { rows: b, dp }).into());
        }
        let per = b / dp;
        Ok(x.slice(s![d * per..(d + 1) * per, ..]).to_owned())
    }

    /// Places a host activation (`[batch, features]`) on this rank's SIP.
    pub fn input<T: HostElement>(&self, x: &Array2<T>) -> Result<DeviceTensor, RuntimeError> {
        self.rank.from_array(x, &self.activation_placement())
    }

    /// PEs the layers' rows are split over inside the SIP (cubes x PEs per cube).
    pub fn shards(&self) -> usize {
        self.cubes * self.pes
    }

    /// `y = x w (+ bias)` on the device, `y` new, `[x.rows, w.cols]`, of the
    /// layer's type; with the GEMM launch's simulated time.
    fn gemm(
        &self,
        x: &DeviceTensor,
        w: &DeviceTensor,
        bias: Option<&DeviceTensor>,
        act: Activation,
        layer: &'static str,
    ) -> Result<(DeviceTensor, Ps), RuntimeError> {
        let err = |kind| RuntimeError::from(TpError::forward(layer, self.rank.get_rank(), kind));
        let [m, k] = match x.shape() {
            [m, k] => [*m, *k],
            s => return Err(err(TpErrorKind::InputRank { shape: s.to_vec() })),
        };
        let [wk, n] = [w.shape()[0], w.shape()[1]];
        if k != wk {
            return Err(err(TpErrorKind::InputFeatures { got: k, want: wk }));
        }
        if x.dtype() != w.dtype() {
            return Err(err(TpErrorKind::InputDType {
                input: x.dtype(),
                weights: w.dtype(),
            }));
        }
        if x.placement() != &self.activation_placement() || m % self.shards() != 0 {
            return Err(err(TpErrorKind::InputPlacement {
                rows: m,
                pes: self.shards(),
            }));
        }
        let y = self
            .rank
            .zeros(&[m, n], w.dtype(), &self.activation_placement())?;
        let args = Args::new()
            .tensor("x", x)
            .tensor("w", w)
            .tensor("y", &y)
            .int("act", act.code() as i64);
        let grid = [self.shards() as u32];
        let report = match bias {
            Some(b) => crate::dist::launch(
                self.rank.runtime(),
                &shard_linear_bias,
                &grid,
                &args.tensor("bias", b),
            )?,
            None => crate::dist::launch(self.rank.runtime(), &shard_linear, &grid, &args)?,
        };
        Ok((y, report.end_ps))
    }

    /// Places a weight block and its bias block on this rank's SIP.
    fn place<T: HostElement>(
        &self,
        layer: &'static str,
        weight: Array2<T>,
        bias: Option<Array1<T>>,
    ) -> Result<(DeviceTensor, Option<DeviceTensor>), RuntimeError> {
        check_layer_dtype(layer, T::DTYPE)?;
        let p = self.weight_placement();
        let w = self.rank.from_array(&weight, &p)?;
        let b = match bias {
            Some(b) => Some(self.rank.from_array(&b, &p)?),
            None => None,
        };
        Ok((w, b))
    }
}

/// A linear layer `Y = X A + a` whose weight `A` (`[in, out]`) and bias `a`
/// (`[out]`) are split by columns: tensor-parallel rank `r` holds
/// `A[:, r * out/tp ..][.. out/tp]` and the same slice of `a`, and computes
/// its slice of `Y` (no communication; the output stays split, Megatron's
/// `gather_output = false`).
#[derive(Debug)]
pub struct ColumnParallelLinear {
    mp: ModelParallel,
    weight: DeviceTensor,
    bias: Option<DeviceTensor>,
    act: Activation,
}

impl ColumnParallelLinear {
    /// The layer from the full weight (`[in, out]`) and bias (`[out]`), the
    /// same on every rank, of type `f32`, `f16` or `bf16` (the layer's
    /// type); this rank keeps its column block, placed on its SIP.
    pub fn new<T: HostElement>(
        mp: &ModelParallel,
        weight: &Array2<T>,
        bias: Option<&Array1<T>>,
    ) -> Result<Self, RuntimeError> {
        let (tp, r) = (mp.tp_size(), mp.tp_rank());
        let err = |kind| RuntimeError::from(TpError::build("ColumnParallelLinear", kind));
        let out = weight.ncols();
        if out % tp != 0 {
            return Err(err(TpErrorKind::SplitOutputs { features: out, tp }));
        }
        if let Some(b) = bias.filter(|b| b.len() != out) {
            return Err(err(TpErrorKind::BiasLength {
                len: b.len(),
                features: out,
            }));
        }
        let cols = s![.., r * (out / tp)..(r + 1) * (out / tp)];
        let local = weight.slice(cols).to_owned();
        let local_bias = bias.map(|b| b.slice(s![r * (out / tp)..(r + 1) * (out / tp)]).to_owned());
        let (weight, bias) = mp.place("ColumnParallelLinear", local, local_bias)?;
        Ok(ColumnParallelLinear {
            mp: mp.clone(),
            weight,
            bias,
            act: Activation::None,
        })
    }

    /// Applies ReLU to the output (in the GEMM's epilogue, after the bias):
    /// the activation between the two layers of an MLP, elementwise, so it
    /// needs no communication.
    pub fn with_relu(self) -> Self {
        self.with_activation(Activation::Relu)
    }

    /// Applies GELU (the tanh approximation) to the output, in the GEMM's
    /// epilogue after the bias, as [`Self::with_relu`] does ReLU.
    pub fn with_gelu(self) -> Self {
        self.with_activation(Activation::Gelu)
    }

    /// Applies `act` to the output, in the GEMM's epilogue after the bias.
    pub fn with_activation(mut self, act: Activation) -> Self {
        self.act = act;
        self
    }

    /// The activation the layer applies.
    pub fn activation(&self) -> Activation {
        self.act
    }

    /// This rank's weight block (`[in, out / tp]`).
    pub fn weight(&self) -> &DeviceTensor {
        &self.weight
    }

    /// This rank's bias block (`[out / tp]`), if the layer has a bias.
    pub fn bias(&self) -> Option<&DeviceTensor> {
        self.bias.as_ref()
    }

    /// `Y_r = X A_r + a_r` for the full input `X` (`[batch, in]`, placed with
    /// [`ModelParallel::input`]): this rank's `[batch, out / tp]` slice of `Y`.
    ///
    /// Sequence-parallel, `x` is this rank's rows ([`ModelParallel::sequence_shard`],
    /// `[batch / tp, in]`): the layer first all-gathers them over the
    /// tensor-parallel group into the whole `[batch, in]`.
    pub fn forward(&self, x: &DeviceTensor) -> Result<DeviceTensor, RuntimeError> {
        Ok(self.forward_timed(x)?.0)
    }

    /// [`Self::forward`], with what it cost on this rank's SIP: the GEMM as
    /// compute, the sequence-parallel all-gather (if any) as communication.
    pub fn forward_timed(
        &self,
        x: &DeviceTensor,
    ) -> Result<(DeviceTensor, LayerTime), RuntimeError> {
        let mp = &self.mp;
        let mut time = LayerTime::default();
        let gathered;
        let x = if mp.sequence_parallel && mp.tp_size() > 1 {
            let [m, k] = match x.shape() {
                [m, k] => [*m, *k],
                s => {
                    let kind = TpErrorKind::InputRank { shape: s.to_vec() };
                    let rank = mp.rank.get_rank();
                    return Err(TpError::forward("ColumnParallelLinear", rank, kind).into());
                }
            };
            gathered = mp.rank.zeros(
                &[m * mp.tp_size(), k],
                x.dtype(),
                &mp.activation_placement(),
            )?;
            time.comm_ps += crate::dist::all_gather_shards_in(
                &mp.rank,
                &gathered,
                x,
                &mp.tp_group,
                &Backend::default(),
            )?
            .end_ps;
            &gathered
        } else {
            x
        };
        let (y, ps) = mp.gemm(
            x,
            &self.weight,
            self.bias.as_ref(),
            self.act,
            "ColumnParallelLinear",
        )?;
        time.compute_ps += ps;
        Ok((y, time))
    }
}

/// A linear layer `Z = Y B + b` whose weight `B` (`[in, out]`) is split by
/// rows: tensor-parallel rank `r` holds `B[r * in/tp ..][.. in/tp, :]`,
/// multiplies its input slice `Y_r` (`[batch, in / tp]`, a column-parallel
/// output) by it, and an all-reduce over the tensor-parallel group sums the
/// partial products: every rank of the group ends with all of `Z`. The bias
/// (`[out]`, not split) is added once, by the group's rank 0.
#[derive(Debug)]
pub struct RowParallelLinear {
    mp: ModelParallel,
    weight: DeviceTensor,
    bias: Option<DeviceTensor>,
    backend: Backend,
    overlap: bool,
}

impl RowParallelLinear {
    /// The layer from the full weight (`[in, out]`) and bias (`[out]`), the
    /// same on every rank, of type `f32`, `f16` or `bf16`; this rank keeps
    /// its row block (and, on tensor-parallel rank 0, the bias), placed on
    /// its SIP.
    pub fn new<T: HostElement>(
        mp: &ModelParallel,
        weight: &Array2<T>,
        bias: Option<&Array1<T>>,
    ) -> Result<Self, RuntimeError> {
        let (tp, r) = (mp.tp_size(), mp.tp_rank());
        let err = |kind| RuntimeError::from(TpError::build("RowParallelLinear", kind));
        let (inp, out) = weight.dim();
        if inp % tp != 0 {
            return Err(err(TpErrorKind::SplitInputs { features: inp, tp }));
        }
        if let Some(b) = bias.filter(|b| b.len() != out) {
            return Err(err(TpErrorKind::BiasLength {
                len: b.len(),
                features: out,
            }));
        }
        let per = inp / tp;
        let local = weight.slice(s![r * per..(r + 1) * per, ..]).to_owned();
        let local_bias = bias.filter(|_| r == 0).cloned();
        let (weight, bias) = mp.place("RowParallelLinear", local, local_bias)?;
        Ok(RowParallelLinear {
            mp: mp.clone(),
            weight,
            bias,
            backend: Backend::default(),
            overlap: false,
        })
    }

    /// Sums the partial products with `backend`'s all-reduce (or, sequence-
    /// parallel, its reduce-scatter) instead of the default ring.
    pub fn with_backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }

    /// Overlaps the all-reduce with the GEMM: one launch over the
    /// tensor-parallel group ([`linear_all_reduce`]) computes each rank's
    /// partial product chunk by chunk and passes the chunks round a ring
    /// while the next ones compute, instead of the GEMM and then the
    /// backend's all-reduce. The output features must be a multiple of the
    /// tensor-parallel size; it does not apply under sequence parallelism
    /// (the layer reduce-scatters there) or with one rank.
    pub fn with_overlap(mut self) -> Self {
        self.overlap = true;
        self
    }

    /// This rank's weight block (`[in / tp, out]`).
    pub fn weight(&self) -> &DeviceTensor {
        &self.weight
    }

    /// The bias this rank adds (`[out]`): tensor-parallel rank 0's only.
    pub fn bias(&self) -> Option<&DeviceTensor> {
        self.bias.as_ref()
    }

    /// `Z = sum_r Y_r B_r + b`: the local GEMM, then an all-reduce over the
    /// tensor-parallel group (every member must call it). Returns `Z`
    /// (`[batch, out]`) on this rank; sequence-parallel, a reduce-scatter
    /// instead, and this rank's rows of `Z` (`[batch / tp, out]`, the rows
    /// [`ModelParallel::sequence_rows`] names).
    pub fn forward(&self, y: &DeviceTensor) -> Result<DeviceTensor, RuntimeError> {
        Ok(self.forward_timed(y)?.0)
    }

    /// [`Self::forward`], with what it cost on this rank's SIP: the GEMM as
    /// compute, the all-reduce (or reduce-scatter) as communication.
    pub fn forward_timed(
        &self,
        y: &DeviceTensor,
    ) -> Result<(DeviceTensor, LayerTime), RuntimeError> {
        let mp = &self.mp;
        if self.overlap && !mp.sequence_parallel && mp.tp_size() > 1 {
            return self.forward_overlapped(y);
        }
        let (z, compute_ps) = self.mp.gemm(
            y,
            &self.weight,
            self.bias.as_ref(),
            Activation::None,
            "RowParallelLinear",
        )?;
        let mut time = LayerTime {
            compute_ps,
            ..LayerTime::default()
        };
        if self.mp.sequence_parallel && self.mp.tp_size() > 1 {
            let mp = &self.mp;
            let [m, n] = [z.shape()[0], z.shape()[1]];
            if m % (mp.tp_size() * mp.shards()) != 0 {
                let kind = TpErrorKind::SequenceRows {
                    rows: m,
                    tp: mp.tp_size(),
                    pes: mp.shards(),
                };
                let rank = mp.rank.get_rank();
                return Err(TpError::forward("RowParallelLinear", rank, kind).into());
            }
            let mine = mp.rank.zeros(
                &[m / mp.tp_size(), n],
                z.dtype(),
                &mp.activation_placement(),
            )?;
            time.comm_ps += crate::dist::reduce_scatter_shards_in(
                &mp.rank,
                &mine,
                &z,
                RedOp::Sum,
                &mp.tp_group,
                &self.backend,
            )?
            .end_ps;
            return Ok((mine, time));
        }
        if self.mp.tp_size() > 1 {
            time.comm_ps += crate::dist::all_reduce_in(
                &self.mp.rank,
                &z,
                RedOp::Sum,
                &self.mp.tp_group,
                &self.backend,
            )?
            .end_ps;
        }
        Ok((z, time))
    }

    /// The GEMM and the all-reduce as one launch ([`Self::with_overlap`]).
    fn forward_overlapped(
        &self,
        y: &DeviceTensor,
    ) -> Result<(DeviceTensor, LayerTime), RuntimeError> {
        let mp = &self.mp;
        let (tp, sh) = (mp.tp_size(), mp.shards());
        let err = |kind| {
            let rank = mp.rank.get_rank();
            RuntimeError::from(TpError::forward(
                "RowParallelLinear (overlapped)",
                rank,
                kind,
            ))
        };
        let (m, k) = match y.shape() {
            [m, k] => (*m, *k),
            s => return Err(err(TpErrorKind::InputRank { shape: s.to_vec() })),
        };
        let (wk, n) = (self.weight.shape()[0], self.weight.shape()[1]);
        if k != wk {
            return Err(err(TpErrorKind::InputFeatures { got: k, want: wk }));
        }
        if y.dtype() != self.weight.dtype() {
            return Err(err(TpErrorKind::InputDType {
                input: y.dtype(),
                weights: self.weight.dtype(),
            }));
        }
        if y.placement() != &mp.activation_placement() || m % sh != 0 {
            return Err(err(TpErrorKind::InputPlacement { rows: m, pes: sh }));
        }
        if n % tp != 0 {
            return Err(err(TpErrorKind::OverlapChunks { features: n, tp }));
        }
        let z = mp
            .rank
            .zeros(&[m, n], y.dtype(), &mp.activation_placement())?;
        let mine = Operands {
            y: y.arg_tensor(),
            w: self.weight.arg_tensor(),
            z: z.arg_tensor(),
            bias: self.bias.as_ref().map(DeviceTensor::arg_tensor),
            pes: z.shards().iter().map(|s| s.pe_id()).collect(),
        };
        let rt = mp.rank.runtime().clone();
        let report = mp.rank.rendezvous_in(
            &mp.tp_group,
            "row-parallel GEMM + all-reduce",
            mine,
            move |ops: Vec<Operands>| {
                let p = ops.len();
                let mut args = KernelArgs::new();
                // Instance (r, k) works on rank r's own tensors.
                let each = |f: fn(&Operands) -> &ArgValue| -> Vec<ArgValue> {
                    (0..sh)
                        .flat_map(|_| ops.iter().map(|o| f(o).clone()))
                        .collect()
                };
                let (ys, ws, zs) = (each(|o| &o.y), each(|o| &o.w), each(|o| &o.z));
                // Group rank 0 holds the bias; without one, any tensor of
                // the type stands in, unread.
                args.set("bias", ops[0].bias.clone().unwrap_or(ops[0].z.clone()));
                args.set("with_bias", ArgValue::Bool(ops[0].bias.is_some()));
                let mut pes = Vec::with_capacity(p * sh);
                let mut neighbors = NeighborMap::empty("ring");
                for k in 0..sh {
                    let ring: Vec<PeId> = ops.iter().map(|o| o.pes[k]).collect();
                    let map = NeighborMap::ring(&ring).map_err(|e| RuntimeError::Collective {
                        what: "row-parallel GEMM + all-reduce".into(),
                        kind: CollectiveError::Map(e),
                    })?;
                    neighbors.merge(&map);
                    pes.extend(ring);
                }
                let launch = Launch::new(&linear_all_reduce, args, pes)
                    .per_instance("y", ys)
                    .per_instance("w", ws)
                    .per_instance("z", zs)
                    .grid(&[p as u32, sh as u32])
                    .neighbors(neighbors);
                rt.simulate(&launch)
            },
        )?;
        Ok((
            z,
            LayerTime {
                overlapped_ps: report.end_ps,
                ..LayerTime::default()
            },
        ))
    }
}
