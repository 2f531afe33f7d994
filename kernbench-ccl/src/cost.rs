//! Alpha-beta cost models of the algorithms, and their figures on a machine.
//!
//! This module holds what the models share: the figures of a level of
//! communication ([`measure`], [`measure_ring`], [`Window`]), the formulas
//! several algorithms are built from ([`ring_half`], [`chain_broadcast`],
//! [`tree_allreduce_on`], [`steps_ns`], ...), and [`model`], which asks an
//! algorithm's [`Builtin`] for its cost. The model of one algorithm lives
//! next to its kernel, in its family file under
//! [`algorithms`](crate::algorithms), as a function of [`ModelInput`].
//!
//! `alpha` is the cost of one message regardless of size (route latency plus
//! per-transfer and per-command overheads), `beta` the cost of one byte
//! (the inverse of the bottleneck bandwidth). A stream of messages on one
//! channel is also bounded by its credit window (see [`Window`] and ADR
//! 0023). Sizes are bytes of one rank's vector.
//!
//! Every formula returns a [`Cost`]: the time, and how much of it each term
//! of the model accounts for, so that [`model`] can name the term that
//! limits an algorithm at a size (its [`Bound`]).

use crate::algorithms::Builtin;
use crate::registry::{Algorithm, MapKind};
use kernbench_core::ir::Dir;
use kernbench_core::neighbors::NeighborMap;
use kernbench_core::topology::{Endpoint, IpcqSpec, LinkId, Route, Topology};
use kernbench_core::PeId;

/// A term of the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Term {
    /// Route latencies and per-message overheads (alpha).
    Latency,
    /// Bytes on one link at its bandwidth (beta).
    Link(LinkId),
    /// A channel's credit window: slots that turn over once a slot cycle.
    CreditWindow,
    /// Reads and writes of a rank's HBM slice.
    Hbm,
    /// Issuing the commands of many small pieces.
    Issue,
    /// Reductions on the MATH engine.
    Math,
}

/// A model time, ns, and the share of it each [`Term`] accounts for.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Cost {
    /// The time, ns.
    pub ns: f64,
    /// `(term, ns)`, one entry a term; the shares add up to `ns`.
    parts: Vec<(Term, f64)>,
}

impl Cost {
    /// No time.
    pub fn zero() -> Cost {
        Cost::default()
    }

    /// `ns` of one term.
    pub fn of(term: Term, ns: f64) -> Cost {
        Cost {
            ns,
            parts: vec![(term, ns)],
        }
    }

    /// A time `ns` computed as a whole, shared among `parts` (which should
    /// add up to it).
    fn split(ns: f64, parts: &[(Term, f64)]) -> Cost {
        let mut c = Cost {
            ns,
            parts: Vec::new(),
        };
        for &(t, x) in parts {
            c.add_part(t, x);
        }
        c
    }

    fn add_part(&mut self, t: Term, x: f64) {
        match self.parts.iter_mut().find(|(u, _)| *u == t) {
            Some((_, y)) => *y += x,
            None => self.parts.push((t, x)),
        }
    }

    /// The share of `term`, ns.
    pub fn share(&self, term: Term) -> f64 {
        self.parts
            .iter()
            .filter(|(t, _)| *t == term)
            .map(|(_, x)| x)
            .sum()
    }

    /// The term with the largest share (ties go to the first in [`Term`]'s
    /// order), or `None` for no time.
    pub fn limiting(&self) -> Option<Term> {
        let mut best: Option<(Term, f64)> = None;
        for &(t, x) in &self.parts {
            let better = match best {
                None => x > 0.0,
                Some((u, y)) => x > y || (x == y && t < u),
            };
            if better {
                best = Some((t, x));
            }
        }
        best.map(|(t, _)| t)
    }

    /// The larger of two costs, whole.
    pub fn max(self, other: Cost) -> Cost {
        if other.ns > self.ns {
            other
        } else {
            self
        }
    }
}

impl std::ops::Add for Cost {
    type Output = Cost;
    fn add(mut self, o: Cost) -> Cost {
        self += o;
        self
    }
}

impl std::ops::AddAssign for Cost {
    fn add_assign(&mut self, o: Cost) {
        self.ns += o.ns;
        for (t, x) in o.parts {
            self.add_part(t, x);
        }
    }
}

/// `f` times a cost.
impl std::ops::Mul<Cost> for f64 {
    type Output = Cost;
    fn mul(self, mut c: Cost) -> Cost {
        c.ns *= self;
        for p in &mut c.parts {
            p.1 *= self;
        }
        c
    }
}

/// The limiting term of a model time, as the collective table names it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Bound {
    /// Route latencies and per-message overheads.
    Latency,
    /// The bandwidth of one link, named as the topology names it (`from -> to`).
    Link(String),
    /// The credit window of the slowest channel.
    CreditWindow,
    /// A rank's HBM slice.
    Hbm,
    /// Issuing the commands of many small pieces.
    Issue,
    /// Reductions on the MATH engine.
    Math,
}

impl Bound {
    /// The bound a term names on `topo`.
    pub fn of(topo: &Topology, t: Term) -> Bound {
        match t {
            Term::Latency => Bound::Latency,
            Term::Link(l) => {
                let l = topo.link(l);
                Bound::Link(format!("{} -> {}", l.from, l.to))
            }
            Term::CreditWindow => Bound::CreditWindow,
            Term::Hbm => Bound::Hbm,
            Term::Issue => Bound::Issue,
            Term::Math => Bound::Math,
        }
    }
}

impl std::fmt::Display for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bound::Latency => f.write_str("latency"),
            Bound::Link(l) => write!(f, "link {l}"),
            Bound::CreditWindow => f.write_str("credit window"),
            Bound::Hbm => f.write_str("HBM"),
            Bound::Issue => f.write_str("issue"),
            Bound::Math => f.write_str("MATH"),
        }
    }
}

/// How far a model time may be from the simulated one, as a share of the
/// simulated time, before the table says why (ADR 0030).
pub const MODEL_TOLERANCE: f64 = 0.15;

/// Why a model above the simulated time misses: the algorithms' models
/// leave out what makes the machine slower ([`Estimate::leaves_out`]), so
/// where the machine is faster it is because the model adds up terms the
/// machine runs at once.
pub const OVERLAPPED: &str = "the model charges one after the other work the machine overlaps";

/// A model's prediction: the time and its limiting term.
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    /// The time, ns (NaN when no model is known).
    pub ns: f64,
    /// The term with the largest share of it (`None` when no model is
    /// known, or for no time).
    pub bound: Option<Bound>,
    /// What the algorithm's model leaves out (its [`Builtin::leaves_out`]).
    pub leaves_out: Option<&'static str>,
}

impl Estimate {
    /// Whether the model lands within [`MODEL_TOLERANCE`] of `sim_ns`.
    pub fn agrees(&self, sim_ns: f64) -> bool {
        (self.ns - sim_ns).abs() <= MODEL_TOLERANCE * sim_ns
    }

    /// What a table row says about the model against a simulated time of
    /// `sim_ns`: nothing when it agrees (or no model is known); otherwise
    /// the ratio of the two and [`Estimate::reason`].
    pub fn note(&self, sim_ns: f64) -> String {
        if !self.ns.is_finite() || self.ns <= 0.0 || self.agrees(sim_ns) {
            return String::new();
        }
        format!("sim/model {:.2}: {}", sim_ns / self.ns, self.reason(sim_ns))
    }

    /// Why the model misses a simulated time of `sim_ns`: below it, what
    /// the model leaves out; above it, [`OVERLAPPED`].
    pub fn reason(&self, sim_ns: f64) -> &'static str {
        if sim_ns < self.ns {
            OVERLAPPED
        } else {
            self.leaves_out.unwrap_or("not modelled")
        }
    }
}

/// The link of `route` with the least bandwidth (the first of them).
pub(crate) fn bottleneck(topo: &Topology, route: &Route) -> Option<LinkId> {
    let mut best: Option<(LinkId, f64)> = None;
    for h in &route.hops {
        let g = topo.link(h.link).gbps;
        if best.is_none_or(|(_, b)| g < b) {
            best = Some((h.link, g));
        }
    }
    best.map(|(l, _)| l)
}

/// The link of `load` (bytes or channels per link) that takes longest at
/// its bandwidth, ties to the lowest id, and that time.
pub(crate) fn busiest<'a>(
    topo: &Topology,
    load: impl IntoIterator<Item = (&'a LinkId, &'a f64)>,
) -> Option<(LinkId, f64)> {
    let mut best: Option<(LinkId, f64)> = None;
    for (l, x) in load {
        let t = x / topo.link(*l).gbps;
        let better = match best {
            None => true,
            Some((m, u)) => t > u || (t == u && *l < m),
        };
        if better {
            best = Some((*l, t));
        }
    }
    best
}

/// The credit window of the slowest channel of a level: each of its
/// `slots` ring slots of `slot_bytes` stays taken for `cycle_ns`, from the
/// packet's injection until its credit is back at the sender, so messages
/// that follow one another on the channel move at most `slots` slots a cycle.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Window {
    /// Ring slots.
    pub slots: f64,
    /// Bytes per slot.
    pub slot_bytes: f64,
    /// Time a slot stays taken, ns.
    pub cycle_ns: f64,
}

impl Window {
    /// No window: streams are bounded by latency and bandwidth alone.
    pub const NONE: Window = Window {
        slots: 1.0,
        slot_bytes: f64::INFINITY,
        cycle_ns: 0.0,
    };

    /// The window of the slowest of the channels over `hops` with the
    /// IPCQ settings `ipcq`.
    pub fn of(topo: &Topology, ipcq: &IpcqSpec, hops: &[(PeId, PeId)]) -> Window {
        let drain = topo.ipcq_drain_gbps(ipcq);
        let cycle = hops
            .iter()
            .filter_map(|(a, b)| topo.route(Endpoint::Pe(*a), Endpoint::Pe(*b)).ok())
            .map(|r| r.slot_cycle_ps(ipcq.slot_bytes, ipcq.credit_bytes, drain))
            .max()
            .unwrap_or(0);
        Window {
            slots: f64::from(ipcq.slots.max(1)),
            slot_bytes: ipcq.slot_bytes.max(1) as f64,
            cycle_ns: cycle as f64 / 1000.0,
        }
    }

    /// The least time per message of `bytes` on the channel when messages
    /// follow back to back: its slots, `slots` of them a cycle.
    pub fn per_msg(&self, bytes: f64) -> f64 {
        (bytes / self.slot_bytes).ceil().max(1.0) * self.cycle_ns / self.slots
    }
}

/// The figures of one level of communication.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AlphaBeta {
    /// Per-message cost, ns.
    pub alpha_ns: f64,
    /// Per-byte cost, ns (1 / GB/s).
    pub beta_ns: f64,
    /// Per-byte cost of one message alone on its route, ns (the slowest
    /// route's bottleneck, shared with no other channel of the level).
    pub solo_beta_ns: f64,
    /// The credit window of its slowest channel.
    pub window: Window,
    /// The link `beta` is the bandwidth of (`None`: no link is crossed).
    pub link: Option<LinkId>,
}

impl AlphaBeta {
    /// Time of one message of `bytes`.
    pub fn msg(&self, bytes: f64) -> Cost {
        Cost::split(
            self.alpha_ns + bytes * self.beta_ns,
            &[
                (Term::Latency, self.alpha_ns),
                (self.wire(), bytes * self.beta_ns),
            ],
        )
    }

    /// The term of the per-byte cost: the link, or latency when no link is
    /// crossed (a copy inside the PE).
    fn wire(&self) -> Term {
        self.link.map_or(Term::Latency, Term::Link)
    }

    /// `bytes` at the bandwidth of the link, without the latency.
    fn bytes(&self, bytes: f64) -> Cost {
        Cost::of(self.wire(), bytes * self.beta_ns)
    }

    /// Time per message of `bytes` in a stream of them on each channel, as
    /// a ring's steps are: one message's time, or the credit window's
    /// bound when that is slower.
    pub fn stream(&self, bytes: f64) -> Cost {
        self.msg(bytes)
            .max(Cost::of(Term::CreditWindow, self.window.per_msg(bytes)))
    }
}

/// Ring reduce-scatter (or all-gather) of `bytes` over `p` ranks:
/// `(p-1)(alpha + bytes/p beta)`, or the credit window's bound on a stream
/// of `bytes/p` messages when that is slower.
pub fn ring_half(p: usize, bytes: f64, ab: AlphaBeta) -> Cost {
    if p <= 1 {
        return Cost::zero();
    }
    (p - 1) as f64 * ab.stream(bytes / p as f64)
}

/// The figures of a PE that the steps of an algorithm pay on the rank
/// itself, between a message landing and the next one leaving: issuing
/// commands, HBM accesses and reductions on MATH.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PeFigures {
    /// PE_CPU and PE_SCHEDULER time to issue one command, ns.
    pub issue_ns: f64,
    /// HBM access latency, ns.
    pub hbm_latency_ns: f64,
    /// Effective bandwidth of one pseudo-channel, GB/s.
    pub pc_gbps: f64,
    /// Pseudo-channels of a slice.
    pub pcs: f64,
    /// Interleaving granule of the pseudo-channels, bytes.
    pub burst: f64,
    /// MATH elements per ns.
    pub math_elems_per_ns: f64,
}

impl PeFigures {
    /// The figures of `topo`'s PEs.
    pub fn of(topo: &Topology) -> PeFigures {
        let spec = topo.pe_spec();
        let pcs = f64::from(spec.hbm_pcs.max(1));
        PeFigures {
            issue_ns: (spec.cpu_overhead_ps() + spec.sched_overhead_ps()) as f64 / 1000.0,
            hbm_latency_ns: spec.hbm_latency_ps() as f64 / 1000.0,
            pc_gbps: spec.hbm_effective_gbps() / pcs,
            pcs,
            burst: f64::from(spec.hbm_burst_bytes.max(1)),
            math_elems_per_ns: spec.math_elems_per_ns(),
        }
    }

    /// One DMA access of `bytes` to the rank's HBM slice, as long as its
    /// engine stays taken: the latency, plus the bursts that fall on the
    /// busiest pseudo-channel (a small access uses few of them, so it moves
    /// at a fraction of the slice's bandwidth).
    pub fn hbm_op(&self, bytes: f64) -> Cost {
        let bursts = (bytes / self.burst).ceil().max(1.0);
        let per_pc = (bursts / self.pcs).ceil();
        let busy = (per_pc * self.burst).min(bytes.max(1.0) + self.burst - 1.0);
        Cost::of(Term::Latency, self.hbm_latency_ns) + Cost::of(Term::Hbm, busy / self.pc_gbps)
    }

    /// Combining a received piece of `bytes` (of f32, the check's type)
    /// with the rank's own on MATH.
    pub fn math(&self, bytes: f64) -> Cost {
        Cost::of(Term::Math, bytes / 4.0 / self.math_elems_per_ns)
    }

    /// `n` commands issued one after another.
    pub fn issue(&self, n: f64) -> Cost {
        Cost::of(Term::Issue, n * self.issue_ns)
    }

    /// The path of a piece through a rank that stores what lands and sends
    /// it on from HBM in the next step: the store is issued, then the
    /// store and the load that reads it back run one after the other.
    pub fn store_and_forward(&self, piece: f64) -> Cost {
        self.issue(1.0) + 2.0 * self.hbm_op(piece)
    }

    /// The same for a rank that combines what lands with its own piece
    /// first: load the own piece, combine on MATH, store, and load back.
    pub fn combine_and_forward(&self, piece: f64) -> Cost {
        self.issue(1.0) + 3.0 * self.hbm_op(piece) + self.math(piece)
    }

    /// What a reduce step adds on the rank between its piece landing and
    /// the combined piece leaving: issuing the load of the own piece,
    /// loading it and combining the two on MATH (the reduction and the
    /// send are issued while the load runs).
    pub fn reduce_lat(&self, piece: f64) -> Cost {
        self.issue(1.0) + self.hbm_op(piece) + self.math(piece)
    }
}

/// Ring reduce-scatter of `bytes` per rank over `p` ranks in pieces of at
/// most `seg` bytes, with the ring's figures `ab` (alpha: the mean route
/// latency and the send's issue, see [`measure_ring`]). Each of the `p - 1`
/// steps waits for the first piece of the previous step, loads the rank's
/// own piece from HBM and combines it on MATH before sending it on
/// ([`PeFigures::reduce_lat`]); the chunk's `bytes / p` then move as fast
/// as the slowest of the link, the credit window and the loads of the
/// pieces behind the first allow. The last step's pieces are stored.
pub fn ring_reduce_scatter(pe: &PeFigures, p: usize, bytes: f64, seg: f64, ab: AlphaBeta) -> Cost {
    if p <= 1 {
        return Cost::zero();
    }
    let chunk = bytes / p as f64;
    let k = (chunk / seg.max(1.0)).ceil().max(1.0);
    let piece = chunk / k;
    let step = (pe.reduce_lat(piece) + ab.msg(chunk))
        .max(Cost::of(Term::CreditWindow, k * ab.window.per_msg(piece)))
        .max(pe.reduce_lat(piece) + (k - 1.0) * pe.hbm_op(piece));
    (p - 1) as f64 * step + pe.issue(1.0) + pe.hbm_op(piece)
}

/// Ring all-gather of `bytes` per rank over `p` ranks in pieces of at
/// most `seg` bytes: the rank loads its own chunk, then each of the `p - 1`
/// steps forwards what arrived as soon as it lands (issuing its store and
/// its send), while DMA_WB stores the arrivals one after another; the run
/// is as long as the slower of the two.
pub fn ring_all_gather(pe: &PeFigures, p: usize, bytes: f64, seg: f64, ab: AlphaBeta) -> Cost {
    if p <= 1 {
        return Cost::zero();
    }
    let chunk = bytes / p as f64;
    let k = (chunk / seg.max(1.0)).ceil().max(1.0);
    let piece = chunk / k;
    let step = (pe.issue(1.0) + ab.msg(chunk))
        .max(Cost::of(Term::CreditWindow, k * ab.window.per_msg(piece)));
    let chain = (p - 1) as f64 * step;
    let stores = Cost::of(Term::Latency, ab.alpha_ns) + ((p - 1) as f64 * k) * pe.hbm_op(piece);
    pe.issue(1.0) + pe.hbm_op(piece) + chain.max(stores)
}

/// Ring all-reduce as one stream: [`ring_reduce_scatter`], then
/// [`ring_all_gather`] of the reduced chunks.
pub fn ring_allreduce_on(pe: &PeFigures, p: usize, bytes: f64, seg: f64, ab: AlphaBeta) -> Cost {
    ring_reduce_scatter(pe, p, bytes, seg, ab) + ring_all_gather(pe, p, bytes, seg, ab)
}

/// Ring all-reduce: `2(p-1)(alpha + bytes/p beta)`.
pub fn ring_allreduce(p: usize, bytes: f64, ab: AlphaBeta) -> Cost {
    2.0 * ring_half(p, bytes, ab)
}

/// Pipelined chain broadcast in `k` pieces: `(p - 2 + k)(alpha + bytes/k beta)`.
pub fn chain_broadcast(p: usize, bytes: f64, k: usize, ab: AlphaBeta) -> Cost {
    if p <= 1 {
        return Cost::zero();
    }
    let k = k.max(1);
    (p - 2 + k) as f64 * ab.msg(bytes / k as f64)
}

/// Pipelined chain broadcast in `k` pieces along a ring whose figures are
/// `ab` (alpha the mean over its hops, see [`measure_ring`]): the first
/// piece crosses the `p - 1` hops one after another, alone on each (at
/// the route's own bandwidth, not the share the ring's channels get when
/// all send at once), and each further piece
/// follows as fast as the slowest link or credit window passes it on.
pub fn chain_broadcast_ring(p: usize, bytes: f64, k: usize, ab: AlphaBeta) -> Cost {
    if p <= 1 {
        return Cost::zero();
    }
    let k = k.max(1);
    let piece = bytes / k as f64;
    let steady = ab
        .bytes(piece)
        .max(Cost::of(Term::CreditWindow, ab.window.per_msg(piece)));
    // The first piece is alone on each hop it crosses.
    let first = Cost::of(Term::Latency, ab.alpha_ns) + Cost::of(ab.wire(), piece * ab.solo_beta_ns);
    (p - 1) as f64 * first + (k - 1) as f64 * steady
}

/// Depth of a heap-ordered binary tree of `p` nodes (edges from root to the deepest leaf).
pub fn tree_depth(p: usize) -> usize {
    if p <= 1 {
        0
    } else {
        (usize::BITS - p.leading_zeros() - 1) as usize
    }
}

/// Pipelined tree all-reduce (reduce up, broadcast down) in `k` pieces:
/// `2 (depth + k - 1)(alpha + bytes/k beta)`. A parent takes two children's
/// pieces per step; `beta` says how fast when their routes share a link
/// (see [`measure`]).
pub fn tree_allreduce(p: usize, bytes: f64, k: usize, ab: AlphaBeta) -> Cost {
    if p <= 1 {
        return Cost::zero();
    }
    let k = k.max(1);
    2.0 * (tree_depth(p) + k - 1) as f64 * ab.msg(bytes / k as f64)
}

/// The same on the tree of `map` (children `Left` and `Right`) rooted at
/// `root`, with `ab` from its edges: a piece climbs (and then descends) the
/// deepest root-to-leaf path, each edge at its own route latency, while
/// the `k - 1` pieces behind it follow one piece's wire (or credit window)
/// time apart.
pub fn tree_allreduce_on(
    topo: &Topology,
    map: &NeighborMap,
    root: PeId,
    bytes: f64,
    k: usize,
    ab: AlphaBeta,
) -> Cost {
    let per_msg = ab.alpha_ns - max_latency_ns(topo, map, &[Dir::Left, Dir::Right]);
    let piece = bytes / k.max(1) as f64;
    let pe_fig = PeFigures::of(topo);
    // (node, path latency so far, path wire time so far, edges so far),
    // depth first. The first piece is alone on each edge it crosses.
    let (mut stack, mut worst) = (vec![(root, 0.0f64, 0.0f64, 0usize)], Cost::zero());
    while let Some((pe, lat, wire, depth)) = stack.pop() {
        let mut leaf = true;
        for d in [Dir::Left, Dir::Right] {
            if let Some(c) = map.peer(pe, d).filter(|_| depth < 64) {
                leaf = false;
                let (l, w) = topo
                    .route(Endpoint::Pe(pe), Endpoint::Pe(c))
                    .ok()
                    .filter(|r| !r.hops.is_empty())
                    .map_or((0.0, 0.0), |r| {
                        (
                            r.fixed_ps() as f64 / 1000.0,
                            piece / r.bottleneck_gbps.max(1e-9),
                        )
                    });
                stack.push((c, lat + l, wire + w, depth + 1));
            }
        }
        if leaf {
            let d = depth as f64;
            // On the way up each level combines both children's pieces.
            let at_ranks = d * (pe_fig.issue(1.0) + 2.0 * pe_fig.math(piece));
            worst = worst.max(
                Cost::split(
                    lat + d * per_msg + wire,
                    &[(Term::Latency, lat + d * per_msg), (ab.wire(), wire)],
                ) + at_ranks,
            );
        }
    }
    // The leaf loads its piece before sending it up; the root stores the
    // reduction and loads it back to send it down; the leaf stores it.
    let ends = 4.0 * (pe_fig.issue(1.0) + pe_fig.hbm_op(piece));
    // Pieces behind the first follow as fast as the busiest link or the
    // credit window passes them: their latency overlaps the pieces ahead.
    let piece = bytes / k.max(1) as f64;
    let steady = ab
        .bytes(piece)
        .max(Cost::of(Term::CreditWindow, ab.window.per_msg(piece)));
    ends + 2.0 * (worst + (k.max(1) - 1) as f64 * steady)
}

/// The longest route latency among the edges of `map` in directions `dirs`, ns.
fn max_latency_ns(topo: &Topology, map: &NeighborMap, dirs: &[Dir]) -> f64 {
    hops_of(map, dirs)
        .iter()
        .filter_map(|(a, b)| topo.route(Endpoint::Pe(*a), Endpoint::Pe(*b)).ok())
        .map(|r| r.fixed_ps() as f64 / 1000.0)
        .fold(0.0, f64::max)
}

/// Recursive doubling all-reduce: `log2(p)(alpha + bytes beta)`.
pub fn recursive_doubling(p: usize, bytes: f64, ab: AlphaBeta) -> Cost {
    (p.max(1) as f64).log2().ceil() * ab.msg(bytes)
}

/// One step of a log-step algorithm: its messages, all in flight at once,
/// and the HBM traffic it costs a rank.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// `(from, to, bytes)` of every message.
    pub msgs: Vec<(PeId, PeId, f64)>,
    /// Bytes a rank reads and writes in its HBM slice during the step (at most).
    pub hbm_bytes: f64,
    /// Time a rank takes to issue the commands of its pieces in the step,
    /// ns, when it sends many small pieces (0 when a step's message is one
    /// region, as in the log-step algorithms).
    pub issue_ns: f64,
    /// What the step's first piece pays on the rank on the path from the
    /// previous step's landing to its own (the store of what landed, the
    /// load of what it sends, a reduction), when it is known; `None`
    /// counts one HBM access latency.
    pub lead: Option<Cost>,
}

/// `steps` with each one's [`Step::lead`] set to `lead(piece)`, where
/// `piece` is the first piece of its largest message (messages go in
/// pieces of at most `seg` bytes).
pub fn with_leads(mut steps: Vec<Step>, seg: f64, lead: impl Fn(f64) -> Cost) -> Vec<Step> {
    for s in &mut steps {
        let largest = s.msgs.iter().map(|m| m.2).fold(0.0, f64::max);
        s.lead = Some(lead(largest.min(seg.max(1.0))));
    }
    steps
}

/// Steps that run one after another, each as long as its slowest message:
/// the route's latency and per-message overheads, what the rank does on
/// the dependency path ([`Step::lead`]),
/// plus the longer of the time the busiest link on its route needs for all
/// the bytes the step puts on that link, the time the rank's HBM slice
/// needs for the step's reads and writes, and the time it takes to issue
/// the step's commands. A step whose messages share no
/// link costs `alpha + bytes beta`; one whose messages all cross one link (as
/// the far steps of a butterfly cross the SIP switch) costs their sum over
/// that link.
pub fn steps_ns(topo: &Topology, steps: &[Step]) -> Cost {
    let spec = topo.pe_spec();
    let per_msg = (spec.cpu_overhead_ps() + spec.sched_overhead_ps()) as f64 / 1000.0;
    let hbm_latency = Cost::of(Term::Latency, spec.hbm_latency_ps() as f64 / 1000.0);
    let hbm_gbps = spec.hbm_gbps * spec.hbm_efficiency;
    let mut load = std::collections::HashMap::new();
    let mut t = Cost::zero();
    for step in steps {
        load.clear();
        let hbm = Cost::of(Term::Hbm, step.hbm_bytes / hbm_gbps);
        let issue = Cost::of(Term::Issue, step.issue_ns);
        let routes: Vec<_> = step
            .msgs
            .iter()
            .filter_map(|(a, b, bytes)| {
                let r = topo.route(Endpoint::Pe(*a), Endpoint::Pe(*b)).ok()?;
                for h in &r.hops {
                    *load.entry(h.link).or_insert(0.0) += *bytes;
                }
                Some(r)
            })
            .collect();
        let slowest = routes
            .iter()
            .map(|r| {
                // The first of the route's busiest links.
                let mut wire = Cost::zero();
                for h in &r.hops {
                    let x = load[&h.link] / topo.link(h.link).gbps;
                    if x > wire.ns || wire.parts.is_empty() {
                        wire = Cost::of(Term::Link(h.link), x);
                    }
                }
                Cost::of(Term::Latency, r.fixed_ps() as f64 / 1000.0 + per_msg)
                    + step.lead.clone().unwrap_or_else(|| hbm_latency.clone())
                    + wire.max(hbm.clone()).max(issue.clone())
            })
            .fold(Cost::zero(), Cost::max);
        t += slowest;
    }
    t
}

/// What a step of a log-step reduce-scatter adds after its last piece
/// lands, before the next step can send what it combined: the load of the
/// rank's own partial sums of `piece` bytes, the combination on MATH and the
/// store, each issued in turn, with the HBM latency of the load and the store.
pub fn combine(topo: &Topology, piece: f64) -> Cost {
    let spec = topo.pe_spec();
    let issue = (spec.cpu_overhead_ps() + spec.sched_overhead_ps()) as f64 / 1000.0;
    let hbm = spec.hbm_latency_ps() as f64 / 1000.0;
    let hbm_gbps = spec.hbm_gbps * spec.hbm_efficiency;
    // Elements of f32, the check's type.
    let math = piece / 4.0 / spec.math_elems_per_ns();
    Cost::of(Term::Issue, 3.0 * issue)
        + Cost::of(Term::Latency, 2.0 * hbm)
        + Cost::of(Term::Hbm, piece / hbm_gbps)
        + Cost::of(Term::Math, math)
}

/// 2D all-reduce on `rows x cols`: reduce-scatter and all-gather along rows,
/// a ring all-reduce of `bytes/cols` down columns, each in pieces of at
/// most `seg` bytes ([`ring_allreduce_on`]).
pub fn torus_allreduce(
    pe: &PeFigures,
    (rows, cols): (usize, usize),
    bytes: f64,
    seg: f64,
    row: AlphaBeta,
    col: AlphaBeta,
) -> Cost {
    ring_reduce_scatter(pe, cols, bytes, seg, row)
        + ring_allreduce_on(pe, rows, bytes / cols as f64, seg, col)
        + ring_all_gather(pe, cols, bytes, seg, row)
}

/// Hierarchical all-reduce: ring reduce-scatter and all-gather at each level
/// (`pes` in a cube, `cubes` in a SIP, `sips`), each on what the level above
/// left, in pieces of at most `seg` bytes.
pub fn hierarchical(pe: &PeFigures, levels: &[(usize, AlphaBeta)], bytes: f64, seg: f64) -> Cost {
    let mut t = Cost::zero();
    let mut b = bytes;
    for (p, ab) in levels {
        t += ring_allreduce_on(pe, *p, b, seg, *ab);
        b /= (*p).max(1) as f64;
    }
    t
}

/// Alpha and beta of a ring's steps: a step's data crosses every hop of the
/// ring in turn over the whole collective, so its latency is the mean over
/// the hops (of the slowest ring, when the hops form several), and so is
/// the time of a byte alone on a hop, plus issuing the send; the bandwidth is the slowest hop's.
/// What the ranks do between steps (loads, reductions, stores) is the
/// formulas' to add ([`ring_reduce_scatter`], [`ring_all_gather`]).
pub fn measure_ring(
    topo: &Topology,
    ipcq: &IpcqSpec,
    hops: impl IntoIterator<Item = (PeId, PeId)>,
) -> AlphaBeta {
    let hops: Vec<(PeId, PeId)> = hops.into_iter().collect();
    let worst = measure(topo, ipcq, hops.iter().copied());
    let spec = topo.pe_spec();
    let per_msg = (spec.cpu_overhead_ps() + spec.sched_overhead_ps()) as f64 / 1000.0;
    // (latency, ns per byte alone) of a hop.
    let lat = |a: PeId, b: PeId| {
        topo.route(Endpoint::Pe(a), Endpoint::Pe(b))
            .ok()
            .filter(|r| !r.hops.is_empty())
            .map(|r| {
                (
                    r.fixed_ps() as f64 / 1000.0,
                    1.0 / r.bottleneck_gbps.max(1e-9),
                )
            })
    };
    // The map's hops form one or more rings (a level of a hierarchy has
    // one per position); each ends when its own hops are crossed, so the
    // slowest ring's mean is the step's.
    let next: std::collections::HashMap<PeId, PeId> = hops.iter().copied().collect();
    let mut seen = std::collections::HashSet::new();
    let mut mean: Option<(f64, f64)> = None;
    for &(start, _) in &hops {
        let (mut at, mut sum, mut solo, mut n) = (start, 0.0, 0.0, 0usize);
        while seen.insert(at) {
            let Some(&to) = next.get(&at) else { break };
            if let Some((l, b)) = lat(at, to) {
                sum += l;
                solo += b;
                n += 1;
            }
            at = to;
        }
        if n > 0 && mean.is_none_or(|m| sum / n as f64 > m.0) {
            mean = Some((sum / n as f64, solo / n as f64));
        }
    }
    let Some((mean, solo)) = mean else {
        return worst;
    };
    AlphaBeta {
        alpha_ns: mean + per_msg,
        solo_beta_ns: solo,
        ..worst
    }
}

/// Alpha and beta of the slowest of the given PE-to-PE hops, and the credit
/// window of the slowest channel over them with the IPCQ settings `ipcq`.
pub fn measure(
    topo: &Topology,
    ipcq: &IpcqSpec,
    hops: impl IntoIterator<Item = (PeId, PeId)>,
) -> AlphaBeta {
    let spec = topo.pe_spec();
    let per_msg = (spec.cpu_overhead_ps() + spec.sched_overhead_ps()) as f64 / 1000.0;
    let mut alpha = 0.0f64;
    let mut solo = 0.0f64;
    // Channels of a level run at once: a link that `n` of them cross gives
    // each `1/n` of its bandwidth.
    let mut crossing: std::collections::HashMap<_, u32> = std::collections::HashMap::new();
    let hops: Vec<(PeId, PeId)> = hops.into_iter().collect();
    for &(a, b) in &hops {
        if let Ok(r) = topo.route(Endpoint::Pe(a), Endpoint::Pe(b)) {
            alpha = alpha.max(r.fixed_ps() as f64 / 1000.0);
            if !r.hops.is_empty() {
                solo = solo.max(1.0 / r.bottleneck_gbps.max(1e-9));
            }
            for h in &r.hops {
                *crossing.entry(h.link).or_insert(0) += 1;
            }
        }
    }
    let crossing: std::collections::HashMap<LinkId, f64> = crossing
        .into_iter()
        .map(|(l, n)| (l, f64::from(n)))
        .collect();
    let (link, beta) = busiest(topo, &crossing).map_or((None, 0.0), |(l, b)| (Some(l), b));
    AlphaBeta {
        alpha_ns: alpha + per_msg,
        beta_ns: if beta > 0.0 {
            beta
        } else {
            1.0 / spec.tcm_gbps
        },
        solo_beta_ns: if solo > 0.0 {
            solo
        } else {
            1.0 / spec.tcm_gbps
        },
        window: Window::of(topo, ipcq, &hops),
        link: link.filter(|_| beta > 0.0),
    }
}

fn hops_of(map: &NeighborMap, dirs: &[Dir]) -> Vec<(PeId, PeId)> {
    map.iter()
        .filter(|(_, d, _)| dirs.contains(d))
        .map(|(a, _, b)| (a, b))
        .collect()
}

/// What an algorithm's cost model reads: the machine, the algorithm's
/// registry entry (its IPCQ settings, its message size, its map), its ranks,
/// its neighbour map over them, and the bytes of one rank's vector.
#[derive(Clone, Copy, Debug)]
pub struct ModelInput<'a> {
    /// The machine.
    pub topo: &'a Topology,
    /// The algorithm.
    pub algo: &'a Algorithm,
    /// Its ranks, in rank order.
    pub pes: &'a [PeId],
    /// Its neighbour map over `pes` (empty for [`MapKind::Ranks`]).
    pub map: &'a NeighborMap,
    /// Bytes of one rank's vector.
    pub bytes: f64,
    /// The messages of at most `seg_bytes` the vector makes (at least 1).
    pub pieces: usize,
}

impl ModelInput<'_> {
    /// The number of ranks.
    pub fn ranks(&self) -> usize {
        self.pes.len()
    }

    /// Bytes of one piece at most (the algorithm's `seg_bytes`).
    pub fn seg(&self) -> f64 {
        self.algo.seg_bytes.max(1) as f64
    }

    /// [`measure`] over the map's edges in directions `dirs`: the slowest
    /// of them, with the algorithm's IPCQ settings.
    pub fn measure(&self, dirs: &[Dir]) -> AlphaBeta {
        measure(self.topo, &self.algo.ipcq, hops_of(self.map, dirs))
    }

    /// [`measure_ring`] over the map's edges in directions `dirs`.
    pub fn measure_ring(&self, dirs: &[Dir]) -> AlphaBeta {
        measure_ring(self.topo, &self.algo.ipcq, hops_of(self.map, dirs))
    }
}

/// The model time, ns, of an algorithm moving `bytes` per rank over `pes`
/// on `topo` (NaN when no model is known for it, or its map cannot be
/// built over `pes`).
pub fn model_ns(topo: &Topology, algo: &Algorithm, pes: &[PeId], bytes: f64) -> f64 {
    model(topo, algo, pes, bytes).ns
}

/// The model's prediction for an algorithm moving `bytes` per rank over
/// `pes` on `topo`: its time and its limiting term, the term that accounts
/// for the largest share of the time.
pub fn model(topo: &Topology, algo: &Algorithm, pes: &[PeId], bytes: f64) -> Estimate {
    match cost(topo, algo, pes, bytes) {
        Some(c) => Estimate {
            ns: c.ns,
            bound: c.limiting().map(|t| Bound::of(topo, t)),
            leaves_out: family(algo).and_then(|f| f.leaves_out),
        },
        None => Estimate {
            ns: f64::NAN,
            bound: None,
            leaves_out: None,
        },
    }
}

/// The built-in whose model an algorithm takes: its kernel's, or the tree
/// all-reduce's on the tree map.
fn family(algo: &Algorithm) -> Option<&'static Builtin> {
    if algo.topology == MapKind::Tree {
        Some(&crate::algorithms::tree::TREE_ALLREDUCE)
    } else {
        Builtin::find(&algo.kernel)
    }
}

/// The model's cost of an algorithm, `None` when no model is known: its
/// [`Builtin`]'s cost model, found by its kernel. An algorithm on the tree
/// map is modelled as the tree all-reduce, whatever its kernel; a kernel
/// family registered from Rust has no model.
pub fn cost(topo: &Topology, algo: &Algorithm, pes: &[PeId], bytes: f64) -> Option<Cost> {
    let Ok(map) = crate::run::algorithm_map(topo, algo, pes) else {
        return None;
    };
    let family = family(algo)?;
    let input = ModelInput {
        topo,
        algo,
        pes,
        map: &map,
        bytes,
        pieces: (bytes / algo.seg_bytes as f64).ceil().max(1.0) as usize,
    };
    Some((family.cost)(&input))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithms::bruck::{bruck_reduce_scatter_steps, bruck_steps};
    use crate::algorithms::halving::rabenseifner_steps;
    use crate::algorithms::rooted::binomial_steps;

    const AB: AlphaBeta = AlphaBeta {
        alpha_ns: 10.0,
        beta_ns: 0.01,
        solo_beta_ns: 0.01,
        window: Window::NONE,
        link: None,
    };

    #[test]
    fn ring_formulas() {
        assert_eq!(ring_allreduce(1, 1e6, AB).ns, 0.0);
        // 2 (p-1) (alpha + n/p beta) with p = 4, n = 4000: 6 * (10 + 10) = 120.
        assert_eq!(ring_allreduce(4, 4000.0, AB).ns, 120.0);
        assert_eq!(ring_half(4, 4000.0, AB).ns, 60.0);
        // Large messages approach 2 (p-1)/p n beta.
        let t = ring_allreduce(8, 1e9, AB).ns;
        assert!((t / (2.0 * 7.0 / 8.0 * 1e9 * 0.01) - 1.0).abs() < 1e-3);
    }

    #[test]
    fn the_credit_window_bounds_a_stream_of_messages() {
        let w = Window {
            slots: 8.0,
            slot_bytes: 4096.0,
            cycle_ns: 800.0,
        };
        // A message of up to one slot takes a slot; 8 slots turn over per cycle.
        assert_eq!(w.per_msg(16.0), 100.0);
        assert_eq!(w.per_msg(4096.0), 100.0);
        // 64 KiB: 16 slots, two cycles.
        assert_eq!(w.per_msg(65536.0), 1600.0);
        let ab = AlphaBeta { window: w, ..AB };
        // Small messages: the window binds; large ones on a fast link too.
        assert_eq!(ab.stream(16.0).ns, 100.0);
        assert_eq!(ab.msg(16.0).ns, 10.16);
        assert_eq!(Window::NONE.per_msg(1e9), 0.0);
        assert_eq!(ring_half(2, 32.0, ab).ns, 100.0);
    }

    #[test]
    fn the_limiting_term_is_the_largest_share() {
        let w = Window {
            slots: 8.0,
            slot_bytes: 4096.0,
            cycle_ns: 800.0,
        };
        let ab = AlphaBeta {
            window: w,
            link: Some(LinkId(3)),
            ..AB
        };
        // 16 B: the window's 100 ns beat alpha + bytes beta.
        assert_eq!(ring_half(4, 64.0, ab).limiting(), Some(Term::CreditWindow));
        // No window: 10 ns of latency against 0.16 ns on the wire.
        let free = AlphaBeta {
            window: Window::NONE,
            ..ab
        };
        let c = ring_half(4, 64.0, free);
        assert_eq!(c.limiting(), Some(Term::Latency));
        assert!((c.share(Term::Latency) + c.share(Term::Link(LinkId(3))) - c.ns).abs() < 1e-9);
        // 4 MB: 10 ns against 10 us on the wire.
        assert_eq!(
            ring_half(4, 4e6, free).limiting(),
            Some(Term::Link(LinkId(3)))
        );
        assert_eq!(Cost::zero().limiting(), None);
        // Ties go to the first term.
        let tie = Cost::of(Term::Hbm, 5.0) + Cost::of(Term::Latency, 5.0);
        assert_eq!(tie.limiting(), Some(Term::Latency));
    }

    #[test]
    fn the_model_names_the_link_it_found_busiest() {
        let topo = Topology::builtin("tiny").unwrap();
        let reg = crate::Registry::builtin();
        let pes: Vec<PeId> = topo.pes().collect();
        let ring = reg.get("ring_allreduce").unwrap();
        let small = model(&topo, ring, &pes, 4096.0);
        let large = model(&topo, ring, &pes, 64.0 * 1048576.0);
        assert!(small.ns < large.ns);
        assert_eq!(small.bound, Some(Bound::Latency), "{small:?}");
        // On `default` a small ring waits for the credits of its SIP crossing (ADR 0023).
        let two = Topology::builtin("default").unwrap();
        let all: Vec<PeId> = two.pes().collect();
        let far = model(&two, ring, &all, 4096.0);
        assert_eq!(far.bound, Some(Bound::CreditWindow), "{far:?}");
        // A large ring is as fast as the link its channels share most.
        let map = crate::run::algorithm_map(&topo, ring, &pes).unwrap();
        let ab = measure(
            &topo,
            &ring.ipcq,
            hops_of(&map, &[kernbench_core::ir::Dir::E]),
        );
        let l = topo.link(ab.link.unwrap());
        let name = format!("{} -> {}", l.from, l.to);
        match &large.bound {
            Some(Bound::Link(n)) => assert_eq!(n, &name),
            b => panic!("{b:?}"),
        }
        assert_eq!(large.bound.unwrap().to_string(), format!("link {name}"));
    }

    #[test]
    fn tree_and_doubling_formulas() {
        assert_eq!(tree_depth(1), 0);
        assert_eq!(tree_depth(2), 1);
        assert_eq!(tree_depth(7), 2);
        assert_eq!(tree_depth(8), 3);
        // k = 1: 2 depth (alpha + n beta).
        assert_eq!(
            tree_allreduce(7, 1000.0, 1, AB).ns,
            2.0 * 2.0 * (10.0 + 10.0)
        );
        assert_eq!(recursive_doubling(8, 1000.0, AB).ns, 3.0 * 20.0);
        assert_eq!(chain_broadcast(4, 1000.0, 1, AB).ns, 3.0 * 20.0);
        // Along a ring: the first of 2 pieces crosses 3 hops, the second
        // follows one piece's wire time behind.
        assert_eq!(chain_broadcast_ring(4, 1000.0, 2, AB).ns, 3.0 * 15.0 + 5.0);
    }

    #[test]
    fn messages_of_a_step_share_the_links_they_cross() {
        let topo = Topology::builtin("tiny").unwrap();
        let pes: Vec<PeId> = topo.pes().collect();
        let (a, b, c) = (pes[0], pes[1], pes[2]);
        let x = 1e6;
        let one = |msgs: Vec<(PeId, PeId, f64)>| {
            steps_ns(
                &topo,
                &[Step {
                    msgs,
                    hbm_bytes: 0.0,
                    issue_ns: 0.0,
                    lead: None,
                }],
            )
            .ns
        };
        let alone = one(vec![(a, b, x)]);
        let route = topo.route(Endpoint::Pe(a), Endpoint::Pe(b)).unwrap();
        assert!(alone >= x / route.bottleneck_gbps, "{alone}");
        // Both leave through `a`'s link: twice the bytes on it.
        let first = topo.link(route.hops[0].link).gbps;
        let shared = one(vec![(a, b, x), (a, c, x)]);
        assert!(shared >= 2.0 * x / first, "{shared} against {alone}");
        // Steps add up; a step is as slow as the rank's HBM traffic when that is slower.
        let step = Step {
            msgs: vec![(a, b, 1.0)],
            hbm_bytes: x,
            issue_ns: 0.0,
            lead: None,
        };
        let hbm = x / (topo.pe_spec().hbm_gbps * topo.pe_spec().hbm_efficiency);
        let t = steps_ns(&topo, &[step.clone(), step]).ns;
        assert!(
            t >= 2.0 * hbm && t < 2.0 * hbm + 1000.0,
            "{t} against {hbm}"
        );
    }

    #[test]
    fn log_step_schedules_move_what_the_kernels_move() {
        let topo = Topology::builtin("tiny").unwrap();
        let pes: Vec<PeId> = topo.pes().collect();
        let sent = |steps: &[Step], from: PeId| -> f64 {
            steps
                .iter()
                .flat_map(|s| &s.msgs)
                .filter(|m| m.0 == from)
                .map(|m| m.2)
                .sum()
        };
        // 16 ranks: 4 + 4 steps, each rank sending 2 (p-1)/p of the vector.
        let rab = rabenseifner_steps(&pes, 1600.0);
        assert_eq!(rab.len(), 8);
        assert_eq!(sent(&rab, pes[5]), 2.0 * 15.0 * 100.0);
        // 12 ranks: 4 fold in and out around 3 + 3 steps over 8.
        let rab = rabenseifner_steps(&pes[..12], 1200.0);
        assert_eq!(rab.len(), 8);
        assert_eq!((rab[0].msgs.len(), rab[1].msgs.len()), (4, 8));
        // Bruck over 5 ranks: 3 steps, each rank sending 4/5 of the vector.
        let bruck = bruck_steps(&pes[..5], 500.0);
        assert_eq!(bruck.len(), 3);
        assert_eq!(sent(&bruck, pes[2]), 400.0);
        assert!(bruck_steps(&pes[..1], 500.0).is_empty());
        // Its reduce-scatter: the same sends, farthest first, upwards.
        let rs = bruck_reduce_scatter_steps(&pes[..5], 500.0);
        assert_eq!(rs.len(), 3);
        assert_eq!(sent(&rs, pes[2]), 400.0);
        assert_eq!(rs[0].msgs[0], (pes[0], pes[4], 100.0));
        assert_eq!(rs[2].msgs[0], (pes[0], pes[1], 100.0));
        // Binomial trees over 6 ranks rooted at 4: every rank but the root
        // sends once; the gather's messages add up to 5/6 of the vector at
        // the root.
        for gather in [false, true] {
            let b = binomial_steps(&pes[..6], 4, 600.0, gather);
            assert_eq!(b.len(), 3);
            let senders: Vec<PeId> = b.iter().flat_map(|s| &s.msgs).map(|m| m.0).collect();
            assert_eq!(senders.len(), 5);
            assert!(!senders.contains(&pes[4]));
            if gather {
                let into_root: f64 = b
                    .iter()
                    .flat_map(|s| &s.msgs)
                    .filter(|m| m.1 == pes[4])
                    .map(|m| m.2)
                    .sum();
                assert_eq!(into_root, 500.0);
            }
        }
    }

    #[test]
    fn hierarchy_and_torus() {
        let pe = PeFigures::of(&Topology::builtin("tiny").unwrap());
        let ar = |p, b| ring_allreduce_on(&pe, p, b, 1024.0, AB).ns;
        // One level is a ring all-reduce.
        assert_eq!(
            hierarchical(&pe, &[(4, AB)], 4000.0, 1024.0).ns,
            ar(4, 4000.0)
        );
        // Two levels: the second moves a quarter of the data.
        let two = hierarchical(&pe, &[(4, AB), (2, AB)], 4000.0, 1024.0).ns;
        assert!((two - ar(4, 4000.0) - ar(2, 1000.0)).abs() < 1e-9);
        assert!(
            (torus_allreduce(&pe, (1, 4), 4000.0, 1024.0, AB, AB).ns - ar(4, 4000.0)).abs() < 1e-9
        );
    }

    #[test]
    fn a_reduce_step_pays_its_load_and_math_where_a_gather_step_does_not() {
        let pe = PeFigures::of(&Topology::builtin("tiny").unwrap());
        // 256 B: one burst on one pseudo-channel, at an eighth of the slice's bandwidth.
        let one = pe.hbm_op(256.0);
        assert_eq!(one.ns, pe.hbm_latency_ns + 256.0 / pe.pc_gbps);
        // 16 KiB: 64 bursts spread over the 8 channels.
        let big = pe.hbm_op(16384.0);
        assert_eq!(big.ns, pe.hbm_latency_ns + 2048.0 / pe.pc_gbps);
        assert_eq!(big.limiting(), Some(Term::Hbm));
        // Small pieces, no window: the reduce-scatter's steps are longer by
        // the load and the reduction, the gather is bounded by its stores.
        let rs = ring_reduce_scatter(&pe, 4, 1024.0, 4096.0, AB);
        let ag = ring_all_gather(&pe, 4, 1024.0, 4096.0, AB);
        let step = AB.msg(256.0).ns;
        assert!(
            (rs.ns - (3.0 * (step + pe.reduce_lat(256.0).ns) + pe.issue_ns + one.ns)).abs() < 1e-9
        );
        assert!(
            (ag.ns
                - (pe.issue_ns
                    + one.ns
                    + (AB.alpha_ns + 3.0 * one.ns).max(3.0 * (step + pe.issue_ns))))
            .abs()
                < 1e-9
        );
        assert!(rs.share(Term::Math) > 0.0 && ag.share(Term::Math) == 0.0);
    }
}
