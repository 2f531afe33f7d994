//! The simulated PE against analytic bounds, and its errors.

use kernbench::core::ir::{BoundsError, TraceErrorKind};
use kernbench::core::machine::{MemError, ParamBuffer};
use kernbench::core::sim::{simulate, simulate_full, Launch, SimError, TcmError};
use kernbench::core::Ps;
use kernbench::kernels::{gemm, gemm_bias_relu, vector_add};
use kernbench::prelude::*;

fn one_pe() -> (Machine, PeId) {
    let m = Machine::new(Topology::embedded_default()).unwrap();
    (m, PeId::new(0, 0, 0))
}

/// `vector_add` over `n` f32 in one block, its three buffers on `pe`.
fn vector_add_args(m: &mut Machine, pe: PeId, n: usize) -> KernelArgs {
    let b: Vec<_> = (0..3)
        .map(|_| m.alloc(DType::F32, n, &[pe]).unwrap())
        .collect();
    vector_add::args()
        .x(&b[0])
        .y(&b[1])
        .z(&b[2])
        .n(n)
        .block(n)
        .into()
}

fn gemm_launch(m: &mut Machine, pe: PeId, (mm, k, n): (usize, usize, usize)) -> KernelArgs {
    let a = m.alloc(DType::F16, mm * k, &[pe]).unwrap();
    let b = m.alloc(DType::F16, k * n, &[pe]).unwrap();
    let c = m.alloc(DType::F32, mm * n, &[pe]).unwrap();
    gemm::args()
        .a(a.view(mm, k).unwrap())
        .b(b.view(k, n).unwrap())
        .c(c.view(mm, n).unwrap())
        .into()
}

#[test]
fn compute_bound_gemm_lands_within_5_percent_of_peak() {
    let (mut m, pe) = one_pe();
    let (mm, k, n) = (1024, 1024, 1024);
    let args = gemm_launch(&mut m, pe, (mm, k, n));
    let r = simulate(&mut m, &Launch::new(&gemm, args, vec![pe]).data(false)).unwrap();
    let peak = m.topology().pe_spec().gemm_flops_per_ns(2);
    let bound = 2.0 * (mm * n * k) as f64 / peak;
    let t = r.sim_ns();
    assert!(t >= bound, "{t} ns is below the compute bound {bound} ns");
    assert!(
        t <= bound * 1.05,
        "{t} ns is more than 5% above the compute bound {bound} ns"
    );
    assert_eq!(r.flops(), 2 * (mm * n * k) as u64);
}

#[test]
fn memory_bound_vector_add_lands_within_5_percent_of_bandwidth() {
    let (mut m, pe) = one_pe();
    let n = 1 << 20;
    let args = vector_add_args(&mut m, pe, n);
    let r = simulate(
        &mut m,
        &Launch::new(&vector_add, args, vec![pe]).data(false),
    )
    .unwrap();
    let bytes = 3.0 * 4.0 * n as f64;
    let bound = bytes / m.topology().pe_spec().hbm_effective_gbps();
    let t = r.sim_ns();
    assert_eq!(r.hbm_bytes(), bytes as u64);
    assert!(
        t >= bound && t <= bound * 1.05,
        "{t} ns vs memory bound {bound} ns"
    );
}

#[test]
fn stages_overlap_in_a_tiled_gemm() {
    let (mut m, pe) = one_pe();
    let args = gemm_launch(&mut m, pe, (512, 512, 512));
    let r = simulate(&mut m, &Launch::new(&gemm, args, vec![pe]).data(false)).unwrap();
    let p = &r.pes[0];
    let stages = p.busy.dma_in + p.busy.gemm + p.busy.math + p.busy.dma_wb;
    assert!(
        r.sim_ps() < stages,
        "simulated {} ps is not less than the stages' sum {stages} ps",
        r.sim_ps()
    );
    assert!(p.busy.dma_in > 0 && p.busy.dma_wb > 0 && p.busy.gemm > 0);
}

#[test]
fn gemm_with_epilogue_computes_what_ndarray_computes() {
    let (mut m, pe) = one_pe();
    let (mm, k, n) = (96, 160, 136);
    let a = m.alloc(DType::F16, mm * k, &[pe]).unwrap();
    let b = m.alloc(DType::F16, k * n, &[pe]).unwrap();
    let bias = m.alloc(DType::F32, n, &[pe]).unwrap();
    let c = m.alloc(DType::F32, mm * n, &[pe]).unwrap();
    let av: Vec<f32> = (0..mm * k).map(|i| ((i * 7) % 11) as f32 - 5.0).collect();
    let bv: Vec<f32> = (0..k * n).map(|i| ((i * 3) % 7) as f32 - 3.0).collect();
    let biasv: Vec<f32> = (0..n).map(|i| (i % 5) as f32 - 2.0).collect();
    m.write_buffer(&a, &av).unwrap();
    m.write_buffer(&b, &bv).unwrap();
    m.write_buffer(&bias, &biasv).unwrap();
    let args = KernelArgs::new()
        .with("a", a.tensor(mm, k).unwrap())
        .with("b", b.tensor(k, n).unwrap())
        .with("bias", bias.ptr())
        .with("c", c.tensor(mm, n).unwrap())
        .float("scale", 0.5);
    simulate(&mut m, &Launch::new(&gemm_bias_relu, args, vec![pe])).unwrap();
    let got = m.read_buffer(&c).unwrap();
    let a2 = ndarray::Array2::from_shape_vec((mm, k), av).unwrap();
    let b2 = ndarray::Array2::from_shape_vec((k, n), bv).unwrap();
    let want = a2.dot(&b2);
    let mut wrong = 0;
    for i in 0..mm {
        for j in 0..n {
            let w = (0.5 * want[[i, j]] + biasv[j]).max(0.0);
            if got[i * n + j] != w {
                wrong += 1;
            }
        }
    }
    assert_eq!(
        wrong, 0,
        "{wrong} elements differ from the ndarray reference"
    );
}

#[test]
fn data_execution_changes_no_simulated_time() {
    let run = |data: bool| {
        let (mut m, pe) = one_pe();
        let args = gemm_launch(&mut m, pe, (128, 256, 128));
        simulate(&mut m, &Launch::new(&gemm, args, vec![pe]).data(data)).unwrap()
    };
    assert_eq!(run(true), run(false));
}

#[test]
fn tcm_overflow_names_the_kernel_line() {
    let (mut m, pe) = one_pe();
    let n = 2 << 20; // three 8 MiB tiles do not fit 16 MiB of TCM
    let args = vector_add_args(&mut m, pe, n);
    let err = simulate(
        &mut m,
        &Launch::new(&vector_add, args, vec![pe]).data(false),
    )
    .unwrap_err();
    // x and y hold all 16 MiB while z = x + y is placed.
    let SimError::Tcm {
        pe: at,
        err:
            TcmError::NoRoom {
                bytes,
                free,
                tcm_bytes,
                held,
                ..
            },
        ..
    } = err
    else {
        panic!("expected no room in TCM: {err}");
    };
    assert_eq!(at, pe);
    assert_eq!(
        (bytes, free, held, tcm_bytes),
        (8 << 20, 0, 16 << 20, 16 << 20)
    );
    let msg = err.to_string();
    assert!(msg.contains("kernels.rs:"), "{msg}");
    assert!(msg.contains("TCM overflow"), "{msg}");
    assert!(
        msg.contains("needs 8388608 B; 0 B of 16777216 B are free, 16777216 B held by live tiles"),
        "{msg}"
    );
}

#[test]
fn a_tile_larger_than_the_tcm_is_refused_before_it_is_cut() {
    let (mut m, pe) = one_pe();
    let n = 8 << 20; // one 32 MiB tile, twice the TCM
    let args = vector_add_args(&mut m, pe, n);
    let err = simulate(
        &mut m,
        &Launch::new(&vector_add, args, vec![pe]).data(false),
    )
    .unwrap_err();
    let SimError::Tcm {
        err:
            TcmError::TileTooLarge {
                op,
                bytes,
                tcm_bytes,
                ..
            },
        ..
    } = err
    else {
        panic!("expected a tile too large for TCM: {err}");
    };
    assert_eq!((op, bytes, tcm_bytes), ("load", 32 << 20, 16 << 20));
    let msg = err.to_string();
    assert!(msg.contains("kernels.rs:"), "{msg}");
    assert!(
        msg.contains("(load) needs 33554432 B, more than the 16777216 B the TCM holds"),
        "{msg}"
    );
}

#[test]
fn out_of_range_memory_names_the_kernel_line() {
    let (mut m, pe) = one_pe();
    let x = m.alloc(DType::F32, 64, &[pe]).unwrap();
    // `n` claims more elements than the buffer holds.
    let args = KernelArgs::new()
        .with("x", x.ptr())
        .with("y", x.ptr())
        .with("z", x.ptr())
        .int("n", 128)
        .int("block", 128);
    let err = simulate(&mut m, &Launch::new(&vector_add, args, vec![pe])).unwrap_err();
    let SimError::Trace { err: trace, .. } = &err else {
        panic!("expected a trace error: {err}");
    };
    let want = BoundsError::Elements {
        name: "x".into(),
        start: 0,
        end: 128,
        len: 64,
    };
    assert_eq!(trace.kind, TraceErrorKind::OutOfBounds(Box::new(want)));
    let msg = err.to_string();
    assert!(
        msg.contains("out of bounds: elements 0..128 of `x`, which holds 64")
            && msg.contains("kernels.rs:"),
        "{msg}"
    );
}

#[test]
fn every_pe_of_default_begins_its_first_command_at_the_common_start() {
    // One command per PE, so each PE has a first op whose start the engine
    // records: a PE nearer IO_CPU must still wait for the common start.
    #[kernel]
    fn one_fill(n: usize) {
        let _ = tl::full::<f32>([n], 1.0);
    }
    let mut m = Machine::new(Topology::embedded_default()).unwrap();
    let topo = m.topology().clone();
    let pes: Vec<PeId> = topo.pes().collect();
    let launch: Vec<Ps> = pes.iter().map(|p| topo.launch_ps(*p)).collect();
    let (near, far) = (launch.iter().min().unwrap(), launch.iter().max().unwrap());
    assert!(
        near < far,
        "launch routes of different lengths: {near} vs {far}"
    );
    let out = simulate_full(
        &mut m,
        &Launch::new(&one_fill, KernelArgs::new().int("n", 64), pes),
    )
    .unwrap();
    assert_eq!(out.report.pes.len(), 256);
    for p in &out.report.pes {
        assert_eq!(
            p.first_op_ps,
            Some(*far),
            "PE {} began off the common start",
            p.pe
        );
    }
    assert_eq!(out.report.start_spread_ps(), 0);
    assert_eq!(
        out.report.start_ps, *far,
        "IO_CPU stamps the farthest PE's launch time"
    );
}

/// An access outside every buffer names the parameter it goes through, and
/// where that parameter's buffer is mapped.
#[test]
fn an_access_outside_every_buffer_names_the_parameter_and_its_pes() {
    let topo = Topology::embedded_default();
    let pes: Vec<PeId> = topo.pes().take(3).collect();
    let mut m = Machine::new(topo).unwrap();
    let n = 1024;
    let on = |m: &mut Machine, at: &[PeId]| m.alloc(DType::F32, n, at).unwrap();
    let run = |m: &mut Machine, x: ArgValue, y: ArgValue, z: ArgValue, pe: PeId, len: usize| {
        let args = KernelArgs::new()
            .with("x", x)
            .with("y", y)
            .with("z", z)
            .int("n", len as i64)
            .int("block", len as i64);
        let e = simulate(m, &Launch::new(&vector_add, args, vec![pe])).unwrap_err();
        let SimError::Memory {
            err: MemError::OutsideParam { param, why, .. },
            ..
        } = &e
        else {
            panic!("not an access outside a parameter's buffer: {e}");
        };
        (e.to_string(), param.clone(), (**why).clone())
    };

    // `y` lives on the first two PEs; the kernel runs on the third. (`x`
    // and `z` span all three, so `y`'s address is no buffer on the third.)
    let (x, z) = (on(&mut m, &pes[2..]), on(&mut m, &pes[2..]));
    let (x, z) = {
        m.free_buffer(&x).unwrap();
        m.free_buffer(&z).unwrap();
        (on(&mut m, &pes), on(&mut m, &pes))
    };
    let y = on(&mut m, &pes[..2]);
    let (e, param, why) = run(&mut m, x.ptr(), y.ptr(), z.ptr(), pes[2], n);
    assert_eq!(param, "y");
    assert!(
        matches!(&why, ParamBuffer::NotOnPe { len: 1024, dtype: DType::F32, pes: on, .. } if on == &pes[..2]),
        "{why:?}"
    );
    assert!(
        e.contains("memory error on PE (0,0,2) at src/kernels.rs:"),
        "{e}"
    );
    assert!(
        e.contains("through `y`, outside every buffer mapped on it"),
        "{e}"
    );
    assert!(
        e.contains("`y` is a buffer of 1024 f32 at 0x")
            && e.contains("mapped on PEs (0,0,0), (0,0,1), not on PE (0,0,2)"),
        "{e}"
    );

    // `x` claims twice the elements its buffer holds.
    let y = on(&mut m, &pes[2..]);
    let long = ArgValue::Ptr {
        va: x.va,
        dtype: DType::F32,
        len: 2 * n,
    };
    let long_y = ArgValue::Ptr {
        va: y.va,
        dtype: DType::F32,
        len: 2 * n,
    };
    let long_z = ArgValue::Ptr {
        va: z.va,
        dtype: DType::F32,
        len: 2 * n,
    };
    let (e, param, why) = run(&mut m, long, long_y, long_z, pes[2], 2 * n);
    assert_eq!(param, "x");
    assert!(
        matches!(&why, ParamBuffer::Outside { bytes: 4096, start: 0, end: 8192, pes: on, .. } if on == &pes),
        "{why:?}"
    );
    assert!(e.contains("through `x`"), "{e}");
    assert!(
        e.contains("`x` is a buffer of 1024 f32 (4096 B at 0x")
            && e.contains(
                "mapped on PEs (0,0,0), (0,0,1), (0,0,2); the access covers its bytes 0..8192, past the end of it"
            ),
        "{e}"
    );

    // `z` points at no buffer at all.
    let nowhere = ArgValue::Ptr {
        va: 0x7000_0000_0000,
        dtype: DType::F32,
        len: n,
    };
    let (e, param, why) = run(&mut m, x.ptr(), y.ptr(), nowhere, pes[2], n);
    assert_eq!(
        (param.as_str(), why),
        (
            "z",
            ParamBuffer::NoBuffer {
                va: 0x7000_0000_0000
            }
        )
    );
    assert!(
        e.contains("through `z`")
            && e.contains("`z` points at 0x700000000000, where no buffer of this machine starts"),
        "{e}"
    );
}
