//! Links shared by transfers, with cut-through timing.
//!
//! A transfer reserves each link of its route in turn, first come first
//! served: on link `i` its head enters at `s_i = max(head arrival, link free)`,
//! its tail leaves at `e_i = max(s_i + bytes / bw_i, tail arrival from the
//! previous link)`, and the link is busy until `e_i`. The head reaches the next
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
/// (Aligned to it: packed at 56 bytes, most links would straddle two, and
/// at thousands of PEs nearly every first touch of a link is a miss.)
#[derive(Clone, Copy, Debug)]
#[repr(align(64))]
struct LinkState {
    gbps: f64,
    latency: Ps,
    free_at: Ps,
    busy: Ps,
    bytes: u64,
    /// The last transfer size seen and its serialisation time: trains of
    /// equal packets then skip the division.
    memo: (u64, Ps),
}

impl LinkState {
    fn ser(&mut self, bytes: u64) -> Ps {
        if self.memo.0 != bytes {
            self.memo = (bytes, transfer_ps(bytes, self.gbps));
        }
        self.memo.1
    }
}

/// Link state of a run.
pub struct Fabric {
    links: Vec<LinkState>,
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
                memo: (0, 0),
            })),
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
            let start = head.max(link.free_at);
            let end = (start + ser).max(tail_in);
            link.free_at = end;
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
