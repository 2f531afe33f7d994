//! One PE's state during a run: its lowered program, dependency counters,
//! in-order engine queues, HBM pseudo-channels, and what it did.

use super::compile::Binding;
use super::id::OpId;
use super::lower::{OpKind, PeProgram, Unit, UNITS};
use crate::{PeId, Ps};
use std::sync::Arc;

/// The ops that depend on each op of a program (CSR: `start[i]..start[i + 1]`
/// into `list`), shared by the instances that share the program.
pub(crate) struct Dependents {
    start: Vec<u32>,
    list: Vec<u32>,
}

impl Dependents {
    pub(crate) fn of(prog: &PeProgram) -> Self {
        let n = prog.ops.len();
        let mut count = vec![0u32; n + 1];
        for &x in &prog.deps {
            count[x as usize] += 1;
        }
        let mut start = vec![0u32; n + 1];
        for i in 0..n {
            start[i + 1] = start[i] + count[i];
        }
        let mut fill = start.clone();
        let mut list = vec![0u32; start[n] as usize];
        for i in 0..n {
            for &x in prog.deps_of(i) {
                list[fill[x as usize] as usize] = i as u32;
                fill[x as usize] += 1;
            }
        }
        Dependents { start, list }
    }
}

/// An op not started.
pub(crate) const NOT_STARTED: u8 = 0;
/// An op started and not done.
pub(crate) const STARTED: u8 = 1;
/// An op done.
pub(crate) const DONE: u8 = 2;

/// Per-instance state.
pub(crate) struct PeState {
    pub(crate) pe: PeId,
    /// The program, possibly shared with other instances.
    pub(crate) prog: Arc<PeProgram>,
    /// This instance's channels, routes and HBM bytes.
    pub(crate) bind: Binding,
    /// Dependencies of each op not yet done.
    pub(crate) remaining: Vec<u32>,
    dependents: Arc<Dependents>,
    /// Each op's progress: [`NOT_STARTED`], [`STARTED`] or [`DONE`].
    pub(crate) state: Vec<u8>,
    /// Next op of each engine's queue.
    head: [usize; UNITS],
    busy: [bool; UNITS],
    /// When each HBM pseudo-channel is free.
    pc_free: Vec<Ps>,
    /// Ops not yet done.
    pub(crate) left: usize,
    pub(crate) end_ps: Ps,
    /// When its first op began.
    pub(crate) first_op_ps: Option<Ps>,
    pub(crate) busy_ps: [Ps; UNITS],
    pub(crate) hbm_read: u64,
    pub(crate) hbm_write: u64,
    /// Bytes its DMAs read from memory elsewhere.
    pub(crate) remote_read: u64,
    /// Bytes its DMAs wrote to memory elsewhere.
    pub(crate) remote_write: u64,
    pub(crate) sent: u64,
    pub(crate) received: u64,
    pub(crate) flops: u64,
}

impl PeState {
    pub(crate) fn new(
        pe: PeId,
        prog: Arc<PeProgram>,
        bind: Binding,
        dependents: Arc<Dependents>,
        start: Ps,
        pcs: usize,
    ) -> Self {
        let n = prog.ops.len();
        let remaining: Vec<u32> = (0..n).map(|i| prog.deps_of(i).len() as u32).collect();
        PeState {
            pe,
            remaining,
            dependents,
            bind,
            state: vec![NOT_STARTED; n],
            head: [0; UNITS],
            busy: [false; UNITS],
            pc_free: vec![start; pcs],
            left: n,
            end_ps: start,
            first_op_ps: None,
            busy_ps: [0; UNITS],
            hbm_read: 0,
            hbm_write: 0,
            remote_read: 0,
            remote_write: 0,
            sent: 0,
            received: 0,
            flops: 0,
            prog,
        }
    }

    /// The ops that wait for `op`.
    pub(crate) fn dependents_of(&self, op: OpId) -> std::ops::Range<usize> {
        self.dependents.start[op.ix()] as usize..self.dependents.start[op.ix() + 1] as usize
    }

    /// The `k`-th entry of the dependents table.
    pub(crate) fn dependent(&self, k: usize) -> OpId {
        OpId(self.dependents.list[k])
    }

    /// The op at the head of engine `u`'s queue, if the engine is idle and the op ready.
    pub(crate) fn ready_on(&self, u: usize) -> Option<OpId> {
        if self.busy[u] {
            return None;
        }
        let &op = self.prog.queues[u].get(self.head[u])?;
        (self.remaining[op as usize] == 0).then_some(OpId(op))
    }

    /// Marks `op` started, taking its engine.
    pub(crate) fn begin(&mut self, op: OpId) -> Unit {
        self.state[op.ix()] = STARTED;
        let unit = self.prog.ops[op.ix()].unit;
        if unit != Unit::Free {
            self.busy[unit as usize] = true;
            self.head[unit as usize] += 1;
        }
        unit
    }

    /// The channel of this instance's `k`-th send or receive.
    pub(crate) fn chan(&self, k: u32) -> super::id::ChanId {
        super::id::ChanId(self.bind.chans[k as usize])
    }

    /// The route index of this instance's `k`-th remote endpoint.
    pub(crate) fn route(&self, k: u32) -> usize {
        self.bind.routes[k as usize] as usize
    }

    /// Frees engine `u`.
    pub(crate) fn release(&mut self, u: Unit) {
        self.busy[u as usize] = false;
    }

    /// Runs the HBM op `op` starting at `now`: each pseudo-channel serves its
    /// share in turn. Returns when the last channel is done (before the
    /// access latency).
    pub(crate) fn hbm(&mut self, op: OpId, now: Ps, splits: &super::engine::HbmSplits) -> Ps {
        let OpKind::Hbm { pcs, bytes, write } = self.prog.ops[op.ix()].kind else {
            unreachable!("hbm() on an HBM op")
        };
        let row = self.bind.pcs[pcs as usize / splits.n()];
        let mut end = now;
        for &(pc, ps) in splits.row(row) {
            let st = self.pc_free[pc as usize].max(now);
            let e = st + ps;
            self.pc_free[pc as usize] = e;
            end = end.max(e);
        }
        if write {
            self.hbm_write += bytes;
        } else {
            self.hbm_read += bytes;
        }
        end
    }
}
