//! One self-contained HTML report of a run: the machine with its links
//! coloured by use, a zoomable timeline of the busiest PEs' engines, the
//! nccl-tests table and busbw plot of a collective run or sweep, and a
//! summary of where the time went.
//!
//! The file needs nothing else: its style sheet, script and drawings are
//! inline, it loads no font, script or image, and it works offline. The
//! script (`report.js` beside this file) reads the run's data from a JSON
//! block of the page; it reports any error of its own in the page (an
//! element of class `js-error`) and marks `#report-status` `ready` once
//! everything is drawn, which is what `tests/html_report.rs` checks in a
//! headless browser.
//!
//! ```no_run
//! use kernbench::ccl::run::{ranks, run_on, RunSpec};
//! use kernbench::ccl::Registry;
//! use kernbench::core::sim::FabricModel;
//! use kernbench::core::topology::Topology;
//! use kernbench::core::DType;
//! use kernbench::html::{render, Options, Page};
//!
//! let topo = Topology::builtin("tiny").unwrap();
//! let reg = Registry::builtin();
//! let algo = reg.get("ring_allreduce").unwrap();
//! let pes = ranks(&topo, algo).unwrap();
//! let mut spec = RunSpec::timing(1 << 16, DType::F32, FabricModel::Messages);
//! spec.trace = true; // the timeline needs the run's spans
//! let run = run_on(&topo, algo, &pes, &spec).unwrap();
//! let page = Page::new("ring all-reduce on tiny", &topo, &run.outcome);
//! let html = render(&page, &Options::default()).unwrap();
//! std::fs::write("report.html", html).unwrap();
//! ```

mod machine;
mod summary;
mod timeline;

use crate::svg::busbw_svg;
use kernbench_ccl::table::Row;
use kernbench_core::sim::Outcome;
use kernbench_core::topology::Topology;
use kernbench_core::{PeId, Ps};
use serde_json::json;
use std::fmt::Write as _;
use std::path::Path;

/// The page's style sheet.
const CSS: &str = include_str!("report.css");
/// The page's script: tooltips, zoom and pan, the timeline, the status.
const JS: &str = include_str!("report.js");
/// Runs first: shows any script error in the page and marks the status.
const ERROR_TRAP: &str = include_str!("error_trap.js");

/// Spans a page embeds by default (see [`Options::max_spans`]).
pub const DEFAULT_MAX_SPANS: usize = 50_000;
/// PEs the timeline shows by default (see [`Options::busiest`]).
pub const DEFAULT_BUSIEST: usize = 8;
/// Busiest links the timeline shows as tracks by default.
pub const DEFAULT_LINK_TRACKS: usize = 4;

/// What the page shows of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// The PEs whose engines the timeline shows, in this order; the busiest when `None`.
    pub pes: Option<Vec<PeId>>,
    /// How many of the busiest PEs (by summed engine busy time) the timeline
    /// shows when no PEs are given.
    pub busiest: usize,
    /// How many of the busiest links get a track of their own.
    pub links: usize,
    /// At most this many spans are embedded (the earliest; the page says
    /// where it cut). Each costs about 30 bytes of the file and some drawing
    /// time; 50 000 keeps the page quick.
    pub max_spans: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            pes: None,
            busiest: DEFAULT_BUSIEST,
            links: DEFAULT_LINK_TRACKS,
            max_spans: DEFAULT_MAX_SPANS,
        }
    }
}

/// nccl-tests results: one row per (algorithm, size).
#[derive(Clone, Debug)]
pub struct Results<'a> {
    /// The collective (`all_reduce`, ...).
    pub collective: String,
    /// The rows, algorithm by algorithm, each in size order.
    pub rows: &'a [Row],
}

/// One report: a run shown in detail, and optionally the table of a
/// collective run or sweep it belongs to.
#[derive(Clone)]
pub struct Page<'a> {
    /// The heading.
    pub title: String,
    /// What the detailed run is (shown under the heading).
    pub run_label: String,
    /// The machine.
    pub topo: &'a Topology,
    /// The run drawn on the machine and the timeline; it must have kept spans
    /// (`Launch::trace`, `RunSpec::trace`).
    pub outcome: &'a Outcome,
    /// The nccl-tests table and busbw plot.
    pub results: Option<Results<'a>>,
}

impl<'a> Page<'a> {
    /// A page for `outcome` on `topo`, without a results table.
    pub fn new(title: impl Into<String>, topo: &'a Topology, outcome: &'a Outcome) -> Self {
        let r = &outcome.report;
        Page {
            title: title.into(),
            run_label: format!("{} on {}, {} PE(s)", r.kernel, r.topology, r.pes.len()),
            topo,
            outcome,
            results: None,
        }
    }

    /// Adds the nccl-tests table and plot.
    pub fn results(mut self, collective: impl Into<String>, rows: &'a [Row]) -> Self {
        self.results = Some(Results {
            collective: collective.into(),
            rows,
        });
        self
    }

    /// Sets what the detailed run is called.
    pub fn run_label(mut self, label: impl Into<String>) -> Self {
        self.run_label = label.into();
        self
    }
}

/// Why a page could not be made.
#[derive(Debug, thiserror::Error)]
pub enum HtmlError {
    /// The outcome has no spans or programs.
    #[error(
        "the run kept no spans for a timeline; run it with tracing on (Launch::trace, RunSpec::trace)"
    )]
    NoSpans,
    /// A PE asked for did not run.
    #[error("PE {pe} did not run in this launch; its {count} PE(s) are {ran}")]
    PeNotInRun {
        /// The PE asked for, as `sip.cube.pe`.
        pe: String,
        /// How many PEs ran.
        count: usize,
        /// The first PEs that ran, as `sip.cube.pe`.
        ran: String,
    },
    /// The file could not be written.
    #[error("cannot write {path}: {err}")]
    Write {
        /// The file.
        path: String,
        /// Why (part of the message).
        err: std::io::Error,
    },
}

/// `sip.cube.pe`, as the command line writes a PE.
pub(crate) fn pe_dotted(pe: PeId) -> String {
    format!("{}.{}.{}", pe.sip, pe.cube, pe.pe)
}

/// Escapes text for HTML content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// A coordinate with one decimal, without a trailing `.0`.
pub(crate) fn num(v: f64) -> String {
    let r = (v * 10.0).round() / 10.0;
    if r == r.trunc() {
        format!("{}", r as i64)
    } else {
        format!("{r:.1}")
    }
}

/// Picoseconds as microseconds with three decimals.
pub(crate) fn us(ps: Ps) -> String {
    format!("{:.3}", ps as f64 / 1e6)
}

/// `part / whole` as a percentage with one decimal.
pub(crate) fn pct(part: u64, whole: u64) -> String {
    format!("{:.1}%", part as f64 / whole.max(1) as f64 * 100.0)
}

/// The colour scale of utilisation, from idle-but-used to saturated.
const HEAT: [(f64, [u8; 3]); 5] = [
    (0.0, [49, 54, 149]),
    (0.25, [69, 117, 180]),
    (0.5, [116, 173, 209]),
    (0.75, [244, 109, 67]),
    (1.0, [165, 0, 38]),
];

/// The colour of utilisation `u` (0 to 1; clamped).
pub(crate) fn heat(u: f64) -> String {
    let u = if u.is_finite() {
        u.clamp(0.0, 1.0)
    } else {
        1.0
    };
    let mut k = 0;
    while k + 2 < HEAT.len() && u > HEAT[k + 1].0 {
        k += 1;
    }
    let ((a, ca), (b, cb)) = (HEAT[k], HEAT[k + 1]);
    let t = ((u - a) / (b - a)).clamp(0.0, 1.0);
    let c: Vec<u8> = (0..3)
        .map(|i| (f64::from(ca[i]) + (f64::from(cb[i]) - f64::from(ca[i])) * t).round() as u8)
        .collect();
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

/// The colour scale as a CSS gradient, for the legend.
fn heat_gradient() -> String {
    let stops: Vec<String> = HEAT
        .iter()
        .map(|(u, c)| format!("rgb({},{},{}) {}%", c[0], c[1], c[2], u * 100.0))
        .collect();
    format!("linear-gradient(to right, {})", stops.join(", "))
}

/// JSON for a `<script>` block: `<` written as `\u003c`, so no `</script>`
/// inside a string can end the block.
fn script_json(v: &serde_json::Value) -> String {
    v.to_string().replace('<', "\\u003c")
}

fn results_html(res: &Results, topo: &Topology) -> String {
    let mut s = String::new();
    writeln!(
        s,
        "<h3>nccl-tests table: {} on {}</h3>",
        esc(&res.collective),
        esc(topo.name())
    )
    .unwrap();
    s.push_str(
        "<table id=\"results-table\" class=\"data num\">\n<thead><tr><th>algorithm</th><th>size (B)</th>\
         <th>count (elements)</th><th>type</th><th>redop</th><th>root</th><th>time (us)</th>\
         <th>algbw (GB/s)</th><th>busbw (GB/s)</th><th>#wrong</th><th>model (us)</th><th>bound</th></tr></thead>\n<tbody>\n",
    );
    for r in res.rows {
        let wrong = if r.wrong < 0 {
            "N/A".to_string()
        } else {
            r.wrong.to_string()
        };
        let bad = if r.wrong > 0 { " wrong" } else { "" };
        // A row the tuner chose says so, and what came second.
        let algo = match &r.tuned {
            None => r.algo.clone(),
            Some(t) => match (&t.runner_up, t.runner_up_us) {
                (Some(n), Some(us)) => format!("auto: {} (runner-up {n}, {us:.2} us)", r.algo),
                _ => format!("auto: {}", r.algo),
            },
        };
        writeln!(
            s,
            "<tr class=\"result-row{bad}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{wrong}</td><td>{:.2}</td><td>{}</td></tr>",
            esc(&algo),
            r.size,
            r.count,
            esc(&r.dtype),
            esc(&r.redop),
            r.root,
            r.time_us,
            r.algbw,
            r.busbw,
            r.model_us,
            esc(&r.bound)
        )
        .unwrap();
    }
    s.push_str("</tbody>\n</table>\n");
    let series = crate::svg::series_of(res.rows);
    let dtype = res.rows.first().map_or("", |r| r.dtype.as_str());
    let title = format!("{} busbw on {} ({dtype})", res.collective, topo.name());
    writeln!(
        s,
        "<div id=\"busbw-plot\" class=\"plot\">{}</div>",
        busbw_svg(&title, &series)
    )
    .unwrap();
    s
}

/// The page's HTML.
pub fn render(page: &Page, opts: &Options) -> Result<String, HtmlError> {
    let out = page.outcome;
    let report = &out.report;
    if out.spans.is_empty()
        || out.programs.len() != report.pes.len()
        || out.graphs.len() != report.pes.len()
    {
        return Err(HtmlError::NoSpans);
    }
    let mach = machine::draw(page.topo, report);
    let tl = timeline::build(out, page.topo, opts)?;
    let data = json!({
        "machine": mach.data,
        "timeline": tl.data,
    });

    let mut s = String::with_capacity(mach.svg.len() + 64 * 1024);
    s.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    s.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    writeln!(s, "<title>{}</title>", esc(&page.title)).unwrap();
    writeln!(
        s,
        "<style>\n{CSS}\n:root {{ --heat: {}; }}\n</style>",
        heat_gradient()
    )
    .unwrap();
    writeln!(s, "<script>\n{ERROR_TRAP}</script>\n</head>\n<body>").unwrap();

    // Heading.
    writeln!(
        s,
        "<header>\n<h1>{}</h1>\n<p class=\"meta\">{} &middot; {} us &middot; written by kernbench {}</p>",
        esc(&page.title),
        esc(&page.run_label),
        us(report.sim_ps()),
        env!("CARGO_PKG_VERSION")
    )
    .unwrap();
    s.push_str("<nav><a href=\"#summary\">Bottlenecks</a><a href=\"#machine\">Machine</a><a href=\"#timeline\">Timeline</a><a href=\"#results\">Results</a></nav>\n");
    s.push_str("<div id=\"report-status\" data-state=\"loading\">loading&hellip;</div>\n<div id=\"report-errors\"></div>\n</header>\n");
    s.push_str("<noscript><p class=\"js-off\">The timeline and the tooltips need JavaScript; the machine, the tables and the plot do not.</p></noscript>\n<main>\n");

    // Bottlenecks.
    writeln!(
        s,
        "<section id=\"summary\">\n<h2>Bottlenecks</h2>\n{}</section>",
        summary::html(out, page.topo)
    )
    .unwrap();

    // Machine.
    writeln!(
        s,
        "<section id=\"machine\">\n<h2>Machine: {}</h2>\n\
         <p class=\"hint\">Each link is two strokes, one per direction; colour and width show how busy the run kept it \
         (busy time over the kernel time), a PE's fill its busiest engine. Hover for bytes and busy time; \
         scroll to zoom, drag to pan.</p>\n\
         <div class=\"toolbar\" data-for=\"machine\"><button data-act=\"in\">+</button><button data-act=\"out\">&minus;</button>\
         <button data-act=\"fit\">fit</button>\
         <span class=\"legend\"><span class=\"swatch idle\"></span>idle <span class=\"ramp\"></span> 0% &hellip; 100% busy</span></div>\n\
         <div id=\"machine-box\" class=\"zoombox\">\n{}</div>\n</section>",
        esc(page.topo.name()),
        mach.svg
    )
    .unwrap();

    // Timeline.
    let who = match &opts.pes {
        Some(_) => "the PEs asked for".to_string(),
        None => format!(
            "the {} busiest PE(s) (by summed engine busy time)",
            tl.pes.len()
        ),
    };
    writeln!(
        s,
        "<section id=\"timeline\">\n<h2>Timeline</h2>\n\
         <p class=\"hint\">Engine tracks of {who} and the {} busiest link(s): {} span(s) on {} track(s). \
         Scroll to zoom around the pointer, drag to pan; hover a span for its command, kernel line and bytes.</p>",
        opts.links.min(report.links.len()),
        tl.spans,
        tl.tracks
    )
    .unwrap();
    if tl.total > tl.spans {
        writeln!(
            s,
            "<p id=\"timeline-note\" class=\"note\">{}</p>",
            esc(tl.data["note"].as_str().unwrap_or_default())
        )
        .unwrap();
    }
    s.push_str(
        "<div class=\"toolbar\" data-for=\"timeline\"><button data-act=\"in\">+</button><button data-act=\"out\">&minus;</button>\
         <button data-act=\"left\">&larr;</button><button data-act=\"right\">&rarr;</button><button data-act=\"fit\">fit</button>\
         <span id=\"tl-range\" class=\"range\"></span></div>\n\
         <div id=\"timeline-box\"><div id=\"tl-labels\"></div><canvas id=\"tl-canvas\"></canvas></div>\n</section>\n",
    );

    // Results.
    s.push_str("<section id=\"results\">\n<h2>Results</h2>\n");
    if let Some(res) = &page.results {
        s.push_str(&results_html(res, page.topo));
    }
    writeln!(
        s,
        "<h3>Report of the run shown</h3>\n<pre id=\"report-text\">{}</pre>\n</section>\n</main>",
        esc(&report.to_string())
    )
    .unwrap();

    s.push_str("<div id=\"tooltip\" hidden></div>\n");
    writeln!(
        s,
        "<script type=\"application/json\" id=\"report-data\">{}</script>",
        script_json(&data)
    )
    .unwrap();
    writeln!(s, "<script>\n{JS}</script>\n</body>\n</html>").unwrap();
    Ok(s)
}

/// Writes [`render`]'s page to `path`.
pub fn write(path: &Path, page: &Page, opts: &Options) -> Result<(), HtmlError> {
    let html = render(page, opts)?;
    std::fs::write(path, html).map_err(|err| HtmlError::Write {
        path: path.display().to_string(),
        err,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_cannot_be_written_says_why_once() {
        let io = std::fs::write("/nonexistent-kernbench-dir/report.html", "").unwrap_err();
        let why = io.to_string();
        let e = HtmlError::Write {
            path: "/nonexistent-kernbench-dir/report.html".into(),
            err: io,
        };
        assert_eq!(
            e.to_string(),
            format!("cannot write /nonexistent-kernbench-dir/report.html: {why}")
        );
        // The I/O error is in the message, so it is not also the source.
        assert!(std::error::Error::source(&e).is_none());
    }

    #[test]
    fn the_colour_scale_runs_from_blue_to_red() {
        assert_eq!(heat(0.0), "#313695");
        assert_eq!(heat(1.0), "#a50026");
        assert_eq!(heat(2.0), heat(1.0));
        assert_eq!(heat(f64::NAN), heat(1.0));
        assert_ne!(heat(0.3), heat(0.7));
    }

    #[test]
    fn script_data_cannot_end_its_block() {
        let v = json!({"name": "</script><b>"});
        let s = script_json(&v);
        assert!(!s.contains('<'));
        let back: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            esc("a<b & \"c\" 'd'"),
            "a&lt;b &amp; &quot;c&quot; &#39;d&#39;"
        );
        assert_eq!(num(3.0), "3");
        assert_eq!(num(3.04), "3");
        assert_eq!(num(-2.25), "-2.3");
    }
}
