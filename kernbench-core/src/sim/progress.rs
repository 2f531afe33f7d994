//! What a long run reports while it goes, for progress bars.

pub use crate::program::{Progress, ProgressHook};

/// Events between two [`Progress::Simulated`] reports.
pub const EVENTS_PER_REPORT: u64 = 1 << 20;
