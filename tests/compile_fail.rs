//! `#[kernel]` and `#[kernel_fn]` reject what the kernel language does not
//! support, at the offending span, with a message that says what to write.
//!
//! Each `tests/ui/*.rs` is one rejected construct with its expected compiler
//! output beside it (`.stderr`). After a deliberate change to a message,
//! regenerate with `TRYBUILD=overwrite cargo test --test compile_fail` and
//! review every changed `.stderr` like code.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/*.rs");
}
