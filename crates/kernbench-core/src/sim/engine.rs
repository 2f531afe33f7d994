//! The event-driven core: many PEs on one timeline of integer picoseconds.
//!
//! Ops start when their dependencies are done and, for engine ops, when they
//! reach the head of their engine's in-order queue with the engine idle. Each
//! start schedules one completion event. Sends inject slot-sized packets as
//! credits allow; packets cross the fabric's links (shared, first come first
//! served); receives complete when their packets have drained; credits return
//! over the fast path. Ties are broken by a sequence number, so a run is
//! repeatable bit for bit.

use super::data::DataState;
use super::error::{Deadlock, SimError, Waiter};
use super::fabric::{Fabric, NO_INST};
use super::lower::{OpKind, PeProgram, Unit, UNITS};
use super::pairing::Channels;
use super::timeline::MsgLog;
use crate::ir::{Command, CommandGraph};
use crate::machine::Machine;
use crate::topology::{PeSpec, Route};
use crate::{PeId, Ps};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    /// An op of an instance finishes.
    OpDone { inst: u32, op: u32 },
    /// The comm engine of a sender may inject the next packet.
    SendNext { inst: u32, op: u32 },
    /// A packet has drained into the receiver's ring slot.
    Visible { chan: u32 },
    /// A credit is back at the sender.
    Credit { chan: u32 },
}

/// Per-channel state.
pub(crate) struct ChanState {
    pub(crate) route: Route,
    credit_ps: Ps,
    drain_gbps: f64,
    /// Free slots at the receiver not yet granted to a send.
    credits: u32,
    /// Slots granted to sends but not yet used by a packet.
    granted: u32,
    /// The send acquiring slots: (instance, op, slots still needed).
    active_grant: Option<(u32, u32, u32)>,
    slots: u32,
    queued: u32,
    /// The receive consuming this channel: (instance, op, packets consumed, packets needed).
    active_recv: Option<(u32, u32, u32, u32)>,
    /// A send waiting for a credit: (instance, op).
    waiting_send: Option<(u32, u32)>,
    pub(crate) packets: u64,
    pub(crate) bytes: u64,
}

struct SendProgress {
    sent: u64,
}

/// Per-instance state.
pub(crate) struct InstState {
    pub(crate) pe: PeId,
    pub(crate) prog: PeProgram,
    remaining: Vec<u32>,
    dependents_start: Vec<u32>,
    dependents: Vec<u32>,
    done: Vec<bool>,
    head: [usize; UNITS],
    busy: [bool; UNITS],
    started: Vec<bool>,
    send_progress: Vec<(u32, SendProgress)>,
    pc_free: Vec<Ps>,
    left: usize,
    pub(crate) end_ps: Ps,
    pub(crate) busy_ps: [Ps; UNITS],
    pub(crate) hbm_read: u64,
    pub(crate) hbm_write: u64,
    pub(crate) remote_bytes: u64,
    pub(crate) sent: u64,
    pub(crate) received: u64,
    pub(crate) flops: u64,
}

/// Timeline record of one op (for traces), kept only when asked for.
#[derive(Clone, Debug)]
pub struct Span {
    /// Instance index.
    pub inst: u32,
    /// Op index.
    pub op: u32,
    /// Start, ps.
    pub start: Ps,
    /// End, ps.
    pub end: Ps,
}

pub(crate) struct Engine<'a> {
    pub(crate) now: Ps,
    seq: u64,
    heap: BinaryHeap<Reverse<(Ps, u64, Ev)>>,
    pub(crate) insts: Vec<InstState>,
    pub(crate) chans: Vec<ChanState>,
    pub(crate) fabric: Fabric,
    routes: &'a [Route],
    graphs: &'a [CommandGraph],
    of_cmd: &'a Channels,
    spec: PeSpec,
    slot_bytes: u64,
    pub(crate) data: Option<DataState>,
    pub(crate) events: u64,
    pub(crate) spans: Option<Vec<Span>>,
    op_start: Vec<Vec<Ps>>,
    /// Sends and receives of each channel, for a trace's flows; `None` unless tracing.
    pub(crate) msg_log: Option<MsgLog>,
}

impl<'a> Engine<'a> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        start: Ps,
        pes: &[PeId],
        progs: Vec<PeProgram>,
        graphs: &'a [CommandGraph],
        channels: &'a Channels,
        chan_routes: Vec<Route>,
        routes: &'a [Route],
        fabric: Fabric,
        spec: &PeSpec,
        ipcq: &crate::topology::IpcqSpec,
        drain_gbps: f64,
        data: bool,
        trace: bool,
    ) -> Self {
        let insts: Vec<InstState> = progs
            .into_iter()
            .zip(pes)
            .map(|(prog, pe)| {
                let n = prog.ops.len();
                let remaining: Vec<u32> = (0..n).map(|i| prog.deps_of(i).len() as u32).collect();
                let mut count = vec![0u32; n + 1];
                for &x in &prog.deps {
                    count[x as usize] += 1;
                }
                let mut dependents_start = vec![0u32; n + 1];
                for i in 0..n {
                    dependents_start[i + 1] = dependents_start[i] + count[i];
                }
                let mut fill = dependents_start.clone();
                let mut dependents = vec![0u32; dependents_start[n] as usize];
                for i in 0..n {
                    for &x in prog.deps_of(i) {
                        dependents[fill[x as usize] as usize] = i as u32;
                        fill[x as usize] += 1;
                    }
                }
                InstState {
                    pe: *pe,
                    remaining,
                    dependents_start,
                    dependents,
                    done: vec![false; n],
                    started: vec![false; n],
                    head: [0; UNITS],
                    busy: [false; UNITS],
                    send_progress: Vec::new(),
                    pc_free: vec![start; spec.hbm_pcs as usize],
                    left: n,
                    end_ps: start,
                    busy_ps: [0; UNITS],
                    hbm_read: 0,
                    hbm_write: 0,
                    remote_bytes: 0,
                    sent: 0,
                    received: 0,
                    flops: 0,
                    prog,
                }
            })
            .collect();
        let credit_bytes = ipcq.credit_bytes;
        let chans = chan_routes
            .into_iter()
            .map(|route| ChanState {
                credit_ps: route.latency_ps
                    + route.overhead_ps
                    + crate::ids::transfer_ps(credit_bytes, route.bottleneck_gbps.max(1e-9)),
                route,
                drain_gbps,
                credits: ipcq.slots,
                granted: 0,
                active_grant: None,
                slots: ipcq.slots,
                queued: 0,
                active_recv: None,
                waiting_send: None,
                packets: 0,
                bytes: 0,
            })
            .collect();
        let op_start = if trace {
            insts
                .iter()
                .map(|i: &InstState| vec![0; i.prog.ops.len()])
                .collect()
        } else {
            Vec::new()
        };
        Engine {
            now: start,
            seq: 0,
            heap: BinaryHeap::new(),
            insts,
            chans,
            fabric: fabric.traced(trace),
            routes,
            graphs,
            of_cmd: channels,
            spec: spec.clone(),
            slot_bytes: ipcq.slot_bytes,
            data: if data {
                Some(DataState::new(graphs, channels.list.len()))
            } else {
                None
            },
            events: 0,
            spans: if trace { Some(Vec::new()) } else { None },
            op_start,
            msg_log: trace.then(|| MsgLog::new(channels.list.len())),
        }
    }

    fn push(&mut self, t: Ps, ev: Ev) {
        self.seq += 1;
        self.heap.push(Reverse((t, self.seq, ev)));
    }

    /// Runs to completion, or to a deadlock.
    pub(crate) fn run(&mut self, machine: &mut Machine) -> Result<(), SimError> {
        for inst in 0..self.insts.len() {
            let n = self.insts[inst].prog.ops.len();
            for op in 0..n {
                if self.insts[inst].remaining[op] == 0
                    && self.insts[inst].prog.ops[op].unit == Unit::Free
                {
                    self.start(inst as u32, op as u32);
                }
            }
            for u in 0..UNITS {
                self.try_unit(inst as u32, u);
            }
        }
        while let Some(Reverse((t, _, ev))) = self.heap.pop() {
            self.now = t;
            self.events += 1;
            match ev {
                Ev::OpDone { inst, op } => self.op_done(inst, op, machine)?,
                Ev::SendNext { inst, op } => self.pump_send(inst, op),
                Ev::Visible { chan } => self.visible(chan),
                Ev::Credit { chan } => {
                    self.chans[chan as usize].credits += 1;
                    self.pump_grant(chan);
                }
            }
        }
        if self.insts.iter().any(|i| i.left > 0) {
            return Err(SimError::Deadlock(self.deadlock()));
        }
        Ok(())
    }

    fn try_unit(&mut self, inst: u32, u: usize) {
        let s = &self.insts[inst as usize];
        if s.busy[u] {
            return;
        }
        let Some(&op) = s.prog.queues[u].get(s.head[u]) else {
            return;
        };
        if s.remaining[op as usize] == 0 {
            self.start(inst, op);
        }
    }

    fn start(&mut self, inst: u32, op: u32) {
        let now = self.now;
        let spec_issue = self.spec.cpu_overhead_ps() + self.spec.sched_overhead_ps();
        let s = &mut self.insts[inst as usize];
        let o = &s.prog.ops[op as usize];
        s.started[op as usize] = true;
        let unit = o.unit;
        if unit != Unit::Free {
            s.busy[unit as usize] = true;
            s.head[unit as usize] += 1;
        }
        if let Some(st) = self.op_start.get_mut(inst as usize) {
            st[op as usize] = now;
        }
        let end = match &o.kind {
            OpKind::Issue => now + spec_issue,
            OpKind::Fixed { ps, flops } => {
                s.flops += flops;
                now + ps
            }
            OpKind::Nop => now,
            OpKind::Hbm { pc_bytes, write } => {
                let pc_gbps = self.spec.hbm_effective_gbps() / pc_bytes.len() as f64;
                let mut end = now;
                let mut total = 0;
                for (pc, &b) in pc_bytes.iter().enumerate() {
                    if b == 0 {
                        continue;
                    }
                    total += b;
                    let st = s.pc_free[pc].max(now);
                    let e = st + crate::ids::transfer_ps(b, pc_gbps);
                    s.pc_free[pc] = e;
                    end = end.max(e);
                }
                if *write {
                    s.hbm_write += total;
                } else {
                    s.hbm_read += total;
                }
                end + self.spec.hbm_latency_ps()
            }
            OpKind::Remote { route, bytes, .. } => {
                s.remote_bytes += bytes;
                let r = &self.routes[*route as usize];
                let (_, arrive) = self.fabric.transfer_for(now, r, *bytes, (inst, NO_INST));
                arrive + self.spec.hbm_latency_ps()
            }
            OpKind::SendGrant { chan, bytes } => {
                let need = bytes.div_ceil(self.slot_bytes).max(1) as u32;
                let chan = *chan;
                debug_assert!(
                    self.chans[chan as usize].active_grant.is_none(),
                    "sends on one channel are ordered"
                );
                self.chans[chan as usize].active_grant = Some((inst, op, need));
                self.pump_grant(chan);
                return;
            }
            OpKind::Send { chan, .. } => {
                let chan = *chan;
                let cmd = o.cmd;
                s.send_progress.push((op, SendProgress { sent: 0 }));
                if let Some(d) = self.data.as_mut() {
                    d.send_start(inst as usize, &self.graphs[inst as usize], cmd, chan);
                }
                self.pump_send(inst, op);
                return;
            }
            OpKind::Recv { chan, bytes } => {
                let need = bytes.div_ceil(self.slot_bytes).max(1) as u32;
                let chan = *chan;
                let c = &mut self.chans[chan as usize];
                debug_assert!(
                    c.active_recv.is_none(),
                    "receives on one channel are ordered"
                );
                let take = c.queued.min(need);
                c.queued -= take;
                c.active_recv = Some((inst, op, take, need));
                let credit_at = now + c.credit_ps;
                for _ in 0..take {
                    self.push(credit_at, Ev::Credit { chan });
                }
                if take == need {
                    self.chans[chan as usize].active_recv = None;
                    self.push(now, Ev::OpDone { inst, op });
                }
                return;
            }
        };
        if unit != Unit::Free {
            self.insts[inst as usize].busy_ps[unit as usize] += end - now;
        }
        self.push(end, Ev::OpDone { inst, op });
    }

    fn pump_send(&mut self, inst: u32, op: u32) {
        let now = self.now;
        let s = &mut self.insts[inst as usize];
        let OpKind::Send { chan, bytes } = s.prog.ops[op as usize].kind else {
            unreachable!("pump_send on a send op")
        };
        let idx = s
            .send_progress
            .iter()
            .position(|(o, _)| *o == op)
            .expect("a started send has progress");
        let sent = s.send_progress[idx].1.sent;
        if sent >= bytes.max(1) {
            // Every packet is on its way: the comm engine is free again.
            s.send_progress.swap_remove(idx);
            s.busy[Unit::Comm as usize] = false;
            self.try_unit(inst, Unit::Comm as usize);
            return;
        }
        let c = &mut self.chans[chan as usize];
        if c.granted == 0 {
            c.waiting_send = Some((inst, op));
            return;
        }
        // Inject every packet that has a slot, back to back: each starts when
        // the previous one's tail has left the first link.
        let to = self.of_cmd.list[chan as usize].dst as u32;
        let mut t = now;
        let mut sent = sent;
        while c.granted > 0 && sent < bytes.max(1) {
            c.granted -= 1;
            let pkt = self.slot_bytes.min(bytes - sent).max(1);
            let first = sent == 0;
            sent += pkt;
            s.sent += pkt;
            c.packets += 1;
            c.bytes += pkt;
            let (free, arrive) = self.fabric.transfer_for(t, &c.route, pkt, (inst, to));
            let drained = arrive + crate::ids::transfer_ps(pkt, c.drain_gbps);
            let inject_end = free.max(t);
            s.busy_ps[Unit::Comm as usize] += inject_end - t;
            if let Some(log) = self.msg_log.as_mut() {
                log.packet(chan, (inst, op), first, (t, inject_end), bytes);
            }
            self.seq += 1;
            self.heap
                .push(Reverse((drained, self.seq, Ev::Visible { chan })));
            if sent >= bytes {
                // The last packet has its slot: the send completes for the kernel
                // (fire-and-forget); the engine finishes injecting in the background.
                self.seq += 1;
                self.heap
                    .push(Reverse((now, self.seq, Ev::OpDone { inst, op })));
            }
            t = inject_end;
        }
        s.send_progress[idx].1.sent = sent;
        self.push(t, Ev::SendNext { inst, op });
    }

    /// Hands free slots to the send acquiring them, and wakes a send waiting for a granted slot.
    fn pump_grant(&mut self, chan: u32) {
        let now = self.now;
        let c = &mut self.chans[chan as usize];
        if let Some((inst, op, need)) = c.active_grant.as_mut() {
            let take = (*need).min(c.credits);
            *need -= take;
            c.credits -= take;
            c.granted += take;
            if *need == 0 {
                let (inst, op) = (*inst, *op);
                c.active_grant = None;
                self.push(now, Ev::OpDone { inst, op });
            }
        }
        let c = &mut self.chans[chan as usize];
        if c.granted > 0 {
            if let Some((inst, op)) = c.waiting_send.take() {
                self.pump_send(inst, op);
            }
        }
    }

    fn visible(&mut self, chan: u32) {
        let now = self.now;
        let c = &mut self.chans[chan as usize];
        match c.active_recv.as_mut() {
            Some((inst, op, got, need)) => {
                *got += 1;
                let (inst, op, done) = (*inst, *op, *got == *need);
                let credit_at = now + c.credit_ps;
                if done {
                    c.active_recv = None;
                }
                self.push(credit_at, Ev::Credit { chan });
                if done {
                    self.push(now, Ev::OpDone { inst, op });
                }
            }
            None => c.queued += 1,
        }
    }

    fn op_done(&mut self, inst: u32, op: u32, machine: &mut Machine) -> Result<(), SimError> {
        let now = self.now;
        let i = inst as usize;
        let (unit, completes, cmd) = {
            let s = &mut self.insts[i];
            s.done[op as usize] = true;
            s.left -= 1;
            s.end_ps = s.end_ps.max(now);
            let o = &s.prog.ops[op as usize];
            (o.unit, o.completes, o.cmd)
        };
        if let (Some(spans), Some(st)) = (self.spans.as_mut(), self.op_start.get(i)) {
            spans.push(Span {
                inst,
                op,
                start: st[op as usize],
                end: now,
            });
        }
        if let OpKind::Recv { bytes, .. } = self.insts[i].prog.ops[op as usize].kind {
            self.insts[i].received += bytes;
        }
        if let (Some(log), OpKind::Recv { chan, .. }) = (
            self.msg_log.as_mut(),
            &self.insts[i].prog.ops[op as usize].kind,
        ) {
            log.recv(*chan, (inst, op), now);
        }
        if completes {
            if let Some(d) = self.data.as_mut() {
                let chan = self.of_cmd.of_cmd[i].get(&cmd).copied();
                d.complete(machine, self.insts[i].pe, i, &self.graphs[i], cmd, chan)?;
            }
        }
        // A send frees its engine when its last packet is injected (see pump_send).
        let frees_unit = unit != Unit::Free && unit != Unit::Comm;
        if frees_unit {
            self.insts[i].busy[unit as usize] = false;
        }
        let (a, b) = (
            self.insts[i].dependents_start[op as usize] as usize,
            self.insts[i].dependents_start[op as usize + 1] as usize,
        );
        for k in a..b {
            let d = self.insts[i].dependents[k];
            let s = &mut self.insts[i];
            s.remaining[d as usize] -= 1;
            if s.remaining[d as usize] == 0 {
                let du = s.prog.ops[d as usize].unit;
                if du == Unit::Free {
                    self.start(inst, d);
                } else {
                    self.try_unit(inst, du as usize);
                }
            }
        }
        if frees_unit {
            self.try_unit(inst, unit as usize);
        }
        Ok(())
    }

    fn deadlock(&self) -> Deadlock {
        let mut waiters = Vec::new();
        for (i, s) in self.insts.iter().enumerate() {
            if s.left == 0 {
                continue;
            }
            let g = &self.graphs[i];
            let mut found = false;
            let mut seen_cmd = None;
            for (op, o) in s.prog.ops.iter().enumerate() {
                if s.done[op] || !s.started[op] || seen_cmd == Some(o.cmd) {
                    continue;
                }
                let node = g.node(o.cmd);
                let (what, detail) = match (&o.kind, &node.cmd) {
                    (
                        OpKind::SendGrant { chan, .. } | OpKind::Send { chan, .. },
                        Command::Send { dir, .. },
                    ) => {
                        let c = &self.chans[*chan as usize];
                        let ch = &self.of_cmd.list[*chan as usize];
                        let peer = self.insts[ch.dst].pe;
                        (
                            format!("send {dir}"),
                            format!(
                                "to PE {peer}: {} of {} ring slots full, the receiver has not consumed them",
                                c.slots - c.credits - c.granted,
                                c.slots
                            ),
                        )
                    }
                    (OpKind::Recv { chan, .. }, Command::Recv { dir, .. }) => {
                        let c = &self.chans[*chan as usize];
                        let ch = &self.of_cmd.list[*chan as usize];
                        let peer = self.insts[ch.src].pe;
                        let (got, need) =
                            c.active_recv.map(|(_, _, g, n)| (g, n)).unwrap_or((0, 0));
                        (
                            format!("recv {dir}"),
                            format!("from PE {peer}: {got} of {need} packets arrived"),
                        )
                    }
                    _ => continue,
                };
                waiters.push(Waiter {
                    pe: s.pe,
                    what,
                    detail,
                    loc: node.loc.clone(),
                });
                seen_cmd = Some(o.cmd);
                found = true;
            }
            if !found {
                // Not waiting on the fabric: name the first command not done.
                if let Some((op, o)) = s.prog.ops.iter().enumerate().find(|(op, _)| !s.done[*op]) {
                    let node = g.node(o.cmd);
                    let _ = op;
                    waiters.push(Waiter {
                        pe: s.pe,
                        what: node.cmd.mnemonic().to_string(),
                        detail: "waits for an earlier command that cannot complete".to_string(),
                        loc: node.loc.clone(),
                    });
                }
            }
        }
        Deadlock {
            at_ps: self.now,
            waiters,
        }
    }
}
