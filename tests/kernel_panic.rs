//! A panic inside a kernel body is one error at the kernel's line, reported
//! once for the launch, not printed by the panic hook for every PE.
//!
//! One test in its own binary: it installs a counting panic hook before any
//! kernel is traced, which would race with other tests' traces.

use kernbench::core::ir::TraceErrorKind;
use kernbench::core::sim::SimError;
use kernbench::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Panics on every instance whose slice is too short.
#[kernel]
fn picky(x: Ptr<f32>, n: usize) {
    let t = tl::load(x.offset(tl::program_id(0) * n), [n]);
    assert!(
        n >= 64,
        "n = {n} is below the 64 elements this kernel needs"
    );
    tl::store(x.offset(tl::program_id(0) * n), &t);
}

/// Indexes past the end of a `Vec` in its body.
#[kernel]
fn indexes_past_a_vec(x: Ptr<f32>, n: usize) {
    let t = tl::load(x, [n]);
    let parts: Vec<usize> = vec![n];
    tl::store(x, &(t * parts[3] as f64));
}

/// The 1-based line of this file that holds `what`.
fn line_of(what: &str) -> u32 {
    let at = include_str!("kernel_panic.rs")
        .lines()
        .position(|l| l.contains(what))
        .expect("the text is in this file");
    at as u32 + 1
}

#[test]
fn a_kernel_panic_is_one_error_at_its_line_printed_by_no_hook() {
    // Every panic that reaches the hook installed before any trace is counted.
    let printed = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&printed);
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        seen.fetch_add(1, Ordering::SeqCst);
        default(info);
    }));

    let topo = Topology::embedded_default();
    let pes: Vec<PeId> = topo.pes().take(8).collect();
    let mut m = Machine::new(topo).unwrap();
    let x = m.alloc(DType::F32, 8 * 16, &pes).unwrap();
    let args = KernelArgs::new().with("x", x.ptr()).int("n", 16);
    let launch = Launch::new(&picky, args, pes.clone()).grid(&[8]);
    let err = simulate(&mut m, &launch).unwrap_err();
    let SimError::Trace { pe, err: trace } = &err else {
        panic!("expected a trace error, got {err}")
    };
    assert_eq!(*pe, pes[0], "the first instance's error is the launch's");
    let loc = trace.loc.as_ref().expect("the error has a kernel line");
    assert!(loc.file.ends_with("kernel_panic.rs"), "{loc}");
    assert_eq!(loc.line, line_of("assert!("), "the line of the assert");
    let panicked = TraceErrorKind::Panicked {
        message: "n = 16 is below the 64 elements this kernel needs".into(),
        defined_at: None,
    };
    assert_eq!(trace.kind, panicked);
    let text = err.to_string();
    assert!(
        text.contains("the kernel body panicked: n = 16 is below the 64 elements"),
        "{text}"
    );
    assert_eq!(text.matches("panicked").count(), 1, "{text}");

    // Indexing past a Vec in the body: the line of the index.
    let x = m.alloc(DType::F32, 16, &pes[..1]).unwrap();
    let args = KernelArgs::new().with("x", x.ptr()).int("n", 16);
    let err = simulate(
        &mut m,
        &Launch::new(&indexes_past_a_vec, args, vec![pes[0]]),
    )
    .unwrap_err()
    .to_string();
    let at = format!("kernel_panic.rs:{}:", line_of("parts[3]"));
    assert!(err.contains(&at), "{err}");
    assert!(err.contains("index out of bounds"), "{err}");

    assert_eq!(
        printed.load(Ordering::SeqCst),
        0,
        "a panic while tracing reached the panic hook"
    );
    // Outside a trace, panics still reach the hook installed before.
    let _ = std::panic::catch_unwind(|| panic!("outside any kernel"));
    assert_eq!(printed.load(Ordering::SeqCst), 1);
}
