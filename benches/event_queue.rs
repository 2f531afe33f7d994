//! The engine's event queue against `BinaryHeap` and a 4-ary heap, on the
//! mix of pushes and pops recorded from real runs: a ring all-reduce on the
//! default machine in both fabric models (the message model's mix has fewer,
//! farther-apart events; the slot model's is dense in near-future events).
//!
//! Run: `cargo bench --bench event_queue`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kernbench::ccl::run::{event_mix, RunSpec};
use kernbench::ccl::Registry;
use kernbench::core::sim::queue::{MixOp, QuaternaryHeap, RadixHeap};
use kernbench::core::sim::FabricModel;
use kernbench::prelude::*;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hint::black_box;

fn mix(fabric: FabricModel) -> Vec<MixOp> {
    let topo = Topology::embedded_default();
    let mut algo = Registry::builtin().get("ring_allreduce").unwrap().clone();
    algo.seg_bytes = 64 << 10;
    let spec = RunSpec::timing((1 << 20) / 4, DType::F32, fabric);
    event_mix(&topo, &algo, &spec).expect("the benchmark run succeeds")
}

/// An event as large as the engine's: it packs each event (an op of an
/// instance, or a channel) into one word.
type Payload = u64;

/// `BinaryHeap` with the sequence number it needs for FIFO ties.
type StdQueue = (BinaryHeap<Reverse<(u64, u64, Payload)>>, u64);

/// Replays a mix; returns a checksum of the popped events so nothing is optimised away.
fn replay<Q>(
    ops: &[MixOp],
    mut q: Q,
    push: impl Fn(&mut Q, u64, Payload),
    pop: impl Fn(&mut Q) -> Option<(u64, Payload)>,
) -> u64 {
    let (mut now, mut seq, mut sum) = (0u64, 0u64, 0u64);
    for op in ops {
        match *op {
            MixOp::Push(d) => {
                seq = seq.wrapping_add(1);
                push(&mut q, now + d, seq);
            }
            MixOp::Pop => {
                if let Some((t, e)) = pop(&mut q) {
                    now = t;
                    sum = sum.wrapping_add(t ^ e);
                }
            }
        }
    }
    sum
}

fn queues(c: &mut Criterion) {
    for fabric in FabricModel::ALL {
        let ops = mix(fabric);
        let mut g = c.benchmark_group(format!("event_queue/{fabric}"));
        g.throughput(Throughput::Elements(ops.len() as u64));
        g.sample_size(20);
        g.bench_with_input(
            BenchmarkId::new("binary_heap", ops.len()),
            &ops,
            |b, ops| {
                b.iter(|| {
                    let push = |(q, seq): &mut StdQueue, t, e| {
                        *seq += 1;
                        q.push(Reverse((t, *seq, e)));
                    };
                    let pop = |(q, _): &mut StdQueue| q.pop().map(|Reverse((t, _, e))| (t, e));
                    black_box(replay(ops, (BinaryHeap::new(), 0u64), push, pop))
                })
            },
        );
        g.bench_with_input(
            BenchmarkId::new("quaternary_heap", ops.len()),
            &ops,
            |b, ops| {
                b.iter(|| {
                    black_box(replay(
                        ops,
                        QuaternaryHeap::new(),
                        |q, t, e| q.push(t, e),
                        |q| q.pop(),
                    ))
                })
            },
        );
        g.bench_with_input(BenchmarkId::new("radix_heap", ops.len()), &ops, |b, ops| {
            b.iter(|| {
                black_box(replay(
                    ops,
                    RadixHeap::new(),
                    |q, t, e| q.push(t, e),
                    |q| q.pop(),
                ))
            })
        });
        g.finish();
    }
}

criterion_group!(benches, queues);
criterion_main!(benches);
