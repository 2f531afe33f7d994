//! Data races between program instances (ADR 0019): reported with both PEs
//! and both kernel lines when data runs; accesses a message orders are not.

use kernbench::core::sim::{simulate, FabricModel, Launch, Race, SimError};
use kernbench::prelude::*;
use kernbench::tl::Kernel;

/// Every instance stores its rank to the same `n` elements.
#[kernel]
fn all_store_one_place(t: Ptr<f32>, n: usize) {
    let x = tl::full::<f32>([n], tl::rank() as f64);
    tl::store(t.offset(0), &x);
}

/// Rank 0 stores into rank 1's slice while rank 1 loads it; nothing orders them.
#[kernel]
fn store_while_loading(t: Ptr<f32>, n: usize) {
    if tl::rank() == 0 {
        tl::store(t.offset(n), &tl::full::<f32>([n], 7.0));
    } else if tl::rank() == 1 {
        let x = tl::load(t.offset(n), [n]);
        tl::store(t.offset(2 * n), &x);
    }
}

/// Rank 0 writes slice 0, reads it back and sends what it read; rank 1
/// receives it and then reads slice 0 (read after write), while rank 0's
/// read of slice 1, which it sends too, comes before rank 1 overwrites it
/// (write after read). A message orders both pairs.
#[kernel]
fn ordered_by_messages(t: Ptr<f32>, n: usize) {
    if tl::rank() == 0 {
        tl::store(t.offset(0), &tl::full::<f32>([n], 5.0));
        let back = tl::load(t.offset(0), [n]);
        tl::send(1, &back);
        let theirs = tl::load(t.offset(n), [n]);
        tl::send(1, &theirs);
    } else if tl::rank() == 1 {
        let a = tl::recv::<f32>(0, [n]);
        let b = tl::recv::<f32>(0, [n]);
        let seen = tl::load(t.offset(0), [n]);
        tl::store(t.offset(n), &(a + b + seen));
    }
}

/// As [`ordered_by_messages`], but the message rank 0 sends does not
/// depend on its store: the store may still be on its way when rank 1 reads.
#[kernel]
fn message_not_after_the_store(t: Ptr<f32>, n: usize) {
    if tl::rank() == 0 {
        tl::store(t.offset(0), &tl::full::<f32>([n], 5.0));
        tl::send(1, &tl::full::<f32>([n], 1.0));
    } else if tl::rank() == 1 {
        let a = tl::recv::<f32>(0, [n]);
        let seen = tl::load(t.offset(0), [n]);
        tl::store(t.offset(n), &(a + seen));
    }
}

/// As [`ordered_by_messages`], but rank 1 posts its receive asynchronously
/// and reads slice 0 before it waits: its read is not after the message.
#[kernel]
fn read_before_the_wait(t: Ptr<f32>, n: usize) {
    if tl::rank() == 0 {
        tl::store(t.offset(0), &tl::full::<f32>([n], 5.0));
        let back = tl::load(t.offset(0), [n]);
        tl::send(1, &back);
    } else if tl::rank() == 1 {
        let f = tl::recv_async::<f32>(0, [n]);
        let seen = tl::load(t.offset(0), [n]);
        let a = tl::wait(f);
        tl::store(t.offset(n), &(a + seen));
    }
}

/// Rank 0 writes slice 0 and reads it back into a message to rank 1; rank 1,
/// once it has it, sends rank 2 a tile of its own; rank 2, once it has that,
/// overwrites slice 0. The chain orders rank 0's store before rank 2's.
#[kernel]
fn ordered_through_a_third_pe(t: Ptr<f32>, n: usize) {
    match tl::rank() {
        0 => {
            tl::store(t.offset(0), &tl::full::<f32>([n], 5.0));
            tl::send(1, &tl::load(t.offset(0), [n]));
        }
        1 => {
            let _ = tl::recv::<f32>(0, [n]);
            tl::send(2, &tl::full::<f32>([n], 1.0));
        }
        _ => {
            let x = tl::recv::<f32>(1, [n]);
            tl::store(t.offset(0), &(x + 2.0));
        }
    }
}

/// As [`ordered_through_a_third_pe`], but rank 1 posts its receive from
/// rank 0 asynchronously and never waits before it sends: nothing orders
/// its send after rank 0's message, so the stores race.
#[kernel]
fn chain_broken_at_the_third_pe(t: Ptr<f32>, n: usize) {
    match tl::rank() {
        0 => {
            tl::store(t.offset(0), &tl::full::<f32>([n], 5.0));
            tl::send(1, &tl::load(t.offset(0), [n]));
        }
        1 => {
            let f = tl::recv_async::<f32>(0, [n]);
            tl::send(2, &tl::full::<f32>([n], 1.0));
            let _ = tl::wait(f);
        }
        _ => {
            let x = tl::recv::<f32>(1, [n]);
            tl::store(t.offset(0), &(x + 2.0));
        }
    }
}

/// Ranks 0 and 1 store to the same region under complementary masks: no
/// element is written by both.
#[kernel]
fn complementary_masks(t: Ptr<f32>, n: usize) {
    let idx = tl::arange(0, n);
    let low = idx.lt((n / 2) as f64);
    let x = tl::full::<f32>([n], tl::rank() as f64 + 1.0);
    if tl::rank() == 0 {
        tl::store_masked(t.offset(0), &x, &low);
    } else if tl::rank() == 1 {
        tl::store_masked(t.offset(0), &x, &idx.ge((n / 2) as f64));
    }
}

/// The line of `needle` in kernel `kernel` of this file.
fn line_of(kernel: &str, needle: &str) -> u32 {
    let text = include_str!("races.rs");
    let head = format!("fn {kernel}(");
    let from = text
        .lines()
        .position(|l| l.starts_with(&head))
        .unwrap_or_else(|| panic!("no kernel {kernel}"));
    let at = text
        .lines()
        .enumerate()
        .skip(from)
        .find(|(_, l)| l.contains(needle))
        .unwrap_or_else(|| panic!("no {needle:?} in {kernel}"))
        .0;
    at as u32 + 1
}

/// Runs `k` on `w` PEs of `tiny` over one buffer of `4 * n` f32 (`n` per
/// rank and spare), with data on or off; the buffer after.
fn run(
    k: &dyn Kernel,
    w: usize,
    n: usize,
    data: bool,
    fabric: FabricModel,
) -> Result<(Vec<PeId>, Vec<f32>), SimError> {
    let topo = Topology::builtin("tiny").unwrap();
    let pes: Vec<PeId> = topo.pes().step_by(2).take(w).collect();
    let mut m = Machine::new(topo).unwrap();
    let buf = m.alloc(DType::F32, 4 * n, &pes).unwrap();
    let args = KernelArgs::new().with("t", buf.ptr()).int("n", n as i64);
    let launch = Launch::new(k, args, pes.clone()).data(data).fabric(fabric);
    simulate(&mut m, &launch)?;
    Ok((pes, m.read_buffer(&buf).unwrap()))
}

fn race(k: &dyn Kernel, w: usize, n: usize, fabric: FabricModel) -> Race {
    match run(k, w, n, true, fabric) {
        Err(SimError::Race(r)) => *r,
        other => panic!("`{}` must race, got {other:?}", k.meta().name),
    }
}

#[test]
fn two_pes_storing_the_same_elements_race() {
    let line = line_of("all_store_one_place", "tl::store(");
    for fabric in FabricModel::ALL {
        let r = race(&all_store_one_place, 4, 64, fabric);
        let (pes, _) = run(&all_store_one_place, 4, 64, false, fabric).unwrap();
        for side in [&r.first, &r.second] {
            assert!(side.write, "{r:?}");
            assert_eq!(side.param, "t");
            assert_eq!(side.elems, (0, 64));
            assert_eq!(side.loc.line, line);
            assert!(side.loc.file.ends_with("races.rs"), "{}", side.loc);
        }
        assert_ne!(r.first.pe, r.second.pe);
        assert!(pes.contains(&r.first.pe) && pes.contains(&r.second.pe));
        let msg = SimError::Race(Box::new(r.clone())).to_string();
        assert!(
            msg.starts_with(&format!(
                "data race: PE {} stores `t` elements 0..64 at {} and PE {} stores them at {}",
                r.first.pe, r.first.loc, r.second.pe, r.second.loc
            )),
            "{msg}"
        );
        assert!(msg.contains("neither ordered before the other"), "{msg}");
        assert!(msg.contains("hint: order them with a message"), "{msg}");
    }
}

#[test]
fn a_load_of_what_another_pe_stores_races() {
    let store = line_of("store_while_loading", "tl::store(t.offset(n)");
    let load = line_of("store_while_loading", "tl::load(");
    for fabric in FabricModel::ALL {
        let r = race(&store_while_loading, 2, 256, fabric);
        let (pes, _) = run(&store_while_loading, 2, 256, false, fabric).unwrap();
        let (w, rd) = if r.first.write {
            (&r.first, &r.second)
        } else {
            (&r.second, &r.first)
        };
        assert!(w.write && !rd.write, "{r:?}");
        assert_eq!((w.pe, w.loc.line), (pes[0], store));
        assert_eq!((rd.pe, rd.loc.line), (pes[1], load));
        // Both name the elements from the parameter's start.
        assert_eq!(w.elems, (256, 512));
        assert_eq!(rd.elems, (256, 512));
        let msg = SimError::Race(Box::new(r.clone())).to_string();
        assert!(
            msg.contains(" loads `t` elements 256..512 at ") || msg.contains(" loads them at "),
            "{msg}"
        );
    }
}

#[test]
fn accesses_ordered_by_messages_do_not_race_and_compute_the_right_values() {
    let n = 128;
    for fabric in FabricModel::ALL {
        let (_, out) = run(&ordered_by_messages, 2, n, true, fabric).unwrap();
        // Slice 1 held zeros when rank 0 read it: 5 + 0 + 5.
        assert!(
            out[n..2 * n].iter().all(|x| *x == 10.0),
            "{:?}",
            &out[n..n + 4]
        );
        assert!(out[..n].iter().all(|x| *x == 5.0));
    }
}

#[test]
fn a_message_that_does_not_depend_on_the_store_does_not_order_it() {
    let store = line_of("message_not_after_the_store", "tl::store(t.offset(0)");
    let load = line_of("message_not_after_the_store", "tl::load(");
    for fabric in FabricModel::ALL {
        let r = race(&message_not_after_the_store, 2, 128, fabric);
        let mut lines = [
            (r.first.write, r.first.loc.line),
            (r.second.write, r.second.loc.line),
        ];
        lines.sort();
        assert_eq!(lines, [(false, load), (true, store)], "{r:?}");
    }
}

#[test]
fn a_read_before_the_wait_is_not_ordered_by_the_message() {
    let load = line_of("read_before_the_wait", "let seen");
    for fabric in FabricModel::ALL {
        let r = race(&read_before_the_wait, 2, 128, fabric);
        let rd = if r.first.write { &r.second } else { &r.first };
        assert_eq!(rd.loc.line, load, "{r:?}");
    }
}

#[test]
fn a_chain_of_messages_through_a_third_pe_orders_the_accesses() {
    let n = 96;
    for fabric in FabricModel::ALL {
        let (_, out) = run(&ordered_through_a_third_pe, 3, n, true, fabric).unwrap();
        assert!(out[..n].iter().all(|x| *x == 3.0), "{:?}", &out[..4]);
        let r = race(&chain_broken_at_the_third_pe, 3, n, fabric);
        let (pes, _) = run(&chain_broken_at_the_third_pe, 3, n, false, fabric).unwrap();
        let mut sides = [r.first.pe, r.second.pe];
        sides.sort();
        assert_eq!(sides, [pes[0], pes[2]], "{r:?}");
        assert!(r.first.write && r.second.write);
    }
}

#[test]
fn stores_under_complementary_masks_do_not_race() {
    let n = 64;
    for fabric in FabricModel::ALL {
        let (_, out) = run(&complementary_masks, 2, n, true, fabric).unwrap();
        assert!(out[..n / 2].iter().all(|x| *x == 1.0));
        assert!(out[n / 2..n].iter().all(|x| *x == 2.0));
    }
}

#[test]
fn a_timing_only_run_checks_nothing() {
    for k in [
        &all_store_one_place as &dyn Kernel,
        &store_while_loading,
        &message_not_after_the_store,
    ] {
        run(k, 2, 64, false, FabricModel::Messages).unwrap();
    }
}

/// Runs `k` as [`run`] does, functionally (program order, no timing).
fn run_functional(k: &dyn Kernel, w: usize, n: usize) -> Result<Vec<f32>, SimError> {
    let topo = Topology::builtin("tiny").unwrap();
    let pes: Vec<PeId> = topo.pes().step_by(2).take(w).collect();
    let mut m = Machine::new(topo).unwrap();
    let buf = m.alloc(DType::F32, 4 * n, &pes).unwrap();
    let args = KernelArgs::new().with("t", buf.ptr()).int("n", n as i64);
    kernbench::core::functional::run(&mut m, &Launch::new(k, args, pes))?;
    Ok(m.read_buffer(&buf).unwrap())
}

#[test]
fn the_functional_run_finds_the_same_races_as_the_timed_run() {
    let racy: [(&dyn Kernel, usize); 5] = [
        (&all_store_one_place, 4),
        (&store_while_loading, 2),
        (&message_not_after_the_store, 2),
        (&read_before_the_wait, 2),
        (&chain_broken_at_the_third_pe, 3),
    ];
    for (k, w) in racy {
        let name = &k.meta().name;
        let timed = race(k, w, 64, FabricModel::Messages);
        let functional = match run_functional(k, w, 64) {
            Err(SimError::Race(r)) => *r,
            other => panic!("`{name}` must race functionally, got {other:?}"),
        };
        // The same two accesses, whichever of them ran second.
        let key = |r: &Race| {
            let mut s = [
                (r.first.pe, r.first.loc.line, r.first.write, r.first.elems),
                (
                    r.second.pe,
                    r.second.loc.line,
                    r.second.write,
                    r.second.elems,
                ),
            ];
            s.sort();
            s
        };
        assert_eq!(key(&functional), key(&timed), "{name}");
    }
    for (k, w) in [
        (&ordered_by_messages as &dyn Kernel, 2),
        (&ordered_through_a_third_pe, 3),
        (&complementary_masks, 2),
    ] {
        let name = &k.meta().name;
        let out = run_functional(k, w, 64).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (_, timed) = run(k, w, 64, true, FabricModel::Messages).unwrap();
        assert_eq!(out, timed, "{name}");
    }
}
