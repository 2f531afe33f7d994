//! The timeline's data: per PE a track per engine it used (and per
//! direction it received from or waited for ring slots on), plus tracks for
//! the busiest links, each holding the run's spans, capped in number.
//!
//! The page's script draws it; this module decides what goes in: which PEs,
//! which spans (the earliest, when there are more than the cap), and which
//! track and lane each span takes (a lane never holds two overlapping spans,
//! so the script can find the span under the pointer by binary search).

use super::{pe_dotted, HtmlError, Options};
use kernbench_core::ir::Command;
use kernbench_core::passes::lower::{OpKind, Unit};
use kernbench_core::sim::Outcome;
use kernbench_core::topology::Topology;
use kernbench_core::{PeId, Ps};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};

/// Track keys inside a PE's group: engines first, then receives, then slot waits.
const RECV_KEY: u32 = 16;
const SLOTS_KEY: u32 = 32;

/// The track key of an op on a PE, or `None` for ops the timeline leaves out
/// (zero-time joins).
pub(crate) fn op_key(unit: Unit, kind: &OpKind, cmd: &Command) -> Option<u32> {
    if unit != Unit::Free {
        return Some(unit as u32);
    }
    match (kind, cmd) {
        (OpKind::Recv { .. }, Command::Recv { peer, .. }) => {
            Some(RECV_KEY + peer.kind_index() as u32)
        }
        (OpKind::SendGrant { .. }, Command::Send { peer, .. }) => {
            Some(SLOTS_KEY + peer.kind_index() as u32)
        }
        _ => None,
    }
}

fn key_name(key: u32) -> String {
    use kernbench_core::ir::Peer;
    if key < RECV_KEY {
        Unit::ALL[key as usize].name().to_string()
    } else if key < SLOTS_KEY {
        format!("RECV {}", Peer::kind_name((key - RECV_KEY) as usize))
    } else {
        format!("slots {}", Peer::kind_name((key - SLOTS_KEY) as usize))
    }
}

/// A span's name: the command, with its direction for sends and receives.
pub(crate) fn cmd_name(cmd: &Command) -> String {
    match cmd {
        Command::Send { peer, .. } | Command::Recv { peer, .. } => {
            format!("{} {peer}", cmd.mnemonic())
        }
        _ => cmd.mnemonic().to_string(),
    }
}

fn op_what(kind: &OpKind) -> String {
    match kind {
        OpKind::Issue => "issue".into(),
        OpKind::Hbm { bytes, write, .. } => {
            format!("HBM {} {bytes} B", if *write { "write" } else { "read" })
        }
        OpKind::Remote { bytes, write, .. } => {
            format!("remote {} {bytes} B", if *write { "write" } else { "read" })
        }
        OpKind::Fixed { flops, .. } => format!("compute {flops} FLOP"),
        OpKind::SendGrant { bytes, .. } => format!("waits for ring slots for {bytes} B"),
        OpKind::Send { bytes, .. } => format!("injects {bytes} B"),
        OpKind::Recv { bytes, .. } => format!("waits for {bytes} B to arrive"),
        OpKind::Nop => "join".into(),
    }
}

/// Strings shared by many spans, each stored once.
#[derive(Default)]
struct Interner {
    list: Vec<String>,
    ids: HashMap<String, u32>,
}

impl Interner {
    fn id(&mut self, s: String) -> u32 {
        if let Some(&i) = self.ids.get(&s) {
            return i;
        }
        let i = self.list.len() as u32;
        self.ids.insert(s.clone(), i);
        self.list.push(s);
        i
    }
}

/// One span before it has a track: (group, key, start, end, name, info).
type Cand = (u32, u32, Ps, Ps, u32, u32);

/// What the timeline holds.
pub(crate) struct Timeline {
    /// The script's data.
    pub data: Value,
    /// Tracks drawn.
    pub tracks: usize,
    /// Spans embedded.
    pub spans: usize,
    /// Spans the chosen PEs and links had before the cap.
    pub total: usize,
    /// The PEs shown, in order.
    pub pes: Vec<PeId>,
}

/// The PEs a timeline shows: those asked for (each must have run), or the
/// busiest (by summed engine busy time, ties in launch order).
pub(crate) fn chosen(outcome: &Outcome, opts: &Options) -> Result<Vec<usize>, HtmlError> {
    let report = &outcome.report;
    match &opts.pes {
        Some(list) => {
            let at: HashMap<PeId, usize> = report
                .pes
                .iter()
                .enumerate()
                .map(|(i, p)| (p.pe, i))
                .collect();
            let mut out = Vec::with_capacity(list.len());
            for pe in list {
                let &i = at.get(pe).ok_or_else(|| {
                    let mut ran: Vec<String> =
                        report.pes.iter().take(8).map(|p| pe_dotted(p.pe)).collect();
                    if report.pes.len() > ran.len() {
                        ran.push("...".into());
                    }
                    HtmlError::PeNotInRun {
                        pe: pe_dotted(*pe),
                        count: report.pes.len(),
                        ran: ran.join(", "),
                    }
                })?;
                if !out.contains(&i) {
                    out.push(i);
                }
            }
            Ok(out)
        }
        None => {
            let mut order: Vec<usize> = (0..report.pes.len()).collect();
            order.sort_by_key(|&i| (std::cmp::Reverse(report.pes[i].busy.sum()), i));
            order.truncate(opts.busiest);
            Ok(order)
        }
    }
}

pub(crate) fn build(
    outcome: &Outcome,
    topo: &Topology,
    opts: &Options,
) -> Result<Timeline, HtmlError> {
    let report = &outcome.report;
    let pes = chosen(outcome, opts)?;
    let mut group_of: HashMap<u32, u32> = HashMap::new();
    let mut groups: Vec<Value> = Vec::new();
    for (g, &i) in pes.iter().enumerate() {
        group_of.insert(i as u32, g as u32);
        let p = &report.pes[i];
        groups.push(
            json!({"name": format!("PE {}", p.pe), "pe": i, "start": p.start_ps, "end": p.end_ps}),
        );
    }
    let mut names = Interner::default();
    let mut infos = Interner::default();
    let mut cands: Vec<Cand> = Vec::new();

    // Ops of the chosen PEs. A send keeps its engine until its last packet has left.
    let injected: HashMap<(u32, u32), Ps> = outcome
        .messages
        .iter()
        .map(|m| ((m.src, m.send_op), m.injected_ps))
        .collect();
    for sp in &outcome.spans {
        let Some(&g) = group_of.get(&sp.inst) else {
            continue;
        };
        let prog = &outcome.programs[sp.inst as usize];
        let op = &prog.ops[sp.op as usize];
        let node = outcome.graphs[sp.inst as usize].node(op.cmd);
        let Some(key) = op_key(op.unit, &op.kind, &node.cmd) else {
            continue;
        };
        let mut end = sp.end;
        if let OpKind::Send { .. } = op.kind {
            if let Some(&t) = injected.get(&(sp.inst, sp.op)) {
                end = end.max(t);
            }
        }
        if end == sp.start {
            continue;
        }
        let label = prog.label(sp.op as usize).to_string();
        let mut info = format!("{}:{}", node.loc.file, node.loc.line);
        if !label.is_empty() {
            info.push_str(" · ");
            info.push_str(&label);
        }
        info.push_str(" · ");
        info.push_str(&op_what(&op.kind));
        cands.push((
            g,
            key,
            sp.start,
            end,
            names.id(cmd_name(&node.cmd)),
            infos.id(info),
        ));
    }

    // The busiest links, each a track of the `fabric` group.
    let links: Vec<u32> = report
        .links
        .iter()
        .take(opts.links)
        .map(|l| l.link)
        .collect();
    if !links.is_empty() {
        let g = groups.len() as u32;
        groups.push(json!({"name": "fabric: busiest links", "pe": -1}));
        let key_of: HashMap<u32, u32> = links
            .iter()
            .enumerate()
            .map(|(k, l)| (*l, k as u32))
            .collect();
        let pe_name = |i: Option<u32>| match i {
            Some(i) => report.pes[i as usize].pe.to_string(),
            None => "?".to_string(),
        };
        for ls in &outcome.link_spans {
            let Some(&key) = key_of.get(&ls.link) else {
                continue;
            };
            if ls.end == ls.start {
                continue;
            }
            let name = if ls.peer.is_some() {
                format!("{} -> {}", pe_name(ls.inst), pe_name(ls.peer))
            } else {
                format!("{} DMA", pe_name(ls.inst))
            };
            let info = format!("{} B", ls.bytes);
            cands.push((g, key, ls.start, ls.end, names.id(name), infos.id(info)));
        }
    }

    // The cap: the earliest spans.
    cands.sort_unstable_by_key(|c| (c.2, c.3, c.0, c.1));
    let total = cands.len();
    let mut note = Value::Null;
    if total > opts.max_spans {
        cands.truncate(opts.max_spans);
        let cut = cands.last().map_or(0, |c| c.2);
        note = format!(
            "The timeline holds the first {} of {total} spans (up to {:.3} us after launch); \
             later ones are left out. Show fewer PEs or raise the cap \
             (--html-pes, --html-max-spans on the command line).",
            opts.max_spans,
            cut as f64 / 1e6
        )
        .into();
    }

    // Lanes: on each track, spans that overlap go to further lanes.
    let mut by_track: BTreeMap<(u32, u32), Vec<usize>> = BTreeMap::new();
    for (k, c) in cands.iter().enumerate() {
        by_track.entry((c.0, c.1)).or_default().push(k);
    }
    let mut tracks: Vec<Value> = Vec::new();
    let mut spans: Vec<u64> = Vec::with_capacity(cands.len() * 5);
    for ((g, key), list) in by_track {
        // list is in start order already.
        let mut lanes: Vec<(Ps, Vec<usize>)> = Vec::new();
        for k in list {
            let c = &cands[k];
            match lanes.iter_mut().find(|l| l.0 <= c.2) {
                Some(l) => {
                    l.0 = c.3;
                    l.1.push(k);
                }
                None => lanes.push((c.3, vec![k])),
            }
        }
        let base = if groups[g as usize]["pe"] == -1 {
            let l = &topo.links()[links[key as usize] as usize];
            format!("{} -> {} ({} GB/s)", l.from, l.to, l.gbps)
        } else {
            key_name(key)
        };
        for (lane, (_, list)) in lanes.into_iter().enumerate() {
            let t = tracks.len() as u64;
            let name = if lane == 0 {
                base.clone()
            } else {
                format!("{base} #{}", lane + 1)
            };
            tracks.push(json!({"group": g, "name": name}));
            for k in list {
                let c = &cands[k];
                spans.extend([t, c.2, c.3, u64::from(c.4), u64::from(c.5)]);
            }
        }
    }
    let kept = spans.len() / 5;
    Ok(Timeline {
        tracks: tracks.len(),
        spans: kept,
        total,
        pes: pes.iter().map(|&i| report.pes[i].pe).collect(),
        data: json!({
            "start": report.start_ps,
            "end": report.end_ps,
            "groups": groups,
            "tracks": tracks,
            "names": names.list,
            "infos": infos.list,
            "spans": spans,
            "total": total,
            "note": note,
        }),
    })
}
