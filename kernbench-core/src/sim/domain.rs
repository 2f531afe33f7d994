//! What commands compute, apart from when they run.
//!
//! The timed engine and the functional run decide *when* each command of each
//! instance runs; a [`ValueDomain`] decides *what* it does. Both runs drive the
//! same trait, so a domain written once (the numbers of [`Numeric`], the
//! contribution sets of `kernbench_ccl::verify`, or nothing at all with
//! [`OrderOnly`]) runs in program order with the functional run and in
//! simulated-time order with [`simulate_in`](crate::sim::simulate_in). A new
//! command's semantics are added to a domain, not to each run.
//!
//! A domain reports the memory each command touched through
//! [`Exec::accessed`]; where the run checks for data races (the timed run
//! with a domain), that is where the check happens, so it sees exactly the
//! bytes the domain read or wrote (a masked store only its selected
//! elements).

use super::data::{DataState, Races};
use super::pairing::Channels;
use super::SimError;
use crate::ir::{CmdId, CommandGraph};
use crate::machine::Machine;
use crate::PeId;

/// What the commands of a run compute: the values tiles hold, memory, and
/// what messages carry.
///
/// Calls for one instance come in its program order of completion; a
/// receive's [`execute`](ValueDomain::execute) comes after the matching
/// send's [`send`](ValueDomain::send), and messages on one channel are
/// received in the order they were sent.
pub trait ValueDomain {
    /// Called once before any command, with the traced graphs and the paired channels.
    fn begin(&mut self, graphs: &[CommandGraph], channels: &Channels) -> Result<(), SimError>;

    /// A send of instance `inst` starts: the tile it sends goes onto channel `chan`.
    fn send(
        &mut self,
        inst: usize,
        g: &CommandGraph,
        cmd: CmdId,
        chan: u32,
    ) -> Result<(), SimError>;

    /// Executes the command `x.cmd` of instance `x.inst`. A receive takes its
    /// message off `x.chan`; other commands have no channel.
    fn execute(&mut self, x: &mut Exec<'_>) -> Result<(), SimError>;

    /// The tile of `cmd` will not be read again (it may be dropped).
    fn release(&mut self, _inst: usize, _cmd: CmdId) {}
}

impl<D: ValueDomain + ?Sized> ValueDomain for &mut D {
    fn begin(&mut self, graphs: &[CommandGraph], channels: &Channels) -> Result<(), SimError> {
        (**self).begin(graphs, channels)
    }

    fn send(
        &mut self,
        inst: usize,
        g: &CommandGraph,
        cmd: CmdId,
        chan: u32,
    ) -> Result<(), SimError> {
        (**self).send(inst, g, cmd, chan)
    }

    fn execute(&mut self, x: &mut Exec<'_>) -> Result<(), SimError> {
        (**self).execute(x)
    }

    fn release(&mut self, inst: usize, cmd: CmdId) {
        (**self).release(inst, cmd)
    }
}

/// One command to execute, with the machine it runs on.
pub struct Exec<'a> {
    /// The machine (its memory is what loads read and stores write).
    pub machine: &'a mut Machine,
    /// The PE the instance runs on.
    pub pe: PeId,
    /// The instance.
    pub inst: usize,
    /// The instance's graph.
    pub graph: &'a CommandGraph,
    /// The command.
    pub cmd: CmdId,
    /// The channel a receive takes its message off.
    pub chan: Option<u32>,
    races: Option<Races<'a>>,
}

impl<'a> Exec<'a> {
    /// A command to execute with no race check.
    pub fn new(
        machine: &'a mut Machine,
        pe: PeId,
        inst: usize,
        graph: &'a CommandGraph,
        cmd: CmdId,
        chan: Option<u32>,
    ) -> Self {
        Exec {
            machine,
            pe,
            inst,
            graph,
            cmd,
            chan,
            races: None,
        }
    }

    pub(crate) fn with_races(mut self, races: Option<Races<'a>>) -> Self {
        self.races = races;
        self
    }

    /// `true` when the run checks the accesses reported through
    /// [`Exec::accessed`] for races (a domain may then skip working out an
    /// access's exact bytes otherwise).
    pub fn checks_races(&self) -> bool {
        self.races.is_some()
    }

    /// The command read (`write == false`) or wrote the byte runs
    /// `(virtual address, bytes)`. Report an access once it has run without
    /// a memory error; the run's race check, if any, takes it from here.
    pub fn accessed(&mut self, write: bool, runs: &[(u64, u64)]) -> Result<(), SimError> {
        match self.races.as_mut() {
            Some(r) => r.check.access(
                self.machine,
                (r.graphs, r.channels),
                (self.inst, self.cmd),
                write,
                runs,
            ),
            None => Ok(()),
        }
    }
}

/// The numeric domain: f32 tiles (rounded to their element type) and the
/// machine's memory. The timed run's `--verify-data` and the functional run
/// both compute with it, so they agree bit for bit.
#[derive(Default)]
pub struct Numeric {
    state: Option<DataState>,
}

impl Numeric {
    /// A numeric domain (it is set up by [`ValueDomain::begin`]).
    pub fn new() -> Self {
        Numeric::default()
    }

    fn state(&mut self) -> &mut DataState {
        self.state
            .as_mut()
            .expect("ValueDomain::begin is called before any command")
    }
}

impl ValueDomain for Numeric {
    fn begin(&mut self, graphs: &[CommandGraph], channels: &Channels) -> Result<(), SimError> {
        self.state = Some(DataState::new(graphs, channels.list.len()));
        Ok(())
    }

    fn send(
        &mut self,
        inst: usize,
        g: &CommandGraph,
        cmd: CmdId,
        chan: u32,
    ) -> Result<(), SimError> {
        self.state().send_start(inst, g, cmd, chan);
        Ok(())
    }

    fn execute(&mut self, x: &mut Exec<'_>) -> Result<(), SimError> {
        self.state().complete(x)
    }

    fn release(&mut self, inst: usize, cmd: CmdId) {
        if let Some(s) = self.state.as_mut() {
            s.values[inst][cmd.index()] = None;
        }
    }
}

/// A domain that computes nothing: message order, ring capacity and deadlocks only.
#[derive(Clone, Copy, Debug, Default)]
pub struct OrderOnly;

impl ValueDomain for OrderOnly {
    fn begin(&mut self, _: &[CommandGraph], _: &Channels) -> Result<(), SimError> {
        Ok(())
    }

    fn send(&mut self, _: usize, _: &CommandGraph, _: CmdId, _: u32) -> Result<(), SimError> {
        Ok(())
    }

    fn execute(&mut self, _: &mut Exec<'_>) -> Result<(), SimError> {
        Ok(())
    }
}
