//! Collectives and barriers issued on streams (ADR 0028): every collective
//! between ranks has an asynchronous form that gives the synchronous
//! form's data, two ranks' kernels that run together contend for the links
//! they share, a barrier lines the ranks' hosts up, and failures while a
//! collective is in flight release every rank without a hang.

use kernbench::ccl::dist::{
    all_gather_async_in, all_gather_in, gather_async_in, gather_in, reduce_async_in, reduce_in,
    reduce_scatter_async_in, reduce_scatter_in, Backend,
};
use kernbench::ccl::RedOp;
use kernbench::core::runtime::ndarray::{self, Array2, ArrayD};
use kernbench::core::runtime::{Args, DeviceTensor, Placement, Rank, RuntimeError, SpawnError};
use kernbench::core::DType;
use kernbench::prelude::*;

mod common;
use common::streams::{axpy_rows, pair, recv_only};

/// Copies `src` into `dst`, a block of rows per instance.
#[kernel]
fn copy_rows(src: Tensor<f32>, dst: Tensor<f32>) {
    let (i, s) = (tl::program_id(0), tl::num_programs(0));
    let (m, n) = (src.rows() / s, src.cols());
    let x = tl::load(src.block([i * m, 0], [m, n]), [m, n]);
    tl::store(dst.block([i * m, 0], [m, n]), &x);
}

const PES: usize = 4;

fn rows() -> Placement {
    Placement::row_wise().cubes(1).pes(PES)
}

fn block(rows: usize, cols: usize, k: f32) -> Array2<f32> {
    Array2::from_shape_fn((rows, cols), |(r, c)| k * 100.0 + (r * cols + c) as f32)
}

/// What every rank's tensors hold after one gathering collective.
#[derive(Clone, Debug, PartialEq)]
struct Gathered {
    all_gather: ArrayD<f32>,
    reduce_scatter: ArrayD<f32>,
    reduce: ArrayD<f32>,
    gather: ArrayD<f32>,
}

/// All-gather, reduce-scatter, reduce and gather between the two ranks,
/// synchronous or each issued on a stream; the host's time right after the
/// four are issued, and what the tensors hold.
fn gathering(asynchronous: bool) -> Vec<(u64, u64, Gathered)> {
    pair()
        .spawn(2, move |r| {
            let rt = r.runtime();
            let k = r.get_rank() as f32 + 1.0;
            let (world, b) = (r.world_group(), Backend::default());
            let one = Placement::single();
            let input = rt.from_array(&block(4, 8, k), &one)?;
            let gathered = rt.zeros(&[8, 8], DType::F32, &one)?;
            let big = rt.from_array(&block(8, 8, k), &one)?;
            let mine = rt.zeros(&[4, 8], DType::F32, &one)?;
            let reduced = rt.from_array(&block(4, 8, k), &one)?;
            let at_root = rt.zeros(&[8, 8], DType::F32, &one)?;
            let before = rt.host_time_ps();
            if asynchronous {
                let s = rt.new_stream();
                let hs = [
                    all_gather_async_in(&r, &gathered, &input, &world, &b, &s)?,
                    reduce_scatter_async_in(&r, &mine, &big, RedOp::Sum, &world, &b, &s)?,
                    reduce_async_in(&r, &reduced, 0, RedOp::Max, &world, &b, &s)?,
                    gather_async_in(&r, &at_root, &input, 1, &world, &b, &s)?,
                ];
                // Issuing waits for nothing.
                let issued = rt.host_time_ps();
                for h in &hs {
                    assert!(!h.kernel().is_empty());
                }
                let t: Vec<_> = hs.iter().map(|h| h.wait().unwrap().times).collect();
                for w in t.windows(2) {
                    assert!(w[1].begin_ps >= w[0].end_ps, "one stream, in order: {t:?}");
                }
                Ok((before, issued, read(&gathered, &mine, &reduced, &at_root)?))
            } else {
                all_gather_in(&r, &gathered, &input, &world, &b)?;
                reduce_scatter_in(&r, &mine, &big, RedOp::Sum, &world, &b)?;
                reduce_in(&r, &reduced, 0, RedOp::Max, &world, &b)?;
                gather_in(&r, &at_root, &input, 1, &world, &b)?;
                let after = rt.host_time_ps();
                Ok((before, after, read(&gathered, &mine, &reduced, &at_root)?))
            }
        })
        .unwrap()
}

fn read(
    all_gather: &DeviceTensor,
    reduce_scatter: &DeviceTensor,
    reduce: &DeviceTensor,
    gather: &DeviceTensor,
) -> Result<Gathered, RuntimeError> {
    Ok(Gathered {
        all_gather: all_gather.to_ndarray()?,
        reduce_scatter: reduce_scatter.to_ndarray()?,
        reduce: reduce.to_ndarray()?,
        gather: gather.to_ndarray()?,
    })
}

#[test]
fn every_gathering_collective_has_an_asynchronous_form_with_the_same_data() {
    let sync = gathering(false);
    let issued = gathering(true);
    let (a, b) = (block(4, 8, 1.0), block(4, 8, 2.0));
    let both = ndarray::concatenate(ndarray::Axis(0), &[a.view(), b.view()]).unwrap();
    let sum = block(8, 8, 1.0) + block(8, 8, 2.0);
    for (rank, (_, _, g)) in sync.iter().enumerate() {
        assert_eq!(g.all_gather, both.clone().into_dyn(), "rank {rank}");
        let own = sum
            .slice(ndarray::s![rank * 4..rank * 4 + 4, ..])
            .to_owned();
        assert_eq!(g.reduce_scatter, own.into_dyn(), "rank {rank}");
    }
    // The root of the reduce (rank 0) holds the maximum; the gather's root
    // (rank 1) both inputs.
    assert_eq!(sync[0].2.reduce, b.clone().into_dyn());
    assert_eq!(sync[1].2.gather, both.into_dyn());
    for rank in 0..2 {
        assert_eq!(issued[rank].2, sync[rank].2, "rank {rank}");
        let (before, after, _) = issued[rank];
        assert_eq!(
            before, after,
            "issuing the collectives moved rank {rank}'s host"
        );
        // The synchronous forms ran while the host waited... on their
        // devices, with no host time of their own: the difference is in
        // what the host can do meanwhile, checked in `streams.rs`.
    }
    assert_eq!(gathering(true), issued, "deterministic");
}

/// Per rank, the duration of its copy across the switch, and its host's
/// time after the barrier.
fn copies(who: &'static [usize], asynchronous: bool) -> Vec<Option<(u64, u64)>> {
    pair()
        .spawn(2, move |r: Rank| {
            let rt = r.runtime();
            let me = r.get_rank();
            let data = Array2::from_shape_fn((256, 256), |(i, j)| (i * 3 + j) as f32);
            let near = rt.from_array(&data, &rows())?;
            rt.set_device(1 - me)?;
            let far = rt.zeros(&[256, 256], DType::F32, &rows())?;
            rt.set_device(me)?;
            // Both copies move their bytes from SIP 1 to SIP 0: rank 0
            // reads from SIP 1, rank 1 writes to SIP 0.
            let (src, dst) = if me == 0 {
                (&far, &near)
            } else {
                (&near, &far)
            };
            let s = rt.new_stream();
            let h = if who.contains(&me) {
                let args = Args::new().tensor("src", src).tensor("dst", dst);
                Some(rt.launch_async(&copy_rows, &[PES as u32], &args, &s)?)
            } else {
                None
            };
            if asynchronous {
                r.barrier_async_in(&r.world_group(), &s)?.synchronize()?;
            } else {
                r.barrier()?;
            }
            let host = rt.host_time_ps();
            Ok(h.map(|h| {
                let c = h.wait().unwrap();
                (c.duration_ps(), host)
            }))
        })
        .unwrap()
}

#[test]
fn two_ranks_kernels_that_share_a_link_take_longer_than_either_alone() {
    for asynchronous in [true, false] {
        let alone0 = copies(&[0], asynchronous)[0].unwrap().0;
        let alone1 = copies(&[1], asynchronous)[1].unwrap().0;
        let both = copies(&[0, 1], asynchronous);
        let (t0, t1) = (both[0].unwrap().0, both[1].unwrap().0);
        println!(
            "barrier async {asynchronous}: rank 0 alone {alone0} ps, rank 1 alone {alone1} ps, \
             together {t0} and {t1} ps"
        );
        assert!(t0 > alone0, "{t0} vs {alone0}");
        assert!(t1 > alone1, "{t1} vs {alone1}");
        // The link from SIP 1 to SIP 0 is the bottleneck: together they
        // take close to twice as long.
        assert!(t0.max(t1) as f64 > 1.5 * alone0.max(alone1) as f64);
        // Both hosts leave the barrier together, after both copies.
        assert_eq!(both[0].unwrap().1, both[1].unwrap().1);
        // Which copy the link serves first does not depend on which
        // rank's thread issued first.
        for _ in 0..4 {
            assert_eq!(copies(&[0, 1], asynchronous), both);
        }
    }
}

#[test]
fn a_barrier_lines_up_the_hosts_at_the_latest_member() {
    let hosts = pair()
        .spawn(2, |r| {
            let rt = r.runtime();
            let x = rt.from_array(&block(64, 256, 1.0), &rows())?;
            let y = rt.from_array(&block(64, 256, 0.5), &rows())?;
            let mut end = 0;
            if r.get_rank() == 1 {
                let args = Args::new().tensor("x", &x).tensor("y", &y).int("reps", 8);
                let h = rt.launch_async(&axpy_rows, &[PES as u32], &args, &rt.new_stream())?;
                // Still pending: the barrier runs it.
                assert!(!h.is_done());
                r.barrier()?;
                assert!(h.is_done());
                end = h.wait()?.times.end_ps;
            } else {
                r.barrier()?;
            }
            Ok((rt.host_time_ps(), end))
        })
        .unwrap();
    assert!(hosts[1].1 > 0);
    assert_eq!(hosts[0].0, hosts[1].0, "{hosts:?}");
    assert_eq!(hosts[0].0, hosts[1].1, "the latest member's work ends then");
}

#[test]
fn an_asynchronous_barrier_orders_the_members_streams() {
    let ends = pair()
        .spawn(2, |r| {
            let rt = r.runtime();
            let x = rt.from_array(&block(64, 256, 1.0), &rows())?;
            let y = rt.from_array(&block(64, 256, 0.5), &rows())?;
            let s = rt.new_stream();
            let long = Args::new().tensor("x", &x).tensor("y", &y).int("reps", 16);
            let short = Args::new().tensor("x", &x).tensor("y", &y).int("reps", 1);
            let first = if r.get_rank() == 0 {
                Some(rt.launch_async(&axpy_rows, &[PES as u32], &long, &s)?)
            } else {
                None
            };
            let e = r.barrier_async_in(&r.world_group(), &s)?;
            let host = rt.host_time_ps();
            let after = rt.launch_async(&axpy_rows, &[PES as u32], &short, &s)?;
            assert_eq!(
                rt.host_time_ps(),
                host,
                "an asynchronous barrier waits for nothing"
            );
            let a = after.wait()?.times;
            let f = first.map(|h| h.wait().unwrap().times.end_ps);
            Ok((f, a.begin_ps, e.time_ps()?))
        })
        .unwrap();
    let long_end = ends[0].0.unwrap();
    for (rank, (_, begin, event)) in ends.iter().enumerate() {
        // Rank 1's launch after the barrier waits for rank 0's long one.
        assert!(*begin >= long_end, "rank {rank}: {begin} vs {long_end}");
        assert_eq!(*event, long_end, "rank {rank}'s event covers the barrier");
    }
}

#[test]
fn a_rank_that_fails_with_its_collective_in_flight_releases_every_rank() {
    use kernbench::ccl::dist::all_reduce_async_in;
    // Rank 1 leaves with an error while the all-reduce it issued is in
    // flight; rank 0 still gets the reduction, then is released from the
    // barrier that rank 1 never reaches.
    let e = pair()
        .spawn(2, |r| {
            let rt = r.runtime();
            let g = rt.from_array(&block(4, 8, r.get_rank() as f32 + 1.0), &rows_of(1))?;
            let s = rt.new_stream();
            let h = all_reduce_async_in(
                &r,
                &g,
                RedOp::Sum,
                &r.world_group(),
                &Backend::default(),
                &s,
            )?;
            if r.get_rank() == 1 {
                return Err(RuntimeError::EventNotRecorded.into());
            }
            h.wait()?;
            assert_eq!(
                g.to_ndarray::<f32>()?,
                (block(4, 8, 1.0) + block(4, 8, 2.0)).into_dyn()
            );
            r.barrier()?;
            Ok(())
        })
        .unwrap_err();
    let SpawnError::Failed { failures, released } = &e else {
        panic!("{e}");
    };
    assert_eq!(failures.len(), 1, "{e}");
    assert_eq!(failures[0].rank, 1);
    assert!(released.is_empty() || released == &vec![0], "{e}");

    // A kernel that deadlocks in the run the all-reduce joins fails that
    // run: both ranks get its error, and the run names it.
    let e = pair()
        .spawn(2, |r| {
            let rt = r.runtime();
            let g = rt.from_array(&block(4, 8, 1.0), &rows_of(1))?;
            let t = rt.from_array(&block(64, 256, 1.0), &rows())?;
            let (s1, s2) = (rt.new_stream(), rt.new_stream());
            if r.get_rank() == 0 {
                let args = Args::new().tensor("t", &t);
                rt.launch_async(&recv_only, &[PES as u32], &args, &s1)?;
            }
            let world = r.world_group();
            let h = all_reduce_async_in(&r, &g, RedOp::Sum, &world, &Backend::default(), &s2);
            h?;
            Ok(())
        })
        .unwrap_err();
    let SpawnError::Failed { failures, .. } = &e else {
        panic!("{e}");
    };
    assert_eq!(failures.len(), 2, "both ranks get the run's error: {e}");
    for f in failures {
        let msg = f.error.to_string();
        assert!(msg.contains("recv_only"), "{msg}");
    }
}

fn rows_of(pes: usize) -> Placement {
    Placement::row_wise().cubes(1).pes(pes)
}
