//! `kernbench sweep` and `kernbench merge`: collective algorithms over a range
//! of sizes, run in parallel (or in shards on several machines), written as
//! CSV, JSON and a bus-bandwidth plot.

use super::args::{self, check};
use super::svg::{busbw_svg, Series};
use super::{out, usage, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use kernbench_ccl::run::ranks;
use kernbench_ccl::table::{format_row, header, measure, sizes, Row};
use kernbench_ccl::{Algorithm, Collective, RedOp, Registry};
use kernbench_core::DType;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{IsTerminal as _, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Flags of `kernbench sweep`.
#[derive(Args, Debug)]
#[command(
    after_help = "Points are (algorithm, size) pairs, numbered algorithm by algorithm in size order; \
rows are written in that order whatever the thread timing.\n\n\
Examples:\n  kernbench sweep --collective all_reduce --topology tiny -b 64K -e 4M -f 2 --out sweep-tiny\n  \
kernbench sweep --collective all_reduce --algos ring_allreduce,tree_allreduce --out out --shard 1/2\n  \
kernbench merge out"
)]
pub struct SweepArgs {
    /// The collective: all_reduce, reduce_scatter, all_gather, broadcast.
    #[arg(long)]
    pub collective: String,
    /// Registry algorithms (comma-separated); every algorithm of the collective when absent.
    #[arg(long, value_delimiter = ',')]
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
    /// Root rank (broadcast).
    #[arg(short = 'r', long, default_value_t = 0)]
    pub root: usize,
    /// Time only; do not execute and check the data.
    #[arg(long)]
    pub no_check: bool,
    /// How IPCQ messages cross the fabric: `messages` (O(1) events a
    /// message, the default) or `slots` (every ring slot its own events; the reference).
    #[arg(long, default_value = "messages")]
    pub fabric: kernbench_core::sim::FabricModel,
    /// Output folder (created if needed).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Run only shard K of N (1-based): the points whose index i has i % N == K-1;
    /// writes DIR/sweep.part-K-of-N.json for `kernbench merge`.
    #[arg(long, value_name = "K/N", value_parser = shard)]
    pub shard: Option<(usize, usize)>,
    /// Worker threads; the number of cores when absent.
    #[arg(long, short = 'j', value_name = "J")]
    pub jobs: Option<usize>,
    /// No progress bar (it is also hidden when stderr is not a terminal).
    #[arg(long, short = 'q')]
    pub quiet: bool,
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
}

impl Plan {
    fn points(&self) -> usize {
        self.algos.len() * self.sizes.len()
    }

    fn title(&self) -> String {
        format!(
            "{} busbw on {} ({})",
            self.collective, self.topology, self.dtype
        )
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

fn collective(name: &str) -> Result<Collective> {
    let all = [
        Collective::AllReduce,
        Collective::ReduceScatter,
        Collective::AllGather,
        Collective::Broadcast,
    ];
    all.into_iter().find(|c| c.name() == name).ok_or_else(|| {
        let names: Vec<&str> = all.iter().map(|c| c.name()).collect();
        usage(format!(
            "--collective {name}: use one of {}",
            names.join(", ")
        ))
    })
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| usage(format!("cannot write {}: {e}", path.display())))
}

/// sweep.csv text.
fn csv(rows: &[SweepRow]) -> String {
    let mut s = String::from(
        "algo,size,count,dtype,redop,root,time_us,algbw,busbw,wrong,model_us,ranks,events\n",
    );
    for r in rows {
        writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{},{},{}",
            r.algo,
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
            r.ranks,
            r.events
        )
        .unwrap();
    }
    s
}

/// Writes sweep.csv, sweep.json and busbw.svg, prints the tables, and fails the check on wrong rows.
fn finish(dir: &Path, plan: &Plan, rows: &[SweepRow], w: &mut dyn Write) -> Result<()> {
    write(&dir.join("sweep.csv"), &csv(rows))?;
    write(
        &dir.join("sweep.json"),
        &format!("{}\n", serde_json::to_string_pretty(rows).map_err(usage)?),
    )?;
    let mut by_algo: Vec<Series> = Vec::new();
    for r in rows {
        match by_algo.iter_mut().find(|s| s.name == r.algo) {
            Some(s) => s.points.push((r.size as f64, r.busbw)),
            None => by_algo.push(Series {
                name: r.algo.clone(),
                points: vec![(r.size as f64, r.busbw)],
            }),
        }
    }
    write(&dir.join("busbw.svg"), &busbw_svg(&plan.title(), &by_algo))?;
    let mut t = String::new();
    for algo in &plan.algos {
        writeln!(t, "# {algo} ({}) on `{}`", plan.collective, plan.topology).unwrap();
        writeln!(t, "{}", header()).unwrap();
        for r in rows.iter().filter(|r| &r.algo == algo) {
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

/// Runs `kernbench sweep`.
pub fn run(a: &SweepArgs, w: &mut dyn Write) -> Result<()> {
    args::link_kernels();
    let coll = collective(&a.collective)?;
    let topo = args::topology(a.topology.as_deref())?;
    let reg = match &a.registry {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| usage(format!("cannot read {}: {e}", p.display())))?;
            Registry::from_yaml(&text, &p.display().to_string()).map_err(usage)?
        }
        None => Registry::builtin(),
    };
    let algos: Vec<Algorithm> = if a.algos.is_empty() {
        reg.algorithms()
            .iter()
            .filter(|x| x.collective == coll)
            .cloned()
            .collect()
    } else {
        let mut v = Vec::new();
        for name in &a.algos {
            let al = reg.get(name).map_err(usage)?;
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
    };
    let (k, n) = a.shard.unwrap_or((1, 1));
    let todo: Vec<usize> = (0..plan.points()).filter(|i| i % n == k - 1).collect();
    std::fs::create_dir_all(&a.out)
        .map_err(|e| usage(format!("cannot create {}: {e}", a.out.display())))?;

    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let bar = ProgressBar::new(todo.len() as u64);
    if a.quiet || !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    } else if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} points, eta {eta} {msg}",
    ) {
        bar.set_style(style);
    }
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let results: Mutex<Vec<Option<std::result::Result<SweepRow, String>>>> =
        Mutex::new(vec![None; todo.len()]);
    std::thread::scope(|s| {
        for _ in 0..jobs.min(todo.len()) {
            s.spawn(|| loop {
                let t = next.fetch_add(1, Ordering::Relaxed);
                if t >= todo.len() || stop.load(Ordering::Relaxed) {
                    break;
                }
                let i = todo[t];
                let (ai, si) = (i / szs.len(), i % szs.len());
                let r = measure(
                    &topo,
                    &algos[ai],
                    &pes[ai],
                    szs[si],
                    a.dtype,
                    a.op,
                    a.root,
                    !a.no_check,
                    a.fabric,
                )
                .map_err(|e| format!("{} at {} B: {e}", algos[ai].name, szs[si]));
                if r.is_err() {
                    stop.store(true, Ordering::Relaxed);
                }
                bar.set_message(format!(
                    "{} {}",
                    algos[ai].name,
                    super::svg::human_bytes(szs[si] as f64)
                ));
                bar.inc(1);
                results.lock().unwrap_or_else(|p| p.into_inner())[t] = Some(r);
            });
        }
    });
    bar.finish_and_clear();
    let results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    let mut entries = Vec::with_capacity(todo.len());
    for (t, r) in results.into_iter().enumerate() {
        match r {
            Some(Ok(row)) => entries.push(Entry {
                index: todo[t],
                row,
            }),
            Some(Err(e)) => return Err(usage(e)),
            None => {}
        }
    }
    if entries.len() != todo.len() {
        return Err(usage("the sweep stopped early"));
    }
    if a.shard.is_some() {
        let path = a.out.join(format!("sweep.part-{k}-of-{n}.json"));
        let rows: Vec<SweepRow> = entries.iter().map(|e| e.row.clone()).collect();
        let part = Part {
            shard: k,
            of: n,
            plan,
            entries,
        };
        write(
            &path,
            &format!("{}\n", serde_json::to_string_pretty(&part).map_err(usage)?),
        )?;
        eprintln!(
            "wrote {} ({} of {} points)",
            path.display(),
            rows.len(),
            part.plan.points()
        );
        return wrong_rows(&rows);
    }
    let rows: Vec<SweepRow> = entries.into_iter().map(|e| e.row).collect();
    finish(&a.out, &plan, &rows, w)
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
    let mut parts: BTreeMap<usize, (PathBuf, Part)> = BTreeMap::new();
    let mut plan: Option<(PathBuf, Plan, usize)> = None;
    for f in files {
        let text = std::fs::read_to_string(&f)
            .map_err(|e| usage(format!("cannot read {}: {e}", f.display())))?;
        let part: Part = serde_json::from_str(&text)
            .map_err(|e| usage(format!("{}: not a sweep part file: {e}", f.display())))?;
        match &plan {
            None => plan = Some((f.clone(), part.plan.clone(), part.of)),
            Some((pf, p, n)) => {
                if *p != part.plan || *n != part.of {
                    return Err(usage(format!(
                        "{} and {} are parts of different sweeps (collective, topology, algorithms, sizes or shard count differ)",
                        pf.display(),
                        f.display()
                    )));
                }
            }
        }
        if part.shard == 0 || part.shard > part.of {
            return Err(usage(format!(
                "{}: part {} of {} does not exist",
                f.display(),
                part.shard,
                part.of
            )));
        }
        if let Some((prev, _)) = parts.get(&part.shard) {
            return Err(usage(format!(
                "part {} of {} is given twice: {} and {}",
                part.shard,
                part.of,
                prev.display(),
                f.display()
            )));
        }
        parts.insert(part.shard, (f, part));
    }
    let Some((_, plan, n)) = plan else {
        return Err(usage("no part files"));
    };
    let missing: Vec<String> = (1..=n)
        .filter(|k| !parts.contains_key(k))
        .map(|k| k.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(usage(format!(
            "missing part(s) {} of {n}",
            missing.join(", ")
        )));
    }
    let mut rows: Vec<Option<SweepRow>> = vec![None; plan.points()];
    for (k, (f, part)) in &parts {
        for e in &part.entries {
            if e.index >= rows.len() || e.index % n != k - 1 {
                return Err(usage(format!(
                    "{}: point {} does not belong to part {k} of {n}",
                    f.display(),
                    e.index
                )));
            }
            if rows[e.index].replace(e.row.clone()).is_some() {
                return Err(usage(format!(
                    "{}: point {} appears twice",
                    f.display(),
                    e.index
                )));
            }
        }
    }
    let missing = rows.iter().filter(|r| r.is_none()).count();
    if missing > 0 {
        return Err(usage(format!(
            "{missing} point(s) of {} are in no part",
            plan.points()
        )));
    }
    let rows: Vec<SweepRow> = rows.into_iter().flatten().collect();
    std::fs::create_dir_all(&dir)
        .map_err(|e| usage(format!("cannot create {}: {e}", dir.display())))?;
    finish(&dir, &plan, &rows, w)
}
