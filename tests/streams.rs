//! Asynchronous launches on streams (ADR 0028): work of different streams
//! overlaps on one timeline, work of one stream runs in order, events order
//! and time it, and host reads wait for exactly the work that writes what
//! they read.

use kernbench::core::runtime::ndarray::Array2;
use kernbench::core::runtime::{Args, DeviceTensor, Event, Placement, Runtime, RuntimeError};
use kernbench::core::topology::Topology;
use kernbench::core::DType;
use kernbench::prelude::*;

mod common;
use common::streams::{axpy_rows, pair, recv_only};

/// Each instance passes its block of rows east `rounds` times, around the
/// ring of the launch's PEs.
#[kernel]
fn pass_rows(t: Tensor<f32>, #[constexpr] rounds: usize) {
    let (i, s) = (tl::program_id(0), tl::num_programs(0));
    let (m, n) = (t.rows() / s, t.cols());
    let mut x = tl::load(t.block([i * m, 0], [m, n]), [m, n]);
    for _ in 0..rounds {
        let next = tl::recv_async::<f32>((i + s - 1) % s, [m, n]);
        tl::send((i + 1) % s, &x);
        x = tl::wait(next);
    }
    tl::store(t.block([i * m, 0], [m, n]), &x);
}

const PES: usize = 4;
const ROWS: usize = 64;
const COLS: usize = 256;

fn tiny() -> Runtime {
    Runtime::with_topology(Topology::builtin("tiny").unwrap()).unwrap()
}

fn rows() -> Placement {
    Placement::row_wise().cubes(1).pes(PES)
}

fn ramp(k: f32) -> Array2<f32> {
    Array2::from_shape_fn((ROWS, COLS), |(r, c)| ((r * 7 + c) % 31) as f32 * k)
}

fn tensor(rt: &Runtime, k: f32) -> DeviceTensor {
    rt.from_array(&ramp(k), &rows()).unwrap()
}

fn axpy_args<'a>(x: &'a DeviceTensor, y: &'a DeviceTensor) -> Args<'a> {
    Args::new().tensor("x", x).tensor("y", y).int("reps", 4)
}

/// `y + reps * 2x`, what `reps` rounds of axpy leave.
fn axpy_want(x: &Array2<f32>, y: &Array2<f32>, reps: f32) -> Array2<f32> {
    y + &(x * (2.0 * reps))
}

#[test]
fn launches_on_two_streams_overlap_and_on_one_stream_run_in_order() {
    let rt = tiny();
    let (x, y, t) = (tensor(&rt, 1.0), tensor(&rt, 0.5), tensor(&rt, 2.0));
    let grid = [PES as u32];
    let pass_args = Args::new().tensor("t", &t).int("rounds", PES as i64);
    // One stream: the second launch begins when the first ends.
    let s = rt.default_stream();
    let a = rt
        .launch_async(&axpy_rows, &grid, &axpy_args(&x, &y), &s)
        .unwrap();
    let b = rt.launch_async(&pass_rows, &grid, &pass_args, &s).unwrap();
    assert!(
        !a.is_done() && !b.is_done(),
        "launches return before they run"
    );
    let (a1, b1) = (a.wait().unwrap(), b.wait().unwrap());
    assert!(b1.times.begin_ps >= a1.times.end_ps, "{a1:?} {b1:?}");
    let serial = b1.times.end_ps - a1.times.issue_ps;
    // Two streams: they overlap, sharing the PEs.
    let (s1, s2) = (rt.new_stream(), rt.new_stream());
    let issued = rt.host_time_ps();
    assert_eq!(issued, b1.times.end_ps, "waiting moved the host");
    let a = rt
        .launch_async(&axpy_rows, &grid, &axpy_args(&x, &y), &s1)
        .unwrap();
    let b = rt.launch_async(&pass_rows, &grid, &pass_args, &s2).unwrap();
    rt.synchronize().unwrap();
    let (a2, b2) = (a.wait().unwrap(), b.wait().unwrap());
    assert!(b2.times.begin_ps < a2.times.end_ps, "{a2:?} {b2:?}");
    let both = a2.times.end_ps.max(b2.times.end_ps) - issued;
    println!("one stream {serial} ps, two streams {both} ps");
    assert!(both < serial, "{both} vs {serial}");
    assert!(both >= a1.duration_ps().max(b1.duration_ps()));
    assert!(
        std::sync::Arc::ptr_eq(&a2.run, &b2.run),
        "simulated together"
    );
    // Both computed: two rounds of axpy, and the ring passes brought every block home.
    assert_eq!(
        y.to_ndarray::<f32>().unwrap(),
        axpy_want(&ramp(1.0), &ramp(0.5), 8.0).into_dyn()
    );
    assert_eq!(t.to_ndarray::<f32>().unwrap(), ramp(2.0).into_dyn());
}

/// Two launches issued on two streams: a slow one (16 rounds into `y`) and
/// a quick one (4 rounds into `v`).
struct SlowAndQuick {
    x: DeviceTensor,
    y: DeviceTensor,
    u: DeviceTensor,
    v: DeviceTensor,
    slow: kernbench::core::runtime::LaunchHandle,
    quick: kernbench::core::runtime::LaunchHandle,
    grid: [u32; 1],
    s2: kernbench::core::runtime::Stream,
}

fn slow_and_quick(rt: &Runtime) -> SlowAndQuick {
    let (x, y, u, v) = (
        tensor(rt, 1.0),
        tensor(rt, 0.5),
        tensor(rt, 1.0),
        tensor(rt, 0.25),
    );
    let grid = [PES as u32];
    let (s1, s2) = (rt.new_stream(), rt.new_stream());
    let long = Args::new().tensor("x", &x).tensor("y", &y).int("reps", 16);
    let slow = rt.launch_async(&axpy_rows, &grid, &long, &s1).unwrap();
    let quick = rt
        .launch_async(&axpy_rows, &grid, &axpy_args(&u, &v), &s2)
        .unwrap();
    SlowAndQuick {
        x,
        y,
        u,
        v,
        slow,
        quick,
        grid,
        s2,
    }
}

#[test]
fn a_host_read_waits_for_the_work_writing_what_it_reads_and_no_more() {
    let rt = tiny();
    let SlowAndQuick {
        x,
        y,
        u: _u,
        v,
        slow,
        quick,
        grid,
        s2: _s2,
    } = slow_and_quick(&rt);
    assert_eq!(rt.host_time_ps(), 0);
    // Reading v runs what is pending, and waits for the quick launch only.
    let got = v.to_ndarray::<f32>().unwrap();
    assert_eq!(got, axpy_want(&ramp(1.0), &ramp(0.25), 4.0).into_dyn());
    let after_v = rt.host_time_ps();
    // Reading y then waits for the slow one, which ran in the same run.
    assert_eq!(
        y.to_ndarray::<f32>().unwrap(),
        axpy_want(&ramp(1.0), &ramp(0.5), 16.0).into_dyn()
    );
    let after_y = rt.host_time_ps();
    let (q, s) = (quick.wait().unwrap(), slow.wait().unwrap());
    assert!(std::sync::Arc::ptr_eq(&q.run, &s.run));
    assert_eq!(after_v, q.times.end_ps);
    assert_eq!(after_y, s.times.end_ps);
    assert!(after_v < after_y, "{q:?} {s:?}");
    // A host write waits too: the launch reads x before the host changes it.
    let h = rt
        .launch_async(&axpy_rows, &grid, &axpy_args(&x, &y), &rt.default_stream())
        .unwrap();
    x.copy_from(&ramp(100.0)).unwrap();
    assert!(h.is_done());
    assert_eq!(rt.host_time_ps(), h.wait().unwrap().times.end_ps);
    assert_eq!(
        y.to_ndarray::<f32>().unwrap(),
        axpy_want(&ramp(1.0), &ramp(0.5), 20.0).into_dyn()
    );
}

#[test]
fn events_order_streams_and_time_work() {
    let rt = tiny();
    let (x, y, t) = (tensor(&rt, 1.0), tensor(&rt, 0.5), tensor(&rt, 2.0));
    let grid = [PES as u32];
    let (s1, s2) = (rt.new_stream(), rt.new_stream());
    let begin = s1.record_event();
    let a = rt
        .launch_async(&axpy_rows, &grid, &axpy_args(&x, &y), &s1)
        .unwrap();
    let end = Event::new();
    end.record(&s1);
    // s2's next launch waits for everything s1 had before `end`.
    end.wait(&s2);
    // Recorded after the wait with nothing issued since, an event covers
    // what the stream waits for, as `cudaEventRecord` does.
    let joined = s2.record_event();
    let pass = Args::new().tensor("t", &t).int("rounds", 2);
    let b = rt.launch_async(&pass_rows, &grid, &pass, &s2).unwrap();
    end.synchronize().unwrap();
    let (a, b) = (a.wait().unwrap(), b.wait().unwrap());
    assert!(b.times.begin_ps >= a.times.end_ps, "{a:?} {b:?}");
    assert_eq!(joined.time_ps().unwrap(), end.time_ps().unwrap());
    let elapsed = begin.elapsed_ps(&end).unwrap();
    assert_eq!(
        elapsed,
        i128::from(a.times.end_ps - begin.time_ps().unwrap())
    );
    assert!(elapsed >= i128::from(a.duration_ps()));
    assert!(matches!(
        Event::new().elapsed_ps(&end),
        Err(RuntimeError::EventNotRecorded)
    ));
    assert!(matches!(
        Event::new().synchronize(),
        Err(RuntimeError::EventNotRecorded)
    ));
}

#[test]
fn a_synchronous_launch_waits_for_pending_work() {
    let rt = tiny();
    let (x, y) = (tensor(&rt, 1.0), tensor(&rt, 0.5));
    let grid = [PES as u32];
    let s = rt.new_stream();
    let a = rt
        .launch_async(&axpy_rows, &grid, &axpy_args(&x, &y), &s)
        .unwrap();
    let r = rt.launch(&axpy_rows, &grid, &axpy_args(&x, &y)).unwrap();
    let a = a.wait().unwrap();
    assert_eq!(rt.device_time_ps(0), a.times.end_ps + r.end_ps);
    assert_eq!(
        y.to_ndarray::<f32>().unwrap(),
        axpy_want(&ramp(1.0), &ramp(0.5), 8.0).into_dyn()
    );
}

#[test]
fn a_failing_launch_fails_its_waiters_with_the_kernel_error() {
    let rt = tiny();
    let (x, y) = (tensor(&rt, 1.0), tensor(&rt, 0.5));
    let small = rt.zeros(&[PES, COLS], DType::F32, &rows()).unwrap();
    let grid = [PES as u32];
    let s = rt.default_stream();
    // Wrong arguments are refused when the launch is issued.
    let e = rt
        .launch_async(&axpy_rows, &grid, &Args::new().tensor("x", &x), &s)
        .unwrap_err();
    assert!(matches!(e, RuntimeError::MissingArg { .. }), "{e}");
    // So is a block outside a tensor, with the kernel line.
    let e = rt
        .launch_async(&axpy_rows, &grid, &axpy_args(&x, &small), &s)
        .unwrap_err();
    assert!(e.to_string().contains("streams.rs:"), "{e}");
    // Receives nobody sends to fail when the launch runs.
    let bad = rt
        .launch_async(&recv_only, &grid, &Args::new().tensor("t", &x), &s)
        .unwrap();
    let next = rt
        .launch_async(&axpy_rows, &grid, &axpy_args(&x, &y), &s)
        .unwrap();
    let e = bad.wait().unwrap_err();
    assert!(e.to_string().contains("recv_only"), "{e}");
    assert!(e.to_string().contains("unmatched"), "{e}");
    assert_eq!(next.wait().unwrap_err(), e, "the run failed for both");
    assert!(rt.synchronize().is_ok(), "nothing is left pending");
}

#[test]
fn ranks_issuing_asynchronous_work_get_the_same_times_every_run() {
    let once = || {
        let yaml = kernbench::core::topology::TINY_YAML.replace("sips: 1", "sips: 2");
        let rt = Runtime::with_topology(Topology::from_yaml(&yaml, "pair.yaml").unwrap()).unwrap();
        rt.spawn(2, |r| {
            let rt = r.runtime();
            let (x, y, t) = (tensor(rt, 1.0), tensor(rt, 0.5), tensor(rt, 2.0));
            let grid = [PES as u32];
            let (s1, s2) = (rt.new_stream(), rt.new_stream());
            let a = rt.launch_async(&axpy_rows, &grid, &axpy_args(&x, &y), &s1)?;
            let pass = Args::new().tensor("t", &t).int("rounds", 3);
            let b = rt.launch_async(&pass_rows, &grid, &pass, &s2)?;
            y.to_ndarray::<f32>()?;
            r.barrier()?;
            Ok((a.wait()?.times, b.wait()?.times, rt.host_time_ps()))
        })
        .unwrap()
    };
    let first = once();
    assert_eq!(first.len(), 2);
    for _ in 0..3 {
        assert_eq!(once(), first);
    }
}

/// Per rank: compute issued on one stream, then an all-reduce of another
/// tensor, asynchronous on a second stream or synchronous; the times of
/// both, the host's time at the end, and the reduced tensor.
type RankRun = (u64, u64, u64, u64, Vec<f32>);

fn compute_and_all_reduce(asynchronous: bool) -> Vec<RankRun> {
    use kernbench::ccl::dist::{all_reduce_async_in, all_reduce_in, Backend};
    use kernbench::ccl::RedOp;
    let rt = pair();
    rt.spawn(2, move |r| {
        let rt = r.runtime();
        let k = r.get_rank() as f32 + 1.0;
        let (x, y) = (tensor(rt, 1.0), tensor(rt, 0.5));
        let g = tensor(rt, k);
        let grid = [PES as u32];
        let (compute, comm) = (rt.new_stream(), rt.new_stream());
        let long = Args::new().tensor("x", &x).tensor("y", &y).int("reps", 16);
        let c = rt.launch_async(&axpy_rows, &grid, &long, &compute)?;
        let world = r.world_group();
        let backend = Backend::default();
        let (begin, end) = if asynchronous {
            let h = all_reduce_async_in(&r, &g, RedOp::Sum, &world, &backend, &comm)?;
            let t = h.wait()?.times;
            (t.begin_ps, t.end_ps)
        } else {
            let before = rt.device_time_ps(rt.current_device());
            let rep = all_reduce_in(&r, &g, RedOp::Sum, &world, &backend)?;
            let end = rt.device_time_ps(rt.current_device());
            (before.max(end - rep.end_ps), end)
        };
        let ct = c.wait()?.times;
        rt.synchronize()?;
        let v: Vec<f32> = g.to_ndarray::<f32>()?.iter().copied().collect();
        Ok((ct.end_ps, begin, end, rt.host_time_ps(), v))
    })
    .unwrap()
}

#[test]
fn an_asynchronous_all_reduce_overlaps_compute_issued_before_it() {
    let sync = compute_and_all_reduce(false);
    let overlapped = compute_and_all_reduce(true);
    // Both reduce: 1x + 2x the ramp on each rank.
    let want: Vec<f32> = (ramp(1.0) + ramp(2.0)).iter().copied().collect();
    for run in [&sync, &overlapped] {
        for (_, _, _, _, v) in run.iter() {
            assert_eq!(v, &want);
        }
    }
    for r in 0..2 {
        let (c_end, begin, end, host, _) = &overlapped[r];
        println!(
            "rank {r}: compute ends {c_end} ps, all-reduce {begin}..{end} ps \
             (synchronous: compute {} ps, all-reduce {}..{} ps)",
            sync[r].0, sync[r].1, sync[r].2
        );
        assert!(begin < c_end, "the all-reduce runs beside the compute");
        assert!(*host < sync[r].3, "{host} vs {}", sync[r].3);
        assert_eq!(*host, (*c_end).max(*end));
        // The synchronous all-reduce waits for the compute.
        assert!(sync[r].1 >= sync[r].0);
    }
    assert_eq!(compute_and_all_reduce(true), overlapped, "deterministic");
}

#[test]
fn work_issued_after_a_drain_queues_behind_what_the_drain_left_running() {
    let rt = tiny();
    let SlowAndQuick {
        x: _x,
        y: _y,
        u,
        v,
        slow,
        quick,
        grid,
        s2,
    } = slow_and_quick(&rt);
    // The read runs both and waits for the quick one only: the slow one is
    // still running on the PEs when the host issues the next launch.
    v.to_ndarray::<f32>().unwrap();
    let issued = rt.host_time_ps();
    let next = rt
        .launch_async(&axpy_rows, &grid, &axpy_args(&u, &v), &s2)
        .unwrap();
    let (q, s, n) = (
        quick.wait().unwrap(),
        slow.wait().unwrap(),
        next.wait().unwrap(),
    );
    assert!(!std::sync::Arc::ptr_eq(&q.run, &n.run), "a later run");
    assert_eq!(n.times.issue_ps, issued);
    assert!(issued < s.times.end_ps, "{q:?} {s:?}");
    // On idle PEs it would take what the quick one took; behind the slow
    // one's engines it ends after them.
    println!(
        "quick {:?}, slow {:?}, next {:?}",
        q.times, s.times, n.times
    );
    assert!(n.times.end_ps > s.times.end_ps, "{n:?} vs {s:?}");
    assert!(n.times.end_ps - n.times.issue_ps > q.times.end_ps - q.times.issue_ps);
    assert_eq!(
        v.to_ndarray::<f32>().unwrap(),
        axpy_want(&ramp(1.0), &ramp(0.25), 8.0).into_dyn()
    );
}

#[test]
fn launches_that_cannot_be_set_up_say_why() {
    use kernbench::core::ir::KernelArgs;
    use kernbench::core::runtime::LaunchSetupError;
    use kernbench::core::sim::{Launch, LaunchError};
    let rt = tiny();
    let (x, y) = (tensor(&rt, 1.0), tensor(&rt, 0.5));
    let setup = |e: RuntimeError| match e {
        RuntimeError::Launch { kernel, kind } => {
            assert_eq!(kernel, "axpy_rows");
            kind
        }
        other => panic!("not a launch error: {other}"),
    };
    for grid in [vec![], vec![0], vec![1, 1, 1, 1]] {
        let e = rt
            .launch(&axpy_rows, &grid, &axpy_args(&x, &y))
            .unwrap_err();
        assert_eq!(setup(e), LaunchSetupError::Grid { grid });
    }
    let sip_pes = rt.topology().pes().filter(|p| p.sip == 0).count();
    let grid = [sip_pes as u32 + 1];
    let e = rt
        .launch(&axpy_rows, &grid, &axpy_args(&x, &y))
        .unwrap_err();
    let want = LaunchSetupError::TooFewPes {
        grid: grid.to_vec(),
        instances: sip_pes + 1,
        sip: 0,
        pes: sip_pes,
    };
    assert_eq!(setup(e), want);
    let e = rt
        .launch_async(&axpy_rows, &grid, &axpy_args(&x, &y), &rt.default_stream())
        .unwrap_err();
    assert_eq!(setup(e), want);

    // A grid that does not match the PEs given.
    let pe = rt.topology().pes().next().unwrap();
    let one_pe = || Launch::new(&axpy_rows, KernelArgs::new(), vec![pe]).grid(&[2]);
    let mismatch = LaunchSetupError::Sim(LaunchError::GridSize {
        grid: vec![2],
        instances: Some(2),
        pes: 1,
    });
    assert_eq!(setup(rt.simulate(&one_pe()).unwrap_err()), mismatch);
    let s = rt.new_stream();
    assert_eq!(setup(rt.enqueue(one_pe(), &s).unwrap_err()), mismatch);
    // The simulator's own checks: a PE given twice.
    let e = rt
        .launch_on(&axpy_rows, &[2], &[pe, pe], &axpy_args(&x, &y))
        .unwrap_err();
    assert_eq!(
        setup(e),
        LaunchSetupError::Sim(LaunchError::DuplicatePe { pe })
    );

    // Streams of another runtime.
    let other = tiny().new_stream();
    let e = rt
        .launch_async(&axpy_rows, &[PES as u32], &axpy_args(&x, &y), &other)
        .unwrap_err();
    assert_eq!(setup(e), LaunchSetupError::ForeignStream);
    let e = rt
        .enqueue_across(one_pe(), &[s.clone(), other])
        .unwrap_err();
    assert_eq!(setup(e), LaunchSetupError::ForeignStreams);
    assert_eq!(
        LaunchSetupError::ForeignStreams.to_string(),
        "a stream belongs to another runtime"
    );
}

#[test]
fn broadcast_and_all_to_all_can_be_issued_on_streams_too() {
    use kernbench::ccl::dist::{all_to_all_async_in, broadcast_async_in, Backend};
    let rt = pair();
    let out = rt
        .spawn(2, |r| {
            let rt = r.runtime();
            let k = r.get_rank() as f32 + 1.0;
            let world = r.world_group();
            let backend = Backend::default();
            let s = rt.new_stream();
            // Broadcast rank 1's tensor.
            let b = tensor(rt, k);
            let h = broadcast_async_in(&r, &b, 1, &world, &backend, &s)?;
            // All-to-all of a replicated tensor: block j of rank i goes to rank j.
            let a = rt.from_array(
                &Array2::from_shape_fn((4, 8), |(i, j)| k * 100.0 + (i * 8 + j) as f32),
                &Placement::single(),
            )?;
            let g = all_to_all_async_in(&r, &a, &world, &backend, &s)?;
            let (hb, hg) = (h.wait()?, g.wait()?);
            assert!(hg.times.begin_ps >= hb.times.end_ps, "one stream, in order");
            // A stream of another device is refused.
            rt.set_device(1 - r.get_rank())?;
            let other = rt.new_stream();
            rt.set_device(r.get_rank())?;
            let e = broadcast_async_in(&r, &b, 1, &world, &backend, &other).unwrap_err();
            assert!(e.to_string().contains("the stream is on SIP"), "{e}");
            Ok((b.to_ndarray::<f32>()?, a.to_ndarray::<f32>()?))
        })
        .unwrap();
    for (b, _) in &out {
        assert_eq!(b, &ramp(2.0).into_dyn());
    }
    for (i, (_, a)) in out.iter().enumerate() {
        for row in 0..4 {
            // Rows 0..2 are block 0, rows 2..4 block 1: block j came from rank j.
            let from = (row / 2) as f32 + 1.0;
            for col in 0..8 {
                let want = from * 100.0 + ((i * 2 + row % 2) * 8 + col) as f32;
                assert_eq!(a[[row, col]], want, "rank {i} [{row}, {col}]");
            }
        }
    }
}

#[test]
fn an_all_reduce_on_a_stream_of_another_device_is_refused() {
    use kernbench::ccl::dist::{all_reduce_async_in, Backend};
    use kernbench::ccl::RedOp;
    use kernbench::core::runtime::LaunchSetupError;
    pair()
        .spawn(2, |r| {
            let rt = r.runtime();
            let me = r.get_rank();
            rt.set_device(1 - me)?;
            let theirs = rt.new_stream();
            rt.set_device(me)?;
            let g = tensor(rt, 1.0);
            let world = r.world_group();
            let e = all_reduce_async_in(&r, &g, RedOp::Sum, &world, &Backend::default(), &theirs)
                .unwrap_err();
            assert_eq!(
                e,
                RuntimeError::launch(
                    "rank_all_reduce",
                    LaunchSetupError::StreamDevice {
                        stream: 1 - me,
                        tensor: me,
                    }
                )
            );
            Ok(())
        })
        .unwrap();
}
