//! The language: what a kernel body calls.
//!
//! Every function records a command with the caller's file and line
//! (`#[track_caller]`), so errors and graphs point at the kernel.
//!
//! Elementwise operations (the `+ - * /` operators, comparisons, `where_`,
//! `maximum`, `pow`...) broadcast their operands by numpy's rules: shapes
//! align at their last dimension, a missing dimension counts as 1, and an
//! extent of 1 stretches, so `x - tl::max(&x, 1)` subtracts each row's
//! maximum. Shapes that do not broadcast are an error naming the kernel line.
//!
//! Comparisons (`x.lt(y)`, `le`, `gt`, `ge`, `eq`, `ne`) give masks,
//! `Tile<bool>`: one byte an element, 0 or 1. Masks have no arithmetic;
//! `&`, `|`, `^` and `!` combine them, [`where_`] chooses with them,
//! [`load_masked`] and [`store_masked`] take them, and `.cast::<f32>()`
//! turns one into 0.0 and 1.0.
//!
//! ```
//! use kernbench_tl::prelude::*;
//!
//! /// Each row of `x` minus its maximum, zero where the result is below -1.
//! #[kernel]
//! fn centre(x: Tensor<f32>) {
//!     let t = tl::load(x.all(), x.shape());
//!     let c = t - tl::max(&t, 1); // [rows, cols] - [rows, 1]
//!     tl::store(x.all(), &tl::where_(&c.ge(-1.0), c, 0.0));
//! }
//!
//! let x = ArgValue::Tensor { va: 0x1000_0000_0000, dtype: DType::F32, shape: [4, 8] };
//! let g = kernbench_tl::trace(&centre, &KernelArgs::new().with("x", x), &[1], &[0]).unwrap();
//! let text = g.to_text();
//! assert!(text.contains("sub %0, %1 : tile<f32,[4,8]>"), "{text}");
//! assert!(text.contains("ge %2, -1.0 : tile<bool,[4,8]>"), "{text}");
//! ```

use crate::context::{grid_query, loc, with_builder};
use crate::types::{math, Element, RecvFuture, Region, StoreTile, Tile, TileArg};
use kernbench_core::ir::{self, MathOp, Operand, Peer, ReduceOp, TileType};

/// A shape: `[n]`, `[rows, cols]`, or a `Vec`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a tile shape",
    label = "expected a shape such as `[n]` or `[rows, cols]`",
    note = "a shape lists its extents in brackets, even with one dimension: write `[n]`, not `n`"
)]
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
pub fn store<T: Element>(dst: impl Region<T>, tile: impl StoreTile<T>) {
    let l = loc();
    let tile = tile.tile();
    let shape = tile.shape();
    let r = dst.mem_ref(&shape);
    with_builder(|b| b.store(r, tile.id, &l));
}

/// Loads a region as [`load`] does, reading `other` wherever `mask` (a mask
/// that broadcasts to `shape`) is false. The region must still lie inside
/// its buffer: the DMA moves all of it, then MATH selects.
#[track_caller]
pub fn load_masked<T: Element>(
    src: impl Region<T>,
    shape: impl Shape,
    mask: &Tile<bool>,
    other: f64,
) -> Tile<T> {
    let l = loc();
    let r = src.mem_ref(&shape.dims());
    Tile::new(with_builder(|b| b.load_masked(r, mask.id, other, &l)))
}

/// Stores a tile as [`store`] does, writing only the elements where `mask`
/// (a mask that broadcasts to the tile) is true; the others keep what
/// memory held.
#[track_caller]
pub fn store_masked<T: Element>(dst: impl Region<T>, tile: impl StoreTile<T>, mask: &Tile<bool>) {
    let l = loc();
    let tile = tile.tile();
    let shape = tile.shape();
    let r = dst.mem_ref(&shape);
    with_builder(|b| b.store_masked(r, tile.id, mask.id, &l));
}

/// `start, start + 1, ..., end - 1` as an `i32` tile of shape `[end - start]`.
#[track_caller]
pub fn arange(start: usize, end: usize) -> Tile<i32> {
    let l = loc();
    let (s, e) = (
        i64::try_from(start).unwrap_or(i64::MAX),
        i64::try_from(end).unwrap_or(i64::MAX),
    );
    Tile::new(with_builder(|b| b.arange(s, e, &l)))
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
    /// GELU, the tanh approximation ([`gelu`]); on floating-point products.
    Gelu,
}

/// A composite GEMM: `acc + a x b` (without `acc`, the product alone) of
/// `a` and `b` (tiles, or operands left in HBM with [`stream`]), with an
/// epilogue run on MATH per output tile after the accumulation, as one
/// command. The accumulator is the GEMM's output tile in TCM: it costs no
/// GEMM time.
///
/// The same tail written after [`dot`] or [`dot_acc`] as separate
/// operations (`+ bias`, `* scale`, [`relu`], [`gelu`], `.cast()`) is folded into the
/// epilogue when a launch compiles, where that is legal and pays off (see
/// `kernbench_core::passes::fuse`).
#[track_caller]
pub fn gemm<T: Element>(
    a: &Tile<T>,
    b: &Tile<T>,
    acc: Option<&Tile<T::Acc>>,
    epilogue: &[Epilogue<'_, T::Acc>],
) -> Tile<T::Acc> {
    let l = loc();
    let ep = epilogue
        .iter()
        .map(|e| match e {
            Epilogue::Bias(t) => ir::Epilogue::Bias(t.id),
            Epilogue::Scale(s) => ir::Epilogue::Scale(*s),
            Epilogue::Relu => ir::Epilogue::Relu,
            Epilogue::Gelu => ir::Epilogue::Gelu,
        })
        .collect();
    Tile::new(with_builder(|g| {
        g.dot(a.id, b.id, acc.map(|c| c.id), ep, &l)
    }))
}

/// Elementwise maximum (`b` a tile or a scalar).
#[track_caller]
pub fn maximum<T: Element>(a: &Tile<T>, b: impl TileArg<T>) -> Tile<T> {
    math(MathOp::Max, vec![Operand::Value(a.id), b.operand()])
}

/// Elementwise minimum (`b` a tile or a scalar).
#[track_caller]
pub fn minimum<T: Element>(a: &Tile<T>, b: impl TileArg<T>) -> Tile<T> {
    math(MathOp::Min, vec![Operand::Value(a.id), b.operand()])
}

/// `a` where `mask` is true, `b` elsewhere (each a tile or a scalar; all
/// three broadcast together).
#[track_caller]
pub fn where_<T: Element>(mask: &Tile<bool>, a: impl TileArg<T>, b: impl TileArg<T>) -> Tile<T> {
    let l = loc();
    let args = vec![Operand::Value(mask.id), a.operand(), b.operand()];
    Tile::new(with_builder(|g| {
        g.math(MathOp::Where, args, Some(T::DTYPE), &l)
    }))
}

/// `x^y`, elementwise (`y` a tile or a scalar).
#[track_caller]
pub fn pow<T: Element>(x: &Tile<T>, y: impl TileArg<T>) -> Tile<T> {
    math(MathOp::Pow, vec![Operand::Value(x.id), y.operand()])
}

macro_rules! unary {
    ($($(#[$doc:meta])* $f:ident => $op:expr;)*) => {$(
        $(#[$doc])*
        #[track_caller]
        pub fn $f<T: Element>(x: &Tile<T>) -> Tile<T> {
            math($op, vec![Operand::Value(x.id)])
        }
    )*};
}

unary! {
    /// `2^x`, elementwise.
    exp2 => MathOp::Exp2;
    /// The natural logarithm, elementwise.
    log => MathOp::Log;
    /// The base-2 logarithm, elementwise.
    log2 => MathOp::Log2;
    /// The square root, elementwise.
    sqrt => MathOp::Sqrt;
    /// `1 / sqrt(x)`, elementwise.
    rsqrt => MathOp::Rsqrt;
    /// The hyperbolic tangent, elementwise.
    tanh => MathOp::Tanh;
    /// `1 / (1 + e^-x)`, elementwise.
    sigmoid => MathOp::Sigmoid;
    /// GELU in the tanh approximation of GPT-2 and Megatron (PyTorch's
    /// `gelu(x, approximate="tanh")`), elementwise:
    /// `0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))`, computed in
    /// f32 (`kernbench_core::ir::gelu`). Floating-point tiles only.
    gelu => MathOp::Gelu;
    /// `|x|`, elementwise.
    abs => MathOp::Abs;
}

/// `x` with a new axis of extent 1 at `axis` (see [`Tile::expand_dims`]).
#[track_caller]
pub fn expand_dims<T: Element>(x: &Tile<T>, axis: usize) -> Tile<T> {
    x.expand_dims(axis)
}

/// `x` stretched to `shape` by numpy's rules (see [`Tile::broadcast_to`]).
#[track_caller]
pub fn broadcast_to<T: Element>(x: &Tile<T>, shape: impl Shape) -> Tile<T> {
    x.broadcast_to(shape)
}

/// `x`'s elements in another shape (see [`Tile::reshape`]).
#[track_caller]
pub fn reshape<T: Element>(x: &Tile<T>, shape: impl Shape) -> Tile<T> {
    x.reshape(shape)
}

/// The transpose of a 2D tile (see [`Tile::trans`]).
#[track_caller]
pub fn trans<T: Element>(x: &Tile<T>) -> Tile<T> {
    x.trans()
}

/// `x` converted to `U` (see [`Tile::cast`]).
#[track_caller]
pub fn cast<U: Element, T: Element>(x: &Tile<T>) -> Tile<U> {
    x.cast::<U>()
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

/// Minimum along `axis` (kept with extent 1).
#[track_caller]
pub fn min<T: Element>(x: &Tile<T>, axis: usize) -> Tile<T> {
    let l = loc();
    Tile::new(with_builder(|b| b.reduce(ReduceOp::Min, x.id, axis, &l)))
}

/// The index of the first maximum along `axis` (kept with extent 1).
#[track_caller]
pub fn argmax<T: Element>(x: &Tile<T>, axis: usize) -> Tile<i32> {
    let l = loc();
    Tile::new(with_builder(|b| b.reduce(ReduceOp::Argmax, x.id, axis, &l)))
}

/// The index of the first minimum along `axis` (kept with extent 1).
#[track_caller]
pub fn argmin<T: Element>(x: &Tile<T>, axis: usize) -> Tile<i32> {
    let l = loc();
    Tile::new(with_builder(|b| b.reduce(ReduceOp::Argmin, x.id, axis, &l)))
}

/// This program instance's rank: its index in the launch, axis 0 fastest
/// (`program_id(0) + num_programs(0) * (program_id(1) + num_programs(1) * program_id(2))`).
/// It is what [`send`] and [`recv`] take to address a peer by rank.
#[track_caller]
pub fn rank() -> usize {
    let l = loc();
    (0..3).rev().fold(0, |a, ax| {
        a * grid_query(ax, &l, false) + grid_query(ax, &l, true)
    })
}

/// The number of ranks: every program instance of the launch.
#[track_caller]
pub fn num_ranks() -> usize {
    let l = loc();
    (0..3).map(|ax| grid_query(ax, &l, false)).product()
}

/// Sends a tile to a peer: the neighbour in a direction (`Dir::E`), resolved
/// through the launch's neighbour map, or a rank (`rank ^ 1`), the program
/// instance of that index. Returns as soon as the message has ring slots at
/// the receiver; waits (backpressure) while its ring is full.
///
/// A rank outside the launch, or this instance's own, is an error at this line.
#[track_caller]
pub fn send<T: Element>(peer: impl Into<Peer>, tile: &Tile<T>) {
    let l = loc();
    let peer = peer.into();
    with_builder(|b| b.send(peer, tile.id, &l));
}

/// Receives a tile of `shape` from a peer (a direction or a rank, as for
/// [`send`]); blocks until its bytes have drained into this PE. A message
/// sent to a rank is received by naming the sender's rank.
#[track_caller]
pub fn recv<T: Element>(peer: impl Into<Peer>, shape: impl Shape) -> Tile<T> {
    let l = loc();
    let peer = peer.into();
    Tile::new(with_builder(|b| {
        b.recv(peer, TileType::new(T::DTYPE, shape.dims()), false, &l)
    }))
}

/// Starts a receive from a peer and returns at once; [`wait`] gives the tile.
#[track_caller]
pub fn recv_async<T: Element>(peer: impl Into<Peer>, shape: impl Shape) -> RecvFuture<T> {
    let l = loc();
    let peer = peer.into();
    RecvFuture::new(with_builder(|b| {
        b.recv(peer, TileType::new(T::DTYPE, shape.dims()), true, &l)
    }))
}

/// Waits for an asynchronous receive.
#[track_caller]
pub fn wait<T: Element>(future: RecvFuture<T>) -> Tile<T> {
    let l = loc();
    Tile::new(with_builder(|b| b.wait(future.id, &l)))
}
