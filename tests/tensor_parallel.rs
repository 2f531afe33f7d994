//! Megatron tensor parallelism with data-parallel groups beside it: the
//! column- and row-parallel layers with bias in f32, f16 and bf16, checked
//! element by element against an ndarray reference computed in f64 from the
//! same (rounded) inputs.

use half::{bf16, f16};
use kernbench::ccl::tp::{
    initialize_model_parallel, Activation, ColumnParallelLinear, RowParallelLinear,
};
use kernbench::core::runtime::ndarray::{s, Array1, Array2, Axis};
use kernbench::core::runtime::{
    HostElement, Placement, Runtime, RuntimeError, SpawnError, TpError, TpErrorKind,
};
use kernbench::core::topology::{Topology, TINY_YAML};
use kernbench::core::DType;

/// Four SIPs of the tiny SIP (4 cubes x 4 PEs each).
fn quad() -> Runtime {
    let yaml = TINY_YAML.replace("sips: 1", "sips: 4");
    Runtime::with_topology(Topology::from_yaml(&yaml, "quad.yaml").unwrap()).unwrap()
}

/// The default machine: 2 SIPs of 16 cubes x 8 PEs.
fn default() -> Runtime {
    Runtime::with_topology(Topology::builtin("default").unwrap()).unwrap()
}

/// A layer type: how host values round into it, and its unit roundoff.
trait Float: HostElement {
    fn round(v: f64) -> Self;
    fn wide(self) -> f64;
    /// Half the distance from 1 to the next value: the largest relative
    /// error of one rounding.
    const U: f64;
}

impl Float for f32 {
    fn round(v: f64) -> Self {
        v as f32
    }
    fn wide(self) -> f64 {
        self as f64
    }
    const U: f64 = 5.960_464_477_539_063e-8; // 2^-24
}

impl Float for f16 {
    fn round(v: f64) -> Self {
        f16::from_f64(v)
    }
    fn wide(self) -> f64 {
        self.to_f64()
    }
    const U: f64 = 4.882_812_5e-4; // 2^-11
}

impl Float for bf16 {
    fn round(v: f64) -> Self {
        bf16::from_f64(v)
    }
    fn wide(self) -> f64 {
        self.to_f64()
    }
    const U: f64 = 3.906_25e-3; // 2^-8
}

/// The MLP's inputs as f64 (already representable in the layer's type).
struct Mlp {
    x: Array2<f64>,
    a: Array2<f64>,
    a_bias: Array1<f64>,
    b: Array2<f64>,
    b_bias: Array1<f64>,
}

impl Mlp {
    /// Small integers when `ints` (every result exact in every type used
    /// here), otherwise fractions that do not fit the narrow types exactly.
    fn new<T: Float>(batch: usize, model: usize, hidden: usize, ints: bool) -> Mlp {
        let v = |seed: usize, i: usize, j: usize| -> f64 {
            let h = (i * 7 + j * 13 + seed * 5) % 97;
            let raw = if ints {
                (h % 3) as f64 - 1.0
            } else {
                h as f64 / 61.0 - 0.8
            };
            T::round(raw).wide()
        };
        Mlp {
            x: Array2::from_shape_fn((batch, model), |(i, j)| v(1, i, j)),
            a: Array2::from_shape_fn((model, hidden), |(i, j)| v(2, i, j)),
            a_bias: Array1::from_shape_fn(hidden, |j| v(3, j, 1)),
            b: Array2::from_shape_fn((hidden, model), |(i, j)| v(4, i, j)),
            b_bias: Array1::from_shape_fn(model, |j| v(5, 2, j)),
        }
    }

    /// `(h, |h| bound, z, |z| bound)`: the reference hidden layer and output,
    /// and the sums of absolute terms each element is a sum of.
    fn reference(&self) -> [Array2<f64>; 4] {
        let h = (self.x.dot(&self.a) + &self.a_bias).mapv(|v| v.max(0.0));
        let h_abs = self.x.mapv(f64::abs).dot(&self.a.mapv(f64::abs)) + self.a_bias.mapv(f64::abs);
        let z = h.dot(&self.b) + &self.b_bias;
        let z_abs = h.mapv(f64::abs).dot(&self.b.mapv(f64::abs)) + self.b_bias.mapv(f64::abs);
        [h, h_abs, z, z_abs]
    }
}

fn to<T: Float>(a: &Array2<f64>) -> Array2<T> {
    a.mapv(T::round)
}

fn to1<T: Float>(a: &Array1<f64>) -> Array1<T> {
    a.mapv(T::round)
}

/// Elements of `got` farther from `want` than `tol` (per element), with the first.
fn misses(got: &Array2<f64>, want: &Array2<f64>, tol: &Array2<f64>) -> (usize, String) {
    let mut n = 0;
    let mut first = String::new();
    for ((ij, g), (w, t)) in got.indexed_iter().zip(want.iter().zip(tol.iter())) {
        if (g - w).abs() > *t {
            if n == 0 {
                first = format!("at {ij:?}: {g} vs {w} (tolerance {t})");
            }
            n += 1;
        }
    }
    (n, first)
}

/// Runs the MLP with bias on every rank of `rt` with tensor-parallel size
/// `tp` and a `(cubes, pes)` layout per SIP, each data-parallel replica on
/// its own rows of the batch; checks every rank's hidden slice and output
/// element by element. Exact when `ints`, otherwise within the rounding
/// bound of `T`: one rounding of each hidden element, then `tp + 2`
/// roundings along the output's path (the partial product, the sums of the
/// ring's steps, the result), each at most `U` of the absolute terms.
///
/// Sequence-parallel (`sp`), each rank feeds its own rows of its replica's
/// batch and gets its own rows of the output back. With `overlap` the
/// row-parallel layer runs its GEMM and all-reduce as one launch.
fn check_mlp<T: Float>(
    rt: &Runtime,
    tp: usize,
    layout: (usize, usize),
    ints: bool,
    sp: bool,
    overlap: bool,
) {
    let world = rt.device_count();
    let dp = world / tp;
    let shards = layout.0 * layout.1;
    let (model, hidden) = (16, 8 * tp);
    let mlp = Mlp::new::<T>(shards * dp * tp * 2, model, hidden, ints);
    let [h_ref, h_abs, z_ref, z_abs] = mlp.reference();
    let (x, a, ab, b, bb) = (
        to::<T>(&mlp.x),
        to::<T>(&mlp.a),
        to1::<T>(&mlp.a_bias),
        to::<T>(&mlp.b),
        to1::<T>(&mlp.b_bias),
    );
    let outs = rt
        .spawn(world, |rank| {
            let mut mp = initialize_model_parallel(&rank, tp)?.with_layout(layout.0, layout.1);
            if sp {
                mp = mp.with_sequence_parallel();
            }
            assert_eq!((mp.tp_size(), mp.dp_size()), (tp, dp));
            assert_eq!(
                (mp.tp_rank(), mp.dp_rank()),
                (rank.get_rank() % tp, rank.get_rank() / tp)
            );
            let fc1 = ColumnParallelLinear::new(&mp, &a, Some(&ab))?.with_relu();
            let mut fc2 = RowParallelLinear::new(&mp, &b, Some(&bb))?;
            if overlap {
                fc2 = fc2.with_overlap();
            }
            assert_eq!(fc1.weight().shape(), &[model, hidden / tp]);
            assert_eq!(
                fc1.bias().map(|b| b.shape().to_vec()),
                Some(vec![hidden / tp])
            );
            assert_eq!(
                fc2.bias().is_some(),
                mp.tp_rank() == 0,
                "one rank adds the bias"
            );
            let local = mp.local_batch(&x)?;
            let (xt, rows) = if sp {
                (
                    mp.input(&mp.sequence_shard(&local)?)?,
                    mp.sequence_rows(local.nrows())?,
                )
            } else {
                (mp.input(&local)?, (0..local.nrows()).collect())
            };
            assert_eq!(xt.dtype(), T::DTYPE);
            let h = fc1.forward(&xt)?;
            let z = fc2.forward(&h)?;
            assert_eq!(z.dtype(), T::DTYPE);
            let widen =
                |t: &kernbench::core::runtime::DeviceTensor| -> Result<Array2<f64>, RuntimeError> {
                    let a = t.to_ndarray::<T>()?.mapv(T::wide);
                    Ok(a.into_dimensionality().expect("2-D"))
                };
            Ok((mp.tp_rank(), mp.dp_rank(), rows, widen(&h)?, widen(&z)?))
        })
        .unwrap();
    let per = x.nrows() / dp;
    let (per_h, per_z) = if ints {
        (0.0, 0.0)
    } else {
        (T::U, (tp + 2) as f64 * T::U)
    };
    for (t, d, rows, h, z) in outs {
        let rows: Vec<usize> = rows.iter().map(|i| d * per + i).collect();
        assert_eq!(z.nrows(), rows.len());
        let hcols = s![
            d * per..(d + 1) * per,
            t * (hidden / tp)..(t + 1) * (hidden / tp)
        ];
        let want_h = h_ref.slice(hcols).to_owned();
        let tol_h = h_abs.slice(hcols).mapv(|v| v * per_h);
        let (n, first) = misses(&h, &want_h, &tol_h);
        assert_eq!(
            n, 0,
            "tp rank {t}, replica {d}: {n} hidden elements off, first {first}"
        );
        let want_z = z_ref.select(Axis(0), &rows);
        let tol_z = z_abs.select(Axis(0), &rows).mapv(|v| v * per_z);
        let (n, first) = misses(&z, &want_z, &tol_z);
        assert_eq!(
            n, 0,
            "tp rank {t}, replica {d}: {n} output elements off, first {first}"
        );
        // The tolerance tells a missing bias from a present one.
        let no_bias = &want_z - &mlp.b_bias;
        assert!(
            misses(&z, &no_bias, &tol_z).0 > 0,
            "the check cannot see the bias"
        );
    }
}

#[test]
fn tp2_dp2_in_f32_is_exact() {
    check_mlp::<f32>(&quad(), 2, (2, 2), true, false, false);
}

#[test]
fn tp2_dp2_in_f16_within_rounding() {
    check_mlp::<f16>(&quad(), 2, (2, 2), false, false, false);
}

#[test]
fn tp4_in_bf16_and_dp4_in_f16() {
    check_mlp::<bf16>(&quad(), 4, (1, 2), false, false, false);
    check_mlp::<f16>(&quad(), 1, (2, 1), false, false, false);
}

#[test]
fn tp2_on_the_default_machine_in_f32_and_bf16() {
    check_mlp::<f32>(&default(), 2, (2, 2), true, false, false);
    check_mlp::<bf16>(&default(), 2, (1, 4), false, false, false);
}

#[test]
fn sequence_parallel_matches_in_f32_f16_and_bf16() {
    check_mlp::<f32>(&quad(), 2, (2, 2), true, true, false);
    check_mlp::<f16>(&quad(), 4, (1, 2), false, true, false);
    check_mlp::<bf16>(&default(), 2, (2, 2), false, true, false);
}

#[test]
fn data_parallel_groups_reduce_beside_tensor_parallel_ones() {
    // tp = 2, dp = 2: each replica's output is all-reduced inside its
    // tensor-parallel group by the layer, then summed across replicas.
    let mlp = Mlp::new::<f32>(8, 16, 16, true);
    let (x, a, b) = (to::<f32>(&mlp.x), to::<f32>(&mlp.a), to::<f32>(&mlp.b));
    let outs = quad()
        .spawn(4, |rank| {
            let mp = initialize_model_parallel(&rank, 2)?.with_layout(1, 2);
            assert_eq!(
                mp.tp_group().ranks(),
                &[rank.get_rank() / 2 * 2, rank.get_rank() / 2 * 2 + 1]
            );
            assert_eq!(
                mp.dp_group().ranks(),
                &[rank.get_rank() % 2, rank.get_rank() % 2 + 2]
            );
            let fc1 = ColumnParallelLinear::new(&mp, &a, None)?.with_relu();
            let fc2 = RowParallelLinear::new(&mp, &b, None)?;
            let z = fc2.forward(&fc1.forward(&mp.input(&mp.local_batch(&x)?)?)?)?;
            mp.dp_all_reduce(&z)?;
            Ok(z.to_ndarray::<f32>()?)
        })
        .unwrap();
    let z = mlp.x.dot(&mlp.a).mapv(|v| v.max(0.0)).dot(&mlp.b);
    let want = (&z.slice(s![0..4, ..]) + &z.slice(s![4..8, ..])).mapv(|v| v as f32);
    for (r, z) in outs.into_iter().enumerate() {
        assert_eq!(z, want.clone().into_dyn(), "rank {r}");
    }
}

#[test]
fn overlapped_row_parallel_layer_matches_in_f32_f16_and_bf16() {
    check_mlp::<f32>(&quad(), 2, (2, 2), true, false, true);
    check_mlp::<f32>(&quad(), 4, (1, 2), true, false, true);
    check_mlp::<f16>(&quad(), 4, (2, 2), false, false, true);
    check_mlp::<bf16>(&default(), 2, (1, 4), false, false, true);
}

#[test]
fn overlap_hides_part_of_the_all_reduce() {
    // The same row-parallel layer both ways on 4 ranks: one launch that
    // computes and communicates at once ends before the GEMM and then the
    // all-reduce.
    let mlp = Mlp::new::<f32>(32, 64, 64, true);
    let (x, b) = (to::<f32>(&mlp.x), to::<f32>(&mlp.b));
    let run = |overlap: bool| {
        quad()
            .spawn(4, |rank| {
                let mp = initialize_model_parallel(&rank, 4)?.with_layout(1, 2);
                let mut fc2 = RowParallelLinear::new(&mp, &b, None)?;
                if overlap {
                    fc2 = fc2.with_overlap();
                }
                let y = mp.input(&x.slice(s![.., 0..16]).to_owned())?;
                let (z, t) = fc2.forward_timed(&y)?;
                Ok((z.to_ndarray::<f32>()?, t))
            })
            .unwrap()
    };
    let (seq, ovl) = (run(false), run(true));
    for (r, ((zs, ts), (zo, to))) in seq.iter().zip(&ovl).enumerate() {
        assert_eq!(zs, zo, "rank {r}: the two schedules disagree");
        assert!(ts.compute_ps > 0 && ts.comm_ps > 0 && ts.overlapped_ps == 0);
        assert!(to.compute_ps == 0 && to.comm_ps == 0 && to.overlapped_ps > 0);
        assert!(
            to.total_ps() < ts.total_ps(),
            "rank {r}: overlapped {to:?}, sequential {ts:?}"
        );
    }
}

#[test]
fn layer_times_are_the_launches_that_advance_the_device() {
    // tp = 4: the column-parallel layer only computes, the row-parallel one
    // computes then all-reduces, and the SIP's device time moves by the
    // launches' times (and any wait for the group's slowest member).
    let mlp = Mlp::new::<f32>(8, 16, 16, true);
    let (x, a, b) = (to::<f32>(&mlp.x), to::<f32>(&mlp.a), to::<f32>(&mlp.b));
    let outs = quad()
        .spawn(4, |rank| {
            let mp = initialize_model_parallel(&rank, 4)?.with_layout(1, 2);
            let fc1 = ColumnParallelLinear::new(&mp, &a, None)?.with_relu();
            let fc2 = RowParallelLinear::new(&mp, &b, None)?;
            let x = mp.input(&x)?;
            let before = rank.device_time_ps(rank.get_rank());
            let (h, t1) = fc1.forward_timed(&x)?;
            let mid = rank.device_time_ps(rank.get_rank());
            let (z, t2) = fc2.forward_timed(&h)?;
            let after = rank.device_time_ps(rank.get_rank());
            // The timed forward computes what the plain one does.
            assert_eq!(
                z.to_ndarray::<f32>()?,
                fc2.forward(&h)?.to_ndarray::<f32>()?
            );
            Ok((t1, t2, mid - before, after - mid))
        })
        .unwrap();
    for (r, (t1, t2, d1, d2)) in outs.into_iter().enumerate() {
        assert!(t1.compute_ps > 0 && t1.comm_ps == 0, "rank {r}: {t1:?}");
        assert!(t2.compute_ps > 0 && t2.comm_ps > 0, "rank {r}: {t2:?}");
        assert_eq!(d1, t1.total_ps(), "rank {r}");
        assert!(d2 >= t2.total_ps(), "rank {r}: {d2} < {t2:?}");
    }
}

/// The error a layer or setting refused with: what went wrong, in which
/// layer, on which rank.
fn tp_err(layer: Option<&'static str>, rank: Option<usize>, kind: TpErrorKind) -> RuntimeError {
    RuntimeError::TensorParallel(TpError { layer, rank, kind })
}

#[test]
fn bad_tensor_parallel_settings_are_clear_errors() {
    let rt = quad();
    for tp in [0, 3, 8] {
        let e = rt
            .spawn(4, |rank| {
                Ok(initialize_model_parallel(&rank, tp).map(|_| ())?)
            })
            .unwrap_err();
        let SpawnError::Failed { failures, .. } = &e else {
            panic!("{e}")
        };
        assert_eq!(failures.len(), 4, "{e}");
        for f in failures {
            assert_eq!(
                f.error.downcast_ref::<RuntimeError>(),
                Some(&tp_err(None, None, TpErrorKind::Degree { tp, world: 4 })),
                "{e}"
            );
        }
        assert!(
            e.to_string().contains(&format!(
                "tensor-parallel size {tp} must divide the world size 4"
            )),
            "{e}"
        );
    }
    rt.spawn(4, |rank| {
        let mp = initialize_model_parallel(&rank, 2)?.with_layout(1, 2);
        let r = Some(rank.get_rank());
        let col = Some("ColumnParallelLinear");
        let row = Some("RowParallelLinear");
        let w = Array2::<f32>::zeros((4, 8));
        let e = ColumnParallelLinear::new(&mp, &w, Some(&Array1::zeros(7))).unwrap_err();
        let bias = TpErrorKind::BiasLength {
            len: 7,
            features: 8,
        };
        assert_eq!(e, tp_err(col, None, bias));
        assert!(
            e.to_string()
                .contains("a bias of 7 elements for 8 output features"),
            "{e}"
        );
        let e = ColumnParallelLinear::new(&mp, &Array2::<f32>::zeros((4, 5)), None).unwrap_err();
        let split = TpErrorKind::SplitOutputs { features: 5, tp: 2 };
        assert_eq!(e, tp_err(col, None, split));
        let e = RowParallelLinear::new(&mp, &Array2::<f32>::zeros((5, 4)), None).unwrap_err();
        assert_eq!(
            e,
            tp_err(row, None, TpErrorKind::SplitInputs { features: 5, tp: 2 })
        );
        assert!(
            e.to_string()
                .contains("5 input features do not split over 2"),
            "{e}"
        );
        let e = RowParallelLinear::new(&mp, &w, Some(&Array1::zeros(3))).unwrap_err();
        let bias = TpErrorKind::BiasLength {
            len: 3,
            features: 8,
        };
        assert_eq!(e, tp_err(row, None, bias));
        let e = ColumnParallelLinear::new(&mp, &Array2::<i32>::zeros((4, 8)), None).unwrap_err();
        let dtype = TpErrorKind::WeightDType { dtype: DType::I32 };
        assert_eq!(e, tp_err(col, None, dtype));
        assert!(
            e.to_string().contains("the layers run in f32, f16 or bf16"),
            "{e}"
        );
        // An f16 input into an f32 layer.
        let fc = ColumnParallelLinear::new(&mp, &w, None)?;
        let x = mp.input(&Array2::from_elem((2, 4), f16::ZERO))?;
        let e = fc.forward(&x).unwrap_err();
        let dtype = TpErrorKind::InputDType {
            input: DType::F16,
            weights: DType::F32,
        };
        assert_eq!(e, tp_err(col, r, dtype));
        assert!(
            e.to_string()
                .contains("the input is f16, the layer's weights f32"),
            "{e}"
        );
        // An input on one PE, and one of the wrong width or rank.
        let x = rank.zeros(&[2, 4], DType::F32, &Placement::single())?;
        let e = fc.forward(&x).unwrap_err();
        let placement = TpErrorKind::InputPlacement { rows: 2, pes: 2 };
        assert_eq!(e, tp_err(col, r, placement));
        assert!(e.to_string().contains("activation placement"), "{e}");
        let x = mp.input(&Array2::<f32>::zeros((2, 6)))?;
        let e = fc.forward(&x).unwrap_err();
        let features = TpErrorKind::InputFeatures { got: 6, want: 4 };
        assert_eq!(e, tp_err(col, r, features));
        let x = rank.zeros(&[8], DType::F32, &Placement::single())?;
        let e = fc.forward(&x).unwrap_err();
        let shape = TpErrorKind::InputRank { shape: vec![8] };
        assert_eq!(e, tp_err(col, r, shape));
        assert!(
            e.to_string().contains("the input must be 2-D, got [8]"),
            "{e}"
        );
        // A batch that does not split over the replicas, or over the
        // ranks and PEs of sequence parallelism.
        let e = mp.local_batch(&Array2::<f32>::zeros((3, 4))).unwrap_err();
        assert_eq!(e, tp_err(None, None, TpErrorKind::Batch { rows: 3, dp: 2 }));
        assert!(
            e.to_string().contains("3 rows does not split over 2"),
            "{e}"
        );
        let rows = TpErrorKind::SequenceRows {
            rows: 6,
            tp: 2,
            pes: 2,
        };
        assert_eq!(mp.sequence_rows(6).unwrap_err(), tp_err(None, None, rows));
        // Sequence-parallel, the row-parallel layer's output rows must
        // split over the ranks' PEs too.
        let sp = mp.clone().with_sequence_parallel();
        let fc2 = RowParallelLinear::new(&sp, &w, None)?;
        let y = sp.input(&Array2::<f32>::zeros((2, 2)))?;
        let e = fc2.forward(&y).unwrap_err();
        let rows = TpErrorKind::SequenceRows {
            rows: 2,
            tp: 2,
            pes: 2,
        };
        assert_eq!(e, tp_err(row, r, rows));
        // Overlapped, the output features must split into one chunk per rank.
        let fc2 = RowParallelLinear::new(&mp, &Array2::<f32>::zeros((8, 3)), None)?.with_overlap();
        let y = mp.input(&Array2::<f32>::zeros((2, 4)))?;
        let e = fc2.forward(&y).unwrap_err();
        let chunks = TpErrorKind::OverlapChunks { features: 3, tp: 2 };
        assert_eq!(e, tp_err(Some("RowParallelLinear (overlapped)"), r, chunks));
        assert!(
            e.to_string()
                .contains("3 output features do not split into one chunk per rank of 2"),
            "{e}"
        );
        Ok(())
    })
    .unwrap();
}

/// The column-parallel layer with GELU in its epilogue on tp 2 x dp 2 in
/// `T`: every rank's slice of `gelu(x a + a_bias)` against the host's tanh
/// formula in f64. The bound: the f32 sums (at most `model` roundings of the
/// absolute terms, carried through GELU's slope, below 1.13), GELU's own
/// f32 evaluation (a few roundings), and the final rounding to `T`.
fn check_gelu<T: Float>() {
    let (tp, model, hidden) = (2, 16, 16);
    let mlp = Mlp::new::<T>(16, model, hidden, false);
    let pre = mlp.x.dot(&mlp.a) + &mlp.a_bias;
    let pre_abs = mlp.x.mapv(f64::abs).dot(&mlp.a.mapv(f64::abs)) + mlp.a_bias.mapv(f64::abs);
    let want = pre.mapv(|v| Activation::Gelu.apply(v));
    let (x, a, ab) = (to::<T>(&mlp.x), to::<T>(&mlp.a), to1::<T>(&mlp.a_bias));
    let outs = quad()
        .spawn(4, |rank| {
            let mp = initialize_model_parallel(&rank, tp)?.with_layout(1, 2);
            let fc1 = ColumnParallelLinear::new(&mp, &a, Some(&ab))?.with_gelu();
            assert_eq!(fc1.activation(), Activation::Gelu);
            let h = fc1.forward(&mp.input(&mp.local_batch(&x)?)?)?;
            let h = h.to_ndarray::<T>()?.mapv(T::wide);
            Ok((
                mp.tp_rank(),
                mp.dp_rank(),
                h.into_dimensionality().expect("2-D"),
            ))
        })
        .unwrap();
    let per = x.nrows() / 2;
    let u32 = f32::EPSILON as f64 / 2.0;
    for (t, d, h) in outs {
        let cols = s![
            d * per..(d + 1) * per,
            t * (hidden / tp)..(t + 1) * (hidden / tp)
        ];
        let want = want.slice(cols).to_owned();
        let tol = Array2::from_shape_fn(want.dim(), |(i, j)| {
            1.13 * model as f64 * u32 * pre_abs.slice(cols)[[i, j]]
                + (8.0 * u32 + T::U) * want[[i, j]].abs()
        });
        let (n, first) = misses(&h, &want, &tol);
        assert_eq!(
            n, 0,
            "tp rank {t}, replica {d}: {n} elements off, first {first}"
        );
        // GELU is not ReLU: the negative pre-activations give small negative values.
        assert!(
            h.iter().any(|v| *v < 0.0),
            "tp rank {t}: no negative output"
        );
    }
}

#[test]
fn column_parallel_gelu_matches_the_host_formula() {
    check_gelu::<f32>();
    check_gelu::<f16>();
    check_gelu::<bf16>();
}
