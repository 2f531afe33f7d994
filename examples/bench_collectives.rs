//! Simulator speed on a large run: the ring and hierarchical all-reduce of a
//! large vector per rank on `configs/large.yaml` (1024 PEs) with data off,
//! reporting wall time, simulated events and events per second.
//!
//! Run: `cargo run --release --example bench_collectives [-- --size 64M --seg 64K --topology large --algos ring_allreduce,hierarchical_allreduce]`
//! (`--seg` overrides the registry's bytes per message).

use kernbench::ccl::run::{run, RunSpec};
use kernbench::ccl::table::parse_size;
use kernbench::ccl::{RedOp, Registry};
use kernbench::prelude::*;
use std::time::Instant;

fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut size = 64u64 << 20;
    let mut topo_name = "large".to_string();
    let mut algos = "ring_allreduce,hierarchical_allreduce".to_string();
    let mut seg: Option<u64> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().ok_or(format!("{a} needs a value"))?;
        match a.as_str() {
            "--size" => size = parse_size(&v).ok_or(format!("bad size `{v}`"))?,
            "--topology" => topo_name = v,
            "--algos" => algos = v,
            "--seg" => seg = Some(parse_size(&v).ok_or(format!("bad size `{v}`"))?),
            other => return Err(format!("unknown flag `{other}`").into()),
        }
    }
    let topo = Topology::builtin(&topo_name)
        .map(Ok)
        .unwrap_or_else(|| Topology::load(std::path::Path::new(&topo_name)))?;
    let reg = Registry::builtin();
    println!(
        "{:<24} {:>6} {:>10} {:>12} {:>10} {:>12} {:>12} {:>10}",
        "algorithm", "ranks", "size", "sim (us)", "wall (s)", "events", "events/s", "busbw"
    );
    for name in algos.split(',') {
        let mut algo = reg.get(name)?.clone();
        if let Some(s) = seg {
            algo.seg_bytes = s;
        }
        let algo = &algo;
        let spec = RunSpec {
            count: (size / 4) as usize,
            dtype: DType::F32,
            op: RedOp::Sum,
            root: 0,
            data: false,
            trace: false,
        };
        let t0 = Instant::now();
        let r = run(&topo, algo, &spec)?;
        let wall = t0.elapsed().as_secs_f64();
        let rep = &r.outcome.report;
        let p = r.pes.len() as f64;
        let busbw = size as f64 / rep.sim_ns() * algo.collective.busbw_factor(r.pes.len());
        println!(
            "{:<24} {:>6} {:>10} {:>12.1} {:>10.2} {:>12} {:>12.0} {:>10.2}",
            name,
            p,
            size,
            rep.sim_ns() / 1000.0,
            wall,
            rep.events,
            rep.events as f64 / wall,
            busbw
        );
    }
    if let Some(m) = peak_rss_mib() {
        println!("peak resident memory: {m:.0} MiB");
    }
    Ok(())
}
