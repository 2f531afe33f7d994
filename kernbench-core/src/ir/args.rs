//! Launch arguments, bound to a kernel's parameters by name.

use crate::DType;
use serde::{Deserialize, Serialize};
use std::fmt;

/// What kind of parameter a kernel declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamKind {
    /// `Ptr<T>`: a device pointer.
    Ptr,
    /// `Tensor<T>`: a device pointer with a 2D shape.
    Tensor,
    /// A plain scalar.
    Scalar,
    /// A `#[constexpr]` scalar: part of the specialisation key.
    Constexpr,
}

impl fmt::Display for ParamKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParamKind::Ptr => "pointer",
            ParamKind::Tensor => "tensor",
            ParamKind::Scalar => "scalar",
            ParamKind::Constexpr => "constexpr scalar",
        })
    }
}

/// One argument value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ArgValue {
    /// A device buffer: its virtual address (the same on every PE of a launch) and element type.
    Ptr {
        /// Virtual address.
        va: u64,
        /// Element type.
        dtype: DType,
        /// Elements the buffer holds (for bounds checks).
        len: usize,
    },
    /// A row-major 2D device tensor.
    Tensor {
        /// Virtual address.
        va: u64,
        /// Element type.
        dtype: DType,
        /// Shape (rows, cols).
        shape: [usize; 2],
    },
    /// An integer scalar.
    Int(i64),
    /// A floating-point scalar.
    Float(f64),
    /// A boolean scalar.
    Bool(bool),
}

impl ArgValue {
    /// What the value is, for error messages.
    pub fn describe(&self) -> String {
        match self {
            ArgValue::Ptr { dtype, .. } => format!("a pointer to {dtype}"),
            ArgValue::Tensor { dtype, shape, .. } => {
                format!("a {}x{} tensor of {dtype}", shape[0], shape[1])
            }
            ArgValue::Int(v) => format!("the integer {v}"),
            ArgValue::Float(v) => format!("the float {v}"),
            ArgValue::Bool(v) => format!("the boolean {v}"),
        }
    }
}

/// Arguments of one launch, by parameter name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KernelArgs {
    entries: Vec<(String, ArgValue)>,
}

impl KernelArgs {
    /// No arguments.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) an argument; chainable.
    pub fn with(mut self, name: &str, value: ArgValue) -> Self {
        self.set(name, value);
        self
    }

    /// Adds an integer argument; chainable.
    pub fn int(self, name: &str, v: i64) -> Self {
        self.with(name, ArgValue::Int(v))
    }

    /// Adds a float argument; chainable.
    pub fn float(self, name: &str, v: f64) -> Self {
        self.with(name, ArgValue::Float(v))
    }

    /// Sets an argument.
    pub fn set(&mut self, name: &str, value: ArgValue) {
        if let Some(e) = self.entries.iter_mut().find(|(n, _)| n == name) {
            e.1 = value;
        } else {
            self.entries.push((name.to_string(), value));
        }
    }

    /// The argument of a name.
    pub fn get(&self, name: &str) -> Option<&ArgValue> {
        self.entries.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// All arguments in the order they were given.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ArgValue)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v))
    }
}
