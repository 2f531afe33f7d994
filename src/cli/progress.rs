//! A progress bar for long runs: on a terminal only, after about 2 s, and
//! never with `--quiet`.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use kernbench_core::sim::{Progress, ProgressHook};
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A run this long shows its progress.
const SHOW_AFTER: Duration = Duration::from_secs(2);

/// The bar of one run; it clears itself when dropped.
pub struct RunBar {
    bar: Option<ProgressBar>,
}

impl RunBar {
    /// A bar for a run, hidden when `quiet` or when stderr is not a terminal.
    pub fn new(quiet: bool) -> Self {
        let show = !quiet && std::io::stderr().is_terminal();
        RunBar {
            bar: show.then(|| {
                let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar
            }),
        }
    }

    /// The hook that feeds the bar (a no-op hook when hidden).
    pub fn hook(&self) -> ProgressHook {
        let Some(bar) = self.bar.clone() else {
            return ProgressHook::default();
        };
        let start = Instant::now();
        let shown = Arc::new(Mutex::new(false));
        ProgressHook::new(move |p| {
            if start.elapsed() < SHOW_AFTER {
                return;
            }
            let mut on = shown.lock().unwrap_or_else(|e| e.into_inner());
            if !*on {
                bar.set_draw_target(ProgressDrawTarget::stderr());
                bar.enable_steady_tick(Duration::from_millis(200));
                *on = true;
            }
            bar.set_message(describe(p));
        })
    }
}

impl Drop for RunBar {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// One line of progress.
pub fn describe(p: Progress) -> String {
    match p {
        Progress::Compiled { done, of } => format!("compiling: {done} of {of} instances"),
        Progress::Simulated { events, now_ps } => format!(
            "simulating: {:.1} M events, {:.3} us simulated",
            events as f64 / 1e6,
            now_ps as f64 / 1e6
        ),
    }
}
