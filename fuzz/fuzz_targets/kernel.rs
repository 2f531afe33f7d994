//! Random programs built as command graphs and run on 1 to 16 PEs of `tiny`:
//! success or a typed error, time never going backwards, and the timed and
//! functional runs agreeing on memory.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;
#[allow(dead_code)]
#[path = "../../tests/fuzz/kernels.rs"]
mod kernels;

fuzz_target!(|data: &[u8]| {
    let Some(case) = common::generate(&kernels::case(), data) else {
        return;
    };
    if let Err(e) = kernels::check(&case) {
        panic!("{e}\n{case:#?}");
    }
});
