//! The per-PE MMU: a page table from virtual pages to physical pages.
//!
//! The table stores extents (runs of pages that are contiguous in both VA and
//! PA, with one page size) in a `BTreeMap` keyed by their first VA, so a lookup
//! is O(log n) and translating a large range costs O(log n + pieces), never a
//! walk over its pages.

use smallvec::SmallVec;
use std::collections::BTreeMap;

use super::error::AddrError;
use super::phys::PhysAddr;
use super::va::{VaAlloc, PAGE_2M, PAGE_4K};

/// One extent of the page table: `bytes` of VA from `va` mapped onto `bytes`
/// of PA from `pa`, in pages of `page_size`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Mapping {
    /// First virtual address.
    pub va: u64,
    /// First physical address.
    pub pa: PhysAddr,
    /// Length in bytes (a whole number of pages).
    pub bytes: u64,
    /// Page size: [`PAGE_4K`] or [`PAGE_2M`].
    pub page_size: u64,
}

impl Mapping {
    /// One past the last virtual address.
    const fn va_end(&self) -> u64 {
        self.va + self.bytes
    }

    /// Whether `next` continues this extent in VA and PA with the same page size.
    fn continued_by(&self, next: &Mapping) -> bool {
        self.page_size == next.page_size
            && self.va_end() == next.va
            && self.pa.checked_add(self.bytes).ok() == Some(next.pa)
    }
}

/// The "page size" of a byte-granular segment mapping ([`Mmu::map_segment`]).
pub const SEGMENT: u64 = 1;

/// Physical runs `(address, bytes)` of a virtual range, in order: inline
/// for the usual one or two, so a translation does not allocate.
pub type PhysRuns = SmallVec<[(PhysAddr, u64); 2]>;

/// The MMU of one PE.
#[derive(Clone, Debug, Default)]
pub struct Mmu {
    /// Disjoint extents keyed by first VA. Touching extents that continue each
    /// other (same page size, contiguous PA) are merged.
    extents: BTreeMap<u64, Mapping>,
    mapped_bytes: u64,
}

impl Mmu {
    /// An MMU with an empty page table.
    pub fn new() -> Mmu {
        Mmu::default()
    }

    /// Bytes of VA currently mapped.
    pub const fn mapped_bytes(&self) -> u64 {
        self.mapped_bytes
    }

    /// The extents of the page table in VA order (adjacent compatible
    /// mappings appear merged).
    pub fn mappings(&self) -> impl Iterator<Item = &Mapping> + '_ {
        self.extents.values()
    }

    /// The extent containing `va`, if mapped.
    pub fn mapping_at(&self, va: u64) -> Option<&Mapping> {
        let (_, m) = self.extents.range(..=va).next_back()?;
        (va < m.va_end()).then_some(m)
    }

    /// Whether `va` is mapped.
    pub fn is_mapped(&self, va: u64) -> bool {
        self.mapping_at(va).is_some()
    }

    /// Maps a byte-granular segment: one shard of a buffer spread over many
    /// PEs, whose boundaries need not fall on pages. Same rules as [`Mmu::map`]
    /// otherwise (no overlap, the physical range stays on its die).
    pub fn map_segment(&mut self, va: u64, pa: PhysAddr, bytes: u64) -> Result<(), AddrError> {
        self.map(va, pa, bytes, SEGMENT)
    }

    /// Maps `[va, va + bytes)` onto `[pa, pa + bytes)` in pages of `page_size`.
    ///
    /// Errors: a page size other than 4 KiB, 2 MiB or [`SEGMENT`], zero bytes, `va`, `pa` or
    /// `bytes` not a multiple of the page size, a PA range that leaves its
    /// die, a VA range past the end of `u64`, or overlap with an existing mapping.
    pub fn map(
        &mut self,
        va: u64,
        pa: PhysAddr,
        bytes: u64,
        page_size: u64,
    ) -> Result<(), AddrError> {
        if page_size != PAGE_4K && page_size != PAGE_2M && page_size != SEGMENT {
            return Err(AddrError::BadPageSize { page_size });
        }
        if bytes == 0 {
            return Err(AddrError::ZeroSize);
        }
        for (what, value) in [("va", va), ("pa", pa.raw()), ("bytes", bytes)] {
            if value % page_size != 0 {
                return Err(AddrError::Unaligned {
                    what,
                    value,
                    align: page_size,
                });
            }
        }
        let end = va_end(va, bytes)?;
        pa.checked_add(bytes - 1)
            .map_err(|_| AddrError::LeavesDie { pa, bytes })?;
        if let Some((_, m)) = self.extents.range(..end).next_back() {
            if m.va_end() > va {
                return Err(AddrError::MapOverlap {
                    va,
                    bytes,
                    existing_va: m.va,
                });
            }
        }

        let mut new = Mapping {
            va,
            pa,
            bytes,
            page_size,
        };
        if let Some((&pv, prev)) = self.extents.range(..va).next_back() {
            if prev.continued_by(&new) {
                new = Mapping {
                    va: pv,
                    pa: prev.pa,
                    bytes: prev.bytes + new.bytes,
                    page_size,
                };
                self.extents.remove(&pv);
            }
        }
        if let Some(next) = self.extents.get(&end).copied() {
            if new.continued_by(&next) {
                new.bytes += next.bytes;
                self.extents.remove(&end);
            }
        }
        self.extents.insert(new.va, new);
        self.mapped_bytes += bytes;
        Ok(())
    }

    /// Maps a whole [`VaAlloc`] (all its reserved pages) onto PA from `pa`.
    pub fn map_alloc(&mut self, alloc: &VaAlloc, pa: PhysAddr) -> Result<(), AddrError> {
        self.map(alloc.va, pa, alloc.mapped_bytes, alloc.page_size)
    }

    /// Removes the translations of `[va, va + bytes)`.
    ///
    /// Every byte of the range must be mapped (else an error names the first
    /// unmapped VA), and the range must not start or end inside a page. On
    /// error nothing is changed.
    pub fn unmap(&mut self, va: u64, bytes: u64) -> Result<(), AddrError> {
        if bytes == 0 {
            return Err(AddrError::ZeroSize);
        }
        let end = va_end(va, bytes)?;
        let pieces = self.covering(va, end)?;
        // Check the cuts at both ends fall on page boundaries.
        if let Some(first) = pieces.first() {
            if (va - first.va) % first.page_size != 0 {
                return Err(AddrError::SplitsPage {
                    va,
                    page_size: first.page_size,
                });
            }
        }
        if let Some(last) = pieces.last() {
            if end < last.va_end() && (end - last.va) % last.page_size != 0 {
                return Err(AddrError::SplitsPage {
                    va: end,
                    page_size: last.page_size,
                });
            }
        }
        for m in pieces {
            self.extents.remove(&m.va);
            if m.va < va {
                let head = va - m.va;
                self.extents.insert(m.va, Mapping { bytes: head, ..m });
            }
            if end < m.va_end() {
                let skip = end - m.va;
                let pa = m.pa.checked_add(skip)?;
                self.extents.insert(
                    end,
                    Mapping {
                        va: end,
                        pa,
                        bytes: m.bytes - skip,
                        ..m
                    },
                );
            }
        }
        self.mapped_bytes -= bytes;
        Ok(())
    }

    /// The physical address of `va`; an unmapped VA is an error naming it.
    pub fn translate(&self, va: u64) -> Result<PhysAddr, AddrError> {
        let m = self.mapping_at(va).ok_or(AddrError::Unmapped { va })?;
        m.pa.checked_add(va - m.va)
    }

    /// The physical pieces of `[va, va + bytes)` as `(pa, len)`, in VA order,
    /// with physically contiguous neighbours merged. Any unmapped byte is an
    /// error naming the first unmapped VA; zero bytes give no pieces.
    pub fn translate_range(&self, va: u64, bytes: u64) -> Result<PhysRuns, AddrError> {
        if bytes == 0 {
            return Ok(PhysRuns::new());
        }
        let end = va_end(va, bytes)?;
        let mut out = PhysRuns::new();
        for m in self.covering(va, end)? {
            let from = va.max(m.va);
            let len = end.min(m.va_end()) - from;
            let pa = m.pa.checked_add(from - m.va)?;
            match out.last_mut() {
                Some((last, n)) if last.checked_add(*n).ok() == Some(pa) => *n += len,
                _ => out.push((pa, len)),
            }
        }
        Ok(out)
    }

    /// The extents covering `[va, end)` (non-empty), in order; a gap is an
    /// error naming its first VA.
    fn covering(&self, va: u64, end: u64) -> Result<SmallVec<[Mapping; 2]>, AddrError> {
        let first = self.mapping_at(va).ok_or(AddrError::Unmapped { va })?;
        let mut cursor = first.va;
        let mut out = SmallVec::new();
        for (&s, m) in self.extents.range(first.va..) {
            if cursor >= end {
                break;
            }
            if s != cursor {
                return Err(AddrError::Unmapped { va: cursor });
            }
            out.push(*m);
            cursor = m.va_end();
        }
        if cursor < end {
            return Err(AddrError::Unmapped { va: cursor });
        }
        Ok(out)
    }
}

fn va_end(va: u64, bytes: u64) -> Result<u64, AddrError> {
    va.checked_add(bytes).ok_or(AddrError::OutOfBounds {
        addr: va,
        size: bytes,
        base: 0,
        end: u64::MAX,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const VA: u64 = 0x1000_0000_0000;

    fn pa(die: u16, off: u64) -> PhysAddr {
        PhysAddr::encode(0, die, off).unwrap()
    }

    #[test]
    fn map_and_translate() {
        let mut m = Mmu::new();
        m.map(VA, pa(1, 0x20_0000), 2 * PAGE_2M, PAGE_2M).unwrap();
        assert_eq!(m.translate(VA).unwrap(), pa(1, 0x20_0000));
        assert_eq!(m.translate(VA + PAGE_2M + 7).unwrap(), pa(1, 0x40_0007));
        assert_eq!(
            m.translate(VA + 2 * PAGE_2M),
            Err(AddrError::Unmapped {
                va: VA + 2 * PAGE_2M
            })
        );
        assert_eq!(m.translate(VA - 1), Err(AddrError::Unmapped { va: VA - 1 }));
        assert!(m
            .translate(VA - 1)
            .unwrap_err()
            .to_string()
            .contains("0xfffffffffff"));
        assert_eq!(m.mapped_bytes(), 2 * PAGE_2M);
    }

    #[test]
    fn map_rejects_bad_requests() {
        let mut m = Mmu::new();
        assert_eq!(
            m.map(VA, pa(0, 0), PAGE_4K, 8192),
            Err(AddrError::BadPageSize { page_size: 8192 })
        );
        assert_eq!(m.map(VA, pa(0, 0), 0, PAGE_4K), Err(AddrError::ZeroSize));
        assert!(matches!(
            m.map(VA + 1, pa(0, 0), PAGE_4K, PAGE_4K),
            Err(AddrError::Unaligned { what: "va", .. })
        ));
        assert!(matches!(
            m.map(VA, pa(0, 1), PAGE_4K, PAGE_4K),
            Err(AddrError::Unaligned { what: "pa", .. })
        ));
        assert!(matches!(
            m.map(VA, pa(0, 0), PAGE_4K + 1, PAGE_4K),
            Err(AddrError::Unaligned { what: "bytes", .. })
        ));
        assert!(matches!(
            m.map(VA, pa(0, 0), PAGE_4K, PAGE_2M),
            Err(AddrError::Unaligned { what: "bytes", .. })
        ));
        let top = (1u64 << 42) - PAGE_4K;
        m.map(VA, pa(0, top), PAGE_4K, PAGE_4K).unwrap();
        assert!(matches!(
            m.map(VA + PAGE_2M, pa(0, top), 2 * PAGE_4K, PAGE_4K),
            Err(AddrError::LeavesDie { .. })
        ));
        assert!(matches!(
            m.map(u64::MAX - PAGE_4K + 1, pa(0, 0), 2 * PAGE_4K, PAGE_4K),
            Err(AddrError::OutOfBounds { .. })
        ));
    }

    #[test]
    fn overlap_is_an_error() {
        let mut m = Mmu::new();
        m.map(VA + PAGE_2M, pa(0, 0), PAGE_2M, PAGE_2M).unwrap();
        let e = m.map(VA, pa(0, PAGE_2M), 2 * PAGE_2M, PAGE_2M).unwrap_err();
        assert_eq!(
            e,
            AddrError::MapOverlap {
                va: VA,
                bytes: 2 * PAGE_2M,
                existing_va: VA + PAGE_2M
            }
        );
        assert!(m
            .map(VA + PAGE_2M + PAGE_4K, pa(0, 0), PAGE_4K, PAGE_4K)
            .is_err());
        assert!(m
            .map(VA + 2 * PAGE_2M - PAGE_4K, pa(0, 0), PAGE_4K, PAGE_4K)
            .is_err());
        // Touching is fine.
        m.map(VA + 2 * PAGE_2M, pa(0, 0), PAGE_4K, PAGE_4K).unwrap();
        m.map(VA + PAGE_2M - PAGE_4K, pa(0, 0), PAGE_4K, PAGE_4K)
            .unwrap();
    }

    #[test]
    fn adjacent_mappings_merge() {
        let mut m = Mmu::new();
        m.map(VA, pa(0, 0), PAGE_4K, PAGE_4K).unwrap();
        m.map(VA + 2 * PAGE_4K, pa(0, 2 * PAGE_4K), PAGE_4K, PAGE_4K)
            .unwrap();
        m.map(VA + PAGE_4K, pa(0, PAGE_4K), PAGE_4K, PAGE_4K)
            .unwrap();
        assert_eq!(m.mappings().count(), 1);
        // Not PA-contiguous: a separate extent.
        m.map(VA + 3 * PAGE_4K, pa(2, 0), PAGE_4K, PAGE_4K).unwrap();
        assert_eq!(m.mappings().count(), 2);
    }

    #[test]
    fn translate_range_merges_contiguous_pieces() {
        let mut m = Mmu::new();
        // Two maps that are PA-contiguous but of different page sizes, then a jump.
        m.map(VA, pa(0, 0), PAGE_2M, PAGE_2M).unwrap();
        m.map(VA + PAGE_2M, pa(0, PAGE_2M), PAGE_4K, PAGE_4K)
            .unwrap();
        m.map(VA + PAGE_2M + PAGE_4K, pa(3, 0), PAGE_4K, PAGE_4K)
            .unwrap();
        let pieces = m.translate_range(VA + 16, PAGE_2M + PAGE_4K).unwrap();
        assert_eq!(
            pieces.as_slice(),
            [(pa(0, 16), PAGE_2M + PAGE_4K - 16), (pa(3, 0), 16)]
        );
        assert!(m.translate_range(VA, 0).unwrap().is_empty());
        assert_eq!(
            m.translate_range(VA, PAGE_2M + 2 * PAGE_4K + 1),
            Err(AddrError::Unmapped {
                va: VA + PAGE_2M + 2 * PAGE_4K
            })
        );
        assert_eq!(
            m.translate_range(VA - 1, 2),
            Err(AddrError::Unmapped { va: VA - 1 })
        );
    }

    #[test]
    fn translate_range_reports_gaps() {
        let mut m = Mmu::new();
        m.map(VA, pa(0, 0), PAGE_4K, PAGE_4K).unwrap();
        m.map(VA + 2 * PAGE_4K, pa(0, 0), PAGE_4K, PAGE_4K).unwrap();
        assert_eq!(
            m.translate_range(VA, 3 * PAGE_4K),
            Err(AddrError::Unmapped { va: VA + PAGE_4K })
        );
    }

    #[test]
    fn unmap_splits_and_checks() {
        let mut m = Mmu::new();
        m.map(VA, pa(0, 0), 4 * PAGE_4K, PAGE_4K).unwrap();
        assert!(matches!(
            m.unmap(VA + 1, PAGE_4K),
            Err(AddrError::SplitsPage { .. })
        ));
        assert!(matches!(
            m.unmap(VA, PAGE_4K + 1),
            Err(AddrError::SplitsPage { .. })
        ));
        assert_eq!(
            m.unmap(VA, 5 * PAGE_4K),
            Err(AddrError::Unmapped {
                va: VA + 4 * PAGE_4K
            })
        );
        assert_eq!(m.mapped_bytes(), 4 * PAGE_4K);
        m.unmap(VA + PAGE_4K, 2 * PAGE_4K).unwrap();
        assert_eq!(m.mapped_bytes(), 2 * PAGE_4K);
        assert_eq!(m.translate(VA + 3 * PAGE_4K).unwrap(), pa(0, 3 * PAGE_4K));
        assert!(!m.is_mapped(VA + PAGE_4K));
        assert!(m.is_mapped(VA));
        assert_eq!(
            m.unmap(VA + PAGE_4K, PAGE_4K),
            Err(AddrError::Unmapped { va: VA + PAGE_4K })
        );
        m.unmap(VA, PAGE_4K).unwrap();
        m.unmap(VA + 3 * PAGE_4K, PAGE_4K).unwrap();
        assert_eq!(m.mappings().count(), 0);
        assert_eq!(m.mapped_bytes(), 0);
    }

    #[test]
    fn unmap_across_extents_of_different_pages() {
        let mut m = Mmu::new();
        m.map(VA, pa(0, 0), PAGE_2M, PAGE_2M).unwrap();
        m.map(VA + PAGE_2M, pa(1, 0), 2 * PAGE_4K, PAGE_4K).unwrap();
        // Cutting into the 2 MiB page is refused.
        assert!(matches!(
            m.unmap(VA + PAGE_4K, PAGE_2M),
            Err(AddrError::SplitsPage {
                page_size: PAGE_2M,
                ..
            })
        ));
        m.unmap(VA, PAGE_2M + PAGE_4K).unwrap();
        assert_eq!(m.translate(VA + PAGE_2M + PAGE_4K).unwrap(), pa(1, PAGE_4K));
        assert_eq!(m.mapped_bytes(), PAGE_4K);
    }

    #[test]
    fn map_alloc_maps_reserved_pages() {
        let mut m = Mmu::new();
        let a = VaAlloc {
            va: VA,
            bytes: 100,
            mapped_bytes: PAGE_4K,
            page_size: PAGE_4K,
        };
        m.map_alloc(&a, pa(0, PAGE_4K)).unwrap();
        assert_eq!(m.translate(VA + 99).unwrap(), pa(0, PAGE_4K + 99));
    }
}
