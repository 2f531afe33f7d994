//! Lowering: from one instance's command graph to the engine work of its tile
//! plans (the TCM plan that bounds them is [`super::tcm`]).
//!
//! Each command becomes an `Issue` op on PE_CPU (PE_CPU and PE_SCHEDULER
//! overheads) followed by the ops of its tile plan on DMA_IN, GEMM, MATH,
//! DMA_WB or the comm DMA. Elementwise work is cut into tiles of
//! `tile_bytes / 4` elements, so a chain load -> math -> store streams tile by
//! tile; a GEMM of (M,K,N) with tile (tm,tk,tn) runs
//! `ceil(M/tm) * ceil(K/tk) * ceil(N/tn)` steps; streamed operands are brought
//! in per step into `tcm_buffers` buffers (double buffering).
//!
//! What it gives, the [`PeProgram`], is in `program.rs`.

mod program;

pub(crate) use program::DepPatch;
pub use program::{Label, Op, OpKind, PeProgram, Unit, UNITS};

use crate::addr::Region;
use crate::ir::{CmdId, Command, CommandGraph, DepKind, LoadMask, MemRef, Node, View};
use crate::machine::Machine;
use crate::passes::error::CompileError;
use crate::topology::{Endpoint, PeSpec};
use crate::{PeId, Ps};

/// A short list of op dependencies, inline up to eight (no allocation on the
/// common path), spilling to the heap beyond.
#[derive(Clone, Debug, Default)]
struct Deps {
    inline: [u32; 8],
    len: usize,
    spill: Vec<u32>,
}

impl Deps {
    fn push(&mut self, x: u32) {
        if self.len < self.inline.len() {
            self.inline[self.len] = x;
            self.len += 1;
        } else {
            if self.spill.is_empty() {
                self.spill.extend_from_slice(&self.inline);
            }
            self.spill.push(x);
            self.len += 1;
        }
    }
}

impl std::ops::Deref for Deps {
    type Target = [u32];
    fn deref(&self) -> &[u32] {
        if self.len <= self.inline.len() {
            &self.inline[..self.len]
        } else {
            &self.spill
        }
    }
}

/// Commands, ops, dependencies and queue lengths of a lowered program.
type ProgramSize = (usize, usize, usize, [u32; UNITS]);

thread_local! {
    /// The size of the last program lowered on this thread.
    static LAST_SIZE: std::cell::Cell<Option<ProgramSize>> = const { std::cell::Cell::new(None) };
}

/// How one command was lowered: the ops whose completion gives each of its tiles.
#[derive(Clone, Debug, Default)]
struct Lowered {
    segs: smallvec::SmallVec<[u32; 4]>,
    last: u32,
    /// The op later commands order after (the slot grant of a send, else `last`).
    anchor: Option<u32>,
    /// Output tiling of a GEMM: (rows per tile, cols per tile, tiles across).
    gemm_tiles: Option<(usize, usize, usize)>,
}

/// Context the lowering needs from outside the graph.
pub struct LowerCtx<'a> {
    /// The machine (address translation).
    pub machine: &'a Machine,
    /// The PE figures.
    pub spec: &'a PeSpec,
    /// This PE.
    pub pe: PeId,
    /// Channel of each send command, by command id (from pairing).
    pub send_chan: &'a dyn Fn(CmdId) -> u32,
    /// Channel of each receive command.
    pub recv_chan: &'a dyn Fn(CmdId) -> u32,
    /// Registers a route from this PE to an endpoint and gives its index.
    pub route: &'a mut dyn FnMut(Endpoint) -> Result<u32, CompileError>,
}

struct Builder {
    prog: PeProgram,
    /// Every DMA lowered so far, in order.
    sites: Vec<DmaSite>,
    /// The order of the command being lowered (its issue, then what it is
    /// ordered after; empty while its issue is lowered).
    order: Vec<u32>,
    /// How the commands' orders went into their ops.
    uses: OrderUse,
}

/// How each command's order went into its ops, so that a graph of one
/// shape whose ordering edges differ can share the program with only those
/// ops' dependencies changed ([`OrderUse::patch`]).
///
/// An op that waits for its command's order gets it as the first of the
/// dependencies it is lowered with (`At::order_and`, `&at.order`); any
/// other op's dependencies start otherwise. [`Builder::op`] so tells the
/// ops that take the order, and keeps their other dependencies.
#[derive(Clone, Debug, Default)]
pub(crate) struct OrderUse {
    /// Per command, the op later commands order after (its anchor or last op).
    anchor: Vec<u32>,
    /// Per command, its order as lowered: `lists[at[c]..at[c + 1]]`.
    at: Vec<u32>,
    lists: Vec<u32>,
    /// The ops that took their command's order, in op order, and each
    /// one's other dependencies: `rest[rest_at[k]..rest_at[k + 1]]`.
    takers: Vec<u32>,
    rest_at: Vec<u32>,
    rest: Vec<u32>,
}

impl OrderUse {
    /// For a graph of the shape of the graph `prog` was lowered from, whose
    /// ordering edges are `edges` (as [`super::shape::shape_hash`] gives
    /// them): the ops whose dependencies differ from this lowering's, with
    /// the graph's dependencies (sorted, without repeats), in op order.
    pub(crate) fn patch(&self, edges: &[(u32, u32)], prog: &PeProgram) -> Vec<(u32, Vec<u32>)> {
        let mut out = Vec::new();
        let mut order: Vec<u32> = Vec::new();
        let (mut k, mut e) = (0, 0);
        for c in 0..self.anchor.len() {
            let lowered = &self.lists[self.at[c] as usize..self.at[c + 1] as usize];
            order.clear();
            order.push(lowered[0]);
            while let Some(&(_, src)) = edges.get(e).filter(|x| x.0 as usize == c) {
                order.push(self.anchor[src as usize]);
                e += 1;
            }
            let from = k;
            while k < self.takers.len() && prog.ops[self.takers[k] as usize].cmd.index() == c {
                k += 1;
            }
            if order == lowered {
                continue;
            }
            for t in from..k {
                let rest = &self.rest[self.rest_at[t] as usize..self.rest_at[t + 1] as usize];
                let mut deps: Vec<u32> = order.iter().chain(rest).copied().collect();
                deps.sort_unstable();
                deps.dedup();
                out.push((self.takers[t], deps));
            }
        }
        out
    }
}

impl Builder {
    fn op(&mut self, unit: Unit, kind: OpKind, cmd: CmdId, label: Label, deps: &[u32]) -> u32 {
        let id = self.prog.ops.len() as u32;
        if !self.order.is_empty() && deps.starts_with(&self.order) {
            let u = &mut self.uses;
            u.takers.push(id);
            u.rest.extend_from_slice(&deps[self.order.len()..]);
            u.rest_at.push(u.rest.len() as u32);
        }
        self.prog.ops.push(Op {
            unit,
            kind,
            cmd,
            completes: false,
        });
        self.prog.labels.push(label);
        // Dependencies go straight into the CSR arrays, sorted and without repeats.
        let from = self.prog.deps.len();
        self.prog.deps.extend_from_slice(deps);
        self.prog.deps[from..].sort_unstable();
        let mut keep = from;
        for k in from..self.prog.deps.len() {
            if keep == from || self.prog.deps[k] != self.prog.deps[keep - 1] {
                self.prog.deps[keep] = self.prog.deps[k];
                keep += 1;
            }
        }
        self.prog.deps.truncate(keep);
        self.prog.dep_start.push(keep as u32);
        if unit != Unit::Free {
            self.prog.queues[unit as usize].push(id);
        }
        id
    }
}

/// Elements of one elementwise tile.
pub(crate) fn seg_elems(spec: &PeSpec) -> usize {
    (spec.tile_bytes as usize / 4).max(1)
}

/// Adds contiguous bytes at physical address `pa` to their pseudo-channels.
/// A whole aligned group of `pcs` bursts covers every channel once (the
/// channel map is a permutation inside such a group, with or without
/// hashing), so only the ragged ends are walked burst by burst.
fn add_pc_bytes(spec: &PeSpec, pa: u64, len: u64, out: &mut [u64]) {
    let pcs = out.len() as u64;
    let burst = u64::from(spec.hbm_burst_bytes.max(1));
    let group = burst * pcs;
    let end = pa + len;
    let mut a = pa;
    let walk = |from: u64, to: u64, out: &mut [u64]| {
        let mut x = from;
        while x < to {
            let n = (burst - x % burst).min(to - x);
            out[spec.hbm_pc(x)] += n;
            x += n;
        }
    };
    let head_end = a.div_ceil(group) * group;
    if head_end >= end {
        walk(a, end, out);
        return;
    }
    walk(a, head_end, out);
    a = head_end;
    let whole = (end - a) / group;
    for o in out.iter_mut() {
        *o += whole * burst;
    }
    a += whole * group;
    walk(a, end, out);
}

/// Byte runs `(va, len)` of a DMA: inline for a flat tile's single run.
pub(crate) type Runs = smallvec::SmallVec<[(u64, u64); 1]>;

/// Contiguous byte runs `(va, len)` of rows `r0..r1` (or, for a flat region, elements `r0..r1`).
pub(crate) fn runs_of(r: &MemRef, r0: usize, r1: usize) -> Runs {
    let es = r.dtype.size() as u64;
    match &r.view {
        View::Flat { offset } => {
            // A negative offset (below the buffer) wraps to the address it
            // names; the memory checks then refuse it.
            let first = offset.wrapping_add(r0 as i64).wrapping_mul(es as i64);
            let start = r.base_va.wrapping_add(first as u64);
            smallvec::smallvec![(start, (r1 - r0) as u64 * es)]
        }
        View::Block { origin, tensor } => {
            let cols = r.shape.get(1).copied().unwrap_or(1);
            (r0..r1)
                .map(|row| {
                    let va = r.base_va + (((origin[0] + row) * tensor[1] + origin[1]) as u64) * es;
                    (va, cols as u64 * es)
                })
                .collect()
        }
    }
}

/// Runs of a 2D sub-block (rows, cols) of a region.
pub(crate) fn sub_block_runs(r: &MemRef, rows: (usize, usize), cols: (usize, usize)) -> Runs {
    let es = r.dtype.size() as u64;
    let (row_pitch, base) = match &r.view {
        View::Flat { offset } => {
            let w = r.shape.get(1).copied().unwrap_or(1);
            let first = offset.wrapping_mul(es as i64);
            (w as u64 * es, r.base_va.wrapping_add(first as u64))
        }
        View::Block { origin, tensor } => (
            tensor[1] as u64 * es,
            r.base_va + ((origin[0] * tensor[1] + origin[1]) as u64) * es,
        ),
    };
    (rows.0..rows.1)
        .map(|row| {
            (
                base + row as u64 * row_pitch + cols.0 as u64 * es,
                (cols.1 - cols.0) as u64 * es,
            )
        })
        .collect()
}

/// The part of a region one DMA moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Span {
    /// Rows `r0..r1` (elements of a flat region), as [`runs_of`] gives them.
    Rows(usize, usize),
    /// A 2D sub-block (rows, cols), as [`sub_block_runs`] gives it.
    Block((usize, usize), (usize, usize)),
}

impl Span {
    /// The byte runs of this part of `r`.
    pub(crate) fn runs(self, r: &MemRef) -> Runs {
        match self {
            Span::Rows(r0, r1) => runs_of(r, r0, r1),
            Span::Block(rows, cols) => sub_block_runs(r, rows, cols),
        }
    }
}

/// One DMA op of a lowered program and what it moves: the part `span` of
/// the region of command `region` (a load's or stream's source, a store's
/// destination). The only place where the lowering reads addresses, so a
/// program lowered for one instance serves another whose graph differs
/// only in addresses once each site is resolved again
/// ([`resolve`]) on that instance's own regions.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DmaSite {
    /// The op.
    pub(crate) op: u32,
    /// The command whose region it moves.
    pub(crate) region: CmdId,
    /// The part of the region.
    pub(crate) span: Span,
}

/// The region a load, stream or store moves.
pub(crate) fn region_of(cmd: &Command) -> Option<&MemRef> {
    match cmd {
        Command::Load { src, .. } | Command::Stream { src } => Some(src),
        Command::Store { dst, .. } => Some(dst),
        _ => None,
    }
}

/// What serves a DMA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// This PE's HBM slice: the bytes were added to the split passed in.
    Hbm,
    /// Memory elsewhere, over the fabric.
    Remote(Endpoint),
}

/// Resolves a DMA of `runs` from PE `pe`: checks every run is mapped, and
/// says what serves it (the owner of the first byte). For an HBM slice,
/// this PE's or another's, its bytes per pseudo-channel of the slice go
/// into `pcs` (one entry a channel).
pub(crate) fn resolve(
    machine: &Machine,
    spec: &PeSpec,
    pe: PeId,
    runs: &[(u64, u64)],
    pcs: &mut [u64],
) -> Result<Target, crate::machine::MemError> {
    let mut pieces = crate::addr::PhysRuns::new();
    for (va, len) in runs {
        pieces.extend(machine.translate(pe, *va, *len)?);
    }
    let pa = pieces.first().expect("a DMA has at least one run").0;
    Ok(Target::Remote(match machine.classify(pa)? {
        Region::PeHbm { pe: owner, .. } => {
            for (pa, len) in &pieces {
                add_pc_bytes(spec, pa.raw(), *len, pcs);
            }
            if owner == pe {
                return Ok(Target::Hbm);
            }
            Endpoint::Hbm(owner)
        }
        Region::Sram { cube, .. } => Endpoint::Sram(cube),
        Region::MCpu { cube, .. } => Endpoint::MCpu(cube),
        Region::IoCpu { sip, .. } => Endpoint::IoCpu(crate::SipId(sip)),
    }))
}

/// An HBM op's bytes on one pseudo-channel, as the program holds them (one
/// tile's DMA is far below 4 GiB per channel).
pub(crate) fn pc_entry(bytes: u64) -> u32 {
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

/// One command being lowered: where it is, the ops lowered so far, and the
/// ops its work follows (its issue, and what the commands it is ordered
/// after leave for it).
struct At<'g> {
    g: &'g CommandGraph,
    id: CmdId,
    node: &'g Node,
    /// How each earlier command was lowered.
    low: &'g [Lowered],
    /// Its issue op on PE_CPU.
    issue: u32,
    /// Its issue, and the anchors of the commands it is ordered after.
    order: Deps,
}

impl At<'_> {
    /// The op that completes command `v`.
    fn last(&self, v: CmdId) -> u32 {
        self.low[v.index()].last
    }

    /// The op of `v` that tile `j` of `n` waits for: its own tile `j` when
    /// `v` was cut into the same `n` tiles, else all of `v`.
    fn seg_dep(&self, v: CmdId, j: usize, n: usize) -> u32 {
        let l = &self.low[v.index()];
        if l.segs.len() == n && l.gemm_tiles.is_none() {
            l.segs[j]
        } else {
            l.last
        }
    }

    /// `order` and `more`.
    fn order_and(&self, more: impl IntoIterator<Item = u32>) -> Deps {
        let mut d = self.order.clone();
        for x in more {
            d.push(x);
        }
        d
    }
}

/// One DMA of a command: the command whose region it moves, the part it
/// moves, its direction and its label.
struct Dma {
    region: CmdId,
    span: Span,
    write: bool,
    label: Label,
}

/// Rows of a region and rows per elementwise tile of `se` elements: a flat
/// region counts elements, a block whole rows.
fn tile_rows(r: &MemRef, elems: usize, se: usize) -> (usize, usize) {
    match r.view {
        View::Flat { .. } => (elems, se),
        View::Block { .. } => {
            let cols = r.shape.get(1).copied().unwrap_or(1);
            (r.shape[0], (se / cols).max(1))
        }
    }
}

impl LowerCtx<'_> {
    fn dma(&mut self, b: &mut Builder, at: &At, d: Dma, deps: &[u32]) -> Result<u32, CompileError> {
        let Dma {
            region,
            span,
            write,
            label,
        } = d;
        let r = region_of(&at.g.node(region).cmd)
            .expect("a DMA moves a load's, stream's or store's region");
        let runs = span.runs(r);
        let unit = if write { Unit::DmaWb } else { Unit::DmaIn };
        let total: u64 = runs.iter().map(|r| r.1).sum();
        let mut pcs = [0u64; 64];
        let n = (self.spec.hbm_pcs as usize).clamp(1, 64);
        let target =
            resolve(self.machine, self.spec, self.pe, &runs, &mut pcs[..n]).map_err(|err| {
                CompileError::Memory {
                    pe: self.pe,
                    loc: at.node.loc.clone(),
                    err: self.machine.through_param(err, r),
                }
            })?;
        // The bytes per pseudo-channel of an HBM slice, this PE's or another's.
        let split = |b: &mut Builder| {
            let first = b.prog.pc_bytes.len() as u32;
            b.prog.hbm_pcs = n as u32;
            b.prog
                .pc_bytes
                .extend(pcs[..n].iter().map(|&x| pc_entry(x)));
            first
        };
        let kind = match target {
            Target::Hbm => OpKind::Hbm {
                pcs: split(b),
                bytes: total,
                write,
            },
            Target::Remote(ep) => OpKind::Remote {
                route: (self.route)(ep)?,
                pcs: matches!(ep, Endpoint::Hbm(_)).then(|| split(b)),
                bytes: total,
                write,
            },
        };
        let op = b.op(unit, kind, at.id, label, deps);
        b.sites.push(DmaSite { op, region, span });
        Ok(op)
    }

    fn math_ps(&self, elems: usize, passes: usize) -> Ps {
        crate::ids::transfer_ps((elems * passes) as u64, self.spec.math_elems_per_ns())
    }

    /// Lowers one instance's graph.
    pub fn lower(&mut self, g: &CommandGraph) -> Result<PeProgram, CompileError> {
        self.lower_with_sites(g).map(|(prog, ..)| prog)
    }

    /// [`LowerCtx::lower`], with the DMA sites of the program in op order
    /// and how the commands' orders went into its ops.
    pub(crate) fn lower_with_sites(
        &mut self,
        g: &CommandGraph,
    ) -> Result<(PeProgram, Vec<DmaSite>, OrderUse), CompileError> {
        let mut b = Builder {
            prog: PeProgram {
                dep_start: vec![0],
                ..PeProgram::default()
            },
            sites: Vec::new(),
            order: Vec::new(),
            uses: OrderUse {
                at: vec![0],
                rest_at: vec![0],
                ..OrderUse::default()
            },
        };
        // Instances lower to programs of about one size: reserve what the
        // last program lowered on this thread from a graph this long took.
        LAST_SIZE.with(|l| {
            if let Some((len, ops, deps, queues)) = l.get() {
                if len == g.len() {
                    let p = &mut b.prog;
                    p.ops.reserve(ops);
                    p.labels.reserve(ops);
                    p.dep_start.reserve(ops);
                    p.deps.reserve(deps);
                    for (q, n) in p.queues.iter_mut().zip(queues) {
                        q.reserve(n as usize);
                    }
                }
            }
        });
        let mut low: Vec<Lowered> = Vec::with_capacity(g.len());
        // The op PE_CPU waits for before it issues the next command.
        let mut blocking: Option<u32> = None;
        for (id, node) in g.nodes() {
            b.order.clear();
            let issue = b.op(
                Unit::Cpu,
                OpKind::Issue,
                id,
                Label::Whole,
                blocking.as_slice(),
            );
            let mut order = Deps::default();
            order.push(issue);
            for e in g.graph.edges_directed(
                petgraph::graph::NodeIndex::new(id.index()),
                petgraph::Direction::Incoming,
            ) {
                use petgraph::visit::EdgeRef;
                let (d, k) = (CmdId(e.source().index() as u32), *e.weight());
                if k == DepKind::Order {
                    let l = &low[d.index()];
                    order.push(l.anchor.unwrap_or(l.last));
                }
            }
            b.order.clear();
            b.order.extend_from_slice(&order);
            b.uses.lists.extend_from_slice(&order);
            b.uses.at.push(b.uses.lists.len() as u32);
            super::tcm::check_tile_fits(id, node, self.spec, self.pe)?;
            let at = At {
                g,
                id,
                node,
                low: &low,
                issue,
                order,
            };
            let mut lw = self.lower_command(&mut b, &at)?;
            blocking = match &node.cmd {
                Command::Send { .. } => lw.anchor,
                Command::Recv {
                    is_async: false, ..
                }
                | Command::Wait { .. } => Some(lw.segs[0]),
                _ => None,
            };
            lw.last = *lw
                .segs
                .iter()
                .max()
                .expect("every command lowers to at least one op");
            b.prog.ops[lw.last as usize].completes = true;
            b.uses.anchor.push(lw.anchor.unwrap_or(lw.last));
            low.push(lw);
        }
        let (prog, sites, uses) = (b.prog, b.sites, b.uses);
        LAST_SIZE.with(|l| {
            l.set(Some((
                g.len(),
                prog.ops.len(),
                prog.deps.len(),
                prog.queues.each_ref().map(|q| q.len() as u32),
            )))
        });
        Ok((prog, sites, uses))
    }

    /// The ops of one command after its issue.
    fn lower_command(&mut self, b: &mut Builder, at: &At) -> Result<Lowered, CompileError> {
        let mut lw = Lowered::default();
        match &at.node.cmd {
            Command::Load { src, mask } => self.lower_load(b, at, src, mask.as_ref(), &mut lw)?,
            Command::Stream { .. } => lw.segs.push(at.issue),
            Command::Store { dst, value, mask } => {
                self.lower_store(b, at, dst, *value, *mask, &mut lw)?
            }
            Command::Full { .. } | Command::Math { .. } | Command::Arange { .. } => {
                self.lower_elementwise(b, at, &mut lw)
            }
            Command::Reduce { x, .. } | Command::Softmax { x, .. } | Command::Trans { x } => {
                let passes = super::cost::passes(&at.node.cmd, self.spec);
                let in_elems = at.g.node(*x).ty.elems();
                let deps = at.order_and([at.last(*x)]);
                let ps = self.math_ps(in_elems, passes);
                let flops = (in_elems * passes) as u64;
                let kind = OpKind::Fixed { ps, flops };
                lw.segs
                    .push(b.op(Unit::Math, kind, at.id, Label::Whole, &deps));
            }
            Command::Dot {
                a,
                b: bm,
                acc,
                epilogue,
            } => self.lower_dot(b, at, (*a, *bm, *acc), epilogue, &mut lw)?,
            Command::Reshape { x } | Command::Broadcast { x } => {
                // A view of its operand's tile: no engine work.
                let deps = at.order_and([at.last(*x)]);
                lw.segs
                    .push(b.op(Unit::Free, OpKind::Nop, at.id, Label::Whole, &deps));
            }
            Command::Send { peer: _, value } => {
                // PE_CPU waits only for ring slots; the comm DMA sends when the tile is ready.
                let chan = (self.send_chan)(at.id);
                let bytes = at.node.ty.bytes();
                let kind = OpKind::SendGrant { chan, bytes };
                let grant = b.op(Unit::Free, kind, at.id, Label::Whole, &at.order);
                // Packets go out as slots are granted; the in-order comm DMA
                // keeps messages in order. (It waits for the issue, not the
                // order: its dependencies do not start with the order.)
                let deps = [at.last(*value), at.issue];
                let kind = OpKind::Send { chan, bytes };
                lw.segs
                    .push(b.op(Unit::Comm, kind, at.id, Label::Whole, &deps));
                lw.anchor = Some(grant);
            }
            Command::Recv { .. } => {
                let kind = OpKind::Recv {
                    chan: (self.recv_chan)(at.id),
                    bytes: at.node.ty.bytes(),
                };
                lw.segs
                    .push(b.op(Unit::Free, kind, at.id, Label::Whole, &at.order));
            }
            Command::Wait { future } => {
                let deps = at.order_and([at.last(*future)]);
                lw.segs
                    .push(b.op(Unit::Free, OpKind::Nop, at.id, Label::Whole, &deps));
            }
        }
        Ok(lw)
    }

    /// A load: one DMA a tile, each followed by a MATH select when masked.
    fn lower_load(
        &mut self,
        b: &mut Builder,
        at: &At,
        src: &MemRef,
        mask: Option<&LoadMask>,
        lw: &mut Lowered,
    ) -> Result<(), CompileError> {
        let elems = at.node.ty.elems();
        let (rows, per) = tile_rows(src, elems, seg_elems(self.spec));
        let n = rows.div_ceil(per);
        for j in 0..n {
            let (r0, r1) = (j * per, ((j + 1) * per).min(rows));
            let label = Label::Tile(j as u32 + 1, n as u32);
            let dma = Dma {
                region: at.id,
                span: Span::Rows(r0, r1),
                write: false,
                label,
            };
            let op = self.dma(b, at, dma, &at.order)?;
            // A masked load selects each landed tile with the mask on MATH.
            let op = match mask {
                Some(m) => {
                    let e = (r1 - r0) * elems / rows;
                    let ps = self.math_ps(e, super::cost::passes(&at.node.cmd, self.spec));
                    let deps = [op, at.last(m.mask)];
                    let kind = OpKind::Fixed {
                        ps,
                        flops: e as u64,
                    };
                    b.op(Unit::Math, kind, at.id, label, &deps)
                }
                None => op,
            };
            lw.segs.push(op);
        }
        Ok(())
    }

    /// A store: one write-back DMA per output tile of a GEMM, else per
    /// elementwise tile, each after the tile of the value it writes.
    fn lower_store(
        &mut self,
        b: &mut Builder,
        at: &At,
        dst: &MemRef,
        value: CmdId,
        mask: Option<CmdId>,
        lw: &mut Lowered,
    ) -> Result<(), CompileError> {
        // A masked store writes the whole region with byte enables, once its
        // mask is ready.
        let order = at.order_and(mask.map(|m| at.last(m)));
        let vl = &at.low[value.index()];
        if let Some((tm, tn, across)) = vl.gemm_tiles {
            let [m, n] = [dst.shape[0], dst.shape.get(1).copied().unwrap_or(1)];
            for (t, &seg) in vl.segs.iter().enumerate() {
                let (i, j) = (t / across, t % across);
                let rows = (i * tm, ((i + 1) * tm).min(m));
                let cols = (j * tn, ((j + 1) * tn).min(n));
                let mut deps = order.clone();
                deps.push(seg);
                let dma = Dma {
                    region: at.id,
                    span: Span::Block(rows, cols),
                    write: true,
                    label: Label::Out(i as u32, j as u32),
                };
                lw.segs.push(self.dma(b, at, dma, &deps)?);
            }
        } else {
            let (rows, per) = tile_rows(dst, at.node.ty.elems(), seg_elems(self.spec));
            let n = rows.div_ceil(per);
            for j in 0..n {
                let (r0, r1) = (j * per, ((j + 1) * per).min(rows));
                let mut deps = order.clone();
                deps.push(at.seg_dep(value, j, n));
                let dma = Dma {
                    region: at.id,
                    span: Span::Rows(r0, r1),
                    write: true,
                    label: Label::Tile(j as u32 + 1, n as u32),
                };
                lw.segs.push(self.dma(b, at, dma, &deps)?);
            }
        }
        Ok(())
    }

    /// Elementwise work (`full`, `arange`, math): one MATH op a tile, each
    /// after the same tile of its operands.
    fn lower_elementwise(&mut self, b: &mut Builder, at: &At, lw: &mut Lowered) {
        let (node, se) = (at.node, seg_elems(self.spec));
        let elems = node.ty.elems();
        let n = elems.div_ceil(se);
        let operands = node.cmd.operands();
        let passes = super::cost::passes(&node.cmd, self.spec);
        for j in 0..n {
            let e = (elems - j * se).min(se);
            let deps = at.order_and(operands.iter().map(|v| {
                // A broadcast operand's tiles do not line up with the result's.
                if at.g.node(*v).ty.shape == node.ty.shape {
                    at.seg_dep(*v, j, n)
                } else {
                    at.last(*v)
                }
            }));
            let ps = self.math_ps(e, passes);
            let label = Label::Tile(j as u32 + 1, n as u32);
            let kind = OpKind::Fixed {
                ps,
                flops: e as u64,
            };
            lw.segs.push(b.op(Unit::Math, kind, at.id, label, &deps));
        }
    }

    /// A GEMM: its steps over (i, j, k) tiles with the streamed operands'
    /// DMAs in `tcm_buffers` buffers, and an epilogue per output tile.
    fn lower_dot(
        &mut self,
        b: &mut Builder,
        at: &At,
        (a, bm, acc): (CmdId, CmdId, Option<CmdId>),
        epilogue: &[crate::ir::Epilogue],
        lw: &mut Lowered,
    ) -> Result<(), CompileError> {
        let (spec, g, id) = (self.spec, at.g, at.id);
        let ta = &g.node(a).ty;
        let tb = &g.node(bm).ty;
        let (m, k, n) = (ta.shape[0], ta.shape[1], tb.shape[1]);
        let [tm, tk, tn] = spec.gemm_tile.map(|x| x.max(1) as usize);
        let (tm, tk, tn) = (tm.min(m), tk.min(k), tn.min(n));
        let (mi, ki, ni) = (m.div_ceil(tm), k.div_ceil(tk), n.div_ceil(tn));
        let es = ta.dtype.size();
        let peak = spec.gemm_flops_per_ns(es);
        let streamed = |v: CmdId| match &g.node(v).cmd {
            Command::Stream { .. } => Some(v),
            _ => None,
        };
        let (stream_a, stream_b) = (streamed(a), streamed(bm));
        let base: Vec<u32> = at
            .order
            .iter()
            .copied()
            .chain(
                [Some(a), Some(bm), acc]
                    .into_iter()
                    .flatten()
                    .map(|v| at.last(v)),
            )
            .collect();
        // Only the epilogue reads a bias: the GEMM steps need not wait for it.
        let mut epi_deps: Vec<u32> = Vec::new();
        for e in epilogue {
            if let crate::ir::Epilogue::Bias(x) = e {
                epi_deps.push(at.last(*x));
            }
        }
        let bufs = spec.tcm_buffers.max(1) as usize;
        let mut gemm_ops: Vec<u32> = Vec::with_capacity(mi * ni * ki);
        for i in 0..mi {
            for j in 0..ni {
                for kk in 0..ki {
                    let rows = (i * tm, ((i + 1) * tm).min(m));
                    let cols = (j * tn, ((j + 1) * tn).min(n));
                    let ks = (kk * tk, ((kk + 1) * tk).min(k));
                    let step = gemm_ops.len();
                    let mut deps = base.clone();
                    if step >= bufs {
                        deps.push(gemm_ops[step - bufs]);
                    }
                    let mut step_deps = base.clone();
                    let mut fetch = |region: CmdId, span: Span, label| {
                        let dma = Dma {
                            region,
                            span,
                            write: false,
                            label,
                        };
                        self.dma(b, at, dma, &deps)
                    };
                    if let Some(src) = stream_a {
                        let label = Label::A(i as u32, kk as u32);
                        step_deps.push(fetch(src, Span::Block(rows, ks), label)?);
                    }
                    if let Some(src) = stream_b {
                        let label = Label::B(kk as u32, j as u32);
                        step_deps.push(fetch(src, Span::Block(ks, cols), label)?);
                    }
                    let (sm, sk, sn) = (rows.1 - rows.0, ks.1 - ks.0, cols.1 - cols.0);
                    let flops = 2 * (sm * sk * sn) as u64;
                    let compute = (flops as f64 * 1000.0 / peak).ceil() as Ps;
                    let port_bytes = ((sm * sk + sk * sn) * es) as u64;
                    let port = crate::ids::transfer_ps(port_bytes, spec.gemm_tcm_gbps);
                    let label = Label::Step(i as u32, j as u32, kk as u32);
                    let kind = OpKind::Fixed {
                        ps: compute.max(port),
                        flops,
                    };
                    let op = b.op(Unit::Gemm, kind, id, label, &step_deps);
                    gemm_ops.push(op);
                    if kk + 1 == ki {
                        let seg = if epilogue.is_empty() {
                            op
                        } else {
                            let e = sm * sn;
                            let passes = super::cost::epilogue_passes(epilogue, spec);
                            let ps = self.math_ps(e, passes);
                            let flops = (e * passes) as u64;
                            let label = Label::Epilogue(i as u32, j as u32);
                            epi_deps.push(op);
                            let kind = OpKind::Fixed { ps, flops };
                            let seg = b.op(Unit::Math, kind, id, label, &epi_deps);
                            epi_deps.pop();
                            seg
                        };
                        lw.segs.push(seg);
                    }
                }
            }
        }
        lw.gemm_tiles = Some((tm, tn, ni));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudo_channels_split_by_burst() {
        let plain = PeSpec {
            hbm_pc_hash: false,
            ..PeSpec::default()
        };
        let mut pcs = [0u64; 8];
        add_pc_bytes(&plain, 0, 4096, &mut pcs);
        assert_eq!(pcs, [512; 8]);
        let mut pcs = [0u64; 8];
        add_pc_bytes(&plain, 0, 256, &mut pcs);
        assert_eq!(pcs, [256, 0, 0, 0, 0, 0, 0, 0]);
        let mut pcs = [0u64; 8];
        add_pc_bytes(&plain, 128, 256, &mut pcs);
        assert_eq!(pcs, [128, 128, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn hashing_spreads_a_strided_column_over_every_channel() {
        // 128 rows of 256 B at a 2 KiB pitch: one channel without hashing, all eight with it.
        for (hash, used) in [(false, 1), (true, 8)] {
            let spec = PeSpec {
                hbm_pc_hash: hash,
                ..PeSpec::default()
            };
            let mut pcs = [0u64; 8];
            for r in 0..128u64 {
                add_pc_bytes(&spec, r * 2048, 256, &mut pcs);
            }
            assert_eq!(pcs.iter().filter(|b| **b > 0).count(), used, "{pcs:?}");
            assert_eq!(pcs.iter().sum::<u64>(), 128 * 256);
        }
    }

    #[test]
    fn whole_groups_match_the_burst_walk() {
        let spec = PeSpec::default();
        for (pa, len) in [(0u64, 1u64 << 16), (100, 70_000), (2048 * 3 + 17, 5000)] {
            let mut fast = [0u64; 8];
            add_pc_bytes(&spec, pa, len, &mut fast);
            let mut slow = [0u64; 8];
            let mut x = pa;
            while x < pa + len {
                let n = (256 - x % 256).min(pa + len - x);
                slow[spec.hbm_pc(x)] += n;
                x += n;
            }
            assert_eq!(fast, slow);
        }
    }
}
