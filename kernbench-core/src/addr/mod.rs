//! Physical addresses, per-PE virtual address spaces and the MMU.
//!
//! - [`PhysAddr`]: the 51-bit physical address (`sip`, `die`, `local_offset`),
//!   and [`AddressLayout`], which names the sub-unit regions of a die.
//! - [`RangeAllocator`]: first-fit allocation with coalescing, used for both
//!   physical and virtual ranges.
//! - [`VaSpace`]: the virtual address space of one PE (2 MiB pages from 2 MiB
//!   up, 4 KiB pages below), and [`first_common_fit`] to give one buffer the
//!   same VA on many PEs.
//! - [`Mmu`]: one PE's page table; a DMA translates through it and never
//!   reads a VA as a PA.
//!
//! ```
//! use kernbench_core::addr::{AddressLayout, Mmu, Region, VaSpace};
//! use kernbench_core::PeId;
//!
//! let layout = AddressLayout::new(8, 16 << 30, 64 << 20, 32 << 20)?;
//! let pe = PeId::new(0, 3, 5);
//! let mut va_space = VaSpace::new();
//! let mut mmu = Mmu::new();
//!
//! let buf = va_space.alloc(3 << 20)?; // 3 MiB -> two 2 MiB pages
//! mmu.map_alloc(&buf, layout.pe_hbm(pe)?)?;
//! let pa = mmu.translate(buf.va + 100)?;
//! assert_eq!(layout.classify(pa)?, Region::PeHbm { pe, offset: 100 });
//! # Ok::<(), kernbench_core::addr::AddrError>(())
//! ```

mod alloc;
mod error;
mod mmu;
mod phys;
mod va;

pub use alloc::RangeAllocator;
pub use error::AddrError;
pub use mmu::{Mapping, Mmu, PhysRuns, SEGMENT};
pub use phys::{
    AddressLayout, DieKind, PhysAddr, Region, AHBM_USABLE_BYTES, CUBE_DIES, DIE_BITS, DIE_SHIFT,
    DIE_WINDOW_BYTES, FIRST_IO_DIE, IO_CPU_DIE, IO_CPU_WINDOW_BYTES, IO_DIES, MAX_SIPS, NUM_DIES,
    OFFSET_BITS, PA_BITS, SIP_BITS, SIP_SHIFT,
};
pub use va::{
    first_common_fit, page_size_for, VaAlloc, VaSpace, PAGE_2M, PAGE_4K, VA_BASE, VA_SIZE,
};
