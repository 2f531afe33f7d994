//! Behaviour of `kernbench_core::functional`: data and message order without
//! timing, checked against an ndarray-free reference and against the timed
//! run (same memory afterwards, same errors, same deadlock reports).

use kernbench_core::functional::{self, FunctionalOutcome};
use kernbench_core::ir::{
    ArgValue, CommandGraph, Dir, GraphBuilder, GraphHeader, KernelArgs, MathOp, MemRef, Operand,
    Peer, SrcLoc, TileType, TraceError, TraceLimits, View,
};
use kernbench_core::machine::{Buffer, Machine};
use kernbench_core::neighbors::NeighborMap;
use kernbench_core::program::Program;
use kernbench_core::sim::{
    simulate, Launch, LaunchError, Mismatch, PairingError, SimError, Wait, Waiter,
};
use kernbench_core::topology::{IpcqSpec, Topology};
use kernbench_core::{DType, PeId};

/// What a hand-written program body sees of its instance.
struct Ctx {
    rank: usize,
    world: usize,
    va: u64,
    n: usize,
}

impl Ctx {
    /// `n` elements of this rank's vector from element `off`.
    fn mine(&self, off: usize, n: usize) -> MemRef {
        MemRef {
            param: 0,
            name: "buf".into(),
            base_va: self.va,
            view: View::Flat {
                offset: (self.rank * self.n + off) as i64,
            },
            dtype: DType::F32,
            shape: vec![n].into(),
        }
    }
}

/// A kernel location on line `line` of `prog.rs`.
fn at(line: u32) -> SrcLoc {
    SrcLoc {
        file: "prog.rs".into(),
        line,
        col: 5,
    }
}

type Body = fn(&mut GraphBuilder, &Ctx) -> Result<(), TraceError>;

/// A program written directly against the graph builder.
struct Hand {
    name: &'static str,
    body: Body,
}

impl Program for Hand {
    fn name(&self) -> &str {
        self.name
    }

    fn trace(
        &self,
        args: &KernelArgs,
        grid: &[u32],
        pid: &[u32],
    ) -> Result<CommandGraph, TraceError> {
        let header = GraphHeader {
            kernel: self.name.into(),
            params: vec![],
            grid: grid.to_vec(),
            pid: pid.to_vec(),
        };
        let mut b = GraphBuilder::new(header, TraceLimits::default());
        let Some(ArgValue::Ptr { va, .. }) = args.get("buf") else {
            panic!("the tests pass `buf`")
        };
        let Some(ArgValue::Int(n)) = args.get("n") else {
            panic!("the tests pass `n`")
        };
        let ctx = Ctx {
            rank: pid[0] as usize,
            world: grid[0] as usize,
            va: *va,
            n: *n as usize,
        };
        (self.body)(&mut b, &ctx)?;
        Ok(b.finish())
    }
}

fn tile(n: usize) -> TileType {
    TileType::new(DType::F32, vec![n])
}

/// Sends this rank's vector east and stores what arrives from the west.
fn shift(b: &mut GraphBuilder, c: &Ctx) -> Result<(), TraceError> {
    let x = b.load(c.mine(0, c.n), &at(1))?;
    b.send(Dir::E, x, &at(2))?;
    let y = b.recv(Dir::W, tile(c.n), false, &at(3))?;
    b.store(c.mine(0, c.n), y, &at(4))?;
    Ok(())
}

/// A naive ring all-reduce of the whole vector with asynchronous receives:
/// pass the vector around `world - 1` times, adding what arrives.
fn ring_sum(b: &mut GraphBuilder, c: &Ctx) -> Result<(), TraceError> {
    let mine = b.load(c.mine(0, c.n), &at(10))?;
    let (mut acc, mut x) = (mine, mine);
    for _ in 1..c.world {
        let f = b.recv(Dir::W, tile(c.n), true, &at(11))?;
        b.send(Dir::E, x, &at(12))?;
        x = b.wait(f, &at(13))?;
        acc = b.math(
            MathOp::Add,
            vec![Operand::Value(acc), Operand::Value(x)],
            None,
            &at(14),
        )?;
    }
    let scaled = b.math(
        MathOp::Mul,
        vec![Operand::Value(acc), Operand::Scalar(0.5)],
        None,
        &at(15),
    )?;
    b.store(c.mine(0, c.n), scaled, &at(16))?;
    Ok(())
}

/// Five one-slot messages east before receiving any: more than a ring of four slots holds.
fn flood(b: &mut GraphBuilder, c: &Ctx) -> Result<(), TraceError> {
    let x = b.load(c.mine(0, c.n), &at(20))?;
    for _ in 0..5 {
        b.send(Dir::E, x, &at(21))?;
    }
    for _ in 0..5 {
        b.recv(Dir::W, tile(c.n), false, &at(22))?;
    }
    Ok(())
}

/// Posts its receive, then sends east and stores what arrived.
fn posted_shift(b: &mut GraphBuilder, c: &Ctx) -> Result<(), TraceError> {
    let f = b.recv(Dir::W, tile(c.n), true, &at(25))?;
    let x = b.load(c.mine(0, c.n), &at(26))?;
    b.send(Dir::E, x, &at(27))?;
    let y = b.wait(f, &at(28))?;
    b.store(c.mine(0, c.n), y, &at(29))?;
    Ok(())
}

/// Receives first, then sends: every rank waits for its western neighbour.
fn recv_first(b: &mut GraphBuilder, c: &Ctx) -> Result<(), TraceError> {
    let y = b.recv(Dir::W, tile(c.n), false, &at(30))?;
    b.send(Dir::E, y, &at(31))?;
    Ok(())
}

/// Sends east but never receives.
fn lonely(b: &mut GraphBuilder, c: &Ctx) -> Result<(), TraceError> {
    let x = b.load(c.mine(0, c.n), &at(40))?;
    b.send(Dir::E, x, &at(41))?;
    Ok(())
}

fn value(r: usize, i: usize) -> f32 {
    ((r * 7 + i * 3) % 11) as f32
}

struct Setup {
    machine: Machine,
    buf: Buffer,
    pes: Vec<PeId>,
}

fn setup(w: usize, n: usize) -> Setup {
    let topo = Topology::builtin("tiny").unwrap();
    let pes: Vec<PeId> = topo.pes().take(w).collect();
    let mut machine = Machine::new(topo).unwrap();
    let buf = machine.alloc(DType::F32, w * n, &pes).unwrap();
    let init: Vec<f32> = (0..w * n).map(|k| value(k / n, k % n)).collect();
    machine.write_buffer(&buf, &init).unwrap();
    Setup { machine, buf, pes }
}

fn launch<'a>(p: &'a Hand, s: &Setup, n: usize) -> Launch<'a> {
    let args = KernelArgs::new()
        .with("buf", s.buf.ptr())
        .int("n", n as i64);
    Launch::new(p, args, s.pes.clone()).neighbors(NeighborMap::ring(&s.pes).unwrap())
}

/// What the functional run leaves (outcome and memory), or its error.
type FunctionalResult = Result<(FunctionalOutcome, Vec<f32>), SimError>;

/// Runs a program functionally and timed, on fresh machines.
fn both(
    p: &Hand,
    w: usize,
    n: usize,
    ipcq: Option<IpcqSpec>,
) -> (FunctionalResult, Result<Vec<f32>, SimError>) {
    let mut f = setup(w, n);
    let mut l = launch(p, &f, n);
    l.ipcq = ipcq.clone();
    let fr =
        functional::run(&mut f.machine, &l).map(|o| (o, f.machine.read_buffer(&f.buf).unwrap()));
    let mut t = setup(w, n);
    let mut l = launch(p, &t, n);
    l.ipcq = ipcq;
    let tr = simulate(&mut t.machine, &l).map(|_| t.machine.read_buffer(&t.buf).unwrap());
    (fr, tr)
}

/// The timed run's waiters, one per waiting command: it lowers a send to two
/// ops (slot grant and injection), and names the command once for each.
fn per_command(mut w: Vec<Waiter>) -> Vec<Waiter> {
    w.dedup();
    w
}

#[test]
fn a_ring_shift_moves_every_vector_east() {
    let p = Hand {
        name: "shift",
        body: shift,
    };
    let (w, n) = (5, 300);
    let (f, t) = both(&p, w, n, None);
    let (out, mem) = f.unwrap();
    assert_eq!(out.messages, w as u64);
    assert_eq!(out.graphs.len(), w);
    for r in 0..w {
        for i in 0..n {
            assert_eq!(
                mem[r * n + i],
                value((r + w - 1) % w, i),
                "rank {r} element {i}"
            );
        }
    }
    assert_eq!(mem, t.unwrap(), "the timed run computes the same data");
}

#[test]
fn asynchronous_receives_and_math_match_the_timed_run() {
    let p = Hand {
        name: "ring_sum",
        body: ring_sum,
    };
    for (w, n) in [(1, 7), (3, 37), (7, 1000)] {
        let (f, t) = both(&p, w, n, None);
        let (out, mem) = f.unwrap();
        assert_eq!(out.messages, (w * (w - 1)) as u64);
        for r in 0..w {
            for i in 0..n {
                let sum: f32 = (0..w).map(|q| value(q, i)).sum();
                assert_eq!(mem[r * n + i], sum * 0.5, "w {w} rank {r} element {i}");
            }
        }
        assert_eq!(mem, t.unwrap());
    }
}

#[test]
fn a_ring_never_drained_deadlocks_as_in_the_timed_run() {
    let p = Hand {
        name: "flood",
        body: flood,
    };
    let (f, t) = both(&p, 2, 16, None);
    let (Err(SimError::Deadlock(fd)), Err(SimError::Deadlock(td))) = (f.map(|_| ()), t.map(|_| ()))
    else {
        panic!("both runs deadlock")
    };
    assert_eq!(fd.at_ps, 0);
    assert_eq!(fd.waiters.len(), 2, "{fd}");
    for wt in &fd.waiters {
        assert!(
            matches!(
                wt.wait,
                Wait::Send {
                    to: Peer::Dir(Dir::E),
                    full: 4,
                    slots: 4,
                    ..
                }
            ),
            "{:?}",
            wt.wait
        );
        assert_eq!(wt.wait.what(), "send E");
        assert!(
            wt.wait.detail().contains("4 of 4 ring slots full"),
            "{}",
            wt.wait.detail()
        );
        assert_eq!(wt.loc.line, 21);
    }
    assert_eq!(
        fd.waiters,
        per_command(td.waiters.clone()),
        "functional:\n{fd}\ntimed:\n{td}"
    );
}

#[test]
fn a_bigger_ring_lets_the_flood_through() {
    let p = Hand {
        name: "flood",
        body: flood,
    };
    let ipcq = IpcqSpec {
        slots: 8,
        ..IpcqSpec::default()
    };
    let (f, t) = both(&p, 3, 16, Some(ipcq));
    assert_eq!(f.unwrap().0.messages, 15);
    t.unwrap();
}

#[test]
fn a_message_larger_than_the_ring_agrees_with_the_timed_run() {
    // 4 slots of 256 B: a 2 KiB message never fits, whatever the receiver does.
    let p = Hand {
        name: "shift",
        body: shift,
    };
    let ipcq = IpcqSpec {
        slots: 4,
        slot_bytes: 256,
        ..IpcqSpec::default()
    };
    let (f, t) = both(&p, 2, 512, Some(ipcq));
    match (f, t) {
        (Err(SimError::Deadlock(fd)), Err(SimError::Deadlock(td))) => {
            assert_eq!(fd.waiters, per_command(td.waiters))
        }
        (Ok(_), Ok(_)) => {}
        (f, t) => panic!(
            "functional {:?} but timed {:?}",
            f.map(|_| ()),
            t.map(|_| ())
        ),
    }
}

#[test]
fn a_message_larger_than_the_ring_streams_to_a_posted_receive() {
    let p = Hand {
        name: "posted_shift",
        body: posted_shift,
    };
    let ipcq = IpcqSpec {
        slots: 4,
        slot_bytes: 256,
        ..IpcqSpec::default()
    };
    let (w, n) = (3, 512);
    let (f, t) = both(&p, w, n, Some(ipcq));
    let (out, mem) = f.unwrap();
    assert_eq!(out.messages, w as u64);
    assert_eq!(mem[n], value(0, 0));
    assert_eq!(mem, t.unwrap());
}

#[test]
fn receiving_before_sending_deadlocks_and_names_every_pe() {
    let p = Hand {
        name: "recv_first",
        body: recv_first,
    };
    let (f, t) = both(&p, 3, 8, None);
    let Err(SimError::Deadlock(fd)) = f.map(|_| ()) else {
        panic!("deadlock expected")
    };
    let Err(SimError::Deadlock(td)) = t.map(|_| ()) else {
        panic!("deadlock expected")
    };
    let pes: Vec<PeId> = fd.waiters.iter().map(|w| w.pe).collect();
    assert_eq!(pes, setup(3, 8).pes);
    for wt in &fd.waiters {
        assert!(
            matches!(
                wt.wait,
                Wait::Recv {
                    from: Peer::Dir(Dir::W),
                    got: 0,
                    need: 1,
                    ..
                }
            ),
            "{:?}",
            wt.wait
        );
        assert_eq!(wt.wait.what(), "recv W");
        assert_eq!(wt.loc.line, 30);
        assert!(
            wt.wait.detail().contains("0 of 1 packets arrived"),
            "{}",
            wt.wait.detail()
        );
    }
    assert_eq!(fd.waiters, per_command(td.waiters));
    let text = SimError::Deadlock(fd).to_string();
    assert!(
        text.contains("3 PE(s) wait") && text.contains("prog.rs:30:5"),
        "{text}"
    );
}

#[test]
fn unmatched_sends_are_the_timed_run_s_pairing_error() {
    let p = Hand {
        name: "lonely",
        body: lonely,
    };
    let (f, t) = both(&p, 2, 8, None);
    let (Err(fe), Err(te)) = (f.map(|_| ()), t.map(|_| ())) else {
        panic!("both fail")
    };
    let SimError::Pairing(PairingError::Unmatched {
        mismatches,
        more: 0,
        ..
    }) = &fe
    else {
        panic!("{fe}")
    };
    assert!(
        mismatches
            .iter()
            .all(|m| matches!(m, Mismatch::Count { .. })),
        "{fe}"
    );
    assert!(
        fe.to_string()
            .starts_with("unmatched communication: \n  PE "),
        "{fe}"
    );
    assert_eq!(fe, te);
}

#[test]
fn bad_launches_are_refused() {
    let p = Hand {
        name: "shift",
        body: shift,
    };
    let mut s = setup(2, 4);
    let mut l = launch(&p, &s, 4);
    l.pes = vec![s.pes[0], s.pes[0]];
    let e = functional::run(&mut s.machine, &l).map(|_| ()).unwrap_err();
    assert_eq!(
        e,
        SimError::Launch(LaunchError::DuplicatePe { pe: s.pes[0] })
    );
    assert_eq!(
        e.to_string(),
        format!("launch: PE {} is given twice", s.pes[0])
    );
    let mut l = launch(&p, &s, 4);
    l.grid = vec![3];
    let e = functional::run(&mut s.machine, &l).map(|_| ()).unwrap_err();
    assert_eq!(
        e,
        SimError::Launch(LaunchError::GridSize {
            grid: vec![3],
            instances: Some(3),
            pes: 2
        })
    );
    assert_eq!(
        e.to_string(),
        "launch: grid [3] has 3 instances but 2 PEs were given"
    );
}

#[test]
fn without_data_only_the_order_runs() {
    let p = Hand {
        name: "shift",
        body: shift,
    };
    let mut s = setup(4, 16);
    let l = launch(&p, &s, 16).data(false);
    let out = functional::run(&mut s.machine, &l).unwrap();
    assert_eq!(out.messages, 4);
    let mem = s.machine.read_buffer(&s.buf).unwrap();
    assert_eq!(mem[0], value(0, 0), "memory is untouched");
    assert_eq!(out.commands, 4 * 4);
}
