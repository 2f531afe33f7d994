//! The host runtime: placement, host <-> device copies, slices, launches,
//! ranks and their collectives, tensor-parallel layers.

use kernbench::ccl::dist::{self, Collectives};
use kernbench::ccl::tp::{initialize_model_parallel, ColumnParallelLinear, RowParallelLinear};
use kernbench::ccl::RedOp;
use kernbench::core::runtime::ndarray::{array, Array1, Array2};
use kernbench::core::runtime::{
    Args, CollectiveError, GroupError, MemoryOp, Placement, Runtime, RuntimeError, SpawnError,
    Split, TensorShapeError, TileOrder,
};
use kernbench::core::topology::{Topology, TINY_YAML};
use kernbench::core::DType;
use kernbench::prelude::*;

fn tiny() -> Runtime {
    Runtime::with_topology(Topology::builtin("tiny").unwrap()).unwrap()
}

/// Four SIPs of the tiny SIP (4 cubes x 4 PEs each).
fn quad() -> Runtime {
    let yaml = TINY_YAML.replace("sips: 1", "sips: 4");
    Runtime::with_topology(Topology::from_yaml(&yaml, "quad.yaml").unwrap()).unwrap()
}

fn coords(t: &kernbench::core::runtime::DeviceTensor) -> Vec<(u16, u16, u16)> {
    t.shards().iter().map(|s| (s.sip, s.cube, s.pe)).collect()
}

/// `y = x * 2` on each instance's block of rows.
#[kernel]
fn double_rows(x: Tensor<f32>, y: Tensor<f32>) {
    let (i, s) = (tl::program_id(0), tl::num_programs(0));
    let m = x.rows() / s;
    let t = tl::load(x.block([i * m, 0], [m, x.cols()]), [m, x.cols()]);
    tl::store(y.block([i * m, 0], [m, x.cols()]), &(t * 2.0));
}

/// `z = x + y` over `n` elements on one PE.
#[kernel]
fn add_flat(x: Ptr<f32>, y: Ptr<f32>, z: Ptr<f32>, n: usize) {
    let a = tl::load(x, [n]);
    let b = tl::load(y, [n]);
    tl::store(z, &(a + b));
}

/// `y = x * w` on each instance's block of rows, `w` (`[cols]`) over each row.
#[kernel]
fn scale_cols(x: Tensor<f32>, w: Ptr<f32>, y: Tensor<f32>) {
    let (i, s) = (tl::program_id(0), tl::num_programs(0));
    let (m, n) = (x.rows() / s, x.cols());
    let t = tl::load(x.block([i * m, 0], [m, n]), [m, n]);
    let w = tl::load(w, [n]);
    tl::store(y.block([i * m, 0], [m, n]), &(t * w));
}

#[test]
fn a_local_argument_gives_each_instance_its_own_pes_copy() {
    let rt = tiny();
    let rows = Placement::row_wise().cubes(2).pes(2);
    let xs = Array2::from_shape_fn((8, 4), |(r, c)| (r * 4 + c) as f32);
    let x = rt.from_array(&xs, &rows).unwrap();
    let ws = array![1.0f32, -2.0, 0.5, 4.0];
    let w = rt
        .from_array(&ws, &Placement::replicate().cubes(2).pes(2))
        .unwrap();
    let want = (&xs * &ws).into_dyn();

    // Bound whole, every instance reads from the first PE's copy on: the
    // other three read theirs over the fabric.
    let y = rt.zeros(&[8, 4], DType::F32, &rows).unwrap();
    let args = Args::new().tensor("x", &x).tensor("w", &w).tensor("y", &y);
    let whole = dist::launch(&rt, &scale_cols, &[4], &args).unwrap();
    assert_eq!(y.to_ndarray::<f32>().unwrap(), want);
    let remote: Vec<u64> = whole.pes.iter().map(|p| p.remote_read).collect();
    assert_eq!(remote, [0, 16, 16, 16]);

    // Bound local, each reads the copy on its own PE.
    let y = rt.zeros(&[8, 4], DType::F32, &rows).unwrap();
    let args = Args::new().tensor("x", &x).local("w", &w).tensor("y", &y);
    let local = dist::launch(&rt, &scale_cols, &[4], &args).unwrap();
    assert_eq!(y.to_ndarray::<f32>().unwrap(), want);
    assert!(local.pes.iter().all(|p| p.remote_bytes() == 0), "{local}");
    assert!(local.sim_ps() < whole.sim_ps());
    // The unchecked launch binds it alike.
    let again = rt.launch(&scale_cols, &[4], &args).unwrap();
    assert!(again.pes.iter().all(|p| p.remote_bytes() == 0));

    // A PE without a part of the tensor, and a parameter that is not a pointer.
    let one = rt.from_array(&ws, &Placement::single()).unwrap();
    let args = Args::new().tensor("x", &x).local("w", &one).tensor("y", &y);
    let e = dist::launch(&rt, &scale_cols, &[4], &args).unwrap_err();
    assert!(
        matches!(&e, RuntimeError::WrongArg { param, .. } if param == "w")
            && e.to_string().contains("instance 1 runs on"),
        "{e}"
    );
    let args = Args::new().local("x", &x).tensor("w", &w).tensor("y", &y);
    let e = dist::launch(&rt, &scale_cols, &[4], &args).unwrap_err();
    assert!(
        matches!(&e, RuntimeError::WrongArg { param, .. } if param == "x")
            && e.to_string().contains("binds a pointer parameter"),
        "{e}"
    );
    // Bound again as a whole tensor, a name is no longer local.
    let args = Args::new()
        .tensor("x", &x)
        .local("w", &w)
        .tensor("w", &w)
        .tensor("y", &y);
    let rebound = dist::launch(&rt, &scale_cols, &[4], &args).unwrap();
    assert_eq!(rebound.pes[1].remote_read, 16);
}

#[test]
fn placement_policies_give_structural_shards() {
    let rt = tiny();
    let t = rt
        .zeros(&[8, 4], DType::F32, &Placement::row_wise().cubes(2).pes(2))
        .unwrap();
    assert_eq!(coords(&t), vec![(0, 0, 0), (0, 0, 1), (0, 1, 0), (0, 1, 1)]);
    let rows: Vec<_> = t.shards().iter().map(|s| s.rows.clone()).collect();
    assert_eq!(rows, vec![0..2, 2..4, 4..6, 6..8]);
    assert!(t.shards().iter().all(|s| s.cols == (0..4) && s.len == 8));
    assert_eq!(
        t.shards().iter().map(|s| s.offset).collect::<Vec<_>>(),
        vec![0, 8, 16, 24]
    );
    assert_eq!(t.shards()[3].offset_bytes(4), 96);
    assert_eq!(t.launch_shape(), [8, 4]);

    let t = rt
        .zeros(
            &[2, 6],
            DType::F16,
            &Placement::column_wise().cubes(1).pes(3),
        )
        .unwrap();
    let cols: Vec<_> = t.shards().iter().map(|s| s.cols.clone()).collect();
    assert_eq!(cols, vec![0..2, 2..4, 4..6]);
    assert_eq!(t.launch_shape(), [6, 2], "shards stacked");

    let t = rt
        .zeros(&[3, 3], DType::I32, &Placement::replicate().cubes(2).pes(1))
        .unwrap();
    assert_eq!(coords(&t), vec![(0, 0, 0), (0, 1, 0)]);
    assert!(t
        .shards()
        .iter()
        .all(|s| s.rows == (0..3) && s.cols == (0..3)));
    assert_eq!(t.storage_len(), 18);

    // Cubes split rows, PEs in each cube split columns.
    let p = Placement::new(Split::RowWise, Split::ColumnWise)
        .cubes(2)
        .pes(2);
    let t = rt.zeros(&[4, 4], DType::F32, &p).unwrap();
    let blocks: Vec<_> = t
        .shards()
        .iter()
        .map(|s| (s.cube, s.pe, s.rows.start, s.cols.start))
        .collect();
    assert_eq!(
        blocks,
        vec![(0, 0, 0, 0), (0, 1, 0, 2), (1, 0, 2, 0), (1, 1, 2, 2)]
    );

    let t = rt
        .zeros(&[4, 4], DType::F32, &Placement::tiled_column_major(2, 2))
        .unwrap();
    let blocks: Vec<_> = t
        .shards()
        .iter()
        .map(|s| (s.pe, s.rows.start, s.cols.start))
        .collect();
    assert_eq!(blocks, vec![(0, 0, 0), (1, 2, 0), (2, 0, 2), (3, 2, 2)]);
    let tiled = Split::Tiled {
        rows: 1,
        cols: 2,
        order: TileOrder::RowMajor,
    };
    let t = rt
        .zeros(
            &[2, 4],
            DType::F32,
            &Placement::new(Split::Replicate, tiled).cubes(1).pes(2),
        )
        .unwrap();
    assert_eq!(t.shards()[1].cols, 2..4);

    // The current device decides the SIP; the policy only cube x PE.
    let rt = Runtime::new().unwrap();
    rt.set_device(1).unwrap();
    let t = rt
        .zeros(&[4], DType::F32, &Placement::row_wise().cubes(2).pes(2))
        .unwrap();
    assert_eq!(coords(&t), vec![(1, 0, 0), (1, 0, 1), (1, 1, 0), (1, 1, 1)]);
    assert!(matches!(
        rt.set_device(2),
        Err(RuntimeError::NoSuchDevice { sip: 2, sips: 2 })
    ));

    let e = rt
        .zeros(&[2, 2], DType::F32, &Placement::row_wise().cubes(1).pes(4))
        .unwrap_err();
    assert!(
        e.to_string().contains("cannot split 2 rows over 4 PEs"),
        "{e}"
    );
    let e = rt
        .zeros(&[2, 2, 2], DType::F32, &Placement::single())
        .unwrap_err();
    assert_eq!(
        e,
        RuntimeError::Shape {
            shape: vec![2, 2, 2],
            kind: TensorShapeError::Rank
        }
    );
    let e = rt
        .zeros(&[3, 0], DType::F32, &Placement::single())
        .unwrap_err();
    assert_eq!(
        e,
        RuntimeError::Shape {
            shape: vec![3, 0],
            kind: TensorShapeError::Empty
        }
    );
}

#[test]
fn round_trip_host_device_host() {
    let rt = tiny();
    let a = Array2::from_shape_fn((6, 5), |(i, j)| (i * 5 + j) as f32 - 7.0);
    for p in [
        Placement::single(),
        Placement::row_wise().cubes(2).pes(3),
        Placement::column_wise().cubes(1).pes(4),
        Placement::replicate().cubes(2).pes(2),
        Placement::tiled_row_major(2, 2),
    ] {
        let t = rt.from_array(&a, &p).unwrap();
        assert_eq!(
            t.to_ndarray::<f32>().unwrap(),
            a.clone().into_dyn(),
            "{p:?}"
        );
        // Scatter new data through copy_from and gather it back.
        let b = a.mapv(|v| v * 2.0);
        t.copy_from(&b).unwrap();
        assert_eq!(t.to_ndarray::<f32>().unwrap(), b.into_dyn(), "{p:?}");
    }
    let h = Array1::from_shape_fn(9, |i| half::f16::from_f32(i as f32 * 0.5));
    let t = rt
        .from_array(&h, &Placement::row_wise().cubes(1).pes(2))
        .unwrap();
    assert_eq!(t.dtype(), DType::F16);
    assert_eq!(t.to_ndarray::<half::f16>().unwrap(), h.into_dyn());
    let bh = Array1::from_shape_fn(4, |i| half::bf16::from_f32(i as f32));
    let t = rt.from_array(&bh, &Placement::single()).unwrap();
    assert_eq!(t.to_ndarray::<half::bf16>().unwrap(), bh.into_dyn());
    let i = array![[1i32, -2, 1 << 30], [4, 5, 6]];
    let t = rt
        .from_array(&i, &Placement::column_wise().cubes(1).pes(3))
        .unwrap();
    assert_eq!(t.to_ndarray::<i32>().unwrap(), i.into_dyn());
    let t = rt
        .full(
            &[2, 3],
            DType::Bf16,
            1.5,
            &Placement::replicate().cubes(1).pes(2),
        )
        .unwrap();
    assert!(t.to_f32_array().unwrap().iter().all(|v| *v == 1.5));
    let t = rt
        .zeros(&[5], DType::I32, &Placement::row_wise().cubes(1).pes(2))
        .unwrap();
    assert!(t.to_ndarray::<i32>().unwrap().iter().all(|v| *v == 0));
    t.free().unwrap();
}

#[test]
fn slices_inside_a_shard_and_across_shards() {
    let rt = tiny();
    let a = Array2::from_shape_fn((4, 4), |(i, j)| (i * 4 + j) as f32);
    let t = rt
        .from_array(&a, &Placement::row_wise().cubes(1).pes(2))
        .unwrap();
    assert_eq!(
        t.slice::<f32>(2..4, 1..3).unwrap(),
        array![[9.0f32, 10.0], [13.0, 14.0]]
    );
    t.set_slice(0..2, 0..2, &array![[-1.0f32, -2.0], [-3.0, -4.0]])
        .unwrap();
    let e = t
        .set_slice(0..2, 0..2, &array![[1.0f32, 2.0, 3.0]])
        .unwrap_err();
    assert_eq!(
        e,
        RuntimeError::Shape {
            shape: vec![1, 3],
            kind: TensorShapeError::HostSlice { rows: 2, cols: 2 }
        }
    );
    assert_eq!(
        e.to_string(),
        "shape [1, 3]: the host array does not match the slice of 2 x 2"
    );
    t.fill_slice(3..4, 0..4, 7.0f32).unwrap();
    let mut want = a.clone();
    want.slice_mut(kernbench::core::runtime::ndarray::s![0..2, 0..2])
        .assign(&array![[-1.0f32, -2.0], [-3.0, -4.0]]);
    want.row_mut(3).fill(7.0);
    assert_eq!(t.to_ndarray::<f32>().unwrap(), want.into_dyn());

    let e = t.slice::<f32>(1..3, 0..4).unwrap_err();
    match &e {
        RuntimeError::CrossShard { shards, .. } => {
            let at = |cube, pe| kernbench::core::PeId { sip: 0, cube, pe };
            assert_eq!(shards, &vec![at(0, 0), at(0, 1)]);
        }
        other => panic!("expected a cross-shard error, got {other}"),
    }
    assert!(
        e.to_string().contains("crosses shards (0,0,0), (0,0,1)"),
        "{e}"
    );
    let e = t
        .set_slice(1..3, 0..1, &array![[0.0f32], [0.0]])
        .unwrap_err();
    assert!(matches!(e, RuntimeError::CrossShard { .. }), "{e}");
    let e = t.slice::<f32>(0..5, 0..1).unwrap_err();
    assert!(matches!(e, RuntimeError::SliceOutOfRange { .. }), "{e}");

    // Replicas: a slice is inside every replica, and a write reaches them all.
    let r = rt
        .from_array(&a, &Placement::replicate().cubes(2).pes(1))
        .unwrap();
    r.fill_slice(1..3, 1..3, 0.0f32).unwrap();
    let m = rt.machine();
    for s in r.shards() {
        let mut b = [0u8; 4];
        m.read(s.pe_id(), r.va() + ((s.offset + 5) * 4) as u64, &mut b)
            .unwrap();
        assert_eq!(f32::from_le_bytes(b), 0.0, "replica on {:?}", s.pe_id());
    }
}

#[test]
fn wrong_dtype_from_ndarray_is_an_error() {
    let rt = tiny();
    let t = rt.zeros(&[2, 2], DType::F32, &Placement::single()).unwrap();
    let h = Array2::from_elem((2, 2), half::f16::ONE);
    let e = t.copy_from(&h).unwrap_err();
    assert!(
        matches!(
            e,
            RuntimeError::DType {
                tensor: DType::F32,
                host: DType::F16,
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("the tensor holds f32, the host array f16"),
        "{e}"
    );
    let e = t.to_ndarray::<i32>().unwrap_err();
    assert!(
        matches!(
            e,
            RuntimeError::DType {
                host: DType::I32,
                ..
            }
        ),
        "{e}"
    );
    let e = t.slice::<half::bf16>(0..1, 0..1).unwrap_err();
    assert!(matches!(e, RuntimeError::DType { .. }), "{e}");
    let e = rt
        .from_array_as(&array![1.0f32, 2.0], DType::I32, &Placement::single())
        .unwrap_err();
    assert!(
        matches!(
            e,
            RuntimeError::DType {
                tensor: DType::I32,
                host: DType::F32,
                ..
            }
        ),
        "{e}"
    );
    let e = t.copy_from(&Array2::<f32>::zeros((3, 2))).unwrap_err();
    assert_eq!(
        e,
        RuntimeError::Shape {
            shape: vec![3, 2],
            kind: TensorShapeError::HostArray {
                tensor: t.shape().to_vec()
            }
        }
    );
}

#[test]
fn launch_binds_by_name_and_runs_on_the_shards() {
    let rt = tiny();
    let a = Array2::from_shape_fn((8, 3), |(i, j)| (i + j) as f32);
    let p = Placement::row_wise().cubes(2).pes(2);
    let x = rt.from_array(&a, &p).unwrap();
    let y = rt.zeros(&[8, 3], DType::F32, &p).unwrap();
    let before = rt.now_ps();
    let report = rt
        .launch(
            &double_rows,
            &[4],
            &Args::new().tensor("x", &x).tensor("y", &y),
        )
        .unwrap();
    assert_eq!(report.pes.len(), 4);
    assert_eq!(
        y.to_ndarray::<f32>().unwrap(),
        a.mapv(|v| v * 2.0).into_dyn()
    );
    assert_eq!(
        rt.now_ps(),
        before + report.end_ps,
        "the device clock advanced by the launch"
    );

    // Checked launch: pointers bind as pointers.
    let u = rt
        .from_array(&array![1.0f32, 2.0, 3.0], &Placement::single())
        .unwrap();
    let v = rt
        .from_array(&array![10.0f32, 20.0, 30.0], &Placement::single())
        .unwrap();
    let w = rt.zeros(&[3], DType::F32, &Placement::single()).unwrap();
    let args = Args::new()
        .tensor("x", &u)
        .tensor("y", &v)
        .tensor("z", &w)
        .int("n", 3);
    dist::launch(&rt, &add_flat, &[1], &args).unwrap();
    assert_eq!(
        w.to_ndarray::<f32>().unwrap(),
        array![11.0f32, 22.0, 33.0].into_dyn()
    );
}

#[test]
fn missing_or_wrong_kind_launch_args_name_the_parameter() {
    let rt = tiny();
    let x = rt.zeros(&[4, 4], DType::F32, &Placement::single()).unwrap();
    let h = rt.zeros(&[4, 4], DType::F16, &Placement::single()).unwrap();
    // Unchecked launch: the kernel's own binding reports it.
    let e = rt
        .launch(&double_rows, &[1], &Args::new().tensor("x", &x))
        .unwrap_err();
    match &e {
        RuntimeError::MissingArg { kernel, param, .. } => {
            assert_eq!((kernel.as_str(), param.as_str()), ("double_rows", "y"))
        }
        other => panic!("expected a missing argument, got {other}"),
    }
    let e = rt
        .launch(&double_rows, &[1], &Args::new().tensor("x", &x).int("y", 3))
        .unwrap_err();
    assert!(
        matches!(&e, RuntimeError::WrongArg { param, .. } if param == "y"),
        "{e}"
    );
    let e = rt
        .launch(
            &double_rows,
            &[1],
            &Args::new().tensor("x", &h).tensor("y", &x),
        )
        .unwrap_err();
    assert!(
        matches!(&e, RuntimeError::WrongArg { param, .. } if param == "x"),
        "{e}"
    );
    assert!(
        e.to_string().contains("f32") && e.to_string().contains("f16"),
        "{e}"
    );

    // Checked launch: before anything runs, with the kind in the message.
    let e = dist::launch(
        &rt,
        &add_flat,
        &[1],
        &Args::new().tensor("x", &x).tensor("y", &x).int("n", 4),
    )
    .unwrap_err();
    assert!(
        matches!(&e, RuntimeError::MissingArg { param, .. } if param == "z"),
        "{e}"
    );
    assert!(e.to_string().contains("pointer of f32"), "{e}");
    let args = Args::new()
        .tensor("x", &x)
        .tensor("y", &x)
        .tensor("z", &x)
        .float("n", 4.0);
    let e = dist::launch(&rt, &add_flat, &[1], &args).unwrap_err();
    assert!(
        matches!(&e, RuntimeError::WrongArg { param, .. } if param == "n"),
        "{e}"
    );
    let args = Args::new()
        .tensor("x", &x)
        .tensor("y", &x)
        .int("z", 1)
        .int("n", 4);
    let e = dist::launch(&rt, &add_flat, &[1], &args).unwrap_err();
    assert!(
        matches!(&e, RuntimeError::WrongArg { param, .. } if param == "z"),
        "{e}"
    );
    let args = Args::new()
        .tensor("x", &x)
        .tensor("y", &x)
        .tensor("z", &x)
        .int("n", 4)
        .int("m", 1);
    let e = dist::launch(&rt, &add_flat, &[1], &args).unwrap_err();
    assert!(
        matches!(&e, RuntimeError::UnknownArg { param, known, .. }
            if param == "m" && known == &["x", "y", "z", "n"]),
        "{e}"
    );
}

#[test]
fn all_reduce_sums_every_ranks_tensor_on_the_device() {
    let rt = Runtime::new().unwrap(); // 2 SIPs
    let p = Placement::row_wise().cubes(2).pes(2);
    let outs = rt
        .spawn(2, |rank| {
            let r = rank.get_rank();
            assert_eq!((rank.current_device(), rank.get_world_size()), (r, 2));
            let a = Array2::from_shape_fn((8, 6), |(i, j)| ((r + 1) * (i + j)) as f32);
            let t = rank.from_array(&a, &p)?;
            assert!(t.shards().iter().all(|s| s.sip as usize == r));
            let report = rank.all_reduce(&t)?;
            // f16 max over replicas, too.
            let h = rank.full(
                &[16],
                DType::F16,
                r as f64 + 1.0,
                &Placement::replicate().cubes(1).pes(2),
            )?;
            rank.all_reduce_op(&h, RedOp::Max)?;
            rank.barrier()?;
            Ok((t.to_ndarray::<f32>()?, h.to_f32_array()?, report.pes.len()))
        })
        .unwrap();
    let want = Array2::from_shape_fn((8, 6), |(i, j)| (3 * (i + j)) as f32).into_dyn();
    for (t, h, pes) in outs {
        assert_eq!(t, want);
        assert!(h.iter().all(|v| *v == 2.0));
        assert_eq!(pes, 8, "one launch over both ranks' 4 shards");
    }
    assert_eq!(
        rt.device_time_ps(0),
        rt.device_time_ps(1),
        "the collectives synchronise the SIPs"
    );
    assert!(rt.now_ps() > 0);
}

/// Sixteen SIPs (the most the address map has), each a tiny SIP.
fn sixteen() -> Runtime {
    let yaml = TINY_YAML.replace("sips: 1", "sips: 16");
    Runtime::with_topology(Topology::from_yaml(&yaml, "sixteen.yaml").unwrap()).unwrap()
}

#[test]
fn collectives_take_every_sip_of_the_machine() {
    // Each rank passes its own tensor, bound per instance: no pointer per
    // rank in the kernel's signature, so all 16 SIPs can meet.
    let rt = sixteen();
    let p = Placement::row_wise().cubes(1).pes(2);
    let outs = rt
        .spawn(16, |rank| {
            let r = rank.get_rank();
            let a = Array2::from_shape_fn((4, 8), |(i, j)| (r * 100 + i * 8 + j) as f32);
            let t = rank.from_array(&a, &p)?;
            rank.all_reduce(&t)?;
            let b = rank.full(&[4, 8], DType::F32, r as f64, &p)?;
            rank.broadcast(&b, 15)?;
            Ok((t.to_ndarray::<f32>()?, b.to_ndarray::<f32>()?))
        })
        .unwrap();
    // Sum over r of (100 r + x) = 100 * 120 + 16 x.
    let want =
        Array2::from_shape_fn((4, 8), |(i, j)| (12_000 + 16 * (i * 8 + j)) as f32).into_dyn();
    for (t, b) in outs {
        assert_eq!(t, want);
        assert!(b.iter().all(|v| *v == 15.0), "rank 15's tensor everywhere");
    }
}

#[test]
fn broadcast_and_all_gather_between_ranks() {
    let rt = Runtime::new().unwrap();
    let outs = rt
        .spawn(2, |rank| {
            let r = rank.get_rank();
            let b = rank.full(
                &[4, 4],
                DType::I32,
                (10 * r + 5) as f64,
                &Placement::row_wise().cubes(1).pes(2),
            )?;
            rank.broadcast(&b, 1)?;
            let x = rank.from_array(
                &Array2::from_elem((2, 3), r as f32 + 1.0),
                &Placement::replicate().cubes(1).pes(2),
            )?;
            let out = rank.zeros(&[4, 3], DType::F32, &Placement::replicate().cubes(1).pes(2))?;
            rank.all_gather(&out, &x)?;
            let e = rank.broadcast(&b, 7).unwrap_err();
            assert_eq!(
                collective(&e),
                (
                    "broadcast",
                    &CollectiveError::RootNotRank { root: 7, world: 2 }
                )
            );
            assert!(e.to_string().contains("root 7"), "{e}");
            // Masks are a kernel type; collectives refuse them before any rendezvous.
            let m = rank.zeros(&[4], DType::Bool, &Placement::single())?;
            let e = rank.all_reduce(&m).unwrap_err();
            assert_eq!(
                collective(&e),
                (
                    "all_reduce",
                    &CollectiveError::NotNumeric { dtype: DType::Bool }
                )
            );
            assert!(e.to_string().contains("not bool masks"), "{e}");
            Ok((b.to_ndarray::<i32>()?, out.to_ndarray::<f32>()?))
        })
        .unwrap();
    for (b, g) in outs {
        assert!(b.iter().all(|v| *v == 15));
        let want =
            Array2::from_shape_fn((4, 3), |(i, _)| if i < 2 { 1.0f32 } else { 2.0 }).into_dyn();
        assert_eq!(g, want);
    }
}

#[test]
fn bruck_all_gather_and_reduce_scatter_between_ranks() {
    use kernbench::ccl::dist::{all_gather_in, reduce_scatter_in, Backend};
    use kernbench::ccl::Registry;
    let reg = Registry::builtin();
    let bruck = Backend::default()
        .with(&reg, "bruck_allgather")
        .unwrap()
        .with(&reg, "bruck_reducescatter")
        .unwrap();
    let ring = Backend::default();
    // 3 ranks: Bruck's steps for a world that is not a power of two.
    let outs = quad()
        .spawn(3, move |rank| {
            let r = rank.get_rank();
            let world = rank.world_group();
            let p = Placement::replicate().cubes(1).pes(2);
            let mut got = Vec::new();
            for b in [&bruck, &ring] {
                let x = rank.from_array(&Array2::from_elem((2, 5), r as f32 + 1.0), &p)?;
                let out = rank.zeros(&[6, 5], DType::F32, &p)?;
                let ag = all_gather_in(&rank, &out, &x, &world, b)?;
                let big = Array2::from_shape_fn((6, 5), |(i, j)| ((r + 1) * (i * 5 + j)) as f32);
                let input = rank.from_array(&big, &p)?;
                let mine = rank.zeros(&[2, 5], DType::F32, &p)?;
                let rs = reduce_scatter_in(&rank, &mine, &input, RedOp::Sum, &world, b)?;
                got.push((
                    out.to_ndarray::<f32>()?,
                    mine.to_ndarray::<f32>()?,
                    ag.end_ps,
                    rs.end_ps,
                ));
            }
            Ok((r, got))
        })
        .unwrap();
    for (r, got) in outs {
        let gathered = Array2::from_shape_fn((6, 5), |(i, _)| (i / 2 + 1) as f32).into_dyn();
        // Block r of the sum over ranks: (1 + 2 + 3) x its index.
        let block =
            Array2::from_shape_fn((2, 5), |(i, j)| (6 * ((2 * r + i) * 5 + j)) as f32).into_dyn();
        for (out, mine, _, _) in &got {
            assert_eq!(*out, gathered, "rank {r}");
            assert_eq!(*mine, block, "rank {r}");
        }
        assert_ne!(got[0].2, got[1].2, "Bruck's all-gather ran, not the ring");
        assert_ne!(
            got[0].3, got[1].3,
            "Bruck's reduce-scatter ran, not the ring"
        );
    }
}

#[test]
fn an_auto_backend_runs_the_algorithm_the_model_picks_per_size() {
    use kernbench::ccl::dist::{all_reduce_with, Backend};
    use kernbench::ccl::Registry;
    let reg = Registry::builtin();
    let auto = Backend::auto(&reg);
    let fixed: Vec<(String, Backend)> = [
        "ring_allreduce",
        "mesh_allreduce",
        "tree_allreduce",
        "recursive_doubling",
        "rabenseifner",
        "double_tree_allreduce",
    ]
    .iter()
    .map(|a| (a.to_string(), Backend::with_all_reduce(&reg, a).unwrap()))
    .collect();
    let outs = quad()
        .spawn(4, move |rank| {
            let r = rank.get_rank();
            let mut picks = Vec::new();
            for cols in [4usize, 16384] {
                let a = Array2::from_shape_fn((2, cols), |(i, j)| ((r + 1) * (i + j % 7)) as f32);
                let p = Placement::single();
                let t = rank.from_array(&a, &p)?;
                let by_auto = all_reduce_with(&rank, &t, RedOp::Sum, &auto)?.end_ps;
                let want = Array2::from_shape_fn((2, cols), |(i, j)| (10 * (i + j % 7)) as f32);
                assert_eq!(t.to_ndarray::<f32>()?, want.into_dyn());
                // The same call under each fixed algorithm: auto took one of them.
                let mut same = Vec::new();
                for (name, b) in &fixed {
                    let u = rank.from_array(&a, &p)?;
                    if all_reduce_with(&rank, &u, RedOp::Sum, b)?.end_ps == by_auto {
                        same.push(name.clone());
                    }
                }
                picks.push(same);
            }
            Ok(picks)
        })
        .unwrap();
    let picks = &outs[0];
    assert!(
        picks.iter().all(|p| !p.is_empty()),
        "auto ran a registry algorithm: {picks:?}"
    );
    assert_ne!(
        picks[0], picks[1],
        "32 B and 128 KiB tensors pick differently: {picks:?}"
    );
}

/// Runs `f` on its own thread and fails the test if it has not returned
/// within `secs`: a regression that hangs a rank fails instead of hanging.
fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(secs))
        .unwrap_or_else(|_| panic!("did not return within {secs} s: a rank hangs"))
}

#[test]
fn a_failing_rank_releases_its_siblings_with_the_root_cause() {
    // Rank 2 fails; the others wait in all_reduce (or are about to), and each
    // must be released with an error naming rank 2, whichever comes first.
    let (err, got) = within(60, || {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen_by_ranks = std::sync::Arc::clone(&seen);
        let err = quad()
            .spawn(4, move |rank| {
                let t = rank.full(&[8], DType::F32, 1.0, &Placement::single())?;
                if rank.get_rank() == 2 {
                    return Err("rank 2 ran out of patience".into());
                }
                if let Err(e) = rank.all_reduce(&t) {
                    seen_by_ranks
                        .lock()
                        .unwrap()
                        .push((rank.get_rank(), e.to_string()));
                    return Err(e.into());
                }
                Ok(())
            })
            .unwrap_err();
        let mut got = seen.lock().unwrap().clone();
        got.sort();
        (err, got)
    });
    assert_eq!(err.root_ranks(), vec![2]);
    match &err {
        SpawnError::Failed { failures, released } => {
            assert_eq!(failures[0].error.to_string(), "rank 2 ran out of patience");
            assert_eq!(released, &vec![0, 1, 3]);
        }
        other => panic!("expected failed ranks, got {other}"),
    }
    assert!(
        err.to_string()
            .contains("rank 2 failed: rank 2 ran out of patience"),
        "{err}"
    );
    // What each released rank was told.
    let ranks: Vec<usize> = got.iter().map(|(r, _)| *r).collect();
    assert_eq!(ranks, vec![0, 1, 3], "{got:?}");
    for (r, msg) in &got {
        assert_eq!(
            msg,
            &format!("rank {r}: released from `all_reduce` because rank(s) 2 failed"),
        );
    }

    // A panic is a root cause too, and a barrier releases like a collective.
    let err = within(60, || {
        quad()
            .spawn(3, |rank| {
                if rank.get_rank() == 0 {
                    panic!("boom on purpose");
                }
                rank.barrier()?;
                Ok(())
            })
            .unwrap_err()
    });
    assert_eq!(err.root_ranks(), vec![0]);
    assert!(
        err.to_string().contains("rank 0 panicked: boom on purpose"),
        "{err}"
    );

    // A rank that returns while another waits for it does not leave it hanging.
    let err = within(60, || {
        quad()
            .spawn(2, |rank| {
                if rank.get_rank() == 0 {
                    rank.barrier()?;
                }
                Ok(())
            })
            .unwrap_err()
    });
    assert_eq!(err.root_ranks(), vec![0]);
    assert!(
        err.to_string().contains("rank 1 has already returned"),
        "{err}"
    );

    // Different collectives at the same point are an error, not a hang,
    // whichever rank arrives first.
    let err = within(60, || {
        quad()
            .spawn(2, |rank| {
                let t = rank.full(&[4], DType::F32, 1.0, &Placement::single())?;
                if rank.get_rank() == 0 {
                    rank.all_reduce(&t)?;
                } else {
                    rank.broadcast(&t, 0)?;
                }
                Ok(())
            })
            .unwrap_err()
    });
    assert!(
        err.to_string().contains("called `broadcast`")
            || err.to_string().contains("called `all_reduce`"),
        "{err}"
    );

    let e = quad().spawn(5, |_| Ok(())).unwrap_err();
    assert!(
        matches!(
            e,
            SpawnError::Invalid(RuntimeError::WorldSize { world: 5, sips: 4 })
        ),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        "world size 5: one rank per SIP; the machine has 4 SIP(s)"
    );
    let e = quad().spawn(0, |_| Ok(())).unwrap_err();
    assert!(
        matches!(
            e,
            SpawnError::Invalid(RuntimeError::WorldSize { world: 0, sips: 4 })
        ),
        "{e}"
    );
}

#[test]
fn tensor_parallel_layers_match_ndarray() {
    let rt = Runtime::new().unwrap();
    let x = Array2::from_shape_fn((4, 8), |(i, j)| ((i + j) % 3) as f32);
    let a = Array2::from_shape_fn((8, 12), |(i, j)| ((i * 2 + j) % 3) as f32 - 1.0);
    let b = Array2::from_shape_fn((12, 8), |(i, j)| ((i + 2 * j) % 3) as f32 - 1.0);
    let hidden = x.dot(&a).mapv(|v| v.max(0.0));
    let reference = hidden.dot(&b);
    let outs = rt
        .spawn(2, |rank| {
            let mp = initialize_model_parallel(&rank, 2)?.with_layout(1, 2);
            let fc1 = ColumnParallelLinear::new(&mp, &a, None)?.with_relu();
            let fc2 = RowParallelLinear::new(&mp, &b, None)?;
            assert_eq!(fc1.weight().shape(), &[8, 6]);
            assert_eq!(fc2.weight().shape(), &[6, 8]);
            let h = fc1.forward(&mp.input(&x)?)?;
            let z = fc2.forward(&h)?;
            Ok((
                rank.get_rank(),
                h.to_ndarray::<f32>()?,
                z.to_ndarray::<f32>()?,
            ))
        })
        .unwrap();
    for (r, h, z) in outs {
        let cols = kernbench::core::runtime::ndarray::s![.., r * 6..(r + 1) * 6];
        assert_eq!(
            h,
            hidden.slice(cols).to_owned().into_dyn(),
            "rank {r}'s column slice"
        );
        assert_eq!(z, reference.clone().into_dyn(), "rank {r}'s output");
    }
    let e = rt
        .spawn(2, |rank| Ok(initialize_model_parallel(&rank, 3)?))
        .unwrap_err();
    assert!(
        e.to_string().contains("must divide the world size 2"),
        "{e}"
    );
}

#[test]
fn registry_algorithms_between_ranks() {
    use kernbench::ccl::dist::{all_reduce_with, Backend};
    use kernbench::ccl::Registry;
    let reg = Registry::builtin();
    // mesh_allreduce over 4 ranks: a 2x2 torus of SIPs per shard group.
    let mesh = Backend::with_all_reduce(&reg, "mesh_allreduce").unwrap();
    let hbm = Backend::with_all_reduce(&reg, "ring_allreduce_hbm").unwrap();
    // tree_allreduce: a binary tree of SIPs per shard group.
    let tree = Backend::with_all_reduce(&reg, "tree_allreduce").unwrap();
    let outs = quad()
        .spawn(4, |rank| {
            let r = rank.get_rank() as f64;
            let p = Placement::column_wise().cubes(1).pes(2);
            let t = rank.full(&[3, 8], DType::F32, r + 1.0, &p)?;
            all_reduce_with(&rank, &t, RedOp::Sum, &mesh)?;
            let u = rank.full(&[6], DType::I32, r * 2.0, &Placement::single())?;
            all_reduce_with(&rank, &u, RedOp::Min, &hbm)?;
            let a =
                Array2::from_shape_fn((4, 6), |(i, j)| (rank.get_rank() * 24 + i * 6 + j) as f32);
            let v = rank.from_array(&a, &Placement::row_wise().cubes(2).pes(1))?;
            let report = all_reduce_with(&rank, &v, RedOp::Max, &tree)?;
            // The same reduction over a ring takes another schedule and time.
            let w = rank.from_array(&a, &Placement::row_wise().cubes(2).pes(1))?;
            let by_ring = rank.all_reduce_op(&w, RedOp::Max)?;
            assert_eq!(w.to_ndarray::<f32>()?, v.to_ndarray::<f32>()?);
            assert_ne!(report.end_ps, by_ring.end_ps, "the tree ran, not the ring");
            Ok((
                t.to_f32_array()?,
                u.to_ndarray::<i32>()?,
                v.to_ndarray::<f32>()?,
                report,
            ))
        })
        .unwrap();
    // Rank 3's values are the largest everywhere.
    let want = Array2::from_shape_fn((4, 6), |(i, j)| (72 + i * 6 + j) as f32).into_dyn();
    for (t, u, v, report) in outs {
        assert!(t.iter().all(|v| *v == 10.0), "{t}");
        assert!(u.iter().all(|v| *v == 0), "{u}");
        assert_eq!(v, want);
        assert_eq!(report.pes.len(), 8, "4 ranks x 2 shards in one launch");
    }
    // The algorithms addressed by rank, on 3 ranks (not a power of two),
    // each shard group addressing its own ranks.
    let by_rank: Vec<Backend> = [
        "recursive_doubling",
        "rabenseifner",
        "double_tree_allreduce",
    ]
    .iter()
    .map(|a| Backend::with_all_reduce(&reg, a).unwrap())
    .collect();
    let outs = quad()
        .spawn(3, move |rank| {
            let r = rank.get_rank();
            let p = Placement::row_wise().cubes(2).pes(1);
            let mut got = Vec::new();
            for b in &by_rank {
                let a = Array2::from_shape_fn((4, 10), |(i, j)| ((r + 1) * (i * 10 + j)) as f32);
                let t = rank.from_array(&a, &p)?;
                let report = all_reduce_with(&rank, &t, RedOp::Sum, b)?;
                got.push((t.to_ndarray::<f32>()?, report.end_ps));
            }
            Ok(got)
        })
        .unwrap();
    let want = Array2::from_shape_fn((4, 10), |(i, j)| (6 * (i * 10 + j)) as f32).into_dyn();
    for got in &outs {
        for (t, _) in got {
            assert_eq!(*t, want);
        }
        let times: std::collections::BTreeSet<u64> = got.iter().map(|(_, ps)| *ps).collect();
        assert_eq!(times.len(), 3, "three different schedules: {times:?}");
    }
    // The inter-cube algorithms have no form between ranks.
    let e = Backend::with_all_reduce(&reg, "intercube_allreduce_ring").unwrap_err();
    assert_eq!(
        collective(&e),
        (
            "all_reduce",
            &CollectiveError::MapKind {
                algorithm: "intercube_allreduce_ring".into(),
                map: "IntercubeRing".into(),
                runs: ["Ring", "Torus2d", "Tree", "Hierarchical", "Ranks"]
                    .map(String::from)
                    .to_vec(),
            }
        )
    );
    assert!(
        e.to_string().contains("`intercube_allreduce_ring`")
            && e.to_string().contains("between ranks"),
        "{e}"
    );
    let e = Backend::with_all_reduce(&reg, "broadcast").unwrap_err();
    assert_eq!(
        collective(&e).1,
        &CollectiveError::WrongCollective {
            algorithm: "broadcast".into(),
            implements: "broadcast",
            wanted: "all_reduce",
        }
    );
    assert!(
        e.to_string()
            .contains("implements broadcast, not all_reduce"),
        "{e}"
    );

    // Tensors that do not pair up are an error naming the ranks, on every rank.
    let err = Runtime::new()
        .unwrap()
        .spawn(2, |rank| {
            let n = 4 + rank.get_rank();
            let t = rank.zeros(&[n], DType::F32, &Placement::single())?;
            rank.all_reduce(&t)?;
            Ok(())
        })
        .unwrap_err();
    assert_eq!(err.root_ranks(), vec![0, 1]);
    for f in failures(&err) {
        assert_eq!(
            collective(f),
            (
                "all_reduce",
                &CollectiveError::TensorMismatch {
                    rank: 1,
                    shape: vec![5],
                    dtype: DType::F32,
                    shards: 1,
                    first_rank: 0,
                    first_shape: vec![4],
                    first_dtype: DType::F32,
                    first_shards: 1,
                }
            )
        );
    }
    assert!(err.to_string().contains("rank 1's tensor is [5]"), "{err}");
}

/// `z = x + y` over `n` elements of the tensors' element type.
#[kernel]
fn add_any<T: Element>(x: Ptr<T>, y: Ptr<T>, z: Ptr<T>, n: usize) {
    let a = tl::load(x, [n]);
    let b = tl::load(y, [n]);
    tl::store(z, &(a + b));
}

#[test]
fn a_checked_launch_binds_a_generic_kernel_and_refuses_mixed_types() {
    let rt = tiny();
    let p = Placement::single();
    let y = rt.from_array(&array![0.5f32, 0.25, 4.0], &p).unwrap();
    let h = |v: [f32; 3]| Array1::from_iter(v.map(half::f16::from_f32));
    let xh = rt.from_array(&h([1.0, 2.0, 3.0]), &p).unwrap();
    let yh = rt.from_array(&h([0.5, 0.25, 4.0]), &p).unwrap();
    let zh = rt.zeros(&[3], DType::F16, &p).unwrap();
    let args = |x, y, z| {
        Args::new()
            .tensor("x", x)
            .tensor("y", y)
            .tensor("z", z)
            .int("n", 3)
    };
    dist::launch(&rt, &add_any, &[1], &args(&xh, &yh, &zh)).unwrap();
    assert_eq!(
        zh.to_ndarray::<half::f16>().unwrap(),
        h([1.5, 2.25, 7.0]).into_dyn()
    );
    // An f32 `y` beside an f16 `x`: refused before anything runs.
    let before = rt.now_ps();
    let e = dist::launch(&rt, &add_any, &[1], &args(&xh, &y, &zh)).unwrap_err();
    assert!(
        matches!(&e, RuntimeError::WrongArg { param, .. } if param == "y"),
        "{e}"
    );
    assert!(
        e.to_string().contains(
            "its tensor holds f32 but `x` holds f16: both have the kernel's element type `T`"
        ),
        "{e}"
    );
    assert_eq!(rt.now_ps(), before, "nothing ran");
}

#[test]
fn reduce_gather_and_all_to_all_between_ranks() {
    let outs = quad()
        .spawn(4, |rank| {
            let r = rank.get_rank();
            // Reduce to rank 2 over row-wise shards, and a max to rank 0 in i32.
            let t = rank.full(
                &[4, 4],
                DType::F32,
                r as f64 + 1.0,
                &Placement::row_wise().cubes(1).pes(2),
            )?;
            rank.reduce(&t, 2, RedOp::Sum)?;
            let m = rank.full(&[5], DType::I32, (3 * r) as f64, &Placement::single())?;
            rank.reduce(&m, 0, RedOp::Max)?;
            // Gather [2, 3] inputs into rank 1's [8, 3] output.
            let rep = Placement::replicate().cubes(1).pes(2);
            let x = rank.from_array(&Array2::from_elem((2, 3), r as f32 + 1.0), &rep)?;
            let out = rank.zeros(&[8, 3], DType::F32, &rep)?;
            rank.gather(&out, &x, 1)?;
            // All-to-all of 4 blocks of 2 rows: element (i, c) is 100 r + i.
            let a = Array2::from_shape_fn((8, 2), |(i, _)| (100 * r + i) as f32);
            let a = rank.from_array(&a, &Placement::single())?;
            rank.all_to_all(&a)?;
            // Refused before any rendezvous: a root past the ranks, and
            // blocks that do not divide.
            let e = rank.gather(&out, &x, 4).unwrap_err();
            assert_eq!(
                collective(&e),
                (
                    "gather",
                    &CollectiveError::RootNotRank { root: 4, world: 4 }
                )
            );
            assert!(e.to_string().contains("root 4 is not a rank"), "{e}");
            let odd = rank.zeros(&[6, 2], DType::F32, &Placement::single())?;
            let e = rank.all_to_all(&odd).unwrap_err();
            assert_eq!(
                collective(&e),
                (
                    "all_to_all",
                    &CollectiveError::AllToAllBlocks {
                        rank: r,
                        rows: 6,
                        world: 4
                    }
                )
            );
            assert!(e.to_string().contains("does not cut into 4"), "{e}");
            Ok((
                r,
                t.to_f32_array()?,
                m.to_ndarray::<i32>()?,
                out.to_ndarray::<f32>()?,
                a.to_ndarray::<f32>()?,
            ))
        })
        .unwrap();
    for (r, t, m, g, a) in outs {
        if r == 2 {
            assert!(t.iter().all(|v| *v == 10.0), "{t}");
        }
        if r == 0 {
            assert!(m.iter().all(|v| *v == 9), "{m}");
        }
        if r == 1 {
            let want = Array2::from_shape_fn((8, 3), |(i, _)| (i / 2) as f32 + 1.0).into_dyn();
            assert_eq!(g, want);
        }
        // Block j (rows 2j, 2j + 1) came from rank j's block r.
        let want = Array2::from_shape_fn((8, 2), |(i, _)| (100 * (i / 2) + 2 * r + i % 2) as f32)
            .into_dyn();
        assert_eq!(a, want, "rank {r}");
    }

    // Ranks that reduce with different operators are refused, on every rank.
    let err = quad()
        .spawn(2, |rank| {
            let op = if rank.get_rank() == 0 {
                RedOp::Max
            } else {
                RedOp::Sum
            };
            let t = rank.zeros(&[4], DType::F32, &Placement::single())?;
            rank.reduce(&t, 0, op)?;
            Ok(())
        })
        .unwrap_err();
    assert_eq!(err.root_ranks(), vec![0, 1]);
    for f in failures(&err) {
        assert_eq!(
            collective(f).1,
            &CollectiveError::OpMismatch {
                rank: 1,
                op: "sum",
                first_rank: 0,
                first_op: "max",
            }
        );
    }
    assert!(
        err.to_string()
            .contains("rank 1 reduces with sum, rank 0 with max"),
        "{err}"
    );
}

#[test]
fn free_functions_answer_for_the_worker_on_this_thread() {
    use kernbench::core::runtime::{device, dist as pg};
    // Outside any worker: a clear error naming the call.
    let e = pg::get_rank().unwrap_err();
    assert!(matches!(&e, RuntimeError::NoWorker { call } if call == "dist::get_rank"));
    assert!(e.to_string().contains("outside a worker"), "{e}");
    assert!(device::set_device(0).is_err());
    assert!(!pg::is_initialized());
    let t = tiny()
        .zeros(&[4], DType::F32, &Placement::single())
        .unwrap();
    let e = dist::all_reduce(&t, RedOp::Sum, None).unwrap_err();
    assert!(
        matches!(&e, RuntimeError::NoWorker { call } if call == "dist::all_reduce"),
        "{e}"
    );

    let outs = quad()
        .spawn(4, |rank| {
            // Before init_process_group, as in PyTorch.
            let e = pg::get_world_size().unwrap_err();
            assert!(
                e.to_string().contains("before dist::init_process_group"),
                "{e}"
            );
            let e = pg::init_process_group(4, (rank.get_rank() + 1) % 4).unwrap_err();
            assert!(
                e.to_string().contains("pass the rank and world size"),
                "{e}"
            );
            pg::init_process_group(4, rank.get_rank())?;
            let r = pg::get_rank()?;
            // set_device moves the worker's handle too.
            device::set_device(3 - r)?;
            let t = rank.zeros(&[4], DType::F32, &Placement::single())?;
            let e = device::set_device(9).unwrap_err();
            assert!(
                matches!(e, RuntimeError::NoSuchDevice { sip: 9, sips: 4 }),
                "{e}"
            );
            Ok((
                r,
                pg::get_world_size()?,
                device::current_device()?,
                rank.current_device(),
                t.sip(),
                device::device_count()?,
            ))
        })
        .unwrap();
    for (r, (got, w, d, hd, sip, n)) in outs.into_iter().enumerate() {
        assert_eq!(
            (got, w, d, hd, sip as usize, n),
            (r, 4, 3 - r, 3 - r, 3 - r, 4)
        );
    }
    // The context ends with the worker.
    assert!(pg::get_rank().is_err());
}

#[test]
fn process_groups_run_collectives_over_subsets_side_by_side() {
    use dist::Backend;
    use RedOp as Op;
    let rep = Placement::replicate().cubes(1).pes(2);
    let outs = quad()
        .spawn(4, |rank| {
            let r = rank.get_rank();
            dist::init_process_group(4, r)?;
            // Megatron's layout for tp = 2: tensor-parallel groups of
            // consecutive ranks, data-parallel groups across them.
            let tp_groups = [dist::new_group(&[0, 1])?, dist::new_group(&[2, 3])?];
            let dp_groups = [dist::new_group(&[0, 2])?, dist::new_group(&[1, 3])?];
            let (tp, dp) = (&tp_groups[r / 2], &dp_groups[r % 2]);
            assert_eq!(dist::get_group_rank(tp)?, r % 2);
            assert_eq!(dist::get_group_rank(dp)?, r / 2);
            let t = rank.full(&[4, 4], DType::F32, (r + 1) as f64, &Placement::row_wise().cubes(1).pes(2))?;
            let report = dist::all_reduce(&t, Op::Sum, Some(tp))?;
            assert_eq!(report.pes.len(), 4, "two members' two shards");
            let u = rank.full(&[4], DType::F32, (10 * (r + 1)) as f64, &Placement::single())?;
            dist::all_reduce(&u, Op::Max, Some(dp))?;
            // The root is a global rank: the group's second member.
            let b = rank.full(&[6], DType::I32, r as f64, &Placement::single())?;
            rank.broadcast_in(&b, tp.ranks()[1], tp)?;
            let x = rank.full(&[2, 3], DType::F32, r as f64, &rep)?;
            let g = rank.zeros(&[4, 3], DType::F32, &rep)?;
            dist::all_gather(&g, &x, Some(dp))?;
            let red = rank.full(&[5], DType::I32, (r + 1) as f64, &Placement::single())?;
            dist::reduce_in(&rank, &red, tp.ranks()[1], Op::Sum, tp, &Backend::default())?;
            // Errors: the calling rank outside the group, a root outside it.
            let other = &tp_groups[1 - r / 2];
            let e = dist::all_reduce(&t, Op::Sum, Some(other)).unwrap_err();
            assert!(
                matches!(&e, RuntimeError::ProcessGroup(GroupError::NotMember { rank, ranks }) if *rank == r && ranks == other.ranks()),
                "{e}"
            );
            assert!(
                e.to_string().contains(&format!(
                    "rank {r} is not a member of the group of ranks {:?}",
                    other.ranks()
                )),
                "{e}"
            );
            let e = rank.broadcast_in(&b, other.ranks()[0], tp).unwrap_err();
            assert_eq!(
                collective(&e).1,
                &CollectiveError::RootNotMember {
                    root: other.ranks()[0],
                    ranks: tp.ranks().to_vec(),
                }
            );
            assert!(e.to_string().contains("is not a member of the group"), "{e}");
            dist::barrier(Some(dp))?;
            Ok((
                t.to_ndarray::<f32>()?,
                u.to_ndarray::<f32>()?,
                b.to_ndarray::<i32>()?,
                g.to_ndarray::<f32>()?,
                red.to_ndarray::<i32>()?,
            ))
        })
        .unwrap();
    for (r, (t, u, b, g, red)) in outs.into_iter().enumerate() {
        let tp_sum = if r < 2 { 3.0 } else { 7.0 };
        assert!(t.iter().all(|v| *v == tp_sum), "rank {r}: {t}");
        let dp_max = if r % 2 == 0 { 30.0 } else { 40.0 };
        assert!(u.iter().all(|v| *v == dp_max), "rank {r}: {u}");
        let root = if r < 2 { 1 } else { 3 };
        assert!(b.iter().all(|v| *v == root), "rank {r}: {b}");
        let (lo, hi) = ((r % 2) as f32, (r % 2 + 2) as f32);
        let want = Array2::from_shape_fn((4, 3), |(i, _)| if i < 2 { lo } else { hi }).into_dyn();
        assert_eq!(g, want, "rank {r}: gathered in group rank order");
        if r == root as usize {
            let s = if r < 2 { 3 } else { 7 };
            assert!(red.iter().all(|v| *v == s), "rank {r}: {red}");
        }
    }
}

#[test]
fn bad_process_groups_are_clear_errors() {
    let rt = quad();
    rt.spawn(4, |rank| {
        let cases: [(&[usize], &str); 3] = [
            (&[0, 4], "rank 4 is not in the run (ranks 0..4)"),
            (&[1, 2, 1], "rank 1 is listed twice"),
            (&[], "at least one rank"),
        ];
        for (ranks, want) in cases {
            let e = rank.new_group(ranks).unwrap_err();
            assert!(e.to_string().contains(want), "{e}");
            let typed = match &e {
                RuntimeError::ProcessGroup(GroupError::OutOfRange { rank, world, .. }) => {
                    (*rank, *world) == (4, 4)
                }
                RuntimeError::ProcessGroup(GroupError::Repeated { rank, .. }) => *rank == 1,
                RuntimeError::ProcessGroup(GroupError::Empty { .. }) => ranks.is_empty(),
                _ => false,
            };
            assert!(typed, "{e:?}");
        }
        Ok(())
    })
    .unwrap();
    // Ranks that disagree on a group fail together, naming both lists.
    let e = rt
        .spawn(4, |rank| {
            let mine: Vec<usize> = if rank.get_rank() == 3 {
                vec![0, 2]
            } else {
                vec![0, 1]
            };
            rank.new_group(&mine)?;
            Ok(())
        })
        .unwrap_err();
    assert_eq!(e.root_ranks(), vec![0, 1, 2, 3]);
    assert!(
        e.to_string()
            .contains("rank 3 passed [0, 2], rank 0 passed [0, 1]"),
        "{e}"
    );
    // The non-members' exits do not disturb a group.
    let rt2 = rt.clone();
    let outs = within(60, move || {
        rt2.spawn(4, |rank| {
            let g = rank.new_group(&[0, 1])?;
            if rank.get_rank() >= 2 {
                return Ok(0.0);
            }
            let t = rank.full(&[8], DType::F32, 1.0, &Placement::single())?;
            rank.all_reduce_in(&t, RedOp::Sum, &g)?;
            Ok(t.to_ndarray::<f32>()?[0])
        })
        .unwrap()
    });
    assert_eq!(outs, vec![2.0, 2.0, 0.0, 0.0]);
    // A member left alone by a returning member is released, naming it.
    let e = within(60, move || {
        rt.spawn(4, |rank| {
            let h = rank.new_group(&[2, 3])?;
            if rank.get_rank() == 2 {
                rank.barrier_in(&h)?;
            }
            Ok(()) // rank 3 never joins its group's barrier
        })
        .unwrap_err()
    });
    match &e {
        SpawnError::Failed { failures, released } => {
            assert_eq!(failures.len(), 1, "{e}");
            assert_eq!(failures[0].rank, 2);
            assert!(released.is_empty());
            let msg = failures[0].error.to_string();
            assert!(msg.contains("rank 3 has already returned"), "{msg}");
        }
        _ => panic!("{e}"),
    }
}

#[test]
fn reduce_scatter_and_shardwise_gathers_in_groups() {
    use dist::{all_gather_shards_in, reduce_scatter_shards_in, Backend};
    let be = Backend::default();
    let rep = Placement::replicate().cubes(1).pes(2);
    let rows = Placement::row_wise().cubes(1).pes(2);
    let outs = quad()
        .spawn(4, |rank| {
            let r = rank.get_rank();
            dist::init_process_group(4, r)?;
            let g = dist::new_group(&[3, 1, 0])?; // group ranks: 3 -> 0, 1 -> 1, 0 -> 2
            let _h = dist::new_group(&[2])?;
            if !g.contains(r) {
                return Ok(None);
            }
            // torch's reduce_scatter_tensor on replicated tensors: block j of
            // the sum lands in group rank j.
            let input = rank.from_array(
                &Array2::from_shape_fn((6, 4), |(i, j)| (100 * r + 10 * i + j) as f32),
                &rep,
            )?;
            let out = rank.zeros(&[2, 4], DType::F32, &rep)?;
            dist::reduce_scatter(&out, &input, RedOp::Sum, Some(&g))?;
            // Shard by shard on row-split tensors, and back with the gather.
            let split = rank.from_array(
                &Array2::from_shape_fn((12, 2), |(i, j)| (r * 1000 + i * 2 + j) as f32),
                &rows,
            )?;
            let mine = rank.zeros(&[4, 2], DType::F32, &rows)?;
            reduce_scatter_shards_in(&rank, &mine, &split, RedOp::Max, &g, &be)?;
            let back = rank.zeros(&[12, 2], DType::F32, &rows)?;
            all_gather_shards_in(&rank, &back, &mine, &g, &be)?;
            // Split tensors need the shard-wise form; shapes must agree.
            let e = dist::reduce_scatter(&mine, &split, RedOp::Sum, Some(&g)).unwrap_err();
            assert_eq!(collective(&e).1, &CollectiveError::GatherSplit { rank: r });
            assert!(e.to_string().contains("not split"), "{e}");
            let bad = rank.zeros(&[3, 4], DType::F32, &rep)?;
            let e = dist::reduce_scatter(&bad, &input, RedOp::Sum, Some(&g)).unwrap_err();
            assert_eq!(
                collective(&e).1,
                &CollectiveError::GatherShape {
                    rank: r,
                    world: 3,
                    input: vec![3, 4],
                    dtype: DType::F32,
                    want: vec![9, 4],
                    output: vec![6, 4],
                    output_dtype: DType::F32,
                }
            );
            assert!(
                e.to_string()
                    .contains("3 blocks of [3, 4] f32 make a [9, 4] f32 tensor, not [6, 4] f32"),
                "{e}"
            );
            Ok(Some((
                dist::get_group_rank(&g)?,
                out.to_ndarray::<f32>()?,
                mine.to_ndarray::<f32>()?,
                back.to_ndarray::<f32>()?,
            )))
        })
        .unwrap();
    let members = [3usize, 1, 0];
    let sum = Array2::from_shape_fn((6, 4), |(i, j)| {
        members
            .iter()
            .map(|m| (100 * m + 10 * i + j) as f32)
            .sum::<f32>()
    });
    // Max over the members: rank 3's values everywhere.
    let max = Array2::from_shape_fn((12, 2), |(i, j)| (3000 + i * 2 + j) as f32);
    for (gr, out, mine, back) in outs.into_iter().flatten() {
        let block = sum.slice(kernbench::core::runtime::ndarray::s![
            2 * gr..2 * gr + 2,
            ..
        ]);
        assert_eq!(out, block.to_owned().into_dyn(), "group rank {gr}");
        // Shard k (rows 6k .. 6k + 6) cut into 3 chunks of 2 rows: chunk gr
        // goes to shard k of group rank gr's output (rows 2k .. 2k + 2).
        let want = Array2::from_shape_fn((4, 2), |(i, j)| {
            let (k, q) = (i / 2, i % 2);
            max[[6 * k + 2 * gr + q, j]]
        });
        assert_eq!(mine, want.into_dyn(), "group rank {gr}");
        assert_eq!(
            back,
            max.clone().into_dyn(),
            "group rank {gr}: the gather undoes the scatter"
        );
    }
}

/// The collective and what went wrong, of a [`RuntimeError::Collective`].
fn collective(e: &RuntimeError) -> (&str, &CollectiveError) {
    match e {
        RuntimeError::Collective { what, kind } => (what, kind),
        other => panic!("not a collective error: {other}"),
    }
}

/// The runtime errors of a failed run's root-cause ranks.
fn failures(e: &SpawnError) -> Vec<&RuntimeError> {
    let SpawnError::Failed { failures, .. } = e else {
        panic!("the run did not start: {e}");
    };
    failures
        .iter()
        .map(|f| {
            f.error
                .downcast_ref::<RuntimeError>()
                .expect("a runtime error")
        })
        .collect()
}

#[test]
fn collective_errors_carry_the_ranks_and_values_involved() {
    use kernbench::ccl::dist::{all_gather_shards_in, Backend};
    use kernbench::ccl::Registry;
    let reg = Registry::builtin();
    let e = Backend::with_all_reduce(&reg, "no_such_algorithm").unwrap_err();
    let known: Vec<String> = reg.algorithms().iter().map(|a| a.name.clone()).collect();
    assert_eq!(
        collective(&e),
        (
            "all_reduce",
            &CollectiveError::UnknownAlgorithm {
                name: "no_such_algorithm".into(),
                known: known.clone(),
            }
        )
    );
    assert!(e.to_string().contains(&known.join(", ")), "{e}");

    // Checked on each rank before any rendezvous.
    quad()
        .spawn(2, |rank| {
            let r = rank.get_rank();
            let rows = Placement::row_wise().cubes(1).pes(2);
            let split = rank.zeros(&[4, 2], DType::F32, &rows)?;
            let e = rank.all_to_all(&split).unwrap_err();
            assert_eq!(
                collective(&e),
                ("all_to_all", &CollectiveError::AllToAllSplit { rank: r })
            );
            let one = rank.zeros(&[2, 2], DType::F32, &Placement::single())?;
            let both = rank.zeros(&[4, 2], DType::F32, &Placement::replicate().cubes(1).pes(2))?;
            let e = rank.all_gather(&both, &one).unwrap_err();
            assert_eq!(
                collective(&e),
                ("all_gather", &CollectiveError::GatherPes { rank: r })
            );
            let uneven = rank.zeros(&[3, 2], DType::F32, &rows)?;
            let out = rank.zeros(&[6, 2], DType::F32, &rows)?;
            let world = rank.world_group();
            let e = all_gather_shards_in(&rank, &out, &uneven, &world, &Backend::default())
                .unwrap_err();
            assert_eq!(
                collective(&e),
                (
                    "all_gather",
                    &CollectiveError::GatherShards { rank: r, world: 2 }
                )
            );
            Ok(())
        })
        .unwrap();

    // Checked when the ranks meet: every rank fails with the same error.
    let both_fail = |err: SpawnError, what: &str, want: CollectiveError| {
        assert_eq!(err.root_ranks(), vec![0, 1], "{err}");
        for f in failures(&err) {
            assert_eq!(collective(f), (what, &want));
        }
    };
    let err = quad()
        .spawn(2, |rank| {
            let t = rank.zeros(&[4], DType::F32, &Placement::single())?;
            rank.broadcast(&t, rank.get_rank())?;
            Ok(())
        })
        .unwrap_err();
    both_fail(
        err,
        "broadcast",
        CollectiveError::ArgMismatch {
            rank: 1,
            arg: "root".into(),
            value: 1,
            first_rank: 0,
            first_value: 0,
        },
    );
    let err = quad()
        .spawn(2, |rank| {
            rank.set_device(0)?;
            let t = rank.zeros(&[4], DType::F32, &Placement::single())?;
            rank.all_reduce(&t)?;
            Ok(())
        })
        .unwrap_err();
    let pe = kernbench::core::PeId::new(0, 0, 0);
    both_fail(
        err,
        "all_reduce",
        CollectiveError::SharedPe {
            rank: 1,
            other: 0,
            pe,
        },
    );
    let err = quad()
        .spawn(2, |rank| {
            let t = rank.zeros(&[3], DType::F32, &Placement::row_wise().cubes(1).pes(2))?;
            rank.all_reduce(&t)?;
            Ok(())
        })
        .unwrap_err();
    both_fail(
        err,
        "all_reduce",
        CollectiveError::UnequalShards { rank: 0 },
    );
    // Ranks whose rendezvous results are of different types.
    let err = quad()
        .spawn(2, |rank| {
            if rank.get_rank() == 0 {
                rank.rendezvous("meet", (), |_| Ok(1u32))?;
            } else {
                rank.rendezvous("meet", (), |_| Ok(String::new()))?;
            }
            Ok(())
        })
        .unwrap_err();
    let kinds: Vec<_> = failures(&err).into_iter().map(collective).collect();
    assert_eq!(kinds, vec![("meet", &CollectiveError::ResultType)], "{err}");
}

#[test]
fn memory_errors_say_what_the_runtime_was_doing() {
    let rt = tiny();
    let huge = [1 << 20, 1 << 20];
    let e = rt
        .zeros(&huge, DType::F32, &Placement::single())
        .unwrap_err();
    let RuntimeError::Memory { what, err } = &e else {
        panic!("not a memory error: {e}");
    };
    assert_eq!(
        what,
        &MemoryOp::Alloc {
            shape: huge.to_vec(),
            dtype: DType::F32
        }
    );
    assert_eq!(
        e.to_string(),
        format!("allocating a {huge:?} f32 tensor: {err}")
    );

    // A tensor whose memory was freed behind its back.
    let t = rt.zeros(&[4], DType::F32, &Placement::single()).unwrap();
    rt.machine().free(t.va()).unwrap();
    let op = |e: RuntimeError| match e {
        RuntimeError::Memory { what, .. } => what,
        other => panic!("not a memory error: {other}"),
    };
    assert_eq!(op(t.to_ndarray::<f32>().unwrap_err()), MemoryOp::Read);
    assert_eq!(
        op(t.copy_from(&Array1::<f32>::zeros(4)).unwrap_err()),
        MemoryOp::Write
    );
    assert_eq!(op(t.free().unwrap_err()), MemoryOp::Free);
}

/// The hierarchical all-reduce between ranks: on a tensor replicated over
/// a rank's PEs, each replica reduces one chunk across the ranks and the
/// replicas gather the chunks, so fewer bytes cross between SIPs than when
/// every replica reduces the whole tensor (the ring); on a split tensor
/// each shard is already one PE's part, and it runs as the ring.
#[test]
fn the_hierarchical_all_reduce_splits_replicas_work_between_ranks() {
    use kernbench::ccl::dist::{all_reduce_with, Backend};
    use kernbench::ccl::Registry;
    let reg = Registry::builtin();
    let run = |algorithm: &'static str, placement: Placement| {
        let b = Backend::with_all_reduce(&reg, algorithm).unwrap();
        quad()
            .spawn(4, move |rank| {
                let r = rank.get_rank();
                let a = Array2::from_shape_fn((64, 256), |(i, j)| {
                    ((r + 1) * (i * 256 + j) % 97) as f32
                });
                let t = rank.from_array(&a, &placement)?;
                let report = all_reduce_with(&rank, &t, RedOp::Sum, &b)?;
                let per_shard: Vec<_> = (0..t.shards().len())
                    .map(|k| t.shard_to_ndarray::<f32>(k))
                    .collect::<Result<_, _>>()?;
                assert!(matches!(
                    t.shard_to_ndarray::<f32>(t.shards().len()),
                    Err(RuntimeError::NoSuchShard { .. })
                ));
                Ok((t.to_ndarray::<f32>()?, per_shard, report.end_ps))
            })
            .unwrap()
    };
    let want = Array2::from_shape_fn((64, 256), |(i, j)| {
        (0..4)
            .map(|r| ((r + 1) * (i * 256 + j) % 97) as f32)
            .sum::<f32>()
    })
    .into_dyn();
    let replicated = Placement::replicate().cubes(1).pes(4);
    let (hier, ring) = (
        run("hierarchical_allreduce", replicated.clone()),
        run("ring_allreduce", replicated),
    );
    for (t, shards, _) in hier.iter().chain(&ring) {
        assert_eq!(*t, want);
        // Every replica holds the whole result, not only its chunk.
        assert_eq!(shards.len(), 4);
        for s in shards {
            assert_eq!(*s, want);
        }
    }
    let (h, r) = (hier[0].2, ring[0].2);
    println!("replicated over 4 PEs: hierarchical {h} ps, ring {r} ps");
    assert!(h < r, "a quarter of the bytes between SIPs: {h} vs {r}");
    // A split tensor: the same schedule as the ring.
    let split = Placement::row_wise().cubes(1).pes(4);
    let (hs, rs) = (
        run("hierarchical_allreduce", split.clone()),
        run("ring_allreduce", split),
    );
    for (t, _, _) in hs.iter().chain(&rs) {
        assert_eq!(*t, want);
    }
    assert_eq!(hs[0].2, rs[0].2);
}

/// The hierarchical all-gather and reduce-scatter between ranks: on tensors
/// replicated over a rank's PEs, each replica moves one part of every
/// rank's block across the ranks and the replicas gather the parts; every
/// replica ends with the whole result, sooner than when each replica moves
/// every block (the ring).
#[test]
fn the_hierarchical_all_gather_and_reduce_scatter_split_replicas_work() {
    use kernbench::ccl::dist::{all_gather_in, reduce_scatter_in, Backend};
    use kernbench::ccl::Registry;
    let reg = Registry::builtin();
    let hier = Backend::default()
        .with(&reg, "hierarchical_allgather")
        .unwrap()
        .with(&reg, "hierarchical_reduce_scatter")
        .unwrap();
    let run = |b: Backend| {
        quad()
            .spawn(4, move |rank| {
                let r = rank.get_rank();
                let world = rank.world_group();
                let p = Placement::replicate().cubes(1).pes(4);
                let x = rank.from_array(
                    &Array2::from_shape_fn((16, 256), |(i, j)| (r * 1000 + i * 7 + j % 13) as f32),
                    &p,
                )?;
                let out = rank.zeros(&[64, 256], DType::F32, &p)?;
                let ag = all_gather_in(&rank, &out, &x, &world, &b)?;
                let big =
                    Array2::from_shape_fn((64, 256), |(i, j)| ((r + 1) * (i * 3 + j % 11)) as f32);
                let input = rank.from_array(&big, &p)?;
                let mine = rank.zeros(&[16, 256], DType::F32, &p)?;
                let rs = reduce_scatter_in(&rank, &mine, &input, RedOp::Sum, &world, &b)?;
                let replicas = |t: &kernbench::core::runtime::DeviceTensor| {
                    (0..t.shards().len())
                        .map(|k| t.shard_to_ndarray::<f32>(k))
                        .collect::<Result<Vec<_>, _>>()
                };
                Ok((replicas(&out)?, replicas(&mine)?, ag.end_ps, rs.end_ps))
            })
            .unwrap()
    };
    let (h, ring) = (run(hier), run(Backend::default()));
    let gathered = Array2::from_shape_fn((64, 256), |(i, j)| {
        ((i / 16) * 1000 + (i % 16) * 7 + j % 13) as f32
    })
    .into_dyn();
    for (r, (outs, mines, _, _)) in h.iter().chain(&ring).enumerate() {
        let r = r % 4;
        let block = Array2::from_shape_fn((16, 256), |(i, j)| {
            (10 * ((16 * r + i) * 3 + j % 11)) as f32
        })
        .into_dyn();
        assert_eq!(outs.len(), 4);
        for o in outs {
            assert_eq!(*o, gathered, "rank {r}");
        }
        for m in mines {
            assert_eq!(*m, block, "rank {r}");
        }
    }
    println!(
        "all-gather: hierarchical {} ps, ring {} ps; reduce-scatter: hierarchical {} ps, ring {} ps",
        h[0].2, ring[0].2, h[0].3, ring[0].3
    );
    assert!(h[0].2 < ring[0].2, "all-gather");
    assert!(h[0].3 < ring[0].3, "reduce-scatter");
}
