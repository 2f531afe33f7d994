//! Tree all-reduce over a binary tree whose subtrees are contiguous ranges of
//! ranks (`Parent`, `Left`, `Right`): reduce up, broadcast down, pipelined
//! piece by piece.

use super::common::*;
use kernbench_tl::prelude::*;
use kernbench_tl::Element;

/// The binary tree of `w` ranks in which every subtree covers a contiguous
/// range of ranks (so, with ranks in structural order, a subtree stays inside
/// its cube and SIP as long as it fits): the node of range `[a, b)` is `a`,
/// its left child heads `[a+1, m)` and its right child `[m, b)`, `m` splitting
/// the rest in halves (the left one larger). Returns `(parent, left, right)` of `r`.
pub fn range_tree(w: usize, r: usize) -> (Option<usize>, Option<usize>, Option<usize>) {
    let (mut a, mut b, mut parent) = (0, w.max(1), None);
    loop {
        let m = a + 1 + (b - a - 1).div_ceil(2);
        if r <= a {
            return (parent, (a + 1 < m).then_some(a + 1), (m < b).then_some(m));
        }
        parent = Some(a);
        if r < m {
            (a, b) = (a + 1, m);
        } else {
            a = m;
        }
    }
}

/// Where a rank sits in a binary tree: whether it is the root and which children it has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TreeNode {
    /// No parent.
    pub root: bool,
    /// Has a `Left` child.
    pub left: bool,
    /// Has a `Right` child.
    pub right: bool,
}

/// Reduces `n` elements at `buf[base..]` up a tree to its root, piece by piece:
/// each piece combines the children's with this rank's, then goes to the parent.
#[kernel_fn]
pub fn tree_reduce<T: Element>(
    buf: Ptr<T>,
    base: usize,
    n: usize,
    seg: usize,
    op: RedOp,
    node: TreeNode,
) {
    for (off, len) in pieces(0, n, seg) {
        let fl = if node.left {
            Some(tl::recv_async::<T>(Dir::Left, [len]))
        } else {
            None
        };
        let fr = if node.right {
            Some(tl::recv_async::<T>(Dir::Right, [len]))
        } else {
            None
        };
        let mut acc = tl::load(buf.offset(base + off), [len]);
        if let Some(f) = fl {
            acc = combine(&acc, &tl::wait(f), op);
        }
        if let Some(f) = fr {
            acc = combine(&acc, &tl::wait(f), op);
        }
        if node.root {
            tl::store(buf.offset(base + off), &acc);
        } else {
            tl::send(Dir::Parent, &acc);
        }
    }
}

/// Broadcasts `n` elements at `buf[base..]` down a tree from its root, piece by piece.
#[kernel_fn]
pub fn tree_broadcast<T: Element>(buf: Ptr<T>, base: usize, n: usize, seg: usize, node: TreeNode) {
    for (off, len) in pieces(0, n, seg) {
        let x = if node.root {
            tl::load(buf.offset(base + off), [len])
        } else {
            let x = tl::recv::<T>(Dir::Parent, [len]);
            tl::store(buf.offset(base + off), &x);
            x
        };
        if node.left {
            tl::send(Dir::Left, &x);
        }
        if node.right {
            tl::send(Dir::Right, &x);
        }
    }
}

/// Tree all-reduce over a heap-ordered binary tree: reduce up, broadcast down.
#[kernel]
pub fn tree_allreduce<T: Element>(
    buf: Ptr<T>,
    n: usize,
    #[constexpr] seg: usize,
    #[constexpr] op: RedOp,
) {
    let (w, r) = (tl::num_programs(0), tl::program_id(0));
    tree_allreduce_at(buf, r * n, n, seg, op, w, r);
}

/// Tree all-reduce over [`range_tree`] of `w` ranks, as rank `r`, of the `n`
/// elements at `buf[base..]` (peers by the `Parent`/`Left`/`Right` map).
#[kernel_fn]
pub fn tree_allreduce_at<T: Element>(
    buf: Ptr<T>,
    base: usize,
    n: usize,
    seg: usize,
    op: RedOp,
    w: usize,
    r: usize,
) {
    let (parent, left, right) = range_tree(w, r);
    let node = TreeNode {
        root: parent.is_none(),
        left: left.is_some(),
        right: right.is_some(),
    };
    tree_reduce(buf, base, n, seg, op, node);
    tree_broadcast(buf, base, n, seg, node);
}

/// [`tree_allreduce`]: a piece climbs the deepest path of the tree and
/// comes back down, the others following it
/// ([`tree_allreduce_on`](crate::cost::tree_allreduce_on)). The model of
/// any algorithm on the tree map.
pub const TREE_ALLREDUCE: super::Builtin = super::Builtin {
    kernel: &tree_allreduce,
    collective: crate::Collective::AllReduce,
    maps: &[crate::MapKind::Tree],
    cost: |m| {
        let ab = m.measure(&[Dir::Left, Dir::Right]);
        crate::cost::tree_allreduce_on(m.topo, m.map, m.pes[0], m.bytes, m.pieces, ab)
    },
    leaves_out: None,
};

#[cfg(test)]
mod tests {
    use super::range_tree;

    #[test]
    fn range_tree_is_a_tree_with_contiguous_subtrees() {
        for w in 1..70 {
            let mut seen_parent = vec![0; w];
            for r in 0..w {
                let (p, l, rt) = range_tree(w, r);
                assert_eq!(p.is_none(), r == 0);
                for c in [l, rt].into_iter().flatten() {
                    assert_eq!(range_tree(w, c).0, Some(r), "w {w} r {r} c {c}");
                    seen_parent[c] += 1;
                }
            }
            assert!(
                seen_parent.iter().skip(1).all(|&k| k == 1),
                "every rank but the root has one parent"
            );
        }
        // 256 ranks: the root's right subtree is the second half.
        assert_eq!(range_tree(256, 0), (None, Some(1), Some(129)));
    }
}
