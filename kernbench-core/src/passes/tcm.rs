//! The TCM plan: where in a PE's TCM each tile of one instance lives, and
//! for how long.
//!
//! Every tile a command produces lives from its command to its last use (a
//! view keeps the tile it views alive); a GEMM whose operands are streamed
//! also holds `tcm_buffers` tiles of each for its lifetime. Tiles are placed
//! first fit at 64-byte alignment; a tile that does not fit names its
//! kernel line.

use super::error::CompileError;
use super::lower::PeProgram;
use crate::ir::{CmdId, Command, CommandGraph, Node};
use crate::program::LaunchError;
use crate::topology::PeSpec;
use crate::PeId;

/// Why a tile does not fit in a PE's TCM (the kernel line and PE are in
/// [`CompileError::Tcm`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TcmError {
    /// A tile larger than the whole TCM: no plan can place it.
    #[error("{cmd} ({op}) needs {bytes} B, more than the {tcm_bytes} B the TCM holds")]
    TileTooLarge {
        /// The command whose tile it is.
        cmd: CmdId,
        /// Its mnemonic.
        op: &'static str,
        /// Bytes of the tile.
        bytes: u64,
        /// Bytes of TCM.
        tcm_bytes: u64,
    },
    /// No free range large enough while the tiles still live are held.
    #[error(
        "{cmd} ({op}) needs {bytes} B; {free} B of {tcm_bytes} B are free, \
         {held} B held by live tiles"
    )]
    NoRoom {
        /// The command whose tile (with its GEMM's streaming buffers) it is.
        cmd: CmdId,
        /// Its mnemonic.
        op: &'static str,
        /// Bytes it needs.
        bytes: u64,
        /// Bytes free (possibly in pieces too small).
        free: u64,
        /// Bytes of TCM.
        tcm_bytes: u64,
        /// Bytes held by live tiles.
        held: u64,
    },
}

/// Where each tile of an instance lives in TCM.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TcmPlan {
    /// TCM address and size of each command's tile, by command (`None` for
    /// commands without one).
    pub tiles: Vec<Option<(u64, u64)>>,
    /// The most bytes held at once.
    pub peak: u64,
}

impl TcmPlan {
    /// Writes the plan into the lowered program of the same instance.
    pub(crate) fn write_into(self, prog: &mut PeProgram) {
        prog.tcm = self.tiles;
        prog.tcm_peak = self.peak;
    }
}

/// Bytes of TCM the tile of `node` holds by itself: nothing for commands
/// that leave no tile (stores, sends, streams, waits).
pub(crate) fn tile_bytes(node: &Node) -> u64 {
    match &node.cmd {
        Command::Store { .. } | Command::Send { .. } | Command::Stream { .. } => 0,
        Command::Wait { .. } => 0,
        _ => node.ty.bytes(),
    }
}

/// Refuses a tile larger than the whole TCM: it can never be placed, and
/// lowering checks it before cutting the command into pieces (a huge tile
/// would be cut into billions) that the plan would refuse anyway.
pub(crate) fn check_tile_fits(
    id: CmdId,
    node: &Node,
    spec: &PeSpec,
    pe: PeId,
) -> Result<(), CompileError> {
    let held = tile_bytes(node);
    if held > spec.tcm_bytes {
        return Err(CompileError::Tcm {
            pe,
            loc: node.loc.clone(),
            err: TcmError::TileTooLarge {
                cmd: id,
                op: node.cmd.mnemonic(),
                bytes: held,
                tcm_bytes: spec.tcm_bytes,
            },
        });
    }
    Ok(())
}

/// The command after which each tile is last read: its own command when
/// nothing reads it; a view keeps the tile it views alive as long as itself.
fn last_uses(g: &CommandGraph) -> Vec<usize> {
    let mut last_use: Vec<usize> = (0..g.len()).collect();
    for (id, node) in g.nodes() {
        for v in node.cmd.operands() {
            let mut v = v;
            loop {
                last_use[v.index()] = last_use[v.index()].max(id.index());
                match g.node(v).cmd {
                    Command::Reshape { x } | Command::Broadcast { x } => v = x,
                    _ => break,
                }
            }
        }
    }
    last_use
}

/// Bytes the plan places for `node`: its tile, plus the buffers of the
/// streamed operands of a GEMM; nothing for views, whose tile is their
/// operand's. A GEMM's step tiles are the PE's GEMM tile cut to the
/// operands' extent, as lowering cuts them: a matrix smaller than a tile
/// streams through buffers of its own size.
fn placed_bytes(g: &CommandGraph, node: &Node, spec: &PeSpec) -> u64 {
    match &node.cmd {
        Command::Reshape { .. } | Command::Broadcast { .. } => 0,
        Command::Dot { a, b, .. } => {
            let mut extra = 0;
            let (sa, sb) = (&g.node(*a).ty.shape, &g.node(*b).ty.shape);
            let dim = |s: &[usize], i: usize| s.get(i).copied().unwrap_or(1) as u64;
            let [tm, tk, tn] = spec.gemm_tile.map(|t| u64::from(t.max(1)));
            let (tm, tk, tn) = (tm.min(dim(sa, 0)), tk.min(dim(sa, 1)), tn.min(dim(sb, 1)));
            let es = g.node(*a).ty.dtype.size() as u64;
            if matches!(g.node(*a).cmd, Command::Stream { .. }) {
                extra += tm * tk * es * u64::from(spec.tcm_buffers);
            }
            if matches!(g.node(*b).cmd, Command::Stream { .. }) {
                extra += tk * tn * es * u64::from(spec.tcm_buffers);
            }
            node.ty.bytes() + extra
        }
        _ => tile_bytes(node),
    }
}

/// Plans the TCM of one instance on `pe` (see the module docs).
pub(crate) fn plan_tcm(g: &CommandGraph, spec: &PeSpec, pe: PeId) -> Result<TcmPlan, CompileError> {
    let n = g.len();
    let last_use = last_uses(g);
    let mut alloc = crate::addr::RangeAllocator::new(0, spec.tcm_bytes)
        .map_err(|e| CompileError::Launch(LaunchError::TcmSize(e)))?;
    let mut frees: Vec<Vec<u64>> = vec![Vec::new(); n];
    let mut plan = TcmPlan {
        tiles: vec![None; n],
        peak: 0,
    };
    for (id, node) in g.nodes() {
        let bytes = placed_bytes(g, node, spec);
        if bytes > 0 {
            let rounded = bytes.div_ceil(64) * 64;
            match alloc.alloc(rounded, 64) {
                Ok(addr) => {
                    plan.tiles[id.index()] = Some((addr, bytes));
                    frees[last_use[id.index()]].push(addr);
                }
                Err(_) => {
                    return Err(CompileError::Tcm {
                        pe,
                        loc: node.loc.clone(),
                        err: TcmError::NoRoom {
                            cmd: id,
                            op: node.cmd.mnemonic(),
                            bytes,
                            free: alloc.free_bytes(),
                            tcm_bytes: spec.tcm_bytes,
                            held: alloc.used_bytes(),
                        },
                    })
                }
            }
            plan.peak = plan.peak.max(alloc.used_bytes());
        }
        for addr in std::mem::take(&mut frees[id.index()]) {
            alloc
                .free(addr)
                .map_err(|e| CompileError::Launch(LaunchError::TcmPlan(e)))?;
        }
    }
    Ok(plan)
}

/// The TCM plan of one instance (`prog` its lowered program, `g` its
/// graph) for a PE of `tcm_bytes` of TCM: each tile a line with where it
/// lives and from which command to which.
pub fn tcm_text(prog: &PeProgram, g: &CommandGraph, tcm_bytes: u64) -> String {
    let last_use = last_uses(g);
    let mut rows = vec![vec![
        "cmd".to_string(),
        "op".to_string(),
        "offset".to_string(),
        "end".to_string(),
        "bytes".to_string(),
        "live".to_string(),
        "note".to_string(),
    ]];
    for (id, node) in g.nodes() {
        let Some((addr, bytes)) = prog.tcm.get(id.index()).copied().flatten() else {
            continue;
        };
        let note = if bytes > node.ty.bytes() {
            format!("+{} B streaming buffers", bytes - node.ty.bytes())
        } else {
            String::new()
        };
        rows.push(vec![
            id.to_string(),
            node.cmd.mnemonic().to_string(),
            format!("{addr:#x}"),
            format!("{:#x}", addr + bytes),
            bytes.to_string(),
            format!("{id}..{}", CmdId(last_use[id.index()] as u32)),
            note,
        ]);
    }
    format!(
        "TCM plan: peak {} B of {tcm_bytes} B, {} tile(s)\n\
         (offset..end: the bytes the tile holds, each tile starting 64-byte aligned; \
         live: from its command to its last reader, a view keeping its operand alive)\n{}",
        prog.tcm_peak,
        rows.len() - 1,
        super::columns(&rows)
    )
}
