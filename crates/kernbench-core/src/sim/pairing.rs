//! Pairs sends with receives before simulating: every channel (sender,
//! receiver, receiving direction) must carry as many messages as are received
//! on it, each of the same shape and type.

use super::error::SimError;
use crate::ir::{CmdId, Command, CommandGraph, Dir, TileType};
use crate::neighbors::NeighborMap;
use crate::PeId;
use std::collections::BTreeMap;

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
    /// `(instance, command) -> channel` for sends and receives.
    pub of_cmd: Vec<BTreeMap<CmdId, u32>>,
}

fn describe(ty: &TileType) -> String {
    ty.to_string()
}

/// Resolves every send and receive of every instance to a channel and checks that they pair up.
pub fn pair(
    pes: &[PeId],
    graphs: &[CommandGraph],
    map: Option<&NeighborMap>,
) -> Result<Channels, SimError> {
    let index: BTreeMap<PeId, usize> = pes.iter().enumerate().map(|(i, p)| (*p, i)).collect();
    let mut key_of: BTreeMap<(usize, usize, Dir), u32> = BTreeMap::new();
    let mut chans = Channels {
        list: Vec::new(),
        of_cmd: vec![BTreeMap::new(); pes.len()],
    };
    // Per channel: sends and receives in program order.
    type Side = Vec<(usize, CmdId)>;
    let mut sides: Vec<(Side, Side)> = Vec::new();
    let no_map = |pe: PeId, dir: Dir, g: &CommandGraph, id: CmdId| {
        SimError::Pairing(format!(
            "PE {pe} uses direction {dir} at {} but no neighbour map is installed for this launch",
            g.node(id).loc
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
    let mut sends: Vec<(u32, usize, CmdId)> = Vec::new();
    let mut recvs: Vec<(u32, usize, CmdId)> = Vec::new();
    for (i, g) in graphs.iter().enumerate() {
        let pe = pes[i];
        for (id, node) in g.nodes() {
            match &node.cmd {
                Command::Send { dir, .. } => {
                    let map = map.ok_or_else(|| no_map(pe, *dir, g, id))?;
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
                    sends.push((c, i, id));
                }
                Command::Recv { dir, .. } => {
                    let map = map.ok_or_else(|| no_map(pe, *dir, g, id))?;
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
                    recvs.push((c, i, id));
                }
                _ => {}
            }
        }
    }
    for (c, i, id) in sends {
        sides[c as usize].0.push((i, id));
        chans.of_cmd[i].insert(id, c);
    }
    for (c, i, id) in recvs {
        sides[c as usize].1.push((i, id));
        chans.of_cmd[i].insert(id, c);
    }
    let mut errors = Vec::new();
    for (c, (tx, rx)) in sides.iter().enumerate() {
        let ch = &chans.list[c];
        let (src, dst) = (pes[ch.src], pes[ch.dst]);
        let (gs, gd) = (&graphs[ch.src], &graphs[ch.dst]);
        for (k, pair) in tx.iter().zip(rx.iter()).enumerate() {
            let (s, r) = (gs.node(pair.0 .1), gd.node(pair.1 .1));
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
            let line = |side: &Side, g: &CommandGraph| {
                side.last()
                    .map(|(_, id)| g.node(*id).loc.to_string())
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
