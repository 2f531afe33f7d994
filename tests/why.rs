//! Why a run is slow: waits classified by what held them, and the critical
//! path from the start of the run to the op that ended last.

use kernbench::ccl::run::{ranks, run_on, RunSpec};
use kernbench::ccl::Registry;
use kernbench::core::sim::why::{critical_path, waits, Cause, CriticalPath, Why};
use kernbench::core::sim::{simulate_full, FabricModel, Launch, Outcome};
use kernbench::prelude::*;
use kernbench::tl::Kernel;

/// Rank 0 computes `k` passes over its tile before it sends it; rank 1
/// receives at once, so it waits for data.
#[kernel]
fn late_sender(n: usize, k: usize) {
    if tl::rank() == 0 {
        let mut x = tl::full::<f32>([n], 1.0);
        for _ in 0..k {
            x = tl::exp(&x);
        }
        tl::send(1, &x);
    } else if tl::rank() == 1 {
        let y = tl::recv::<f32>(0, [n]);
        tl::send(2, &y);
    } else {
        let _ = tl::recv::<f32>(1, [n]);
    }
}

/// Rank 0 sends `m` messages back to back; rank 1 receives them only after
/// a message from rank 2, which computes `k` passes first: rank 0's ring
/// fills and its sends wait for credits.
#[kernel]
fn late_receiver(n: usize, m: usize, k: usize) {
    if tl::rank() == 0 {
        let x = tl::full::<f32>([n], 1.0);
        for _ in 0..m {
            tl::send(1, &x);
        }
    } else if tl::rank() == 1 {
        let _ = tl::recv::<f32>(2, [n]);
        for _ in 0..m {
            let _ = tl::recv::<f32>(0, [n]);
        }
    } else {
        let mut x = tl::full::<f32>([n], 1.0);
        for _ in 0..k {
            x = tl::exp(&x);
        }
        tl::send(1, &x);
    }
}

/// Runs `k` on the first three PEs of `tiny`, keeping spans for `why`.
fn run(k: &dyn Kernel, args: KernelArgs, fabric: FabricModel, why: bool) -> Outcome {
    let topo = Topology::builtin("tiny").unwrap();
    let pes: Vec<PeId> = topo.pes().take(3).collect();
    let mut m = Machine::new(topo).unwrap();
    let launch = Launch::new(k, args, pes)
        .data(false)
        .fabric(fabric)
        .why(why);
    simulate_full(&mut m, &launch).unwrap()
}

/// The path ends at the op that ended last, its times never go back, and it
/// reaches from the run's start to its end.
fn check_path(out: &Outcome, p: &CriticalPath) {
    let r = &out.report;
    let last = out.spans.iter().map(|s| s.end).max().unwrap();
    assert_eq!(last, r.end_ps, "the last op ends the run");
    let end = p.steps.last().unwrap();
    assert_eq!(end.span.1, last, "the path ends at the op that ended last");
    assert_eq!(end.at, r.end_ps);
    assert_eq!(p.end_ps, r.end_ps);
    assert_eq!(
        r.pes[end.inst].end_ps, r.end_ps,
        "on the PE that ended last"
    );
    let first = &p.steps[0];
    assert_eq!(first.cause, Cause::Start);
    assert_eq!(first.span.0, r.start_ps, "the path starts with the run");
    for w in p.steps.windows(2) {
        assert!(
            w[0].at <= w[1].at,
            "times go back: {:?} then {:?}",
            w[0],
            w[1]
        );
        assert!(w[1].cause != Cause::Start, "only the first step starts");
        assert!(w[0].at <= w[1].span.1, "{:?} then {:?}", w[0], w[1]);
    }
}

#[test]
fn a_receive_posted_before_its_message_waits_for_data() {
    for fabric in FabricModel::ALL {
        let out = run(
            &late_sender,
            late_sender::args().n(1024).k(40).into(),
            fabric,
            true,
        );
        let w = waits(&out).unwrap();
        let r = &out.report;
        // Rank 1 waits for rank 0's compute, rank 2 for rank 1's forward.
        let compute = r.pes[0].busy.math;
        assert!(compute > 0);
        assert!(
            w.per_pe[1].data >= compute / 2,
            "{fabric}: rank 1 waited {} ps for data, rank 0 computed {compute} ps",
            w.per_pe[1].data
        );
        assert!(w.per_pe[2].data > w.per_pe[1].data, "{fabric}");
        assert_eq!(w.per_pe[0].data, 0, "{fabric}: rank 0 receives nothing");
        for (i, x) in w.per_pe.iter().enumerate() {
            assert_eq!(x.credits, 0, "{fabric}: rank {i} never fills a ring");
        }
        let p = critical_path(&out).unwrap();
        check_path(&out, &p);
        // Rank 2's receive waited for rank 1's send, which waited for rank 0's.
        let data: Vec<_> = p.steps.iter().filter(|s| s.cause == Cause::Data).collect();
        assert_eq!(data.len(), 2, "{fabric}: {p:#?}");
        assert_eq!((data[0].inst, data[1].inst), (1, 2));
        assert!(data.iter().all(|s| s.command.starts_with("recv")));
        // Rank 0's compute is on the path, by its kernel line.
        assert!(
            p.steps
                .iter()
                .any(|s| s.inst == 0 && s.command == "exp" && s.loc.ends_with("why.rs:18")),
            "{fabric}: {p:#?}"
        );
    }
}

#[test]
fn a_send_into_a_full_ring_waits_for_credits() {
    for fabric in FabricModel::ALL {
        let out = run(
            &late_receiver,
            late_receiver::args().n(1024).m(12).k(40).into(),
            fabric,
            true,
        );
        let w = waits(&out).unwrap();
        let r = &out.report;
        let compute = r.pes[2].busy.math;
        assert!(
            w.per_pe[0].credits >= compute / 2,
            "{fabric}: rank 0 waited {} ps for credits, rank 2 computed {compute} ps",
            w.per_pe[0].credits
        );
        assert_eq!(w.per_pe[0].data, 0, "{fabric}: rank 0 receives nothing");
        assert!(w.per_pe[1].data > 0, "{fabric}: rank 1 waits for rank 2");
        assert_eq!(w.per_pe[1].credits + w.per_pe[2].credits, 0, "{fabric}");
        let p = critical_path(&out).unwrap();
        check_path(&out, &p);
        assert!(
            p.steps
                .iter()
                .any(|s| s.cause == Cause::Credits && s.inst == 0),
            "{fabric}: {p:#?}"
        );
        // The credits came from rank 1's receives, held back by rank 2.
        assert!(p.steps.iter().any(|s| s.inst == 2 && s.command == "exp"));
    }
}

#[test]
fn recording_the_path_changes_no_time_and_without_it_nothing_is_kept() {
    let args = || late_receiver::args().n(1024).m(12).k(40).into();
    for fabric in FabricModel::ALL {
        let with = run(&late_receiver, args(), fabric, true);
        let without = run(&late_receiver, args(), fabric, false);
        assert_eq!(with.report, without.report, "{fabric}");
        assert!(without.spans.is_empty() && without.programs.is_empty());
        assert!(waits(&without).is_none() && critical_path(&without).is_none());
        let e = Why::of(&without).unwrap_err().to_string();
        assert!(e.contains("Launch::why"), "{e}");
    }
}

#[test]
fn a_ring_all_reduce_on_tiny_has_a_path_from_start_to_end() {
    let topo = Topology::builtin("tiny").unwrap();
    let reg = Registry::try_builtin().unwrap();
    let algo = reg.get("ring_allreduce").unwrap();
    let pes = ranks(&topo, algo).unwrap();
    let spec = |why| RunSpec {
        why,
        ..RunSpec::timing(64 * 1024, DType::F32, FabricModel::Messages)
    };
    let with = run_on(&topo, algo, &pes, &spec(true)).unwrap();
    let without = run_on(&topo, algo, &pes, &spec(false)).unwrap();
    assert_eq!(with.outcome.report, without.outcome.report);
    let p = critical_path(&with.outcome).unwrap();
    check_path(&with.outcome, &p);
    // A ring passes data from PE to PE: the path crosses many of them.
    let mut crossed: Vec<usize> = p.steps.iter().map(|s| s.inst).collect();
    crossed.sort_unstable();
    crossed.dedup();
    assert!(crossed.len() >= pes.len() / 2, "{crossed:?}");
    let why = Why::of(&with.outcome).unwrap();
    let text = why.to_string();
    let r = &with.outcome.report;
    assert!(
        text.contains(&format!("    {}: busy", r.links[0].name)),
        "the busiest link first: {text}"
    );
    assert!(text.contains("for data (receive outstanding)"), "{text}");
    // Long repetitive stretches fold.
    assert!(text.contains(" more "), "{text}");
    assert!(text.lines().count() < 80, "{text}");
}

#[test]
fn the_256_pe_ring_is_held_by_the_link_between_sips() {
    use kernbench::core::topology::Endpoint;
    let topo = Topology::embedded_default();
    let reg = Registry::builtin();
    let algo = reg.get("ring_allreduce").unwrap();
    let pes = ranks(&topo, algo).unwrap();
    assert_eq!(pes.len(), 256);
    let spec = RunSpec {
        why: true,
        ..RunSpec::timing(1 << 18, kernbench::core::DType::F32, FabricModel::Messages)
    };
    let out = run_on(&topo, algo, &pes, &spec).unwrap().outcome;
    let why = Why::of(&out).unwrap();
    // The ring's hop from the last SIP back to the first leaves both SIPs
    // through their IO dies: those links are the ones outside every cube.
    let (last, first) = (pes[pes.len() - 1], pes[0]);
    assert_ne!(last.sip, first.sip);
    let route = topo.route(Endpoint::Pe(last), Endpoint::Pe(first)).unwrap();
    let between: Vec<String> = route
        .hops
        .iter()
        .map(|h| {
            let l = topo.link(h.link);
            format!("{} -> {}", l.from, l.to)
        })
        .filter(|name| !name.contains("/cube"))
        .collect();
    assert!(!between.is_empty(), "{route:?}");
    let top = &why.links[0];
    // The busiest link is on that hop (ties with it are as busy).
    assert!(
        why.links
            .iter()
            .take_while(|l| l.1 == top.1)
            .any(|l| between.contains(&l.0)),
        "busiest: {:?}; between SIPs: {between:?}",
        &why.links
    );
    assert!(top.3 > 0.5, "{top:?}");
    // The critical path crosses between SIPs.
    let crossings = why
        .path
        .steps
        .windows(2)
        .filter(|w| w[0].pe.sip != w[1].pe.sip)
        .count();
    assert!(crossings > 10, "{crossings} SIP crossings on the path");
    check_path(&out, &why.path);
}
