//! One PE's state during a run: a [`Core`] (its engines and HBM
//! pseudo-channels, shared by every instance placed on the PE) and, per
//! instance, its lowered program, dependency counters, in-order engine
//! queues and what it did.

use super::id::OpId;
use crate::passes::lower::{DepPatch, OpKind, PeProgram, Unit, UNITS};
use crate::passes::Binding;
use crate::{PeId, Ps};
use std::sync::Arc;

/// The ops that depend on each op of a program (CSR: `start[i]..start[i + 1]`
/// into `list`), shared by the instances that share the program.
pub(crate) struct Dependents {
    start: Vec<u32>,
    list: Vec<u32>,
}

impl Dependents {
    /// The ops waiting for `op`, as a range of [`Dependents::list`].
    fn range(&self, op: usize) -> std::ops::Range<usize> {
        self.start[op] as usize..self.start[op + 1] as usize
    }

    /// The dependents of an instance whose dependencies differ from
    /// `prog`'s as `own` says, where they differ from this table's: each
    /// list in increasing op order, as [`Dependents::of`] would give for
    /// the instance's own program.
    fn patch(&self, prog: &PeProgram, own: &DepPatch) -> DepPatch {
        let mut patched = vec![false; prog.ops.len()];
        let (mut pairs, mut sources) = (Vec::new(), Vec::new());
        for (i, deps) in own.iter() {
            patched[i as usize] = true;
            for &x in deps {
                pairs.push((x, i));
                sources.push(x);
            }
            sources.extend_from_slice(prog.deps_of(i as usize));
        }
        sources.sort_unstable();
        sources.dedup();
        for &x in &sources {
            for &i in &self.list[self.range(x as usize)] {
                if !patched[i as usize] {
                    pairs.push((x, i));
                }
            }
        }
        pairs.sort_unstable();
        let mut out = DepPatch::default();
        let mut at = 0;
        let mut list = Vec::new();
        for &x in &sources {
            list.clear();
            while at < pairs.len() && pairs[at].0 == x {
                list.push(pairs[at].1);
                at += 1;
            }
            out.push(x, &list);
        }
        out
    }

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

/// An op started and not done (an op not started is 0).
pub(crate) const STARTED: u8 = 1;
/// An op done.
pub(crate) const DONE: u8 = 2;

/// The bit of an op's progress word set when the instance's dependents of
/// the op differ from its shared program's (see [`PeState::dependents_of`]):
/// the engine reads the word as the op completes, so the test costs no
/// memory access of its own.
const OWN: u32 = 1 << 29;

/// Bits of an op's progress word that count its dependencies not yet done;
/// [`OWN`] is above them, and the two bits above that hold its state (0
/// before it starts, then [`STARTED`], then [`DONE`]).
const COUNT: u32 = OWN - 1;

/// The hardware of one PE in a run: whether each engine is busy, and when
/// each HBM pseudo-channel is free. Instances of several launches placed on
/// one PE share it, so they contend for its engines and channels; a run of
/// one launch has one instance per core.
pub(crate) struct Core {
    /// The PE.
    pub(crate) pe: PeId,
    busy: [bool; UNITS],
    /// When each engine was last freed.
    until: [Ps; UNITS],
    pc_free: Vec<Ps>,
    /// The instances on this PE, in launch order.
    pub(crate) insts: Vec<u32>,
}

impl Core {
    /// PE `pe`, idle, with `pcs` HBM pseudo-channels. A PE whose slice a
    /// run's DMAs reach but that runs no instance has a core with no
    /// instances: only its channels are used.
    pub(crate) fn new(pe: PeId, pcs: usize) -> Self {
        Core {
            pe,
            busy: [false; UNITS],
            until: [0; UNITS],
            pc_free: vec![0; pcs],
            insts: Vec::new(),
        }
    }

    /// Serves one access on the pseudo-channels `parts` (`(channel, ps)`
    /// each), first come first served, from `from` on: each channel takes
    /// its share when it is free. Returns when the first share began and
    /// when the last one ended (`from` twice for no share).
    pub(crate) fn serve(&mut self, parts: &[(u32, Ps)], from: Ps) -> (Ps, Ps) {
        let (mut first, mut end) = (Ps::MAX, from);
        for &(pc, ps) in parts {
            let st = self.pc_free[pc as usize].max(from);
            let e = st + ps;
            self.pc_free[pc as usize] = e;
            first = first.min(st);
            end = end.max(e);
        }
        (first.min(end), end)
    }

    /// Whether engine `u` is busy.
    pub(crate) fn busy(&self, u: usize) -> bool {
        self.busy[u]
    }

    /// Takes engine `u` (for `Unit::Free`, nothing).
    pub(crate) fn take(&mut self, u: Unit) {
        if u != Unit::Free {
            self.busy[u as usize] = true;
        }
    }

    /// Frees engine `u` at `now`.
    pub(crate) fn release(&mut self, u: Unit, now: Ps) {
        self.busy[u as usize] = false;
        self.until[u as usize] = self.until[u as usize].max(now);
    }

    /// Starts from what an earlier run left: the pseudo-channels' clocks,
    /// and the engines busy until the times returned (those later than
    /// `now`, which the caller frees when they come).
    pub(crate) fn resume(&mut self, from: &PeBusy, now: Ps) -> Vec<(usize, Ps)> {
        for (f, b) in self.pc_free.iter_mut().zip(&from.pcs) {
            *f = (*f).max(*b);
        }
        let mut later = Vec::new();
        for (u, &t) in from.engines.iter().enumerate() {
            if t > now {
                self.busy[u] = true;
                later.push((u, t));
            }
        }
        later
    }

    /// What this run leaves busy.
    pub(crate) fn left_busy(&self) -> PeBusy {
        PeBusy {
            engines: self.until,
            pcs: self.pc_free.clone(),
        }
    }
}

/// When one PE's hardware is free after a run: each engine, each HBM
/// pseudo-channel; a later run on the PE queues behind it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeBusy {
    /// Per engine (in [`Unit`] order), when it was last freed, ps.
    pub engines: [Ps; UNITS],
    /// Per HBM pseudo-channel, when it is free, ps.
    pub pcs: Vec<Ps>,
}

impl PeBusy {
    /// The same times moved by `by` ps (earlier for a negative `by`, not
    /// before 0).
    pub fn shifted(&self, by: i128) -> PeBusy {
        let at = |t: Ps| (i128::from(t) + by).clamp(0, i128::from(Ps::MAX)) as Ps;
        PeBusy {
            engines: self.engines.map(at),
            pcs: self.pcs.iter().map(|&t| at(t)).collect(),
        }
    }

    /// The later of the two, time by time.
    pub fn merge(&mut self, o: &PeBusy) {
        for (a, b) in self.engines.iter_mut().zip(o.engines) {
            *a = (*a).max(b);
        }
        if self.pcs.len() < o.pcs.len() {
            self.pcs.resize(o.pcs.len(), 0);
        }
        for (a, b) in self.pcs.iter_mut().zip(&o.pcs) {
            *a = (*a).max(*b);
        }
    }
}

/// Every instance's op progress in one array, instance after instance:
/// one word an op, so an op's count, flag and state share a cache line: its
/// dependencies not yet done (the low 29 bits, see [`OpProgress::remaining`]),
/// whether the instance has its own dependents of it ([`OWN`]) and its state
/// (see [`OpProgress::state`]).
///
/// One array rather than one per instance, so that it can sit on huge pages
/// ([`super::huge::vec_with_capacity`]): events visit the instances in no
/// order, and at thousands of instances a page an instance is more pages
/// than the TLB holds.
pub(crate) struct OpProgress(Vec<u32>);

impl OpProgress {
    /// Room for `ops` words.
    pub(crate) fn with_capacity(ops: usize) -> Self {
        OpProgress(super::huge::vec_with_capacity(ops))
    }

    /// Dependencies of `s`'s `op` not yet done.
    pub(crate) fn remaining(&self, s: &PeState, op: OpId) -> u32 {
        self.0[s.first + op.ix()] & COUNT
    }

    /// One more dependency of `s`'s `op` is done; `true` when it was the last.
    pub(crate) fn dependency_done(&mut self, s: &PeState, op: OpId) -> bool {
        let p = &mut self.0[s.first + op.ix()];
        debug_assert!(*p & COUNT > 0, "a dependency done twice");
        *p -= 1;
        *p & COUNT == 0
    }

    /// `s`'s `op`'s state: 0 before it starts, then [`STARTED`], then [`DONE`].
    pub(crate) fn state(&self, s: &PeState, op: usize) -> u8 {
        (self.0[s.first + op] >> 30) as u8
    }

    /// Asks for `s`'s `op`'s word to be brought into the cache (see
    /// [`super::cache`]).
    pub(crate) fn prefetch(&self, s: &PeState, op: OpId) {
        if let Some(w) = self.0.get(s.first + op.ix()) {
            super::cache::prefetch(w);
        }
    }

    /// Whether `s` has its own dependents of `op`.
    fn own(&self, s: &PeState, op: OpId) -> bool {
        self.0[s.first + op.ix()] & OWN != 0
    }

    /// Sets `s`'s `op`'s state.
    pub(crate) fn set_state(&mut self, s: &PeState, op: OpId, st: u8) {
        let p = &mut self.0[s.first + op.ix()];
        *p = (*p & (COUNT | OWN)) | (u32::from(st) << 30);
    }
}

/// Per-instance state.
///
/// Laid out by use (`repr(C)`, from a cache line's start): the first two
/// lines hold what every op of the instance reads or writes as it starts
/// and completes, then come the counters ops of one kind add to, and last
/// what sends, receives, remote DMAs and patched dependencies read.
/// At thousands of instances an event rarely finds its instance cached,
/// and the compiler's own order spread the hot fields over more lines.
#[repr(C, align(64))]
pub(crate) struct PeState {
    /// Where its ops' words start in the run's [`OpProgress`].
    first: usize,
    /// The program, possibly shared with other instances.
    pub(crate) prog: Arc<PeProgram>,
    dependents: Arc<Dependents>,
    /// Next op of each engine's queue (a program's ops are counted in
    /// `u32`, as its dependencies are).
    head: [u32; UNITS],
    /// Ops not yet done.
    pub(crate) left: usize,
    /// The index of its PE's [`Core`] in the run.
    pub(crate) core: u32,
    /// Whether its launch has begun and it has started (a straggler
    /// starts late): until then no engine serves it.
    pub(crate) started: bool,
    pub(crate) end_ps: Ps,
    pub(crate) busy_ps: [Ps; UNITS],
    pub(crate) flops: u64,
    pub(crate) hbm_read: u64,
    pub(crate) hbm_write: u64,
    pub(crate) sent: u64,
    pub(crate) received: u64,
    /// Bytes its DMAs read from memory elsewhere.
    pub(crate) remote_read: u64,
    /// Bytes its DMAs wrote to memory elsewhere.
    pub(crate) remote_write: u64,
    /// When its first op began.
    pub(crate) first_op_ps: Option<Ps>,
    /// This instance's channels, routes and HBM bytes.
    pub(crate) bind: Binding,
    /// Dependents where this instance's differ from the shared table's
    /// (the ops it holds are flagged [`OWN`] in the op progress).
    own_dependents: DepPatch,
    pub(crate) pe: PeId,
}

impl PeState {
    pub(crate) fn new(
        (pe, core): (PeId, u32),
        prog: Arc<PeProgram>,
        bind: Binding,
        dependents: Arc<Dependents>,
        (start, progress): (Ps, &mut OpProgress),
    ) -> Self {
        let n = prog.ops.len();
        // A launch's command budget keeps every count far below 2^29.
        let count = |k: usize| (k as u32).min(COUNT);
        let first = progress.0.len();
        progress
            .0
            .extend((0..n).map(|i| count(prog.deps_of(i).len())));
        let remaining = &mut progress.0[first..];
        let mut own_dependents = DepPatch::default();
        if !bind.deps.is_empty() {
            for (i, deps) in bind.deps.iter() {
                remaining[i as usize] = count(deps.len());
            }
            own_dependents = dependents.patch(&prog, &bind.deps);
            for (x, _) in own_dependents.iter() {
                remaining[x as usize] |= OWN;
            }
        }
        PeState {
            pe,
            core,
            first,
            dependents,
            own_dependents,
            bind,
            head: [0; UNITS],
            started: false,
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

    /// The ops that wait for `op`, as a range of entries for
    /// [`PeState::dependent`]: the shared table's, or past its end this
    /// instance's own.
    pub(crate) fn dependents_of(&self, op: OpId, progress: &OpProgress) -> std::ops::Range<usize> {
        let x = op.ix();
        if progress.own(self, op) {
            if let Some(r) = self.own_dependents.span(op.0) {
                let base = self.dependents.list.len();
                return base + r.start..base + r.end;
            }
        }
        self.dependents.range(x)
    }

    /// The `k`-th entry of the dependents.
    pub(crate) fn dependent(&self, k: usize) -> OpId {
        match self.dependents.list.get(k) {
            Some(&d) => OpId(d),
            None => OpId(self.own_dependents.item(k - self.dependents.list.len())),
        }
    }

    /// The op at the head of engine `u`'s queue, if it is ready (the
    /// caller checks that the engine is idle).
    pub(crate) fn ready_on(&self, u: usize, progress: &OpProgress) -> Option<OpId> {
        let &op = self.prog.queues[u].get(self.head[u] as usize)?;
        (progress.remaining(self, OpId(op)) == 0).then_some(OpId(op))
    }

    /// Marks `op` started and moves its engine's queue on; the caller takes
    /// the engine on the instance's core.
    pub(crate) fn begin(&mut self, op: OpId, progress: &mut OpProgress) -> Unit {
        progress.set_state(self, op, STARTED);
        let unit = self.prog.ops[op.ix()].unit;
        if unit != Unit::Free {
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

    /// The channels an HBM split of this instance keeps busy, and for how
    /// long: `at` is where an op's split starts in the program's bytes per
    /// pseudo-channel.
    pub(crate) fn split<'s>(
        &self,
        at: u32,
        splits: &'s super::engine::HbmSplits,
    ) -> &'s [(u32, Ps)] {
        splits.row(self.bind.pcs.get(at as usize / splits.n()))
    }

    /// Runs the HBM op `op` starting at `now` on the pseudo-channels of
    /// `core` (its PE's): each serves its share in turn. Returns when the
    /// last channel is done (before the access latency).
    pub(crate) fn hbm(
        &mut self,
        core: &mut Core,
        op: OpId,
        now: Ps,
        splits: &super::engine::HbmSplits,
    ) -> Ps {
        let OpKind::Hbm { pcs, bytes, write } = self.prog.ops[op.ix()].kind else {
            unreachable!("hbm() on an HBM op")
        };
        let (_, end) = core.serve(self.split(pcs, splits), now);
        if write {
            self.hbm_write += bytes;
        } else {
            self.hbm_read += bytes;
        }
        end
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::CmdId;
    use crate::passes::lower::Op;

    /// What every op of an instance reads or writes lies in its state's
    /// first two cache lines, and the state starts a line.
    #[test]
    fn an_instances_hot_state_fills_its_first_two_cache_lines() {
        use std::mem::{align_of, offset_of, size_of};
        assert_eq!(align_of::<PeState>(), 64);
        let hot = [
            (offset_of!(PeState, first), size_of::<usize>()),
            (offset_of!(PeState, prog), size_of::<Arc<PeProgram>>()),
            (
                offset_of!(PeState, dependents),
                size_of::<Arc<Dependents>>(),
            ),
            (offset_of!(PeState, head), size_of::<[u32; UNITS]>()),
            (offset_of!(PeState, left), size_of::<usize>()),
            (offset_of!(PeState, end_ps), size_of::<Ps>()),
            (offset_of!(PeState, busy_ps), size_of::<[Ps; UNITS]>()),
            (offset_of!(PeState, core), size_of::<u32>()),
            (offset_of!(PeState, started), size_of::<bool>()),
        ];
        for (at, len) in hot {
            assert!(at + len <= 128, "a hot field ends at byte {}", at + len);
        }
    }

    /// A program of `deps.len()` zero-time joins with these dependencies.
    fn joins(deps: &[&[u32]]) -> PeProgram {
        let mut p = PeProgram::default();
        p.dep_start.push(0);
        for (i, d) in deps.iter().enumerate() {
            p.ops.push(Op {
                unit: Unit::Free,
                kind: OpKind::Nop,
                cmd: CmdId(i as u32),
                completes: true,
            });
            p.deps.extend_from_slice(d);
            p.dep_start.push(p.deps.len() as u32);
        }
        p
    }

    /// Each op's dependents as the engine walks them.
    fn walk(s: &PeState, progress: &OpProgress) -> Vec<Vec<u32>> {
        (0..s.prog.ops.len() as u32)
            .map(|op| {
                s.dependents_of(OpId(op), progress)
                    .map(|k| s.dependent(k).0)
                    .collect()
            })
            .collect()
    }

    #[test]
    fn an_instance_sharing_a_program_runs_its_own_dependencies() {
        // Same ops; op 3 waits for 1 (not 0), op 4 for 0 twice and 3, op 5 for nothing.
        let shared = joins(&[&[], &[0], &[0, 1], &[0], &[2, 3], &[4]]);
        let own = joins(&[&[], &[0], &[0, 1], &[1], &[0, 0, 3], &[]]);
        assert!(shared.same_template(&own));
        let patch = shared.dep_patch(&own);
        assert_eq!(
            patch.iter().map(|(op, _)| op).collect::<Vec<_>>(),
            [3, 4, 5]
        );
        let shared = Arc::new(shared);
        let dependents = Arc::new(Dependents::of(&shared));
        let bind = Binding {
            deps: patch,
            ..Binding::default()
        };
        let pe = PeId::new(0, 0, 0);
        // Both instances in one progress array: the second one's words
        // start after the first's.
        let mut ops = OpProgress::with_capacity(0);
        let s = PeState::new(
            (pe, 0),
            Arc::clone(&shared),
            bind,
            dependents,
            (0, &mut ops),
        );
        // What the instance's own program, unshared, would give.
        let own = Arc::new(own);
        let alone = PeState::new(
            (pe, 0),
            Arc::clone(&own),
            Binding::default(),
            Arc::new(Dependents::of(&own)),
            (0, &mut ops),
        );
        let counts = |s: &PeState, ops: &OpProgress| {
            (0..s.prog.ops.len() as u32)
                .map(|op| ops.remaining(s, OpId(op)))
                .collect::<Vec<_>>()
        };
        assert_eq!(counts(&s, &ops), counts(&alone, &ops));
        assert_eq!(walk(&s, &ops), walk(&alone, &ops));
        assert_eq!(walk(&alone, &ops)[0], [1, 2, 4, 4]);
        // The flag leaves the counts and states as they were.
        for op in 0..s.prog.ops.len() as u32 {
            ops.set_state(&s, OpId(op), DONE);
            assert_eq!(ops.state(&s, op as usize), DONE);
        }
        assert_eq!(counts(&s, &ops), counts(&alone, &ops));
        assert_eq!(walk(&s, &ops), walk(&alone, &ops));
    }
}
