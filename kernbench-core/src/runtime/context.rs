//! The worker context: the rank whose worker runs on this thread, set by
//! [`Runtime::spawn`] for the length of the worker closure, so that host code
//! can call the PyTorch-shaped free functions ([`dist::get_rank`],
//! [`device::set_device`], ...) instead of passing a [`Rank`] around.
//!
//! ```
//! use kernbench_core::runtime::{device, dist, Runtime};
//!
//! let rt = Runtime::new()?; // 2 SIPs
//! let ranks = rt.spawn(2, |rank| {
//!     // The worker is told its rank, as `mp.spawn` passes it to a PyTorch worker.
//!     dist::init_process_group(2, rank.get_rank())?;
//!     device::set_device(dist::get_rank()?)?;
//!     Ok((dist::get_rank()?, dist::get_world_size()?, device::current_device()?))
//! })?;
//! assert_eq!(ranks, vec![(0, 2, 0), (1, 2, 1)]);
//! // Outside a worker there is no rank to ask about.
//! assert!(dist::get_rank().is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use super::error::{GroupError, RuntimeError};
use super::{ProcessGroup, Rank};
use std::cell::RefCell;

struct Worker {
    rank: Rank,
    initialized: bool,
}

thread_local! {
    static WORKER: RefCell<Option<Worker>> = const { RefCell::new(None) };
}

/// Makes `rank` this thread's worker context until dropped (restoring what
/// was there before).
pub(crate) struct Enter {
    prev: Option<Worker>,
}

impl Enter {
    pub(crate) fn new(rank: Rank) -> Enter {
        let prev = WORKER.with(|w| {
            w.borrow_mut().replace(Worker {
                rank,
                initialized: false,
            })
        });
        Enter { prev }
    }
}

impl Drop for Enter {
    fn drop(&mut self) {
        let prev = self.prev.take();
        WORKER.with(|w| *w.borrow_mut() = prev);
    }
}

fn outside(call: &str) -> RuntimeError {
    RuntimeError::NoWorker { call: call.into() }
}

/// This thread's rank, whether or not its process group was initialised.
fn with_worker<T>(call: &str, f: impl FnOnce(&mut Worker) -> T) -> Result<T, RuntimeError> {
    WORKER.with(|w| match w.borrow_mut().as_mut() {
        Some(worker) => Ok(f(worker)),
        None => Err(outside(call)),
    })
}

/// `torch.distributed`'s process-group functions, for the worker that runs
/// on this thread.
pub mod dist {
    use super::*;

    /// Joins the default process group: checks that `world_size` and `rank`
    /// are those [`Runtime::spawn`](crate::runtime::Runtime::spawn) gave this
    /// worker, and makes [`get_rank`], [`get_world_size`] and [`current`]
    /// usable. Calling it again with the same values is harmless.
    ///
    /// Fails with [`RuntimeError::NoWorker`] outside a worker and with
    /// [`RuntimeError::ProcessGroup`] when the values disagree with the run.
    pub fn init_process_group(world_size: usize, rank: usize) -> Result<(), RuntimeError> {
        with_worker("dist::init_process_group", |w| {
            let (have_rank, have_world) = (w.rank.get_rank(), w.rank.get_world_size());
            if (rank, world_size) != (have_rank, have_world) {
                return Err(GroupError::InitMismatch {
                    world_size,
                    rank,
                    have_rank,
                    have_world,
                }
                .into());
            }
            w.initialized = true;
            Ok(())
        })?
    }

    /// Whether this thread's worker has called [`init_process_group`]
    /// (false outside a worker).
    pub fn is_initialized() -> bool {
        WORKER.with(|w| w.borrow().as_ref().is_some_and(|w| w.initialized))
    }

    /// This worker's [`Rank`] handle, once [`init_process_group`] was called:
    /// what the free collectives run on.
    pub fn current() -> Result<Rank, RuntimeError> {
        initialized("dist::current", |r| r.clone())
    }

    /// [`current`] for a free function named `call` (`"dist::all_reduce"`):
    /// its errors name `call`, for libraries that add free functions of
    /// their own.
    pub fn current_for(call: &str) -> Result<Rank, RuntimeError> {
        initialized(call, |r| r.clone())
    }

    /// This worker's rank in the default group.
    pub fn get_rank() -> Result<usize, RuntimeError> {
        initialized("dist::get_rank", Rank::get_rank)
    }

    /// The default group's size: the ranks of the run.
    pub fn get_world_size() -> Result<usize, RuntimeError> {
        initialized("dist::get_world_size", Rank::get_world_size)
    }

    /// This worker's rank in `group` (`torch.distributed.get_rank(group)`);
    /// an error when it is not a member.
    pub fn get_group_rank(group: &ProcessGroup) -> Result<usize, RuntimeError> {
        initialized("dist::get_group_rank", |r| r.group_rank(group))?
    }

    /// A process group of the global ranks `ranks` (see [`Rank::new_group`]):
    /// every worker calls it, members or not, in the same order.
    pub fn new_group(ranks: &[usize]) -> Result<ProcessGroup, RuntimeError> {
        initialized("dist::new_group", |r| r.new_group(ranks))?
    }

    /// Waits for every member of `group` (every rank when `None`).
    pub fn barrier(group: Option<&ProcessGroup>) -> Result<(), RuntimeError> {
        initialized("dist::barrier", |r| match group {
            Some(g) => r.barrier_in(g),
            None => r.barrier(),
        })?
    }

    /// [`barrier`] issued on `stream` (`barrier(async_op=True)`): see
    /// [`Rank::barrier_async_in`].
    pub fn barrier_async(
        group: Option<&ProcessGroup>,
        stream: &crate::runtime::Stream,
    ) -> Result<crate::runtime::Event, RuntimeError> {
        initialized("dist::barrier_async", |r| match group {
            Some(g) => r.barrier_async_in(g, stream),
            None => r.barrier_async_in(&r.world_group(), stream),
        })?
    }

    fn initialized<T>(call: &str, f: impl FnOnce(&Rank) -> T) -> Result<T, RuntimeError> {
        with_worker(call, |w| {
            if w.initialized {
                Ok(f(&w.rank))
            } else {
                Err(GroupError::NotInitialized {
                    call: call.to_string(),
                    rank: w.rank.get_rank(),
                }
                .into())
            }
        })?
    }
}

/// `torch.cuda`'s device functions (the records' `torch.ahbm`), for the
/// worker that runs on this thread: its device is a SIP.
pub mod device {
    use super::*;

    /// Makes SIP `sip` this worker's device: tensors it creates and kernels
    /// it launches from now on live there (its [`Rank`] handle included).
    pub fn set_device(sip: usize) -> Result<(), RuntimeError> {
        with_worker("device::set_device", |w| w.rank.set_device(sip))?
    }

    /// The SIP this worker works on.
    pub fn current_device() -> Result<usize, RuntimeError> {
        with_worker("device::current_device", |w| w.rank.current_device())
    }

    /// SIPs in the machine.
    pub fn device_count() -> Result<usize, RuntimeError> {
        with_worker("device::device_count", |w| w.rank.device_count())
    }
}
