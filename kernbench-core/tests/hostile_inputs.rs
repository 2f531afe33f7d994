//! Hostile topology files are refused quickly, with an error that names the
//! file, the limit and the line, before the YAML parser sees them.
//!
//! Without the pre-scan, a 200 KB file of nested brackets took the parser
//! about two minutes to reject (its work grows with the depth at every
//! token), and aliases could expand a small file without bound. The time
//! bounds below are generous; they fail only if that behaviour returns.

use kernbench_core::input::{InputError, MAX_ALIAS_NODES, MAX_DEPTH, MAX_YAML_BYTES};
use kernbench_core::topology::{Topology, TopologyError};
use std::time::{Duration, Instant};

/// Generous: a rejection takes milliseconds.
fn bound() -> Duration {
    if cfg!(debug_assertions) {
        Duration::from_secs(3)
    } else {
        Duration::from_secs(1)
    }
}

fn timed(text: &str) -> (TopologyError, Duration) {
    let t = Instant::now();
    let e = Topology::from_yaml(text, "hostile.yaml").expect_err("a hostile file is refused");
    (e, t.elapsed())
}

#[test]
fn a_file_of_nested_brackets_is_refused_at_once() {
    for text in [
        format!("name: deep\nsips: 1\nsip: {}\n", "[".repeat(200_000)),
        format!("name: deep\nsip:\n  cube: {}\n", "{a: ".repeat(50_000)),
        format!("{}{}\n", "[".repeat(100_000), "]".repeat(100_000)),
    ] {
        let (e, took) = timed(&text);
        assert!(took < bound(), "rejected in {took:?}");
        let msg = e.to_string();
        assert!(
            msg.starts_with("hostile.yaml: line ")
                && msg.contains(&format!("deeper than {MAX_DEPTH} levels")),
            "{msg}"
        );
        assert!(matches!(
            e,
            TopologyError::Input {
                err: InputError::TooDeep { .. },
                ..
            }
        ));
        assert!(e.line().is_some());
    }
}

#[test]
fn nesting_within_the_limit_still_reaches_the_parser() {
    // 40 levels: within the limit, so the parser's own message comes back.
    let text = format!("name: x\nsip: {}{}\n", "[".repeat(40), "]".repeat(40));
    let e = Topology::from_yaml(&text, "ok-depth.yaml").unwrap_err();
    assert!(matches!(e, TopologyError::Parse { .. }), "{e}");
}

#[test]
fn an_alias_bomb_is_refused_at_once() {
    // A billion laughs inside fields the schema accepts.
    let mut text = String::from("name: laughs\nsip:\n  cube:\n    noc:\n      exclude: &a0 [[1, 1], [1, 1], [1, 1], [1, 1]]\n");
    for i in 1..12 {
        let refs = vec![format!("*a{}", i - 1); 8].join(", ");
        text.push_str(&format!("    x{i}: &a{i} [{refs}]\n"));
    }
    let (e, took) = timed(&text);
    assert!(took < bound(), "rejected in {took:?}");
    let msg = e.to_string();
    assert!(
        msg.contains(&MAX_ALIAS_NODES.to_string()) && msg.contains("line "),
        "{msg}"
    );
    assert!(matches!(
        e,
        TopologyError::Input {
            err: InputError::AliasExpansion { .. },
            ..
        }
    ));
    // A flat one: one large anchor, aliased many times.
    let big = vec!["[1, 1]"; 50_000].join(", ");
    let refs = vec!["*p"; 5_000].join(", ");
    let text = format!("name: flat\nsip:\n  cube:\n    attach:\n      pes: &p [{big}]\n      hbm_ports: [{refs}]\n");
    let (e, took) = timed(&text);
    assert!(took < bound(), "rejected in {took:?}");
    let msg = e.to_string();
    assert!(msg.contains("line 6") && msg.contains("`*p`"), "{msg}");
}

#[test]
fn a_file_over_the_size_limit_is_refused_unread() {
    let dir = std::env::temp_dir().join(format!("kernbench-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("big.yaml");
    let mut text = String::from("name: big\n");
    while text.len() <= MAX_YAML_BYTES {
        text.push_str("# padding padding padding padding padding padding padding padding\n");
    }
    std::fs::write(&f, &text).unwrap();
    let t = Instant::now();
    let e = Topology::load(&f).unwrap_err();
    assert!(t.elapsed() < bound());
    let msg = e.to_string();
    assert!(
        msg.contains("big.yaml") && msg.contains(&format!("larger than {MAX_YAML_BYTES} bytes")),
        "{msg}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
