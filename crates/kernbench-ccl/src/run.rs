//! Running a collective on a machine and checking its result element by element.
//!
//! Inputs are chosen as nccl-tests does, so that the exact result is
//! representable in the element type whatever the order of summation: small
//! integers whose sum over all ranks stays within the type's exact range
//! (2^11 for f16, 2^8 for bf16, 2^24 for f32 and i32), sparser when there are
//! many ranks. Every element of every rank is compared exactly.

use crate::registry::{Algorithm, Collective, MapKind};
use kernbench_core::ir::{ArgValue, KernelArgs};
use kernbench_core::machine::Machine;
use kernbench_core::neighbors::NeighborMap;
use kernbench_core::sim::{simulate_full, Launch, Outcome, SimError};
use kernbench_core::topology::Topology;
use kernbench_core::{DType, PeId};

/// A reduction operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RedOp {
    /// Sum.
    Sum,
    /// Maximum.
    Max,
    /// Minimum.
    Min,
}

impl RedOp {
    /// The kernels' code for it.
    pub fn code(self) -> i64 {
        match self {
            RedOp::Sum => 0,
            RedOp::Max => 1,
            RedOp::Min => 2,
        }
    }

    /// Parses `sum`, `max`, `min` (and nccl-tests' `prod` is refused).
    pub fn parse(s: &str) -> Option<RedOp> {
        match s {
            "sum" => Some(RedOp::Sum),
            "max" => Some(RedOp::Max),
            "min" => Some(RedOp::Min),
            _ => None,
        }
    }

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            RedOp::Sum => "sum",
            RedOp::Max => "max",
            RedOp::Min => "min",
        }
    }

    fn apply(self, a: f64, b: f64) -> f64 {
        match self {
            RedOp::Sum => a + b,
            RedOp::Max => a.max(b),
            RedOp::Min => a.min(b),
        }
    }
}

/// What to run.
#[derive(Clone, Debug)]
pub struct RunSpec {
    /// Elements of each rank's vector.
    pub count: usize,
    /// Element type.
    pub dtype: DType,
    /// Reduction (ignored by collectives that do not reduce).
    pub op: RedOp,
    /// Root rank (broadcast).
    pub root: usize,
    /// Execute and check the data (timing is the same either way).
    pub data: bool,
    /// Keep op spans for a timeline.
    pub trace: bool,
}

/// What a run gives.
pub struct RunResult {
    /// The simulation outcome (report, graphs, spans).
    pub outcome: Outcome,
    /// Elements that differ from the expected result (0 when the data was not run).
    pub wrong: usize,
    /// Elements checked.
    pub checked: usize,
    /// The ranks, in rank order.
    pub pes: Vec<PeId>,
}

/// Why a collective could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The simulation failed (trace, pairing, deadlock...).
    #[error(transparent)]
    Sim(#[from] SimError),
    /// Bad parameters (world size, neighbour map, kernel).
    #[error("{0}")]
    Invalid(String),
}

/// The largest integer up to which every integer is exact in `dtype`.
fn exact_limit(dtype: DType) -> u64 {
    match dtype {
        DType::F16 => 2048,
        DType::Bf16 => 256,
        DType::F32 | DType::I32 => 1 << 24,
    }
}

/// The input of rank `r` at element `i`, for `w` ranks.
pub fn input(dtype: DType, w: usize, r: usize, i: usize) -> f32 {
    let per = exact_limit(dtype) / w as u64;
    if per >= 1 {
        let m = per.min(8) + 1;
        ((r as u64 * 7 + i as u64 * 13) % m) as f32
    } else {
        let k = (w as u64).div_ceil(exact_limit(dtype));
        f32::from(u8::from((r as u64 + i as u64) % k == 0))
    }
}

/// A value no correct result has (marks elements a collective must overwrite).
const POISON: f32 = -7.0;

/// The ranks of an algorithm on a topology: its world size, or every PE, in structural order.
pub fn ranks(topo: &Topology, algo: &Algorithm) -> Result<Vec<PeId>, RunError> {
    let all: Vec<PeId> = topo.pes().collect();
    let w = algo.world.unwrap_or(all.len());
    if w == 0 || w > all.len() {
        return Err(RunError::Invalid(format!(
            "algorithm `{}` asks for {w} ranks; topology `{}` has {} PEs",
            algo.name,
            topo.name(),
            all.len()
        )));
    }
    Ok(all[..w].to_vec())
}

/// The most square `rows x cols` factorisation of `w` (cols >= rows).
pub fn torus_shape(w: usize) -> (usize, usize) {
    let mut rows = (w as f64).sqrt() as usize;
    while rows > 1 && w % rows != 0 {
        rows -= 1;
    }
    (rows.max(1), w / rows.max(1))
}

/// The neighbour map an algorithm needs over `pes`.
pub fn neighbor_map(topo: &Topology, kind: MapKind, pes: &[PeId]) -> Result<NeighborMap, RunError> {
    let bad = |e: kernbench_core::neighbors::NeighborError| RunError::Invalid(e.to_string());
    match kind {
        MapKind::Ring => NeighborMap::ring(pes).map_err(bad),
        MapKind::Torus2d => {
            let (rows, cols) = torus_shape(pes.len());
            NeighborMap::grid2d(pes, rows, cols, true).map_err(bad)
        }
        MapKind::Tree => NeighborMap::tree(pes).map_err(bad),
        MapKind::Hierarchical => {
            let per_sip = topo.cubes_per_sip() as usize * topo.pes_per_cube() as usize;
            let whole: Vec<PeId> = topo.pes().take(pes.len()).collect();
            if pes.len() % per_sip != 0 && pes.len() % topo.pes_per_cube() as usize != 0 || whole != pes {
                return Err(RunError::Invalid(format!(
                    "the hierarchical map needs whole cubes of whole SIPs in structural order; {} PEs are not",
                    pes.len()
                )));
            }
            if pes.len() > per_sip && pes.len() % per_sip != 0 {
                return Err(RunError::Invalid(format!(
                    "the hierarchical map needs whole SIPs ({per_sip} PEs each) when it spans several; got {}",
                    pes.len()
                )));
            }
            NeighborMap::hierarchical(pes).map_err(bad)
        }
    }
}

/// Runs an algorithm once.
pub fn run(topo: &Topology, algo: &Algorithm, spec: &RunSpec) -> Result<RunResult, RunError> {
    let pes = ranks(topo, algo)?;
    run_on(topo, algo, &pes, spec)
}

/// Runs an algorithm on the given ranks.
pub fn run_on(topo: &Topology, algo: &Algorithm, pes: &[PeId], spec: &RunSpec) -> Result<RunResult, RunError> {
    let w = pes.len();
    let kname = format!("{}_{}", algo.kernel, spec.dtype);
    let kernel = kernbench_tl::find_kernel(&kname)
        .ok_or_else(|| RunError::Invalid(format!("no kernel `{kname}` is registered")))?;
    if spec.count == 0 {
        return Err(RunError::Invalid("count must be at least 1".into()));
    }
    if algo.collective == Collective::Broadcast && spec.root >= w {
        return Err(RunError::Invalid(format!("root {} is not a rank (world size {w})", spec.root)));
    }
    let map = neighbor_map(topo, algo.topology, pes)?;
    let mut machine = Machine::new(topo.clone()).map_err(|e| RunError::Invalid(e.to_string()))?;
    let n = spec.count;
    let buf = machine
        .alloc(spec.dtype, w * n, pes)
        .map_err(|e| RunError::Invalid(e.to_string()))?;
    let c = algo.collective;
    if spec.data {
        let mut init = vec![0f32; w * n];
        for r in 0..w {
            for i in 0..n {
                init[r * n + i] = match c {
                    Collective::AllReduce | Collective::ReduceScatter => input(spec.dtype, w, r, i),
                    Collective::AllGather => {
                        let (s, l) = kernbench_ccl_chunk(n, w, r);
                        if (s..s + l).contains(&i) { input(spec.dtype, w, r, i) } else { POISON }
                    }
                    Collective::Broadcast => {
                        if r == spec.root { input(spec.dtype, w, r, i) } else { POISON }
                    }
                };
            }
        }
        machine.write_buffer(&buf, &init).map_err(|e| RunError::Invalid(e.to_string()))?;
    }
    let es = spec.dtype.size() as u64;
    let seg = (algo.seg_bytes / es).max(1) as i64;
    let (_, cols) = torus_shape(w);
    let all = KernelArgs::new()
        .with("buf", ArgValue::Ptr { va: buf.va, dtype: spec.dtype, len: buf.len })
        .int("n", n as i64)
        .int("seg", seg)
        .int("op", spec.op.code())
        .int("root", spec.root as i64)
        .int("cols", cols as i64)
        .int("pes", topo.pes_per_cube() as i64)
        .int("cubes", topo.cubes_per_sip() as i64);
    let mut args = KernelArgs::new();
    for p in kernel.meta().params {
        if let Some(v) = all.get(p.name) {
            args.set(p.name, v.clone());
        }
    }
    let launch = Launch::new(kernel, args, pes.to_vec())
        .neighbors(map)
        .ipcq(algo.ipcq.clone())
        .data(spec.data)
        .trace(spec.trace);
    let outcome = simulate_full(&mut machine, &launch)?;
    let (mut wrong, mut checked) = (0, 0);
    if spec.data {
        let out = machine.read_buffer(&buf).map_err(|e| RunError::Invalid(e.to_string()))?;
        // The expected vector, once: O(w n).
        let mut owner = vec![0usize; n];
        for q in 0..w {
            let (s, l) = kernbench_ccl_chunk(n, w, q);
            owner[s..s + l].fill(q);
        }
        let expect: Vec<f64> = (0..n)
            .map(|i| match c {
                Collective::AllReduce | Collective::ReduceScatter => (1..w).fold(
                    f64::from(input(spec.dtype, w, 0, i)),
                    |a, q| spec.op.apply(a, f64::from(input(spec.dtype, w, q, i))),
                ),
                Collective::AllGather => f64::from(input(spec.dtype, w, owner[i], i)),
                Collective::Broadcast => f64::from(input(spec.dtype, w, spec.root, i)),
            })
            .collect();
        for r in 0..w {
            for i in 0..n {
                if c == Collective::ReduceScatter && owner[i] != r {
                    continue;
                }
                checked += 1;
                if f64::from(out[r * n + i]) != expect[i] {
                    wrong += 1;
                }
            }
        }
    }
    Ok(RunResult { outcome, wrong, checked, pes: pes.to_vec() })
}

fn kernbench_ccl_chunk(n: usize, w: usize, c: usize) -> (usize, usize) {
    crate::algorithms::common::chunk(n, w, c)
}
