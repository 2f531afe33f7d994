//! Large engine arrays on huge pages, where the OS offers them.
//!
//! The engine's per-op arrays are read in the order events visit the
//! instances, which is no order at all: at thousands of instances each event
//! lands on another 4 KiB page, and the TLB misses cost more than the work.
//! On Linux the kernel backs a range with 2 MiB pages when asked
//! (`madvise(MADV_HUGEPAGE)`, honoured when transparent huge pages are
//! `always` or `madvise`), which lets a few hundred TLB entries cover them.
//! It is a hint: results do not depend on it, and elsewhere nothing is done.

/// The smallest range worth advising: one huge page.
const HUGE: usize = 2 << 20;

/// An empty vector with room for `cap` items whose buffer the kernel is
/// asked to back with huge pages (before anything touches it, so the first
/// faults already take them).
pub(crate) fn vec_with_capacity<T>(cap: usize) -> Vec<T> {
    let v = Vec::with_capacity(cap);
    let bytes = v.capacity().saturating_mul(std::mem::size_of::<T>());
    if bytes >= 2 * HUGE {
        advise(v.as_ptr() as usize, bytes);
    }
    v
}

/// Advises the huge pages wholly inside `[start, start + len)`.
#[cfg(target_os = "linux")]
fn advise(start: usize, len: usize) {
    let from = start.next_multiple_of(HUGE);
    let to = (start + len) / HUGE * HUGE;
    if to > from {
        // SAFETY: the range lies inside an allocation this process owns, and
        // MADV_HUGEPAGE changes only how the kernel backs it, never its
        // contents. A failure (e.g. no THP support) leaves 4 KiB pages.
        unsafe {
            libc::madvise(from as *mut libc::c_void, to - from, libc::MADV_HUGEPAGE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise(_start: usize, _len: usize) {}

#[cfg(test)]
mod tests {
    #[test]
    fn an_advised_vector_is_an_ordinary_vector() {
        let mut v: Vec<u32> = super::vec_with_capacity(3 << 20);
        assert!(v.capacity() >= 3 << 20 && v.is_empty());
        v.extend(0..3 << 20);
        assert_eq!(v[(3 << 20) - 1], (3 << 20) - 1);
        let small: Vec<u8> = super::vec_with_capacity(10);
        assert!(small.capacity() >= 10);
    }
}
