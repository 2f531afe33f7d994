//! Runs a generator's cases through a check with a fixed seed, a bound on
//! each case's wall time, and a report that names the seed and the shrunk input.

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngAlgorithm, RngSeed, TestCaseError, TestError, TestRunner};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::{mpsc, Mutex, Once};
use std::time::{Duration, Instant};

/// A case still running after this long is taken for a hang: the process
/// prints it and aborts, rather than leave the suite waiting for ever.
const HANG: Duration = Duration::from_secs(60);

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    let parsed = match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => v.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={v} is not a whole number")))
}

/// Runs `cases` cases of `strategy` through `check` (an `Err` or a panic is a
/// failure; `Ok` names how the case ended, for the closing tally), from
/// `seed` unless `KERNBENCH_FUZZ_SEED` gives another. On a failure, panics
/// with the seed, the reason and the shrunk input.
pub fn fuzz<S>(
    name: &str,
    seed: u64,
    cases: u32,
    strategy: S,
    check: impl Fn(&S::Value) -> Result<&'static str, String>,
) where
    S: Strategy,
    S::Value: Clone + Debug + Send + 'static,
{
    let seed = env_u64("KERNBENCH_FUZZ_SEED").unwrap_or(seed);
    let cases =
        env_u64("KERNBENCH_FUZZ_CASES").map_or(cases, |n| u32::try_from(n).unwrap_or(u32::MAX));
    let config = Config {
        cases,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        fork: false,
        timeout: 0,
        max_shrink_time: 60_000,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let (tx, rx) = mpsc::channel::<Option<S::Value>>();
    let label = name.to_string();
    let watchdog = std::thread::spawn(move || watch(&label, seed, rx));
    let start = Instant::now();
    record_panic_locations();
    // How the cases ended, to show what a run exercised.
    let seen: Mutex<BTreeMap<&'static str, u32>> = Mutex::new(BTreeMap::new());
    let result = runner.run(&strategy, |case| {
        let _ = tx.send(Some(case.clone()));
        let r = std::panic::catch_unwind(AssertUnwindSafe(|| check(&case)));
        let _ = tx.send(None);
        match r {
            Ok(Ok(outcome)) => {
                *seen
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(outcome)
                    .or_insert(0) += 1;
                Ok(())
            }
            Ok(Err(e)) => Err(TestCaseError::fail(e)),
            Err(payload) => {
                let msg = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".to_string());
                let at = LAST_PANIC
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .take()
                    .unwrap_or_default();
                Err(TestCaseError::fail(format!("panicked at {at}: {msg}")))
            }
        }
    });
    drop(tx);
    let _ = watchdog.join();
    let took = start.elapsed();
    match result {
        Ok(()) => {
            let seen = seen.into_inner().unwrap_or_else(|p| p.into_inner());
            let mix: Vec<String> = seen.iter().map(|(k, n)| format!("{k} {n}")).collect();
            eprintln!(
                "fuzz {name}: {cases} cases from seed {seed:#x} in {:.1} s ({})",
                took.as_secs_f64(),
                mix.join(", ")
            );
        }
        Err(TestError::Fail(reason, input)) => panic!(
            "fuzz {name} failed (seed {seed:#x}; rerun with KERNBENCH_FUZZ_SEED={seed:#x} \
             cargo test --test fuzz {name}): {reason}\nminimal input: {input:#?}"
        ),
        Err(TestError::Abort(reason)) => {
            panic!("fuzz {name} aborted (seed {seed:#x}): {reason}")
        }
    }
}

/// Where the last panic happened (any thread: a panic in a worker of the
/// simulator reaches the case's thread by `resume_unwind`, which runs no hook).
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Installs, once, a panic hook that records the location before printing as usual.
fn record_panic_locations() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(l) = info.location() {
                *LAST_PANIC.lock().unwrap_or_else(|p| p.into_inner()) = Some(l.to_string());
            }
            default(info);
        }));
    });
}

/// Waits on the runner's case messages; a case that starts and does not end
/// within [`HANG`] is printed and the process aborted.
fn watch<T: Debug>(name: &str, seed: u64, rx: mpsc::Receiver<Option<T>>) {
    let mut current: Option<T> = None;
    loop {
        let msg = if current.is_some() {
            match rx.recv_timeout(HANG) {
                Ok(m) => m,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    eprintln!(
                        "fuzz {name} (seed {seed:#x}): a case ran for more than {} s; \
                         taken for a hang:\n{current:#?}",
                        HANG.as_secs()
                    );
                    std::process::abort();
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        } else {
            match rx.recv() {
                Ok(m) => m,
                Err(_) => return,
            }
        };
        current = msg;
    }
}

/// A fresh folder under the system's temp dir, unique to this test and process.
pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kernbench-fuzz-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("the temp dir can be created");
    d
}
