//! Errors of a simulation, each naming the PE and the kernel line where it can.

use crate::ir::{Peer, SrcLoc, TraceError};
use crate::machine::MemError;
use crate::neighbors::NeighborError;
use crate::passes::tcm::TcmError;
use crate::PeId;
use std::fmt;

pub use crate::passes::error::{
    CommSide, CompileError, Mismatch, PairingError, PeerHint, RouteError,
};
pub use crate::program::LaunchError;

/// One PE that could not make progress when a run deadlocked.
#[derive(Clone, Debug, PartialEq)]
pub struct Waiter {
    /// The PE.
    pub pe: PeId,
    /// What it waits in, and for what.
    pub wait: Wait,
    /// The kernel line.
    pub loc: SrcLoc,
}

/// What a [`Waiter`] waits in: a send for ring slots, a receive for
/// packets, or another command for an earlier one.
#[derive(Clone, Debug, PartialEq)]
pub enum Wait {
    /// A send waits for free slots in the receiver's IPCQ ring.
    Send {
        /// The peer the send names.
        to: Peer,
        /// The receiving PE.
        peer: PeId,
        /// Ring slots held.
        full: u32,
        /// Ring slots in all.
        slots: u32,
    },
    /// A receive waits for packets.
    Recv {
        /// The peer the receive names.
        from: Peer,
        /// The sending PE.
        peer: PeId,
        /// Packets arrived.
        got: u64,
        /// Packets the message needs.
        need: u64,
    },
    /// A command that waits for an earlier command that cannot complete.
    Earlier {
        /// The command's mnemonic.
        op: &'static str,
    },
}

impl Wait {
    /// What the PE waits in: `send E`, `recv W`, or a command's mnemonic.
    pub fn what(&self) -> String {
        match self {
            Wait::Send { to, .. } => format!("send {to}"),
            Wait::Recv { from, .. } => format!("recv {from}"),
            Wait::Earlier { op } => op.to_string(),
        }
    }

    /// For what: the peer and the state of the channel.
    pub fn detail(&self) -> String {
        match self {
            Wait::Send {
                peer, full, slots, ..
            } => format!(
                "to PE {peer}: {full} of {slots} ring slots full, the receiver has not consumed them"
            ),
            Wait::Recv {
                peer, got, need, ..
            } => format!("from PE {peer}: {got} of {need} packets arrived"),
            Wait::Earlier { .. } => "waits for an earlier command that cannot complete".to_string(),
        }
    }
}

/// Why a simulation did not complete.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SimError {
    /// Tracing a program instance failed.
    #[error("{err} (program instance on PE {pe})")]
    Trace {
        /// The PE whose instance failed.
        pe: PeId,
        /// The trace error (it names the kernel line).
        err: TraceError,
    },
    /// The launch itself is malformed (grid, PEs, arguments).
    #[error("launch: {0}")]
    Launch(LaunchError),
    /// A neighbour map that cannot be built.
    #[error(transparent)]
    Neighbors(#[from] NeighborError),
    /// Sends and receives that do not pair up, or directions with no neighbour.
    #[error("unmatched communication: {0}")]
    Pairing(PairingError),
    /// A kernel needs more TCM than the PE has.
    #[error("TCM overflow on PE {pe} at {loc}: {err}")]
    Tcm {
        /// The PE.
        pe: PeId,
        /// The kernel line of the command whose tile did not fit.
        loc: SrcLoc,
        /// The tile and the sizes.
        err: TcmError,
    },
    /// A memory access outside the buffers of a PE, or another memory error.
    #[error("memory error on PE {pe} at {loc}: {err}")]
    Memory {
        /// The PE.
        pe: PeId,
        /// The kernel line.
        loc: SrcLoc,
        /// The error.
        err: MemError,
    },
    /// No event can make progress but some PEs still wait.
    #[error("{0}")]
    Deadlock(Deadlock),
    /// Two program instances access the same memory, one of them writing,
    /// with neither access ordered before the other (ADR 0019).
    #[error("{0}")]
    Race(Box<Race>),
    /// Events keep firing but no op completes: the run was stopped.
    #[error("{0}")]
    NoProgress(NoProgress),
    /// A route the topology cannot give.
    #[error("routing: {0}")]
    Route(RouteError),
    /// The run would not fit in memory; nothing was simulated.
    #[error(
        "this run needs {estimate}, more than the {} {}; to fit, use larger messages \
         (seg_bytes in ccl.yaml, --seg), fewer PEs (--pes), a smaller size (--size), \
         no data execution (drop --verify-data), or a narrower trace (--trace-pes, \
         --trace-window)",
        super::memory::human(*limit),
        if *explicit { "allowed by --max-memory" } else { "this machine has available (set --max-memory to change the limit)" }
    )]
    TooLarge {
        /// What the run was estimated to need.
        estimate: super::memory::MemoryEstimate,
        /// The limit, bytes.
        limit: u64,
        /// `true` when the limit was given (`--max-memory`), not read from the machine.
        explicit: bool,
    },
}

impl From<CompileError> for SimError {
    /// A compile error as the run's error of the same name and words.
    fn from(e: CompileError) -> Self {
        match e {
            CompileError::Trace { pe, err } => SimError::Trace { pe, err },
            CompileError::Launch(e) => SimError::Launch(e),
            CompileError::Pairing(e) => SimError::Pairing(e),
            CompileError::Tcm { pe, loc, err } => SimError::Tcm { pe, loc, err },
            CompileError::Memory { pe, loc, err } => SimError::Memory { pe, loc, err },
            CompileError::Route(e) => SimError::Route(e),
        }
    }
}

/// A run stopped because events kept firing with no op completing (a
/// livelock): more events since the last completion than the launch can need.
#[derive(Clone, Debug, PartialEq)]
pub struct NoProgress {
    /// Simulated time when the run was stopped, ps.
    pub at_ps: u64,
    /// Events fired since the last op completed.
    pub events: u64,
    /// The limit, derived from the launch's ops and IPCQ packets.
    pub limit: u64,
    /// The PEs the events still firing concern.
    pub pes: Vec<PeId>,
    /// The kinds of those events (`pump`, `credit`, ...).
    pub events_firing: Vec<String>,
    /// The PEs with unfinished work, and what each waits in.
    pub waiters: Vec<Waiter>,
}

impl fmt::Display for NoProgress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pes: Vec<String> = self.pes.iter().take(16).map(|p| p.to_string()).collect();
        writeln!(
            f,
            "no progress at {:.3} us: {} events fired since the last op completed, more than \
             the {} this launch can need; events ({}) keep firing on PE(s) {}{}",
            self.at_ps as f64 / 1e6,
            self.events,
            self.limit,
            self.events_firing.join(", "),
            pes.join(", "),
            if self.pes.len() > 16 {
                format!(" and {} more", self.pes.len() - 16)
            } else {
                String::new()
            }
        )?;
        write_waiters(f, &self.waiters)
    }
}

/// One line per waiting PE (the first 32), as deadlock and no-progress
/// reports give them.
fn write_waiters(f: &mut fmt::Formatter<'_>, waiters: &[Waiter]) -> fmt::Result {
    for w in waiters.iter().take(32) {
        writeln!(
            f,
            "  PE {} waits in `{}` ({}) at {}",
            w.pe,
            w.wait.what(),
            w.wait.detail(),
            w.loc
        )?;
    }
    if waiters.len() > 32 {
        writeln!(f, "  ... and {} more", waiters.len() - 32)?;
    }
    Ok(())
}

/// One side of a [`Race`]: a load or store of one program instance.
#[derive(Clone, Debug, PartialEq)]
pub struct RaceAccess {
    /// The PE of the instance.
    pub pe: PeId,
    /// The kernel line of the load or store.
    pub loc: SrcLoc,
    /// `true` for a store.
    pub write: bool,
    /// The kernel parameter it accesses through.
    pub param: String,
    /// The elements both accesses touch, `start..end`, counted from the
    /// parameter's first element (the first range of them in address order).
    pub elems: (u64, u64),
}

impl RaceAccess {
    fn verb(&self) -> &'static str {
        if self.write {
            "stores"
        } else {
            "loads"
        }
    }
}

/// Two accesses of different program instances to the same bytes, at least
/// one a store, with neither ordered before the other: no message chain
/// orders one after the other, so what the memory holds, or what the load
/// reads, depends on timing.
#[derive(Clone, Debug, PartialEq)]
pub struct Race {
    /// The access that completed first in this run.
    pub first: RaceAccess,
    /// The access that completed second.
    pub second: RaceAccess,
}

impl fmt::Display for Race {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (a, b) = (&self.first, &self.second);
        let what = |x: &RaceAccess| format!("`{}` elements {}..{}", x.param, x.elems.0, x.elems.1);
        write!(
            f,
            "data race: PE {} {} {} at {} and PE {} {} {} at {}, the same memory, \
             with neither ordered before the other",
            a.pe,
            a.verb(),
            what(a),
            a.loc,
            b.pe,
            b.verb(),
            if a.param == b.param && a.elems == b.elems {
                "them".to_string()
            } else {
                what(b)
            },
            b.loc,
        )?;
        write!(
            f,
            "\n  hint: order them with a message: PE {} sends a tile that depends on its access \
             (for a store, a load of the stored elements), and PE {} receives it with `tl::recv` \
             or `tl::wait` before its access; or make the two regions disjoint",
            a.pe, b.pe
        )
    }
}

/// The state of a deadlocked run.
#[derive(Clone, Debug, PartialEq)]
pub struct Deadlock {
    /// Simulated time when progress stopped (the last op of any PE
    /// completed), in ps.
    pub at_ps: u64,
    /// Every waiting PE.
    pub waiters: Vec<Waiter>,
}

impl fmt::Display for Deadlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "deadlock at {:.3} us: {} PE(s) wait and no event can make progress",
            self.at_ps as f64 / 1e6,
            self.waiters.len()
        )?;
        write_waiters(f, &self.waiters)?;
        // A send waits only for ring slots (ADR 0004): the receiver frees them
        // by posting receives, so a send in a deadlock means a full ring.
        if self
            .waiters
            .iter()
            .any(|w| matches!(w.wait, Wait::Send { .. }))
        {
            writeln!(
                f,
                "  hint: a send waits for free slots in the receiver's IPCQ ring, which only its \
                 receives free. Post the receives first (tl::recv_async before tl::send), send \
                 smaller messages, or give the ring more slots (ipcq.slots)"
            )?;
        }
        Ok(())
    }
}
