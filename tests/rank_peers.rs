//! Sends and receives addressed by rank: data, timing, pairing and trace
//! errors, deadlock reports, timelines and Chakra traces, as for directions.

use kernbench::core::export::chakra::{self, attribute_proto::Value};
use kernbench::core::export::chrome::{chrome_trace, TraceOptions};
use kernbench::core::ir::{CommSide, TraceErrorKind, UsageError};
use kernbench::core::neighbors::NeighborMap;
use kernbench::core::sim::{
    simulate, simulate_full, FabricModel, Launch, Outcome, PairingError, PeerHint, SimError,
};
use kernbench::prelude::*;
use kernbench::tl::Kernel;

fn tiny() -> Topology {
    Topology::builtin("tiny").unwrap()
}

/// Ranks `r` and `r ^ 1` swap their vectors (by rank).
#[kernel]
fn swap_by_rank(t: Ptr<f32>, n: usize) {
    let r = tl::rank();
    let x = tl::load(t.offset(r * n), [n]);
    let f = tl::recv_async::<f32>(r ^ 1, [n]);
    tl::send(r ^ 1, &x);
    tl::store(t.offset(r * n), &tl::wait(f));
}

/// The same swap by direction, on a map whose `E` and `W` both name `r ^ 1`.
#[kernel]
fn swap_by_dir(t: Ptr<f32>, n: usize) {
    let r = tl::rank();
    let x = tl::load(t.offset(r * n), [n]);
    let f = tl::recv_async::<f32>(Dir::W, [n]);
    tl::send(Dir::E, &x);
    tl::store(t.offset(r * n), &tl::wait(f));
}

/// The pairs of a swap as a neighbour map.
fn pair_map(pes: &[PeId]) -> NeighborMap {
    NeighborMap::from_fn("pairs", pes, |p, d| {
        let i = pes.iter().position(|q| *q == p)?;
        matches!(d, Dir::E | Dir::W).then(|| pes[i ^ 1])
    })
}

/// Runs `k` over the first `w` PEs of `tiny` (one `t` of `w * n` f32 holding
/// `0, 1, 2, ...`), with `map` when given; the outcome and the buffer after.
fn run(
    k: &dyn Kernel,
    w: usize,
    n: usize,
    map: Option<NeighborMap>,
    fabric: FabricModel,
) -> Result<(Outcome, Vec<f32>), SimError> {
    let topo = tiny();
    // Far-apart PEs, so messages cross cubes.
    let pes: Vec<PeId> = topo.pes().step_by(3).take(w).collect();
    let mut m = Machine::new(topo).unwrap();
    let buf = m.alloc(DType::F32, w * n, &pes).unwrap();
    let init: Vec<f32> = (0..w * n).map(|i| i as f32).collect();
    m.write_buffer(&buf, &init).unwrap();
    let args = KernelArgs::new().with("t", buf.ptr()).int("n", n as i64);
    let mut launch = Launch::new(k, args, pes).fabric(fabric).trace(true);
    if let Some(map) = map {
        launch = launch.neighbors(map);
    }
    let out = simulate_full(&mut m, &launch)?;
    Ok((out, m.read_buffer(&buf).unwrap()))
}

/// The error of a run that must fail.
fn fails(k: &dyn Kernel, w: usize, map: Option<NeighborMap>, fabric: FabricModel) -> SimError {
    match run(k, w, 16, map, fabric) {
        Ok(_) => panic!("the run of `{}` must fail", k.meta().name),
        Err(e) => e,
    }
}

#[test]
fn a_rank_swap_moves_the_data_and_takes_the_time_of_the_same_swap_by_direction() {
    let (w, n) = (4, 3000);
    for fabric in FabricModel::ALL {
        let (by_rank, data) = run(&swap_by_rank, w, n, None, fabric).unwrap();
        for r in 0..w {
            for i in [0, n / 2, n - 1] {
                assert_eq!(
                    data[r * n + i],
                    ((r ^ 1) * n + i) as f32,
                    "rank {r} elem {i}"
                );
            }
        }
        let topo = tiny();
        let pes: Vec<PeId> = topo.pes().step_by(3).take(w).collect();
        let (by_dir, data_dir) = run(&swap_by_dir, w, n, Some(pair_map(&pes)), fabric).unwrap();
        assert_eq!(data, data_dir);
        assert_eq!(
            by_rank.report.sim_ps(),
            by_dir.report.sim_ps(),
            "{fabric}: a rank is another name for the same peer"
        );
        assert_eq!(by_rank.messages_sent(), 4);
        // Message timing, message by message.
        let times = |o: &Outcome| {
            let mut v: Vec<_> = o
                .messages
                .iter()
                .map(|m| (m.src, m.dst, m.bytes, m.inject_ps, m.received_ps))
                .collect();
            v.sort();
            v
        };
        assert_eq!(times(&by_rank), times(&by_dir));
    }
}

#[test]
fn timelines_and_chakra_traces_name_rank_peers() {
    let (out, _) = run(&swap_by_rank, 4, 256, None, FabricModel::Messages).unwrap();
    let trace = chrome_trace(&out, &tiny(), &TraceOptions::default()).to_string();
    assert!(
        trace.contains("\"RECV ranks\""),
        "a track for receives by rank"
    );
    assert!(
        trace.contains("recv_async rank 1"),
        "spans name the peer rank"
    );
    let traces = chakra::traces(&out).unwrap();
    assert_eq!(traces.len(), 4);
    for t in &traces {
        let send = t
            .nodes
            .iter()
            .find(|n| n.name.contains(" send rank"))
            .unwrap_or_else(|| panic!("rank {}: no send node", t.rank));
        assert!(
            send.name.ends_with(&format!(" send rank {}", t.rank ^ 1)),
            "{}",
            send.name
        );
        assert_eq!(
            send.attr("comm_dst"),
            Some(&Value::Int32Val((t.rank ^ 1) as i32))
        );
        assert_eq!(send.attr("comm_src"), Some(&Value::Int32Val(t.rank as i32)));
    }
}

/// `tests/rank_peers.rs:LINE:` of the first line holding `needle` after `fn kernel(`.
fn line_of(kernel: &str, needle: &str) -> String {
    let text = include_str!("rank_peers.rs");
    let head = format!("fn {kernel}(");
    let from = text.lines().position(|l| l.starts_with(&head)).unwrap();
    let line = text
        .lines()
        .enumerate()
        .skip(from)
        .find(|(_, l)| l.contains(needle))
        .unwrap()
        .0;
    format!("{}:{}:", file!(), line + 1)
}

/// Rank 0 sends twice to rank 1, which receives once.
#[kernel]
fn unmatched_rank_send(t: Ptr<f32>, n: usize) {
    let x = tl::load(t, [n]);
    if tl::rank() == 0 {
        tl::send(1, &x);
        tl::send(1, &x); // the unmatched send
    } else if tl::rank() == 1 {
        let y = tl::recv::<f32>(0, [n]); // the only receive
        tl::store(t, &y);
    }
}

#[test]
fn an_unmatched_rank_send_names_both_pes_and_lines() {
    let err = fails(&unmatched_rank_send, 3, None, FabricModel::Messages);
    assert!(matches!(err, SimError::Pairing(_)), "{err:?}");
    let msg = err.to_string();
    let (pe0, pe1) = (PeId::new(0, 0, 0), tiny().pes().nth(3).unwrap());
    let send = line_of("unmatched_rank_send", "the unmatched send");
    let recv = line_of("unmatched_rank_send", "the only receive");
    assert!(
        msg.contains(&format!(
            "PE {pe0} sends 2 message(s) to rank 1 (PE {pe1}) (last at {send}"
        )) && msg.contains(&format!(
            "but PE {pe1} receives 1 from rank 0 (last at {recv}"
        )),
        "{msg}"
    );
}

/// Rank 0 sends to rank 2, which receives from rank 1 instead.
#[kernel]
fn wrong_rank_receive(t: Ptr<f32>, n: usize) {
    let x = tl::load(t, [n]);
    if tl::rank() == 0 {
        tl::send(2, &x); // sent to 2
    } else if tl::rank() == 2 {
        let y = tl::recv::<f32>(1, [n]); // received from 1
        tl::store(t, &y);
    }
}

#[test]
fn a_receive_from_the_wrong_rank_says_which_rank_would_pair() {
    let err = fails(&wrong_rank_receive, 3, None, FabricModel::Messages);
    let msg = err.to_string();
    let send = line_of("wrong_rank_receive", "sent to 2");
    let recv = line_of("wrong_rank_receive", "received from 1");
    assert!(
        msg.contains("hint:")
            && msg.contains(&format!("receives from rank 1 at {recv}"))
            && msg.contains(&format!("sends to rank 2 at {send}"))
            && msg.contains("`recv(0, ..)`"),
        "{msg}"
    );
    let SimError::Pairing(PairingError::Unmatched {
        hint: Some(hint), ..
    }) = &err
    else {
        panic!("no hint: {err:?}");
    };
    let PeerHint::Rank {
        wrong, from, to, ..
    } = &**hint
    else {
        panic!("not a rank hint: {hint:?}");
    };
    assert_eq!((wrong, *from, *to), (&Peer::Rank(1), 0, 2));
}

/// A send to a rank past the launch.
#[kernel]
fn send_out_of_range(t: Ptr<f32>, n: usize) {
    let x = tl::load(t, [n]);
    tl::send(tl::num_ranks() + 1, &x); // out of range
}

/// A receive from this instance itself.
#[kernel]
fn recv_from_self(t: Ptr<f32>, n: usize) {
    let y = tl::recv::<f32>(tl::rank(), [n]); // itself
    tl::store(t, &y);
}

/// The misuse of the language a launch failed with.
fn usage(err: &SimError) -> &UsageError {
    match err {
        SimError::Trace { err: t, .. } => match &t.kind {
            TraceErrorKind::Invalid(u) => u,
            other => panic!("expected a misuse of the language, got {other:?}"),
        },
        other => panic!("expected a trace error, got {other:?}"),
    }
}

#[test]
fn bad_ranks_are_errors_at_the_kernel_line() {
    let err = fails(&send_out_of_range, 4, None, FabricModel::Messages);
    let out = UsageError::PeerOutOfGrid {
        side: CommSide::Send,
        rank: 5,
        world: 4,
        grid: vec![4],
    };
    assert_eq!(usage(&err), &out);
    let msg = err.to_string();
    let at = line_of("send_out_of_range", "out of range");
    assert!(
        msg.contains(&at)
            && msg.contains("send to rank 5, but the launch has 4 program instance(s)"),
        "{msg}"
    );
    let err = fails(&recv_from_self, 4, None, FabricModel::Messages);
    let itself = UsageError::PeerIsSelf {
        side: CommSide::Recv,
        rank: 0,
    };
    assert_eq!(usage(&err), &itself);
    let msg = err.to_string();
    let at = line_of("recv_from_self", "itself");
    assert!(
        msg.contains(&at)
            && msg.contains("receive from rank 0, which is this program instance itself"),
        "{msg}"
    );
}

/// Every rank receives from its partner before it sends.
#[kernel]
fn rank_deadlock(t: Ptr<f32>, n: usize) {
    let r = tl::rank();
    let y = tl::recv::<f32>(r ^ 1, [n]);
    tl::send(r ^ 1, &y);
    tl::store(t, &y);
}

#[test]
fn a_cycle_of_rank_receives_is_a_deadlock_naming_the_ranks() {
    for fabric in FabricModel::ALL {
        let err = fails(&rank_deadlock, 2, None, fabric);
        let SimError::Deadlock(d) = &err else {
            panic!("expected a deadlock, got {err}")
        };
        assert_eq!(d.waiters.len(), 2, "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("waits in `recv rank 1`") && msg.contains("waits in `recv rank 0`"),
            "{msg}"
        );
        assert!(msg.contains("rank_peers.rs:"), "{msg}");
    }
}

#[test]
fn directions_still_need_a_map_when_ranks_do_not() {
    let err = fails(&swap_by_dir, 2, None, FabricModel::Messages);
    assert!(
        err.to_string().contains("no neighbour map is installed"),
        "{err}"
    );
    // The rank swap runs on a launch with a map too: the map is not consulted.
    let topo = tiny();
    let pes: Vec<PeId> = topo.pes().step_by(3).take(2).collect();
    let ring = NeighborMap::ring(&pes).unwrap();
    run(&swap_by_rank, 2, 16, Some(ring), FabricModel::Messages).unwrap();
}

#[test]
fn a_data_run_checks_rank_exchanges_too() {
    // `simulate` (data on) and the functional interpreter agree.
    let topo = tiny();
    let pes: Vec<PeId> = topo.pes().take(4).collect();
    let init: Vec<f32> = (0..32).map(|i| i as f32).collect();
    let mut out = Vec::new();
    for functional in [false, true] {
        let mut m = Machine::new(topo.clone()).unwrap();
        let buf = m.alloc(DType::F32, 4 * 8, &pes).unwrap();
        m.write_buffer(&buf, &init).unwrap();
        let args = KernelArgs::new().with("t", buf.ptr()).int("n", 8);
        let launch = Launch::new(&swap_by_rank, args, pes.clone());
        if functional {
            kernbench::core::functional::run(&mut m, &launch).unwrap();
        } else {
            simulate(&mut m, &launch).unwrap();
        }
        out.push(m.read_buffer(&buf).unwrap());
    }
    assert_eq!(out[0], out[1]);
    assert_eq!(out[0][8..16], init[0..8]);
}
