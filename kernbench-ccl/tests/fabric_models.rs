//! The message-level fabric against the slot-level reference: every registry
//! algorithm, simulated time within 1%, and the message model with fewer events.
//!
//! The CI part runs `tiny` at small sizes. The full comparison (`tiny` and
//! `default`, 4 KiB to 16 MiB) is ignored here; run it with
//! `cargo test --release -p kernbench-ccl --test fabric_models -- --ignored --nocapture`
//! to print its table. With `TIES=reversed` or `TIES=ranked` in the
//! environment it compares the two models under that order of an instant's
//! events; the bounds are checked only for the default order.
//!
//! Every order in which the engine may handle one instant's events computes
//! every collective right, and `-- --ignored --nocapture tie_order_table`
//! prints how much each time depends on the order.

use kernbench_ccl::{run, Registry, RunSpec};
use kernbench_core::sim::{FabricModel, TieOrder};
use kernbench_core::topology::Topology;
use kernbench_core::DType;

struct Pair {
    algo: String,
    bytes: u64,
    slots_ps: u64,
    messages_ps: u64,
    slots_events: u64,
    messages_events: u64,
}

impl Pair {
    fn rel(&self) -> f64 {
        (self.messages_ps as f64 - self.slots_ps as f64) / self.slots_ps as f64
    }
}

fn compare(topo: &Topology, sizes: &[u64], data: bool, ties: TieOrder) -> Vec<Pair> {
    let reg = Registry::builtin();
    let mut out = Vec::new();
    for algo in reg.algorithms() {
        for &bytes in sizes {
            let mut got = Vec::new();
            for fabric in FabricModel::ALL {
                let spec = RunSpec {
                    count: (bytes / 4) as usize,
                    dtype: DType::F32,
                    op: kernbench_ccl::RedOp::Sum,
                    root: 0,
                    data,
                    trace: false,
                    why: false,
                    fabric,
                    ties,
                    max_memory: None,
                    progress: Default::default(),
                };
                let r = run(topo, algo, &spec)
                    .unwrap_or_else(|e| panic!("{} at {bytes} B with {fabric}: {e}", algo.name));
                assert_eq!(r.wrong, 0, "{} at {bytes} B with {fabric}", algo.name);
                let rep = &r.outcome.report;
                got.push((rep.end_ps - rep.start_ps, rep.events));
            }
            out.push(Pair {
                algo: algo.name.clone(),
                bytes,
                messages_ps: got[0].0,
                slots_ps: got[1].0,
                messages_events: got[0].1,
                slots_events: got[1].1,
            });
        }
    }
    out
}

fn check(pairs: &[Pair], topo: &str, tolerance: f64) {
    for p in pairs {
        assert!(
            p.rel().abs() <= tolerance,
            "{} at {} B on {topo}: messages {} ps, slots {} ps ({:+.3}%)",
            p.algo,
            p.bytes,
            p.messages_ps,
            p.slots_ps,
            p.rel() * 100.0
        );
        assert!(
            p.messages_events <= p.slots_events,
            "{} at {} B on {topo}: {} events with messages, {} with slots",
            p.algo,
            p.bytes,
            p.messages_events,
            p.slots_events
        );
    }
}

#[test]
fn messages_agree_with_slots_on_tiny() {
    let topo = Topology::builtin("tiny").unwrap();
    let pairs = compare(&topo, &[4 << 10, 1 << 20], true, TieOrder::Scheduled);
    assert!(pairs.len() >= 20, "every registry algorithm is compared");
    check(&pairs, "tiny", 0.01);
}

/// Two SIPs of two cubes: flows between cubes and between SIPs contend on
/// links they reach at different times, which a link that kept only its
/// last reservation served in reservation order (ADR 0035).
fn two_sips() -> Topology {
    Topology::from_yaml(
        "name: two_sips\nsips: 2\nsip:\n  cubes: {rows: 1, cols: 2}\n  cube:\n    pes: 8\n",
        "two_sips",
    )
    .unwrap()
}

#[test]
fn contended_collectives_agree_across_models_and_tie_orders() {
    let topo = two_sips();
    let reg = Registry::builtin();
    for name in [
        "double_tree_allreduce",
        "recursive_doubling",
        "hierarchical_allreduce",
    ] {
        let algo = reg.get(name).unwrap();
        let mut times = Vec::new();
        for ties in TieOrder::ALL {
            let by_model: Vec<u64> = FabricModel::ALL
                .into_iter()
                .map(|fabric| timed(&topo, algo, 1 << 20, ties, false, fabric).0)
                .collect();
            // Ties break differently in the two models (ADR 0008): the
            // default order agrees closely, the others within 1%.
            let bound = if ties == TieOrder::default() {
                0.001
            } else {
                0.01
            };
            let rel = by_model[0].abs_diff(by_model[1]) as f64 / by_model[1] as f64;
            assert!(
                rel <= bound,
                "{name} with {ties} ties: messages {} ps, slots {} ps",
                by_model[0],
                by_model[1]
            );
            times.push(by_model[0]);
        }
        let (lo, hi) = (times.iter().min().unwrap(), times.iter().max().unwrap());
        assert!(
            (hi - lo) as f64 / *lo as f64 <= 0.02,
            "{name}: the tie orders give {times:?} ps"
        );
    }
}

#[test]
#[ignore = "minutes in debug; run in release for the table"]
fn messages_agree_with_slots_table() {
    println!("| topology | algorithm | size | slots (us) | messages (us) | diff | slots events | messages events |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    let ties: TieOrder = std::env::var("TIES").map_or(TieOrder::default(), |t| {
        t.parse().unwrap_or_else(|e| panic!("TIES: {e}"))
    });
    let mut all = Vec::new();
    for name in ["tiny", "default"] {
        let topo = Topology::builtin(name).unwrap();
        let pairs = compare(&topo, &[4 << 10, 64 << 10, 1 << 20, 16 << 20], false, ties);
        for p in &pairs {
            println!(
                "| {name} | {} | {} | {:.3} | {:.3} | {:+.3}% | {} | {} |",
                p.algo,
                p.bytes,
                p.slots_ps as f64 / 1e6,
                p.messages_ps as f64 / 1e6,
                p.rel() * 100.0,
                p.slots_events,
                p.messages_events
            );
        }
        all.push((name, pairs));
    }
    // Where two flows reach a contended link at the same picosecond, the
    // order of their reservations follows event order, which the two models
    // build differently; such ties move a few cases by a few percent (ADR
    // 0008). The median stays within 0.1%.
    let mut rels: Vec<f64> = all
        .iter()
        .flat_map(|(_, p)| p.iter().map(|p| p.rel().abs()))
        .collect();
    rels.sort_by(f64::total_cmp);
    println!(
        "{} pairs with {ties} ties: median |diff| {:.3}%, largest {:.3}%, {} over 1%",
        rels.len(),
        rels[rels.len() / 2] * 100.0,
        rels[rels.len() - 1] * 100.0,
        rels.iter().filter(|&&r| r > 0.01).count()
    );
    if ties != TieOrder::default() {
        return;
    }
    assert!(
        rels[rels.len() / 2] <= 0.001,
        "median {}",
        rels[rels.len() / 2]
    );
    for (name, pairs) in &all {
        check(pairs, name, 0.05);
    }
}

/// `algo` at `bytes` a rank with an instant's events handled in `ties`
/// order, in `fabric`: its time in ps and its events.
fn timed(
    topo: &Topology,
    algo: &kernbench_ccl::Algorithm,
    bytes: u64,
    ties: TieOrder,
    data: bool,
    fabric: FabricModel,
) -> (u64, u64) {
    let spec = RunSpec {
        data,
        ties,
        ..RunSpec::timing((bytes / 4) as usize, DType::F32, fabric)
    };
    let r = run(topo, algo, &spec)
        .unwrap_or_else(|e| panic!("{} at {bytes} B, {ties} ties: {e}", algo.name));
    assert_eq!(r.wrong, 0, "{} at {bytes} B, {ties} ties", algo.name);
    let rep = &r.outcome.report;
    (rep.end_ps - rep.start_ps, rep.events)
}

#[test]
fn every_tie_order_computes_every_collective_right() {
    let topo = Topology::builtin("tiny").unwrap();
    let reg = Registry::builtin();
    let mut runs = 0;
    for algo in reg.algorithms() {
        for ties in TieOrder::ALL {
            // The data are checked element by element, and a second run
            // with the data off takes the same time and events.
            let with_data = timed(&topo, algo, 4 << 10, ties, true, FabricModel::Messages);
            let without = timed(&topo, algo, 4 << 10, ties, false, FabricModel::Messages);
            assert_eq!(with_data, without, "{} with {ties} ties", algo.name);
            runs += 1;
        }
    }
    assert!(
        runs >= 20 * TieOrder::ALL.len(),
        "every registry algorithm runs in every order"
    );
}

#[test]
#[ignore = "a minute in release; prints how much each time depends on the tie order"]
fn tie_order_table() {
    println!("| topology | algorithm | size | scheduled (us) | reversed (us) | diff | ranked (us) | diff |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    let (mut runs, mut moved, mut over_1pct) = (0, [0; 2], [0; 2]);
    for name in ["tiny", "default"] {
        let topo = Topology::builtin(name).unwrap();
        for algo in Registry::builtin().algorithms() {
            for bytes in [64u64 << 10, 1 << 20] {
                let (a, _) = timed(
                    &topo,
                    algo,
                    bytes,
                    TieOrder::Scheduled,
                    false,
                    FabricModel::Messages,
                );
                let (b, _) = timed(
                    &topo,
                    algo,
                    bytes,
                    TieOrder::Reversed,
                    false,
                    FabricModel::Messages,
                );
                let (c, _) = timed(
                    &topo,
                    algo,
                    bytes,
                    TieOrder::Ranked,
                    false,
                    FabricModel::Messages,
                );
                let rel = (b as f64 - a as f64) / a as f64;
                let relc = (c as f64 - a as f64) / a as f64;
                runs += 1;
                for (k, (t, r)) in [(b, rel), (c, relc)].into_iter().enumerate() {
                    moved[k] += usize::from(t != a);
                    over_1pct[k] += usize::from(r.abs() > 0.01);
                }
                println!(
                    "| {name} | {} | {bytes} | {:.3} | {:.3} | {:+.2}% | {:.3} | {:+.2}% |",
                    algo.name,
                    a as f64 / 1e6,
                    b as f64 / 1e6,
                    rel * 100.0,
                    c as f64 / 1e6,
                    relc * 100.0
                );
            }
        }
    }
    for (k, name) in ["reversed", "ranked"].into_iter().enumerate() {
        println!(
            "{runs} runs, {name} against scheduled: {} moved, {} by more than 1%",
            moved[k], over_1pct[k]
        );
    }
}
