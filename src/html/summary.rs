//! Where the run's time went: the busiest link, the busiest engine, where
//! PEs waited (for data to arrive, for ring slots to free), and the PE that
//! finished last, as HTML.

use super::{esc, pct, us};
use kernbench_core::sim::why::{self, PeWaits, TOP_WAIT_LINES};
use kernbench_core::sim::Outcome;
use kernbench_core::topology::Topology;
use kernbench_core::Ps;
use std::fmt::Write as _;

/// Links listed in the busiest-links table.
const TOP_LINKS: usize = 8;

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
    if let Some(e) = why::busiest_engines(r, 1).first() {
        let mean: Vec<String> = why::engine_totals(r)
            .iter()
            .map(|(n, t)| {
                format!(
                    "{n} {}",
                    pct(*t, span.saturating_mul(r.pes.len().max(1) as u64))
                )
            })
            .collect();
        finding(
            "engine",
            format!(
                "<b>Busiest engine</b> {} of PE {}: busy {} us = <b>{}</b> of its kernel time. \
                 Mean over PEs: {}.",
                e.engine,
                e.pe,
                us(e.busy_ps),
                pct(e.busy_ps, e.kernel_ps.max(1)),
                mean.join(", ")
            ),
        );
    }
    let w = why::waits(outcome);
    let n = r.pes.len().max(1) as u64;
    let kernel: Ps = r.pes.iter().map(|p| p.end_ps - p.start_ps).sum();
    let idle: Option<Ps> = w.as_ref().map(|w| w.per_pe.iter().map(|x| x.stalled).sum());
    if let (Some(w), Some(idle)) = (&w, idle.filter(|i| *i > 0)) {
        let (worst, most) = w
            .per_pe
            .iter()
            .enumerate()
            .max_by_key(|&(i, x)| (x.stalled, std::cmp::Reverse(i)))
            .map_or((0, PeWaits::default()), |(i, x)| (i, *x));
        let p = &r.pes[worst];
        let data: Ps = w.per_pe.iter().map(|x| x.data).sum();
        let slots: Ps = w.per_pe.iter().map(|x| x.credits).sum();
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
                us(most.stalled),
                pct(most.stalled, (p.end_ps - p.start_ps).max(1)),
                us(most.data),
                us(most.credits)
            ),
        );
    } else if idle.is_some() {
        finding(
            "stall",
            "<b>No PE stalled</b>: some engine of each PE was busy from its start to its end."
                .into(),
        );
    } else {
        finding(
            "stall",
            "<b>Stalls unknown</b>: the run kept no op spans.".into(),
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
    let lines = w.map(|w| w.lines).unwrap_or_default();
    if !lines.is_empty() {
        s.push_str("<h3>Where PEs waited</h3>\n<p class=\"hint\">Stalled time (no engine of the PE busy) while a receive or a send of this line was outstanding, summed over PEs.</p>\n<table id=\"wait-table\" class=\"data\">\n<thead><tr><th>kernel line</th><th>command</th><th>stalled, summed over PEs (us)</th><th>PEs</th></tr></thead>\n<tbody>\n");
        for l in lines.iter().take(TOP_WAIT_LINES) {
            writeln!(
                s,
                "<tr class=\"wait-row\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&l.loc),
                esc(&l.command),
                us(l.stalled_ps),
                l.pes
            )
            .unwrap();
        }
        s.push_str("</tbody>\n</table>\n");
    }
    s
}
