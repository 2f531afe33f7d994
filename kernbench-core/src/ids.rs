//! Structural identifiers of the modelled machine.
//!
//! A PE is named by where it sits: `(sip, cube, pe)`, with `cube` local to its
//! SIP and `pe` local to its cube. No public type carries a flat PE index; code
//! that needs a flat key computes one where it needs it.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A SIP (one device; rank = SIP in the host API).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SipId(pub u16);

/// A cube (AHBM die) inside a SIP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CubeId {
    /// The SIP the cube belongs to.
    pub sip: u16,
    /// The cube's index inside its SIP (row-major over the SIP's cube mesh).
    pub cube: u16,
}

/// A processing element, by its structural coordinate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PeId {
    /// The SIP.
    pub sip: u16,
    /// The cube, local to the SIP.
    pub cube: u16,
    /// The PE, local to the cube.
    pub pe: u16,
}

impl PeId {
    /// A PE at `(sip, cube, pe)`.
    pub const fn new(sip: u16, cube: u16, pe: u16) -> Self {
        PeId { sip, cube, pe }
    }

    /// The cube this PE sits in.
    pub const fn cube_id(self) -> CubeId {
        CubeId {
            sip: self.sip,
            cube: self.cube,
        }
    }
}

impl fmt::Display for PeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({},{},{})", self.sip, self.cube, self.pe)
    }
}

impl fmt::Display for CubeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({},{})", self.sip, self.cube)
    }
}

impl fmt::Display for SipId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sip{}", self.0)
    }
}

/// Simulated time in integer picoseconds.
pub type Ps = u64;

/// Picoseconds in one nanosecond.
pub const PS_PER_NS: Ps = 1000;

/// Time to move `bytes` at `gbps` (GB/s, which is bytes per ns), rounded up to a picosecond.
pub fn transfer_ps(bytes: u64, gbps: f64) -> Ps {
    if bytes == 0 {
        return 0;
    }
    // Rounded up without a call to libm's `ceil` (this runs per packet and
    // hop); the same value for every finite positive quotient.
    let x = bytes as f64 * 1000.0 / gbps;
    let t = x as Ps;
    if (t as f64) < x {
        t + 1
    } else {
        t
    }
}

/// Nanoseconds (possibly fractional, from a topology file) to picoseconds.
pub fn ns_to_ps(ns: f64) -> Ps {
    (ns * 1000.0).round() as Ps
}
