//! 2D all-reduce on a torus of `rows x cols` ranks: reduce-scatter along each
//! row, all-reduce each row-chunk down its column, all-gather along the row.

use super::common::*;
use super::Builtin;
use crate::cost::{torus_allreduce, PeFigures};
use crate::registry::{Collective, MapKind};
use crate::run::torus_shape;
use kernbench_tl::prelude::*;
use kernbench_tl::Element;

/// Where a rank sits in a torus of ranks laid out row-major.
#[derive(Clone, Copy, Debug)]
pub struct Torus {
    /// This rank.
    pub rank: usize,
    /// Ranks in all.
    pub size: usize,
    /// Ranks per row.
    pub cols: usize,
}

/// 2D all-reduce of the `n` elements at `buf[base..]` among the ranks of `torus`.
#[kernel_fn]
pub fn torus_all_reduce<T: Element>(
    buf: Ptr<T>,
    base: usize,
    n: usize,
    seg: usize,
    op: RedOp,
    torus: Torus,
) {
    let Torus {
        rank: r,
        size: w,
        cols,
    } = torus;
    let cols = cols.max(1);
    let rows = w / cols;
    let row = Ring {
        next: Dir::E,
        prev: Dir::W,
        rank: r % cols,
        size: cols,
    };
    let col = Ring {
        next: Dir::S,
        prev: Dir::N,
        rank: r / cols,
        size: rows,
    };
    ring_reduce_scatter(buf, base, (0, n), row, 1, seg, op);
    // This rank now holds the row's reduction of its chunk; all-reduce it down the column.
    let (cs, cl) = chunk(n, cols, (row.rank + 1) % cols);
    ring_all_reduce(buf, base, (cs, cl), col, seg, op);
    ring_all_gather(buf, base, (0, n), row, 1, seg);
}

/// 2D all-reduce on a torus: reduce-scatter along rows, all-reduce down columns, all-gather along rows.
///
/// Ranks are row-major over `cols` columns.
#[kernel]
pub fn mesh_allreduce<T: Element>(
    buf: Ptr<T>,
    n: usize,
    #[constexpr] seg: usize,
    #[constexpr] op: RedOp,
    cols: usize,
) {
    let (w, r) = (tl::num_programs(0), tl::program_id(0));
    let torus = Torus {
        rank: r,
        size: w,
        cols,
    };
    torus_all_reduce(buf, r * n, n, seg, op, torus);
}

/// [`mesh_allreduce`]: ring steps along the rows and down the columns of
/// the most square torus over the ranks ([`torus_allreduce`]).
pub const MESH_ALLREDUCE: Builtin = Builtin {
    kernel: &mesh_allreduce,
    collective: Collective::AllReduce,
    maps: &[MapKind::Torus2d],
    cost: |m| {
        let (rows, cols) = torus_shape(m.ranks());
        let row = m.measure_ring(&[Dir::E]);
        let col = m.measure_ring(&[Dir::S]);
        torus_allreduce(
            &PeFigures::of(m.topo),
            (rows, cols),
            m.bytes,
            m.seg(),
            row,
            col,
        )
    },
    leaves_out: Some(
        "loads and stores queue for the slice's pseudo-channels: the machine pays part of the sum of HBM and wire time, the model the larger; across SIPs, column channels that share a SIP crossing wait longer for credits than one channel's window gives",
    ),
};
