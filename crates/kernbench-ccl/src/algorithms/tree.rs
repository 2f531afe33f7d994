//! Tree all-reduce over a binary tree in heap order (`Parent`, `Left`,
//! `Right`): reduce up, broadcast down, pipelined piece by piece.

use super::common::*;
use kernbench_tl::prelude::*;
use kernbench_tl::Element;

/// Tree all-reduce of `n` elements per rank.
#[kernel_fn]
pub fn tree_allreduce<T: Element>(buf: Ptr<T>, n: usize, seg: usize, op: u32) {
    let (w, r) = (tl::num_programs(0), tl::program_id(0));
    let base = r * n;
    let has_left = 2 * r + 1 < w;
    let has_right = 2 * r + 2 < w;
    let ps = pieces(0, n, seg);
    // Reduce up: each piece combines the children's with this rank's, then goes to the parent.
    for (off, len) in &ps {
        let fl = if has_left {
            Some(tl::recv_async::<T>(Dir::Left, [*len]))
        } else {
            None
        };
        let fr = if has_right {
            Some(tl::recv_async::<T>(Dir::Right, [*len]))
        } else {
            None
        };
        let mut acc = tl::load(buf.offset(base + off), [*len]);
        if let Some(f) = fl {
            acc = combine(&acc, &tl::wait(f), op);
        }
        if let Some(f) = fr {
            acc = combine(&acc, &tl::wait(f), op);
        }
        if r == 0 {
            tl::store(buf.offset(base + off), &acc);
        } else {
            tl::send(Dir::Parent, &acc);
        }
    }
    // Broadcast down.
    for (off, len) in &ps {
        let x = if r == 0 {
            tl::load(buf.offset(base + off), [*len])
        } else {
            let x = tl::recv::<T>(Dir::Parent, [*len]);
            tl::store(buf.offset(base + off), &x);
            x
        };
        if has_left {
            tl::send(Dir::Left, &x);
        }
        if has_right {
            tl::send(Dir::Right, &x);
        }
    }
}
