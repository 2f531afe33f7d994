//! The compiler passes: from a launch to the programs the simulator runs.
//! Each pass is a function in its own file; `compile()` runs them in order
//! for a run, and [`inspect`] runs them keeping every pass's result for
//! reading (`kernbench graph --after PASS` prints them).
//!
//! - [`trace`]: runs each program instance to record its command graph.
//! - [`fuse`]: folds an elementwise tail after a GEMM into its epilogue.
//! - [`lower`]: turns one instance's graph into engine ops (its tile plans),
//!   charging MATH work by the pass counts of [`cost`].
//! - [`tcm`]: places each tile of an instance in the PE's TCM.
//! - [`pair`]: pairs the sends of a launch with its receives, as channels.
//! - `route`: the fabric routes of remote DMAs and channels.
//!
//! Errors are [`CompileError`]s, which name the PE and kernel line; a run
//! turns each into the [`crate::sim::SimError`] variant of the same name.

mod compile;
pub mod cost;
pub mod error;
pub mod fuse;
pub mod lower;
pub mod pair;
pub(crate) mod route;
mod shape;
pub mod tcm;
pub mod trace;

pub(crate) use compile::{
    bound_program, compile, compile_instance, par_map, par_map_grain, Binding, Compiled, Interner,
    PcTable, TEMPLATE_COMMANDS,
};
pub use compile::{bound_programs, inspect, lowered_alone, Compilation};
pub use error::CompileError;
pub use fuse::fuse_epilogues;

/// Rows of cells as text, each column padded to its widest cell (the last
/// column unpadded), the columns two spaces apart: how every pass prints.
pub(crate) fn columns(rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = Vec::new();
    for row in rows {
        for (c, cell) in row.iter().enumerate() {
            match width.get_mut(c) {
                Some(w) => *w = (*w).max(cell.chars().count()),
                None => width.push(cell.chars().count()),
            }
        }
    }
    let mut s = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                let pad = width[c] - cell.chars().count() + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        s.push_str(line.trim_end());
        s.push('\n');
    }
    s
}
