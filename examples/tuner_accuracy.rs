//! How often the tuner (`--algos auto`) picks the algorithm the simulation
//! finds fastest: every candidate of each collective with a choice is
//! simulated at every size, on every PE of each machine, and the model's
//! pick is compared with the fastest. Prints, per machine and collective,
//! the hits and the regret (simulated time of the pick over that of the
//! best), and each miss. `kernbench-ccl/tests/tuner.rs` runs a small grid
//! of the same in the test suite.
//!
//! Run: `cargo run --release --example tuner_accuracy -- --topology tiny,default -b 4K -e 16M -f 4`

use clap::Parser;
use kernbench::ccl::tune::{candidates, check_picks, Score, Trial};
use kernbench::ccl::{table::sizes, Collective, Registry};
use kernbench::core::sim::FabricModel;
use kernbench::prelude::*;

#[derive(Parser, Debug)]
#[command(about = "The tuner's picks against the simulated best")]
struct Args {
    /// Topology files or built-in names, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "tiny,default")]
    topology: Vec<String>,
    /// Smallest size in bytes per rank (K, M, G suffixes).
    #[arg(short = 'b', long = "minbytes", default_value = "4K", value_parser = kernbench::cli::parse::size)]
    min: u64,
    /// Largest size in bytes per rank.
    #[arg(short = 'e', long = "maxbytes", default_value = "16M", value_parser = kernbench::cli::parse::size)]
    max: u64,
    /// Multiplication factor between sizes.
    #[arg(short = 'f', long = "stepfactor", default_value_t = 4)]
    factor: u64,
    /// How IPCQ messages cross the fabric: messages, slots.
    #[arg(long, default_value = "messages")]
    fabric: FabricModel,
    /// Worker threads; the number of cores when absent.
    #[arg(long, short = 'j')]
    jobs: Option<usize>,
}

fn main() -> std::process::ExitCode {
    kernbench::cli::exit_code(try_main().map_err(kernbench::cli::usage))
}

fn try_main() -> Result<(), Box<dyn std::error::Error>> {
    let a = Args::parse();
    let reg = Registry::builtin();
    let szs = sizes(a.min, a.max, a.factor)?;
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let mut all: Vec<Trial> = Vec::new();
    let mut summary = Vec::new();
    println!("| topology | collective | size | pick | simulated best | regret |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for name in &a.topology {
        let topo = Topology::resolve(name)?;
        let pes: Vec<PeId> = topo.pes().collect();
        for coll in Collective::ALL {
            let cands = candidates(&topo, reg.algorithms(), coll, &pes);
            if cands.len() < 2 {
                continue;
            }
            let t = check_picks(&topo, &cands, &pes, &szs, a.fabric, jobs)?;
            for x in t.iter().filter(|x| !x.hit()) {
                println!(
                    "| {} | {} | {} | {} | {} | {:.3} |",
                    topo.name(),
                    coll.name(),
                    x.bytes,
                    x.picked,
                    x.best,
                    x.regret()
                );
            }
            summary.push((format!("{} {}", topo.name(), coll.name()), Score::of(&t)));
            all.extend(t);
        }
    }
    summary.push(("all".to_string(), Score::of(&all)));
    println!("\n| case | hits | hit-rate | mean regret | max regret |");
    println!("| --- | --- | --- | --- | --- |");
    for (name, s) in &summary {
        println!(
            "| {name} | {}/{} | {:.2} | {:.3} | {:.3} |",
            s.hits,
            s.trials,
            s.hit_rate(),
            s.mean_regret,
            s.max_regret
        );
    }
    Ok(())
}
