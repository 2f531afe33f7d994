//! The deterministic text form of a command graph, meant for review.

use super::*;
use std::fmt::Write as _;

/// Column at which the source location starts (longer lines push it right).
const LOC_COLUMN: usize = 62;

impl CommandGraph {
    /// The header line: `kernel name(params) grid=[..] pid=[..]`.
    pub fn header_line(&self) -> String {
        let h = &self.header;
        format!(
            "kernel {}({}) grid={} pid={}",
            h.kernel,
            h.params.join(", "),
            list(&h.grid),
            list(&h.pid)
        )
    }

    /// One command as a line of the text form (without the location).
    pub fn command_text(&self, id: CmdId) -> String {
        let n = self.node(id);
        let mut s = format!("{id} = ");
        match &n.cmd {
            Command::Load { src, mask: None } => write!(s, "load {src} : {}", n.ty),
            Command::Load { src, mask: Some(m) } => write!(
                s,
                "load {src} mask {} other {:?} : {}",
                m.mask, m.other, n.ty
            ),
            Command::Stream { src } => write!(s, "stream {src} : {}", n.ty),
            Command::Store { dst, value, mask } => {
                write!(s, "store {dst} {value}").unwrap();
                match mask {
                    Some(m) => write!(s, " mask {m}"),
                    None => Ok(()),
                }
            }
            Command::Full { value } => write!(s, "full {value:?} : {}", n.ty),
            Command::Dot {
                a,
                b,
                acc,
                epilogue,
            } => {
                write!(s, "dot {a}, {b}").unwrap();
                if let Some(c) = acc {
                    write!(s, " + {c}").unwrap();
                }
                if !epilogue.is_empty() {
                    let e: Vec<String> = epilogue.iter().map(|e| e.to_string()).collect();
                    write!(s, " epilogue[{}]", e.join(", ")).unwrap();
                }
                write!(s, " : {}", n.ty)
            }
            Command::Math { op, args } => {
                let a: Vec<String> = args.iter().map(|a| a.to_string()).collect();
                write!(s, "{} {} : {}", op.name(), a.join(", "), n.ty)
            }
            Command::Reduce { op, x, axis } => {
                write!(s, "{} {x}, axis={axis} : {}", op.name(), n.ty)
            }
            Command::Softmax { x, axis } => write!(s, "softmax {x}, axis={axis} : {}", n.ty),
            Command::Reshape { x } => write!(s, "reshape {x} : {}", n.ty),
            Command::Broadcast { x } => write!(s, "broadcast_to {x} : {}", n.ty),
            Command::Trans { x } => write!(s, "trans {x} : {}", n.ty),
            Command::Arange { start } => {
                let end = *start + n.ty.elems() as i64;
                write!(s, "arange {start}..{end} : {}", n.ty)
            }
            Command::Send { peer, value } => write!(s, "send {peer} {value} : {} B", n.ty.bytes()),
            Command::Recv { peer, is_async } => {
                let name = if *is_async { "recv_async" } else { "recv" };
                write!(s, "{name} {peer} : {}", n.ty)
            }
            Command::Wait { future } => write!(s, "wait {future} : {}", n.ty),
        }
        .unwrap();
        let order: Vec<String> = self
            .deps(id)
            .into_iter()
            .filter(|(_, k)| *k == DepKind::Order)
            .map(|(c, _)| c.to_string())
            .collect();
        if !order.is_empty() {
            write!(s, " after {}", order.join(", ")).unwrap();
        }
        s
    }

    /// The whole text form: the header, then one command a line with its location last.
    pub fn to_text(&self) -> String {
        let mut out = self.header_line();
        out.push('\n');
        for (id, n) in self.nodes() {
            let body = format!("  {}", self.command_text(id));
            let pad = LOC_COLUMN.saturating_sub(body.len()).max(1);
            writeln!(
                out,
                "{body}{:pad$}@ {}:{}",
                "",
                n.loc.file_name(),
                n.loc.line
            )
            .unwrap();
        }
        out
    }
}

fn list(v: &[u32]) -> String {
    let items: Vec<String> = v.iter().map(|x| x.to_string()).collect();
    format!("[{}]", items.join(","))
}

impl fmt::Display for CommandGraph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}
