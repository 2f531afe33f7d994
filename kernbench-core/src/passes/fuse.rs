//! Epilogue fusion: an elementwise tail after a GEMM becomes steps of the
//! GEMM's epilogue, so it runs on each output tile as the tile leaves the
//! GEMM engine instead of as separate MATH commands over the whole product.
//!
//! A tail command folds into the `dot` (or `gemm`) whose value it reads when
//! all of these hold:
//!
//! - **One user.** The product is read by that command alone: nothing else
//!   sees the value before the tail.
//! - **A step the epilogue has.** The tail is one of
//!
//!   | tail | epilogue step |
//!   | --- | --- |
//!   | `add p, x` or `add x, p`, `x` a tile that broadcasts to `p` | `bias(x)` |
//!   | `mul p, s` or `mul s, p`, `s` a scalar | `scale(s)` |
//!   | `relu p`, or `max p, 0.0` | `relu` |
//!   | `gelu p` | `gelu` |
//!   | `cast p` to a number type | `cast(T)` |
//!
//! - **Shapes match.** The tail's result has the product's shape (a bias
//!   that would stretch the product, e.g. `[M, N] + [B, M, N]`, stays a MATH
//!   command).
//! - **Types hold.** The product is `f32`, where every intermediate value of
//!   the unfused form is exact in the accumulator, so the fused command
//!   computes the same numbers bit for bit (an `i32` product would round
//!   after every step unfused, and once fused). A bias has the product's
//!   type. A `cast` ends the epilogue: nothing folds after it.
//! - **No side-effect order.** Neither command carries an ordering edge.
//! - **Worth it on the machine.** An epilogue runs once per GEMM output tile
//!   (`gemm_tile` of the PE), while a separate elementwise command runs in
//!   pieces of `tile_bytes / 4` elements that the write-back follows piece by
//!   piece. A product of one output tile larger than such a piece would lose
//!   that overlap, so it keeps its tail; a product of several output tiles
//!   gains more (each tile's epilogue overlaps the next tile's GEMM steps),
//!   and one of a single small tile loses nothing.
//!
//! Folding repeats, so `relu(p * 0.5 + bias)` becomes one command with
//! `epilogue[scale(0.5), bias(%b), relu]`. The fused command keeps the GEMM's
//! source line and stands where the GEMM stood, or where the tail stood when
//! the bias is computed after the GEMM; ids are renumbered in program order.
//!
//! What changes in the run: the tail no longer has its own issue, its own
//! pass over the whole product on MATH after the last GEMM step, nor its own
//! TCM tile; each epilogue step costs one MATH pass per element of each
//! output tile (`gelu` the passes of its command; see [`super::cost`]),
//! overlapped with the GEMM steps of the next tiles.

use crate::ir::{
    broadcasts_to, CmdId, Command, CommandGraph, DepKind, Epilogue, MathOp, Node, Operand,
};
use crate::topology::PeSpec;
use crate::DType;
use petgraph::graph::{DiGraph, NodeIndex};

/// Folds every elementwise tail that legally and profitably can into its
/// GEMM's epilogue, for a PE of `spec` (see the module documentation for the
/// rules). A graph with nothing to fold is returned as it came.
pub fn fuse_epilogues(g: CommandGraph, spec: &PeSpec) -> CommandGraph {
    // Most graphs have no math command reading a product: leave them as
    // they are without counting uses.
    let is_dot = |v: &Operand| match v {
        Operand::Value(v) => matches!(
            g.graph
                .node_weight(NodeIndex::new(v.index()))
                .map(|n| &n.cmd),
            Some(Command::Dot { .. })
        ),
        Operand::Scalar(_) => false,
    };
    let candidate = g.graph.node_weights().any(|n| match &n.cmd {
        Command::Math { args, .. } => args.iter().any(is_dot),
        _ => false,
    });
    if !candidate {
        return g;
    }
    let n = g.len();
    let mut uses = vec![0u32; n];
    let mut ordered = vec![false; n];
    for (_, node) in g.nodes() {
        for v in node.cmd.operands() {
            uses[v.index()] += 1;
        }
    }
    for e in g.graph.raw_edges() {
        if e.weight == DepKind::Order {
            ordered[e.source().index()] = true;
            ordered[e.target().index()] = true;
        }
    }
    let CommandGraph { header, graph } = g;
    let (raw_nodes, raw_edges) = graph.into_nodes_edges();
    let mut slots: Vec<Option<Node>> = raw_nodes.into_iter().map(|n| Some(n.weight)).collect();
    // Where the value first computed at each slot lives now.
    let mut alias: Vec<u32> = (0..n as u32).collect();
    let mut folded = 0usize;
    for j in 0..n {
        if let Some(node) = slots[j].as_mut() {
            remap(&mut node.cmd, &alias);
        }
        let Some((d, step)) = fold_step(&slots, j, &uses, &ordered, spec) else {
            continue;
        };
        let dot = slots[d].take().expect("the product is live");
        let tail = slots[j].take().expect("the tail is live");
        let Command::Dot {
            a,
            b,
            acc,
            mut epilogue,
        } = dot.cmd
        else {
            unreachable!("fold_step gives a dot")
        };
        let late_bias = matches!(step, Epilogue::Bias(x) if x.index() > d);
        epilogue.push(step);
        let at = if late_bias { j } else { d };
        slots[at] = Some(Node {
            cmd: Command::Dot {
                a,
                b,
                acc,
                epilogue,
            },
            ty: tail.ty,
            loc: dot.loc,
        });
        uses[at] = uses[j];
        alias[j] = at as u32;
        alias[d] = at as u32;
        folded += 1;
    }
    // Renumber the live commands in program order.
    let mut new_id = vec![u32::MAX; n];
    let mut next = 0u32;
    for (i, slot) in slots.iter().enumerate() {
        if slot.is_some() {
            new_id[i] = next;
            next += 1;
        }
    }
    let id_of = |v: usize| new_id[resolve(&alias, v as u32) as usize];
    let mut graph = DiGraph::with_capacity(n - folded, raw_edges.len());
    for mut node in slots.into_iter().flatten() {
        renumber(&mut node.cmd, &|c: CmdId| CmdId(id_of(c.index())));
        graph.add_node(node);
    }
    // Dependencies keep their order; the product's edge to its tail goes,
    // and the edges of both land on the fused command.
    for e in &raw_edges {
        let (s, t) = (id_of(e.source().index()), id_of(e.target().index()));
        if s == t {
            continue;
        }
        let (s, t) = (NodeIndex::new(s as usize), NodeIndex::new(t as usize));
        match graph.find_edge(s, t) {
            None => {
                graph.add_edge(s, t, e.weight);
            }
            Some(ix) if e.weight == DepKind::Data => graph[ix] = DepKind::Data,
            Some(_) => {}
        }
    }
    CommandGraph { header, graph }
}

/// The live slot a value computed at `v` is now in.
fn resolve(alias: &[u32], mut v: u32) -> u32 {
    while alias[v as usize] != v {
        v = alias[v as usize];
    }
    v
}

/// Points every operand of `cmd` at the slot its value lives in now.
fn remap(cmd: &mut Command, alias: &[u32]) {
    renumber(cmd, &|c: CmdId| CmdId(resolve(alias, c.0)));
}

/// Rewrites every value operand of `cmd` with `f`.
fn renumber(cmd: &mut Command, f: &dyn Fn(CmdId) -> CmdId) {
    match cmd {
        Command::Load { mask, .. } => {
            if let Some(m) = mask {
                m.mask = f(m.mask);
            }
        }
        Command::Stream { .. }
        | Command::Full { .. }
        | Command::Arange { .. }
        | Command::Recv { .. } => {}
        Command::Store { value, mask, .. } => {
            *value = f(*value);
            if let Some(m) = mask {
                *m = f(*m);
            }
        }
        Command::Send { value, .. } => *value = f(*value),
        Command::Dot {
            a,
            b,
            acc,
            epilogue,
        } => {
            *a = f(*a);
            *b = f(*b);
            if let Some(c) = acc {
                *c = f(*c);
            }
            for e in epilogue {
                if let Epilogue::Bias(x) = e {
                    *x = f(*x);
                }
            }
        }
        Command::Math { args, .. } => {
            for a in args {
                if let Operand::Value(v) = a {
                    *v = f(*v);
                }
            }
        }
        Command::Reduce { x, .. }
        | Command::Softmax { x, .. }
        | Command::Reshape { x }
        | Command::Broadcast { x }
        | Command::Trans { x } => *x = f(*x),
        Command::Wait { future } => *future = f(*future),
    }
}

/// When command `j` is a tail that folds into a product, that product's
/// slot and the epilogue step the tail becomes.
fn fold_step(
    slots: &[Option<Node>],
    j: usize,
    uses: &[u32],
    ordered: &[bool],
    spec: &PeSpec,
) -> Option<(usize, Epilogue)> {
    let tail = slots[j].as_ref()?;
    let Command::Math { op, args } = &tail.cmd else {
        return None;
    };
    if ordered[j] {
        return None;
    }
    // The product: a dot read by this command alone.
    let product = |v: &Operand| -> Option<(usize, &Node)> {
        let Operand::Value(v) = v else { return None };
        let d = v.index();
        let node = slots.get(d)?.as_ref()?;
        let Command::Dot { epilogue, .. } = &node.cmd else {
            return None;
        };
        let open = !matches!(epilogue.last(), Some(Epilogue::Cast(_)));
        let ok = open
            && uses[d] == 1
            && !ordered[d]
            && node.ty.dtype == DType::F32
            && node.ty.shape == tail.ty.shape
            && worth_it(&node.ty.shape, spec);
        ok.then_some((d, node))
    };
    let arith = tail.ty.dtype == DType::F32;
    match (op, args.as_slice()) {
        (MathOp::Add, [x, y]) if arith => {
            let (d, p, other) = match (product(x), product(y)) {
                (Some((d, p)), _) => (d, p, y),
                (None, Some((d, p))) => (d, p, x),
                (None, None) => return None,
            };
            let Operand::Value(bias) = other else {
                return None;
            };
            let bt = &slots.get(bias.index())?.as_ref()?.ty;
            (bt.dtype == p.ty.dtype && broadcasts_to(&bt.shape, &p.ty.shape))
                .then_some((d, Epilogue::Bias(*bias)))
        }
        (MathOp::Mul, [x, Operand::Scalar(s)]) | (MathOp::Mul, [Operand::Scalar(s), x])
            if arith =>
        {
            product(x).map(|(d, _)| (d, Epilogue::Scale(*s)))
        }
        (MathOp::Relu, [x]) if arith => product(x).map(|(d, _)| (d, Epilogue::Relu)),
        (MathOp::Gelu, [x]) if arith => product(x).map(|(d, _)| (d, Epilogue::Gelu)),
        // max(p, +0.0) is relu element for element (the product first, as
        // `relu` computes it; a -0.0 bound may differ at zero).
        (MathOp::Max, [x, Operand::Scalar(z)]) if arith && z.to_bits() == 0 => {
            product(x).map(|(d, _)| (d, Epilogue::Relu))
        }
        (MathOp::Cast, [x]) if tail.ty.dtype.is_numeric() => {
            product(x).map(|(d, _)| (d, Epilogue::Cast(tail.ty.dtype)))
        }
        _ => None,
    }
}

/// Whether a product of `shape` gains from an epilogue on a PE of `spec`:
/// it has several output tiles, or its one output tile fits in one piece of
/// elementwise work.
fn worth_it(shape: &[usize], spec: &PeSpec) -> bool {
    let (m, n) = (shape[0], shape[1]);
    let tm = (spec.gemm_tile[0].max(1) as usize).min(m);
    let tn = (spec.gemm_tile[2].max(1) as usize).min(n);
    let tiles = m.div_ceil(tm) * n.div_ceil(tn);
    tiles > 1 || tm * tn <= super::lower::seg_elems(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{GraphBuilder, GraphHeader, MemRef, SrcLoc, TileType, TraceLimits, View};

    fn loc(line: u32) -> SrcLoc {
        SrcLoc {
            file: "k.rs".into(),
            line,
            col: 1,
        }
    }

    fn builder() -> GraphBuilder {
        let header = GraphHeader {
            kernel: "k".into(),
            params: vec![],
            grid: vec![1],
            pid: vec![0],
        };
        GraphBuilder::new(header, TraceLimits::default())
    }

    fn region(name: &'static str, dtype: DType, shape: &[usize]) -> MemRef {
        MemRef {
            param: 0,
            name: name.into(),
            base_va: 0x1000_0000,
            view: View::Flat { offset: 0 },
            dtype,
            shape: shape.into(),
        }
    }

    /// `a x b` of `[m, k] x [k, n]` tiles of `dtype`.
    fn product(b: &mut GraphBuilder, dtype: DType, m: usize, n: usize) -> CmdId {
        let l = loc(1);
        let x = b.full(1.0, TileType::new(dtype, vec![m, 8]), &l).unwrap();
        let y = b.full(1.0, TileType::new(dtype, vec![8, n]), &l).unwrap();
        b.dot(x, y, None, vec![], &l).unwrap()
    }

    fn fused(b: GraphBuilder) -> String {
        fuse_epilogues(b.finish(), &PeSpec::default()).to_text()
    }

    #[test]
    fn a_chain_folds_in_order_and_users_follow() {
        let mut b = builder();
        let bias = b
            .full(0.5, TileType::new(DType::F32, vec![16, 1]), &loc(2))
            .unwrap();
        let p = product(&mut b, DType::F32, 16, 32);
        let s = b
            .math(
                MathOp::Mul,
                vec![Operand::Scalar(2.0), Operand::Value(p)],
                None,
                &loc(3),
            )
            .unwrap();
        let t = b
            .math(
                MathOp::Add,
                vec![Operand::Value(bias), Operand::Value(s)],
                None,
                &loc(4),
            )
            .unwrap();
        let r = b
            .math(
                MathOp::Max,
                vec![Operand::Value(t), Operand::Scalar(0.0)],
                None,
                &loc(5),
            )
            .unwrap();
        b.store(region("y", DType::F32, &[16, 32]), r, &loc(6))
            .unwrap();
        let text = fused(b);
        assert!(
            text.contains(
                "%3 = dot %1, %2 epilogue[scale(2.0), bias(%0), relu] : tile<f32,[16,32]>"
            ),
            "{text}"
        );
        assert!(text.contains("%4 = store y[+0] %3"), "{text}");
        assert_eq!(text.lines().count(), 6, "{text}");
    }

    #[test]
    fn a_bias_computed_after_the_product_moves_the_product_to_the_tail() {
        let mut b = builder();
        let p = product(&mut b, DType::F32, 4, 8);
        let bias = b
            .full(0.5, TileType::new(DType::F32, vec![8]), &loc(2))
            .unwrap();
        let t = b
            .math(
                MathOp::Add,
                vec![Operand::Value(p), Operand::Value(bias)],
                None,
                &loc(3),
            )
            .unwrap();
        b.store(region("y", DType::F32, &[4, 8]), t, &loc(4))
            .unwrap();
        let g = fuse_epilogues(b.finish(), &PeSpec::default());
        let text = g.to_text();
        assert!(text.contains("%2 = full 0.5"), "{text}");
        assert!(
            text.contains("%3 = dot %0, %1 epilogue[bias(%2)] : tile<f32,[4,8]>"),
            "{text}"
        );
        assert_eq!(
            g.deps(CmdId(3)),
            vec![
                (CmdId(0), DepKind::Data),
                (CmdId(1), DepKind::Data),
                (CmdId(2), DepKind::Data)
            ]
        );
        assert_eq!(g.deps(CmdId(4)), vec![(CmdId(3), DepKind::Data)]);
    }

    #[test]
    fn what_is_not_legal_stays_on_math() {
        type Build = Box<dyn Fn(&mut GraphBuilder)>;
        let cases: Vec<(&str, Build)> = vec![
            (
                "a product with two users",
                Box::new(|b| {
                    let p = product(b, DType::F32, 4, 8);
                    let r = b.math(MathOp::Relu, vec![Operand::Value(p)], None, &loc(2));
                    b.store(region("y", DType::F32, &[4, 8]), r.unwrap(), &loc(3))
                        .unwrap();
                    b.store(region("z", DType::F32, &[4, 8]), p, &loc(4))
                        .unwrap();
                }),
            ),
            (
                "an i32 product",
                Box::new(|b| {
                    let p = product(b, DType::I32, 4, 8);
                    b.math(MathOp::Relu, vec![Operand::Value(p)], None, &loc(2))
                        .unwrap();
                }),
            ),
            (
                "a bias that stretches the product",
                Box::new(|b| {
                    let p = product(b, DType::F32, 4, 8);
                    let x = b
                        .full(1.0, TileType::new(DType::F32, vec![2, 4, 8]), &loc(2))
                        .unwrap();
                    b.math(
                        MathOp::Add,
                        vec![Operand::Value(p), Operand::Value(x)],
                        None,
                        &loc(3),
                    )
                    .unwrap();
                }),
            ),
            (
                "a scalar add",
                Box::new(|b| {
                    let p = product(b, DType::F32, 4, 8);
                    b.math(
                        MathOp::Add,
                        vec![Operand::Value(p), Operand::Scalar(1.0)],
                        None,
                        &loc(2),
                    )
                    .unwrap();
                }),
            ),
            (
                "max with -0.0",
                Box::new(|b| {
                    let p = product(b, DType::F32, 4, 8);
                    b.math(
                        MathOp::Max,
                        vec![Operand::Value(p), Operand::Scalar(-0.0)],
                        None,
                        &loc(2),
                    )
                    .unwrap();
                }),
            ),
            (
                "an op the epilogue lacks",
                Box::new(|b| {
                    let p = product(b, DType::F32, 4, 8);
                    b.math(MathOp::Exp, vec![Operand::Value(p)], None, &loc(2))
                        .unwrap();
                }),
            ),
            (
                "one output tile larger than an elementwise piece",
                Box::new(|b| {
                    let p = product(b, DType::F32, 128, 128);
                    b.math(MathOp::Relu, vec![Operand::Value(p)], None, &loc(2))
                        .unwrap();
                }),
            ),
        ];
        for (what, build) in cases {
            let mut b = builder();
            build(&mut b);
            let before = b.finish();
            let text = before.to_text();
            let after = fuse_epilogues(before, &PeSpec::default());
            assert_eq!(after.to_text(), text, "{what} was fused");
        }
    }

    #[test]
    fn nothing_folds_after_a_cast() {
        let mut b = builder();
        let p = product(&mut b, DType::F32, 4, 8);
        let c = b
            .math(
                MathOp::Cast,
                vec![Operand::Value(p)],
                Some(DType::F16),
                &loc(2),
            )
            .unwrap();
        b.math(
            MathOp::Mul,
            vec![Operand::Value(c), Operand::Scalar(2.0)],
            None,
            &loc(3),
        )
        .unwrap();
        let text = fused(b);
        assert!(
            text.contains("%2 = dot %0, %1 epilogue[cast(f16)] : tile<f16,[4,8]>"),
            "{text}"
        );
        assert!(
            text.contains("%3 = mul %2, 2.0 : tile<f16,[4,8]>"),
            "{text}"
        );
    }

    #[test]
    fn several_output_tiles_fold_even_when_each_is_large() {
        let mut b = builder();
        let p = product(&mut b, DType::F32, 256, 128);
        b.math(MathOp::Relu, vec![Operand::Value(p)], None, &loc(2))
            .unwrap();
        assert!(fused(b).contains("epilogue[relu]"));
    }
}
