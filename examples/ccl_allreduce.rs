//! All-reduce across the ranks of the host runtime: one worker thread per SIP
//! of the embedded default machine (or `--topology FILE`), each filling a
//! rank-dependent tensor split over PEs of its SIP; `all_reduce` runs the
//! registry's ring algorithm as one kernel launch over every rank's shards;
//! every element of every rank is checked against the exact sum.
//!
//! With `--replicated`, each rank's tensor is replicated over those PEs
//! instead of split, and every replica is checked: the hierarchical
//! algorithm then reduces one chunk per replica across the ranks and
//! gathers the chunks inside each rank.
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
    /// Replicate each rank's tensor over its PEs instead of splitting it.
    #[arg(long)]
    replicated: bool,
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
    // Rows split (or replicated) over 2 cubes x 4 PEs of each rank's SIP:
    // 8 shards per rank.
    let placement = if args.replicated {
        Placement::replicate()
    } else {
        Placement::row_wise()
    }
    .cubes(2.min(rt.topology().cubes_per_sip() as usize))
    .pes(4.min(rt.topology().pes_per_cube() as usize));
    let layout = if args.replicated {
        "replicas"
    } else {
        "shards"
    };

    let per_rank = rt.spawn(world, |rank| {
        let r = rank.get_rank();
        rank.set_device(r)?;
        let host = Array2::from_shape_fn((rows, cols), |(i, j)| value(r, i, j));
        let t = rank.from_array(&host, &placement)?;
        let report = all_reduce_with(&rank, &t, RedOp::Sum, &backend)?;
        let want = |i: usize, j: usize| (0..world).map(|q| value(q, i, j)).sum::<f32>();
        // Every shard as its PE holds it: each replica, or each part.
        let mut wrong = 0;
        for (k, s) in t.shards().iter().enumerate() {
            let out = t.shard_to_ndarray::<f32>(k)?;
            wrong += out
                .indexed_iter()
                .filter(|(ix, v)| **v != want(s.rows.start + ix[0], s.cols.start + ix[1]))
                .count();
        }
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
            "rank {r}: {rows}x{cols} f32 in {shards} {layout} on SIP {r}: all_reduce ({algorithm}) {kernel_us:.3} us, device time {device_us:.3} us, {wrong} wrong"
        );
        wrong_total += wrong;
    }
    if wrong_total == 0 {
        println!(
            "verified: {} elements on each of {world} ranks{}",
            rows * cols,
            if args.replicated {
                ", in every replica"
            } else {
                ""
            }
        );
        Ok(())
    } else {
        Err(format!("{wrong_total} elements wrong").into())
    }
}
