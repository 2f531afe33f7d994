//! Snapshots of what each compiler pass leaves, in the text forms
//! `kernbench graph --after pair|tcm|lower|fuse` prints: how a change to a
//! pass is reviewed.

use kernbench::ccl::run::neighbor_map;
use kernbench::ccl::MapKind;
use kernbench::core::passes::{self, Compilation};
use kernbench::kernels::{gemm, gemm_bias_relu, hello_send};
use kernbench::prelude::*;

fn tiny() -> Topology {
    Topology::resolve("tiny").unwrap()
}

/// `hello_send` on the first two PEs of `tiny`, a ring: each sends its 256
/// elements east and stores what arrives from the west.
fn ring_of_two() -> (Topology, Compilation) {
    let topo = tiny();
    let mut m = Machine::new(topo.clone()).unwrap();
    let pes: Vec<PeId> = topo.pes().take(2).collect();
    let t = m.alloc(DType::F16, 512, &pes).unwrap();
    let args = hello_send::args().t(&t).n_elem(256);
    let launch = Launch::new(&hello_send, args, pes.clone())
        .data(false)
        .neighbors(neighbor_map(&topo, MapKind::Ring, &pes).unwrap());
    let c = passes::inspect(&m, &launch).unwrap();
    (topo, c)
}

/// `c = a x b` in f16 on one PE of `tiny`, two output tiles high, with
/// the epilogue `relu(0.5 * _ + bias)` when `bias`.
fn gemm_on_one_pe(bias: bool) -> (Topology, Compilation) {
    gemm_of(bias, (256, 128, 128))
}

/// [`gemm_on_one_pe`] of `(m, k, n)`.
fn gemm_of(bias: bool, (mm, k, n): (usize, usize, usize)) -> (Topology, Compilation) {
    let topo = tiny();
    let mut m = Machine::new(topo.clone()).unwrap();
    let pe = topo.pes().next().unwrap();
    let a = m.alloc(DType::F16, mm * k, &[pe]).unwrap();
    let b = m.alloc(DType::F16, k * n, &[pe]).unwrap();
    let c = m.alloc(DType::F32, mm * n, &[pe]).unwrap();
    let args = KernelArgs::new()
        .with("a", a.tensor(mm, k).unwrap())
        .with("b", b.tensor(k, n).unwrap())
        .with("c", c.tensor(mm, n).unwrap());
    let compiled = if bias {
        let bias = m.alloc(DType::F32, n, &[pe]).unwrap();
        let args = args.with("bias", bias.ptr()).float("scale", 0.5);
        passes::inspect(
            &m,
            &Launch::new(&gemm_bias_relu, args, vec![pe]).data(false),
        )
    } else {
        passes::inspect(&m, &Launch::new(&gemm, args, vec![pe]).data(false))
    };
    (topo, compiled.unwrap())
}

#[test]
fn pairing_of_a_ring_of_two() {
    let (_, c) = ring_of_two();
    for i in 0..2 {
        let text = passes::pair::pairing_text(&c.channels, &c.pes, i, &c.graphs[i]);
        // Each instance sends on the channel the other receives on.
        assert!(text.contains(&format!("to instance {}", 1 - i)), "{text}");
        insta::assert_snapshot!(format!("ring_of_two_pair_{i}"), text);
    }
}

#[test]
fn tcm_plan_of_a_ring_of_two() {
    let (topo, c) = ring_of_two();
    let text = passes::tcm::tcm_text(&c.programs[0], &c.graphs[0], topo.pe_spec().tcm_bytes);
    insta::assert_snapshot!("ring_of_two_tcm", text);
}

#[test]
fn lowered_ops_of_a_ring_of_two() {
    let (_, c) = ring_of_two();
    let text = c.programs[0].ops_text();
    // The channels written in are the launch's, not the instance's own numbering.
    let ch = c.channels.of_cmd(0, kernbench::core::ir::CmdId(1)).unwrap();
    assert!(text.contains(&format!("send ch{ch} 512 B")), "{text}");
    insta::assert_snapshot!("ring_of_two_lower", text);
}

#[test]
fn tcm_plan_and_ops_of_a_streamed_gemm() {
    let (topo, c) = gemm_on_one_pe(false);
    let tcm = passes::tcm::tcm_text(&c.programs[0], &c.graphs[0], topo.pe_spec().tcm_bytes);
    assert!(tcm.contains("streaming buffers"), "{tcm}");
    insta::assert_snapshot!("gemm_tcm", tcm);
    insta::assert_snapshot!("gemm_lower", c.programs[0].ops_text());
}

#[test]
fn a_gemm_smaller_than_a_tile_streams_through_buffers_of_its_size() {
    let (topo, c) = gemm_of(false, (16, 32, 8));
    let spec = topo.pe_spec();
    assert!(
        spec.gemm_tile.iter().all(|&t| t >= 32),
        "{:?}",
        spec.gemm_tile
    );
    // `tcm_buffers` buffers of each streamed f16 operand, A 16x32 and B 32x8,
    // besides the f32 product 16x8; not buffers of whole GEMM tiles.
    let buffers = u64::from(spec.tcm_buffers) * (16 * 32 + 32 * 8) * 2;
    let tcm = passes::tcm::tcm_text(&c.programs[0], &c.graphs[0], spec.tcm_bytes);
    assert!(
        tcm.contains(&format!("  {}  ", 16 * 8 * 4 + buffers))
            && tcm.contains(&format!("+{buffers} B streaming buffers")),
        "{tcm}"
    );
    assert_eq!(c.programs[0].tcm_peak, 16 * 8 * 4 + buffers);
}

#[test]
fn the_graph_a_run_compiles_is_the_fused_one() {
    let (_, c) = gemm_on_one_pe(true);
    let text = c.graphs[0].to_text();
    insta::assert_snapshot!("gemm_bias_relu_fuse", text);
    // The scale, bias and relu ride on the GEMM: no MATH command is left.
    let math = c.graphs[0]
        .nodes()
        .filter(|(_, n)| matches!(n.cmd, kernbench::core::ir::Command::Math { .. }))
        .count();
    assert_eq!(math, 0, "{text}");
}

/// A launch the passes refuse: the same error from `passes::inspect` (a
/// `CompileError`) and from a run (the `SimError` of the same name), with
/// the same words.
#[test]
fn a_compile_error_is_the_runs_error_of_the_same_name() {
    use kernbench::core::passes::CompileError;
    use kernbench::core::sim::{simulate, LaunchError, PairingError, SimError};

    let topo = tiny();
    let mut m = Machine::new(topo.clone()).unwrap();
    let pes: Vec<PeId> = topo.pes().take(2).collect();
    let t = m.alloc(DType::F16, 512, &pes).unwrap();
    let args = hello_send::args().t(&t).n_elem(256);
    let check = |m: &mut Machine, launch: &Launch| {
        let c = match passes::inspect(m, launch) {
            Err(e) => e,
            Ok(_) => panic!("the launch compiled"),
        };
        let s = simulate(m, launch).unwrap_err();
        assert_eq!(c.to_string(), s.to_string());
        assert_eq!(SimError::from(c.clone()), s);
        c
    };

    // No neighbour map: the sends east have no peer.
    let launch = Launch::new(&hello_send, args.clone(), pes.clone()).data(false);
    let e = check(&mut m, &launch);
    assert!(
        matches!(e, CompileError::Pairing(PairingError::NoNeighborMap { .. })),
        "{e}"
    );

    // A grid of three instances on two PEs.
    let launch = Launch::new(&hello_send, args.clone(), pes.clone())
        .grid(&[3])
        .data(false);
    let e = check(&mut m, &launch);
    assert_eq!(
        e,
        CompileError::Launch(LaunchError::GridSize {
            grid: vec![3],
            instances: Some(3),
            pes: 2,
        })
    );

    // An argument of the wrong kind.
    let args = KernelArgs::from(args).int("t", 1);
    let launch = Launch::new(&hello_send, args, pes).data(false);
    let e = check(&mut m, &launch);
    assert!(matches!(e, CompileError::Trace { .. }), "{e}");
}
