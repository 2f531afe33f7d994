//! A log-x line plot of bus bandwidth against size, written as SVG text
//! (`kernbench sweep` writes it as busbw.svg; HTML reports embed it).

use std::fmt::Write as _;

/// One line of the plot.
pub struct Series {
    /// The legend entry.
    pub name: String,
    /// (size in bytes, busbw in GB/s), in size order.
    pub points: Vec<(f64, f64)>,
    /// How it is drawn.
    pub style: Style,
}

/// How a line is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Style {
    /// One algorithm: a thin line in the next colour.
    #[default]
    Algorithm,
    /// The best simulated busbw at each size: a wide pale band under the lines.
    Envelope,
    /// The tuner's pick at each size: a dashed black line.
    Tuner,
}

/// The lines of a table's rows: one per algorithm in order of first
/// appearance, then, when the tuner chose some rows, its picks (`auto`) and
/// the best simulated busbw of the algorithms at each size beside them.
pub fn series_of(rows: &[kernbench_ccl::table::Row]) -> Vec<Series> {
    let mut out: Vec<Series> = Vec::new();
    let add = |name: &str, style: Style, x: f64, y: f64, out: &mut Vec<Series>| match out
        .iter_mut()
        .find(|s| s.name == name)
    {
        Some(s) => s.points.push((x, y)),
        None => out.push(Series {
            name: name.to_string(),
            points: vec![(x, y)],
            style,
        }),
    };
    for r in rows.iter().filter(|r| r.tuned.is_none()) {
        add(&r.algo, Style::Algorithm, r.size as f64, r.busbw, &mut out);
    }
    let tuned: Vec<_> = rows.iter().filter(|r| r.tuned.is_some()).collect();
    if tuned.is_empty() {
        return out;
    }
    let mut best: Vec<(f64, f64)> = Vec::new();
    for r in rows.iter().filter(|r| r.tuned.is_none()) {
        let x = r.size as f64;
        match best.iter_mut().find(|p| p.0 == x) {
            Some(p) => p.1 = p.1.max(r.busbw),
            None => best.push((x, r.busbw)),
        }
    }
    best.sort_by(|a, b| a.0.total_cmp(&b.0));
    if !best.is_empty() {
        out.insert(
            0,
            Series {
                name: "best simulated".into(),
                points: best,
                style: Style::Envelope,
            },
        );
    }
    for r in tuned {
        add(
            "auto (model's pick)",
            Style::Tuner,
            r.size as f64,
            r.busbw,
            &mut out,
        );
    }
    out
}

const W: f64 = 860.0;
const H: f64 = 520.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 230.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 70.0;
const COLORS: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `65536` -> `64K`, `1048576` -> `1M`.
pub fn human_bytes(b: f64) -> String {
    let units = [(1u64 << 30, "G"), (1 << 20, "M"), (1 << 10, "K")];
    for (u, s) in units {
        let u = u as f64;
        if b >= u {
            let v = b / u;
            return if (v - v.round()).abs() < 1e-9 {
                format!("{}{s}", v.round())
            } else {
                format!("{v:.1}{s}")
            };
        }
    }
    format!("{b}")
}

/// A "nice" step (1, 2 or 5 times a power of ten) giving about `n` ticks up to `max`.
fn nice_step(max: f64, n: f64) -> f64 {
    let raw = (max / n).max(1e-12);
    let p = 10f64.powf(raw.log10().floor());
    let m = raw / p;
    p * if m <= 1.0 {
        1.0
    } else if m <= 2.0 {
        2.0
    } else if m <= 5.0 {
        5.0
    } else {
        10.0
    }
}

fn fmt_tick(v: f64, step: f64) -> String {
    if step >= 1.0 {
        format!("{v:.0}")
    } else {
        let d = (-step.log10().floor()) as usize;
        format!("{v:.d$}")
    }
}

/// The plot: x is the size on a log2 axis, y the bus bandwidth from 0.
pub fn busbw_svg(title: &str, series: &[Series]) -> String {
    let pts = series
        .iter()
        .flat_map(|s| s.points.iter())
        .filter(|(x, y)| *x > 0.0 && y.is_finite());
    let (mut x0, mut x1, mut ymax) = (f64::INFINITY, 0f64, 0f64);
    for (x, y) in pts {
        x0 = x0.min(x.log2());
        x1 = x1.max(x.log2());
        ymax = ymax.max(*y);
    }
    if !x0.is_finite() {
        (x0, x1) = (10.0, 20.0);
    }
    let (x0, x1) = (x0.floor(), x1.ceil());
    let (x0, x1) = if x1 - x0 < 1.0 {
        (x0 - 1.0, x1 + 1.0)
    } else {
        (x0, x1)
    };
    let step = nice_step(if ymax > 0.0 { ymax } else { 1.0 }, 5.0);
    let ytop = ((ymax / step).ceil().max(1.0)) * step;
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let sx = |x: f64| LEFT + (x.log2() - x0) / (x1 - x0) * pw;
    let sy = |y: f64| TOP + ph - y / ytop * ph;

    let mut s = String::new();
    writeln!(s, r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="Helvetica, Arial, sans-serif" font-size="12">"#).unwrap();
    writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#).unwrap();
    writeln!(
        s,
        r#"<text x="{}" y="28" text-anchor="middle" font-size="16" font-weight="bold">{}</text>"#,
        LEFT + pw / 2.0,
        esc(title)
    )
    .unwrap();
    // Grid and ticks.
    let every = ((x1 - x0) / 12.0).ceil().max(1.0) as i64;
    let mut k = x0 as i64;
    while k as f64 <= x1 {
        let x = sx(2f64.powi(k as i32));
        writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#e5e5e5"/>"##,
            TOP + ph
        )
        .unwrap();
        writeln!(
            s,
            r#"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="black"/>"#,
            TOP + ph,
            TOP + ph + 5.0
        )
        .unwrap();
        writeln!(
            s,
            r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            TOP + ph + 19.0,
            human_bytes(2f64.powi(k as i32))
        )
        .unwrap();
        k += every;
    }
    let mut y = 0.0;
    while y <= ytop + step * 1e-9 {
        let py = sy(y);
        writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="#e5e5e5"/>"##,
            LEFT + pw
        )
        .unwrap();
        writeln!(
            s,
            r#"<line x1="{:.1}" y1="{py:.1}" x2="{LEFT}" y2="{py:.1}" stroke="black"/>"#,
            LEFT - 5.0
        )
        .unwrap();
        writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 8.0,
            py + 4.0,
            fmt_tick(y, step)
        )
        .unwrap();
        y += step;
    }
    // Axes and their labels.
    writeln!(
        s,
        r#"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="black"/>"#
    )
    .unwrap();
    writeln!(s, r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="13">size per rank (bytes, log scale)</text>"#, LEFT + pw / 2.0, H - 22.0).unwrap();
    writeln!(s, r#"<text transform="translate(22 {:.1}) rotate(-90)" text-anchor="middle" font-size="13">bus bandwidth (GB/s)</text>"#, TOP + ph / 2.0).unwrap();
    // Lines and the legend.
    let mut colour = 0;
    for (i, ser) in series.iter().enumerate() {
        let (c, width, dash) = match ser.style {
            Style::Algorithm => {
                colour += 1;
                (COLORS[(colour - 1) % COLORS.len()], 2, "")
            }
            Style::Envelope => ("#c8c8c8", 9, ""),
            Style::Tuner => ("black", 2, r#" stroke-dasharray="6 4""#),
        };
        let p: Vec<String> = ser
            .points
            .iter()
            .filter(|(x, y)| *x > 0.0 && y.is_finite())
            .map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y)))
            .collect();
        writeln!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{c}" stroke-width="{width}"{dash}/>"#,
            p.join(" ")
        )
        .unwrap();
        for q in &p {
            let (cx, cy) = q.split_once(',').unwrap_or(("0", "0"));
            writeln!(s, r#"<circle cx="{cx}" cy="{cy}" r="3" fill="{c}"/>"#).unwrap();
        }
        let ly = TOP + 10.0 + i as f64 * 20.0;
        let lx = LEFT + pw + 16.0;
        writeln!(s, r#"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{c}" stroke-width="{width}"{dash}/>"#, lx + 24.0).unwrap();
        writeln!(
            s,
            r#"<circle cx="{:.1}" cy="{ly:.1}" r="3" fill="{c}"/>"#,
            lx + 12.0
        )
        .unwrap();
        writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
            lx + 30.0,
            ly + 4.0,
            esc(&ser.name)
        )
        .unwrap();
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_bytes(65536.0), "64K");
        assert_eq!(human_bytes(1048576.0), "1M");
        assert_eq!(human_bytes(512.0), "512");
    }

    #[test]
    fn tuned_rows_add_the_picks_and_the_best_at_each_size() {
        let row = |algo: &str, size: u64, busbw: f64, tuned: bool| kernbench_ccl::table::Row {
            algo: algo.into(),
            size,
            count: size as usize / 4,
            dtype: "f32".into(),
            redop: "sum".into(),
            root: -1,
            time_us: 1.0,
            algbw: busbw,
            busbw,
            wrong: -1,
            model_us: 1.0,
            bound: "latency".into(),
            note: String::new(),
            ranks: 16,
            events: 1,
            tuned: tuned.then_some(kernbench_ccl::table::Tuned {
                runner_up: None,
                runner_up_us: None,
                candidates: 2,
            }),
        };
        let rows = [
            row("a", 4096, 10.0, false),
            row("a", 8192, 30.0, false),
            row("b", 4096, 20.0, false),
            row("b", 8192, 25.0, false),
            row("a", 4096, 10.0, true),
            row("a", 8192, 30.0, true),
        ];
        let s = series_of(&rows[..4]);
        assert_eq!(s.len(), 2);
        assert!(s.iter().all(|x| x.style == Style::Algorithm));
        let s = series_of(&rows);
        let names: Vec<&str> = s.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(names, ["best simulated", "a", "b", "auto (model's pick)"]);
        assert_eq!(s[0].points, [(4096.0, 20.0), (8192.0, 30.0)]);
        assert_eq!(s[3].points, [(4096.0, 10.0), (8192.0, 30.0)]);
        assert_eq!((s[0].style, s[3].style), (Style::Envelope, Style::Tuner));
        let svg = busbw_svg("t", &s);
        assert_eq!(svg.matches("stroke-dasharray").count(), 2);
        assert_eq!(svg.matches("stroke-width=\"9\"").count(), 2);
    }

    #[test]
    fn the_plot_has_a_line_and_a_legend_entry_per_series() {
        let s = vec![
            Series {
                name: "a<b".into(),
                points: vec![(65536.0, 10.0), (131072.0, 20.0)],
                style: Style::Algorithm,
            },
            Series {
                name: "c".into(),
                points: vec![(65536.0, 5.0), (131072.0, f64::NAN)],
                style: Style::Algorithm,
            },
        ];
        let svg = busbw_svg("t", &s);
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("a&lt;b") && svg.contains(">64K<") && svg.contains("GB/s"));
    }
}
