//! Asynchronous launches (ADR 0028): streams, events, handles, and the
//! host-read barrier.
//!
//! A launch on a [`Stream`] returns at once with a [`LaunchHandle`]; its
//! work is pending. Pending work is simulated when the host needs a result
//! of it (a handle or event waited on, a stream or the device synchronised,
//! a tensor read or written by the host): every launch pending on the
//! device is then run together on one timeline ([`simulate_many`]), so
//! launches of different streams overlap and contend for engines, HBM and
//! links as one launch's instances do. Launches of one stream run in
//! order; an event recorded on a stream orders later launches of the
//! streams that wait for it.

use super::launch::{bind, sim_error, with_locals};
use super::{Args, LaunchSetupError, Runtime, RuntimeError, Shared};
use crate::program::Program;
use crate::sim::{simulate_many_after, BusyUntil, Launch, LaunchTimes, Queued, Report};
use crate::Ps;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// A queue of work on one device: launches on it run in the order they
/// were issued, each after the previous one has ended. Launches on
/// different streams may run at the same time.
#[derive(Clone)]
pub struct Stream {
    shared: Arc<Shared>,
    id: u32,
    sip: u16,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("id", &self.id)
            .field("sip", &self.sip)
            .finish()
    }
}

/// A pending or finished asynchronous launch.
#[derive(Clone)]
pub struct LaunchHandle {
    shared: Arc<Shared>,
    id: u64,
    kernel: String,
}

impl std::fmt::Debug for LaunchHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaunchHandle")
            .field("id", &self.id)
            .field("kernel", &self.kernel)
            .finish()
    }
}

/// A finished launch: when it was issued, began and ended on the device
/// timeline, and the report of the run it was simulated in (every launch
/// pending with it, which it shared the machine with).
#[derive(Clone, Debug)]
pub struct Completed {
    /// The device whose host issued it.
    pub sip: usize,
    /// The launch's own times, ps on the device timeline.
    pub times: LaunchTimes,
    /// The report of the whole run it was part of.
    pub run: Arc<Report>,
}

impl Completed {
    /// The launch's simulated time, from when it began to when it ended.
    pub fn duration_ps(&self) -> Ps {
        self.times.end_ps - self.times.begin_ps
    }
}

/// A point in a stream's work, as CUDA's events: recorded on a stream, it
/// completes when the work issued on that stream before it has ended.
#[derive(Clone, Debug, Default)]
pub struct Event {
    mark: Arc<Mutex<Option<Mark>>>,
}

/// Where an event was recorded.
#[derive(Clone, Debug)]
enum Mark {
    /// After these launches (pending or finished): the stream's last one
    /// and the events it was told to wait on since.
    After(Arc<Shared>, Vec<u64>),
    /// At a time: its stream had nothing issued.
    At(Ps),
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Shared")
    }
}

/// A launch waiting to be simulated.
struct Pending {
    id: u64,
    launch: Launch<'static>,
    /// The devices whose hosts issued it (several for a collective's).
    sips: Vec<u16>,
    /// When the host issued it.
    issue_ps: Ps,
    /// Launches it waits for: its stream's previous one and the events its
    /// stream waits on.
    after: Vec<u64>,
    /// Device memory its arguments name: `(first byte, bytes)`.
    uses: Vec<(u64, u64)>,
    /// The device that issued it (the first of a collective's) and its
    /// place among that device's launches: an order of launches that no
    /// thread timing changes, as ids drawn across threads would.
    order: (u16, u64),
}

/// The state of one stream.
struct StreamState {
    /// The last launch issued on it.
    tail: Option<u64>,
    /// Launches the next launch on it waits for (events waited on).
    waits: Vec<u64>,
}

/// Asynchronous work of a runtime: pending launches, finished ones, the
/// streams and each device's host time.
pub(crate) struct Queue {
    pending: Vec<Pending>,
    done: HashMap<u64, Completed>,
    failed: HashMap<u64, RuntimeError>,
    /// Finished launches the host may still have to wait for: the memory
    /// they name and their end. Dropped once every host is past the end.
    finished: Vec<(Vec<(u64, u64)>, Ps)>,
    streams: Vec<StreamState>,
    /// Per SIP, the time its host has reached: when it issues work, and what
    /// it has waited for.
    host: Vec<Ps>,
    /// When each PE's engines and HBM channels are free after the runs so
    /// far (device time): later runs on the PE queue behind them.
    busy: BusyUntil,
    next: u64,
    /// Launches issued so far, per device.
    issued: Vec<u64>,
}

impl Queue {
    /// A queue with one default stream per SIP (stream `s` on SIP `s`).
    pub(crate) fn new(sips: usize) -> Self {
        Queue {
            pending: Vec::new(),
            done: HashMap::new(),
            failed: HashMap::new(),
            finished: Vec::new(),
            streams: (0..sips)
                .map(|_| StreamState {
                    tail: None,
                    waits: Vec::new(),
                })
                .collect(),
            host: vec![0; sips],
            busy: BusyUntil::default(),
            next: 0,
            issued: vec![0; sips],
        }
    }

    /// The next place in `sip`'s launch order.
    fn place(&mut self, sip: u16) -> (u16, u64) {
        if self.issued.len() <= usize::from(sip) {
            self.issued.resize(usize::from(sip) + 1, 0);
        }
        let n = &mut self.issued[usize::from(sip)];
        *n += 1;
        (sip, *n)
    }

    /// The host time of SIP `sip`.
    pub(crate) fn host_ps(&self, sip: usize) -> Ps {
        self.host.get(sip).copied().unwrap_or(0)
    }

    /// Moves SIP `sip`'s host time to at least `ps`.
    pub(crate) fn host_waits(&mut self, sip: usize, ps: Ps) {
        if let Some(h) = self.host.get_mut(sip) {
            *h = (*h).max(ps);
        }
        let earliest = self.host.iter().copied().min().unwrap_or(0);
        self.finished.retain(|f| f.1 > earliest);
    }
}

impl Shared {
    pub(crate) fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs every launch pending on the SIPs `sips`, and what they wait
    /// for, together on one timeline; the launches' results are kept for
    /// their handles and events. The first failure is returned (and kept
    /// for every launch of the failed run).
    fn drain(&self, q: &mut Queue, sips: &[u16]) -> Result<(), RuntimeError> {
        // The launches to run: those of the SIPs, and their ancestors.
        let mut take: Vec<bool> = q
            .pending
            .iter()
            .map(|p| p.sips.iter().any(|s| sips.contains(s)))
            .collect();
        let index: HashMap<u64, usize> = q
            .pending
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id, i))
            .collect();
        for i in (0..q.pending.len()).rev() {
            if take[i] {
                for a in &q.pending[i].after {
                    if let Some(&k) = index.get(a) {
                        take[k] = true;
                    }
                }
            }
        }
        if !take.iter().any(|t| *t) {
            return Ok(());
        }
        let mut run = Vec::new();
        let mut keep = Vec::new();
        for (p, t) in std::mem::take(&mut q.pending).into_iter().zip(take) {
            if t {
                run.push(p);
            } else {
                keep.push(p);
            }
        }
        q.pending = keep;
        let mut run = in_fixed_order(run);
        // A launch waiting for a finished one is issued no earlier than its end.
        let mut issue: Vec<Ps> = Vec::with_capacity(run.len());
        let mut failed_before: Option<RuntimeError> = None;
        for p in &run {
            let mut t = p.issue_ps;
            for a in &p.after {
                if let Some(d) = q.done.get(a) {
                    t = t.max(d.times.end_ps);
                }
                if let Some(e) = q.failed.get(a) {
                    failed_before.get_or_insert_with(|| e.clone());
                }
            }
            issue.push(t);
        }
        let fail = |q: &mut Queue, run: &[Pending], e: RuntimeError| {
            for p in run {
                q.failed.insert(p.id, e.clone());
            }
            Err(e)
        };
        if let Some(e) = failed_before {
            return fail(q, &run, e);
        }
        let base = issue.iter().copied().min().unwrap_or(0);
        let at: HashMap<u64, usize> = run.iter().enumerate().map(|(i, p)| (p.id, i)).collect();
        let queued: Vec<Queued> = run
            .iter()
            .zip(&issue)
            .map(|(p, &t)| Queued {
                launch: p.launch.clone(),
                issue_ps: t - base,
                after: p.after.iter().filter_map(|a| at.get(a).copied()).collect(),
            })
            .collect();
        let names: Vec<&str> = run.iter().map(|p| p.launch.program.name()).collect();
        let outcome = {
            let mut m = self.machine();
            let busy = q.busy.shifted(-i128::from(base));
            simulate_many_after(&mut m, &queued, &busy)
        };
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => {
                let e = sim_error(&names.join(" + "), e);
                return fail(q, &run, e);
            }
        };
        q.busy.merge(&outcome.busy.shifted(i128::from(base)));
        let report = Arc::new(outcome.outcome.report);
        let mut clocks = self.clocks();
        for (p, t) in run.iter_mut().zip(outcome.launches) {
            let times = LaunchTimes {
                issue_ps: base + t.issue_ps,
                begin_ps: base + t.begin_ps,
                end_ps: base + t.end_ps,
                kernel: t.kernel,
            };
            for pe in &p.launch.pes {
                let c = &mut clocks[pe.sip as usize];
                *c = (*c).max(times.end_ps);
            }
            q.finished.push((std::mem::take(&mut p.uses), times.end_ps));
            q.done.insert(
                p.id,
                Completed {
                    sip: p.sips[0] as usize,
                    times,
                    run: Arc::clone(&report),
                },
            );
        }
        Ok(())
    }

    /// The result of launch `id`, running what is pending for it first.
    fn complete(&self, q: &mut Queue, id: u64) -> Result<Completed, RuntimeError> {
        if let Some(p) = q.pending.iter().find(|p| p.id == id) {
            let sips = p.sips.clone();
            self.drain(q, &sips)?;
        }
        if let Some(e) = q.failed.get(&id) {
            return Err(e.clone());
        }
        Ok(q.done.get(&id).cloned().expect("a launch ran or failed"))
    }

    /// The host-read barrier: before the host reads or writes `len` bytes
    /// at `va`, the pending launches that name them run, and the host of
    /// SIP `sip` waits for their end.
    pub(crate) fn settle(&self, sip: u16, va: u64, len: u64) -> Result<(), RuntimeError> {
        let mut q = self.queue();
        if q.pending.is_empty() && q.finished.is_empty() {
            return Ok(());
        }
        let end = va.saturating_add(len.max(1));
        let touches = |uses: &[(u64, u64)]| uses.iter().any(|&(a, n)| a < end && va < a + n.max(1));
        let users: Vec<(u64, &[u16])> = q
            .pending
            .iter()
            .filter(|p| touches(&p.uses))
            .map(|p| (p.id, p.sips.as_slice()))
            .collect();
        let mut sips: Vec<u16> = users.iter().flat_map(|u| u.1.iter().copied()).collect();
        let users: Vec<u64> = users.iter().map(|u| u.0).collect();
        sips.sort_unstable();
        sips.dedup();
        if !sips.is_empty() {
            self.drain(&mut q, &sips)?;
        }
        for id in &users {
            if let Some(e) = q.failed.get(id) {
                return Err(e.clone());
            }
        }
        // Work that ran earlier (with other work the host waited for) may
        // still end after the host's time.
        let until = q
            .finished
            .iter()
            .filter(|f| touches(&f.0))
            .map(|f| f.1)
            .max()
            .unwrap_or(0);
        q.host_waits(sip as usize, until);
        Ok(())
    }

    /// Runs everything pending on `sips`; their hosts wait for the end of
    /// all the work they issued.
    pub(crate) fn synchronize(&self, sips: &[u16]) -> Result<(), RuntimeError> {
        let mut q = self.queue();
        self.drain(&mut q, sips)?;
        let clocks = self.clocks().clone();
        for &s in sips {
            q.host_waits(s as usize, clocks[s as usize]);
        }
        Ok(())
    }
}

/// The launches of a run in an order that depends only on what each host
/// issued, not on how the hosts' threads interleaved: among the launches
/// whose ancestors are placed, the one issued earliest in simulated time,
/// then by device and place in that device's order.
fn in_fixed_order(run: Vec<Pending>) -> Vec<Pending> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let at: HashMap<u64, usize> = run.iter().enumerate().map(|(i, p)| (p.id, i)).collect();
    let mut waiting: Vec<usize> = vec![0; run.len()];
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); run.len()];
    for (i, p) in run.iter().enumerate() {
        for a in &p.after {
            if let Some(&k) = at.get(a) {
                waiting[i] += 1;
                children[k].push(i);
            }
        }
    }
    let key = |i: usize| Reverse((run[i].issue_ps, run[i].order, i));
    let mut ready: BinaryHeap<_> = (0..run.len())
        .filter(|&i| waiting[i] == 0)
        .map(key)
        .collect();
    let mut order = Vec::with_capacity(run.len());
    while let Some(Reverse((_, _, i))) = ready.pop() {
        order.push(i);
        for &c in &children[i] {
            waiting[c] -= 1;
            if waiting[c] == 0 {
                ready.push(key(c));
            }
        }
    }
    let mut slots: Vec<Option<Pending>> = run.into_iter().map(Some).collect();
    order
        .into_iter()
        .map(|i| slots[i].take().expect("each launch placed once"))
        .collect()
}

/// The device whose host waits: the worker's, inside a rank's worker; the
/// issuing device's otherwise.
fn waiting_sip(c: &Completed) -> usize {
    super::device::current_device().unwrap_or(c.sip)
}

/// The device memory an argument list names: each pointer's or tensor's bytes.
fn uses_of(launch: &Launch) -> Vec<(u64, u64)> {
    use crate::ir::ArgValue;
    let bytes = |v: &ArgValue| match *v {
        ArgValue::Ptr { va, dtype, len } => Some((va, (len * dtype.size()) as u64)),
        ArgValue::Tensor { va, dtype, shape } => {
            Some((va, (shape[0] * shape[1] * dtype.size()) as u64))
        }
        _ => None,
    };
    let mut out: Vec<(u64, u64)> = launch.args.iter().filter_map(|(_, v)| bytes(v)).collect();
    for (_, values) in &launch.instance_args {
        out.extend(values.iter().filter_map(bytes));
    }
    out.sort_unstable();
    out.dedup();
    out
}

impl Runtime {
    /// The default stream of the current device. Work on it runs in issue
    /// order, and [`Runtime::launch`] and the collectives wait for it (and
    /// for every other stream of the device) before they run.
    pub fn default_stream(&self) -> Stream {
        let sip = self.current_device() as u16;
        Stream {
            shared: Arc::clone(&self.shared),
            id: u32::from(sip),
            sip,
        }
    }

    /// A new stream on the current device.
    pub fn new_stream(&self) -> Stream {
        let sip = self.current_device() as u16;
        let mut q = self.shared.queue();
        q.streams.push(StreamState {
            tail: None,
            waits: Vec::new(),
        });
        Stream {
            shared: Arc::clone(&self.shared),
            id: q.streams.len() as u32 - 1,
            sip,
        }
    }

    /// The time the current device's host has reached, ps: it issues work
    /// then, and moves on when it waits for work.
    pub fn host_time_ps(&self) -> Ps {
        self.shared.queue().host_ps(self.current_device())
    }

    /// Issues `kernel` over `grid` on `stream` and returns at once; the
    /// launch runs when something needs its result (see the module docs).
    /// Arguments bind as for [`Runtime::launch`] and are checked now.
    pub fn launch_async(
        &self,
        kernel: &'static dyn Program,
        grid: &[u32],
        args: &Args,
        stream: &Stream,
    ) -> Result<LaunchHandle, RuntimeError> {
        let kargs = bind(kernel.name(), None, args)?;
        let pes = self
            .launch_pes(grid, args)
            .map_err(|kind| RuntimeError::launch(kernel.name(), kind))?;
        let launch = Launch::new(kernel, kargs, pes).grid(grid);
        self.enqueue(with_locals(launch, None, args)?, stream)
    }

    /// Issues a hand-built launch on `stream` and returns at once.
    pub fn enqueue(
        &self,
        launch: Launch<'static>,
        stream: &Stream,
    ) -> Result<LaunchHandle, RuntimeError> {
        let kernel = launch.program.name().to_string();
        self.check_abort(&format!("launch of `{kernel}`"))?;
        if !Arc::ptr_eq(&stream.shared, &self.shared) {
            return Err(RuntimeError::launch(
                kernel,
                LaunchSetupError::ForeignStream,
            ));
        }
        let n: usize = launch.grid.iter().map(|g| *g as usize).product();
        if n != launch.pes.len() {
            return Err(RuntimeError::launch(
                kernel,
                LaunchSetupError::grid_size(&launch.grid, n, launch.pes.len()),
            ));
        }
        // Arguments, shapes and types are checked now, on one instance,
        // so that a wrong launch fails where it is issued.
        crate::passes::trace::check_launch(self.topology(), &launch)
            .and_then(|()| crate::passes::trace::trace_one(self.topology(), &launch, 0))
            .map_err(|e| sim_error(&kernel, e.into()))?;
        let uses = uses_of(&launch);
        let mut q = self.shared.queue();
        let id = q.next;
        q.next += 1;
        let st = &mut q.streams[stream.id as usize];
        let mut after: Vec<u64> = std::mem::take(&mut st.waits);
        after.extend(st.tail);
        st.tail = Some(id);
        after.sort_unstable();
        after.dedup();
        let issue_ps = q.host_ps(stream.sip as usize);
        let order = q.place(stream.sip);
        q.pending.push(Pending {
            id,
            launch,
            sips: vec![stream.sip],
            issue_ps,
            after,
            uses,
            order,
        });
        Ok(LaunchHandle {
            shared: Arc::clone(&self.shared),
            id,
            kernel,
        })
    }

    /// Issues a launch that spans several devices, a collective's, on one
    /// stream of each (`streams`, one per member, as the members passed
    /// them): it waits for the work issued on each of them so far and
    /// becomes their last launch, issued when the last member's host is
    /// there. It runs at once, with the work pending on those devices,
    /// while no host waits for it: call this where every member is present
    /// (the last to arrive at a collective's rendezvous), so that what runs
    /// with it is what each member issued before it.
    pub fn enqueue_across(
        &self,
        launch: Launch<'static>,
        streams: &[Stream],
    ) -> Result<LaunchHandle, RuntimeError> {
        let kernel = launch.program.name().to_string();
        if streams
            .iter()
            .any(|s| !Arc::ptr_eq(&s.shared, &self.shared))
        {
            return Err(RuntimeError::launch(
                kernel,
                LaunchSetupError::ForeignStreams,
            ));
        }
        let uses = uses_of(&launch);
        let mut q = self.shared.queue();
        let id = q.next;
        q.next += 1;
        let mut after = Vec::new();
        let mut sips = Vec::new();
        let mut issue_ps = 0;
        for st in streams {
            issue_ps = issue_ps.max(q.host_ps(st.sip as usize));
            let state = &mut q.streams[st.id as usize];
            after.append(&mut state.waits);
            after.extend(state.tail);
            state.tail = Some(id);
            sips.push(st.sip);
        }
        after.sort_unstable();
        after.dedup();
        sips.sort_unstable();
        sips.dedup();
        let order = q.place(sips.first().copied().unwrap_or(0));
        q.pending.push(Pending {
            id,
            launch,
            sips: sips.clone(),
            issue_ps,
            after,
            uses,
            order,
        });
        self.shared.drain(&mut q, &sips)?;
        Ok(LaunchHandle {
            shared: Arc::clone(&self.shared),
            id,
            kernel,
        })
    }

    /// Joins streams of several devices, one per member of a barrier issued
    /// on them (`torch.distributed.barrier(async_op=True)`): from now on
    /// each of them waits for the work issued on every one of them so far.
    /// That work runs at once, together, and no host waits for it; call
    /// this where every member is present (the last to arrive at the
    /// barrier's rendezvous), as [`Runtime::enqueue_across`]. A barrier is
    /// an order, not a transfer: it adds no device time.
    pub fn join_across(&self, streams: &[Stream]) -> Result<(), RuntimeError> {
        if streams
            .iter()
            .any(|s| !Arc::ptr_eq(&s.shared, &self.shared))
        {
            return Err(RuntimeError::launch(
                "barrier",
                LaunchSetupError::ForeignStreams,
            ));
        }
        let mut q = self.shared.queue();
        let mut ids: Vec<u64> = Vec::new();
        for st in streams {
            let state = &q.streams[st.id as usize];
            ids.extend(state.waits.iter().copied().chain(state.tail));
        }
        ids.sort_unstable();
        ids.dedup();
        for st in streams {
            let waits = &mut q.streams[st.id as usize].waits;
            waits.extend(&ids);
            waits.sort_unstable();
            waits.dedup();
        }
        let mut sips: Vec<u16> = streams.iter().map(|s| s.sip).collect();
        sips.sort_unstable();
        sips.dedup();
        self.shared.drain(&mut q, &sips)
    }

    /// The host side of a barrier over the devices `sips`
    /// (`torch.distributed.barrier()`): runs all work pending on them
    /// together, then moves each device's host to the latest of their
    /// hosts and device work, so that every member leaves the barrier at
    /// the same simulated time. Call it where every member is present.
    pub fn barrier_across(&self, sips: &[usize]) -> Result<(), RuntimeError> {
        let mut sips: Vec<u16> = sips.iter().map(|&s| s as u16).collect();
        sips.sort_unstable();
        sips.dedup();
        let mut q = self.shared.queue();
        self.shared.drain(&mut q, &sips)?;
        let clocks = self.shared.clocks().clone();
        let at = sips
            .iter()
            .map(|&s| q.host_ps(s as usize).max(clocks[s as usize]))
            .max()
            .unwrap_or(0);
        for &s in &sips {
            q.host_waits(s as usize, at);
        }
        Ok(())
    }

    /// Waits for all work issued from the current device, on every stream
    /// of it: runs what is pending and moves the host to its end.
    pub fn synchronize(&self) -> Result<(), RuntimeError> {
        self.shared.synchronize(&[self.current_device() as u16])
    }
}

impl Stream {
    /// The SIP whose work it queues.
    pub fn sip(&self) -> usize {
        self.sip as usize
    }

    /// Waits for the work issued on this stream: runs what is pending on
    /// its device and moves its host to the end of the stream's last launch.
    pub fn synchronize(&self) -> Result<(), RuntimeError> {
        let mut q = self.shared.queue();
        let Some(tail) = q.streams[self.id as usize].tail else {
            return Ok(());
        };
        let end = self.shared.complete(&mut q, tail)?.times.end_ps;
        q.host_waits(self.sip as usize, end);
        Ok(())
    }

    /// Makes the launches issued on this stream from now on wait until
    /// `event` completes (as `cudaStreamWaitEvent`). An event never
    /// recorded, or recorded at a time, orders nothing.
    pub fn wait_event(&self, event: &Event) {
        if let Some(Mark::After(_, ids)) = event.mark() {
            let mut q = self.shared.queue();
            q.streams[self.id as usize].waits.extend(ids);
        }
    }

    /// Records a new event on this stream.
    pub fn record_event(&self) -> Event {
        let e = Event::new();
        e.record(self);
        e
    }
}

impl LaunchHandle {
    /// The kernel launched.
    pub fn kernel(&self) -> &str {
        &self.kernel
    }

    /// Whether it has been simulated (successfully or not).
    pub fn is_done(&self) -> bool {
        let q = self.shared.queue();
        q.done.contains_key(&self.id) || q.failed.contains_key(&self.id)
    }

    /// Waits for the launch: runs it (and what is pending with it) if it
    /// has not run, and gives its times. The host of its device moves to
    /// its end.
    pub fn wait(&self) -> Result<Completed, RuntimeError> {
        let mut q = self.shared.queue();
        let c = self.shared.complete(&mut q, self.id)?;
        q.host_waits(waiting_sip(&c), c.times.end_ps);
        Ok(c)
    }
}

impl Event {
    /// An event not yet recorded.
    pub fn new() -> Self {
        Event::default()
    }

    fn mark(&self) -> Option<Mark> {
        self.mark
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Records the event on `stream`: it completes when the work issued on
    /// the stream so far has ended. Recording again moves it.
    pub fn record(&self, stream: &Stream) {
        let q = stream.shared.queue();
        let st = &q.streams[stream.id as usize];
        // The stream's work so far: its last launch and what it was told to
        // wait on since, as `cudaEventRecord` after `cudaStreamWaitEvent`.
        let mut ids: Vec<u64> = st.waits.iter().copied().chain(st.tail).collect();
        ids.sort_unstable();
        ids.dedup();
        let mark = if ids.is_empty() {
            Mark::At(q.host_ps(stream.sip as usize))
        } else {
            Mark::After(Arc::clone(&stream.shared), ids)
        };
        drop(q);
        *self.mark.lock().unwrap_or_else(PoisonError::into_inner) = Some(mark);
    }

    /// Makes the launches issued on `stream` from now on wait for this
    /// event (as `torch.cuda.Event.wait`).
    pub fn wait(&self, stream: &Stream) {
        stream.wait_event(self);
    }

    /// The device time at which the event completed, running what it
    /// waits for; an error when it was never recorded.
    pub fn time_ps(&self) -> Result<Ps, RuntimeError> {
        match self.mark() {
            None => Err(RuntimeError::EventNotRecorded),
            Some(Mark::At(t)) => Ok(t),
            Some(Mark::After(shared, ids)) => {
                let mut q = shared.queue();
                let mut t = 0;
                for id in ids {
                    t = t.max(shared.complete(&mut q, id)?.times.end_ps);
                }
                Ok(t)
            }
        }
    }

    /// Waits until the event completes: the host of the device it was
    /// recorded on moves to its time.
    pub fn synchronize(&self) -> Result<(), RuntimeError> {
        match self.mark() {
            None => Err(RuntimeError::EventNotRecorded),
            Some(Mark::At(_)) => Ok(()),
            Some(Mark::After(shared, ids)) => {
                let mut q = shared.queue();
                for id in ids {
                    let c = shared.complete(&mut q, id)?;
                    q.host_waits(waiting_sip(&c), c.times.end_ps);
                }
                Ok(())
            }
        }
    }

    /// Simulated time from this event to `end`, ps (as
    /// `cudaEventElapsedTime`, in picoseconds): both must be recorded.
    pub fn elapsed_ps(&self, end: &Event) -> Result<i128, RuntimeError> {
        let (a, b) = (self.time_ps()?, end.time_ps()?);
        Ok(i128::from(b) - i128::from(a))
    }
}
