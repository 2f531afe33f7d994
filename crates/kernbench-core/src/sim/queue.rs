//! The event queue: events keyed by integer picoseconds, earliest first, and
//! first in, first out among events of one instant.
//!
//! Simulated time never goes backwards (nothing is scheduled before the event
//! being handled), so the keys are monotone and a radix heap fits: an event
//! lives in the bucket of the highest bit in which its key differs from the
//! last key taken out, and moves only to lower buckets, so each event is
//! touched a few times at most, with no comparisons on the way in. The key is
//! `(time << 64) | sequence`: unique, so the tie-break is the order of
//! insertion. `benches/event_queue.rs` compares it with `BinaryHeap` and a
//! 4-ary heap on an event mix recorded from a collective; the radix heap won
//! there, and is the engine's queue.

use crate::Ps;

/// One step of a recorded event mix (see [`EventQueue::recording`]): a push
/// `delta` picoseconds after the last time taken out, or a pop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MixOp {
    /// An event scheduled this many ps after the current time.
    Push(Ps),
    /// The earliest event taken out.
    Pop,
}

fn key(t: Ps, seq: u64) -> u128 {
    (u128::from(t) << 64) | u128::from(seq)
}

fn time_of(k: u128) -> Ps {
    (k >> 64) as Ps
}

/// A monotone radix heap over `(time, sequence)` keys.
#[derive(Clone, Debug)]
pub struct RadixHeap<E> {
    buckets: Vec<Vec<(u128, E)>>,
    last: u128,
    len: usize,
}

impl<E> Default for RadixHeap<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> RadixHeap<E> {
    /// An empty heap whose smallest allowed key is time 0.
    pub fn new() -> Self {
        RadixHeap {
            buckets: (0..129).map(|_| Vec::new()).collect(),
            last: 0,
            len: 0,
        }
    }

    fn bucket(&self, k: u128) -> usize {
        (128 - (k ^ self.last).leading_zeros()) as usize
    }

    /// Adds an event. `k` must not be below the last key popped.
    pub fn push_key(&mut self, k: u128, e: E) {
        assert!(
            k >= self.last,
            "event queue: an event was scheduled before the current time ({} < {} ps)",
            time_of(k),
            time_of(self.last)
        );
        let b = self.bucket(k);
        self.buckets[b].push((k, e));
        self.len += 1;
    }

    /// Takes out the event with the smallest key.
    pub fn pop_key(&mut self) -> Option<(u128, E)> {
        if self.len == 0 {
            return None;
        }
        if self.buckets[0].is_empty() {
            let i = (1..self.buckets.len())
                .find(|&i| !self.buckets[i].is_empty())
                .expect("a non-empty heap has a non-empty bucket");
            let mut items = std::mem::take(&mut self.buckets[i]);
            self.last = items
                .iter()
                .map(|x| x.0)
                .min()
                .expect("bucket is non-empty");
            for (k, e) in items.drain(..) {
                let b = self.bucket(k);
                self.buckets[b].push((k, e));
            }
            // Keep the bucket's allocation for later.
            self.buckets[i] = items;
        }
        self.len -= 1;
        self.buckets[0].pop()
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
}

impl<E> Default for QuaternaryHeap<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> QuaternaryHeap<E> {
    /// An empty heap.
    pub fn new() -> Self {
        QuaternaryHeap { items: Vec::new() }
    }

    /// Adds an event.
    pub fn push_key(&mut self, k: u128, e: E) {
        self.items.push((k, e));
        let mut i = self.items.len() - 1;
        while i > 0 {
            let p = (i - 1) / 4;
            if self.items[p].0 <= self.items[i].0 {
                break;
            }
            self.items.swap(p, i);
            i = p;
        }
    }

    /// Takes out the event with the smallest key.
    pub fn pop_key(&mut self) -> Option<(u128, E)> {
        let n = self.items.len();
        if n == 0 {
            return None;
        }
        self.items.swap(0, n - 1);
        let top = self.items.pop();
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
        top
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
#[derive(Clone, Debug)]
pub struct EventQueue<E> {
    heap: RadixHeap<E>,
    seq: u64,
    now: Ps,
    mix: Option<Vec<MixOp>>,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> EventQueue<E> {
    /// An empty queue at time 0.
    pub fn new() -> Self {
        EventQueue {
            heap: RadixHeap::new(),
            seq: 0,
            now: 0,
            mix: None,
        }
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
        self.heap.push_key(key(t, self.seq), e);
    }

    /// Takes out the earliest event, with its time.
    pub fn pop(&mut self) -> Option<(Ps, E)> {
        let (k, e) = self.heap.pop_key()?;
        self.now = time_of(k);
        if let Some(m) = self.mix.as_mut() {
            m.push(MixOp::Pop);
        }
        Some((self.now, e))
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
    #[should_panic(expected = "before the current time")]
    fn scheduling_in_the_past_is_a_broken_invariant() {
        let mut q = EventQueue::new();
        q.push(10, ());
        q.pop();
        q.push(9, ());
    }

    proptest! {
        /// Against a sorted reference: every interleaving of pushes (never
        /// before the current time) and pops gives the same order in all three heaps.
        #[test]
        fn heaps_agree_with_a_sorted_reference(ops in prop::collection::vec((0u64..3, 0u64..1_000_000), 1..400)) {
            let mut radix = RadixHeap::new();
            let mut quad = QuaternaryHeap::new();
            let mut reference = std::collections::BTreeSet::new();
            let (mut now, mut seq) = (0u64, 0u64);
            for (kind, delta) in ops {
                if kind == 0 {
                    let got = radix.pop_key().map(|x| x.0);
                    prop_assert_eq!(got, quad.pop_key().map(|x| x.0));
                    let want = reference.pop_first();
                    prop_assert_eq!(got, want);
                    if let Some(k) = got {
                        now = time_of(k);
                    }
                } else {
                    seq += 1;
                    let k = key(now + delta % 1000 * (delta % 7), seq);
                    radix.push_key(k, ());
                    quad.push_key(k, ());
                    reference.insert(k);
                }
            }
            prop_assert_eq!(radix.len(), reference.len());
        }
    }
}
