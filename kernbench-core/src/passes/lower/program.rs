//! The lowered program of one instance: its ops on the PE's engines, their
//! dependencies, the HBM bytes of each DMA, and the text forms that show them.

use crate::ir::{CmdId, CommandGraph};
use crate::Ps;
use std::fmt::Write as _;

/// The engines of a PE (and `Free` for ops that need none).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Unit {
    /// PE_CPU + PE_SCHEDULER: issues commands in program order.
    Cpu = 0,
    /// DMA from HBM to TCM.
    DmaIn = 1,
    /// The matrix engine.
    Gemm = 2,
    /// The vector engine.
    Math = 3,
    /// DMA from TCM to HBM.
    DmaWb = 4,
    /// The comm DMA (vc_comm): IPCQ sends.
    Comm = 5,
    /// No engine (receives complete when their bytes arrive; waits are free).
    Free = 6,
}

/// Engines with queues.
pub const UNITS: usize = 6;

impl Unit {
    /// Name in reports.
    pub const fn name(self) -> &'static str {
        match self {
            Unit::Cpu => "PE_CPU",
            Unit::DmaIn => "DMA_IN",
            Unit::Gemm => "GEMM",
            Unit::Math => "MATH",
            Unit::DmaWb => "DMA_WB",
            Unit::Comm => "COMM",
            Unit::Free => "-",
        }
    }

    /// The engines with queues, in report order.
    pub const ALL: [Unit; UNITS] = [
        Unit::Cpu,
        Unit::DmaIn,
        Unit::Gemm,
        Unit::Math,
        Unit::DmaWb,
        Unit::Comm,
    ];
}

/// What an op does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpKind {
    /// Issue of a command (PE_CPU + PE_SCHEDULER).
    Issue,
    /// A DMA against this PE's HBM slice.
    Hbm {
        /// Where its bytes per pseudo-channel start in [`PeProgram::pc_bytes`].
        pcs: u32,
        /// Bytes in all.
        bytes: u64,
        /// `true` for TCM -> HBM.
        write: bool,
    },
    /// A DMA against memory elsewhere, over the fabric.
    Remote {
        /// Index into the run's route table.
        route: u32,
        /// When the memory is another PE's HBM slice: where its bytes per
        /// pseudo-channel of that slice start in [`PeProgram::pc_bytes`]
        /// (the owner's channels serve it, as they serve the owner).
        pcs: Option<u32>,
        /// Bytes.
        bytes: u64,
        /// `true` for TCM -> remote.
        write: bool,
    },
    /// Work of a fixed duration (GEMM steps, MATH tiles).
    Fixed {
        /// Duration.
        ps: Ps,
        /// FLOPs it performs (for reports).
        flops: u64,
    },
    /// Acquires the ring slots of a message at the receiver (the sender's
    /// PE_CPU waits here while the ring is full).
    SendGrant {
        /// Channel.
        chan: u32,
        /// Bytes.
        bytes: u64,
    },
    /// An IPCQ send of a message: injects its packets into the fabric.
    Send {
        /// Channel.
        chan: u32,
        /// Bytes.
        bytes: u64,
    },
    /// An IPCQ receive of a message.
    Recv {
        /// Channel.
        chan: u32,
        /// Bytes.
        bytes: u64,
    },
    /// A zero-time join (waits).
    Nop,
}

/// Lists of ops for some ops of a program, sorted by op: the dependencies
/// of an instance where they differ from the program it shares, or the
/// dependents that follow from them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct DepPatch {
    ops: Vec<u32>,
    start: Vec<u32>,
    list: Vec<u32>,
}

impl DepPatch {
    /// Appends op `op`'s list (ops in increasing order).
    pub(crate) fn push(&mut self, op: u32, list: &[u32]) {
        debug_assert!(self.ops.last().is_none_or(|&l| l < op));
        if self.start.is_empty() {
            self.start.push(0);
        }
        self.ops.push(op);
        self.list.extend_from_slice(list);
        self.start.push(self.list.len() as u32);
    }

    /// The list of `op`, when patched.
    pub(crate) fn get(&self, op: u32) -> Option<&[u32]> {
        let k = self.ops.binary_search(&op).ok()?;
        Some(&self.list[self.start[k] as usize..self.start[k + 1] as usize])
    }

    /// Where `op`'s list lies among all lists (see [`DepPatch::item`]), when patched.
    pub(crate) fn span(&self, op: u32) -> Option<std::ops::Range<usize>> {
        let k = self.ops.binary_search(&op).ok()?;
        Some(self.start[k] as usize..self.start[k + 1] as usize)
    }

    /// The `k`-th entry of all lists.
    pub(crate) fn item(&self, k: usize) -> u32 {
        self.list[k]
    }

    /// Patched ops and their lists, by op.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &[u32])> + '_ {
        self.ops.iter().enumerate().map(|(k, &op)| {
            (
                op,
                &self.list[self.start[k] as usize..self.start[k + 1] as usize],
            )
        })
    }

    /// `true` when nothing is patched.
    pub(crate) fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Bytes it holds.
    pub(crate) fn bytes(&self) -> usize {
        (self.ops.len() + self.start.len() + self.list.len()) * 4
    }
}

/// One op of a lowered program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Op {
    /// Its engine.
    pub unit: Unit,
    /// What it does.
    pub kind: OpKind,
    /// The command it belongs to.
    pub cmd: CmdId,
    /// `true` for the op whose completion completes the command.
    pub completes: bool,
}

/// Which part of its command an op is (printed in plans and timelines).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Label {
    /// The whole command.
    #[default]
    Whole,
    /// Tile `k` (1-based) of `n` of elementwise work or a DMA.
    Tile(u32, u32),
    /// Output tile `(i, j)` of a GEMM's write-back.
    Out(u32, u32),
    /// Streamed A tile `(i, k)` of a GEMM.
    A(u32, u32),
    /// Streamed B tile `(k, j)` of a GEMM.
    B(u32, u32),
    /// GEMM step `(i, j, k)`.
    Step(u32, u32, u32),
    /// Epilogue of output tile `(i, j)`.
    Epilogue(u32, u32),
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Label::Whole => Ok(()),
            Label::Tile(k, n) => write!(f, "tile {k}/{n}"),
            Label::Out(i, j) => write!(f, "tile ({i},{j})"),
            Label::A(i, k) => write!(f, "A({i},{k})"),
            Label::B(k, j) => write!(f, "B({k},{j})"),
            Label::Step(i, j, k) => write!(f, "step ({i},{j},{k})"),
            Label::Epilogue(i, j) => write!(f, "epilogue ({i},{j})"),
        }
    }
}

/// The lowered program of one PE.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeProgram {
    /// Ops in creation order.
    pub ops: Vec<Op>,
    /// Dependencies of each op (CSR: `dep_start[i]..dep_start[i+1]` into `deps`).
    pub dep_start: Vec<u32>,
    /// Flattened dependency lists.
    pub deps: Vec<u32>,
    /// Ops of each engine, in the order the engine runs them.
    pub queues: [Vec<u32>; UNITS],
    /// TCM address and size of each command's tile (`None` for commands
    /// without one); empty when the run keeps no graphs.
    pub tcm: Vec<Option<(u64, u64)>>,
    /// A label per op for plans and timelines (`step (0,1,2)`, `tile 3/8`);
    /// empty when the run keeps no graphs.
    pub labels: Vec<Label>,
    /// Bytes on each HBM pseudo-channel of every HBM op, `hbm_pcs` entries an op.
    pub pc_bytes: Vec<u32>,
    /// Pseudo-channels per HBM op in `pc_bytes`.
    pub hbm_pcs: u32,
    /// Peak TCM use, bytes.
    pub tcm_peak: u64,
}

impl PeProgram {
    /// The label of op `i` (`Whole` when labels were not kept).
    pub fn label(&self, i: usize) -> Label {
        self.labels.get(i).copied().unwrap_or_default()
    }

    /// Bytes per pseudo-channel of an HBM op starting at `pcs` in [`PeProgram::pc_bytes`].
    pub fn pcs_of(&self, pcs: u32) -> &[u32] {
        &self.pc_bytes[pcs as usize..(pcs + self.hbm_pcs) as usize]
    }

    /// `true` when `other` runs the same ops in the same order on the same
    /// engines: instances with such programs can share one, each with its
    /// own channels, routes and HBM addresses, and its own dependencies where
    /// they differ (memory-ordering edges that depend on the rank, see
    /// `PeProgram::dep_patch`).
    pub fn same_template(&self, other: &PeProgram) -> bool {
        self.ops == other.ops
            && self.queues == other.queues
            && self.hbm_pcs == other.hbm_pcs
            && self.tcm_peak == other.tcm_peak
    }

    /// The dependencies of `other`, a program of the same template, where
    /// they differ from this one's.
    pub(crate) fn dep_patch(&self, other: &PeProgram) -> DepPatch {
        let mut p = DepPatch::default();
        for i in 0..self.ops.len() {
            let theirs = other.deps_of(i);
            if self.deps_of(i) != theirs {
                p.push(i as u32, theirs);
            }
        }
        p
    }

    /// A hash of what [`PeProgram::same_template`] compares.
    pub fn template_hash(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = rustc_hash::FxHasher::default();
        self.ops.hash(&mut h);
        self.queues.hash(&mut h);
        self.hbm_pcs.hash(&mut h);
        self.tcm_peak.hash(&mut h);
        h.finish()
    }

    /// Drops what only plans and timelines read (labels, the TCM map), and
    /// the spare capacity of what stays: the program is kept for the run.
    pub fn strip(&mut self) {
        self.labels = Vec::new();
        self.tcm = Vec::new();
        self.ops.shrink_to_fit();
        self.deps.shrink_to_fit();
        self.dep_start.shrink_to_fit();
        self.pc_bytes.shrink_to_fit();
        for q in &mut self.queues {
            q.shrink_to_fit();
        }
    }

    /// Dependencies of op `i`.
    pub fn deps_of(&self, i: usize) -> &[u32] {
        &self.deps[self.dep_start[i] as usize..self.dep_start[i + 1] as usize]
    }

    /// What an op does, with its bytes or time (`hbm.read 4096 B over 8 PCs`).
    fn work(&self, op: &Op) -> String {
        match &op.kind {
            OpKind::Issue => "issue".to_string(),
            OpKind::Hbm { pcs, bytes, write } => {
                let total: u64 = *bytes;
                let used = self.pcs_of(*pcs).iter().filter(|b| **b > 0).count();
                format!(
                    "{} {total} B over {used} PCs",
                    if *write { "hbm.write" } else { "hbm.read" }
                )
            }
            OpKind::Remote { bytes, write, .. } => {
                format!(
                    "{} {bytes} B",
                    if *write {
                        "remote.write"
                    } else {
                        "remote.read"
                    }
                )
            }
            OpKind::Fixed { ps, flops } => {
                format!("{:.3} ns {flops} flop", *ps as f64 / 1000.0)
            }
            OpKind::SendGrant { chan, bytes } => format!("slots ch{chan} {bytes} B"),
            OpKind::Send { chan, bytes } => format!("send ch{chan} {bytes} B"),
            OpKind::Recv { chan, bytes } => format!("recv ch{chan} {bytes} B"),
            OpKind::Nop => "join".to_string(),
        }
    }

    /// The ops as a column-aligned table: engine, command, part of the
    /// command, work, and the ops each waits for.
    pub fn ops_text(&self) -> String {
        let mut rows = vec![vec![
            "op".to_string(),
            "engine".to_string(),
            "cmd".to_string(),
            "part".to_string(),
            "work".to_string(),
            "done".to_string(),
            "deps".to_string(),
        ]];
        for (i, op) in self.ops.iter().enumerate() {
            let deps: Vec<String> = self.deps_of(i).iter().map(|d| format!("o{d}")).collect();
            let label = self.label(i);
            rows.push(vec![
                format!("o{i}"),
                op.unit.name().to_string(),
                op.cmd.to_string(),
                if label == Label::Whole {
                    "-".to_string()
                } else {
                    label.to_string()
                },
                self.work(op),
                if op.completes {
                    "*".to_string()
                } else {
                    String::new()
                },
                if deps.is_empty() {
                    "-".to_string()
                } else {
                    deps.join(",")
                },
            ]);
        }
        format!(
            "{} op(s) (done *: the op whose completion completes its command; \
             engine -: no engine, the op waits or joins)\n{}",
            self.ops.len(),
            crate::passes::columns(&rows)
        )
    }

    /// The plan as text, for review: the TCM plan, then one op a line.
    pub fn to_text(&self, g: &CommandGraph) -> String {
        let mut s = String::new();
        writeln!(s, "tcm peak {} B", self.tcm_peak).unwrap();
        for (id, n) in g.nodes() {
            if let Some((addr, bytes)) = self.tcm.get(id.index()).copied().flatten() {
                writeln!(
                    s,
                    "  {id} {} @tcm[{addr:#x}..{:#x}]",
                    n.cmd.mnemonic(),
                    addr + bytes
                )
                .unwrap();
            }
        }
        for (i, op) in self.ops.iter().enumerate() {
            let what = self.work(op);
            let deps: Vec<String> = self.deps_of(i).iter().map(|d| format!("o{d}")).collect();
            writeln!(
                s,
                "o{i} {:<6} {} {} {what}{} deps[{}]",
                op.unit.name(),
                op.cmd,
                self.label(i),
                if op.completes { " *" } else { "" },
                deps.join(",")
            )
            .unwrap();
        }
        s
    }
}
