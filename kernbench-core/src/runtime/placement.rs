//! Data-parallel placement inside one SIP (ADR-0026): a tensor is split (or
//! replicated) over cubes, then each cube's part over PEs. Every shard carries
//! its structural coordinate `(sip, cube, pe)`; there is no flat PE index.

use super::{PlacementError, RuntimeError};
use crate::PeId;
use std::ops::Range;

/// How one level (cubes, or the PEs of a cube) shares the part it is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Split {
    /// Every unit holds the whole part.
    Replicate,
    /// Contiguous bands of rows, one per unit (the first bands one row longer
    /// when the rows do not divide). A 1-D tensor is one row: its elements are split.
    RowWise,
    /// Contiguous bands of columns, one per unit.
    ColumnWise,
    /// A `rows x cols` grid of tiles, one per unit (`rows * cols` must equal
    /// the number of units), numbered in `order`.
    Tiled {
        /// Tiles down the rows.
        rows: usize,
        /// Tiles across the columns.
        cols: usize,
        /// Which tile unit `u` holds.
        order: TileOrder,
    },
}

/// The order tiles are given to units in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TileOrder {
    /// Tile `(i, j)` goes to unit `i * cols + j`.
    RowMajor,
    /// Tile `(i, j)` goes to unit `j * rows + i`.
    ColumnMajor,
}

/// A data-parallel policy over cube x PE inside the current SIP. Which SIP is
/// not part of it: that is the device of the runtime handle that creates the
/// tensor (`set_device`, rank = SIP).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Placement {
    /// How the cubes share the tensor.
    pub cube: Split,
    /// How the PEs of each cube share the cube's part.
    pub pe: Split,
    /// Cubes used (`0..cubes`); every cube of the SIP when `None`.
    pub cubes: Option<usize>,
    /// PEs used in each cube (`0..pes`); every PE of the cube when `None`.
    pub pes: Option<usize>,
}

impl Placement {
    /// A policy with the given splits over every cube and PE of the SIP.
    pub fn new(cube: Split, pe: Split) -> Self {
        Placement {
            cube,
            pe,
            cubes: None,
            pes: None,
        }
    }

    /// The whole tensor on one PE: `(sip, 0, 0)`.
    pub fn single() -> Self {
        Placement::new(Split::Replicate, Split::Replicate)
            .cubes(1)
            .pes(1)
    }

    /// A copy of the whole tensor on every PE used.
    pub fn replicate() -> Self {
        Placement::new(Split::Replicate, Split::Replicate)
    }

    /// Bands of rows over cubes, then over the PEs of each cube.
    pub fn row_wise() -> Self {
        Placement::new(Split::RowWise, Split::RowWise)
    }

    /// Bands of columns over cubes, then over the PEs of each cube.
    pub fn column_wise() -> Self {
        Placement::new(Split::ColumnWise, Split::ColumnWise)
    }

    /// A `rows x cols` grid of tiles over the PEs of one cube, numbered row-major.
    pub fn tiled_row_major(rows: usize, cols: usize) -> Self {
        Placement::new(
            Split::Replicate,
            Split::Tiled {
                rows,
                cols,
                order: TileOrder::RowMajor,
            },
        )
        .cubes(1)
        .pes(rows * cols)
    }

    /// A `rows x cols` grid of tiles over the PEs of one cube, numbered column-major.
    pub fn tiled_column_major(rows: usize, cols: usize) -> Self {
        Placement::new(
            Split::Replicate,
            Split::Tiled {
                rows,
                cols,
                order: TileOrder::ColumnMajor,
            },
        )
        .cubes(1)
        .pes(rows * cols)
    }

    /// Uses cubes `0..n` of the SIP.
    pub fn cubes(mut self, n: usize) -> Self {
        self.cubes = Some(n);
        self
    }

    /// Uses PEs `0..n` of each cube.
    pub fn pes(mut self, n: usize) -> Self {
        self.pes = Some(n);
        self
    }
}

/// One shard of a placed tensor: where it lives, which part of the tensor it
/// holds, and where that part sits in the tensor's device storage.
///
/// A tensor's device storage is its shards one after another in placement
/// order (cube-major, then PE), each shard's block row-major.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ShardSpec {
    /// The SIP.
    pub sip: u16,
    /// The cube, local to the SIP.
    pub cube: u16,
    /// The PE, local to the cube.
    pub pe: u16,
    /// First element of the shard in the tensor's storage.
    pub offset: usize,
    /// Elements.
    pub len: usize,
    /// The tensor rows it holds (a 1-D tensor is the row `0..1`).
    pub rows: Range<usize>,
    /// The tensor columns it holds.
    pub cols: Range<usize>,
}

impl ShardSpec {
    /// Its PE.
    pub fn pe_id(&self) -> PeId {
        PeId::new(self.sip, self.cube, self.pe)
    }

    /// Its block's shape `[rows, cols]`.
    pub fn block_shape(&self) -> [usize; 2] {
        [self.rows.len(), self.cols.len()]
    }

    /// First byte in the tensor's storage, for an element of `elem_bytes` bytes.
    pub fn offset_bytes(&self, elem_bytes: usize) -> usize {
        self.offset * elem_bytes
    }

    /// Bytes, for an element of `elem_bytes` bytes.
    pub fn nbytes(&self, elem_bytes: usize) -> usize {
        self.len * elem_bytes
    }

    /// Whether its block holds the region `rows x cols`.
    pub fn holds(&self, rows: &Range<usize>, cols: &Range<usize>) -> bool {
        self.rows.start <= rows.start
            && rows.end <= self.rows.end
            && self.cols.start <= cols.start
            && cols.end <= self.cols.end
    }

    /// Whether its block meets the region `rows x cols`.
    pub fn meets(&self, rows: &Range<usize>, cols: &Range<usize>) -> bool {
        self.rows.start < rows.end
            && rows.start < self.rows.end
            && self.cols.start < cols.end
            && cols.start < self.cols.end
    }
}

/// Start and length of part `i` of `n` cut into `parts` (the first parts one longer).
fn band(n: usize, parts: usize, i: usize) -> Range<usize> {
    let (q, r) = (n / parts, n % parts);
    let start = i * q + i.min(r);
    start..start + q + usize::from(i < r)
}

type Block = (Range<usize>, Range<usize>);

/// Splits a block over `units` by `split`; `one_d` marks a 1-D tensor.
fn split(
    split: Split,
    block: &Block,
    units: usize,
    one_d: bool,
    level: &'static str,
) -> Result<Vec<Block>, PlacementError> {
    let (rows, cols) = block;
    let split = match split {
        Split::RowWise if one_d => Split::ColumnWise,
        s => s,
    };
    let cut = |r: &Range<usize>, parts: usize, dim: &'static str| -> Result<Vec<Range<usize>>, _> {
        if r.len() < parts {
            return Err(PlacementError::TooFew {
                len: r.len(),
                dim,
                parts,
                level,
            });
        }
        Ok((0..parts)
            .map(|i| {
                let b = band(r.len(), parts, i);
                r.start + b.start..r.start + b.end
            })
            .collect())
    };
    Ok(match split {
        Split::Replicate => vec![block.clone(); units],
        Split::RowWise => cut(rows, units, "rows")?
            .into_iter()
            .map(|r| (r, cols.clone()))
            .collect(),
        Split::ColumnWise => cut(cols, units, "columns")?
            .into_iter()
            .map(|c| (rows.clone(), c))
            .collect(),
        Split::Tiled {
            rows: tr,
            cols: tc,
            order,
        } => {
            if tr * tc != units {
                return Err(PlacementError::TileGrid {
                    rows: tr,
                    cols: tc,
                    level,
                    units,
                });
            }
            let rb = cut(rows, tr, "rows")?;
            let cb = cut(cols, tc, "columns")?;
            (0..units)
                .map(|u| {
                    let (i, j) = match order {
                        TileOrder::RowMajor => (u / tc, u % tc),
                        TileOrder::ColumnMajor => (u % tr, u / tr),
                    };
                    (rb[i].clone(), cb[j].clone())
                })
                .collect()
        }
    })
}

/// Resolves a placement for a tensor of `shape` (1-D or 2-D) on SIP `sip`
/// of a machine with `cubes_per_sip` cubes of `pes_per_cube` PEs: the shards
/// in placement order with their storage offsets.
pub fn resolve(
    placement: &Placement,
    shape: &[usize],
    sip: u16,
    cubes_per_sip: usize,
    pes_per_cube: usize,
) -> Result<Vec<ShardSpec>, RuntimeError> {
    let err = |kind| RuntimeError::Placement {
        shape: shape.to_vec(),
        kind,
    };
    let (rows, cols, one_d) = match shape {
        [n] => (1, *n, true),
        [r, c] => (*r, *c, false),
        _ => return Err(err(PlacementError::Rank)),
    };
    let cubes = placement.cubes.unwrap_or(cubes_per_sip);
    let pes = placement.pes.unwrap_or(pes_per_cube);
    if cubes == 0 || cubes > cubes_per_sip {
        return Err(err(PlacementError::Cubes {
            asked: cubes,
            have: cubes_per_sip,
        }));
    }
    if pes == 0 || pes > pes_per_cube {
        return Err(err(PlacementError::Pes {
            asked: pes,
            have: pes_per_cube,
        }));
    }
    let whole: Block = (0..rows, 0..cols);
    let mut out = Vec::with_capacity(cubes * pes);
    let mut offset = 0;
    for (c, cube_block) in split(placement.cube, &whole, cubes, one_d, "cubes")
        .map_err(err)?
        .into_iter()
        .enumerate()
    {
        for (p, (r, cl)) in split(placement.pe, &cube_block, pes, one_d, "PEs")
            .map_err(err)?
            .into_iter()
            .enumerate()
        {
            let len = r.len() * cl.len();
            out.push(ShardSpec {
                sip,
                cube: c as u16,
                pe: p as u16,
                offset,
                len,
                rows: r,
                cols: cl,
            });
            offset += len;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coords(s: &[ShardSpec]) -> Vec<(u16, u16, u16)> {
        s.iter().map(|s| (s.sip, s.cube, s.pe)).collect()
    }

    #[test]
    fn row_and_column_wise_cut_bands_at_structural_coordinates() {
        let s = resolve(&Placement::row_wise().cubes(2).pes(2), &[8, 3], 1, 4, 4).unwrap();
        assert_eq!(coords(&s), vec![(1, 0, 0), (1, 0, 1), (1, 1, 0), (1, 1, 1)]);
        assert_eq!(
            s.iter().map(|s| s.rows.clone()).collect::<Vec<_>>(),
            vec![0..2, 2..4, 4..6, 6..8]
        );
        assert_eq!(
            s.iter().map(|s| s.offset).collect::<Vec<_>>(),
            vec![0, 6, 12, 18]
        );
        let s = resolve(&Placement::column_wise().cubes(1).pes(3), &[2, 7], 0, 4, 4).unwrap();
        assert_eq!(
            s.iter().map(|s| s.cols.clone()).collect::<Vec<_>>(),
            vec![0..3, 3..5, 5..7]
        );
        assert_eq!(s.iter().map(|s| s.len).collect::<Vec<_>>(), vec![6, 4, 4]);
    }

    #[test]
    fn replicate_and_tiles() {
        let s = resolve(&Placement::replicate().cubes(2).pes(1), &[2, 2], 0, 4, 4).unwrap();
        assert!(s.iter().all(|s| s.rows == (0..2) && s.cols == (0..2)));
        let s = resolve(&Placement::tiled_column_major(2, 2), &[4, 4], 0, 4, 4).unwrap();
        let blocks: Vec<_> = s.iter().map(|s| (s.rows.start, s.cols.start)).collect();
        assert_eq!(blocks, vec![(0, 0), (2, 0), (0, 2), (2, 2)]);
        let s = resolve(&Placement::tiled_row_major(2, 2), &[4, 4], 0, 4, 4).unwrap();
        let blocks: Vec<_> = s.iter().map(|s| (s.rows.start, s.cols.start)).collect();
        assert_eq!(blocks, vec![(0, 0), (0, 2), (2, 0), (2, 2)]);
    }

    #[test]
    fn a_1d_tensor_splits_its_elements_and_bad_policies_say_why() {
        let s = resolve(&Placement::row_wise().cubes(1).pes(2), &[5], 0, 1, 4).unwrap();
        assert_eq!(
            s.iter().map(|s| s.cols.clone()).collect::<Vec<_>>(),
            vec![0..3, 3..5]
        );
        let bad = |p: &Placement, shape: &[usize]| match resolve(p, shape, 0, 2, 4) {
            Err(RuntimeError::Placement { shape: s, kind }) => {
                assert_eq!(s, shape);
                kind
            }
            other => panic!("not a placement error: {other:?}"),
        };
        let e = bad(&Placement::row_wise().cubes(1).pes(4), &[2, 2]);
        assert_eq!(
            e,
            PlacementError::TooFew {
                len: 2,
                dim: "rows",
                parts: 4,
                level: "PEs"
            }
        );
        assert!(
            e.to_string().contains("cannot split 2 rows over 4 PEs"),
            "{e}"
        );
        let e = bad(&Placement::column_wise().cubes(2), &[8, 1]);
        assert_eq!(
            e,
            PlacementError::TooFew {
                len: 1,
                dim: "columns",
                parts: 2,
                level: "cubes"
            }
        );
        let e = bad(&Placement::row_wise().cubes(3), &[8, 8]);
        assert_eq!(e, PlacementError::Cubes { asked: 3, have: 2 });
        let e = bad(&Placement::row_wise().cubes(1).pes(0), &[8, 8]);
        assert_eq!(e, PlacementError::Pes { asked: 0, have: 4 });
        assert_eq!(bad(&Placement::single(), &[2, 2, 2]), PlacementError::Rank);
        let e = bad(&Placement::tiled_row_major(2, 3).cubes(1).pes(4), &[8, 8]);
        assert_eq!(
            e,
            PlacementError::TileGrid {
                rows: 2,
                cols: 3,
                level: "PEs",
                units: 4
            }
        );
        assert_eq!(
            e.to_string(),
            "a 2x3 tile grid needs 6 PEs, the placement uses 4"
        );
    }
}
