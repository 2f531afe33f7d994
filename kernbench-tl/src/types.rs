//! The values a kernel handles: pointers, tensors, blocks and tiles.

use crate::context::{loc, with_builder};
use crate::kernel::KernelParam;
use kernbench_core::ir::{
    ArgError, ArgValue, BoundsError, CmdId, Expected, MathOp, MemRef, Operand, ParamKind,
    ShapeError, TraceErrorKind, View,
};
use kernbench_core::machine::{Buffer, TensorRef};
use kernbench_core::DType;
use std::marker::PhantomData;

/// An element type usable in tiles and buffers.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an element type of the kernel language",
    label = "not a tile element type",
    note = "tiles, pointers and tensors hold `f32`, `f16`, `bf16` or `i32` (and masks `bool`)"
)]
pub trait Element: Copy + Send + Sync + 'static {
    /// The IR's name for it.
    const DTYPE: DType;
    /// The type a dot product of it accumulates in.
    type Acc: Element;
}

impl Element for f32 {
    const DTYPE: DType = DType::F32;
    type Acc = f32;
}
impl Element for half::f16 {
    const DTYPE: DType = DType::F16;
    type Acc = f32;
}
impl Element for half::bf16 {
    const DTYPE: DType = DType::Bf16;
    type Acc = f32;
}
impl Element for i32 {
    const DTYPE: DType = DType::I32;
    type Acc = i32;
}
/// Masks: the tiles comparisons give. They have no arithmetic (the trace
/// refuses `+` or `dot` of masks); combine them with `&`, `|`, `^`, `!`,
/// choose with `tl::where_`, or turn them into 0 and 1 with `.cast::<f32>()`.
impl Element for bool {
    const DTYPE: DType = DType::Bool;
    type Acc = bool;
}

/// A device pointer to elements of `T`, the same virtual address on every PE of a launch.
#[derive(Debug)]
pub struct Ptr<T> {
    pub(crate) param: u16,
    pub(crate) name: &'static str,
    pub(crate) va: u64,
    pub(crate) len: usize,
    pub(crate) offset: i64,
    _t: PhantomData<T>,
}

impl<T> Clone for Ptr<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Ptr<T> {}

impl<T: Element> Ptr<T> {
    /// The pointer `n` elements further on.
    pub fn offset(self, n: usize) -> Ptr<T> {
        // Past i64 the offset is out of any buffer; saturating keeps it so
        // for the bounds check of the access that uses it.
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        Ptr {
            offset: self.offset.saturating_add(n),
            ..self
        }
    }

    /// Elements of the buffer behind the parameter.
    pub fn len(self) -> usize {
        self.len
    }

    /// `true` when the buffer is empty.
    pub fn is_empty(self) -> bool {
        self.len == 0
    }

    #[track_caller]
    pub(crate) fn region(self, shape: &[usize]) -> MemRef {
        let l = loc();
        let elems = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        let elems = elems
            .and_then(|e| i64::try_from(e).ok())
            .unwrap_or(i64::MAX);
        let end = self.offset.saturating_add(elems);
        if self.offset < 0 || end > self.len as i64 {
            crate::context::fail(
                TraceErrorKind::OutOfBounds(Box::new(BoundsError::Elements {
                    name: self.name.to_string(),
                    start: self.offset,
                    end,
                    len: self.len,
                })),
                &l,
            );
        }
        MemRef {
            param: self.param,
            name: std::borrow::Cow::Borrowed(self.name),
            base_va: self.va,
            view: View::Flat {
                offset: self.offset,
            },
            dtype: T::DTYPE,
            shape: shape[..].into(),
        }
    }
}

impl<T: Element> KernelParam for Ptr<T> {
    const KIND: ParamKind = ParamKind::Ptr;
    const DTYPE: Option<DType> = Some(T::DTYPE);
    type Input<'a> = &'a Buffer;
    fn input(b: &Buffer) -> ArgValue {
        b.ptr()
    }
    fn from_arg(index: u16, name: &'static str, v: &ArgValue) -> Result<Self, ArgError> {
        match v {
            ArgValue::Ptr { va, dtype, len } if *dtype == T::DTYPE => Ok(Ptr {
                param: index,
                name,
                va: *va,
                len: *len,
                offset: 0,
                _t: PhantomData,
            }),
            ArgValue::Tensor { va, dtype, shape } if *dtype == T::DTYPE => Ok(Ptr {
                param: index,
                name,
                va: *va,
                len: shape[0] * shape[1],
                offset: 0,
                _t: PhantomData,
            }),
            other => Err(ArgError::Expected {
                expected: Expected::Pointer(T::DTYPE),
                got: other.clone(),
            }),
        }
    }
}

/// A row-major 2D device tensor with a shape.
#[derive(Debug)]
pub struct Tensor<T> {
    pub(crate) param: u16,
    pub(crate) name: &'static str,
    pub(crate) va: u64,
    pub(crate) shape: [usize; 2],
    _t: PhantomData<T>,
}

impl<T> Clone for Tensor<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Tensor<T> {}

impl<T: Element> Tensor<T> {
    /// (rows, cols).
    pub fn shape(self) -> [usize; 2] {
        self.shape
    }

    /// Rows.
    pub fn rows(self) -> usize {
        self.shape[0]
    }

    /// Columns.
    pub fn cols(self) -> usize {
        self.shape[1]
    }

    /// The block of `shape` at `origin` (row, column). A block outside the tensor is an error at this line.
    #[track_caller]
    pub fn block(self, origin: [usize; 2], shape: [usize; 2]) -> Block<T> {
        let l = loc();
        let past = |axis: usize| {
            origin[axis]
                .checked_add(shape[axis])
                .is_none_or(|end| end > self.shape[axis])
        };
        if past(0) || past(1) {
            crate::context::fail(
                TraceErrorKind::OutOfBounds(Box::new(BoundsError::Block {
                    name: self.name.to_string(),
                    origin,
                    shape,
                    tensor: self.shape,
                })),
                &l,
            );
        }
        Block {
            t: self,
            origin,
            shape,
        }
    }

    /// The whole tensor as one block.
    #[track_caller]
    pub fn all(self) -> Block<T> {
        self.block([0, 0], self.shape)
    }
}

impl<T: Element> KernelParam for Tensor<T> {
    const KIND: ParamKind = ParamKind::Tensor;
    const DTYPE: Option<DType> = Some(T::DTYPE);
    type Input<'a> = TensorRef;
    fn input(t: TensorRef) -> ArgValue {
        t.into()
    }
    fn from_arg(index: u16, name: &'static str, v: &ArgValue) -> Result<Self, ArgError> {
        match v {
            ArgValue::Tensor { va, dtype, shape } if *dtype == T::DTYPE => Ok(Tensor {
                param: index,
                name,
                va: *va,
                shape: *shape,
                _t: PhantomData,
            }),
            other => Err(ArgError::Expected {
                expected: Expected::Tensor(T::DTYPE),
                got: other.clone(),
            }),
        }
    }
}

/// A 2D block of a tensor, as `tensor.block(origin, shape)` names it.
#[derive(Debug)]
pub struct Block<T> {
    t: Tensor<T>,
    origin: [usize; 2],
    shape: [usize; 2],
}

impl<T> Clone for Block<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Block<T> {}

impl<T: Element> Block<T> {
    /// (rows, cols) of the block.
    pub fn shape(self) -> [usize; 2] {
        self.shape
    }

    pub(crate) fn region(self) -> MemRef {
        MemRef {
            param: self.t.param,
            name: std::borrow::Cow::Borrowed(self.t.name),
            base_va: self.t.va,
            view: View::Block {
                origin: self.origin,
                tensor: self.t.shape,
            },
            dtype: T::DTYPE,
            shape: self.shape[..].into(),
        }
    }
}

/// Something `tl::load`, `tl::store` and `tl::stream` can address: a pointer or a block.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a region of `{T}` elements",
    label = "expected a `Ptr<{T}>` or a block of a `Tensor<{T}>`",
    note = "a load or store moves a `Tile<{T}>` through a pointer or block of the same element type; convert the tile with `.cast::<U>()` to the pointer's type `U`"
)]
pub trait Region<T: Element> {
    /// The region of `shape` it names (a block checks that `shape` is its own).
    #[track_caller]
    fn mem_ref(self, shape: &[usize]) -> MemRef;
}

impl<T: Element> Region<T> for Ptr<T> {
    #[track_caller]
    fn mem_ref(self, shape: &[usize]) -> MemRef {
        self.region(shape)
    }
}

impl<T: Element> Region<T> for Block<T> {
    #[track_caller]
    fn mem_ref(self, shape: &[usize]) -> MemRef {
        if shape != self.shape {
            crate::context::fail(
                TraceErrorKind::Shape(Box::new(ShapeError::BlockAccess {
                    block: self.shape,
                    access: shape.to_vec(),
                })),
                &loc(),
            );
        }
        self.region()
    }
}

/// A tile: a symbolic value of the trace (it cannot be branched on).
#[derive(Debug)]
pub struct Tile<T> {
    pub(crate) id: CmdId,
    _t: PhantomData<T>,
}

impl<T> Clone for Tile<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Tile<T> {}

impl<T: Element> Tile<T> {
    pub(crate) fn new(id: CmdId) -> Self {
        Tile {
            id,
            _t: PhantomData,
        }
    }

    /// The command that produces it.
    pub fn id(self) -> CmdId {
        self.id
    }

    /// Its shape (known at trace time).
    #[track_caller]
    pub fn shape(self) -> Vec<usize> {
        let l = loc();
        with_builder(|b| b.ty(self.id, &l).map(|t| t.shape.to_vec()))
    }

    /// Elements it holds.
    #[track_caller]
    pub fn numel(self) -> usize {
        self.shape().iter().product()
    }

    /// Converts to another element type (on MATH). Numbers become masks by
    /// being non-zero; masks become 0 and 1. A cast to its own type is the
    /// tile itself and records nothing.
    #[track_caller]
    pub fn cast<U: Element>(self) -> Tile<U> {
        if U::DTYPE == T::DTYPE {
            return Tile::new(self.id);
        }
        let l = loc();
        Tile::new(with_builder(|b| {
            b.math(
                MathOp::Cast,
                vec![Operand::Value(self.id)],
                Some(U::DTYPE),
                &l,
            )
        }))
    }

    /// The same elements in another shape, in row-major order (a view: no data moves).
    #[track_caller]
    pub fn reshape(self, shape: impl crate::tl::Shape) -> Tile<T> {
        let l = loc();
        Tile::new(with_builder(|b| b.reshape(self.id, shape.dims(), &l)))
    }

    /// A new axis of extent 1 at `axis` (0 ..= its rank): `[n]` becomes
    /// `[1, n]` at 0 and `[n, 1]` at 1. A view, like [`Tile::reshape`].
    #[track_caller]
    pub fn expand_dims(self, axis: usize) -> Tile<T> {
        let l = loc();
        let mut shape = with_builder(|b| b.ty(self.id, &l).map(|t| t.shape.to_vec()));
        if axis > shape.len() {
            crate::context::fail(
                TraceErrorKind::Shape(Box::new(ShapeError::ExpandDims { axis, shape })),
                &l,
            );
        }
        shape.insert(axis, 1);
        Tile::new(with_builder(|b| b.reshape(self.id, shape, &l)))
    }

    /// The tile stretched to `shape` by numpy's rules (a view: no data moves).
    #[track_caller]
    pub fn broadcast_to(self, shape: impl crate::tl::Shape) -> Tile<T> {
        let l = loc();
        Tile::new(with_builder(|b| b.broadcast_to(self.id, shape.dims(), &l)))
    }

    /// The transpose of a 2D tile (every element moves through MATH once).
    #[track_caller]
    pub fn trans(self) -> Tile<T> {
        let l = loc();
        Tile::new(with_builder(|b| b.trans(self.id, &l)))
    }

    /// `self < other`, elementwise with broadcasting: a mask.
    #[track_caller]
    pub fn lt(self, other: impl TileArg<T>) -> Tile<bool> {
        math(MathOp::Lt, vec![Operand::Value(self.id), other.operand()])
    }

    /// `self <= other`, elementwise with broadcasting: a mask.
    #[track_caller]
    pub fn le(self, other: impl TileArg<T>) -> Tile<bool> {
        math(MathOp::Le, vec![Operand::Value(self.id), other.operand()])
    }

    /// `self > other`, elementwise with broadcasting: a mask.
    #[track_caller]
    pub fn gt(self, other: impl TileArg<T>) -> Tile<bool> {
        math(MathOp::Gt, vec![Operand::Value(self.id), other.operand()])
    }

    /// `self >= other`, elementwise with broadcasting: a mask.
    #[track_caller]
    pub fn ge(self, other: impl TileArg<T>) -> Tile<bool> {
        math(MathOp::Ge, vec![Operand::Value(self.id), other.operand()])
    }

    /// `self == other`, elementwise with broadcasting: a mask.
    #[track_caller]
    pub fn eq(self, other: impl TileArg<T>) -> Tile<bool> {
        math(MathOp::Eq, vec![Operand::Value(self.id), other.operand()])
    }

    /// `self != other`, elementwise with broadcasting: a mask.
    #[track_caller]
    pub fn ne(self, other: impl TileArg<T>) -> Tile<bool> {
        math(MathOp::Ne, vec![Operand::Value(self.id), other.operand()])
    }
}

/// A tile of `T`, or a scalar broadcast to any shape: what comparisons,
/// `tl::where_`, `tl::pow`, `tl::maximum` and `tl::minimum` accept.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is neither a tile of `{T}` nor a scalar",
    label = "expected a `Tile<{T}>`, a `&Tile<{T}>` or an `f64`",
    note = "both sides of an elementwise operation have one element type; convert a tile with `.cast::<{T}>()`, and write a scalar as an `f64` (`2.0`, `n as f64`)"
)]
pub trait TileArg<T: Element> {
    /// The operand it records.
    fn operand(&self) -> Operand;
}

impl<T: Element> TileArg<T> for Tile<T> {
    fn operand(&self) -> Operand {
        Operand::Value(self.id)
    }
}

impl<T: Element> TileArg<T> for &Tile<T> {
    fn operand(&self) -> Operand {
        Operand::Value(self.id)
    }
}

impl<T: Element> TileArg<T> for f64 {
    fn operand(&self) -> Operand {
        Operand::Scalar(*self)
    }
}

/// The tile `tl::store` writes into a region of `T`: a `&Tile<T>`. (A
/// trait rather than `&Tile<T>`, so that a tile of another element type is
/// reported with a hint to cast it.)
#[diagnostic::on_unimplemented(
    message = "a store into a region of `{T}` takes a `&Tile<{T}>`, not `{Self}`",
    label = "expected a `&Tile<{T}>`",
    note = "a store writes a tile of its pointer's or tensor's element type; convert the tile with `.cast::<{T}>()`"
)]
pub trait StoreTile<T: Element> {
    /// The tile.
    fn tile(&self) -> Tile<T>;
}

impl<T: Element> StoreTile<T> for &Tile<T> {
    fn tile(&self) -> Tile<T> {
        **self
    }
}

/// The future of `tl::recv_async`; `tl::wait` turns it into a tile.
#[derive(Debug)]
pub struct RecvFuture<T> {
    pub(crate) id: CmdId,
    _t: PhantomData<T>,
}

impl<T> RecvFuture<T> {
    pub(crate) fn new(id: CmdId) -> Self {
        RecvFuture {
            id,
            _t: PhantomData,
        }
    }
}

#[track_caller]
pub(crate) fn math<T: Element>(op: MathOp, args: Vec<Operand>) -> Tile<T> {
    let l = loc();
    Tile::new(with_builder(|b| b.math(op, args, None, &l)))
}

// A tile on the left takes any `TileArg` on the right, so an operand of
// another element type is reported through `TileArg`'s hint.
macro_rules! binop {
    ($tr:ident, $f:ident, $op:expr) => {
        impl<T: Element, R: TileArg<T>> std::ops::$tr<R> for Tile<T> {
            type Output = Tile<T>;
            #[track_caller]
            fn $f(self, rhs: R) -> Tile<T> {
                math($op, vec![Operand::Value(self.id), rhs.operand()])
            }
        }
        impl<T: Element, R: TileArg<T>> std::ops::$tr<R> for &Tile<T> {
            type Output = Tile<T>;
            #[track_caller]
            fn $f(self, rhs: R) -> Tile<T> {
                math($op, vec![Operand::Value(self.id), rhs.operand()])
            }
        }
        impl<T: Element> std::ops::$tr<Tile<T>> for f64 {
            type Output = Tile<T>;
            #[track_caller]
            fn $f(self, rhs: Tile<T>) -> Tile<T> {
                math($op, vec![Operand::Scalar(self), Operand::Value(rhs.id)])
            }
        }
        impl<T: Element> std::ops::$tr<&Tile<T>> for f64 {
            type Output = Tile<T>;
            #[track_caller]
            fn $f(self, rhs: &Tile<T>) -> Tile<T> {
                math($op, vec![Operand::Scalar(self), Operand::Value(rhs.id)])
            }
        }
    };
}
binop!(Add, add, MathOp::Add);
binop!(Sub, sub, MathOp::Sub);
binop!(Mul, mul, MathOp::Mul);
binop!(Div, div, MathOp::Div);

impl<T: Element> std::ops::Neg for Tile<T> {
    type Output = Tile<T>;
    #[track_caller]
    fn neg(self) -> Tile<T> {
        math(MathOp::Neg, vec![Operand::Value(self.id)])
    }
}

impl<T: Element> std::ops::Neg for &Tile<T> {
    type Output = Tile<T>;
    #[track_caller]
    fn neg(self) -> Tile<T> {
        math(MathOp::Neg, vec![Operand::Value(self.id)])
    }
}

macro_rules! logic {
    ($tr:ident, $f:ident, $op:expr) => {
        impl std::ops::$tr<Tile<bool>> for Tile<bool> {
            type Output = Tile<bool>;
            #[track_caller]
            fn $f(self, rhs: Tile<bool>) -> Tile<bool> {
                math($op, vec![Operand::Value(self.id), Operand::Value(rhs.id)])
            }
        }
        impl std::ops::$tr<&Tile<bool>> for &Tile<bool> {
            type Output = Tile<bool>;
            #[track_caller]
            fn $f(self, rhs: &Tile<bool>) -> Tile<bool> {
                math($op, vec![Operand::Value(self.id), Operand::Value(rhs.id)])
            }
        }
    };
}
logic!(BitAnd, bitand, MathOp::And);
logic!(BitOr, bitor, MathOp::Or);
logic!(BitXor, bitxor, MathOp::Xor);

impl std::ops::Not for Tile<bool> {
    type Output = Tile<bool>;
    #[track_caller]
    fn not(self) -> Tile<bool> {
        math(MathOp::Not, vec![Operand::Value(self.id)])
    }
}

impl std::ops::Not for &Tile<bool> {
    type Output = Tile<bool>;
    #[track_caller]
    fn not(self) -> Tile<bool> {
        math(MathOp::Not, vec![Operand::Value(self.id)])
    }
}
