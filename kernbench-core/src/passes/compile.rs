//! The pass manager: from a launch to runnable programs. Every instance is
//! traced ([`super::trace`], with [`super::fuse`]), lowered
//! ([`super::lower`]) and given its TCM plan ([`super::tcm`]) straight away,
//! over the machine's cores, keeping of each graph only what later steps
//! need when the run asks for neither data nor a trace; then the launch is
//! paired ([`super::pair`]) and routed ([`super::route`]).
//!
//! When no graph is kept, instances whose graphs have one shape
//! ([`super::shape`]: equal but for addresses and peers) are lowered once:
//! from the second instance of a shape on, a template is kept, and later
//! instances of that shape take its program and resolve only its DMAs on
//! their own regions. An instance whose DMA reaches another kind of memory
//! than the template's is lowered on its own. [`bound_programs`] compiles
//! both ways, and the tests hold every instance of every registry algorithm
//! and of the shipped kernels to the same program.
//!
//! Lowering happens before pairing, so its ops name channels and remote
//! routes by per-instance indices; [`compile`] resolves them once every
//! instance is paired. Errors keep their order of precedence: the first trace
//! error in instance order, then pairing, then the first lowering error, then
//! the first route in instance order the topology cannot give.

use super::error::CompileError;
use super::lower::{
    pc_entry, region_of, resolve, DepPatch, DmaSite, LowerCtx, OpKind, OrderUse, PeProgram, Target,
};
use super::pair::{self, Channels, CommList};
use super::route::{self, RemoteRoute, Remotes, RouteTable};
use super::shape::{same_shape, shape_hash};
use super::tcm;
use super::trace::{check_launch, trace_one, CmdTable};
use crate::ir::{CmdId, CommandGraph};
use crate::machine::Machine;
use crate::program::{Launch, Progress};
use crate::topology::{Endpoint, Route};
use crate::PeId;
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// What one instance adds to a program it may share with others: the
/// channel of its k-th send or receive, the route of its k-th remote
/// endpoint, the split over HBM pseudo-channels of its k-th HBM op (a
/// row of the run's [`PcTable`]), and its dependencies where they differ
/// from the shared program's.
#[derive(Clone, Debug, Default)]
pub(crate) struct Binding {
    pub(crate) chans: Vec<u32>,
    pub(crate) routes: Vec<u32>,
    pub(crate) pcs: PcRows,
    pub(crate) deps: DepPatch,
}

/// The [`PcTable`] row of each HBM op of an instance, in op order.
///
/// Instances whose HBM ops split alike hold one list between them, and a
/// list of one row is held as that row: the engine then reads an HBM op's
/// row from a list every instance reads (or from the instance itself), not
/// from a list of its own that at 4096 PEs is rarely cached, and the run
/// keeps four bytes per HBM op once, not for every instance.
#[derive(Clone, Debug)]
pub(crate) enum PcRows {
    /// `len` ops, each on row `row`.
    Same { row: u32, len: usize },
    /// Each op's row, in a list shared with the instances that split alike.
    Each(Arc<[u32]>),
}

impl Default for PcRows {
    fn default() -> Self {
        PcRows::Same { row: 0, len: 0 }
    }
}

impl PcRows {
    /// The row of the `k`-th HBM op.
    pub(crate) fn get(&self, k: usize) -> u32 {
        match self {
            PcRows::Same { row, len } => {
                debug_assert!(k < *len, "HBM op {k} of {len}");
                *row
            }
            PcRows::Each(rows) => rows[k],
        }
    }

    /// Each op's row, in op order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        let len = match self {
            PcRows::Same { len, .. } => *len,
            PcRows::Each(rows) => rows.len(),
        };
        (0..len).map(|k| self.get(k))
    }
}

/// Makes [`PcRows`], sharing equal lists.
#[derive(Default)]
pub(crate) struct PcRowsInterner(rustc_hash::FxHashSet<Arc<[u32]>>);

impl PcRowsInterner {
    /// The rows `rows`, held once when they are all one, else in the list
    /// equal to them that an earlier instance holds.
    pub(crate) fn rows(&mut self, rows: &[u32]) -> PcRows {
        match rows.first() {
            None => PcRows::default(),
            Some(&row) if rows.iter().all(|&r| r == row) => PcRows::Same {
                row,
                len: rows.len(),
            },
            Some(_) => {
                if let Some(list) = self.0.get(rows) {
                    return PcRows::Each(Arc::clone(list));
                }
                let list: Arc<[u32]> = rows.into();
                self.0.insert(Arc::clone(&list));
                PcRows::Each(list)
            }
        }
    }

    /// `rows` with each row renumbered by `to` (into another table's numbering).
    fn renumber(&mut self, rows: &PcRows, to: &[u32]) -> PcRows {
        match rows {
            PcRows::Same { row, len } => PcRows::Same {
                row: to[*row as usize],
                len: *len,
            },
            PcRows::Each(list) => {
                let moved: Vec<u32> = list.iter().map(|&r| to[r as usize]).collect();
                self.rows(&moved)
            }
        }
    }
}

/// The distinct splits of an HBM op's bytes over the pseudo-channels in a
/// run, one row of `n` entries each. Most DMAs of a run split alike (a
/// whole number of channel groups), so the table stays small and hot while
/// each HBM op of each instance holds one row index.
#[derive(Clone, Debug, Default)]
pub(crate) struct PcTable {
    /// Pseudo-channels per row.
    pub(crate) n: usize,
    /// Bytes on each channel, row after row.
    pub(crate) bytes: Vec<u32>,
    rows: FxHashMap<Box<[u32]>, u32>,
}

impl PcTable {
    fn new(n: usize) -> Self {
        PcTable {
            n: n.max(1),
            ..PcTable::default()
        }
    }

    /// The row holding `split`, added when new.
    fn row(&mut self, split: &[u32]) -> u32 {
        if let Some(&r) = self.rows.get(split) {
            return r;
        }
        let r = (self.bytes.len() / self.n) as u32;
        self.bytes.extend_from_slice(split);
        self.rows.insert(split.into(), r);
        r
    }

    /// Bytes per channel of row `r`.
    pub(crate) fn split(&self, r: u32) -> &[u32] {
        let at = r as usize * self.n;
        &self.bytes[at..at + self.n]
    }

    /// Rows.
    pub(crate) fn len(&self) -> usize {
        self.bytes.len() / self.n
    }

    /// Moves the rows of `local` in and gives, for each of its rows, the row here.
    fn merge(&mut self, local: &PcTable) -> Vec<u32> {
        (0..local.len() as u32)
            .map(|r| self.row(local.split(r)))
            .collect()
    }
}

/// A program lowered for one instance, ready for others whose graphs have
/// its graph's shape ([`super::shape`]): they share it once its DMA sites
/// resolve on their own regions as they did on this one's.
pub(crate) struct Template {
    /// The graph it was lowered from, to compare shapes with.
    graph: CommandGraph,
    prog: Arc<PeProgram>,
    /// Its dependencies where they differ from `prog`'s.
    deps: DepPatch,
    sites: Vec<DmaSite>,
    /// How its commands' orders went into its ops.
    uses: OrderUse,
    /// Its graph's ordering edges ([`shape_hash`]).
    order_edges: Vec<(u32, u32)>,
}

impl Template {
    /// The dependencies of an instance whose graph has this template's
    /// shape and the ordering edges `edges`, where they differ from the
    /// shared program's: the template's own, with the ops that take a
    /// command's order given the instance's order.
    fn deps_for(&self, edges: &[(u32, u32)]) -> DepPatch {
        if edges == self.order_edges {
            return self.deps.clone();
        }
        let changed = self.uses.patch(edges, &self.prog);
        // Both lists are in op order: merge them, the changed lists first.
        let mut out = DepPatch::default();
        let mut own = self.deps.iter().peekable();
        for (op, deps) in &changed {
            while let Some((o, d)) = own.next_if(|(o, _)| o < op) {
                out.push(o, d);
            }
            own.next_if(|(o, _)| o == op);
            if deps.as_slice() != self.prog.deps_of(*op as usize) {
                out.push(*op, deps);
            }
        }
        for (o, d) in own {
            out.push(o, d);
        }
        out
    }
}

/// The templates of a launch by shape hash, and the shapes seen once.
#[derive(Default)]
struct Shapes {
    kept: FxHashMap<u64, Vec<Arc<Template>>>,
    /// Shapes seen once: a template is kept from the second instance of a
    /// shape on, so a launch whose instances all differ keeps no graph.
    once: rustc_hash::FxHashSet<u64>,
    /// Commands in the kept templates' graphs.
    commands: usize,
}

/// The most commands the templates of one launch keep in their graphs
/// (tens of MiB): past it, further shapes lower instance by instance.
pub(crate) const TEMPLATE_COMMANDS: usize = 1 << 18;

/// Lowered programs by content: instances whose programs are the same
/// template share one, each with the dependencies where its own differ.
/// Graphs of one shape are lowered once ([`Template`]), unless the
/// interner lowers every instance (`lower_each`, the reference the shared
/// path is tested against).
#[derive(Default)]
pub(crate) struct Interner {
    by_hash: std::sync::Mutex<FxHashMap<u64, Vec<Arc<PeProgram>>>>,
    by_shape: std::sync::Mutex<Shapes>,
    lower_each: bool,
}

impl Interner {
    /// The template of `g`'s shape (hash `h`), if one was lowered.
    ///
    /// The graphs are compared after the lock is released: a comparison
    /// reads both graphs whole, and under the lock it would keep every
    /// other compiling thread from its own lookup.
    fn template(&self, h: u64, g: &CommandGraph) -> Option<Arc<Template>> {
        if self.lower_each {
            return None;
        }
        let candidates: smallvec::SmallVec<[Arc<Template>; 2]> = {
            let shapes = self.by_shape.lock().unwrap_or_else(|p| p.into_inner());
            shapes.kept.get(&h)?.iter().cloned().collect()
        };
        candidates.into_iter().find(|t| same_shape(&t.graph, g))
    }

    /// Keeps a template for `g`'s shape (hash `h`) when the shape was seen
    /// before, none is kept, and the templates' budget allows.
    fn keep_template(&self, h: u64, g: &CommandGraph, make: impl FnOnce(CommandGraph) -> Template) {
        if self.lower_each {
            return;
        }
        let mut shapes = self.by_shape.lock().unwrap_or_else(|p| p.into_inner());
        if shapes.once.insert(h) || shapes.commands + g.len() > TEMPLATE_COMMANDS {
            return;
        }
        let list = shapes.kept.entry(h).or_default();
        if !list.iter().any(|t| same_shape(&t.graph, g)) {
            list.push(Arc::new(make(g.clone())));
            shapes.commands += g.len();
        }
    }

    fn intern(&self, prog: PeProgram) -> (Arc<PeProgram>, DepPatch) {
        let h = prog.template_hash();
        let found = {
            let map = self.by_hash.lock().unwrap_or_else(|p| p.into_inner());
            map.get(&h)
                .and_then(|l| l.iter().find(|p| p.same_template(&prog)))
                .cloned()
        };
        if let Some(p) = found {
            let patch = p.dep_patch(&prog);
            return (p, patch);
        }
        let mut map = self.by_hash.lock().unwrap_or_else(|p| p.into_inner());
        let list = map.entry(h).or_default();
        // Another thread may have added an equal template meanwhile.
        if let Some(p) = list.iter().find(|p| p.same_template(&prog)) {
            let p = Arc::clone(p);
            drop(map);
            let patch = p.dep_patch(&prog);
            return (p, patch);
        }
        let p = Arc::new(prog);
        list.push(Arc::clone(&p));
        (p, DepPatch::default())
    }
}

/// One instance, traced and lowered.
pub(crate) struct Instance {
    pub(crate) prog: Arc<PeProgram>,
    /// Its dependencies where they differ from `prog`'s.
    pub(crate) deps: DepPatch,
    /// The instance's own splits, and the row of each of its HBM ops.
    pc_rows: PcTable,
    pcs: Vec<u32>,
    pub(crate) comm: CommList,
    pub(crate) table: CmdTable,
    graph: Option<CommandGraph>,
    /// The remote endpoints its DMAs reach, by the index its ops hold.
    remote: Remotes,
    lower_err: Option<CompileError>,
    /// Lowered on its own, not from a template.
    lowered: bool,
}

/// A launch compiled for the engine.
pub(crate) struct Compiled {
    /// Each instance's program (shared among equal ones unless graphs are kept).
    pub(crate) programs: Vec<Arc<PeProgram>>,
    /// Each instance's channels, routes and HBM bytes.
    pub(crate) bindings: Vec<Binding>,
    pub(crate) tables: Vec<CmdTable>,
    /// The graphs, when the launch executes data or keeps a trace; else empty.
    pub(crate) graphs: Vec<CommandGraph>,
    pub(crate) channels: Channels,
    /// The route of each channel, by channel.
    pub(crate) chan_routes: Vec<Route>,
    /// Routes of remote DMAs, by the index their ops hold.
    pub(crate) routes: Vec<RemoteRoute>,
    /// The memory each of `routes` leads to.
    pub(crate) route_ends: Vec<Endpoint>,
    /// The HBM splits the bindings name.
    pub(crate) pcs: PcTable,
    /// Instances lowered on their own (the others took a template's program).
    pub(crate) lowered: usize,
}

impl Compiled {
    /// Appends the instances of another launch, compiled on its own, after
    /// these (for a run of several launches): its instances, channels and
    /// routes are numbered after this one's, and its HBM splits join the
    /// table.
    pub(crate) fn append(&mut self, other: Compiled) {
        let inst_base = self.programs.len();
        let chan_base = self.channels.list.len() as u32;
        let route_base = self.routes.len() as u32;
        if self.pcs.len() == 0 {
            self.pcs.n = other.pcs.n;
        }
        let rows = self.pcs.merge(&other.pcs);
        let mut pc_rows = PcRowsInterner::default();
        self.programs.extend(other.programs);
        self.bindings
            .extend(other.bindings.into_iter().map(|mut b| {
                b.chans.iter_mut().for_each(|c| *c += chan_base);
                b.routes.iter_mut().for_each(|r| *r += route_base);
                b.pcs = pc_rows.renumber(&b.pcs, &rows);
                b
            }));
        self.tables.extend(other.tables);
        self.graphs.extend(other.graphs);
        let ch = other.channels;
        self.channels.list.extend(ch.list.into_iter().map(|mut c| {
            c.src += inst_base;
            c.dst += inst_base;
            c
        }));
        self.channels
            .of_comm
            .extend(ch.of_comm.into_iter().map(|mut l| {
                l.iter_mut().for_each(|c| *c += chan_base);
                l
            }));
        self.channels.comm_cmds.extend(ch.comm_cmds);
        self.chan_routes.extend(other.chan_routes);
        self.lowered += other.lowered;
        self.routes.extend(other.routes);
        self.route_ends.extend(other.route_ends);
    }
}

/// Runs `f` on every index of `0..n` over the machine's cores, in contiguous
/// chunks, and returns the results in index order.
pub(crate) fn par_map<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    par_map_grain(n, 16, f)
}

/// [`par_map`] with at least `grain` indices a thread: a small `grain` for
/// few heavy items.
pub(crate) fn par_map_grain<T: Send>(
    n: usize,
    grain: usize,
    f: impl Fn(usize) -> T + Sync,
) -> Vec<T> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .min(n.div_ceil(grain.max(1)))
        .max(1);
    if threads == 1 {
        return (0..n).map(f).collect();
    }
    let per = n.div_ceil(threads);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .step_by(per)
            .map(|from| scope.spawn(move || (from..(from + per).min(n)).map(f).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

/// What a template's DMA sites give on another instance's graph: its HBM
/// splits (and the row of each HBM op) and its remote endpoints. `None`
/// when a site resolves otherwise than in the template (another kind of
/// memory, another order of endpoints) or fails: that instance is lowered
/// on its own, which also reports the failure as lowering would.
fn rebind(
    machine: &Machine,
    pe: PeId,
    t: &Template,
    g: &CommandGraph,
) -> Option<(PcTable, Vec<u32>, Remotes)> {
    let spec = machine.topology().pe_spec();
    let mut pc_rows = PcTable::new(t.prog.hbm_pcs as usize);
    let n = (spec.hbm_pcs as usize).clamp(1, 64);
    let mut pcs = Vec::new();
    let mut remote = Remotes::default();
    let mut split = [0u64; 64];
    let mut row = [0u32; 64];
    for site in &t.sites {
        let r = region_of(&g.node(site.region).cmd)?;
        let runs = site.span.runs(r);
        split[..n].fill(0);
        let target = resolve(machine, spec, pe, &runs, &mut split[..n]).ok()?;
        let at = match (target, t.prog.ops[site.op as usize].kind) {
            (Target::Hbm, OpKind::Hbm { pcs: at, .. }) => Some(at),
            (Target::Remote(ep), OpKind::Remote { route, pcs: at, .. })
                if remote.index(ep) == route && matches!(ep, Endpoint::Hbm(_)) == at.is_some() =>
            {
                at
            }
            _ => return None,
        };
        // The split of an HBM slice: the template's op holds the next row.
        if let Some(at) = at {
            if at as usize != pcs.len() * n {
                return None;
            }
            for (e, &b) in row.iter_mut().zip(&split[..n]) {
                *e = pc_entry(b);
            }
            pcs.push(pc_rows.row(&row[..n]));
        }
    }
    Some((pc_rows, pcs, remote))
}

/// Traces instance `i`, lowers it and plans its TCM; or, when an instance
/// of its graph's shape was lowered already, shares that program and
/// resolves only its DMAs ([`rebind`]).
pub(crate) fn compile_instance(
    machine: &Machine,
    launch: &Launch,
    i: usize,
    keep_graph: bool,
    interner: &Interner,
) -> Result<Instance, CompileError> {
    let pe = launch.pes[i];
    let g = trace_one(machine.topology(), launch, i)?;
    let comm = pair::comm_of(&g);
    let shape = (!keep_graph).then(|| shape_hash(&g));
    if let Some((h, edges)) = &shape {
        if let Some(t) = interner.template(*h, &g) {
            if let Some((pc_rows, pcs, remote)) = rebind(machine, pe, &t, &g) {
                return Ok(Instance {
                    prog: Arc::clone(&t.prog),
                    deps: t.deps_for(edges),
                    pc_rows,
                    pcs,
                    table: CmdTable::of(&g),
                    graph: None,
                    comm,
                    remote,
                    lower_err: None,
                    lowered: false,
                });
            }
        }
    }
    // Channels are not known yet: ops name the k-th send or receive.
    let mut local = vec![u32::MAX; g.len()];
    for (k, c) in comm.cmds.iter().enumerate() {
        local[c.id.index()] = k as u32;
    }
    let chan = |c: CmdId| local[c.index()];
    let mut remote = Remotes::default();
    let mut route = |ep: Endpoint| -> Result<u32, CompileError> { Ok(remote.index(ep)) };
    let spec = machine.topology().pe_spec();
    let mut ctx = LowerCtx {
        machine,
        spec,
        pe,
        send_chan: &chan,
        recv_chan: &chan,
        route: &mut route,
    };
    let lowered = ctx
        .lower_with_sites(&g)
        .and_then(|(mut prog, sites, uses)| {
            tcm::plan_tcm(&g, spec, pe)?.write_into(&mut prog);
            Ok((prog, sites, uses))
        });
    let (mut prog, sites, uses, lower_err) = match lowered {
        Ok((p, sites, uses)) => (p, sites, uses, None),
        Err(e) => (
            PeProgram::default(),
            Vec::new(),
            OrderUse::default(),
            Some(e),
        ),
    };
    let mut pc_rows = PcTable::new(prog.hbm_pcs as usize);
    let pcs: Vec<u32> = prog
        .pc_bytes
        .chunks(pc_rows.n)
        .map(|split| pc_rows.row(split))
        .collect();
    let (prog, deps) = if keep_graph {
        (Arc::new(prog), DepPatch::default())
    } else {
        prog.strip();
        prog.pc_bytes = Vec::new();
        interner.intern(prog)
    };
    if let (Some((h, order_edges)), None) = (shape, &lower_err) {
        interner.keep_template(h, &g, |graph| Template {
            graph,
            prog: Arc::clone(&prog),
            deps: deps.clone(),
            sites,
            uses,
            order_edges,
        });
    }
    Ok(Instance {
        prog,
        deps,
        pc_rows,
        pcs,
        table: CmdTable::of(&g),
        graph: keep_graph.then_some(g),
        comm,
        remote,
        lower_err,
        lowered: true,
    })
}

/// The program of one instance with its channels, routes and HBM splits
/// written in (the form a reader outside the engine expects); copied only
/// when shared.
pub(crate) fn bound_program(prog: Arc<PeProgram>, b: Binding, table: &PcTable) -> PeProgram {
    let mut p = Arc::try_unwrap(prog).unwrap_or_else(|shared| (*shared).clone());
    for op in &mut p.ops {
        match &mut op.kind {
            OpKind::SendGrant { chan, .. }
            | OpKind::Send { chan, .. }
            | OpKind::Recv { chan, .. } => {
                *chan = b.chans[*chan as usize];
            }
            OpKind::Remote { route, .. } => *route = b.routes[*route as usize],
            _ => {}
        }
    }
    if !b.deps.is_empty() {
        let (mut dep_start, mut deps) = (vec![0u32], Vec::with_capacity(p.deps.len()));
        for i in 0..p.ops.len() {
            deps.extend_from_slice(b.deps.get(i as u32).unwrap_or(p.deps_of(i)));
            dep_start.push(deps.len() as u32);
        }
        (p.dep_start, p.deps) = (dep_start, deps);
    }
    p.pc_bytes = b.pcs.iter().flat_map(|r| table.split(r)).copied().collect();
    p
}

/// Traces, lowers, plans, pairs and routes every instance of a launch.
pub(crate) fn compile(machine: &Machine, launch: &Launch) -> Result<Compiled, CompileError> {
    let keep = launch.data || launch.trace || launch.keep_graphs;
    compile_with(machine, launch, keep, Interner::default())
}

/// Every instance's program as the engine runs it (channels, routes and
/// HBM splits written in) and the memory each route leads to, compiled as a
/// run that keeps no graphs compiles it: graphs of one shape lowered once.
/// With `lower_each`, every instance is lowered on its own instead: the
/// reference the shared path must equal.
#[doc(hidden)]
pub fn bound_programs(
    machine: &Machine,
    launch: &Launch,
    lower_each: bool,
) -> Result<(Vec<PeProgram>, Vec<Endpoint>), CompileError> {
    let interner = Interner {
        lower_each,
        ..Interner::default()
    };
    let c = compile_with(machine, launch, false, interner)?;
    Ok((bound_all(c.programs, c.bindings, &c.pcs), c.route_ends))
}

/// How many instances of `launch` a run that keeps no graphs lowers on
/// their own: the others take the program of a graph of their shape.
#[doc(hidden)]
pub fn lowered_alone(machine: &Machine, launch: &Launch) -> Result<usize, CompileError> {
    compile_with(machine, launch, false, Interner::default()).map(|c| c.lowered)
}

/// Every instance's [`bound_program`].
fn bound_all(
    programs: Vec<Arc<PeProgram>>,
    bindings: Vec<Binding>,
    table: &PcTable,
) -> Vec<PeProgram> {
    programs
        .into_iter()
        .zip(bindings)
        .map(|(p, b)| bound_program(p, b, table))
        .collect()
}

/// A launch compiled but not run, with everything kept for reading: what
/// `kernbench graph --after pair|tcm|lower` prints.
pub struct Compilation {
    /// The launch's PEs, instance 0 first.
    pub pes: Vec<PeId>,
    /// Every instance's graph, as a run simulates it (fused when the launch fuses).
    pub graphs: Vec<CommandGraph>,
    /// The channels pairing gave, with the command of each send and receive.
    pub channels: Channels,
    /// Every instance's program with its channels, routes and HBM splits
    /// written in, and its labels and TCM plan.
    pub programs: Vec<PeProgram>,
}

/// Runs every pass on a launch, as a run would, and keeps what each gave.
pub fn inspect(machine: &Machine, launch: &Launch) -> Result<Compilation, CompileError> {
    let c = compile_with(machine, launch, true, Interner::default())?;
    let programs = bound_all(c.programs, c.bindings, &c.pcs);
    Ok(Compilation {
        pes: launch.pes.clone(),
        graphs: c.graphs,
        channels: c.channels,
        programs,
    })
}

/// [`compile`], keeping every graph and full program when `keep`.
fn compile_with(
    machine: &Machine,
    launch: &Launch,
    keep: bool,
    interner: Interner,
) -> Result<Compiled, CompileError> {
    let topo = machine.topology();
    check_launch(topo, launch)?;
    let (n, done) = (launch.pes.len(), std::sync::atomic::AtomicUsize::new(0));
    let step = (n / 100).max(1);
    let units: Vec<Result<Instance, CompileError>> = par_map(n, |i| {
        let u = compile_instance(machine, launch, i, keep, &interner);
        let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if d % step == 0 || d == n {
            launch
                .progress
                .report(Progress::Compiled { done: d, of: n });
        }
        u
    });
    let mut units: Vec<Instance> = units.into_iter().collect::<Result<_, _>>()?;
    let comms: Vec<CommList> = units
        .iter_mut()
        .map(|u| std::mem::take(&mut u.comm))
        .collect();
    let mut channels = pair::pair_comm_with(&launch.pes, &comms, launch.neighbors.as_ref(), keep)?;
    drop(comms);
    // Each instance's k-th send or receive, as a channel.
    let mut local_chans: Vec<Vec<u32>> = if keep {
        channels.of_comm.clone()
    } else {
        // Only data execution and traces look channels up by command (and
        // pairing gave no commands); the ops carry their channels.
        std::mem::take(&mut channels.of_comm)
    };
    if let Some(e) = units.iter_mut().find_map(|u| u.lower_err.take()) {
        return Err(e);
    }
    let mut routes = RouteTable::default();
    let mut out = Compiled {
        programs: Vec::with_capacity(units.len()),
        bindings: Vec::with_capacity(units.len()),
        tables: Vec::with_capacity(units.len()),
        graphs: Vec::new(),
        channels,
        chan_routes: Vec::new(),
        routes: Vec::new(),
        route_ends: Vec::new(),
        pcs: PcTable::new((topo.pe_spec().hbm_pcs as usize).clamp(1, 64)),
        lowered: units.iter().filter(|u| u.lowered).count(),
    };
    let mut pc_rows = PcRowsInterner::default();
    let mut row_scratch = Vec::new();
    for (i, u) in units.into_iter().enumerate() {
        let pe = launch.pes[i];
        let chans = std::mem::take(&mut local_chans[i]);
        let routes_of = routes.bind(topo, pe, &u.remote)?;
        let rows = out.pcs.merge(&u.pc_rows);
        out.programs.push(u.prog);
        out.bindings.push(Binding {
            chans,
            routes: routes_of,
            pcs: {
                row_scratch.clear();
                row_scratch.extend(u.pcs.iter().map(|&r| rows[r as usize]));
                pc_rows.rows(&row_scratch)
            },
            deps: u.deps,
        });
        out.tables.push(u.table);
        if let Some(g) = u.graph {
            out.graphs.push(g);
        }
    }
    (out.routes, out.route_ends) = routes.into_parts();
    out.chan_routes = route::channel_routes(topo, &launch.pes, &out.channels)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pc_rows_hold_one_row_once_and_share_equal_lists() {
        let mut interner = PcRowsInterner::default();
        let same = interner.rows(&[3, 3, 3]);
        assert!(matches!(same, PcRows::Same { row: 3, len: 3 }));
        assert_eq!(same.iter().collect::<Vec<_>>(), [3, 3, 3]);
        let empty = interner.rows(&[]);
        assert_eq!(empty.iter().count(), 0);

        let (a, b) = (interner.rows(&[0, 1, 1, 2]), interner.rows(&[0, 1, 1, 2]));
        let (PcRows::Each(la), PcRows::Each(lb)) = (&a, &b) else {
            panic!("rows that differ are held as a list");
        };
        assert!(Arc::ptr_eq(la, lb), "equal lists are one list");
        assert_eq!((0..4).map(|k| b.get(k)).collect::<Vec<_>>(), [0, 1, 1, 2]);
        let c = interner.rows(&[0, 1, 2, 2]);
        assert_eq!(c.iter().collect::<Vec<_>>(), [0, 1, 2, 2]);

        // Renumbered into another table: 0 -> 5, 1 -> 5, 2 -> 7.
        let to = [5, 5, 7, 9];
        let moved = interner.renumber(&a, &to);
        assert_eq!(moved.iter().collect::<Vec<_>>(), [5, 5, 5, 7]);
        let ones = interner.rows(&[1, 1]);
        let moved_same = interner.renumber(&ones, &to);
        assert!(matches!(moved_same, PcRows::Same { row: 5, len: 2 }));
        let zero_one = interner.rows(&[0, 1]);
        let all_five = interner.renumber(&zero_one, &to);
        assert!(
            matches!(all_five, PcRows::Same { row: 5, len: 2 }),
            "rows that become one are held as one"
        );
    }
}
