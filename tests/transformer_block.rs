//! The tensor-parallel transformer block (`kernbench::transformer`) on a few
//! small SIPs, with and without sequence parallelism: every rank's output
//! checked element by element against the ndarray reference, the time of
//! each step where it belongs, and shapes that do not split refused with an
//! error that says why.

use half::f16;
use kernbench::ccl::tp::initialize_model_parallel;
use kernbench::core::runtime::ndarray::{s, Array1, Array2};
use kernbench::core::runtime::{
    HostFloat, Runtime, RuntimeError, SpawnError, TpError, TpErrorKind,
};
use kernbench::core::topology::{Topology, TINY_YAML};
use kernbench::core::DType;
use kernbench::transformer::{
    reference, sample_value, Activation, BlockWeights, TransformerBlock, STEPS,
};

/// `sips` SIPs of the tiny SIP (4 cubes x 4 PEs each).
fn machine(sips: usize) -> Runtime {
    let yaml = TINY_YAML.replace("sips: 1", &format!("sips: {sips}"));
    Runtime::with_topology(Topology::from_yaml(&yaml, "small.yaml").unwrap()).unwrap()
}

/// Runs the block on `world` ranks with tensor parallelism `tp` (one
/// sequence of `seq` rows per replica, split over `pes` PEs of a SIP, and
/// along the sequence over the tensor-parallel group when `sp`) and checks
/// every element of every
/// rank's output within the example's tolerance: `|got - want| <= (16 u +
/// sqrt(n) u32) (1 + |want|)`, `n` the longest sum. Returns the largest
/// error as a fraction of it.
fn check<T: HostFloat>(
    world: usize,
    tp: usize,
    (seq, hidden, heads, ffn): (usize, usize, usize, usize),
    overlap: bool,
    act: Activation,
    sp: bool,
    pes: usize,
) -> f64 {
    let n = hidden.max(ffn).max(seq);
    let tol = 16.0 * T::U + (n as f64).sqrt() * f32::U;
    let rt = machine(world);
    let dp = world / tp;
    let w64 = BlockWeights::sample(hidden, ffn).map(|v| T::round(*v).wide());
    let wt = w64.map(|v| T::round(*v));
    let x64 = Array2::from_shape_fn((dp * seq, hidden), |(i, j)| {
        T::round(sample_value(13, i, j, 1.0)).wide()
    });
    let xt = x64.mapv(T::round);
    let outs = rt
        .spawn(world, |rank| {
            rank.set_device(rank.get_rank())?;
            let mut mp = initialize_model_parallel(&rank, tp)?.with_layout(1, pes);
            if sp {
                mp = mp.with_sequence_parallel();
            }
            let mut block = TransformerBlock::new(&mp, heads, &wt)?.with_activation(act);
            if overlap {
                block = block.with_overlap();
            }
            // Sequence-parallel, this rank's contiguous block of the sequence.
            let rows = block.sequence_block(seq)?;
            let x = mp.input(&mp.local_batch(&xt)?.slice(s![rows.clone(), ..]).to_owned())?;
            let (y, times) = block.forward(&x)?;
            Ok((
                mp.dp_rank(),
                rows,
                y.to_ndarray::<T>()?.mapv(T::wide),
                times,
            ))
        })
        .unwrap();
    let mut worst = 0.0f64;
    for (r, (d, rows, got, times)) in outs.iter().enumerate() {
        let x = x64.slice(s![d * seq..(d + 1) * seq, ..]).to_owned();
        let full = reference(&x, &w64, heads, act, |v| T::round(v).wide());
        // Sequence-parallel, rank t of the group holds rows t seq / tp ..
        let t = r % tp;
        let want_rows = if sp {
            t * seq / tp..(t + 1) * seq / tp
        } else {
            0..seq
        };
        assert_eq!(rows, &want_rows, "rank {r}");
        let want = full.slice(s![rows.clone(), ..]);
        assert_eq!(got.shape(), &[rows.len(), hidden]);
        for ((i, j), w) in want.indexed_iter() {
            let g = got[[i, j]];
            let err = (g - w).abs() / (1.0 + w.abs());
            assert!(
                err <= tol,
                "rank {r}: y[{}, {j}] = {g}, want {w} (error {err:.3e} x (1 + |want|), allowed {tol:.3e})",
                rows.start + i
            );
            worst = worst.max(err / tol);
        }
        // Only the row-parallel layers communicate, and only with more
        // than one tensor-parallel rank: after their GEMM, or overlapped
        // with it in one launch. Sequence-parallel, the column-parallel
        // layers gather their input too, and nothing is overlapped. Every
        // other step computes alone.
        assert_eq!(times.len(), STEPS.len());
        for (name, t) in times {
            let row = name.contains("row-parallel");
            let talks = (row || (sp && name.contains("column-parallel"))) && tp > 1;
            let fused = row && talks && overlap && !sp;
            assert_eq!(t.compute_ps > 0, !fused, "rank {r}: {name}: {t:?}");
            assert_eq!(t.comm_ps > 0, talks && !fused, "rank {r}: {name}: {t:?}");
            assert_eq!(t.overlapped_ps > 0, fused, "rank {r}: {name}: {t:?}");
        }
    }
    worst
}

#[test]
fn block_in_f32_matches_the_reference_on_two_ranks() {
    let worst = check::<f32>(2, 2, (8, 16, 4, 32), false, Activation::Gelu, false, 2);
    // The reference rounds where the device does: what is left is the
    // order of sums and the exponentials, a few roundings at most.
    assert!(
        worst > 0.0,
        "f32 results equal to the bit everywhere: suspicious"
    );
}

#[test]
fn block_in_f16_with_data_parallel_replicas_matches_the_reference() {
    // tp 2 x dp 2: two replicas, each on its own sequence.
    check::<f16>(4, 2, (8, 16, 4, 32), false, Activation::Gelu, false, 2);
}

#[test]
fn block_with_relu_matches_its_reference_and_differs_from_gelu() {
    check::<f32>(2, 2, (8, 16, 4, 32), false, Activation::Relu, false, 2);
    // The activation is a real choice: the two blocks' outputs differ.
    let rt = machine(2);
    let w = BlockWeights::sample(16, 32).map(|v| *v as f32);
    let x = Array2::from_shape_fn((8, 16), |(i, j)| sample_value(13, i, j, 1.0) as f32);
    let outs = rt
        .spawn(2, |rank| {
            rank.set_device(rank.get_rank())?;
            let mp = initialize_model_parallel(&rank, 2)?.with_layout(1, 2);
            let mut ys = Vec::new();
            for act in [Activation::Gelu, Activation::Relu] {
                let block = TransformerBlock::new(&mp, 4, &w)?.with_activation(act);
                assert_eq!(block.activation(), act);
                ys.push(block.forward(&mp.input(&x)?)?.0.to_ndarray::<f32>()?);
            }
            Ok(ys)
        })
        .unwrap();
    let (gelu, relu) = (&outs[0][0], &outs[0][1]);
    let differ = gelu.iter().zip(relu).filter(|(a, b)| a != b).count();
    assert!(differ > gelu.len() / 2, "{differ} of {} differ", gelu.len());
}

#[test]
fn block_with_overlapped_all_reduce_matches_the_reference() {
    // The fused GEMM + all-reduce on a ring of 4 ranks, and on a ring of 2
    // in each of 2 replicas, in both types.
    check::<f32>(4, 4, (8, 16, 4, 32), true, Activation::Gelu, false, 2);
    check::<f16>(4, 2, (8, 16, 4, 32), true, Activation::Relu, false, 2);
}

#[test]
fn overlap_is_faster_when_there_is_compute_to_hide_behind() {
    // The same block both ways on 4 ranks: the overlapped row-parallel
    // layers end sooner than their GEMM followed by the all-reduce.
    let run = |overlap: bool| {
        let rt = machine(4);
        let w = BlockWeights::sample(32, 128).map(|v| *v as f32);
        let x = Array2::from_shape_fn((16, 32), |(i, j)| sample_value(13, i, j, 1.0) as f32);
        let times = rt
            .spawn(4, |rank| {
                rank.set_device(rank.get_rank())?;
                let mp = initialize_model_parallel(&rank, 4)?.with_layout(1, 2);
                let mut block = TransformerBlock::new(&mp, 4, &w)?;
                if overlap {
                    block = block.with_overlap();
                }
                Ok(block.forward(&mp.input(&x)?)?.1)
            })
            .unwrap();
        times[0]
            .iter()
            .filter(|(name, _)| name.contains("row-parallel"))
            .map(|(_, t)| t.total_ps())
            .sum::<u64>()
    };
    let (sequential, overlapped) = (run(false), run(true));
    assert!(
        overlapped < sequential,
        "overlapped {overlapped} ps, sequential {sequential} ps"
    );
}

#[test]
fn heads_that_do_not_split_over_tp_are_refused() {
    let rt = machine(2);
    let w = BlockWeights::sample(12, 24).map(|v| *v as f32);
    let err = rt
        .spawn(2, |rank| {
            rank.set_device(rank.get_rank())?;
            let mp = initialize_model_parallel(&rank, 2)?.with_layout(1, 2);
            TransformerBlock::new(&mp, 3, &w)?;
            Ok(())
        })
        .unwrap_err();
    let SpawnError::Failed { failures, .. } = &err else {
        panic!("{err}")
    };
    let want = block_err(None, TpErrorKind::HeadsPerRank { heads: 3, tp: 2 });
    for f in failures {
        assert_eq!(f.error.downcast_ref::<RuntimeError>(), Some(&want), "{err}");
    }
    assert!(
        err.to_string()
            .contains("3 heads do not split over 2 tensor-parallel ranks"),
        "{err}"
    );
}

/// The error the block refused with: what went wrong, and on which rank
/// (none while building it).
fn block_err(rank: Option<usize>, kind: TpErrorKind) -> RuntimeError {
    RuntimeError::TensorParallel(TpError {
        layer: Some("TransformerBlock"),
        rank,
        kind,
    })
}

#[test]
fn weights_that_do_not_fit_together_are_refused() {
    let w = BlockWeights::sample(16, 32).map(|v| *v as f32);
    assert_eq!(w.check(4), Ok(()));
    assert_eq!(
        BlockWeights::sample(16, 0).check(4),
        Err(block_err(
            None,
            TpErrorKind::ZeroWidth { hidden: 16, ffn: 0 }
        ))
    );
    let e = w.check(0).unwrap_err();
    assert_eq!(
        e,
        block_err(
            None,
            TpErrorKind::HeadWidth {
                heads: 0,
                hidden: 16
            }
        )
    );
    let mut bad = w.clone();
    bad.ln2_b = Array1::zeros(3);
    let e = bad.check(4).unwrap_err();
    let length = TpErrorKind::WeightLength {
        name: "ln2_b",
        got: 3,
        want: 16,
    };
    assert_eq!(e, block_err(None, length));
    assert!(
        e.to_string()
            .contains("TransformerBlock: ln2_b has 3 elements, expected 16"),
        "{e}"
    );
}

#[test]
fn bad_shapes_are_refused_with_the_reason() {
    let rt = machine(2);
    let w = BlockWeights::sample(16, 32).map(|v| *v as f32);
    let mut bad = w.clone();
    bad.fc2_w = Array2::zeros((32, 8));
    let run = rt
        .spawn(2, |rank| {
            rank.set_device(rank.get_rank())?;
            let mp = initialize_model_parallel(&rank, 2)?.with_layout(1, 2);
            let r = Some(rank.get_rank());
            // Heads that do not divide the width.
            let e = TransformerBlock::new(&mp, 6, &w).unwrap_err();
            let heads = TpErrorKind::HeadWidth {
                heads: 6,
                hidden: 16,
            };
            assert_eq!(e, block_err(None, heads));
            let e = e.to_string();
            assert!(e.contains("6 heads do not split the hidden size 16"), "{e}");
            // A weight of the wrong shape.
            let e = TransformerBlock::new(&mp, 4, &bad).unwrap_err();
            let shape = TpErrorKind::WeightShape {
                name: "fc2_w",
                got: (32, 8),
                want: (32, 16),
            };
            assert_eq!(e, block_err(None, shape));
            let e = e.to_string();
            assert!(e.contains("fc2_w is (32, 8), expected (32, 16)"), "{e}");
            // A sequence-parallel sequence that does not split into tp x PEs.
            let sp = mp.clone().with_sequence_parallel();
            let e = TransformerBlock::new(&sp, 4, &w)?
                .sequence_block(6)
                .unwrap_err();
            let rows = TpErrorKind::SequenceRows {
                rows: 6,
                tp: 2,
                pes: 2,
            };
            assert_eq!(e, block_err(r, rows));
            let block = TransformerBlock::new(&mp, 4, &w)?;
            // An input of the wrong width, and rows that do not split over the PEs.
            let x = mp.input(&Array2::<f32>::zeros((8, 12)))?;
            let e = block.forward(&x).unwrap_err();
            let width = TpErrorKind::InputWidth {
                hidden: 16,
                shape: vec![8, 12],
            };
            assert_eq!(e, block_err(r, width));
            let e = e.to_string();
            assert!(
                e.contains("the input must be [seq, 16], got [8, 12]"),
                "{e}"
            );
            let x = rank.from_array(
                &Array2::<f32>::zeros((7, 16)),
                &kernbench::core::runtime::Placement::single(),
            )?;
            let e = block.forward(&x).unwrap_err();
            let placement = TpErrorKind::InputPlacement { rows: 7, pes: 2 };
            assert_eq!(e, block_err(r, placement));
            let e = e.to_string();
            assert!(
                e.contains("must split evenly over the layout's 2 PEs"),
                "{e}"
            );
            // The wrong type.
            let x = mp.input(&Array2::from_elem((8, 16), f16::ZERO))?;
            let e = block.forward(&x).unwrap_err();
            let dtype = TpErrorKind::InputDType {
                input: DType::F16,
                weights: DType::F32,
            };
            assert_eq!(e, block_err(r, dtype));
            let e = e.to_string();
            let want = format!(
                "TransformerBlock on rank {}: the input is f16, the layer's weights f32",
                rank.get_rank()
            );
            assert!(e.contains(&want), "{e}");
            Ok(())
        })
        .map_err(|e| e.to_string());
    // A failed assert in a worker fails the run with its message.
    run.unwrap();
}

#[test]
fn sequence_parallel_block_matches_the_reference_on_contiguous_rows() {
    // Rows over 2 PEs per SIP: the gathered bands need regrouping for the
    // attention, tp 2 and tp 4, with and without data-parallel replicas.
    check::<f32>(2, 2, (8, 16, 4, 32), false, Activation::Gelu, true, 2);
    check::<f16>(4, 2, (8, 16, 4, 32), false, Activation::Relu, true, 2);
    check::<f32>(4, 4, (16, 16, 4, 32), false, Activation::Gelu, true, 2);
    // More PEs than ranks (4 PEs, tp 2), and one PE (no regrouping).
    check::<f32>(2, 2, (16, 16, 4, 32), false, Activation::Gelu, true, 4);
    check::<f16>(2, 2, (8, 16, 4, 32), false, Activation::Gelu, true, 1);
    // Overlap does not apply sequence-parallel: the layers reduce-scatter.
    check::<f32>(2, 2, (8, 16, 4, 32), true, Activation::Gelu, true, 2);
}

#[test]
fn sequence_parallel_layer_norms_work_on_a_ranks_rows_only() {
    // The same block both ways on 4 ranks: sequence-parallel, each rank's
    // layer norms and residual adds see a quarter of the rows.
    let run = |sp: bool| {
        let rt = machine(4);
        let w = BlockWeights::sample(32, 128).map(|v| *v as f32);
        let x = Array2::from_shape_fn((64, 32), |(i, j)| sample_value(13, i, j, 1.0) as f32);
        let times = rt
            .spawn(4, |rank| {
                rank.set_device(rank.get_rank())?;
                let mut mp = initialize_model_parallel(&rank, 4)?.with_layout(1, 2);
                if sp {
                    mp = mp.with_sequence_parallel();
                }
                let block = TransformerBlock::new(&mp, 4, &w)?;
                let rows = block.sequence_block(64)?;
                let x = mp.input(&x.slice(s![rows, ..]).to_owned())?;
                Ok(block.forward(&x)?.1)
            })
            .unwrap();
        times[0].clone()
    };
    let (tp, sp) = (run(false), run(true));
    for (i, name) in STEPS.iter().enumerate() {
        let (a, b) = (tp[i].1, sp[i].1);
        if name.starts_with("ln") || name.starts_with("residual") {
            assert!(
                b.compute_ps < a.compute_ps,
                "{name}: sequence-parallel {b:?}, all-reduce {a:?}"
            );
        }
    }
}

#[test]
fn a_sequence_that_does_not_split_is_refused() {
    let rt = machine(2);
    let w = BlockWeights::sample(16, 32).map(|v| *v as f32);
    let run = rt
        .spawn(2, |rank| {
            rank.set_device(rank.get_rank())?;
            let mp = initialize_model_parallel(&rank, 2)?
                .with_layout(1, 2)
                .with_sequence_parallel();
            let block = TransformerBlock::new(&mp, 4, &w)?;
            assert!(block.sequence_parallel());
            let r = Some(rank.get_rank());
            // 6 rows do not make 2 ranks x 2 PEs.
            let e = block.sequence_block(6).unwrap_err();
            let rows = TpErrorKind::SequenceRows {
                rows: 6,
                tp: 2,
                pes: 2,
            };
            assert_eq!(e, block_err(r, rows));
            let e = e.to_string();
            assert!(
                e.contains("6 rows do not split into 2 ranks x 2 PEs"),
                "{e}"
            );
            // A block of rows that does not split over the PEs.
            let x = rank.from_array(
                &Array2::<f32>::zeros((3, 16)),
                &kernbench::core::runtime::Placement::single(),
            )?;
            let e = block.forward(&x).unwrap_err();
            let placement = TpErrorKind::InputPlacement { rows: 3, pes: 2 };
            assert_eq!(e, block_err(r, placement));
            Ok(())
        })
        .map_err(|e| e.to_string());
    run.unwrap();
}

#[test]
fn regrouping_moves_bands_between_gathered_and_sequence_order() {
    // 2 ranks' worth of rows over 3 PEs: bands of q = 2 rows.
    let (tp, pes, q, cols) = (2usize, 3usize, 2usize, 4usize);
    let seq = tp * pes * q;
    let rt = machine(1);
    rt.spawn(1, |rank| {
        let place = kernbench::core::runtime::Placement::row_wise().pes(pes);
        // Row i holds i in every column.
        let x = Array2::from_shape_fn((seq, cols), |(i, _)| i as f32);
        let src = rank.from_array(&x, &place)?;
        let run = |src: &kernbench::core::runtime::DeviceTensor, to_sequence: bool| {
            let dst = rank.zeros(&[seq, cols], kernbench::core::DType::F32, &place)?;
            let args = kernbench::core::runtime::Args::new()
                .tensor("src", src)
                .tensor("dst", &dst)
                .int("tp", tp as i64)
                .bool("to_sequence", to_sequence);
            kernbench::ccl::dist::launch(
                rank.runtime(),
                &kernbench::transformer::regroup_bands,
                &[pes as u32],
                &args,
            )?;
            Ok::<_, kernbench::core::runtime::RuntimeError>(dst)
        };
        let ordered = run(&src, true)?;
        let got = ordered.to_ndarray::<f32>()?;
        // Gathered slot j of PE p (rows (p tp + j) q ..) is sequence band
        // j pes + p: in sequence order it lands at rows (j pes + p) q ...
        for p in 0..pes {
            for j in 0..tp {
                let (g, b) = ((p * tp + j) * q, j * pes + p);
                for k in 0..q {
                    assert_eq!(got[[b * q + k, 0]], (g + k) as f32, "band {b}");
                }
            }
        }
        // And back.
        let back = run(&ordered, false)?.to_ndarray::<f32>()?;
        assert_eq!(back, x.into_dyn());
        Ok(())
    })
    .unwrap();
}
