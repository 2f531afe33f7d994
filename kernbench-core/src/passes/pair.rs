//! Pairs sends with receives before simulating: every channel (sender,
//! receiver, the peer the receiver names: a direction or the sender's rank)
//! must carry as many messages as are received on it, each of the same shape
//! and type.

use super::error::{CommSide, CompileError, Mismatch, PairingError, PeerHint};
use crate::ir::{CmdId, Command, CommandGraph, Dir, Peer, SrcLoc, TileType};
use crate::neighbors::NeighborMap;
use crate::PeId;
use rustc_hash::FxHashMap;

/// One IPCQ channel: messages from `src` arriving at `dst` from `rx`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Channel {
    /// Sender (index into the launch's PEs, which is its rank).
    pub src: usize,
    /// Receiver.
    pub dst: usize,
    /// The peer the sender sends to: a direction, or the receiver's rank.
    pub tx: Peer,
    /// The peer the receiver receives from: a direction, or the sender's rank.
    pub rx: Peer,
}

/// The channels of a launch and which channel each send and receive uses.
#[derive(Clone, Debug, Default)]
pub struct Channels {
    /// All channels.
    pub list: Vec<Channel>,
    /// The channel of each instance's k-th send or receive, in program order
    /// ([`comm_of`]'s order).
    pub of_comm: Vec<Vec<u32>>,
    /// The command of each instance's k-th send or receive (empty after a
    /// run that kept no graphs: its ops carry their channels).
    pub comm_cmds: Vec<Vec<CmdId>>,
}

impl Channels {
    /// The channel of send or receive `cmd` of instance `i`, while the
    /// commands are kept.
    pub fn of_cmd(&self, i: usize, cmd: CmdId) -> Option<u32> {
        let cmds = self.comm_cmds.get(i)?;
        let k = cmds.binary_search(&cmd).ok()?;
        self.of_comm[i].get(k).copied()
    }
}

/// A send or receive of one instance: what pairing needs of it (16 bytes;
/// its peer, type and location are rows of its [`CommList`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommCmd {
    /// The command.
    pub id: CmdId,
    /// The tile it moves, a row of [`CommList::types`].
    pub ty: u32,
    /// Where it was written, a row of [`CommList::locs`].
    pub loc: u32,
    /// Its peer, a row of [`CommList::peers`], with [`SEND`] set for a send.
    peer_send: u32,
}

/// The bit of [`CommCmd`]'s peer row that marks a send.
const SEND: u32 = 1 << 31;

impl CommCmd {
    /// `true` for a send, `false` for a receive.
    pub fn is_send(&self) -> bool {
        self.peer_send & SEND != 0
    }
}

/// The sends and receives of one instance, in program order, with the
/// distinct tile types and locations they name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CommList {
    /// Sends and receives.
    pub cmds: Vec<CommCmd>,
    /// Distinct tile types.
    pub types: Vec<TileType>,
    /// Distinct locations.
    pub locs: Vec<SrcLoc>,
    /// Distinct peers.
    pub peers: Vec<Peer>,
}

impl CommList {
    /// Sends and receives.
    pub fn len(&self) -> usize {
        self.cmds.len()
    }

    /// `true` when the instance neither sends nor receives.
    pub fn is_empty(&self) -> bool {
        self.cmds.is_empty()
    }

    fn ty(&self, c: &CommCmd) -> &TileType {
        &self.types[c.ty as usize]
    }

    fn loc(&self, c: &CommCmd) -> &SrcLoc {
        &self.locs[c.loc as usize]
    }

    /// The peer of a send or receive of this list.
    pub fn peer(&self, c: &CommCmd) -> Peer {
        self.peers[(c.peer_send & !SEND) as usize]
    }

    /// How many distinct peers the instance sends to: the channels it
    /// opens, as pairing gives one channel to each peer a sender names.
    pub fn send_peers(&self) -> usize {
        let mut seen = vec![false; self.peers.len()];
        self.cmds
            .iter()
            .filter(|c| c.is_send())
            .filter(|c| !std::mem::replace(&mut seen[(c.peer_send & !SEND) as usize], true))
            .count()
    }

    /// How many of the sends and receives name their peer by rank.
    pub fn rank_addressed(&self) -> usize {
        self.cmds
            .iter()
            .filter(|c| matches!(self.peer(c), Peer::Rank(_)))
            .count()
    }
}

/// The sends and receives of a graph, in program order.
pub fn comm_of(g: &CommandGraph) -> CommList {
    let mut out = CommList::default();
    let mut types: FxHashMap<&TileType, u32> = FxHashMap::default();
    let mut locs: FxHashMap<&SrcLoc, u32> = FxHashMap::default();
    let mut peers: FxHashMap<Peer, u32> = FxHashMap::default();
    for (id, node) in g.nodes() {
        let (send, peer) = match &node.cmd {
            Command::Send { peer, .. } => (true, *peer),
            Command::Recv { peer, .. } => (false, *peer),
            _ => continue,
        };
        let ty = *types.entry(&node.ty).or_insert_with(|| {
            out.types.push(node.ty.clone());
            (out.types.len() - 1) as u32
        });
        let loc = *locs.entry(&node.loc).or_insert_with(|| {
            out.locs.push(node.loc.clone());
            (out.locs.len() - 1) as u32
        });
        let row = *peers.entry(peer).or_insert_with(|| {
            out.peers.push(peer);
            (out.peers.len() - 1) as u32
        });
        out.cmds.push(CommCmd {
            id,
            ty,
            loc,
            peer_send: row | if send { SEND } else { 0 },
        });
    }
    out
}

/// The sends (or receives) of one channel, as the k of its sender's k-th
/// send (its receiver's k-th receive).
type Side = Vec<u32>;

/// When a receiver takes from one peer the messages that arrive from
/// another, the peer that would pair: messages sent to PE `dst` that no
/// receive takes, and receives of `dst` that no message reaches. For
/// directions, the usual slip is `send E` matched with `recv E` on a ring;
/// for ranks, a receive that names the wrong rank.
fn peer_hint(
    list: &[Channel],
    sides: &[(Side, Side)],
    pes: &[PeId],
    comms: &[CommList],
) -> Option<PeerHint> {
    let unreceived = list
        .iter()
        .zip(sides)
        .find(|(_, (tx, rx))| tx.len() > rx.len())?;
    let (ch, (tx, _)) = unreceived;
    let (other, (_, orx)) = list
        .iter()
        .zip(sides)
        .find(|(c, (tx, rx))| c.dst == ch.dst && rx.len() > tx.len())?;
    let (dst, src) = (pes[ch.dst], pes[ch.src]);
    let at = |side: &Side, inst: usize| {
        let g = &comms[inst];
        side.last().map(|&k| g.loc(&g.cmds[k as usize]).clone())
    };
    Some(match (ch.tx, ch.rx) {
        (Peer::Rank(_), Peer::Rank(from)) => PeerHint::Rank {
            dst,
            wrong: other.rx,
            recv_at: at(orx, ch.dst),
            src,
            from,
            to: ch.dst,
            send_at: at(tx, ch.src),
        },
        _ => PeerHint::Dir {
            dst,
            wrong: other.rx,
            src,
            tx: ch.tx,
            right: ch.rx,
        },
    })
}

/// Resolves every send and receive of every instance to a channel and checks that they pair up.
pub fn pair(
    pes: &[PeId],
    graphs: &[CommandGraph],
    map: Option<&NeighborMap>,
) -> Result<Channels, CompileError> {
    let comms: Vec<CommList> = graphs.iter().map(comm_of).collect();
    pair_comm(pes, &comms, map)
}

/// [`pair`] over the sends and receives of each instance ([`comm_of`]).
///
/// A direction resolves through `map`; a rank is an index into `pes` (the
/// launch's instance-to-PE map) and needs no map.
pub fn pair_comm(
    pes: &[PeId],
    comms: &[CommList],
    map: Option<&NeighborMap>,
) -> Result<Channels, CompileError> {
    pair_comm_with(pes, comms, map, true)
}

/// [`pair_comm`], giving [`Channels::comm_cmds`] only when `cmds` (a run
/// that keeps no graphs looks channels up by op, not by command).
pub(crate) fn pair_comm_with(
    pes: &[PeId],
    comms: &[CommList],
    map: Option<&NeighborMap>,
    cmds: bool,
) -> Result<Channels, CompileError> {
    let index: FxHashMap<PeId, usize> = pes.iter().enumerate().map(|(i, p)| (*p, i)).collect();
    let mut key_of: FxHashMap<(usize, usize, Peer), u32> = FxHashMap::default();
    let mut chans = Channels {
        list: Vec::new(),
        of_comm: comms.iter().map(|c| vec![u32::MAX; c.len()]).collect(),
        comm_cmds: if cmds {
            comms
                .iter()
                .map(|c| c.cmds.iter().map(|x| x.id).collect())
                .collect()
        } else {
            Vec::new()
        },
    };
    // Per channel: sends and receives in program order.
    let mut sides: Vec<(Side, Side)> = Vec::new();
    let no_map = |pe: PeId, dir: Dir, loc: &SrcLoc| {
        CompileError::Pairing(PairingError::NoNeighborMap {
            pe,
            dir,
            loc: loc.clone(),
        })
    };
    let bad_rank = |pe: PeId, side: CommSide, rank: u64, loc: &SrcLoc| {
        CompileError::Pairing(PairingError::BadRank {
            pe,
            side,
            rank,
            loc: loc.clone(),
            ranks: pes.len(),
        })
    };
    let no_neighbor = |pe: PeId, side: CommSide, dir: Dir, loc: &SrcLoc, map: &NeighborMap| {
        CompileError::Pairing(PairingError::NoNeighbor {
            pe,
            side,
            dir,
            loc: loc.clone(),
            map: map.kind().to_string(),
            dirs: map.dirs(pe),
        })
    };
    let not_launched = |pe: PeId, side: CommSide, dir: Dir, loc: &SrcLoc, peer: PeId| {
        CompileError::Pairing(PairingError::PeerNotLaunched {
            pe,
            side,
            dir,
            loc: loc.clone(),
            peer,
        })
    };
    let mut channel =
        |src: usize, dst: usize, tx: Peer, rx: Peer, list: &mut Vec<Channel>| -> u32 {
            *key_of.entry((src, dst, rx)).or_insert_with(|| {
                list.push(Channel { src, dst, tx, rx });
                (list.len() - 1) as u32
            })
        };
    for (i, comm) in comms.iter().enumerate() {
        let pe = pes[i];
        // The channel of this instance's last send and last receive, by the
        // peer it named: a kernel names the same peer many times over, and
        // the same peer resolves to the same channel.
        let mut last: [Option<(Peer, u32)>; 2] = [None, None];
        for (k, node) in comm.cmds.iter().enumerate() {
            let node_peer = comm.peer(node);
            let send = node.is_send();
            if let Some((p, c)) = last[usize::from(send)] {
                if p == node_peer {
                    let side = &mut sides[c as usize];
                    if send { &mut side.0 } else { &mut side.1 }.push(k as u32);
                    chans.of_comm[i][k] = c;
                    continue;
                }
            }
            let loc = comm.loc(node);
            let c = match (send, node_peer) {
                (true, Peer::Rank(r)) => {
                    let dst = usize::try_from(r)
                        .ok()
                        .filter(|d| *d < pes.len() && *d != i)
                        .ok_or_else(|| bad_rank(pe, CommSide::Send, r, loc))?;
                    channel(i, dst, node_peer, Peer::Rank(i as u64), &mut chans.list)
                }
                (false, Peer::Rank(r)) => {
                    let src = usize::try_from(r)
                        .ok()
                        .filter(|s| *s < pes.len() && *s != i)
                        .ok_or_else(|| bad_rank(pe, CommSide::Recv, r, loc))?;
                    channel(src, i, Peer::Rank(i as u64), node_peer, &mut chans.list)
                }
                (true, Peer::Dir(dir)) => {
                    let map = map.ok_or_else(|| no_map(pe, dir, loc))?;
                    let peer = map
                        .peer(pe, dir)
                        .ok_or_else(|| no_neighbor(pe, CommSide::Send, dir, loc, map))?;
                    let dst = *index
                        .get(&peer)
                        .ok_or_else(|| not_launched(pe, CommSide::Send, dir, loc, peer))?;
                    let rx = dir
                        .opposite()
                        .filter(|o| map.peer(peer, *o) == Some(pe))
                        .or_else(|| {
                            Dir::ALL
                                .into_iter()
                                .find(|d| map.peer(peer, *d) == Some(pe))
                        })
                        .ok_or_else(|| {
                            CompileError::Pairing(PairingError::NoWayBack {
                                pe,
                                dir,
                                loc: loc.clone(),
                                peer,
                            })
                        })?;
                    channel(i, dst, node_peer, Peer::Dir(rx), &mut chans.list)
                }
                (false, Peer::Dir(dir)) => {
                    let map = map.ok_or_else(|| no_map(pe, dir, loc))?;
                    let peer = map
                        .peer(pe, dir)
                        .ok_or_else(|| no_neighbor(pe, CommSide::Recv, dir, loc, map))?;
                    let src = *index
                        .get(&peer)
                        .ok_or_else(|| not_launched(pe, CommSide::Recv, dir, loc, peer))?;
                    let tx = Dir::ALL
                        .into_iter()
                        .find(|d| map.peer(peer, *d) == Some(pe))
                        .unwrap_or(dir);
                    channel(src, i, Peer::Dir(tx), node_peer, &mut chans.list)
                }
            };
            if sides.len() <= c as usize {
                sides.resize_with(c as usize + 1, Default::default);
            }
            let side = &mut sides[c as usize];
            if send { &mut side.0 } else { &mut side.1 }.push(k as u32);
            chans.of_comm[i][k] = c;
            last[usize::from(send)] = Some((node_peer, c));
        }
    }
    let mut errors = Vec::new();
    for (c, (tx, rx)) in sides.iter().enumerate() {
        let ch = &chans.list[c];
        let (src, dst) = (pes[ch.src], pes[ch.dst]);
        let (gs, gd) = (&comms[ch.src], &comms[ch.dst]);
        for (k, pair) in tx.iter().zip(rx.iter()).enumerate() {
            let (s, r) = (&gs.cmds[*pair.0 as usize], &gd.cmds[*pair.1 as usize]);
            let (st, rt) = (gs.ty(s), gd.ty(r));
            if st != rt {
                errors.push(Mismatch::Type {
                    message: k + 1,
                    src,
                    dst,
                    sent: st.clone(),
                    sent_at: gs.loc(s).clone(),
                    received: rt.clone(),
                    received_at: gd.loc(r).clone(),
                });
            }
        }
        if tx.len() != rx.len() {
            let line = |side: &Side, g: &CommList| {
                side.last().map(|&k| g.loc(&g.cmds[k as usize]).clone())
            };
            errors.push(Mismatch::Count {
                src,
                dst,
                tx: ch.tx,
                rx: ch.rx,
                sends: tx.len(),
                last_send: line(tx, gs),
                recvs: rx.len(),
                last_recv: line(rx, gd),
            });
        }
    }
    if !errors.is_empty() {
        let more = errors.len().saturating_sub(16);
        errors.truncate(16);
        return Err(CompileError::Pairing(PairingError::Unmatched {
            mismatches: errors,
            more,
            hint: peer_hint(&chans.list, &sides, pes, comms).map(Box::new),
        }));
    }
    Ok(chans)
}

/// The sends and receives of instance `i` of a launch on `pes` (`g` its
/// graph), one a line: the peer it names, its channel, and the instance at
/// the other end.
pub fn pairing_text(channels: &Channels, pes: &[PeId], i: usize, g: &CommandGraph) -> String {
    let mut rows = vec![vec![
        "cmd".to_string(),
        "op".to_string(),
        "peer".to_string(),
        "channel".to_string(),
        "other end".to_string(),
        "tile".to_string(),
    ]];
    for (id, node) in g.nodes() {
        let (peer, send) = match &node.cmd {
            Command::Send { peer, .. } => (peer, true),
            Command::Recv { peer, .. } => (peer, false),
            _ => continue,
        };
        let (chan, end) = match channels.of_cmd(i, id) {
            Some(k) => {
                let c = &channels.list[k as usize];
                let (arrow, other) = if send { ("to", c.dst) } else { ("from", c.src) };
                (
                    format!("ch{k}"),
                    format!("{arrow} instance {other} on PE {}", pes[other]),
                )
            }
            None => ("-".to_string(), "-".to_string()),
        };
        rows.push(vec![
            id.to_string(),
            node.cmd.mnemonic().to_string(),
            peer.to_string(),
            chan,
            end,
            node.ty.to_string(),
        ]);
    }
    format!(
        "pairing of instance {i} on PE {}: {} send(s) and receive(s); {} channel(s) in the launch\n{}",
        pes[i],
        rows.len() - 1,
        channels.list.len(),
        super::columns(&rows)
    )
}
