//! nccl-tests style sweeps and tables.

use crate::cost::model_ns;
use crate::registry::Algorithm;
use crate::run::{run_on, RedOp, RunError, RunSpec};
use kernbench_core::topology::Topology;
use kernbench_core::{DType, PeId};
use serde::Serialize;
use std::fmt::Write as _;

/// One row of the table.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Row {
    /// Algorithm.
    pub algo: String,
    /// Bytes of one rank's vector.
    pub size: u64,
    /// Elements of one rank's vector.
    pub count: usize,
    /// Element type.
    pub dtype: String,
    /// Reduction (`none` for collectives that do not reduce).
    pub redop: String,
    /// Root rank (-1 when there is none).
    pub root: i64,
    /// Simulated time, us.
    pub time_us: f64,
    /// size / time, GB/s.
    pub algbw: f64,
    /// algbw times the collective's bus factor, GB/s.
    pub busbw: f64,
    /// Elements that differ from the exact result (-1 when the data was not checked).
    pub wrong: i64,
    /// Alpha-beta model time, us.
    pub model_us: f64,
    /// Ranks.
    pub ranks: usize,
    /// Simulator events.
    pub events: u64,
}

/// Sizes from `b` to `e` bytes, multiplied by `f` each step (nccl-tests' `-b -e -f`).
pub fn sizes(b: u64, e: u64, f: u64) -> Vec<u64> {
    let mut v = Vec::new();
    let mut s = b.max(1);
    while s <= e {
        v.push(s);
        if f <= 1 {
            s += b.max(1);
        } else {
            s = s.saturating_mul(f);
        }
    }
    v
}

/// Parses `64`, `8K`, `1M`, `2G` (binary multiples) into bytes.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mul) = match s.char_indices().last()? {
        (i, 'K' | 'k') => (&s[..i], 1u64 << 10),
        (i, 'M' | 'm') => (&s[..i], 1 << 20),
        (i, 'G' | 'g') => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>().ok().map(|n| n * mul)
}

/// Measures one size.
#[allow(clippy::too_many_arguments)]
pub fn measure(
    topo: &Topology,
    algo: &Algorithm,
    pes: &[PeId],
    bytes: u64,
    dtype: DType,
    op: RedOp,
    root: usize,
    data: bool,
) -> Result<Row, RunError> {
    let count = (bytes / dtype.size() as u64).max(1) as usize;
    let spec = RunSpec {
        count,
        dtype,
        op,
        root,
        data,
        trace: false,
    };
    let r = run_on(topo, algo, pes, &spec)?;
    Ok(row_of(topo, algo, pes, &spec, &r))
}

/// The table row of a finished run.
pub fn row_of(
    topo: &Topology,
    algo: &Algorithm,
    pes: &[PeId],
    spec: &RunSpec,
    r: &crate::RunResult,
) -> Row {
    let rep = &r.outcome.report;
    let size = spec.count as u64 * spec.dtype.size() as u64;
    let t_ns = rep.sim_ns().max(1e-3);
    let algbw = size as f64 / t_ns;
    let c = algo.collective;
    Row {
        algo: algo.name.clone(),
        size,
        count: spec.count,
        dtype: spec.dtype.name().to_string(),
        redop: if c.reduces() {
            spec.op.name().to_string()
        } else {
            "none".to_string()
        },
        root: if c == crate::Collective::Broadcast {
            spec.root as i64
        } else {
            -1
        },
        time_us: t_ns / 1000.0,
        algbw,
        busbw: algbw * c.busbw_factor(pes.len()),
        wrong: if spec.data { r.wrong as i64 } else { -1 },
        model_us: model_ns(topo, algo, pes, size as f64) / 1000.0,
        ranks: pes.len(),
        events: rep.events,
    }
}

/// The table header, as nccl-tests prints it plus the model column.
pub fn header() -> String {
    format!(
        "{:>12} {:>12} {:>6} {:>6} {:>5} {:>11} {:>8} {:>8} {:>7} {:>11}\n{:>12} {:>12} {:>6} {:>6} {:>5} {:>11} {:>8} {:>8} {:>7} {:>11}",
        "size", "count", "type", "redop", "root", "time", "algbw", "busbw", "#wrong", "model",
        "(B)", "(elements)", "", "", "", "(us)", "(GB/s)", "(GB/s)", "", "(us)"
    )
}

/// One formatted row.
pub fn format_row(r: &Row) -> String {
    let wrong = if r.wrong < 0 {
        "N/A".to_string()
    } else {
        r.wrong.to_string()
    };
    format!(
        "{:>12} {:>12} {:>6} {:>6} {:>5} {:>11.2} {:>8.2} {:>8.2} {:>7} {:>11.2}",
        r.size, r.count, r.dtype, r.redop, r.root, r.time_us, r.algbw, r.busbw, wrong, r.model_us
    )
}

/// A whole table.
pub fn format_table(rows: &[Row]) -> String {
    let mut s = header();
    s.push('\n');
    for r in rows {
        writeln!(s, "{}", format_row(r)).unwrap();
    }
    s
}
