//! Building a command graph while a kernel is traced, with the checks that
//! must hold at trace time (shapes, dtypes, bounds), each naming the kernel line.

use super::*;
use std::fmt;

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

/// What went wrong while tracing.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum TraceErrorKind {
    /// Shapes that must agree do not.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// Element types mixed without a cast.
    #[error("dtype mismatch: {0}")]
    DType(String),
    /// A region outside its buffer or tensor.
    #[error("out of bounds: {0}")]
    OutOfBounds(String),
    /// A launch argument missing or of the wrong kind.
    #[error("argument `{param}`: {msg}")]
    Arg {
        /// The parameter.
        param: String,
        /// What is wrong.
        msg: String,
    },
    /// The trace issued more commands than allowed.
    #[error("more than {0} commands on one program instance: a runaway loop, or more work than one launch may simulate (a launch's command budget is split over its PEs); use larger pieces, a smaller size or fewer PEs")]
    TooManyCommands(usize),
    /// A use of the language that has no meaning (wrong axis, a tile used outside its trace...).
    #[error("{0}")]
    Invalid(String),
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

/// One piece of memory with the accesses that later accesses must order after.
#[derive(Clone, Debug, Default)]
struct Seg {
    end: u64,
    last_write: Option<CmdId>,
    reads: Vec<CmdId>,
}

/// Disjoint segments of the memory a trace touched (an interval map), so
/// that ordering a memory access costs O(log n + overlapping segments).
#[derive(Default)]
struct MemMap {
    segs: std::collections::BTreeMap<u64, Seg>,
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

    /// Records an access to `[start, end)` and returns what it must follow.
    fn access(&mut self, id: CmdId, start: u64, end: u64, write: bool) -> Vec<CmdId> {
        if start >= end {
            return Vec::new();
        }
        self.split(start);
        self.split(end);
        let mut deps = Vec::new();
        // Fill holes so the whole range is covered by segments.
        let mut cursor = start;
        let keys: Vec<u64> = self.segs.range(start..end).map(|(k, _)| *k).collect();
        let mut holes = Vec::new();
        for k in &keys {
            if *k > cursor {
                holes.push((cursor, *k));
            }
            cursor = self.segs[k].end;
        }
        if cursor < end {
            holes.push((cursor, end));
        }
        for (a, b) in holes {
            self.segs.insert(
                a,
                Seg {
                    end: b,
                    last_write: None,
                    reads: Vec::new(),
                },
            );
        }
        for (_, seg) in self.segs.range_mut(start..end) {
            if let Some(w) = seg.last_write {
                deps.push(w);
            }
            if write {
                deps.append(&mut seg.reads);
                seg.last_write = Some(id);
            } else {
                seg.reads.push(id);
            }
        }
        deps.sort_unstable();
        deps.dedup();
        deps
    }
}

/// Records commands into a [`CommandGraph`], checking each as it comes.
pub struct GraphBuilder {
    header: GraphHeader,
    graph: DiGraph<Node, DepKind>,
    limits: TraceLimits,
    memmap: MemMap,
    last_send: [Option<CmdId>; Dir::ALL.len()],
    last_recv: [Option<CmdId>; Dir::ALL.len()],
}

fn shape_str(s: &[usize]) -> String {
    format!("{s:?}")
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
        GraphBuilder {
            header,
            graph: DiGraph::new(),
            limits,
            memmap: MemMap::default(),
            last_send: [None; Dir::ALL.len()],
            last_recv: [None; Dir::ALL.len()],
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
                    TraceErrorKind::Invalid(format!(
                        "tile {v} does not belong to this trace (a tile cannot outlive the kernel call that made it)"
                    )),
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
        for v in cmd.operands() {
            self.ty(v, loc)?;
            if self.is_stream(v) && !matches!(cmd, Command::Dot { .. }) {
                return Err(self.error(
                    TraceErrorKind::Invalid(format!(
                        "{v} is a streamed operand: only `dot`/`gemm` can read it; use `tl::load` for a tile"
                    )),
                    loc,
                ));
            }
        }
        let operands = cmd.operands();
        let id = CmdId(self.graph.node_count() as u32);
        let n = self.graph.add_node(Node {
            cmd,
            ty,
            loc: loc.clone(),
        });
        for v in operands {
            self.graph
                .update_edge(NodeIndex::new(v.index()), n, DepKind::Data);
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
        for d in self.memmap.access(id, start, end, write) {
            if d != id {
                self.order(d, id);
            }
        }
    }

    fn region_ty(&self, r: &MemRef, loc: &SrcLoc) -> Result<TileType, TraceError> {
        if r.shape.is_empty() || r.shape.contains(&0) {
            return Err(self.error(
                TraceErrorKind::Shape(format!(
                    "a region of shape {} is empty",
                    shape_str(&r.shape)
                )),
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
                TraceErrorKind::Shape(format!(
                    "a {} tile of shape {} has more bytes than a 64-bit count holds",
                    ty.dtype,
                    shape_str(&ty.shape)
                )),
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
                TraceErrorKind::Shape(format!(
                    "a block of a tensor is 2D (rows, cols), not {}",
                    shape_str(&r.shape)
                )),
                loc,
            ));
        }
        if r.checked_span().is_none() {
            return Err(self.error(
                TraceErrorKind::OutOfBounds(format!(
                    "{r} of shape {} lies outside the 64-bit address space (its address overflows)",
                    shape_str(&r.shape)
                )),
                loc,
            ));
        }
        Ok(())
    }

    /// `tl::load`.
    pub fn load(&mut self, src: MemRef, loc: &SrcLoc) -> Result<CmdId, TraceError> {
        let ty = self.region_ty(&src, loc)?;
        let r = src.clone();
        let id = self.push(Command::Load { src }, ty, loc)?;
        self.memory(id, &r, false);
        Ok(id)
    }

    /// `tl::stream`: an operand left in HBM for a GEMM to stream.
    pub fn stream(&mut self, src: MemRef, loc: &SrcLoc) -> Result<CmdId, TraceError> {
        let ty = self.region_ty(&src, loc)?;
        if ty.shape.len() != 2 {
            return Err(self.error(
                TraceErrorKind::Shape(format!(
                    "a streamed GEMM operand must be 2D, not {}",
                    shape_str(&ty.shape)
                )),
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
        let vty = self.ty(value, loc)?.clone();
        self.check_region(&dst, loc)?;
        if vty.shape != dst.shape && vty.elems() != dst.shape.iter().product::<usize>() {
            return Err(self.error(
                TraceErrorKind::Shape(format!(
                    "store of a {} tile into a region of shape {}",
                    shape_str(&vty.shape),
                    shape_str(&dst.shape)
                )),
                loc,
            ));
        }
        if vty.dtype != dst.dtype {
            return Err(self.error(
                TraceErrorKind::DType(format!(
                    "store of a {} tile through a {} pointer `{}`; cast first with `.cast::<{}>()`",
                    vty.dtype, dst.dtype, dst.name, dst.dtype
                )),
                loc,
            ));
        }
        let r = dst.clone();
        let id = self.push(Command::Store { dst, value }, vty, loc)?;
        self.memory(id, &r, true);
        Ok(id)
    }

    /// `tl::full` / `tl::zeros`.
    pub fn full(&mut self, value: f64, ty: TileType, loc: &SrcLoc) -> Result<CmdId, TraceError> {
        if ty.shape.is_empty() || ty.shape.contains(&0) {
            return Err(self.error(
                TraceErrorKind::Shape(format!("a tile of shape {} is empty", shape_str(&ty.shape))),
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
                TraceErrorKind::Shape(format!(
                    "dot takes 2D tiles, got {} x {}",
                    shape_str(&ta.shape),
                    shape_str(&tb.shape)
                )),
                loc,
            ));
        }
        if ta.shape[1] != tb.shape[0] {
            return Err(self.error(
                TraceErrorKind::Shape(format!(
                    "dot of [{}, {}] x [{}, {}]: the inner dimensions {} and {} differ",
                    ta.shape[0], ta.shape[1], tb.shape[0], tb.shape[1], ta.shape[1], tb.shape[0]
                )),
                loc,
            ));
        }
        if ta.dtype != tb.dtype {
            return Err(self.error(
                TraceErrorKind::DType(format!(
                    "dot of {} and {}: cast one operand so both have the same type",
                    ta.dtype, tb.dtype
                )),
                loc,
            ));
        }
        let out = TileType::new(ta.dtype.accumulator(), vec![ta.shape[0], tb.shape[1]]);
        self.sized(&out, loc)?;
        if let Some(c) = acc {
            let tc = self.ty(c, loc)?;
            if tc != &out {
                return Err(self.error(
                    TraceErrorKind::Shape(format!("dot accumulator is {tc}, the product is {out}")),
                    loc,
                ));
            }
        }
        for e in &epilogue {
            if let Epilogue::Bias(x) = e {
                let tx = self.ty(*x, loc)?;
                let ok_shape = tx.shape == out.shape
                    || tx.shape == [out.shape[1]]
                    || tx.shape == [1, out.shape[1]];
                if !ok_shape {
                    return Err(self.error(
                        TraceErrorKind::Shape(format!(
                            "bias {} does not broadcast to the product {}",
                            shape_str(&tx.shape),
                            shape_str(&out.shape)
                        )),
                        loc,
                    ));
                }
            }
        }
        self.push(
            Command::Dot {
                a,
                b,
                acc,
                epilogue,
            },
            out,
            loc,
        )
    }

    /// Elementwise math; `cast_to` gives the result type of `MathOp::Cast`.
    pub fn math(
        &mut self,
        op: MathOp,
        args: Vec<Operand>,
        cast_to: Option<DType>,
        loc: &SrcLoc,
    ) -> Result<CmdId, TraceError> {
        if args.len() != op.arity() {
            return Err(self.error(
                TraceErrorKind::Invalid(format!("{} takes {} operands", op.name(), op.arity())),
                loc,
            ));
        }
        let mut ty: Option<TileType> = None;
        for a in &args {
            if let Operand::Value(v) = a {
                let t = self.ty(*v, loc)?.clone();
                match &ty {
                    None => ty = Some(t),
                    Some(t0) => {
                        if t0.shape != t.shape {
                            return Err(self.error(
                                TraceErrorKind::Shape(format!(
                                    "{} of {} and {}",
                                    op.name(),
                                    shape_str(&t0.shape),
                                    shape_str(&t.shape)
                                )),
                                loc,
                            ));
                        }
                        if t0.dtype != t.dtype {
                            return Err(self.error(
                                TraceErrorKind::DType(format!(
                                    "{} of {} and {}: cast one side with `.cast::<T>()`",
                                    op.name(),
                                    t0.dtype,
                                    t.dtype
                                )),
                                loc,
                            ));
                        }
                    }
                }
            }
        }
        let Some(mut ty) = ty else {
            return Err(self.error(
                TraceErrorKind::Invalid(format!("{} needs at least one tile operand", op.name())),
                loc,
            ));
        };
        if let Some(d) = cast_to {
            ty.dtype = d;
        }
        self.push(Command::Math { op, args }, ty, loc)
    }

    fn axis_check(
        &self,
        x: CmdId,
        axis: usize,
        what: &str,
        loc: &SrcLoc,
    ) -> Result<TileType, TraceError> {
        let t = self.ty(x, loc)?.clone();
        if axis >= t.shape.len() {
            return Err(self.error(
                TraceErrorKind::Shape(format!(
                    "{what} along axis {axis} of a {}-D tile {}",
                    t.shape.len(),
                    shape_str(&t.shape)
                )),
                loc,
            ));
        }
        Ok(t)
    }

    /// `tl::sum` / `tl::max` along an axis.
    pub fn reduce(
        &mut self,
        op: ReduceOp,
        x: CmdId,
        axis: usize,
        loc: &SrcLoc,
    ) -> Result<CmdId, TraceError> {
        let mut t = self.axis_check(x, axis, "reduction", loc)?;
        t.shape[axis] = 1;
        self.push(Command::Reduce { op, x, axis }, t, loc)
    }

    /// `tl::softmax` along an axis.
    pub fn softmax(&mut self, x: CmdId, axis: usize, loc: &SrcLoc) -> Result<CmdId, TraceError> {
        let t = self.axis_check(x, axis, "softmax", loc)?;
        self.push(Command::Softmax { x, axis }, t, loc)
    }

    /// `tl::send`.
    pub fn send(&mut self, dir: Dir, value: CmdId, loc: &SrcLoc) -> Result<CmdId, TraceError> {
        let t = self.ty(value, loc)?.clone();
        let id = self.push(Command::Send { dir, value }, t, loc)?;
        if let Some(p) = self.last_send[dir.index()].replace(id) {
            self.order(p, id);
        }
        Ok(id)
    }

    /// `tl::recv` / `tl::recv_async`.
    pub fn recv(
        &mut self,
        dir: Dir,
        ty: TileType,
        is_async: bool,
        loc: &SrcLoc,
    ) -> Result<CmdId, TraceError> {
        if ty.shape.is_empty() || ty.shape.contains(&0) {
            return Err(self.error(
                TraceErrorKind::Shape(format!(
                    "recv of shape {}: a message must hold at least one element",
                    shape_str(&ty.shape)
                )),
                loc,
            ));
        }
        self.sized(&ty, loc)?;
        let id = self.push(Command::Recv { dir, is_async }, ty, loc)?;
        if let Some(p) = self.last_recv[dir.index()].replace(id) {
            self.order(p, id);
        }
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
                TraceErrorKind::Invalid(format!("{future} is not a future from `tl::recv_async`")),
                loc,
            ));
        }
        self.push(Command::Wait { future }, t, loc)
    }

    /// The finished graph.
    pub fn finish(self) -> CommandGraph {
        CommandGraph {
            header: self.header,
            graph: self.graph,
        }
    }
}
