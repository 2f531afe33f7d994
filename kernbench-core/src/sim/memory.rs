//! What a launch will hold in memory, estimated before it runs from a
//! sample of its instances, and what the host has free.

use super::error::SimError;
use super::Launch;
use crate::ir::{Command, CommandGraph};
use crate::machine::Machine;
use crate::passes::lower::PeProgram;
use crate::passes::trace::trace_one;
use crate::passes::{compile_instance, par_map_grain, Interner};
use std::sync::Arc;

/// Resident bytes a run keeps per traced command of each instance: op
/// progress, HBM bytes, channels, the command table. Collectives with data
/// and trace off peak at 41-60 bytes per command in all
/// (`examples/bench_collectives` prints it); this keeps a margin above that.
pub const INSTANCE_BYTES_PER_COMMAND: u64 = 64;
/// Bytes per command of a lowered program (ops, dependencies both ways),
/// once per distinct program.
pub const PROGRAM_BYTES_PER_COMMAND: u64 = 200;
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
            "about {} ({} instances x {} commands, {} distinct program(s)",
            human(self.bytes),
            self.instances,
            self.commands_per_instance,
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

/// Estimates a launch's memory by tracing up to nine instances spread over
/// it (a trace error there is the launch's error, as it would be later).
pub(crate) fn estimate(machine: &Machine, launch: &Launch) -> Result<MemoryEstimate, SimError> {
    let n = launch.pes.len();
    let mut sample: Vec<usize> = (0..8).map(|k| k * n / 8).collect();
    sample.push(n - 1);
    sample.dedup();
    let keep = launch.data || launch.trace || launch.keep_graphs;
    let interner = Interner::default();
    // What one sampled instance says; the sample runs over the machine's
    // cores, and its first error in sample order is the launch's.
    struct Sampled {
        commands: u64,
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
        Ok(Sampled {
            commands: g.len() as u64,
            accesses,
            live_peak: peak_live_value_bytes(&g),
            patch_bytes: 0,
            program: None,
        })
    });
    let (mut commands, mut accesses, mut live_peak, mut patch_bytes) = (0u64, 0u64, 0u64, 0u64);
    let mut programs: Vec<*const PeProgram> = Vec::new();
    for s in sampled {
        let s = s?;
        commands += s.commands;
        accesses += s.accesses;
        // Sums saturate: an estimate past u64 is as good as u64::MAX.
        live_peak = live_peak.saturating_add(s.live_peak);
        patch_bytes += s.patch_bytes;
        if let Some(p) = s.program.as_ref().map(Arc::as_ptr) {
            if !programs.contains(&p) {
                programs.push(p);
            }
        }
    }
    let k = sample.len() as u64;
    let per = commands.div_ceil(k);
    let total_cmds = per * n as u64;
    // Distinct programs over the launch: one when the sample shares one,
    // else in proportion to how often the sample met a new one.
    let distinct = programs.len() as u64;
    let shared_programs = match distinct {
        0 => n as u64,
        1 => 1,
        d => (d + (d - 1) * (n as u64 - k) / (k - 1).max(1)).min(n as u64),
    };
    let mut bytes = total_cmds * INSTANCE_BYTES_PER_COMMAND
        + shared_programs * per * PROGRAM_BYTES_PER_COMMAND
        + patch_bytes.div_ceil(k) * n as u64;
    if keep {
        bytes += total_cmds * GRAPH_BYTES_PER_COMMAND;
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
        data_bytes,
        machine_bytes: machine.resident_bytes(),
        bytes: bytes.saturating_add(data_bytes),
    })
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
