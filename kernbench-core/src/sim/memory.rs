//! What a launch will hold in memory, estimated before it runs from a
//! sample of its instances, and what the host has free.

use super::error::SimError;
use super::Launch;
use crate::ir::{Command, CommandGraph};
use crate::machine::Machine;
use crate::passes::lower::PeProgram;
use crate::passes::trace::trace_one;
use crate::passes::{compile_instance, par_map_grain, Interner, TEMPLATE_COMMANDS};
use std::sync::Arc;

/// Resident bytes a run keeps per traced command of each instance: op
/// progress, HBM splits, channel bindings, the command table. Collectives
/// whose peers are directions peak at 25 to 35 bytes a command with data
/// and trace off (a ring all-reduce on 1024 PEs, a tree on 256;
/// `examples/bench_collectives` prints it); this keeps a margin above that.
pub const INSTANCE_BYTES_PER_COMMAND: u64 = 40;
/// Extra bytes per send or receive that names its peer by rank: the rank in
/// the command table and in pairing. Recursive doubling, whose every other
/// command is one, peaks at 44 bytes a command in all.
pub const RANK_BYTES_PER_COMMAND: u64 = 64;
/// Bytes per command of a lowered program (ops, dependencies both ways),
/// once per distinct program.
pub const PROGRAM_BYTES_PER_COMMAND: u64 = 200;
/// Bytes per IPCQ channel: its entry in pairing, its route, its ring of
/// ticket times and the queues of its model. A 1024-PE all-to-all (a
/// million channels) peaks at about 0.9 KiB a channel over its commands'
/// share (1.05 KiB before message-model channels left out slot-model
/// state and started their queues at one entry); this keeps a margin
/// above that.
pub const CHANNEL_BYTES: u64 = 1280;
/// Extra bytes per command when the graphs are kept (data execution or a trace).
pub const GRAPH_BYTES_PER_COMMAND: u64 = 350;
/// Extra bytes per command of a data run's race check: when it completed.
pub const RACE_BYTES_PER_COMMAND: u64 = 8;
/// Extra bytes per load, stream or store of a data run's race check: at most
/// two shadow segments (the range it touched, split off its neighbours), each
/// a map entry with its last writer and two readers inline.
pub const RACE_BYTES_PER_ACCESS: u64 = 144;
/// Extra bytes per command for a trace's op spans and link spans.
pub const TRACE_BYTES_PER_COMMAND: u64 = 160;
/// Extra bytes per command for the op spans of [`Launch::why`] (a few ops
/// a command, each a start and a span).
pub const WHY_BYTES_PER_COMMAND: u64 = 100;

/// What a launch is expected to hold in memory, from a sample of its instances.
#[derive(Clone, Debug, PartialEq)]
pub struct MemoryEstimate {
    /// Program instances.
    pub instances: usize,
    /// Commands per instance, the mean over the sample.
    pub commands_per_instance: u64,
    /// Distinct lowered programs expected (instances with equal programs share one).
    pub programs: u64,
    /// IPCQ channels expected: the distinct peers each instance sends to,
    /// the mean over the sample, times the instances.
    pub channels: u64,
    /// Bytes the data execution keeps: tile values and the race check's shadow (0 when data is off).
    pub data_bytes: u64,
    /// Device memory already written before the run (counted against an
    /// explicit limit; a machine's available memory already excludes it).
    pub machine_bytes: u64,
    /// What the run adds, bytes.
    pub bytes: u64,
}

impl MemoryEstimate {
    /// The estimate of a run of both launches (the device memory written
    /// before it is the same machine's, counted once).
    pub(crate) fn plus(&self, o: &MemoryEstimate) -> MemoryEstimate {
        let instances = self.instances + o.instances;
        let commands = self.commands_per_instance * self.instances as u64
            + o.commands_per_instance * o.instances as u64;
        MemoryEstimate {
            instances,
            commands_per_instance: commands / (instances as u64).max(1),
            programs: self.programs + o.programs,
            channels: self.channels + o.channels,
            data_bytes: self.data_bytes + o.data_bytes,
            machine_bytes: self.machine_bytes.max(o.machine_bytes),
            bytes: self.bytes.saturating_add(o.bytes),
        }
    }
}

impl std::fmt::Display for MemoryEstimate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "about {} ({} instances x {} commands, {} channels, {} distinct program(s)",
            human(self.bytes),
            self.instances,
            self.commands_per_instance,
            self.channels,
            self.programs
        )?;
        if self.data_bytes > 0 {
            write!(
                f,
                ", {} of tile values and race shadow",
                human(self.data_bytes)
            )?;
        }
        f.write_str(")")?;
        if self.machine_bytes > 0 {
            write!(
                f,
                " on top of {} of device memory already written",
                human(self.machine_bytes)
            )?;
        }
        Ok(())
    }
}

/// Bytes as `1.5 GiB`.
pub fn human(b: u64) -> String {
    let (v, unit) = match b {
        b if b >= 1 << 30 => (b as f64 / (1u64 << 30) as f64, "GiB"),
        b if b >= 1 << 20 => (b as f64 / (1u64 << 20) as f64, "MiB"),
        b if b >= 1 << 10 => (b as f64 / 1024.0, "KiB"),
        b => (b as f64, "B"),
    };
    format!("{v:.1} {unit}")
}

/// The instances the estimate traces: the first and the last, and seven
/// spread over the launch at the golden ratio's fractions. Evenly spaced
/// ranks (multiples of `n / 8`) would all be roots or inner nodes of a
/// power-of-two tree, heavier than the ranks they stand for: for a 1024-PE
/// binomial reduce they averaged five times the commands of the launch.
fn sample_of(n: usize) -> Vec<usize> {
    const PHI: f64 = 0.618_033_988_749_894_9;
    let mut sample: Vec<usize> = vec![0, n - 1];
    sample.extend((1..=7).map(|j| ((j as f64 * PHI).fract() * n as f64) as usize % n));
    sample.sort_unstable();
    sample.dedup();
    sample
}

/// Estimates a launch's memory by tracing up to nine instances spread over
/// it ([`sample_of`]; a trace error there is the launch's error, as it
/// would be later).
pub(crate) fn estimate(machine: &Machine, launch: &Launch) -> Result<MemoryEstimate, SimError> {
    let n = launch.pes.len();
    let sample = sample_of(n);
    let keep = launch.data || launch.trace || launch.keep_graphs;
    let interner = Interner::default();
    // What one sampled instance says; the sample runs over the machine's
    // cores, and its first error in sample order is the launch's.
    struct Sampled {
        commands: u64,
        channels: u64,
        rank_cmds: u64,
        accesses: u64,
        live_peak: u64,
        patch_bytes: u64,
        program: Option<Arc<PeProgram>>,
    }
    let sampled = par_map_grain(sample.len(), 1, |j| -> Result<Sampled, SimError> {
        let i = sample[j];
        if !keep {
            // How many distinct programs the sample lowers to says how much
            // sharing to expect. Lowering errors surface in the real run.
            // (Data is off, so tile values and accesses do not count.)
            let u = compile_instance(machine, launch, i, false, &interner)?;
            return Ok(Sampled {
                commands: u.table.len() as u64,
                channels: u.comm.send_peers() as u64,
                rank_cmds: u.comm.rank_addressed() as u64,
                accesses: 0,
                live_peak: 0,
                // The patch, the dependents that follow from it, and slack.
                patch_bytes: 3 * u.deps.bytes() as u64,
                program: Some(u.prog),
            });
        }
        let g = trace_one(machine.topology(), launch, i)?;
        let accesses = g
            .nodes()
            .filter(|(_, n)| {
                matches!(
                    n.cmd,
                    Command::Load { .. } | Command::Stream { .. } | Command::Store { .. }
                )
            })
            .count() as u64;
        let comm = crate::passes::pair::comm_of(&g);
        Ok(Sampled {
            commands: g.len() as u64,
            channels: comm.send_peers() as u64,
            rank_cmds: comm.rank_addressed() as u64,
            accesses,
            live_peak: peak_live_value_bytes(&g),
            patch_bytes: 0,
            program: None,
        })
    });
    let (mut commands, mut accesses, mut live_peak, mut patch_bytes) = (0u64, 0u64, 0u64, 0u64);
    let (mut channels, mut rank_cmds) = (0u64, 0u64);
    // Each distinct program the sample lowered to, and how many sampled
    // instances share it.
    let mut programs: Vec<(*const PeProgram, u64)> = Vec::new();
    for s in sampled {
        let s = s?;
        commands += s.commands;
        channels += s.channels;
        rank_cmds += s.rank_cmds;
        accesses += s.accesses;
        // Sums saturate: an estimate past u64 is as good as u64::MAX.
        live_peak = live_peak.saturating_add(s.live_peak);
        patch_bytes += s.patch_bytes;
        if let Some(p) = s.program.as_ref().map(Arc::as_ptr) {
            match programs.iter_mut().find(|(q, _)| *q == p) {
                Some((_, seen)) => *seen += 1,
                None => programs.push((p, 1)),
            }
        }
    }
    let k = sample.len() as u64;
    let per = commands.div_ceil(k);
    let total_cmds = per * n as u64;
    let total_channels = channels.saturating_mul(n as u64).div_ceil(k);
    let counts: Vec<u64> = programs.iter().map(|&(_, c)| c).collect();
    // Graphs kept: every instance lowers its own program.
    let shared_programs = if keep {
        n as u64
    } else {
        distinct_programs(&counts, n as u64)
    };
    let mut bytes = total_cmds * INSTANCE_BYTES_PER_COMMAND
        + (rank_cmds * n as u64).div_ceil(k) * RANK_BYTES_PER_COMMAND
        + shared_programs * per * PROGRAM_BYTES_PER_COMMAND
        + patch_bytes.div_ceil(k) * n as u64
        + total_channels * CHANNEL_BYTES;
    if keep {
        bytes += total_cmds * GRAPH_BYTES_PER_COMMAND;
    } else {
        // While it compiles: the graph each thread is tracing, and one
        // graph of each shape kept as a template (up to a budget).
        let threads = std::thread::available_parallelism().map_or(1, |t| t.get()) as u64;
        let templates = (shared_programs * per).min(TEMPLATE_COMMANDS as u64);
        bytes += (templates + threads * per).min(total_cmds) * GRAPH_BYTES_PER_COMMAND;
    }
    if launch.trace {
        bytes += total_cmds * TRACE_BYTES_PER_COMMAND;
    } else if launch.why {
        // Op spans, and each instance's own copy of its program at the end.
        bytes += total_cmds * WHY_BYTES_PER_COMMAND;
        if !keep {
            bytes += total_cmds * PROGRAM_BYTES_PER_COMMAND;
        }
    }
    // Data execution keeps each tile value, as f32, from its command to its
    // last reader, and the race check's shadow of the memory accessed.
    let data_bytes = if launch.data {
        let race = total_cmds * RACE_BYTES_PER_COMMAND
            + accesses.div_ceil(k) * n as u64 * RACE_BYTES_PER_ACCESS;
        live_peak
            .div_ceil(k)
            .saturating_mul(n as u64)
            .saturating_add(race)
    } else {
        0
    };
    Ok(MemoryEstimate {
        instances: n,
        commands_per_instance: per,
        programs: shared_programs,
        channels: total_channels,
        data_bytes,
        machine_bytes: machine.resident_bytes(),
        bytes: bytes.saturating_add(data_bytes),
    })
}

/// How many distinct programs `n` instances lower to, from a sample in which
/// the distinct programs were met `counts[i]` times each.
///
/// One program met throughout: one. Every sampled instance its own
/// program: every instance (the bound). Otherwise the sample has repeats,
/// and the count of programs met once against those met twice says how
/// many the sample missed (Chao's estimator, bias-corrected:
/// `d + f1 (f1 - 1) / (2 (f2 + 1))`). Collectives built on roles (a tree's
/// levels, a chain's ends) have a few programs however many instances
/// there are; extrapolating the rate at which the sample met new ones
/// instead would give them half the launch: for a 1024-PE binomial reduce,
/// 512 programs where it lowers to 11.
fn distinct_programs(counts: &[u64], n: u64) -> u64 {
    let d = counts.len() as u64;
    let k: u64 = counts.iter().sum();
    match d {
        0 => n,
        1 => 1,
        d if d == k => n,
        d => {
            let f1 = counts.iter().filter(|&&c| c == 1).count() as u64;
            let f2 = counts.iter().filter(|&&c| c == 2).count() as u64;
            (d + (f1 * f1.saturating_sub(1)).div_ceil(2 * (f2 + 1))).min(n)
        }
    }
}

/// The most bytes of tile values (as f32, with an array header each) alive
/// at once when `g` runs in program order, each from its command to its
/// last reader.
fn peak_live_value_bytes(g: &CommandGraph) -> u64 {
    let n = g.len();
    let mut last_use: Vec<Option<usize>> = vec![None; n];
    for (id, node) in g.nodes() {
        for v in node.cmd.operands() {
            last_use[v.index()] = Some(id.index());
        }
    }
    let mut frees: Vec<u64> = vec![0; n];
    let (mut live, mut peak) = (0u64, 0u64);
    for (id, node) in g.nodes() {
        if let Some(last) = last_use[id.index()] {
            let b = (node.ty.elems() as u64)
                .saturating_mul(4)
                .saturating_add(64);
            live = live.saturating_add(b);
            frees[last] = frees[last].saturating_add(b);
        }
        peak = peak.max(live);
        live = live.saturating_sub(frees[id.index()]);
    }
    peak
}

/// Memory this machine has free now (`MemAvailable`), when it can be read.
pub fn available_memory() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = s.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::{distinct_programs, sample_of};

    #[test]
    fn the_sample_holds_both_ends_and_no_run_of_powers_of_two() {
        assert_eq!(sample_of(1), vec![0]);
        assert_eq!(sample_of(2), vec![0, 1]);
        let s = sample_of(1024);
        assert_eq!(s.len(), 9);
        assert_eq!((s[0], s[8]), (0, 1023));
        // Inner ranks of a power-of-two tree have many trailing zeros;
        // the sample's inner ranks, apart from one, have few.
        let deep = s[1..8].iter().filter(|&&r| r.trailing_zeros() >= 3).count();
        assert!(deep <= 1, "{s:?}");
    }

    #[test]
    fn distinct_programs_follow_the_repeats_of_the_sample() {
        // Nothing lowered (graphs kept), one shared, all distinct.
        assert_eq!(distinct_programs(&[], 1024), 1024);
        assert_eq!(distinct_programs(&[9], 1024), 1);
        assert_eq!(distinct_programs(&[1; 9], 1024), 1024);
        assert_eq!(distinct_programs(&[1; 9], 5), 5);
        // A binomial reduce's nine samples on 1024 PEs: ranks by level.
        assert_eq!(distinct_programs(&[1, 4, 2, 1, 1], 1024), 7);
        // A chain: two ends and the middle.
        assert_eq!(distinct_programs(&[1, 7, 1], 1024), 4);
        // Repeats only: nothing missed.
        assert_eq!(distinct_programs(&[3, 3, 3], 1024), 3);
        // Never past the instances.
        assert_eq!(distinct_programs(&[1, 1, 1, 1, 1, 1, 1, 2], 10), 10);
    }
}
