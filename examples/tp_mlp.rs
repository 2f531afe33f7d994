//! A two-layer MLP with Megatron tensor parallelism across the SIPs of a
//! machine, data-parallel replicas over the rest: `Z = relu(X A + a) B + b`
//! with `A` and `a` split by columns (ColumnParallelLinear, bias and ReLU in
//! the GEMM epilogue) and `B` by rows (RowParallelLinear, then an all-reduce
//! over the tensor-parallel group; the bias added once). Each data-parallel
//! replica runs its own rows of the batch; inside each SIP those rows are
//! split over PEs. Every GEMM is a device kernel accumulating in f32.
//!
//! Every rank's output is checked element by element against an ndarray
//! reference computed in f64 from the same rounded inputs: exactly in f32
//! (small integers), and in f16 or bf16 within the rounding bound stated in
//! the output.
//!
//! With `--sequence-parallel` each rank of a tensor-parallel group holds its
//! own rows of the activations outside the pair of layers: the first layer
//! all-gathers them, the second reduce-scatters instead of all-reducing.
//!
//! Run: `cargo run --release --example tp_mlp [-- --dtype f16 --tp 2 --topology large]`

use kernbench::ccl::tp::{initialize_model_parallel, ColumnParallelLinear, RowParallelLinear};
use kernbench::core::runtime::ndarray::{Array1, Array2, Axis};
use kernbench::core::runtime::{HostFloat, Runtime};
use kernbench::core::topology::Topology;
use kernbench::tl::{bf16, f16};

fn main() -> std::process::ExitCode {
    // Errors print as their message, not as a debug dump.
    kernbench::cli::exit_code(try_main().map_err(kernbench::cli::usage))
}

/// A tensor-parallel MLP across the SIPs of a machine, checked on every rank.
#[derive(clap::Parser, Debug)]
struct Opts {
    /// Rows of the batch (a multiple of 4 x the data-parallel replicas).
    #[arg(long, default_value_t = 32, value_parser = kernbench::cli::parse::count)]
    batch: usize,
    /// Hidden width (a multiple of 4 x tp).
    #[arg(long, default_value_t = 64, value_parser = kernbench::cli::parse::count)]
    hidden: usize,
    /// Tensor-parallel ranks (divides the ranks); all of them when absent.
    #[arg(long, value_parser = kernbench::cli::parse::count)]
    tp: Option<usize>,
    /// A topology file or built-in name; the embedded default when absent.
    #[arg(long)]
    topology: Option<String>,
    /// Megatron's sequence parallelism: reduce-scatter and all-gather in
    /// place of all-reduce.
    #[arg(long = "sequence-parallel")]
    sp: bool,
    /// The layers' element type: f32, f16 or bf16 (f32 accumulation).
    #[arg(long, default_value = "f32", value_parser = kernbench::cli::parse::dtype)]
    dtype: kernbench::core::DType,
}

fn try_main() -> Result<(), Box<dyn std::error::Error>> {
    let o = <Opts as clap::Parser>::parse();
    match o.dtype {
        kernbench::core::DType::F32 => run::<f32>(&o),
        kernbench::core::DType::F16 => run::<f16>(&o),
        kernbench::core::DType::Bf16 => run::<bf16>(&o),
        other => Err(format!("--dtype {other}: the layers run in f32, f16 or bf16").into()),
    }
}

fn run<T: HostFloat>(o: &Opts) -> Result<(), Box<dyn std::error::Error>> {
    let rt = match &o.topology {
        Some(t) => Runtime::with_topology(Topology::resolve(t)?)?,
        None => Runtime::new()?,
    };
    let world = rt.device_count();
    let tp = o.tp.unwrap_or(world);
    let (batch, model, hidden) = (o.batch, o.hidden / 4, o.hidden);
    // f32: small integers, every product and sum exact. f16 and bf16:
    // fractions that do not fit them, rounded into the type on the host.
    let exact = T::DTYPE.name() == "f32";
    let v = |seed: usize, i: usize, j: usize| -> f64 {
        let h = (i * 7 + j * 13 + seed * 5) % 97;
        let raw = if exact {
            (h % 3) as f64 - 1.0
        } else {
            h as f64 / 61.0 - 0.8
        };
        T::round(raw).wide()
    };
    let x = Array2::from_shape_fn((batch, model), |(i, j)| v(1, i, j));
    let a = Array2::from_shape_fn((model, hidden), |(i, j)| v(2, i, j));
    let ab = Array1::from_shape_fn(hidden, |j| v(3, j, 1));
    let b = Array2::from_shape_fn((hidden, model), |(i, j)| v(4, i, j));
    let bb = Array1::from_shape_fn(model, |j| v(5, 2, j));
    let h = (x.dot(&a) + &ab).mapv(|v| v.max(0.0));
    let reference = h.dot(&b) + &bb;
    // What each output element is a sum of, in absolute value: one rounding
    // of the hidden layer, then tp + 2 along the output's path (the partial
    // product, the ring's sums, the result) are each at most U of it.
    let h_abs = x.mapv(f64::abs).dot(&a.mapv(f64::abs)) + ab.mapv(f64::abs);
    let z_abs = h_abs.dot(&b.mapv(f64::abs)) + bb.mapv(f64::abs);
    let rel = if exact { 0.0 } else { (tp + 3) as f64 * T::U };
    let tol = z_abs.mapv(|v| v * rel);
    let (xt, at, abt, btt, bbt) = (
        x.mapv(T::round),
        a.mapv(T::round),
        ab.mapv(T::round),
        b.mapv(T::round),
        bb.mapv(T::round),
    );

    let outs = rt.spawn(world, |rank| {
        rank.set_device(rank.get_rank())?;
        // Tensor parallel across tp ranks, data parallel over the rest;
        // each replica's rows over 2 cubes x 2 PEs inside each SIP.
        let mut mp = initialize_model_parallel(&rank, tp)?.with_layout(2, 2);
        if o.sp {
            mp = mp.with_sequence_parallel();
        }
        let fc1 = ColumnParallelLinear::new(&mp, &at, Some(&abt))?.with_relu();
        let fc2 = RowParallelLinear::new(&mp, &btt, Some(&bbt))?;
        let local = mp.local_batch(&xt)?;
        // The rows of the replica's batch this rank feeds in and gets back.
        let (xs, rows) = if o.sp {
            let rows = mp.sequence_rows(local.nrows())?;
            (mp.input(&mp.sequence_shard(&local)?)?, rows)
        } else {
            (mp.input(&local)?, (0..local.nrows()).collect())
        };
        let h = fc1.forward(&xs)?; // [batch / dp, hidden / tp] on this rank
                                   // All-reduced over the tp group: [batch / dp, model]; reduce-scattered
                                   // when sequence-parallel: [batch / dp / tp, model].
        let z = fc2.forward(&h)?;
        let got = z.to_ndarray::<T>()?.mapv(T::wide);
        Ok((
            rank.get_rank(),
            mp.tp_rank(),
            mp.dp_rank(),
            mp.dp_size(),
            rows,
            h.shape().to_vec(),
            got,
            rank.device_time_ps(rank.get_rank()),
        ))
    })?;

    let mut wrong = 0;
    let mut worst = 0.0f64;
    for (r, t, d, dp, rows, hshape, got, ps) in &outs {
        let per = batch / dp;
        let rows: Vec<usize> = rows.iter().map(|i| d * per + i).collect();
        let want = reference.select(Axis(0), &rows);
        let tol = tol.select(Axis(0), &rows);
        let mut bad = 0;
        for ((g, w), t) in got.iter().zip(want.iter()).zip(tol.iter()) {
            worst = worst.max((g - w).abs());
            if (g - w).abs() > *t {
                bad += 1;
            }
        }
        println!(
            "rank {r} (tp rank {t}, replica {d}): hidden slice {hshape:?}, output {:?}, device time {:.3} us, {bad} wrong",
            got.shape(),
            *ps as f64 / 1e6
        );
        wrong += bad;
    }
    let dp = world / tp;
    let sp = if o.sp { ", sequence-parallel" } else { "" };
    if wrong > 0 {
        return Err(format!("{wrong} elements wrong").into());
    }
    if exact {
        println!(
            "verified: {batch}x{model} output in {} on {world} ranks (tp {tp}, dp {dp}{sp}) matches ndarray exactly",
            T::DTYPE.name()
        );
    } else {
        println!(
            "verified: {batch}x{model} output in {} on {world} ranks (tp {tp}, dp {dp}{sp}) matches ndarray within {} x 2^{} of each element's absolute terms (largest error {worst:.3e})",
            T::DTYPE.name(),
            tp + 3,
            T::U.log2()
        );
    }
    Ok(())
}
