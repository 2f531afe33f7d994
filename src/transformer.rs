//! A GPT-style transformer block with Megatron tensor parallelism across
//! ranks (rank = SIP), every step a device kernel or a collective:
//!
//! ```text
//! h = x + proj(attention(qkv(ln1(x))))      qkv column-parallel, proj row-parallel + all-reduce
//! y = h + fc2(act(fc1(ln2(h))))             fc1 column-parallel, fc2 row-parallel + all-reduce
//! ```
//!
//! The MLP's activation `act` is GELU in the tanh approximation of GPT-2
//! and Megatron (`0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))`) by
//! default, or ReLU ([`TransformerBlock::with_activation`]); either runs in
//! `fc1`'s GEMM epilogue, in f32, before the rounding to the block's type.
//!
//! The layer norms ([`layernorm`]) and the
//! residual adds ([`add_rows`]) run on every rank of the tensor-parallel
//! group on the whole activation, as Megatron does without sequence
//! parallelism. The QKV projection is one [`ColumnParallelLinear`] whose
//! columns are arranged so that rank `r`'s block holds the queries, keys and
//! values of its own heads (heads `r * heads / tp ..`); the causal attention
//! ([`causal_attention_heads`]) then needs no communication, and its output
//! columns are exactly the input rows of the output projection that rank
//! `r` holds. Inside the SIP the activations are split by rows over the
//! layout's PEs ([`ModelParallel::with_layout`]); the attention kernel reads
//! the keys and values of earlier rows from the PEs that hold them.
//!
//! With [`TransformerBlock::with_overlap`] the row-parallel layers run their
//! GEMM and all-reduce as one launch in which the chunks of the partial
//! product travel round the ring while the next chunks compute.
//!
//! # Sequence parallelism
//!
//! With a [`ModelParallel::with_sequence_parallel`] setting (Megatron's
//! `sequence_parallel=True`) the activations outside the tensor-parallel
//! regions are split along the sequence: tensor-parallel rank `t` of `tp`
//! holds the contiguous block of rows `t seq / tp .. (t + 1) seq / tp`
//! ([`TransformerBlock::sequence_block`]), and runs the layer norms and
//! residual adds on those rows only. Each column-parallel layer all-gathers
//! its input over the group, and each row-parallel layer reduce-scatters its
//! partial products instead of all-reducing them, so the block's output on
//! rank `t` is its own block of rows. The all-gather and reduce-scatter pair
//! the ranks' shards PE by PE, so with the block's rows split over `S` PEs
//! inside a SIP, the gathered sequence comes out in bands of `q = seq / (tp
//! S)` rows in the order (PE, rank) rather than in sequence order. The MLP
//! works row by row and does not mind; the causal attention does, so before
//! the QKV projection a launch on the SIP's PEs ([`regroup_bands`]) moves the
//! bands into sequence order, and after the attention another moves its
//! output's bands back, for the output projection's reduce-scatter to hand
//! each rank its own rows. Those moves between the SIP's PEs are counted as
//! communication of the projection they serve. With one PE per SIP they are
//! not needed and not run. [`TransformerBlock::with_overlap`] does not apply
//! to a sequence-parallel block: its row-parallel layers reduce-scatter.
//!
//! [`reference()`] computes the same block on the host in f64, rounding to
//! the block's type where the device stores a result, so that the device's
//! output can be checked element by element.

use crate::ccl::dist::{all_gather_shards_in, Backend};
pub use crate::ccl::tp::Activation;
use crate::ccl::tp::{ColumnParallelLinear, LayerTime, ModelParallel, RowParallelLinear};
use crate::kernels::{add_rows, causal_attention_heads, layernorm};
use kernbench_core::runtime::ndarray::{s, Array1, Array2, Axis};
use kernbench_core::runtime::{
    Args, DeviceTensor, HostElement, RuntimeError, TpError, TpErrorKind,
};
use kernbench_tl::prelude::*;
use kernbench_tl::Element;
use std::ops::Range;

/// The names of the steps of [`TransformerBlock::forward`], in order.
pub const STEPS: [&str; 9] = [
    "ln1",
    "qkv (column-parallel)",
    "causal attention",
    "out proj (row-parallel)",
    "residual 1",
    "ln2",
    "fc1 + activation (column-parallel)",
    "fc2 (row-parallel)",
    "residual 2",
];

/// What each step of a forward pass cost, in the order of [`STEPS`].
pub type StepTimes = Vec<(&'static str, LayerTime)>;

/// The layer norms' epsilon.
pub const EPS: f64 = 1e-5;

/// The weights of one block, whole (every rank passes the same): `hidden`
/// features, `ffn` in the MLP. `qkv_w` is `[hidden, 3 hidden]`, the queries
/// in columns `0 .. hidden`, the keys in `hidden ..` and the values in
/// `2 hidden ..`, head `j` in columns `j d .. (j + 1) d` of each third
/// (`d = hidden / heads`).
#[derive(Clone, Debug)]
pub struct BlockWeights<T> {
    /// First layer norm's weight, `[hidden]`.
    pub ln1_w: Array1<T>,
    /// First layer norm's bias, `[hidden]`.
    pub ln1_b: Array1<T>,
    /// QKV projection, `[hidden, 3 hidden]`.
    pub qkv_w: Array2<T>,
    /// QKV bias, `[3 hidden]`.
    pub qkv_b: Array1<T>,
    /// Output projection, `[hidden, hidden]`.
    pub proj_w: Array2<T>,
    /// Output projection's bias, `[hidden]`.
    pub proj_b: Array1<T>,
    /// Second layer norm's weight, `[hidden]`.
    pub ln2_w: Array1<T>,
    /// Second layer norm's bias, `[hidden]`.
    pub ln2_b: Array1<T>,
    /// First MLP layer, `[hidden, ffn]`.
    pub fc1_w: Array2<T>,
    /// First MLP layer's bias, `[ffn]`.
    pub fc1_b: Array1<T>,
    /// Second MLP layer, `[ffn, hidden]`.
    pub fc2_w: Array2<T>,
    /// Second MLP layer's bias, `[hidden]`.
    pub fc2_b: Array1<T>,
}

/// A deterministic value in about `[-amp, amp]` for position `(i, j)` of
/// the tensor numbered `seed`: the inputs of the examples and tests.
pub fn sample_value(seed: usize, i: usize, j: usize, amp: f64) -> f64 {
    let h = (i * 7 + j * 13 + seed * 31 + i * j % 11) % 97;
    (h as f64 / 48.0 - 1.0) * amp
}

impl BlockWeights<f64> {
    /// Deterministic weights for a block of `hidden` features and an MLP
    /// of `ffn`, from [`sample_value`]: matrices scaled by one over the
    /// square root of their depth, layer-norm weights about 1, biases small.
    pub fn sample(hidden: usize, ffn: usize) -> BlockWeights<f64> {
        let m = |seed, r, c| {
            let amp = 1.0 / (r as f64).sqrt();
            Array2::from_shape_fn((r, c), |(i, j)| sample_value(seed, i, j, amp))
        };
        let v = |seed, n, base: f64, amp| {
            Array1::from_shape_fn(n, |j| base + sample_value(seed, j, 3, amp))
        };
        BlockWeights {
            ln1_w: v(1, hidden, 1.0, 0.25),
            ln1_b: v(2, hidden, 0.0, 0.1),
            qkv_w: m(3, hidden, 3 * hidden),
            qkv_b: v(4, 3 * hidden, 0.0, 0.1),
            proj_w: m(5, hidden, hidden),
            proj_b: v(6, hidden, 0.0, 0.1),
            ln2_w: v(7, hidden, 1.0, 0.25),
            ln2_b: v(8, hidden, 0.0, 0.1),
            fc1_w: m(9, hidden, ffn),
            fc1_b: v(10, ffn, 0.0, 0.1),
            fc2_w: m(11, ffn, hidden),
            fc2_b: v(12, hidden, 0.0, 0.1),
        }
    }
}

impl<T: Clone> BlockWeights<T> {
    /// Every weight mapped elementwise (rounding into a type, widening out of one).
    pub fn map<U>(&self, f: impl Fn(&T) -> U) -> BlockWeights<U> {
        BlockWeights {
            ln1_w: self.ln1_w.map(&f),
            ln1_b: self.ln1_b.map(&f),
            qkv_w: self.qkv_w.map(&f),
            qkv_b: self.qkv_b.map(&f),
            proj_w: self.proj_w.map(&f),
            proj_b: self.proj_b.map(&f),
            ln2_w: self.ln2_w.map(&f),
            ln2_b: self.ln2_b.map(&f),
            fc1_w: self.fc1_w.map(&f),
            fc1_b: self.fc1_b.map(&f),
            fc2_w: self.fc2_w.map(&f),
            fc2_b: self.fc2_b.map(&f),
        }
    }

    /// The model's width.
    pub fn hidden(&self) -> usize {
        self.qkv_w.nrows()
    }

    /// The MLP's width.
    pub fn ffn(&self) -> usize {
        self.fc1_w.ncols()
    }

    /// Checks that the shapes fit together and that `heads` divides the width.
    pub fn check(&self, heads: usize) -> Result<(), RuntimeError> {
        let (h, f) = (self.hidden(), self.ffn());
        let err = |kind| Err(TpError::build("TransformerBlock", kind).into());
        if h == 0 || f == 0 {
            return err(TpErrorKind::ZeroWidth { hidden: h, ffn: f });
        }
        if heads == 0 || h % heads != 0 {
            return err(TpErrorKind::HeadWidth { heads, hidden: h });
        }
        let shapes = [
            ("qkv_w", self.qkv_w.dim(), (h, 3 * h)),
            ("proj_w", self.proj_w.dim(), (h, h)),
            ("fc1_w", self.fc1_w.dim(), (h, f)),
            ("fc2_w", self.fc2_w.dim(), (f, h)),
        ];
        for (name, got, want) in shapes {
            if got != want {
                return err(TpErrorKind::WeightShape { name, got, want });
            }
        }
        let lens = [
            ("ln1_w", self.ln1_w.len(), h),
            ("ln1_b", self.ln1_b.len(), h),
            ("qkv_b", self.qkv_b.len(), 3 * h),
            ("proj_b", self.proj_b.len(), h),
            ("ln2_w", self.ln2_w.len(), h),
            ("ln2_b", self.ln2_b.len(), h),
            ("fc1_b", self.fc1_b.len(), f),
            ("fc2_b", self.fc2_b.len(), h),
        ];
        for (name, got, want) in lens {
            if got != want {
                return err(TpErrorKind::WeightLength { name, got, want });
            }
        }
        Ok(())
    }
}

/// Moves bands of `q = src.rows() / (tp * S)` rows (`S` the launch's
/// instances, one per PE holding a block of `src`'s and `dst`'s rows) between
/// the two orders of a sequence-parallel block's gathered activation. In
/// *gathered* order, PE `p`'s rows are the bands of PE `p` of each of the
/// `tp` ranks in turn: slot `j` holds sequence band `j S + p`. In *sequence*
/// order, band `b` is rows `b q ..`. With `to_sequence` the kernel moves
/// `src` from gathered into sequence order, otherwise back. Instance `p`
/// writes its own rows of `dst` and reads each band from the PE that holds it.
#[kernel]
pub fn regroup_bands<T: Element>(src: Tensor<T>, dst: Tensor<T>, tp: usize, to_sequence: bool) {
    let (p, s) = (tl::program_id(0), tl::num_programs(0));
    let cols = src.cols();
    let q = src.rows() / (tp * s);
    for j in 0..tp {
        // Rows `here ..` of dst are this PE's slot j.
        let here = (p * tp + j) * q;
        let from = if to_sequence {
            // Sequence band b = p tp + j sits in gathered slot b / S of PE b % S.
            let b = p * tp + j;
            ((b % s) * tp + b / s) * q
        } else {
            // Gathered slot j of PE p is sequence band j S + p.
            (j * s + p) * q
        };
        let band = tl::load(src.block([from, 0], [q, cols]), [q, cols]);
        tl::store(dst.block([here, 0], [q, cols]), &band);
    }
}

/// One rank's part of a tensor-parallel transformer block, its weights on
/// the rank's SIP.
#[derive(Debug)]
pub struct TransformerBlock {
    mp: ModelParallel,
    hidden: usize,
    local_heads: usize,
    ln1: (DeviceTensor, DeviceTensor),
    qkv: ColumnParallelLinear,
    proj: RowParallelLinear,
    ln2: (DeviceTensor, DeviceTensor),
    fc1: ColumnParallelLinear,
    fc2: RowParallelLinear,
}

impl TransformerBlock {
    /// The block of `heads` attention heads from its whole weights (the
    /// same on every rank, in `f32`, `f16` or `bf16`); this rank keeps the
    /// heads `r * heads / tp ..` of its tensor-parallel rank `r`, and its
    /// blocks of the MLP. `heads` must be a multiple of the tensor-parallel
    /// size and divide the hidden size, and `ffn` must split over the
    /// tensor-parallel group. With a sequence-parallel `mp` the block runs
    /// sequence-parallel (see the module docs).
    pub fn new<T: HostElement>(
        mp: &ModelParallel,
        heads: usize,
        w: &BlockWeights<T>,
    ) -> Result<Self, RuntimeError> {
        w.check(heads)?;
        let tp = mp.tp_size();
        let err = |kind| RuntimeError::from(TpError::build("TransformerBlock", kind));
        if heads % tp != 0 {
            return Err(err(TpErrorKind::HeadsPerRank { heads, tp }));
        }
        let (hidden, d, local_heads) = (w.hidden(), w.hidden() / heads, heads / tp);
        // Columns of the QKV projection in rank order: rank r's block of
        // 3 hidden / tp columns is its heads' queries, then keys, then values.
        let cols: Vec<usize> = (0..tp)
            .flat_map(|r| {
                (0..3).flat_map(move |part| {
                    let c0 = part * hidden + r * local_heads * d;
                    c0..c0 + local_heads * d
                })
            })
            .collect();
        let qkv_w = w.qkv_w.select(Axis(1), &cols);
        let qkv_b = w.qkv_b.select(Axis(0), &cols);
        let place = |a: &Array1<T>| mp.rank().from_array(a, &mp.weight_placement());
        Ok(TransformerBlock {
            mp: mp.clone(),
            hidden,
            local_heads,
            ln1: (place(&w.ln1_w)?, place(&w.ln1_b)?),
            // Sequence-parallel, the block gathers the QKV projection's
            // input itself, to put it in sequence order first.
            qkv: ColumnParallelLinear::new(
                &mp.clone().without_sequence_parallel(),
                &qkv_w,
                Some(&qkv_b),
            )?,
            proj: RowParallelLinear::new(mp, &w.proj_w, Some(&w.proj_b))?,
            ln2: (place(&w.ln2_w)?, place(&w.ln2_b)?),
            fc1: ColumnParallelLinear::new(mp, &w.fc1_w, Some(&w.fc1_b))?
                .with_activation(Activation::Gelu),
            fc2: RowParallelLinear::new(mp, &w.fc2_w, Some(&w.fc2_b))?,
        })
    }

    /// Runs each row-parallel layer's GEMM and all-reduce as one launch that
    /// overlaps them ([`RowParallelLinear::with_overlap`]). A
    /// sequence-parallel block reduce-scatters instead and runs as it did.
    pub fn with_overlap(mut self) -> Self {
        self.proj = self.proj.with_overlap();
        self.fc2 = self.fc2.with_overlap();
        self
    }

    /// Uses `act` between the MLP's layers instead of GELU (the default).
    pub fn with_activation(mut self, act: Activation) -> Self {
        self.fc1 = self.fc1.with_activation(act);
        self
    }

    /// The MLP's activation.
    pub fn activation(&self) -> Activation {
        self.fc1.activation()
    }

    /// Whether the block runs sequence-parallel.
    pub fn sequence_parallel(&self) -> bool {
        self.mp.sequence_parallel()
    }

    /// The rows of a `seq`-row sequence that this rank's input and output
    /// hold: all of them, or sequence-parallel, its tensor-parallel rank
    /// `t`'s contiguous block `t seq / tp .. (t + 1) seq / tp`. An error
    /// when sequence-parallel rows do not split into `tp` ranks times the
    /// layout's PEs.
    pub fn sequence_block(&self, seq: usize) -> Result<Range<usize>, RuntimeError> {
        let mp = &self.mp;
        if !mp.sequence_parallel() {
            return Ok(0..seq);
        }
        let (tp, t, sh) = (mp.tp_size(), mp.tp_rank(), mp.shards());
        if seq == 0 || seq % (tp * sh) != 0 {
            let kind = TpErrorKind::SequenceRows {
                rows: seq,
                tp,
                pes: sh,
            };
            let rank = mp.rank().get_rank();
            return Err(TpError::forward("TransformerBlock", rank, kind).into());
        }
        let per = seq / tp;
        Ok(t * per..(t + 1) * per)
    }

    /// The heads this rank computes.
    pub fn local_heads(&self) -> usize {
        self.local_heads
    }

    /// The block's forward pass on `x` (`[seq, hidden]`, one sequence,
    /// placed with [`ModelParallel::input`]; every rank of the
    /// tensor-parallel group passes the same). Returns `y` (`[seq,
    /// hidden]`, the same on every rank of the group) and what each step
    /// of [`STEPS`] cost on this rank's SIP.
    ///
    /// Sequence-parallel, `x` is this rank's block of the sequence
    /// ([`Self::sequence_block`], `[seq / tp, hidden]`) and so is `y`.
    pub fn forward(&self, x: &DeviceTensor) -> Result<(DeviceTensor, StepTimes), RuntimeError> {
        let mp = &self.mp;
        let r = mp.rank().get_rank();
        let err = |kind| RuntimeError::from(TpError::forward("TransformerBlock", r, kind));
        let local = match x.shape() {
            [rows, h] if *h == self.hidden => *rows,
            s => {
                return Err(err(TpErrorKind::InputWidth {
                    hidden: self.hidden,
                    shape: s.to_vec(),
                }))
            }
        };
        let dtype = self.ln1.0.dtype();
        if x.dtype() != dtype {
            return Err(err(TpErrorKind::InputDType {
                input: x.dtype(),
                weights: dtype,
            }));
        }
        let (tp, sh) = (mp.tp_size(), mp.shards());
        // Sequence-parallel with more than one rank: the rows outside the
        // tensor-parallel regions are this rank's block of the sequence.
        let sp = mp.sequence_parallel() && tp > 1;
        if local == 0 || local % sh != 0 || x.placement() != &mp.activation_placement() {
            return Err(err(TpErrorKind::InputPlacement {
                rows: local,
                pes: sh,
            }));
        }
        let seq = if sp { local * tp } else { local };
        let rt = mp.rank().runtime();
        let grid = [sh as u32];
        let mut times = Vec::with_capacity(STEPS.len());
        let compute = |ps| LayerTime {
            compute_ps: ps,
            ..LayerTime::default()
        };
        let new = |rows: usize, cols: usize| {
            mp.rank()
                .zeros(&[rows, cols], dtype, &mp.activation_placement())
        };
        // Row-wise steps on this rank's rows. Every PE holds the norms'
        // weights and reads its own copy.
        let norm = |x: &DeviceTensor, (w, b): &(DeviceTensor, DeviceTensor)| {
            let y = new(local, self.hidden)?;
            let args = Args::new()
                .tensor("x", x)
                .local("w", w)
                .local("b", b)
                .tensor("y", &y)
                .float("eps", EPS)
                .int("rows", (local / sh) as i64);
            let rep = crate::ccl::dist::launch(rt, &layernorm, &grid, &args)?;
            Ok::<_, RuntimeError>((y, compute(rep.end_ps)))
        };
        let add = |a: &DeviceTensor, b: &DeviceTensor| {
            let y = new(local, self.hidden)?;
            let args = Args::new().tensor("a", a).tensor("b", b).tensor("y", &y);
            let rep = crate::ccl::dist::launch(rt, &add_rows, &grid, &args)?;
            Ok::<_, RuntimeError>((y, compute(rep.end_ps)))
        };
        // Moves a gathered activation's bands between gathered and sequence
        // order (see the module docs); with one PE the orders agree.
        let regroup = |src: &DeviceTensor, to_sequence: bool| {
            if sh == 1 {
                return Ok::<_, RuntimeError>((None, 0));
            }
            let dst = new(seq, src.shape()[1])?;
            let args = Args::new()
                .tensor("src", src)
                .tensor("dst", &dst)
                .int("tp", tp as i64)
                .bool("to_sequence", to_sequence);
            let rep = crate::ccl::dist::launch(rt, &regroup_bands, &grid, &args)?;
            Ok((Some(dst), rep.end_ps))
        };

        let (xn, t) = norm(x, &self.ln1)?;
        times.push(t);
        // The QKV projection's input: every rank's rows, in sequence order.
        let (qkv, t) = if sp {
            let gathered = new(seq, self.hidden)?;
            let mut comm_ps = all_gather_shards_in(
                mp.rank(),
                &gathered,
                &xn,
                mp.tp_group(),
                &Backend::default(),
            )?
            .end_ps;
            let (ordered, ps) = regroup(&gathered, true)?;
            comm_ps += ps;
            let (qkv, mut t) = self
                .qkv
                .forward_timed(ordered.as_ref().unwrap_or(&gathered))?;
            t.comm_ps += comm_ps;
            (qkv, t)
        } else {
            self.qkv.forward_timed(&xn)?
        };
        times.push(t);
        let d = self.hidden / (self.local_heads * tp);
        let o = new(seq, self.local_heads * d)?;
        let args = Args::new()
            .tensor("qkv", &qkv)
            .tensor("o", &o)
            .int("heads", self.local_heads as i64)
            .float("scale", 1.0 / (d as f64).sqrt())
            .int("bn", (seq / sh).min(64) as i64);
        let rep = crate::ccl::dist::launch(rt, &causal_attention_heads, &grid, &args)?;
        times.push(compute(rep.end_ps));
        // Sequence-parallel, the attention's output goes back to gathered
        // order, so that the reduce-scatter leaves each rank its own rows.
        let (a, t) = if sp {
            let (back, ps) = regroup(&o, false)?;
            let (a, mut t) = self.proj.forward_timed(back.as_ref().unwrap_or(&o))?;
            t.comm_ps += ps;
            (a, t)
        } else {
            self.proj.forward_timed(&o)?
        };
        times.push(t);
        let (h, t) = add(x, &a)?;
        times.push(t);
        let (hn, t) = norm(&h, &self.ln2)?;
        times.push(t);
        // Sequence-parallel, fc1 all-gathers and fc2 reduce-scatters (the
        // MLP works row by row: the gathered order does not matter).
        let (f, t) = self.fc1.forward_timed(&hn)?;
        times.push(t);
        let (z, t) = self.fc2.forward_timed(&f)?;
        times.push(t);
        let (y, t) = add(&h, &z)?;
        times.push(t);
        Ok((y, STEPS.iter().copied().zip(times).collect()))
    }
}

/// The block on the host in f64 (`x` is `[seq, hidden]`, one sequence), with
/// the MLP's activation `act` ([`Activation::apply`], GELU by the same tanh
/// formula as the device) and `round` applied wherever the device stores a
/// result in the block's type: after each layer norm, projection,
/// attention, all-reduce and residual add (the identity for an exact
/// reference).
pub fn reference(
    x: &Array2<f64>,
    w: &BlockWeights<f64>,
    heads: usize,
    act: Activation,
    round: impl Fn(f64) -> f64,
) -> Array2<f64> {
    let r = |a: Array2<f64>| a.mapv(&round);
    let (seq, hidden) = x.dim();
    let d = hidden / heads;
    let norm = |x: &Array2<f64>, g: &Array1<f64>, b: &Array1<f64>| {
        let mut y = x.clone();
        for mut row in y.rows_mut() {
            let mean = row.sum() / hidden as f64;
            row.mapv_inplace(|v| v - mean);
            let var = row.iter().map(|v| v * v).sum::<f64>() / hidden as f64;
            let rstd = 1.0 / (var + EPS).sqrt();
            row.mapv_inplace(|v| v * rstd);
        }
        y * g + b
    };
    let xn = r(norm(x, &w.ln1_w, &w.ln1_b));
    let qkv = r(xn.dot(&w.qkv_w) + &w.qkv_b);
    let mut o = Array2::<f64>::zeros((seq, hidden));
    let scale = 1.0 / (d as f64).sqrt();
    for j in 0..heads {
        let q = qkv.slice(s![.., j * d..(j + 1) * d]);
        let k = qkv.slice(s![.., hidden + j * d..hidden + (j + 1) * d]);
        let v = qkv.slice(s![.., 2 * hidden + j * d..2 * hidden + (j + 1) * d]);
        let sc = q.dot(&k.t()) * scale;
        for i in 0..seq {
            let row = sc.slice(s![i, ..=i]);
            let mx = row.fold(f64::NEG_INFINITY, |a, b| a.max(*b));
            let e: Vec<f64> = row.iter().map(|x| (x - mx).exp()).collect();
            let sum: f64 = e.iter().sum();
            for c in 0..d {
                let acc: f64 = e.iter().enumerate().map(|(t, p)| p * v[(t, c)]).sum();
                o[(i, j * d + c)] = round(acc / sum);
            }
        }
    }
    let h = r(x + &r(o.dot(&w.proj_w) + &w.proj_b));
    let hn = r(norm(&h, &w.ln2_w, &w.ln2_b));
    let f = r((hn.dot(&w.fc1_w) + &w.fc1_b).mapv(|v| act.apply(v)));
    r(&h + &r(f.dot(&w.fc2_w) + &w.fc2_b))
}
