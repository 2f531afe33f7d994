//! From a launch to runnable programs: trace every instance and lower it
//! straight away, over the machine's cores, keeping of each graph only what
//! later steps need when the run asks for neither data nor a trace.
//!
//! Lowering happens before pairing, so its ops name channels and remote
//! routes by per-instance indices; [`compile`] resolves them once every
//! instance is paired. Errors keep their order of precedence: the first trace
//! error in instance order, then pairing, then the first lowering error.

use super::error::{LaunchError, SimError};
use super::lower::{DepPatch, LowerCtx, OpKind, PeProgram};
use super::pairing::{self, Channels, CommList};
use super::{grid_pos, Launch};
use crate::ir::{CmdId, CommandGraph, Dir, Peer, SrcLoc, TraceLimits};
use crate::machine::Machine;
use crate::topology::{Endpoint, Route, Topology};
use crate::PeId;
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// What error and deadlock reports need of each command of an instance once
/// its graph is gone: its location, mnemonic and peer (4 bytes a command,
/// plus one entry per distinct location and mnemonic, and one per command
/// that addresses a rank).
#[derive(Clone, Debug, Default)]
pub struct CmdTable {
    locs: Vec<SrcLoc>,
    names: Vec<&'static str>,
    /// (location, mnemonic, direction, `RANK` or `NO_DIR`) of each command.
    cmds: Vec<(u16, u8, u8)>,
    /// The rank each `RANK` command addresses, by command, in command order.
    ranks: Vec<(CmdId, u64)>,
}

const NO_DIR: u8 = u8::MAX;
const RANK: u8 = u8::MAX - 1;

impl CmdTable {
    /// The table of a graph.
    pub fn of(g: &CommandGraph) -> Self {
        let mut t = CmdTable::default();
        let mut loc_ix: FxHashMap<&SrcLoc, u16> = FxHashMap::default();
        for (id, node) in g.nodes() {
            let l = match loc_ix.get(&node.loc) {
                Some(&l) => l,
                None => {
                    // Past 65535 distinct lines, the last one stands for the rest.
                    let l = t.locs.len().min(u16::MAX as usize) as u16;
                    if (l as usize) == t.locs.len() {
                        t.locs.push(node.loc.clone());
                    }
                    loc_ix.insert(&node.loc, l);
                    l
                }
            };
            let name = node.cmd.mnemonic();
            let m = match t.names.iter().position(|n| *n == name) {
                Some(m) => m,
                None => {
                    t.names.push(name);
                    t.names.len() - 1
                }
            } as u8;
            let dir = match &node.cmd {
                crate::ir::Command::Send { peer, .. } | crate::ir::Command::Recv { peer, .. } => {
                    match peer {
                        Peer::Dir(d) => d.index() as u8,
                        Peer::Rank(r) => {
                            t.ranks.push((id, *r));
                            RANK
                        }
                    }
                }
                _ => NO_DIR,
            };
            t.cmds.push((l, m, dir));
        }
        t
    }

    /// Where command `c` was written.
    pub fn loc(&self, c: CmdId) -> &SrcLoc {
        &self.locs[self.cmds[c.index()].0 as usize]
    }

    /// Its mnemonic (`load`, `send`, ...).
    pub fn mnemonic(&self, c: CmdId) -> &'static str {
        self.names[self.cmds[c.index()].1 as usize]
    }

    /// The peer of a send or receive.
    pub fn peer(&self, c: CmdId) -> Option<Peer> {
        match self.cmds[c.index()].2 {
            NO_DIR => None,
            RANK => {
                let k = self.ranks.binary_search_by_key(&c, |(id, _)| *id).ok()?;
                Some(Peer::Rank(self.ranks[k].1))
            }
            d => Some(Peer::Dir(Dir::ALL[d as usize])),
        }
    }

    /// Commands.
    pub fn len(&self) -> usize {
        self.cmds.len()
    }

    /// `true` for an empty graph.
    pub fn is_empty(&self) -> bool {
        self.cmds.is_empty()
    }
}

/// What one instance adds to a program it may share with others: the
/// channel of its k-th send or receive, the route of its k-th remote
/// endpoint, the split over HBM pseudo-channels of its k-th HBM op (a
/// row of the run's [`PcTable`]), and its dependencies where they differ
/// from the shared program's.
#[derive(Clone, Debug, Default)]
pub(crate) struct Binding {
    pub(crate) chans: Vec<u32>,
    pub(crate) routes: Vec<u32>,
    pub(crate) pcs: Vec<u32>,
    pub(crate) deps: DepPatch,
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

/// Lowered programs by content: instances whose programs are the same
/// template share one, each with the dependencies where its own differ.
#[derive(Default)]
struct Interner {
    by_hash: std::sync::Mutex<FxHashMap<u64, Vec<Arc<PeProgram>>>>,
}

impl Interner {
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
struct Unit {
    prog: Arc<PeProgram>,
    /// Its dependencies where they differ from `prog`'s.
    deps: DepPatch,
    /// The instance's own splits, and the row of each of its HBM ops.
    pc_rows: PcTable,
    pcs: Vec<u32>,
    comm: CommList,
    table: CmdTable,
    graph: Option<CommandGraph>,
    /// The remote endpoints its DMAs reach, by the index its ops hold.
    remote: Vec<Endpoint>,
    lower_err: Option<SimError>,
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
    /// Routes of remote DMAs, by the index their ops hold.
    pub(crate) routes: Vec<Route>,
    /// The memory each of `routes` leads to.
    pub(crate) route_ends: Vec<Endpoint>,
    /// The HBM splits the bindings name.
    pub(crate) pcs: PcTable,
}

/// Checks a launch's grid and PEs.
pub(crate) fn check_launch(topo: &Topology, launch: &Launch) -> Result<(), SimError> {
    let n = launch.pes.len();
    if n == 0 {
        return Err(SimError::Launch(LaunchError::NoPes));
    }
    let grid_size = launch
        .grid
        .iter()
        .try_fold(1usize, |acc, g| acc.checked_mul(*g as usize));
    if launch.grid.is_empty() || launch.grid.len() > 3 || grid_size != Some(n) {
        return Err(SimError::Launch(LaunchError::GridSize {
            grid: launch.grid.clone(),
            instances: grid_size,
            pes: n,
        }));
    }
    let mut seen = std::collections::BTreeSet::new();
    for pe in &launch.pes {
        if !topo.contains(*pe) {
            return Err(SimError::Launch(LaunchError::PeNotInTopology {
                pe: *pe,
                topology: topo.name().to_string(),
            }));
        }
        if !seen.insert(*pe) {
            return Err(SimError::Launch(LaunchError::DuplicatePe { pe: *pe }));
        }
    }
    Ok(())
}

/// The trace limits of one instance of a launch of `n` instances.
pub(crate) fn trace_limits(n: usize) -> TraceLimits {
    TraceLimits {
        max_commands: (super::LAUNCH_COMMAND_BUDGET / n.max(1)).clamp(1 << 12, 1 << 20),
    }
}

/// Runs `f` on every index of `0..n` over the machine's cores, in contiguous
/// chunks, and returns the results in index order.
pub(crate) fn par_map<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .min(n.div_ceil(16))
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

/// Traces instance `i` of a launch, within its share of the command budget,
/// and runs the graph passes the launch asks for (epilogue fusion).
pub(crate) fn trace_one(
    topo: &Topology,
    launch: &Launch,
    i: usize,
) -> Result<CommandGraph, SimError> {
    let g = launch
        .program
        .trace_limited(
            &launch.args,
            &launch.grid,
            &grid_pos(&launch.grid, i),
            trace_limits(launch.pes.len()),
        )
        .map_err(|err| SimError::Trace {
            pe: launch.pes[i],
            err,
        })?;
    Ok(if launch.fuse {
        crate::passes::fuse_epilogues(g, topo.pe_spec())
    } else {
        g
    })
}

/// Traces and lowers instance `i`.
fn unit(
    machine: &Machine,
    launch: &Launch,
    i: usize,
    keep_graph: bool,
    interner: &Interner,
) -> Result<Unit, SimError> {
    let pe = launch.pes[i];
    let g = trace_one(machine.topology(), launch, i)?;
    let comm = pairing::comm_of(&g);
    // Channels are not known yet: ops name the k-th send or receive.
    let mut local = vec![u32::MAX; g.len()];
    for (k, c) in comm.cmds.iter().enumerate() {
        local[c.id.index()] = k as u32;
    }
    let chan = |c: CmdId| local[c.index()];
    let mut remote: Vec<Endpoint> = Vec::new();
    let mut route = |ep: Endpoint| -> Result<u32, SimError> {
        let ix = match remote.iter().position(|e| *e == ep) {
            Some(ix) => ix,
            None => {
                remote.push(ep);
                remote.len() - 1
            }
        };
        Ok(ix as u32)
    };
    let spec = machine.topology().pe_spec();
    let mut ctx = LowerCtx {
        machine,
        spec,
        pe,
        send_chan: &chan,
        recv_chan: &chan,
        route: &mut route,
    };
    let (mut prog, lower_err) = match ctx.lower(&g) {
        Ok(p) => (p, None),
        Err(e) => (PeProgram::default(), Some(e)),
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
    Ok(Unit {
        prog,
        deps,
        pc_rows,
        pcs,
        table: CmdTable::of(&g),
        graph: keep_graph.then_some(g),
        comm,
        remote,
        lower_err,
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
    p.pc_bytes = b
        .pcs
        .iter()
        .flat_map(|&r| table.split(r))
        .copied()
        .collect();
    p
}

/// Traces, pairs and lowers every instance of a launch.
pub(crate) fn compile(machine: &Machine, launch: &Launch) -> Result<Compiled, SimError> {
    let topo = machine.topology();
    check_launch(topo, launch)?;
    let keep = launch.data || launch.trace || launch.keep_graphs;
    let interner = Interner::default();
    let (n, done) = (launch.pes.len(), std::sync::atomic::AtomicUsize::new(0));
    let step = (n / 100).max(1);
    let units: Vec<Result<Unit, SimError>> = par_map(n, |i| {
        let u = unit(machine, launch, i, keep, &interner);
        let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if d % step == 0 || d == n {
            launch
                .progress
                .report(super::progress::Progress::Compiled { done: d, of: n });
        }
        u
    });
    let mut units: Vec<Unit> = units.into_iter().collect::<Result<_, _>>()?;
    let comms: Vec<CommList> = units
        .iter_mut()
        .map(|u| std::mem::take(&mut u.comm))
        .collect();
    let mut channels = pairing::pair_comm(&launch.pes, &comms, launch.neighbors.as_ref())?;
    drop(comms);
    // Each instance's k-th send or receive, as a channel.
    let mut local_chans: Vec<Vec<u32>> = if keep {
        channels.of_comm.clone()
    } else {
        // Only data execution and traces look channels up by command; the
        // ops carry theirs.
        channels.comm_cmds = Vec::new();
        std::mem::take(&mut channels.of_comm)
    };
    if let Some(e) = units.iter_mut().find_map(|u| u.lower_err.take()) {
        return Err(e);
    }
    let route_err = |e: crate::topology::TopologyError| SimError::Route(e.into());
    let mut routes: Vec<Route> = Vec::new();
    let mut route_ix: FxHashMap<(PeId, Endpoint), u32> = FxHashMap::default();
    let mut out = Compiled {
        programs: Vec::with_capacity(units.len()),
        bindings: Vec::with_capacity(units.len()),
        tables: Vec::with_capacity(units.len()),
        graphs: Vec::new(),
        channels,
        routes: Vec::new(),
        route_ends: Vec::new(),
        pcs: PcTable::new((topo.pe_spec().hbm_pcs as usize).clamp(1, 64)),
    };
    for (i, u) in units.into_iter().enumerate() {
        let pe = launch.pes[i];
        let chans = std::mem::take(&mut local_chans[i]);
        let mut routes_of = Vec::with_capacity(u.remote.len());
        for ep in &u.remote {
            let ix = match route_ix.get(&(pe, *ep)) {
                Some(ix) => *ix,
                None => {
                    routes.push(topo.route(Endpoint::Pe(pe), *ep).map_err(route_err)?);
                    out.route_ends.push(*ep);
                    let ix = (routes.len() - 1) as u32;
                    route_ix.insert((pe, *ep), ix);
                    ix
                }
            };
            routes_of.push(ix);
        }
        let rows = out.pcs.merge(&u.pc_rows);
        out.programs.push(u.prog);
        out.bindings.push(Binding {
            chans,
            routes: routes_of,
            pcs: u.pcs.iter().map(|&r| rows[r as usize]).collect(),
            deps: u.deps,
        });
        out.tables.push(u.table);
        if let Some(g) = u.graph {
            out.graphs.push(g);
        }
    }
    out.routes = routes;
    Ok(out)
}

/// Resident bytes a run keeps per traced command of each instance: op
/// progress, HBM bytes, channels, the command table. Collectives with data
/// and trace off peak at 41-60 bytes per command in all
/// (`examples/bench_collectives` prints it); this keeps a margin above that.
pub const INSTANCE_BYTES_PER_COMMAND: u64 = 64;
/// Bytes per command of a lowered program (ops, dependencies both ways),
/// once per distinct program.
pub const PROGRAM_BYTES_PER_COMMAND: u64 = 200;
/// Extra bytes per command when the graphs are kept (data execution or a trace).
pub const GRAPH_BYTES_PER_COMMAND: u64 = 350;
/// Extra bytes per command for a trace's op spans and link spans.
pub const TRACE_BYTES_PER_COMMAND: u64 = 160;
/// Extra bytes per command for the op spans of [`Launch::why`] (a few ops
/// a command, each a start and a span).
pub const WHY_BYTES_PER_COMMAND: u64 = 100;

/// What a launch is expected to hold in memory, from a sample of its instances.
#[derive(Clone, Debug, PartialEq)]
pub struct MemoryEstimate {
    /// Program instances.
    pub instances: usize,
    /// Commands per instance, the mean over the sample.
    pub commands_per_instance: u64,
    /// Distinct lowered programs expected (instances with equal programs share one).
    pub programs: u64,
    /// Bytes of tile values the data execution keeps (0 when data is off).
    pub data_bytes: u64,
    /// Device memory already written before the run (counted against an
    /// explicit limit; a machine's available memory already excludes it).
    pub machine_bytes: u64,
    /// What the run adds, bytes.
    pub bytes: u64,
}

impl std::fmt::Display for MemoryEstimate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "about {} ({} instances x {} commands, {} distinct program(s)",
            human(self.bytes),
            self.instances,
            self.commands_per_instance,
            self.programs
        )?;
        if self.data_bytes > 0 {
            write!(f, ", {} of tile values", human(self.data_bytes))?;
        }
        f.write_str(")")?;
        if self.machine_bytes > 0 {
            write!(
                f,
                " on top of {} of device memory already written",
                human(self.machine_bytes)
            )?;
        }
        Ok(())
    }
}

/// Bytes as `1.5 GiB`.
pub fn human(b: u64) -> String {
    let (v, unit) = match b {
        b if b >= 1 << 30 => (b as f64 / (1u64 << 30) as f64, "GiB"),
        b if b >= 1 << 20 => (b as f64 / (1u64 << 20) as f64, "MiB"),
        b if b >= 1 << 10 => (b as f64 / 1024.0, "KiB"),
        b => (b as f64, "B"),
    };
    format!("{v:.1} {unit}")
}

/// Estimates a launch's memory by tracing up to nine instances spread over
/// it (a trace error there is the launch's error, as it would be later).
pub(crate) fn estimate(machine: &Machine, launch: &Launch) -> Result<MemoryEstimate, SimError> {
    let n = launch.pes.len();
    let mut sample: Vec<usize> = (0..8).map(|k| k * n / 8).collect();
    sample.push(n - 1);
    sample.dedup();
    let keep = launch.data || launch.trace || launch.keep_graphs;
    let mut commands = 0u64;
    let mut live_peak = 0u64;
    let interner = Interner::default();
    let mut programs: Vec<*const PeProgram> = Vec::new();
    // Bytes of the sample's own dependencies (and the dependents that
    // follow), where they differ from the program they share.
    let mut patch_bytes = 0u64;
    for &i in &sample {
        let g = trace_one(machine.topology(), launch, i)?;
        commands += g.len() as u64;
        // Sums saturate: an estimate past u64 is as good as u64::MAX.
        live_peak = live_peak.saturating_add(peak_live_value_bytes(&g));
        drop(g);
        if !keep {
            // How many distinct programs the sample lowers to says how much
            // sharing to expect. Lowering errors surface in the real run.
            let u = unit(machine, launch, i, false, &interner)?;
            // The patch, the dependents that follow from it, and slack.
            patch_bytes += 3 * u.deps.bytes() as u64;
            let p = Arc::as_ptr(&u.prog);
            if !programs.contains(&p) {
                programs.push(p);
            }
        }
    }
    let k = sample.len() as u64;
    let per = commands.div_ceil(k);
    let total_cmds = per * n as u64;
    // Distinct programs over the launch: one when the sample shares one,
    // else in proportion to how often the sample met a new one.
    let distinct = programs.len() as u64;
    let shared_programs = match distinct {
        0 => n as u64,
        1 => 1,
        d => (d + (d - 1) * (n as u64 - k) / (k - 1).max(1)).min(n as u64),
    };
    let mut bytes = total_cmds * INSTANCE_BYTES_PER_COMMAND
        + shared_programs * per * PROGRAM_BYTES_PER_COMMAND
        + patch_bytes.div_ceil(k) * n as u64;
    if keep {
        bytes += total_cmds * GRAPH_BYTES_PER_COMMAND;
    }
    if launch.trace {
        bytes += total_cmds * TRACE_BYTES_PER_COMMAND;
    } else if launch.why {
        // Op spans, and each instance's own copy of its program at the end.
        bytes += total_cmds * WHY_BYTES_PER_COMMAND;
        if !keep {
            bytes += total_cmds * PROGRAM_BYTES_PER_COMMAND;
        }
    }
    // Data execution keeps each tile value, as f32, from its command to its
    // last reader.
    let data_bytes = if launch.data {
        live_peak.div_ceil(k).saturating_mul(n as u64)
    } else {
        0
    };
    Ok(MemoryEstimate {
        instances: n,
        commands_per_instance: per,
        programs: shared_programs,
        data_bytes,
        machine_bytes: machine.resident_bytes(),
        bytes: bytes.saturating_add(data_bytes),
    })
}

/// The most bytes of tile values (as f32, with an array header each) alive
/// at once when `g` runs in program order, each from its command to its
/// last reader.
fn peak_live_value_bytes(g: &CommandGraph) -> u64 {
    let n = g.len();
    let mut last_use: Vec<Option<usize>> = vec![None; n];
    for (id, node) in g.nodes() {
        for v in node.cmd.operands() {
            last_use[v.index()] = Some(id.index());
        }
    }
    let mut frees: Vec<u64> = vec![0; n];
    let (mut live, mut peak) = (0u64, 0u64);
    for (id, node) in g.nodes() {
        if let Some(last) = last_use[id.index()] {
            let b = (node.ty.elems() as u64)
                .saturating_mul(4)
                .saturating_add(64);
            live = live.saturating_add(b);
            frees[last] = frees[last].saturating_add(b);
        }
        peak = peak.max(live);
        live = live.saturating_sub(frees[id.index()]);
    }
    peak
}

/// Memory this machine has free now (`MemAvailable`), when it can be read.
pub fn available_memory() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = s.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
