//! Hierarchical reduce-scatter and all-gather, addressed by rank: rings
//! inside each group of ranks (the PEs of a cube), and rings across the
//! groups, so that the slower links between cubes and SIPs carry only the
//! part of the vector one PE of a group is responsible for.
//!
//! Ranks are cut into groups of `pes` consecutive ranks (the last group may
//! be smaller, with `size` members); with ranks in structural order a group
//! is a cube. Chunk `c` (of `w` chunks) has the *position* `c mod pes`, and
//! inside a group the member at `position mod size` answers for it: in a
//! whole group every member answers for the chunks of one position, in the
//! last group a member may answer for several.
//!
//! The reduce-scatter first runs a ring reduce-scatter inside each group in
//! which member `m`'s block is every chunk it answers for; afterwards it
//! holds them reduced over its group. Then, for each position `j`, the
//! members that answer for `j` in every group form a ring across groups
//! (one member per group) that reduce-scatters the chunks `h pes + j`, one
//! per group `h`: each lands on its own rank, reduced over every rank. A
//! member of the last group that answers for several positions takes part
//! in their rings one after the other.
//!
//! The all-gather runs the same rings backwards: across groups first (each
//! member collects the chunks of its positions from every group), then
//! inside each group. Either way a rank sends `(size - 1) / size` of what it
//! answers for inside its group, about `(pes - 1) / w` of the vector, and
//! only `1 / w` of it per step across groups, against the flat ring's
//! `(w - 1) / w` over whatever links the ring crosses.
//!
//! A block may be many regions, every one cut into pieces of at most `seg`
//! elements. Each ring runs as one stream of pieces ([`ring_blocks`]): a
//! piece received in one step is combined (or stored) and sent on in the
//! next straight from TCM, so the steps pipeline.

use super::common::*;
use super::Builtin;
use crate::cost::{steps_ns, ModelInput, Step};
use crate::registry::{Collective, MapKind};
use kernbench_core::PeId;
use kernbench_tl::prelude::*;
use kernbench_tl::Element;
use std::collections::VecDeque;

/// How `w` ranks split into groups of `pes`: the number of groups and the size of each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Groups {
    /// Ranks.
    pub w: usize,
    /// Members of a whole group.
    pub pes: usize,
    /// Groups (the last may be smaller).
    pub count: usize,
}

impl Groups {
    /// `w` ranks in groups of `pes` (at least 1, at most `w`).
    pub fn new(w: usize, pes: usize) -> Groups {
        let pes = pes.clamp(1, w.max(1));
        Groups {
            w,
            pes,
            count: w.div_ceil(pes),
        }
    }

    /// Members of group `g`.
    pub fn size(&self, g: usize) -> usize {
        self.pes.min(self.w - g * self.pes)
    }

    /// The rank of group `g` that answers for position `j`.
    pub fn holder(&self, g: usize, j: usize) -> usize {
        g * self.pes + j % self.size(g)
    }

    /// The positions member `m` of group `g` answers for, in order.
    pub fn positions(&self, g: usize, m: usize) -> Vec<usize> {
        (m..self.pes).step_by(self.size(g)).collect()
    }

    /// The chunks member `m` of group `g` answers for, in order.
    pub fn chunks(&self, g: usize, m: usize) -> Vec<usize> {
        let size = self.size(g);
        (0..self.w).filter(|c| c % self.pes % size == m).collect()
    }
}

/// The pieces of chunks `cs` (ascending) of `n` elements cut into `w`
/// chunks: adjacent chunks merged into one region, each region cut into
/// pieces of at most `seg` elements.
pub fn chunk_pieces(n: usize, w: usize, cs: &[usize], seg: usize) -> Vec<(usize, usize)> {
    let mut regions: Vec<(usize, usize)> = Vec::new();
    for &c in cs {
        let (s, l) = chunk(n, w, c);
        if l == 0 {
            continue;
        }
        match regions.last_mut() {
            Some((rs, rl)) if *rs + *rl == s => *rl += l,
            _ => regions.push((s, l)),
        }
    }
    regions
        .into_iter()
        .flat_map(|(s, l)| pieces(s, l, seg))
        .collect()
}

/// Pieces `(offset, len)` of a rank's vector.
pub type Pieces = Vec<(usize, usize)>;

/// A ring over some ranks: the members in ring order, this rank's
/// position, and the block (pieces of the vector) that ends at each member.
#[derive(Clone, Debug)]
pub struct BlockRing {
    /// Ranks, in ring order.
    pub members: Vec<usize>,
    /// This rank's position.
    pub me: usize,
    /// The block of each member.
    pub blocks: Vec<Vec<(usize, usize)>>,
}

/// Reduce-scatter over a [`BlockRing`]: afterwards this rank's block holds
/// its reduction over the ring. In step `s` a rank sends block `me - s - 1`
/// to the next member and receives block `me - s - 2` from the previous
/// one, which it combines with its own copy and sends on in step `s + 1`.
#[kernel_fn]
pub fn ring_reduce_scatter_blocks<T: Element>(
    buf: Ptr<T>,
    base: usize,
    ring: &BlockRing,
    op: RedOp,
) {
    ring_blocks(buf, base, ring, Some(op));
}

/// All-gather over a [`BlockRing`]: this rank's block is its own to start
/// with; afterwards every block is everywhere. In step `s` a rank sends
/// block `me - s` to the next member and receives block `me - s - 1` from
/// the previous one, which it stores and sends on in step `s + 1`.
#[kernel_fn]
pub fn ring_all_gather_blocks<T: Element>(buf: Ptr<T>, base: usize, ring: &BlockRing) {
    ring_blocks(buf, base, ring, None);
}

/// The pieces a ring rank sends, step after step (`reduce`: a
/// reduce-scatter, else an all-gather), and the pieces it receives: the
/// same blocks one step later, so the `k`-th received piece is the one sent
/// on as piece `k + first` (`first` being the first step's pieces).
pub fn ring_block_order(ring: &BlockRing, reduce: bool) -> (Pieces, Pieces) {
    let m = ring.members.len();
    let lead = usize::from(reduce);
    let mut sends = Vec::new();
    let mut recvs = Vec::new();
    for s in 0..m.saturating_sub(1) {
        sends.extend(&ring.blocks[(ring.me + 2 * m - s - lead) % m]);
        recvs.extend(&ring.blocks[(ring.me + 2 * m - s - lead - 1) % m]);
    }
    (sends, recvs)
}

/// One pass over a [`BlockRing`] as one stream of messages, as
/// [`ring_round`] does for contiguous chunks: the first step sends this
/// rank's own pieces; every later piece is one received the step before,
/// combined with this rank's copy (reduce-scatter, `op` given) or stored
/// (all-gather), and sent on straight from TCM, so HBM is read once and
/// written once per piece and step. Receives are posted `WINDOW` pieces
/// ahead of the sends.
#[kernel_fn]
pub fn ring_blocks<T: Element>(buf: Ptr<T>, base: usize, ring: &BlockRing, op: Option<RedOp>) {
    let m = ring.members.len();
    if m <= 1 {
        return;
    }
    let (next, prev) = (
        ring.members[(ring.me + 1) % m],
        ring.members[(ring.me + m - 1) % m],
    );
    let (sends, recvs) = ring_block_order(ring, op.is_some());
    let own = ring_own_pieces(ring, op.is_some());
    let mut pending: VecDeque<RecvFuture<T>> = VecDeque::new();
    let mut posted = 0;
    for (idx, &(off, len)) in sends.iter().enumerate() {
        let ahead = recvs.len().min(idx + WINDOW + 1);
        for &(_, l) in &recvs[posted.min(ahead)..ahead] {
            pending.push_back(tl::recv_async::<T>(prev, [l]));
        }
        posted = posted.max(ahead);
        let at = buf.offset(base + off);
        let x = if idx < own {
            tl::load(at, [len])
        } else {
            let got = tl::wait(pending.pop_front().expect("a receive per forwarded piece"));
            match op {
                Some(op) => combine(&got, &tl::load(at, [len]), op),
                None => {
                    tl::store(at, &got);
                    got
                }
            }
        };
        tl::send(next, &x);
    }
    for &(_, l) in &recvs[posted..] {
        pending.push_back(tl::recv_async::<T>(prev, [l]));
    }
    // The last step's pieces end here: this rank's block (reduce-scatter)
    // or the last block to arrive (all-gather).
    let tail = &recvs[recvs.len() - pending.len()..];
    for (fut, &(off, len)) in pending.into_iter().zip(tail) {
        let at = buf.offset(base + off);
        let got = tl::wait(fut);
        match op {
            Some(op) => {
                let y = combine(&got, &tl::load(at, [len]), op);
                tl::store(at, &y);
            }
            None => tl::store(at, &got),
        }
    }
}

/// How many of the pieces [`ring_block_order`] sends are this rank's own
/// (the first step's block).
pub fn ring_own_pieces(ring: &BlockRing, reduce: bool) -> usize {
    let m = ring.members.len();
    ring.blocks[(ring.me + m - usize::from(reduce)) % m].len()
}

/// Some ranks of a launch seen as one level of the hierarchy: the launch
/// ranks of its members, in order, and the chunk each member ends with
/// (none for a place of a smaller last group that has no rank).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Level {
    /// Launch ranks.
    pub members: Vec<usize>,
    /// The chunk each member ends with.
    pub owned: Vec<Option<usize>>,
}

impl Level {
    /// Every rank of a launch of `w`, rank `r` ending with chunk `r`.
    pub fn launch(w: usize) -> Level {
        Level {
            members: (0..w).collect(),
            owned: (0..w).map(Some).collect(),
        }
    }

    /// The ring inside member `me`'s group of `gs`: member `m`'s block is
    /// every chunk it answers for, over `n` elements cut into `w` chunks.
    pub fn group_ring(&self, gs: &Groups, me: usize, n: usize, w: usize, seg: usize) -> BlockRing {
        let g = me / gs.pes;
        let size = gs.size(g);
        BlockRing {
            members: (0..size).map(|m| self.members[g * gs.pes + m]).collect(),
            me: me - g * gs.pes,
            blocks: (0..size)
                .map(|m| {
                    let cs: Vec<usize> = gs
                        .chunks(g, m)
                        .into_iter()
                        .filter_map(|x| self.owned[x])
                        .collect();
                    chunk_pieces(n, w, &cs, seg)
                })
                .collect(),
        }
    }

    /// The level across the groups of `gs` for position `j`: the member of
    /// each group that answers for `j`, ending with the chunk of that
    /// group's member at `j` (if the group has one).
    pub fn across(&self, gs: &Groups, j: usize) -> Level {
        Level {
            members: (0..gs.count)
                .map(|h| self.members[gs.holder(h, j)])
                .collect(),
            owned: (0..gs.count)
                .map(|h| {
                    let x = h * gs.pes + j;
                    if x < gs.w {
                        self.owned[x]
                    } else {
                        None
                    }
                })
                .collect(),
        }
    }

    /// The ring over every member, member `i`'s block its own chunk.
    pub fn flat_ring(&self, me: usize, n: usize, w: usize, seg: usize) -> BlockRing {
        BlockRing {
            members: self.members.clone(),
            me,
            blocks: self
                .owned
                .iter()
                .map(|c| match c {
                    Some(c) => chunk_pieces(n, w, &[*c], seg),
                    None => Vec::new(),
                })
                .collect(),
        }
    }
}

/// Reduce-scatter over `level` (this rank its member `me`) of `n` elements
/// cut into `w` chunks, in groups of `sizes[0]`, the rings across them in
/// groups of `sizes[1]`, and so on; the last level is one flat ring.
#[kernel_fn]
pub fn level_reduce_scatter<T: Element>(
    buf: Ptr<T>,
    base: usize,
    (n, w): (usize, usize),
    seg: usize,
    op: RedOp,
    (level, me): (&Level, usize),
    sizes: &[usize],
) {
    let Some((&pes, rest)) = sizes.split_first() else {
        ring_reduce_scatter_blocks(buf, base, &level.flat_ring(me, n, w, seg), op);
        return;
    };
    let gs = Groups::new(level.members.len(), pes);
    let g = me / gs.pes;
    ring_reduce_scatter_blocks(buf, base, &level.group_ring(&gs, me, n, w, seg), op);
    if gs.count > 1 {
        for j in gs.positions(g, me - g * gs.pes) {
            let across = level.across(&gs, j);
            level_reduce_scatter(buf, base, (n, w), seg, op, (&across, g), rest);
        }
    }
}

/// All-gather over `level`: [`level_reduce_scatter`]'s rings in the other order.
#[kernel_fn]
pub fn level_all_gather<T: Element>(
    buf: Ptr<T>,
    base: usize,
    (n, w): (usize, usize),
    seg: usize,
    level: &Level,
    me: usize,
    sizes: &[usize],
) {
    let Some((&pes, rest)) = sizes.split_first() else {
        ring_all_gather_blocks(buf, base, &level.flat_ring(me, n, w, seg));
        return;
    };
    let gs = Groups::new(level.members.len(), pes);
    let g = me / gs.pes;
    if gs.count > 1 {
        for j in gs.positions(g, me - g * gs.pes) {
            let across = level.across(&gs, j);
            level_all_gather(buf, base, (n, w), seg, &across, g, rest);
        }
    }
    ring_all_gather_blocks(buf, base, &level.group_ring(&gs, me, n, w, seg));
}

/// Hierarchical reduce-scatter of `n` elements per rank, in groups of `pes`
/// ranks (a cube) and groups of `cubes` of those (a SIP): rank `r` ends
/// with chunk `r` reduced over every rank.
#[kernel_fn]
pub fn hierarchical_reduce_scatter<T: Element>(
    buf: Ptr<T>,
    n: usize,
    seg: usize,
    op: RedOp,
    pes: usize,
    cubes: usize,
) {
    let (w, r) = (tl::num_ranks(), tl::rank());
    let level = Level::launch(w);
    level_reduce_scatter(buf, r * n, (n, w), seg, op, (&level, r), &[pes, cubes]);
}

/// Hierarchical all-gather of `n` elements per rank, in groups of `pes`
/// ranks (a cube) and groups of `cubes` of those (a SIP): rank `r`
/// contributes chunk `r` and ends with every chunk.
#[kernel_fn]
pub fn hierarchical_all_gather<T: Element>(
    buf: Ptr<T>,
    n: usize,
    seg: usize,
    pes: usize,
    cubes: usize,
) {
    let (w, r) = (tl::num_ranks(), tl::rank());
    let level = Level::launch(w);
    level_all_gather(buf, r * n, (n, w), seg, &level, r, &[pes, cubes]);
}

/// Hierarchical reduce-scatter addressed by rank: a ring inside each group of `pes` ranks (a cube), then rings across the cubes of a SIP, then across SIPs; rank `r` ends with the reduction of chunk `r`.
#[kernel]
pub fn hier_reduce_scatter<T: Element>(
    buf: Ptr<T>,
    n: usize,
    #[constexpr] seg: usize,
    #[constexpr] op: RedOp,
    pes: usize,
    cubes: usize,
) {
    hierarchical_reduce_scatter(buf, n, seg, op, pes, cubes);
}

/// Hierarchical all-gather addressed by rank: rings across SIPs, then across the cubes of a SIP, then inside each cube of `pes` ranks; rank `r` contributes chunk `r` and ends with all of them.
#[kernel]
pub fn hier_all_gather<T: Element>(
    buf: Ptr<T>,
    n: usize,
    #[constexpr] seg: usize,
    pes: usize,
    cubes: usize,
) {
    hierarchical_all_gather(buf, n, seg, pes, cubes);
}

/// The steps of the hierarchical reduce-scatter (`gather` false) or
/// all-gather (`gather` true) of `bytes` per rank over `pes` in groups of
/// `sizes[0]` ranks, then `sizes[1]` of those, and so on (see
/// [`level_reduce_scatter`]): the ring steps inside the
/// groups, each member passing on one block (the chunks it answers for),
/// then the steps of the rings across groups, those of every position
/// running side by side. The all-gather runs them in the other order.
/// Pieces are sent on from TCM, so a step reads this rank's copy of each
/// piece it receives (reduce-scatter) or writes it (all-gather), once. The
/// members of a smaller last group that take part in several rings across
/// groups run them one after the other; the steps here count each ring's
/// steps once.
pub fn hier_ring_steps(
    pes: &[PeId],
    sizes: &[usize],
    bytes: f64,
    seg_bytes: u64,
    issue_ns: f64,
    gather: bool,
) -> Vec<Step> {
    let w = pes.len();
    if w <= 1 {
        return Vec::new();
    }
    let unit = Unit {
        chunk: bytes / w as f64,
        seg: seg_bytes.max(1) as f64,
        // A piece received and sent on costs a receive, a wait and a send,
        // and a load and a combine (reduce-scatter) or a store (all-gather).
        piece_ns: if gather { 4.0 } else { 5.0 } * issue_ns,
    };
    let mut steps = level_steps(pes, &Level::launch(w), sizes, &unit);
    if gather {
        steps.reverse();
    }
    steps
}

/// Chunk bytes, piece bytes and the issue time of one piece, for [`level_steps`].
struct Unit {
    chunk: f64,
    seg: f64,
    piece_ns: f64,
}

/// The reduce-scatter steps of one level (see [`hier_ring_steps`]).
fn level_steps(pes: &[PeId], level: &Level, sizes: &[usize], unit: &Unit) -> Vec<Step> {
    let len = level.members.len();
    // One ring over `ring` (indices into the level) with blocks of
    // `block(i)` chunks, each cut into pieces.
    let per_chunk = (unit.chunk / unit.seg).ceil().max(1.0);
    let ring_steps = |ring: &[usize], block: &dyn Fn(usize) -> f64, steps: &mut Vec<Step>| {
        let m = ring.len();
        for s in 0..m.saturating_sub(1) {
            if steps.len() <= s {
                steps.push(Step {
                    msgs: Vec::new(),
                    hbm_bytes: 0.0,
                    issue_ns: 0.0,
                    lead: None,
                });
            }
            for i in 0..m {
                let chunks = block((i + 2 * m - s - 1) % m);
                if chunks > 0.0 {
                    let x = chunks * unit.chunk;
                    let (a, b) = (level.members[ring[i]], level.members[ring[(i + 1) % m]]);
                    let st = &mut steps[s];
                    st.msgs.push((pes[a], pes[b], x));
                    st.hbm_bytes = st.hbm_bytes.max(x);
                    st.issue_ns = st.issue_ns.max(chunks * per_chunk * unit.piece_ns);
                }
            }
        }
    };
    let mut steps = Vec::new();
    let Some((&group, rest)) = sizes.split_first() else {
        let ring: Vec<usize> = (0..len).collect();
        let block = |i: usize| if level.owned[i].is_some() { 1.0 } else { 0.0 };
        ring_steps(&ring, &block, &mut steps);
        return steps;
    };
    let gs = Groups::new(len, group);
    for g in 0..gs.count {
        let size = gs.size(g);
        let ring: Vec<usize> = (0..size).map(|m| g * gs.pes + m).collect();
        let block = |m: usize| {
            let owned = gs
                .chunks(g, m)
                .into_iter()
                .filter(|&x| level.owned[x].is_some());
            owned.count() as f64
        };
        ring_steps(&ring, &block, &mut steps);
    }
    if gs.count > 1 {
        let mut across: Vec<Step> = Vec::new();
        for j in 0..gs.pes {
            for (k, st) in level_steps(pes, &level.across(&gs, j), rest, unit)
                .into_iter()
                .enumerate()
            {
                match across.get_mut(k) {
                    Some(a) => {
                        a.msgs.extend(st.msgs);
                        a.hbm_bytes = a.hbm_bytes.max(st.hbm_bytes);
                        a.issue_ns = a.issue_ns.max(st.issue_ns);
                    }
                    None => across.push(st),
                }
            }
        }
        steps.extend(across);
    }
    steps
}

/// The model of [`hier_reduce_scatter`] (`gather` false) or
/// [`hier_all_gather`]: their steps ([`hier_ring_steps`]) in groups of a
/// cube's PEs, then of a SIP's cubes.
fn hier_ring_cost(m: &ModelInput<'_>, gather: bool) -> crate::cost::Cost {
    let sizes = [
        m.topo.pes_per_cube() as usize,
        m.topo.cubes_per_sip() as usize,
    ];
    let spec = m.topo.pe_spec();
    let issue = (spec.cpu_overhead_ps() + spec.sched_overhead_ps()) as f64 / 1000.0;
    let steps = hier_ring_steps(m.pes, &sizes, m.bytes, m.algo.seg_bytes, issue, gather);
    if gather {
        return steps_ns(m.topo, &steps);
    }
    // A reduce-scatter step loads and combines what lands before sending
    // it on.
    let pe = crate::cost::PeFigures::of(m.topo);
    let steps = crate::cost::with_leads(steps, m.seg(), |x| pe.reduce_lat(x));
    steps_ns(m.topo, &steps)
}

/// [`hier_reduce_scatter`]: its steps ([`hier_ring_steps`]) in groups of a
/// cube's PEs, then of a SIP's cubes.
pub const HIER_REDUCE_SCATTER: Builtin = Builtin {
    kernel: &hier_reduce_scatter,
    collective: Collective::ReduceScatter,
    maps: &[MapKind::Ranks],
    cost: |m| hier_ring_cost(m, false),
    leaves_out: Some(
        "loads and stores queue for the slice's pseudo-channels: the machine pays part of the sum of HBM and wire time, the model the larger",
    ),
};

/// [`hier_all_gather`]: the reduce-scatter's steps in the other order
/// ([`hier_ring_steps`]).
pub const HIER_ALL_GATHER: Builtin = Builtin {
    kernel: &hier_all_gather,
    collective: Collective::AllGather,
    maps: &[MapKind::Ranks],
    cost: |m| hier_ring_cost(m, true),
    leaves_out: Some(
        "loads and stores queue for the slice's pseudo-channels: the machine pays part of the sum of HBM and wire time, the model the larger",
    ),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_chunk_has_one_answering_member_per_group_and_ends_at_its_rank() {
        for w in 1..40 {
            for pes in [1, 2, 3, 4, 8] {
                let gs = Groups::new(w, pes);
                for g in 0..gs.count {
                    let size = gs.size(g);
                    assert!(size >= 1);
                    let mut seen = vec![0; w];
                    for m in 0..size {
                        for c in gs.chunks(g, m) {
                            seen[c] += 1;
                            // The member answers for the chunk's position.
                            assert!(gs.positions(g, m).contains(&(c % gs.pes)));
                            assert_eq!(gs.holder(g, c % gs.pes), g * gs.pes + m);
                        }
                    }
                    assert!(seen.iter().all(|&k| k == 1), "w {w} pes {pes} g {g}");
                }
                // Chunk c's ring across groups runs through its own rank,
                // at its group, which ends with it.
                let level = Level::launch(w);
                for c in 0..w {
                    let (h, j) = (c / gs.pes, c % gs.pes);
                    let across = level.across(&gs, j);
                    assert_eq!(across.members[h], c, "w {w} pes {pes} c {c}");
                    assert_eq!(across.owned[h], Some(c), "w {w} pes {pes} c {c}");
                }
            }
        }
    }

    #[test]
    fn chunk_pieces_merge_neighbours() {
        // 10 elements in 5 chunks of 2: chunks 1 and 2 touch, 4 stands alone.
        assert_eq!(chunk_pieces(10, 5, &[1, 2, 4], 100), vec![(2, 4), (8, 2)]);
        assert_eq!(chunk_pieces(10, 5, &[1, 2], 3), vec![(2, 3), (5, 1)]);
        // Empty chunks (fewer elements than chunks) add nothing.
        assert_eq!(
            chunk_pieces(2, 5, &[2, 3, 4], 8),
            Vec::<(usize, usize)>::new()
        );
    }
}
