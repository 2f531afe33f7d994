//! The tuner (`--algos auto`) against the simulation: on a grid of sizes,
//! every candidate of each collective with a choice is simulated, and the
//! model's pick is compared with the fastest. The table printed (run with
//! `--nocapture`) gives how often the pick is the simulated best and what a
//! miss costs (regret: simulated time of the pick over that of the best).
//! `cargo run --release --example tuner_accuracy` runs the full grid.

use kernbench_ccl::tune::{candidates, check_picks, Score, Trial};
use kernbench_ccl::{Collective, Registry};
use kernbench_core::topology::Topology;
use kernbench_core::PeId;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// The trials of every collective with more than one candidate over the
/// first `w` PEs of `topo`, at `sizes`.
fn trials(topo: &str, w: usize, sizes: &[u64]) -> Vec<(Collective, Vec<Trial>)> {
    let topo = Topology::builtin(topo).unwrap();
    let reg = Registry::builtin();
    let pes: Vec<PeId> = topo.pes().take(w).collect();
    let mut out = Vec::new();
    for coll in Collective::ALL {
        let cands = candidates(&topo, reg.algorithms(), coll, &pes);
        if cands.len() < 2 {
            continue;
        }
        let t = check_picks(&topo, &cands, &pes, sizes, Default::default(), 2).unwrap();
        assert_eq!(t.len(), sizes.len());
        out.push((coll, t));
    }
    out
}

#[test]
fn the_tuners_picks_against_the_simulated_best() {
    // Sizes from 4 KiB to 2 MiB; `default` at 64 ranks (its first 8 cubes)
    // and fewer sizes, so that the grid simulates in well under a minute
    // in a debug build.
    let grid = [
        (
            "tiny",
            16,
            vec![4 * KIB, 16 * KIB, 64 * KIB, 256 * KIB, MIB, 2 * MIB],
        ),
        ("default", 64, vec![4 * KIB, 64 * KIB, MIB]),
    ];
    println!("| topology | ranks | collective | size | pick | simulated best | regret |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    let mut all: Vec<Trial> = Vec::new();
    let mut per: Vec<(String, Score)> = Vec::new();
    let mut fixed = Vec::new();
    for (topo, w, sizes) in &grid {
        for (coll, t) in trials(topo, *w, sizes) {
            for x in &t {
                println!(
                    "| {topo} | {w} | {} | {} | {} | {} | {:.3} |",
                    coll.name(),
                    x.bytes,
                    x.picked,
                    x.best,
                    x.regret()
                );
            }
            per.push((format!("{topo} {}", coll.name()), Score::of(&t)));
            fixed.push(fixed_regrets(&t));
            all.extend(t);
        }
    }
    println!("\n| case | hits | hit-rate | mean regret | max regret |");
    println!("| --- | --- | --- | --- | --- |");
    for (name, s) in per
        .iter()
        .chain([("all".to_string(), Score::of(&all))].iter())
    {
        println!(
            "| {name} | {}/{} | {:.2} | {:.3} | {:.3} |",
            s.hits,
            s.trials,
            s.hit_rate(),
            s.mean_regret,
            s.max_regret
        );
    }
    // What running one algorithm at every size would have cost instead: on
    // `tiny` the ring all-gather alone does better than the tuner, whose
    // model ranks the hierarchical all-gather too high there (its model
    // misses the loads and stores that queue on the HBM slice).
    println!("\n| case | tuner's mean regret | best fixed algorithm | its mean regret |");
    println!("| --- | --- | --- | --- |");
    for ((name, s), f) in per.iter().zip(&fixed) {
        let (algo, r) = f
            .iter()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .expect("two candidates or more");
        println!("| {name} | {:.3} | {algo} | {r:.3} |", s.mean_regret);
    }
    let s = Score::of(&all);
    // The three collectives with a choice on both machines.
    assert_eq!(per.len(), 6, "{per:?}");
    assert!(s.hit_rate() >= HIT_RATE, "{s:?}");
    assert!(s.mean_regret <= MEAN_REGRET, "{s:?}");
    assert!(s.max_regret <= MAX_REGRET, "{s:?}");
}

/// The geometric mean regret of running each candidate at every size of
/// `t` instead of the tuner's pick.
fn fixed_regrets(t: &[Trial]) -> Vec<(String, f64)> {
    let names: Vec<String> = t[0].simulated.iter().map(|(n, _)| n.clone()).collect();
    names
        .into_iter()
        .enumerate()
        .map(|(c, n)| {
            let logs: f64 = t.iter().map(|x| (x.simulated[c].1 / x.best_ns).ln()).sum();
            (n, (logs / t.len() as f64).exp())
        })
        .collect()
}

// Measured on this grid: 15 of 27 picks are the simulated best, the mean
// regret is 1.039 and the largest 1.187 (tiny, all-gather at 256 KiB: the
// model puts the hierarchical all-gather ahead of the ring, whose model
// holds, while the hierarchical one simulates 1.3x slower than modelled;
// see `tests/model.rs`). The bounds leave room for two more misses and a
// few percent, no more: a model change that makes the picks worse fails
// here.
const HIT_RATE: f64 = 0.48;
const MEAN_REGRET: f64 = 1.06;
const MAX_REGRET: f64 = 1.25;
