//! What a compile can fail on: [`CompileError`], each naming the PE and the
//! kernel line where it can. A run's [`crate::sim::SimError`] takes each of
//! them as the variant of the same name.

pub use crate::ir::CommSide;
use crate::ir::{Dir, Peer, SrcLoc, TileType, TraceError};
use crate::machine::MemError;
use crate::passes::tcm::TcmError;
use crate::program::LaunchError;
use crate::topology::TopologyError;
use crate::PeId;
use std::fmt;
use std::sync::Arc;

/// Why a launch did not compile. Each variant is the
/// [`crate::sim::SimError`] variant of the same name, with the same words.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CompileError {
    /// Tracing a program instance failed.
    #[error("{err} (program instance on PE {pe})")]
    Trace {
        /// The PE whose instance failed.
        pe: PeId,
        /// The trace error (it names the kernel line).
        err: TraceError,
    },
    /// The launch itself is malformed (grid, PEs, arguments), or its TCM
    /// plan is one the tile allocator rejects.
    #[error("launch: {0}")]
    Launch(LaunchError),
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
    /// A memory access lowering cannot place (outside the buffers of a PE,
    /// or another memory error).
    #[error("memory error on PE {pe} at {loc}: {err}")]
    Memory {
        /// The PE.
        pe: PeId,
        /// The kernel line.
        loc: SrcLoc,
        /// The error.
        err: MemError,
    },
    /// A route the topology cannot give.
    #[error("routing: {0}")]
    Route(RouteError),
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
        /// The peer that would pair, when one is likely meant (boxed: it
        /// holds both kernel lines).
        hint: Option<Box<PeerHint>>,
    },
}

/// Writes an [`PairingError::Unmatched`] list, one mismatch a line.
struct Unmatched<'a>(&'a [Mismatch], usize, &'a Option<Box<PeerHint>>);

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

/// The peer a receive likely means, when it names one that sends it nothing
/// while another's messages to it go unreceived (see
/// [`PairingError::Unmatched`]).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum PeerHint {
    /// A receive names a rank other than the one whose message arrives.
    #[error(
        "PE {dst} receives from {wrong} at {}, but the message PE {src} (rank {from}) sends to \
         rank {to} at {} comes from rank {from}: receive it with `recv({from}, ..)`",
        last_or_dash(recv_at),
        last_or_dash(send_at)
    )]
    Rank {
        /// The receiver.
        dst: PeId,
        /// The peer its receive names.
        wrong: Peer,
        /// Its last receive from that peer.
        recv_at: Option<SrcLoc>,
        /// The sender whose messages go unreceived.
        src: PeId,
        /// The sender's rank: the peer that would pair.
        from: u64,
        /// The receiver's rank, as the send names it.
        to: usize,
        /// The last unreceived send.
        send_at: Option<SrcLoc>,
    },
    /// A receive names the direction its messages are sent in, not the one
    /// they arrive from.
    #[error(
        "PE {dst} receives from {wrong}, but the messages PE {src} sends {tx} arrive at PE {dst} \
         from {right}: receive them with `recv({right})` (a message sent {tx} is received from \
         the opposite side)"
    )]
    Dir {
        /// The receiver.
        dst: PeId,
        /// The peer its receive names.
        wrong: Peer,
        /// The sender whose messages go unreceived.
        src: PeId,
        /// The peer the sender names.
        tx: Peer,
        /// The peer that would pair: where the messages arrive from.
        right: Peer,
    },
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
/// that a [`CompileError`] stays cheap to clone.
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
