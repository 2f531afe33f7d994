//! Neighbour maps: which PE a direction names, for one launch.
//!
//! A collective installs a logical topology (a ring, a 2D torus or mesh, a
//! binary tree, hierarchical levels, or any function) before launch; `tl::send(E, ..)`
//! then resolves to the peer the map names, and the physical path is routed.

use crate::ir::Dir;
use crate::PeId;
use std::collections::BTreeMap;
use std::fmt;

/// A map from (PE, direction) to the peer PE.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NeighborMap {
    kind: String,
    peers: BTreeMap<(PeId, Dir), PeId>,
}

/// A neighbour map that cannot be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("neighbour map `{kind}`: {problem}")]
pub struct NeighborError {
    /// The kind of map.
    pub kind: String,
    /// What is wrong.
    pub problem: NeighborProblem,
}

/// Why the PEs given cannot make a neighbour map (see [`NeighborError`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NeighborProblem {
    /// Fewer PEs than the map needs.
    #[error("needs at least {min} PEs, got {got}")]
    TooFewPes {
        /// PEs the map needs.
        min: usize,
        /// PEs given.
        got: usize,
    },
    /// A PE listed twice.
    #[error("PE {pe} appears twice")]
    Repeated {
        /// The PE.
        pe: PeId,
    },
    /// A grid whose rows and columns do not cover the PEs given.
    #[error("{rows}x{cols} does not cover {pes} PEs")]
    GridCover {
        /// Rows asked for.
        rows: usize,
        /// Columns asked for.
        cols: usize,
        /// PEs given.
        pes: usize,
    },
}

impl NeighborMap {
    /// An empty map named `kind` (for maps built by hand with [`NeighborMap::set`]).
    pub fn empty(kind: &str) -> Self {
        NeighborMap {
            kind: kind.to_string(),
            peers: BTreeMap::new(),
        }
    }

    /// What kind of map this is (`ring`, `torus2d`, ...).
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// Names `peer` as `pe`'s neighbour in `dir`.
    pub fn set(&mut self, pe: PeId, dir: Dir, peer: PeId) {
        self.peers.insert((pe, dir), peer);
    }

    /// The peer of `pe` in `dir`.
    pub fn peer(&self, pe: PeId, dir: Dir) -> Option<PeId> {
        self.peers.get(&(pe, dir)).copied()
    }

    /// The directions `pe` has a neighbour in.
    pub fn dirs(&self, pe: PeId) -> Vec<Dir> {
        Dir::ALL
            .into_iter()
            .filter(|d| self.peers.contains_key(&(pe, *d)))
            .collect()
    }

    /// Every entry.
    pub fn iter(&self) -> impl Iterator<Item = (PeId, Dir, PeId)> + '_ {
        self.peers.iter().map(|(&(a, d), &b)| (a, d, b))
    }

    /// Adds every entry of `other` (later entries win).
    pub fn merge(&mut self, other: &NeighborMap) {
        for (a, d, b) in other.iter() {
            self.set(a, d, b);
        }
        if self.kind.is_empty() {
            self.kind = other.kind.clone();
        } else if !other.kind.is_empty() && other.kind != self.kind {
            self.kind = format!("{}+{}", self.kind, other.kind);
        }
    }

    fn check(kind: &str, pes: &[PeId], min: usize) -> Result<(), NeighborError> {
        if pes.len() < min {
            return Err(NeighborError {
                kind: kind.into(),
                problem: NeighborProblem::TooFewPes {
                    min,
                    got: pes.len(),
                },
            });
        }
        let mut seen = std::collections::BTreeSet::new();
        for p in pes {
            if !seen.insert(*p) {
                return Err(NeighborError {
                    kind: kind.into(),
                    problem: NeighborProblem::Repeated { pe: *p },
                });
            }
        }
        Ok(())
    }

    /// A 1D ring over `pes` in order: `E` is the next, `W` the previous.
    pub fn ring(pes: &[PeId]) -> Result<Self, NeighborError> {
        Self::ring_dirs("ring", pes, Dir::E, Dir::W)
    }

    /// A ring using the given pair of directions (e.g. `N`/`S` for a column, `SipE`/`SipW` across SIPs).
    pub fn ring_dirs(
        kind: &str,
        pes: &[PeId],
        next: Dir,
        prev: Dir,
    ) -> Result<Self, NeighborError> {
        Self::check(kind, pes, 1)?;
        let mut m = NeighborMap::empty(kind);
        let n = pes.len();
        if n == 1 {
            return Ok(m);
        }
        for (i, p) in pes.iter().enumerate() {
            m.set(*p, next, pes[(i + 1) % n]);
            m.set(*p, prev, pes[(i + n - 1) % n]);
        }
        Ok(m)
    }

    /// A 2D grid over `pes` in row-major order (`rows x cols`): `E`/`W` along a
    /// row, `S`/`N` along a column; with `wrap` a torus, else a mesh.
    pub fn grid2d(
        pes: &[PeId],
        rows: usize,
        cols: usize,
        wrap: bool,
    ) -> Result<Self, NeighborError> {
        let kind = if wrap { "torus2d" } else { "mesh2d" };
        Self::check(kind, pes, 1)?;
        if rows.checked_mul(cols) != Some(pes.len()) {
            return Err(NeighborError {
                kind: kind.into(),
                problem: NeighborProblem::GridCover {
                    rows,
                    cols,
                    pes: pes.len(),
                },
            });
        }
        let mut m = NeighborMap::empty(kind);
        let at = |r: usize, c: usize| pes[r * cols + c];
        for r in 0..rows {
            for c in 0..cols {
                let p = at(r, c);
                if cols > 1 {
                    if c + 1 < cols {
                        m.set(p, Dir::E, at(r, c + 1));
                    } else if wrap {
                        m.set(p, Dir::E, at(r, 0));
                    }
                    if c > 0 {
                        m.set(p, Dir::W, at(r, c - 1));
                    } else if wrap {
                        m.set(p, Dir::W, at(r, cols - 1));
                    }
                }
                if rows > 1 {
                    if r + 1 < rows {
                        m.set(p, Dir::S, at(r + 1, c));
                    } else if wrap {
                        m.set(p, Dir::S, at(0, c));
                    }
                    if r > 0 {
                        m.set(p, Dir::N, at(r - 1, c));
                    } else if wrap {
                        m.set(p, Dir::N, at(rows - 1, c));
                    }
                }
            }
        }
        Ok(m)
    }

    /// A binary tree over `pes` in heap order: the parent of `i` is `(i-1)/2`,
    /// its children `2i+1` (`Left`) and `2i+2` (`Right`).
    pub fn tree(pes: &[PeId]) -> Result<Self, NeighborError> {
        Self::check("tree", pes, 1)?;
        let mut m = NeighborMap::empty("tree");
        for i in 0..pes.len() {
            if i > 0 {
                m.set(pes[i], Dir::Parent, pes[(i - 1) / 2]);
            }
            if 2 * i + 1 < pes.len() {
                m.set(pes[i], Dir::Left, pes[2 * i + 1]);
            }
            if 2 * i + 2 < pes.len() {
                m.set(pes[i], Dir::Right, pes[2 * i + 2]);
            }
        }
        Ok(m)
    }

    /// A map from a function giving each PE's peer in each direction (or `None`).
    pub fn from_fn(kind: &str, pes: &[PeId], f: impl Fn(PeId, Dir) -> Option<PeId>) -> Self {
        let mut m = NeighborMap::empty(kind);
        for p in pes {
            for d in Dir::ALL {
                if let Some(q) = f(*p, d) {
                    m.set(*p, d, q);
                }
            }
        }
        m
    }

    /// Hierarchical levels over whole cubes and SIPs: inside each cube a ring
    /// over its PEs (`E`/`W`); across the cubes of a SIP a ring over the PEs of
    /// the same local index (`S`/`N`); across SIPs a ring over the PEs of the
    /// same (cube, pe) (`SipE`/`SipW`). `pes` must be whole cubes of whole SIPs,
    /// in structural order.
    pub fn hierarchical(pes: &[PeId]) -> Result<Self, NeighborError> {
        Self::check("hierarchical", pes, 1)?;
        let mut m = NeighborMap::empty("hierarchical");
        let mut cubes: BTreeMap<(u16, u16), Vec<PeId>> = BTreeMap::new();
        let mut rows: BTreeMap<(u16, u16), Vec<PeId>> = BTreeMap::new();
        let mut sips: BTreeMap<(u16, u16), Vec<PeId>> = BTreeMap::new();
        for p in pes {
            cubes.entry((p.sip, p.cube)).or_default().push(*p);
            rows.entry((p.sip, p.pe)).or_default().push(*p);
            sips.entry((p.cube, p.pe)).or_default().push(*p);
        }
        for v in cubes.values() {
            m.merge(&Self::ring_dirs("", v, Dir::E, Dir::W)?);
        }
        for v in rows.values() {
            m.merge(&Self::ring_dirs("", v, Dir::S, Dir::N)?);
        }
        for v in sips.values() {
            m.merge(&Self::ring_dirs("", v, Dir::SipE, Dir::SipW)?);
        }
        m.kind = "hierarchical".into();
        Ok(m)
    }
}

impl fmt::Display for NeighborMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "neighbour map {}", self.kind)?;
        for (a, d, b) in self.iter() {
            writeln!(f, "  {a} {d} -> {b}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pe(i: u16) -> PeId {
        PeId::new(0, 0, i)
    }

    #[test]
    fn a_map_that_cannot_be_built_says_which_pes_do_not_fit() {
        let e = NeighborMap::ring(&[]).unwrap_err();
        assert_eq!(
            e,
            NeighborError {
                kind: "ring".into(),
                problem: NeighborProblem::TooFewPes { min: 1, got: 0 },
            }
        );
        assert_eq!(
            e.to_string(),
            "neighbour map `ring`: needs at least 1 PEs, got 0"
        );

        let e = NeighborMap::tree(&[pe(0), pe(1), pe(0)]).unwrap_err();
        assert_eq!(e.problem, NeighborProblem::Repeated { pe: pe(0) });
        assert_eq!(
            e.to_string(),
            format!("neighbour map `tree`: PE {} appears twice", pe(0))
        );

        let e = NeighborMap::grid2d(&[pe(0), pe(1), pe(2)], 2, 2, true).unwrap_err();
        assert_eq!(e.kind, "torus2d");
        assert_eq!(
            e.problem,
            NeighborProblem::GridCover {
                rows: 2,
                cols: 2,
                pes: 3
            }
        );
        assert_eq!(
            e.to_string(),
            "neighbour map `torus2d`: 2x2 does not cover 3 PEs"
        );
    }
}
