//! Ranks: one worker thread per SIP, and the rendezvous they meet in.
//!
//! A rendezvous is a generation-counted barrier with a payload under one
//! mutex and condition variable. Each rank leaves its contribution; the last
//! to arrive runs the operation once (outside the lock) with every
//! contribution, stores the result for that generation and wakes the others,
//! who each take a clone. A rank that fails (returns an error or panics)
//! marks the group aborted and wakes everyone: a rank waiting, or arriving
//! later, is released at once with [`RuntimeError::Aborted`]. A rank that
//! returns while others wait for it releases them with
//! [`RuntimeError::RankExited`]. Nothing waits without a way out.
//!
//! Each [`ProcessGroup`] has its own rendezvous slot under the run's one
//! mutex and condition variable, so groups meet independently while a
//! failure or an exit still wakes the waiters of every group.

use super::context::Enter;
use super::error::{
    CollectiveError, GroupError, RankFailure, RuntimeError, SpawnError, WorkerError,
};
use super::{Event, Runtime, Stream};
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::AtomicU16;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

type Payload = Box<dyn Any + Send>;
type Outcome = Arc<dyn Any + Send + Sync>;

/// The rendezvous of one process group: its members' contributions to the
/// call in progress, and the result of the last one.
struct Slot {
    /// The members, by global rank, in group-rank order.
    members: Vec<usize>,
    generation: u64,
    what: Option<String>,
    /// By group rank.
    arrived: Vec<Option<Payload>>,
    count: usize,
    result: Option<(u64, Outcome)>,
}

impl Slot {
    fn new(members: Vec<usize>) -> Slot {
        let n = members.len();
        Slot {
            members,
            generation: 0,
            what: None,
            arrived: (0..n).map(|_| None).collect(),
            count: 0,
            result: None,
        }
    }
}

struct State {
    /// By group id; group 0 is the world.
    slots: Vec<Slot>,
    failed: Vec<usize>,
    exited: Vec<bool>,
}

/// The ranks of one `spawn`: the rendezvous of their process groups, and
/// their fate. One mutex and one condition variable serve every group, so a
/// rank's failure or exit wakes whoever waits in any of them.
pub(crate) struct Group {
    world: usize,
    state: Mutex<State>,
    cv: Condvar,
}

impl Group {
    fn new(world: usize) -> Group {
        Group {
            world,
            state: Mutex::new(State {
                slots: vec![Slot::new((0..world).collect())],
                failed: Vec::new(),
                exited: vec![false; world],
            }),
            cv: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn aborted(st: &State, rank: usize, what: &str) -> Option<RuntimeError> {
        (!st.failed.is_empty()).then(|| RuntimeError::Aborted {
            rank,
            what: what.into(),
            failed: st.failed.clone(),
        })
    }

    /// A member of group `gid` that returned without arriving in its current rendezvous.
    fn missing(st: &State, gid: usize, rank: usize, what: &str) -> Option<RuntimeError> {
        let slot = &st.slots[gid];
        slot.members
            .iter()
            .enumerate()
            .find(|(i, q)| st.exited[**q] && slot.arrived[*i].is_none())
            .map(|(_, &exited)| RuntimeError::RankExited {
                rank,
                what: what.into(),
                exited,
            })
    }

    pub(crate) fn check_abort(&self, rank: usize, what: &str) -> Result<(), RuntimeError> {
        match Self::aborted(&self.lock(), rank, what) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Records that `rank`'s worker returned (`failed`: with an error or a
    /// panic of its own, not a release) and wakes every waiter.
    fn exit(&self, rank: usize, failed: bool) {
        let mut st = self.lock();
        st.exited[rank] = true;
        if failed {
            // In rank order, whatever order the ranks fail in.
            let at = st.failed.partition_point(|&q| q < rank);
            st.failed.insert(at, rank);
        }
        drop(st);
        self.cv.notify_all();
    }

    /// Adds a process group of `members` (checked); returns its id.
    fn add_group(&self, members: Vec<usize>) -> usize {
        let mut st = self.lock();
        st.slots.push(Slot::new(members));
        st.slots.len() - 1
    }

    /// Meets the other members of group `gid` (`pos`: `rank`'s place in it).
    fn rendezvous<C, T, F>(
        &self,
        (gid, pos): (usize, usize),
        rank: usize,
        what: &str,
        contribution: C,
        run: F,
    ) -> Result<T, RuntimeError>
    where
        C: Send + 'static,
        T: Clone + Send + Sync + 'static,
        F: FnOnce(Vec<C>) -> Result<T, RuntimeError>,
    {
        let mut st = self.lock();
        if let Some(e) = Self::aborted(&st, rank, what) {
            return Err(e);
        }
        let slot = &mut st.slots[gid];
        if slot.count > 0 && slot.what.as_deref() != Some(what) {
            let waiting: Vec<usize> = (0..slot.members.len())
                .filter(|i| slot.arrived[*i].is_some())
                .map(|i| slot.members[i])
                .collect();
            return Err(RuntimeError::CollectiveMismatch {
                rank,
                called: what.into(),
                pending: slot.what.clone().unwrap_or_default(),
                waiting,
            });
        }
        let gen = slot.generation;
        slot.what = Some(what.to_string());
        slot.arrived[pos] = Some(Box::new(contribution));
        slot.count += 1;
        if slot.count == slot.members.len() {
            let contributions: Vec<C> = slot
                .arrived
                .iter_mut()
                .map(|c| {
                    *c.take()
                        .expect("every member arrived")
                        .downcast::<C>()
                        .expect("one call, one contribution type")
                })
                .collect();
            drop(st);
            let out = run(contributions);
            let mut st = self.lock();
            let slot = &mut st.slots[gid];
            slot.result = Some((gen, Arc::new(out.clone())));
            slot.generation += 1;
            slot.count = 0;
            slot.what = None;
            drop(st);
            self.cv.notify_all();
            return out;
        }
        loop {
            let slot = &st.slots[gid];
            if slot.generation != gen {
                let (g, r) = slot
                    .result
                    .as_ref()
                    .expect("a finished generation leaves its result");
                debug_assert_eq!(
                    *g, gen,
                    "no member can start generation g + 1 before every member left g"
                );
                return match r.downcast_ref::<Result<T, RuntimeError>>() {
                    Some(r) => r.clone(),
                    None => Err(RuntimeError::Collective {
                        what: what.into(),
                        kind: CollectiveError::ResultType,
                    }),
                };
            }
            if let Some(e) =
                Self::aborted(&st, rank, what).or_else(|| Self::missing(&st, gid, rank, what))
            {
                // Leave the rendezvous so that nothing counts this rank as arrived.
                let slot = &mut st.slots[gid];
                slot.arrived[pos] = None;
                slot.count -= 1;
                if slot.count == 0 {
                    slot.what = None;
                }
                return Err(e);
            }
            st = self.cv.wait(st).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// A process group: a subset of a run's ranks whose collectives meet among
/// themselves (`torch.distributed.new_group`). Made by [`Rank::new_group`];
/// [`Rank::world_group`] is every rank. A member's group rank is its place
/// in [`ProcessGroup::ranks`].
#[derive(Clone)]
pub struct ProcessGroup {
    id: usize,
    ranks: Arc<[usize]>,
    run: Arc<Group>,
}

impl std::fmt::Debug for ProcessGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessGroup")
            .field("id", &self.id)
            .field("ranks", &self.ranks)
            .finish()
    }
}

impl PartialEq for ProcessGroup {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && Arc::ptr_eq(&self.run, &other.run)
    }
}

impl ProcessGroup {
    /// The members, by global rank, in group-rank order.
    pub fn ranks(&self) -> &[usize] {
        &self.ranks
    }

    /// Members in the group.
    pub fn size(&self) -> usize {
        self.ranks.len()
    }

    /// The group rank of global rank `rank`, if it is a member.
    pub fn group_rank(&self, rank: usize) -> Option<usize> {
        self.ranks.iter().position(|&r| r == rank)
    }

    /// Whether global rank `rank` is a member.
    pub fn contains(&self, rank: usize) -> bool {
        self.group_rank(rank).is_some()
    }

    /// Whether this is the group of every rank of the run.
    pub fn is_world(&self) -> bool {
        self.id == 0
    }
}

/// One rank of a [`Runtime::spawn`]ed run: a runtime handle bound to SIP
/// `rank` (it dereferences to [`Runtime`]), with the rank's identity and the
/// rendezvous its collectives meet in.
#[derive(Clone)]
pub struct Rank {
    rt: Runtime,
    rank: usize,
    group: Arc<Group>,
}

impl std::fmt::Debug for Rank {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rank")
            .field("rank", &self.rank)
            .field("world_size", &self.group.world)
            .field("device", &self.rt.current_device())
            .finish()
    }
}

impl std::ops::Deref for Rank {
    type Target = Runtime;
    fn deref(&self) -> &Runtime {
        &self.rt
    }
}

impl Rank {
    /// This rank (0-based; rank = SIP).
    pub fn get_rank(&self) -> usize {
        self.rank
    }

    /// Ranks in the run.
    pub fn get_world_size(&self) -> usize {
        self.group.world
    }

    /// The runtime handle of this rank.
    pub fn runtime(&self) -> &Runtime {
        &self.rt
    }

    /// Waits until every rank has called `barrier`, as
    /// `torch.distributed.barrier()`: the work pending on every rank's
    /// device runs (together, on one timeline), and every rank's host
    /// leaves at the same simulated time, the latest of the ranks' hosts
    /// and device work ([`Runtime::barrier_across`]). Fails at once when a
    /// sibling fails.
    pub fn barrier(&self) -> Result<(), RuntimeError> {
        self.barrier_in(&self.world_group())
    }

    /// [`Rank::barrier`] among the members of `group` (this rank must be one).
    pub fn barrier_in(&self, group: &ProcessGroup) -> Result<(), RuntimeError> {
        let rt = self.rt.clone();
        let sip = self.rt.current_device();
        self.rendezvous_in(group, "barrier", sip, move |sips| rt.barrier_across(&sips))
    }

    /// [`Rank::barrier_in`] issued on `stream` of each member's device
    /// (`torch.distributed.barrier(async_op=True)`): returns at once with an
    /// event recorded on `stream` after the barrier. Work issued on the
    /// members' streams after it waits for the work every member issued on
    /// its stream before it; what they issued before runs together when the
    /// last member arrives ([`Runtime::join_across`]). No host waits:
    /// synchronize the event for that.
    pub fn barrier_async_in(
        &self,
        group: &ProcessGroup,
        stream: &Stream,
    ) -> Result<Event, RuntimeError> {
        let rt = self.rt.clone();
        self.rendezvous_in(
            group,
            "barrier (asynchronous)",
            stream.clone(),
            move |streams| rt.join_across(&streams),
        )?;
        Ok(stream.record_event())
    }

    /// The group of every rank of the run (the default group).
    pub fn world_group(&self) -> ProcessGroup {
        ProcessGroup {
            id: 0,
            ranks: (0..self.group.world).collect(),
            run: self.group.clone(),
        }
    }

    /// Makes a process group of the global ranks `ranks` (in that order:
    /// `ranks[i]` has group rank `i`), as `torch.distributed.new_group`.
    /// Every rank of the run must call it, members or not, in the same
    /// order and with the same `ranks`; it is a rendezvous of the world.
    /// Groups may overlap: data- and tensor-parallel groups side by side.
    ///
    /// Fails with [`RuntimeError::ProcessGroup`] for an empty list, a rank
    /// outside the run or one listed twice, and when the ranks passed
    /// different lists.
    pub fn new_group(&self, ranks: &[usize]) -> Result<ProcessGroup, RuntimeError> {
        let world = self.group.world;
        let (list, on) = (ranks.to_vec(), self.rank);
        if ranks.is_empty() {
            return Err(GroupError::Empty { ranks: list, on }.into());
        }
        if let Some(&rank) = ranks.iter().find(|&&r| r >= world) {
            return Err(GroupError::OutOfRange {
                ranks: list,
                on,
                rank,
                world,
            }
            .into());
        }
        let mut seen = vec![false; world];
        for &rank in ranks {
            if std::mem::replace(&mut seen[rank], true) {
                return Err(GroupError::Repeated {
                    ranks: list,
                    on,
                    rank,
                }
                .into());
            }
        }
        let run = self.group.clone();
        let contribution = (self.rank, ranks.to_vec());
        let id = self.rendezvous(
            "new_group",
            contribution,
            move |cs: Vec<(usize, Vec<usize>)>| {
                let (r0, first) = &cs[0];
                if let Some((q, other)) = cs.iter().find(|(_, l)| l != first) {
                    return Err(GroupError::Disagree {
                        rank: *q,
                        passed: other.clone(),
                        first_rank: *r0,
                        first: first.clone(),
                    }
                    .into());
                }
                Ok(run.add_group(first.clone()))
            },
        )?;
        Ok(ProcessGroup {
            id,
            ranks: ranks.into(),
            run: self.group.clone(),
        })
    }

    /// This rank's place in `group`; [`RuntimeError::ProcessGroup`] when it
    /// is not a member, or the group belongs to another run.
    pub fn group_rank(&self, group: &ProcessGroup) -> Result<usize, RuntimeError> {
        if !Arc::ptr_eq(&group.run, &self.group) {
            return Err(GroupError::OtherRun {
                rank: self.rank,
                ranks: group.ranks.to_vec(),
            }
            .into());
        }
        group.group_rank(self.rank).ok_or_else(|| {
            GroupError::NotMember {
                rank: self.rank,
                ranks: group.ranks.to_vec(),
            }
            .into()
        })
    }

    /// [`Rank::rendezvous`] among the members of `group`: contributions come
    /// in group-rank order. Fails with [`RuntimeError::ProcessGroup`] when
    /// this rank is not a member; [`RuntimeError::RankExited`] names a member
    /// that returned without arriving.
    pub fn rendezvous_in<C, T, F>(
        &self,
        group: &ProcessGroup,
        what: &str,
        contribution: C,
        run: F,
    ) -> Result<T, RuntimeError>
    where
        C: Send + 'static,
        T: Clone + Send + Sync + 'static,
        F: FnOnce(Vec<C>) -> Result<T, RuntimeError>,
    {
        let pos = self.group_rank(group)?;
        self.group
            .rendezvous((group.id, pos), self.rank, what, contribution, run)
    }

    /// Meets the other ranks: every rank calls it with the same `what` and a
    /// contribution; the last to arrive calls `run` with all contributions in
    /// rank order (the others' `run` is dropped), and every rank gets a clone
    /// of its result. This is what collectives are built on.
    ///
    /// Fails with [`RuntimeError::Aborted`] when a sibling fails before or
    /// while this rank waits, [`RuntimeError::RankExited`] when a sibling
    /// returned without arriving, and [`RuntimeError::CollectiveMismatch`] when
    /// the ranks already waiting called something else.
    pub fn rendezvous<C, T, F>(
        &self,
        what: &str,
        contribution: C,
        run: F,
    ) -> Result<T, RuntimeError>
    where
        C: Send + 'static,
        T: Clone + Send + Sync + 'static,
        F: FnOnce(Vec<C>) -> Result<T, RuntimeError>,
    {
        self.group
            .rendezvous((0, self.rank), self.rank, what, contribution, run)
    }
}

fn panic_message(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".into()
    }
}

/// Whether an error (or one of its sources) is a release caused by a sibling's failure.
fn is_release(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(RuntimeError::Aborted { .. }) = err.downcast_ref::<RuntimeError>() {
            return true;
        }
        cur = err.source();
    }
    false
}

impl Runtime {
    /// Runs `worker` once per rank `0..world_size`, each on its own thread
    /// with a [`Rank`] bound to SIP `rank`, and returns their results in rank
    /// order (like `torch.multiprocessing.spawn`, with threads).
    ///
    /// When ranks fail (return an error or panic), their siblings waiting in
    /// a collective or barrier are released at once, and the result is
    /// [`SpawnError::Failed`] naming the root-cause ranks with their errors
    /// (ranks that only stopped because of them are listed as released).
    pub fn spawn<R, F>(&self, world_size: usize, worker: F) -> Result<Vec<R>, SpawnError>
    where
        R: Send,
        F: Fn(Rank) -> Result<R, WorkerError> + Sync,
    {
        let sips = self.device_count();
        if world_size == 0 || world_size > sips {
            return Err(SpawnError::Invalid(RuntimeError::WorldSize {
                world: world_size,
                sips,
            }));
        }
        let group = Arc::new(Group::new(world_size));
        let outcomes: Vec<Result<R, WorkerError>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..world_size)
                .map(|r| {
                    let rank = Rank {
                        rt: Runtime {
                            shared: self.shared.clone(),
                            device: Arc::new(AtomicU16::new(r as u16)),
                            ctx: Some((r, group.clone())),
                        },
                        rank: r,
                        group: group.clone(),
                    };
                    let (worker, group) = (&worker, group.clone());
                    std::thread::Builder::new()
                        .name(format!("rank{r}"))
                        .spawn_scoped(s, move || {
                            let out = match catch_unwind(AssertUnwindSafe(|| {
                                let _ctx = Enter::new(rank.clone());
                                worker(rank)
                            })) {
                                Ok(out) => out,
                                Err(p) => Err(Box::new(RuntimeError::Panicked {
                                    rank: r,
                                    msg: panic_message(&*p),
                                }) as WorkerError),
                            };
                            // A rank released by a sibling's failure is not a cause.
                            group.exit(r, out.as_ref().is_err_and(|e| !is_release(&**e)));
                            out
                        })
                        .expect("the OS starts a thread per rank")
                })
                .collect();
            handles
                .into_iter()
                .enumerate()
                .map(|(r, h)| {
                    h.join().unwrap_or_else(|p| {
                        Err(Box::new(RuntimeError::Panicked {
                            rank: r,
                            msg: panic_message(&*p),
                        }) as WorkerError)
                    })
                })
                .collect()
        });
        let mut values = Vec::with_capacity(world_size);
        let mut failures = Vec::new();
        let mut released = Vec::new();
        for (rank, out) in outcomes.into_iter().enumerate() {
            match out {
                Ok(v) => values.push(v),
                Err(e) if is_release(&*e) => released.push(rank),
                Err(error) => failures.push(RankFailure { rank, error }),
            }
        }
        if failures.is_empty() && released.is_empty() {
            return Ok(values);
        }
        if failures.is_empty() {
            // Released with no root cause left standing cannot happen (a
            // release names failed ranks), but never report an empty cause.
            return Err(SpawnError::Invalid(RuntimeError::Collective {
                what: "spawn".into(),
                kind: CollectiveError::ReleasedWithoutFailure { released },
            }));
        }
        Err(SpawnError::Failed { failures, released })
    }
}
