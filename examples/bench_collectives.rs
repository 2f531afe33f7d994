//! Simulator speed on a large run: collectives of a large vector per rank
//! with data and trace off, reporting wall time, simulated events, events
//! per second, ns of wall time per IPCQ message and peak resident memory.
//! `compile` and `engine` split the wall time into tracing, pairing and
//! lowering every instance, and the event-driven run.
//!
//! Run: `cargo run --release --example bench_collectives -- --size 64M --seg 64K --topology large --algos ring_allreduce,hierarchical_allreduce --fabric messages,slots`
//! (`--seg` overrides the registry's bytes per message). Each (algorithm,
//! fabric, tie order) runs `--repeat` times and the median wall time is printed;
//! peak memory is the process's high-water mark after each row, so run one
//! row per process to read each row's own peak. `model` and `bound` are the
//! cost model's time and its limiting term. `--algos auto` runs the
//! algorithm of `--collective` the model predicts fastest at `--size` on
//! every PE, and says which it was and what came second. `--ties
//! scheduled,reversed,ranked` runs each row with an instant's events
//! handled in each order, to show how much its time depends on that order.

use clap::Parser;
use kernbench::ccl::run::{ranks, run_on, RunSpec};
use kernbench::ccl::{tune, Collective, Registry};
use kernbench::core::sim::{FabricModel, TieOrder};
use kernbench::prelude::*;
use std::time::Instant;

#[derive(Parser, Debug)]
#[command(about = "Simulator speed and memory on a large collective")]
struct Args {
    /// Bytes of each rank's vector (K, M, G suffixes).
    #[arg(long, default_value = "64M", value_parser = kernbench::cli::parse::size)]
    size: u64,
    /// Bytes per message; the registry's when absent.
    #[arg(long, value_parser = kernbench::cli::parse::size)]
    seg: Option<u64>,
    /// A topology file or built-in name (default, tiny, large, xl).
    #[arg(long, default_value = "large")]
    topology: String,
    /// Registry algorithms, comma-separated; `auto` is the one the model
    /// predicts fastest among those of --collective.
    #[arg(
        long,
        short = 'a',
        value_delimiter = ',',
        default_value = "ring_allreduce,hierarchical_allreduce"
    )]
    algos: Vec<String>,
    /// The collective `auto` chooses for: all_reduce, reduce_scatter, all_gather, broadcast, ...
    #[arg(long, default_value = "all_reduce")]
    collective: String,
    /// Fabric models, comma-separated: messages, slots.
    #[arg(long, value_delimiter = ',', default_value = "messages")]
    fabric: Vec<FabricModel>,
    /// Which of one instant's events the engine handles first, comma-separated:
    /// scheduled (the order they were scheduled in), reversed (the last first),
    /// ranked (op completions first, then by PE).
    #[arg(long, value_delimiter = ',', default_value = "scheduled")]
    ties: Vec<TieOrder>,
    /// The most memory a run may take (K, M, G suffixes); what the machine has when absent.
    #[arg(long, value_parser = kernbench::cli::parse::size)]
    max_memory: Option<u64>,
    /// Runs of each row; the median wall time is printed.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
}

fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn main() -> std::process::ExitCode {
    // Errors print as their message, not as a debug dump.
    kernbench::cli::exit_code(try_main().map_err(kernbench::cli::usage))
}

fn try_main() -> Result<(), Box<dyn std::error::Error>> {
    let a = Args::parse();
    let topo = Topology::resolve(&a.topology)?;
    let reg = Registry::builtin();
    let coll = Collective::parse(&a.collective).ok_or_else(|| {
        let names: Vec<&str> = Collective::ALL.iter().map(|c| c.name()).collect();
        format!(
            "--collective {}: use one of {}",
            a.collective,
            names.join(", ")
        )
    })?;
    let count = (a.size / 4).max(1) as usize;
    let bytes = (count * 4) as f64;
    // Each entry: the algorithm, its ranks, and the line that says why
    // the tuner chose it.
    let mut plan = Vec::new();
    for name in &a.algos {
        let pool: Vec<_> = reg
            .algorithms()
            .iter()
            .map(|x| {
                let mut x = x.clone();
                if let Some(s) = a.seg {
                    x.seg_bytes = s;
                }
                x
            })
            .collect();
        if name == tune::AUTO {
            let pes: Vec<PeId> = topo.pes().collect();
            let cands = tune::candidates(&topo, &pool, coll, &pes);
            let p = tune::pick(&topo, &cands, &pes, bytes)
                .ok_or_else(|| tune::no_candidates(&topo, coll, pes.len()))?;
            let why = format!(
                "# auto: {} ({:.1} us by the model), runner-up {} among {} {} algorithms",
                p.best.algo.name,
                p.best.estimate.ns / 1000.0,
                p.runner_up.as_ref().map_or_else(
                    || "none".to_string(),
                    |r| format!("{} ({:.1} us)", r.algo.name, r.estimate.ns / 1000.0)
                ),
                p.candidates,
                coll.name()
            );
            plan.push((p.best.algo.clone(), pes, Some(why)));
        } else {
            let algo = pool
                .into_iter()
                .find(|x| &x.name == name)
                .map_or_else(|| reg.get(name).cloned(), Ok)?;
            let pes = ranks(&topo, &algo)?;
            plan.push((algo, pes, None));
        }
    }
    println!(
        "{:<24} {:>8} {:>9} {:>6} {:>9} {:>11} {:>9} {:>9} {:>9} {:>11} {:>10} {:>9} {:>10} {:>8} {:>9} {:>10} {:>6} {:>8} {:>11}  bound",
        "algorithm",
        "fabric",
        "ties",
        "ranks",
        "size",
        "sim (us)",
        "wall (s)",
        "compile",
        "engine",
        "events",
        "events/s",
        "messages",
        "ns/msg",
        "busbw",
        "peak MiB",
        "commands",
        "B/cmd",
        "programs",
        "model (us)"
    );
    for (algo, pes, why) in &plan {
        if let Some(why) = why {
            println!("{why}");
        }
        let name = &algo.name;
        let est = kernbench::ccl::cost::model(&topo, algo, pes, bytes);
        for (fabric, ties) in a
            .fabric
            .iter()
            .flat_map(|&f| a.ties.iter().map(move |&t| (f, t)))
        {
            let spec = RunSpec {
                max_memory: a.max_memory,
                ties,
                ..RunSpec::timing(count, DType::F32, fabric)
            };
            let (mut walls, mut compiles, mut engines) = (Vec::new(), Vec::new(), Vec::new());
            let mut last = None;
            for _ in 0..a.repeat.max(1) {
                let t0 = Instant::now();
                let r = run_on(&topo, algo, pes, &spec)?;
                walls.push(t0.elapsed().as_secs_f64());
                compiles.push(r.outcome.wall.compile.as_secs_f64());
                engines.push(r.outcome.wall.simulate.as_secs_f64());
                last = Some(r);
            }
            let median = |v: &mut Vec<f64>| {
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            let wall = median(&mut walls);
            let (compile, engine) = (median(&mut compiles), median(&mut engines));
            let r = last.expect("at least one run");
            let rep = &r.outcome.report;
            let messages: u64 = r.outcome.messages_sent();
            let commands: usize = r.outcome.tables.iter().map(|t| t.len()).sum();
            let peak = peak_rss_mib().unwrap_or(f64::NAN);
            let p = r.pes.len();
            let busbw = a.size as f64 / rep.sim_ns() * algo.collective.busbw_factor(p);
            println!(
                "{:<24} {:>8} {:>9} {:>6} {:>9} {:>11.1} {:>9.3} {:>9.3} {:>9.3} {:>11} {:>10.0} {:>9} {:>10.1} {:>8.2} {:>9.0} {:>10} {:>6.0} {:>8} {:>11.1}  {}",
                name,
                fabric.name(),
                ties.name(),
                p,
                a.size,
                rep.sim_ns() / 1000.0,
                wall,
                compile,
                engine,
                rep.events,
                rep.events as f64 / wall,
                messages,
                wall * 1e9 / messages.max(1) as f64,
                busbw,
                peak,
                commands,
                peak * 1048576.0 / commands.max(1) as f64,
                r.outcome.distinct_programs,
                est.ns / 1000.0,
                est.bound.as_ref().map_or_else(String::new, |b| b.to_string())
            );
        }
    }
    Ok(())
}
