//! The `streams_overlap` example's step on two small SIPs: a GEMM and an
//! all-reduce per rank, synchronous, on one stream and on two. The two
//! streams' step is faster than the synchronous one, every element of every
//! schedule checks, and sizes that do not fit are refused with the flag.

#[allow(dead_code)]
#[path = "../examples/streams_overlap.rs"]
mod streams_overlap;

use kernbench::core::topology::{Topology, TINY_YAML};
use kernbench::tl::f16;
use streams_overlap::{run, Row, Schedule, Step};

/// Two SIPs of `tiny` (4 cubes x 4 PEs each).
fn pair() -> Topology {
    let yaml = TINY_YAML.replace("sips: 1", "sips: 2");
    Topology::from_yaml(&yaml, "pair.yaml").unwrap()
}

/// A step small enough for a debug build: each rank's tensors on 2 cubes x
/// 2 PEs, a 64x128x128 GEMM and an all-reduce of 16K elements.
fn small() -> Step {
    Step {
        ranks: 2,
        m: 64,
        k: 128,
        n: 128,
        elems: 16 * 1024,
        cubes: 2,
        pes: 2,
    }
}

fn show(rows: &[Row]) {
    for r in rows {
        println!(
            "{:<12} compute {} ps, comm {} ps, total {} ps, exposed {} ps (rank {})",
            r.schedule.name(),
            r.compute_ps,
            r.comm_ps,
            r.total_ps,
            r.exposed_ps(),
            r.rank
        );
    }
}

#[test]
fn two_streams_overlap_the_all_reduce_with_the_gemm_and_every_element_checks() {
    let rows = run::<f32>(&pair(), &small()).unwrap();
    show(&rows);
    let order: Vec<Schedule> = rows.iter().map(|r| r.schedule).collect();
    assert_eq!(order, Schedule::ALL);
    for r in &rows {
        assert!(r.verified(), "{r:?}");
        assert!(r.compute_ps > 0 && r.comm_ps > 0, "{r:?}");
        assert!(r.total_ps >= r.compute_ps.max(r.comm_ps), "{r:?}");
    }
    let [sync, one, two] = [&rows[0], &rows[1], &rows[2]];
    // Synchronous and on one stream, the all-reduce follows the GEMM: all of
    // it is exposed (on one stream its launch latency hides behind the GEMM).
    assert!(sync.exposed_ps() > sync.comm_ps, "{sync:?}");
    assert_eq!(one.exposed_ps(), one.comm_ps, "{one:?}");
    assert_eq!(
        (one.compute_ps, one.comm_ps),
        (sync.compute_ps, sync.comm_ps)
    );
    assert!(one.total_ps < sync.total_ps, "{one:?} vs {sync:?}");
    // On two streams they overlap: the step is faster, less is exposed, and
    // it takes less than the GEMM and the all-reduce one after the other
    // even as they slow each other down.
    assert!(two.total_ps < sync.total_ps, "{two:?} vs {sync:?}");
    assert!(two.exposed_ps() < sync.exposed_ps(), "{two:?} vs {sync:?}");
    assert!(two.total_ps < two.compute_ps + two.comm_ps, "{two:?}");
    // Deterministic.
    assert_eq!(run::<f32>(&pair(), &small()).unwrap(), rows);
}

#[test]
fn the_step_checks_in_f16() {
    let rows = run::<f16>(&pair(), &small()).unwrap();
    show(&rows);
    assert!(rows.iter().all(Row::verified), "{rows:?}");
}

#[test]
fn sizes_that_do_not_fit_are_refused_with_the_flag() {
    let err = |step: Step| run::<f32>(&pair(), &step).unwrap_err().to_string();
    let e = err(Step { m: 66, ..small() });
    assert!(e.contains("--m 66") && e.contains("4 PEs"), "{e}");
    let e = err(Step {
        ranks: 3,
        ..small()
    });
    assert!(e.contains("--ranks 3") && e.contains("has 2 SIPs"), "{e}");
    let e = err(Step {
        ranks: 1,
        ..small()
    });
    assert!(e.contains("--ranks 1"), "{e}");
    let e = err(Step { pes: 5, ..small() });
    assert!(e.contains("--pes 5") && e.contains("4 PEs"), "{e}");
    let e = err(Step {
        cubes: 9,
        ..small()
    });
    assert!(e.contains("--cubes 9"), "{e}");
    let e = err(Step {
        elems: 1022,
        ..small()
    });
    assert!(e.contains("1022 elements"), "{e}");
}
