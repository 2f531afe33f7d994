//! Large engine arrays on huge pages, where the OS offers them.
//!
//! The engine's per-op arrays are read in the order events visit the
//! instances, which is no order at all: at thousands of instances each event
//! lands on another 4 KiB page, and the TLB misses cost more than the work.
//! On Linux the kernel backs a range with 2 MiB pages when asked
//! (`madvise(MADV_HUGEPAGE)`, honoured when transparent huge pages are
//! `always` or `madvise`), which lets a few hundred TLB entries cover them.
//! It is a hint: results do not depend on it, and elsewhere nothing is done.
//! The largest of these arrays are also touched ahead over the machine's
//! cores, so that no one thread pays for every page's first fault.

/// The smallest range worth advising: one huge page.
const HUGE: usize = 2 << 20;

/// An empty vector with room for `cap` items whose buffer the kernel is
/// asked to back with huge pages (before anything touches it, so the first
/// faults already take them).
///
/// A buffer of [`PREFAULT`] bytes or more is also touched once, a page at
/// a time, over the machine's cores: the kernel clears each page on its
/// first touch, and on a virtual machine that first touch costs far more
/// than clearing (hundreds of milliseconds for the op progress of a
/// 1024-PE run), which one thread would otherwise pay alone while it fills
/// the vector. The callers fill what they ask room for, so this takes no
/// memory they would not take anyway.
pub(crate) fn vec_with_capacity<T>(cap: usize) -> Vec<T> {
    let mut v = Vec::with_capacity(cap);
    let bytes = v.capacity().saturating_mul(std::mem::size_of::<T>());
    if bytes >= 2 * HUGE {
        advise(v.as_ptr() as usize, bytes);
    }
    if bytes >= PREFAULT {
        prefault(v.spare_capacity_mut().as_mut_ptr().cast::<u8>(), bytes);
    }
    v
}

/// The smallest buffer [`vec_with_capacity`] touches ahead, over several threads.
const PREFAULT: usize = 8 << 20;

/// Writes a zero byte to each 4 KiB page of `[at, at + bytes)`, the pages
/// split evenly over the machine's cores.
fn prefault(at: *mut u8, bytes: usize) {
    const PAGE: usize = 4096;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    let pages = bytes.div_ceil(PAGE);
    let per = pages.div_ceil(threads);
    // A raw pointer is not `Send`; its address is.
    let base = at as usize;
    std::thread::scope(|s| {
        for k in 0..threads {
            let (from, to) = (k * per, ((k + 1) * per).min(pages));
            s.spawn(move || {
                for p in from..to {
                    // SAFETY: `p * PAGE < bytes`, so the byte lies inside the
                    // allocation; it is uninitialised spare capacity no one
                    // else reads or writes until the scope ends, and a `u8`
                    // has no invalid values.
                    unsafe { ((base + p * PAGE) as *mut u8).write_volatile(0) };
                }
            });
        }
    });
}

/// The items of `items` in a vector made by [`vec_with_capacity`]: for the
/// engine's arrays with an entry per instance, channel or link, which events
/// also visit in no order.
pub(crate) fn collect<T>(items: impl ExactSizeIterator<Item = T>) -> Vec<T> {
    let mut v = vec_with_capacity(items.len());
    v.extend(items);
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

    /// A buffer touched ahead over several threads is still empty, and
    /// holds what is put in it.
    #[test]
    fn a_vector_touched_ahead_is_an_ordinary_vector() {
        let n = (super::PREFAULT / 8) * 3 + 5; // not a whole number of pages
        let mut v: Vec<u64> = super::vec_with_capacity(n);
        assert!(v.capacity() >= n && v.is_empty());
        v.extend((0..n as u64).map(|i| i * 3));
        assert!(v.iter().enumerate().all(|(i, &x)| x == i as u64 * 3));
    }

    /// The kernel records the advice on the mapping (`hg` in its flags),
    /// where the kernel can take it at all.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_large_vector_is_advised_huge_pages() {
        let Ok(thp) = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled") else {
            return; // a kernel without transparent huge pages
        };
        if thp.contains("[never]") {
            return;
        }
        let v: Vec<u64> = super::vec_with_capacity(1 << 20); // 8 MiB
        let at = (v.as_ptr() as usize).next_multiple_of(super::HUGE);
        let smaps = std::fs::read_to_string("/proc/self/smaps").expect("smaps is readable");
        let mut inside = false;
        let mut flags = None;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ') {
                if let Some((a, b)) = range.split_once('-') {
                    if let (Ok(a), Ok(b)) =
                        (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
                    {
                        inside = (a..b).contains(&at);
                        continue;
                    }
                }
            }
            if inside {
                if let Some(f) = line.strip_prefix("VmFlags:") {
                    flags = Some(f.to_string());
                }
            }
        }
        let flags = flags.expect("the vector's mapping is listed");
        assert!(
            flags.split_whitespace().any(|f| f == "hg"),
            "no huge-page advice on the vector's mapping: {flags}"
        );
        drop(v);
    }
}
