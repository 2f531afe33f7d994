//! Several launches on one timeline (`simulate_many`): they share the PEs'
//! engines and HBM channels and the links, begin in the order they wait
//! for, and compute what they would compute one after the other.

use kernbench::core::machine::Buffer;
use kernbench::core::sim::{simulate_many, LaunchError, ManyOutcome, Queued, SimError};
use kernbench::core::topology::Topology;
use kernbench::prelude::*;

/// `y = 2 * x + y` over `n` elements on every instance's own block.
#[kernel]
fn axpy(x: Ptr<f32>, y: Ptr<f32>, #[constexpr] n: usize) {
    let at = tl::program_id(0) * n;
    let a = tl::load(x.offset(at), [n]);
    let b = tl::load(y.offset(at), [n]);
    tl::store(y.offset(at), &(a * 2.0 + b));
}

/// Each instance sends its block east `rounds` times and keeps the last
/// block that came from the west.
#[kernel]
fn pass_east(t: Ptr<f32>, #[constexpr] n: usize, #[constexpr] rounds: usize) {
    let at = tl::program_id(0) * n;
    let mut x = tl::load(t.offset(at), [n]);
    for _ in 0..rounds {
        let next = tl::recv_async::<f32>(Dir::W, [n]);
        tl::send(Dir::E, &x);
        x = tl::wait(next);
    }
    tl::store(t.offset(at), &x);
}

/// `c = a x b`, one GEMM per instance on its own blocks.
#[kernel]
fn gemm_each(a: Tensor<f32>, b: Tensor<f32>, c: Tensor<f32>, #[constexpr] m: usize) {
    let i = tl::program_id(0);
    let (k, n) = (a.cols(), b.cols());
    let x = tl::load(a.block([i * m, 0], [m, k]), [m, k]);
    let y = tl::load(b.block([i * k, 0], [k, n]), [k, n]);
    tl::store(c.block([i * m, 0], [m, n]), &tl::dot(&x, &y));
}

const N: usize = 16 * 1024;

struct Setup {
    m: Machine,
    pes: Vec<PeId>,
}

fn setup(pes: usize) -> Setup {
    let topo = Topology::builtin("tiny").unwrap();
    let pes: Vec<PeId> = topo.pes().take(pes).collect();
    Setup {
        m: Machine::new(topo).unwrap(),
        pes,
    }
}

impl Setup {
    fn buf(&mut self, values: &[f32], on: &[PeId]) -> Buffer {
        let b = self.m.alloc(DType::F32, values.len(), on).unwrap();
        self.m.write_buffer(&b, values).unwrap();
        b
    }
}

fn ramp(n: usize, k: f32) -> Vec<f32> {
    (0..n).map(|i| (i % 97) as f32 * k).collect()
}

fn axpy_launch<'a>(x: &Buffer, y: &Buffer, pes: Vec<PeId>) -> Launch<'a> {
    Launch::new(&axpy, axpy::args().x(x).y(y).n(N), pes)
}

fn end(o: &ManyOutcome) -> u64 {
    o.launches.iter().map(|l| l.end_ps).max().unwrap()
}

#[test]
fn one_launch_alone_runs_as_a_plain_launch_does() {
    for data in [false, true] {
        let mut s = setup(4);
        let pes = s.pes.clone();
        let x = s.buf(&ramp(4 * N, 1.0), &pes);
        let y = s.buf(&ramp(4 * N, 0.5), &pes);
        let plain = simulate(&mut s.m, &axpy_launch(&x, &y, pes.clone()).data(data)).unwrap();
        let mut s2 = setup(4);
        let x = s2.buf(&ramp(4 * N, 1.0), &pes);
        let y = s2.buf(&ramp(4 * N, 0.5), &pes);
        let many = simulate_many(
            &mut s2.m,
            &[Queued::new(axpy_launch(&x, &y, pes.clone()).data(data))],
        )
        .unwrap();
        let r = &many.outcome.report;
        assert_eq!(r.end_ps, plain.end_ps);
        assert_eq!(r.events, plain.events);
        assert_eq!(format!("{r}"), format!("{plain}"));
        assert_eq!(many.launches[0].end_ps, plain.end_ps);
        assert_eq!(many.first_instance, [0, 4]);
        if data {
            assert_eq!(s.m.read_buffer(&y).unwrap(), s2.m.read_buffer(&y).unwrap());
        }
    }
}

#[test]
fn launches_on_one_pe_share_its_engines_and_on_two_do_not() {
    let mut s = setup(2);
    let (p0, p1) = (s.pes[0], s.pes[1]);
    let x = s.buf(&ramp(N, 1.0), &[p0]);
    let y = s.buf(&ramp(N, 0.5), &[p0]);
    let u = s.buf(&ramp(N, 1.0), &[p0]);
    let v = s.buf(&ramp(N, 0.5), &[p0]);
    let alone =
        end(&simulate_many(&mut s.m, &[Queued::new(axpy_launch(&x, &y, vec![p0]))]).unwrap());
    // Both on PE 0: its DMA engines and HBM channels serve both.
    let shared = simulate_many(
        &mut s.m,
        &[
            Queued::new(axpy_launch(&x, &y, vec![p0])),
            Queued::new(axpy_launch(&u, &v, vec![p0])),
        ],
    )
    .unwrap();
    // The second on PE 1, with its own buffers there.
    let a = s.buf(&ramp(N, 1.0), &[p1]);
    let b = s.buf(&ramp(N, 0.5), &[p1]);
    let alone1 =
        end(&simulate_many(&mut s.m, &[Queued::new(axpy_launch(&a, &b, vec![p1]))]).unwrap());
    let apart = simulate_many(
        &mut s.m,
        &[
            Queued::new(axpy_launch(&x, &y, vec![p0])),
            Queued::new(axpy_launch(&a, &b, vec![p1])),
        ],
    )
    .unwrap();
    // The PE's engines serve both launches in turn: neither runs first.
    let (a0, a1) = (shared.launches[0].end_ps, shared.launches[1].end_ps);
    assert!(a0.abs_diff(a1) * 4 < a0.max(a1), "{a0} vs {a1}");
    let (shared, apart) = (end(&shared), end(&apart));
    println!("alone {alone} ps, two on one PE {shared} ps, on two PEs {apart} ps");
    assert_eq!(
        apart,
        alone.max(alone1),
        "PEs of their own do not slow each other"
    );
    assert!(
        shared > alone * 3 / 2,
        "two launches on one PE must share it: {shared} vs {alone}"
    );
    assert!(shared <= 2 * alone, "{shared} vs {alone}");
}

#[test]
fn a_launch_waiting_for_another_begins_when_it_ends() {
    let mut s = setup(2);
    let pes = s.pes.clone();
    let x = s.buf(&ramp(2 * N, 1.0), &pes);
    let y = s.buf(&ramp(2 * N, 0.5), &pes);
    let o = simulate_many(
        &mut s.m,
        &[
            Queued::new(axpy_launch(&x, &y, pes.clone())),
            Queued::new(axpy_launch(&x, &y, pes.clone())).after(0),
        ],
    )
    .unwrap();
    let (a, b) = (&o.launches[0], &o.launches[1]);
    assert!(b.begin_ps >= a.end_ps, "{a:?} {b:?}");
    assert!(b.end_ps > a.end_ps);
    // Twice y = 2x + y: y + 4x, checked element by element.
    let want: Vec<f32> = ramp(2 * N, 1.0)
        .iter()
        .zip(ramp(2 * N, 0.5))
        .map(|(x, y)| y + 4.0 * x)
        .collect();
    assert_eq!(s.m.read_buffer(&y).unwrap(), want);
    // A host that issues the second launch late makes it begin late.
    let late = a.end_ps + 1_000_000;
    let o = simulate_many(
        &mut s.m,
        &[
            Queued::new(axpy_launch(&x, &y, pes.clone())),
            Queued::new(axpy_launch(&x, &y, pes.clone()))
                .after(0)
                .issued_at(late),
        ],
    )
    .unwrap();
    assert!(o.launches[1].begin_ps > late, "{:?}", o.launches[1]);
}

#[test]
fn communication_of_one_launch_overlaps_compute_of_another() {
    let w = 4;
    let mut s = setup(w);
    let pes = s.pes.clone();
    let (m, k, n) = (64, 64, 64);
    let a = s.buf(&ramp(w * m * k, 0.01), &pes);
    let b = s.buf(&ramp(w * k * n, 0.02), &pes);
    let c = s.buf(&vec![0.0; w * m * n], &pes);
    let t = s.buf(&ramp(w * N, 1.0), &pes);
    let ring = NeighborMap::ring(&pes).unwrap();
    let args = gemm_each::args()
        .a(a.view(w * m, k).unwrap())
        .b(b.view(w * k, n).unwrap())
        .c(c.view(w * m, n).unwrap())
        .m(m);
    let gemm = || Launch::new(&gemm_each, args.clone(), pes.clone());
    let pass = || {
        Launch::new(
            &pass_east,
            pass_east::args().t(&t).n(N).rounds(w),
            pes.clone(),
        )
        .neighbors(ring.clone())
    };
    let alone =
        |s: &mut Setup, l: Launch| end(&simulate_many(&mut s.m, &[Queued::new(l)]).unwrap());
    let (g, p) = (alone(&mut s, gemm()), alone(&mut s, pass()));
    // After `w` rounds every block is back home.
    assert_eq!(s.m.read_buffer(&t).unwrap(), ramp(w * N, 1.0));
    let both = simulate_many(&mut s.m, &[Queued::new(gemm()), Queued::new(pass())]).unwrap();
    let after = simulate_many(
        &mut s.m,
        &[Queued::new(gemm()), Queued::new(pass()).after(0)],
    )
    .unwrap();
    let (both, after) = (end(&both), end(&after));
    println!(
        "gemm {g} ps, ring passes {p} ps, concurrent {both} ps, one after the other {after} ps"
    );
    assert!(
        both < after,
        "concurrent launches must overlap: {both} vs {after}"
    );
    assert!(both >= g.max(p));
    assert!(after >= g + p - g.min(p) / 2);
    assert_eq!(s.m.read_buffer(&t).unwrap(), ramp(w * N, 1.0));
    // The GEMM's values, checked.
    let (av, bv) = (ramp(w * m * k, 0.01), ramp(w * k * n, 0.02));
    let cv = s.m.read_buffer(&c).unwrap();
    for i in 0..w {
        for r in 0..m {
            for col in 0..n {
                let want: f32 = (0..k)
                    .map(|j| av[(i * m + r) * k + j] * bv[(i * k + j) * n + col])
                    .sum();
                let got = cv[(i * m + r) * n + col];
                assert!(
                    (got - want).abs() <= 1e-3 * want.abs().max(1.0),
                    "{got} vs {want}"
                );
            }
        }
    }
}

#[test]
fn unordered_launches_writing_the_same_bytes_race_and_ordered_ones_do_not() {
    let mut s = setup(2);
    let (p0, p1) = (s.pes[0], s.pes[1]);
    // Buffers over both PEs; both launches update elements 0..N (on PE 0).
    let x = s.buf(&ramp(2 * N, 1.0), &[p0, p1]);
    let y = s.buf(&ramp(2 * N, 0.5), &[p0, p1]);
    // Two launches, one on each PE, both updating y (PE 1 remotely).
    let first = || axpy_launch(&x, &y, vec![p0]);
    let second = || axpy_launch(&x, &y, vec![p1]);
    let r = simulate_many(&mut s.m, &[Queued::new(first()), Queued::new(second())]);
    let Err(SimError::Race(race)) = r else {
        panic!("expected a race, got {:?}", r.err());
    };
    let pes = [race.first.pe, race.second.pe];
    assert!(pes.contains(&p0) && pes.contains(&p1), "{race}");
    s.m.write_buffer(&y, &ramp(2 * N, 0.5)).unwrap();
    simulate_many(
        &mut s.m,
        &[Queued::new(first()), Queued::new(second()).after(0)],
    )
    .unwrap();
    let want: Vec<f32> = ramp(2 * N, 1.0)
        .iter()
        .zip(ramp(2 * N, 0.5))
        .enumerate()
        .map(|(i, (x, y))| if i < N { y + 4.0 * x } else { y })
        .collect();
    assert_eq!(s.m.read_buffer(&y).unwrap(), want);
}

#[test]
fn a_malformed_run_is_refused_with_what_is_wrong() {
    let mut s = setup(1);
    let p0 = s.pes[0];
    let x = s.buf(&ramp(N, 1.0), &[p0]);
    let y = s.buf(&ramp(N, 0.5), &[p0]);
    let l = || axpy_launch(&x, &y, vec![p0]);
    let r = simulate_many(&mut s.m, &[Queued::new(l()).after(0)]);
    assert!(
        matches!(
            r,
            Err(SimError::Launch(LaunchError::WaitsForLater {
                launch: 0,
                after: 0
            }))
        ),
        "{:?}",
        r.err()
    );
    let r = simulate_many(
        &mut s.m,
        &[
            Queued::new(l()),
            Queued::new(l().fabric(kernbench::core::sim::FabricModel::Slots)),
        ],
    );
    let e = r.err().expect("mixed fabric models");
    assert!(
        matches!(
            e,
            SimError::Launch(LaunchError::MixedFabric { launch: 1, .. })
        ),
        "{e}"
    );
    assert!(e.to_string().contains("launch 1"), "{e}");
    let r = simulate_many(
        &mut s.m,
        &[
            Queued::new(l()),
            Queued::new(l().ties(kernbench::core::sim::TieOrder::Reversed)),
        ],
    );
    let e = r.err().expect("mixed tie orders");
    assert!(
        matches!(
            e,
            SimError::Launch(LaunchError::MixedTies { launch: 1, .. })
        ),
        "{e}"
    );
    assert!(e.to_string().contains("reversed order"), "{e}");
    assert!(matches!(
        simulate_many(&mut s.m, &[]),
        Err(SimError::Launch(LaunchError::NoPes))
    ));
}

#[test]
fn a_launch_on_no_pes_is_refused_before_its_memory_is_estimated() {
    let mut s = setup(1);
    let p0 = s.pes[0];
    let x = s.buf(&ramp(N, 1.0), &[p0]);
    let y = s.buf(&ramp(N, 0.5), &[p0]);
    let r = simulate_many(&mut s.m, &[Queued::new(axpy_launch(&x, &y, Vec::new()))]);
    assert!(
        matches!(r, Err(SimError::Launch(LaunchError::NoPes))),
        "{:?}",
        r.err()
    );
}
