//! Property tests of `kernbench_core::addr`.

// Inside `mod addr` so that `cargo test -p kernbench-core addr` selects these too.
mod addr {
    use kernbench_core::addr::{
        first_common_fit, page_size_for, AddrError, Mmu, PhysAddr, RangeAllocator, VaSpace,
        PAGE_2M, PAGE_4K,
    };
    use proptest::prelude::*;

    const OFFSET_LIMIT: u64 = 1 << 42;

    fn config(cases: u32) -> ProptestConfig {
        ProptestConfig {
            cases,
            ..ProptestConfig::default()
        }
    }

    // ---------------------------------------------------------------- PhysAddr

    proptest! {
        #![proptest_config(config(256))]

        #[test]
        fn encode_decode_round_trip(sip in 0u16..16, die in 0u16..32, offset in 0u64..OFFSET_LIMIT) {
            let pa = PhysAddr::encode(sip, die, offset).unwrap();
            prop_assert_eq!((pa.sip(), pa.die(), pa.offset()), (sip, die, offset));
            prop_assert!(pa.raw() < 1 << 51);
            prop_assert_eq!(PhysAddr::from_raw(pa.raw()).unwrap(), pa);
        }

        #[test]
        fn raw_round_trip(raw in 0u64..(1 << 51)) {
            let pa = PhysAddr::from_raw(raw).unwrap();
            prop_assert_eq!(PhysAddr::encode(pa.sip(), pa.die(), pa.offset()).unwrap(), pa);
        }

        #[test]
        fn out_of_range_fields_error(
            sip in 16u16..,
            die in 32u16..,
            offset in OFFSET_LIMIT..,
            raw in (1u64 << 51)..,
        ) {
            let is_field = |r: Result<PhysAddr, AddrError>, name: &str, v: u64| matches!(
                r, Err(AddrError::FieldOutOfRange { field, value, .. }) if field == name && value == v
            );
            prop_assert!(is_field(PhysAddr::encode(sip, 0, 0), "sip", u64::from(sip)));
            prop_assert!(is_field(PhysAddr::encode(0, die, 0), "die", u64::from(die)));
            prop_assert!(is_field(PhysAddr::encode(0, 0, offset), "offset", offset));
            prop_assert_eq!(PhysAddr::from_raw(raw), Err(AddrError::RawOutOfRange { raw }));
        }
    }

    // ---------------------------------------------------------------- RangeAllocator

    #[derive(Clone, Debug)]
    enum Op {
        Alloc {
            size: u64,
            align_log2: u32,
        },
        /// Free the live allocation at this index (modulo the number live).
        Free(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (1u64..=300, 0u32..=6).prop_map(|(size, align_log2)| Op::Alloc { size, align_log2 }),
            2 => any::<usize>().prop_map(Op::Free),
        ]
    }

    /// Reference first fit: the lowest aligned start (the managed base or the end of
    /// a live block, rounded up) at which `size` bytes overlap nothing.
    fn model_first_fit(
        base: u64,
        end: u64,
        live: &[(u64, u64)],
        size: u64,
        align: u64,
    ) -> Option<u64> {
        let up = |x: u64| x.div_ceil(align) * align;
        std::iter::once(base)
            .chain(live.iter().map(|&(a, n)| a + n))
            .map(up)
            .filter(|&a| a + size <= end && live.iter().all(|&(b, n)| a + size <= b || b + n <= a))
            .min()
    }

    fn check_invariants(a: &RangeAllocator, live: &[(u64, u64)]) -> Result<(), TestCaseError> {
        // Live blocks never overlap.
        for (i, &(x, n)) in live.iter().enumerate() {
            for &(y, m) in &live[i + 1..] {
                prop_assert!(
                    x + n <= y || y + m <= x,
                    "overlap: {x:#x}+{n} and {y:#x}+{m}"
                );
            }
        }
        // Free ranges and allocations tile the managed range exactly.
        let mut pieces: Vec<(u64, u64, bool)> = a
            .free_ranges()
            .map(|(s, n)| (s, n, true))
            .chain(a.allocations().map(|(s, n)| (s, n, false)))
            .collect();
        pieces.sort();
        let mut cursor = a.base();
        let mut last_free = false;
        for (s, n, is_free) in pieces {
            prop_assert_eq!(s, cursor);
            prop_assert!(n > 0);
            prop_assert!(
                !(is_free && last_free),
                "free ranges at {s:#x} not coalesced"
            );
            cursor = s + n;
            last_free = is_free;
        }
        prop_assert_eq!(cursor, a.base() + a.size());
        prop_assert_eq!(a.used_bytes(), live.iter().map(|&(_, n)| n).sum::<u64>());
        prop_assert_eq!(a.allocations().count(), live.len());
        Ok(())
    }

    proptest! {
        #![proptest_config(config(128))]

        #[test]
        fn allocator_matches_first_fit_model(ops in prop::collection::vec(op(), 1..80)) {
            let (base, size) = (0x1000u64, 4096u64);
            let mut a = RangeAllocator::new(base, size).unwrap();
            let mut live: Vec<(u64, u64)> = Vec::new();
            for op in ops {
                match op {
                    Op::Alloc { size: n, align_log2 } => {
                        let align = 1u64 << align_log2;
                        let expected = model_first_fit(base, base + size, &live, n, align);
                        match a.alloc(n, align) {
                            Ok(addr) => {
                                prop_assert_eq!(Some(addr), expected);
                                prop_assert_eq!(addr % align, 0);
                                live.push((addr, n));
                            }
                            Err(e) => {
                                prop_assert!(matches!(e, AddrError::OutOfSpace { .. }), "{e}");
                                prop_assert_eq!(expected, None);
                            }
                        }
                    }
                    Op::Free(i) if !live.is_empty() => {
                        let (addr, n) = live.swap_remove(i % live.len());
                        prop_assert_eq!(a.free(addr).unwrap(), n);
                        prop_assert!(a.is_free(addr, n));
                        prop_assert!(a.free(addr).is_err());
                    }
                    Op::Free(_) => {}
                }
                check_invariants(&a, &live)?;
            }
            // After freeing everything, the whole range is one free block again.
            for (addr, _) in live.drain(..) {
                a.free(addr).unwrap();
            }
            prop_assert_eq!(a.free_ranges().collect::<Vec<_>>(), vec![(base, size)]);
            prop_assert_eq!(a.alloc(size, 1).unwrap(), base);
        }

        #[test]
        fn freed_block_is_reused_in_place(
            sizes in prop::collection::vec(1u64..=500, 1..30),
            pick in any::<usize>(),
        ) {
            let mut a = RangeAllocator::new(0, 1 << 20).unwrap();
            let blocks: Vec<(u64, u64)> =
                sizes.iter().map(|&n| (a.alloc(n, 1).unwrap(), n)).collect();
            let (addr, n) = blocks[pick % blocks.len()];
            a.free(addr).unwrap();
            prop_assert_eq!(a.alloc(n, 1).unwrap(), addr);
        }

        #[test]
        fn alloc_at_agrees_with_is_free(
            ops in prop::collection::vec((0u64..4096, 1u64..512), 1..40),
        ) {
            let mut a = RangeAllocator::new(0, 4096).unwrap();
            let mut live: Vec<(u64, u64)> = Vec::new();
            for (addr, n) in ops {
                let free = a.is_free(addr, n);
                match a.alloc_at(addr, n) {
                    Ok(()) => {
                        prop_assert!(free);
                        live.push((addr, n));
                    }
                    Err(_) => prop_assert!(!free),
                }
                check_invariants(&a, &live)?;
            }
        }
    }

    // ---------------------------------------------------------------- VaSpace

    fn va_bytes() -> impl Strategy<Value = u64> {
        prop_oneof![1u64..=3 * PAGE_4K, (PAGE_2M - PAGE_4K)..=(3 * PAGE_2M)]
    }

    proptest! {
        #![proptest_config(config(64))]

        #[test]
        fn va_allocations_are_paged_and_disjoint(
            ops in prop::collection::vec((va_bytes(), any::<bool>()), 1..40),
        ) {
            let mut s = VaSpace::new();
            let mut live = Vec::new();
            for (bytes, free_one) in ops {
                if free_one && !live.is_empty() {
                    let a: kernbench_core::addr::VaAlloc = live.remove(0);
                    prop_assert_eq!(s.free(a.va).unwrap(), a);
                }
                let a = s.alloc(bytes).unwrap();
                prop_assert_eq!(a.bytes, bytes);
                prop_assert_eq!(a.page_size, page_size_for(bytes));
                prop_assert_eq!(a.va % a.page_size, 0);
                prop_assert_eq!(a.mapped_bytes % a.page_size, 0);
                prop_assert!(a.mapped_bytes >= bytes && a.mapped_bytes - bytes < a.page_size);
                prop_assert!(a.va >= s.base());
                live.push(a);
            }
            for (i, x) in live.iter().enumerate() {
                for y in &live[i + 1..] {
                    prop_assert!(x.end() <= y.va || y.end() <= x.va, "overlap {x:?} {y:?}");
                }
            }
        }

        #[test]
        fn first_common_fit_is_lowest_common_hole(
            pre in prop::collection::vec(prop::collection::vec(va_bytes(), 0..8), 1..5),
            frees in prop::collection::vec(any::<bool>(), 8),
            bytes in va_bytes(),
        ) {
            let mut spaces: Vec<VaSpace> = Vec::new();
            for sizes in &pre {
                let mut s = VaSpace::new();
                let allocs: Vec<_> = sizes.iter().map(|&n| s.alloc(n).unwrap()).collect();
                for (a, &f) in allocs.iter().zip(&frees) {
                    if f {
                        s.free(a.va).unwrap();
                    }
                }
                spaces.push(s);
            }
            let refs: Vec<&VaSpace> = spaces.iter().collect();
            let va = first_common_fit(&refs, bytes).unwrap();
            let page = page_size_for(bytes);
            prop_assert_eq!(va % page, 0);
            prop_assert!(refs.iter().all(|s| s.is_free(va, bytes)));
            // No lower candidate (the base or the end of an allocation, page-aligned) is free in all.
            let candidates = refs
                .iter()
                .flat_map(|s| std::iter::once(s.base()).chain(s.allocations().map(|a| a.end())))
                .map(|x| x.div_ceil(page) * page);
            for c in candidates.filter(|&c| c < va) {
                prop_assert!(!refs.iter().all(|s| s.is_free(c, bytes)), "{c:#x} is lower and free");
            }
            for s in &mut spaces {
                s.alloc_at(va, bytes).unwrap();
            }
        }
    }

    // ---------------------------------------------------------------- Mmu

    /// A mapping to make: a VA gap (in pages) before it, page size, page count, PA die and page.
    fn mapping() -> impl Strategy<Value = (u64, bool, u64, u16, u64)> {
        (0u64..3, any::<bool>(), 1u64..5, 0u16..32, 0u64..1000)
    }

    proptest! {
        #![proptest_config(config(64))]

        #[test]
        fn translate_agrees_with_mappings(
            specs in prop::collection::vec(mapping(), 1..12),
            probes in prop::collection::vec((any::<usize>(), any::<u64>()), 1..20),
        ) {
            let mut mmu = Mmu::new();
            let mut maps = Vec::new();
            let mut va = 0x1000_0000_0000u64;
            for (gap, large, pages, die, pa_page) in specs {
                let page = if large { PAGE_2M } else { PAGE_4K };
                va = va.div_ceil(page) * page + gap * page;
                let bytes = pages * page;
                let pa = PhysAddr::encode(1, die, pa_page * page).unwrap();
                mmu.map(va, pa, bytes, page).unwrap();
                // Mapping the same VA again overlaps.
                prop_assert!(
                    matches!(mmu.map(va, pa, page, page), Err(AddrError::MapOverlap { .. })),
                    "remap must fail"
                );
                maps.push((va, pa, bytes));
                va += bytes;
            }
            for (i, off) in probes {
                let (va, pa, bytes) = maps[i % maps.len()];
                let off = off % bytes;
                prop_assert_eq!(mmu.translate(va + off).unwrap(), pa.checked_add(off).unwrap());
                // The rest of the mapping translates to one contiguous piece.
                let pieces = mmu.translate_range(va + off, bytes - off).unwrap();
                prop_assert_eq!(pieces.to_vec(), vec![(pa.checked_add(off).unwrap(), bytes - off)]);
            }
            // A range over all mappings: pieces cover exactly the mapped bytes, or it
            // fails at the first gap.
            let (first, _, _) = maps[0];
            let (last, _, last_bytes) = maps[maps.len() - 1];
            let total = last + last_bytes - first;
            match mmu.translate_range(first, total) {
                Ok(pieces) => {
                    prop_assert_eq!(pieces.iter().map(|p| p.1).sum::<u64>(), total);
                    prop_assert_eq!(total, maps.iter().map(|m| m.2).sum::<u64>());
                }
                Err(AddrError::Unmapped { va }) => {
                    prop_assert!(!mmu.is_mapped(va));
                    prop_assert!(va > first && va < last);
                }
                Err(e) => prop_assert!(false, "unexpected error {e}"),
            }
            // Unmapping everything leaves nothing mapped.
            for &(va, _, bytes) in &maps {
                mmu.unmap(va, bytes).unwrap();
                prop_assert!(mmu.translate(va).is_err());
            }
            prop_assert_eq!(mmu.mapped_bytes(), 0);
        }
    }
}
