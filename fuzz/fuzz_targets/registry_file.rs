//! Registry files (ccl.yaml): the first byte chooses raw bytes (the rest of the input is
//! the file) or a structured mutation of a shipped file (the rest seeds the
//! suite's generator). Either must load (and one algorithm run) or fail naming the file.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;
#[allow(dead_code)]
#[path = "../../tests/fuzz/yaml.rs"]
mod yaml;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let case = if mode & 1 == 0 {
        yaml::FileCase {
            base: "raw bytes",
            edits: Vec::new(),
            text_edits: Vec::new(),
            text: String::from_utf8_lossy(rest).into_owned(),
        }
    } else {
        match common::generate(&yaml::registry_case(), rest) {
            Some(c) => c,
            None => return,
        }
    };
    if let Err(e) = yaml::check_registry(&case) {
        panic!("{e}\n{case:#?}");
    }
});
