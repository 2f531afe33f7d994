//! IPCQ channels: ring slots, credits and posted receives, in two models.
//!
//! A message of `b` bytes on a channel fills `ceil(b / slot_bytes)` ring
//! slots of the receiver ("tickets", numbered along the channel). Ticket `t`
//! may be granted once the slot it reuses is back: for `t < slots` at once,
//! else when ticket `t - slots` has drained at the receiver, its receive has
//! been posted, and the credit has crossed back (`credit_ps`). A granted
//! ticket is injected when the comm DMA is free; it crosses the route's
//! links (shared, first come first served, cut-through) and drains into the
//! receiver's buffer at the buffer's rate. A receive completes when the last
//! ticket of its message has drained.
//!
//! - [`FabricModel::Slots`] (the reference) runs this with an event per
//!   ticket: a packet becomes visible, a credit comes back, the comm DMA
//!   pumps again.
//! - [`FabricModel::Messages`] (the default) derives the same train in
//!   closed form: when a send can proceed, every ticket whose slot-return
//!   time is known is injected in one pass (a max-plus recurrence over the
//!   tickets), and only the send's completion, the comm DMA's release, the
//!   grant and the receive are events. It falls back to waiting where the
//!   recurrence needs a time not yet known: a receive not yet posted, or a
//!   grant not yet started. See ADR 0008 for where the two differ.

use super::id::OpRef;
use crate::topology::{IpcqSpec, Route};
use crate::Ps;
use std::collections::VecDeque;

pub use crate::program::FabricModel;

/// A channel: its route and figures, what it carried, and the state of its model.
pub(crate) struct Chan {
    pub(crate) route: Route,
    /// Time for a credit to cross back to the sender.
    pub(crate) credit_ps: Ps,
    /// Rate at which an arrived packet drains into the receiver's buffer.
    pub(crate) drain_gbps: f64,
    /// Ring slots at the receiver.
    pub(crate) slots: u32,
    /// Bytes per ring slot (the launch's IPCQ setting).
    pub(crate) slot_bytes: u64,
    /// No other channel or DMA uses a link of the route, so nothing can
    /// interleave with a message's train (message model).
    pub(crate) private: bool,
    /// A pump already scheduled (message model, shared routes).
    pub(crate) pump_at: Option<Ps>,
    /// Packets injected.
    pub(crate) packets: u64,
    /// Bytes injected.
    pub(crate) bytes: u64,
    /// The slot model's state, under that model only: a message-model run
    /// of a million channels would carry it unused in each.
    slot: Option<Box<SlotChan>>,
    pub(crate) msg: MsgChan,
}

impl Chan {
    pub(crate) fn new(
        route: Route,
        ipcq: &IpcqSpec,
        (drain_gbps, private): (f64, bool),
        model: FabricModel,
    ) -> Self {
        let slots = ipcq.slots;
        Chan {
            slot_bytes: ipcq.slot_bytes,
            private,
            pump_at: None,
            credit_ps: route.credit_ps(ipcq.credit_bytes),
            route,
            drain_gbps,
            slots,
            packets: 0,
            bytes: 0,
            slot: (model == FabricModel::Slots).then(|| {
                Box::new(SlotChan {
                    credits: slots,
                    ..SlotChan::default()
                })
            }),
            msg: MsgChan::new(slots),
        }
    }

    /// The slot model's state (a channel of a slot-model run).
    fn slot(&self) -> &SlotChan {
        self.slot
            .as_deref()
            .expect("a channel of a slot-model run has slot state")
    }

    /// The slot model's state, to change (a channel of a slot-model run).
    pub(crate) fn slot_mut(&mut self) -> &mut SlotChan {
        self.slot
            .as_deref_mut()
            .expect("a channel of a slot-model run has slot state")
    }

    /// Slots granted or filled and not yet returned (for deadlock reports).
    pub(crate) fn slots_held(&self, model: FabricModel) -> u32 {
        match model {
            FabricModel::Slots => {
                let s = self.slot();
                self.slots - s.credits - s.granted
            }
            FabricModel::Messages => self.msg.held(),
        }
    }

    /// Packets of the posted receive that have arrived, and how many it needs.
    pub(crate) fn recv_progress(&self, model: FabricModel) -> (u64, u64) {
        match model {
            FabricModel::Slots => self
                .slot()
                .active_recv
                .map(|r| (u64::from(r.got), u64::from(r.need)))
                .unwrap_or((0, 0)),
            FabricModel::Messages => self
                .msg
                .recv
                .map(|r| (self.msg.injected.min(r.end) - r.first, r.end - r.first))
                .unwrap_or((0, 0)),
        }
    }
}

/// A send acquiring ring slots (slot model).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SlotGrant {
    pub(crate) by: OpRef,
    /// Slots it still needs.
    pub(crate) need: u32,
}

/// A receive consuming packets (slot model).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SlotRecv {
    pub(crate) by: OpRef,
    pub(crate) got: u32,
    pub(crate) need: u32,
}

/// The reference model's state of a channel.
#[derive(Debug, Default)]
pub(crate) struct SlotChan {
    /// Free slots at the receiver not yet granted to a send.
    pub(crate) credits: u32,
    /// Slots granted to sends but not yet used by a packet.
    pub(crate) granted: u32,
    pub(crate) active_grant: Option<SlotGrant>,
    /// Packets drained with no receive posted.
    pub(crate) queued: u32,
    pub(crate) active_recv: Option<SlotRecv>,
    /// A send waiting for a granted slot.
    pub(crate) waiting_send: Option<OpRef>,
    /// Bytes of the send in progress already injected.
    pub(crate) sent: u64,
}

/// One ticket in the ring of the last `slots` tickets injected: entry
/// `t % slots` holds ticket `t` from its injection until ticket `t + slots`
/// is injected. Which ticket an entry holds, and whether its return time is
/// known yet, follow from the channel's counters ([`MsgChan::holds`]), so an
/// entry is two words and a ring of four slots fills one cache line.
#[derive(Clone, Copy, Debug, Default)]
struct Ticket {
    /// When it has drained into the receiver's slot.
    drain: Ps,
    /// When its slot is back at the sender; meaningful once its receive is
    /// posted.
    ret: Ps,
}

#[derive(Clone, Copy, Debug)]
struct Grant {
    by: OpRef,
    start: Ps,
    end: u64,
}

#[derive(Clone, Copy, Debug)]
struct Send {
    by: OpRef,
    first: u64,
    next: u64,
    end: u64,
    bytes: u64,
    sent: u64,
    /// When the previous packet's tail left the first link (the comm DMA is free).
    prev_end: Ps,
    /// When the comm DMA last looked for granted slots (the send completes
    /// for the kernel at the look that finds the last one).
    pump: Ps,
    drain_max: Ps,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Recv {
    by: OpRef,
    post: Ps,
    first: u64,
    end: u64,
}

/// One packet the message model injected.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Packet {
    /// Injection start and end on the first link.
    pub(crate) at: (Ps, Ps),
    pub(crate) bytes: u64,
    pub(crate) first: bool,
}

/// What a send's injection pass left.
#[derive(Clone, Copy, Debug)]
pub(crate) enum SendPoll {
    /// Nothing to do until another event (a grant start, a receive posted).
    Parked,
    /// The next slot batch goes out at this time (shared routes only).
    PumpAt(Ps),
    /// Every ticket of the message is in.
    Done(SendDone),
}

/// What a send's injection pass finished with.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SendDone {
    pub(crate) by: OpRef,
    /// The send completes for the kernel.
    pub(crate) done: Ps,
    /// The comm DMA is free again.
    pub(crate) free: Ps,
}

/// Appends to one of a channel's queues, whose first allocation holds one
/// entry: most channels of an all-to-all carry one message, and a queue's
/// default first growth (to four) would give each of a million channels
/// room it never uses. A busier channel's queue then grows as usual.
fn push_small<T>(q: &mut VecDeque<T>, x: T) {
    if q.capacity() == 0 {
        q.reserve_exact(1);
    }
    q.push_back(x);
}

/// The message model's state of a channel: tickets and their times.
#[derive(Debug)]
pub(crate) struct MsgChan {
    ring: Vec<Ticket>,
    /// Tickets injected so far (the next ticket to inject).
    pub(crate) injected: u64,
    grant_next: u64,
    send_next: u64,
    recv_next: u64,
    /// `(first ticket, start)` of grants whose sends have not finished.
    grant_starts: VecDeque<(u64, Ps)>,
    /// `(end ticket, last drain)` of messages injected whose receives have not completed.
    drained: VecDeque<(u64, Ps)>,
    grant: Option<Grant>,
    /// A grant whose completion time became known during an injection pass.
    grant_done: Option<(OpRef, Ps)>,
    send: Option<Send>,
    pub(crate) recv: Option<Recv>,
}

impl MsgChan {
    fn new(slots: u32) -> Self {
        MsgChan {
            ring: vec![Ticket::default(); slots.max(1) as usize],
            injected: 0,
            grant_next: 0,
            send_next: 0,
            recv_next: 0,
            grant_starts: VecDeque::new(),
            drained: VecDeque::new(),
            grant: None,
            grant_done: None,
            send: None,
            recv: None,
        }
    }

    fn w(&self) -> u64 {
        self.ring.len() as u64
    }

    /// Whether the ring holds ticket `t` (injected, and its entry not yet
    /// reused by ticket `t + slots`).
    fn holds(&self, t: u64) -> bool {
        t < self.injected && t + self.w() >= self.injected
    }

    /// When ticket `t`'s slot is free for a grant, if known yet: the return
    /// of ticket `t - slots`, once that is injected and its receive posted.
    fn avail(&self, t: u64) -> Option<Ps> {
        let w = self.w();
        if t < w {
            return Some(0);
        }
        let u = t - w;
        (self.holds(u) && u < self.recv_next).then(|| self.ring[(u % w) as usize].ret)
    }

    /// Slots filled and not yet returned: injected tickets whose receive is not posted.
    fn held(&self) -> u32 {
        let lo = self.injected.saturating_sub(self.w()).max(self.recv_next);
        self.injected.saturating_sub(lo) as u32
    }

    /// The send being injected.
    pub(crate) fn sender(&self) -> Option<OpRef> {
        self.send.map(|s| s.by)
    }

    /// A send's slot grant starts: it covers the next `n` tickets.
    pub(crate) fn grant_start(&mut self, by: OpRef, now: Ps, n: u64) {
        debug_assert!(self.grant.is_none(), "grants on one channel are ordered");
        let first = self.grant_next;
        self.grant_next += n;
        push_small(&mut self.grant_starts, (first, now));
        self.grant = Some(Grant {
            by,
            start: now,
            end: first + n,
        });
    }

    /// The grant in progress, and when it completes, once that is known.
    pub(crate) fn poll_grant(&mut self) -> Option<(OpRef, Ps)> {
        if let Some(done) = self.grant_done.take() {
            return Some(done);
        }
        let g = self.grant?;
        let at = self.avail(g.end - 1)?.max(g.start);
        self.grant = None;
        Some((g.by, at))
    }

    /// A send starts on the comm DMA: it covers the next `n` tickets.
    pub(crate) fn send_start(&mut self, by: OpRef, now: Ps, bytes: u64, n: u64) {
        debug_assert!(self.send.is_none(), "sends on one channel are ordered");
        let first = self.send_next;
        self.send_next += n;
        self.send = Some(Send {
            by,
            first,
            next: first,
            end: first + n,
            bytes,
            sent: 0,
            prev_end: now,
            pump: now,
            drain_max: 0,
        });
    }

    /// Injects the tickets of the send in progress whose grant time is
    /// known and, unless `horizon` is `None`, whose slot batch goes out by
    /// `horizon`: the comm DMA takes every granted slot at once, as the
    /// reference pumps. `transfer(start, bytes) -> (first link free,
    /// arrival)` reserves the links of one packet; `on_packet` is told of it.
    pub(crate) fn poll_send(
        &mut self,
        horizon: Option<Ps>,
        figures: (Ps, u64, f64),
        mut transfer: impl FnMut(Ps, u64) -> (Ps, Ps),
        mut on_packet: impl FnMut(Packet),
    ) -> SendPoll {
        let (credit_ps, slot_bytes, drain_gbps) = figures;
        let drain_ps = |pkt: u64| crate::ids::transfer_ps(pkt, drain_gbps);
        let slot_drain = drain_ps(slot_bytes);
        let Some(mut s) = self.send else {
            return SendPoll::Parked;
        };
        let Some(g0) = self
            .grant_starts
            .iter()
            .find(|(f, _)| *f == s.first)
            .map(|(_, t)| *t)
        else {
            return SendPoll::Parked;
        };
        let mut pump_at = None;
        let w = self.w();
        while s.next < s.end {
            let t = s.next;
            let Some(avail) = self.avail(t) else {
                break;
            };
            // Injecting `t` recycles the entry of `t - slots`: a grant that
            // waits for `t`'s slot resolves now.
            if let Some(g) = self.grant.filter(|g| g.end - 1 == t) {
                self.grant_done = Some((g.by, avail.max(g.start)));
                self.grant = None;
            }
            let granted = avail.max(g0);
            let start = granted.max(s.prev_end);
            if granted > s.pump {
                // A new batch: the comm DMA finds this slot granted at `start`.
                if horizon.is_some_and(|h| start > h) {
                    pump_at = Some(start);
                    break;
                }
                s.pump = start;
            }
            let pkt = slot_bytes.min(s.bytes - s.sent).max(1);
            let (free, arrive) = transfer(start, pkt);
            let drain = arrive
                + if pkt == slot_bytes {
                    slot_drain
                } else {
                    drain_ps(pkt)
                };
            let end = free.max(start);
            on_packet(Packet {
                at: (start, end),
                bytes: pkt,
                first: t == s.first,
            });
            // A ticket whose receive is posted is that receive's: its
            // return is known now (see `avail`).
            let ret = match self.recv {
                Some(r) if t < self.recv_next => {
                    debug_assert!((r.first..r.end).contains(&t));
                    r.post.max(drain) + credit_ps
                }
                // A receive completes only once its last ticket is in, so
                // a ticket past the posted receives has none yet.
                _ => {
                    debug_assert!(t >= self.recv_next, "ticket {t} lost its receive");
                    0
                }
            };
            self.ring[(t % w) as usize] = Ticket { drain, ret };
            s.prev_end = end;
            s.sent += pkt;
            s.drain_max = s.drain_max.max(drain);
            s.next += 1;
            self.injected = s.next;
        }
        if s.next < s.end {
            self.send = Some(s);
            return pump_at.map_or(SendPoll::Parked, SendPoll::PumpAt);
        }
        self.send = None;
        while self
            .grant_starts
            .front()
            .is_some_and(|(f, _)| *f <= s.first)
        {
            self.grant_starts.pop_front();
        }
        push_small(&mut self.drained, (s.end, s.drain_max));
        SendPoll::Done(SendDone {
            by: s.by,
            done: s.pump,
            free: s.prev_end,
        })
    }

    /// A receive is posted: it consumes the next `n` tickets.
    pub(crate) fn recv_start(&mut self, by: OpRef, now: Ps, n: u64, credit_ps: Ps) {
        debug_assert!(self.recv.is_none(), "receives on one channel are ordered");
        let first = self.recv_next;
        self.recv_next += n;
        let w = self.w();
        for t in first..(first + n).min(self.injected) {
            debug_assert!(self.holds(t), "a ticket not yet returned stays in the ring");
            let e = &mut self.ring[(t % w) as usize];
            e.ret = e.drain.max(now) + credit_ps;
        }
        self.recv = Some(Recv {
            by,
            post: now,
            first,
            end: first + n,
        });
    }

    /// The receive in progress, and when it completes, once that is known.
    pub(crate) fn poll_recv(&mut self) -> Option<(OpRef, Ps)> {
        let r = self.recv?;
        let &(end, drain) = self.drained.front()?;
        debug_assert_eq!(end, r.end, "messages drain in order");
        self.drained.pop_front();
        self.recv = None;
        Some((r.by, r.post.max(drain)))
    }
}

/// Ticket counts of a message.
pub(crate) fn tickets(bytes: u64, slot_bytes: u64) -> u64 {
    bytes.div_ceil(slot_bytes.max(1)).max(1)
}
