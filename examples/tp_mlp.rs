//! A two-layer MLP with Megatron tensor parallelism across the SIPs of the
//! embedded default machine: `Z = relu(X A) B` with `A` split by columns
//! (ColumnParallelLinear, ReLU in the GEMM epilogue) and `B` by rows
//! (RowParallelLinear, then an all-reduce). Inside each SIP the batch rows are
//! split over PEs. Every GEMM is a device kernel; the output of every rank is
//! checked exactly against an ndarray reference.
//!
//! Run: `cargo run --release --example tp_mlp [-- --batch 16 --hidden 64]`

use kernbench::ccl::tp::{initialize_model_parallel, ColumnParallelLinear, RowParallelLinear};
use kernbench::core::runtime::ndarray::Array2;
use kernbench::core::runtime::Runtime;

fn main() -> std::process::ExitCode {
    // Errors print as their message, not as a debug dump.
    kernbench::cli::exit_code(try_main().map_err(kernbench::cli::usage))
}

fn try_main() -> Result<(), Box<dyn std::error::Error>> {
    let (mut batch, mut hidden) = (16usize, 64usize);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--batch" => batch = args.next().ok_or("--batch needs a value")?.parse()?,
            "--hidden" => hidden = args.next().ok_or("--hidden needs a value")?.parse()?,
            "-h" | "--help" => {
                println!("usage: tp_mlp [--batch N (a multiple of 4)] [--hidden N (a multiple of 4 x ranks)]");
                return Ok(());
            }
            other => return Err(format!("unknown argument `{other}` (try --help)").into()),
        }
    }
    let model = hidden / 4;
    // Small integers: every product and sum is exact in f32.
    let x = Array2::from_shape_fn((batch, model), |(i, j)| ((i + 2 * j) % 4) as f32);
    let a = Array2::from_shape_fn((model, hidden), |(i, j)| ((i * 3 + j) % 3) as f32 - 1.0);
    let b = Array2::from_shape_fn((hidden, model), |(i, j)| ((i + j * 5) % 3) as f32 - 1.0);
    let reference = x.dot(&a).mapv(|v| v.max(0.0)).dot(&b);

    let rt = Runtime::new()?;
    let world = rt.device_count();
    let outs = rt.spawn(world, |rank| {
        rank.set_device(rank.get_rank())?;
        // Tensor parallel across ranks; batch rows over 2 cubes x 2 PEs inside each SIP.
        let mp = initialize_model_parallel(&rank, world)?.with_layout(2, 2);
        let fc1 = ColumnParallelLinear::new(&mp, &a)?.with_relu();
        let fc2 = RowParallelLinear::new(&mp, &b)?;
        let xt = mp.input(&x)?;
        let h = fc1.forward(&xt)?; // [batch, hidden / world] on this rank
        let z = fc2.forward(&h)?; // all-reduced: [batch, model] on every rank
        let got = z.to_ndarray::<f32>()?;
        Ok((
            rank.get_rank(),
            h.shape().to_vec(),
            got,
            rank.device_time_ps(rank.get_rank()),
        ))
    })?;

    let mut wrong = 0;
    for (r, hshape, got, t) in &outs {
        let bad = got
            .iter()
            .zip(reference.iter())
            .filter(|(g, w)| g != w)
            .count();
        println!(
            "rank {r}: hidden slice {hshape:?}, output {:?}, device time {:.3} us, {bad} wrong",
            got.shape(),
            *t as f64 / 1e6
        );
        wrong += bad;
    }
    if wrong == 0 {
        println!("verified: {batch}x{model} output on {world} ranks matches ndarray");
        Ok(())
    } else {
        Err(format!("{wrong} elements wrong").into())
    }
}
