//! The machine drawn as SVG: SIPs, cubes, the IO chiplets, routers, PEs and
//! every link of the structure graph, each link coloured by how busy the run
//! kept it.
//!
//! The layout follows the machine's structure rather than a graph-drawing
//! algorithm: a cube's routers sit on their NOC grid, everything attached to
//! a router sits beside it, UCIe endpoints sit on the cube's edges, cubes sit
//! on their SIP's cube mesh, the IO chiplet along its side of the mesh, and
//! the SIPs on a grid under the host and the switch. Two directions of a
//! link are two parallel strokes; parallel UCIe connections between the same
//! endpoints are one stroke per direction (coloured by the busiest).

use super::{esc, heat, num};
use kernbench_core::sim::Report;
use kernbench_core::topology::{LinkKind, Node, Side, Topology};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

/// Router pitch inside a cube.
const S: f64 = 48.0;
/// Gap between neighbouring cubes, and between the mesh and the IO chiplet.
const G: f64 = 48.0;
/// Depth of the IO chiplet strip.
const IO_DEPTH: f64 = 2.6 * S;
/// Padding of a SIP's box around its contents.
const PAD: f64 = 0.6 * S;
/// Gap between SIP boxes.
const SIP_GAP: f64 = 2.0 * S;
/// Height of the band above the SIPs that holds the host and the switch.
const TOP_BAND: f64 = 4.0 * S;
/// How far an attachment sits from its router (fraction of the pitch).
const ATTACH: f64 = 0.22;
/// How far a PE's HBM slice sits from the PE's router.
const SLICE: f64 = 0.42;
/// How far the two directions of a link are drawn apart, each side of the centre.
const LANE: f64 = 1.3;

/// Where the parts of the machine are drawn.
struct Layout {
    /// Centre of each node of the structure graph, by node index.
    pos: Vec<(f64, f64)>,
    /// SIP, cube and IO boxes: (class, label, x, y, w, h).
    frames: Vec<(&'static str, String, f64, f64, f64, f64)>,
    width: f64,
    height: f64,
}

fn layout(topo: &Topology) -> Layout {
    let g = topo.graph();
    let nodes: Vec<Node> = g.node_indices().map(|i| g[i]).collect();
    // The NOC grid, from the routers present.
    let (mut rows, mut cols) = (1u16, 1u16);
    for n in &nodes {
        if let Node::Router { row, col, .. } = *n {
            rows = rows.max(row + 1);
            cols = cols.max(col + 1);
        }
    }
    let (cw, ch) = (f64::from(cols) * S, f64::from(rows) * S);
    let (crows, ccols) = topo.cube_mesh();
    let mesh_w = f64::from(ccols) * cw + f64::from(ccols.saturating_sub(1)) * G;
    let mesh_h = f64::from(crows) * ch + f64::from(crows.saturating_sub(1)) * G;
    let io = topo.io_side();
    // A SIP's box, relative to the top-left of its cube mesh.
    let (mut x0, mut y0, mut x1, mut y1) = (-PAD, -PAD, mesh_w + PAD, mesh_h + PAD);
    match io {
        Side::W => x0 -= G + IO_DEPTH,
        Side::E => x1 += G + IO_DEPTH,
        Side::N => y0 -= G + IO_DEPTH,
        Side::S => y1 += G + IO_DEPTH,
    }
    let (bw, bh) = (x1 - x0, y1 - y0);
    let sips = usize::from(topo.num_sips());
    let grid_cols = (1..=sips).find(|c| c * c >= sips).unwrap_or(1);
    let grid_rows = sips.div_ceil(grid_cols);
    let width = grid_cols as f64 * (bw + SIP_GAP) - SIP_GAP + 2.0 * S;
    let height = TOP_BAND + grid_rows as f64 * (bh + SIP_GAP) - SIP_GAP + S;
    // Top-left of each SIP's cube mesh.
    let mesh_origin = |sip: u16| {
        let (r, c) = (usize::from(sip) / grid_cols, usize::from(sip) % grid_cols);
        (
            S + c as f64 * (bw + SIP_GAP) - x0,
            TOP_BAND + r as f64 * (bh + SIP_GAP) - y0,
        )
    };
    let cube_origin = |sip: u16, cube: u16| {
        let (mx, my) = mesh_origin(sip);
        let (r, c) = (cube / ccols, cube % ccols);
        (mx + f64::from(c) * (cw + G), my + f64::from(r) * (ch + G))
    };
    // A point of the IO strip: `along` the mesh side, `depth` out from it.
    let io_point = |sip: u16, along: f64, depth: f64| {
        let (mx, my) = mesh_origin(sip);
        match io {
            Side::W => (mx - depth, my + along),
            Side::E => (mx + mesh_w + depth, my + along),
            Side::N => (mx + along, my - depth),
            Side::S => (mx + along, my + mesh_h + depth),
        }
    };
    let io_len = match io {
        Side::W | Side::E => mesh_h,
        Side::N | Side::S => mesh_w,
    };

    // What hangs off which router, and which cube endpoint each IO port faces.
    let mut router_of: HashMap<Node, Node> = HashMap::new();
    let mut port_peer: HashMap<Node, Node> = HashMap::new();
    for l in topo.links() {
        match (l.kind, l.from, l.to) {
            (
                LinkKind::PeNoc
                | LinkKind::Sram
                | LinkKind::McpuNoc
                | LinkKind::HbmPort
                | LinkKind::UcieAttach,
                from,
                to @ Node::Router { .. },
            ) => {
                router_of.insert(from, to);
            }
            (LinkKind::Ucie, from @ Node::IoUcie { .. }, to @ Node::Ucie { .. }) => {
                port_peer.insert(from, to);
            }
            _ => {}
        }
    }
    let router_pos = |r: Node| match r {
        Node::Router { cube, row, col } => {
            let (ox, oy) = cube_origin(cube.sip, cube.cube);
            (
                ox + (f64::from(col) + 0.5) * S,
                oy + (f64::from(row) + 0.5) * S,
            )
        }
        _ => (0.0, 0.0),
    };
    // Attachments of a router take its corners in turn: NW, NE, SW, SE.
    let corners = [(-1.0, -1.0), (1.0, -1.0), (-1.0, 1.0), (1.0, 1.0)];
    let mut slot_of: HashMap<Node, (f64, f64)> = HashMap::new();
    let mut used: HashMap<Node, usize> = HashMap::new();
    for n in &nodes {
        if matches!(n, Node::Ucie { .. }) {
            continue;
        }
        if let Some(r) = router_of.get(n) {
            let k = used.entry(*r).or_default();
            slot_of.insert(*n, corners[*k % corners.len()]);
            *k += 1;
        }
    }
    let ucie_pos = |n: Node| -> (f64, f64) {
        let (Node::Ucie { cube, side }, Some(r)) = (n, router_of.get(&n)) else {
            return (0.0, 0.0);
        };
        let (rx, ry) = router_pos(*r);
        let (ox, oy) = cube_origin(cube.sip, cube.cube);
        match side {
            Side::N => (rx, oy - 0.2 * S),
            Side::S => (rx, oy + ch + 0.2 * S),
            Side::W => (ox - 0.2 * S, ry),
            Side::E => (ox + cw + 0.2 * S, ry),
        }
    };
    let mut pos = vec![(0.0, 0.0); nodes.len()];
    for (i, n) in nodes.iter().enumerate() {
        pos[i] = match *n {
            Node::Host => (width / 2.0, 1.2 * S),
            Node::Switch => (width / 2.0, 2.8 * S),
            Node::Router { .. } => router_pos(*n),
            Node::Ucie { .. } => ucie_pos(*n),
            Node::HbmSlice(pe) => match router_of.get(&Node::Pe(pe)) {
                Some(r) => {
                    let (rx, ry) = router_pos(*r);
                    let (dx, dy) = slot_of.get(&Node::Pe(pe)).copied().unwrap_or((1.0, 1.0));
                    (rx + dx * SLICE * S, ry + dy * SLICE * S)
                }
                None => (0.0, 0.0),
            },
            Node::IoUcie { sip, .. } => {
                let along = match port_peer.get(n) {
                    Some(ep) => {
                        let (ex, ey) = ucie_pos(*ep);
                        let (mx, my) = mesh_origin(sip.0);
                        match io {
                            Side::W | Side::E => ey - my,
                            Side::N | Side::S => ex - mx,
                        }
                    }
                    None => io_len / 2.0,
                };
                io_point(sip.0, along, G + 0.3 * S)
            }
            Node::IoNoc(sip) => io_point(sip.0, io_len / 2.0, G + 1.3 * S),
            Node::PcieEp(sip) => io_point(sip.0, io_len / 2.0 - 0.9 * S, G + 2.1 * S),
            Node::IoCpu(sip) => io_point(sip.0, io_len / 2.0 + 0.9 * S, G + 2.1 * S),
            _ => match router_of.get(n) {
                Some(r) => {
                    let (rx, ry) = router_pos(*r);
                    let (dx, dy) = slot_of.get(n).copied().unwrap_or((1.0, 1.0));
                    (rx + dx * ATTACH * S, ry + dy * ATTACH * S)
                }
                None => (width / 2.0, 0.5 * S),
            },
        };
    }

    let mut frames = Vec::new();
    for s in 0..topo.num_sips() {
        let (mx, my) = mesh_origin(s);
        frames.push(("sip", format!("SIP {s}"), mx + x0, my + y0, bw, bh));
        let (ax, ay) = io_point(s, 0.0, G);
        let (bx, by) = io_point(s, io_len, G + IO_DEPTH);
        frames.push((
            "io",
            format!("IO {s}"),
            ax.min(bx),
            ay.min(by),
            (bx - ax).abs(),
            (by - ay).abs(),
        ));
        for c in 0..topo.cubes_per_sip() {
            let (ox, oy) = cube_origin(s, c);
            frames.push(("cube", format!("cube {c}"), ox, oy, cw, ch));
        }
    }
    Layout {
        pos,
        frames,
        width,
        height,
    }
}

/// Whether white text reads better than black on the colour `#rrggbb`.
fn dark(colour: &str) -> bool {
    let c = |i: usize| {
        colour
            .get(i..i + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .map_or(0.0, f64::from)
    };
    // Relative luminance, roughly (sRGB weights without linearising).
    0.2126 * c(1) + 0.7152 * c(3) + 0.0722 * c(5) < 140.0
}

/// A node's CSS class and half size.
fn node_style(n: &Node) -> (&'static str, f64) {
    match n {
        Node::Host => ("host", 18.0),
        Node::Switch => ("switch", 14.0),
        Node::PcieEp(_) => ("pcie", 7.0),
        Node::IoCpu(_) => ("iocpu", 7.0),
        Node::IoNoc(_) => ("hub", 8.0),
        Node::IoUcie { .. } | Node::Ucie { .. } => ("ucie", 3.5),
        Node::Router { .. } => ("router", 2.5),
        Node::Pe(_) => ("pe", 7.0),
        Node::HbmSlice(_) => ("hbm", 4.0),
        Node::HbmPort { .. } => ("hbmport", 4.5),
        Node::Sram(_) => ("sram", 5.0),
        Node::MCpu(_) => ("mcpu", 5.0),
    }
}

/// The machine section's SVG, and the data its script reads: `nodes`
/// (name, class, index into `pes` or -1), `links` (one per drawn stroke) and
/// `pes` (what each PE of the run did).
pub(crate) struct Machine {
    pub svg: String,
    pub data: Value,
}

pub(crate) fn draw(topo: &Topology, report: &Report) -> Machine {
    let lay = layout(topo);
    let g = topo.graph();
    let nodes: Vec<Node> = g.node_indices().map(|i| g[i]).collect();
    let index: HashMap<Node, usize> = nodes.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let span = report.sim_ps().max(1) as f64;
    let busy: HashMap<u32, (u64, u64)> = report
        .links
        .iter()
        .map(|l| (l.link, (l.busy_ps, l.bytes)))
        .collect();
    // Strokes: the links between one ordered pair of nodes.
    let mut strokes: BTreeMap<(usize, usize), Vec<usize>> = BTreeMap::new();
    for (i, l) in topo.links().iter().enumerate() {
        strokes
            .entry((index[&l.from], index[&l.to]))
            .or_default()
            .push(i);
    }
    let pe_ix: HashMap<_, usize> = report
        .pes
        .iter()
        .enumerate()
        .map(|(i, p)| (p.pe, i))
        .collect();

    let mut s = String::with_capacity(128 * (strokes.len() + nodes.len()));
    let (w, h) = (lay.width, lay.height);
    writeln!(
        s,
        r#"<svg id="machine-svg" viewBox="0 0 {} {}" preserveAspectRatio="xMidYMid meet" font-family="Helvetica, Arial, sans-serif">"#,
        num(w),
        num(h)
    )
    .unwrap();
    s.push_str("<g id=\"machine-view\">\n");
    for (class, label, x, y, fw, fh) in &lay.frames {
        writeln!(
            s,
            r#"<rect class="frame {class}" x="{}" y="{}" width="{}" height="{}" rx="6"/>"#,
            num(*x),
            num(*y),
            num(*fw),
            num(*fh)
        )
        .unwrap();
        let (tx, ty, anchor) = if *class == "cube" {
            (x + fw - 3.0, y + fh - 3.0, "end")
        } else {
            (x + 6.0, y + 14.0, "start")
        };
        writeln!(
            s,
            r#"<text class="label {class}" x="{}" y="{}" text-anchor="{anchor}">{}</text>"#,
            num(tx),
            num(ty),
            esc(label)
        )
        .unwrap();
    }
    let mut links_json = Vec::with_capacity(strokes.len());
    s.push_str("<g id=\"machine-links\">\n");
    for (k, ((a, b), list)) in strokes.iter().enumerate() {
        let (pa, pb) = (lay.pos[*a], lay.pos[*b]);
        let (dx, dy) = (pb.0 - pa.0, pb.1 - pa.1);
        let len = (dx * dx + dy * dy).sqrt().max(1e-9);
        // Each direction to its right of travel, so the pair reads as two lanes.
        let (ox, oy) = (-dy / len * LANE, dx / len * LANE);
        let first = &topo.links()[list[0]];
        let (mut bytes, mut top_busy) = (0u64, 0u64);
        for &i in list {
            if let Some(&(b_ps, by)) = busy.get(&(i as u32)) {
                bytes += by;
                top_busy = top_busy.max(b_ps);
            }
        }
        let util = top_busy as f64 / span;
        let style = if top_busy == 0 {
            r#" class="link idle""#.to_string()
        } else {
            format!(
                r#" class="link busy" style="stroke:{};stroke-width:{}""#,
                heat(util),
                num(1.4 + 2.6 * util.min(1.0))
            )
        };
        writeln!(
            s,
            r#"<line data-k="{k}"{style} x1="{}" y1="{}" x2="{}" y2="{}"/>"#,
            num(pa.0 + ox),
            num(pa.1 + oy),
            num(pb.0 + ox),
            num(pb.1 + oy)
        )
        .unwrap();
        links_json.push(json!([
            a,
            b,
            first.kind.name(),
            first.gbps,
            list.len(),
            bytes,
            top_busy,
            (util * 1e4).round() / 1e4
        ]));
    }
    s.push_str("</g>\n<g id=\"machine-nodes\">\n");
    let mut nodes_json = Vec::with_capacity(nodes.len());
    for (i, n) in nodes.iter().enumerate() {
        let (class, r) = node_style(n);
        let (x, y) = lay.pos[i];
        let pe = match n {
            Node::Pe(p) => pe_ix.get(p).copied(),
            _ => None,
        };
        // A PE of the run is filled by its busiest engine's utilisation.
        let fill = pe.map(|k| {
            let p = &report.pes[k];
            let t = (p.end_ps - p.start_ps).max(1) as f64;
            let top = p.busy.pairs().iter().map(|b| b.1).max().unwrap_or(0);
            heat(top as f64 / t)
        });
        let ran = if pe.is_some() { " ran" } else { "" };
        let shape = if matches!(n, Node::IoNoc(_)) {
            format!(
                r#"<circle data-n="{i}" class="node {class}{ran}" cx="{}" cy="{}" r="{}"/>"#,
                num(x),
                num(y),
                num(r)
            )
        } else {
            format!(
                r#"<rect data-n="{i}" class="node {class}{ran}"{} x="{}" y="{}" width="{}" height="{}" rx="{}"/>"#,
                fill.as_ref()
                    .map(|c| format!(r#" style="fill:{c}""#))
                    .unwrap_or_default(),
                num(x - r),
                num(y - r),
                num(2.0 * r),
                num(2.0 * r),
                if class == "pe" { 2 } else { 1 }
            )
        };
        s.push_str(&shape);
        s.push('\n');
        let text = match n {
            Node::Pe(p) => Some(p.pe.to_string()),
            Node::Host => Some("host".to_string()),
            Node::Switch => Some("switch".to_string()),
            _ => None,
        };
        if let Some(t) = text {
            let ink = fill
                .as_deref()
                .filter(|c| dark(c))
                .map_or("", |_| r#" style="fill:#fff""#);
            writeln!(
                s,
                r#"<text class="nlabel {class}"{ink} x="{}" y="{}" text-anchor="middle">{t}</text>"#,
                num(x),
                num(y + if class == "pe" { 2.6 } else { 3.5 })
            )
            .unwrap();
        }
        nodes_json.push(json!([n.to_string(), class, pe.map_or(-1, |k| k as i64)]));
    }
    s.push_str("</g>\n</g>\n</svg>\n");
    let pes: Vec<Value> = report
        .pes
        .iter()
        .map(|p| {
            let busy: Vec<u64> = p.busy.pairs().iter().map(|b| b.1).collect();
            json!({
                "pe": p.pe.to_string(),
                "start": p.start_ps,
                "end": p.end_ps,
                "busy": busy,
                "hbm": p.hbm_bytes(),
                "served": p.hbm_served(),
                "remote_read": p.remote_read,
                "remote_write": p.remote_write,
                "bound": p.bound.ns,
                "bound_by": p.bound.by.to_string(),
                "sent": p.sent,
                "received": p.received,
                "flops": p.flops,
            })
        })
        .collect();
    Machine {
        svg: s,
        data: json!({"nodes": nodes_json, "links": links_json, "pes": pes}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Every part has a place of its own inside the drawing, on every shipped machine small enough to check quickly.
    #[test]
    fn no_two_parts_share_a_place() {
        for name in ["tiny", "default"] {
            let topo = Topology::builtin(name).unwrap();
            let lay = layout(&topo);
            let g = topo.graph();
            assert_eq!(lay.pos.len(), g.node_count());
            let mut seen: HashSet<(i64, i64)> = HashSet::new();
            for (ix, &(x, y)) in g.node_indices().zip(&lay.pos) {
                let n = g[ix];
                assert!(
                    x > 0.0 && y > 0.0 && x < lay.width && y < lay.height,
                    "{name}: {n} at ({x}, {y}) is outside {} x {}",
                    lay.width,
                    lay.height
                );
                assert!(
                    seen.insert(((x * 10.0).round() as i64, (y * 10.0).round() as i64)),
                    "{name}: {n} shares its place ({x}, {y})"
                );
            }
        }
    }

    #[test]
    fn labels_on_dark_fills_are_white() {
        assert!(dark(&heat(0.0)));
        assert!(!dark("#ffffff"));
        assert!(!dark(&heat(0.5)));
    }
}
