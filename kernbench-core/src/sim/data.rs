//! Data execution: every command really computes, with ndarray, at the
//! simulated time it completes; sends snapshot their tile when they start and
//! the receiver gets exactly those values.

use super::domain::Exec;
use super::error::SimError;
use super::race::RaceCheck;
use crate::ir::{CmdId, Command, CommandGraph, Epilogue, MathOp, MemRef, Operand, ReduceOp, View};
use crate::machine::{Machine, MemError};
use crate::passes::lower::runs_of;
use crate::passes::pair::Channels;
use crate::{DType, PeId};
use ndarray::{ArrayD, Axis, IxDyn};
use std::collections::VecDeque;

/// Tile values of every instance, and messages in flight on every channel.
/// A value lives from the command that computes it to the last command that
/// reads it, as its tile does in TCM.
pub(crate) struct DataState {
    pub(crate) values: Vec<Vec<Option<ArrayD<f32>>>>,
    /// Readers of each value that have not completed yet.
    uses: Vec<Vec<u32>>,
    in_flight: Vec<VecDeque<ArrayD<f32>>>,
    /// Host memory available when the run began: no region's values may need more.
    host_bytes: u64,
}

/// The byte runs of a region whose values a data run can hold in
/// `host_bytes` of host memory: its values as f32, its bytes and one run
/// per row. A streamed operand is not bounded by the TCM, and a region of
/// a huge row count would otherwise abort on allocating its runs.
fn host_region_runs(r: &MemRef, host_bytes: u64) -> Result<crate::passes::lower::Runs, MemError> {
    let elems = r
        .shape
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d as u64))
        .unwrap_or(u64::MAX);
    let rows = match r.view {
        View::Flat { .. } => 1,
        View::Block { .. } => r.shape.first().map_or(1, |&n| n as u64),
    };
    let need = elems
        .saturating_mul(4 + r.dtype.size() as u64)
        .saturating_add(rows.saturating_mul(16));
    if need > host_bytes {
        return Err(MemError::DataTooLarge {
            elems,
            need,
            available: host_bytes,
        });
    }
    Ok(region_runs(r))
}

pub(crate) fn region_runs(r: &MemRef) -> crate::passes::lower::Runs {
    match r.view {
        View::Flat { .. } => runs_of(r, 0, r.shape.iter().product()),
        View::Block { .. } => runs_of(r, 0, r.shape[0]),
    }
}

/// `op` over `n` elements whose operands are columns (flat slices of at
/// least `n`) or scalars, in one pass specialised to the operator, so each
/// operator's loop is compiled on its own and the common shapes (two
/// columns; a column and a scalar) run without a per-element branch.
fn elementwise(op: MathOp, n: usize, cols: [Option<&[f32]>; 3], scal: [f32; 3]) -> Vec<f32> {
    #[inline(always)]
    fn each(
        n: usize,
        cols: [Option<&[f32]>; 3],
        [s0, s1, s2]: [f32; 3],
        f: impl Fn(f32, f32, f32) -> f32,
    ) -> Vec<f32> {
        match cols {
            [Some(a), Some(b), None] => a[..n]
                .iter()
                .zip(&b[..n])
                .map(|(x, y)| f(*x, *y, s2))
                .collect(),
            [Some(a), None, None] => a[..n].iter().map(|x| f(*x, s1, s2)).collect(),
            [None, Some(b), None] => b[..n].iter().map(|y| f(s0, *y, s2)).collect(),
            _ => {
                let at = |c: Option<&[f32]>, s: f32, i: usize| c.map_or(s, |c| c[i]);
                (0..n)
                    .map(|i| f(at(cols[0], s0, i), at(cols[1], s1, i), at(cols[2], s2, i)))
                    .collect()
            }
        }
    }
    macro_rules! by_op {
        ($($v:ident)*) => {
            match op {
                $(MathOp::$v => each(n, cols, scal, |a, b, c| MathOp::$v.apply(a, b, c)),)*
            }
        };
    }
    by_op!(Add Sub Mul Div Max Min Fma Clamp Exp Neg Relu Cast Exp2 Log Log2 Sqrt Rsqrt
        Tanh Sigmoid Gelu Abs Pow Lt Le Gt Ge Eq Ne And Or Xor Not Where)
}

fn read_region(
    m: &Machine,
    pe: PeId,
    r: &MemRef,
    runs: &[(u64, u64)],
) -> Result<ArrayD<f32>, crate::machine::MemError> {
    // Every run must be mapped before room is made for the region: a region
    // far outside the buffers may name more bytes than the host has.
    for &(va, len) in runs {
        m.translate(pe, va, len)?;
    }
    let mut out = Vec::with_capacity(r.shape.iter().product());
    for &(va, len) in runs {
        m.read_values(pe, va, len, r.dtype, &mut out)?;
    }
    Ok(ArrayD::from_shape_vec(IxDyn(&r.shape), out).expect("region size matches its shape"))
}

fn write_region(
    m: &mut Machine,
    pe: PeId,
    r: &MemRef,
    runs: &[(u64, u64)],
    v: &ArrayD<f32>,
) -> Result<(), crate::machine::MemError> {
    let es = r.dtype.size();
    let owned;
    let flat: &[f32] = match v.as_slice() {
        Some(s) => s,
        None => {
            owned = v.iter().copied().collect::<Vec<f32>>();
            &owned
        }
    };
    let mut at = 0usize;
    for &(va, len) in runs {
        let n = len as usize / es;
        m.write_values(pe, va, r.dtype, &flat[at..at + n])?;
        at += n;
    }
    Ok(())
}

/// Writes only the elements of `v` where `mask` (the region's shape) is
/// non-zero; the other elements keep their bytes, as a write with byte
/// enables leaves them.
fn write_region_masked(
    m: &mut Machine,
    pe: PeId,
    r: &MemRef,
    runs: &[(u64, u64)],
    v: &ArrayD<f32>,
    mask: &[f32],
) -> Result<(), crate::machine::MemError> {
    let es = r.dtype.size();
    let flat: Vec<f32> = v.iter().copied().collect();
    let mut at = 0usize;
    let (mut old, mut new) = (Vec::new(), Vec::new());
    for &(va, len) in runs {
        let n = len as usize / es;
        old.clear();
        old.resize(len as usize, 0);
        m.read(pe, va, &mut old)?;
        new.clear();
        new.resize(len as usize, 0);
        r.dtype.encode_slice(&flat[at..at + n], &mut new);
        for (k, keep) in mask[at..at + n].iter().enumerate() {
            if *keep != 0.0 {
                old[k * es..(k + 1) * es].copy_from_slice(&new[k * es..(k + 1) * es]);
            }
        }
        m.write(pe, va, &old)?;
        at += n;
    }
    Ok(())
}

/// What a data run checks for races: the detector, and the launch's graphs
/// and channels it walks.
pub(crate) struct Races<'a> {
    pub(crate) check: &'a mut RaceCheck,
    pub(crate) graphs: &'a [CommandGraph],
    pub(crate) channels: &'a Channels,
}

/// The parts of `runs` (a region's runs, in element order) whose elements
/// `mask` (row-major over the region) selects: what a masked access touches.
fn selected_runs(r: &MemRef, runs: &[(u64, u64)], mask: &[f32]) -> Vec<(u64, u64)> {
    let es = r.dtype.size() as u64;
    let mut out = Vec::new();
    let mut at = 0usize;
    for &(va, len) in runs {
        let n = (len / es) as usize;
        let on = &mask[at..at + n];
        let mut k = 0;
        while k < n {
            if on[k] != 0.0 {
                let s = k;
                while k < n && on[k] != 0.0 {
                    k += 1;
                }
                out.push((va + s as u64 * es, (k - s) as u64 * es));
            } else {
                k += 1;
            }
        }
        at += n;
    }
    out
}

/// The elements of `v` broadcast to `shape`, in row-major order.
fn broadcast_flat(v: &ArrayD<f32>, shape: &[usize]) -> Vec<f32> {
    v.broadcast(IxDyn(shape))
        .expect("shapes broadcast (checked when traced)")
        .iter()
        .copied()
        .collect()
}

/// The index of the first element `better` than all before it (`better(x, best)`).
fn arg_index(lane: ndarray::ArrayView1<'_, f32>, better: impl Fn(f32, f32) -> bool) -> f32 {
    let mut best = 0usize;
    let mut bv = f32::NAN;
    for (i, &x) in lane.iter().enumerate() {
        if i == 0 || better(x, bv) {
            best = i;
            bv = x;
        }
    }
    best as f32
}

fn round(v: &mut ArrayD<f32>, dtype: DType) {
    if dtype != DType::F32 {
        v.mapv_inplace(|x| dtype.round(x));
    }
}

impl DataState {
    pub(crate) fn new(graphs: &[CommandGraph], channels: usize) -> Self {
        DataState {
            values: graphs.iter().map(|g| vec![None; g.len()]).collect(),
            uses: graphs
                .iter()
                .map(|g| {
                    let mut u = vec![0u32; g.len()];
                    for (_, node) in g.nodes() {
                        for v in node.cmd.operands() {
                            u[v.index()] += 1;
                        }
                    }
                    u
                })
                .collect(),
            in_flight: vec![VecDeque::new(); channels],
            host_bytes: super::memory::available_memory().unwrap_or(u64::MAX),
        }
    }

    fn val(&self, inst: usize, v: CmdId) -> &ArrayD<f32> {
        self.values[inst][v.index()]
            .as_ref()
            .expect("operands complete before their users")
    }

    /// Value `v` for a reader: moved out when that reader is its last, else copied.
    fn take_or_clone(&mut self, inst: usize, v: CmdId) -> ArrayD<f32> {
        if self.uses[inst][v.index()] == 1 {
            self.values[inst][v.index()]
                .take()
                .expect("operands complete before their users")
        } else {
            self.val(inst, v).clone()
        }
    }

    /// A send starts: its tile goes on the channel.
    pub(crate) fn send_start(&mut self, inst: usize, g: &CommandGraph, cmd: CmdId, chan: u32) {
        if let Command::Send { value, .. } = &g.node(cmd).cmd {
            let v = self.take_or_clone(inst, *value);
            self.in_flight[chan as usize].push_back(v);
        }
    }

    /// Executes a command that has just completed, reporting its memory
    /// accesses to `ex` (the run's race check).
    pub(crate) fn complete(&mut self, ex: &mut Exec<'_>) -> Result<(), SimError> {
        let (pe, inst, g, cmd, chan) = (ex.pe, ex.inst, ex.graph, ex.cmd, ex.chan);
        let node = g.node(cmd);
        let racing = ex.checks_races();
        let mem_err = |err| SimError::Memory {
            pe,
            loc: node.loc.clone(),
            err,
        };
        let out: Option<ArrayD<f32>> = match &node.cmd {
            Command::Load { src, mask: None } | Command::Stream { src } => {
                let runs = host_region_runs(src, self.host_bytes).map_err(mem_err)?;
                let v = read_region(ex.machine, pe, src, &runs)
                    .map_err(|e| mem_err(ex.machine.through_param(e, src)))?;
                ex.accessed(false, &runs)?;
                Some(v)
            }
            Command::Load {
                src,
                mask: Some(lm),
            } => {
                let runs = host_region_runs(src, self.host_bytes).map_err(mem_err)?;
                let mut v = read_region(ex.machine, pe, src, &runs)
                    .map_err(|e| mem_err(ex.machine.through_param(e, src)))?;
                let mask = broadcast_flat(self.val(inst, lm.mask), &src.shape);
                if racing {
                    ex.accessed(false, &selected_runs(src, &runs, &mask))?;
                }
                let other = src.dtype.round(lm.other as f32);
                for (x, k) in v.iter_mut().zip(&mask) {
                    if *k == 0.0 {
                        *x = other;
                    }
                }
                Some(v)
            }
            Command::Store {
                dst,
                value,
                mask: None,
            } => {
                let runs = host_region_runs(dst, self.host_bytes).map_err(mem_err)?;
                write_region(ex.machine, pe, dst, &runs, self.val(inst, *value))
                    .map_err(|e| mem_err(ex.machine.through_param(e, dst)))?;
                ex.accessed(true, &runs)?;
                None
            }
            Command::Store {
                dst,
                value,
                mask: Some(mk),
            } => {
                let mask = broadcast_flat(self.val(inst, *mk), &dst.shape);
                let runs = host_region_runs(dst, self.host_bytes).map_err(mem_err)?;
                write_region_masked(ex.machine, pe, dst, &runs, self.val(inst, *value), &mask)
                    .map_err(|e| mem_err(ex.machine.through_param(e, dst)))?;
                if racing {
                    ex.accessed(true, &selected_runs(dst, &runs, &mask))?;
                }
                None
            }
            Command::Full { value } => Some(ArrayD::from_elem(
                IxDyn(&node.ty.shape),
                node.ty.dtype.round(*value as f32),
            )),
            Command::Dot {
                a,
                b,
                acc,
                epilogue,
            } => {
                let a = self.val(inst, *a);
                let b = self.val(inst, *b);
                let a2 = a
                    .view()
                    .into_dimensionality::<ndarray::Ix2>()
                    .expect("dot operands are 2D");
                let b2 = b
                    .view()
                    .into_dimensionality::<ndarray::Ix2>()
                    .expect("dot operands are 2D");
                let mut c = a2.dot(&b2).into_dyn();
                if let Some(acc) = acc {
                    c += self.val(inst, *acc);
                }
                for e in epilogue {
                    match e {
                        Epilogue::Bias(x) => {
                            // Broadcast by numpy's rules (checked when traced).
                            c += self.val(inst, *x);
                        }
                        Epilogue::Scale(s) => c.mapv_inplace(|x| x * *s as f32),
                        Epilogue::Relu => c.mapv_inplace(|x| x.max(0.0)),
                        Epilogue::Gelu => c.mapv_inplace(crate::ir::gelu),
                        // The conversion is the rounding to the result type below.
                        Epilogue::Cast(_) => {}
                    }
                }
                round(&mut c, node.ty.dtype);
                Some(c)
            }
            Command::Math { op, args } => {
                // Operands as flat slices of the result shape (or scalars)
                // once, then one pass; a broadcast operand is spread first.
                let shape = &node.ty.shape;
                let owned: Vec<Option<std::borrow::Cow<'_, [f32]>>> = args
                    .iter()
                    .map(|o| match o {
                        Operand::Value(v) => {
                            let a = self.val(inst, *v);
                            Some(match a.as_slice() {
                                Some(s) if a.shape() == &shape[..] => std::borrow::Cow::Borrowed(s),
                                _ => std::borrow::Cow::Owned(broadcast_flat(a, shape)),
                            })
                        }
                        Operand::Scalar(_) => None,
                    })
                    .collect();
                let scalar = |k: usize| match args.get(k) {
                    Some(Operand::Scalar(s)) => *s as f32,
                    _ => 0.0,
                };
                let (s0, s1, s2) = (scalar(0), scalar(1), scalar(2));
                let col = |k: usize| owned.get(k).and_then(|c| c.as_deref());
                let (c0, c1, c2) = (col(0), col(1), col(2));
                let n = node.ty.elems();
                let out_dtype = node.ty.dtype;
                let mut data = elementwise(*op, n, [c0, c1, c2], [s0, s1, s2]);
                if out_dtype != DType::F32 {
                    data.iter_mut().for_each(|x| *x = out_dtype.round(*x));
                }
                Some(
                    ArrayD::from_shape_vec(IxDyn(&node.ty.shape), data).expect("math result shape"),
                )
            }
            Command::Reduce { op, x, axis } => {
                let v = self.val(inst, *x);
                let mut r = match op {
                    ReduceOp::Sum => v.sum_axis(Axis(*axis)),
                    ReduceOp::Max => v.fold_axis(Axis(*axis), f32::NEG_INFINITY, |a, b| a.max(*b)),
                    ReduceOp::Min => v.fold_axis(Axis(*axis), f32::INFINITY, |a, b| a.min(*b)),
                    ReduceOp::Argmax => v.map_axis(Axis(*axis), |l| {
                        arg_index(l, |x, b| x > b || (x.is_nan() && !b.is_nan()))
                    }),
                    ReduceOp::Argmin => v.map_axis(Axis(*axis), |l| {
                        arg_index(l, |x, b| x < b || (x.is_nan() && !b.is_nan()))
                    }),
                }
                .insert_axis(Axis(*axis));
                round(&mut r, node.ty.dtype);
                Some(r)
            }
            Command::Softmax { x, axis } => {
                let v = self.val(inst, *x);
                let mx = v
                    .fold_axis(Axis(*axis), f32::NEG_INFINITY, |a, b| a.max(*b))
                    .insert_axis(Axis(*axis));
                let mut e = v - &mx;
                e.mapv_inplace(f32::exp);
                let s = e.sum_axis(Axis(*axis)).insert_axis(Axis(*axis));
                let mut r = e / &s;
                round(&mut r, node.ty.dtype);
                Some(r)
            }
            Command::Reshape { x } => {
                let v = self.val(inst, *x);
                Some(
                    ArrayD::from_shape_vec(IxDyn(&node.ty.shape), v.iter().copied().collect())
                        .expect("reshape keeps the element count"),
                )
            }
            Command::Broadcast { x } => Some(
                ArrayD::from_shape_vec(
                    IxDyn(&node.ty.shape),
                    broadcast_flat(self.val(inst, *x), &node.ty.shape),
                )
                .expect("broadcast result shape"),
            ),
            Command::Trans { x } => {
                let v = self.val(inst, *x);
                let t: Vec<f32> = v.t().iter().copied().collect();
                Some(ArrayD::from_shape_vec(IxDyn(&node.ty.shape), t).expect("transpose shape"))
            }
            Command::Arange { start } => Some(
                ArrayD::from_shape_vec(
                    IxDyn(&node.ty.shape),
                    (0..node.ty.elems() as i64)
                        .map(|k| (start + k) as f32)
                        .collect(),
                )
                .expect("arange shape"),
            ),
            Command::Send { .. } => None,
            Command::Recv { .. } => {
                let c = chan.expect("a receive has a channel") as usize;
                Some(
                    self.in_flight[c]
                        .pop_front()
                        .expect("paired sends put a message on the channel first"),
                )
            }
            Command::Wait { future } => Some(self.take_or_clone(inst, *future)),
        };
        if let Some(v) = out {
            if self.uses[inst][cmd.index()] > 0 {
                self.values[inst][cmd.index()] = Some(v);
            }
        }
        for v in node.cmd.operands() {
            let u = &mut self.uses[inst][v.index()];
            *u -= 1;
            if *u == 0 {
                self.values[inst][v.index()] = None;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_operator_runs_its_own_loop_for_every_operand_shape() {
        use MathOp::*;
        let ops = [
            Add, Sub, Mul, Div, Max, Min, Fma, Clamp, Exp, Neg, Relu, Cast, Exp2, Log, Log2, Sqrt,
            Rsqrt, Tanh, Sigmoid, Gelu, Abs, Pow, Lt, Le, Gt, Ge, Eq, Ne, And, Or, Xor, Not, Where,
        ];
        let a = [0.5f32, -1.25, 0.0, 3.0, 2.0];
        let b = [1.5f32, -1.25, 2.0, 0.0, 0.25];
        let c = [0.0f32, 4.0, -2.0, 1.0, 7.5];
        let s = [0.75f32, -0.5, 2.0];
        let shapes: [[Option<&[f32]>; 3]; 5] = [
            [Some(&a), Some(&b), None],
            [Some(&a), None, None],
            [None, Some(&b), None],
            [Some(&a), Some(&b), Some(&c)],
            [None, None, Some(&c)],
        ];
        for op in ops {
            for cols in shapes {
                let got = elementwise(op, a.len(), cols, s);
                for (i, g) in got.iter().enumerate() {
                    let at = |k: usize| cols[k].map_or(s[k], |v| v[i]);
                    let want = op.apply(at(0), at(1), at(2));
                    assert!(
                        g.to_bits() == want.to_bits() || (g.is_nan() && want.is_nan()),
                        "{op:?} {cols:?} at {i}: {g} against {want}"
                    );
                }
            }
        }
    }

    fn block(rows: usize) -> MemRef {
        MemRef {
            param: 0,
            name: "b".into(),
            base_va: 1 << 30,
            view: View::Block {
                origin: [0, 0],
                tensor: [rows, 4],
            },
            dtype: DType::F32,
            shape: vec![rows, 4].into(),
        }
    }

    #[test]
    fn a_region_too_large_for_host_memory_is_an_error_not_an_abort() {
        // 2^40 rows would take 16 TiB of runs alone.
        let err = host_region_runs(&block(1 << 40), 1 << 30).unwrap_err();
        assert!(
            matches!(err, MemError::DataTooLarge { elems, available, .. } if elems == 4 << 40 && available == 1 << 30),
            "{err}"
        );
        assert!(err.to_string().contains("without data"), "{err}");
        // A region that fits gives one run per row.
        assert_eq!(host_region_runs(&block(3), 1 << 30).unwrap().len(), 3);
    }
}
