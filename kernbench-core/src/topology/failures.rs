//! Links and routers out of service, and routes around them.
//!
//! A topology file may list failed links (by the names reports print, `from
//! -> to` for one direction or `a <-> b` for both) and failed routers (every
//! link in and out of them fails). Routing keeps its dimension-order route
//! wherever that route is live; a route that would cross a failed link is
//! replaced by the shortest path over the live links (fewest hops; among
//! equals, the first the breadth-first walk meets in link order, so the
//! choice is deterministic). Such a path transits only routing nodes:
//! routers, UCIe endpoints, HBM ports, IO NOC and UCIe ports, the PCIe
//! endpoint and the system switch, never a PE, a memory or a CPU.
//!
//! A machine whose failures cut it in parts is refused when it is loaded,
//! naming the pairs that cannot reach each other.
//!
//! Degraded links stay in service with a share of their bandwidth and extra
//! latency; routes keep crossing them, and everything that reads a link's
//! figures (the simulation, the cost model, reports) sees the degraded ones.

use super::config::{Degraded, Failures, SlowPart};
use super::graph::{Fabric, Node};
use super::validate::Invalid;
use crate::Ps;
use petgraph::graph::NodeIndex;
use petgraph::visit::EdgeRef;
use petgraph::Direction;
use std::collections::{HashMap, VecDeque};

/// Most unreachable pairs an error lists.
const LISTED: usize = 8;

/// Marks the failed links of `failed` dead in `fabric`, then checks that
/// every PE, HBM slice, SRAM and CPU can still reach every other.
pub(crate) fn apply(failed: &Failures, fabric: &mut Fabric) -> Result<(), Invalid> {
    if failed.links.is_empty() && failed.routers.is_empty() {
        return Ok(());
    }
    let by_name = names(fabric);
    let node = |name: &str, path: &str| -> Result<NodeIndex, Invalid> {
        by_name.get(name.trim()).copied().ok_or_else(|| Invalid {
            path: path.to_string(),
            message: format!(
                "there is no `{}` in this machine (nodes are named as reports print them, \
                 e.g. `sip0/cube0/router(0,1)`, `sip0/cube0/ucie_e`)",
                name.trim()
            ),
        })
    };
    let mut dead = vec![false; fabric.links.len()];
    for (k, spec) in failed.links.iter().enumerate() {
        for l in links_named(fabric, &by_name, spec, &format!("failed.links[{k}]"))? {
            dead[l] = true;
        }
    }
    for (k, name) in failed.routers.iter().enumerate() {
        let path = format!("failed.routers[{k}]");
        let r = node(name, &path)?;
        if !matches!(fabric.graph[r], Node::Router { .. }) {
            return Err(Invalid {
                path,
                message: format!("`{}` is not a router", fabric.graph[r]),
            });
        }
        for dir in [Direction::Outgoing, Direction::Incoming] {
            for e in fabric.graph.edges_directed(r, dir) {
                dead[e.weight().0 as usize] = true;
            }
        }
    }
    fabric.dead = dead;
    fabric.index = by_name
        .into_values()
        .map(|i| (fabric.graph[i], i))
        .collect();
    check_connected(fabric, failed)
}

/// The nodes of `fabric` by the names reports print.
fn names(fabric: &Fabric) -> HashMap<String, NodeIndex> {
    fabric
        .graph
        .node_indices()
        .map(|i| (fabric.graph[i].to_string(), i))
        .collect()
}

/// The links `spec` names (`from -> to`, or `a <-> b` for both
/// directions); `path` is the field an error points at.
fn links_named(
    fabric: &Fabric,
    by_name: &HashMap<String, NodeIndex>,
    spec: &str,
    path: &str,
) -> Result<Vec<usize>, Invalid> {
    let node = |name: &str| -> Result<NodeIndex, Invalid> {
        by_name.get(name.trim()).copied().ok_or_else(|| Invalid {
            path: path.to_string(),
            message: format!(
                "there is no `{}` in this machine (nodes are named as reports print them, \
                 e.g. `sip0/cube0/router(0,1)`, `sip0/cube0/ucie_e`)",
                name.trim()
            ),
        })
    };
    let (a, b, both) = if let Some((a, b)) = spec.split_once("<->") {
        (a, b, true)
    } else if let Some((a, b)) = spec.split_once("->") {
        (a, b, false)
    } else {
        return Err(Invalid {
            path: path.to_string(),
            message: format!("`{spec}` is not a link: write `from -> to` or `a <-> b`"),
        });
    };
    let (a, b) = (node(a)?, node(b)?);
    let mut out = Vec::new();
    for (x, y) in [(a, b), (b, a)].into_iter().take(if both { 2 } else { 1 }) {
        for e in fabric.graph.edges_connecting(x, y) {
            out.push(e.weight().0 as usize);
        }
    }
    if out.is_empty() {
        return Err(Invalid {
            path: path.to_string(),
            message: format!(
                "no link joins `{}` and `{}`",
                fabric.graph[a], fabric.graph[b]
            ),
        });
    }
    Ok(out)
}

/// Checks that field `field` of the entry at `path` is a share in (0, 1]
/// of `of`; `note` follows the message.
fn share(path: &str, field: &str, value: f64, of: &str, note: &str) -> Result<(), Invalid> {
    if value > 0.0 && value <= 1.0 {
        return Ok(());
    }
    Err(Invalid {
        path: format!("{path}.{field}"),
        message: format!("{value} is not a share of {of}: give a number in (0, 1]{note}"),
    })
}

/// Checks that field `field` of the entry at `path` is a delay of 0 to
/// 1e9 ns; `what` names it in the message.
fn delay_ns(path: &str, field: &str, value: f64, what: &str) -> Result<(), Invalid> {
    if (0.0..=1e9).contains(&value) {
        return Ok(());
    }
    Err(Invalid {
        path: format!("{path}.{field}"),
        message: format!("{value} is not {what}: give ns from 0 to 1e9"),
    })
}

/// Lowers the figures of the links `degraded` names in `fabric`.
pub(crate) fn degrade(degraded: &Degraded, fabric: &mut Fabric) -> Result<(), Invalid> {
    if degraded.is_empty() {
        return Ok(());
    }
    let by_name = names(fabric);
    for (k, d) in degraded.links.iter().enumerate() {
        let path = format!("degraded.links[{k}]");
        share(
            &path,
            "bandwidth",
            d.bandwidth,
            "the link's bandwidth",
            " (a link that carries nothing is a failed link)",
        )?;
        delay_ns(
            &path,
            "extra_latency_ns",
            d.extra_latency_ns,
            "an extra latency",
        )?;
        let extra = (d.extra_latency_ns * 1000.0).round() as Ps;
        for l in links_named(fabric, &by_name, &d.link, &format!("{path}.link"))? {
            let link = &mut fabric.links[l];
            link.gbps *= d.bandwidth;
            link.latency_ps = link.latency_ps.saturating_add(extra);
        }
    }
    Ok(())
}

/// Whether `n` may carry a rerouted transfer through it.
fn transit(n: &Node) -> bool {
    matches!(
        n,
        Node::Router { .. }
            | Node::Ucie { .. }
            | Node::HbmPort { .. }
            | Node::IoNoc(_)
            | Node::IoUcie { .. }
            | Node::PcieEp(_)
            | Node::Switch
    )
}

/// Nodes reached from `from` over live links (`dir`: forward or backward),
/// passing only through routing nodes.
fn reach(fabric: &Fabric, from: NodeIndex, dir: Direction) -> Vec<bool> {
    let g = &fabric.graph;
    let mut seen = vec![false; g.node_count()];
    let mut queue = VecDeque::from([from]);
    seen[from.index()] = true;
    while let Some(n) = queue.pop_front() {
        if n != from && !transit(&g[n]) {
            continue;
        }
        for e in g.edges_directed(n, dir) {
            if fabric.dead[e.weight().0 as usize] {
                continue;
            }
            let m = if dir == Direction::Outgoing {
                e.target()
            } else {
                e.source()
            };
            if !seen[m.index()] {
                seen[m.index()] = true;
                queue.push_back(m);
            }
        }
    }
    seen
}

/// Every PE, HBM slice, SRAM and CPU must reach, and be reached from, the
/// first PE (and so every other).
fn check_connected(fabric: &Fabric, failed: &Failures) -> Result<(), Invalid> {
    let g = &fabric.graph;
    let endpoint = |i: NodeIndex| {
        matches!(
            g[i],
            Node::Pe(_) | Node::HbmSlice(_) | Node::Sram(_) | Node::MCpu(_) | Node::IoCpu(_)
        )
    };
    let endpoints = g.node_indices().filter(|&i| endpoint(i)).count();
    // The part of the machine to name the others against: the first PE
    // that reaches most of it (one stranded PE must not be the reference).
    let mut best: Option<(usize, NodeIndex, Vec<bool>, Vec<bool>)> = None;
    for pe in g.node_indices().filter(|&i| matches!(g[i], Node::Pe(_))) {
        let fwd = reach(fabric, pe, Direction::Outgoing);
        let back = reach(fabric, pe, Direction::Incoming);
        let both = g
            .node_indices()
            .filter(|&i| endpoint(i) && fwd[i.index()] && back[i.index()])
            .count();
        if best.as_ref().is_none_or(|b| both > b.0) {
            best = Some((both, pe, fwd, back));
        }
        if 2 * both > endpoints {
            break;
        }
    }
    let Some((_, first, fwd, back)) = best else {
        return Ok(());
    };
    let mut lost: Vec<String> = g
        .node_indices()
        .filter(|&i| endpoint(i))
        .filter(|&i| !fwd[i.index()] || !back[i.index()])
        .map(|i| {
            let how = match (fwd[i.index()], back[i.index()]) {
                (false, false) => "cannot reach or be reached from",
                (false, true) => "cannot be reached from",
                _ => "cannot reach",
            };
            format!("{} {how} {}", g[i], g[first])
        })
        .collect();
    if lost.is_empty() {
        return Ok(());
    }
    let more = lost.len().saturating_sub(LISTED);
    lost.truncate(LISTED);
    let mut message = format!(
        "the failed links and routers cut the machine in parts: {}",
        lost.join("; ")
    );
    if more > 0 {
        message.push_str(&format!("; and {more} more"));
    }
    let path = if failed.links.is_empty() {
        "failed.routers"
    } else {
        "failed.links"
    };
    Err(Invalid {
        path: path.to_string(),
        message,
    })
}

/// The live path of fewest hops from `src` to `dst`, as link ids, when there is one.
pub(crate) fn live_path(fabric: &Fabric, src: Node, dst: Node) -> Option<Vec<u32>> {
    fabric.searches.bump(1);
    let g = &fabric.graph;
    let (&s, &d) = (fabric.index.get(&src)?, fabric.index.get(&dst)?);
    let mut via: Vec<Option<(NodeIndex, u32)>> = vec![None; g.node_count()];
    let mut seen = vec![false; g.node_count()];
    seen[s.index()] = true;
    let mut queue = VecDeque::from([s]);
    while let Some(n) = queue.pop_front() {
        if n == d {
            break;
        }
        if n != s && !transit(&g[n]) {
            continue;
        }
        let mut next: Vec<_> = g
            .edges_directed(n, Direction::Outgoing)
            .filter(|e| !fabric.dead[e.weight().0 as usize])
            .map(|e| (e.weight().0, e.target()))
            .collect();
        // Link order, not the graph's adjacency order: the choice among
        // equal paths is the one a reader can predict.
        next.sort_unstable();
        for (link, m) in next {
            if !seen[m.index()] {
                seen[m.index()] = true;
                via[m.index()] = Some((n, link));
                queue.push_back(m);
            }
        }
    }
    if !seen[d.index()] {
        return None;
    }
    let mut links = Vec::new();
    let mut at = d;
    while at != s {
        let (prev, link) = via[at.index()]?;
        links.push(link);
        at = prev;
    }
    links.reverse();
    Some(links)
}

/// Checks the slow parts of a machine: each names PEs it has, with a speed
/// in (0, 1] and a start delay from 0 to a second.
pub(crate) fn check_slow(slow: &[SlowPart], fabric: &Fabric) -> Result<(), Invalid> {
    for (k, part) in slow.iter().enumerate() {
        let path = format!("slow[{k}]");
        if part.scope().is_none() {
            return Err(Invalid {
                path: format!("{path}.at"),
                message: format!(
                    "`{}` is not a part of the machine: write `sipS`, `sipS/cubeC` or \
                     `sipS/cubeC/peP`",
                    part.at
                ),
            });
        }
        let covers_any = fabric.graph.node_weights().any(|n| match n {
            Node::Pe(pe) => part.covers(*pe),
            _ => false,
        });
        if !covers_any {
            return Err(Invalid {
                path: format!("{path}.at"),
                message: format!("this machine has no `{}`", part.at),
            });
        }
        share(&path, "speed", part.speed, "its speed", "")?;
        delay_ns(
            &path,
            "start_delay_ns",
            part.start_delay_ns,
            "a start delay",
        )?;
    }
    Ok(())
}
