//! A GPT-style transformer block forward with Megatron tensor parallelism
//! across the SIPs of a machine (`large`: 8 ranks), data-parallel replicas
//! over the rest when `--tp` is smaller (each replica runs its own
//! sequence):
//!
//! ```text
//! h = x + proj(attention(qkv(ln1(x))))      qkv column-parallel (heads split), proj row-parallel + all-reduce
//! y = h + fc2(act(fc1(ln2(h))))             fc1 column-parallel, fc2 row-parallel + all-reduce
//! ```
//!
//! The MLP's activation `act` is GELU (the tanh approximation of GPT-2 and
//! Megatron) unless `--activation relu` asks for ReLU; it runs in `fc1`'s
//! GEMM epilogue.
//!
//! Every step is a device kernel (`kernbench::transformer`); the causal
//! attention is `causal_attention_heads`, written in the kernel language.
//! The output prints a table of each step's simulated time on a rank's SIP,
//! split into compute (kernel launches), communication (collectives) and
//! exposed communication. The runtime runs launches one after another
//! (ADR 0005), so no communication hides behind compute and the exposed
//! communication equals the communication.
//!
//! With `--sequence-parallel` (Megatron's `sequence_parallel=True`) each
//! rank of a tensor-parallel group holds its own contiguous block of the
//! sequence outside the tensor-parallel regions: the layer norms and
//! residual adds run on those rows only, the column-parallel layers
//! all-gather their input and the row-parallel layers reduce-scatter
//! instead of all-reducing. The block then runs once (the overlapped
//! all-reduce does not apply) and the table shows that schedule beside the
//! all-reduce one.
//!
//! Every rank's output is checked element by element against an ndarray
//! reference computed in f64 from the same rounded inputs, rounded to the
//! block's type wherever the device stores a result. The layer norms and
//! the softmax take square roots and exponentials, so no dtype is exact:
//! an element passes when `|got - want| <= (16 u + sqrt(n) u32) (1 + |want|)`,
//! with `u` the unit roundoff of the block's type (a few roundings where a
//! result is stored, or lands on the other side of a rounding boundary), `u32`
//! that of f32 and `n` the longest sum (the hidden size, the MLP's width or the
//! sequence): the kernels accumulate in f32, in another order than the host.
//! Any wrong element makes the run fail.
//!
//! Run: `cargo run --release --example transformer_block [-- --dtype f16 --tp 4 --seq 128 --hidden 256 --heads 8 --activation relu --sequence-parallel]`

use kernbench::ccl::tp::{initialize_model_parallel, LayerTime};
use kernbench::core::runtime::ndarray::{s, Array2};
use kernbench::core::runtime::{HostFloat, Runtime};
use kernbench::core::topology::Topology;
use kernbench::tl::{bf16, f16};
use kernbench::transformer::{
    reference, sample_value, Activation, BlockWeights, TransformerBlock, STEPS,
};

fn main() -> std::process::ExitCode {
    // Errors print as their message, not as a debug dump.
    kernbench::cli::exit_code(try_main().map_err(kernbench::cli::usage))
}

/// A tensor-parallel GPT block forward, checked on every rank.
#[derive(clap::Parser, Debug)]
struct Opts {
    /// A topology file or built-in name.
    #[arg(long, default_value = "large")]
    topology: String,
    /// Tensor-parallel ranks (divides the ranks); all of them when absent.
    #[arg(long, value_parser = kernbench::cli::parse::count)]
    tp: Option<usize>,
    /// Rows of each sequence (a multiple of 4).
    #[arg(long, default_value_t = 256, value_parser = kernbench::cli::parse::count)]
    seq: usize,
    /// Hidden width.
    #[arg(long, default_value_t = 512, value_parser = kernbench::cli::parse::count)]
    hidden: usize,
    /// Attention heads (a multiple of tp, dividing hidden).
    #[arg(long, default_value_t = 16, value_parser = kernbench::cli::parse::count)]
    heads: usize,
    /// The MLP's width; 4 x hidden when absent.
    #[arg(long, value_parser = kernbench::cli::parse::count)]
    ffn: Option<usize>,
    /// The MLP's activation: gelu (the tanh approximation) or relu.
    #[arg(long, default_value = "gelu", value_parser = parse_activation)]
    activation: Activation,
    /// Split the activations outside the tensor-parallel regions along the
    /// sequence (all-gather and reduce-scatter in place of all-reduce).
    #[arg(long)]
    sequence_parallel: bool,
    /// The block's element type: f32, f16 or bf16 (f32 accumulation).
    #[arg(long, default_value = "f32", value_parser = kernbench::cli::parse::dtype)]
    dtype: kernbench::core::DType,
}

/// `gelu` or `relu`.
fn parse_activation(s: &str) -> Result<Activation, String> {
    match s {
        "gelu" => Ok(Activation::Gelu),
        "relu" => Ok(Activation::Relu),
        _ => Err(format!("{s:?}: the MLP's activation is gelu or relu")),
    }
}

fn try_main() -> Result<(), Box<dyn std::error::Error>> {
    let o = <Opts as clap::Parser>::parse();
    match o.dtype {
        kernbench::core::DType::F32 => run::<f32>(&o),
        kernbench::core::DType::F16 => run::<f16>(&o),
        kernbench::core::DType::Bf16 => run::<bf16>(&o),
        other => Err(format!("--dtype {other}: the block runs in f32, f16 or bf16").into()),
    }
}

/// One rank's result: its rank, its replica, the rows of its sequence it
/// holds, its output, the time of each step and its SIP's device time.
type Out = (
    usize,
    usize,
    std::ops::Range<usize>,
    Array2<f64>,
    Vec<LayerTime>,
    u64,
);

/// How the block runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Schedule {
    /// Every launch and collective one after the other, all-reduces.
    Sequential,
    /// The row-parallel GEMMs and all-reduces fused (`with_overlap`).
    Overlapped,
    /// Sequence-parallel: all-gathers and reduce-scatters.
    SequenceParallel,
}

impl Schedule {
    fn name(self) -> &'static str {
        match self {
            Schedule::Sequential => "sequential",
            Schedule::Overlapped => "overlapped",
            Schedule::SequenceParallel => "sequence-parallel",
        }
    }
}

fn run<T: HostFloat>(o: &Opts) -> Result<(), Box<dyn std::error::Error>> {
    let topo = Topology::resolve(&o.topology)?;
    let world = topo.num_sips() as usize;
    let tp = o.tp.unwrap_or(world);
    if tp == 0 || world % tp != 0 {
        return Err(format!("--tp {tp} must divide the {world} ranks of the machine").into());
    }
    let dp = world / tp;
    let (seq, hidden, heads) = (o.seq, o.hidden, o.heads);
    let ffn = o.ffn.unwrap_or(4 * hidden);
    // Sizes that do not fit are refused here once, not by every rank.
    if heads % tp != 0 {
        return Err(format!("--heads {heads} must be a multiple of --tp {tp}").into());
    }
    if seq == 0 || seq % 4 != 0 {
        return Err(format!(
            "--seq {seq} must be a positive multiple of 4 (the rows split over 2 cubes x 2 PEs)"
        )
        .into());
    }
    if o.sequence_parallel && seq % (4 * tp) != 0 {
        return Err(format!(
            "--seq {seq} must be a multiple of {} with --sequence-parallel (each of the {tp} tensor-parallel ranks holds a block of the sequence, split over 2 cubes x 2 PEs)",
            4 * tp
        )
        .into());
    }
    // The inputs, rounded into the block's type once; the reference starts
    // from the rounded values.
    let w64 = BlockWeights::sample(hidden, ffn).map(|v| T::round(*v).wide());
    w64.check(heads)?;
    let wt = w64.map(|v| T::round(*v));
    // One sequence per data-parallel replica, stacked.
    let x64 = Array2::from_shape_fn((dp * seq, hidden), |(i, j)| {
        T::round(sample_value(13, i, j, 1.0)).wide()
    });
    let xt = x64.mapv(T::round);
    let want: Vec<Array2<f64>> = (0..dp)
        .map(|d| {
            let x = x64.slice(s![d * seq..(d + 1) * seq, ..]).to_owned();
            reference(&x, &w64, heads, o.activation, |v| T::round(v).wide())
        })
        .collect();
    // The tolerance, in units of (1 + |want|) (see the module docs).
    let n = hidden.max(ffn).max(seq);
    let tol = 16.0 * T::U + (n as f64).sqrt() * f32::U;
    let bound = format!(
        "(16 x 2^{} + sqrt({n}) x 2^-24) x (1 + |want|) = {tol:.3e} x (1 + |want|)",
        T::U.log2()
    );

    // The block on every rank, on a fresh machine; every element checked.
    let block = |how: Schedule| -> Result<(Vec<Out>, f64), Box<dyn std::error::Error>> {
        let rt = Runtime::with_topology(topo.clone())?;
        let outs = rt.spawn(world, |rank| {
            rank.set_device(rank.get_rank())?;
            // Each rank's rows over 2 cubes x 2 PEs inside its SIP.
            let mut mp = initialize_model_parallel(&rank, tp)?.with_layout(2, 2);
            if how == Schedule::SequenceParallel {
                mp = mp.with_sequence_parallel();
            }
            let mut block = TransformerBlock::new(&mp, heads, &wt)?.with_activation(o.activation);
            if how == Schedule::Overlapped {
                block = block.with_overlap();
            }
            // Sequence-parallel, this rank's contiguous block of the sequence.
            let rows = block.sequence_block(seq)?;
            let x = mp.input(&mp.local_batch(&xt)?.slice(s![rows.clone(), ..]).to_owned())?;
            let (y, times) = block.forward(&x)?;
            let got = y.to_ndarray::<T>()?.mapv(T::wide);
            let times = times.into_iter().map(|(_, t)| t).collect();
            let r = rank.get_rank();
            Ok((
                r,
                mp.dp_rank(),
                rows,
                got.into_dimensionality()?,
                times,
                rank.device_time_ps(r),
            ))
        })?;
        let schedule = how.name();
        let mut wrong = 0;
        let mut worst = 0.0f64;
        for (r, d, rows, got, _, _) in &outs {
            let mut bad = 0;
            let want = want[*d].slice(s![rows.clone(), ..]);
            for (g, w) in got.iter().zip(want.iter()) {
                let err = (g - w).abs() / (1.0 + w.abs());
                worst = worst.max(err / tol);
                // NaN is wrong too.
                if err.is_nan() || err > tol {
                    bad += 1;
                }
            }
            if bad > 0 {
                eprintln!(
                    "{schedule}: rank {r} (replica {d}): {bad} of {} elements wrong",
                    got.len()
                );
            }
            wrong += bad;
        }
        if wrong > 0 {
            return Err(format!(
                "{schedule}: {wrong} elements wrong: the largest error is {worst:.2} times the tolerance {bound}"
            )
            .into());
        }
        Ok((outs, worst))
    };
    let second = if o.sequence_parallel {
        Schedule::SequenceParallel
    } else {
        Schedule::Overlapped
    };
    let (seq_outs, seq_worst) = block(Schedule::Sequential)?;
    let (two_outs, two_worst) = block(second)?;
    let sp = second == Schedule::SequenceParallel;

    println!(
        "transformer block on {} ({world} ranks: tp {tp}, dp {dp}), {}: seq {seq}, hidden {hidden}, heads {heads} ({} per rank), ffn {ffn} with {}, rows over 2 cubes x 2 PEs per SIP",
        o.topology,
        T::DTYPE.name(),
        heads / tp,
        o.activation.name()
    );
    println!("simulated time per step on a rank's SIP (the largest over ranks), us:");
    if sp {
        println!(
            "{:<34} {:^39} | {:^39}",
            "", "sequential (all-reduce)", "sequence-parallel"
        );
        println!(
            "{:<34} {:>9} {:>9} {:>9} {:>9} | {:>9} {:>9} {:>9} {:>9}",
            "step", "compute", "comm", "exposed", "total", "compute", "comm", "exposed", "total"
        );
    } else {
        println!("{:<34} {:^39} | {:^19}", "", "sequential", "overlapped");
        println!(
            "{:<34} {:>9} {:>9} {:>9} {:>9} | {:>9} {:>9}",
            "step", "compute", "comm", "exposed", "total", "total", "exposed"
        );
    }
    let us = |ps: u64| ps as f64 / 1e6;
    // The largest time of step `i` over the ranks.
    let step = |outs: &[Out], i: usize| {
        outs.iter().fold(LayerTime::default(), |a, o| LayerTime {
            compute_ps: a.compute_ps.max(o.4[i].compute_ps),
            comm_ps: a.comm_ps.max(o.4[i].comm_ps),
            overlapped_ps: a.overlapped_ps.max(o.4[i].overlapped_ps),
        })
    };
    // One row of the table: the cells, in ps.
    let row = |a: LayerTime, b: LayerTime| -> Vec<u64> {
        if sp {
            // Both schedules run launch after launch: all comm is exposed.
            vec![
                a.compute_ps,
                a.comm_ps,
                a.comm_ps,
                a.total_ps(),
                b.compute_ps,
                b.comm_ps,
                b.comm_ps,
                b.total_ps(),
            ]
        } else {
            // Sequential: every collective is exposed. Overlapped: a fused
            // launch exposes the time it takes beyond its GEMM alone.
            vec![
                a.compute_ps,
                a.comm_ps,
                a.comm_ps,
                a.total_ps(),
                b.total_ps(),
                b.comm_ps + b.overlapped_ps.saturating_sub(a.compute_ps),
            ]
        }
    };
    let print = |name: &str, cells: &[u64]| {
        let cells: Vec<String> = cells.iter().map(|c| format!("{:>9.3}", us(*c))).collect();
        let (left, right) = cells.split_at(4);
        println!("{name:<34} {} | {}", left.join(" "), right.join(" "));
    };
    let mut sums = vec![0u64; if sp { 8 } else { 6 }];
    for (i, name) in STEPS.iter().enumerate() {
        let cells = row(step(&seq_outs, i), step(&two_outs, i));
        for (s, v) in sums.iter_mut().zip(&cells) {
            *s += v;
        }
        print(name, &cells);
    }
    print("block", &sums);
    let device = |outs: &[Out]| outs.iter().map(|o| o.5).max().unwrap_or(0);
    let (ds, dtwo) = (device(&seq_outs), device(&two_outs));
    println!(
        "device time of the slowest SIP (weights and input placed, then the block): sequential {:.3} us, {} {:.3} us ({:.2}x)",
        us(ds),
        second.name(),
        us(dtwo),
        ds as f64 / dtwo.max(1) as f64
    );
    println!(
        "sequential: each launch and collective runs to completion before the next (ADR 0005), so exposed = comm."
    );
    if sp {
        println!(
            "sequence-parallel: each rank keeps a contiguous {} of the {seq} rows outside the tensor-parallel regions: \
             layer norms and residual adds run on those rows, the column-parallel layers all-gather their input and \
             the row-parallel layers reduce-scatter; the QKV and output projections' comm includes moving the gathered \
             rows between the SIP's PEs into sequence order for the attention and back.",
            seq / tp
        );
    } else {
        println!(
            "overlapped: each row-parallel layer's GEMM and all-reduce run as one launch (linear_all_reduce) whose chunks \
             travel round the ring while the next ones compute; its exposed communication is its time beyond the GEMM alone (the compute column)."
        );
    }
    let outputs = if sp {
        format!(
            "the sequential schedule's {n} outputs of {seq}x{hidden} and the sequence-parallel one's of {}x{hidden} (each rank's block of the sequence)",
            seq / tp,
            n = seq_outs.len()
        )
    } else {
        format!(
            "both schedules' {} outputs of {seq}x{hidden}",
            seq_outs.len()
        )
    };
    println!(
        "verified: {outputs} in {} match the ndarray reference within {bound} (largest error {:.3} of that)",
        T::DTYPE.name(),
        seq_worst.max(two_worst)
    );
    Ok(())
}
