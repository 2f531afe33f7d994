//! What a long run reports while it goes, for progress bars.

use crate::Ps;
use std::sync::Arc;

/// A step of a run's progress.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Progress {
    /// Instances traced and lowered so far, of all.
    Compiled {
        /// Done.
        done: usize,
        /// In all.
        of: usize,
    },
    /// Events handled so far, and the simulated time reached.
    Simulated {
        /// Events handled.
        events: u64,
        /// Simulated time, ps.
        now_ps: Ps,
    },
}

/// Where a run sends its [`Progress`]: nowhere by default. The callback may
/// be called from the compiler's worker threads; it never changes a result.
#[derive(Clone, Default)]
pub struct ProgressHook(Option<Arc<dyn Fn(Progress) + Send + Sync>>);

impl ProgressHook {
    /// A hook calling `f`.
    pub fn new(f: impl Fn(Progress) + Send + Sync + 'static) -> Self {
        ProgressHook(Some(Arc::new(f)))
    }

    /// Reports `p`, if anyone listens.
    pub fn report(&self, p: Progress) {
        if let Some(f) = &self.0 {
            f(p);
        }
    }

    /// `true` when someone listens.
    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }
}

impl std::fmt::Debug for ProgressHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "ProgressHook(set)"
        } else {
            "ProgressHook(none)"
        })
    }
}

/// Events between two [`Progress::Simulated`] reports.
pub const EVENTS_PER_REPORT: u64 = 1 << 20;
