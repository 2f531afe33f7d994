//! Epilogue fusion on a Triton-style tiled GEMM with a bias, a ReLU and a
//! cast to f16 written as separate elementwise commands: the graph before and
//! after the pass, the numbers against ndarray, and the time it saves.

use kernbench::core::passes::fuse_epilogues;
use kernbench::core::sim::simulate_full;
use kernbench::prelude::*;

/// Instance `(i, j)` computes the `bm x bn` block of
/// `c = relu(a x b + bias)` in f16, accumulating over `bk`-wide slices.
#[kernel]
fn tiled_gemm_bias_relu(
    a: Tensor<f16>,
    b: Tensor<f16>,
    bias: Ptr<f32>,
    c: Tensor<f16>,
    #[constexpr] bm: usize,
    #[constexpr] bn: usize,
    #[constexpr] bk: usize,
) {
    let (i, j) = (tl::program_id(0), tl::program_id(1));
    let bias = tl::load(bias.offset(j * bn), [bn]);
    let mut acc = tl::zeros::<f32>([bm, bn]);
    for k in 0..tl::cdiv(a.cols(), bk) {
        let x = tl::load(a.block([i * bm, k * bk], [bm, bk]), [bm, bk]);
        let y = tl::load(b.block([k * bk, j * bn], [bk, bn]), [bk, bn]);
        acc = tl::dot_acc(&x, &y, &acc);
    }
    let out = tl::relu(&(acc + bias)).cast::<f16>();
    tl::store(c.block([i * bm, j * bn], [bm, bn]), &out);
}

const VA: u64 = 0x1000_0000_0000;

fn graph_args(m: usize, k: usize, n: usize) -> KernelArgs {
    KernelArgs::new()
        .with(
            "a",
            ArgValue::Tensor {
                va: VA,
                dtype: DType::F16,
                shape: [m, k],
            },
        )
        .with(
            "b",
            ArgValue::Tensor {
                va: VA + (1 << 32),
                dtype: DType::F16,
                shape: [k, n],
            },
        )
        .with(
            "bias",
            ArgValue::Ptr {
                va: VA + (2 << 32),
                dtype: DType::F32,
                len: n,
            },
        )
        .with(
            "c",
            ArgValue::Tensor {
                va: VA + (3 << 32),
                dtype: DType::F16,
                shape: [m, n],
            },
        )
        .int("bm", 64)
        .int("bn", 64)
        .int("bk", 64)
}

#[test]
fn the_tail_folds_into_the_last_gemm_of_the_loop() {
    let g = kernbench_tl::trace(
        &tiled_gemm_bias_relu,
        &graph_args(128, 128, 128),
        &[2, 2],
        &[1, 1],
    )
    .unwrap();
    insta::assert_snapshot!("tiled_gemm_bias_relu_traced", g.to_text());
    let fused = fuse_epilogues(g.clone(), Topology::embedded_default().pe_spec());
    insta::assert_snapshot!("tiled_gemm_bias_relu_fused", fused.to_text());
    assert_eq!(fused.len(), g.len() - 3, "add, relu and cast fold away");
    let text = fused.to_text();
    assert!(
        text.contains("epilogue[bias(%0), relu, cast(f16)] : tile<f16,[64,64]>"),
        "{text}"
    );
    assert!(
        !text.contains(" add ") && !text.contains(" relu %"),
        "{text}"
    );
}

/// Random-ish small integers, exact in f16.
fn values(n: usize, seed: usize, span: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7 + seed * 13) % span) as f32 - (span / 2) as f32)
        .collect()
}

struct Run {
    out: Vec<f32>,
    report: kernbench::core::sim::Report,
}

fn run(fuse: bool, (m, k, n): (usize, usize, usize), tile: usize) -> (Run, Vec<f32>) {
    let topo = Topology::embedded_default();
    let pes: Vec<PeId> = topo.pes().take(4).collect();
    let mut mach = Machine::new(topo).unwrap();
    let a = mach.alloc(DType::F16, m * k, &pes).unwrap();
    let b = mach.alloc(DType::F16, k * n, &pes).unwrap();
    let bias = mach.alloc(DType::F32, n, &pes).unwrap();
    let c = mach.alloc(DType::F16, m * n, &pes).unwrap();
    let (av, bv) = (values(m * k, 1, 9), values(k * n, 2, 7));
    // Fractions that round differently in f16 than in f32 once summed.
    let biasv: Vec<f32> = (0..n).map(|j| (j % 11) as f32 * 0.3 - 1.1).collect();
    mach.write_buffer(&a, &av).unwrap();
    mach.write_buffer(&b, &bv).unwrap();
    mach.write_buffer(&bias, &biasv).unwrap();
    let args = KernelArgs::new()
        .with("a", a.tensor(m, k).unwrap())
        .with("b", b.tensor(k, n).unwrap())
        .with("bias", bias.ptr())
        .with("c", c.tensor(m, n).unwrap())
        .int("bm", tile as i64)
        .int("bn", tile as i64)
        .int("bk", tile as i64);
    let grid = [(m / tile) as u32, (n / tile) as u32];
    let launch = Launch::new(&tiled_gemm_bias_relu, args, pes)
        .grid(&grid)
        .fuse(fuse);
    let report = simulate(&mut mach, &launch).unwrap();
    let out = mach.read_buffer(&c).unwrap();
    // The reference: ndarray in f32, the bias added, ReLU, rounded to f16.
    let a2 = ndarray::Array2::from_shape_vec((m, k), av).unwrap();
    let b2 = ndarray::Array2::from_shape_vec((k, n), bv).unwrap();
    let p = a2.dot(&b2);
    let want: Vec<f32> = (0..m * n)
        .map(|x| {
            let v = (p[[x / n, x % n]] + biasv[x % n]).max(0.0);
            half::f16::from_f32(v).to_f32()
        })
        .collect();
    (Run { out, report }, want)
}

#[test]
fn fused_and_unfused_compute_what_ndarray_computes() {
    let shape = (128, 192, 128);
    let (fused, want) = run(true, shape, 64);
    let (plain, _) = run(false, shape, 64);
    assert_eq!(fused.out, want, "fused result differs from ndarray");
    assert_eq!(plain.out, want, "unfused result differs from ndarray");
}

/// Blocks of 256 x 256 on a PE whose GEMM tile is 128: four output tiles
/// an instance, each tile's epilogue overlapping the next tile's GEMM steps.
#[test]
fn the_fused_kernel_is_faster() {
    let shape = (512, 256, 512);
    let (fused, want) = run(true, shape, 256);
    let (plain, _) = run(false, shape, 256);
    assert_eq!(fused.out, want, "fused result differs from ndarray");
    assert_eq!(plain.out, want, "unfused result differs from ndarray");
    let (tf, tp) = (fused.report.sim_ps(), plain.report.sim_ps());
    assert!(tf < tp, "fused {tf} ps is not faster than unfused {tp} ps");
    // The same GEMM and MATH work either way: the tail's passes run in the
    // epilogue, per output tile.
    assert_eq!(fused.report.flops(), plain.report.flops());
    let math = |r: &kernbench::core::sim::Report| r.pes.iter().map(|p| p.busy.math).sum::<u64>();
    assert_eq!(math(&fused.report), math(&plain.report));
}

#[test]
fn a_run_simulates_the_fused_graph_and_can_keep_the_traced_one() {
    let topo = Topology::embedded_default();
    let pe = topo.pes().next().unwrap();
    let mut mach = Machine::new(topo).unwrap();
    let (m, k, n) = (64, 64, 64);
    let a = mach.alloc(DType::F16, m * k, &[pe]).unwrap();
    let b = mach.alloc(DType::F16, k * n, &[pe]).unwrap();
    let bias = mach.alloc(DType::F32, n, &[pe]).unwrap();
    let c = mach.alloc(DType::F16, m * n, &[pe]).unwrap();
    let args = KernelArgs::new()
        .with("a", a.tensor(m, k).unwrap())
        .with("b", b.tensor(k, n).unwrap())
        .with("bias", bias.ptr())
        .with("c", c.tensor(m, n).unwrap())
        .int("bm", 64)
        .int("bn", 64)
        .int("bk", 32);
    let launch = |fuse| {
        Launch::new(&tiled_gemm_bias_relu, args.clone(), vec![pe])
            .keep_graphs(true)
            .data(false)
            .fuse(fuse)
    };
    let fused = simulate_full(&mut mach, &launch(true)).unwrap();
    let plain = simulate_full(&mut mach, &launch(false)).unwrap();
    let count = |o: &kernbench::core::sim::Outcome, what: &str| {
        o.graphs[0]
            .nodes()
            .filter(|(_, n)| n.cmd.mnemonic() == what)
            .count()
    };
    assert_eq!(count(&plain, "relu"), 1);
    assert_eq!(count(&fused, "relu"), 0);
    assert_eq!(count(&fused, "cast"), 0);
    assert_eq!(count(&fused, "dot"), 2);
    assert_eq!(fused.graphs[0].len() + 3, plain.graphs[0].len());
}

/// `c = gelu(a x b + bias)` in f32 on one `m x n` block, the tail written as
/// separate commands.
#[kernel]
fn gemm_bias_gelu(a: Tensor<f32>, b: Tensor<f32>, bias: Ptr<f32>, c: Tensor<f32>) {
    let (m, k, n) = (a.rows(), a.cols(), b.cols());
    let x = tl::load(a.all(), [m, k]);
    let y = tl::load(b.all(), [k, n]);
    let bias = tl::load(bias, [n]);
    tl::store(c.all(), &tl::gelu(&(tl::dot(&x, &y) + bias)));
}

#[test]
fn gelu_folds_into_the_epilogue_with_the_same_numbers_and_math_work() {
    let (m, k, n) = (256, 64, 256);
    let topo = Topology::embedded_default();
    let pe = topo.pes().next().unwrap();
    let run = |fuse: bool| {
        let mut mach = Machine::new(topo.clone()).unwrap();
        let a = mach.alloc(DType::F32, m * k, &[pe]).unwrap();
        let b = mach.alloc(DType::F32, k * n, &[pe]).unwrap();
        let bias = mach.alloc(DType::F32, n, &[pe]).unwrap();
        let c = mach.alloc(DType::F32, m * n, &[pe]).unwrap();
        let av: Vec<f32> = values(m * k, 1, 9).iter().map(|v| v * 0.05).collect();
        let bv: Vec<f32> = values(k * n, 2, 7).iter().map(|v| v * 0.05).collect();
        let biasv: Vec<f32> = (0..n).map(|j| (j % 11) as f32 * 0.3 - 1.5).collect();
        mach.write_buffer(&a, &av).unwrap();
        mach.write_buffer(&b, &bv).unwrap();
        mach.write_buffer(&bias, &biasv).unwrap();
        let args = KernelArgs::new()
            .with("a", a.tensor(m, k).unwrap())
            .with("b", b.tensor(k, n).unwrap())
            .with("bias", bias.ptr())
            .with("c", c.tensor(m, n).unwrap());
        let launch = Launch::new(&gemm_bias_gelu, args, vec![pe])
            .keep_graphs(true)
            .fuse(fuse);
        let out = simulate_full(&mut mach, &launch).unwrap();
        let got = mach.read_buffer(&c).unwrap();
        // The host: f64 products of the same inputs, GELU by the tanh formula.
        let a2 = ndarray::Array2::from_shape_fn((m, k), |(i, j)| f64::from(av[i * k + j]));
        let b2 = ndarray::Array2::from_shape_fn((k, n), |(i, j)| f64::from(bv[i * n + j]));
        let p = a2.dot(&b2);
        let kk = (2.0 / std::f64::consts::PI).sqrt();
        for (x, g) in got.iter().enumerate() {
            let v = p[[x / n, x % n]] + f64::from(biasv[x % n]);
            let want = 0.5 * v * (1.0 + (kk * (v + 0.044715 * v * v * v)).tanh());
            let err = (f64::from(*g) - want).abs();
            assert!(
                err <= 1e-5 * (1.0 + want.abs()),
                "fuse {fuse}: c[{x}] = {g}, want {want}"
            );
        }
        (got, out)
    };
    let (fused, f) = run(true);
    let (plain, p) = run(false);
    assert_eq!(
        fused, plain,
        "the epilogue computes what the commands do, bit for bit"
    );
    let text = f.graphs[0].to_text();
    assert!(text.contains("epilogue[bias(%"), "{text}");
    assert!(text.contains("gelu] : tile<f32,[256,256]>"), "{text}");
    assert!(
        !p.graphs[0].to_text().contains("epilogue[bias"),
        "unfused keeps its tail"
    );
    // The epilogue's GELU step costs what the gelu command costs: the same
    // MATH work either way.
    let math = |r: &kernbench::core::sim::Report| r.pes.iter().map(|p| p.busy.math).sum::<u64>();
    assert_eq!(math(&f.report), math(&p.report));
    assert!(f.report.sim_ps() < p.report.sim_ps());
}
