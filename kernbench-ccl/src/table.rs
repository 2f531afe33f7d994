//! nccl-tests style sweeps and tables.

use crate::cost::model;
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
    /// The model's limiting term: `latency`, `link FROM -> TO` (the link
    /// the model found busiest), `credit window`, `HBM` or `issue`; empty
    /// when no model is known.
    #[serde(default)]
    pub bound: String,
    /// Empty when the model lands within [`MODEL_TOLERANCE`](crate::cost::MODEL_TOLERANCE) of the
    /// simulated time; otherwise their ratio and what the model leaves out.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
    /// Ranks.
    pub ranks: usize,
    /// Simulator events.
    pub events: u64,
    /// When the tuner chose the algorithm (`--algos auto`): the runner-up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tuned: Option<Tuned>,
}

/// What the tuner weighed for a row it chose.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Tuned {
    /// The algorithm with the second-best model time (`None` when there
    /// was one candidate).
    pub runner_up: Option<String>,
    /// Its model time, us.
    pub runner_up_us: Option<f64>,
    /// Candidates the model compared.
    pub candidates: usize,
}

impl Tuned {
    /// What `pick` weighed.
    pub fn of(pick: &crate::tune::Pick) -> Tuned {
        Tuned {
            runner_up: pick.runner_up.as_ref().map(|p| p.algo.name.clone()),
            runner_up_us: pick.runner_up.as_ref().map(|p| p.estimate.ns / 1000.0),
            candidates: pick.candidates,
        }
    }
}

/// Most sizes one sweep may have.
pub const MAX_SIZES: usize = 1024;

/// Sizes from `b` to `e` bytes, multiplied by `f` each step (nccl-tests' `-b -e -f`;
/// `f <= 1` steps by `b`). More than [`MAX_SIZES`] sizes, or `b > e`, is an error.
pub fn sizes(b: u64, e: u64, f: u64) -> Result<Vec<u64>, String> {
    let b = b.max(1);
    if b > e {
        return Err(format!(
            "the smallest size {b} is larger than the largest {e}"
        ));
    }
    let mut v = Vec::new();
    let mut s = b;
    while s <= e {
        if v.len() == MAX_SIZES {
            return Err(format!(
                "-b {b} -e {e} -f {f} gives more than {MAX_SIZES} sizes; raise the factor or the smallest size"
            ));
        }
        v.push(s);
        let next = if f <= 1 {
            s.checked_add(b)
        } else {
            s.checked_mul(f)
        };
        match next {
            Some(n) => s = n,
            None => break,
        }
    }
    Ok(v)
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
    num.parse::<u64>().ok().and_then(|n| n.checked_mul(mul))
}

/// How every size of a table runs: all of a run but its size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Element type.
    pub dtype: DType,
    /// Reduction (ignored by collectives that do not reduce).
    pub op: RedOp,
    /// Root rank (broadcast, reduce, gather).
    pub root: usize,
    /// Execute and check the data (timing is the same either way).
    pub data: bool,
    /// How IPCQ messages cross the fabric.
    pub fabric: kernbench_core::sim::FabricModel,
    /// Which of one instant's events the engine handles first.
    pub ties: kernbench_core::sim::TieOrder,
}

impl Settings {
    /// The run of `bytes` per rank: as many elements of the type as fit,
    /// at least one; no trace, no memory limit beyond the machine's.
    pub fn spec(&self, bytes: u64) -> RunSpec {
        RunSpec {
            fabric: self.fabric,
            ties: self.ties,
            max_memory: None,
            progress: Default::default(),
            count: (bytes / self.dtype.size() as u64).max(1) as usize,
            dtype: self.dtype,
            op: self.op,
            root: self.root,
            data: self.data,
            trace: false,
            why: false,
        }
    }
}

/// Measures one size: `bytes` per rank, run as `how` says.
pub fn measure(
    topo: &Topology,
    algo: &Algorithm,
    pes: &[PeId],
    bytes: u64,
    how: &Settings,
) -> Result<Row, RunError> {
    let spec = how.spec(bytes);
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
    let est = model(topo, algo, pes, size as f64);
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
        root: if c.has_root() { spec.root as i64 } else { -1 },
        time_us: t_ns / 1000.0,
        algbw,
        busbw: algbw * c.busbw_factor(pes.len()),
        wrong: if spec.data { r.wrong as i64 } else { -1 },
        model_us: est.ns / 1000.0,
        note: est.note(t_ns),
        bound: est.bound.map_or_else(String::new, |b| b.to_string()),
        ranks: pes.len(),
        events: rep.events,
        tuned: None,
    }
}

/// Width of the algorithm columns of a tuned table.
const ALGO_W: usize = 27;

/// The table header, as nccl-tests prints it plus the model and bound columns.
pub fn header() -> String {
    format!(
        "{:>12} {:>12} {:>6} {:>6} {:>5} {:>11} {:>8} {:>8} {:>7} {:>11}  {}\n{:>12} {:>12} {:>6} {:>6} {:>5} {:>11} {:>8} {:>8} {:>7} {:>11}",
        "size", "count", "type", "redop", "root", "time", "algbw", "busbw", "#wrong", "model", "bound",
        "(B)", "(elements)", "", "", "", "(us)", "(GB/s)", "(GB/s)", "", "(us)"
    )
}

/// The header of a table whose algorithm the tuner chose at each size:
/// the algorithm that ran and the runner-up with its model time first.
pub fn header_tuned() -> String {
    let mut lines = header().lines().map(str::to_string).collect::<Vec<_>>();
    lines[0] = format!(
        "{:<ALGO_W$} {:<ALGO_W$} {:>11} {}",
        "algorithm", "runner-up", "model", lines[0]
    );
    lines[1] = format!(
        "{:<ALGO_W$} {:<ALGO_W$} {:>11} {}",
        "", "", "(us)", lines[1]
    );
    lines.join("\n")
}

/// One formatted row (with the tuner's columns first when it chose the algorithm).
pub fn format_row(r: &Row) -> String {
    let wrong = if r.wrong < 0 {
        "N/A".to_string()
    } else {
        r.wrong.to_string()
    };
    let row = format!(
        "{:>12} {:>12} {:>6} {:>6} {:>5} {:>11.2} {:>8.2} {:>8.2} {:>7} {:>11.2}  {}",
        r.size,
        r.count,
        r.dtype,
        r.redop,
        r.root,
        r.time_us,
        r.algbw,
        r.busbw,
        wrong,
        r.model_us,
        r.bound
    );
    let row = if r.note.is_empty() {
        row.trim_end().to_string()
    } else {
        format!("{}  ({})", row.trim_end(), r.note)
    };
    match &r.tuned {
        None => row,
        Some(t) => format!(
            "{:<ALGO_W$} {:<ALGO_W$} {:>11} {row}",
            r.algo,
            t.runner_up.as_deref().unwrap_or("-"),
            t.runner_up_us
                .map_or_else(|| "-".to_string(), |u| format!("{u:.2}"))
        ),
    }
}

/// A whole table (the tuned layout when any row was chosen by the tuner).
pub fn format_table(rows: &[Row]) -> String {
    let mut s = if rows.iter().any(|r| r.tuned.is_some()) {
        header_tuned()
    } else {
        header()
    };
    s.push('\n');
    for r in rows {
        writeln!(s, "{}", format_row(r)).unwrap();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_nccl_tests_and_refuse_runaway_sweeps() {
        assert_eq!(sizes(8, 64, 2).unwrap(), vec![8, 16, 32, 64]);
        assert_eq!(sizes(8, 24, 1).unwrap(), vec![8, 16, 24]);
        assert_eq!(sizes(0, 1, 2).unwrap(), vec![1]);
        assert!(sizes(1, 1 << 30, 1).is_err());
        assert!(sizes(64, 8, 2).is_err());
        assert_eq!(sizes(1 << 62, u64::MAX, 4).unwrap(), vec![1 << 62]);
        assert_eq!(parse_size("8K"), Some(8192));
        assert_eq!(parse_size("2M"), Some(2 << 20));
        assert_eq!(parse_size("x"), None);
        // Past u64 is not a size, not an overflow.
        assert_eq!(parse_size("99999999999999999G"), None);
        assert_eq!(parse_size("16777215G"), Some(16777215 << 30));
    }
}
