//! Data races between program instances, found while data runs (ADR 0019).
//!
//! Every load, stream and store is an access to bytes of one buffer. A
//! shadow of each buffer keeps, per range of bytes, the last access that
//! wrote it and the reads since. An access of another instance's bytes must
//! be ordered after them: a race is two accesses of different instances to
//! the same bytes, at least one a write, with neither ordered before the
//! other.
//!
//! Ordering is what the kernel language guarantees whatever the timing:
//! within an instance the graph's edges (data, memory order, one peer's sends
//! and receives) and the program order behind a blocking `recv` or a `wait`
//! (later commands are issued only once it completes); across instances a
//! message: a send's tile leaves after everything the send is ordered
//! after, and its receive completes after that. Accesses of one instance to
//! the same bytes are always ordered (the graph orders them), so only bytes
//! another instance touched cost a check, which walks back from the new
//! access through these edges and stops at commands that completed before
//! the old access: its cost is the commands between the two accesses, paid
//! only where instances share memory.

use super::error::{Race, RaceAccess, SimError};
use crate::ir::{CmdId, Command, CommandGraph, MemRef};
use crate::machine::Machine;
use crate::passes::pair::Channels;
use crate::PeId;
use rustc_hash::{FxHashMap, FxHashSet};
use smallvec::SmallVec;
use std::collections::BTreeMap;

/// One command of one instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Acc {
    inst: u32,
    cmd: u32,
}

/// A range of bytes of a buffer and the accesses a later access must follow.
#[derive(Clone, Debug)]
struct Seg {
    end: u64,
    write: Option<Acc>,
    reads: SmallVec<[Acc; 2]>,
}

/// The race detector of one data run.
pub(crate) struct RaceCheck {
    pes: Vec<PeId>,
    /// The launch of each instance, in a run of several.
    launch_of: Vec<u32>,
    /// `before[b]` lists the launches that end before launch `b` begins
    /// (what it waits for, transitively): their accesses are ordered
    /// before its own.
    before: Vec<Vec<bool>>,
    /// Per buffer id: disjoint byte ranges by first byte.
    shadow: FxHashMap<u64, BTreeMap<u64, Seg>>,
    /// Per instance and command: when it completed, as a count of
    /// completions; `u64::MAX` until it does.
    done: Vec<Vec<u64>>,
    seq: u64,
    /// Per channel, built on first need: its sends and its receives, in
    /// program order (the k-th receive takes the k-th send's message).
    pairs: FxHashMap<u32, (Vec<u32>, Vec<u32>)>,
    /// Per instance, built on first need: its blocking receives and waits in program order.
    blocking: Vec<Option<Vec<u32>>>,
    holes: Vec<(u64, u64)>,
}

impl RaceCheck {
    pub(crate) fn new(graphs: &[CommandGraph], pes: &[PeId]) -> Self {
        RaceCheck {
            pes: pes.to_vec(),
            launch_of: vec![0; pes.len()],
            before: vec![vec![false]],
            shadow: FxHashMap::default(),
            done: graphs.iter().map(|g| vec![u64::MAX; g.len()]).collect(),
            seq: 0,
            pairs: FxHashMap::default(),
            blocking: vec![None; graphs.len()],
            holes: Vec::new(),
        }
    }

    /// Launches of a run of several: the launch of each instance, and what
    /// each launch waits for (earlier launches only).
    pub(crate) fn with_launches(mut self, launch_of: Vec<u32>, after: &[Vec<u32>]) -> Self {
        let n = after.len();
        let mut before = vec![vec![false; n]; n];
        for (b, list) in after.iter().enumerate() {
            for &a in list {
                before[b][a as usize] = true;
                let earlier = before[a as usize].clone();
                for (x, e) in earlier.into_iter().enumerate() {
                    before[b][x] |= e;
                }
            }
        }
        self.launch_of = launch_of;
        self.before = before;
        self
    }

    /// Whether every access of `a`'s launch is ordered before `b`'s launch.
    fn launch_before(&self, a: Acc, b: Acc) -> bool {
        let (la, lb) = (
            self.launch_of[a.inst as usize] as usize,
            self.launch_of[b.inst as usize] as usize,
        );
        la != lb && self.before[lb][la]
    }

    /// Command `cmd` of `inst` completed (after its access, if any, was checked).
    pub(crate) fn completed(&mut self, inst: usize, cmd: CmdId) {
        self.done[inst][cmd.index()] = self.seq;
        self.seq += 1;
    }

    fn done_of(&self, a: Acc) -> u64 {
        self.done[a.inst as usize][a.cmd as usize]
    }

    /// Splits the segment of `map` containing `at` so that one starts there.
    fn split(map: &mut BTreeMap<u64, Seg>, at: u64) {
        let Some((&s, seg)) = map.range(..at).next_back() else {
            return;
        };
        if seg.end > at {
            let tail = seg.clone();
            map.get_mut(&s).expect("segment present").end = at;
            map.insert(at, tail);
        }
    }

    /// Records the access of command `cmd` of `inst` (which is completing)
    /// to the bytes `runs`, a store when `write`, and checks it against the
    /// earlier accesses of other instances to them.
    pub(crate) fn access(
        &mut self,
        m: &Machine,
        (graphs, channels): (&[CommandGraph], &Channels),
        (inst, cmd): (usize, CmdId),
        write: bool,
        runs: &[(u64, u64)],
    ) -> Result<(), SimError> {
        let me = Acc {
            inst: inst as u32,
            cmd: cmd.0,
        };
        let pe = self.pes[inst];
        // Earlier accesses of other instances, with the first range of bytes shared with each.
        let mut earlier: SmallVec<[(Acc, u64, u64); 4]> = SmallVec::new();
        for &(va, len) in runs {
            let Some(end) = va.checked_add(len).filter(|_| len > 0) else {
                continue;
            };
            // Bytes outside every buffer fail the access itself (a memory error).
            let Some(id) = m.buffer_id_at(pe, va) else {
                continue;
            };
            let map = self.shadow.entry(id).or_default();
            // Most accesses cover a range an earlier one covered exactly.
            if let Some(seg) = map.get_mut(&va).filter(|s| s.end == end) {
                touch(seg, va, me, write, &mut earlier);
                continue;
            }
            Self::split(map, va);
            Self::split(map, end);
            let mut cursor = va;
            for (k, seg) in map.range(va..end) {
                if *k > cursor {
                    self.holes.push((cursor, *k));
                }
                cursor = seg.end;
            }
            if cursor < end {
                self.holes.push((cursor, end));
            }
            for (lo, hi) in self.holes.drain(..) {
                map.insert(
                    lo,
                    Seg {
                        end: hi,
                        write: None,
                        reads: SmallVec::new(),
                    },
                );
            }
            for (&lo, seg) in map.range_mut(va..end) {
                touch(seg, lo, me, write, &mut earlier);
            }
        }
        // Accesses of a launch this one waited for are ordered before it.
        earlier.retain(|e| !self.launch_before(e.0, me));
        if earlier.is_empty() {
            return Ok(());
        }
        match self.unordered(graphs, channels, me, &earlier) {
            None => Ok(()),
            Some(k) => {
                let (x, lo, hi) = earlier[k];
                Err(SimError::Race(Box::new(Race {
                    first: self.describe(graphs, x, lo, hi),
                    second: self.describe(graphs, me, lo, hi),
                })))
            }
        }
    }

    /// Both sides of a race, as the report names them.
    fn describe(&self, graphs: &[CommandGraph], a: Acc, lo: u64, hi: u64) -> RaceAccess {
        let node = graphs[a.inst as usize].node(CmdId(a.cmd));
        let (r, write): (&MemRef, bool) = match &node.cmd {
            Command::Load { src, .. } | Command::Stream { src } => (src, false),
            Command::Store { dst, .. } => (dst, true),
            _ => unreachable!("only memory commands are recorded"),
        };
        let es = r.dtype.size() as u64;
        RaceAccess {
            pe: self.pes[a.inst as usize],
            loc: node.loc.clone(),
            write,
            param: r.name.to_string(),
            elems: (
                lo.saturating_sub(r.base_va) / es,
                hi.saturating_sub(r.base_va).div_ceil(es),
            ),
        }
    }

    /// The commands `a` directly follows: its graph dependencies, the last
    /// blocking receive or wait before it, and for a receive its message's send.
    fn preds(&mut self, graphs: &[CommandGraph], channels: &Channels, a: Acc, out: &mut Vec<Acc>) {
        let g = &graphs[a.inst as usize];
        let n = petgraph::graph::NodeIndex::new(a.cmd as usize);
        out.extend(
            g.graph
                .neighbors_directed(n, petgraph::Direction::Incoming)
                .map(|p| Acc {
                    inst: a.inst,
                    cmd: p.index() as u32,
                }),
        );
        let blocking = self.blocking[a.inst as usize].get_or_insert_with(|| {
            g.nodes()
                .filter(|(_, node)| {
                    matches!(
                        node.cmd,
                        Command::Recv {
                            is_async: false,
                            ..
                        } | Command::Wait { .. }
                    )
                })
                .map(|(id, _)| id.0)
                .collect()
        });
        let k = blocking.partition_point(|&b| b < a.cmd);
        if k > 0 {
            out.push(Acc {
                inst: a.inst,
                cmd: blocking[k - 1],
            });
        }
        if !matches!(g.node(CmdId(a.cmd)).cmd, Command::Recv { .. }) {
            return;
        }
        let Some(c) = channels.of_cmd(a.inst as usize, CmdId(a.cmd)) else {
            return;
        };
        let ch = &channels.list[c as usize];
        let (sends, recvs) = self.pairs.entry(c).or_insert_with(|| {
            let of = |i: usize, send: bool| -> Vec<u32> {
                channels.comm_cmds[i]
                    .iter()
                    .zip(&channels.of_comm[i])
                    .filter(|(id, k)| {
                        **k == c && matches!(graphs[i].node(**id).cmd, Command::Send { .. }) == send
                    })
                    .map(|(id, _)| id.0)
                    .collect()
            };
            (of(ch.src, true), of(ch.dst, false))
        });
        if let Some(&s) = recvs.binary_search(&a.cmd).ok().and_then(|k| sends.get(k)) {
            out.push(Acc {
                inst: ch.src as u32,
                cmd: s,
            });
        }
    }

    /// The first of `earlier` that is not ordered before `from`, if any: a
    /// walk back from `from` that skips commands completed before the
    /// oldest of them (none of those can follow it).
    fn unordered(
        &mut self,
        graphs: &[CommandGraph],
        channels: &Channels,
        from: Acc,
        earlier: &[(Acc, u64, u64)],
    ) -> Option<usize> {
        let bound = earlier.iter().map(|e| self.done_of(e.0)).min()?;
        let mut found = vec![false; earlier.len()];
        let mut left = earlier.len();
        let mut seen: FxHashSet<Acc> = FxHashSet::default();
        let mut stack = Vec::new();
        self.preds(graphs, channels, from, &mut stack);
        while let Some(p) = stack.pop() {
            if self.done_of(p) < bound || !seen.insert(p) {
                continue;
            }
            for (k, e) in earlier.iter().enumerate() {
                if !found[k] && e.0 == p {
                    found[k] = true;
                    left -= 1;
                }
            }
            if left == 0 {
                return None;
            }
            self.preds(graphs, channels, p, &mut stack);
        }
        found.iter().position(|f| !f)
    }
}

/// Checks access `me` against segment `seg` (first byte `lo`), noting the
/// earlier accesses of other instances it must follow, and records it.
fn touch(
    seg: &mut Seg,
    lo: u64,
    me: Acc,
    write: bool,
    earlier: &mut SmallVec<[(Acc, u64, u64); 4]>,
) {
    let mut note = |x: Acc| match earlier.iter_mut().find(|e| e.0 == x) {
        Some(e) if e.2 == lo => e.2 = seg.end,
        Some(_) => {}
        None => earlier.push((x, lo, seg.end)),
    };
    if let Some(w) = seg.write.filter(|w| w.inst != me.inst) {
        note(w);
    }
    if write {
        for r in seg.reads.iter().filter(|r| r.inst != me.inst) {
            note(*r);
        }
        seg.write = Some(me);
        seg.reads.clear();
    } else if seg.reads.last() != Some(&me) {
        seg.reads.push(me);
    }
}
