//! A functional run of a launch: data and message order only, no timing model.
//!
//! Every program instance is traced and its communication paired exactly as
//! in [`simulate_full`](crate::sim::simulate_full); then each instance runs as
//! a coroutine over its commands in program order. A blocking `recv` or a
//! `wait` suspends the instance while its message has not arrived; a `send`
//! puts its message into the receiver's IPCQ ring as packets of one slot
//! (`slot_bytes`, the last one shorter) and suspends until every packet has a
//! slot; a posted receive consumes the packets of its message as they come and
//! frees their slots. A ring that fills and is never drained deadlocks here as
//! it does in the timed run. Instances take turns from a
//! run queue until every one has finished or none can progress, which is
//! reported as [`SimError::Deadlock`] with the same waiters as the timed run
//! gives (at time 0).
//!
//! A launch that executes data ([`Launch::data`]) is checked for data races
//! as the timed run checks it (ADR 0019): a race is two accesses that
//! nothing orders, whichever order they happen to run in, so both runs find
//! the same races.
//!
//! What the commands compute is a [`ValueDomain`], the same trait the timed
//! run drives ([`simulate_in`](crate::sim::simulate_in)): [`Numeric`] computes
//! numbers (so both runs agree bit for bit), and other domains (such as the
//! contribution sets of `kernbench_ccl::verify`) can be plugged in with
//! [`run_with`].
//!
//! ```
//! use kernbench_core::functional;
//! use kernbench_core::ir::{Command, CommandGraph, GraphBuilder, GraphHeader, KernelArgs, SrcLoc, TraceError, TraceLimits};
//! use kernbench_core::machine::Machine;
//! use kernbench_core::program::Program;
//! use kernbench_core::sim::Launch;
//! use kernbench_core::topology::Topology;
//!
//! // A program that only fills a tile (no memory, no messages).
//! struct Fill;
//! impl Program for Fill {
//!     fn name(&self) -> &str { "fill" }
//!     fn trace(&self, _: &KernelArgs, grid: &[u32], pid: &[u32]) -> Result<CommandGraph, TraceError> {
//!         let header = GraphHeader { kernel: "fill".into(), params: vec![], grid: grid.to_vec(), pid: pid.to_vec() };
//!         let mut b = GraphBuilder::new(header, TraceLimits::default());
//!         let loc = SrcLoc { file: "fill.rs".into(), line: 1, col: 1 };
//!         b.full(1.0, kernbench_core::ir::TileType::new(kernbench_core::DType::F32, vec![4]), &loc)?;
//!         Ok(b.finish())
//!     }
//! }
//!
//! let topo = Topology::builtin("tiny").unwrap();
//! let pes: Vec<_> = topo.pes().take(2).collect();
//! let mut machine = Machine::new(topo).unwrap();
//! let out = functional::run(&mut machine, &Launch::new(&Fill, KernelArgs::new(), pes)).unwrap();
//! assert_eq!(out.commands, 2);
//! assert_eq!(out.messages, 0);
//! ```

use crate::ir::{CmdId, Command, CommandGraph, MemRef};
use crate::machine::Machine;
use crate::passes::pair::{self, Channels};
use crate::sim::data::Races;
pub use crate::sim::domain::{Exec, Numeric, OrderOnly, ValueDomain};
use crate::sim::race::RaceCheck;
use crate::sim::{Deadlock, Launch, SimError, Wait, Waiter};
use crate::PeId;
use std::collections::VecDeque;

/// The contiguous byte runs `(virtual address, bytes)` a region covers, in
/// element order: the runs data execution reads and writes.
pub fn region_runs(r: &MemRef) -> Vec<(u64, u64)> {
    crate::sim::data::region_runs(r).into_vec()
}

/// What a functional run leaves.
#[derive(Clone, Debug)]
pub struct FunctionalOutcome {
    /// The graph of each instance, instance 0 first.
    pub graphs: Vec<CommandGraph>,
    /// The paired channels.
    pub channels: Channels,
    /// Messages delivered (receives completed).
    pub messages: u64,
    /// Commands executed, over all instances.
    pub commands: u64,
    /// Times an instance was resumed from the run queue.
    pub turns: u64,
}

/// Runs a launch functionally, with the numeric domain when the launch
/// executes data ([`Launch::data`]) and with [`OrderOnly`] when it does not.
pub fn run(machine: &mut Machine, launch: &Launch) -> Result<FunctionalOutcome, SimError> {
    if launch.data {
        run_with(machine, launch, &mut Numeric::new())
    } else {
        run_with(machine, launch, &mut OrderOnly)
    }
}

/// What a suspended instance waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Block {
    /// Not suspended.
    None,
    /// A blocking receive (or a wait) for the receive `cmd` to complete.
    Recv(CmdId),
    /// A send with `sent` of its `need` packets in the receiver's ring.
    Send {
        cmd: CmdId,
        chan: u32,
        sent: u32,
        need: u32,
    },
}

/// One instance's coroutine state.
struct Inst {
    /// The next command to run.
    pc: usize,
    /// What it is suspended on.
    block: Block,
    /// Whether it is in the run queue.
    queued: bool,
    /// Receives posted and not yet complete.
    open_recvs: u32,
    /// Per command: a receive that has completed.
    recv_done: Vec<bool>,
    /// Per command: the last command that reads its tile.
    last_use: Vec<u32>,
}

/// A posted receive on a channel.
#[derive(Clone, Copy, Debug)]
struct PostedRecv {
    inst: u32,
    cmd: CmdId,
    got: u32,
    need: u32,
}

/// One channel's IPCQ ring.
struct Ring {
    slots: u32,
    /// Free slots (credits at the sender).
    free: u32,
    /// Packets in the ring that no receive has consumed yet.
    queued: u32,
    /// Receives posted on the channel, oldest (the active one) first.
    posted: VecDeque<PostedRecv>,
    /// A sender suspended on a full ring.
    blocked_sender: Option<u32>,
}

/// The interpreter over one launch.
struct Interp<'a, D: ValueDomain> {
    machine: &'a mut Machine,
    domain: &'a mut D,
    pes: &'a [PeId],
    graphs: &'a [CommandGraph],
    channels: &'a Channels,
    slot_bytes: u64,
    insts: Vec<Inst>,
    rings: Vec<Ring>,
    ready: VecDeque<u32>,
    messages: u64,
    commands: u64,
    turns: u64,
    /// The race detector, when the launch executes data.
    races: Option<RaceCheck>,
}

/// Runs a launch functionally in the given value domain.
pub fn run_with<D: ValueDomain>(
    machine: &mut Machine,
    launch: &Launch,
    domain: &mut D,
) -> Result<FunctionalOutcome, SimError> {
    let graphs = crate::passes::trace::trace_all(machine.topology(), launch)?;
    let channels = pair::pair(&launch.pes, &graphs, launch.neighbors.as_ref())?;
    let ipcq = launch
        .ipcq
        .clone()
        .unwrap_or_else(|| machine.topology().ipcq().clone());
    domain.begin(&graphs, &channels)?;
    let insts = graphs
        .iter()
        .map(|g| {
            let mut last_use: Vec<u32> = (0..g.len() as u32).collect();
            for (id, node) in g.nodes() {
                for v in node.cmd.operands() {
                    last_use[v.index()] = last_use[v.index()].max(id.0);
                }
            }
            Inst {
                pc: 0,
                block: Block::None,
                queued: true,
                open_recvs: 0,
                recv_done: vec![false; g.len()],
                last_use,
            }
        })
        .collect();
    let slots = ipcq.slots.max(1);
    let rings = channels
        .list
        .iter()
        .map(|_| Ring {
            slots,
            free: slots,
            queued: 0,
            posted: VecDeque::new(),
            blocked_sender: None,
        })
        .collect();
    let mut it = Interp {
        machine,
        domain,
        pes: &launch.pes,
        graphs: &graphs,
        channels: &channels,
        slot_bytes: ipcq.slot_bytes.max(1),
        insts,
        rings,
        ready: (0..launch.pes.len() as u32).collect(),
        messages: 0,
        commands: 0,
        turns: 0,
        races: launch.data.then(|| RaceCheck::new(&graphs, &launch.pes)),
    };
    it.run()?;
    let (messages, commands, turns) = (it.messages, it.commands, it.turns);
    Ok(FunctionalOutcome {
        graphs,
        channels,
        messages,
        commands,
        turns,
    })
}

impl<D: ValueDomain> Interp<'_, D> {
    fn run(&mut self) -> Result<(), SimError> {
        while let Some(i) = self.ready.pop_front() {
            self.insts[i as usize].queued = false;
            self.turns += 1;
            self.resume(i)?;
        }
        let stuck = self
            .insts
            .iter()
            .any(|s| s.pc < s.recv_done.len() || s.open_recvs > 0 || s.block != Block::None);
        if stuck {
            return Err(SimError::Deadlock(self.deadlock()));
        }
        Ok(())
    }

    fn wake(&mut self, i: u32) {
        let s = &mut self.insts[i as usize];
        if !s.queued {
            s.queued = true;
            self.ready.push_back(i);
        }
    }

    fn packets(&self, g: &CommandGraph, cmd: CmdId) -> u32 {
        let bytes = g.node(cmd).ty.bytes();
        let need = bytes.div_ceil(self.slot_bytes).max(1);
        u32::try_from(need).unwrap_or(u32::MAX)
    }

    fn chan_of(&self, i: usize, cmd: CmdId) -> u32 {
        self.channels
            .of_cmd(i, cmd)
            .expect("paired commands have channels")
    }

    /// Executes command `cmd` of instance `iu` in the domain, checking the
    /// memory it reports for races.
    fn exec(&mut self, pe: PeId, iu: usize, cmd: CmdId, chan: Option<u32>) -> Result<(), SimError> {
        let races = self.races.as_mut().map(|check| Races {
            check,
            graphs: self.graphs,
            channels: self.channels,
        });
        let g = &self.graphs[iu];
        self.domain
            .execute(&mut Exec::new(self.machine, pe, iu, g, cmd, chan).with_races(races))
    }

    /// Runs instance `i` until it finishes or suspends.
    fn resume(&mut self, i: u32) -> Result<(), SimError> {
        let iu = i as usize;
        let g = self.graphs;
        let g = &g[iu];
        // Finish what it was suspended on.
        match self.insts[iu].block {
            Block::None => {}
            Block::Recv(cmd) => {
                if !self.insts[iu].recv_done[cmd.index()] {
                    return Ok(());
                }
                self.insts[iu].block = Block::None;
                // A blocking receive is done; a `wait` runs below.
                if self.insts[iu].pc == cmd.index() {
                    self.after(iu, g);
                }
            }
            Block::Send {
                cmd,
                chan,
                sent,
                need,
            } => {
                let sent = self.push_packets(chan, sent, need)?;
                if sent < need {
                    self.insts[iu].block = Block::Send {
                        cmd,
                        chan,
                        sent,
                        need,
                    };
                    self.rings[chan as usize].blocked_sender = Some(i);
                    return Ok(());
                }
                self.insts[iu].block = Block::None;
                self.after(iu, g);
            }
        }
        let pe = self.pes[iu];
        while self.insts[iu].pc < g.len() {
            let id = CmdId(self.insts[iu].pc as u32);
            let node = g.node(id);
            match &node.cmd {
                Command::Send { .. } => {
                    let chan = self.chan_of(iu, id);
                    let need = self.packets(g, id);
                    self.domain.send(iu, g, id, chan)?;
                    // Complete for the race check before its receive can be:
                    // everything it is ordered after has run.
                    if let Some(rc) = self.races.as_mut() {
                        rc.completed(iu, id);
                    }
                    let sent = self.push_packets(chan, 0, need)?;
                    if sent < need {
                        self.insts[iu].block = Block::Send {
                            cmd: id,
                            chan,
                            sent,
                            need,
                        };
                        self.rings[chan as usize].blocked_sender = Some(i);
                        return Ok(());
                    }
                }
                Command::Recv { is_async, .. } => {
                    let chan = self.chan_of(iu, id);
                    let need = self.packets(g, id);
                    self.insts[iu].open_recvs += 1;
                    self.rings[chan as usize].posted.push_back(PostedRecv {
                        inst: i,
                        cmd: id,
                        got: 0,
                        need,
                    });
                    self.drain(chan)?;
                    if !is_async && !self.insts[iu].recv_done[id.index()] {
                        self.insts[iu].block = Block::Recv(id);
                        return Ok(());
                    }
                }
                Command::Wait { future } => {
                    if !self.insts[iu].recv_done[future.index()] {
                        self.insts[iu].block = Block::Recv(*future);
                        return Ok(());
                    }
                    self.exec(pe, iu, id, None)?;
                }
                _ => self.exec(pe, iu, id, None)?,
            }
            self.after(iu, g);
        }
        Ok(())
    }

    /// The command at `pc` of instance `iu` is done: release dead tiles and move on.
    fn after(&mut self, iu: usize, g: &CommandGraph) {
        let pc = self.insts[iu].pc;
        let id = CmdId(pc as u32);
        self.commands += 1;
        let node = g.node(id);
        // Sends and receives complete for the race check where they run.
        if !matches!(node.cmd, Command::Recv { .. } | Command::Send { .. }) {
            if let Some(rc) = self.races.as_mut() {
                rc.completed(iu, id);
            }
        }
        // A receive's tile is released by its last user (it completes later).
        if !matches!(node.cmd, Command::Recv { .. }) && self.insts[iu].last_use[pc] == id.0 {
            self.domain.release(iu, id);
        }
        for v in node.cmd.operands() {
            if self.insts[iu].last_use[v.index()] == id.0 {
                self.domain.release(iu, v);
            }
        }
        self.insts[iu].pc = pc + 1;
    }

    /// Puts packets `sent..need` of a message into channel `chan` while its
    /// ring has free slots, letting a posted receive consume them as they
    /// come (so a message larger than the ring streams through a receiver
    /// that waits for it); gives how many are in.
    fn push_packets(&mut self, chan: u32, mut sent: u32, need: u32) -> Result<u32, SimError> {
        let c = chan as usize;
        loop {
            let ring = &mut self.rings[c];
            let take = ring.free.min(need - sent);
            ring.free -= take;
            ring.queued += take;
            sent += take;
            self.drain(chan)?;
            if sent >= need || self.rings[c].free == 0 {
                return Ok(sent);
            }
        }
    }

    /// Lets the posted receives of a channel consume the packets in its ring,
    /// completing every receive whose message is whole.
    fn drain(&mut self, chan: u32) -> Result<(), SimError> {
        let c = chan as usize;
        let mut freed = false;
        loop {
            let ring = &mut self.rings[c];
            let (queued, Some(head)) = (ring.queued, ring.posted.front_mut()) else {
                break;
            };
            let take = queued.min(head.need - head.got);
            if take == 0 {
                break;
            }
            head.got += take;
            ring.queued -= take;
            ring.free += take;
            freed = true;
            if head.got < head.need {
                break;
            }
            let done = ring.posted.pop_front().expect("the head was just read");
            self.complete_recv(done, chan)?;
        }
        if freed {
            if let Some(s) = self.rings[c].blocked_sender.take() {
                self.wake(s);
            }
        }
        Ok(())
    }

    fn complete_recv(&mut self, r: PostedRecv, chan: u32) -> Result<(), SimError> {
        let iu = r.inst as usize;
        self.exec(self.pes[iu], iu, r.cmd, Some(chan))?;
        if let Some(rc) = self.races.as_mut() {
            rc.completed(iu, r.cmd);
        }
        self.messages += 1;
        let s = &mut self.insts[iu];
        s.recv_done[r.cmd.index()] = true;
        s.open_recvs -= 1;
        if s.block == Block::Recv(r.cmd) {
            self.wake(r.inst);
        }
        Ok(())
    }

    /// The waiters of a run that cannot progress, worded as the timed run words them.
    fn deadlock(&self) -> Deadlock {
        // (instance, command, waiter), sorted so each PE's waits come in program order.
        let mut found: Vec<(usize, CmdId, Waiter)> = Vec::new();
        for (c, ring) in self.rings.iter().enumerate() {
            let ch = &self.channels.list[c];
            if let Some(head) = ring.posted.front() {
                let iu = head.inst as usize;
                let node = self.graphs[iu].node(head.cmd);
                let Command::Recv { peer, .. } = &node.cmd else {
                    continue;
                };
                found.push((
                    iu,
                    head.cmd,
                    Waiter {
                        pe: self.pes[iu],
                        wait: Wait::Recv {
                            from: *peer,
                            peer: self.pes[ch.src],
                            got: u64::from(head.got),
                            need: u64::from(head.need),
                        },
                        loc: node.loc.clone(),
                    },
                ));
            }
        }
        for (iu, s) in self.insts.iter().enumerate() {
            if let Block::Send { cmd, chan, .. } = s.block {
                let node = self.graphs[iu].node(cmd);
                let Command::Send { peer: to, .. } = &node.cmd else {
                    continue;
                };
                let ring = &self.rings[chan as usize];
                let peer = self.pes[self.channels.list[chan as usize].dst];
                found.push((
                    iu,
                    cmd,
                    Waiter {
                        pe: self.pes[iu],
                        wait: Wait::Send {
                            to: *to,
                            peer,
                            full: ring.slots - ring.free,
                            slots: ring.slots,
                        },
                        loc: node.loc.clone(),
                    },
                ));
            }
        }
        for (iu, s) in self.insts.iter().enumerate() {
            if s.pc < s.recv_done.len() && !found.iter().any(|(i, _, _)| *i == iu) {
                // Not waiting on a channel: name the command it stopped at.
                let at = CmdId(s.pc as u32);
                let node = self.graphs[iu].node(at);
                found.push((
                    iu,
                    at,
                    Waiter {
                        pe: self.pes[iu],
                        wait: Wait::Earlier {
                            op: node.cmd.mnemonic(),
                        },
                        loc: node.loc.clone(),
                    },
                ));
            }
        }
        found.sort_by_key(|(i, c, _)| (*i, *c));
        Deadlock {
            at_ps: 0,
            waiters: found.into_iter().map(|(_, _, w)| w).collect(),
        }
    }
}
