//! Checking collectives without the timing model: a numeric check through the
//! functional run, and a symbolic check that follows every contribution.
//!
//! The symbolic check runs the collective's kernels in a second value domain
//! of the functional interpreter ([`kernbench_core::functional`]): every
//! element holds the multiset of `(rank, index)` inputs it has been combined
//! from. Loads, stores, sends and receives copy these sets, and so do the
//! views and moves of tiles (`reshape`, `expand_dims`, `broadcast_to`,
//! `trans`, `cast`); the collectives' combines (`add`, `max`, `min` of two
//! tiles, broadcast by numpy's rules, and the `sum`, `max`, `min` reductions
//! along an axis) merge them. At the end every element must
//! hold exactly what the collective promises, each contribution exactly once,
//! which catches a contribution counted twice even where a numeric check
//! cannot tell (a `max` of a value with itself, or inputs that happen to be 0).
//!
//! ```
//! use kernbench_ccl::{verify, Registry};
//! use kernbench_core::topology::Topology;
//!
//! let topo = Topology::builtin("tiny").unwrap();
//! let reg = Registry::builtin();
//! let algo = reg.get("ring_allreduce").unwrap();
//! let pes: Vec<_> = topo.pes().take(5).collect();
//! let report = verify::symbolic(&topo, algo, &pes, 37).unwrap();
//! assert!(report.is_ok(), "{report}");
//! assert_eq!(report.checked, 5 * 37);
//! ```

use crate::registry::{Algorithm, Collective};
use crate::run::{
    all_to_all_source, check, holds_input, is_checked, owners, setup, source_rank, RedOp, RunError,
    RunSpec, Setup,
};
use kernbench_core::functional::{self, region_runs, Exec, Numeric, ValueDomain};
use kernbench_core::ir::{CmdId, Command, CommandGraph, MathOp, MemRef, Operand, ReduceOp};
use kernbench_core::machine::{Machine, MemError};
use kernbench_core::passes::pair::Channels;
use kernbench_core::sim::{Launch, LaunchError, SimError};
use kernbench_core::topology::Topology;
use kernbench_core::{DType, PeId};
use std::collections::VecDeque;
use std::fmt;

/// How many offending elements a report keeps.
const MAX_OFFENDERS: usize = 8;

/// One contribution: the input of `rank` at element `index` of its vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Contribution {
    /// The rank whose input it is.
    pub rank: u32,
    /// The element of that rank's vector.
    pub index: u32,
}

impl Contribution {
    fn key(self) -> u64 {
        (u64::from(self.rank) << 32) | u64::from(self.index)
    }

    fn of_key(k: u64) -> Contribution {
        Contribution {
            rank: (k >> 32) as u32,
            index: k as u32,
        }
    }
}

impl fmt::Display for Contribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({}, {})", self.rank, self.index)
    }
}

/// An element whose contributions are not what the collective promises.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offender {
    /// The rank holding the element.
    pub rank: usize,
    /// The element of that rank's vector.
    pub element: usize,
    /// What it holds: each contribution with how many times.
    pub holds: Vec<(Contribution, u32)>,
    /// Promised contributions it lacks.
    pub missing: usize,
    /// Extra copies of promised contributions.
    pub duplicated: usize,
    /// Contributions it should not hold at all.
    pub foreign: usize,
}

impl fmt::Display for Offender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rank {} element {}: {} missing, {} duplicated, {} foreign; holds {{",
            self.rank, self.element, self.missing, self.duplicated, self.foreign
        )?;
        for (k, (c, n)) in self.holds.iter().enumerate() {
            if k > 0 {
                f.write_str(", ")?;
            }
            if k == 16 {
                write!(f, "... {} more", self.holds.len() - 16)?;
                break;
            }
            if *n > 1 {
                write!(f, "{c} x{n}")?;
            } else {
                write!(f, "{c}")?;
            }
        }
        f.write_str("}")
    }
}

/// The result of a symbolic check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SymbolicReport {
    /// The algorithm.
    pub algorithm: String,
    /// Its collective.
    pub collective: Collective,
    /// World size.
    pub ranks: usize,
    /// Elements per rank.
    pub count: usize,
    /// Elements with a promised result that were checked.
    pub checked: usize,
    /// Promised contributions that never arrived, over all elements.
    pub missing: usize,
    /// Extra copies of promised contributions (a contribution combined twice counts one).
    pub duplicated: usize,
    /// Contributions an element should not hold (another element's, or a rank not promised).
    pub foreign: usize,
    /// Elements with any of the above.
    pub offending: usize,
    /// The first few offending elements, in rank then element order.
    pub offenders: Vec<Offender>,
    /// Messages delivered.
    pub messages: u64,
}

impl SymbolicReport {
    /// Whether every checked element holds exactly its promised contributions.
    pub fn is_ok(&self) -> bool {
        self.missing == 0 && self.duplicated == 0 && self.foreign == 0
    }
}

impl fmt::Display for SymbolicReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} ({}) on {} ranks x {} elements: {} checked, {} offending; contributions: {} missing, {} duplicated, {} foreign ({} messages)",
            self.algorithm,
            self.collective.name(),
            self.ranks,
            self.count,
            self.checked,
            self.offending,
            self.missing,
            self.duplicated,
            self.foreign,
            self.messages
        )?;
        for o in &self.offenders {
            writeln!(f, "  {o}")?;
        }
        if self.offending > self.offenders.len() {
            writeln!(
                f,
                "  ... and {} more",
                self.offending - self.offenders.len()
            )?;
        }
        Ok(())
    }
}

/// A multiset of contributions: keys sorted, a key repeated once per copy.
type Set = Vec<u64>;

/// A tile: one set per element, in row-major order.
type Tile = Vec<Set>;

fn merge(a: &Set, b: &Set) -> Set {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i] <= b[j] {
            out.push(a[i]);
            i += 1;
        } else {
            out.push(b[j]);
            j += 1;
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

/// For each element of a tile of shape `out` (row-major), the element of a
/// tile of shape `from` that numpy's broadcasting spreads to it.
fn broadcast_index(from: &[usize], out: &[usize]) -> Vec<usize> {
    let pad = out.len() - from.len();
    let mut strides = vec![0usize; out.len()];
    let mut st = 1;
    for d in (0..from.len()).rev() {
        if from[d] != 1 {
            strides[d + pad] = st;
        }
        st *= from[d];
    }
    let total: usize = out.iter().product();
    let mut at = vec![0usize; out.len()];
    let mut v = Vec::with_capacity(total);
    for _ in 0..total {
        v.push(at.iter().zip(&strides).map(|(i, s)| i * s).sum());
        for d in (0..out.len()).rev() {
            at[d] += 1;
            if at[d] < out[d] {
                break;
            }
            at[d] = 0;
        }
    }
    v
}

/// `t` (of shape `from`) spread to shape `out`.
fn spread(t: &Tile, from: &[usize], out: &[usize]) -> Tile {
    if from == out {
        return t.clone();
    }
    broadcast_index(from, out)
        .into_iter()
        .map(|i| t[i].clone())
        .collect()
}

/// The sets of `t` (of shape `shape`) merged along `axis`.
fn reduce_axis(t: &Tile, shape: &[usize], axis: usize) -> Tile {
    let outer: usize = shape[..axis].iter().product();
    let len = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let mut out = Vec::with_capacity(outer * inner);
    for o in 0..outer {
        for i in 0..inner {
            let mut acc = Set::new();
            for k in 0..len {
                acc = merge(&acc, &t[(o * len + k) * inner + i]);
            }
            out.push(acc);
        }
    }
    out
}

/// The contribution domain: the launch's buffer as one set per element,
/// tiles as sets, messages carrying them.
struct Contributions {
    buf_va: u64,
    dtype: DType,
    mem: Vec<Set>,
    values: Vec<Vec<Option<Tile>>>,
    in_flight: Vec<VecDeque<Tile>>,
    /// Why the run stopped, when it met a command the domain does not model.
    unsupported: Option<LaunchError>,
}

impl Contributions {
    fn val(&self, inst: usize, v: CmdId) -> &Tile {
        self.values[inst][v.index()]
            .as_ref()
            .expect("operands run before their users")
    }

    /// The buffer elements a region covers, in order, checked against the
    /// machine's mapping as data execution checks it.
    fn elements(
        &self,
        m: &Machine,
        pe: PeId,
        r: &MemRef,
        g: &CommandGraph,
        cmd: CmdId,
    ) -> Result<Vec<usize>, SimError> {
        let loc = &g.node(cmd).loc;
        let es = self.dtype.size() as u64;
        let end = self.buf_va + self.mem.len() as u64 * es;
        let mut out = Vec::new();
        for (va, len) in region_runs(r) {
            m.translate(pe, va, len).map_err(|err| SimError::Memory {
                pe,
                loc: loc.clone(),
                err: m.through_param(err, r),
            })?;
            if va < self.buf_va || va + len > end || r.dtype != self.dtype {
                return Err(SimError::Memory {
                    pe,
                    loc: loc.clone(),
                    err: MemError::Unmapped { pe, va, bytes: len },
                });
            }
            let first = ((va - self.buf_va) / es) as usize;
            out.extend(first..first + (len / es) as usize);
        }
        Ok(out)
    }

    fn unsupported(&mut self, pe: PeId, g: &CommandGraph, cmd: CmdId) -> SimError {
        let node = g.node(cmd);
        let err = LaunchError::Unsupported {
            domain: "symbolic verification",
            op: node.cmd.mnemonic(),
            pe,
            loc: node.loc.clone(),
            supported: "only loads, stores, full tiles, sends, receives, waits, casts, views (reshape, broadcast_to, trans), add/max/min of two tiles and sum/max/min reductions carry contributions",
        };
        self.unsupported = Some(err.clone());
        SimError::Launch(err)
    }
}

impl ValueDomain for Contributions {
    fn begin(&mut self, graphs: &[CommandGraph], channels: &Channels) -> Result<(), SimError> {
        self.values = graphs.iter().map(|g| vec![None; g.len()]).collect();
        self.in_flight = vec![VecDeque::new(); channels.list.len()];
        Ok(())
    }

    fn send(
        &mut self,
        inst: usize,
        g: &CommandGraph,
        cmd: CmdId,
        chan: u32,
    ) -> Result<(), SimError> {
        if let Command::Send { value, .. } = &g.node(cmd).cmd {
            let v = self.val(inst, *value).clone();
            self.in_flight[chan as usize].push_back(v);
        }
        Ok(())
    }

    fn execute(&mut self, ex: &mut Exec<'_>) -> Result<(), SimError> {
        let (m, pe, inst, g, cmd, chan) = (&*ex.machine, ex.pe, ex.inst, ex.graph, ex.cmd, ex.chan);
        let node = g.node(cmd);
        let out: Option<Tile> = match &node.cmd {
            Command::Load { src, mask: None } => {
                let idx = self.elements(m, pe, src, g, cmd)?;
                Some(idx.iter().map(|&e| self.mem[e].clone()).collect())
            }
            Command::Store {
                dst,
                value,
                mask: None,
            } => {
                let idx = self.elements(m, pe, dst, g, cmd)?;
                let v = self.values[inst][value.index()]
                    .take()
                    .expect("operands run before their users");
                for (&e, s) in idx.iter().zip(&v) {
                    self.mem[e].clone_from(s);
                }
                self.values[inst][value.index()] = Some(v);
                None
            }
            Command::Full { .. } | Command::Arange { .. } => {
                Some(vec![Set::new(); node.ty.elems()])
            }
            Command::Math {
                op: MathOp::Add | MathOp::Max | MathOp::Min,
                args,
            } => match args.as_slice() {
                [Operand::Value(a), Operand::Value(b)] => {
                    let out = &node.ty.shape;
                    let a = spread(self.val(inst, *a), &g.node(*a).ty.shape, out);
                    let b = spread(self.val(inst, *b), &g.node(*b).ty.shape, out);
                    Some(a.iter().zip(&b).map(|(x, y)| merge(x, y)).collect())
                }
                _ => return Err(self.unsupported(pe, g, cmd)),
            },
            Command::Reduce {
                op: ReduceOp::Sum | ReduceOp::Max | ReduceOp::Min,
                x,
                axis,
            } => Some(reduce_axis(self.val(inst, *x), &g.node(*x).ty.shape, *axis)),
            Command::Reshape { x } => Some(self.val(inst, *x).clone()),
            Command::Broadcast { x } => Some(spread(
                self.val(inst, *x),
                &g.node(*x).ty.shape,
                &node.ty.shape,
            )),
            Command::Trans { x } => {
                let t = self.val(inst, *x);
                let (rows, cols) = (node.ty.shape[1], node.ty.shape[0]);
                Some(
                    (0..cols)
                        .flat_map(|j| (0..rows).map(move |i| i * cols + j))
                        .map(|k| t[k].clone())
                        .collect(),
                )
            }
            Command::Math {
                op: MathOp::Cast,
                args,
            } => match args.as_slice() {
                [Operand::Value(a)] => Some(self.val(inst, *a).clone()),
                _ => return Err(self.unsupported(pe, g, cmd)),
            },
            Command::Send { .. } => None,
            Command::Recv { .. } => {
                let c = chan.expect("a receive has a channel") as usize;
                Some(
                    self.in_flight[c]
                        .pop_front()
                        .expect("a paired send put the message on the channel first"),
                )
            }
            Command::Wait { future } => Some(self.val(inst, *future).clone()),
            // Masked loads and stores choose elements by value, which
            // contribution sets do not carry; the rest computes new values.
            Command::Load { mask: Some(_), .. }
            | Command::Store { mask: Some(_), .. }
            | Command::Stream { .. }
            | Command::Math { .. }
            | Command::Dot { .. }
            | Command::Reduce { .. }
            | Command::Softmax { .. } => return Err(self.unsupported(pe, g, cmd)),
        };
        if let Some(v) = out {
            self.values[inst][cmd.index()] = Some(v);
        }
        Ok(())
    }

    fn release(&mut self, inst: usize, cmd: CmdId) {
        self.values[inst][cmd.index()] = None;
    }
}

/// The launch of a set-up collective.
fn launch(s: &Setup, algo: &Algorithm, pes: &[PeId]) -> Launch<'static> {
    Launch::new(s.kernel, s.args.clone(), pes.to_vec())
        .neighbors(s.map.clone())
        .ipcq(algo.ipcq.clone())
}

/// Runs an algorithm on `pes` with `count` elements per rank in the
/// contribution domain and checks that every element ends with exactly the
/// contributions its collective promises, each once: all-reduce, every
/// `(q, i)` at element `i` of every rank; reduce-scatter, the same on rank
/// `r`'s chunk of rank `r`; all-gather, `(owner(i), i)` everywhere;
/// broadcast, `(root, i)` with root 0; reduce and gather, what all-reduce and
/// all-gather promise, on root 0 only; all-to-all, element `t` of block `j`
/// of rank `r` holds `(j, r b + t)` (blocks of `b = n / w`, the tail its own).
///
/// A kernel that computes anything but copies, views and combines (`add`,
/// `max`, `min`, and the `sum`, `max`, `min` reductions) is refused with
/// [`RunError::NotSymbolic`] naming the kernel line.
pub fn symbolic(
    topo: &Topology,
    algo: &Algorithm,
    pes: &[PeId],
    count: usize,
) -> Result<SymbolicReport, RunError> {
    symbolic_in(topo, algo, pes, count, Order::Program)
}

/// The order a check executes the commands of a collective in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Order {
    /// The functional run's: each instance in program order, taking turns
    /// where messages let them. Cheapest.
    #[default]
    Program,
    /// The timed engine's: each command when its last op completes in
    /// simulated time, as `--verify-data` runs.
    Timed,
}

/// [`symbolic`], with the commands executed in `order`. Both orders must
/// give the same verdict: a collective's result may not depend on timing.
pub fn symbolic_in(
    topo: &Topology,
    algo: &Algorithm,
    pes: &[PeId],
    count: usize,
    order: Order,
) -> Result<SymbolicReport, RunError> {
    let w = pes.len();
    let spec = RunSpec {
        fabric: Default::default(),
        ties: Default::default(),
        max_memory: None,
        progress: Default::default(),
        count,
        dtype: DType::F32,
        op: RedOp::Sum,
        root: 0,
        data: false,
        trace: false,
        why: false,
    };
    let s = setup(topo, algo, pes, &spec)?;
    let c = algo.collective;
    let n = count;
    let index = |x: usize| u32::try_from(x).map_err(|_| RunError::SymbolicIndex { value: x });
    let mut mem = vec![Set::new(); w * n];
    for r in 0..w {
        for i in 0..n {
            if holds_input(c, n, w, spec.root, r, i) {
                mem[r * n + i].push(
                    Contribution {
                        rank: index(r)?,
                        index: index(i)?,
                    }
                    .key(),
                );
            }
        }
    }
    let mut domain = Contributions {
        buf_va: s.buf.va,
        dtype: s.buf.dtype,
        mem,
        values: Vec::new(),
        in_flight: Vec::new(),
        unsupported: None,
    };
    let l = launch(&s, algo, pes);
    let mut machine = s.machine;
    let run = match order {
        Order::Program => functional::run_with(&mut machine, &l, &mut domain).map(|o| o.messages),
        Order::Timed => kernbench_core::sim::simulate_in(&mut machine, &l, &mut domain)
            .map(|o| o.messages_sent()),
    };
    let messages = match run {
        Ok(o) => o,
        Err(e) => {
            return Err(match domain.unsupported.take() {
                Some(err) => RunError::NotSymbolic(err),
                None => RunError::Sim(e),
            })
        }
    };
    let owner = owners(n, w);
    let mut report = SymbolicReport {
        algorithm: algo.name.clone(),
        collective: c,
        ranks: w,
        count: n,
        checked: 0,
        missing: 0,
        duplicated: 0,
        foreign: 0,
        offending: 0,
        offenders: Vec::new(),
        messages,
    };
    for r in 0..w {
        for (i, &own) in owner.iter().enumerate() {
            if !is_checked(c, own, r, spec.root) {
                continue;
            }
            report.checked += 1;
            // The rank and element each promised contribution comes from.
            let (from, at) = if c == Collective::AllToAll {
                let (q, j) = all_to_all_source(n, w, r, i);
                (Some(q), j)
            } else {
                (source_rank(c, own, spec.root), i)
            };
            let promised = |q: u32| match from {
                None => (q as usize) < w,
                Some(p) => q as usize == p,
            };
            let promised_count = match from {
                None => w,
                Some(_) => 1,
            };
            let set = &domain.mem[r * n + i];
            let (mut present, mut duplicated, mut foreign) = (0, 0, 0);
            let mut holds: Vec<(Contribution, u32)> = Vec::new();
            for &k in set {
                match holds.last_mut() {
                    Some((c, m)) if c.key() == k => *m += 1,
                    _ => holds.push((Contribution::of_key(k), 1)),
                }
            }
            for (ct, m) in &holds {
                if ct.index as usize == at && promised(ct.rank) {
                    present += 1;
                    duplicated += *m as usize - 1;
                } else {
                    foreign += *m as usize;
                }
            }
            let missing = promised_count - present;
            if missing + duplicated + foreign > 0 {
                report.missing += missing;
                report.duplicated += duplicated;
                report.foreign += foreign;
                report.offending += 1;
                if report.offenders.len() < MAX_OFFENDERS {
                    report.offenders.push(Offender {
                        rank: r,
                        element: i,
                        holds,
                        missing,
                        duplicated,
                        foreign,
                    });
                }
            }
        }
    }
    Ok(report)
}

/// Runs an algorithm on `pes` functionally (data and message order, no
/// timing) with the inputs of [`crate::run()`] and compares every promised
/// element exactly: `(wrong, checked)` elements. The spec's `data` and
/// `trace` are ignored (data always runs; there is no timeline).
pub fn functional(
    topo: &Topology,
    algo: &Algorithm,
    pes: &[PeId],
    spec: &RunSpec,
) -> Result<(usize, usize), RunError> {
    let spec = RunSpec {
        fabric: Default::default(),
        ties: Default::default(),
        max_memory: None,
        progress: Default::default(),
        data: true,
        trace: false,
        ..spec.clone()
    };
    let s = setup(topo, algo, pes, &spec)?;
    let l = launch(&s, algo, pes);
    let (mut machine, buf) = (s.machine, s.buf);
    functional::run_with(&mut machine, &l, &mut Numeric::new())?;
    check(&machine, &buf, algo.collective, &spec, pes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting_spreads_rows_and_columns() {
        assert_eq!(broadcast_index(&[3], &[2, 3]), [0, 1, 2, 0, 1, 2]);
        assert_eq!(broadcast_index(&[2, 1], &[2, 3]), [0, 0, 0, 1, 1, 1]);
        assert_eq!(broadcast_index(&[1, 1], &[2, 2]), [0, 0, 0, 0]);
        assert_eq!(broadcast_index(&[2, 3], &[2, 3]), [0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn reductions_merge_along_their_axis() {
        // [[a, b, c], [d, e, f]] as one-element sets 0..6.
        let t: Tile = (0..6u64).map(|k| vec![k]).collect();
        assert_eq!(
            reduce_axis(&t, &[2, 3], 0),
            vec![vec![0, 3], vec![1, 4], vec![2, 5]]
        );
        assert_eq!(
            reduce_axis(&t, &[2, 3], 1),
            vec![vec![0, 1, 2], vec![3, 4, 5]]
        );
    }
}
