//! First-fit range allocation with coalescing.

use std::collections::BTreeMap;

use super::error::AddrError;

/// Rounds `x` up to a multiple of `align` (a power of two); `None` on overflow.
pub(crate) fn align_up(x: u64, align: u64) -> Option<u64> {
    debug_assert!(align.is_power_of_two());
    x.checked_add(align - 1).map(|v| v & !(align - 1))
}

/// A first-fit allocator over the byte range `[base, base + size)`.
///
/// Free ranges are kept in a `BTreeMap` keyed by their start and are merged
/// with their neighbours when a block is freed, so the map never holds two
/// touching free ranges. Allocation is O(number of free ranges); `free`,
/// `alloc_at` and `is_free` are O(log n).
#[derive(Clone, Debug)]
pub struct RangeAllocator {
    base: u64,
    end: u64,
    /// Free ranges: start -> end (exclusive). Disjoint, non-touching, non-empty.
    free: BTreeMap<u64, u64>,
    /// Live allocations: start -> size.
    used: BTreeMap<u64, u64>,
    used_bytes: u64,
}

impl RangeAllocator {
    /// An allocator over `[base, base + size)`, all of it free; a range that
    /// runs past the end of `u64` is an error.
    pub fn new(base: u64, size: u64) -> Result<RangeAllocator, AddrError> {
        let end = base
            .checked_add(size)
            .ok_or(AddrError::RangeOverflow { base, size })?;
        let mut free = BTreeMap::new();
        if size > 0 {
            free.insert(base, end);
        }
        Ok(RangeAllocator {
            base,
            end,
            free,
            used: BTreeMap::new(),
            used_bytes: 0,
        })
    }

    /// Start of the managed range.
    pub const fn base(&self) -> u64 {
        self.base
    }

    /// Bytes in the managed range.
    pub const fn size(&self) -> u64 {
        self.end - self.base
    }

    /// Bytes currently allocated.
    pub const fn used_bytes(&self) -> u64 {
        self.used_bytes
    }

    /// Bytes currently free (possibly fragmented).
    pub const fn free_bytes(&self) -> u64 {
        self.size() - self.used_bytes
    }

    /// The free ranges as `(start, size)`, in address order.
    pub fn free_ranges(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.free.iter().map(|(&s, &e)| (s, e - s))
    }

    /// The live allocations as `(start, size)`, in address order.
    pub fn allocations(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.used.iter().map(|(&s, &n)| (s, n))
    }

    /// The size of the allocation starting at `addr`, if there is one.
    pub fn allocation_size(&self, addr: u64) -> Option<u64> {
        self.used.get(&addr).copied()
    }

    /// The allocation `(start, size)` containing `addr`, if any.
    pub fn allocation_containing(&self, addr: u64) -> Option<(u64, u64)> {
        let (&s, &n) = self.used.range(..=addr).next_back()?;
        (addr - s < n).then_some((s, n))
    }

    /// Allocates `size` bytes aligned to `align` at the lowest address that
    /// fits (first fit) and returns that address.
    ///
    /// Errors: `size` zero, `align` not a non-zero power of two, or no free
    /// range large enough.
    pub fn alloc(&mut self, size: u64, align: u64) -> Result<u64, AddrError> {
        check_request(size, align)?;
        let addr = self
            .find_fit_from(self.base, size, align)
            .ok_or(AddrError::OutOfSpace {
                size,
                align,
                free: self.free_bytes(),
            })?;
        self.carve(addr, size);
        Ok(addr)
    }

    /// The lowest address `>= from`, aligned to `align`, at which `size` free
    /// bytes start; `None` if there is none (or the request is malformed:
    /// zero size, bad alignment).
    pub fn find_fit_from(&self, from: u64, size: u64, align: u64) -> Option<u64> {
        if check_request(size, align).is_err() {
            return None;
        }
        // Start at the free range containing `from` (if any), then walk upwards.
        let first = match self.free.range(..=from).next_back() {
            Some((&s, &e)) if e > from => s,
            _ => from,
        };
        for (&s, &e) in self.free.range(first..) {
            let a = align_up(s.max(from), align)?;
            let end = a.checked_add(size)?;
            if end <= e {
                return Some(a);
            }
        }
        None
    }

    /// Reserves exactly `[addr, addr + size)`, which must lie inside the
    /// managed range and be entirely free.
    pub fn alloc_at(&mut self, addr: u64, size: u64) -> Result<(), AddrError> {
        if size == 0 {
            return Err(AddrError::ZeroSize);
        }
        self.check_bounds(addr, size)?;
        if !self.is_free(addr, size) {
            return Err(AddrError::NotFree { addr, size });
        }
        self.carve(addr, size);
        Ok(())
    }

    /// Frees the allocation starting at `addr` and returns its size; an
    /// address at which no allocation starts is an error.
    pub fn free(&mut self, addr: u64) -> Result<u64, AddrError> {
        let size = self
            .used
            .remove(&addr)
            .ok_or(AddrError::UnknownAllocation { addr })?;
        self.used_bytes -= size;
        let mut start = addr;
        let mut end = addr + size;
        if let Some((&ps, &pe)) = self.free.range(..addr).next_back() {
            if pe == addr {
                self.free.remove(&ps);
                start = ps;
            }
        }
        if let Some(ne) = self.free.remove(&end) {
            end = ne;
        }
        self.free.insert(start, end);
        Ok(size)
    }

    /// Whether every byte of `[addr, addr + size)` lies inside the managed
    /// range and is unallocated. An empty range is free if `addr` lies within
    /// `[base, base + size]`.
    pub fn is_free(&self, addr: u64, size: u64) -> bool {
        if size == 0 {
            return self.base <= addr && addr <= self.end;
        }
        let Some(end) = addr.checked_add(size) else {
            return false;
        };
        matches!(self.free.range(..=addr).next_back(), Some((_, &e)) if e >= end)
    }

    fn check_bounds(&self, addr: u64, size: u64) -> Result<(), AddrError> {
        match addr.checked_add(size) {
            Some(end) if addr >= self.base && end <= self.end => Ok(()),
            _ => Err(AddrError::OutOfBounds {
                addr,
                size,
                base: self.base,
                end: self.end,
            }),
        }
    }

    /// Marks `[addr, addr + size)` used; the caller has checked that it is free.
    fn carve(&mut self, addr: u64, size: u64) {
        let end = addr + size;
        let (s, e) = match self.free.range(..=addr).next_back() {
            Some((&s, &e)) if e >= end => (s, e),
            _ => unreachable!("RangeAllocator::carve: [{addr:#x}, {end:#x}) is not free"),
        };
        self.free.remove(&s);
        if s < addr {
            self.free.insert(s, addr);
        }
        if end < e {
            self.free.insert(end, e);
        }
        self.used.insert(addr, size);
        self.used_bytes += size;
    }
}

fn check_request(size: u64, align: u64) -> Result<(), AddrError> {
    if size == 0 {
        return Err(AddrError::ZeroSize);
    }
    if !align.is_power_of_two() {
        return Err(AddrError::BadAlign { align });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(a: &RangeAllocator) -> Vec<(u64, u64)> {
        a.free_ranges().collect()
    }

    #[test]
    fn first_fit_and_alignment() {
        let mut a = RangeAllocator::new(0x1000, 0x10000).unwrap();
        assert_eq!(a.alloc(0x10, 1).unwrap(), 0x1000);
        assert_eq!(a.alloc(0x10, 0x100).unwrap(), 0x1100);
        assert_eq!(a.alloc(0x10, 1).unwrap(), 0x1010);
        assert_eq!(a.used_bytes(), 0x30);
        assert_eq!(ranges(&a), vec![(0x1020, 0xe0), (0x1110, 0x10000 - 0x110)]);
    }

    #[test]
    fn free_coalesces_both_sides() {
        let mut a = RangeAllocator::new(0, 0x300).unwrap();
        let x = a.alloc(0x100, 1).unwrap();
        let y = a.alloc(0x100, 1).unwrap();
        let z = a.alloc(0x100, 1).unwrap();
        assert!(ranges(&a).is_empty());
        a.free(x).unwrap();
        a.free(z).unwrap();
        assert_eq!(ranges(&a), vec![(0, 0x100), (0x200, 0x100)]);
        assert_eq!(a.free(y).unwrap(), 0x100);
        assert_eq!(ranges(&a), vec![(0, 0x300)]);
        assert_eq!(a.used_bytes(), 0);
    }

    #[test]
    fn errors() {
        let mut a = RangeAllocator::new(0, 0x100).unwrap();
        assert_eq!(a.alloc(0, 1), Err(AddrError::ZeroSize));
        assert_eq!(a.alloc(1, 0), Err(AddrError::BadAlign { align: 0 }));
        assert_eq!(a.alloc(1, 3), Err(AddrError::BadAlign { align: 3 }));
        assert!(matches!(
            a.alloc(0x101, 1),
            Err(AddrError::OutOfSpace { .. })
        ));
        assert_eq!(a.free(0), Err(AddrError::UnknownAllocation { addr: 0 }));
        let x = a.alloc(0x10, 1).unwrap();
        assert_eq!(a.free(x + 1), Err(AddrError::UnknownAllocation { addr: 1 }));
        a.free(x).unwrap();
        assert!(a.free(x).is_err());
        assert_eq!(
            RangeAllocator::new(u64::MAX, 2).err(),
            Some(AddrError::RangeOverflow {
                base: u64::MAX,
                size: 2
            })
        );
        // Huge alignment near the top of the space must not overflow.
        let mut top = RangeAllocator::new(u64::MAX - 0x100, 0x100).unwrap();
        assert!(top.alloc(1, 1 << 63).is_err());
        assert!(top.alloc(u64::MAX, 1).is_err());
    }

    #[test]
    fn alloc_at_reserves_exact_ranges() {
        let mut a = RangeAllocator::new(0x1000, 0x1000).unwrap();
        a.alloc_at(0x1400, 0x100).unwrap();
        assert!(!a.is_free(0x1400, 1));
        assert!(a.is_free(0x1000, 0x400));
        assert!(!a.is_free(0x1000, 0x401));
        assert_eq!(
            a.alloc_at(0x14ff, 2),
            Err(AddrError::NotFree {
                addr: 0x14ff,
                size: 2
            })
        );
        assert!(matches!(
            a.alloc_at(0xfff, 1),
            Err(AddrError::OutOfBounds { .. })
        ));
        assert!(matches!(
            a.alloc_at(0x1fff, 2),
            Err(AddrError::OutOfBounds { .. })
        ));
        assert!(matches!(
            a.alloc_at(u64::MAX, 2),
            Err(AddrError::OutOfBounds { .. })
        ));
        assert_eq!(a.alloc_at(0x1000, 0), Err(AddrError::ZeroSize));
        a.alloc_at(0x1000, 0x400).unwrap();
        assert_eq!(a.alloc(0x100, 1).unwrap(), 0x1500);
        assert_eq!(a.allocation_containing(0x1450), Some((0x1400, 0x100)));
        assert_eq!(a.allocation_containing(0x1600), None);
        assert_eq!(a.allocation_size(0x1000), Some(0x400));
    }

    #[test]
    fn find_fit_from_skips_below() {
        let mut a = RangeAllocator::new(0, 0x1000).unwrap();
        a.alloc_at(0x200, 0x100).unwrap();
        assert_eq!(a.find_fit_from(0, 0x100, 1), Some(0));
        assert_eq!(a.find_fit_from(0x150, 0x100, 1), Some(0x300));
        assert_eq!(a.find_fit_from(0x150, 0x80, 0x100), Some(0x300));
        assert_eq!(a.find_fit_from(0x310, 0x80, 1), Some(0x310));
        assert_eq!(a.find_fit_from(0xf90, 0x80, 1), None);
        assert_eq!(a.find_fit_from(0, 0, 1), None);
    }
}
