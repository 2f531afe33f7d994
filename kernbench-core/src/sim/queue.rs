//! The event queue: events keyed by integer picoseconds, earliest first, and
//! first in, first out among events of one instant (or last in, first out,
//! or least first: see [`Within`]).
//!
//! Simulated time never goes backwards (nothing is scheduled before the event
//! being handled), so the keys are monotone and a radix heap fits: an event
//! lives in the bucket of the highest bit in which its time differs from the
//! last time taken out, and moves only to lower buckets, so each event is
//! touched a few times at most, with no comparisons on the way in, and the
//! events of the current instant leave in insertion order.
//! `benches/event_queue.rs` compares it with `BinaryHeap` and a 4-ary heap on
//! event mixes recorded from a collective; see [`EventQueue`] for the figures.

use crate::Ps;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// Which of one instant's events a queue takes out first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Within {
    /// In insertion order (first in, first out).
    #[default]
    Fifo,
    /// The last inserted first (last in, first out).
    Lifo,
    /// The least event first, by the events' own order: which event goes
    /// first then depends on the events alone, not on when each was
    /// inserted.
    Least,
}

/// One step of a recorded event mix (see [`EventQueue::recording`]): a push
/// `delta` picoseconds after the last time taken out, or a pop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MixOp {
    /// An event scheduled this many ps after the current time.
    Push(Ps),
    /// The earliest event taken out.
    Pop,
}

/// A monotone radix heap over time keys, FIFO among equal times.
///
/// Bucket `b > 0` holds the events whose time first differs from the last
/// time taken out in bit `b - 1`; `zero` holds the events at exactly that
/// time, in insertion order. The buckets are only redistributed while `zero`
/// is empty, and redistribution keeps order, so FIFO needs no sequence number.
/// [`RadixHeap::within`] takes the events of one time out in another order:
/// last in first out, or least first (a small binary heap then holds the
/// current instant's events in place of the FIFO).
#[derive(Clone, Debug)]
pub struct RadixHeap<E> {
    zero: VecDeque<(Ps, E)>,
    least: BinaryHeap<Reverse<E>>,
    buckets: Vec<Vec<(Ps, E)>>,
    last: Ps,
    len: usize,
    within: Within,
}

impl<E: Ord> Default for RadixHeap<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E: Ord> RadixHeap<E> {
    /// An empty heap whose smallest allowed time is 0.
    pub fn new() -> Self {
        RadixHeap {
            zero: VecDeque::new(),
            least: BinaryHeap::new(),
            buckets: (0..65).map(|_| Vec::new()).collect(),
            last: 0,
            len: 0,
            within: Within::Fifo,
        }
    }

    /// Takes the events of one time out in `order` (first in, first out
    /// unless told).
    pub fn within(mut self, order: Within) -> Self {
        self.within = order;
        self
    }

    /// Files an event of the current instant.
    fn now_push(&mut self, t: Ps, e: E) {
        if self.within == Within::Least {
            self.least.push(Reverse(e));
        } else {
            self.zero.push_back((t, e));
        }
    }

    /// Adds an event at time `t`, which must not be before the last time taken out.
    pub fn push(&mut self, t: Ps, e: E) {
        assert!(
            t >= self.last,
            "event queue: an event was scheduled before the current time ({t} < {} ps)",
            self.last
        );
        self.len += 1;
        let b = (64 - (t ^ self.last).leading_zeros()) as usize;
        if b == 0 {
            self.now_push(t, e);
        } else {
            self.buckets[b].push((t, e));
        }
    }

    /// The event the next [`RadixHeap::pop`] takes out, when it is of the
    /// instant last taken out (events of later instants are not sorted yet).
    pub fn peek_now(&self) -> Option<&E> {
        match self.within {
            Within::Fifo => self.zero.front().map(|(_, e)| e),
            Within::Lifo => self.zero.back().map(|(_, e)| e),
            Within::Least => self.least.peek().map(|Reverse(e)| e),
        }
    }

    /// Takes out the earliest event; among the earliest, the first pushed
    /// unless [`RadixHeap::within`] says otherwise.
    pub fn pop(&mut self) -> Option<(Ps, E)> {
        if self.zero.is_empty() && self.least.is_empty() {
            if self.len == 0 {
                return None;
            }
            let i = (1..self.buckets.len())
                .find(|&i| !self.buckets[i].is_empty())
                .expect("a non-empty heap has a non-empty bucket");
            let mut items = std::mem::take(&mut self.buckets[i]);
            self.last = items
                .iter()
                .map(|x| x.0)
                .min()
                .expect("bucket is non-empty");
            for (t, e) in items.drain(..) {
                let b = (64 - (t ^ self.last).leading_zeros()) as usize;
                if b == 0 {
                    self.now_push(t, e);
                } else {
                    self.buckets[b].push((t, e));
                }
            }
            // Keep the bucket's allocation for later.
            self.buckets[i] = items;
        }
        self.len -= 1;
        match self.within {
            Within::Fifo => self.zero.pop_front(),
            Within::Lifo => self.zero.pop_back(),
            Within::Least => self.least.pop().map(|Reverse(e)| (self.last, e)),
        }
    }

    /// Events held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// `true` when no event is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A 4-ary min-heap over `(time, sequence)` keys (kept for comparison in
/// the benchmark, and as a check of the radix heap in tests).
#[derive(Clone, Debug)]
pub struct QuaternaryHeap<E> {
    items: Vec<(u128, E)>,
    seq: u64,
}

impl<E> Default for QuaternaryHeap<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> QuaternaryHeap<E> {
    /// An empty heap.
    pub fn new() -> Self {
        QuaternaryHeap {
            items: Vec::new(),
            seq: 0,
        }
    }

    /// Adds an event at time `t`.
    pub fn push(&mut self, t: Ps, e: E) {
        self.seq += 1;
        let k = (u128::from(t) << 64) | u128::from(self.seq);
        self.items.push((k, e));
        let mut i = self.items.len() - 1;
        while i > 0 {
            let p = (i - 1) / 4;
            if self.items[p].0 <= k {
                break;
            }
            self.items.swap(p, i);
            i = p;
        }
    }

    /// Takes out the earliest event (the first pushed among the earliest).
    pub fn pop(&mut self) -> Option<(Ps, E)> {
        let n = self.items.len();
        if n == 0 {
            return None;
        }
        let (k, e) = self.items.swap_remove(0);
        let n = n - 1;
        let mut i = 0;
        loop {
            let first = 4 * i + 1;
            if first >= n {
                break;
            }
            let mut m = first;
            for c in first + 1..(first + 4).min(n) {
                if self.items[c].0 < self.items[m].0 {
                    m = c;
                }
            }
            if self.items[i].0 <= self.items[m].0 {
                break;
            }
            self.items.swap(i, m);
            i = m;
        }
        Some(((k >> 64) as Ps, e))
    }

    /// Events held.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// `true` when no event is held.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// The engine's event queue: earliest time first, FIFO among equal times.
///
/// It is a [`RadixHeap`]. On the mixes of a 256-PE ring all-reduce (1 MiB per
/// rank, 64 KiB messages; about 3 M pushes and pops each, 8-byte events as
/// the engine packs them), `cargo bench --bench event_queue` measured these
/// medians:
///
/// | mix | `BinaryHeap` | 4-ary heap | radix heap |
/// | --- | --- | --- | --- |
/// | message model | 83.9 ms | 91.7 ms | 24.2 ms |
/// | slot model | 102.1 ms | 124.0 ms | 28.4 ms |
///
/// A timing wheel (2^12 to 2^14 buckets of 256 ps to 4 ns, a heap beyond
/// them) took 44 to 52 ms on the message mix, and was not kept.
#[derive(Clone, Debug)]
pub struct EventQueue<E> {
    heap: RadixHeap<E>,
    seq: u64,
    now: Ps,
    mix: Option<Vec<MixOp>>,
}

impl<E: Ord> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E: Ord> EventQueue<E> {
    /// An empty queue at time 0.
    pub fn new() -> Self {
        EventQueue {
            heap: RadixHeap::new(),
            seq: 0,
            now: 0,
            mix: None,
        }
    }

    /// Takes the events of one instant out in `order` (see
    /// [`RadixHeap::within`]).
    pub fn within(mut self, order: Within) -> Self {
        self.heap = self.heap.within(order);
        self
    }

    /// Records every push and pop from now on, for [`EventQueue::take_mix`].
    pub fn recording(mut self, on: bool) -> Self {
        self.mix = on.then(Vec::new);
        self
    }

    /// Schedules `e` at time `t` (not before the last event taken out).
    pub fn push(&mut self, t: Ps, e: E) {
        self.seq += 1;
        if let Some(m) = self.mix.as_mut() {
            m.push(MixOp::Push(t - self.now));
        }
        self.heap.push(t, e);
    }

    /// Takes out the earliest event, with its time.
    pub fn pop(&mut self) -> Option<(Ps, E)> {
        let (t, e) = self.heap.pop()?;
        self.now = t;
        if let Some(m) = self.mix.as_mut() {
            m.push(MixOp::Pop);
        }
        Some((self.now, e))
    }

    /// The event the next [`EventQueue::pop`] takes out, when it is of the
    /// current instant (see [`RadixHeap::peek_now`]).
    pub fn peek_now(&self) -> Option<&E> {
        self.heap.peek_now()
    }

    /// Events scheduled so far.
    pub fn pushed(&self) -> u64 {
        self.seq
    }

    /// Events held.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// `true` when no event is held.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// The recorded mix (empty unless [`EventQueue::recording`]).
    pub fn take_mix(&mut self) -> Vec<MixOp> {
        self.mix.take().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn equal_times_come_out_in_insertion_order() {
        let mut q = EventQueue::new();
        for i in 0..100u32 {
            q.push(5, i);
        }
        q.push(3, 1000);
        assert_eq!(q.pop(), Some((3, 1000)));
        for i in 0..100u32 {
            assert_eq!(q.pop(), Some((5, i)));
        }
        assert!(q.pop().is_none());
    }

    #[test]
    fn asked_to_take_the_last_first_equal_times_come_out_reversed() {
        let mut q = EventQueue::new().within(Within::Lifo);
        for i in 0..100u32 {
            q.push(5, i);
        }
        q.push(9, 2000);
        q.push(3, 1000);
        assert_eq!(q.pop(), Some((3, 1000)));
        assert_eq!(q.peek_now(), None, "the events of 5 are not sorted out yet");
        assert_eq!(q.pop(), Some((5, 99)));
        assert_eq!(q.peek_now(), Some(&98));
        // Scheduled at the current instant while it is handled: next.
        q.push(5, 500);
        assert_eq!(q.pop(), Some((5, 500)));
        for i in (0..99u32).rev() {
            assert_eq!(q.pop(), Some((5, i)));
        }
        assert_eq!(q.pop(), Some((9, 2000)));
        assert!(q.pop().is_none());
    }

    #[test]
    fn asked_to_take_the_least_first_equal_times_come_out_by_their_order() {
        let mut q = EventQueue::new().within(Within::Least);
        for i in [7u32, 3, 9, 1] {
            q.push(5, i);
        }
        q.push(2, 100);
        assert_eq!(q.pop(), Some((2, 100)));
        assert_eq!(q.pop(), Some((5, 1)));
        assert_eq!(q.peek_now(), Some(&3));
        // Scheduled at the current instant while it is handled: in its place.
        q.push(5, 8);
        q.push(5, 2);
        q.push(6, 0);
        let rest: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(rest, [(5, 2), (5, 3), (5, 7), (5, 8), (5, 9), (6, 0)]);
    }

    #[test]
    #[should_panic(expected = "before the current time")]
    fn scheduling_in_the_past_is_a_broken_invariant() {
        let mut q = EventQueue::new();
        q.push(10, ());
        q.pop();
        q.push(9, ());
    }

    proptest! {
        /// Against sorted references: every interleaving of pushes (never
        /// before the current time) and pops gives the same order. Ties go
        /// first in, first out in both FIFO heaps, and by the events' own
        /// order in the least-first radix heap, whatever order they were
        /// pushed in.
        #[test]
        fn heaps_agree_with_a_sorted_reference(ops in prop::collection::vec((0u64..3, 0u64..1_000_000), 1..400)) {
            let mut radix = RadixHeap::new();
            let mut quad = QuaternaryHeap::new();
            let mut least = RadixHeap::new().within(Within::Least);
            // FIFO by (time, push number); least first by (time, event).
            let mut fifo_ref = std::collections::BTreeSet::new();
            let mut least_ref = std::collections::BTreeSet::new();
            let (mut now, mut seq) = (0u64, 0u64);
            for (kind, delta) in ops {
                if kind == 0 {
                    let mut popped = Vec::new();
                    for heap in [&mut radix, &mut least] {
                        let peeked = heap.peek_now().copied();
                        let got = heap.pop();
                        // A peek, when it answers, names the event taken out next.
                        if let Some(p) = peeked {
                            prop_assert_eq!(Some(p), got.map(|(_, e)| e));
                            prop_assert_eq!(got.map(|(t, _)| t), Some(now));
                        }
                        popped.push(got);
                    }
                    prop_assert_eq!(popped[0], fifo_ref.pop_first().map(|(t, _, e)| (t, e)));
                    prop_assert_eq!(popped[0], quad.pop());
                    prop_assert_eq!(popped[1], least_ref.pop_first());
                    if let Some((t, _)) = popped[0] {
                        now = t;
                    }
                } else {
                    seq += 1;
                    let t = now + delta % 1000 * (delta % 7);
                    // Events unrelated to the order they are pushed in.
                    let e = (delta.wrapping_mul(0x9e37_79b9) << 20) | seq;
                    radix.push(t, e);
                    quad.push(t, e);
                    least.push(t, e);
                    fifo_ref.insert((t, seq, e));
                    least_ref.insert((t, e));
                }
            }
            prop_assert_eq!(radix.len(), fifo_ref.len());
            prop_assert_eq!(least.len(), least_ref.len());
        }
    }
}
