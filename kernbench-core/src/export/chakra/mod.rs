//! Chakra execution traces of a finished run: one file per rank (program
//! instance), in the MLCommons Chakra schema that ASTRA-sim reads.
//!
//! [`write()`] lays out an [`Outcome`] of a launch run with
//! [`Launch::trace`](crate::sim::Launch::trace) on as `DIR/NAME.RANK.et`, the
//! names ASTRA-sim opens for `--workload-configuration=DIR/NAME`. Each file
//! is a stream of length-delimited messages (a varint byte count, then the
//! message): one [`GlobalMetadata`], then one [`Node`] per command of the
//! rank's command graph, in program order, the command's index as its id.
//!
//! How commands become nodes (ADR 0012):
//!
//! - `send` and `recv` (sync or async) become `COMM_SEND_NODE` and
//!   `COMM_RECV_NODE` with `comm_src`, `comm_dst` (ranks), `comm_size`
//!   (bytes) and `comm_tag`. The k-th message of a channel carries tag
//!   `k * m + j` on both sides, where the sender and receiver share `m`
//!   channels and this is the `j`-th of them, so ASTRA-sim, which matches by
//!   (source, destination, tag, size), pairs each send with its receive.
//! - Every other command (`load`, `store`, `stream`, `full`, elementwise
//!   math, `dot`, reductions, `softmax`, `wait`) becomes a `COMP_NODE` with
//!   `num_ops` (the FLOPs the simulation counted) and `tensor_size` (bytes of
//!   the tiles it reads and writes). Loads and stores are DMAs against the
//!   PE's own HBM slice, already timed by the simulation; ASTRA-sim would
//!   hand a `MEM_LOAD_NODE` or `MEM_STORE_NODE` to its remote-memory model
//!   instead, so they stay compute nodes.
//! - `data_deps` are the command graph's data dependencies; `ctrl_deps` its
//!   ordering dependencies, plus the last blocking `recv` or `wait` before
//!   the command in program order (PE_CPU issues commands in order and
//!   stalls there, so nothing after it starts earlier).
//! - `start_time_micros` and `duration_micros` are the command's simulated
//!   span in whole microseconds, from the launch's common start: from the
//!   start of its first engine op (its PE_CPU issue when it has no other) to
//!   the end of its last (for a send, until its last byte has left). A
//!   positive span never rounds to zero. The exact picoseconds are in the
//!   `start_ps` and `duration_ps` attributes.

pub mod schema;

pub use schema::{attribute_proto, AttributeProto, GlobalMetadata, Node, NodeType};

use crate::ir::{CmdId, Command, CommandGraph};
use crate::passes::lower::OpKind;
use crate::sim::Outcome;
use crate::{PeId, Ps};
use attribute_proto::Value;
use prost::Message as _;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// The schema version written into every trace's [`GlobalMetadata`].
pub const VERSION: &str = "0.0.4";

/// Why traces could not be made, written or read.
#[derive(Debug, thiserror::Error)]
pub enum ChakraError {
    /// The outcome has no graphs, programs or spans.
    #[error("the run kept no trace to export: launch it with trace on (`Launch::trace(true)`)")]
    NoTrace,
    /// A command of the outcome has no simulated span.
    #[error("rank {rank}: command {cmd} has no simulated span (the run did not finish it)")]
    MissingSpan {
        /// The rank.
        rank: usize,
        /// The command.
        cmd: CmdId,
    },
    /// A send or receive of the outcome carried no message.
    #[error("rank {rank}: {cmd} ({what}) moved no message in the run")]
    MissingMessage {
        /// The rank.
        rank: usize,
        /// The command.
        cmd: CmdId,
        /// `send` or `recv`.
        what: &'static str,
    },
    /// A message's tag does not fit the schema's 32-bit signed tag.
    #[error("rank {src} -> rank {dst}: message {index} needs tag {tag}, above the largest Chakra tag {}", i32::MAX)]
    TagOverflow {
        /// Sender.
        src: usize,
        /// Receiver.
        dst: usize,
        /// The message's position in its channel.
        index: u32,
        /// The tag it would need.
        tag: u64,
    },
    /// A rank does not fit the schema's 32-bit signed rank.
    #[error("{ranks} ranks do not fit Chakra's 32-bit signed ranks")]
    RankOverflow {
        /// The ranks of the run.
        ranks: usize,
    },
    /// A file or folder could not be written.
    #[error("cannot write {}: {err}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why (part of the message).
        err: std::io::Error,
    },
    /// A trace could not be decoded.
    #[error("not a Chakra trace: message {index} (at byte {offset}): {err}")]
    Decode {
        /// Which message (0 is the metadata).
        index: usize,
        /// Where it starts.
        offset: usize,
        /// Why (part of the message).
        err: prost::DecodeError,
    },
}

/// One rank's trace: its metadata and its nodes.
#[derive(Clone, Debug, PartialEq)]
pub struct RankTrace {
    /// The rank (program instance).
    pub rank: usize,
    /// Its PE.
    pub pe: PeId,
    /// The first message of the file.
    pub metadata: GlobalMetadata,
    /// One node per command, in program order.
    pub nodes: Vec<Node>,
}

impl RankTrace {
    /// The file's bytes: the metadata, then each node, each length-delimited.
    pub fn encode(&self) -> Vec<u8> {
        let mut len = self.metadata.encoded_len();
        len += prost::length_delimiter_len(len);
        for n in &self.nodes {
            let l = n.encoded_len();
            len += l + prost::length_delimiter_len(l);
        }
        let mut buf = Vec::with_capacity(len);
        self.metadata
            .encode_length_delimited(&mut buf)
            .expect("a Vec grows to hold the message");
        for n in &self.nodes {
            n.encode_length_delimited(&mut buf)
                .expect("a Vec grows to hold the message");
        }
        buf
    }
}

/// Decodes a trace file's bytes: its metadata and its nodes.
pub fn decode(bytes: &[u8]) -> Result<(GlobalMetadata, Vec<Node>), ChakraError> {
    let mut buf = bytes;
    let err = |index: usize, buf: &[u8], err| ChakraError::Decode {
        index,
        offset: bytes.len() - buf.len(),
        err,
    };
    let meta = GlobalMetadata::decode_length_delimited(&mut buf).map_err(|e| err(0, bytes, e))?;
    let mut nodes = Vec::new();
    while !buf.is_empty() {
        let at = buf;
        let n = Node::decode_length_delimited(&mut buf).map_err(|e| err(nodes.len() + 1, at, e))?;
        nodes.push(n);
    }
    Ok((meta, nodes))
}

/// The file ASTRA-sim opens for `rank` of workload `name`: `NAME.RANK.et`.
pub fn file_name(name: &str, rank: usize) -> String {
    format!("{name}.{rank}.et")
}

/// What [`write()`] wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct Written {
    /// The files, rank 0 first.
    pub files: Vec<PathBuf>,
    /// Nodes of each type over all files.
    pub by_type: BTreeMap<NodeType, usize>,
    /// Compute nodes that ran for less than half a microsecond, written as
    /// 1 µs so that a positive time stays positive (ASTRA-sim replays them
    /// for that long).
    pub rounded_up: usize,
}

impl Written {
    /// Nodes over all files.
    pub fn nodes(&self) -> usize {
        self.by_type.values().sum()
    }
}

/// Writes the trace of every rank of `outcome` to `dir/NAME.RANK.et`,
/// creating `dir` when it is missing.
pub fn write(dir: &Path, name: &str, outcome: &Outcome) -> Result<Written, ChakraError> {
    let ctx = Ctx::new(outcome)?;
    std::fs::create_dir_all(dir).map_err(|err| ChakraError::Io {
        path: dir.to_path_buf(),
        err,
    })?;
    let mut out = Written {
        files: Vec::new(),
        by_type: BTreeMap::new(),
        rounded_up: 0,
    };
    for rank in 0..ctx.ranks() {
        let t = ctx.rank_trace(rank)?;
        for n in &t.nodes {
            let ty = n.node_type().unwrap_or(NodeType::InvalidNode);
            *out.by_type.entry(ty).or_default() += 1;
            if ty == NodeType::CompNode && n.duration_micros == 1 && exact_duration(n) < 500_000 {
                out.rounded_up += 1;
            }
        }
        let path = dir.join(file_name(name, rank));
        std::fs::write(&path, t.encode()).map_err(|err| ChakraError::Io {
            path: path.clone(),
            err,
        })?;
        out.files.push(path);
    }
    Ok(out)
}

/// The trace of every rank of `outcome`, rank 0 first.
pub fn traces(outcome: &Outcome) -> Result<Vec<RankTrace>, ChakraError> {
    let ctx = Ctx::new(outcome)?;
    (0..ctx.ranks()).map(|r| ctx.rank_trace(r)).collect()
}

/// Whole microseconds of `ps`, to the nearest; a positive time gives at least 1.
pub fn micros(ps: Ps) -> u64 {
    if ps == 0 {
        0
    } else {
        ps.saturating_add(500_000).div_euclid(1_000_000).max(1)
    }
}

/// The exact duration a node of this module carries (`duration_ps`), or
/// its whole microseconds when it has none.
fn exact_duration(n: &Node) -> Ps {
    match n.attr("duration_ps") {
        Some(Value::Uint64Val(ps)) => *ps,
        _ => n.duration_micros.saturating_mul(1_000_000),
    }
}

/// A send or receive as both of its ends see it.
#[derive(Clone, Copy, Debug)]
struct Comm {
    src: usize,
    dst: usize,
    bytes: u64,
    tag: i32,
}

/// A command's simulated span: of its engine ops, then of its PE_CPU issue.
type CmdSpans = [Option<(Ps, Ps)>; 2];

/// What every rank's trace reads, gathered once.
struct Ctx<'a> {
    outcome: &'a Outcome,
    /// Per rank, per command: (start, end) of its work ops, then of its issue.
    spans: Vec<Vec<CmdSpans>>,
    /// Per (rank, command) of a send or receive: its message.
    comm: HashMap<(usize, CmdId), Comm>,
}

fn widen(slot: &mut Option<(Ps, Ps)>, s: Ps, e: Ps) {
    *slot = Some(match *slot {
        None => (s, e),
        Some((a, b)) => (a.min(s), b.max(e)),
    });
}

impl<'a> Ctx<'a> {
    fn new(outcome: &'a Outcome) -> Result<Self, ChakraError> {
        let n = outcome.report.pes.len();
        let has_work = outcome.graphs.iter().any(|g| !g.is_empty());
        if outcome.graphs.len() != n
            || outcome.programs.len() != n
            || (has_work && outcome.spans.is_empty())
        {
            return Err(ChakraError::NoTrace);
        }
        if n > i32::MAX as usize {
            return Err(ChakraError::RankOverflow { ranks: n });
        }
        let mut spans: Vec<Vec<CmdSpans>> = outcome
            .graphs
            .iter()
            .map(|g| vec![[None; 2]; g.len()])
            .collect();
        for sp in &outcome.spans {
            let i = sp.inst as usize;
            let op = &outcome.programs[i].ops[sp.op as usize];
            let k = usize::from(matches!(op.kind, OpKind::Issue));
            widen(&mut spans[i][op.cmd.index()][k], sp.start, sp.end);
        }
        // Channels between each pair of ranks, to number their messages' tags.
        let mut pair_chans: BTreeMap<(u32, u32), BTreeSet<u32>> = BTreeMap::new();
        for m in &outcome.messages {
            pair_chans.entry((m.src, m.dst)).or_default().insert(m.chan);
        }
        let mut comm = HashMap::new();
        for m in &outcome.messages {
            let chans = &pair_chans[&(m.src, m.dst)];
            let j = chans.iter().position(|c| *c == m.chan).unwrap_or(0) as u64;
            let tag = u64::from(m.index) * chans.len() as u64 + j;
            let tag = i32::try_from(tag).map_err(|_| ChakraError::TagOverflow {
                src: m.src as usize,
                dst: m.dst as usize,
                index: m.index,
                tag,
            })?;
            let c = Comm {
                src: m.src as usize,
                dst: m.dst as usize,
                bytes: m.bytes,
                tag,
            };
            let (s, r) = (m.src as usize, m.dst as usize);
            let send_cmd = outcome.programs[s].ops[m.send_op as usize].cmd;
            let recv_cmd = outcome.programs[r].ops[m.recv_op as usize].cmd;
            comm.insert((s, send_cmd), c);
            comm.insert((r, recv_cmd), c);
            // The comm engine is busy with a send until its last byte has left.
            if let Some((_, e)) = spans[s][send_cmd.index()][0].as_mut() {
                *e = (*e).max(m.injected_ps);
            }
        }
        Ok(Ctx {
            outcome,
            spans,
            comm,
        })
    }

    fn ranks(&self) -> usize {
        self.outcome.report.pes.len()
    }

    fn rank_trace(&self, rank: usize) -> Result<RankTrace, ChakraError> {
        let out = self.outcome;
        let g = &out.graphs[rank];
        let prog = &out.programs[rank];
        let origin = out.report.start_ps;
        let pe = out.report.pes[rank].pe;
        let mut flops = vec![0u64; g.len()];
        for op in &prog.ops {
            if let OpKind::Fixed { flops: f, .. } = op.kind {
                flops[op.cmd.index()] += f;
            }
        }
        let mut nodes = Vec::with_capacity(g.len());
        let mut last_block: Option<CmdId> = None;
        for (id, node) in g.nodes() {
            let [work, issue] = self.spans[rank][id.index()];
            let (start, end) = work
                .or(issue)
                .ok_or(ChakraError::MissingSpan { rank, cmd: id })?;
            let mut data_deps = Vec::new();
            let mut ctrl_deps = Vec::new();
            for (d, kind) in g.deps(id) {
                match kind {
                    crate::ir::DepKind::Data => data_deps.push(u64::from(d.0)),
                    crate::ir::DepKind::Order => ctrl_deps.push(u64::from(d.0)),
                }
            }
            if let Some(b) = last_block {
                let b = u64::from(b.0);
                if !data_deps.contains(&b) && !ctrl_deps.contains(&b) {
                    ctrl_deps.push(b);
                    ctrl_deps.sort_unstable();
                }
            }
            let (ty, mut attr) = match &node.cmd {
                Command::Send { .. } | Command::Recv { .. } => {
                    let send = matches!(node.cmd, Command::Send { .. });
                    let c =
                        self.comm
                            .get(&(rank, id))
                            .copied()
                            .ok_or(ChakraError::MissingMessage {
                                rank,
                                cmd: id,
                                what: if send { "send" } else { "recv" },
                            })?;
                    let ty = if send {
                        NodeType::CommSendNode
                    } else {
                        NodeType::CommRecvNode
                    };
                    // Ranks fit i32: checked in `Ctx::new`.
                    (
                        ty,
                        vec![
                            AttributeProto::new("comm_src", Value::Int32Val(c.src as i32)),
                            AttributeProto::new("comm_dst", Value::Int32Val(c.dst as i32)),
                            AttributeProto::new(
                                "comm_size",
                                Value::Int64Val(i64::try_from(c.bytes).unwrap_or(i64::MAX)),
                            ),
                            AttributeProto::new("comm_tag", Value::Int32Val(c.tag)),
                        ],
                    )
                }
                _ => (
                    NodeType::CompNode,
                    vec![
                        AttributeProto::new(
                            "num_ops",
                            Value::Int64Val(i64::try_from(flops[id.index()]).unwrap_or(i64::MAX)),
                        ),
                        AttributeProto::new("tensor_size", Value::Uint64Val(tensor_bytes(g, id))),
                    ],
                ),
            };
            attr.push(AttributeProto::new("is_cpu_op", Value::BoolVal(false)));
            let (rel, dur) = (start.saturating_sub(origin), end.saturating_sub(start));
            attr.push(AttributeProto::new("start_ps", Value::Uint64Val(rel)));
            attr.push(AttributeProto::new("duration_ps", Value::Uint64Val(dur)));
            attr.push(AttributeProto::new(
                "loc",
                Value::StringVal(format!("{}:{}", node.loc.file_name(), node.loc.line)),
            ));
            nodes.push(Node {
                id: u64::from(id.0),
                name: format!("{id} {}", command_name(&node.cmd)),
                r#type: ty as i32,
                ctrl_deps,
                data_deps,
                start_time_micros: micros(rel),
                duration_micros: micros(dur),
                inputs: None,
                outputs: None,
                attr,
            });
            if matches!(
                node.cmd,
                Command::Recv {
                    is_async: false,
                    ..
                } | Command::Wait { .. }
            ) {
                last_block = Some(id);
            }
        }
        let report = &out.report;
        let metadata = GlobalMetadata {
            version: VERSION.to_string(),
            attr: vec![
                AttributeProto::new("kernel", Value::StringVal(report.kernel.clone())),
                AttributeProto::new("topology", Value::StringVal(report.topology.clone())),
                AttributeProto::new("rank", Value::Int64Val(rank as i64)),
                AttributeProto::new("world", Value::Int64Val(self.ranks() as i64)),
                AttributeProto::new("pe", Value::StringVal(pe.to_string())),
            ],
        };
        Ok(RankTrace {
            rank,
            pe,
            metadata,
            nodes,
        })
    }
}

/// `load`, `send E`, `recv_async W`.
fn command_name(cmd: &Command) -> String {
    match cmd {
        Command::Send { peer, .. } | Command::Recv { peer, .. } => {
            format!("{} {peer}", cmd.mnemonic())
        }
        _ => cmd.mnemonic().to_string(),
    }
}

/// Bytes of the tiles a command reads and writes: what a load or store
/// moves; operands plus result for computation; nothing for `stream` and
/// `wait`, which move nothing themselves (a streamed region's bytes count
/// towards the `dot` that reads it).
pub fn tensor_bytes(g: &CommandGraph, id: CmdId) -> u64 {
    let node = g.node(id);
    match &node.cmd {
        Command::Load { .. } | Command::Store { .. } => node.ty.bytes(),
        Command::Stream { .. } | Command::Wait { .. } => 0,
        Command::Send { .. } | Command::Recv { .. } => node.ty.bytes(),
        cmd => {
            let operands: u64 = cmd.operands().iter().map(|v| g.node(*v).ty.bytes()).sum();
            operands + node.ty.bytes()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_round_to_nearest_and_keep_positive_times_positive() {
        assert_eq!(micros(0), 0);
        assert_eq!(micros(1), 1);
        assert_eq!(micros(499_999), 1);
        assert_eq!(micros(1_499_999), 1);
        assert_eq!(micros(1_500_000), 2);
        assert_eq!(micros(7_000_000), 7);
        assert_eq!(micros(Ps::MAX), Ps::MAX / 1_000_000);
    }

    #[test]
    fn a_trace_round_trips_through_its_bytes() {
        let t = RankTrace {
            rank: 0,
            pe: PeId::new(0, 0, 0),
            metadata: GlobalMetadata {
                version: VERSION.into(),
                attr: vec![],
            },
            nodes: vec![Node {
                id: 3,
                name: "%3 load".into(),
                r#type: NodeType::CompNode as i32,
                data_deps: vec![1, 2],
                duration_micros: 5,
                attr: vec![AttributeProto::new("num_ops", Value::Int64Val(9))],
                ..Node::default()
            }],
        };
        let bytes = t.encode();
        let (meta, nodes) = decode(&bytes).unwrap();
        assert_eq!(meta, t.metadata);
        assert_eq!(nodes, t.nodes);
        // A cut file is an error that says where, not a panic.
        let e = decode(&bytes[..bytes.len() - 1]).unwrap_err();
        assert!(matches!(e, ChakraError::Decode { index: 1, .. }), "{e}");
        crate::testing::assert_said_once(&e);
    }
}
