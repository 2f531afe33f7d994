//! Instances whose graphs differ only in addresses and peers share one
//! lowering, with each DMA resolved again on the instance's own regions.
//! The shared path must give every instance exactly what lowering it on
//! its own gives: local and remote DMAs, streamed GEMM operands, blocks at
//! other origins, and an instance whose memory is of another kind.

use kernbench::core::passes::bound_programs;
use kernbench::core::sim::Launch;
use kernbench::kernels::{gemm, gemm_blocked};
use kernbench::prelude::*;

mod common;

/// Compiles `launch` both ways and compares every instance.
fn agree(m: &Machine, launch: &Launch, what: &str) {
    let shared = bound_programs(m, launch, false).unwrap();
    let each = bound_programs(m, launch, true).unwrap();
    assert_eq!(shared.1, each.1, "{what}: route ends");
    assert_eq!(shared.0.len(), each.0.len());
    for (i, (a, b)) in shared.0.iter().zip(&each.0).enumerate() {
        assert!(a == b, "{what}: instance {i}'s program differs");
    }
}

fn pes(m: &Machine, n: usize) -> Vec<PeId> {
    m.topology().pes().take(n).collect()
}

#[test]
fn vector_add_homed_on_one_pe_mixes_local_and_remote_dmas() {
    let mut m = Machine::new(Topology::embedded_default()).unwrap();
    let pes = pes(&m, 8);
    let (block, n) = (4096, 4096 * 8);
    // Every buffer in the sixth PE's slice: that PE reads its HBM, the
    // others reach it. The first ranks lower a program whose DMAs are
    // remote, so the sixth finds a template whose sites it resolves
    // otherwise and must be lowered on its own.
    let bufs: Vec<_> = (0..3)
        .map(|_| common::homed(&mut m, n, &pes, pes[5]))
        .collect();
    agree(
        &m,
        &common::vector_add_on(&bufs, n, block, pes),
        "vector_add homed",
    );
}

#[test]
fn vector_add_on_its_own_shards() {
    let mut m = Machine::new(Topology::embedded_default()).unwrap();
    let pes = pes(&m, 16);
    let n = 4000 * 16;
    let bufs: Vec<_> = (0..3)
        .map(|_| m.alloc(DType::F32, n, &pes).unwrap())
        .collect();
    agree(
        &m,
        &common::vector_add_on(&bufs, n, 4000, pes),
        "vector_add sharded",
    );
}

#[test]
fn streamed_and_blocked_gemms() {
    let mut m = Machine::new(Topology::embedded_default()).unwrap();
    let pes = pes(&m, 4);
    let (rows, k, cols) = (128, 256, 128);
    let a = m.alloc(DType::F16, rows * k, &pes).unwrap();
    let b = m.alloc(DType::F16, k * cols, &pes).unwrap();
    let c = m.alloc(DType::F32, rows * cols, &pes).unwrap();
    // Every PE streams the whole of `a` and `b`, a part of them its own.
    let args = KernelArgs::new()
        .with("a", a.tensor(rows, k).unwrap())
        .with("b", b.tensor(k, cols).unwrap())
        .with("c", c.tensor(rows, cols).unwrap());
    let launch = Launch::new(&gemm, args, pes.clone()).data(false);
    agree(&m, &launch, "gemm streamed");
    // Instance (i, j) loads blocks at its own origins.
    let args = KernelArgs::new()
        .with("a", a.tensor(rows, k).unwrap())
        .with("b", b.tensor(k, cols).unwrap())
        .with("c", c.tensor(rows, cols).unwrap())
        .int("bm", 64)
        .int("bn", 64)
        .int("bk", 64);
    let launch = Launch::new(&gemm_blocked, args, pes)
        .grid(&[2, 2])
        .data(false);
    agree(&m, &launch, "gemm_blocked");
}
