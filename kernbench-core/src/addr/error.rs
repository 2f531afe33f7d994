//! The one error type of the address module.

use super::phys::{PhysAddr, AHBM_USABLE_BYTES};

/// What went wrong while encoding, allocating, mapping or translating an address.
///
/// Every variant carries the values involved, so a message names the exact
/// field, address or size at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    /// A field of a physical address (or a structural index used to build one)
    /// does not fit its range.
    #[error("`{field}` = {value} is out of range (largest allowed is {max})")]
    FieldOutOfRange {
        /// The field: `sip`, `die`, `offset`, `cube` or `pe`.
        field: &'static str,
        /// The value given.
        value: u64,
        /// The largest value the field accepts.
        max: u64,
    },

    /// A raw value has bits set above bit 50, so it is not a 51-bit physical address.
    #[error("raw value {raw:#x} is not a 51-bit physical address (bits above bit 50 are set)")]
    RawOutOfRange {
        /// The raw value given.
        raw: u64,
    },

    /// A physical address lies in no region of the address layout.
    #[error("physical address {pa} lies in no region of the address layout")]
    NoRegion {
        /// The address.
        pa: PhysAddr,
    },

    /// Adding to a physical address would leave its die's 4 TiB window.
    #[error("physical address {pa} plus {bytes:#x} bytes leaves its die's window")]
    LeavesDie {
        /// The starting address.
        pa: PhysAddr,
        /// The number of bytes added.
        bytes: u64,
    },

    /// An allocator's range runs past the end of the 64-bit space.
    #[error("allocator range [{base:#x}, +{size:#x}) runs past the end of the 64-bit space")]
    RangeOverflow {
        /// Start of the range.
        base: u64,
        /// Length of the range.
        size: u64,
    },

    /// A virtual address space that starts at address 0.
    #[error("VA space: base must be non-zero so that a null address is never valid")]
    NullVaBase,

    /// An address layout with no PEs or an empty HBM slice.
    #[error("address layout: {field} must be non-zero")]
    LayoutZero {
        /// The field: `pes_per_cube` or `hbm_slice_bytes`.
        field: &'static str,
    },

    /// An address layout size that is not a whole number of 4 KiB pages.
    #[error("address layout: {field} = {value:#x} is not a multiple of the 4 KiB page")]
    LayoutUnaligned {
        /// The field: `hbm_slice_bytes`, `mcpu_bytes` or `sram_bytes`.
        field: &'static str,
        /// The size given.
        value: u64,
    },

    /// An address layout whose regions do not fit the usable part of a cube
    /// die ([`AHBM_USABLE_BYTES`]).
    #[error(
        "address layout: {pes_per_cube} PEs x {hbm_slice_bytes:#x} bytes of HBM + \
         {mcpu_bytes:#x} bytes of M_CPU + {sram_bytes:#x} bytes of SRAM does not fit \
         the {usable:#x} usable bytes of a cube die",
        usable = AHBM_USABLE_BYTES
    )]
    LayoutTooLarge {
        /// HBM slices per cube.
        pes_per_cube: u16,
        /// Bytes of each HBM slice.
        hbm_slice_bytes: u64,
        /// Bytes of the M_CPU region.
        mcpu_bytes: u64,
        /// Bytes of the cube SRAM.
        sram_bytes: u64,
    },

    /// A request asked for zero bytes.
    #[error("a request for zero bytes")]
    ZeroSize,

    /// An alignment is zero or not a power of two.
    #[error("alignment {align:#x} is not a non-zero power of two")]
    BadAlign {
        /// The alignment given.
        align: u64,
    },

    /// A page size is not one of the supported sizes (4 KiB, 2 MiB).
    #[error("page size {page_size:#x} is not supported (use 0x1000 or 0x200000)")]
    BadPageSize {
        /// The page size given.
        page_size: u64,
    },

    /// A value that must be a multiple of an alignment is not.
    #[error("{what} {value:#x} is not a multiple of {align:#x}")]
    Unaligned {
        /// What the value is (`va`, `pa`, `bytes`, ...).
        what: &'static str,
        /// The value.
        value: u64,
        /// The alignment it must have.
        align: u64,
    },

    /// No free range is large enough for an allocation.
    #[error(
        "out of space: no free range holds {size:#x} bytes aligned to {align:#x} \
         ({free:#x} bytes free in total)"
    )]
    OutOfSpace {
        /// Bytes requested.
        size: u64,
        /// Alignment requested.
        align: u64,
        /// Free bytes left in the allocator (possibly fragmented).
        free: u64,
    },

    /// A range reaches outside the space an allocator manages (or past the end of `u64`).
    #[error("range [{addr:#x}, +{size:#x}) is outside the managed range [{base:#x}, {end:#x})")]
    OutOfBounds {
        /// Start of the range.
        addr: u64,
        /// Length of the range.
        size: u64,
        /// Start of the managed range.
        base: u64,
        /// End (exclusive) of the managed range.
        end: u64,
    },

    /// A range asked for by address is (at least partly) already allocated.
    #[error("range [{addr:#x}, +{size:#x}) is not free")]
    NotFree {
        /// Start of the range.
        addr: u64,
        /// Length of the range.
        size: u64,
    },

    /// No allocation starts at the address given to `free`.
    #[error("no allocation starts at {addr:#x}")]
    UnknownAllocation {
        /// The address given.
        addr: u64,
    },

    /// A new mapping overlaps one that is already in the page table.
    #[error(
        "mapping va [{va:#x}, +{bytes:#x}) overlaps the existing mapping at va {existing_va:#x}"
    )]
    MapOverlap {
        /// Start of the new mapping.
        va: u64,
        /// Length of the new mapping.
        bytes: u64,
        /// Start of the existing mapping it overlaps.
        existing_va: u64,
    },

    /// A virtual address has no translation.
    #[error("virtual address {va:#x} is not mapped")]
    Unmapped {
        /// The first unmapped virtual address met.
        va: u64,
    },

    /// An unmap would split a page of an existing mapping.
    #[error("unmapping at va {va:#x} would split a {page_size:#x}-byte page")]
    SplitsPage {
        /// The boundary that falls inside a page.
        va: u64,
        /// The page size of the mapping there.
        page_size: u64,
    },
}
