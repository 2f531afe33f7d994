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

/// Link state of a run.
pub struct Fabric {
    links: Vec<LinkState>,
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
            gaps: vec![Vec::new(); links.len()],
            spilled: vec![false; links.len()],
            private: vec![false; links.len()],
            floor: 0,
            trace: None,
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
        self.links[l].busy
    }

    /// Bytes link `l` has carried so far.
    pub fn bytes(&self, l: usize) -> u64 {
        self.links[l].bytes
    }

    /// `(link, busy ps, bytes)` of every link that was busy, in link order.
    pub fn busy_links(&self) -> impl Iterator<Item = (usize, Ps, u64)> + '_ {
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
        if route.hops.is_empty() {
            return (now, now);
        }
        let mut head = now;
        let mut tail_in = now;
        let mut first_free = now;
        for (k, hop) in route.hops.iter().enumerate() {
            let l = hop.link.0 as usize;
            let link = &mut self.links[l];
            head += hop.overhead_ps;
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
            if k == 0 {
                first_free = end;
            }
            head = start + latency;
            tail_in = end + latency;
        }
        (first_free, tail_in)
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
    use crate::topology::{Link, LinkKind, Node};
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
