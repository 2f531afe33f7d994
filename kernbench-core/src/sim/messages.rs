//! The IPCQ messages of a run, from each send to the receive that consumed
//! it, as the engine records them when tracing. Exporters (the Chrome
//! trace's flow arrows, the HTML report) read them from the
//! [`Outcome`](super::Outcome).

use super::id::{ChanId, OpRef};
use super::pairing::Channels;
use crate::Ps;

/// One IPCQ message, from its send to the receive that consumed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message {
    /// The channel (sender, receiver, receiving direction).
    pub chan: u32,
    /// Its position among the channel's messages (sends and receives on one channel are FIFO).
    pub index: u32,
    /// The sending instance.
    pub src: u32,
    /// The send's op on the sender.
    pub send_op: u32,
    /// The receiving instance.
    pub dst: u32,
    /// The receive's op on the receiver.
    pub recv_op: u32,
    /// Bytes.
    pub bytes: u64,
    /// When the first packet was injected, ps.
    pub inject_ps: Ps,
    /// When the last packet's tail left the sender, ps.
    pub injected_ps: Ps,
    /// When the receive completed, ps.
    pub received_ps: Ps,
}

/// A send as the engine saw it.
#[derive(Clone, Copy, Debug)]
struct SendRec {
    by: OpRef,
    /// First packet injected.
    first: Ps,
    /// Last packet's tail out.
    last: Ps,
    bytes: u64,
}

/// A receive as the engine saw it.
#[derive(Clone, Copy, Debug)]
struct RecvRec {
    by: OpRef,
    at: Ps,
}

/// Sends and receives of each channel, in order, recorded by the engine when tracing.
pub(crate) struct MsgLog {
    sends: Vec<Vec<SendRec>>,
    recvs: Vec<Vec<RecvRec>>,
}

impl MsgLog {
    /// An empty log for `chans` channels.
    pub(crate) fn new(chans: usize) -> Self {
        MsgLog {
            sends: vec![Vec::new(); chans],
            recvs: vec![Vec::new(); chans],
        }
    }

    /// A packet of the send `by` on `chan` injected over `at.0..at.1`;
    /// `first` opens a message.
    pub(crate) fn packet(
        &mut self,
        chan: ChanId,
        by: OpRef,
        first: bool,
        at: (Ps, Ps),
        bytes: u64,
    ) {
        let list = &mut self.sends[chan.ix()];
        match list.last_mut() {
            Some(last) if !first => last.last = last.last.max(at.1),
            _ => list.push(SendRec {
                by,
                first: at.0,
                last: at.1,
                bytes,
            }),
        }
    }

    /// The receive `by` on `chan` completed at `at`.
    pub(crate) fn recv(&mut self, chan: ChanId, by: OpRef, at: Ps) {
        self.recvs[chan.ix()].push(RecvRec { by, at });
    }

    /// The messages: the k-th send of a channel with its k-th receive.
    pub(crate) fn messages(self, channels: &Channels) -> Vec<Message> {
        let mut out = Vec::new();
        for (c, (sends, recvs)) in self.sends.into_iter().zip(self.recvs).enumerate() {
            debug_assert!(c < channels.list.len());
            for (k, (s, r)) in sends.into_iter().zip(recvs).enumerate() {
                out.push(Message {
                    chan: c as u32,
                    index: k as u32,
                    src: s.by.inst.0,
                    send_op: s.by.op.0,
                    dst: r.by.inst.0,
                    recv_op: r.by.op.0,
                    bytes: s.bytes,
                    inject_ps: s.first,
                    injected_ps: s.last,
                    received_ps: r.at,
                });
            }
        }
        out
    }
}
