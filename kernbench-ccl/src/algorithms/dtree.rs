//! Double binary tree all-reduce (NCCL's), addressed by rank: two binary
//! trees over the same ranks, each reducing and broadcasting one half of the
//! vector, pipelined piece by piece.
//!
//! The first tree ([`btree`]) is an in-order tree on rank numbers: rank 0 is
//! the root and has one child, the largest power of two below the world
//! size; a rank whose lowest set bit is `b` has its children at `r - b/2`
//! and `r + b/2` (the latter moved closer, by halving the distance, when it
//! is past the last rank). Odd ranks are leaves. The second tree
//! ([`tree_role`] with `t = 1`) is the first mirrored (`r -> w - 1 - r`)
//! when the world size is even and shifted by one rank (`r -> r + 1`) when it
//! is odd; either way the leaves of one tree are the inner nodes of the
//! other, so every rank sends and receives about as much as any other over
//! the two trees, while each tree alone leaves half its ranks idle.
//!
//! With ranks in structural order, the bottom of each tree joins near ranks
//! (the same cube) and only the few edges near the top cross cubes or SIPs.
//!
//! The pieces move systolically. Time is cut into iterations; in each, a
//! rank reduces at most one piece of each tree (waits for its children's
//! piece, combines it with its own, sends the result to its parent) and
//! broadcasts at most one (waits for its parent's piece, stores it, sends it
//! to its children). A rank reduces piece `j` in iteration
//! `j + SLACK * height` and broadcasts it `SLACK` iterations after its parent
//! (see [`iteration`]), so every message it waits for was sent at least
//! `SLACK` iterations earlier: a piece crosses the fabric while both ends
//! work on other pieces, and the wait of one rank does not ripple through
//! the tree within an iteration. Ranks run their own schedules, so two ranks
//! joined in both trees may send in one order what the other takes in
//! another: a rank posts its receives in the order its senders send them
//! ([`incoming`]), a couple of iterations ahead, and takes each when its
//! event comes.

use super::common::*;
use super::rooted::Group;
use super::Builtin;
use crate::cost::{Cost, Term};
use crate::registry::{Collective, MapKind};
use kernbench_core::topology::{Endpoint, Topology};
use kernbench_core::PeId;
use kernbench_tl::prelude::*;
use kernbench_tl::Element;
use std::collections::VecDeque;

/// A rank's place in one tree: its parent (none at the root) and its children.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TreeRole {
    /// The parent rank.
    pub parent: Option<usize>,
    /// The child ranks, the lower first.
    pub children: [Option<usize>; 2],
}

impl TreeRole {
    /// The children that exist.
    pub fn kids(&self) -> impl Iterator<Item = usize> + '_ {
        self.children.iter().flatten().copied()
    }
}

/// The in-order binary tree on rank numbers among `w` ranks: rank `r`'s role.
pub fn btree(w: usize, r: usize) -> TreeRole {
    if w <= 1 {
        return TreeRole {
            parent: None,
            children: [None, None],
        };
    }
    if r == 0 {
        let top = super::doubling::pow2_floor(w - 1);
        return TreeRole {
            parent: None,
            children: [None, Some(top)],
        };
    }
    let b = 1usize << r.trailing_zeros();
    // The parent is the neighbour at distance `b` whose lowest set bit is
    // `2b`; the one above may be past the last rank, then it is the one below.
    let up = if r & (2 * b) != 0 || r + b >= w {
        r - b
    } else {
        r + b
    };
    let mut children = [None, None];
    let mut d = b / 2;
    if d > 0 {
        children[0] = Some(r - d);
        while d > 0 && r + d >= w {
            d /= 2;
        }
        if d > 0 {
            children[1] = Some(r + d);
        }
    }
    TreeRole {
        parent: Some(up),
        children,
    }
}

/// Rank `r`'s role in tree `t` (0 or 1) of the double binary tree over `w` ranks.
pub fn tree_role(w: usize, t: usize, r: usize) -> TreeRole {
    if t == 0 || w <= 1 {
        return btree(w, r);
    }
    // Tree 1 is tree 0 with every rank renamed: mirrored for an even world,
    // rotated by one for an odd one.
    let even = w % 2 == 0;
    let to_t0 = |x: usize| if even { w - 1 - x } else { (x + w - 1) % w };
    let from_t0 = |x: usize| if even { w - 1 - x } else { (x + 1) % w };
    let role = btree(w, to_t0(r));
    let mut children = [role.children[0].map(from_t0), role.children[1].map(from_t0)];
    if let [Some(a), Some(b)] = children {
        if a > b {
            children = [Some(b), Some(a)];
        }
    }
    TreeRole {
        parent: role.parent.map(from_t0),
        children,
    }
}

/// Edges from the root of [`btree`] to its deepest leaf among `w` ranks.
pub fn depth(w: usize) -> usize {
    if w <= 1 {
        0
    } else {
        1 + super::doubling::pow2_floor(w - 1).trailing_zeros() as usize
    }
}

/// The root of tree `t` among `w` ranks.
pub fn root(w: usize, t: usize) -> usize {
    match (t, w % 2) {
        (0, _) => 0,
        _ if w <= 1 => 0,
        (_, 0) => w - 1,
        _ => 1,
    }
}

/// Rank `r`'s height in tree `t` of `w` ranks: edges down to its deepest
/// leaf. A rank whose lowest set bit is `b` (in tree 0's numbering) has a
/// full left subtree of height `log2 b - 1` below its left child, and a
/// right one no higher.
pub fn height(w: usize, t: usize, r: usize) -> usize {
    if w <= 1 {
        return 0;
    }
    let r0 = if t == 0 {
        r
    } else if w % 2 == 0 {
        w - 1 - r
    } else {
        (r + w - 1) % w
    };
    if r0 == 0 {
        depth(w)
    } else {
        r0.trailing_zeros() as usize
    }
}

/// Rank `r`'s depth in tree `t` of `w` ranks: edges up to the root.
pub fn depth_of(w: usize, t: usize, r: usize) -> usize {
    let (mut x, mut d) = (r, 0);
    while let Some(p) = tree_role(w, t, x).parent {
        x = p;
        d += 1;
    }
    d
}

/// Iterations of the schedule between a piece's send and its use: the
/// slack that lets a message cross the fabric while both ranks work on
/// other pieces.
pub const SLACK: usize = 2;

/// The iteration in which rank `r` reduces (`up`) or broadcasts piece `j`
/// of tree `t` among `w` ranks. A reduce waits until every child has had
/// `SLACK` iterations since its own reduce of the piece (`SLACK` times the
/// rank's height); the root broadcasts a piece in the iteration it reduces
/// it, and every other rank `SLACK` iterations after its parent.
pub fn iteration(w: usize, t: usize, r: usize, up: bool, j: usize) -> usize {
    if up {
        j + SLACK * height(w, t, r)
    } else {
        j + SLACK * (height(w, t, root(w, t)) + depth_of(w, t, r))
    }
}

/// One event of a rank's schedule: the reduce (`up`) or broadcast of piece
/// `i` of tree `t`, in iteration `at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Event {
    /// The iteration.
    pub at: usize,
    /// The tree.
    pub t: usize,
    /// Broadcast (true) or reduce (false): a rank reduces before it broadcasts.
    pub down: bool,
    /// The piece of the tree's half.
    pub i: usize,
}

/// Rank `r`'s events among `w` ranks, in the order it runs them (by
/// iteration, then tree, reduce before broadcast), for trees of `k[t]` pieces.
pub fn schedule(w: usize, r: usize, k: [usize; 2]) -> Vec<Event> {
    let mut v = Vec::with_capacity(2 * (k[0] + k[1]));
    for (t, &kt) in k.iter().enumerate() {
        for down in [false, true] {
            let first = iteration(w, t, r, !down, 0);
            v.extend((0..kt).map(|i| Event {
                at: first + i,
                t,
                down,
                i,
            }));
        }
    }
    v.sort();
    v
}

/// The pieces of half `t` of `n` elements, at most `seg` elements each.
pub fn half_pieces(n: usize, t: usize, seg: usize) -> Vec<(usize, usize)> {
    let (s, l) = chunk(n, 2, t);
    pieces(s, l, seg)
}

/// A message rank `r` receives: the sender's event that sends it (which
/// orders the sender's messages), the sender, and this rank's event that
/// takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Incoming {
    /// The sender's event.
    pub sent: Event,
    /// The sender.
    pub from: usize,
    /// Index of the event of this rank that takes it.
    pub taken_by: usize,
}

/// Every message a rank of `w` receives, in the order its senders send
/// them (so the messages of each sender arrive in the order they are
/// posted), for this rank's `events`.
pub fn incoming(w: usize, roles: &[TreeRole; 2], events: &[Event]) -> Vec<Incoming> {
    let mut v = Vec::new();
    for (idx, e) in events.iter().enumerate() {
        let role = &roles[e.t];
        let from: Vec<usize> = if e.down {
            role.parent.into_iter().collect()
        } else {
            role.kids().collect()
        };
        for f in from {
            let sent = Event {
                at: iteration(w, e.t, f, !e.down, e.i),
                t: e.t,
                down: e.down,
                i: e.i,
            };
            v.push(Incoming {
                sent,
                from: f,
                taken_by: idx,
            });
        }
    }
    v.sort();
    v
}

/// How many of `msgs` (in send order) are sent by iteration `at`.
pub fn due_by(msgs: &[Incoming], at: usize) -> usize {
    msgs.iter().take_while(|m| m.sent.at <= at).count()
}

/// Iterations ahead of its own whose receives a rank posts.
pub const AHEAD: usize = 2;

/// Double binary tree all-reduce of `n` elements per rank (rank `r`'s vector at `buf[r n..]`).
#[kernel_fn]
pub fn double_tree_allreduce<T: Element>(buf: Ptr<T>, n: usize, seg: usize, op: RedOp) {
    let g = Group::launch();
    double_tree_allreduce_in(buf, g.r * n, n, seg, op, g);
}

/// Double binary tree all-reduce among the ranks of `g`, this rank's `n`
/// elements at `buf[base..]`.
#[kernel_fn]
pub fn double_tree_allreduce_in<T: Element>(
    buf: Ptr<T>,
    base: usize,
    n: usize,
    seg: usize,
    op: RedOp,
    g: Group,
) {
    let (w, r) = (g.w, g.r);
    if w == 1 {
        return;
    }
    let roles = [tree_role(w, 0, r), tree_role(w, 1, r)];
    let ps = [half_pieces(n, 0, seg), half_pieces(n, 1, seg)];
    let events = schedule(w, r, [ps[0].len(), ps[1].len()]);
    let msgs = incoming(w, &roles, &events);
    // The posted receive of each message, and the messages each event takes.
    let mut futures: Vec<Option<RecvFuture<T>>> = Vec::new();
    let mut takes: Vec<Vec<usize>> = vec![Vec::new(); events.len()];
    let mut posted = 0;
    // The root's reduced pieces, waiting for their broadcast.
    let mut reduced: [VecDeque<Tile<T>>; 2] = [VecDeque::new(), VecDeque::new()];
    for (idx, e) in events.iter().enumerate() {
        let due = due_by(&msgs[posted..], e.at + AHEAD);
        for m in msgs[posted..posted + due].iter().copied() {
            let len = ps[m.sent.t][m.sent.i].1;
            takes[m.taken_by].push(futures.len());
            futures.push(Some(tl::recv_async::<T>(g.peer(m.from), [len])));
        }
        posted += due;
        let role = roles[e.t];
        let (off, len) = ps[e.t][e.i];
        let at = buf.offset(base + off);
        // A reduce takes its children's pieces in rank order, as `kids` lists them.
        let mine: Vec<usize> = takes[idx].clone();
        if !e.down {
            let mut acc = tl::load(at, [len]);
            for k in mine {
                let got = tl::wait(futures[k].take().expect("each message is taken once"));
                acc = combine(&acc, &got, op);
            }
            match role.parent {
                Some(p) => tl::send(g.peer(p), &acc),
                None => {
                    tl::store(at, &acc);
                    reduced[e.t].push_back(acc);
                }
            }
        } else {
            let x = match role.parent {
                Some(_) => {
                    let k = mine[0];
                    let x = tl::wait(futures[k].take().expect("each message is taken once"));
                    tl::store(at, &x);
                    x
                }
                None => reduced[e.t]
                    .pop_front()
                    .expect("the root reduces a piece before it broadcasts it"),
            };
            for c in role.kids() {
                tl::send(g.peer(c), &x);
            }
        }
    }
}

/// Double binary tree all-reduce addressed by rank (NCCL's): two complementary trees, each reducing and broadcasting half of the vector, pipelined piece by piece.
#[kernel]
pub fn double_tree<T: Element>(
    buf: Ptr<T>,
    n: usize,
    #[constexpr] seg: usize,
    #[constexpr] op: RedOp,
) {
    double_tree_allreduce(buf, n, seg, op);
}

/// The double binary tree all-reduce of `bytes` per rank over `pes` (see
/// [`double_tree_allreduce`]), with messages of at most
/// `seg_bytes`: each tree carries half the vector in `k` pieces. The first
/// piece climbs from the deepest leaf to the root and comes back down, each
/// edge costing its route's latency, the per-message overheads (HBM latency
/// included) and the piece's time on the route's bottleneck; the other
/// `k - 1` pieces follow at the pace of the busiest resource over the whole
/// run: the link that carries the most tree traffic (both trees, both
/// directions, every edge routed), a rank's HBM slice, which reads its
/// half for each reduce and writes it back for each broadcast, or the
/// credit window of the slowest edge's channel (with the IPCQ settings
/// `ipcq`).
pub fn double_tree_ns(
    topo: &Topology,
    ipcq: &kernbench_core::topology::IpcqSpec,
    pes: &[PeId],
    bytes: f64,
    seg_bytes: u64,
) -> Cost {
    let w = pes.len();
    if w <= 1 {
        return Cost::zero();
    }
    let spec = topo.pe_spec();
    let per_msg =
        (spec.cpu_overhead_ps() + spec.sched_overhead_ps() + spec.hbm_latency_ps()) as f64 / 1000.0;
    let hbm_gbps = spec.hbm_gbps * spec.hbm_efficiency;
    let half = bytes / 2.0;
    let k = (half / seg_bytes.max(1) as f64).ceil().max(1.0);
    let piece = half / k;
    let mut load = std::collections::HashMap::new();
    let mut fill = Cost::zero();
    // The slowest channel's credit window over the `k` pieces it carries.
    let mut window = Cost::zero();
    for t in 0..2 {
        // The cost of each rank's edge to its parent, then of its path to the root.
        let mut edge = vec![Cost::zero(); w];
        let mut parent = vec![None; w];
        for (r, slot) in edge.iter_mut().enumerate() {
            let Some(p) = tree_role(w, t, r).parent else {
                continue;
            };
            parent[r] = Some(p);
            for (a, b) in [(r, p), (p, r)] {
                let Ok(route) = topo.route(Endpoint::Pe(pes[a]), Endpoint::Pe(pes[b])) else {
                    continue;
                };
                for h in &route.hops {
                    *load.entry(h.link).or_insert(0.0) += half;
                }
                let wire = match crate::cost::bottleneck(topo, &route) {
                    None => Cost::zero(),
                    Some(l) => Cost::of(Term::Link(l), piece / route.bottleneck_gbps),
                };
                let c = Cost::of(Term::Latency, route.fixed_ps() as f64 / 1000.0 + per_msg) + wire;
                *slot = std::mem::take(slot).max(c);
                let win = crate::cost::Window::of(topo, ipcq, &[(pes[a], pes[b])]);
                window = window.max(Cost::of(Term::CreditWindow, k * win.per_msg(piece)));
            }
        }
        let climb = (0..w)
            .map(|mut r| {
                let mut c = Cost::zero();
                while let Some(p) = parent[r] {
                    c += edge[r].clone();
                    r = p;
                }
                c
            })
            .fold(Cost::zero(), Cost::max);
        fill = fill.max(2.0 * climb);
    }
    let link =
        crate::cost::busiest(topo, &load).map_or(Cost::zero(), |(l, t)| Cost::of(Term::Link(l), t));
    let hbm = Cost::of(Term::Hbm, 2.0 * bytes / hbm_gbps);
    fill + (k - 1.0) / k * link.max(hbm).max(window)
}

/// [`double_tree`]: its pipeline over both trees ([`double_tree_ns`]).
pub const DOUBLE_TREE: Builtin = Builtin {
    kernel: &double_tree,
    collective: Collective::AllReduce,
    maps: &[MapKind::Ranks],
    cost: |m| double_tree_ns(m.topo, &m.algo.ipcq, m.pes, m.bytes, m.algo.seg_bytes),
    leaves_out: Some(
        "contention between the two trees for links and DMA engines at ranks interior to both; channels that share a SIP link wait longer for credits than one channel's window gives",
    ),
};

#[cfg(test)]
mod tests {
    use super::*;

    fn check_tree(w: usize, t: usize) {
        let mut parents = 0;
        for r in 0..w {
            let role = tree_role(w, t, r);
            for c in role.kids() {
                assert!(c < w && c != r, "w {w} t {t} r {r} c {c}");
                assert_eq!(
                    tree_role(w, t, c).parent,
                    Some(r),
                    "w {w} t {t} r {r} c {c}"
                );
            }
            if let Some(p) = role.parent {
                parents += 1;
                assert!(
                    tree_role(w, t, p).kids().any(|c| c == r),
                    "w {w} t {t} r {r}"
                );
            }
        }
        // One root, and every other rank below it: a tree.
        assert_eq!(parents, w - 1, "w {w} t {t}");
        for r in 0..w {
            let mut x = r;
            let mut steps = 0;
            while let Some(p) = tree_role(w, t, x).parent {
                x = p;
                steps += 1;
                assert!(
                    steps <= depth(w),
                    "w {w} t {t} r {r}: deeper than {}",
                    depth(w)
                );
            }
        }
    }

    #[test]
    fn both_trees_are_trees_no_deeper_than_the_depth() {
        for w in 1..140 {
            check_tree(w, 0);
            check_tree(w, 1);
        }
        assert_eq!(btree(8, 0).children, [None, Some(4)]);
        assert_eq!(btree(8, 4).children, [Some(2), Some(6)]);
        assert_eq!(btree(6, 4).children, [Some(2), Some(5)]);
        assert_eq!(btree(6, 4).parent, Some(0));
    }

    #[test]
    fn below_the_roots_no_rank_is_inner_in_both_trees() {
        for w in 2..140 {
            for r in 0..w {
                let inner = |t| tree_role(w, t, r).children[0].is_some();
                assert!(!(inner(0) && inner(1)), "w {w} r {r}");
            }
        }
    }

    #[test]
    fn every_message_is_sent_at_least_slack_iterations_before_it_is_taken() {
        for w in 2..70 {
            for r in 0..w {
                let roles = [tree_role(w, 0, r), tree_role(w, 1, r)];
                let k = [5, 4];
                let ev = schedule(w, r, k);
                assert_eq!(ev.len(), 2 * (k[0] + k[1]));
                let msgs = incoming(w, &roles, &ev);
                for m in &msgs {
                    let e = ev[m.taken_by];
                    assert!(
                        m.sent.at + SLACK <= e.at,
                        "w {w} r {r}: {m:?} taken at {e:?}"
                    );
                    // The sender runs that event.
                    assert!(
                        schedule(w, m.from, k).contains(&m.sent),
                        "w {w} r {r}: {m:?}"
                    );
                }
                for (t, role) in roles.iter().enumerate() {
                    let up = ev.iter().filter(|e| e.t == t && !e.down).count();
                    let into = msgs.iter().filter(|m| m.sent.t == t).count();
                    let from_kids = role.kids().count() * k[t];
                    let from_parent = usize::from(role.parent.is_some()) * k[t];
                    assert_eq!((up, into), (k[t], from_kids + from_parent), "w {w} r {r}");
                }
            }
        }
    }

    #[test]
    fn heights_and_depths_match_the_trees() {
        for w in 1..70 {
            for t in 0..2 {
                let rt = root(w, t);
                assert_eq!(tree_role(w, t, rt).parent, None, "w {w} t {t}");
                for r in 0..w {
                    let role = tree_role(w, t, r);
                    let below = role.kids().map(|c| height(w, t, c) + 1).max().unwrap_or(0);
                    assert_eq!(height(w, t, r), below, "w {w} t {t} r {r}");
                    if let Some(p) = role.parent {
                        assert_eq!(depth_of(w, t, r), depth_of(w, t, p) + 1);
                    }
                }
            }
        }
    }
}
