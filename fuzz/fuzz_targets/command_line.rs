//! Command lines of every subcommand, run in this process through
//! `kernbench::cli::run_args`, with paths in a temp folder of this process.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

#[allow(dead_code)]
#[path = "../../tests/fuzz/cli.rs"]
mod cli;
#[path = "common.rs"]
mod common;
#[allow(dead_code)]
#[path = "../../tests/fuzz/yaml.rs"]
mod yaml;

fn ctx() -> &'static cli::Ctx {
    static CTX: OnceLock<cli::Ctx> = OnceLock::new();
    CTX.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("kernbench-fuzz-cli-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("the temp dir can be created");
        cli::Ctx::new(&dir)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some(case) = common::generate(&cli::case(), data) else {
        return;
    };
    if let Err(e) = ctx().check(&case) {
        panic!("{e}\n{case:#?}");
    }
});
