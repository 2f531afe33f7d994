//! Errors of a simulation, each naming the PE and the kernel line where it can.

use crate::addr::AddrError;
use crate::ir::{Dir, Peer, SrcLoc, TileType, TraceError};
use crate::machine::MemError;
use crate::neighbors::NeighborError;
use crate::passes::tcm::TcmError;
use crate::topology::TopologyError;
use crate::PeId;
use std::fmt;
use std::sync::Arc;

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

/// A launch that cannot be set up: its grid, its PEs, or a TCM plan the
/// allocator rejects.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum LaunchError {
    /// The launch names no PE.
    #[error("a launch needs at least one PE")]
    NoPes,
    /// The grid is empty, has more than three dimensions, or its size is not
    /// the number of PEs.
    #[error(
        "grid {grid:?} has {} instances but {pes} PEs were given",
        instances.map_or_else(|| "more than 2^64".to_string(), |g| g.to_string())
    )]
    GridSize {
        /// The grid.
        grid: Vec<u32>,
        /// Its number of instances, `None` when it overflows.
        instances: Option<usize>,
        /// The number of PEs given.
        pes: usize,
    },
    /// A PE the topology does not have.
    #[error("PE {pe} is not part of topology `{topology}`")]
    PeNotInTopology {
        /// The PE.
        pe: PeId,
        /// The topology's name.
        topology: String,
    },
    /// A per-instance argument without exactly one value per instance.
    #[error("argument `{name}` is bound per instance with {values} values, but the launch has {instances} instances")]
    InstanceArgs {
        /// The parameter.
        name: String,
        /// Values given.
        values: usize,
        /// Instances of the launch.
        instances: usize,
    },
    /// Launches of one run that ask for different fabric models.
    #[error("launch {launch} of the run uses the {fabric} fabric model, launch 0 the {first} one; a run has one")]
    MixedFabric {
        /// The launch that differs.
        launch: usize,
        /// Its model.
        fabric: super::FabricModel,
        /// The first launch's model.
        first: super::FabricModel,
    },
    /// A launch of a run that waits for itself or a later launch.
    #[error("launch {launch} of the run waits for launch {after}, which is not an earlier one")]
    WaitsForLater {
        /// The launch.
        launch: usize,
        /// What it waits for.
        after: usize,
    },
    /// A PE listed twice.
    #[error("PE {pe} is given twice")]
    DuplicatePe {
        /// The PE.
        pe: PeId,
    },
    /// A PE's TCM size the tile allocator cannot manage.
    #[error("{0}")]
    TcmSize(AddrError),
    /// The tile allocator rejected a step of a TCM plan.
    #[error("TCM plan: {0}")]
    TcmPlan(AddrError),
    /// A value domain that cannot follow one of the commands of the launch
    /// (the symbolic check knows fewer ops than the timed run).
    #[error("{domain} cannot follow `{op}` (PE {pe} at {loc}): {supported}")]
    Unsupported {
        /// The domain, for example `symbolic verification`.
        domain: &'static str,
        /// The command's mnemonic.
        op: &'static str,
        /// The PE.
        pe: PeId,
        /// The kernel line.
        loc: SrcLoc,
        /// What the domain does follow.
        supported: &'static str,
    },
}

/// Whether a command sends or receives, in the wording of a pairing error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommSide {
    /// A send.
    Send,
    /// A receive.
    Recv,
}

/// Sends and receives that do not pair up, or peers that do not exist.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum PairingError {
    /// A direction used in a launch with no neighbour map.
    #[error(
        "PE {pe} uses direction {dir} at {loc} but no neighbour map is installed for this launch"
    )]
    NoNeighborMap {
        /// The PE.
        pe: PeId,
        /// The direction.
        dir: Dir,
        /// The kernel line.
        loc: SrcLoc,
    },
    /// A rank outside the launch, or the instance's own rank.
    #[error(
        "PE {pe} {} rank {rank} at {loc}, but the launch has {ranks} rank(s)",
        match side { CommSide::Send => "sends to", CommSide::Recv => "receives from" }
    )]
    BadRank {
        /// The PE.
        pe: PeId,
        /// Send or receive.
        side: CommSide,
        /// The rank named.
        rank: u64,
        /// The kernel line.
        loc: SrcLoc,
        /// The launch's number of ranks.
        ranks: usize,
    },
    /// A direction the neighbour map gives the PE no neighbour in.
    #[error(
        "PE {pe} {} {dir} at {loc} but the `{map}` map gives it no neighbour {dir} (it has {dirs:?})",
        match side { CommSide::Send => "sends", CommSide::Recv => "receives from" }
    )]
    NoNeighbor {
        /// The PE.
        pe: PeId,
        /// Send or receive.
        side: CommSide,
        /// The direction.
        dir: Dir,
        /// The kernel line.
        loc: SrcLoc,
        /// The map's kind.
        map: String,
        /// The directions the PE has.
        dirs: Vec<Dir>,
    },
    /// The neighbour in a direction is not one of the launch's PEs.
    #[error(
        "PE {pe} {}",
        match side {
            CommSide::Send => format!("sends {dir} at {loc} to PE {peer}, which is not part of this launch"),
            CommSide::Recv => format!("receives from {dir} at {loc}: PE {peer} is not part of this launch"),
        }
    )]
    PeerNotLaunched {
        /// The PE.
        pe: PeId,
        /// Send or receive.
        side: CommSide,
        /// The direction.
        dir: Dir,
        /// The kernel line.
        loc: SrcLoc,
        /// The neighbour.
        peer: PeId,
    },
    /// A send to a neighbour that has no direction back to the sender.
    #[error("PE {pe} sends {dir} at {loc} to PE {peer}, but PE {peer} has no direction that names PE {pe}, so it can never receive the message")]
    NoWayBack {
        /// The sender.
        pe: PeId,
        /// The direction.
        dir: Dir,
        /// The kernel line.
        loc: SrcLoc,
        /// The neighbour.
        peer: PeId,
    },
    /// Channels whose sends and receives differ in number or in tile type.
    #[error("{}", Unmatched(mismatches, *more, hint))]
    Unmatched {
        /// The first mismatches (at most 16).
        mismatches: Vec<Mismatch>,
        /// How many more there are.
        more: usize,
        /// The peer that would pair, when one is likely meant.
        hint: Option<String>,
    },
}

/// Writes an [`PairingError::Unmatched`] list, one mismatch a line.
struct Unmatched<'a>(&'a [Mismatch], usize, &'a Option<String>);

impl fmt::Display for Unmatched<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for m in self.0 {
            write!(f, "\n  {m}")?;
        }
        if self.1 > 0 {
            write!(f, "\n  ... and {} more", self.1)?;
        }
        if let Some(hint) = self.2 {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// One channel on which sends and receives do not pair.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Mismatch {
    /// The k-th message is sent as one tile type and received as another.
    #[error("message {message} from PE {src} to PE {dst}: sent as {sent} at {sent_at}, received as {received} at {received_at}")]
    Type {
        /// 1-based message number on the channel.
        message: usize,
        /// The sender.
        src: PeId,
        /// The receiver.
        dst: PeId,
        /// The tile type sent.
        sent: TileType,
        /// The send's kernel line.
        sent_at: SrcLoc,
        /// The tile type received.
        received: TileType,
        /// The receive's kernel line.
        received_at: SrcLoc,
    },
    /// More messages sent than received, or the other way round.
    #[error(
        "PE {src} sends {sends} message(s) {} (last at {}), but PE {dst} receives {recvs} from {rx} (last at {})",
        match tx {
            Peer::Dir(d) => format!("{d} to PE {dst}"),
            Peer::Rank(r) => format!("to rank {r} (PE {dst})"),
        },
        last_or_dash(last_send),
        last_or_dash(last_recv)
    )]
    Count {
        /// The sender.
        src: PeId,
        /// The receiver.
        dst: PeId,
        /// The peer the sender names.
        tx: Peer,
        /// The peer the receiver names.
        rx: Peer,
        /// Messages sent.
        sends: usize,
        /// The last send's kernel line.
        last_send: Option<SrcLoc>,
        /// Messages received.
        recvs: usize,
        /// The last receive's kernel line.
        last_recv: Option<SrcLoc>,
    },
}

fn last_or_dash(loc: &Option<SrcLoc>) -> String {
    loc.as_ref()
        .map_or_else(|| "-".to_string(), |l| l.to_string())
}

/// A route the topology cannot give: the topology's own error, shared so
/// that a [`SimError`] stays cheap to clone.
#[derive(Clone, Debug, thiserror::Error)]
#[error(transparent)]
pub struct RouteError(pub Arc<TopologyError>);

impl From<TopologyError> for RouteError {
    fn from(err: TopologyError) -> Self {
        RouteError(Arc::new(err))
    }
}

impl PartialEq for RouteError {
    /// Routing fails only on a missing endpoint or a broken path, which
    /// compare by their fields; other topology errors (a file's I/O error
    /// has no equality) are equal only to themselves.
    fn eq(&self, other: &Self) -> bool {
        match (&*self.0, &*other.0) {
            (
                TopologyError::NoSuchEndpoint {
                    topology: t1,
                    endpoint: e1,
                },
                TopologyError::NoSuchEndpoint {
                    topology: t2,
                    endpoint: e2,
                },
            ) => t1 == t2 && e1 == e2,
            (
                TopologyError::Unreachable {
                    topology: t1,
                    src: s1,
                    dst: d1,
                },
                TopologyError::Unreachable {
                    topology: t2,
                    src: s2,
                    dst: d2,
                },
            ) => t1 == t2 && s1 == s2 && d1 == d2,
            _ => Arc::ptr_eq(&self.0, &other.0),
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
