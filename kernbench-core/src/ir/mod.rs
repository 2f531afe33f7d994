//! The command-graph IR: what one program instance (one PE) asks the machine to do.
//!
//! A [`CommandGraph`] holds one node per command in program order (the node
//! index is the command's SSA id `%n`) and one edge per dependency: data
//! dependencies from operands, and the ordering side effects need (stores to
//! overlapping memory, sends on one direction, receives on one direction).

mod args;
mod builder;
mod dot;
mod text;

pub use args::{ArgValue, KernelArgs, ParamKind};
pub use builder::{GraphBuilder, TraceError, TraceErrorKind, TraceLimits};

use crate::DType;
use petgraph::graph::{DiGraph, NodeIndex};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;

/// A source location in a kernel: where a `tl::` call was written.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    pub shape: Vec<usize>,
}

impl TileType {
    /// A tile type.
    pub fn new(dtype: DType, shape: Vec<usize>) -> Self {
        TileType { dtype, shape }
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
    pub shape: Vec<usize>,
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
                    origin[0] + rows,
                    origin[1],
                    origin[1] + cols
                )
            }
        }
    }
}

/// An operand of a math command: a tile or a scalar broadcast to its shape.
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
}

impl MathOp {
    /// The number of operands.
    pub const fn arity(self) -> usize {
        match self {
            MathOp::Exp | MathOp::Neg | MathOp::Relu | MathOp::Cast => 1,
            MathOp::Fma | MathOp::Clamp => 3,
            _ => 2,
        }
    }

    /// Lower-case name for the text form.
    pub const fn name(self) -> &'static str {
        match self {
            MathOp::Add => "add",
            MathOp::Sub => "sub",
            MathOp::Mul => "mul",
            MathOp::Div => "div",
            MathOp::Max => "max",
            MathOp::Min => "min",
            MathOp::Fma => "fma",
            MathOp::Clamp => "clamp",
            MathOp::Exp => "exp",
            MathOp::Neg => "neg",
            MathOp::Relu => "relu",
            MathOp::Cast => "cast",
        }
    }

    /// Applies the operation to scalars (computed in f32).
    pub fn apply(self, a: f32, b: f32, c: f32) -> f32 {
        match self {
            MathOp::Add => a + b,
            MathOp::Sub => a - b,
            MathOp::Mul => a * b,
            MathOp::Div => a / b,
            MathOp::Max => a.max(b),
            MathOp::Min => a.min(b),
            MathOp::Fma => a.mul_add(b, c),
            MathOp::Clamp => a.max(b).min(c),
            MathOp::Exp => a.exp(),
            MathOp::Neg => -a,
            MathOp::Relu => a.max(0.0),
            MathOp::Cast => a,
        }
    }
}

/// Reductions along an axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReduceOp {
    /// Sum.
    Sum,
    /// Maximum.
    Max,
}

/// One step of a GEMM epilogue, run on MATH per output tile before write-back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Epilogue {
    /// Add a bias tile (broadcast along rows when it is one row).
    Bias(CmdId),
    /// Multiply by a scalar.
    Scale(f64),
    /// max(x, 0).
    Relu,
}

impl fmt::Display for Epilogue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Epilogue::Bias(v) => write!(f, "bias({v})"),
            Epilogue::Scale(s) => write!(f, "scale({s:?})"),
            Epilogue::Relu => f.write_str("relu"),
        }
    }
}

/// One command of a program instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// Copy a region of HBM into a TCM tile (DMA_IN).
    Load {
        /// Source region.
        src: MemRef,
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
        /// Operands (tiles of the result shape, or scalars).
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
    /// Send a tile to the neighbour in a direction.
    Send {
        /// Direction.
        dir: Dir,
        /// The tile sent.
        value: CmdId,
    },
    /// Receive a tile from the neighbour in a direction.
    Recv {
        /// Direction.
        dir: Dir,
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
    pub fn operands(&self) -> Vec<CmdId> {
        match self {
            Command::Load { .. } | Command::Stream { .. } | Command::Full { .. } => vec![],
            Command::Recv { .. } => vec![],
            Command::Store { value, .. } | Command::Send { value, .. } => vec![*value],
            Command::Dot {
                a,
                b,
                acc,
                epilogue,
            } => {
                let mut v = vec![*a, *b];
                v.extend(acc.iter().copied());
                for e in epilogue {
                    if let Epilogue::Bias(x) = e {
                        v.push(*x);
                    }
                }
                v
            }
            Command::Math { args, .. } => args
                .iter()
                .filter_map(|a| match a {
                    Operand::Value(v) => Some(*v),
                    Operand::Scalar(_) => None,
                })
                .collect(),
            Command::Reduce { x, .. } | Command::Softmax { x, .. } => vec![*x],
            Command::Wait { future } => vec![*future],
        }
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
            Command::Softmax { .. } => "softmax",
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
    /// Side-effect ordering (memory, or one direction's sends or receives).
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
