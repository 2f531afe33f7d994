//! Hints to the CPU's caches.
//!
//! At thousands of PEs the engine's state (instances, channels, links) far
//! outgrows the cache, and the state an event touches is rarely cached. Where
//! the engine knows which state it will touch next, it asks for it ahead, so
//! that the misses overlap with work instead of following each other. These
//! are hints only: no result depends on them, and off x86-64 they do nothing.

/// Bytes in a cache line.
const LINE: usize = 64;

/// Asks for every cache line of `x` to be brought into the cache.
#[inline]
pub(crate) fn prefetch<T: ?Sized>(x: &T) {
    let start = (x as *const T).cast::<u8>() as usize;
    let end = start + std::mem::size_of_val(x).max(1);
    let mut at = start & !(LINE - 1);
    while at < end {
        line(at);
        at += LINE;
    }
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn line(at: usize) {
    // SAFETY: a prefetch only hints the cache: it never faults, whatever
    // the address, and reads or writes nothing. The addresses given lie
    // within a live value besides.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(at as *const i8);
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn line(_at: usize) {}

#[cfg(test)]
mod tests {
    /// A hint changes nothing it touches, aligned or not.
    #[test]
    fn prefetching_leaves_values_as_they_are() {
        let v: Vec<u64> = (0..1000).collect();
        for x in &v {
            super::prefetch(x);
        }
        super::prefetch(&v[..]);
        let bytes = [7u8; 200];
        super::prefetch(&bytes);
        assert_eq!(v.iter().sum::<u64>(), 499_500);
        assert!(bytes.iter().all(|&b| b == 7));
    }
}
