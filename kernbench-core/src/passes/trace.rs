//! Tracing: every program instance of a launch run once to record its
//! command graph, within its share of the launch's command budget, and the
//! command table that reports keep of each graph once it is gone.

use super::error::CompileError;
use super::par_map;
use crate::ir::{CmdId, CommandGraph, Dir, Peer, SrcLoc, TraceLimits};
use crate::program::LaunchError;
use crate::program::{grid_pos, Launch};
use crate::topology::Topology;
use rustc_hash::FxHashMap;

/// The most commands one launch may trace, split evenly over its instances
/// (each between 4 Ki and 1 Mi): what a run on this machine can hold.
pub const LAUNCH_COMMAND_BUDGET: usize = 64 << 20;

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

/// Checks a launch's grid and PEs.
pub(crate) fn check_launch(topo: &Topology, launch: &Launch) -> Result<(), CompileError> {
    let n = launch.pes.len();
    if n == 0 {
        return Err(CompileError::Launch(LaunchError::NoPes));
    }
    let grid_size = launch
        .grid
        .iter()
        .try_fold(1usize, |acc, g| acc.checked_mul(*g as usize));
    if launch.grid.is_empty() || launch.grid.len() > 3 || grid_size != Some(n) {
        return Err(CompileError::Launch(LaunchError::GridSize {
            grid: launch.grid.clone(),
            instances: grid_size,
            pes: n,
        }));
    }
    for (name, values) in &launch.instance_args {
        if values.len() != n {
            return Err(CompileError::Launch(LaunchError::InstanceArgs {
                name: name.clone(),
                values: values.len(),
                instances: n,
            }));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for pe in &launch.pes {
        if !topo.contains(*pe) {
            return Err(CompileError::Launch(LaunchError::PeNotInTopology {
                pe: *pe,
                topology: topo.name().to_string(),
            }));
        }
        if !seen.insert(*pe) {
            return Err(CompileError::Launch(LaunchError::DuplicatePe { pe: *pe }));
        }
    }
    Ok(())
}

/// The trace limits of one instance of a launch of `n` instances.
pub(crate) fn trace_limits(n: usize) -> TraceLimits {
    TraceLimits {
        max_commands: (LAUNCH_COMMAND_BUDGET / n.max(1)).clamp(1 << 12, 1 << 20),
    }
}

/// Traces instance `i` of a launch, within its share of the command budget,
/// and runs the graph passes the launch asks for (epilogue fusion).
pub(crate) fn trace_one(
    topo: &Topology,
    launch: &Launch,
    i: usize,
) -> Result<CommandGraph, CompileError> {
    let g = launch
        .program
        .trace_limited(
            &launch.args_of(i),
            &launch.grid,
            &grid_pos(&launch.grid, i),
            trace_limits(launch.pes.len()),
        )
        .map_err(|err| CompileError::Trace {
            pe: launch.pes[i],
            err,
        })?;
    Ok(if launch.fuse {
        super::fuse_epilogues(g, topo.pe_spec())
    } else {
        g
    })
}

/// Checks a launch (grid, PEs) and traces every instance, over the
/// machine's cores; the first error in instance order wins, as a sequential
/// trace would give.
pub(crate) fn trace_all(
    topo: &Topology,
    launch: &Launch,
) -> Result<Vec<CommandGraph>, CompileError> {
    check_launch(topo, launch)?;
    par_map(launch.pes.len(), |i| trace_one(topo, launch, i))
        .into_iter()
        .collect()
}
