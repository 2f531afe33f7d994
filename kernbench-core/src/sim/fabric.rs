//! Links shared by transfers, with cut-through timing.
//!
//! A transfer reserves each link of its route in turn, first come first
//! served: on link `i` its head enters at `s_i`, the earliest time from its
//! head's arrival at which the link is idle for the whole stay, its tail
//! leaves at `e_i = max(s_i + bytes / bw_i, tail arrival from the previous
//! link)`, and the link is busy until `e_i`. The stay may fall in an idle
//! gap that earlier reservations, made for later times, left on the link
//! (ADR 0035). The head reaches the next
//! node `latency_i` (plus that node's per-transfer overhead) after `s_i`. An
//! uncontended transfer so costs `latency + overheads + bytes / bottleneck`
//! (wormhole), and two transfers over one link at once take longer than one.
//!
//! A sender whose route no other route crosses sends a message's packets as
//! a train (`Fabric::train_first`). When the first packet finds every link
//! free as its head comes, a later packet of its size that comes at least
//! the first one's longest stay after the packet before it finds them free
//! too: its stays are the first one's, shifted, and they are written to the
//! links once, when the train ends. That costs O(1) a packet instead of
//! O(links) and gives the same times; a property test drives random trains
//! both ways.

use crate::ids::transfer_ps;
use crate::topology::{Link, Route};
use crate::Ps;

/// One transfer's stay on one link: kept only when tracing (see [`Fabric::traced`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkSpan {
    /// The link (index into the topology's link table).
    pub link: u32,
    /// When the transfer's head entered the link, ps.
    pub start: Ps,
    /// When its tail left the link (the link is busy until then), ps.
    pub end: Ps,
    /// Bytes carried.
    pub bytes: u64,
    /// The instance whose op moved the bytes, when known.
    pub inst: Option<u32>,
    /// The instance the bytes are for (a message's receiver), when known.
    pub peer: Option<u32>,
}

/// One link's figures and state, together: a hop touches one cache line.
/// (Aligned to it, and 64 bytes: at thousands of PEs nearly every first
/// touch of a link is a miss.)
#[derive(Clone, Copy, Debug)]
#[repr(align(64))]
struct LinkState {
    gbps: f64,
    latency: Ps,
    free_at: Ps,
    busy: Ps,
    bytes: u64,
    /// The link's latest idle gap `(from, to)` before `free_at` ((0, 0)
    /// when it has none); the earlier ones are in [`Fabric::gaps`]. A stay
    /// that cannot end by `to` fits in no gap, and none is read.
    gap: (Ps, Ps),
    /// The last transfer size seen and its serialisation time, when both
    /// fit in 32 bits: trains of equal packets then skip the division.
    memo: (u32, u32),
}

impl LinkState {
    fn ser(&mut self, bytes: u64) -> Ps {
        if u64::from(self.memo.0) == bytes && bytes > 0 {
            return Ps::from(self.memo.1);
        }
        let ser = transfer_ps(bytes, self.gbps);
        if let (Ok(b), Ok(t)) = (u32::try_from(bytes), u32::try_from(ser)) {
            self.memo = (b, t);
        }
        ser
    }
}

/// Packets of one size that one sender injects one after another over a
/// route of private links (see [`Fabric::train_next`]): the first packet's
/// stay on each link, from which a later packet's stays follow by a shift.
#[derive(Default)]
struct Train {
    /// Whether a train is open.
    open: bool,
    bytes: u64,
    /// When the first packet was injected, and what its transfer returned.
    at: Ps,
    first: (Ps, Ps),
    /// The first packet's longest stay on a link: a packet injected at
    /// least this long after the one before it finds every link free.
    clear: Ps,
    /// `(link, head arrival, start, end)` of the first packet's stay on each link.
    stays: Vec<(u32, Ps, Ps, Ps)>,
    /// Packets taken after the first, not yet written to the links.
    pending: u64,
    /// When the last packet taken was injected.
    last: Ps,
}

/// Link state of a run.
pub struct Fabric {
    links: Vec<LinkState>,
    /// Per link, the overhead a transfer pays at the node it enters the
    /// link from ([`Link::overhead_ps`]; [`LinkState`] fills a cache line
    /// without it).
    entry: Vec<Ps>,
    /// Per link, the idle gaps `(from, to)` in time order that reservations
    /// left before its latest one ([`LinkState::gap`]), while they may
    /// still be used.
    gaps: Vec<Vec<(Ps, Ps)>>,
    /// Per link, whether [`Fabric::gaps`] holds any (read before the list,
    /// which at thousands of links is rarely cached).
    spilled: Vec<bool>,
    /// Per link, whether one route at most crosses it: its own transfers
    /// come in order, so it keeps no gaps.
    private: Vec<bool>,
    /// No transfer starts before this time (the engine's current time): a
    /// gap that ends by then is of no more use.
    floor: Ps,
    /// Link occupancy, in the order transfers reserved links; `None` unless tracing.
    pub trace: Option<Vec<LinkSpan>>,
    /// The packet train being sent, if any.
    train: Train,
}

impl Fabric {
    /// Idle links.
    pub fn new(links: &[Link]) -> Self {
        Fabric {
            links: super::huge::collect(links.iter().map(|l| LinkState {
                gbps: l.gbps,
                latency: l.latency_ps,
                free_at: 0,
                busy: 0,
                bytes: 0,
                gap: (0, 0),
                memo: (0, 0),
            })),
            entry: links.iter().map(|l| l.overhead_ps).collect(),
            gaps: vec![Vec::new(); links.len()],
            spilled: vec![false; links.len()],
            private: vec![false; links.len()],
            floor: 0,
            trace: None,
            train: Train::default(),
        }
    }

    /// Links.
    pub fn len(&self) -> usize {
        self.links.len()
    }

    /// `true` for a machine without links.
    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// Busy time of link `l` so far, ps.
    pub fn busy(&self, l: usize) -> Ps {
        debug_assert!(self.train.pending == 0, "a packet train left open");
        self.links[l].busy
    }

    /// Bytes link `l` has carried so far.
    pub fn bytes(&self, l: usize) -> u64 {
        debug_assert!(self.train.pending == 0, "a packet train left open");
        self.links[l].bytes
    }

    /// `(link, busy ps, bytes)` of every link that was busy, in link order.
    pub fn busy_links(&self) -> impl Iterator<Item = (usize, Ps, u64)> + '_ {
        debug_assert!(self.train.pending == 0, "a packet train left open");
        self.links
            .iter()
            .enumerate()
            .filter(|(_, l)| l.busy > 0)
            .map(|(i, l)| (i, l.busy, l.bytes))
    }

    /// Marks the links that at most one route crosses (`users[link] <= 1`):
    /// their own transfers come in order, so they keep no idle gaps.
    pub(crate) fn private_links(mut self, users: &[u32]) -> Self {
        for (private, &n) in self.private.iter_mut().zip(users) {
            *private = n <= 1;
        }
        self
    }

    /// Tells the fabric that no transfer will start before `now`.
    pub(crate) fn set_floor(&mut self, now: Ps) {
        self.floor = now;
    }

    /// Reserves link `l` for a stay `ser` long from `head` on, ending no
    /// earlier than `tail_in`: in the earliest idle gap that holds it, else
    /// after the link's last reservation. Returns the stay.
    #[inline(always)]
    fn stay(&mut self, l: usize, head: Ps, ser: Ps, tail_in: Ps) -> (Ps, Ps) {
        if self.links[l].gap.1 >= (head + ser).max(tail_in) {
            if let Some(stay) = self.fit(l, head, ser, tail_in) {
                return stay;
            }
        }
        self.append(l, head, ser, tail_in)
    }

    /// A stay on link `l` in one of its idle gaps, the earliest that holds
    /// it (see [`fit_gap`]), if any.
    fn fit(&mut self, l: usize, head: Ps, ser: Ps, tail_in: Ps) -> Option<(Ps, Ps)> {
        let floor = self.floor;
        if self.spilled[l] {
            let gaps = &mut self.gaps[l];
            let fit = fit_gap(gaps, floor, head, ser, tail_in, MAX_GAPS - 1);
            self.spilled[l] = !gaps.is_empty();
            if fit.is_some() {
                return fit;
            }
        }
        let link = &mut self.links[l];
        let (from, to) = link.gap;
        let start = head.max(from);
        let end = (start + ser).max(tail_in);
        if end > to {
            return None;
        }
        // What is left of the latest gap: its later part stays the latest,
        // an earlier part joins the others.
        link.gap = if to > end { (end, to) } else { (0, 0) };
        if start > from {
            if link.gap == (0, 0) {
                link.gap = (from, start);
            } else {
                self.spill(l, (from, start));
            }
        } else if link.gap == (0, 0) && self.spilled[l] {
            // The latest gap is used up: the one before it is the latest now.
            let gaps = &mut self.gaps[l];
            link.gap = gaps.pop().unwrap_or((0, 0));
            self.spilled[l] = !gaps.is_empty();
        }
        Some((start, end))
    }

    /// A stay on link `l` after its last reservation; the idle time before
    /// it, if any, becomes the link's latest gap.
    #[inline(always)]
    fn append(&mut self, l: usize, head: Ps, ser: Ps, tail_in: Ps) -> (Ps, Ps) {
        let floor = self.floor;
        let link = &mut self.links[l];
        let free = link.free_at;
        let start = head.max(free);
        let end = (start + ser).max(tail_in);
        link.free_at = end;
        if start > free && start > floor && !self.private[l] {
            let earlier = link.gap;
            link.gap = (free.max(floor), start);
            if earlier.1 > floor {
                self.spill(l, earlier);
            } else if self.spilled[l] {
                // The latest gap was over, so every earlier one is too.
                self.gaps[l].clear();
                self.spilled[l] = false;
            }
        }
        (start, end)
    }

    /// Files `gap` on link `l` after its other earlier gaps, forgetting the
    /// earliest when the link holds [`MAX_GAPS`].
    fn spill(&mut self, l: usize, gap: (Ps, Ps)) {
        let gaps = &mut self.gaps[l];
        if !self.spilled[l] {
            gaps.clear();
        }
        if gaps.len() + 1 >= MAX_GAPS {
            gaps.remove(0);
        }
        gaps.push(gap);
        self.spilled[l] = true;
    }

    /// Records link occupancy ([`LinkSpan`]s) from now on when `on`.
    pub fn traced(mut self, on: bool) -> Self {
        self.trace = if on { Some(Vec::new()) } else { None };
        self
    }

    /// Asks the CPU to bring the state of `route`'s links into its cache,
    /// ahead of transfers over it: a transfer reads the links one after
    /// another, each read waiting for the last, where asked for together
    /// their misses overlap (see [`super::cache`]).
    pub(crate) fn prefetch(&self, route: &Route) {
        for hop in &route.hops {
            if let Some(link) = self.links.get(hop.link.0 as usize) {
                super::cache::prefetch(link);
            }
        }
    }

    /// Sends `bytes` over `route` starting at `now`. Returns when the tail has
    /// left the first link (the sender may inject again) and when the tail
    /// arrives at the destination.
    pub fn transfer(&mut self, now: Ps, route: &Route, bytes: u64) -> (Ps, Ps) {
        self.transfer_for(now, route, bytes, (None, None))
    }

    /// [`Fabric::transfer`] on behalf of instance `by.0`, for instance `by.1`,
    /// where known: the names a trace gives the link spans.
    pub fn transfer_for(
        &mut self,
        now: Ps,
        route: &Route,
        bytes: u64,
        by: (Option<u32>, Option<u32>),
    ) -> (Ps, Ps) {
        if self.train.open {
            self.train_end();
        }
        self.hops(now, route, bytes, by, |_, _, _, _| {})
    }

    /// Reserves the links of `route` for `bytes` from `now` on, one after
    /// another (see the module's rule), and tells `stay` each link's
    /// `(link, head arrival, start, end)`. Returns when the tail has left
    /// the first link and when it arrives.
    #[inline]
    fn hops(
        &mut self,
        now: Ps,
        route: &Route,
        bytes: u64,
        by: (Option<u32>, Option<u32>),
        mut stay: impl FnMut(u32, Ps, Ps, Ps),
    ) -> (Ps, Ps) {
        if route.hops.is_empty() {
            return (now, now);
        }
        let mut head = now;
        let mut tail_in = now;
        let mut first_free = now;
        for (k, hop) in route.hops.iter().enumerate() {
            let l = hop.link.0 as usize;
            let link = &mut self.links[l];
            head += self.entry[l];
            let ser = link.ser(bytes);
            let (start, end) = self.stay(l, head, ser, tail_in);
            let link = &mut self.links[l];
            link.busy += end - start;
            link.bytes += bytes;
            let latency = link.latency;
            if let Some(t) = self.trace.as_mut() {
                t.push(LinkSpan {
                    link: l as u32,
                    start,
                    end,
                    bytes,
                    inst: by.0,
                    peer: by.1,
                });
            }
            stay(l as u32, head, start, end);
            if k == 0 {
                first_free = end;
            }
            head = start + latency;
            tail_in = end + latency;
        }
        (first_free, tail_in)
    }

    /// Sends the first packet of a train: `bytes` over `route` at `now`,
    /// as [`Fabric::transfer_for`] does, for a sender that goes on sending
    /// packets of this size over the route ([`Fabric::train_next`]).
    ///
    /// The route's links must be private ([`Fabric::private_links`]): no
    /// other route crosses them, so until [`Fabric::train_end`] only the
    /// train's own packets use them. The train opens only when the packet
    /// found every link free as its head came, so that its stays depend on
    /// its own times alone. A traced fabric records every packet's spans,
    /// so it sends each on its own.
    pub(crate) fn train_first(
        &mut self,
        now: Ps,
        route: &Route,
        bytes: u64,
        by: (Option<u32>, Option<u32>),
    ) -> (Ps, Ps) {
        self.train_end();
        if self.trace.is_some() {
            return self.hops(now, route, bytes, by, |_, _, _, _| {});
        }
        debug_assert!(
            route.hops.iter().all(|h| self.private[h.link.0 as usize]),
            "a packet train over a shared link"
        );
        let mut stays = std::mem::take(&mut self.train.stays);
        stays.clear();
        let first = self.hops(now, route, bytes, by, |l, head, start, end| {
            stays.push((l, head, start, end))
        });
        self.train = Train {
            // A packet that waited for a link (for the packet before it)
            // sets no pattern: the next one may wait otherwise, or not.
            open: stays.iter().all(|&(_, head, start, _)| start == head),
            bytes,
            at: now,
            first,
            clear: stays.iter().map(|&(_, _, s, e)| e - s).max().unwrap_or(0),
            stays,
            pending: 0,
            last: now,
        };
        first
    }

    /// The next packet of the open train, injected at `now`, when its
    /// stays are the first packet's shifted by `now` less the first's
    /// injection: it has the first's size, and it comes at least the
    /// first's longest stay after the packet before it, so on every link
    /// the one before has left when it arrives and (the links being
    /// private) nothing else is there. Returns what [`Fabric::transfer_for`]
    /// would; the links are written at [`Fabric::train_end`]. `None`
    /// otherwise: the caller sends it as a new train's first packet.
    pub(crate) fn train_next(&mut self, now: Ps, bytes: u64) -> Option<(Ps, Ps)> {
        let t = &mut self.train;
        if !t.open || bytes != t.bytes || now < t.last + t.clear {
            return None;
        }
        t.pending += 1;
        t.last = now;
        let shift = now - t.at;
        Some((t.first.0 + shift, t.first.1 + shift))
    }

    /// Closes the open train, if any: writes its later packets' stays to
    /// the links.
    pub(crate) fn train_end(&mut self) {
        let t = &mut self.train;
        if !t.open {
            return;
        }
        t.open = false;
        if t.pending == 0 {
            return;
        }
        let shift = t.last - t.at;
        for &(l, _, start, end) in &t.stays {
            let link = &mut self.links[l as usize];
            link.free_at = end + shift;
            link.busy += t.pending * (end - start);
            link.bytes += t.pending * t.bytes;
        }
        t.pending = 0;
    }
}

/// Idle gaps kept per link; past this the earliest is forgotten.
const MAX_GAPS: usize = 16;

/// The first of `gaps` (in time order) that holds a stay on the link of a
/// transfer whose head arrives at `head`, `ser` long, and whose tail leaves
/// no earlier than `tail_in`: the stay, with the gap split around it. Gaps
/// that end by `floor` are dropped on the way.
fn fit_gap(
    gaps: &mut Vec<(Ps, Ps)>,
    floor: Ps,
    head: Ps,
    ser: Ps,
    tail_in: Ps,
    cap: usize,
) -> Option<(Ps, Ps)> {
    let stale = gaps.iter().take_while(|g| g.1 <= floor).count();
    gaps.drain(..stale);
    for k in 0..gaps.len() {
        let (from, to) = gaps[k];
        let start = head.max(from);
        let end = (start + ser).max(tail_in);
        if end > to {
            continue;
        }
        match (start > from, to > end) {
            (true, true) => {
                gaps[k] = (from, start);
                gaps.insert(k + 1, (end, to));
                if gaps.len() > cap {
                    gaps.remove(0);
                }
            }
            (true, false) => gaps[k] = (from, start),
            (false, true) => gaps[k] = (end, to),
            (false, false) => {
                gaps.remove(k);
            }
        }
        return Some((start, end));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{fit_gap, Fabric, MAX_GAPS};
    use crate::topology::{Hop, Link, LinkId, LinkKind, Node, Route};
    use crate::Ps;
    use proptest::prelude::*;

    /// The gaps of one link as one sorted list, the simplest form of the
    /// rule: the reference the fabric's split storage (the latest gap in
    /// the link's state, the others in a list) must agree with.
    #[derive(Default)]
    struct OneList {
        free_at: Ps,
        gaps: Vec<(Ps, Ps)>,
    }

    impl OneList {
        fn stay(&mut self, floor: Ps, head: Ps, ser: Ps, tail_in: Ps) -> (Ps, Ps) {
            let latest = self.gaps.last().map_or(0, |g| g.1);
            if latest >= (head + ser).max(tail_in) {
                if let Some(stay) = fit_gap(&mut self.gaps, floor, head, ser, tail_in, MAX_GAPS) {
                    return stay;
                }
            }
            let start = head.max(self.free_at);
            let end = (start + ser).max(tail_in);
            if start > self.free_at && start > floor {
                if self.gaps.last().map_or(0, |g| g.1) <= floor {
                    self.gaps.clear();
                } else if self.gaps.len() == MAX_GAPS {
                    self.gaps.remove(0);
                }
                self.gaps.push((self.free_at.max(floor), start));
            }
            self.free_at = end;
            (start, end)
        }
    }

    proptest! {
        /// Any sequence of reservations, each from the current time on,
        /// gets the same stays from the fabric as from one sorted list.
        #[test]
        fn split_gap_storage_agrees_with_one_list(steps in prop::collection::vec((0u64..10, 0u64..2000, 1u64..30, 0u64..3), 1..300)) {
            let link = Link {
                kind: LinkKind::Noc,
                from: Node::Pe(crate::PeId::new(0, 0, 0)),
                to: Node::Pe(crate::PeId::new(0, 0, 1)),
                gbps: 1.0,
                latency_ps: 0,
                overhead_ps: 0,
            };
            let mut fabric = Fabric::new(&[link]);
            let mut reference = OneList::default();
            let mut floor = 0;
            for (advance, ahead, ser, tail) in steps {
                floor += advance;
                fabric.set_floor(floor);
                let head = floor + ahead;
                // Some stays wait for their tail from the previous link.
                let tail_in = if tail == 0 { head + ser + 20 } else { 0 };
                prop_assert_eq!(
                    fabric.stay(0, head, ser, tail_in),
                    reference.stay(floor, head, ser, tail_in)
                );
            }
        }
    }

    /// A chain of private links of these `(GB/s, latency, entry overhead)`,
    /// and the route over all of them.
    fn chain(links: &[(f64, Ps, Ps)]) -> (Fabric, Route) {
        let pe = |k: usize| Node::Pe(crate::PeId::new(0, 0, k as u16));
        let table: Vec<Link> = links
            .iter()
            .enumerate()
            .map(|(k, &(gbps, latency_ps, overhead_ps))| Link {
                kind: LinkKind::Noc,
                from: pe(k),
                to: pe(k + 1),
                gbps,
                latency_ps,
                overhead_ps,
            })
            .collect();
        let route = Route {
            hops: (0..links.len())
                .map(|k| Hop {
                    link: LinkId(k as u32),
                })
                .collect(),
            latency_ps: links.iter().map(|l| l.1).sum(),
            overhead_ps: links.iter().map(|l| l.2).sum(),
            bottleneck_gbps: links.iter().map(|l| l.0).fold(f64::INFINITY, f64::min),
        };
        let fabric = Fabric::new(&table).private_links(&vec![1; links.len()]);
        (fabric, route)
    }

    /// Sends `packets` (`(wait, bytes, end the train first)`: each injected
    /// `wait` after the last one's tail left the first link) as trains on
    /// one fabric and one by one on another, checking each packet's times,
    /// and then every link's busy time, bytes and when it is free. Returns
    /// how many packets the trains took in closed form.
    fn trains_and_packets(links: &[(f64, Ps, Ps)], packets: &[(Ps, u64, bool)]) -> usize {
        let (mut trains, route) = chain(links);
        let (mut single, _) = chain(links);
        let (mut free, mut derived) = (0, 0);
        for &(wait, bytes, end) in packets {
            let at = free + wait;
            if end {
                trains.train_end();
            }
            let got = match trains.train_next(at, bytes) {
                Some(t) => {
                    derived += 1;
                    t
                }
                None => trains.train_first(at, &route, bytes, (None, None)),
            };
            let want = single.transfer(at, &route, bytes);
            assert_eq!(got, want, "packet of {bytes} B at {at}");
            free = want.0;
        }
        trains.train_end();
        for l in 0..links.len() {
            assert_eq!(trains.busy(l), single.busy(l), "link {l} busy");
            assert_eq!(trains.bytes(l), single.bytes(l), "link {l} bytes");
        }
        // A last packet finds each link free when the other fabric's does.
        assert_eq!(trains.transfer(0, &route, 1), single.transfer(0, &route, 1));
        derived
    }

    proptest! {
        /// Packets sent as trains over private links take the times, and
        /// leave the links, that packets sent one by one do.
        #[test]
        fn trains_agree_with_packets_sent_one_by_one(
            links in prop::collection::vec((1u32..40, 0u64..3000, 0u64..500), 1..6),
            packets in prop::collection::vec((0u64..2_000_000, 0usize..3, 0u8..8), 1..80),
        ) {
            let links: Vec<(f64, Ps, Ps)> =
                links.iter().map(|&(g, lat, ovh)| (f64::from(g) / 4.0, lat, ovh)).collect();
            let sizes = [4096, 4096, 1500];
            let packets: Vec<(Ps, u64, bool)> = packets
                .iter()
                .map(|&(wait, size, end)| (wait * u64::from(wait % 2 == 0), sizes[size], end == 0))
                .collect();
            trains_and_packets(&links, &packets);
        }
    }

    #[test]
    fn a_train_behind_its_slowest_link_is_derived_from_its_first_packet() {
        // The first link is the slowest: back to back, no packet meets the
        // one before it further on, and all but the first are derived.
        let links = [(8.0, 500, 100), (16.0, 800, 50), (32.0, 300, 0)];
        let back_to_back = [(0, 4096, false); 16];
        assert_eq!(trains_and_packets(&links, &back_to_back), 15);
        // Slowest last: each packet catches up with the one before it, so
        // each is sent on its own (and the times still agree).
        let links = [(32.0, 500, 100), (16.0, 800, 50), (8.0, 300, 0)];
        assert_eq!(trains_and_packets(&links, &back_to_back), 0);
        // Spaced out far enough, they are derived again; a short last
        // packet starts a train of its own.
        let mut spaced = [(600_000, 4096, false); 16];
        spaced[15].1 = 1000;
        assert_eq!(trains_and_packets(&links, &spaced), 14);
    }

    #[test]
    fn a_stay_splits_the_first_gap_that_holds_it() {
        let mut gaps = vec![(100, 150), (200, 400)];
        // Too long for the first gap: the second, split around it.
        assert_eq!(fit_gap(&mut gaps, 0, 120, 60, 0, 16), Some((200, 260)));
        assert_eq!(gaps, [(100, 150), (260, 400)]);
        // Inside the first, from its start: what is left is its tail.
        assert_eq!(fit_gap(&mut gaps, 0, 90, 20, 0, 16), Some((100, 120)));
        assert_eq!(gaps, [(120, 150), (260, 400)]);
        // A tail that arrives late holds the link until it has left.
        assert_eq!(fit_gap(&mut gaps, 0, 300, 10, 390, 16), Some((300, 390)));
        assert_eq!(gaps, [(120, 150), (260, 300), (390, 400)]);
        // Gaps over by the floor are dropped; none holds a long stay.
        assert_eq!(fit_gap(&mut gaps, 200, 0, 50, 0, 16), None);
        assert_eq!(gaps, [(260, 300), (390, 400)]);
        // A stay that fills a gap exactly removes it.
        assert_eq!(fit_gap(&mut gaps, 200, 260, 40, 0, 16), Some((260, 300)));
        assert_eq!(gaps, [(390, 400)]);
    }
}
