//! The fabric between PEs: shared links, IPCQ backpressure, pairing checks and
//! deadlock diagnosis, and data that really moves.

use kernbench::core::ir::TileType;
use kernbench::core::sim::fabric::Fabric;
use kernbench::core::sim::{
    simulate, FabricModel, Launch, Mismatch, PairingError, PeerHint, SimError,
};
use kernbench::core::topology::Endpoint;
use kernbench::kernels::hello_send;
use kernbench::prelude::*;

fn tiny() -> Topology {
    Topology::builtin("tiny").unwrap()
}

/// The route from PE (0,0,0) to PE (0,1,0), from one cube to the next.
fn cube_to_cube(topo: &Topology) -> kernbench::core::topology::Route {
    topo.route(
        Endpoint::Pe(PeId::new(0, 0, 0)),
        Endpoint::Pe(PeId::new(0, 1, 0)),
    )
    .unwrap()
}

#[test]
fn two_transfers_on_one_link_take_longer_than_one() {
    let topo = tiny();
    let route = cube_to_cube(&topo);
    let alone = Fabric::new(topo.links()).transfer(0, &route, 1 << 20).1;
    let mut shared = Fabric::new(topo.links());
    let first = shared.transfer(0, &route, 1 << 20).1;
    let second = shared.transfer(0, &route, 1 << 20).1;
    assert_eq!(first, alone);
    assert!(
        second > alone,
        "the second transfer ({second} ps) must wait for the link ({alone} ps alone)"
    );
    // Cut-through: one transfer costs path latency + bytes / bottleneck, not the sum per hop.
    let expect =
        route.fixed_ps() + kernbench::core::ids::transfer_ps(1 << 20, route.bottleneck_gbps);
    assert!(
        alone.abs_diff(expect) <= route.hops.len() as u64,
        "{alone} vs {expect}"
    );
}

#[test]
fn a_link_reserved_for_later_still_carries_what_arrives_before() {
    let topo = tiny();
    let route = cube_to_cube(&topo);
    let small = 4096;
    let alone = Fabric::new(topo.links()).transfer(0, &route, small).1;
    let mut fabric = Fabric::new(topo.links());
    // Reserved first, for 1 us from now: the route is idle until then.
    let late = 1_000_000;
    let later = fabric.transfer(late, &route, small).1;
    assert_eq!(later - late, alone, "the reservation itself is uncontended");
    // Reserved second, for now: it is through long before 1 us, as if
    // the links were free (they are, until then).
    assert_eq!(fabric.transfer(0, &route, small).1, alone);
    // What does not fit in the idle time waits for the reservation.
    let big = 1 << 20;
    let big_alone = Fabric::new(topo.links()).transfer(0, &route, big).1;
    assert!(big_alone > late, "1 MiB takes longer than the idle time");
    let big_after = fabric.transfer(0, &route, big).1;
    assert!(
        big_after > later,
        "a transfer that cannot end before the reservation goes after it ({big_after} ps, reservation ends {later} ps)"
    );
}

/// Two senders in one cube, each sending to its partner in the neighbouring cube.
#[kernel]
fn pairs_send(t: Ptr<f32>, n: usize) {
    let rank = tl::program_id(0);
    if rank % 2 == 0 {
        let x = tl::load(t.offset(rank * n), [n]);
        tl::send(Dir::E, &x);
    } else {
        let y = tl::recv::<f32>(Dir::W, [n]);
        tl::store(t.offset(rank * n), &y);
    }
}

fn run_pairs(topo: &Topology, pairs: &[(PeId, PeId)], n: usize) -> Report {
    let pes: Vec<PeId> = pairs.iter().flat_map(|(a, b)| [*a, *b]).collect();
    let mut map = NeighborMap::empty("pairs");
    for (a, b) in pairs {
        map.set(*a, Dir::E, *b);
        map.set(*b, Dir::W, *a);
    }
    let mut m = Machine::new(topo.clone()).unwrap();
    let buf = m.alloc(DType::F32, pes.len() * n, &pes).unwrap();
    let args = KernelArgs::new().with("t", buf.ptr()).int("n", n as i64);
    simulate(
        &mut m,
        &Launch::new(&pairs_send, args, pes)
            .neighbors(map)
            .data(false),
    )
    .unwrap()
}

#[test]
fn transfers_sharing_a_link_in_the_simulator_slow_each_other() {
    let topo = tiny();
    // Find two PE pairs from cube 0 to cube 1 whose routes share a link.
    let src: Vec<PeId> = (0..topo.pes_per_cube())
        .map(|p| PeId::new(0, 0, p))
        .collect();
    let dst: Vec<PeId> = (0..topo.pes_per_cube())
        .map(|p| PeId::new(0, 1, p))
        .collect();
    let route = |a: PeId, b: PeId| topo.route(Endpoint::Pe(a), Endpoint::Pe(b)).unwrap();
    let (a, b) = (src[0], dst[0]);
    let ra: Vec<_> = route(a, b).links().collect();
    let (c, d) = src[1..]
        .iter()
        .flat_map(|c| dst[1..].iter().map(move |d| (*c, *d)))
        .find(|(c, d)| route(*c, *d).links().any(|l| ra.contains(&l)))
        .expect("two routes from cube 0 to cube 1 share a UCIe link");
    let n = 64 * 1024;
    // Each pair alone, then both at once: with no contention the pair run
    // would take the slower pair's time, so it must take longer than that.
    let ab = run_pairs(&topo, &[(a, b)], n).sim_ps();
    let cd = run_pairs(&topo, &[(c, d)], n).sim_ps();
    let both = run_pairs(&topo, &[(a, b), (c, d)], n).sim_ps();
    let slower = ab.max(cd);
    assert!(
        both > slower,
        "two transfers over a shared link ({both} ps) must take longer than the slower alone ({ab} and {cd} ps)"
    );
}

#[test]
fn hello_send_runs_on_every_pe_of_default_with_its_data_checked() {
    let topo = Topology::embedded_default();
    let pes: Vec<PeId> = topo.pes().collect();
    let n = 256;
    let mut m = Machine::new(topo.clone()).unwrap();
    let buf = m.alloc(DType::F16, pes.len() * n, &pes).unwrap();
    let input: Vec<f32> = (0..pes.len() * n).map(|k| (k % 1000) as f32).collect();
    m.write_buffer(&buf, &input).unwrap();
    let grid = [
        topo.pes_per_cube() as u32,
        (pes.len() / topo.pes_per_cube() as usize) as u32,
    ];
    let args = KernelArgs::new()
        .with("t", buf.ptr())
        .int("n_elem", n as i64);
    let launch = Launch::new(&hello_send, args, pes.clone())
        .grid(&grid)
        .neighbors(NeighborMap::ring(&pes).unwrap());
    let r = simulate(&mut m, &launch).unwrap();
    assert_eq!(r.pes.len(), 256);
    let out = m.read_buffer(&buf).unwrap();
    let w = pes.len();
    for r in 0..w {
        for i in 0..n {
            assert_eq!(
                out[r * n + i],
                input[((r + w - 1) % w) * n + i],
                "rank {r} element {i}"
            );
        }
    }
}

#[test]
fn timing_with_data_equals_timing_without() {
    let topo = tiny();
    let reg = kernbench::ccl::Registry::builtin();
    for algo in ["ring_allreduce", "tree_allreduce", "hierarchical_allreduce"] {
        let a = reg.get(algo).unwrap();
        let run = |data| {
            let spec = kernbench::ccl::RunSpec {
                fabric: Default::default(),
                ties: Default::default(),
                max_memory: None,
                progress: Default::default(),
                count: 5000,
                dtype: DType::F16,
                op: kernbench::ccl::RedOp::Sum,
                root: 0,
                data,
                trace: false,
                why: false,
            };
            kernbench::ccl::run(&topo, a, &spec).unwrap().outcome.report
        };
        assert_eq!(run(true), run(false), "{algo}");
    }
}

#[test]
fn probe_cases_agree_across_fabric_models() {
    use kernbench::probe::{probe_with, Case};
    for topo in [tiny(), Topology::embedded_default()] {
        for case in Case::ALL {
            for bytes in [4u64 << 10, 64 << 10, 1 << 20] {
                let row = |f| probe_with(&topo, case, bytes, f);
                let (Ok(m), Ok(s)) = (row(FabricModel::Messages), row(FabricModel::Slots)) else {
                    // A case the topology does not have (cross-SIP on tiny).
                    continue;
                };
                let rel = (m.latency_ns - s.latency_ns).abs() / s.latency_ns;
                assert!(
                    rel <= 0.001,
                    "{case:?} at {bytes} B on {}: messages {} ns, slots {} ns",
                    topo.name(),
                    m.latency_ns,
                    s.latency_ns
                );
            }
        }
    }
}

#[test]
fn runs_repeat_exactly_and_data_does_not_change_timing_in_either_model() {
    let topo = tiny();
    let reg = kernbench::ccl::Registry::builtin();
    let mut algo = reg.get("hierarchical_allreduce").unwrap().clone();
    algo.seg_bytes = 64 << 10;
    for fabric in FabricModel::ALL {
        let run = |data| {
            let spec = kernbench::ccl::RunSpec {
                fabric,
                ties: Default::default(),
                max_memory: None,
                progress: Default::default(),
                count: 100_000,
                dtype: DType::F32,
                op: kernbench::ccl::RedOp::Sum,
                root: 0,
                data,
                trace: false,
                why: false,
            };
            let r = kernbench::ccl::run(&topo, &algo, &spec).unwrap();
            assert_eq!(r.wrong, 0);
            if !data {
                // The ranks' memory-ordering edges differ (each reduces a
                // different chunk first), yet they share one program.
                assert_eq!(r.outcome.distinct_programs, 1, "{fabric}");
            }
            r.outcome.report
        };
        let first = run(false);
        assert_eq!(first, run(false), "{fabric}: two runs differ");
        assert_eq!(first, run(true), "{fabric}: data changes timing");
    }
}

// Broken kernels, each with the error it must give.

fn two_pe_ring(topo: &Topology) -> (Vec<PeId>, NeighborMap) {
    let pes = vec![PeId::new(0, 0, 0), PeId::new(0, 0, 1)];
    let map = NeighborMap::ring(&pes).unwrap();
    let _ = topo;
    (pes, map)
}

/// The error of a broken kernel on two PEs; both fabric models must give the same one.
fn run_broken(k: &dyn kernbench::core::program::Program, n: usize) -> SimError {
    let topo = tiny();
    let (pes, map) = two_pe_ring(&topo);
    let errs: Vec<SimError> = FabricModel::ALL
        .into_iter()
        .map(|fabric| {
            let mut m = Machine::new(topo.clone()).unwrap();
            let buf = m.alloc(DType::F32, 64 * 1024, &pes).unwrap();
            let args = KernelArgs::new().with("t", buf.ptr()).int("n", n as i64);
            let launch = Launch::new(k, args, pes.clone())
                .neighbors(map.clone())
                .fabric(fabric);
            simulate(&mut m, &launch).unwrap_err()
        })
        .collect();
    assert_eq!(
        errs[0].to_string(),
        errs[1].to_string(),
        "both fabric models report the same error"
    );
    errs.into_iter().next().unwrap()
}

/// PE 0 sends twice, PE 1 receives once.
#[kernel]
fn unpaired_send(t: Ptr<f32>, n: usize) {
    let x = tl::load(t, [n]);
    if tl::program_id(0) == 0 {
        tl::send(Dir::E, &x);
        tl::send(Dir::E, &x);
    } else {
        let y = tl::recv::<f32>(Dir::W, [n]);
        tl::store(t, &y);
    }
}

/// `tests/fabric.rs:LINE:` of the `nth` (0-based) line holding `needle` in the
/// body of kernel `kernel` of this file.
fn line_of(kernel: &str, needle: &str, nth: usize) -> String {
    let text = include_str!("fabric.rs");
    let head = format!("fn {kernel}(");
    let from = text
        .lines()
        .position(|l| l.starts_with(&head))
        .unwrap_or_else(|| panic!("no kernel {kernel}"));
    let line = text
        .lines()
        .enumerate()
        .skip(from)
        .take_while(|(i, l)| *i == from || !l.starts_with('}'))
        .filter(|(_, l)| l.contains(needle))
        .nth(nth)
        .unwrap_or_else(|| panic!("no line {nth} with {needle:?} in {kernel}"))
        .0;
    format!("{}:{}:", file!(), line + 1)
}

#[test]
fn an_unpaired_send_names_both_sides() {
    let err = run_broken(&unpaired_send, 16);
    assert!(
        matches!(err, SimError::Pairing(_)),
        "pairing fails before any simulated time: {err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("sends 2 message(s) E") && msg.contains("receives 1"),
        "{msg}"
    );
    // The last send and the last receive, each by its line.
    let send = line_of("unpaired_send", "tl::send(", 1);
    let recv = line_of("unpaired_send", "tl::recv::<f32>(", 0);
    assert!(
        msg.contains(&format!("(last at {send}")) && msg.contains(&format!("(last at {recv}")),
        "expected the send at {send} and the receive at {recv}: {msg}"
    );
}

/// The receiver expects half of what is sent.
#[kernel]
fn shape_mismatch(t: Ptr<f32>, n: usize) {
    if tl::program_id(0) == 0 {
        let x = tl::load(t, [n]);
        tl::send(Dir::E, &x);
    } else {
        let y = tl::recv::<f32>(Dir::W, [n / 2]);
        tl::store(t, &y);
    }
}

#[test]
fn a_shape_mismatch_names_both_lines() {
    let err = run_broken(&shape_mismatch, 64);
    assert!(
        matches!(err, SimError::Pairing(_)),
        "pairing fails before any simulated time: {err:?}"
    );
    let msg = err.to_string();
    let send = line_of("shape_mismatch", "tl::send(", 0);
    let recv = line_of("shape_mismatch", "tl::recv::<f32>(", 0);
    assert!(
        msg.contains(&format!("sent as tile<f32,[64]> at {send}"))
            && msg.contains(&format!("received as tile<f32,[32]> at {recv}")),
        "expected the send at {send} and the receive at {recv}: {msg}"
    );
    let SimError::Pairing(PairingError::Unmatched { mismatches, .. }) = &err else {
        panic!("not an unmatched channel: {err:?}");
    };
    let tile = |n: usize| TileType {
        dtype: DType::F32,
        shape: vec![n].into(),
    };
    assert!(
        matches!(
            &mismatches[..],
            [Mismatch::Type { message: 1, sent, received, .. }]
                if *sent == tile(64) && *received == tile(32)
        ),
        "{mismatches:?}"
    );
}

/// Everybody receives before sending.
#[kernel]
fn cycle_of_receives(t: Ptr<f32>, n: usize) {
    let y = tl::recv::<f32>(Dir::W, [n]);
    tl::send(Dir::E, &y);
    tl::store(t, &y);
}

#[test]
fn a_cycle_of_receives_is_a_deadlock_naming_every_waiting_pe() {
    let err = run_broken(&cycle_of_receives, 16);
    let SimError::Deadlock(d) = &err else {
        panic!("expected a deadlock, got {err}")
    };
    assert_eq!(d.waiters.len(), 2, "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("PE (0,0,0) waits in `recv W`")
            && msg.contains("PE (0,0,1) waits in `recv W`"),
        "{msg}"
    );
    assert!(
        !msg.contains("hint:"),
        "no ring advice when no send waits: {msg}"
    );
    assert!(msg.contains("fabric.rs:"), "{msg}");
}

/// Both PEs send more than the ring holds before either receives.
#[kernel]
fn full_ring(t: Ptr<f32>, n: usize) {
    let x = tl::load(t, [n]);
    for _ in 0..8 {
        tl::send(Dir::E, &x);
    }
    for _ in 0..8 {
        let y = tl::recv::<f32>(Dir::W, [n]);
        tl::store(t, &y);
    }
}

#[test]
fn a_full_ring_never_drained_is_a_deadlock_in_send() {
    let err = run_broken(&full_ring, 4096);
    let msg = err.to_string();
    assert!(matches!(err, SimError::Deadlock(_)), "{msg}");
    assert!(
        msg.contains("waits in `send E`") && msg.contains("ring slots full"),
        "{msg}"
    );
    let SimError::Deadlock(d) = &err else {
        unreachable!()
    };
    assert_eq!(d.waiters.len(), 2, "one line per waiting PE: {msg}");
    assert!(
        msg.contains("hint: a send waits for free slots")
            && msg.contains("Post the receives first"),
        "a ring-full deadlock says how to fix it: {msg}"
    );
}

/// Sends north on a ring, which has only east and west.
#[kernel]
fn wrong_direction(t: Ptr<f32>, n: usize) {
    let x = tl::load(t, [n]);
    tl::send(Dir::N, &x);
}

#[test]
fn a_direction_the_map_does_not_have_is_an_error_at_its_line() {
    let msg = run_broken(&wrong_direction, 16).to_string();
    assert!(
        msg.contains("no neighbour N") && msg.contains("fabric.rs:"),
        "{msg}"
    );
}

/// A recv of zero elements is refused at trace time.
#[kernel]
fn empty_recv(t: Ptr<f32>, n: usize) {
    let y = tl::recv::<f32>(Dir::W, [n]);
    tl::store(t, &y);
}

#[test]
fn a_zero_sized_receive_is_refused_where_it_is_written() {
    let msg = run_broken(&empty_recv, 0).to_string();
    assert!(
        msg.contains("at least one element") && msg.contains("fabric.rs:"),
        "{msg}"
    );
}

#[test]
fn a_progress_hook_hears_every_instance_compiled_and_changes_nothing() {
    use kernbench::core::sim::{simulate_full, Progress, ProgressHook};
    use std::sync::{Arc, Mutex};
    let topo = tiny();
    let pes: Vec<PeId> = topo.pes().collect();
    let run = |hook: ProgressHook| {
        let mut m = Machine::new(topo.clone()).unwrap();
        let buf = m.alloc(DType::F16, pes.len() * 256, &pes).unwrap();
        let args = KernelArgs::new().with("t", buf.ptr()).int("n_elem", 256);
        let launch = Launch::new(&hello_send, args, pes.clone())
            .neighbors(NeighborMap::ring(&pes).unwrap())
            .progress(hook);
        simulate_full(&mut m, &launch).unwrap().report
    };
    let heard = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&heard);
    let with = run(ProgressHook::new(move |p| sink.lock().unwrap().push(p)));
    let without = run(ProgressHook::default());
    assert_eq!(with, without, "progress never changes a result");
    let heard = heard.lock().unwrap();
    let compiled: Vec<usize> = heard
        .iter()
        .filter_map(|p| match p {
            Progress::Compiled { done, of } => {
                assert_eq!(*of, pes.len());
                Some(*done)
            }
            Progress::Simulated { .. } => None,
        })
        .collect();
    assert_eq!(compiled.iter().max(), Some(&pes.len()), "{heard:?}");
    assert_eq!(
        compiled.len(),
        pes.len(),
        "one report per instance on 16 PEs"
    );
}

/// Every PE sends east and receives from the east: the messages arrive from the west.
#[kernel]
fn recv_on_the_sending_side(t: Ptr<f32>, n: usize) {
    let x = tl::load(t, [n]);
    tl::send(Dir::E, &x);
    let y = tl::recv::<f32>(Dir::E, [n]);
    tl::store(t, &y);
}

#[test]
fn a_receive_on_the_sending_side_names_the_direction_that_pairs() {
    let err = run_broken(&recv_on_the_sending_side, 16);
    assert!(matches!(err, SimError::Pairing(_)), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("hint: PE (0,0,1) receives from E, but the messages PE (0,0,0) sends E arrive at PE (0,0,1) from W: receive them with `recv(W)`"),
        "{msg}"
    );
    let SimError::Pairing(PairingError::Unmatched { hint, .. }) = &err else {
        panic!("not an unmatched channel: {err:?}");
    };
    assert_eq!(
        hint,
        &Some(Box::new(PeerHint::Dir {
            dst: PeId::new(0, 0, 1),
            wrong: Peer::Dir(Dir::E),
            src: PeId::new(0, 0, 0),
            tx: Peer::Dir(Dir::E),
            right: Peer::Dir(Dir::W),
        }))
    );
    // A plain count mismatch gets no direction advice.
    let msg = run_broken(&unpaired_send, 16).to_string();
    assert!(!msg.contains("hint:"), "{msg}");
}
