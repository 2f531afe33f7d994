//! Every registry algorithm checked functionally (numerically, without the
//! timing model) and symbolically (every contribution exactly once), and
//! deliberately broken collectives caught by the symbolic check.

use kernbench_ccl::algorithms::common::combine;
use kernbench_ccl::run::RunError;
use kernbench_ccl::verify::{self, Contribution};
use kernbench_ccl::{Algorithm, Collective, RedOp, Registry, RunSpec};
use kernbench_core::functional;
use kernbench_core::machine::Machine;
use kernbench_core::neighbors::NeighborMap;
use kernbench_core::sim::{Launch, LaunchError, SimError};
use kernbench_core::topology::Topology;
use kernbench_core::PeId;
use kernbench_tl::prelude::*;

/// A naive ring all-reduce that passes whole vectors around, but starts from
/// its own input combined with itself: every rank's own contribution twice.
#[kernel]
pub fn double_count_allreduce(buf: Ptr<f32>, n: usize, #[constexpr] op: RedOp) {
    let (w, r) = (tl::num_programs(0), tl::program_id(0));
    let at = buf.offset(r * n);
    let mine = tl::load(at, [n]);
    let mut acc = combine(&mine, &mine, op);
    let mut x = mine;
    for _ in 1..w {
        tl::send(Dir::E, &x);
        x = tl::recv::<f32>(Dir::W, [n]);
        acc = combine(&acc, &x, op);
    }
    tl::store(at, &acc);
}

/// The same naive ring, one step short: the farthest rank's contribution never arrives.
#[kernel]
pub fn forgetful_allreduce(buf: Ptr<f32>, n: usize, #[constexpr] op: RedOp) {
    let (w, r) = (tl::num_programs(0), tl::program_id(0));
    let at = buf.offset(r * n);
    let mut acc = tl::load(at, [n]);
    let mut x = acc;
    for _ in 2..w {
        tl::send(Dir::E, &x);
        x = tl::recv::<f32>(Dir::W, [n]);
        acc = combine(&acc, &x, op);
    }
    tl::store(at, &acc);
}

/// An all-reduce that scales its result: arithmetic the symbolic domain does not follow.
#[kernel]
pub fn scaled_allreduce(buf: Ptr<f32>, n: usize) {
    let r = tl::program_id(0);
    let at = buf.offset(r * n);
    let x = tl::load(at, [n]);
    tl::store(at, &(x * 2.0));
}

/// A naive ring all-reduce whose accumulator passes through views, a
/// transpose and a broadcasting add: each rank's vector is a `[1, n]` row,
/// the received `[n]` vectors broadcast onto it.
#[kernel]
pub fn viewed_allreduce(buf: Ptr<f32>, n: usize) {
    let (w, r) = (tl::num_programs(0), tl::program_id(0));
    let at = buf.offset(r * n);
    let mine = tl::load(at, [n]);
    let mut acc = mine.expand_dims(1).trans();
    let mut x = mine;
    for _ in 1..w {
        tl::send(Dir::E, &x);
        x = tl::recv::<f32>(Dir::W, [n]);
        acc = acc + x;
    }
    tl::store(at, &tl::sum(&acc, 0).reshape([n]));
}

/// The same, but its result is spread over two rows and summed back: every
/// contribution twice.
#[kernel]
pub fn spread_twice_allreduce(buf: Ptr<f32>, n: usize) {
    let (w, r) = (tl::num_programs(0), tl::program_id(0));
    let at = buf.offset(r * n);
    let mut acc = tl::load(at, [n]);
    let mut x = acc;
    for _ in 1..w {
        tl::send(Dir::E, &x);
        x = tl::recv::<f32>(Dir::W, [n]);
        acc = acc + x;
    }
    tl::store(at, &tl::sum(&acc.broadcast_to([2, n]), 0));
}

/// Every rank receives before it sends.
#[kernel]
pub fn recv_then_send(buf: Ptr<f32>, n: usize) {
    let r = tl::program_id(0);
    let y = tl::recv::<f32>(Dir::W, [n]); // the deadlocking receive
    tl::send(Dir::E, &y);
    tl::store(buf.offset(r * n), &y);
}

fn tiny() -> Topology {
    Topology::builtin("tiny").unwrap()
}

fn spec(count: usize, op: RedOp) -> RunSpec {
    RunSpec {
        fabric: Default::default(),
        ties: Default::default(),
        max_memory: None,
        progress: Default::default(),
        count,
        dtype: DType::F32,
        op,
        root: 0,
        data: true,
        trace: false,
        why: false,
    }
}

/// A ring all-reduce entry of the registry running another kernel family.
fn custom(kernel: &str) -> Algorithm {
    let base = Registry::builtin().get("ring_allreduce").unwrap().clone();
    Algorithm {
        name: kernel.into(),
        kernel: kernel.into(),
        ..base
    }
}

/// The world sizes an algorithm is checked on.
fn sizes(algo: &Algorithm, all: usize) -> Vec<usize> {
    match algo.topology {
        // Whole SIPs only: the kernel takes its cube count from the machine.
        kernbench_ccl::MapKind::Hierarchical => vec![all],
        // One PE per cube of whole SIPs.
        k if k.one_pe_per_cube() => vec![all],
        _ => vec![1, 3, 5, 7, 12, all],
    }
}

#[test]
fn every_registry_algorithm_passes_both_checks() {
    let topo = tiny();
    let all: Vec<PeId> = topo.pes().collect();
    let reg = Registry::builtin();
    assert!(reg.algorithms().len() >= 7);
    for algo in reg.algorithms() {
        let ranks = if algo.topology.one_pe_per_cube() {
            kernbench_ccl::run::ranks(&topo, algo).unwrap()
        } else {
            all.clone()
        };
        for w in sizes(algo, ranks.len()) {
            let pes = &ranks[..w];
            for count in [1, 37, 1000] {
                // An all-to-all needs a block per rank.
                let count = if algo.collective == Collective::AllToAll {
                    count.max(w)
                } else {
                    count
                };
                let what = format!("{} on {w} PEs, count {count}", algo.name);
                let rep = verify::symbolic(&topo, algo, pes, count)
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                assert!(rep.is_ok(), "{what}:\n{rep}");
                // Reduce-scatter promises each rank its chunk; reduce and
                // gather promise the root its vector.
                let promised = match algo.collective {
                    Collective::ReduceScatter | Collective::Reduce | Collective::Gather => count,
                    _ => w * count,
                };
                assert_eq!(rep.checked, promised, "{what}");
                let (wrong, checked) =
                    verify::functional(&topo, algo, pes, &spec(count, RedOp::Sum))
                        .unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(checked, promised, "{what}");
                assert_eq!(wrong, 0, "{what}: {wrong} of {checked} wrong");
            }
        }
    }
}

#[test]
fn the_functional_check_covers_every_operator() {
    let topo = tiny();
    let all: Vec<PeId> = topo.pes().collect();
    let reg = Registry::builtin();
    for name in [
        "ring_allreduce",
        "tree_allreduce",
        "mesh_allreduce",
        "reduce_scatter",
    ] {
        for op in [RedOp::Max, RedOp::Min] {
            let (wrong, checked) =
                verify::functional(&topo, reg.get(name).unwrap(), &all[..6], &spec(333, op))
                    .unwrap();
            assert!(checked > 0);
            assert_eq!(wrong, 0, "{name} {op:?}");
        }
    }
}

#[test]
fn a_contribution_counted_twice_is_caught() {
    let topo = tiny();
    let all: Vec<PeId> = topo.pes().collect();
    let algo = custom("double_count_allreduce");
    let (w, n) = (5, 37);
    let rep = verify::symbolic(&topo, &algo, &all[..w], n).unwrap();
    println!("{rep}");
    assert!(!rep.is_ok());
    assert_eq!(rep.checked, w * n);
    assert_eq!(
        rep.duplicated,
        w * n,
        "every element holds its own rank's input twice"
    );
    assert_eq!((rep.missing, rep.foreign), (0, 0));
    let first = &rep.offenders[0];
    assert_eq!((first.rank, first.element), (0, 0));
    assert!(
        first
            .holds
            .contains(&(Contribution { rank: 0, index: 0 }, 2)),
        "{first}"
    );
    assert!(rep.to_string().contains("(0, 0) x2"), "{rep}");
    // The numeric check sees it under `sum` where a rank's input is not 0,
    // and not at all under `max` (max(x, x) = x).
    let (wrong_sum, checked) =
        verify::functional(&topo, &algo, &all[..w], &spec(n, RedOp::Sum)).unwrap();
    let (wrong_max, _) = verify::functional(&topo, &algo, &all[..w], &spec(n, RedOp::Max)).unwrap();
    println!(
        "numeric check: sum {wrong_sum} of {checked} wrong, max {wrong_max} of {checked} wrong"
    );
    assert!(
        wrong_sum > 0 && wrong_sum < checked,
        "inputs of 0 hide some doubles from `sum`"
    );
    assert_eq!(wrong_max, 0, "`max` hides every double");
}

#[test]
fn a_contribution_never_received_is_caught() {
    let topo = tiny();
    let all: Vec<PeId> = topo.pes().collect();
    let algo = custom("forgetful_allreduce");
    let (w, n) = (7, 1000);
    let rep = verify::symbolic(&topo, &algo, &all[..w], n).unwrap();
    println!("{rep}");
    assert_eq!(rep.missing, w * n, "one rank's input is missing everywhere");
    assert_eq!((rep.duplicated, rep.foreign), (0, 0));
    assert_eq!(rep.offending, w * n);
    assert_eq!(rep.offenders.len(), 8, "a report keeps the first few");
    // Rank 0 lacks the input of the rank farthest up the ring: rank 1.
    let first = &rep.offenders[0];
    assert_eq!(first.missing, 1);
    assert!(!first.holds.iter().any(|(c, _)| c.rank == 1), "{first}");
    let (wrong_sum, checked) =
        verify::functional(&topo, &algo, &all[..w], &spec(n, RedOp::Sum)).unwrap();
    let (wrong_max, _) = verify::functional(&topo, &algo, &all[..w], &spec(n, RedOp::Max)).unwrap();
    println!(
        "numeric check: sum {wrong_sum} of {checked} wrong, max {wrong_max} of {checked} wrong"
    );
    assert!(wrong_sum > 0 && wrong_sum < checked);
    assert!(wrong_max < wrong_sum);
}

#[test]
fn views_transposes_broadcasts_and_reductions_carry_contributions() {
    let topo = tiny();
    let all: Vec<PeId> = topo.pes().collect();
    let (w, n) = (5, 13);
    let rep = verify::symbolic(&topo, &custom("viewed_allreduce"), &all[..w], n).unwrap();
    assert!(rep.is_ok(), "{rep}");
    assert_eq!(rep.checked, w * n);
    let (wrong, _) = verify::functional(
        &topo,
        &custom("viewed_allreduce"),
        &all[..w],
        &spec(n, RedOp::Sum),
    )
    .unwrap();
    assert_eq!(wrong, 0);
    // Spread over two rows and summed: every element holds all w inputs twice.
    let rep = verify::symbolic(&topo, &custom("spread_twice_allreduce"), &all[..w], n).unwrap();
    assert_eq!(rep.duplicated, w * w * n, "{rep}");
    assert_eq!((rep.missing, rep.foreign), (0, 0));
}

#[test]
fn arithmetic_the_symbolic_domain_cannot_follow_is_refused() {
    let topo = tiny();
    let all: Vec<PeId> = topo.pes().collect();
    let e = verify::symbolic(&topo, &custom("scaled_allreduce"), &all[..3], 8).unwrap_err();
    let RunError::NotSymbolic(LaunchError::Unsupported { op, loc, .. }) = &e else {
        panic!("{e}")
    };
    assert_eq!(*op, "mul");
    let msg = e.to_string();
    assert!(msg.contains("`mul`") && msg.contains("verify.rs"), "{msg}");
    assert!(msg.contains(&loc.to_string()), "{msg}");
}

#[test]
fn receiving_before_sending_is_a_deadlock_naming_both_pes_and_the_line() {
    let topo = tiny();
    let pes: Vec<PeId> = topo.pes().take(2).collect();
    let n = 16;
    let mut machine = Machine::new(topo).unwrap();
    let buf = machine.alloc(DType::F32, 2 * n, &pes).unwrap();
    let launch = Launch::new(
        &recv_then_send,
        KernelArgs::new().with("buf", buf.ptr()).int("n", n as i64),
        pes.clone(),
    )
    .neighbors(NeighborMap::ring(&pes).unwrap());
    let e = functional::run(&mut machine, &launch)
        .map(|_| ())
        .unwrap_err();
    println!("{e}");
    let SimError::Deadlock(d) = e else {
        panic!("a deadlock, not {e}")
    };
    let marker = concat!("// the dead", "locking receive");
    let line = include_str!("verify.rs")
        .lines()
        .position(|l| l.contains(marker))
        .unwrap() as u32
        + 1;
    assert_eq!(d.waiters.iter().map(|w| w.pe).collect::<Vec<_>>(), pes);
    for (w, peer) in d.waiters.iter().zip([pes[1], pes[0]]) {
        assert_eq!(w.wait.what(), "recv W");
        assert_eq!(
            w.wait.detail(),
            format!("from PE {peer}: 0 of 1 packets arrived")
        );
        assert_eq!(w.loc.line, line);
        assert!(w.loc.file.ends_with("verify.rs"), "{}", w.loc);
    }
}

#[test]
fn bad_parameters_are_errors() {
    let topo = tiny();
    let all: Vec<PeId> = topo.pes().collect();
    let reg = Registry::builtin();
    let ring = reg.get("ring_allreduce").unwrap();
    assert!(verify::symbolic(&topo, ring, &all[..3], 0).is_err());
    assert!(verify::functional(&topo, ring, &all[..3], &spec(0, RedOp::Sum)).is_err());
    let e = verify::symbolic(
        &topo,
        reg.get("hierarchical_allreduce").unwrap(),
        &all[..3],
        8,
    )
    .unwrap_err();
    assert!(e.to_string().contains("whole cubes"), "{e}");
    assert!(verify::symbolic(&topo, &custom("no_such_kernel"), &all[..3], 8).is_err());
}

#[test]
fn every_registry_algorithm_passes_the_symbolic_check_on_default() {
    let topo = Topology::embedded_default();
    let reg = Registry::builtin();
    for algo in reg.algorithms() {
        let pes = kernbench_ccl::run::ranks(&topo, algo).unwrap();
        // An all-to-all needs a block per rank.
        let count = if algo.collective == Collective::AllToAll {
            pes.len() + 37
        } else {
            37
        };
        let rep = verify::symbolic(&topo, algo, &pes, count)
            .unwrap_or_else(|e| panic!("{}: {e}", algo.name));
        assert!(rep.is_ok(), "{} on default:\n{rep}", algo.name);
        assert!(rep.checked > 0);
    }
}

#[test]
fn the_symbolic_check_gives_one_verdict_in_program_and_timed_order() {
    use verify::Order;
    let topo = tiny();
    let all: Vec<PeId> = topo.pes().collect();
    let reg = Registry::builtin();
    let mut compared = 0;
    for algo in reg.algorithms() {
        let ranks = if algo.topology.one_pe_per_cube() {
            kernbench_ccl::run::ranks(&topo, algo).unwrap()
        } else {
            all.clone()
        };
        for w in [3, ranks.len()] {
            if w > ranks.len() || (w != ranks.len() && sizes(algo, ranks.len()).len() == 1) {
                continue;
            }
            let count = 37.max(w);
            let what = format!("{} on {w} PEs", algo.name);
            let program = verify::symbolic_in(&topo, algo, &ranks[..w], count, Order::Program)
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            let timed = verify::symbolic_in(&topo, algo, &ranks[..w], count, Order::Timed)
                .unwrap_or_else(|e| panic!("{what}, timed: {e}"));
            assert!(timed.is_ok(), "{what}, timed:\n{timed}");
            assert_eq!(timed.to_string(), program.to_string(), "{what}");
            assert_eq!(timed.messages, program.messages, "{what}");
            compared += 1;
        }
    }
    assert!(compared >= reg.algorithms().len());
    // A wrong collective is wrong in either order, with the same offenders.
    for (name, w, n) in [
        ("double_count_allreduce", 5, 37),
        ("forgetful_allreduce", 7, 100),
    ] {
        let algo = custom(name);
        let program = verify::symbolic_in(&topo, &algo, &all[..w], n, Order::Program).unwrap();
        let timed = verify::symbolic_in(&topo, &algo, &all[..w], n, Order::Timed).unwrap();
        assert!(!timed.is_ok(), "{name}");
        assert_eq!(timed.to_string(), program.to_string(), "{name}");
    }
    // What the domain cannot follow is refused in timed order too, naming the line.
    let e = verify::symbolic_in(
        &topo,
        &custom("scaled_allreduce"),
        &all[..3],
        8,
        Order::Timed,
    )
    .unwrap_err();
    assert!(matches!(e, RunError::NotSymbolic(_)), "{e}");
    assert!(e.to_string().contains("verify.rs"), "{e}");
}
