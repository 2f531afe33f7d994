//! Pairs sends with receives before simulating: every channel (sender,
//! receiver, receiving direction) must carry as many messages as are received
//! on it, each of the same shape and type.

use super::error::SimError;
use crate::ir::{CmdId, Command, CommandGraph, Dir, SrcLoc, TileType};
use crate::neighbors::NeighborMap;
use crate::PeId;
use rustc_hash::FxHashMap;

/// One IPCQ channel: messages from `src` arriving at `dst` on `rx_dir`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Channel {
    /// Sender (index into the launch's PEs).
    pub src: usize,
    /// Receiver.
    pub dst: usize,
    /// Direction the sender sends in.
    pub tx_dir: Dir,
    /// Direction the receiver receives from.
    pub rx_dir: Dir,
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

fn describe(ty: &TileType) -> String {
    ty.to_string()
}

/// A send or receive of one instance: what pairing needs of it.
#[derive(Clone, Debug, PartialEq)]
pub struct CommCmd {
    /// The command.
    pub id: CmdId,
    /// `true` for a send, `false` for a receive.
    pub send: bool,
    /// Its direction.
    pub dir: Dir,
    /// The tile it moves.
    pub ty: TileType,
    /// Where it was written.
    pub loc: SrcLoc,
}

/// The sends and receives of a graph, in program order.
pub fn comm_of(g: &CommandGraph) -> Vec<CommCmd> {
    g.nodes()
        .filter_map(|(id, node)| {
            let (send, dir) = match &node.cmd {
                Command::Send { dir, .. } => (true, *dir),
                Command::Recv { dir, .. } => (false, *dir),
                _ => return None,
            };
            Some(CommCmd {
                id,
                send,
                dir,
                ty: node.ty.clone(),
                loc: node.loc.clone(),
            })
        })
        .collect()
}

/// Resolves every send and receive of every instance to a channel and checks that they pair up.
pub fn pair(
    pes: &[PeId],
    graphs: &[CommandGraph],
    map: Option<&NeighborMap>,
) -> Result<Channels, SimError> {
    let comms: Vec<Vec<CommCmd>> = graphs.iter().map(comm_of).collect();
    pair_comm(pes, &comms, map)
}

/// [`pair`] over the sends and receives of each instance ([`comm_of`]).
pub fn pair_comm(
    pes: &[PeId],
    comms: &[Vec<CommCmd>],
    map: Option<&NeighborMap>,
) -> Result<Channels, SimError> {
    let index: FxHashMap<PeId, usize> = pes.iter().enumerate().map(|(i, p)| (*p, i)).collect();
    let mut key_of: FxHashMap<(usize, usize, Dir), u32> = FxHashMap::default();
    let mut chans = Channels {
        list: Vec::new(),
        of_comm: comms.iter().map(|c| vec![u32::MAX; c.len()]).collect(),
        comm_cmds: comms
            .iter()
            .map(|c| c.iter().map(|x| x.id).collect())
            .collect(),
    };
    // Per channel: sends and receives in program order.
    type Side = Vec<(usize, usize)>;
    let mut sides: Vec<(Side, Side)> = Vec::new();
    let no_map = |pe: PeId, dir: Dir, loc: &SrcLoc| {
        SimError::Pairing(format!(
            "PE {pe} uses direction {dir} at {loc} but no neighbour map is installed for this launch"
        ))
    };
    let mut channel = |src: usize, dst: usize, tx: Dir, rx: Dir, list: &mut Vec<Channel>| -> u32 {
        *key_of.entry((src, dst, rx)).or_insert_with(|| {
            list.push(Channel {
                src,
                dst,
                tx_dir: tx,
                rx_dir: rx,
            });
            sides.push((Vec::new(), Vec::new()));
            (list.len() - 1) as u32
        })
    };
    let mut sends: Vec<(u32, usize, usize)> = Vec::new();
    let mut recvs: Vec<(u32, usize, usize)> = Vec::new();
    for (i, comm) in comms.iter().enumerate() {
        let pe = pes[i];
        for (k, node) in comm.iter().enumerate() {
            let dir = &node.dir;
            match node.send {
                true => {
                    let map = map.ok_or_else(|| no_map(pe, *dir, &node.loc))?;
                    let peer = map.peer(pe, *dir).ok_or_else(|| {
                        SimError::Pairing(format!(
                            "PE {pe} sends {dir} at {} but the `{}` map gives it no neighbour {dir} (it has {:?})",
                            node.loc,
                            map.kind(),
                            map.dirs(pe)
                        ))
                    })?;
                    let dst = *index.get(&peer).ok_or_else(|| {
                        SimError::Pairing(format!(
                            "PE {pe} sends {dir} at {} to PE {peer}, which is not part of this launch",
                            node.loc
                        ))
                    })?;
                    let rx = dir
                        .opposite()
                        .filter(|o| map.peer(peer, *o) == Some(pe))
                        .or_else(|| Dir::ALL.into_iter().find(|d| map.peer(peer, *d) == Some(pe)))
                        .ok_or_else(|| {
                            SimError::Pairing(format!(
                                "PE {pe} sends {dir} at {} to PE {peer}, but PE {peer} has no direction that names PE {pe}, so it can never receive the message",
                                node.loc
                            ))
                        })?;
                    let c = channel(i, dst, *dir, rx, &mut chans.list);
                    sends.push((c, i, k));
                }
                false => {
                    let map = map.ok_or_else(|| no_map(pe, *dir, &node.loc))?;
                    let peer = map.peer(pe, *dir).ok_or_else(|| {
                        SimError::Pairing(format!(
                            "PE {pe} receives from {dir} at {} but the `{}` map gives it no neighbour {dir} (it has {:?})",
                            node.loc,
                            map.kind(),
                            map.dirs(pe)
                        ))
                    })?;
                    let src = *index.get(&peer).ok_or_else(|| {
                        SimError::Pairing(format!(
                            "PE {pe} receives from {dir} at {}: PE {peer} is not part of this launch",
                            node.loc
                        ))
                    })?;
                    let tx = Dir::ALL
                        .into_iter()
                        .find(|d| map.peer(peer, *d) == Some(pe))
                        .unwrap_or(*dir);
                    let c = channel(src, i, tx, *dir, &mut chans.list);
                    recvs.push((c, i, k));
                }
            }
        }
    }
    for (c, i, k) in sends {
        sides[c as usize].0.push((i, k));
        chans.of_comm[i][k] = c;
    }
    for (c, i, k) in recvs {
        sides[c as usize].1.push((i, k));
        chans.of_comm[i][k] = c;
    }
    let mut errors = Vec::new();
    for (c, (tx, rx)) in sides.iter().enumerate() {
        let ch = &chans.list[c];
        let (src, dst) = (pes[ch.src], pes[ch.dst]);
        let (gs, gd) = (&comms[ch.src], &comms[ch.dst]);
        for (k, pair) in tx.iter().zip(rx.iter()).enumerate() {
            let (s, r) = (&gs[pair.0 .1], &gd[pair.1 .1]);
            if s.ty != r.ty {
                errors.push(format!(
                    "message {} from PE {src} to PE {dst}: sent as {} at {}, received as {} at {}",
                    k + 1,
                    describe(&s.ty),
                    s.loc,
                    describe(&r.ty),
                    r.loc
                ));
            }
        }
        if tx.len() != rx.len() {
            let line = |side: &Side, g: &[CommCmd]| {
                side.last()
                    .map(|(_, k)| g[*k].loc.to_string())
                    .unwrap_or_else(|| "-".into())
            };
            errors.push(format!(
                "PE {src} sends {} message(s) {} to PE {dst} (last at {}), but PE {dst} receives {} from {} (last at {})",
                tx.len(),
                ch.tx_dir,
                line(tx, gs),
                rx.len(),
                ch.rx_dir,
                line(rx, gd)
            ));
        }
    }
    if !errors.is_empty() {
        let more = errors.len().saturating_sub(16);
        errors.truncate(16);
        let mut msg = errors.join("\n  ");
        if more > 0 {
            msg.push_str(&format!("\n  ... and {more} more"));
        }
        return Err(SimError::Pairing(format!("\n  {msg}")));
    }
    Ok(chans)
}
