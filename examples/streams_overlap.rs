//! Compute overlapped with communication by asynchronous launches on two
//! streams (ADR 0028). Each rank (one per SIP) runs a layer-like step: a
//! GEMM of its activations (`band_gemm`, written below) and an all-reduce of
//! another tensor, the previous layer's gradient, summed over the ranks. The
//! step runs three ways, each on a fresh machine:
//!
//! 1. **synchronous**: `rt.launch` of the GEMM, then the synchronous
//!    `dist::all_reduce`; each runs to completion before the host goes on.
//! 2. **one stream**: the GEMM with `rt.launch_async` and the all-reduce with
//!    `dist::all_reduce_async`, both on the same stream: the all-reduce
//!    waits for the GEMM, as stream order says.
//! 3. **two streams**: the GEMM on a compute stream, then the all-reduce on a
//!    communication stream; they run at the same time, sharing the PEs'
//!    engines and HBM, and the all-reduce the links between the SIPs.
//!
//! Each row of the table gives the slowest rank's step: compute (from the
//! step's start to the GEMM's end), communication (the all-reduce from its
//! release to its end), total (from the step's start until the host has
//! waited for both), exposed communication (total minus compute) and the
//! speed-up over the synchronous step. The asynchronous steps are timed with
//! events, as a user would: one recorded before the work, one after the GEMM
//! on its stream, one after the all-reduce on its stream.
//!
//! Every element of every rank's GEMM output and all-reduced tensor is
//! checked against an ndarray reference, in every schedule. The inputs are
//! small integers, so the checks are exact in f32, f16 and bf16 (the GEMM
//! accumulates in f32 and stores f32; the sums of the all-reduce stay below
//! 256). A wrong element makes the run fail.
//!
//! Run: `cargo run --release --example streams_overlap [-- --topology large --ranks 4 --m 256 --k 512 --n 512 --size 2M --dtype f16]`

use kernbench::ccl::dist;
use kernbench::ccl::RedOp;
use kernbench::core::runtime::ndarray::{Array1, Array2};
use kernbench::core::runtime::{device, Args, Event, HostFloat, Placement, Runtime};
use kernbench::core::topology::Topology;
use kernbench::core::DType;
use kernbench::prelude::*;
use kernbench::tl::{bf16, f16, Element};

/// `c = a b` on each instance's band of rows: instance `i` of `s` streams
/// rows `i m / s ..` of `a` and its own copy of `b` (a replicated tensor is
/// its copies stacked) through one composite GEMM and stores its rows of `c`
/// in f32, the accumulator's type.
#[kernel]
pub fn band_gemm<T: Element<Acc = f32>>(a: Tensor<T>, b: Tensor<T>, c: Tensor<f32>) {
    let (i, s) = (tl::program_id(0), tl::num_programs(0));
    let (m, k, n) = (a.rows() / s, a.cols(), b.cols());
    let a = tl::stream(a.block([i * m, 0], [m, k]), [m, k]);
    let b = tl::stream(b.block([i * k, 0], [k, n]), [k, n]);
    let p = tl::gemm(&a, &b, None, &[]);
    tl::store(c.block([i * m, 0], [m, n]), &p);
}

/// One step's sizes and where each rank's tensors live.
#[derive(Clone, Debug)]
pub struct Step {
    /// Ranks, one per SIP (`0..ranks`).
    pub ranks: usize,
    /// Rows of `a` and `c`, split over the layout's PEs.
    pub m: usize,
    /// Columns of `a`, rows of `b`.
    pub k: usize,
    /// Columns of `b` and `c`.
    pub n: usize,
    /// Elements of the all-reduced tensor on each rank.
    pub elems: usize,
    /// Cubes of each SIP that hold the rank's tensors.
    pub cubes: usize,
    /// PEs of each of those cubes.
    pub pes: usize,
}

impl Step {
    /// The PEs of a rank's layout.
    pub fn layout_pes(&self) -> usize {
        self.cubes * self.pes
    }

    /// Checks the step against the machine: an error says which flag does
    /// not fit and why.
    pub fn check(&self, topo: &Topology) -> Result<(), String> {
        let sips = topo.num_sips() as usize;
        if self.ranks < 2 || self.ranks > sips {
            return Err(format!(
                "--ranks {}: the all-reduce takes 2 or more ranks, one per SIP, and `{}` has {sips} SIPs",
                self.ranks,
                topo.name()
            ));
        }
        let (cubes, pes) = (topo.cubes_per_sip() as usize, topo.pes_per_cube() as usize);
        if self.cubes == 0 || self.cubes > cubes {
            return Err(format!(
                "--cubes {}: a SIP of `{}` has {cubes} cubes",
                self.cubes,
                topo.name()
            ));
        }
        if self.pes == 0 || self.pes > pes {
            return Err(format!(
                "--pes {}: a cube of `{}` has {pes} PEs",
                self.pes,
                topo.name()
            ));
        }
        let p = self.layout_pes();
        if self.m == 0 || self.m % p != 0 {
            return Err(format!(
                "--m {}: the rows split evenly over the {p} PEs of a rank ({} cubes x {} PEs)",
                self.m, self.cubes, self.pes
            ));
        }
        if self.k == 0 || self.n == 0 {
            return Err("--k and --n must be at least 1".into());
        }
        if self.elems == 0 || self.elems % p != 0 {
            return Err(format!(
                "the all-reduced tensor's {} elements must split evenly over the {p} PEs of a rank",
                self.elems
            ));
        }
        Ok(())
    }
}

/// How the step is issued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// `rt.launch` of the GEMM, then the synchronous all-reduce.
    Synchronous,
    /// Both asynchronous, on one stream.
    OneStream,
    /// The GEMM on a compute stream, the all-reduce on a communication stream.
    TwoStreams,
}

impl Schedule {
    /// The three, in the table's order.
    pub const ALL: [Schedule; 3] = [
        Schedule::Synchronous,
        Schedule::OneStream,
        Schedule::TwoStreams,
    ];

    /// Its row's name.
    pub fn name(self) -> &'static str {
        match self {
            Schedule::Synchronous => "synchronous",
            Schedule::OneStream => "one stream",
            Schedule::TwoStreams => "two streams",
        }
    }
}

/// One schedule's step on the slowest rank, and the elements that were wrong
/// over all ranks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// How the step was issued.
    pub schedule: Schedule,
    /// The rank whose step took longest (the lowest of those that tie).
    pub rank: usize,
    /// From the step's start to the GEMM's end, ps.
    pub compute_ps: u64,
    /// The all-reduce, from its release to its end, ps.
    pub comm_ps: u64,
    /// From the step's start until the host has waited for all of it, ps.
    pub total_ps: u64,
    /// GEMM output elements that differ from the reference, every rank.
    pub wrong_gemm: usize,
    /// All-reduced elements that differ from the reference, every rank.
    pub wrong_reduce: usize,
}

impl Row {
    /// Communication not hidden behind compute: total minus compute, ps.
    pub fn exposed_ps(&self) -> u64 {
        self.total_ps.saturating_sub(self.compute_ps)
    }

    /// Whether every element matched.
    pub fn verified(&self) -> bool {
        self.wrong_gemm == 0 && self.wrong_reduce == 0
    }
}

/// Rank `r`'s activations, in {-1, 0, 1}.
fn activations(step: &Step, r: usize) -> Array2<f64> {
    Array2::from_shape_fn((step.m, step.k), |(i, j)| {
        ((i * 7 + j * 13 + r * 5) % 3) as f64 - 1.0
    })
}

/// The weights, the same on every rank, in {-1, 0, 1}.
fn weights(step: &Step) -> Array2<f64> {
    Array2::from_shape_fn((step.k, step.n), |(i, j)| {
        ((i * 11 + j * 3 + 1) % 3) as f64 - 1.0
    })
}

/// Rank `r`'s gradient, in -3..=3.
fn gradient(step: &Step, r: usize) -> Array1<f64> {
    Array1::from_shape_fn(step.elems, |i| ((i * 5 + r * 3) % 7) as f64 - 3.0)
}

/// Elements of `got` that differ from `want`, in order; a missing or extra
/// element counts as one.
fn mismatches(got: impl Iterator<Item = f64>, want: impl Iterator<Item = f64>) -> usize {
    let (mut got, mut want) = (got.fuse(), want.fuse());
    let mut wrong = 0;
    loop {
        match (got.next(), want.next()) {
            (None, None) => return wrong,
            (Some(g), Some(w)) if g == w => {}
            _ => wrong += 1,
        }
    }
}

/// What one rank saw of the step.
struct RankStep {
    compute_ps: u64,
    comm_ps: u64,
    total_ps: u64,
    wrong_gemm: usize,
    wrong_reduce: usize,
}

/// Runs the step on a fresh machine of `topo` in each of the three
/// schedules, with elements of type `T`, and checks every element.
pub fn run<T: HostFloat>(
    topo: &Topology,
    step: &Step,
) -> Result<Vec<Row>, Box<dyn std::error::Error>> {
    step.check(topo)?;
    // Sums of -3..=3 over the ranks stay exact in bf16 (8 bits) up to 256.
    if 3 * step.ranks > 256 {
        return Err(format!(
            "--ranks {}: the all-reduced sums would not be exact in bf16 beyond 85 ranks",
            step.ranks
        )
        .into());
    }
    let w = weights(step);
    let gemm_want: Vec<Array2<f64>> = (0..step.ranks)
        .map(|r| activations(step, r).dot(&w))
        .collect();
    let reduce_want: Array1<f64> = (0..step.ranks)
        .map(|r| gradient(step, r))
        .fold(Array1::zeros(step.elems), |acc, g| acc + g);
    let mut rows = Vec::new();
    for schedule in Schedule::ALL {
        let rt = Runtime::with_topology(topo.clone())?;
        let ranks = rt.spawn(step.ranks, |rank| {
            let r = rank.get_rank();
            dist::init_process_group(step.ranks, r)?;
            device::set_device(r)?;
            let rt = rank.runtime();
            let rows = Placement::row_wise().cubes(step.cubes).pes(step.pes);
            let copies = Placement::replicate().cubes(step.cubes).pes(step.pes);
            let a = rt.from_array(&activations(step, r).mapv(T::round), &rows)?;
            let b = rt.from_array(&w.mapv(T::round), &copies)?;
            let c = rt.zeros(&[step.m, step.n], DType::F32, &rows)?;
            let g = rt.from_array(&gradient(step, r).mapv(T::round), &rows)?;
            let args = Args::new().tensor("a", &a).tensor("b", &b).tensor("c", &c);
            let grid = [step.layout_pes() as u32];
            let start_ps = rt.host_time_ps();
            let (compute_ps, comm_ps, total_ps) = match schedule {
                Schedule::Synchronous => {
                    rt.launch(&band_gemm, &grid, &args)?;
                    let compute = rt.host_time_ps() - start_ps;
                    let report = dist::all_reduce(&g, RedOp::Sum, None)?;
                    (compute, report.sim_ps(), rt.host_time_ps() - start_ps)
                }
                Schedule::OneStream | Schedule::TwoStreams => {
                    let compute = rt.new_stream();
                    let comm = if schedule == Schedule::TwoStreams {
                        rt.new_stream()
                    } else {
                        compute.clone()
                    };
                    let start = compute.record_event();
                    rt.launch_async(&band_gemm, &grid, &args, &compute)?;
                    let gemm_done = compute.record_event();
                    let h = dist::all_reduce_async(&g, RedOp::Sum, None, &comm)?;
                    let comm_done = Event::new();
                    comm_done.record(&comm);
                    rt.synchronize()?;
                    let to_gemm = start.elapsed_ps(&gemm_done)?;
                    let to_comm = start.elapsed_ps(&comm_done)?;
                    let total = to_gemm.max(to_comm);
                    // The events agree with the host: it waited for both.
                    let host = i128::from(rt.host_time_ps() - start_ps);
                    if total != host {
                        return Err(format!(
                            "rank {r}: the events span {total} ps but the host waited {host} ps"
                        )
                        .into());
                    }
                    (
                        u64::try_from(to_gemm)?,
                        h.wait()?.duration_ps(),
                        u64::try_from(total)?,
                    )
                }
            };
            let got = c.to_ndarray::<f32>()?.mapv(f64::from);
            let wrong_gemm = mismatches(got.iter().copied(), gemm_want[r].iter().copied());
            let got = g.to_ndarray::<T>()?.mapv(T::wide);
            let wrong_reduce = mismatches(got.iter().copied(), reduce_want.iter().copied());
            Ok(RankStep {
                compute_ps,
                comm_ps,
                total_ps,
                wrong_gemm,
                wrong_reduce,
            })
        })?;
        let (slowest, s) = ranks
            .iter()
            .enumerate()
            .rev()
            .max_by_key(|(_, s)| s.total_ps)
            .expect("at least two ranks");
        rows.push(Row {
            schedule,
            rank: slowest,
            compute_ps: s.compute_ps,
            comm_ps: s.comm_ps,
            total_ps: s.total_ps,
            wrong_gemm: ranks.iter().map(|s| s.wrong_gemm).sum(),
            wrong_reduce: ranks.iter().map(|s| s.wrong_reduce).sum(),
        });
    }
    Ok(rows)
}

fn main() -> std::process::ExitCode {
    // Errors print as their message, not as a debug dump.
    kernbench::cli::exit_code(try_main().map_err(kernbench::cli::usage))
}

/// A GEMM and an all-reduce per rank, synchronous, on one stream and on two.
#[derive(clap::Parser, Debug)]
struct Opts {
    /// A topology file or built-in name; the embedded default when absent.
    #[arg(long)]
    topology: Option<String>,
    /// Ranks, one per SIP; every SIP of the machine when absent.
    #[arg(long, value_parser = kernbench::cli::parse::count)]
    ranks: Option<usize>,
    /// Rows of each rank's activations and output (a multiple of the PEs used).
    #[arg(long, default_value_t = 512, value_parser = kernbench::cli::parse::count)]
    m: usize,
    /// Columns of the activations, rows of the weights.
    #[arg(long, default_value_t = 512, value_parser = kernbench::cli::parse::count)]
    k: usize,
    /// Columns of the weights and the output.
    #[arg(long, default_value_t = 512, value_parser = kernbench::cli::parse::count)]
    n: usize,
    /// Bytes of the all-reduced tensor on each rank (`512K`, `2M`).
    #[arg(long, default_value = "1M", value_parser = kernbench::cli::parse::size)]
    size: u64,
    /// Cubes of each SIP that hold a rank's tensors.
    #[arg(long, default_value_t = 2, value_parser = kernbench::cli::parse::count)]
    cubes: usize,
    /// PEs of each of those cubes.
    #[arg(long, default_value_t = 2, value_parser = kernbench::cli::parse::count)]
    pes: usize,
    /// The element type of the activations, weights and gradient: f32, f16
    /// or bf16 (the GEMM accumulates and stores f32).
    #[arg(long, default_value = "f32", value_parser = kernbench::cli::parse::dtype)]
    dtype: DType,
}

fn try_main() -> Result<(), Box<dyn std::error::Error>> {
    let o = <Opts as clap::Parser>::parse();
    let topo = match &o.topology {
        Some(t) => Topology::resolve(t)?,
        None => Topology::embedded_default(),
    };
    let es = o.dtype.size() as u64;
    if o.size % es != 0 {
        return Err(format!(
            "--size {}: not a whole number of {} elements ({es} bytes each)",
            o.size, o.dtype
        )
        .into());
    }
    let step = Step {
        ranks: o.ranks.unwrap_or(topo.num_sips() as usize),
        m: o.m,
        k: o.k,
        n: o.n,
        elems: usize::try_from(o.size / es)?,
        cubes: o.cubes,
        pes: o.pes,
    };
    let rows = match o.dtype {
        DType::F32 => run::<f32>(&topo, &step)?,
        DType::F16 => run::<f16>(&topo, &step)?,
        DType::Bf16 => run::<bf16>(&topo, &step)?,
        other => return Err(format!("--dtype {other}: the step runs in f32, f16 or bf16").into()),
    };
    println!(
        "streams_overlap on `{}`: {} ranks, each a {}x{}x{} GEMM ({} in, f32 out) and an all-reduce of {} ({}), over {} cubes x {} PEs of its SIP",
        topo.name(),
        step.ranks,
        step.m,
        step.k,
        step.n,
        o.dtype,
        kernbench::svg::human_bytes(o.size as f64),
        o.dtype,
        step.cubes,
        step.pes
    );
    println!("simulated time of the slowest rank's step, us:");
    println!(
        "{:<12} {:>10} {:>10} {:>10} {:>10} {:>9}",
        "schedule", "compute", "comm", "total", "exposed", "speed-up"
    );
    let us = |ps: u64| ps as f64 / 1e6;
    let base = rows[0].total_ps;
    for row in &rows {
        println!(
            "{:<12} {:>10.3} {:>10.3} {:>10.3} {:>10.3} {:>8.2}x",
            row.schedule.name(),
            us(row.compute_ps),
            us(row.comm_ps),
            us(row.total_ps),
            us(row.exposed_ps()),
            base as f64 / row.total_ps.max(1) as f64
        );
    }
    println!(
        "one stream: the all-reduce waits for the GEMM (stream order); only its launch latency hides behind it."
    );
    println!(
        "two streams: the GEMM and the all-reduce run at once, sharing the PEs' engines and HBM, so each may take longer \
         than alone; exposed is what the step takes beyond its GEMM."
    );
    let wrong: usize = rows.iter().map(|r| r.wrong_gemm + r.wrong_reduce).sum();
    if wrong > 0 {
        for row in rows.iter().filter(|r| !r.verified()) {
            eprintln!(
                "{}: {} GEMM output and {} all-reduced elements wrong",
                row.schedule.name(),
                row.wrong_gemm,
                row.wrong_reduce
            );
        }
        return Err(format!("{wrong} elements wrong").into());
    }
    println!(
        "verified: every rank's {}x{} GEMM output and {} all-reduced elements match ndarray exactly, in all three schedules",
        step.m, step.n, step.elems
    );
    Ok(())
}
