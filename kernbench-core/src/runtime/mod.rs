//! The host runtime: device tensors placed inside a SIP by a data-parallel
//! policy, kernel launches bound to parameters by name, and ranks (one worker
//! thread per SIP) that meet in collectives, all on one shared machine.
//!
//! ```
//! use kernbench_core::runtime::{Placement, Runtime};
//! use kernbench_core::topology::Topology;
//! use ndarray::array;
//!
//! let rt = Runtime::with_topology(Topology::builtin("tiny").unwrap())?;
//! let host = array![[1.0f32, 2.0], [3.0, 4.0]];
//! let t = rt.from_array(&host, &Placement::row_wise().cubes(1).pes(2))?;
//! // Row 1 lives on PE 1 of cube 0 of SIP 0.
//! let s = &t.shards()[1];
//! assert_eq!((s.sip, s.cube, s.pe, s.rows.clone()), (0, 0, 1, 1..2));
//! assert_eq!(t.to_ndarray::<f32>()?, host.into_dyn());
//! # Ok::<(), kernbench_core::runtime::RuntimeError>(())
//! ```
//!
//! Shape of the runtime (ADR 0005, ADR 0028): [`Runtime::launch`] is
//! synchronous (simulated to completion before it returns), while
//! [`Runtime::launch_async`] queues a launch on a [`Stream`] and returns a
//! [`LaunchHandle`]; pending work runs, a device's all together on one
//! timeline, when the host needs a result, and a host read waits for the
//! launches that take the tensor it reads. Ranks are OS threads started by
//! [`Runtime::spawn`] that share one [`Machine`] behind a mutex; a collective is a rendezvous in which the
//! last rank to arrive runs the collective kernel once for everyone, among
//! every rank or the members of a [`ProcessGroup`] (ADR 0024). Inside a
//! worker, the [`dist`] and [`device`] free functions answer for the rank
//! whose worker runs on the thread.
//!
//! Time: every SIP has a device timeline. A launch starts when the latest of
//! the SIPs it runs on is free and advances them all by its simulated time
//! ([`Report::end_ps`]); a collective thereby synchronises its ranks' SIPs.
//! [`Runtime::now_ps`] is the latest of all timelines. Host <-> device copies
//! are not timed.

mod context;
mod error;
mod launch;
mod placement;
mod rank;
mod stream;
mod tensor;

pub use context::{device, dist};
pub use error::{
    CollectiveError, GroupError, LaunchSetupError, MemoryOp, PlacementError, RankFailure,
    RuntimeError, SpawnError, TensorShapeError, TpError, TpErrorKind, WorkerError,
};
pub use launch::{Arg, Args, Param};
pub use placement::{resolve, Placement, ShardSpec, Split, TileOrder};
pub use rank::{ProcessGroup, Rank};
pub use stream::{Completed, Event, LaunchHandle, Stream};
pub use tensor::{DeviceTensor, HostElement, HostFloat};

/// The ndarray crate the runtime reads and writes host arrays with.
pub use ndarray;

use crate::machine::{Machine, Shard};
use crate::sim::Report;
use crate::topology::Topology;
use crate::{DType, PeId, Ps};
use ndarray::{ArrayBase, Data, Dimension};
use rank::Group;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// What every handle of one runtime shares: the machine and its clocks.
pub(crate) struct Shared {
    machine: Mutex<Machine>,
    topo: Topology,
    clocks: Mutex<Vec<Ps>>,
    /// Asynchronous work: pending launches, streams, host times. Taken
    /// before the machine when both are.
    queue: Mutex<stream::Queue>,
}

impl Shared {
    /// The machine. A rank that panicked while holding it does not make it
    /// unusable: the run is aborting and the others only need to stop cleanly.
    pub(crate) fn machine(&self) -> MutexGuard<'_, Machine> {
        self.machine.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn clocks(&self) -> MutexGuard<'_, Vec<Ps>> {
        self.clocks.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A handle on a simulated machine and the device (SIP) it works on.
///
/// Clones share the machine and the device binding. Inside
/// [`Runtime::spawn`] each rank gets its own handle (a [`Rank`]) bound to
/// SIP `rank`.
#[derive(Clone)]
pub struct Runtime {
    shared: Arc<Shared>,
    device: Arc<AtomicU16>,
    ctx: Option<(usize, Arc<Group>)>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("topology", &self.shared.topo.name())
            .field("device", &self.current_device())
            .finish()
    }
}

impl Runtime {
    /// A runtime on the embedded default machine (2 SIPs x 16 cubes x 8 PEs).
    pub fn new() -> Result<Runtime, RuntimeError> {
        Runtime::with_topology(Topology::embedded_default())
    }

    /// A runtime on a machine of the given topology, device 0 current.
    pub fn with_topology(topo: Topology) -> Result<Runtime, RuntimeError> {
        let machine = Machine::new(topo.clone()).map_err(RuntimeError::Machine)?;
        let sips = topo.num_sips() as usize;
        Ok(Runtime {
            shared: Arc::new(Shared {
                machine: Mutex::new(machine),
                topo,
                clocks: Mutex::new(vec![0; sips]),
                queue: Mutex::new(stream::Queue::new(sips)),
            }),
            device: Arc::new(AtomicU16::new(0)),
            ctx: None,
        })
    }

    /// The topology of the machine.
    pub fn topology(&self) -> &Topology {
        &self.shared.topo
    }

    /// SIPs of the machine (the largest world size [`Runtime::spawn`] accepts).
    pub fn device_count(&self) -> usize {
        self.shared.topo.num_sips() as usize
    }

    /// Binds this handle (and its clones) to SIP `sip`: tensors created and
    /// kernels launched through it from now on live there.
    pub fn set_device(&self, sip: usize) -> Result<(), RuntimeError> {
        if sip >= self.device_count() {
            return Err(RuntimeError::NoSuchDevice {
                sip,
                sips: self.device_count(),
            });
        }
        self.device.store(sip as u16, Ordering::Relaxed);
        Ok(())
    }

    /// The SIP this handle works on.
    pub fn current_device(&self) -> usize {
        self.device.load(Ordering::Relaxed) as usize
    }

    /// Locks the machine for direct use (allocation, raw reads, a hand-built
    /// [`Launch`](crate::sim::Launch)). Do not hold it across a
    /// collective, a launch, or while a tensor is dropped: they lock it too.
    pub fn machine(&self) -> MutexGuard<'_, Machine> {
        self.shared.machine()
    }

    /// The device time of SIP `sip`, ps: when its last launch ended.
    pub fn device_time_ps(&self, sip: usize) -> Ps {
        self.shared.clocks().get(sip).copied().unwrap_or(0)
    }

    /// The machine time, ps: the latest of the SIPs' device times.
    pub fn now_ps(&self) -> Ps {
        self.shared.clocks().iter().copied().max().unwrap_or(0)
    }

    /// Advances the timelines of `sips` by a synchronous launch of
    /// `report`, after the work pending on them (which the caller ran);
    /// their hosts wait for it. Returns its end.
    pub(crate) fn advance(&self, sips: &BTreeSet<u16>, report: &Report) -> Ps {
        let mut q = self.shared.queue();
        let end = {
            let mut c = self.shared.clocks();
            let start = sips
                .iter()
                .map(|s| c[*s as usize].max(q.host_ps(*s as usize)))
                .max()
                .unwrap_or(0);
            let end = start + report.end_ps;
            for s in sips {
                c[*s as usize] = end;
            }
            end
        };
        for s in sips {
            q.host_waits(*s as usize, end);
        }
        end
    }

    /// Fails with [`RuntimeError::Aborted`] when this is a rank of a run that a sibling's failure aborted.
    pub(crate) fn check_abort(&self, what: &str) -> Result<(), RuntimeError> {
        match &self.ctx {
            Some((rank, group)) => group.check_abort(*rank, what),
            None => Ok(()),
        }
    }

    /// Allocates an uninitialised (zero) tensor on the current device.
    fn alloc(
        &self,
        shape: &[usize],
        dtype: DType,
        placement: &Placement,
    ) -> Result<DeviceTensor, RuntimeError> {
        tensor::check_shape(shape)?;
        let topo = &self.shared.topo;
        let sip = self.current_device() as u16;
        let shards = resolve(
            placement,
            shape,
            sip,
            topo.cubes_per_sip() as usize,
            topo.pes_per_cube() as usize,
        )?;
        let storage: usize = shards.iter().map(|s| s.len).sum();
        let mut mshards: Vec<Shard> = shards
            .iter()
            .map(|s| Shard {
                pe: s.pe_id(),
                offset: s.offset,
                len: s.len,
            })
            .collect();
        // The machine keys buffers by virtual address alone, so a VA must name
        // one buffer machine-wide: reserve the range on every other PE too
        // (no pages there), or two SIPs' tensors could share an address.
        let held: BTreeSet<PeId> = mshards.iter().map(|s| s.pe).collect();
        mshards.extend(topo.pes().filter(|p| !held.contains(p)).map(|pe| Shard {
            pe,
            offset: storage,
            len: 0,
        }));
        let buf = self
            .shared
            .machine()
            .alloc_shards(dtype, storage, mshards)
            .map_err(|err| RuntimeError::Memory {
                what: MemoryOp::Alloc {
                    shape: shape.to_vec(),
                    dtype,
                },
                err: Box::new(err),
            })?;
        Ok(DeviceTensor {
            shared: self.shared.clone(),
            va: buf.va,
            dtype,
            shape: shape.to_vec(),
            placement: placement.clone(),
            shards,
            storage,
            live: true,
        })
    }

    /// A tensor of zeros on the current device.
    pub fn zeros(
        &self,
        shape: &[usize],
        dtype: DType,
        placement: &Placement,
    ) -> Result<DeviceTensor, RuntimeError> {
        let t = self.alloc(shape, dtype, placement)?;
        // Fresh pages read as zero, but a reused page may not: write them.
        t.scatter_bytes(&vec![0u8; t.numel() * dtype.size()])?;
        Ok(t)
    }

    /// A tensor filled with `value` (rounded to `dtype`; truncated for `i32`).
    pub fn full(
        &self,
        shape: &[usize],
        dtype: DType,
        value: f64,
        placement: &Placement,
    ) -> Result<DeviceTensor, RuntimeError> {
        let t = self.alloc(shape, dtype, placement)?;
        let es = dtype.size();
        let mut one = vec![0u8; es];
        tensor::encode_f64(dtype, value, &mut one);
        let bytes: Vec<u8> = one.iter().copied().cycle().take(t.numel() * es).collect();
        t.scatter_bytes(&bytes)?;
        Ok(t)
    }

    /// A tensor holding a host array (1-D or 2-D) of `f32`, `f16`, `bf16` or
    /// `i32`, its type the array's.
    pub fn from_array<T, S, D>(
        &self,
        a: &ArrayBase<S, D>,
        placement: &Placement,
    ) -> Result<DeviceTensor, RuntimeError>
    where
        T: HostElement,
        S: Data<Elem = T>,
        D: Dimension,
    {
        let t = self.alloc(a.shape(), T::DTYPE, placement)?;
        t.scatter_bytes(&tensor::array_bytes(a))?;
        Ok(t)
    }

    /// A tensor holding a host array, which must be of element type `dtype`
    /// ([`RuntimeError::DType`] otherwise): for host code that carries the
    /// type as a value.
    pub fn from_array_as<T, S, D>(
        &self,
        a: &ArrayBase<S, D>,
        dtype: DType,
        placement: &Placement,
    ) -> Result<DeviceTensor, RuntimeError>
    where
        T: HostElement,
        S: Data<Elem = T>,
        D: Dimension,
    {
        if T::DTYPE != dtype {
            return Err(RuntimeError::DType {
                what: "creating a tensor from a host array".into(),
                tensor: dtype,
                host: T::DTYPE,
            });
        }
        self.from_array(a, placement)
    }
}
