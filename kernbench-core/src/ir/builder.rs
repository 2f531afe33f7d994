//! Building a command graph while a kernel is traced, with the checks that
//! must hold at trace time (shapes, dtypes, bounds), each naming the kernel line.

use super::*;
use smallvec::SmallVec;

/// Bounds on one trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceLimits {
    /// The most commands one program instance may issue; more is reported as a runaway loop.
    pub max_commands: usize,
}

impl Default for TraceLimits {
    fn default() -> Self {
        TraceLimits {
            max_commands: 1 << 20,
        }
    }
}

/// One piece of memory with the accesses that later accesses must order after.
#[derive(Clone, Debug, Default)]
struct Seg {
    end: u64,
    last_write: Option<CmdId>,
    reads: SmallVec<[CmdId; 2]>,
}

/// Disjoint segments of the memory a trace touched (an interval map), so
/// that ordering a memory access costs O(log n + overlapping segments).
#[derive(Default)]
struct MemMap {
    segs: std::collections::BTreeMap<u64, Seg>,
    /// Scratch: the holes an access fills.
    holes: Vec<(u64, u64)>,
}

impl MemMap {
    /// Splits the segment containing `at` (if any) so that a segment starts at `at`.
    fn split(&mut self, at: u64) {
        let Some((&s, seg)) = self.segs.range(..at).next_back() else {
            return;
        };
        if seg.end > at {
            let mut tail = seg.clone();
            self.segs.get_mut(&s).expect("segment present").end = at;
            tail.end = tail.end.max(at);
            self.segs.insert(at, tail);
        }
    }

    /// Records an access to `[start, end)` and leaves in `deps` what it must
    /// follow, sorted and without repeats.
    fn access(&mut self, id: CmdId, start: u64, end: u64, write: bool, deps: &mut Vec<CmdId>) {
        deps.clear();
        if start >= end {
            return;
        }
        // Kernels mostly touch again the very ranges they touched before (a
        // tile loaded, combined and stored back): then the range is one
        // segment already, and nothing needs splitting or filling.
        if let Some(seg) = self.segs.get_mut(&start).filter(|s| s.end == end) {
            Self::touch(seg, id, write, deps);
            deps.sort_unstable();
            deps.dedup();
            return;
        }
        self.split(start);
        self.split(end);
        // Fill holes so the whole range is covered by segments.
        let mut cursor = start;
        for (k, seg) in self.segs.range(start..end) {
            if *k > cursor {
                self.holes.push((cursor, *k));
            }
            cursor = seg.end;
        }
        if cursor < end {
            self.holes.push((cursor, end));
        }
        for (a, b) in self.holes.drain(..) {
            self.segs.insert(
                a,
                Seg {
                    end: b,
                    last_write: None,
                    reads: SmallVec::new(),
                },
            );
        }
        for (_, seg) in self.segs.range_mut(start..end) {
            Self::touch(seg, id, write, deps);
        }
        deps.sort_unstable();
        deps.dedup();
    }

    /// Access `id` to all of `seg`: adds to `deps` what it must follow.
    fn touch(seg: &mut Seg, id: CmdId, write: bool, deps: &mut Vec<CmdId>) {
        if let Some(w) = seg.last_write {
            deps.push(w);
        }
        if write {
            deps.extend(seg.reads.drain(..));
            seg.last_write = Some(id);
        } else {
            seg.reads.push(id);
        }
    }
}

thread_local! {
    /// The kernel, nodes and edges of the last graph finished on this thread.
    static LAST_SIZE: std::cell::RefCell<Option<(String, usize, usize)>> =
        const { std::cell::RefCell::new(None) };
}

/// Records commands into a [`CommandGraph`], checking each as it comes.
pub struct GraphBuilder {
    header: GraphHeader,
    graph: DiGraph<Node, DepKind>,
    limits: TraceLimits,
    memmap: MemMap,
    /// Scratch: the accesses a memory access orders after.
    deps: Vec<CmdId>,
    last_send: [Option<CmdId>; Dir::ALL.len()],
    last_recv: [Option<CmdId>; Dir::ALL.len()],
    /// The last send to, and receive from, each rank addressed.
    last_rank: rustc_hash::FxHashMap<(bool, u64), CmdId>,
}

/// Extent `d` of `s` right-aligned in `n` dimensions (1 where it has none).
fn dim_at(s: &[usize], d: usize, n: usize) -> usize {
    if d + s.len() >= n {
        s[d + s.len() - n]
    } else {
        1
    }
}

/// `true` when a tile of this type has a byte size that fits in 64 bits.
fn sized(ty: &TileType) -> bool {
    ty.shape
        .iter()
        .try_fold(ty.dtype.size() as u64, |a, d| a.checked_mul(*d as u64))
        .is_some_and(|b| usize::try_from(b).is_ok())
}

impl GraphBuilder {
    /// A builder for one program instance.
    pub fn new(header: GraphHeader, limits: TraceLimits) -> Self {
        // Instances of one kernel trace graphs of about one size: start at
        // the size of the last graph of this kernel on this thread, so the
        // node and edge vectors do not regrow (and copy) as they fill.
        let (nodes, edges) = LAST_SIZE.with(|l| match &*l.borrow() {
            Some((k, n, e)) if *k == header.kernel => (*n, *e),
            _ => (0, 0),
        });
        GraphBuilder {
            header,
            graph: DiGraph::with_capacity(nodes, edges),
            limits,
            memmap: MemMap::default(),
            deps: Vec::new(),
            last_send: [None; Dir::ALL.len()],
            last_recv: [None; Dir::ALL.len()],
            last_rank: rustc_hash::FxHashMap::default(),
        }
    }

    /// Checks a rank peer against the launch: it must name another program
    /// instance of the grid.
    fn check_peer(&self, peer: Peer, side: CommSide, loc: &SrcLoc) -> Result<(), TraceError> {
        let Peer::Rank(r) = peer else {
            return Ok(());
        };
        let g = &self.header.grid;
        let world = g.iter().map(|x| *x as u64).product::<u64>();
        // Rank of this instance: axis 0 fastest.
        let me = self
            .header
            .pid
            .iter()
            .zip(g)
            .rev()
            .fold(0u64, |a, (p, n)| a * *n as u64 + *p as u64);
        let usage = if r >= world {
            UsageError::PeerOutOfGrid {
                side,
                rank: r,
                world,
                grid: g.clone(),
            }
        } else if r == me {
            UsageError::PeerIsSelf { side, rank: r }
        } else {
            return Ok(());
        };
        Err(self.error(TraceErrorKind::Invalid(Box::new(usage)), loc))
    }

    /// Orders `id` after the previous send to (or receive from) the same peer.
    fn order_peer(&mut self, send: bool, peer: Peer, id: CmdId) {
        let prev = match peer {
            Peer::Dir(d) if send => self.last_send[d.index()].replace(id),
            Peer::Dir(d) => self.last_recv[d.index()].replace(id),
            Peer::Rank(r) => self.last_rank.insert((send, r), id),
        };
        if let Some(p) = prev {
            self.order(p, id);
        }
    }

    /// The kernel's name.
    pub fn kernel(&self) -> &str {
        &self.header.kernel
    }

    /// An error at a kernel line.
    pub fn error(&self, kind: TraceErrorKind, loc: &SrcLoc) -> TraceError {
        TraceError {
            kernel: self.header.kernel.clone(),
            loc: Some(loc.clone()),
            kind,
        }
    }

    /// The type of a value, or an error if the id is not of this trace.
    pub fn ty(&self, v: CmdId, loc: &SrcLoc) -> Result<&TileType, TraceError> {
        self.graph
            .node_weight(NodeIndex::new(v.index()))
            .map(|n| &n.ty)
            .ok_or_else(|| {
                self.error(
                    TraceErrorKind::Invalid(Box::new(UsageError::ForeignTile { tile: v })),
                    loc,
                )
            })
    }

    fn is_stream(&self, v: CmdId) -> bool {
        matches!(
            self.graph[NodeIndex::new(v.index())].cmd,
            Command::Stream { .. }
        )
    }

    fn push(&mut self, cmd: Command, ty: TileType, loc: &SrcLoc) -> Result<CmdId, TraceError> {
        if self.graph.node_count() >= self.limits.max_commands {
            return Err(self.error(
                TraceErrorKind::TooManyCommands(self.limits.max_commands),
                loc,
            ));
        }
        let operands = cmd.operands();
        for &v in &operands {
            self.ty(v, loc)?;
            if self.is_stream(v) && !matches!(cmd, Command::Dot { .. }) {
                return Err(self.error(
                    TraceErrorKind::Invalid(Box::new(UsageError::StreamedOperand { tile: v })),
                    loc,
                ));
            }
        }
        let id = CmdId(self.graph.node_count() as u32);
        let n = self.graph.add_node(Node {
            cmd,
            ty,
            loc: loc.clone(),
        });
        // The node is new, so its only possible duplicate edges are from an
        // operand named twice: skip those rather than search each
        // operand's (possibly long) list of uses.
        for (k, &v) in operands.iter().enumerate() {
            if !operands[..k].contains(&v) {
                self.graph
                    .add_edge(NodeIndex::new(v.index()), n, DepKind::Data);
            }
        }
        Ok(id)
    }

    fn order(&mut self, from: CmdId, to: CmdId) {
        let (a, b) = (NodeIndex::new(from.index()), NodeIndex::new(to.index()));
        if self.graph.find_edge(a, b).is_none() {
            self.graph.add_edge(a, b, DepKind::Order);
        }
    }

    fn memory(&mut self, id: CmdId, r: &MemRef, write: bool) {
        let (start, end) = r.span();
        let mut deps = std::mem::take(&mut self.deps);
        self.memmap.access(id, start, end, write, &mut deps);
        for &d in &deps {
            if d != id {
                self.order(d, id);
            }
        }
        self.deps = deps;
    }

    fn region_ty(&self, r: &MemRef, loc: &SrcLoc) -> Result<TileType, TraceError> {
        if r.shape.is_empty() || r.shape.contains(&0) {
            return Err(self.error(
                TraceErrorKind::Shape(Box::new(ShapeError::EmptyRegion {
                    shape: r.shape.to_vec(),
                })),
                loc,
            ));
        }
        self.check_region(r, loc)?;
        Ok(TileType::new(r.dtype, r.shape.clone()))
    }

    /// A tile's bytes must be countable: more than 2^64 of them is no tile.
    fn sized(&self, ty: &TileType, loc: &SrcLoc) -> Result<(), TraceError> {
        if !sized(ty) {
            return Err(self.error(
                TraceErrorKind::Shape(Box::new(ShapeError::TooManyBytes {
                    dtype: ty.dtype,
                    shape: ty.shape.to_vec(),
                })),
                loc,
            ));
        }
        Ok(())
    }

    /// A region must be well formed: a block of a tensor is 2D, and no
    /// region reaches past the 64-bit address space (an offset or extent
    /// whose address overflows), which the memory checks of a run rely on.
    fn check_region(&self, r: &MemRef, loc: &SrcLoc) -> Result<(), TraceError> {
        if matches!(r.view, View::Block { .. }) && r.shape.len() != 2 {
            return Err(self.error(
                TraceErrorKind::Shape(Box::new(ShapeError::BlockRank {
                    shape: r.shape.to_vec(),
                })),
                loc,
            ));
        }
        if r.checked_span().is_none() {
            return Err(self.error(
                TraceErrorKind::OutOfBounds(Box::new(BoundsError::AddressOverflow {
                    region: r.clone(),
                })),
                loc,
            ));
        }
        Ok(())
    }

    /// `tl::load`.
    pub fn load(&mut self, src: MemRef, loc: &SrcLoc) -> Result<CmdId, TraceError> {
        let ty = self.region_ty(&src, loc)?;
        let r = src.clone();
        let id = self.push(Command::Load { src, mask: None }, ty, loc)?;
        self.memory(id, &r, false);
        Ok(id)
    }

    /// `tl::load_masked`: elements where `mask` (a `bool` tile that
    /// broadcasts to the region) is false read as `other`.
    pub fn load_masked(
        &mut self,
        src: MemRef,
        mask: CmdId,
        other: f64,
        loc: &SrcLoc,
    ) -> Result<CmdId, TraceError> {
        let ty = self.region_ty(&src, loc)?;
        self.mask_check(mask, &ty.shape, "load", loc)?;
        let r = src.clone();
        let mask = Some(LoadMask { mask, other });
        let id = self.push(Command::Load { src, mask }, ty, loc)?;
        self.memory(id, &r, false);
        Ok(id)
    }

    /// Checks that `mask` is a `bool` tile that broadcasts to `shape`.
    fn mask_check(
        &self,
        mask: CmdId,
        shape: &[usize],
        what: &'static str,
        loc: &SrcLoc,
    ) -> Result<(), TraceError> {
        let tm = self.ty(mask, loc)?;
        if tm.dtype != DType::Bool {
            return Err(self.error(
                TraceErrorKind::DType(DTypeError::MaskNotBool {
                    access: what,
                    dtype: tm.dtype,
                }),
                loc,
            ));
        }
        if !broadcasts_to(&tm.shape, shape) {
            return Err(self.error(
                TraceErrorKind::Shape(Box::new(ShapeError::MaskBroadcast {
                    access: what,
                    mask: tm.shape.to_vec(),
                    region: shape.to_vec(),
                })),
                loc,
            ));
        }
        Ok(())
    }

    /// `tl::stream`: an operand left in HBM for a GEMM to stream.
    pub fn stream(&mut self, src: MemRef, loc: &SrcLoc) -> Result<CmdId, TraceError> {
        let ty = self.region_ty(&src, loc)?;
        if ty.shape.len() != 2 {
            return Err(self.error(
                TraceErrorKind::Shape(Box::new(ShapeError::StreamRank {
                    shape: ty.shape.to_vec(),
                })),
                loc,
            ));
        }
        let r = src.clone();
        let id = self.push(Command::Stream { src }, ty, loc)?;
        self.memory(id, &r, false);
        Ok(id)
    }

    /// `tl::store`.
    pub fn store(&mut self, dst: MemRef, value: CmdId, loc: &SrcLoc) -> Result<CmdId, TraceError> {
        self.store_inner(dst, value, None, loc)
    }

    /// `tl::store_masked`: only the elements where `mask` (a `bool` tile
    /// that broadcasts to the region) is true are written.
    pub fn store_masked(
        &mut self,
        dst: MemRef,
        value: CmdId,
        mask: CmdId,
        loc: &SrcLoc,
    ) -> Result<CmdId, TraceError> {
        self.store_inner(dst, value, Some(mask), loc)
    }

    fn store_inner(
        &mut self,
        dst: MemRef,
        value: CmdId,
        mask: Option<CmdId>,
        loc: &SrcLoc,
    ) -> Result<CmdId, TraceError> {
        let vty = self.ty(value, loc)?.clone();
        self.check_region(&dst, loc)?;
        if vty.shape != dst.shape && vty.elems() != dst.shape.iter().product::<usize>() {
            return Err(self.error(
                TraceErrorKind::Shape(Box::new(ShapeError::Store {
                    value: vty.shape.to_vec(),
                    region: dst.shape.to_vec(),
                })),
                loc,
            ));
        }
        if vty.dtype != dst.dtype {
            return Err(self.error(
                TraceErrorKind::DType(DTypeError::Store {
                    value: vty.dtype,
                    pointer: dst.dtype,
                    name: dst.name.to_string(),
                }),
                loc,
            ));
        }
        if let Some(m) = mask {
            self.mask_check(m, &dst.shape, "store", loc)?;
        }
        let r = dst.clone();
        let id = self.push(Command::Store { dst, value, mask }, vty, loc)?;
        self.memory(id, &r, true);
        Ok(id)
    }

    /// `tl::full` / `tl::zeros`.
    pub fn full(&mut self, value: f64, ty: TileType, loc: &SrcLoc) -> Result<CmdId, TraceError> {
        if ty.shape.is_empty() || ty.shape.contains(&0) {
            return Err(self.error(
                TraceErrorKind::Shape(Box::new(ShapeError::EmptyTile {
                    shape: ty.shape.to_vec(),
                })),
                loc,
            ));
        }
        self.sized(&ty, loc)?;
        self.push(Command::Full { value }, ty, loc)
    }

    /// `tl::dot` (with `acc`: the accumulating form) and `tl::gemm` (with an epilogue).
    pub fn dot(
        &mut self,
        a: CmdId,
        b: CmdId,
        acc: Option<CmdId>,
        epilogue: Vec<Epilogue>,
        loc: &SrcLoc,
    ) -> Result<CmdId, TraceError> {
        let ta = self.ty(a, loc)?.clone();
        let tb = self.ty(b, loc)?.clone();
        if ta.shape.len() != 2 || tb.shape.len() != 2 {
            return Err(self.error(
                TraceErrorKind::Shape(Box::new(ShapeError::DotRank {
                    a: ta.shape.to_vec(),
                    b: tb.shape.to_vec(),
                })),
                loc,
            ));
        }
        if ta.shape[1] != tb.shape[0] {
            return Err(self.error(
                TraceErrorKind::Shape(Box::new(ShapeError::DotInner {
                    a: [ta.shape[0], ta.shape[1]],
                    b: [tb.shape[0], tb.shape[1]],
                })),
                loc,
            ));
        }
        if ta.dtype != tb.dtype {
            return Err(self.error(
                TraceErrorKind::DType(DTypeError::Mixed {
                    op: "dot",
                    a: ta.dtype,
                    b: tb.dtype,
                }),
                loc,
            ));
        }
        if !ta.dtype.is_numeric() {
            return Err(self.error(
                TraceErrorKind::DType(DTypeError::DotOfMasks { dtype: ta.dtype }),
                loc,
            ));
        }
        let out = TileType::new(ta.dtype.accumulator(), vec![ta.shape[0], tb.shape[1]]);
        self.sized(&out, loc)?;
        if let Some(c) = acc {
            let tc = self.ty(c, loc)?;
            if tc != &out {
                return Err(self.error(
                    TraceErrorKind::Shape(Box::new(ShapeError::Accumulator {
                        acc: tc.clone(),
                        product: out.clone(),
                    })),
                    loc,
                ));
            }
        }
        let mut result = out.clone();
        for (k, e) in epilogue.iter().enumerate() {
            match e {
                Epilogue::Bias(x) => {
                    let tx = self.ty(*x, loc)?;
                    if !broadcasts_to(&tx.shape, &out.shape) {
                        return Err(self.error(
                            TraceErrorKind::Shape(Box::new(ShapeError::BiasBroadcast {
                                bias: tx.shape.to_vec(),
                                product: out.shape.to_vec(),
                            })),
                            loc,
                        ));
                    }
                    if tx.dtype != out.dtype {
                        return Err(self.error(
                            TraceErrorKind::DType(DTypeError::Bias {
                                bias: tx.dtype,
                                product: out.dtype,
                            }),
                            loc,
                        ));
                    }
                }
                Epilogue::Cast(d) => {
                    if k + 1 != epilogue.len() {
                        return Err(self.error(
                            TraceErrorKind::Invalid(Box::new(UsageError::EpilogueCastNotLast)),
                            loc,
                        ));
                    }
                    if !d.is_numeric() {
                        return Err(self.error(
                            TraceErrorKind::DType(DTypeError::EpilogueCast { to: *d }),
                            loc,
                        ));
                    }
                    result.dtype = *d;
                }
                Epilogue::Gelu => {
                    if !out.dtype.is_float() {
                        return Err(self.error(
                            TraceErrorKind::DType(DTypeError::EpilogueNotFloat {
                                op: "gelu",
                                dtype: out.dtype,
                            }),
                            loc,
                        ));
                    }
                }
                Epilogue::Scale(_) | Epilogue::Relu => {}
            }
        }
        self.push(
            Command::Dot {
                a,
                b,
                acc,
                epilogue,
            },
            result,
            loc,
        )
    }

    /// Elementwise math with numpy broadcasting. `cast_to` gives the result
    /// type of `MathOp::Cast`, and the type of `MathOp::Where` when both of
    /// its values are scalars; other operations take `None`.
    pub fn math(
        &mut self,
        op: MathOp,
        args: Vec<Operand>,
        cast_to: Option<DType>,
        loc: &SrcLoc,
    ) -> Result<CmdId, TraceError> {
        if args.len() != op.arity() {
            return Err(self.error(
                TraceErrorKind::Invalid(Box::new(UsageError::Arity {
                    op: op.name(),
                    arity: op.arity(),
                    got: args.len(),
                })),
                loc,
            ));
        }
        let kind = op.kind();
        // The result shape, by numpy's rules over every tile operand.
        let mut shape: Option<Dims> = None;
        for (k, a) in args.iter().enumerate() {
            if let Operand::Value(v) = a {
                let t = self.ty(*v, loc)?;
                shape = Some(match shape {
                    None => t.shape.clone(),
                    Some(s0) => broadcast_dims(&s0, &t.shape).map_err(|d| {
                        let n = s0.len().max(t.shape.len());
                        // The shapes met so far, this one's last.
                        let shapes = args[..=k]
                            .iter()
                            .filter_map(|a| match a {
                                Operand::Value(v) => {
                                    self.ty(*v, loc).ok().map(|t| t.shape.to_vec())
                                }
                                _ => None,
                            })
                            .collect();
                        self.error(
                            TraceErrorKind::Shape(Box::new(ShapeError::Broadcast {
                                op: op.name(),
                                shapes,
                                dim: d,
                                extents: [dim_at(&s0, d, n), dim_at(&t.shape, d, n)],
                            })),
                            loc,
                        )
                    })?,
                });
            }
        }
        let Some(shape) = shape else {
            return Err(self.error(
                TraceErrorKind::Invalid(Box::new(UsageError::NoTileOperand { op: op.name() })),
                loc,
            ));
        };
        // The element types: one type over the operands the rule ties together.
        let tied: &[Operand] = match kind {
            MathKind::Select => &args[1..],
            _ => &args,
        };
        let mut dtype: Option<DType> = None;
        for a in tied {
            if let Operand::Value(v) = a {
                let d = self.ty(*v, loc)?.dtype;
                match dtype {
                    None => dtype = Some(d),
                    Some(d0) if d0 != d => {
                        return Err(self.error(
                            TraceErrorKind::DType(DTypeError::Mixed {
                                op: op.name(),
                                a: d0,
                                b: d,
                            }),
                            loc,
                        ))
                    }
                    Some(_) => {}
                }
            }
        }
        let dtype_err = |e: DTypeError| Err(self.error(TraceErrorKind::DType(e), loc));
        let out = match kind {
            MathKind::Arith | MathKind::Float | MathKind::Compare => {
                let d = dtype.expect("a tile operand exists");
                if !d.is_numeric() && kind != MathKind::Compare {
                    return dtype_err(DTypeError::MaskArithmetic { op: op.name() });
                }
                if kind == MathKind::Float && !d.is_float() {
                    return dtype_err(DTypeError::NotFloat {
                        op: op.name(),
                        dtype: d,
                    });
                }
                if kind == MathKind::Compare {
                    DType::Bool
                } else {
                    d
                }
            }
            MathKind::Logic => {
                let d = dtype.expect("a tile operand exists");
                if d != DType::Bool {
                    return dtype_err(DTypeError::NotMask {
                        op: op.name(),
                        dtype: d,
                    });
                }
                DType::Bool
            }
            MathKind::Select => {
                let Operand::Value(m) = args[0] else {
                    return Err(self.error(
                        TraceErrorKind::Invalid(Box::new(UsageError::WhereScalarMask)),
                        loc,
                    ));
                };
                let md = self.ty(m, loc)?.dtype;
                if md != DType::Bool {
                    return dtype_err(DTypeError::WhereMask { dtype: md });
                }
                match (dtype, cast_to) {
                    (Some(d), Some(c)) if d != c => {
                        return dtype_err(DTypeError::WhereResult {
                            values: d,
                            result: c,
                        })
                    }
                    (Some(d), _) | (None, Some(d)) => d,
                    (None, None) => {
                        return Err(self.error(
                            TraceErrorKind::Invalid(Box::new(UsageError::WhereNeedsType)),
                            loc,
                        ))
                    }
                }
            }
            MathKind::Cast => match cast_to {
                Some(d) => d,
                None => {
                    return Err(self.error(
                        TraceErrorKind::Invalid(Box::new(UsageError::CastNeedsType)),
                        loc,
                    ))
                }
            },
        };
        if let (Some(c), false) = (cast_to, matches!(kind, MathKind::Cast | MathKind::Select)) {
            if c != out {
                return Err(self.error(
                    TraceErrorKind::Invalid(Box::new(UsageError::ResultType {
                        op: op.name(),
                        gives: out,
                        asked: c,
                    })),
                    loc,
                ));
            }
        }
        self.push(Command::Math { op, args }, TileType::new(out, shape), loc)
    }

    /// `tl::reshape` and `tl::expand_dims`: the same elements, in row-major
    /// order, in another shape.
    pub fn reshape(
        &mut self,
        x: CmdId,
        shape: Vec<usize>,
        loc: &SrcLoc,
    ) -> Result<CmdId, TraceError> {
        let t = self.ty(x, loc)?.clone();
        if shape.is_empty() || shape.contains(&0) || shape.iter().product::<usize>() != t.elems() {
            return Err(self.error(
                TraceErrorKind::Shape(Box::new(ShapeError::Reshape {
                    from: t.shape.to_vec(),
                    from_elems: t.elems(),
                    to_elems: shape.iter().product(),
                    to: shape,
                })),
                loc,
            ));
        }
        self.push(Command::Reshape { x }, TileType::new(t.dtype, shape), loc)
    }

    /// `tl::broadcast_to`: the tile stretched to `shape` by numpy's rules.
    pub fn broadcast_to(
        &mut self,
        x: CmdId,
        shape: Vec<usize>,
        loc: &SrcLoc,
    ) -> Result<CmdId, TraceError> {
        let t = self.ty(x, loc)?.clone();
        if shape.contains(&0) || !broadcasts_to(&t.shape, &shape) {
            return Err(self.error(
                TraceErrorKind::Shape(Box::new(ShapeError::BroadcastTo {
                    from: t.shape.to_vec(),
                    to: shape,
                })),
                loc,
            ));
        }
        self.push(Command::Broadcast { x }, TileType::new(t.dtype, shape), loc)
    }

    /// `tl::trans`: the transpose of a 2D tile.
    pub fn trans(&mut self, x: CmdId, loc: &SrcLoc) -> Result<CmdId, TraceError> {
        let t = self.ty(x, loc)?.clone();
        if t.shape.len() != 2 {
            return Err(self.error(
                TraceErrorKind::Shape(Box::new(ShapeError::TransRank {
                    shape: t.shape.to_vec(),
                })),
                loc,
            ));
        }
        let shape = vec![t.shape[1], t.shape[0]];
        self.push(Command::Trans { x }, TileType::new(t.dtype, shape), loc)
    }

    /// `tl::arange`: `start, start + 1, ..., end - 1` as an `i32` tile.
    pub fn arange(&mut self, start: i64, end: i64, loc: &SrcLoc) -> Result<CmdId, TraceError> {
        let fits = |v: i64| i64::from(i32::MIN) <= v && v <= i64::from(i32::MAX) + 1;
        if start >= end || !fits(start) || !fits(end) {
            return Err(self.error(
                TraceErrorKind::Shape(Box::new(ShapeError::Arange { start, end })),
                loc,
            ));
        }
        let n = (end - start) as usize;
        self.push(
            Command::Arange { start },
            TileType::new(DType::I32, vec![n]),
            loc,
        )
    }

    fn axis_check(
        &self,
        x: CmdId,
        axis: usize,
        what: &'static str,
        loc: &SrcLoc,
    ) -> Result<TileType, TraceError> {
        let t = self.ty(x, loc)?.clone();
        if axis >= t.shape.len() {
            return Err(self.error(
                TraceErrorKind::Shape(Box::new(ShapeError::Axis {
                    op: what,
                    axis,
                    shape: t.shape.to_vec(),
                })),
                loc,
            ));
        }
        Ok(t)
    }

    /// `tl::sum` / `tl::max` / `tl::min` / `tl::argmax` / `tl::argmin` along
    /// an axis (kept with extent 1; the arg reductions give `i32` indices).
    pub fn reduce(
        &mut self,
        op: ReduceOp,
        x: CmdId,
        axis: usize,
        loc: &SrcLoc,
    ) -> Result<CmdId, TraceError> {
        let mut t = self.axis_check(x, axis, op.name(), loc)?;
        self.numeric_check(&t, op.name(), loc)?;
        t.shape[axis] = 1;
        if matches!(op, ReduceOp::Argmax | ReduceOp::Argmin) {
            t.dtype = DType::I32;
        }
        self.push(Command::Reduce { op, x, axis }, t, loc)
    }

    fn numeric_check(
        &self,
        t: &TileType,
        what: &'static str,
        loc: &SrcLoc,
    ) -> Result<(), TraceError> {
        if t.dtype.is_numeric() {
            return Ok(());
        }
        Err(self.error(
            TraceErrorKind::DType(DTypeError::ReduceOfMask {
                op: what,
                dtype: t.dtype,
            }),
            loc,
        ))
    }

    /// `tl::softmax` along an axis.
    pub fn softmax(&mut self, x: CmdId, axis: usize, loc: &SrcLoc) -> Result<CmdId, TraceError> {
        let t = self.axis_check(x, axis, "softmax", loc)?;
        self.numeric_check(&t, "softmax", loc)?;
        self.push(Command::Softmax { x, axis }, t, loc)
    }

    /// `tl::send`, to a direction or a rank.
    pub fn send(
        &mut self,
        peer: impl Into<Peer>,
        value: CmdId,
        loc: &SrcLoc,
    ) -> Result<CmdId, TraceError> {
        let peer = peer.into();
        let t = self.ty(value, loc)?.clone();
        self.check_peer(peer, CommSide::Send, loc)?;
        let id = self.push(Command::Send { peer, value }, t, loc)?;
        self.order_peer(true, peer, id);
        Ok(id)
    }

    /// `tl::recv` / `tl::recv_async`, from a direction or a rank.
    pub fn recv(
        &mut self,
        peer: impl Into<Peer>,
        ty: TileType,
        is_async: bool,
        loc: &SrcLoc,
    ) -> Result<CmdId, TraceError> {
        if ty.shape.is_empty() || ty.shape.contains(&0) {
            return Err(self.error(
                TraceErrorKind::Shape(Box::new(ShapeError::EmptyMessage {
                    shape: ty.shape.to_vec(),
                })),
                loc,
            ));
        }
        self.sized(&ty, loc)?;
        let peer = peer.into();
        self.check_peer(peer, CommSide::Recv, loc)?;
        let id = self.push(Command::Recv { peer, is_async }, ty, loc)?;
        self.order_peer(false, peer, id);
        Ok(id)
    }

    /// `tl::wait`.
    pub fn wait(&mut self, future: CmdId, loc: &SrcLoc) -> Result<CmdId, TraceError> {
        let t = self.ty(future, loc)?.clone();
        if !matches!(
            self.graph[NodeIndex::new(future.index())].cmd,
            Command::Recv { is_async: true, .. }
        ) {
            return Err(self.error(
                TraceErrorKind::Invalid(Box::new(UsageError::NotFuture { tile: future })),
                loc,
            ));
        }
        self.push(Command::Wait { future }, t, loc)
    }

    /// The finished graph.
    pub fn finish(self) -> CommandGraph {
        let size = (self.graph.node_count(), self.graph.edge_count());
        LAST_SIZE.with(|l| {
            let mut l = l.borrow_mut();
            match l.as_mut() {
                Some(last) if last.0 == self.header.kernel => (last.1, last.2) = size,
                _ => *l = Some((self.header.kernel.clone(), size.0, size.1)),
            }
        });
        CommandGraph {
            header: self.header,
            graph: self.graph,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DType::{Bf16, Bool, F16, F32, I32};
    use Operand::Value as V;

    fn at() -> SrcLoc {
        SrcLoc {
            file: "k.rs".into(),
            line: 7,
            col: 1,
        }
    }

    proptest::proptest! {
        /// The interval map orders accesses exactly as tracking every byte
        /// on its own would: each follows the last write to any byte it
        /// touches and, when it writes, every read since.
        #[test]
        fn the_memory_map_orders_as_bytes_would(
            accesses in proptest::collection::vec((0u64..24, 1u64..10, proptest::bool::ANY), 1..40)
        ) {
            let mut map = MemMap::default();
            let mut bytes: Vec<(Option<CmdId>, Vec<CmdId>)> = vec![(None, Vec::new()); 40];
            let mut deps = Vec::new();
            for (i, &(start, len, write)) in accesses.iter().enumerate() {
                let id = CmdId(i as u32);
                map.access(id, start, start + len, write, &mut deps);
                let mut want = Vec::new();
                for b in &mut bytes[start as usize..(start + len) as usize] {
                    want.extend(b.0);
                    if write {
                        want.append(&mut b.1);
                        b.0 = Some(id);
                    } else {
                        b.1.push(id);
                    }
                }
                want.sort_unstable();
                want.dedup();
                proptest::prop_assert_eq!(&deps, &want, "access {} [{}, {})", i, start, start + len);
            }
        }
    }

    fn builder() -> GraphBuilder {
        let header = GraphHeader {
            kernel: "k".into(),
            params: vec![],
            grid: vec![1],
            pid: vec![0],
        };
        GraphBuilder::new(header, TraceLimits::default())
    }

    fn tile(b: &mut GraphBuilder, dtype: DType) -> CmdId {
        b.full(1.0, TileType::new(dtype, vec![4, 4]), &at())
            .unwrap()
    }

    #[test]
    fn an_operand_named_twice_is_one_data_edge() {
        let mut b = builder();
        let x = tile(&mut b, F32);
        let y = b.math(MathOp::Add, vec![V(x), V(x)], None, &at()).unwrap();
        let z = b.math(MathOp::Mul, vec![V(x), V(y)], None, &at()).unwrap();
        let g = b.finish();
        let into = |c: CmdId| {
            let mut from: Vec<usize> = g
                .graph
                .neighbors_directed(NodeIndex::new(c.index()), petgraph::Direction::Incoming)
                .map(|n| n.index())
                .collect();
            from.sort_unstable();
            from
        };
        assert_eq!(into(y), [x.index()]);
        assert_eq!(into(z), [x.index(), y.index()]);
    }

    fn region(name: &'static str, dtype: DType) -> MemRef {
        MemRef {
            param: 0,
            name: name.into(),
            base_va: 0x1000_0000,
            view: View::Flat { offset: 0 },
            dtype,
            shape: vec![4, 4].into(),
        }
    }

    /// The shape error a builder call gave, at the line it was given.
    fn shape_err(r: Result<CmdId, TraceError>) -> ShapeError {
        match r {
            Err(TraceError {
                kind: TraceErrorKind::Shape(e),
                loc: Some(l),
                ..
            }) if l == at() => *e,
            other => panic!("expected a shape error at k.rs:7, got {other:?}"),
        }
    }

    #[test]
    fn shape_errors_hold_the_shapes_that_do_not_fit() {
        use ShapeError::*;
        let mut b = builder();
        let l = at();
        let ty = |shape: &[usize]| TileType::new(F32, shape.to_vec());
        let e = shape_err(b.full(0.0, ty(&[4, 0]), &l));
        assert_eq!(e, EmptyTile { shape: vec![4, 0] });
        let e = shape_err(b.recv(Peer::Rank(0), ty(&[]), false, &l));
        assert_eq!(e, EmptyMessage { shape: vec![] });
        let e = shape_err(b.full(0.0, ty(&[1 << 40, 1 << 40]), &l));
        let huge = TooManyBytes {
            dtype: F32,
            shape: vec![1 << 40, 1 << 40],
        };
        assert_eq!(e, huge);

        let mut r = region("x", F32);
        r.shape = vec![0, 4].into();
        let e = shape_err(b.load(r, &l));
        assert_eq!(e, EmptyRegion { shape: vec![0, 4] });
        let mut r = region("x", F32);
        r.view = View::Block {
            origin: [0, 0],
            tensor: [8, 8],
        };
        r.shape = vec![2, 2, 2].into();
        let e = shape_err(b.load(r, &l));
        assert_eq!(
            e,
            BlockRank {
                shape: vec![2, 2, 2]
            }
        );
        let mut r = region("x", F32);
        r.shape = vec![16].into();
        let e = shape_err(b.stream(r, &l));
        assert_eq!(e, StreamRank { shape: vec![16] });

        let x = tile(&mut b, F32);
        let row = b.full(0.0, ty(&[4]), &l).unwrap();
        let wide = b.full(0.0, ty(&[4, 8]), &l).unwrap();
        let mut r = region("y", F32);
        r.shape = vec![8].into();
        let e = shape_err(b.store(r, x, &l));
        let store = Store {
            value: vec![4, 4],
            region: vec![8],
        };
        assert_eq!(e, store);
        let three = b.full(0.0, ty(&[3]), &l).unwrap();
        let mask = b
            .math(MathOp::Lt, vec![V(three), V(three)], None, &l)
            .unwrap();
        let e = shape_err(b.load_masked(region("x", F32), mask, 0.0, &l));
        let masked = MaskBroadcast {
            access: "load",
            mask: vec![3],
            region: vec![4, 4],
        };
        assert_eq!(e, masked);

        let e = shape_err(b.dot(row, x, None, vec![], &l));
        let rank = DotRank {
            a: vec![4],
            b: vec![4, 4],
        };
        assert_eq!(e, rank);
        let e = shape_err(b.dot(x, three, None, vec![], &l));
        let rank = DotRank {
            a: vec![4, 4],
            b: vec![3],
        };
        assert_eq!(e, rank);
        let e = shape_err(b.dot(wide, x, None, vec![], &l));
        assert_eq!(
            e,
            DotInner {
                a: [4, 8],
                b: [4, 4]
            }
        );
        assert_eq!(
            e.to_string(),
            "dot of [4, 8] x [4, 4]: the inner dimensions 8 and 4 differ"
        );
        let e = shape_err(b.dot(x, x, Some(wide), vec![], &l));
        let acc = Accumulator {
            acc: ty(&[4, 8]),
            product: ty(&[4, 4]),
        };
        assert_eq!(e, acc);
        let e = shape_err(b.dot(x, x, None, vec![Epilogue::Bias(three)], &l));
        let bias = BiasBroadcast {
            bias: vec![3],
            product: vec![4, 4],
        };
        assert_eq!(e, bias);

        let e = shape_err(b.reduce(ReduceOp::Sum, x, 2, &l));
        let axis = Axis {
            op: "sum",
            axis: 2,
            shape: vec![4, 4],
        };
        assert_eq!(e, axis);
        assert_eq!(e.to_string(), "sum along axis 2 of a 2-D tile [4, 4]");
        let e = shape_err(b.softmax(row, 1, &l));
        let axis = Axis {
            op: "softmax",
            axis: 1,
            shape: vec![4],
        };
        assert_eq!(e, axis);
    }

    /// The misuse of the language a builder call gave, at the line it was given.
    fn usage_err(r: Result<CmdId, TraceError>) -> UsageError {
        match r {
            Err(TraceError {
                kind: TraceErrorKind::Invalid(e),
                loc: Some(l),
                ..
            }) if l == at() => *e,
            other => panic!("expected a misuse at k.rs:7, got {other:?}"),
        }
    }

    #[test]
    fn misuses_of_the_language_name_the_tiles_and_operations() {
        use UsageError::*;
        let mut b = builder();
        let l = at();
        let x = tile(&mut b, F32);
        let mask = b.math(MathOp::Lt, vec![V(x), V(x)], None, &l).unwrap();
        let e = usage_err(b.math(MathOp::Add, vec![V(CmdId(99)), V(x)], None, &l));
        assert_eq!(e, ForeignTile { tile: CmdId(99) });
        let e = usage_err(b.math(MathOp::Add, vec![V(x)], None, &l));
        assert_eq!(
            e,
            Arity {
                op: "add",
                arity: 2,
                got: 1
            }
        );
        assert_eq!(e.to_string(), "add takes 2 operands, got 1");
        let scalars = vec![Operand::Scalar(1.0), Operand::Scalar(2.0)];
        let e = usage_err(b.math(MathOp::Add, scalars, None, &l));
        assert_eq!(e, NoTileOperand { op: "add" });
        let args = vec![Operand::Scalar(1.0), V(x), V(x)];
        let e = usage_err(b.math(MathOp::Where, args, None, &l));
        assert_eq!(e, WhereScalarMask);
        let args = vec![V(mask), Operand::Scalar(1.0), Operand::Scalar(0.0)];
        let e = usage_err(b.math(MathOp::Where, args, None, &l));
        assert_eq!(e, WhereNeedsType);
        let e = usage_err(b.math(MathOp::Cast, vec![V(x)], None, &l));
        assert_eq!(e, CastNeedsType);
        let e = usage_err(b.math(MathOp::Add, vec![V(x), V(x)], Some(F16), &l));
        let result = ResultType {
            op: "add",
            gives: F32,
            asked: F16,
        };
        assert_eq!(e, result);

        let cast_first = vec![Epilogue::Cast(F16), Epilogue::Relu];
        let e = usage_err(b.dot(x, x, None, cast_first, &l));
        assert_eq!(e, EpilogueCastNotLast);
        let streamed = b.stream(region("w", F32), &l).unwrap();
        let e = usage_err(b.math(MathOp::Neg, vec![V(streamed)], None, &l));
        assert_eq!(e, StreamedOperand { tile: streamed });
        let e = usage_err(b.wait(x, &l));
        assert_eq!(e, NotFuture { tile: x });
    }

    /// The element-type error a builder call gave, at the line it was given.
    fn dtype_err(r: Result<CmdId, TraceError>) -> DTypeError {
        match r {
            Err(TraceError {
                kind: TraceErrorKind::DType(e),
                loc: Some(l),
                ..
            }) if l == at() => e,
            other => panic!("expected an element-type error at k.rs:7, got {other:?}"),
        }
    }

    #[test]
    fn element_type_errors_name_the_operation_and_the_types() {
        let mut b = builder();
        let l = at();
        let (f32t, f16t, i32t) = (tile(&mut b, F32), tile(&mut b, F16), tile(&mut b, I32));
        let mask = b
            .math(MathOp::Lt, vec![V(f32t), V(f32t)], None, &l)
            .unwrap();
        let math = |b: &mut GraphBuilder, op, args: &[CmdId], cast| {
            let args = args.iter().map(|&a| V(a)).collect();
            dtype_err(b.math(op, args, cast, &l))
        };
        use DTypeError::*;
        let mixed = math(&mut b, MathOp::Add, &[f32t, f16t], None);
        assert_eq!(
            mixed,
            Mixed {
                op: "add",
                a: F32,
                b: F16
            }
        );
        assert_eq!(
            mixed.to_string(),
            "add of f32 and f16: cast one side with `.cast::<T>()`"
        );
        let e = math(&mut b, MathOp::Add, &[mask, mask], None);
        assert_eq!(e, MaskArithmetic { op: "add" });
        let e = math(&mut b, MathOp::Sqrt, &[i32t], None);
        assert_eq!(
            e,
            NotFloat {
                op: "sqrt",
                dtype: I32
            }
        );
        let e = math(&mut b, MathOp::And, &[f32t, f32t], None);
        assert_eq!(
            e,
            NotMask {
                op: "and",
                dtype: F32
            }
        );
        let e = math(&mut b, MathOp::Where, &[f32t, f32t, f32t], None);
        assert_eq!(e, WhereMask { dtype: F32 });
        let e = math(&mut b, MathOp::Where, &[mask, f32t, f32t], Some(Bf16));
        assert_eq!(
            e,
            WhereResult {
                values: F32,
                result: Bf16
            }
        );

        let e = dtype_err(b.dot(f32t, f16t, None, vec![], &l));
        assert_eq!(
            e,
            Mixed {
                op: "dot",
                a: F32,
                b: F16
            }
        );
        let e = dtype_err(b.dot(mask, mask, None, vec![], &l));
        assert_eq!(e, DotOfMasks { dtype: Bool });
        // An f16 product accumulates in f32, so its bias is f32.
        let bias = vec![Epilogue::Bias(f16t)];
        let e = dtype_err(b.dot(f16t, f16t, None, bias, &l));
        assert_eq!(
            e,
            Bias {
                bias: F16,
                product: F32
            }
        );
        let e = dtype_err(b.dot(f32t, f32t, None, vec![Epilogue::Cast(Bool)], &l));
        assert_eq!(e, EpilogueCast { to: Bool });

        let e = dtype_err(b.reduce(ReduceOp::Argmax, mask, 1, &l));
        assert_eq!(
            e,
            ReduceOfMask {
                op: "argmax",
                dtype: Bool
            }
        );
        let e = dtype_err(b.softmax(mask, 0, &l));
        assert_eq!(
            e,
            ReduceOfMask {
                op: "softmax",
                dtype: Bool
            }
        );

        let e = dtype_err(b.load_masked(region("x", F32), f32t, 0.0, &l));
        assert_eq!(
            e,
            MaskNotBool {
                access: "load",
                dtype: F32
            }
        );
        let e = dtype_err(b.store(region("y", F16), f32t, &l));
        let store = Store {
            value: F32,
            pointer: F16,
            name: "y".into(),
        };
        assert_eq!(e, store);
        assert_eq!(
            e.to_string(),
            "store of a f32 tile through a f16 pointer `y`; cast first with `.cast::<f16>()`"
        );
    }
}
