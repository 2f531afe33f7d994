//! The tuner: at each size, the algorithm of a collective that the cost
//! model predicts fastest on the machine, as NCCL chooses between its ring
//! and its tree by size.
//!
//! ```
//! use kernbench_ccl::tune::{candidates, pick};
//! use kernbench_ccl::{Collective, Registry};
//! use kernbench_core::topology::Topology;
//!
//! let topo = Topology::builtin("tiny").unwrap();
//! let reg = Registry::builtin();
//! let pes: Vec<_> = topo.pes().collect();
//! let all = candidates(&topo, reg.algorithms(), Collective::AllReduce, &pes);
//! let p = pick(&topo, &all, &pes, 1048576.0).unwrap();
//! // The pick's model time is the least; the runner-up's is the next.
//! let runner_up = p.runner_up.as_ref().unwrap();
//! assert!(p.best.estimate.ns <= runner_up.estimate.ns);
//! assert_eq!(p.candidates, all.len());
//! ```

use crate::cost::{model, Estimate};
use crate::registry::{Algorithm, Collective};
use crate::run::{algorithm_map, ranks};
use kernbench_core::topology::Topology;
use kernbench_core::PeId;

/// What `--algos auto` writes for the tuner.
pub const AUTO: &str = "auto";

/// The algorithms of `algos` (in their order) that implement `coll` and
/// can run on `pes` of `topo`, and that the model knows:
/// - their world size, when they set one, is `pes.len()`;
/// - an inter-cube algorithm (one PE per cube) runs on its own ranks only,
///   so it is a candidate when `pes` are those ranks;
/// - their neighbour map can be built over `pes`;
/// - the model gives them a time (a kernel family registered from Rust has
///   no model, so the tuner cannot weigh it).
pub fn candidates<'a>(
    topo: &Topology,
    algos: &'a [Algorithm],
    coll: Collective,
    pes: &[PeId],
) -> Vec<&'a Algorithm> {
    algos
        .iter()
        .filter(|a| a.collective == coll)
        .filter(|a| a.world.is_none_or(|w| w == pes.len()))
        .filter(|a| {
            !a.topology.one_pe_per_cube() || ranks(topo, a).is_ok_and(|r| r.as_slice() == pes)
        })
        .filter(|a| algorithm_map(topo, a, pes).is_ok())
        .filter(|a| model(topo, a, pes, 4096.0).ns.is_finite())
        .collect()
}

/// One candidate's prediction.
#[derive(Clone, Debug)]
pub struct Prediction<'a> {
    /// The algorithm.
    pub algo: &'a Algorithm,
    /// Its model time and limiting term.
    pub estimate: Estimate,
}

/// The tuner's choice at one size.
#[derive(Clone, Debug)]
pub struct Pick<'a> {
    /// The candidate with the least model time (the first of them, in the
    /// candidates' order, when several tie).
    pub best: Prediction<'a>,
    /// The next one, when there are two candidates or more.
    pub runner_up: Option<Prediction<'a>>,
    /// Candidates weighed.
    pub candidates: usize,
}

/// The candidates ranked by model time for `bytes` per rank over `pes`,
/// fastest first; ties keep the candidates' order. Candidates whose model
/// gives no time are left out.
pub fn rank<'a>(
    topo: &Topology,
    candidates: &[&'a Algorithm],
    pes: &[PeId],
    bytes: f64,
) -> Vec<Prediction<'a>> {
    let mut v: Vec<Prediction<'a>> = candidates
        .iter()
        .map(|a| Prediction {
            algo: a,
            estimate: model(topo, a, pes, bytes),
        })
        .filter(|p| p.estimate.ns.is_finite())
        .collect();
    // A stable sort: equal times stay in the candidates' order.
    v.sort_by(|a, b| a.estimate.ns.total_cmp(&b.estimate.ns));
    v
}

/// The algorithm among `candidates` the model predicts fastest for `bytes`
/// per rank over `pes`, and the runner-up; `None` when no candidate has a
/// model time.
pub fn pick<'a>(
    topo: &Topology,
    candidates: &[&'a Algorithm],
    pes: &[PeId],
    bytes: f64,
) -> Option<Pick<'a>> {
    let ranked = rank(topo, candidates, pes, bytes);
    let n = ranked.len();
    let mut it = ranked.into_iter();
    let best = it.next()?;
    Some(Pick {
        best,
        runner_up: it.next(),
        candidates: n,
    })
}

/// Why the tuner has nothing to choose from.
pub fn no_candidates(topo: &Topology, coll: Collective, pes: usize) -> String {
    format!(
        "no {} algorithm of the registry can run on {pes} PEs of `{}` with a model the tuner can weigh",
        coll.name(),
        topo.name()
    )
}

/// The tuner's pick at one size against the simulation of every candidate.
#[derive(Clone, Debug)]
pub struct Trial {
    /// Bytes per rank.
    pub bytes: u64,
    /// The algorithm the model picked.
    pub picked: String,
    /// Its simulated time, ns.
    pub picked_ns: f64,
    /// The algorithm the simulation found fastest (the first of them in the
    /// candidates' order when several tie).
    pub best: String,
    /// Its simulated time, ns.
    pub best_ns: f64,
    /// Candidates weighed.
    pub candidates: usize,
    /// Every candidate's simulated time, ns, in the candidates' order.
    pub simulated: Vec<(String, f64)>,
}

impl Trial {
    /// Whether the pick ran as fast as the simulated best.
    pub fn hit(&self) -> bool {
        self.picked_ns <= self.best_ns
    }

    /// Simulated time of the pick over that of the best (1 when it hit).
    pub fn regret(&self) -> f64 {
        self.picked_ns / self.best_ns
    }
}

/// How well the tuner picked over some trials.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Score {
    /// Trials.
    pub trials: usize,
    /// Trials whose pick was the simulated best.
    pub hits: usize,
    /// The largest regret.
    pub max_regret: f64,
    /// The geometric mean of the regrets.
    pub mean_regret: f64,
}

impl Score {
    /// The score of `trials`.
    pub fn of(trials: &[Trial]) -> Score {
        let n = trials.len();
        let logs: f64 = trials.iter().map(|t| t.regret().ln()).sum();
        Score {
            trials: n,
            hits: trials.iter().filter(|t| t.hit()).count(),
            max_regret: trials.iter().map(Trial::regret).fold(1.0, f64::max),
            mean_regret: if n == 0 { 1.0 } else { (logs / n as f64).exp() },
        }
    }

    /// Hits over trials (1 for no trial).
    pub fn hit_rate(&self) -> f64 {
        if self.trials == 0 {
            1.0
        } else {
            self.hits as f64 / self.trials as f64
        }
    }
}

/// Simulates every candidate at every size (`f32` elements, timing only,
/// over `pes` on `fabric`) on `jobs` threads, and compares the tuner's pick
/// at each size with the fastest simulated.
pub fn check_picks(
    topo: &Topology,
    candidates: &[&Algorithm],
    pes: &[PeId],
    sizes: &[u64],
    fabric: kernbench_core::sim::FabricModel,
    jobs: usize,
) -> Result<Vec<Trial>, crate::run::RunError> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    let points: Vec<(usize, usize)> = (0..sizes.len())
        .flat_map(|s| (0..candidates.len()).map(move |c| (s, c)))
        .collect();
    let bytes = |s: usize| (sizes[s] / 4).max(1) * 4;
    let sims = Mutex::new(vec![vec![f64::NAN; candidates.len()]; sizes.len()]);
    let first_err = Mutex::new(None);
    let next = AtomicUsize::new(0);
    std::thread::scope(|sc| {
        for _ in 0..jobs.clamp(1, points.len().max(1)) {
            sc.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(s, c)) = points.get(i) else { break };
                let spec = crate::RunSpec::timing(
                    (bytes(s) / 4) as usize,
                    kernbench_core::DType::F32,
                    fabric,
                );
                match crate::run_on(topo, candidates[c], pes, &spec) {
                    Ok(r) => {
                        sims.lock().expect("no thread panics holding it")[s][c] =
                            r.outcome.report.sim_ns()
                    }
                    Err(e) => {
                        // The first failure in point order, whatever the timing.
                        let mut f = first_err.lock().expect("no thread panics holding it");
                        if f.as_ref().is_none_or(|(j, _)| i < *j) {
                            *f = Some((i, e));
                        }
                    }
                }
            });
        }
    });
    if let Some((_, e)) = first_err.into_inner().expect("no thread panicked") {
        return Err(e);
    }
    let sims = sims.into_inner().expect("no thread panicked");
    let mut out = Vec::new();
    for (s, sim) in sims.iter().enumerate() {
        let Some(p) = pick(topo, candidates, pes, bytes(s) as f64) else {
            continue;
        };
        let at = |name: &str| {
            let c = candidates.iter().position(|a| a.name == name).unwrap_or(0);
            sim[c]
        };
        let mut best = 0;
        for c in 1..candidates.len() {
            if sim[c] < sim[best] {
                best = c;
            }
        }
        out.push(Trial {
            bytes: bytes(s),
            picked: p.best.algo.name.clone(),
            picked_ns: at(&p.best.algo.name),
            best: candidates[best].name.clone(),
            best_ns: sim[best],
            candidates: p.candidates,
            simulated: candidates
                .iter()
                .zip(sim)
                .map(|(a, t)| (a.name.clone(), *t))
                .collect(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Registry;

    #[test]
    fn candidates_are_those_that_run_on_the_ranks() {
        let topo = Topology::builtin("tiny").unwrap();
        let reg = Registry::builtin();
        let pes: Vec<PeId> = topo.pes().collect();
        let names = |v: &[&Algorithm]| v.iter().map(|a| a.name.clone()).collect::<Vec<_>>();
        let all = candidates(&topo, reg.algorithms(), Collective::AllReduce, &pes);
        let n = names(&all);
        assert!(n.contains(&"ring_allreduce".to_string()), "{n:?}");
        assert!(n.contains(&"hierarchical_allreduce".to_string()), "{n:?}");
        // The inter-cube ones run on one PE per cube, not on these ranks.
        assert!(!n.iter().any(|x| x.starts_with("intercube")), "{n:?}");
        // In registry order.
        let mut sorted = n.clone();
        sorted.sort();
        assert_eq!(n, sorted);
        // On its own ranks, an inter-cube algorithm is one.
        let cubes = crate::run::intercube_ranks(&topo);
        let c = names(&candidates(
            &topo,
            reg.algorithms(),
            Collective::AllReduce,
            &cubes,
        ));
        assert!(c.iter().any(|x| x.starts_with("intercube")), "{c:?}");
        // Six PEs are not whole cubes: no hierarchical all-reduce.
        let six = names(&candidates(
            &topo,
            reg.algorithms(),
            Collective::AllReduce,
            &pes[..6],
        ));
        assert!(
            !six.contains(&"hierarchical_allreduce".to_string()),
            "{six:?}"
        );
        assert!(six.contains(&"ring_allreduce".to_string()), "{six:?}");
    }

    #[test]
    fn the_pick_is_the_least_model_time_and_ties_keep_registry_order() {
        let topo = Topology::builtin("tiny").unwrap();
        let reg = Registry::builtin();
        let pes: Vec<PeId> = topo.pes().collect();
        let all = candidates(&topo, reg.algorithms(), Collective::AllReduce, &pes);
        for bytes in [4096.0, 65536.0, 1048576.0] {
            let ranked = rank(&topo, &all, &pes, bytes);
            assert_eq!(ranked.len(), all.len());
            assert!(ranked
                .windows(2)
                .all(|w| w[0].estimate.ns <= w[1].estimate.ns));
            let p = pick(&topo, &all, &pes, bytes).unwrap();
            assert_eq!(p.best.algo.name, ranked[0].algo.name);
            assert_eq!(p.runner_up.unwrap().algo.name, ranked[1].algo.name);
        }
        // The three ring all-reduces differ in their IPCQ buffers only;
        // where the model gives them one time, the first by name wins.
        let rings: Vec<&Algorithm> = [
            "ring_allreduce_sram",
            "ring_allreduce",
            "ring_allreduce_hbm",
        ]
        .iter()
        .map(|n| reg.get(n).unwrap())
        .collect();
        let mut in_registry_order = rings.clone();
        in_registry_order.sort_by(|a, b| a.name.cmp(&b.name));
        let p = pick(&topo, &in_registry_order, &pes, 65536.0).unwrap();
        let best = p.best.estimate.ns;
        let first_best = in_registry_order
            .iter()
            .find(|a| model(&topo, a, &pes, 65536.0).ns == best)
            .unwrap();
        assert_eq!(p.best.algo.name, first_best.name);
        assert!(pick(&topo, &[], &pes, 65536.0).is_none());
    }
}
