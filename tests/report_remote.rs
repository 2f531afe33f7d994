//! The report of a multi-PE kernel counts the bytes its PEs move to and from
//! other PEs' memory, on both sides, and bounds each PE by them.

use kernbench::core::sim::{simulate, BoundBy, Report};
use kernbench::core::topology::{Endpoint, Route};
use kernbench::prelude::*;

mod common;

const BLOCK: usize = 4096;

/// `vector_add` on `pes` (one block of [`BLOCK`] f32 each), with `x`, `y`
/// and `z` all in the HBM slice of `home` and mapped on every PE.
fn run_homed(pes: &[PeId], home: PeId) -> (Machine, Report) {
    let mut m = Machine::new(Topology::embedded_default()).unwrap();
    let n = BLOCK * pes.len();
    let bufs: Vec<_> = (0..3)
        .map(|_| common::homed(&mut m, n, pes, home))
        .collect();
    let r = simulate(
        &mut m,
        &common::vector_add_on(&bufs, n, BLOCK, pes.to_vec()),
    )
    .unwrap();
    (m, r)
}

/// The link of a route with the least bandwidth, the lowest index on a tie.
fn narrowest(m: &Machine, r: &Route) -> (u32, f64) {
    let mut best: Option<(u32, f64)> = None;
    for h in &r.hops {
        let g = m.topology().link(h.link).gbps;
        if best.is_none_or(|(l, b)| g < b || (g == b && h.link.0 < l)) {
            best = Some((h.link.0, g));
        }
    }
    best.unwrap()
}

#[test]
fn a_kernel_whose_buffers_live_on_one_pe_reports_all_its_traffic() {
    let topo = Topology::embedded_default();
    let pes: Vec<PeId> = topo.pes().take(8).collect();
    let home = pes[0];
    let (m, r) = run_homed(&pes, home);
    let spec = m.topology().pe_spec();
    let (peak, hbm) = (spec.gemm_flops_per_ns(2), spec.hbm_effective_gbps());
    let f32b = 4u64;
    let (rd, wr) = (2 * BLOCK as u64 * f32b, BLOCK as u64 * f32b);
    let others = (pes.len() - 1) as u64;

    // The home PE moves its own block and serves every other PE's.
    let p0 = &r.pes[0];
    assert_eq!(p0.pe, home);
    assert_eq!((p0.hbm_read, p0.hbm_write), (rd, wr));
    assert_eq!(
        (p0.hbm_served_read, p0.hbm_served_write),
        (others * rd, others * wr)
    );
    assert_eq!((p0.remote_read, p0.remote_write), (0, 0));
    assert_eq!(p0.remote_link, None);
    assert_eq!(p0.hbm_bytes(), 3 * BLOCK as u64 * f32b * 8);
    assert_eq!(p0.bound.compute_ns, BLOCK as f64 / peak);
    assert_eq!(p0.bound.hbm_ns, p0.hbm_bytes() as f64 / hbm);
    assert_eq!(p0.bound.remote_ns, 0.0);
    assert_eq!(p0.bound.by, BoundBy::Hbm);
    assert_eq!(p0.bound.ns, p0.bound.hbm_ns);

    // Every other PE reads and writes over the fabric: its writes go out
    // to the home slice, its reads come back over the links the other way.
    let mut worst = p0.bound.ns;
    for p in &r.pes[1..] {
        assert_eq!((p.hbm_read, p.hbm_write), (0, 0), "{}", p.pe);
        assert_eq!((p.hbm_served_read, p.hbm_served_write), (0, 0));
        assert_eq!((p.remote_read, p.remote_write), (rd, wr), "{}", p.pe);
        let topo = m.topology();
        let out = topo.route(Endpoint::Pe(p.pe), Endpoint::Hbm(home)).unwrap();
        let back = topo.route(Endpoint::Hbm(home), Endpoint::Pe(p.pe)).unwrap();
        let is_out = |l: u32| out.hops.iter().any(|h| h.link.0 == l);
        assert!(back.hops.iter().all(|h| !is_out(h.link.0)), "one-way links");
        // The reads (twice the bytes of the writes) load the way back most.
        let (link, gbps) = narrowest(&m, &back);
        assert_eq!(gbps, back.bottleneck_gbps);
        assert_eq!(out.bottleneck_gbps, gbps);
        let l = p
            .remote_link
            .as_ref()
            .expect("remote traffic crosses links");
        assert_eq!((l.link, l.bytes, l.gbps), (link, rd, gbps), "{}", p.pe);
        let ml = m.topology().links()[link as usize];
        assert_eq!(l.name, format!("{} -> {}", ml.from, ml.to));
        assert_eq!(p.bound.compute_ns, BLOCK as f64 / peak);
        assert_eq!(p.bound.hbm_ns, 0.0);
        assert_eq!(p.bound.remote_ns, rd as f64 / gbps);
        assert_eq!(p.bound.by, BoundBy::Remote);
        worst = worst.max(p.bound.ns);
    }

    // In total: every byte of the three buffers crossed the home slice.
    assert_eq!(r.hbm_bytes(), 3 * BLOCK as u64 * f32b * 8);
    assert_eq!(r.remote_bytes(), others * (rd + wr));
    assert_eq!(r.memory.len(), 1);
    let mu = &r.memory[0];
    assert_eq!(mu.owner, Some(home));
    assert!(mu.launched);
    assert_eq!((mu.read, mu.write), (others * rd, others * wr));
    assert_eq!(mu.memory, Endpoint::Hbm(home).to_string());
    let b = r.bound();
    assert_eq!(b.ns, worst);
    assert_eq!(r.bound_ns(), worst);
    // The home slice serves 8 blocks: it binds, not one PE's remote block.
    assert_eq!((b.pe, b.by), (Some(home), BoundBy::Hbm));

    let text = r.to_string();
    let line = text.lines().nth(1).unwrap();
    assert!(
        line.contains(&format!(
            "{} B HBM ({} B of it for other PEs), {} B remote ({} read, {} written)",
            r.hbm_bytes(),
            others * (rd + wr),
            r.remote_bytes(),
            others * rd,
            others * wr
        )),
        "{text}"
    );
    assert!(
        line.ends_with(&format!(
            "bound {:.3} us (HBM of PE {home})",
            worst / 1000.0
        )),
        "{text}"
    );
    // The home slice's own pseudo-channels serve the 7 remote blocks, shared
    // with its owner's DMAs (ADR 0033): the run cannot end before the slice
    // has moved every byte, and the report has no note of ending early.
    assert!(r.sim_ns() >= worst, "{text}");
    assert_eq!(r.below_bound_note(), None, "{text}");
    assert!(!text.contains("note:"), "{text}");
}

#[test]
fn other_pes_accesses_to_a_slice_slow_its_owner_down() {
    // The home PE moves the same block in both runs; in the second, seven
    // other PEs read and write the home slice at the same time, on the
    // slice's own pseudo-channels, and the home PE's DMAs queue behind them.
    let topo = Topology::embedded_default();
    let pes: Vec<PeId> = topo.pes().take(8).collect();
    let home = pes[0];
    let (_, alone) = run_homed(&pes[..1], home);
    let (_, shared) = run_homed(&pes, home);
    let busy = |r: &Report| r.pes[0].busy.dma_in + r.pes[0].busy.dma_wb;
    assert_eq!(alone.pes[0].pe, home);
    assert_eq!(shared.pes[0].pe, home);
    assert_eq!(alone.pes[0].hbm_bytes(), 3 * BLOCK as u64 * 4);
    assert!(
        shared.pes[0].end_ps > alone.pes[0].end_ps,
        "alone:\n{alone}\nshared:\n{shared}"
    );
    assert!(
        busy(&shared) > busy(&alone),
        "alone:\n{alone}\nshared:\n{shared}"
    );
}

#[test]
fn a_slice_outside_the_launch_is_reported_and_bounds_the_kernel() {
    let topo = Topology::embedded_default();
    let all: Vec<PeId> = topo.pes().take(5).collect();
    let (pes, home) = (&all[..4], all[4]);
    let (m, r) = run_homed(pes, home);
    let hbm = m.topology().pe_spec().hbm_effective_gbps();
    let bytes = 3 * (BLOCK * pes.len()) as u64 * 4;
    for p in &r.pes {
        assert_eq!(p.hbm_bytes(), 0, "{}", p.pe);
        assert_eq!(p.remote_bytes(), 3 * BLOCK as u64 * 4, "{}", p.pe);
        assert_eq!(p.bound.by, BoundBy::Remote);
    }
    assert_eq!(r.memory.len(), 1);
    assert_eq!(r.memory[0].owner, Some(home));
    assert!(!r.memory[0].launched);
    assert_eq!(r.hbm_bytes(), bytes);
    let b = r.bound();
    let slice_ns = bytes as f64 / hbm;
    let pe_ns = r.pes.iter().map(|p| p.bound.ns).fold(0.0, f64::max);
    assert_eq!(b.ns, slice_ns.max(pe_ns));
    if slice_ns > pe_ns {
        assert_eq!((b.pe, b.by, b.launched), (Some(home), BoundBy::Hbm, false));
    }
    // The slice's pseudo-channels serve every byte, though its PE runs
    // nothing: the run takes at least the slice's time.
    assert!(r.sim_ns() >= slice_ns, "{}", r);
    let text = r.to_string();
    assert!(
        text.contains(&format!(
            "{}: {} B read, {} B written by remote DMAs",
            Endpoint::Hbm(home),
            bytes * 2 / 3,
            bytes / 3
        )),
        "{text}"
    );
}

#[test]
fn a_single_pe_kernel_reports_as_before() {
    let mut m = Machine::new(Topology::embedded_default()).unwrap();
    let pe = PeId::new(0, 0, 0);
    let n = 1 << 16;
    let b: Vec<_> = (0..3)
        .map(|_| m.alloc(DType::F32, n, &[pe]).unwrap())
        .collect();
    let r = simulate(&mut m, &common::vector_add_on(&b, n, n, vec![pe])).unwrap();
    let spec = m.topology().pe_spec();
    let p = &r.pes[0];
    let own = p.hbm_read + p.hbm_write;
    assert_eq!(own, 3 * 4 * n as u64);
    assert_eq!(p.hbm_bytes(), own);
    assert_eq!((p.hbm_served(), p.remote_bytes()), (0, 0));
    assert!(r.memory.is_empty() && p.remote_link.is_none());
    assert_eq!(r.hbm_bytes(), own);
    assert_eq!(r.remote_bytes(), 0);
    // The bound of the single-PE report: max(compute, HBM).
    let old =
        (p.flops as f64 / spec.gemm_flops_per_ns(2)).max(own as f64 / spec.hbm_effective_gbps());
    assert_eq!(r.bound_ns(), old);
    assert_eq!(r.bound().by, BoundBy::Hbm);
    assert!(r.sim_ns() >= r.bound_ns());
    assert_eq!(r.below_bound_note(), None);
}

/// Copies `n` elements of `src` to `dst`: one load, one store.
#[kernel]
fn copy(src: Ptr<f32>, dst: Ptr<f32>, n: usize) {
    let v = tl::load(src.offset(0), [n]);
    tl::store(dst.offset(0), &v);
}

/// `copy` of [`BLOCK`] elements on `pe`, its source in `from`'s HBM slice
/// and its destination in `to`'s.
fn copy_run(pe: PeId, from: PeId, to: PeId) -> Report {
    let mut m = Machine::new(Topology::embedded_default()).unwrap();
    let src = common::homed(&mut m, BLOCK, &[pe], from);
    let dst = common::homed(&mut m, BLOCK, &[pe], to);
    let args = KernelArgs::new()
        .with("src", src.ptr())
        .with("dst", dst.ptr())
        .int("n", BLOCK as i64);
    simulate(&mut m, &Launch::new(&copy, args, vec![pe]).data(false)).unwrap()
}

#[test]
fn a_remote_read_sends_its_request_out_and_its_bytes_back() {
    let topo = Topology::embedded_default();
    let pes: Vec<PeId> = topo.pes().collect();
    // A slice in another cube: the way there and the way back differ.
    let (a, b) = (pes[0], *pes.iter().find(|p| p.cube != pes[0].cube).unwrap());
    let out = topo.route(Endpoint::Pe(a), Endpoint::Hbm(b)).unwrap();
    let back = topo.route(Endpoint::Hbm(b), Endpoint::Pe(a)).unwrap();
    let links = |r: &Route| -> Vec<u32> {
        let mut l: Vec<u32> = r.hops.iter().map(|h| h.link.0).collect();
        l.sort_unstable();
        l
    };
    let used = |r: &Report| -> Vec<u32> {
        let mut l: Vec<u32> = r.links.iter().map(|l| l.link).collect();
        l.sort_unstable();
        l
    };
    let bytes = (BLOCK * 4) as u64;

    // Reading b's slice: the bytes come back over the links from b to a.
    let read = copy_run(a, b, a);
    assert_eq!(used(&read), links(&back));
    assert!(read.links.iter().all(|l| l.bytes == bytes));
    // Writing it: the bytes go out over the links from a to b.
    let write = copy_run(a, a, b);
    assert_eq!(used(&write), links(&out));
    assert!(write.links.iter().all(|l| l.bytes == bytes));

    // Each run moves the same bytes over routes of the same bottleneck,
    // and makes one local access. The write's bytes head out at once and
    // arrive after the way out's fixed time. The read's request takes that
    // trip first, and its bytes then take the way back: the read is longer
    // by the way back's fixed time.
    assert_eq!(out.bottleneck_gbps, back.bottleneck_gbps);
    let extra = read.sim_ps() - write.sim_ps();
    assert_eq!(extra, back.latency_ps + back.overhead_ps);
}
