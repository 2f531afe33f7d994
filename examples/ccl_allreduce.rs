//! All-reduce across the ranks of the host runtime: one worker thread per SIP
//! of the embedded default machine (or `--topology FILE`), each filling a
//! rank-dependent tensor split over PEs of its SIP; `all_reduce` runs the
//! registry's ring algorithm as one kernel launch over every rank's shards;
//! every element of every rank is checked against the exact sum.
//!
//! Run: `cargo run --release --example ccl_allreduce [-- --rows 64 --cols 256 --algorithm ring_allreduce]`

use kernbench::ccl::dist::{all_reduce_with, Backend};
use kernbench::ccl::{RedOp, Registry};
use kernbench::core::runtime::ndarray::Array2;
use kernbench::core::runtime::{Placement, Runtime};
use kernbench::core::topology::Topology;

/// Rank `r`'s input at `(i, j)`: small integers, so every sum is exact.
fn value(r: usize, i: usize, j: usize) -> f32 {
    ((r * 7 + i * 3 + j) % 16) as f32
}

/// All-reduce across the ranks of the host runtime, checked on every rank.
#[derive(clap::Parser, Debug)]
struct Args {
    /// Rows of each rank's tensor.
    #[arg(long, default_value_t = 64, value_parser = kernbench::cli::parse::count)]
    rows: usize,
    /// Columns of each rank's tensor.
    #[arg(long, default_value_t = 256, value_parser = kernbench::cli::parse::count)]
    cols: usize,
    /// The registry's all-reduce algorithm.
    #[arg(long, default_value = "ring_allreduce")]
    algorithm: String,
    /// A topology file or built-in name; the embedded default when absent.
    #[arg(long)]
    topology: Option<String>,
}

fn main() -> std::process::ExitCode {
    // Errors print as their message, not as a debug dump.
    kernbench::cli::exit_code(try_main().map_err(kernbench::cli::usage))
}

fn try_main() -> Result<(), Box<dyn std::error::Error>> {
    let args = <Args as clap::Parser>::parse();
    let (rows, cols, algorithm) = (args.rows, args.cols, args.algorithm);
    let topo = match &args.topology {
        Some(t) => Topology::resolve(t)?,
        None => Topology::embedded_default(),
    };
    let backend = Backend::with_all_reduce(&Registry::builtin(), &algorithm)?;
    let rt = Runtime::with_topology(topo)?;
    let world = rt.device_count();
    // Rows split over 2 cubes x 4 PEs of each rank's SIP: 8 shards per rank.
    let placement = Placement::row_wise()
        .cubes(2.min(rt.topology().cubes_per_sip() as usize))
        .pes(4.min(rt.topology().pes_per_cube() as usize));

    let per_rank = rt.spawn(world, |rank| {
        let r = rank.get_rank();
        rank.set_device(r)?;
        let host = Array2::from_shape_fn((rows, cols), |(i, j)| value(r, i, j));
        let t = rank.from_array(&host, &placement)?;
        let report = all_reduce_with(&rank, &t, RedOp::Sum, &backend)?;
        let out = t.to_ndarray::<f32>()?;
        let wrong = out
            .indexed_iter()
            .filter(|(ix, v)| **v != (0..world).map(|q| value(q, ix[0], ix[1])).sum::<f32>())
            .count();
        Ok((
            r,
            t.shards().len(),
            wrong,
            report.sim_ns(),
            rank.device_time_ps(r),
        ))
    })?;

    let mut wrong_total = 0;
    for (r, shards, wrong, ns, t) in &per_rank {
        let (kernel_us, device_us) = (ns / 1000.0, *t as f64 / 1e6);
        println!(
            "rank {r}: {rows}x{cols} f32 in {shards} shards on SIP {r}: all_reduce ({algorithm}) {kernel_us:.3} us, device time {device_us:.3} us, {wrong} wrong"
        );
        wrong_total += wrong;
    }
    if wrong_total == 0 {
        println!(
            "verified: {} elements on each of {world} ranks",
            rows * cols
        );
        Ok(())
    } else {
        Err(format!("{wrong_total} elements wrong").into())
    }
}
