//! Element types a kernel can use.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An element type of a tile or a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    /// IEEE 754 single precision.
    F32,
    /// IEEE 754 half precision.
    F16,
    /// bfloat16.
    Bf16,
    /// 32-bit signed integer.
    I32,
    /// A mask element: 0 or 1, one byte. Comparisons give tiles of it; it
    /// has no arithmetic (see ADR 0011). Not a collective or command-line type.
    Bool,
}

impl DType {
    /// Bytes per element.
    pub const fn size(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::Bf16 => 2,
            DType::Bool => 1,
        }
    }

    /// The lower-case name used in the text form and on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::Bf16 => "bf16",
            DType::I32 => "i32",
            DType::Bool => "bool",
        }
    }

    /// The type a dot product of this type accumulates in (masks have no
    /// dot product; the graph builder refuses one).
    pub const fn accumulator(self) -> DType {
        match self {
            DType::I32 => DType::I32,
            DType::Bool => DType::Bool,
            _ => DType::F32,
        }
    }

    /// `true` for the types with arithmetic (every type but [`DType::Bool`]).
    pub const fn is_numeric(self) -> bool {
        !matches!(self, DType::Bool)
    }

    /// `true` for the floating-point types.
    pub const fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F16 | DType::Bf16)
    }

    /// Parses `f32`, `f16`, `bf16`, `i32` (and the nccl-tests spellings `float`, `half`, `bfloat16`, `int32`).
    /// `bool` is not parsed: it is the type of kernel masks, not of buffers a
    /// collective or the command line works on.
    pub fn parse(s: &str) -> Option<DType> {
        Some(match s {
            "f32" | "float" | "float32" => DType::F32,
            "f16" | "half" | "float16" => DType::F16,
            "bf16" | "bfloat16" => DType::Bf16,
            "i32" | "int" | "int32" => DType::I32,
            _ => return None,
        })
    }

    /// Rounds an `f32` to the nearest value representable in this type.
    pub fn round(self, v: f32) -> f32 {
        match self {
            DType::F32 => v,
            DType::F16 => half::f16::from_f32(v).to_f32(),
            DType::Bf16 => half::bf16::from_f32(v).to_f32(),
            DType::I32 => {
                if v.is_nan() {
                    0.0
                } else {
                    (v as i32) as f32
                }
            }
            DType::Bool => {
                if v != 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
        }
    }

    /// Encodes one value (already in range) as little-endian bytes into `out`.
    pub fn encode(self, v: f32, out: &mut [u8]) {
        match self {
            DType::F32 => out[..4].copy_from_slice(&v.to_le_bytes()),
            DType::I32 => out[..4].copy_from_slice(&(v as i32).to_le_bytes()),
            DType::F16 => out[..2].copy_from_slice(&half::f16::from_f32(v).to_le_bytes()),
            DType::Bf16 => out[..2].copy_from_slice(&half::bf16::from_f32(v).to_le_bytes()),
            DType::Bool => out[0] = u8::from(v != 0.0),
        }
    }

    /// Encodes `values` into `out` (`values.len() * size()` bytes), one
    /// dispatch on the type for the whole slice.
    pub fn encode_slice(self, values: &[f32], out: &mut [u8]) {
        let es = self.size();
        let out = &mut out[..values.len() * es];
        match self {
            DType::F32 => {
                for (o, v) in out.chunks_exact_mut(4).zip(values) {
                    o.copy_from_slice(&v.to_le_bytes());
                }
            }
            DType::I32 => {
                for (o, v) in out.chunks_exact_mut(4).zip(values) {
                    o.copy_from_slice(&(*v as i32).to_le_bytes());
                }
            }
            DType::F16 => {
                for (o, v) in out.chunks_exact_mut(2).zip(values) {
                    o.copy_from_slice(&half::f16::from_f32(*v).to_le_bytes());
                }
            }
            DType::Bf16 => {
                for (o, v) in out.chunks_exact_mut(2).zip(values) {
                    o.copy_from_slice(&half::bf16::from_f32(*v).to_le_bytes());
                }
            }
            DType::Bool => {
                for (o, v) in out.iter_mut().zip(values) {
                    *o = u8::from(*v != 0.0);
                }
            }
        }
    }

    /// Decodes whole values of `bytes`, appending them to `out`.
    pub fn decode_into(self, bytes: &[u8], out: &mut Vec<f32>) {
        match self {
            DType::F32 => out.extend(
                bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            ),
            DType::I32 => out.extend(
                bytes
                    .chunks_exact(4)
                    .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32),
            ),
            DType::F16 => out.extend(
                bytes
                    .chunks_exact(2)
                    .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()),
            ),
            DType::Bf16 => out.extend(
                bytes
                    .chunks_exact(2)
                    .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()),
            ),
            DType::Bool => out.extend(bytes.iter().map(|b| if *b != 0 { 1.0 } else { 0.0 })),
        }
    }

    /// Decodes one little-endian value.
    pub fn decode(self, b: &[u8]) -> f32 {
        match self {
            DType::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            DType::I32 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32,
            DType::F16 => half::f16::from_le_bytes([b[0], b[1]]).to_f32(),
            DType::Bf16 => half::bf16::from_le_bytes([b[0], b[1]]).to_f32(),
            DType::Bool => {
                if b[0] != 0 {
                    1.0
                } else {
                    0.0
                }
            }
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_are_one_byte_of_zero_or_one() {
        let d = DType::Bool;
        assert_eq!(d.size(), 1);
        assert_eq!(
            [d.round(0.0), d.round(-2.5), d.round(f32::NAN)],
            [0.0, 1.0, 1.0]
        );
        let mut bytes = [7u8; 3];
        d.encode_slice(&[0.0, 3.0, -0.0], &mut bytes);
        assert_eq!(bytes, [0, 1, 0]);
        let mut out = Vec::new();
        d.decode_into(&[0, 1, 9], &mut out);
        assert_eq!(out, [0.0, 1.0, 1.0]);
        assert_eq!(DType::parse("bool"), None);
        assert!(!d.is_numeric() && !d.is_float() && DType::I32.is_numeric());
    }
}
