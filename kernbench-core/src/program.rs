//! What the simulator runs: anything that traces into a command graph per program instance.

use crate::ir::{CommandGraph, KernelArgs, TraceError, TraceLimits};

/// A program the simulator can launch: it traces into one command graph per
/// program instance. Kernels written with `#[kernel]` implement it.
pub trait Program: Sync {
    /// Its name.
    fn name(&self) -> &str;
    /// The command graph of the instance at `pid` of `grid` under `args`.
    fn trace(
        &self,
        args: &KernelArgs,
        grid: &[u32],
        pid: &[u32],
    ) -> Result<CommandGraph, TraceError>;

    /// [`Program::trace`] under explicit limits (a launch splits its command
    /// budget over its instances). The default ignores the limits.
    fn trace_limited(
        &self,
        args: &KernelArgs,
        grid: &[u32],
        pid: &[u32],
        limits: TraceLimits,
    ) -> Result<CommandGraph, TraceError> {
        let _ = limits;
        self.trace(args, grid, pid)
    }
}
