//! 51-bit physical addresses and the sub-unit regions of a die.
//!
//! ```text
//!  50    47 46   42 41                                      0
//! +--------+-------+-----------------------------------------+
//! | sip_id | die_id|              local_offset               |
//! +--------+-------+-----------------------------------------+
//! ```
//!
//! Dies 0-15 are AHBM cube dies (die = cube index inside the SIP), 16-20 are
//! IO chiplet dies, 21-31 are reserved. A cube die uses only the lower 256 GiB
//! of its 4 TiB window, laid out as the PE-local HBM slices (PE 0 first), then
//! the M_CPU-local region, then the cube SRAM. IO chiplet die 16 holds the
//! IO_CPU region, a 1 TiB window at local offset 0.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::error::AddrError;
use super::va::PAGE_4K;
use crate::ids::{CubeId, PeId};

/// Number of bits in a physical address.
pub const PA_BITS: u32 = 51;
/// Lowest bit of the `sip_id` field.
pub const SIP_SHIFT: u32 = 47;
/// Width of the `sip_id` field.
pub const SIP_BITS: u32 = 4;
/// Lowest bit of the `die_id` field.
pub const DIE_SHIFT: u32 = 42;
/// Width of the `die_id` field.
pub const DIE_BITS: u32 = 5;
/// Width of the `local_offset` field.
pub const OFFSET_BITS: u32 = 42;

/// Number of SIPs a physical address can name.
pub const MAX_SIPS: u16 = 1 << SIP_BITS;
/// Number of dies a physical address can name (per SIP).
pub const NUM_DIES: u16 = 1 << DIE_BITS;
/// Number of AHBM cube dies (dies `0..CUBE_DIES`).
pub const CUBE_DIES: u16 = 16;
/// The first IO chiplet die.
pub const FIRST_IO_DIE: u16 = 16;
/// Number of IO chiplet dies (dies `FIRST_IO_DIE..FIRST_IO_DIE + IO_DIES`).
pub const IO_DIES: u16 = 5;
/// Bytes in one die's window (4 TiB).
pub const DIE_WINDOW_BYTES: u64 = 1 << OFFSET_BITS;
/// Bytes of its window an AHBM cube die uses (the lower 256 GiB).
pub const AHBM_USABLE_BYTES: u64 = 256 << 30;
/// The IO chiplet die that holds the IO_CPU region.
pub const IO_CPU_DIE: u16 = FIRST_IO_DIE;
/// Bytes in the IO_CPU window (1 TiB at local offset 0 of [`IO_CPU_DIE`]).
pub const IO_CPU_WINDOW_BYTES: u64 = 1 << 40;

const OFFSET_MASK: u64 = DIE_WINDOW_BYTES - 1;
const DIE_MASK: u64 = (NUM_DIES as u64) - 1;
const SIP_MASK: u64 = (MAX_SIPS as u64) - 1;

/// A 51-bit physical address: `sip_id` (bits 50..47), `die_id` (46..42) and
/// `local_offset` (41..0).
///
/// The value is always valid: the only ways to build one are
/// [`PhysAddr::encode`] and [`PhysAddr::from_raw`], which check every field.
/// Serialised as its raw `u64`, and checked again on deserialisation.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct PhysAddr(u64);

impl PhysAddr {
    /// Builds an address from its fields; a field out of range is an error
    /// naming the field and its value.
    pub fn encode(sip: u16, die: u16, offset: u64) -> Result<PhysAddr, AddrError> {
        check_field("sip", u64::from(sip), SIP_MASK)?;
        check_field("die", u64::from(die), DIE_MASK)?;
        check_field("offset", offset, OFFSET_MASK)?;
        Ok(PhysAddr(
            (u64::from(sip) << SIP_SHIFT) | (u64::from(die) << DIE_SHIFT) | offset,
        ))
    }

    /// Reads a raw 51-bit value; any bit set above bit 50 is an error.
    pub fn from_raw(raw: u64) -> Result<PhysAddr, AddrError> {
        if raw >> PA_BITS != 0 {
            return Err(AddrError::RawOutOfRange { raw });
        }
        Ok(PhysAddr(raw))
    }

    /// The raw 51-bit value.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// The `sip_id` field.
    pub const fn sip(self) -> u16 {
        ((self.0 >> SIP_SHIFT) & SIP_MASK) as u16
    }

    /// The `die_id` field.
    pub const fn die(self) -> u16 {
        ((self.0 >> DIE_SHIFT) & DIE_MASK) as u16
    }

    /// The `local_offset` field.
    pub const fn offset(self) -> u64 {
        self.0 & OFFSET_MASK
    }

    /// What kind of die the address lies on.
    pub fn die_kind(self) -> DieKind {
        DieKind::of_valid_die(self.die())
    }

    /// The address `bytes` further on, on the same die; leaving the die's
    /// 4 TiB window is an error.
    pub fn checked_add(self, bytes: u64) -> Result<PhysAddr, AddrError> {
        match self.offset().checked_add(bytes) {
            Some(off) if off <= OFFSET_MASK => Ok(PhysAddr((self.0 & !OFFSET_MASK) | off)),
            _ => Err(AddrError::LeavesDie { pa: self, bytes }),
        }
    }
}

fn check_field(field: &'static str, value: u64, max: u64) -> Result<(), AddrError> {
    if value > max {
        Err(AddrError::FieldOutOfRange { field, value, max })
    } else {
        Ok(())
    }
}

impl TryFrom<u64> for PhysAddr {
    type Error = AddrError;

    fn try_from(raw: u64) -> Result<Self, Self::Error> {
        PhysAddr::from_raw(raw)
    }
}

impl From<PhysAddr> for u64 {
    fn from(pa: PhysAddr) -> u64 {
        pa.0
    }
}

impl fmt::Display for PhysAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:#015x} (sip {}, die {}, offset {:#x})",
            self.0,
            self.sip(),
            self.die(),
            self.offset()
        )
    }
}

impl fmt::Debug for PhysAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhysAddr({self})")
    }
}

impl fmt::LowerHex for PhysAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::LowerHex::fmt(&self.0, f)
    }
}

/// What a `die_id` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DieKind {
    /// An AHBM cube die; the number is the cube index inside the SIP (0-15).
    Cube(u16),
    /// An IO chiplet die; the number counts from the first IO die (0-4 for dies 16-20).
    IoChiplet(u16),
    /// A reserved die (21-31).
    Reserved,
}

impl DieKind {
    /// What `die` names; a die id of 32 or more is an error.
    pub fn of(die: u16) -> Result<DieKind, AddrError> {
        check_field("die", u64::from(die), DIE_MASK)?;
        Ok(DieKind::of_valid_die(die))
    }

    fn of_valid_die(die: u16) -> DieKind {
        if die < CUBE_DIES {
            DieKind::Cube(die)
        } else if die < FIRST_IO_DIE + IO_DIES {
            DieKind::IoChiplet(die - FIRST_IO_DIE)
        } else {
            DieKind::Reserved
        }
    }
}

/// The region a physical address falls in, with its offset from the region's base.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Region {
    /// The local HBM slice of a PE.
    PeHbm {
        /// The PE owning the slice.
        pe: PeId,
        /// Offset from the start of the slice.
        offset: u64,
    },
    /// The M_CPU-local region of a cube.
    MCpu {
        /// The cube.
        cube: CubeId,
        /// Offset from the start of the region.
        offset: u64,
    },
    /// The shared SRAM of a cube.
    Sram {
        /// The cube.
        cube: CubeId,
        /// Offset from the start of the SRAM.
        offset: u64,
    },
    /// The IO_CPU window of a SIP's IO chiplet.
    IoCpu {
        /// The SIP.
        sip: u16,
        /// Offset from the start of the window.
        offset: u64,
    },
}

impl Region {
    /// The offset from the region's base.
    pub const fn offset(&self) -> u64 {
        match *self {
            Region::PeHbm { offset, .. }
            | Region::MCpu { offset, .. }
            | Region::Sram { offset, .. }
            | Region::IoCpu { offset, .. } => offset,
        }
    }
}

/// How an AHBM cube die's lower 256 GiB is divided: `pes_per_cube` HBM slices
/// of `hbm_slice_bytes` each (PE 0 at offset 0), then `mcpu_bytes` of
/// M_CPU-local memory, then `sram_bytes` of cube SRAM.
///
/// The figures come from the topology; [`AddressLayout::new`] checks that they fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AddressLayout {
    pes_per_cube: u16,
    hbm_slice_bytes: u64,
    mcpu_bytes: u64,
    sram_bytes: u64,
}

impl AddressLayout {
    /// A layout with `pes_per_cube` HBM slices of `hbm_slice_bytes`, an M_CPU
    /// region of `mcpu_bytes` and an SRAM of `sram_bytes` per cube.
    ///
    /// Errors: no PEs, an empty HBM slice, a size that is not a multiple of
    /// 4 KiB (the smallest page), or a total above 256 GiB.
    pub fn new(
        pes_per_cube: u16,
        hbm_slice_bytes: u64,
        mcpu_bytes: u64,
        sram_bytes: u64,
    ) -> Result<AddressLayout, AddrError> {
        if pes_per_cube == 0 {
            return Err(AddrError::LayoutZero {
                field: "pes_per_cube",
            });
        }
        if hbm_slice_bytes == 0 {
            return Err(AddrError::LayoutZero {
                field: "hbm_slice_bytes",
            });
        }
        for (field, value) in [
            ("hbm_slice_bytes", hbm_slice_bytes),
            ("mcpu_bytes", mcpu_bytes),
            ("sram_bytes", sram_bytes),
        ] {
            if value % PAGE_4K != 0 {
                return Err(AddrError::LayoutUnaligned { field, value });
            }
        }
        let total = u64::from(pes_per_cube)
            .checked_mul(hbm_slice_bytes)
            .and_then(|h| h.checked_add(mcpu_bytes))
            .and_then(|h| h.checked_add(sram_bytes));
        match total {
            Some(t) if t <= AHBM_USABLE_BYTES => Ok(AddressLayout {
                pes_per_cube,
                hbm_slice_bytes,
                mcpu_bytes,
                sram_bytes,
            }),
            _ => Err(AddrError::LayoutTooLarge {
                pes_per_cube,
                hbm_slice_bytes,
                mcpu_bytes,
                sram_bytes,
            }),
        }
    }

    /// PEs per cube (HBM slices per cube die).
    pub const fn pes_per_cube(&self) -> u16 {
        self.pes_per_cube
    }

    /// Bytes in one PE's HBM slice.
    pub const fn hbm_slice_bytes(&self) -> u64 {
        self.hbm_slice_bytes
    }

    /// Bytes in a cube's M_CPU-local region.
    pub const fn mcpu_bytes(&self) -> u64 {
        self.mcpu_bytes
    }

    /// Bytes in a cube's SRAM.
    pub const fn sram_bytes(&self) -> u64 {
        self.sram_bytes
    }

    /// Local offset of the M_CPU region (end of the HBM slices).
    const fn mcpu_offset(&self) -> u64 {
        self.pes_per_cube as u64 * self.hbm_slice_bytes
    }

    /// Local offset of the SRAM region.
    const fn sram_offset(&self) -> u64 {
        self.mcpu_offset() + self.mcpu_bytes
    }

    /// Bytes of a cube die's window the layout uses.
    pub const fn used_bytes_per_cube(&self) -> u64 {
        self.sram_offset() + self.sram_bytes
    }

    fn cube_addr(cube: CubeId, offset: u64) -> Result<PhysAddr, AddrError> {
        check_field("cube", u64::from(cube.cube), u64::from(CUBE_DIES - 1))?;
        PhysAddr::encode(cube.sip, cube.cube, offset)
    }

    /// The first address of PE `pe`'s HBM slice in `cube`; a cube, PE or SIP
    /// out of range is an error.
    pub fn pe_hbm_base(&self, cube: CubeId, pe: u16) -> Result<PhysAddr, AddrError> {
        check_field("pe", u64::from(pe), u64::from(self.pes_per_cube - 1))?;
        Self::cube_addr(cube, u64::from(pe) * self.hbm_slice_bytes)
    }

    /// The first address of `pe`'s HBM slice (same as [`Self::pe_hbm_base`]).
    pub fn pe_hbm(&self, pe: PeId) -> Result<PhysAddr, AddrError> {
        self.pe_hbm_base(pe.cube_id(), pe.pe)
    }

    /// The first address of `cube`'s M_CPU-local region.
    pub fn mcpu_base(&self, cube: CubeId) -> Result<PhysAddr, AddrError> {
        Self::cube_addr(cube, self.mcpu_offset())
    }

    /// The first address of `cube`'s SRAM.
    pub fn sram_base(&self, cube: CubeId) -> Result<PhysAddr, AddrError> {
        Self::cube_addr(cube, self.sram_offset())
    }

    /// The first address of `sip`'s IO_CPU window (die 16, offset 0).
    pub fn io_cpu_base(&self, sip: u16) -> Result<PhysAddr, AddrError> {
        PhysAddr::encode(sip, IO_CPU_DIE, 0)
    }

    /// The region `pa` falls in; an address in no region (past the used part
    /// of a cube die, outside the IO_CPU window, on another IO die or a
    /// reserved die) is an error.
    pub fn classify(&self, pa: PhysAddr) -> Result<Region, AddrError> {
        let (sip, die, off) = (pa.sip(), pa.die(), pa.offset());
        match pa.die_kind() {
            DieKind::Cube(cube) => {
                let cube = CubeId { sip, cube };
                if off < self.mcpu_offset() {
                    // `off / slice < pes_per_cube <= u16::MAX`, so the cast is lossless.
                    let pe = (off / self.hbm_slice_bytes) as u16;
                    Ok(Region::PeHbm {
                        pe: PeId::new(sip, cube.cube, pe),
                        offset: off % self.hbm_slice_bytes,
                    })
                } else if off < self.sram_offset() {
                    Ok(Region::MCpu {
                        cube,
                        offset: off - self.mcpu_offset(),
                    })
                } else if off < self.used_bytes_per_cube() {
                    Ok(Region::Sram {
                        cube,
                        offset: off - self.sram_offset(),
                    })
                } else {
                    Err(AddrError::NoRegion { pa })
                }
            }
            DieKind::IoChiplet(_) if die == IO_CPU_DIE && off < IO_CPU_WINDOW_BYTES => {
                Ok(Region::IoCpu { sip, offset: off })
            }
            _ => Err(AddrError::NoRegion { pa }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;
    const MIB: u64 = 1 << 20;

    fn layout() -> AddressLayout {
        AddressLayout::new(8, 16 * GIB, 64 * MIB, 32 * MIB).unwrap()
    }

    #[test]
    fn fields_land_in_their_bits() {
        let pa = PhysAddr::encode(15, 31, OFFSET_MASK).unwrap();
        assert_eq!(pa.raw(), (1 << 51) - 1);
        let pa = PhysAddr::encode(1, 2, 3).unwrap();
        assert_eq!(pa.raw(), (1 << 47) | (2 << 42) | 3);
        assert_eq!((pa.sip(), pa.die(), pa.offset()), (1, 2, 3));
    }

    #[test]
    fn out_of_range_fields_are_named() {
        let e = PhysAddr::encode(16, 0, 0).unwrap_err();
        assert_eq!(
            e,
            AddrError::FieldOutOfRange {
                field: "sip",
                value: 16,
                max: 15
            }
        );
        assert!(e.to_string().contains("`sip` = 16"));
        let e = PhysAddr::encode(0, 32, 0).unwrap_err();
        assert!(matches!(
            e,
            AddrError::FieldOutOfRange {
                field: "die",
                value: 32,
                ..
            }
        ));
        let e = PhysAddr::encode(0, 0, 1 << 42).unwrap_err();
        assert!(matches!(
            e,
            AddrError::FieldOutOfRange {
                field: "offset",
                ..
            }
        ));
        assert!(PhysAddr::from_raw(1 << 51).is_err());
        assert!(PhysAddr::from_raw((1 << 51) - 1).is_ok());
    }

    #[test]
    fn display_shows_hex_and_fields() {
        let pa = PhysAddr::encode(1, 16, 0x1000).unwrap();
        assert_eq!(
            pa.to_string(),
            "0x0c00000001000 (sip 1, die 16, offset 0x1000)"
        );
    }

    #[test]
    fn die_kinds() {
        assert_eq!(DieKind::of(0).unwrap(), DieKind::Cube(0));
        assert_eq!(DieKind::of(15).unwrap(), DieKind::Cube(15));
        assert_eq!(DieKind::of(16).unwrap(), DieKind::IoChiplet(0));
        assert_eq!(DieKind::of(20).unwrap(), DieKind::IoChiplet(4));
        assert_eq!(DieKind::of(21).unwrap(), DieKind::Reserved);
        assert_eq!(DieKind::of(31).unwrap(), DieKind::Reserved);
        assert!(DieKind::of(32).is_err());
    }

    #[test]
    fn checked_add_stays_on_die() {
        let pa = PhysAddr::encode(2, 3, 0x100).unwrap();
        let q = pa.checked_add(0x1000).unwrap();
        assert_eq!((q.sip(), q.die(), q.offset()), (2, 3, 0x1100));
        let top = PhysAddr::encode(2, 3, OFFSET_MASK).unwrap();
        assert!(top.checked_add(1).is_err());
        assert!(top.checked_add(u64::MAX).is_err());
    }

    #[test]
    fn serde_round_trip_checks_range() {
        let pa = PhysAddr::encode(3, 4, 5).unwrap();
        let s = serde_json::to_string(&pa).unwrap();
        assert_eq!(s, pa.raw().to_string());
        assert_eq!(serde_json::from_str::<PhysAddr>(&s).unwrap(), pa);
        assert!(serde_json::from_str::<PhysAddr>(&(1u64 << 51).to_string()).is_err());
    }

    #[test]
    fn layout_validation() {
        let zero = |field| Some(AddrError::LayoutZero { field });
        assert_eq!(AddressLayout::new(0, GIB, 0, 0).err(), zero("pes_per_cube"));
        assert_eq!(
            AddressLayout::new(8, 0, 0, 0).err(),
            zero("hbm_slice_bytes")
        );
        let e = AddressLayout::new(8, GIB, 0, 100).unwrap_err();
        assert_eq!(
            e,
            AddrError::LayoutUnaligned {
                field: "sram_bytes",
                value: 100
            }
        );
        assert_eq!(
            e.to_string(),
            "address layout: sram_bytes = 0x64 is not a multiple of the 4 KiB page"
        );
        assert!(matches!(
            AddressLayout::new(8, GIB + 1, 0, 0),
            Err(AddrError::LayoutUnaligned {
                field: "hbm_slice_bytes",
                ..
            })
        ));
        assert!(AddressLayout::new(8, 32 * GIB, 0, 0).is_ok());
        let e = AddressLayout::new(8, 32 * GIB, 4096, 0).unwrap_err();
        assert_eq!(
            e,
            AddrError::LayoutTooLarge {
                pes_per_cube: 8,
                hbm_slice_bytes: 32 * GIB,
                mcpu_bytes: 4096,
                sram_bytes: 0
            }
        );
        assert!(
            e.to_string().contains("8 PEs x 0x800000000 bytes of HBM")
                && e.to_string()
                    .ends_with("the 0x4000000000 usable bytes of a cube die"),
            "{e}"
        );
        // Totals that overflow 64 bits are too large, not wrapped round.
        assert!(matches!(
            AddressLayout::new(u16::MAX, u64::MAX - 4095, 0, 0),
            Err(AddrError::LayoutTooLarge { .. })
        ));
        assert!(matches!(
            AddressLayout::new(1, 4096, u64::MAX - 4095, 4096),
            Err(AddrError::LayoutTooLarge { .. })
        ));
    }

    #[test]
    fn region_bases() {
        let l = layout();
        let cube = CubeId { sip: 1, cube: 5 };
        let pa = l.pe_hbm_base(cube, 3).unwrap();
        assert_eq!((pa.sip(), pa.die(), pa.offset()), (1, 5, 48 * GIB));
        assert_eq!(l.pe_hbm(PeId::new(1, 5, 3)).unwrap(), pa);
        assert_eq!(l.mcpu_base(cube).unwrap().offset(), 128 * GIB);
        assert_eq!(l.sram_base(cube).unwrap().offset(), 128 * GIB + 64 * MIB);
        let io = l.io_cpu_base(7).unwrap();
        assert_eq!((io.sip(), io.die(), io.offset()), (7, 16, 0));

        assert!(l.pe_hbm_base(cube, 8).is_err());
        assert!(l.pe_hbm_base(CubeId { sip: 0, cube: 16 }, 0).is_err());
        assert!(l.mcpu_base(CubeId { sip: 16, cube: 0 }).is_err());
        assert!(l.io_cpu_base(16).is_err());
    }

    #[test]
    fn classify_each_region() {
        let l = layout();
        let cube = CubeId { sip: 1, cube: 5 };
        let pa = l.pe_hbm_base(cube, 7).unwrap().checked_add(12).unwrap();
        assert_eq!(
            l.classify(pa).unwrap(),
            Region::PeHbm {
                pe: PeId::new(1, 5, 7),
                offset: 12
            }
        );
        let pa = l
            .mcpu_base(cube)
            .unwrap()
            .checked_add(64 * MIB - 1)
            .unwrap();
        assert_eq!(
            l.classify(pa).unwrap(),
            Region::MCpu {
                cube,
                offset: 64 * MIB - 1
            }
        );
        let pa = l.sram_base(cube).unwrap();
        assert_eq!(l.classify(pa).unwrap(), Region::Sram { cube, offset: 0 });
        let end = pa.checked_add(32 * MIB).unwrap();
        assert!(matches!(l.classify(end), Err(AddrError::NoRegion { .. })));

        let io = l
            .io_cpu_base(2)
            .unwrap()
            .checked_add(IO_CPU_WINDOW_BYTES - 1)
            .unwrap();
        assert_eq!(
            l.classify(io).unwrap(),
            Region::IoCpu {
                sip: 2,
                offset: IO_CPU_WINDOW_BYTES - 1
            }
        );
        assert!(l.classify(io.checked_add(1).unwrap()).is_err());
        assert!(l.classify(PhysAddr::encode(0, 17, 0).unwrap()).is_err());
        assert!(l.classify(PhysAddr::encode(0, 25, 0).unwrap()).is_err());
    }

    #[test]
    fn classify_inverts_bases() {
        let l = layout();
        for cube in 0..CUBE_DIES {
            for pe in 0..l.pes_per_cube() {
                let c = CubeId { sip: 3, cube };
                let base = l.pe_hbm_base(c, pe).unwrap();
                assert_eq!(
                    l.classify(base).unwrap(),
                    Region::PeHbm {
                        pe: PeId::new(3, cube, pe),
                        offset: 0
                    }
                );
            }
        }
    }
}
