//! Snapshots of the command graphs of the shipped kernels, and of the tile
//! and TCM plans they lower to: how kernel authors review a change.

use kernbench::ccl::algorithms::{recursive_doubling, ring_allreduce, tree_allreduce};
use kernbench::core::sim::{simulate_full, Launch};
use kernbench::kernels::*;
use kernbench::prelude::*;
use kernbench::tl::Kernel;

const VA: u64 = 0x1000_0000_0000;

fn ptr(k: u64, dtype: DType, len: usize) -> ArgValue {
    ArgValue::Ptr {
        va: VA + (k << 32),
        dtype,
        len,
    }
}

fn tensor(k: u64, dtype: DType, rows: usize, cols: usize) -> ArgValue {
    ArgValue::Tensor {
        va: VA + (k << 32),
        dtype,
        shape: [rows, cols],
    }
}

fn graph(k: &dyn Kernel, args: KernelArgs, grid: &[u32], pid: &[u32]) -> String {
    kernbench::tl::trace(k, &args, grid, pid).unwrap().to_text()
}

#[test]
fn hello_send_graph() {
    let args = KernelArgs::new()
        .with("t", ptr(0, DType::F16, 16 * 1024))
        .int("n_elem", 1024);
    let text = graph(&hello_send, args, &[8, 2], &[3, 1]);
    assert!(text.contains("send E %0 : 2048 B"));
    insta::assert_snapshot!(text);
}

#[test]
fn vector_add_graphs() {
    let args = |_| {
        KernelArgs::new()
            .with("x", ptr(0, DType::F32, 4000))
            .with("y", ptr(1, DType::F32, 4000))
            .with("z", ptr(2, DType::F32, 4000))
            .int("n", 4000)
            .int("block", 1024)
    };
    // A full block, and the short last one.
    insta::assert_snapshot!("vector_add_pid0", graph(&vector_add, args(0), &[4], &[0]));
    insta::assert_snapshot!("vector_add_pid3", graph(&vector_add, args(3), &[4], &[3]));
}

#[test]
fn gemm_graphs() {
    let (m, k, n) = (128, 256, 64);
    let args = KernelArgs::new()
        .with("a", tensor(0, DType::F16, m, k))
        .with("b", tensor(1, DType::F16, k, n))
        .with("c", tensor(2, DType::F32, m, n));
    insta::assert_snapshot!("gemm_f16", graph(&gemm, args.clone(), &[1], &[0]));
    let args = args.with("bias", ptr(3, DType::F32, n)).float("scale", 0.5);
    insta::assert_snapshot!(
        "gemm_bias_relu_f16",
        graph(&gemm_bias_relu, args, &[1], &[0])
    );
    let args = KernelArgs::new()
        .with("a", tensor(0, DType::F16, 128, 128))
        .with("b", tensor(1, DType::F16, 128, 128))
        .with("c", tensor(2, DType::F32, 128, 128))
        .int("bm", 64)
        .int("bn", 64)
        .int("bk", 64);
    insta::assert_snapshot!("gemm_blocked", graph(&gemm_blocked, args, &[2, 2], &[1, 0]));
}

#[test]
fn softmax_graph() {
    let args = KernelArgs::new()
        .with("x", tensor(0, DType::F32, 100, 64))
        .with("y", tensor(1, DType::F32, 100, 64))
        .int("rows", 32);
    insta::assert_snapshot!(graph(&softmax_rows, args, &[4], &[3]));
}

#[test]
fn row_kernel_graphs() {
    // Statistics broadcast over their rows: no ones-matrix product (no `dot`).
    let rows = |d: DType| {
        KernelArgs::new()
            .with("x", tensor(0, d, 10, 64))
            .with("y", tensor(1, d, 10, 64))
            .int("rows", 4)
    };
    insta::assert_snapshot!("softmax_f16", graph(&softmax, rows(DType::F16), &[3], &[2]));
    let args = rows(DType::F16)
        .with("w", ptr(2, DType::F16, 64))
        .with("b", ptr(3, DType::F16, 64))
        .float("eps", 1e-5);
    insta::assert_snapshot!("layernorm_f16", graph(&layernorm, args, &[3], &[0]));
    let args = rows(DType::F32)
        .with("w", ptr(2, DType::F32, 64))
        .float("eps", 1e-6);
    insta::assert_snapshot!("rmsnorm_f32", graph(&rmsnorm, args, &[3], &[1]));
}

#[test]
fn flash_attention_graph() {
    // Query rows 16..32 against key blocks of 8: blocks 0 and 1 lie below
    // the diagonal and need no mask; blocks 2 and 3 cross it.
    let t = |k| tensor(k, DType::F16, 40, 16);
    let args = KernelArgs::new()
        .with("q", t(0))
        .with("k", t(1))
        .with("v", t(2))
        .with("o", t(3))
        .float("scale", 0.25)
        .int("bm", 16)
        .int("bn", 8);
    let text = graph(&flash_attention, args, &[3], &[1]);
    assert_eq!(text.matches(" trans ").count(), 4, "{text}");
    assert_eq!(text.matches(" where ").count(), 2, "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn collective_graphs() {
    let args = KernelArgs::new()
        .with("buf", ptr(0, DType::F32, 3 * 10))
        .int("n", 10)
        .int("seg", 2)
        .int("op", 0);
    insta::assert_snapshot!(
        "ring_allreduce_w3_rank1",
        graph(&ring_allreduce, args, &[3], &[1])
    );
    let args = KernelArgs::new()
        .with("buf", ptr(0, DType::F16, 5 * 8))
        .int("n", 8)
        .int("seg", 4)
        .int("op", 0);
    insta::assert_snapshot!(
        "tree_allreduce_w5_rank1",
        graph(&tree_allreduce, args, &[5], &[1])
    );
}

#[test]
fn rank_addressed_graphs() {
    // Six ranks: 0 and 2 fold into 1 and 3; virtual ranks 0..4 are 1, 3, 4, 5.
    let args = || {
        KernelArgs::new()
            .with("buf", ptr(0, DType::F32, 6 * 8))
            .int("n", 8)
            .int("seg", 4)
            .int("op", 0)
    };
    let folded = graph(&recursive_doubling, args(), &[6], &[2]);
    assert!(folded.contains("send rank 3 %0 : 16 B"), "{folded}");
    insta::assert_snapshot!("recursive_doubling_w6_rank2", folded);
    let virt = graph(&recursive_doubling, args(), &[6], &[3]);
    for peer in ["rank 2", "rank 1", "rank 5"] {
        assert!(virt.contains(&format!("{peer} : tile")), "{virt}");
    }
    insta::assert_snapshot!("recursive_doubling_w6_rank3", virt);
}

fn plan(k: &dyn Kernel, args: impl Fn(&mut Machine, PeId) -> KernelArgs) -> String {
    let mut m = Machine::new(Topology::embedded_default()).unwrap();
    let pe = PeId::new(0, 0, 0);
    let args = args(&mut m, pe);
    let out = simulate_full(
        &mut m,
        &Launch::new(k, args, vec![pe]).data(false).keep_graphs(true),
    )
    .unwrap();
    out.programs[0].to_text(&out.graphs[0])
}

#[test]
fn gemm_tile_plan() {
    let text = plan(&gemm_bias_relu, |m, pe| {
        let (mm, k, n) = (256, 256, 128);
        let a = m.alloc(DType::F16, mm * k, &[pe]).unwrap();
        let b = m.alloc(DType::F16, k * n, &[pe]).unwrap();
        let bias = m.alloc(DType::F32, n, &[pe]).unwrap();
        let c = m.alloc(DType::F32, mm * n, &[pe]).unwrap();
        KernelArgs::new()
            .with("a", a.tensor(mm, k).unwrap())
            .with("b", b.tensor(k, n).unwrap())
            .with("bias", bias.ptr())
            .with("c", c.tensor(mm, n).unwrap())
            .float("scale", 1.0)
    });
    // ceil(256/128) * ceil(256/128) * ceil(128/128) = 4 GEMM steps.
    assert_eq!(text.matches(" GEMM ").count(), 4);
    insta::assert_snapshot!(text);
}

#[test]
fn vector_add_tile_plan() {
    let text = plan(&vector_add, |m, pe| {
        let n = 20_000;
        let b: Vec<_> = (0..3)
            .map(|_| m.alloc(DType::F32, n, &[pe]).unwrap())
            .collect();
        KernelArgs::new()
            .with("x", b[0].ptr())
            .with("y", b[1].ptr())
            .with("z", b[2].ptr())
            .int("n", n as i64)
            .int("block", n as i64)
    });
    insta::assert_snapshot!(text);
}

#[test]
fn gemm_report() {
    let mut m = Machine::new(Topology::embedded_default()).unwrap();
    let pe = PeId::new(0, 0, 0);
    let (mm, k, n) = (128, 256, 128);
    let a = m.alloc(DType::F16, mm * k, &[pe]).unwrap();
    let b = m.alloc(DType::F16, k * n, &[pe]).unwrap();
    let c = m.alloc(DType::F32, mm * n, &[pe]).unwrap();
    let args = KernelArgs::new()
        .with("a", a.tensor(mm, k).unwrap())
        .with("b", b.tensor(k, n).unwrap())
        .with("c", c.tensor(mm, n).unwrap());
    let out = simulate_full(&mut m, &Launch::new(&gemm, args, vec![pe]).data(false)).unwrap();
    insta::assert_snapshot!(out.report.to_string());
}
