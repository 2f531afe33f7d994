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

/// Link state of a run.
pub struct Fabric {
    gbps: Vec<f64>,
    latency: Vec<Ps>,
    free_at: Vec<Ps>,
    /// Busy time of each link, ps.
    pub busy: Vec<Ps>,
    /// Bytes carried by each link.
    pub bytes: Vec<u64>,
}

impl Fabric {
    /// Idle links.
    pub fn new(links: &[Link]) -> Self {
        Fabric {
            gbps: links.iter().map(|l| l.gbps).collect(),
            latency: links.iter().map(|l| l.latency_ps).collect(),
            free_at: vec![0; links.len()],
            busy: vec![0; links.len()],
            bytes: vec![0; links.len()],
        }
    }

    /// Sends `bytes` over `route` starting at `now`. Returns when the tail has
    /// left the first link (the sender may inject again) and when the tail
    /// arrives at the destination.
    pub fn transfer(&mut self, now: Ps, route: &Route, bytes: u64) -> (Ps, Ps) {
        if route.hops.is_empty() {
            return (now, now);
        }
        let mut head = now;
        let mut tail_in = now;
        let mut first_free = now;
        for (k, hop) in route.hops.iter().enumerate() {
            let l = hop.link.0 as usize;
            head += hop.overhead_ps;
            let ser = transfer_ps(bytes, self.gbps[l]);
            let start = head.max(self.free_at[l]);
            let end = (start + ser).max(tail_in);
            self.free_at[l] = end;
            self.busy[l] += end - start;
            self.bytes[l] += bytes;
            if k == 0 {
                first_free = end;
            }
            head = start + self.latency[l];
            tail_in = end + self.latency[l];
        }
        (first_free, tail_in)
    }
}
