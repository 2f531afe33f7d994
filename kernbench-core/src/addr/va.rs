//! Per-PE virtual address spaces.
//!
//! Kernels see virtual addresses. Each PE has its own [`VaSpace`]; a buffer
//! spread over many PEs can be given the same VA on all of them with
//! [`first_common_fit`] and [`VaSpace::alloc_at`].

use std::collections::BTreeMap;

use super::alloc::{align_up, RangeAllocator};
use super::error::AddrError;

/// The small page: 4 KiB.
pub const PAGE_4K: u64 = 4 << 10;
/// The large page: 2 MiB.
pub const PAGE_2M: u64 = 2 << 20;
/// Default first virtual address of a [`VaSpace`] (16 TiB), so that a null or
/// small integer is never a valid VA.
pub const VA_BASE: u64 = 0x1000_0000_0000;
/// Default size of a [`VaSpace`] (16 TiB).
pub const VA_SIZE: u64 = 0x1000_0000_0000;

/// The page size used for an allocation of `bytes`: 2 MiB from 2 MiB up, 4 KiB below.
pub const fn page_size_for(bytes: u64) -> u64 {
    if bytes >= PAGE_2M {
        PAGE_2M
    } else {
        PAGE_4K
    }
}

/// `(page_size, mapped_bytes)` for a request of `bytes`; `None` if zero or if
/// rounding up overflows.
fn pages_for(bytes: u64) -> Option<(u64, u64)> {
    if bytes == 0 {
        return None;
    }
    let page = page_size_for(bytes);
    Some((page, align_up(bytes, page)?))
}

/// One allocation in a [`VaSpace`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VaAlloc {
    /// First virtual address (aligned to `page_size`).
    pub va: u64,
    /// Bytes requested.
    pub bytes: u64,
    /// Bytes reserved: `bytes` rounded up to a whole number of pages.
    pub mapped_bytes: u64,
    /// Page size: [`PAGE_2M`] or [`PAGE_4K`], per [`page_size_for`].
    pub page_size: u64,
}

impl VaAlloc {
    /// One past the last reserved virtual address (`va + mapped_bytes`).
    pub const fn end(&self) -> u64 {
        self.va + self.mapped_bytes
    }

    /// Whether `va` lies in the reserved range.
    pub const fn contains(&self, va: u64) -> bool {
        va >= self.va && va - self.va < self.mapped_bytes
    }
}

/// The virtual address space of one PE: which VAs are taken, by which allocation.
#[derive(Clone, Debug)]
pub struct VaSpace {
    ranges: RangeAllocator,
    allocs: BTreeMap<u64, VaAlloc>,
}

impl Default for VaSpace {
    fn default() -> Self {
        VaSpace::new()
    }
}

impl VaSpace {
    /// A space over `[VA_BASE, VA_BASE + VA_SIZE)`.
    pub fn new() -> VaSpace {
        match VaSpace::with_range(VA_BASE, VA_SIZE) {
            Ok(s) => s,
            Err(e) => unreachable!("VaSpace::new: the default range is valid: {e}"),
        }
    }

    /// A space over `[base, base + size)`. `base` must be non-zero and both
    /// must be multiples of 2 MiB.
    pub fn with_range(base: u64, size: u64) -> Result<VaSpace, AddrError> {
        if base == 0 {
            return Err(AddrError::NullVaBase);
        }
        for (what, value) in [("va space base", base), ("va space size", size)] {
            if value % PAGE_2M != 0 {
                return Err(AddrError::Unaligned {
                    what,
                    value,
                    align: PAGE_2M,
                });
            }
        }
        Ok(VaSpace {
            ranges: RangeAllocator::new(base, size)?,
            allocs: BTreeMap::new(),
        })
    }

    /// First virtual address of the space.
    pub const fn base(&self) -> u64 {
        self.ranges.base()
    }

    /// Bytes of virtual address space.
    pub const fn size(&self) -> u64 {
        self.ranges.size()
    }

    /// Bytes reserved by live allocations (whole pages).
    pub const fn mapped_bytes(&self) -> u64 {
        self.ranges.used_bytes()
    }

    /// Allocates `bytes` at the lowest free VA aligned to the page size for
    /// `bytes`, reserving whole pages.
    pub fn alloc(&mut self, bytes: u64) -> Result<VaAlloc, AddrError> {
        let (page_size, mapped_bytes) = pages_for(bytes).ok_or(AddrError::ZeroSize)?;
        let va = self.ranges.alloc(mapped_bytes, page_size)?;
        Ok(self.record(va, bytes, mapped_bytes, page_size))
    }

    /// Allocates `bytes` at exactly `va`, which must be aligned to the page
    /// size for `bytes` and free for all its pages. Used to give one buffer
    /// the same VA on several PEs.
    pub fn alloc_at(&mut self, va: u64, bytes: u64) -> Result<VaAlloc, AddrError> {
        let (page_size, mapped_bytes) = pages_for(bytes).ok_or(AddrError::ZeroSize)?;
        if va % page_size != 0 {
            return Err(AddrError::Unaligned {
                what: "va",
                value: va,
                align: page_size,
            });
        }
        self.ranges.alloc_at(va, mapped_bytes)?;
        Ok(self.record(va, bytes, mapped_bytes, page_size))
    }

    fn record(&mut self, va: u64, bytes: u64, mapped_bytes: u64, page_size: u64) -> VaAlloc {
        let a = VaAlloc {
            va,
            bytes,
            mapped_bytes,
            page_size,
        };
        self.allocs.insert(va, a);
        a
    }

    /// Frees the allocation starting at `va` and returns it; a VA at which no
    /// allocation starts is an error.
    pub fn free(&mut self, va: u64) -> Result<VaAlloc, AddrError> {
        let a = self
            .allocs
            .remove(&va)
            .ok_or(AddrError::UnknownAllocation { addr: va })?;
        self.ranges.free(va)?;
        Ok(a)
    }

    /// The allocation starting at `va`, if any.
    pub fn get(&self, va: u64) -> Option<&VaAlloc> {
        self.allocs.get(&va)
    }

    /// The allocation whose reserved pages contain `va`, if any.
    pub fn find(&self, va: u64) -> Option<&VaAlloc> {
        let (_, a) = self.allocs.range(..=va).next_back()?;
        a.contains(va).then_some(a)
    }

    /// The live allocations in VA order.
    pub fn allocations(&self) -> impl Iterator<Item = &VaAlloc> + '_ {
        self.allocs.values()
    }

    /// Whether an allocation of `bytes` could be placed at `va` by
    /// [`VaSpace::alloc_at`]: `va` is aligned to the page size for `bytes`
    /// and all the pages it would reserve are free.
    pub fn is_free(&self, va: u64, bytes: u64) -> bool {
        match pages_for(bytes) {
            Some((page, mapped)) => va % page == 0 && self.ranges.is_free(va, mapped),
            None => false,
        }
    }

    /// The free VA ranges as `(start, size)`, in address order.
    pub fn free_ranges(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.ranges.free_ranges()
    }
}

/// The lowest VA at which an allocation of `bytes` (page-aligned per
/// [`page_size_for`]) is free in every one of `spaces`; `None` if there is
/// none, if `bytes` is zero or if `spaces` is empty.
///
/// Runs in O(total free ranges x number of spaces) in the worst case.
pub fn first_common_fit(spaces: &[&VaSpace], bytes: u64) -> Option<u64> {
    let (page, mapped) = pages_for(bytes)?;
    let first = spaces.first()?;
    let mut candidate = first.ranges.find_fit_from(first.base(), mapped, page)?;
    // Raise the candidate until one full pass over the spaces leaves it
    // unchanged. Each raise lands on the aligned start of a free range above the
    // previous candidate in some space, so this ends.
    loop {
        let mut settled = true;
        for s in spaces {
            let fit = s.ranges.find_fit_from(candidate, mapped, page)?;
            if fit != candidate {
                candidate = fit;
                settled = false;
            }
        }
        if settled {
            return Some(candidate);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_rule() {
        assert_eq!(page_size_for(1), PAGE_4K);
        assert_eq!(page_size_for(PAGE_2M - 1), PAGE_4K);
        assert_eq!(page_size_for(PAGE_2M), PAGE_2M);
        assert_eq!(page_size_for(1 << 40), PAGE_2M);
    }

    #[test]
    fn alloc_rounds_and_aligns() {
        let mut s = VaSpace::new();
        let a = s.alloc(100).unwrap();
        assert_eq!(
            a,
            VaAlloc {
                va: VA_BASE,
                bytes: 100,
                mapped_bytes: PAGE_4K,
                page_size: PAGE_4K
            }
        );
        let b = s.alloc(PAGE_2M + 1).unwrap();
        assert_eq!(b.va, VA_BASE + PAGE_2M);
        assert_eq!(b.mapped_bytes, 2 * PAGE_2M);
        assert_eq!(b.page_size, PAGE_2M);
        let c = s.alloc(PAGE_4K).unwrap();
        assert_eq!(c.va, VA_BASE + PAGE_4K);
        assert_eq!(s.mapped_bytes(), 2 * PAGE_4K + 2 * PAGE_2M);
        assert_eq!(s.find(b.va + PAGE_2M + 5), Some(&b));
        assert_eq!(s.find(c.end()), None);
        assert_eq!(s.free(b.va).unwrap(), b);
        assert!(s.free(b.va).is_err());
        assert_eq!(s.alloc(0), Err(AddrError::ZeroSize));
        assert!(s.alloc(u64::MAX).is_err());
    }

    #[test]
    fn alloc_at_checks_alignment_and_overlap() {
        let mut s = VaSpace::new();
        let va = VA_BASE + 4 * PAGE_2M;
        assert!(matches!(
            s.alloc_at(va + PAGE_4K, PAGE_2M),
            Err(AddrError::Unaligned { what: "va", .. })
        ));
        s.alloc_at(va, PAGE_2M).unwrap();
        assert!(matches!(s.alloc_at(va, 1), Err(AddrError::NotFree { .. })));
        assert!(matches!(
            s.alloc_at(0x1000, 1),
            Err(AddrError::OutOfBounds { .. })
        ));
        assert!(s.is_free(va + PAGE_2M, 1));
        assert!(!s.is_free(va + PAGE_2M + 1, 1));
        assert!(!s.is_free(va, 1));
    }

    #[test]
    fn with_range_validation() {
        assert_eq!(
            VaSpace::with_range(0, PAGE_2M).err(),
            Some(AddrError::NullVaBase)
        );
        assert!(VaSpace::with_range(PAGE_4K, PAGE_2M).is_err());
        assert!(VaSpace::with_range(PAGE_2M, PAGE_4K).is_err());
        assert!(VaSpace::with_range(u64::MAX - PAGE_2M + 1, 2 * PAGE_2M).is_err());
        let s = VaSpace::with_range(PAGE_2M, PAGE_2M).unwrap();
        assert_eq!((s.base(), s.size()), (PAGE_2M, PAGE_2M));
    }

    #[test]
    fn common_fit_over_spaces() {
        let mut a = VaSpace::new();
        let mut b = VaSpace::new();
        let mut c = VaSpace::new();
        a.alloc(PAGE_2M).unwrap(); // a: [0, 2M) taken
        b.alloc_at(VA_BASE + PAGE_2M, PAGE_4K).unwrap(); // b: page at 2M taken
        c.alloc_at(VA_BASE + 3 * PAGE_2M, 3 * PAGE_2M).unwrap(); // c: [6M, 12M) taken
        let va = first_common_fit(&[&a, &b, &c], 3 * PAGE_2M).unwrap();
        assert_eq!(va, VA_BASE + 6 * PAGE_2M);
        for s in [&mut a, &mut b, &mut c] {
            s.alloc_at(va, 3 * PAGE_2M).unwrap();
        }
        // A small buffer fits in b's hole above its 4 KiB page only where a and c are free too.
        let small = first_common_fit(&[&a, &b, &c], PAGE_4K).unwrap();
        assert_eq!(small, VA_BASE + PAGE_2M + PAGE_4K);
        assert_eq!(first_common_fit(&[], PAGE_4K), None);
        assert_eq!(first_common_fit(&[&a], 0), None);
        assert_eq!(first_common_fit(&[&a], VA_SIZE), None);
    }
}
