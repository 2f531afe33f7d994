//! The language: what a kernel body calls.
//!
//! Every function records a command with the caller's file and line
//! (`#[track_caller]`), so errors and graphs point at the kernel.

use crate::context::{grid_query, loc, with_builder};
use crate::types::{math, Element, RecvFuture, Region, Tile};
use kernbench_core::ir::{self, Dir, MathOp, Operand, ReduceOp, TileType};

/// A shape: `[n]`, `[rows, cols]`, or a `Vec`.
pub trait Shape {
    /// The extents.
    fn dims(&self) -> Vec<usize>;
}

impl<const N: usize> Shape for [usize; N] {
    fn dims(&self) -> Vec<usize> {
        self.to_vec()
    }
}
impl Shape for Vec<usize> {
    fn dims(&self) -> Vec<usize> {
        self.clone()
    }
}
impl Shape for &[usize] {
    fn dims(&self) -> Vec<usize> {
        self.to_vec()
    }
}

/// This program instance's index along grid `axis` (0, 1 or 2).
#[track_caller]
pub fn program_id(axis: usize) -> usize {
    grid_query(axis, &loc(), true)
}

/// The grid's extent along `axis`.
#[track_caller]
pub fn num_programs(axis: usize) -> usize {
    grid_query(axis, &loc(), false)
}

/// `ceil(a / b)`.
pub const fn cdiv(a: usize, b: usize) -> usize {
    a.div_ceil(b)
}

/// Loads a region of HBM (a pointer and a shape, or a block) into a TCM tile (DMA_IN).
#[track_caller]
pub fn load<T: Element>(src: impl Region<T>, shape: impl Shape) -> Tile<T> {
    let l = loc();
    let r = src.mem_ref(&shape.dims());
    Tile::new(with_builder(|b| b.load(r, &l)))
}

/// Leaves a region in HBM, to be streamed tile by tile by [`dot`] or [`gemm`]
/// instead of loaded whole into TCM.
#[track_caller]
pub fn stream<T: Element>(src: impl Region<T>, shape: impl Shape) -> Tile<T> {
    let l = loc();
    let r = src.mem_ref(&shape.dims());
    Tile::new(with_builder(|b| b.stream(r, &l)))
}

/// Stores a tile to a region of HBM (DMA_WB).
#[track_caller]
pub fn store<T: Element>(dst: impl Region<T>, tile: &Tile<T>) {
    let l = loc();
    let shape = tile.shape();
    let r = dst.mem_ref(&shape);
    with_builder(|b| b.store(r, tile.id, &l));
}

/// A tile of `value`.
#[track_caller]
pub fn full<T: Element>(shape: impl Shape, value: f64) -> Tile<T> {
    let l = loc();
    Tile::new(with_builder(|b| {
        b.full(value, TileType::new(T::DTYPE, shape.dims()), &l)
    }))
}

/// A tile of zeros.
#[track_caller]
pub fn zeros<T: Element>(shape: impl Shape) -> Tile<T> {
    let l = loc();
    Tile::new(with_builder(|b| {
        b.full(0.0, TileType::new(T::DTYPE, shape.dims()), &l)
    }))
}

/// Matrix product on GEMM: `[M,K] x [K,N] -> [M,N]`, accumulated in `T::Acc`
/// (f16 and bf16 accumulate in f32).
#[track_caller]
pub fn dot<T: Element>(a: &Tile<T>, b: &Tile<T>) -> Tile<T::Acc> {
    let l = loc();
    Tile::new(with_builder(|g| g.dot(a.id, b.id, None, vec![], &l)))
}

/// Accumulating matrix product: `acc + a x b`.
#[track_caller]
pub fn dot_acc<T: Element>(a: &Tile<T>, b: &Tile<T>, acc: &Tile<T::Acc>) -> Tile<T::Acc> {
    let l = loc();
    Tile::new(with_builder(|g| {
        g.dot(a.id, b.id, Some(acc.id), vec![], &l)
    }))
}

/// One step of a GEMM epilogue.
#[derive(Debug)]
pub enum Epilogue<'a, T> {
    /// Add a bias (`[N]`, `[1, N]` or `[M, N]`).
    Bias(&'a Tile<T>),
    /// Multiply by a scalar.
    Scale(f64),
    /// max(x, 0).
    Relu,
}

/// A composite GEMM: the product of `a` and `b` (tiles, or operands left in
/// HBM with [`stream`]) with an epilogue run on MATH per output tile, as one command.
#[track_caller]
pub fn gemm<T: Element>(
    a: &Tile<T>,
    b: &Tile<T>,
    epilogue: &[Epilogue<'_, T::Acc>],
) -> Tile<T::Acc> {
    let l = loc();
    let ep = epilogue
        .iter()
        .map(|e| match e {
            Epilogue::Bias(t) => ir::Epilogue::Bias(t.id),
            Epilogue::Scale(s) => ir::Epilogue::Scale(*s),
            Epilogue::Relu => ir::Epilogue::Relu,
        })
        .collect();
    Tile::new(with_builder(|g| g.dot(a.id, b.id, None, ep, &l)))
}

/// Elementwise maximum.
#[track_caller]
pub fn maximum<T: Element>(a: &Tile<T>, b: &Tile<T>) -> Tile<T> {
    math(
        MathOp::Max,
        vec![Operand::Value(a.id), Operand::Value(b.id)],
    )
}

/// Elementwise minimum.
#[track_caller]
pub fn minimum<T: Element>(a: &Tile<T>, b: &Tile<T>) -> Tile<T> {
    math(
        MathOp::Min,
        vec![Operand::Value(a.id), Operand::Value(b.id)],
    )
}

/// `a * b + c`, elementwise.
#[track_caller]
pub fn fma<T: Element>(a: &Tile<T>, b: &Tile<T>, c: &Tile<T>) -> Tile<T> {
    math(
        MathOp::Fma,
        vec![
            Operand::Value(a.id),
            Operand::Value(b.id),
            Operand::Value(c.id),
        ],
    )
}

/// `min(max(x, lo), hi)`, elementwise.
#[track_caller]
pub fn clamp<T: Element>(x: &Tile<T>, lo: f64, hi: f64) -> Tile<T> {
    math(
        MathOp::Clamp,
        vec![
            Operand::Value(x.id),
            Operand::Scalar(lo),
            Operand::Scalar(hi),
        ],
    )
}

/// `e^x`, elementwise.
#[track_caller]
pub fn exp<T: Element>(x: &Tile<T>) -> Tile<T> {
    math(MathOp::Exp, vec![Operand::Value(x.id)])
}

/// `max(x, 0)`, elementwise.
#[track_caller]
pub fn relu<T: Element>(x: &Tile<T>) -> Tile<T> {
    math(MathOp::Relu, vec![Operand::Value(x.id)])
}

/// Softmax along `axis`.
#[track_caller]
pub fn softmax<T: Element>(x: &Tile<T>, axis: usize) -> Tile<T> {
    let l = loc();
    Tile::new(with_builder(|b| b.softmax(x.id, axis, &l)))
}

/// Sum along `axis` (kept with extent 1).
#[track_caller]
pub fn sum<T: Element>(x: &Tile<T>, axis: usize) -> Tile<T> {
    let l = loc();
    Tile::new(with_builder(|b| b.reduce(ReduceOp::Sum, x.id, axis, &l)))
}

/// Maximum along `axis` (kept with extent 1).
#[track_caller]
pub fn max<T: Element>(x: &Tile<T>, axis: usize) -> Tile<T> {
    let l = loc();
    Tile::new(with_builder(|b| b.reduce(ReduceOp::Max, x.id, axis, &l)))
}

/// Sends a tile to the neighbour in `dir`. Returns as soon as the message has
/// ring slots at the receiver; waits (backpressure) while its ring is full.
#[track_caller]
pub fn send<T: Element>(dir: Dir, tile: &Tile<T>) {
    let l = loc();
    with_builder(|b| b.send(dir, tile.id, &l));
}

/// Receives a tile of `shape` from the neighbour in `dir`; blocks until its
/// bytes have drained into this PE.
#[track_caller]
pub fn recv<T: Element>(dir: Dir, shape: impl Shape) -> Tile<T> {
    let l = loc();
    Tile::new(with_builder(|b| {
        b.recv(dir, TileType::new(T::DTYPE, shape.dims()), false, &l)
    }))
}

/// Starts a receive and returns at once; [`wait`] gives the tile.
#[track_caller]
pub fn recv_async<T: Element>(dir: Dir, shape: impl Shape) -> RecvFuture<T> {
    let l = loc();
    RecvFuture::new(with_builder(|b| {
        b.recv(dir, TileType::new(T::DTYPE, shape.dims()), true, &l)
    }))
}

/// Waits for an asynchronous receive.
#[track_caller]
pub fn wait<T: Element>(future: RecvFuture<T>) -> Tile<T> {
    let l = loc();
    Tile::new(with_builder(|b| b.wait(future.id, &l)))
}
