//! What can go wrong while a kernel is traced: a [`TraceError`] names the
//! kernel and its line, and its [`TraceErrorKind`] what went wrong, with the
//! shapes, types, bounds or values involved.

use super::{ArgValue, CmdId, MemRef, ParamKind, SrcLoc, TileType};
use crate::DType;
use std::fmt;

/// What went wrong while tracing.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum TraceErrorKind {
    /// Shapes that must agree do not (boxed: it holds the shapes).
    #[error("shape mismatch: {0}")]
    Shape(Box<ShapeError>),
    /// Element types mixed without a cast, or given to an operation that
    /// does not take them.
    #[error("dtype mismatch: {0}")]
    DType(DTypeError),
    /// A region outside its buffer or tensor (boxed: it holds the region).
    #[error("out of bounds: {0}")]
    OutOfBounds(Box<BoundsError>),
    /// A launch argument missing or of the wrong kind.
    #[error("argument `{param}`: {}", ArgMessage(.param, .err))]
    Arg {
        /// The parameter (for [`ArgError::NoGenericParam`], the type parameter).
        param: String,
        /// What is wrong, with the kinds, types or values involved (boxed:
        /// it holds them).
        err: Box<ArgError>,
    },
    /// The trace issued more commands than allowed.
    #[error("more than {0} commands on one program instance: a runaway loop, or more work than one launch may simulate (a launch's command budget is split over its PEs); use larger pieces, a smaller size or fewer PEs")]
    TooManyCommands(usize),
    /// A use of the language that has no meaning (wrong axis, a tile used
    /// outside its trace...; boxed: it may hold the grid).
    #[error("{0}")]
    Invalid(Box<UsageError>),
    /// The kernel body panicked while it was traced.
    #[error("{}", panic_message(.message, .defined_at))]
    Panicked {
        /// The panic's message.
        message: String,
        /// Where the kernel is defined, when the panic was in code the
        /// kernel calls (in another file); the error's location is the
        /// line of the panic.
        defined_at: Option<Box<SrcLoc>>,
    },
}

fn panic_message(message: &str, defined_at: &Option<Box<SrcLoc>>) -> String {
    match defined_at {
        Some(d) => format!(
            "the kernel body panicked in code it calls: {message} (kernel defined at {}:{})",
            d.file, d.line
        ),
        None => format!("the kernel body panicked: {message}"),
    }
}

/// What is wrong with a launch argument (see [`TraceErrorKind::Arg`], which
/// names the parameter).
#[derive(Clone, Debug, PartialEq)]
pub enum ArgError {
    /// No argument for the parameter.
    Missing {
        /// What the kernel takes.
        kind: ParamKind,
    },
    /// No argument for a pointer or tensor whose buffer gives the element
    /// type of a type parameter.
    MissingGeneric {
        /// What the kernel takes.
        kind: ParamKind,
        /// The parameter's Rust type as written (`Ptr<T>`).
        ty: String,
        /// The type parameter (`T`).
        generic: String,
    },
    /// An argument of another kind or element type than the parameter takes.
    Expected {
        /// What the parameter takes.
        expected: Expected,
        /// The argument given.
        got: ArgValue,
    },
    /// An integer that does not fit the parameter's integer type.
    IntRange {
        /// The value given.
        value: i64,
        /// The parameter's type (`u32`).
        ty: &'static str,
    },
    /// An integer that is not the code of a value of the parameter's enum.
    EnumCode {
        /// The value given.
        value: i64,
        /// The enum.
        ty: String,
        /// Its values' names, in the order of their codes.
        names: &'static [&'static str],
    },
    /// Two pointers or tensors that share a type parameter but whose buffers
    /// hold different element types.
    ElemMismatch {
        /// The element type of this parameter's buffer.
        dtype: DType,
        /// The parameter's Rust type as written.
        ty: String,
        /// The parameter that bound the type parameter first.
        other: String,
        /// Its Rust type as written.
        other_ty: String,
        /// The element type of its buffer.
        other_dtype: DType,
        /// The type parameter they share.
        generic: String,
    },
    /// A buffer of an element type the kernel's bound on its type parameter
    /// excludes.
    ElemRefused {
        /// The buffer's element type.
        dtype: DType,
        /// What the kernel takes.
        allowed: &'static str,
    },
    /// A type parameter that no parameter of the kernel has as its element
    /// type (the error's parameter is the type parameter).
    NoGenericParam,
    /// An argument no parameter of the kernel takes.
    Unknown {
        /// The kernel's parameters.
        known: Vec<String>,
    },
}

impl ArgError {
    /// `true` when the argument was not given at all.
    pub fn is_missing(&self) -> bool {
        matches!(
            self,
            ArgError::Missing { .. } | ArgError::MissingGeneric { .. }
        )
    }

    /// What is wrong, in the words of an error about parameter `param`.
    pub fn message(&self, param: &str) -> String {
        ArgMessage(param, self).to_string()
    }
}

/// What a parameter takes, in the words of an [`ArgError::Expected`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expected {
    /// An integer of the Rust type.
    Integer(&'static str),
    /// A number (integer or float) for a float of the Rust type.
    Number(&'static str),
    /// A boolean.
    Boolean,
    /// The code of a value of an enum.
    Enum {
        /// The enum.
        ty: String,
        /// Its values' names.
        names: &'static [&'static str],
    },
    /// A pointer to (or a tensor of) the element type.
    Pointer(DType),
    /// A 2D tensor of the element type.
    Tensor(DType),
    /// A pointer or tensor of a type parameter's element type.
    Param {
        /// Pointer or tensor.
        kind: ParamKind,
        /// The Rust type as written (`Ptr<T>`).
        ty: String,
    },
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expected::Integer(t) => write!(f, "an integer ({t})"),
            Expected::Number(t) => write!(f, "a number ({t})"),
            Expected::Boolean => f.write_str("a boolean"),
            Expected::Enum { ty, names } => write!(f, "a `{ty}` ({})", names.join(", ")),
            Expected::Pointer(d) => write!(f, "a pointer to {d}"),
            Expected::Tensor(d) => write!(f, "a 2D tensor of {d}"),
            Expected::Param { kind, ty } => write!(f, "a {kind} (`{ty}`)"),
        }
    }
}

/// An [`ArgError`] about a parameter, as [`TraceErrorKind::Arg`] writes it.
struct ArgMessage<'a>(&'a str, &'a ArgError);

impl fmt::Display for ArgMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.0;
        match self.1 {
            ArgError::Missing { kind } => write!(f, "missing; the kernel takes a {kind} `{name}`"),
            ArgError::MissingGeneric { kind, ty, generic } => write!(
                f,
                "missing; the kernel takes a {kind} `{name}: {ty}`, whose buffer gives the \
                 element type `{generic}`"
            ),
            ArgError::Expected { expected, got } => {
                write!(f, "expected {expected}, got {}", got.describe())
            }
            ArgError::IntRange { value, ty } => write!(f, "{value} does not fit in {ty}"),
            ArgError::EnumCode { value, ty, names } => write!(
                f,
                "{value} is not a `{ty}`: its codes are 0..{} ({})",
                names.len(),
                names.join(", ")
            ),
            ArgError::ElemMismatch {
                dtype,
                ty,
                other,
                other_ty,
                other_dtype,
                generic,
            } => write!(
                f,
                "its buffer holds {dtype} but `{other}` holds {other_dtype}: `{other}: {other_ty}` \
                 and `{name}: {ty}` share the element type `{generic}`, so their buffers must \
                 have one element type"
            ),
            ArgError::ElemRefused { dtype, allowed } => write!(
                f,
                "its buffer holds {dtype}, which the kernel does not take: {allowed}"
            ),
            ArgError::NoGenericParam => {
                write!(f, "no parameter has the element type `{name}`")
            }
            ArgError::Unknown { known } => write!(
                f,
                "the kernel has no such parameter (it takes {})",
                known.join(", ")
            ),
        }
    }
}

/// Whether a command sends or receives, as errors about its peer name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommSide {
    /// A send.
    Send,
    /// A receive.
    Recv,
}

impl CommSide {
    /// `send to` or `receive from`.
    pub fn to_or_from(self) -> &'static str {
        match self {
            CommSide::Send => "send to",
            CommSide::Recv => "receive from",
        }
    }
}

/// A use of the kernel language that has no meaning (see
/// [`TraceErrorKind::Invalid`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    /// A grid that is empty, has more than 3 axes or an axis of 0.
    #[error("grid {grid:?}: give 1 to 3 axes, each at least 1")]
    Grid {
        /// The grid given.
        grid: Vec<u32>,
    },
    /// A program id outside the grid.
    #[error("program id {pid:?} is outside the grid {grid:?}")]
    ProgramId {
        /// The program id given.
        pid: Vec<u32>,
        /// The grid.
        grid: Vec<u32>,
    },
    /// A grid axis past the third.
    #[error("grid axis {axis} does not exist (axes are 0, 1, 2)")]
    GridAxis {
        /// The axis asked for.
        axis: usize,
    },
    /// A send to or receive from a rank the launch does not have.
    #[error(
        "{} rank {rank}, but the launch has {world} program instance(s) (ranks 0..{world}, \
         grid {grid:?})",
        side.to_or_from()
    )]
    PeerOutOfGrid {
        /// A send or a receive.
        side: CommSide,
        /// The rank given.
        rank: u64,
        /// Program instances of the launch.
        world: u64,
        /// The grid.
        grid: Vec<u32>,
    },
    /// A send to or receive from the program instance itself.
    #[error(
        "{} rank {rank}, which is this program instance itself: a rank cannot send to or \
         receive from itself",
        side.to_or_from()
    )]
    PeerIsSelf {
        /// A send or a receive.
        side: CommSide,
        /// The rank given (this instance's).
        rank: u64,
    },
    /// A tile of another trace.
    #[error(
        "tile {tile} does not belong to this trace (a tile cannot outlive the kernel call that \
         made it)"
    )]
    ForeignTile {
        /// The tile.
        tile: CmdId,
    },
    /// A streamed operand read by a command other than a GEMM.
    #[error(
        "{tile} is a streamed operand: only `dot`/`gemm` can read it; use `tl::load` for a tile"
    )]
    StreamedOperand {
        /// The streamed operand.
        tile: CmdId,
    },
    /// A cast in a GEMM epilogue before its last step.
    #[error("a cast in a GEMM epilogue must be its last step")]
    EpilogueCastNotLast,
    /// An elementwise operation given the wrong number of operands.
    #[error("{op} takes {arity} operands, got {got}")]
    Arity {
        /// The operation.
        op: &'static str,
        /// The operands it takes.
        arity: usize,
        /// The operands given.
        got: usize,
    },
    /// An elementwise operation of scalars only.
    #[error("{op} needs at least one tile operand")]
    NoTileOperand {
        /// The operation.
        op: &'static str,
    },
    /// `where` given a scalar for its mask.
    #[error("where takes a mask tile first, not a scalar")]
    WhereScalarMask,
    /// `where` of two scalars without the result type.
    #[error("where of two scalars needs the result type")]
    WhereNeedsType,
    /// A cast without the result type.
    #[error("cast needs the result type")]
    CastNeedsType,
    /// An operation asked for a result type other than the one it gives.
    #[error("{op} gives a {gives} tile, not {asked}; cast its result")]
    ResultType {
        /// The operation.
        op: &'static str,
        /// The type it gives.
        gives: DType,
        /// The type asked for.
        asked: DType,
    },
    /// `tl::wait` on a tile that is not an asynchronous receive.
    #[error("{tile} is not a future from `tl::recv_async`")]
    NotFuture {
        /// The tile waited on.
        tile: CmdId,
    },
}

/// Which shapes do not fit (see [`TraceErrorKind::Shape`]). Shapes are
/// outermost dimension first.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    /// A memory region with no elements.
    #[error("a region of shape {shape:?} is empty")]
    EmptyRegion {
        /// The region's shape.
        shape: Vec<usize>,
    },
    /// A tile with no elements.
    #[error("a tile of shape {shape:?} is empty")]
    EmptyTile {
        /// The tile's shape.
        shape: Vec<usize>,
    },
    /// A message with no elements.
    #[error("recv of shape {shape:?}: a message must hold at least one element")]
    EmptyMessage {
        /// The message's shape.
        shape: Vec<usize>,
    },
    /// A tile whose bytes a 64-bit count cannot hold.
    #[error("a {dtype} tile of shape {shape:?} has more bytes than a 64-bit count holds")]
    TooManyBytes {
        /// The tile's element type.
        dtype: DType,
        /// Its shape.
        shape: Vec<usize>,
    },
    /// A block of a tensor that is not 2-D.
    #[error("a block of a tensor is 2D (rows, cols), not {shape:?}")]
    BlockRank {
        /// The shape given.
        shape: Vec<usize>,
    },
    /// An access to a block under a shape other than the block's.
    #[error("the block is {block:?} but the access names shape {access:?}")]
    BlockAccess {
        /// The block's rows and columns.
        block: [usize; 2],
        /// The shape the access names.
        access: Vec<usize>,
    },
    /// A streamed GEMM operand that is not 2-D.
    #[error("a streamed GEMM operand must be 2D, not {shape:?}")]
    StreamRank {
        /// The operand's shape.
        shape: Vec<usize>,
    },
    /// The mask of a masked load or store that does not broadcast to its region.
    #[error("the mask {mask:?} of a masked {access} does not broadcast to the region {region:?}")]
    MaskBroadcast {
        /// `load` or `store`.
        access: &'static str,
        /// The mask's shape.
        mask: Vec<usize>,
        /// The region's shape.
        region: Vec<usize>,
    },
    /// A store of a tile into a region of another shape (and element count).
    #[error("store of a {value:?} tile into a region of shape {region:?}")]
    Store {
        /// The tile's shape.
        value: Vec<usize>,
        /// The region's shape.
        region: Vec<usize>,
    },
    /// A dot product of tiles that are not both 2-D.
    #[error("dot takes 2D tiles, got {a:?} x {b:?}")]
    DotRank {
        /// The left operand's shape.
        a: Vec<usize>,
        /// The right operand's shape.
        b: Vec<usize>,
    },
    /// A dot product whose inner dimensions differ.
    #[error(
        "dot of {a:?} x {b:?}: the inner dimensions {} and {} differ",
        .a[1],
        .b[0]
    )]
    DotInner {
        /// The left operand's rows and columns.
        a: [usize; 2],
        /// The right operand's rows and columns.
        b: [usize; 2],
    },
    /// A dot product's accumulator of another type than the product.
    #[error("dot accumulator is {acc}, the product is {product}")]
    Accumulator {
        /// The accumulator's type.
        acc: TileType,
        /// The product's type.
        product: TileType,
    },
    /// A GEMM bias that does not broadcast to the product.
    #[error("bias {bias:?} does not broadcast to the product {product:?}")]
    BiasBroadcast {
        /// The bias's shape.
        bias: Vec<usize>,
        /// The product's shape.
        product: Vec<usize>,
    },
    /// Operands of an elementwise operation whose shapes do not broadcast.
    #[error(
        "{op} of {}: the shapes do not broadcast (dimension {dim} from the left of the \
         broadcast shape: {} against {}; numpy's rules align shapes at the last dimension and \
         stretch only extents of 1)",
        shape_list(.shapes),
        .extents[0],
        .extents[1]
    )]
    Broadcast {
        /// The operation.
        op: &'static str,
        /// The tile operands' shapes, up to the first that does not broadcast.
        shapes: Vec<Vec<usize>>,
        /// The dimension of the broadcast shape where they clash.
        dim: usize,
        /// The two extents that clash there.
        extents: [usize; 2],
    },
    /// A tile that does not broadcast to the shape asked for.
    #[error(
        "{from:?} does not broadcast to {to:?}: numpy's rules align shapes at the last dimension \
         and stretch only extents of 1"
    )]
    BroadcastTo {
        /// The tile's shape.
        from: Vec<usize>,
        /// The shape asked for.
        to: Vec<usize>,
    },
    /// A reshape to a shape of another element count.
    #[error(
        "reshape of {from:?} ({from_elems} elements) to {to:?} ({to_elems} elements): the \
         element counts must agree"
    )]
    Reshape {
        /// The tile's shape.
        from: Vec<usize>,
        /// Its elements.
        from_elems: usize,
        /// The shape asked for.
        to: Vec<usize>,
        /// Its elements.
        to_elems: usize,
    },
    /// A transpose of a tile that is not 2-D.
    #[error("trans takes a 2D tile, not {shape:?}; reshape it first")]
    TransRank {
        /// The tile's shape.
        shape: Vec<usize>,
    },
    /// A new axis past the end of the shape.
    #[error(
        "expand_dims at axis {axis} of a {}-D tile {shape:?}: the axis is at most {}",
        .shape.len(),
        .shape.len()
    )]
    ExpandDims {
        /// The axis asked for.
        axis: usize,
        /// The tile's shape.
        shape: Vec<usize>,
    },
    /// A reduction or softmax along an axis the tile does not have.
    #[error("{op} along axis {axis} of a {}-D tile {shape:?}", .shape.len())]
    Axis {
        /// The operation.
        op: &'static str,
        /// The axis asked for.
        axis: usize,
        /// The tile's shape.
        shape: Vec<usize>,
    },
    /// An `arange` that is empty or leaves `i32`.
    #[error("arange({start}, {end}): give start < end, both within i32")]
    Arange {
        /// First value.
        start: i64,
        /// One past the last value.
        end: i64,
    },
}

/// `[8, 64] and [8, 2]`
fn shape_list(shapes: &[Vec<usize>]) -> String {
    let list: Vec<String> = shapes.iter().map(|s| shape_str(s)).collect();
    list.join(" and ")
}

/// Which element types do not go together (see [`TraceErrorKind::DType`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DTypeError {
    /// Operands of one operation with different element types.
    #[error("{op} of {a} and {b}: cast one side with `.cast::<T>()`")]
    Mixed {
        /// The operation (`add`, `dot`, ...).
        op: &'static str,
        /// The first operand's type.
        a: DType,
        /// The type that differs from it.
        b: DType,
    },
    /// Elementwise arithmetic on masks.
    #[error(
        "{op} of bool masks: masks have no arithmetic; combine masks with `&`, `|`, `^`, `!`, \
         choose with `tl::where_`, or turn a mask into numbers with `.cast::<f32>()`"
    )]
    MaskArithmetic {
        /// The operation.
        op: &'static str,
    },
    /// A dot product of masks.
    #[error(
        "dot of {dtype} masks: masks have no arithmetic; cast them to numbers with \
         `.cast::<f32>()` first"
    )]
    DotOfMasks {
        /// The operands' type.
        dtype: DType,
    },
    /// A reduction or softmax of a mask.
    #[error(
        "{op} of a {dtype} mask: masks have no arithmetic; cast it to numbers with \
         `.cast::<i32>()` first"
    )]
    ReduceOfMask {
        /// The operation (`sum`, `argmax`, `softmax`, ...).
        op: &'static str,
        /// The operand's type.
        dtype: DType,
    },
    /// A floating-point function of a non-float tile.
    #[error("{op} of {dtype}: it takes floating-point tiles; cast first with `.cast::<f32>()`")]
    NotFloat {
        /// The function.
        op: &'static str,
        /// The operand's type.
        dtype: DType,
    },
    /// A floating-point epilogue step on a product that is not floating-point.
    #[error(
        "{op} in the epilogue of a product in {dtype}: it takes floating-point products; \
         multiply floating-point tiles"
    )]
    EpilogueNotFloat {
        /// The step.
        op: &'static str,
        /// The product's type.
        dtype: DType,
    },
    /// A logical operation on tiles that are not masks.
    #[error(
        "{op} of {dtype}: `&`, `|`, `^` and `!` combine masks (bool tiles, from comparisons \
         such as `x.lt(y)`)"
    )]
    NotMask {
        /// The operation.
        op: &'static str,
        /// The operands' type.
        dtype: DType,
    },
    /// `where` with a first operand that is not a mask.
    #[error(
        "where takes a mask first (a bool tile, from a comparison such as `x.lt(y)`), not a \
         {dtype} tile"
    )]
    WhereMask {
        /// The first operand's type.
        dtype: DType,
    },
    /// `where` of values of one type asked for a result of another.
    #[error("where of {values} values into a {result} tile")]
    WhereResult {
        /// The values' type.
        values: DType,
        /// The result type asked for.
        result: DType,
    },
    /// The mask of a masked load or store that is not a `bool` tile.
    #[error(
        "the mask of a masked {access} is a {dtype} tile; a mask is a bool tile, from a \
         comparison such as `x.lt(y)`"
    )]
    MaskNotBool {
        /// `load` or `store`.
        access: &'static str,
        /// The mask's type.
        dtype: DType,
    },
    /// A store of a tile through a pointer to another type.
    #[error(
        "store of a {value} tile through a {pointer} pointer `{name}`; cast first with \
         `.cast::<{pointer}>()`"
    )]
    Store {
        /// The tile's type.
        value: DType,
        /// The pointer's element type.
        pointer: DType,
        /// The pointer's parameter.
        name: String,
    },
    /// A GEMM bias that is not of the product's (accumulator's) type.
    #[error(
        "a {bias} bias for a {product} product: the bias has the accumulator's type; cast it \
         with `.cast::<{product}>()`"
    )]
    Bias {
        /// The bias's type.
        bias: DType,
        /// The product's type.
        product: DType,
    },
    /// A GEMM epilogue cast to a type that is not a number.
    #[error("a GEMM epilogue cannot cast to {to}: a product has no mask type")]
    EpilogueCast {
        /// The type asked for.
        to: DType,
    },
}

/// What a kernel reached outside of (see [`TraceErrorKind::OutOfBounds`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BoundsError {
    /// Elements of a pointer's region outside the buffer behind it.
    #[error("elements {start}..{end} of `{name}`, which holds {len}")]
    Elements {
        /// The pointer's parameter.
        name: String,
        /// First element of the region (negative: before the buffer).
        start: i64,
        /// One past its last element.
        end: i64,
        /// Elements of the buffer.
        len: usize,
    },
    /// A block outside its tensor.
    #[error(
        "block rows {}..{}, cols {}..{} of `{name}`, which is {}x{}",
        .origin[0],
        .origin[0].saturating_add(.shape[0]),
        .origin[1],
        .origin[1].saturating_add(.shape[1]),
        .tensor[0],
        .tensor[1]
    )]
    Block {
        /// The tensor's parameter.
        name: String,
        /// The block's first row and column.
        origin: [usize; 2],
        /// The block's rows and columns.
        shape: [usize; 2],
        /// The tensor's rows and columns.
        tensor: [usize; 2],
    },
    /// A region whose addresses do not fit the 64-bit address space.
    #[error(
        "{region} of shape {} lies outside the 64-bit address space (its address overflows)",
        shape_str(&.region.shape)
    )]
    AddressOverflow {
        /// The region.
        region: MemRef,
    },
}

/// An error raised while tracing a kernel, naming the kernel line.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceError {
    /// The kernel.
    pub kernel: String,
    /// Where in the kernel (absent for errors about the launch as a whole).
    pub loc: Option<SrcLoc>,
    /// What went wrong.
    pub kind: TraceErrorKind,
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.loc {
            Some(l) => write!(f, "kernel `{}` at {}: {}", self.kernel, l, self.kind),
            None => write!(f, "kernel `{}`: {}", self.kernel, self.kind),
        }
    }
}

impl std::error::Error for TraceError {}

/// A shape as the messages print it: `[8, 64]`.
fn shape_str(s: &[usize]) -> String {
    format!("{s:?}")
}
