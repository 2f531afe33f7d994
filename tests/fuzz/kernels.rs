//! Kernels: random programs over the language's operations, built directly
//! as command graphs with [`GraphBuilder`] by a small interpreter that
//! implements [`Program`], and run on 1 to 16 PEs of `tiny`.
//!
//! A program is one list of operations every instance runs (some only on
//! some instances): loads and stores inside and outside the buffers, tiles
//! filled, elementwise math, casts, reductions, softmax, dots (with
//! accumulators and epilogues, on loaded or streamed operands), sends and
//! receives in any direction or to any rank (in the launch or not),
//! synchronous or not, and waits. Operands are
//! mostly picked among the tiles of a fitting type, sometimes not at all.
//!
//! The run must end in success or a [`SimError`]; a successful run's spans
//! must not go back in time, its Chrome trace must pass the trace checker,
//! and with data on, the functional run must leave the same memory. The
//! functional run executes the graphs as traced, the timed run as the
//! epilogue fusion pass leaves them, so that check also holds fusion to
//! computing the same bits.

use kernbench::core::export::chrome::{check_chrome_trace, chrome_trace, TraceOptions};
use kernbench::core::functional;
use kernbench::core::ir::{
    ArgValue, CmdId, CommandGraph, Dir, Epilogue, GraphBuilder, GraphHeader, KernelArgs, MathOp,
    MemRef, Operand, Peer, ReduceOp, SrcLoc, TileType, TraceError, TraceErrorKind, View,
};
use kernbench::core::machine::{Buffer, Machine};
use kernbench::core::neighbors::NeighborMap;
use kernbench::core::program::Program;
use kernbench::core::sim::{simulate_full, FabricModel, Launch, SimError};
use kernbench::core::topology::Topology;
use kernbench::core::{DType, PeId};
use proptest::prelude::*;
use std::sync::OnceLock;

/// Buffer parameters are named `b0`, `b1`, ...
const BUF_NAMES: [&str; 3] = ["b0", "b1", "b2"];

/// A tile operand: one of the tiles of a fitting type (the index taken
/// modulo their number), or a raw command id that may fit nothing.
#[derive(Clone, Copy, Debug)]
pub enum Pick {
    /// The n-th fitting tile.
    Fit(usize),
    /// Command `%n`, whatever it is (or nothing).
    Raw(u32),
}

/// Where a memory access starts.
#[derive(Clone, Copy, Debug)]
pub enum At {
    /// This instance's shard of the buffer, moved by some elements.
    Own(i64),
    /// An element offset from the buffer's start, anything at all.
    Abs(i64),
    /// A block of the buffer seen as a `rows x cols` tensor, at (row, col).
    Block {
        /// The tensor's shape.
        tensor: [usize; 2],
        /// The block's origin.
        origin: [usize; 2],
    },
}

/// Which instances run an operation.
#[derive(Clone, Copy, Debug)]
pub enum Who {
    /// Every one.
    All,
    /// Those with an even index.
    Even,
    /// Only this one.
    One(u8),
}

/// The type of a received tile.
#[derive(Clone, Debug)]
pub enum RecvTy {
    /// That of a tile of this instance (what a symmetric program sends).
    Like(Pick),
    /// This one.
    Exact(DType, Vec<usize>),
}

/// One operation of a program.
#[derive(Clone, Debug)]
pub enum Op {
    /// `tl::load`.
    Load {
        buf: usize,
        at: At,
        shape: Vec<usize>,
    },
    /// `tl::stream` of a 2D region.
    Stream {
        buf: usize,
        at: At,
        shape: [usize; 2],
    },
    /// `tl::store` of a tile.
    Store { buf: usize, at: At, value: Pick },
    /// `tl::full`.
    Full {
        dtype: DType,
        shape: Vec<usize>,
        value: f64,
    },
    /// Elementwise math; operands past the op's arity are ignored, a `None` is a scalar.
    Math {
        op: MathOp,
        a: Pick,
        rest: [Option<Pick>; 2],
        scalar: f64,
    },
    /// `.cast::<T>()`.
    Cast { x: Pick, to: DType },
    /// `tl::sum` / `tl::max`; the axis is `Fit(n)`: axis n modulo the
    /// tile's rank, or `Raw(n)`: axis n, whatever the rank.
    Reduce { sum: bool, x: Pick, axis: Pick },
    /// `tl::softmax`, the axis as for `Reduce`.
    Softmax { x: Pick, axis: Pick },
    /// `tl::dot` / `tl::dot_acc` / `tl::gemm`.
    Dot {
        a: Pick,
        b: Pick,
        acc: Option<Pick>,
        bias: Option<Pick>,
        scale: Option<f64>,
        relu: bool,
    },
    /// `tl::send`.
    Send { dir: PeerPick, x: Pick, who: Who },
    /// `tl::recv` / `tl::recv_async`.
    Recv {
        dir: PeerPick,
        ty: RecvTy,
        is_async: bool,
        who: Who,
    },
    /// `tl::wait` on a future (or on anything).
    Wait { future: Pick },
}

/// How the launch's directions resolve.
#[derive(Clone, Copy, Debug)]
pub enum Map {
    /// A ring (`E`/`W`).
    Ring,
    /// A 2D mesh with this many rows (the largest divisor of the PE count not above it).
    Mesh(usize),
    /// A 2D torus, likewise.
    Torus(usize),
    /// A binary tree.
    Tree,
    /// No map: every direction is unresolved.
    None,
}

/// One launch of one random program.
#[derive(Clone, Debug)]
pub struct KernelCase {
    /// PEs of `tiny` (its first ones).
    pub pes: usize,
    /// Neighbour map.
    pub map: Map,
    /// Buffers: element type and total elements (split over the PEs).
    pub buffers: Vec<(DType, usize)>,
    /// The program.
    pub ops: Vec<Op>,
    /// Execute the data.
    pub data: bool,
    /// Fabric model.
    pub fabric: FabricModel,
}

fn dtype() -> impl Strategy<Value = DType> {
    prop_oneof![
        3 => Just(DType::F32),
        1 => Just(DType::F16),
        1 => Just(DType::Bf16),
        1 => Just(DType::I32),
    ]
}

fn extent() -> impl Strategy<Value = usize> {
    prop_oneof![
        48 => 1usize..=16,
        18 => prop::sample::select(vec![32usize, 64, 128]),
        1 => Just(0usize),
        4 => prop::sample::select(vec![1000usize, 4096, 1 << 20, 1 << 40]),
    ]
}

fn shape() -> impl Strategy<Value = Vec<usize>> {
    prop_oneof![
        20 => extent().prop_map(|n| vec![n]),
        20 => (extent(), extent()).prop_map(|(r, c)| vec![r, c]),
        1 => Just(vec![]),
        2 => (extent(), extent(), extent()).prop_map(|(a, b, c)| vec![a, b, c]),
    ]
}

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![
        80 => any::<usize>().prop_map(Pick::Fit),
        1 => (0u32..64).prop_map(Pick::Raw),
    ]
}

fn axis() -> impl Strategy<Value = Pick> {
    prop_oneof![
        9 => (0usize..3).prop_map(Pick::Fit),
        1 => (0u32..4).prop_map(Pick::Raw),
    ]
}

fn at() -> impl Strategy<Value = At> {
    prop_oneof![
        6 => prop_oneof![4 => Just(0i64), 2 => -8i64..64, 1 => -100_000i64..100_000].prop_map(At::Own),
        2 => prop_oneof![0i64..4096, any::<i64>(), Just(i64::MIN), Just(i64::MAX)].prop_map(At::Abs),
        2 => ([1usize..64, 1usize..64], [0usize..64, 0usize..64])
            .prop_map(|(tensor, origin)| At::Block { tensor, origin }),
    ]
}

/// Whom a send or receive addresses.
#[derive(Clone, Copy, Debug)]
pub enum PeerPick {
    /// A direction of the map.
    Dir(Dir),
    /// A fixed rank (past the launch, or the instance itself, at times).
    Rank(u64),
    /// The rank `instance ^ k`: partners that can pair.
    Xor(usize),
}

impl PeerPick {
    fn peer(self, inst: usize) -> Peer {
        match self {
            PeerPick::Dir(d) => Peer::Dir(d),
            PeerPick::Rank(r) => Peer::Rank(r),
            PeerPick::Xor(k) => Peer::Rank((inst ^ k) as u64),
        }
    }
}

fn peer() -> impl Strategy<Value = PeerPick> {
    prop_oneof![
        8 => dir().prop_map(PeerPick::Dir),
        2 => (1usize..4).prop_map(PeerPick::Xor),
        1 => (0u64..18).prop_map(PeerPick::Rank),
    ]
}

fn dir() -> impl Strategy<Value = Dir> {
    prop_oneof![
        6 => prop::sample::select(vec![Dir::E, Dir::W]),
        2 => prop::sample::select(vec![Dir::N, Dir::S]),
        1 => prop::sample::select(Dir::ALL.to_vec()),
    ]
}

fn who() -> impl Strategy<Value = Who> {
    prop_oneof![
        8 => Just(Who::All),
        1 => Just(Who::Even),
        1 => (0u8..16).prop_map(Who::One),
    ]
}

fn math_op() -> impl Strategy<Value = MathOp> {
    prop::sample::select(vec![
        MathOp::Add,
        MathOp::Sub,
        MathOp::Mul,
        MathOp::Div,
        MathOp::Max,
        MathOp::Min,
        MathOp::Fma,
        MathOp::Clamp,
        MathOp::Exp,
        MathOp::Neg,
        MathOp::Relu,
        MathOp::Cast,
    ])
}

fn scalar() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => -4.0f64..4.0,
        1 => prop::sample::select(vec![0.0, f64::NAN, f64::INFINITY, -f64::INFINITY, 1e300, -0.0]),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0usize..3, at(), shape()).prop_map(|(buf, at, shape)| Op::Load { buf, at, shape }),
        1 => (0usize..3, at(), [extent(), extent()])
            .prop_map(|(buf, at, shape)| Op::Stream { buf, at, shape }),
        3 => (0usize..3, at(), pick()).prop_map(|(buf, at, value)| Op::Store { buf, at, value }),
        2 => (dtype(), shape(), scalar()).prop_map(|(dtype, shape, value)| Op::Full { dtype, shape, value }),
        4 => (math_op(), pick(), [prop::option::of(pick()), prop::option::of(pick())], scalar())
            .prop_map(|(op, a, rest, scalar)| Op::Math { op, a, rest, scalar }),
        1 => (pick(), dtype()).prop_map(|(x, to)| Op::Cast { x, to }),
        1 => (any::<bool>(), pick(), axis()).prop_map(|(sum, x, axis)| Op::Reduce { sum, x, axis }),
        1 => (pick(), axis()).prop_map(|(x, axis)| Op::Softmax { x, axis }),
        2 => (
            pick(),
            pick(),
            prop::option::of(pick()),
            prop::option::weighted(0.2, pick()),
            prop::option::weighted(0.2, scalar()),
            prop::bool::weighted(0.2),
        )
            .prop_map(|(a, b, acc, bias, scale, relu)| Op::Dot { a, b, acc, bias, scale, relu }),
        3 => (peer(), pick(), who()).prop_map(|(dir, x, who)| Op::Send { dir, x, who }),
        3 => (
            peer(),
            prop_oneof![
                4 => pick().prop_map(RecvTy::Like),
                1 => (dtype(), shape()).prop_map(|(d, s)| RecvTy::Exact(d, s)),
            ],
            prop::bool::weighted(0.3),
            who(),
        )
            .prop_map(|(dir, ty, is_async, who)| Op::Recv { dir, ty, is_async, who }),
        1 => pick().prop_map(|future| Op::Wait { future }),
    ]
}

/// Random launches of random programs.
pub fn case() -> impl Strategy<Value = KernelCase> {
    (
        prop_oneof![3 => 1usize..=4, 2 => 1usize..=16],
        prop_oneof![
            4 => Just(Map::Ring),
            1 => (1usize..=4).prop_map(Map::Mesh),
            1 => (1usize..=4).prop_map(Map::Torus),
            1 => Just(Map::Tree),
            1 => Just(Map::None),
        ],
        prop::collection::vec(
            (
                dtype(),
                prop_oneof![
                    32 => 1usize..=4096,
                    1 => Just(0usize),
                    2 => prop::sample::select(vec![1usize << 16, 1 << 20]),
                ],
            ),
            1..=3,
        ),
        prop::collection::vec(op(), 0..16),
        any::<bool>(),
        prop::bool::weighted(0.2).prop_map(|s| {
            if s {
                FabricModel::Slots
            } else {
                FabricModel::Messages
            }
        }),
    )
        .prop_map(|(pes, map, buffers, ops, data, fabric)| KernelCase {
            pes,
            map,
            buffers,
            ops,
            data,
            fabric,
        })
}

/// The interpreter: traces a [`KernelCase`]'s program for one instance.
struct Interp<'a> {
    case: &'a KernelCase,
}

/// What the interpreter knows of the tiles it made.
struct Tiles {
    /// (id, type, streamed?) of every value-producing command.
    all: Vec<(CmdId, TileType, bool)>,
    /// Asynchronous receives not yet waited on.
    futures: Vec<CmdId>,
}

impl Tiles {
    /// The n-th tile satisfying `ok` (not streamed unless `streams`), or a raw id.
    fn pick(&self, p: Pick, streams: bool, ok: impl Fn(&TileType) -> bool) -> Option<CmdId> {
        match p {
            Pick::Raw(n) => Some(CmdId(n)),
            Pick::Fit(i) => {
                let fit: Vec<CmdId> = self
                    .all
                    .iter()
                    .filter(|(_, t, s)| (streams || !s) && ok(t))
                    .map(|(id, _, _)| *id)
                    .collect();
                (!fit.is_empty()).then(|| fit[i % fit.len()])
            }
        }
    }

    /// An axis of tile `x`: `Fit(n)` modulo its rank, `Raw(n)` as it is.
    fn axis(&self, x: CmdId, a: Pick) -> usize {
        match a {
            Pick::Fit(n) => n % self.ty(x).map_or(1, |t| t.shape.len().max(1)),
            Pick::Raw(n) => n as usize,
        }
    }

    fn ty(&self, id: CmdId) -> Option<&TileType> {
        self.all
            .iter()
            .find(|(i, _, _)| *i == id)
            .map(|(_, t, _)| t)
    }
}

impl Interp<'_> {
    fn region(
        &self,
        args: &KernelArgs,
        inst: usize,
        buf: usize,
        at: At,
        shape: Vec<usize>,
    ) -> Option<MemRef> {
        let name = BUF_NAMES[buf];
        let Some(ArgValue::Ptr { va, dtype, len }) = args.get(name) else {
            return None;
        };
        let view = match at {
            At::Own(delta) => {
                let n = self.case.pes.max(1);
                let start = (len / n) * inst + inst.min(len % n);
                View::Flat {
                    offset: start as i64 + delta,
                }
            }
            At::Abs(offset) => View::Flat { offset },
            At::Block { tensor, origin } => View::Block { origin, tensor },
        };
        Some(MemRef {
            param: buf as u16,
            name: name.into(),
            base_va: *va,
            view,
            dtype: *dtype,
            shape: shape.into(),
        })
    }

    fn runs(who: Who, inst: usize) -> bool {
        match who {
            Who::All => true,
            Who::Even => inst % 2 == 0,
            Who::One(i) => inst == i as usize,
        }
    }
}

impl Program for Interp<'_> {
    fn name(&self) -> &str {
        "fuzz"
    }

    fn trace(
        &self,
        args: &KernelArgs,
        grid: &[u32],
        pid: &[u32],
    ) -> Result<CommandGraph, TraceError> {
        let header = GraphHeader {
            kernel: "fuzz".into(),
            params: BUF_NAMES[..self.case.buffers.len()]
                .iter()
                .map(|n| n.to_string())
                .collect(),
            grid: grid.to_vec(),
            pid: pid.to_vec(),
        };
        let inst = pid.first().copied().unwrap_or(0) as usize;
        let mut b = GraphBuilder::new(header, Default::default());
        let mut t = Tiles {
            all: Vec::new(),
            futures: Vec::new(),
        };
        for (line, op) in self.case.ops.iter().enumerate() {
            let loc = SrcLoc {
                file: "fuzz.rs".into(),
                line: line as u32 + 1,
                col: 1,
            };
            let made = match op {
                Op::Load { buf, at, shape } => {
                    // A block is read as rows: a 1D shape is one row of it.
                    let shape = match (at, shape.as_slice()) {
                        (At::Block { .. }, [n]) => vec![1, *n],
                        _ => shape.clone(),
                    };
                    let Some(r) = self.region(args, inst, *buf, *at, shape) else {
                        continue;
                    };
                    Some((b.load(r, &loc)?, false))
                }
                Op::Stream { buf, at, shape } => {
                    let Some(r) = self.region(args, inst, *buf, *at, shape.to_vec()) else {
                        continue;
                    };
                    Some((b.stream(r, &loc)?, true))
                }
                Op::Store { buf, at, value } => {
                    let Some(ArgValue::Ptr { dtype, .. }) = args.get(BUF_NAMES[*buf]) else {
                        continue;
                    };
                    let Some(v) = t.pick(*value, false, |ty| ty.dtype == *dtype) else {
                        continue;
                    };
                    let shape = b
                        .ty(v, &loc)
                        .map(|ty| ty.shape.to_vec())
                        .unwrap_or_default();
                    let Some(r) = self.region(args, inst, *buf, *at, shape) else {
                        continue;
                    };
                    b.store(r, v, &loc)?;
                    None
                }
                Op::Full {
                    dtype,
                    shape,
                    value,
                } => Some((
                    b.full(*value, TileType::new(*dtype, shape.clone()), &loc)?,
                    false,
                )),
                Op::Math {
                    op,
                    a,
                    rest,
                    scalar,
                } => {
                    let Some(a) = t.pick(*a, false, |_| true) else {
                        continue;
                    };
                    let ta = t.ty(a).cloned();
                    let mut operands = vec![Operand::Value(a)];
                    for r in rest.iter().take(op.arity().saturating_sub(1)) {
                        let o = r
                            .and_then(|p| t.pick(p, false, |ty| Some(ty) == ta.as_ref()))
                            .map_or(Operand::Scalar(*scalar), Operand::Value);
                        operands.push(o);
                    }
                    let cast = (*op == MathOp::Cast).then_some(DType::F16);
                    Some((b.math(*op, operands, cast, &loc)?, false))
                }
                Op::Cast { x, to } => {
                    let Some(x) = t.pick(*x, false, |_| true) else {
                        continue;
                    };
                    Some((
                        b.math(MathOp::Cast, vec![Operand::Value(x)], Some(*to), &loc)?,
                        false,
                    ))
                }
                Op::Reduce { sum, x, axis } => {
                    let Some(x) = t.pick(*x, false, |_| true) else {
                        continue;
                    };
                    let op = if *sum { ReduceOp::Sum } else { ReduceOp::Max };
                    let axis = t.axis(x, *axis);
                    Some((b.reduce(op, x, axis, &loc)?, false))
                }
                Op::Softmax { x, axis } => {
                    let Some(x) = t.pick(*x, false, |_| true) else {
                        continue;
                    };
                    let axis = t.axis(x, *axis);
                    Some((b.softmax(x, axis, &loc)?, false))
                }
                Op::Dot {
                    a,
                    b: bb,
                    acc,
                    bias,
                    scale,
                    relu,
                } => {
                    let Some(a) = t.pick(*a, true, |ty| ty.shape.len() == 2) else {
                        continue;
                    };
                    let ta = t.ty(a).cloned();
                    let inner = ta
                        .as_ref()
                        .and_then(|ty| Some((ty.dtype, *ty.shape.get(1)?)));
                    let fits_b = |ty: &TileType| {
                        ty.shape.len() == 2 && Some((ty.dtype, ty.shape[0])) == inner
                    };
                    // No fitting right operand: no dot (a raw pick still goes ahead).
                    let Some(bv) = t.pick(*bb, true, fits_b) else {
                        continue;
                    };
                    let out = match (ta, t.ty(bv)) {
                        (Some(ta), Some(tb)) if ta.shape.len() == 2 && tb.shape.len() == 2 => Some(
                            TileType::new(ta.dtype.accumulator(), vec![ta.shape[0], tb.shape[1]]),
                        ),
                        _ => None,
                    };
                    let acc = acc.and_then(|p| t.pick(p, false, |ty| Some(ty) == out.as_ref()));
                    let mut epilogue = Vec::new();
                    if let Some(s) = scale {
                        epilogue.push(Epilogue::Scale(*s));
                    }
                    if let Some(x) = bias.and_then(|p| {
                        t.pick(p, false, |ty| {
                            out.as_ref()
                                .is_some_and(|o| ty.shape.last() == o.shape.last())
                        })
                    }) {
                        epilogue.push(Epilogue::Bias(x));
                    }
                    if *relu {
                        epilogue.push(Epilogue::Relu);
                    }
                    Some((b.dot(a, bv, acc, epilogue, &loc)?, false))
                }
                Op::Send { dir, x, who } => {
                    if !Self::runs(*who, inst) {
                        continue;
                    }
                    let Some(x) = t.pick(*x, false, |_| true) else {
                        continue;
                    };
                    b.send(dir.peer(inst), x, &loc)?;
                    None
                }
                Op::Recv {
                    dir,
                    ty,
                    is_async,
                    who,
                } => {
                    if !Self::runs(*who, inst) {
                        continue;
                    }
                    let ty = match ty {
                        RecvTy::Exact(d, s) => TileType::new(*d, s.clone()),
                        RecvTy::Like(p) => {
                            let Some(ty) = t.pick(*p, false, |_| true).and_then(|v| t.ty(v)) else {
                                continue;
                            };
                            ty.clone()
                        }
                    };
                    let id = b.recv(dir.peer(inst), ty, *is_async, &loc)?;
                    if *is_async {
                        t.futures.push(id);
                        None
                    } else {
                        Some((id, false))
                    }
                }
                Op::Wait { future } => {
                    let id = match future {
                        Pick::Raw(n) => CmdId(*n),
                        Pick::Fit(i) if !t.futures.is_empty() => {
                            t.futures.remove(i % t.futures.len())
                        }
                        Pick::Fit(_) => continue,
                    };
                    Some((b.wait(id, &loc)?, false))
                }
            };
            if let Some((id, streamed)) = made {
                let ty = b.ty(id, &loc)?.clone();
                t.all.push((id, ty, streamed));
            }
        }
        Ok(b.finish())
    }
}

fn tiny() -> &'static Topology {
    static TINY: OnceLock<Topology> = OnceLock::new();
    TINY.get_or_init(|| Topology::builtin("tiny").expect("tiny is built in"))
}

fn neighbors(map: Map, pes: &[PeId]) -> Result<Option<NeighborMap>, String> {
    let rows = |r: usize| (1..=r.min(pes.len())).rev().find(|d| pes.len() % d == 0);
    let m = match map {
        Map::Ring => NeighborMap::ring(pes),
        Map::Mesh(r) | Map::Torus(r) => {
            let r = rows(r).unwrap_or(1);
            NeighborMap::grid2d(pes, r, pes.len() / r, matches!(map, Map::Torus(_)))
        }
        Map::Tree => NeighborMap::tree(pes),
        Map::None => return Ok(None),
    };
    m.map(Some)
        .map_err(|e| format!("the neighbour map cannot be built: {e}"))
}

/// Values a buffer starts with: small, exact in every element type.
fn fill(machine: &mut Machine, buf: &Buffer, len: usize, seed: usize) -> Result<(), String> {
    let values: Vec<f32> = (0..len)
        .map(|i| ((i * 7 + seed) % 13) as f32 - 6.0)
        .collect();
    machine
        .write_buffer(buf, &values)
        .map_err(|e| format!("the initial data cannot be written: {e}"))
}

/// Allocates and fills the case's buffers on a fresh machine.
fn setup(
    c: &KernelCase,
    pes: &[PeId],
) -> Result<Option<(Machine, KernelArgs, Vec<Buffer>)>, String> {
    let mut machine = Machine::new(tiny().clone()).map_err(|e| e.to_string())?;
    let mut args = KernelArgs::new();
    let mut bufs = Vec::new();
    for (i, (dtype, len)) in c.buffers.iter().enumerate() {
        match machine.alloc(*dtype, *len, pes) {
            Ok(buf) => {
                if c.data && *len <= 1 << 16 {
                    fill(&mut machine, &buf, *len, i)?;
                }
                args.set(BUF_NAMES[i], buf.ptr());
                bufs.push(buf);
            }
            // An empty or oversized buffer is refused with a typed error.
            Err(_) => return Ok(None),
        }
    }
    Ok(Some((machine, args, bufs)))
}

/// Runs a case: success or a typed error, spans in order, a valid trace, and
/// (with data) the same memory as the functional run.
pub fn check(c: &KernelCase) -> Result<&'static str, String> {
    let pes: Vec<PeId> = tiny().pes().take(c.pes).collect();
    let Some(map) = neighbors(c.map, &pes)? else {
        return run(c, &pes, None);
    };
    run(c, &pes, Some(map))
}

fn run(c: &KernelCase, pes: &[PeId], map: Option<NeighborMap>) -> Result<&'static str, String> {
    let Some((mut machine, args, bufs)) = setup(c, pes)? else {
        return Ok("buffer refused");
    };
    let prog = Interp { case: c };
    let mut launch = Launch::new(&prog, args.clone(), pes.to_vec())
        .data(c.data)
        .trace(true)
        .fabric(c.fabric);
    if let Some(m) = &map {
        launch = launch.neighbors(m.clone());
    }
    let outcome = match simulate_full(&mut machine, &launch) {
        Ok(o) => o,
        Err(e) => return typed(&e),
    };
    let r = &outcome.report;
    if r.end_ps < r.start_ps {
        return Err(format!(
            "the run ends at {} ps, before its start at {} ps",
            r.end_ps, r.start_ps
        ));
    }
    for p in &r.pes {
        if p.end_ps < p.start_ps {
            return Err(format!(
                "PE {} ends at {} ps, before its start at {} ps",
                p.pe, p.end_ps, p.start_ps
            ));
        }
        if p.end_ps > r.end_ps {
            return Err(format!(
                "PE {} ends at {} ps, after the run's end at {} ps",
                p.pe, p.end_ps, r.end_ps
            ));
        }
        if let Some(f) = p.first_op_ps {
            if f < p.start_ps || f > p.end_ps {
                return Err(format!(
                    "PE {}'s first op at {f} ps is outside {}..{} ps",
                    p.pe, p.start_ps, p.end_ps
                ));
            }
        }
    }
    for s in &outcome.spans {
        if s.end < s.start {
            return Err(format!("span {s:?} ends before it starts"));
        }
        if s.start < r.start_ps || s.end > r.end_ps {
            return Err(format!(
                "span {s:?} is outside the run {}..{} ps",
                r.start_ps, r.end_ps
            ));
        }
    }
    for m in &outcome.messages {
        if !(m.inject_ps <= m.injected_ps && m.injected_ps <= m.received_ps) {
            return Err(format!("message {m:?} goes back in time"));
        }
    }
    let _ = r.to_string();
    let trace = chrome_trace(&outcome, tiny(), &TraceOptions::default());
    check_chrome_trace(&trace).map_err(|e| format!("the Chrome trace is invalid: {e}"))?;
    // A data run that succeeded had no race (ADR 0019): every access another
    // instance's access conflicts with is ordered by messages, so the
    // functional run, in another order, must leave the same memory.
    if c.data {
        // The functional run executes the same data code on the unfused
        // graphs: same memory, bit for bit.
        let Some((mut fm, fargs, fbufs)) = setup(c, pes)? else {
            return Err("the buffers allocated once but not twice".into());
        };
        let mut flaunch = Launch::new(&prog, fargs, pes.to_vec())
            .data(true)
            .fuse(false);
        if let Some(m) = map {
            flaunch = flaunch.neighbors(m);
        }
        match functional::run(&mut fm, &flaunch) {
            Ok(_) => {
                for (i, (tb, fb)) in bufs.iter().zip(&fbufs).enumerate() {
                    let a = machine.read_buffer(tb).map_err(|e| e.to_string())?;
                    let b = fm.read_buffer(fb).map_err(|e| e.to_string())?;
                    let same = a.len() == b.len()
                        && a.iter()
                            .zip(&b)
                            .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()));
                    if !same {
                        let at = a
                            .iter()
                            .zip(&b)
                            .position(|(x, y)| x.to_bits() != y.to_bits())
                            .unwrap_or(0);
                        return Err(format!(
                            "buffer {} differs between the timed and the functional run (first at element {at}: {:?} vs {:?})",
                            BUF_NAMES[i], a.get(at), b.get(at)
                        ));
                    }
                }
            }
            Err(e) => {
                return Err(format!(
                    "the timed run succeeded but the functional run failed: {e}"
                ));
            }
        }
        return Ok("ran, data checked");
    }
    Ok("ran")
}

/// A simulation error must say something; the label is its kind.
fn typed(e: &SimError) -> Result<&'static str, String> {
    if e.to_string().trim().is_empty() {
        return Err(format!("an error with no message: {e:?}"));
    }
    Ok(match e {
        SimError::Trace { err, .. } => match err.kind {
            TraceErrorKind::Shape(_) => "trace: shape",
            TraceErrorKind::DType(_) => "trace: dtype",
            TraceErrorKind::OutOfBounds(_) => "trace: out of bounds",
            TraceErrorKind::Invalid(_) => "trace: invalid",
            TraceErrorKind::Panicked { .. } => "trace: kernel panic",
            TraceErrorKind::TooManyCommands(_) => "trace: too many commands",
            TraceErrorKind::Arg { .. } => "trace: argument",
        },
        SimError::Launch(_) => "launch error",
        SimError::Neighbors(_) => "neighbour error",
        SimError::Pairing(_) => "unpaired",
        SimError::Tcm { .. } => "TCM overflow",
        SimError::Memory { .. } => "memory error",
        SimError::Deadlock(_) => "deadlock",
        SimError::Route(_) => "route error",
        SimError::TooLarge { .. } => "too large",
        SimError::NoProgress(_) => "no progress",
        SimError::Race(_) => "data race",
    })
}
