//! What MATH work costs: the passes over elements that lowering charges the
//! MATH engine for each command that runs on it.
//!
//! A pass moves every element once through a MATH lane, so `p` passes over
//! `e` elements take `p * e / (pe.math_lanes * pe.clock_ghz)` ns. Simple
//! operations take one pass. Special functions (`exp2`, `log2`, `sqrt`,
//! `rsqrt`) take `S = pe.math_special_passes` passes, a figure of the
//! topology file (see [`PeSpec::math_special_passes`] for where its
//! default comes from); functions built from them add the simple passes of
//! their formula:
//!
//! | command | passes per element |
//! | --- | --- |
//! | `add sub mul div max min fma clamp neg relu abs cast` | 1 |
//! | `lt le gt ge eq ne`, `and or xor not`, `where` | 1 |
//! | `full`, `arange` | 1 (of the result) |
//! | `exp2 log2 sqrt rsqrt` | S |
//! | `exp`, `log` (a scale by log2(e) or ln(2), and exp2 or log2) | 1 + S |
//! | `sigmoid` (`1 / (1 + exp2(-x * log2 e))`: scale, exp2, add, divide) | 3 + S |
//! | `tanh` (`2 * sigmoid(2x) - 1`: the sigmoid and one fused multiply-add) | 4 + S |
//! | `gelu` (tanh form, `x * sigmoid(2 k (x + 0.044715 x^3))`: square, fused multiply-add, multiply, the sigmoid, multiply) | 7 + S |
//! | `pow` (`exp2(b * log2 a)`) | 1 + 2S |
//! | `sum`, `max`, `min` along an axis | 1 (of the input) |
//! | `argmax`, `argmin` (compare, and carry the index) | 2 (of the input) |
//! | `softmax` (max, subtract, exp, sum, divide) | 5 (of the input) |
//! | `trans` (every element through MATH once, to its transposed place) | 1 |
//! | `reshape`, `expand_dims`, `broadcast_to` | 0: views, no engine time |
//! | a masked `load` (select the loaded tile with the mask) | 1, after the DMA |
//! | a masked `store` (the DMA writes with byte enables) | 0 |
//! | a GEMM epilogue: `bias scale relu cast`, each step | 1 (of each output tile, after its last GEMM step) |
//! | a GEMM epilogue's `gelu` step | 7 + S (of each output tile), as the `gelu` command |
//!
//! An elementwise command is charged per element of its result: an operand
//! broadcast to it (a `[rows, 1]` column or a `[cols]` row) is read in place
//! from its tile, once per row or column it is spread over, at no extra
//! pass. The `softmax` composite keeps its five simple passes (its `exp`
//! counted as one), as its simulated times were calibrated with them.
//!
//! [`PeSpec::math_special_passes`]: crate::topology::PeSpec::math_special_passes

use crate::ir::{Command, Epilogue, MathOp, ReduceOp};
use crate::topology::PeSpec;

/// Passes per element of an elementwise operation (see the module table).
pub fn math_passes(op: MathOp, spec: &PeSpec) -> usize {
    use MathOp::*;
    let s = spec.math_special_passes.max(1) as usize;
    match op {
        Exp2 | Log2 | Sqrt | Rsqrt => s,
        Exp | Log => 1 + s,
        Sigmoid => 3 + s,
        Tanh => 4 + s,
        // 0.5 x (1 + tanh(w)) = x sigmoid(2 w), w = k (x + 0.044715 x^3):
        // x * x, an fma for 2k + 2k 0.044715 x^2, a multiply by x, the
        // sigmoid, and the multiply by x.
        Gelu => 7 + s,
        Pow => 1 + 2 * s,
        Add | Sub | Mul | Div | Max | Min | Fma | Clamp | Neg | Relu | Abs | Cast | Lt | Le
        | Gt | Ge | Eq | Ne | And | Or | Xor | Not | Where => 1,
    }
}

/// Passes per element of an output tile for a GEMM epilogue: per step,
/// what the MATH command it stands for takes (one for `add`, `mul`,
/// `relu`, `cast`; [`math_passes`] of `gelu` for a GELU step).
pub fn epilogue_passes(epilogue: &[Epilogue], spec: &PeSpec) -> usize {
    epilogue
        .iter()
        .map(|e| match e {
            Epilogue::Gelu => math_passes(MathOp::Gelu, spec),
            Epilogue::Bias(_) | Epilogue::Scale(_) | Epilogue::Relu | Epilogue::Cast(_) => 1,
        })
        .sum()
}

/// Passes per input element of a reduction.
pub fn reduce_passes(op: ReduceOp) -> usize {
    match op {
        ReduceOp::Sum | ReduceOp::Max | ReduceOp::Min => 1,
        ReduceOp::Argmax | ReduceOp::Argmin => 2,
    }
}

/// Passes per element of the MATH work of a command (of its result for
/// elementwise work, of its input for reductions, softmax and transposes;
/// for a masked load, the select after its DMA). Commands without MATH work
/// give 0.
pub fn passes(cmd: &Command, spec: &PeSpec) -> usize {
    match cmd {
        Command::Math { op, .. } => math_passes(*op, spec),
        Command::Full { .. } | Command::Arange { .. } | Command::Trans { .. } => 1,
        Command::Reduce { op, .. } => reduce_passes(*op),
        Command::Softmax { .. } => 5,
        Command::Load { mask: Some(_), .. } => 1,
        Command::Load { mask: None, .. }
        | Command::Stream { .. }
        | Command::Store { .. }
        | Command::Reshape { .. }
        | Command::Broadcast { .. }
        | Command::Dot { .. }
        | Command::Send { .. }
        | Command::Recv { .. }
        | Command::Wait { .. } => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_functions_scale_with_the_topology_figure() {
        let mut spec = PeSpec::default();
        assert_eq!(math_passes(MathOp::Add, &spec), 1);
        assert_eq!(math_passes(MathOp::Rsqrt, &spec), 4);
        assert_eq!(math_passes(MathOp::Exp, &spec), 5);
        assert_eq!(math_passes(MathOp::Pow, &spec), 9);
        spec.math_special_passes = 8;
        assert_eq!(math_passes(MathOp::Log2, &spec), 8);
        assert_eq!(math_passes(MathOp::Tanh, &spec), 12);
        assert_eq!(math_passes(MathOp::Gelu, &spec), 15);
        let ep = [
            Epilogue::Relu,
            Epilogue::Gelu,
            Epilogue::Cast(crate::DType::F16),
        ];
        assert_eq!(epilogue_passes(&ep, &spec), 1 + 15 + 1);
        assert_eq!(math_passes(MathOp::Lt, &spec), 1);
        assert_eq!(reduce_passes(ReduceOp::Argmax), 2);
    }
}
