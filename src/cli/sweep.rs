//! `kernbench sweep` and `kernbench merge`: collective algorithms over a range
//! of sizes, run in parallel (or in shards on several machines), written as
//! CSV, JSON and a bus-bandwidth plot.

use super::args::{self, check};
use super::{out, usage, Fail, Result};
use crate::html::Page;
use crate::svg::{busbw_svg, series_of};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use kernbench_ccl::run::{ranks, run_on, RunSpec};
use kernbench_ccl::table::{
    format_row, header, header_tuned, measure, sizes, Row, Settings, Tuned,
};
use kernbench_ccl::{Algorithm, Collective, RedOp, Registry};
use kernbench_core::DType;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{IsTerminal as _, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

/// Flags of `kernbench sweep`.
#[derive(Args, Debug)]
#[command(
    after_help = "Points are (algorithm, size) pairs, numbered algorithm by algorithm in size order; \
rows are written in that order whatever the thread timing, so the files are the same bytes for any -j.\n\n\
Every finished point is saved at once in DIR/sweep.part-K-of-N.json (1-of-1 without --shard), \
replaced atomically, so a sweep stopped at any moment keeps the points it finished: \
run it again with --resume to do only the rest. Without --resume a sweep starts over.\n\n\
Examples:\n  kernbench sweep --collective all_reduce --topology tiny -b 64K -e 4M -f 2 --out sweep-tiny\n  \
kernbench sweep --collective all_reduce --algos ring_allreduce,tree_allreduce --out out --shard 1/2\n  \
kernbench sweep --collective all_reduce --topology tiny --out sweep-tiny --resume\n  \
kernbench merge out"
)]
pub struct SweepArgs {
    /// The collective: all_reduce, reduce_scatter, all_gather, broadcast, reduce, gather, all_to_all.
    #[arg(long)]
    pub collective: String,
    /// Registry algorithms (comma-separated); every algorithm of the
    /// collective when absent. `auto` adds the tuner: at each size the
    /// algorithm the cost model predicts fastest, among the others given
    /// (or every algorithm of the collective that runs on all the PEs when
    /// `auto` comes alone); they all run, so the plot shows the tuner's
    /// picks beside the best simulated busbw at each size.
    #[arg(long, short = 'a', value_delimiter = ',')]
    pub algos: Vec<String>,
    /// A topology file, or a built-in name (default, tiny, large); the embedded default when absent.
    #[arg(long, value_name = "FILE")]
    pub topology: Option<String>,
    /// Algorithm registry file; the shipped configs/ccl.yaml when absent.
    #[arg(long, value_name = "FILE")]
    pub registry: Option<PathBuf>,
    /// Smallest size in bytes per rank (K, M, G suffixes).
    #[arg(short = 'b', long = "minbytes", default_value = "64K", value_parser = args::size)]
    pub min: u64,
    /// Largest size in bytes per rank.
    #[arg(short = 'e', long = "maxbytes", default_value = "4M", value_parser = args::size)]
    pub max: u64,
    /// Multiplication factor between sizes.
    #[arg(short = 'f', long = "stepfactor", default_value_t = 2)]
    pub factor: u64,
    /// Element type: float, half, bfloat16, int32 (or f32, f16, bf16, i32).
    #[arg(short = 'd', long = "datatype", default_value = "float", value_parser = args::dtype)]
    pub dtype: DType,
    /// Reduction: sum, max, min.
    #[arg(short = 'o', long = "op", default_value = "sum", value_parser = args::redop)]
    pub op: RedOp,
    /// Root rank (broadcast, reduce, gather).
    #[arg(short = 'r', long, default_value_t = 0)]
    pub root: usize,
    /// Time only; do not execute and check the data.
    #[arg(long)]
    pub no_check: bool,
    /// How IPCQ messages cross the fabric: `messages` (O(1) events a
    /// message, the default) or `slots` (every ring slot its own events; the reference).
    #[arg(long, default_value = "messages")]
    pub fabric: kernbench_core::sim::FabricModel,
    /// Which of one instant's events the engine handles first: `scheduled`
    /// (in the order they were scheduled, the default), `reversed` (the
    /// last scheduled first) or `ranked` (op completions first, then by PE,
    /// whenever each was scheduled). Where two of them ask for one link or
    /// HBM pseudo-channel the first handled is served first; running more
    /// than one shows how much a result depends on that order.
    #[arg(long, default_value = "scheduled")]
    pub ties: kernbench_core::sim::TieOrder,
    /// Output folder (created if needed).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Run only shard K of N (1-based): the points whose index i has i % N == K-1;
    /// its rows go to DIR/sweep.part-K-of-N.json for `kernbench merge`.
    #[arg(long, value_name = "K/N", value_parser = shard)]
    pub shard: Option<(usize, usize)>,
    /// Continue the sweep whose finished points DIR/sweep.part-K-of-N.json
    /// holds, running only the points it lacks; it must be the same sweep
    /// (collective, topology, algorithms, sizes, type, fabric, tie order).
    #[arg(long)]
    pub resume: bool,
    /// Run at most K points this time, then stop with them saved; finish with --resume.
    #[arg(long, value_name = "K")]
    pub stop_after: Option<usize>,
    /// Worker threads; the number of cores when absent.
    #[arg(long, short = 'j', value_name = "J")]
    pub jobs: Option<usize>,
    /// No progress bar (it is also hidden when stderr is not a terminal).
    #[arg(long, short = 'q')]
    pub quiet: bool,
    #[command(flatten)]
    pub html: super::html::HtmlArgs,
    /// With --html: the point whose run the machine, timeline and bottlenecks
    /// show, `ALGO@SIZE` (e.g. ring_allreduce@1M); the first algorithm at the
    /// largest size when absent. It runs once more, with spans kept.
    #[arg(
        long,
        value_name = "ALGO@SIZE",
        requires = "html",
        help_heading = "HTML report"
    )]
    pub html_point: Option<String>,
}

/// Flags of `kernbench merge`.
#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  kernbench merge out\n  kernbench merge a/sweep.part-1-of-2.json b/sweep.part-2-of-2.json --out merged"
)]
pub struct MergeArgs {
    /// A folder holding sweep.part-K-of-N.json files, or the part files themselves.
    #[arg(required = true, value_name = "DIR|FILES")]
    pub paths: Vec<PathBuf>,
    /// Where to write sweep.csv, sweep.json and busbw.svg; the folder given (or of the first file) when absent.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

fn shard(s: &str) -> std::result::Result<(usize, usize), String> {
    let bad = || format!("`{s}`: write K/N with 1 <= K <= N, e.g. 1/4");
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let (k, n) = (
        k.trim().parse::<usize>().map_err(|_| bad())?,
        n.trim().parse::<usize>().map_err(|_| bad())?,
    );
    if k == 0 || n == 0 || k > n {
        return Err(bad());
    }
    Ok((k, n))
}

/// One row of a sweep as the files hold it.
pub type SweepRow = Row;

/// Most points one sweep may have (algorithms times sizes).
pub const MAX_POINTS: usize = 1 << 16;

/// Largest part file `merge` and `--resume` read.
const MAX_PART_BYTES: usize = 256 << 20;

/// What a sweep is: the same in every part of a sharded one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Plan {
    collective: String,
    topology: String,
    algos: Vec<String>,
    sizes: Vec<u64>,
    dtype: String,
    op: String,
    root: usize,
    checked: bool,
    /// The fabric model (empty in files of older versions).
    #[serde(default)]
    fabric: String,
    /// The tie order; absent when `scheduled` (as in every file before the
    /// choice was offered).
    #[serde(default = "scheduled_ties", skip_serializing_if = "is_scheduled")]
    ties: String,
    /// FNV-1a hash of the topology's configuration, so that two files of one
    /// name but different figures are told apart.
    #[serde(default)]
    topology_hash: String,
    /// FNV-1a hash of the algorithms' registry entries (kernel, IPCQ, message size).
    #[serde(default)]
    algorithms_hash: String,
    /// With `--algos auto`: the tuner's pick at each size, in size order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tuned: Vec<Choice>,
}

fn scheduled_ties() -> String {
    kernbench_core::sim::TieOrder::Scheduled.name().to_string()
}

fn is_scheduled(ties: &str) -> bool {
    ties == kernbench_core::sim::TieOrder::Scheduled.name()
}

/// The tuner's pick at one size of a sweep.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Choice {
    /// The algorithm the model predicts fastest.
    algo: String,
    /// The runner-up.
    #[serde(flatten)]
    tuned: Tuned,
}

/// FNV-1a, 64 bits: a hash that stays the same across runs and builds.
fn fnv1a(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn hash_of(v: &impl Serialize) -> Result<String> {
    Ok(fnv1a(&serde_json::to_vec(v).map_err(usage)?))
}

/// Shortens a value for an error message.
fn brief(s: String) -> String {
    if s.len() <= 120 {
        s
    } else {
        let cut = (0..=117)
            .rev()
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(0);
        format!("{}...", &s[..cut])
    }
}

impl Plan {
    fn points(&self) -> usize {
        self.algos.len().saturating_mul(self.sizes.len())
    }

    fn title(&self) -> String {
        format!(
            "{} busbw on {} ({})",
            self.collective, self.topology, self.dtype
        )
    }

    /// The first field in which two plans differ: its name and both values.
    fn difference(&self, other: &Plan) -> Option<(&'static str, String, String)> {
        macro_rules! field {
            ($($f:ident: $what:literal),*) => {$(
                if self.$f != other.$f {
                    return Some(($what, brief(format!("{:?}", self.$f)), brief(format!("{:?}", other.$f))));
                }
            )*};
        }
        field!(
            collective: "collectives",
            topology: "topologies",
            topology_hash: "topology figures (hashes)",
            algos: "algorithms",
            algorithms_hash: "algorithm settings (hashes)",
            sizes: "sizes",
            dtype: "element types",
            op: "reductions",
            root: "roots",
            checked: "data checks",
            fabric: "fabric models",
            ties: "tie orders",
            tuned: "tuner picks"
        );
        None
    }

    /// Checks a plan read from a file before anything is sized by it.
    fn check(&self, file: &Path) -> Result<()> {
        if self.points() == 0 || self.points() > MAX_POINTS {
            return Err(usage(format!(
                "{}: a sweep of {} point(s); a sweep has 1 to {MAX_POINTS}",
                file.display(),
                self.points()
            )));
        }
        let stray = self.tuned.iter().find(|c| !self.algos.contains(&c.algo));
        if !self.tuned.is_empty() && self.tuned.len() != self.sizes.len() || stray.is_some() {
            return Err(usage(format!(
                "{}: the tuner's picks do not match the sweep's sizes and algorithms",
                file.display()
            )));
        }
        Ok(())
    }

    /// The tuner's rows: at each size, the row of the algorithm it picked,
    /// marked with what it weighed.
    fn tuned_rows(&self, rows: &[SweepRow]) -> Vec<SweepRow> {
        // Rows come algorithm by algorithm in size order.
        self.tuned
            .iter()
            .enumerate()
            .filter_map(|(j, c)| {
                let r = rows.iter().filter(|r| r.algo == c.algo).nth(j)?;
                Some(Row {
                    tuned: Some(c.tuned.clone()),
                    ..r.clone()
                })
            })
            .collect()
    }
}

/// One point of a part file.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Entry {
    index: usize,
    row: SweepRow,
}

/// A part file: `sweep.part-K-of-N.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Part {
    shard: usize,
    of: usize,
    plan: Plan,
    entries: Vec<Entry>,
}

impl Part {
    /// Checks a part read from `file` and returns its rows by point index.
    fn rows(&self, file: &Path) -> Result<BTreeMap<usize, SweepRow>> {
        self.plan.check(file)?;
        let (k, n, points) = (self.shard, self.of, self.plan.points());
        if n == 0 || n > points || k == 0 || k > n {
            return Err(usage(format!(
                "{}: part {k} of {n} does not exist in a sweep of {points} point(s)",
                file.display()
            )));
        }
        let mut rows = BTreeMap::new();
        for e in &self.entries {
            if e.index >= points || e.index % n != k - 1 {
                return Err(usage(format!(
                    "{}: point {} does not belong to part {k} of {n}",
                    file.display(),
                    e.index
                )));
            }
            if rows.insert(e.index, e.row.clone()).is_some() {
                return Err(usage(format!(
                    "{}: point {} appears twice",
                    file.display(),
                    e.index
                )));
            }
        }
        Ok(rows)
    }

    /// Reads a part file.
    fn read(file: &Path) -> Result<Part> {
        let text = kernbench_core::input::read_limited(file, MAX_PART_BYTES)
            .map_err(|e| usage(format!("{}: {e}", file.display())))?;
        serde_json::from_str(&text)
            .map_err(|e| usage(format!("{}: not a sweep part file: {e}", file.display())))
    }
}

fn part_name(k: usize, n: usize) -> String {
    format!("sweep.part-{k}-of-{n}.json")
}

/// The collective `--collective` (or a tuned run's NAME) names.
pub(crate) fn collective(name: &str) -> Result<Collective> {
    Collective::parse(name).ok_or_else(|| {
        let names: Vec<&str> = Collective::ALL.iter().map(|c| c.name()).collect();
        usage(format!(
            "--collective {name}: use one of {}",
            names.join(", ")
        ))
    })
}

/// Replaces `path` with `text` atomically: a temporary file beside it, then
/// a rename, so a reader (or a later run) sees the old file or the new one,
/// never a part of either, whenever the process stops.
fn write(path: &Path, text: &str) -> Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let r = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path));
    r.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        usage(format!("cannot write {}: {e}", path.display()))
    })
}

/// A CSV field: quoted when it holds a comma or a quote.
fn field(s: &str) -> String {
    if s.contains([',', '"']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// sweep.csv text: a row per point, then the tuner's rows (algo `auto`,
/// `picked` the algorithm it ran).
fn csv(rows: &[SweepRow]) -> String {
    let mut s = String::from(
        "algo,size,count,dtype,redop,root,time_us,algbw,busbw,wrong,model_us,bound,ranks,events,picked,runner_up,runner_up_us\n",
    );
    for r in rows {
        let (algo, picked, runner_up, runner_up_us) = match &r.tuned {
            None => (r.algo.as_str(), "", "", String::new()),
            Some(t) => (
                "auto",
                r.algo.as_str(),
                t.runner_up.as_deref().unwrap_or(""),
                t.runner_up_us.map_or_else(String::new, |u| u.to_string()),
            ),
        };
        writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            algo,
            r.size,
            r.count,
            r.dtype,
            r.redop,
            r.root,
            r.time_us,
            r.algbw,
            r.busbw,
            r.wrong,
            r.model_us,
            field(&r.bound),
            r.ranks,
            r.events,
            picked,
            runner_up,
            runner_up_us
        )
        .unwrap();
    }
    s
}

/// Writes sweep.csv, sweep.json and busbw.svg, prints the tables, and fails the check on wrong rows.
fn finish(dir: &Path, plan: &Plan, rows: &[SweepRow], w: &mut dyn Write) -> Result<()> {
    let tuned = plan.tuned_rows(rows);
    let all: Vec<SweepRow> = rows.iter().chain(&tuned).cloned().collect();
    write(&dir.join("sweep.csv"), &csv(&all))?;
    write(
        &dir.join("sweep.json"),
        &format!("{}\n", serde_json::to_string_pretty(&all).map_err(usage)?),
    )?;
    write(
        &dir.join("busbw.svg"),
        &busbw_svg(&plan.title(), &series_of(&all)),
    )?;
    let mut t = String::new();
    for algo in &plan.algos {
        writeln!(t, "# {algo} ({}) on `{}`", plan.collective, plan.topology).unwrap();
        writeln!(t, "{}", header()).unwrap();
        for r in rows.iter().filter(|r| &r.algo == algo) {
            writeln!(t, "{}", format_row(r)).unwrap();
        }
    }
    if !tuned.is_empty() {
        writeln!(
            t,
            "# auto ({}) on `{}`: the algorithm the model predicts fastest at each size",
            plan.collective, plan.topology
        )
        .unwrap();
        writeln!(t, "{}", header_tuned()).unwrap();
        for r in &tuned {
            writeln!(t, "{}", format_row(r)).unwrap();
        }
    }
    out(w, &t)?;
    eprintln!(
        "wrote sweep.csv, sweep.json and busbw.svg in {}",
        dir.display()
    );
    wrong_rows(rows)
}

fn wrong_rows(rows: &[SweepRow]) -> Result<()> {
    let bad: Vec<String> = rows
        .iter()
        .filter(|r| r.wrong > 0)
        .map(|r| format!("{} at {} B", r.algo, r.size))
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(check(format!(
            "wrong elements in {} row(s): {}",
            bad.len(),
            bad.join(", ")
        )))
    }
}

/// The finished points of one part, saved as each one arrives.
struct Journal<'a> {
    path: PathBuf,
    shard: usize,
    of: usize,
    plan: &'a Plan,
    rows: BTreeMap<usize, SweepRow>,
}

impl Journal<'_> {
    fn save(&self) -> Result<()> {
        let part = Part {
            shard: self.shard,
            of: self.of,
            plan: self.plan.clone(),
            entries: self
                .rows
                .iter()
                .map(|(&index, row)| Entry {
                    index,
                    row: row.clone(),
                })
                .collect(),
        };
        write(
            &self.path,
            &format!("{}\n", serde_json::to_string_pretty(&part).map_err(usage)?),
        )
    }
}

/// The points of part `k` of `n` that an earlier run of the same sweep
/// finished, from its part file; none when there is no file.
fn resume(path: &Path, plan: &Plan, k: usize, n: usize) -> Result<BTreeMap<usize, SweepRow>> {
    if !path.exists() {
        eprintln!(
            "note: no {} to resume from; running every point",
            path.display()
        );
        return Ok(BTreeMap::new());
    }
    let part = Part::read(path)?;
    if let Some((what, there, here)) = part.plan.difference(plan) {
        return Err(usage(format!(
            "{} is from a different sweep: its {what} differ ({there} there, {here} now); \
             run without --resume to start over, or choose another --out",
            path.display()
        )));
    }
    if (part.shard, part.of) != (k, n) {
        return Err(usage(format!(
            "{} holds part {} of {}, not {k} of {n}",
            path.display(),
            part.shard,
            part.of
        )));
    }
    part.rows(path)
}

/// Runs `kernbench sweep`.
pub(crate) fn run(a: &SweepArgs, cat: &super::user::Catalog, w: &mut dyn Write) -> Result<()> {
    a.html.check_in(Some(&a.out))?;
    if a.shard.is_some() && a.html.wanted() {
        return Err(usage(
            "--html needs every point of the sweep: it cannot be written by one --shard",
        ));
    }
    let coll = collective(&a.collective)?;
    let topo = args::topology(a.topology.as_deref())?;
    let all = match &a.registry {
        Some(p) => cat.algorithms(&Registry::load(p).map_err(usage)?, &p.display().to_string())?,
        None => cat.algorithms(
            &Registry::try_builtin().map_err(super::usage)?,
            "configs/ccl.yaml",
        )?,
    };
    let auto = a.algos.iter().any(|x| x == kernbench_ccl::tune::AUTO);
    let named: Vec<&String> = a
        .algos
        .iter()
        .filter(|x| *x != kernbench_ccl::tune::AUTO)
        .collect();
    if a.algos
        .iter()
        .filter(|x| *x == kernbench_ccl::tune::AUTO)
        .count()
        > 1
    {
        return Err(usage("--algos: `auto` is given twice"));
    }
    let mut algos: Vec<Algorithm> = if named.is_empty() {
        all.iter()
            .filter(|x| x.collective == coll)
            .cloned()
            .collect()
    } else {
        let mut v = Vec::new();
        for name in named {
            let al = all.iter().find(|x| &x.name == name).ok_or_else(|| {
                let known: Vec<&str> = all.iter().map(|x| x.name.as_str()).collect();
                usage(format!(
                    "--algos: no algorithm `{name}` in the registry (known: {})",
                    known.join(", ")
                ))
            })?;
            if al.collective != coll {
                return Err(usage(format!(
                    "--algos: `{name}` is a {} algorithm, not {}",
                    al.collective.name(),
                    coll.name()
                )));
            }
            if v.iter().any(|x: &Algorithm| &x.name == name) {
                return Err(usage(format!("--algos: `{name}` is given twice")));
            }
            v.push(al.clone());
        }
        v
    };
    if algos.is_empty() {
        return Err(usage(format!(
            "the registry has no {} algorithm",
            coll.name()
        )));
    }
    if a.min > a.max {
        return Err(usage(format!("-b {} is larger than -e {}", a.min, a.max)));
    }
    let szs = sizes(a.min, a.max, a.factor).map_err(usage)?;
    let tuned = if auto {
        let (kept, picks) = tune(&topo, &algos, coll, &szs, a.dtype, a.algos.len() > 1)?;
        algos = kept;
        picks
    } else {
        Vec::new()
    };
    let points = algos.len().saturating_mul(szs.len());
    if points > MAX_POINTS {
        return Err(usage(format!(
            "{} algorithm(s) x {} size(s) is {points} points, more than the {MAX_POINTS} a sweep may have; \
             narrow --algos or -b/-e, or raise -f",
            algos.len(),
            szs.len()
        )));
    }
    let (k, n) = a.shard.unwrap_or((1, 1));
    if n > points {
        return Err(usage(format!(
            "--shard {k}/{n}: the sweep has only {points} point(s); split it into at most {points} shards"
        )));
    }
    let pes: Vec<_> = algos
        .iter()
        .map(|al| ranks(&topo, al).map_err(usage))
        .collect::<Result<_>>()?;
    let plan = Plan {
        collective: coll.name().to_string(),
        topology: topo.name().to_string(),
        algos: algos.iter().map(|x| x.name.clone()).collect(),
        sizes: szs.clone(),
        dtype: a.dtype.name().to_string(),
        op: a.op.name().to_string(),
        root: a.root,
        checked: !a.no_check,
        fabric: a.fabric.name().to_string(),
        ties: a.ties.name().to_string(),
        topology_hash: hash_of(topo.config())?,
        algorithms_hash: hash_of(&algos)?,
        tuned,
    };
    let point = html_point(a.html_point.as_deref(), &plan)?;
    std::fs::create_dir_all(&a.out)
        .map_err(|e| usage(format!("cannot create {}: {e}", a.out.display())))?;
    let path = a.out.join(part_name(k, n));
    let mine: Vec<usize> = (0..points).filter(|i| i % n == k - 1).collect();
    let done = if a.resume {
        resume(&path, &plan, k, n)?
    } else {
        BTreeMap::new()
    };
    let todo: Vec<usize> = mine
        .iter()
        .copied()
        .filter(|i| !done.contains_key(i))
        .collect();
    if a.resume {
        eprintln!(
            "resuming {}: {} of {} point(s) done, {} to run",
            path.display(),
            done.len(),
            mine.len(),
            todo.len()
        );
    }
    let budget = a.stop_after.unwrap_or(usize::MAX).min(todo.len());
    let mut journal = Journal {
        path,
        shard: k,
        of: n,
        plan: &plan,
        rows: done,
    };
    // At once, so that a part file of an earlier sweep never outlives this
    // start, nor (unsharded) its tables: they are written again at the end.
    journal.save()?;
    if a.shard.is_none() {
        for f in ["sweep.csv", "sweep.json", "busbw.svg"] {
            let p = a.out.join(f);
            match std::fs::remove_file(&p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(usage(format!("cannot remove {}: {e}", p.display())))
                }
                _ => {}
            }
        }
    }

    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let bar = ProgressBar::new(budget as u64);
    if a.quiet || !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    } else if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} points, eta {eta} {msg}",
    ) {
        bar.set_style(style);
    }
    let how = Settings {
        dtype: a.dtype,
        op: a.op,
        root: a.root,
        data: !a.no_check,
        fabric: a.fabric,
        ties: a.ties,
    };
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    // The first failure in point order, and a failure to save.
    let mut failed: Option<(usize, String)> = None;
    let mut save_err: Option<Fail> = None;
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::channel::<(usize, std::result::Result<SweepRow, String>)>();
        for _ in 0..jobs.min(budget) {
            let tx = tx.clone();
            let (todo, next, stop) = (&todo, &next, &stop);
            let (topo, algos, pes, szs, bar) = (&topo, &algos, &pes, &szs, &bar);
            s.spawn(move || loop {
                let t = next.fetch_add(1, Ordering::Relaxed);
                if t >= budget || stop.load(Ordering::Relaxed) {
                    break;
                }
                let i = todo[t];
                let (ai, si) = (i / szs.len(), i % szs.len());
                bar.set_message(format!(
                    "{} {}",
                    algos[ai].name,
                    crate::svg::human_bytes(szs[si] as f64)
                ));
                let r = measure(topo, &algos[ai], &pes[ai], szs[si], &how)
                    .map_err(|e| format!("{} at {} B: {e}", algos[ai].name, szs[si]));
                if r.is_err() {
                    stop.store(true, Ordering::Relaxed);
                }
                if tx.send((i, r)).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        // Save after each arrival (and whatever arrived with it).
        while let Ok(first) = rx.recv() {
            for (i, r) in std::iter::once(first).chain(rx.try_iter()) {
                bar.inc(1);
                match r {
                    Ok(row) => {
                        journal.rows.insert(i, row);
                    }
                    Err(e) => {
                        if failed.as_ref().is_none_or(|(j, _)| i < *j) {
                            failed = Some((i, e));
                        }
                    }
                }
            }
            if let Err(e) = journal.save() {
                stop.store(true, Ordering::Relaxed);
                save_err = Some(e);
                break;
            }
        }
    });
    bar.finish_and_clear();
    if let Some(e) = save_err {
        return Err(e);
    }
    if let Some((_, e)) = failed {
        return Err(usage(format!(
            "{e} ({} of {} point(s) saved in {}; --resume runs the rest)",
            journal.rows.len(),
            mine.len(),
            journal.path.display()
        )));
    }
    let rows: Vec<SweepRow> = journal.rows.values().cloned().collect();
    if rows.len() < mine.len() {
        eprintln!(
            "stopped after {budget} point(s) as --stop-after asked: {} of {} saved in {}; \
             run again with --resume for the rest",
            rows.len(),
            mine.len(),
            journal.path.display()
        );
        return wrong_rows(&rows);
    }
    if a.shard.is_some() {
        eprintln!(
            "wrote {} ({} of {} points)",
            journal.path.display(),
            rows.len(),
            points
        );
        return wrong_rows(&rows);
    }
    if a.html.wanted() {
        // The tuner's rows too, so that the page's plot draws its picks.
        let with_tuned: Vec<SweepRow> =
            rows.iter().cloned().chain(plan.tuned_rows(&rows)).collect();
        let (ai, size) = point;
        let spec = RunSpec {
            op: a.op,
            root: a.root,
            trace: true,
            ties: a.ties,
            ..RunSpec::timing(
                (size / a.dtype.size() as u64).max(1) as usize,
                a.dtype,
                a.fabric,
            )
        };
        let r = run_on(&topo, &algos[ai], &pes[ai], &spec)
            .map_err(|e| usage(format!("--html: {} at {size} B: {e}", algos[ai].name)))?;
        let page = Page::new(
            format!("{} sweep on {} ({})", plan.collective, plan.topology, plan.dtype),
            &topo,
            &r.outcome,
        )
        .run_label(format!(
            "{} sizes x {} algorithm(s); the machine, timeline and bottlenecks show {} at {size} B per rank ({} ranks)",
            plan.sizes.len(),
            plan.algos.len(),
            algos[ai].name,
            pes[ai].len()
        ))
        .results(&plan.collective, &with_tuned);
        a.html.write(&page)?;
    }
    finish(&a.out, &plan, &rows, w)
}

/// The tuner over `algos` on every PE of `topo`: the algorithms it weighs
/// (those of `algos` that can run there, in order; with `named` set, each
/// of them must) and its pick at each size.
fn tune(
    topo: &kernbench_core::topology::Topology,
    algos: &[Algorithm],
    coll: Collective,
    szs: &[u64],
    dtype: DType,
    named: bool,
) -> Result<(Vec<Algorithm>, Vec<Choice>)> {
    use kernbench_ccl::tune;
    let pes: Vec<_> = topo.pes().collect();
    let cands = tune::candidates(topo, algos, coll, &pes);
    if named {
        if let Some(x) = algos
            .iter()
            .find(|x| !cands.iter().any(|c| c.name == x.name))
        {
            return Err(usage(format!(
                "--algos auto: the tuner cannot weigh `{}`: it does not run on the {} PEs of `{}`, or has no model",
                x.name,
                pes.len(),
                topo.name()
            )));
        }
    }
    let mut picks = Vec::new();
    for &size in szs {
        // The bytes a point runs: whole elements, at least one.
        let d = dtype.size() as u64;
        let bytes = (size / d).max(1) * d;
        let p = tune::pick(topo, &cands, &pes, bytes as f64)
            .ok_or_else(|| usage(tune::no_candidates(topo, coll, pes.len())))?;
        picks.push(Choice {
            algo: p.best.algo.name.clone(),
            tuned: Tuned::of(&p),
        });
    }
    Ok((cands.into_iter().cloned().collect(), picks))
}

/// The sweep point an HTML report shows: `ALGO@SIZE` among the plan's, or
/// the first algorithm at the largest size. (algorithm index, size)
fn html_point(spec: Option<&str>, plan: &Plan) -> Result<(usize, u64)> {
    let largest = plan.sizes.last().copied().unwrap_or(0);
    let Some(spec) = spec else {
        return Ok((0, largest));
    };
    let (name, size) = spec.split_once('@').ok_or_else(|| {
        usage(format!(
            "--html-point {spec}: write ALGO@SIZE, e.g. {}@{}",
            plan.algos[0],
            crate::svg::human_bytes(largest as f64)
        ))
    })?;
    let ai = plan.algos.iter().position(|x| x == name).ok_or_else(|| {
        usage(format!(
            "--html-point {spec}: `{name}` is not in this sweep ({})",
            plan.algos.join(", ")
        ))
    })?;
    let bytes = args::size(size).map_err(|e| usage(format!("--html-point {spec}: {e}")))?;
    if !plan.sizes.contains(&bytes) {
        let all: Vec<String> = plan
            .sizes
            .iter()
            .map(|b| crate::svg::human_bytes(*b as f64))
            .collect();
        return Err(usage(format!(
            "--html-point {spec}: {bytes} B is not a size of this sweep ({})",
            all.join(", ")
        )));
    }
    Ok((ai, bytes))
}

fn is_part_name(name: &str) -> bool {
    name.starts_with("sweep.part-") && name.ends_with(".json") && name.contains("-of-")
}

/// Runs `kernbench merge`.
pub fn merge(a: &MergeArgs, w: &mut dyn Write) -> Result<()> {
    let mut files: Vec<PathBuf> = Vec::new();
    for p in &a.paths {
        if p.is_dir() {
            let rd = std::fs::read_dir(p)
                .map_err(|e| usage(format!("cannot read {}: {e}", p.display())))?;
            let mut found: Vec<PathBuf> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| {
                    f.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(is_part_name)
                })
                .collect();
            if found.is_empty() {
                return Err(usage(format!(
                    "{} has no sweep.part-K-of-N.json files",
                    p.display()
                )));
            }
            found.sort();
            files.extend(found);
        } else {
            files.push(p.clone());
        }
    }
    let dir = match &a.out {
        Some(d) => d.clone(),
        None => {
            let first = &a.paths[0];
            if first.is_dir() {
                first.clone()
            } else {
                first
                    .parent()
                    .map(Path::to_path_buf)
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or_else(|| ".".into())
            }
        }
    };
    let mut parts: BTreeMap<usize, (PathBuf, BTreeMap<usize, SweepRow>)> = BTreeMap::new();
    let mut plan: Option<(PathBuf, Plan, usize)> = None;
    for f in files {
        let part = Part::read(&f)?;
        match &plan {
            None => plan = Some((f.clone(), part.plan.clone(), part.of)),
            Some((pf, p, n)) => {
                if let Some((what, x, y)) = p.difference(&part.plan) {
                    return Err(usage(format!(
                        "{} and {} are parts of different sweeps: their {what} differ ({x} and {y})",
                        pf.display(),
                        f.display()
                    )));
                }
                if *n != part.of {
                    return Err(usage(format!(
                        "{} and {} split the sweep differently: into {n} and into {} parts",
                        pf.display(),
                        f.display(),
                        part.of
                    )));
                }
            }
        }
        let rows = part.rows(&f)?;
        if let Some((prev, _)) = parts.get(&part.shard) {
            return Err(usage(format!(
                "part {} of {} is given twice: {} and {}",
                part.shard,
                part.of,
                prev.display(),
                f.display()
            )));
        }
        parts.insert(part.shard, (f, rows));
    }
    let Some((_, plan, n)) = plan else {
        return Err(usage("no part files"));
    };
    let missing: Vec<String> = (1..=n)
        .filter(|k| !parts.contains_key(k))
        .take(16)
        .map(|k| k.to_string())
        .collect();
    if !missing.is_empty() {
        let more = n - parts.len() - missing.len();
        return Err(usage(format!(
            "missing part(s) {}{} of {n}",
            missing.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        )));
    }
    let mut rows: Vec<Option<SweepRow>> = vec![None; plan.points()];
    for (k, (f, part)) in &parts {
        let short = plan.points().saturating_sub(*k - 1).div_ceil(n);
        if part.len() < short {
            return Err(usage(format!(
                "{} holds {} of the {short} point(s) of part {k} of {n}: that sweep did not finish; \
                 run it again with --resume",
                f.display(),
                part.len()
            )));
        }
        for (&i, row) in part {
            rows[i] = Some(row.clone());
        }
    }
    let rows: Vec<SweepRow> = rows.into_iter().flatten().collect();
    std::fs::create_dir_all(&dir)
        .map_err(|e| usage(format!("cannot create {}: {e}", dir.display())))?;
    finish(&dir, &plan, &rows, w)
}
