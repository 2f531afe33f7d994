//! Where the run's time went: the busiest link, the busiest engine, where
//! PEs waited (for data to arrive, for ring slots to free), and the PE that
//! finished last, as HTML.

use super::timeline::cmd_name;
use super::{esc, pct, us};
use kernbench_core::passes::lower::{OpKind, Unit};
use kernbench_core::sim::{EngineBusy, Outcome};
use kernbench_core::topology::Topology;
use kernbench_core::Ps;
use std::collections::HashMap;
use std::fmt::Write as _;

/// Links listed in the busiest-links table.
const TOP_LINKS: usize = 8;
/// Source lines listed in the waits table.
const TOP_WAITS: usize = 8;

/// Intervals merged into a sorted list of disjoint ones.
fn merge(mut v: Vec<(Ps, Ps)>) -> Vec<(Ps, Ps)> {
    v.sort_unstable();
    let mut out: Vec<(Ps, Ps)> = Vec::with_capacity(v.len());
    for (s, e) in v {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// The parts of `[start, end]` that no interval of the sorted, disjoint `busy` covers.
fn gaps(busy: &[(Ps, Ps)], start: Ps, end: Ps) -> Vec<(Ps, Ps)> {
    let mut out = Vec::new();
    let mut at = start;
    for &(s, e) in busy {
        if s > at && at < end {
            out.push((at, s.min(end)));
        }
        at = at.max(e);
    }
    if at < end {
        out.push((at, end));
    }
    out
}

/// How much of `[s, e]` the sorted, disjoint `set` covers.
fn covered(set: &[(Ps, Ps)], s: Ps, e: Ps) -> Ps {
    let from = set.partition_point(|x| x.1 <= s);
    set[from..]
        .iter()
        .take_while(|x| x.0 < e)
        .map(|x| x.1.min(e) - x.0.max(s))
        .sum()
}

fn total(set: &[(Ps, Ps)]) -> Ps {
    set.iter().map(|x| x.1 - x.0).sum()
}

/// One PE's stalls: time with no engine busy, and how much of it a receive
/// (waiting for data) or a send (waiting for ring slots) was outstanding.
#[derive(Clone, Copy, Default)]
struct Stall {
    idle: Ps,
    data: Ps,
    slots: Ps,
}

/// Stalls of every PE, and the kernel lines whose waits they overlapped.
struct Waits {
    /// Per PE, in launch order.
    per_pe: Vec<Stall>,
    /// (kernel line, command, stalled time summed over PEs, PEs that stalled there), longest first.
    lines: Vec<(String, String, Ps, usize)>,
}

fn waits(outcome: &Outcome) -> Waits {
    let r = &outcome.report;
    let n = r.pes.len();
    let mut busy: Vec<Vec<(Ps, Ps)>> = vec![Vec::new(); n];
    let mut data: Vec<Vec<(Ps, Ps)>> = vec![Vec::new(); n];
    let mut slots: Vec<Vec<(Ps, Ps)>> = vec![Vec::new(); n];
    for sp in &outcome.spans {
        let i = sp.inst as usize;
        let op = &outcome.programs[i].ops[sp.op as usize];
        let into = match (op.unit, op.kind) {
            (Unit::Free, OpKind::Recv { .. }) => &mut data[i],
            (Unit::Free, OpKind::SendGrant { .. }) => &mut slots[i],
            (Unit::Free, _) => continue,
            _ => &mut busy[i],
        };
        if sp.end > sp.start {
            into.push((sp.start, sp.end));
        }
    }
    let idle: Vec<Vec<(Ps, Ps)>> = busy
        .into_iter()
        .zip(&r.pes)
        .map(|(b, p)| gaps(&merge(b), p.start_ps, p.end_ps))
        .collect();
    let per_pe = (0..n)
        .map(|i| {
            let stalled = |w: &[(Ps, Ps)]| {
                merge(w.to_vec())
                    .iter()
                    .map(|x| covered(&idle[i], x.0, x.1))
                    .sum()
            };
            Stall {
                idle: total(&idle[i]),
                data: stalled(&data[i]),
                slots: stalled(&slots[i]),
            }
        })
        .collect();
    // Each wait op's stalled time, by the kernel line that issued it.
    let mut lines: HashMap<(String, String), (Ps, Vec<bool>)> = HashMap::new();
    for sp in &outcome.spans {
        let i = sp.inst as usize;
        let op = &outcome.programs[i].ops[sp.op as usize];
        if !matches!(op.kind, OpKind::Recv { .. } | OpKind::SendGrant { .. }) {
            continue;
        }
        let t = covered(&idle[i], sp.start, sp.end);
        if t == 0 {
            continue;
        }
        let node = outcome.graphs[i].node(op.cmd);
        let key = (
            format!("{}:{}", node.loc.file, node.loc.line),
            cmd_name(&node.cmd),
        );
        let e = lines.entry(key).or_insert_with(|| (0, vec![false; n]));
        e.0 += t;
        e.1[i] = true;
    }
    let mut lines: Vec<(String, String, Ps, usize)> = lines
        .into_iter()
        .map(|((loc, cmd), (t, pes))| (loc, cmd, t, pes.iter().filter(|b| **b).count()))
        .collect();
    lines.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| (&a.0, &a.1).cmp(&(&b.0, &b.1))));
    lines.truncate(TOP_WAITS);
    Waits { per_pe, lines }
}

/// The bottleneck section's inner HTML.
pub(crate) fn html(outcome: &Outcome, topo: &Topology) -> String {
    let r = &outcome.report;
    let span = r.sim_ps().max(1);
    let mut s = String::new();
    s.push_str("<ul id=\"findings\">\n");
    let mut finding = |kind: &str, text: String| {
        writeln!(s, "<li class=\"finding\" data-kind=\"{kind}\">{text}</li>").unwrap();
    };
    let bound = r.bound();
    finding(
        "time",
        format!(
            "<b>Kernel time</b> {} us on {} PE(s) (launch dispatch took {} us before it); \
             the analytic bound is {} us, set by {}; {} simulator events.",
            us(r.sim_ps()),
            r.pes.len(),
            us(r.start_ps),
            format_args!("{:.3}", bound.ns / 1000.0),
            esc(&bound.to_string()),
            r.events
        ),
    );
    if let Some(note) = r.below_bound_note() {
        finding("bound", format!("<b>Below the bound</b>: {}.", esc(&note)));
    }
    let remote = r.remote_bytes();
    if remote > 0 {
        let served: u64 = r
            .memory
            .iter()
            .filter(|m| m.owner.is_some())
            .map(|m| m.bytes())
            .sum();
        let top = r.memory.iter().max_by_key(|m| m.bytes());
        finding(
            "memory",
            format!(
                "<b>Remote memory</b>: the PEs' DMAs moved {remote} B to or from memory elsewhere \
                 ({} B read, {} B written); {served} B of it to or from other PEs' HBM slices, \
                 counted in the {} B of HBM traffic.{}",
                r.pes.iter().map(|p| p.remote_read).sum::<u64>(),
                r.pes.iter().map(|p| p.remote_write).sum::<u64>(),
                r.hbm_bytes(),
                top.map_or(String::new(), |m| format!(
                    " The most used is {}: {} B read, {} B written.",
                    esc(&m.memory),
                    m.read,
                    m.write
                ))
            ),
        );
    }
    match r.links.first() {
        Some(l) => {
            let link = &topo.links()[l.link as usize];
            let achieved = l.bytes as f64 / (l.busy_ps.max(1) as f64 / 1000.0);
            finding(
                "link",
                format!(
                    "<b>Busiest link</b> {} ({}, {} GB/s): busy {} us = <b>{}</b> of the kernel time, \
                     {} B carried ({:.1} GB/s while busy). {} link(s) carried traffic.",
                    esc(&l.name),
                    link.kind,
                    link.gbps,
                    us(l.busy_ps),
                    pct(l.busy_ps, span),
                    l.bytes,
                    achieved,
                    r.links.len()
                ),
            );
        }
        None => finding(
            "link",
            "<b>No link</b> carried traffic: every byte stayed on its PE.".into(),
        ),
    }
    // The busiest engine of any PE, against that PE's kernel time.
    let names = EngineBusy::default().pairs().map(|p| p.0);
    let mut best: Option<(usize, usize, Ps)> = None;
    let mut tot = [0u64; 6];
    for (i, p) in r.pes.iter().enumerate() {
        for (k, (_, b)) in p.busy.pairs().iter().enumerate() {
            tot[k] += b;
            if best.is_none_or(|(_, _, x)| *b > x) {
                best = Some((i, k, *b));
            }
        }
    }
    if let Some((i, k, b)) = best.filter(|b| b.2 > 0) {
        let p = &r.pes[i];
        let mean: Vec<String> = names
            .iter()
            .zip(tot)
            .map(|(n, t)| {
                format!(
                    "{n} {}",
                    pct(t, span.saturating_mul(r.pes.len().max(1) as u64))
                )
            })
            .collect();
        finding(
            "engine",
            format!(
                "<b>Busiest engine</b> {} of PE {}: busy {} us = <b>{}</b> of its kernel time. \
                 Mean over PEs: {}.",
                names[k],
                p.pe,
                us(b),
                pct(b, (p.end_ps - p.start_ps).max(1)),
                mean.join(", ")
            ),
        );
    }
    let w = waits(outcome);
    let n = r.pes.len().max(1) as u64;
    let kernel: Ps = r.pes.iter().map(|p| p.end_ps - p.start_ps).sum();
    let idle: Ps = w.per_pe.iter().map(|x| x.idle).sum();
    if idle > 0 {
        let (worst, most) = w
            .per_pe
            .iter()
            .enumerate()
            .max_by_key(|&(i, x)| (x.idle, std::cmp::Reverse(i)))
            .map_or((0, Stall::default()), |(i, x)| (i, *x));
        let p = &r.pes[worst];
        let data: Ps = w.per_pe.iter().map(|x| x.data).sum();
        let slots: Ps = w.per_pe.iter().map(|x| x.slots).sum();
        finding(
            "stall",
            format!(
                "<b>PEs stalled</b> (no engine busy) {} us on average = <b>{}</b> of their kernel time: \
                 {} us of it waiting for data to arrive (a receive outstanding), {} us waiting for ring slots \
                 (a send held until the receiver freed room). The most stalled was PE {}: {} us = {} of its kernel time \
                 ({} us waiting for data, {} us for slots).",
                us(idle / n),
                pct(idle, kernel),
                us(data / n),
                us(slots / n),
                p.pe,
                us(most.idle),
                pct(most.idle, (p.end_ps - p.start_ps).max(1)),
                us(most.data),
                us(most.slots)
            ),
        );
    } else {
        finding(
            "stall",
            "<b>No PE stalled</b>: some engine of each PE was busy from its start to its end."
                .into(),
        );
    }
    if let Some(last) = r.pes.iter().max_by_key(|p| p.end_ps) {
        finding(
            "last",
            format!(
                "<b>Last to finish</b> PE {} at {} us after the common start.",
                last.pe,
                us(last.end_ps - last.start_ps)
            ),
        );
    }
    s.push_str("</ul>\n");

    // The busiest links.
    if !r.links.is_empty() {
        s.push_str("<h3>Busiest links</h3>\n<table id=\"link-table\" class=\"data\">\n<thead><tr><th>link</th><th>kind</th><th>GB/s</th><th>bytes</th><th>busy (us)</th><th>of kernel time</th></tr></thead>\n<tbody>\n");
        for l in r.links.iter().take(TOP_LINKS) {
            let link = &topo.links()[l.link as usize];
            writeln!(
                s,
                "<tr class=\"link-row\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&l.name),
                link.kind,
                link.gbps,
                l.bytes,
                us(l.busy_ps),
                pct(l.busy_ps, span)
            )
            .unwrap();
        }
        s.push_str("</tbody>\n</table>\n");
    }
    // Where PEs waited, by kernel line.
    if !w.lines.is_empty() {
        s.push_str("<h3>Where PEs waited</h3>\n<p class=\"hint\">Stalled time (no engine of the PE busy) while a receive or a send of this line was outstanding, summed over PEs.</p>\n<table id=\"wait-table\" class=\"data\">\n<thead><tr><th>kernel line</th><th>command</th><th>stalled, summed over PEs (us)</th><th>PEs</th></tr></thead>\n<tbody>\n");
        for (loc, cmd, t, pes) in &w.lines {
            writeln!(
                s,
                "<tr class=\"wait-row\"><td>{}</td><td>{}</td><td>{}</td><td>{pes}</td></tr>",
                esc(loc),
                esc(cmd),
                us(*t)
            )
            .unwrap();
        }
        s.push_str("</tbody>\n</table>\n");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stalls_are_the_gaps_between_busy_engines() {
        let busy = merge(vec![(5, 10), (0, 3), (8, 12), (20, 25)]);
        assert_eq!(busy, vec![(0, 3), (5, 12), (20, 25)]);
        let idle = gaps(&busy, 0, 30);
        assert_eq!(idle, vec![(3, 5), (12, 20), (25, 30)]);
        assert_eq!(total(&idle), 15);
        assert_eq!(gaps(&busy, 6, 22), vec![(12, 20)]);
        assert_eq!(gaps(&[], 4, 9), vec![(4, 9)]);
        // A receive outstanding over 4..26 overlaps 1 + 8 + 1 of idle time.
        assert_eq!(covered(&idle, 4, 26), 10);
        assert_eq!(covered(&idle, 13, 14), 1);
        assert_eq!(covered(&idle, 30, 40), 0);
    }
}
