//! The command-graph IR: what one program instance (one PE) asks the machine to do.
//!
//! A [`CommandGraph`] holds one node per command in program order (the node
//! index is the command's SSA id `%n`) and one edge per dependency: data
//! dependencies from operands, and the ordering side effects need (stores to
//! overlapping memory, sends to one peer, receives from one peer).

mod args;
mod builder;
mod dims;
mod dot;
mod error;
mod text;

pub use args::{ArgValue, KernelArgs, ParamKind};
pub use builder::{GraphBuilder, TraceLimits};
pub use dims::Dims;
pub use error::{
    ArgError, BoundsError, CommSide, DTypeError, Expected, ShapeError, TraceError, TraceErrorKind,
    UsageError,
};

use crate::DType;
use petgraph::graph::{DiGraph, NodeIndex};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;

/// A source location in a kernel: where a `tl::` call was written.
///
/// Equality and hashing are by content, but cheap in the common case: the
/// file of a traced location is the compiler's own `&'static str`, one
/// pointer per file, so equal pointers settle it without reading the text,
/// and the hash covers the file's length rather than its bytes. Compiling
/// a launch looks up the location of every command of every instance.
#[derive(Clone, Debug, Eq, Serialize, Deserialize)]
pub struct SrcLoc {
    /// The file, as the compiler names it.
    pub file: Cow<'static, str>,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub col: u32,
}

impl SrcLoc {
    /// The location of the caller of a `#[track_caller]` function.
    pub fn from_location(l: &'static std::panic::Location<'static>) -> Self {
        SrcLoc {
            file: Cow::Borrowed(l.file()),
            line: l.line(),
            col: l.column(),
        }
    }

    /// The file name without its directories.
    pub fn file_name(&self) -> &str {
        self.file.rsplit(['/', '\\']).next().unwrap_or(&self.file)
    }
}

impl PartialEq for SrcLoc {
    fn eq(&self, other: &Self) -> bool {
        self.line == other.line
            && self.col == other.col
            && self.file.len() == other.file.len()
            && (std::ptr::eq(self.file.as_ptr(), other.file.as_ptr()) || self.file == other.file)
    }
}

impl std::hash::Hash for SrcLoc {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.line.hash(state);
        self.col.hash(state);
        self.file.len().hash(state);
    }
}

impl fmt::Display for SrcLoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// The id of a command, and of the tile value it produces (`%n`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CmdId(pub u32);

impl CmdId {
    /// The index into the graph's command list.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for CmdId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "%{}", self.0)
    }
}

/// The type of a tile: element type and shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TileType {
    /// Element type.
    pub dtype: DType,
    /// Shape, outermost dimension first.
    pub shape: Dims,
}

impl TileType {
    /// A tile type.
    pub fn new(dtype: DType, shape: impl Into<Dims>) -> Self {
        TileType {
            dtype,
            shape: shape.into(),
        }
    }

    /// Number of elements.
    pub fn elems(&self) -> usize {
        self.shape.iter().product()
    }

    /// Size in bytes.
    pub fn bytes(&self) -> u64 {
        (self.elems() * self.dtype.size()) as u64
    }
}

impl fmt::Display for TileType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tile<{},[", self.dtype)?;
        for (i, d) in self.shape.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]>")
    }
}

/// A logical direction of the IPCQ fabric. It means nothing until a neighbour
/// map is installed for the launch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Dir {
    /// North (also: the previous row of a 2D mesh or torus).
    N,
    /// South.
    S,
    /// East (also: the next rank of a ring).
    E,
    /// West (also: the previous rank of a ring).
    W,
    /// A tree's parent.
    Parent,
    /// A tree's left child.
    Left,
    /// A tree's right child.
    Right,
    /// The next SIP of an inter-SIP ring or row.
    SipE,
    /// The previous SIP of an inter-SIP ring or row.
    SipW,
    /// The next SIP row of an inter-SIP 2D torus or mesh.
    SipS,
    /// The previous SIP row of an inter-SIP 2D torus or mesh.
    SipN,
}

impl Dir {
    /// Every direction, in a fixed order.
    pub const ALL: [Dir; 11] = [
        Dir::N,
        Dir::S,
        Dir::E,
        Dir::W,
        Dir::Parent,
        Dir::Left,
        Dir::Right,
        Dir::SipE,
        Dir::SipW,
        Dir::SipS,
        Dir::SipN,
    ];

    /// A dense index (position in [`Dir::ALL`]).
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The direction a message sent this way arrives from at the receiver,
    /// when the receiver's map names the sender that way (N and S, E and W,
    /// the inter-SIP pairs); `None` for tree directions, whose reverse depends
    /// on which child the sender is.
    pub const fn opposite(self) -> Option<Dir> {
        Some(match self {
            Dir::N => Dir::S,
            Dir::S => Dir::N,
            Dir::E => Dir::W,
            Dir::W => Dir::E,
            Dir::SipE => Dir::SipW,
            Dir::SipW => Dir::SipE,
            Dir::SipN => Dir::SipS,
            Dir::SipS => Dir::SipN,
            Dir::Left | Dir::Right => Dir::Parent,
            Dir::Parent => return None,
        })
    }
}

impl fmt::Display for Dir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Whom a send or receive addresses: a direction, resolved through the
/// launch's neighbour map, or a rank, the index of a program instance of the
/// launch (axis 0 fastest), resolved through the launch's instance-to-PE map.
///
/// A kernel writes either: `tl::send(Dir::E, &x)` or `tl::send(rank ^ 1, &x)`.
/// A message sent to a rank is received by naming the sender's rank; the two
/// forms address different channels, so a rank send never pairs with a
/// direction receive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Peer {
    /// A direction of the neighbour map.
    Dir(Dir),
    /// A program instance of the launch, by its linear index.
    Rank(u64),
}

impl Peer {
    /// The direction, for a direction peer.
    pub const fn dir(self) -> Option<Dir> {
        match self {
            Peer::Dir(d) => Some(d),
            Peer::Rank(_) => None,
        }
    }

    /// The rank, for a rank peer.
    pub const fn rank(self) -> Option<u64> {
        match self {
            Peer::Dir(_) => None,
            Peer::Rank(r) => Some(r),
        }
    }

    /// Peer kinds, one per direction and one for every rank: the count of
    /// [`Peer::kind_index`] values (a track per kind in timelines).
    pub const KINDS: usize = Dir::ALL.len() + 1;

    /// A dense index of the peer's kind: the direction's index, or
    /// `Dir::ALL.len()` for every rank.
    pub const fn kind_index(self) -> usize {
        match self {
            Peer::Dir(d) => d.index(),
            Peer::Rank(_) => Dir::ALL.len(),
        }
    }

    /// The name of kind `k` of [`Peer::kind_index`]: the direction, or `ranks`.
    pub fn kind_name(k: usize) -> String {
        match Dir::ALL.get(k) {
            Some(d) => d.to_string(),
            None => "ranks".to_string(),
        }
    }
}

impl From<Dir> for Peer {
    fn from(d: Dir) -> Self {
        Peer::Dir(d)
    }
}

impl From<usize> for Peer {
    fn from(r: usize) -> Self {
        Peer::Rank(r as u64)
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Dir(d) => write!(f, "{d}"),
            Peer::Rank(r) => write!(f, "rank {r}"),
        }
    }
}

/// How a memory region is seen by a kernel.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum View {
    /// `param.offset(n)`: contiguous from element `offset`.
    Flat {
        /// Element offset from the parameter's base.
        offset: i64,
    },
    /// `tensor.block([r0, c0], [rows, cols])` of a row-major 2D tensor.
    Block {
        /// Block origin (row, column).
        origin: [usize; 2],
        /// The whole tensor's shape.
        tensor: [usize; 2],
    },
}

/// A region of device memory named by a kernel parameter.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MemRef {
    /// Index of the kernel parameter.
    pub param: u16,
    /// The parameter's name.
    pub name: Cow<'static, str>,
    /// The parameter's base virtual address.
    pub base_va: u64,
    /// How the region is addressed.
    pub view: View,
    /// Element type.
    pub dtype: DType,
    /// Shape of the region (its tile).
    pub shape: Dims,
}

impl MemRef {
    /// Bytes between the starts of consecutive rows (for 2D regions), or the row length.
    pub fn row_pitch_bytes(&self) -> u64 {
        let es = self.dtype.size() as u64;
        match &self.view {
            View::Flat { .. } => (self.shape.last().copied().unwrap_or(1) as u64).wrapping_mul(es),
            View::Block { tensor, .. } => (tensor[1] as u64).wrapping_mul(es),
        }
    }

    /// Contiguous runs: (virtual address of the first byte, bytes per run, number of runs).
    ///
    /// The arithmetic wraps: a region whose bytes do not fit in the address
    /// space (see [`MemRef::checked_span`], which the graph builder checks)
    /// gives meaningless numbers, not a panic.
    pub fn runs(&self) -> (u64, u64, u64) {
        let es = self.dtype.size() as u64;
        match &self.view {
            View::Flat { offset } => {
                let elems = self
                    .shape
                    .iter()
                    .fold(1u64, |a, d| a.wrapping_mul(*d as u64));
                let start = self
                    .base_va
                    .wrapping_add((*offset).wrapping_mul(es as i64) as u64);
                (start, elems.wrapping_mul(es), 1)
            }
            View::Block { origin, tensor } => {
                let rows = self.shape.first().copied().unwrap_or(1) as u64;
                let cols = self.shape.get(1).copied().unwrap_or(1) as u64;
                let first = (origin[0] as u64)
                    .wrapping_mul(tensor[1] as u64)
                    .wrapping_add(origin[1] as u64);
                let start = self.base_va.wrapping_add(first.wrapping_mul(es));
                if cols == tensor[1] as u64 {
                    (start, rows.wrapping_mul(cols).wrapping_mul(es), 1)
                } else {
                    (start, cols.wrapping_mul(es), rows)
                }
            }
        }
    }

    /// The byte range `[start, end)` the region spans, for overlap checks
    /// (wrapping like [`MemRef::runs`]).
    pub fn span(&self) -> (u64, u64) {
        let (start, run, n) = self.runs();
        let pitch = self.row_pitch_bytes();
        let end = if n <= 1 {
            start.wrapping_add(run)
        } else {
            start
                .wrapping_add((n - 1).wrapping_mul(pitch))
                .wrapping_add(run)
        };
        (start, end)
    }

    /// The byte range `[start, end)` of the region, or `None` when some
    /// byte of it lies outside the 64-bit address space (an offset or an
    /// extent so large that its address overflows).
    pub fn checked_span(&self) -> Option<(u64, u64)> {
        let es = self.dtype.size() as u64;
        let elems = self
            .shape
            .iter()
            .try_fold(1u64, |a, d| a.checked_mul(*d as u64))?;
        match &self.view {
            View::Flat { offset } => {
                let start = self
                    .base_va
                    .checked_add_signed(offset.checked_mul(es as i64)?)?;
                Some((start, start.checked_add(elems.checked_mul(es)?)?))
            }
            View::Block { origin, tensor } => {
                let rows = self.shape.first().copied().unwrap_or(1) as u64;
                let cols = self.shape.get(1).copied().unwrap_or(1) as u64;
                let pitch = (tensor[1] as u64).checked_mul(es)?;
                let first = (origin[0] as u64)
                    .checked_mul(tensor[1] as u64)?
                    .checked_add(origin[1] as u64)?
                    .checked_mul(es)?;
                let start = self.base_va.checked_add(first)?;
                let end = start
                    .checked_add(rows.saturating_sub(1).checked_mul(pitch)?)?
                    .checked_add(cols.checked_mul(es)?)?;
                Some((start, end))
            }
        }
    }

    /// Bytes the region holds.
    pub fn bytes(&self) -> u64 {
        let (_, run, n) = self.runs();
        run * n
    }
}

impl fmt::Display for MemRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.view {
            View::Flat { offset } => write!(f, "{}[{:+}]", self.name, offset),
            View::Block { origin, .. } => {
                let rows = self.shape.first().copied().unwrap_or(1);
                let cols = self.shape.get(1).copied().unwrap_or(1);
                write!(
                    f,
                    "{}[{}..{}, {}..{}]",
                    self.name,
                    origin[0],
                    origin[0].saturating_add(rows),
                    origin[1],
                    origin[1].saturating_add(cols)
                )
            }
        }
    }
}

/// An operand of a math command: a tile (broadcast to the result shape) or a scalar.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Operand {
    /// A tile value.
    Value(CmdId),
    /// A scalar.
    Scalar(f64),
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Value(v) => write!(f, "{v}"),
            Operand::Scalar(s) => write!(f, "{s:?}"),
        }
    }
}

/// Elementwise operations the MATH engine runs.
///
/// Operands broadcast by numpy's rules: shapes are aligned at their last
/// dimension, a missing leading dimension counts as 1, and a dimension of 1
/// stretches to the other's extent. Scalars broadcast to anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MathOp {
    /// a + b
    Add,
    /// a - b
    Sub,
    /// a * b
    Mul,
    /// a / b
    Div,
    /// max(a, b)
    Max,
    /// min(a, b)
    Min,
    /// a * b + c
    Fma,
    /// min(max(x, lo), hi)
    Clamp,
    /// e^x
    Exp,
    /// -x
    Neg,
    /// max(x, 0)
    Relu,
    /// Conversion to the result type.
    Cast,
    /// 2^x
    Exp2,
    /// ln x
    Log,
    /// log2 x
    Log2,
    /// sqrt x
    Sqrt,
    /// 1 / sqrt x
    Rsqrt,
    /// tanh x
    Tanh,
    /// 1 / (1 + e^-x)
    Sigmoid,
    /// GELU in the tanh approximation of GPT-2 and Megatron (see [`gelu`]).
    Gelu,
    /// |x|
    Abs,
    /// a^b
    Pow,
    /// a < b, a mask
    Lt,
    /// a <= b, a mask
    Le,
    /// a > b, a mask
    Gt,
    /// a >= b, a mask
    Ge,
    /// a == b, a mask
    Eq,
    /// a != b, a mask
    Ne,
    /// a and b, of masks
    And,
    /// a or b, of masks
    Or,
    /// a xor b, of masks
    Xor,
    /// not a, of a mask
    Not,
    /// `mask ? a : b`
    Where,
}

/// What a [`MathOp`] accepts and gives: the typing rule the graph builder checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MathKind {
    /// Number operands of one type; the result has that type.
    Arith,
    /// Floating-point operands of one type (integers are cast first); the result has that type.
    Float,
    /// Operands of one type; the result is a mask (`bool`).
    Compare,
    /// Mask operands; the result is a mask.
    Logic,
    /// A mask, then two operands of one type; the result has that type.
    Select,
    /// One operand of any type; the result type is given.
    Cast,
}

impl MathOp {
    /// The number of operands.
    pub const fn arity(self) -> usize {
        use MathOp::*;
        match self {
            Exp | Neg | Relu | Cast | Exp2 | Log | Log2 | Sqrt | Rsqrt | Tanh | Sigmoid | Gelu
            | Abs | Not => 1,
            Fma | Clamp | Where => 3,
            _ => 2,
        }
    }

    /// Its typing rule.
    pub const fn kind(self) -> MathKind {
        use MathOp::*;
        match self {
            Add | Sub | Mul | Div | Max | Min | Fma | Clamp | Neg | Relu | Abs => MathKind::Arith,
            Exp | Exp2 | Log | Log2 | Sqrt | Rsqrt | Tanh | Sigmoid | Gelu | Pow => MathKind::Float,
            Lt | Le | Gt | Ge | Eq | Ne => MathKind::Compare,
            And | Or | Xor | Not => MathKind::Logic,
            Where => MathKind::Select,
            Cast => MathKind::Cast,
        }
    }

    /// Lower-case name for the text form.
    pub const fn name(self) -> &'static str {
        use MathOp::*;
        match self {
            Add => "add",
            Sub => "sub",
            Mul => "mul",
            Div => "div",
            Max => "max",
            Min => "min",
            Fma => "fma",
            Clamp => "clamp",
            Exp => "exp",
            Neg => "neg",
            Relu => "relu",
            Cast => "cast",
            Exp2 => "exp2",
            Log => "log",
            Log2 => "log2",
            Sqrt => "sqrt",
            Rsqrt => "rsqrt",
            Tanh => "tanh",
            Sigmoid => "sigmoid",
            Gelu => "gelu",
            Abs => "abs",
            Pow => "pow",
            Lt => "lt",
            Le => "le",
            Gt => "gt",
            Ge => "ge",
            Eq => "eq",
            Ne => "ne",
            And => "and",
            Or => "or",
            Xor => "xor",
            Not => "not",
            Where => "where",
        }
    }

    /// Applies the operation to scalars (computed in f32; masks are 0.0 and
    /// 1.0, and any non-zero value counts as true).
    #[inline]
    pub fn apply(self, a: f32, b: f32, c: f32) -> f32 {
        use MathOp::*;
        let m = |t: bool| if t { 1.0 } else { 0.0 };
        match self {
            Add => a + b,
            Sub => a - b,
            Mul => a * b,
            Div => a / b,
            Max => a.max(b),
            Min => a.min(b),
            Fma => a.mul_add(b, c),
            Clamp => a.max(b).min(c),
            Exp => a.exp(),
            Neg => -a,
            Relu => a.max(0.0),
            Cast => a,
            Exp2 => a.exp2(),
            Log => a.ln(),
            Log2 => a.log2(),
            Sqrt => a.sqrt(),
            Rsqrt => 1.0 / a.sqrt(),
            Tanh => a.tanh(),
            Sigmoid => 1.0 / (1.0 + (-a).exp()),
            Gelu => gelu(a),
            Abs => a.abs(),
            Pow => a.powf(b),
            Lt => m(a < b),
            Le => m(a <= b),
            Gt => m(a > b),
            Ge => m(a >= b),
            Eq => m(a == b),
            Ne => m(a != b),
            And => m(a != 0.0 && b != 0.0),
            Or => m(a != 0.0 || b != 0.0),
            Xor => m((a != 0.0) != (b != 0.0)),
            Not => m(a == 0.0),
            Where => {
                if a != 0.0 {
                    b
                } else {
                    c
                }
            }
        }
    }
}

/// `sqrt(2 / pi)`, the scale inside [`gelu`]'s tanh.
pub const GELU_K: f32 = std::f32::consts::FRAC_2_SQRT_PI * std::f32::consts::FRAC_1_SQRT_2;

/// The cubic term's coefficient inside [`gelu`]'s tanh.
pub const GELU_C: f32 = 0.044_715;

/// GELU in the tanh approximation that GPT-2 and Megatron use (PyTorch's
/// `gelu(x, approximate="tanh")`):
/// `0.5 x (1 + tanh(w))` with `w = sqrt(2 / pi) (x + 0.044715 x^3)`,
/// computed in f32 in the equal form `x / (1 + e^(-2 w))`, which does not
/// cancel where `tanh(w)` nears -1 (`x` below about -2). It is what
/// [`MathOp::Gelu`] and the GEMM epilogue's [`Epilogue::Gelu`] give,
/// element for element.
#[inline]
pub fn gelu(x: f32) -> f32 {
    let w = GELU_K * (x + GELU_C * x * x * x);
    x / (1.0 + (-2.0 * w).exp())
}

/// Reductions along an axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReduceOp {
    /// Sum.
    Sum,
    /// Maximum.
    Max,
    /// Minimum.
    Min,
    /// The index of the first maximum (an `i32` tile; a NaN counts as the maximum, as in numpy).
    Argmax,
    /// The index of the first minimum (an `i32` tile; a NaN counts as the minimum, as in numpy).
    Argmin,
}

impl ReduceOp {
    /// Lower-case name for the text form.
    pub const fn name(self) -> &'static str {
        match self {
            ReduceOp::Sum => "sum",
            ReduceOp::Max => "max",
            ReduceOp::Min => "min",
            ReduceOp::Argmax => "argmax",
            ReduceOp::Argmin => "argmin",
        }
    }
}

/// The mask of a masked load.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoadMask {
    /// A `bool` tile that broadcasts to the region's shape.
    pub mask: CmdId,
    /// The value read where the mask is false.
    pub other: f64,
}

/// The shape numpy's broadcasting gives two shapes: aligned at their last
/// dimension, a missing dimension counting as 1, a 1 stretching to the
/// other's extent. `Err(d)` names the first dimension (counted from the
/// left of the longer shape) where they differ and neither is 1.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Result<Vec<usize>, usize> {
    broadcast_dims(a, b).map(Vec::from)
}

/// [`broadcast_shapes`] as [`Dims`] (no allocation for 1D and 2D shapes).
pub(crate) fn broadcast_dims(a: &[usize], b: &[usize]) -> Result<Dims, usize> {
    let n = a.len().max(b.len());
    let at = |s: &[usize], i: usize| {
        if i + s.len() >= n {
            s[i + s.len() - n]
        } else {
            1
        }
    };
    (0..n)
        .map(|i| match (at(a, i), at(b, i)) {
            (x, y) if x == y => Ok(x),
            (1, y) => Ok(y),
            (x, 1) => Ok(x),
            _ => Err(i),
        })
        .collect()
}

/// Whether `from` broadcasts to exactly `to` (the one-way rule of `broadcast_to`).
pub fn broadcasts_to(from: &[usize], to: &[usize]) -> bool {
    from.len() <= to.len() && broadcast_shapes(from, to).as_deref() == Ok(to)
}

/// One step of a GEMM epilogue, run on MATH per output tile before write-back.
///
/// Steps run in order on the accumulator's values (`f32` or `i32`); a
/// [`Epilogue::Cast`] can only be the last step, and gives the command its
/// result type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Epilogue {
    /// Add a bias tile of the accumulator's type that broadcasts to the
    /// product by numpy's rules (`[N]` or `[1, N]` along rows, `[M, 1]`
    /// along columns, or `[M, N]`).
    Bias(CmdId),
    /// Multiply by a scalar.
    Scale(f64),
    /// max(x, 0).
    Relu,
    /// GELU, the tanh approximation ([`gelu`]); on floating-point products only.
    Gelu,
    /// Convert to another element type (the last step; the epilogue
    /// fusion pass folds a tail's `cast` into it).
    Cast(DType),
}

impl fmt::Display for Epilogue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Epilogue::Bias(v) => write!(f, "bias({v})"),
            Epilogue::Scale(s) => write!(f, "scale({s:?})"),
            Epilogue::Relu => f.write_str("relu"),
            Epilogue::Gelu => f.write_str("gelu"),
            Epilogue::Cast(d) => write!(f, "cast({d})"),
        }
    }
}

/// The values a command reads, inline (no allocation) for the usual few.
pub type Operands = smallvec::SmallVec<[CmdId; 4]>;

/// One command of a program instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// Copy a region of HBM into a TCM tile (DMA_IN).
    Load {
        /// Source region.
        src: MemRef,
        /// With a mask: elements where the mask is false read as `other`
        /// instead (the DMA still moves the whole region).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mask: Option<LoadMask>,
    },
    /// Name a region of HBM to be streamed tile by tile by a GEMM instead of loaded whole.
    Stream {
        /// Source region.
        src: MemRef,
    },
    /// Write a tile to a region of HBM (DMA_WB).
    Store {
        /// Destination region.
        dst: MemRef,
        /// The tile written.
        value: CmdId,
        /// With a mask (a `bool` tile broadcast to the region): only elements
        /// where it is true are written; the others keep their bytes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mask: Option<CmdId>,
    },
    /// A tile filled with one value.
    Full {
        /// The value.
        value: f64,
    },
    /// Matrix product `a x b (+ acc)` on GEMM, with an optional epilogue on MATH.
    Dot {
        /// Left operand `[M, K]` (a tile, or a streamed region).
        a: CmdId,
        /// Right operand `[K, N]`.
        b: CmdId,
        /// Accumulator `[M, N]`.
        acc: Option<CmdId>,
        /// Epilogue steps.
        epilogue: Vec<Epilogue>,
    },
    /// Elementwise math.
    Math {
        /// The operation.
        op: MathOp,
        /// Operands: tiles that broadcast to the result shape, or scalars.
        args: Vec<Operand>,
    },
    /// A reduction along one axis (the axis is kept with extent 1).
    Reduce {
        /// The reduction.
        op: ReduceOp,
        /// Input tile.
        x: CmdId,
        /// Axis.
        axis: usize,
    },
    /// Softmax along one axis.
    Softmax {
        /// Input tile.
        x: CmdId,
        /// Axis.
        axis: usize,
    },
    /// The same elements in another shape, in row-major order (also
    /// `expand_dims`): a view of its operand's tile, no data moves.
    Reshape {
        /// Input tile.
        x: CmdId,
    },
    /// The operand broadcast to the result shape by numpy's rules: a view of
    /// its operand's tile, no data moves.
    Broadcast {
        /// Input tile.
        x: CmdId,
    },
    /// The transpose of a 2D tile, written to a new tile.
    Trans {
        /// Input tile.
        x: CmdId,
    },
    /// `start, start + 1, ...` as an `i32` tile of the result shape (`[n]`).
    Arange {
        /// The first value.
        start: i64,
    },
    /// Send a tile to a peer: the neighbour in a direction, or a rank.
    Send {
        /// The receiver.
        peer: Peer,
        /// The tile sent.
        value: CmdId,
    },
    /// Receive a tile from a peer: the neighbour in a direction, or a rank.
    Recv {
        /// The sender.
        peer: Peer,
        /// `true` for `recv_async` (a future the kernel waits on later).
        is_async: bool,
    },
    /// Wait for an asynchronous receive.
    Wait {
        /// The future (a `Recv` with `is_async`).
        future: CmdId,
    },
}

impl Command {
    /// The tile values this command reads.
    pub fn operands(&self) -> Operands {
        let mut v = Operands::new();
        match self {
            Command::Load { mask, .. } => v.extend(mask.iter().map(|m| m.mask)),
            Command::Stream { .. }
            | Command::Full { .. }
            | Command::Arange { .. }
            | Command::Recv { .. } => {}
            Command::Store { value, mask, .. } => {
                v.push(*value);
                v.extend(mask.iter().copied());
            }
            Command::Send { value, .. } => v.push(*value),
            Command::Dot {
                a,
                b,
                acc,
                epilogue,
            } => {
                v.extend([*a, *b]);
                v.extend(acc.iter().copied());
                v.extend(epilogue.iter().filter_map(|e| match e {
                    Epilogue::Bias(x) => Some(*x),
                    _ => None,
                }));
            }
            Command::Math { args, .. } => v.extend(args.iter().filter_map(|a| match a {
                Operand::Value(v) => Some(*v),
                Operand::Scalar(_) => None,
            })),
            Command::Reduce { x, .. }
            | Command::Softmax { x, .. }
            | Command::Reshape { x }
            | Command::Broadcast { x }
            | Command::Trans { x } => v.push(*x),
            Command::Wait { future } => v.push(*future),
        }
        v
    }

    /// A short name for reports and timelines.
    pub fn mnemonic(&self) -> &'static str {
        match self {
            Command::Load { .. } => "load",
            Command::Stream { .. } => "stream",
            Command::Store { .. } => "store",
            Command::Full { .. } => "full",
            Command::Dot { .. } => "dot",
            Command::Math { op, .. } => op.name(),
            Command::Reduce {
                op: ReduceOp::Sum, ..
            } => "sum",
            Command::Reduce {
                op: ReduceOp::Max, ..
            } => "max_reduce",
            Command::Reduce {
                op: ReduceOp::Min, ..
            } => "min_reduce",
            Command::Reduce {
                op: ReduceOp::Argmax,
                ..
            } => "argmax",
            Command::Reduce {
                op: ReduceOp::Argmin,
                ..
            } => "argmin",
            Command::Softmax { .. } => "softmax",
            Command::Reshape { .. } => "reshape",
            Command::Broadcast { .. } => "broadcast_to",
            Command::Trans { .. } => "trans",
            Command::Arange { .. } => "arange",
            Command::Send { .. } => "send",
            Command::Recv {
                is_async: false, ..
            } => "recv",
            Command::Recv { is_async: true, .. } => "recv_async",
            Command::Wait { .. } => "wait",
        }
    }
}

/// A command with its result type and source location.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// The command.
    pub cmd: Command,
    /// The type of the tile it produces (for `store` and `send`: the tile consumed).
    pub ty: TileType,
    /// Where the kernel wrote it.
    pub loc: SrcLoc,
}

/// Why one command must wait for another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DepKind {
    /// The later command reads the earlier one's tile.
    Data,
    /// Side-effect ordering (memory, or one peer's sends or receives).
    Order,
}

/// The header of a graph: which kernel, under which arguments, at which grid position.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GraphHeader {
    /// Kernel name.
    pub kernel: String,
    /// Parameters as printed: `t: ptr<f16>`, `n_elem = 1024`, `const BLOCK = 64`.
    pub params: Vec<String>,
    /// Launch grid.
    pub grid: Vec<u32>,
    /// This program instance's position in the grid.
    pub pid: Vec<u32>,
}

/// The command graph of one program instance.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CommandGraph {
    /// Header.
    pub header: GraphHeader,
    /// Commands (nodes, in program order) and dependencies (edges from the earlier command).
    pub graph: DiGraph<Node, DepKind>,
}

impl CommandGraph {
    /// Number of commands.
    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    /// `true` when the kernel issued no command.
    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    /// The node of a command.
    pub fn node(&self, id: CmdId) -> &Node {
        &self.graph[NodeIndex::new(id.index())]
    }

    /// Commands in program order with their ids.
    pub fn nodes(&self) -> impl Iterator<Item = (CmdId, &Node)> + '_ {
        self.graph
            .node_indices()
            .map(move |i| (CmdId(i.index() as u32), &self.graph[i]))
    }

    /// The commands a command depends on, sorted, with the kind of each dependency.
    pub fn deps(&self, id: CmdId) -> Vec<(CmdId, DepKind)> {
        let mut v: Vec<(CmdId, DepKind)> = self
            .graph
            .edges_directed(NodeIndex::new(id.index()), petgraph::Direction::Incoming)
            .map(|e| {
                use petgraph::visit::EdgeRef;
                (CmdId(e.source().index() as u32), *e.weight())
            })
            .collect();
        v.sort_by_key(|(c, k)| (*c, *k as u8));
        v.dedup();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_near_the_end_of_the_index_space_still_prints() {
        // A graph read from a file may hold any origin: its text must not overflow.
        let r = MemRef {
            param: 0,
            name: "x".into(),
            base_va: 0,
            view: View::Block {
                origin: [usize::MAX - 1, 3],
                tensor: [8, 8],
            },
            dtype: DType::F32,
            shape: vec![4, 2].into(),
        };
        assert_eq!(
            r.to_string(),
            format!("x[{}..{}, 3..5]", usize::MAX - 1, usize::MAX)
        );
    }

    #[test]
    fn shapes_broadcast_as_numpy_broadcasts_them() {
        assert_eq!(broadcast_shapes(&[8, 64], &[8, 1]), Ok(vec![8, 64]));
        assert_eq!(broadcast_shapes(&[8, 1], &[1, 64]), Ok(vec![8, 64]));
        assert_eq!(broadcast_shapes(&[64], &[8, 64]), Ok(vec![8, 64]));
        assert_eq!(broadcast_shapes(&[2, 1, 3], &[4, 1]), Ok(vec![2, 4, 3]));
        assert_eq!(broadcast_shapes(&[8, 64], &[8, 2]), Err(1));
        assert_eq!(broadcast_shapes(&[3], &[2, 4]), Err(1));
        assert_eq!(broadcast_shapes(&[5, 4], &[3, 4]), Err(0));
        assert!(broadcasts_to(&[64], &[8, 64]));
        assert!(broadcasts_to(&[8, 1], &[8, 64]));
        assert!(
            !broadcasts_to(&[8, 64], &[64]),
            "a broadcast never drops dimensions"
        );
        assert!(!broadcasts_to(&[8, 64], &[8, 1]), "nor shrinks one");
    }

    #[test]
    fn typing_rules_cover_every_operation() {
        assert_eq!(MathOp::Lt.kind(), MathKind::Compare);
        assert_eq!(MathOp::Where.arity(), 3);
        assert_eq!(MathOp::Not.arity(), 1);
        assert_eq!(MathOp::Where.apply(1.0, 2.0, 3.0), 2.0);
        assert_eq!(MathOp::Where.apply(0.0, 2.0, 3.0), 3.0);
        assert_eq!(MathOp::Ne.apply(f32::NAN, f32::NAN, 0.0), 1.0);
        assert_eq!(MathOp::Xor.apply(1.0, 1.0, 0.0), 0.0);
        assert_eq!(MathOp::Rsqrt.apply(4.0, 0.0, 0.0), 0.5);
    }
}
