//! The README's tour, run: every `cargo run --release -- ...` command it
//! shows runs through the `kernbench` binary on `tiny` (sizes scaled down so
//! the suite stays fast), and the graph text it prints is what the command
//! prints today.

use std::process::Command;

const README: &str = include_str!("../README.md");

/// The `kernbench` arguments of every `cargo run --release -- ...` line of
/// the README's shell blocks (continuation lines joined).
fn commands() -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut in_sh = false;
    let mut pending = String::new();
    for line in README.lines() {
        if line.starts_with("```") {
            in_sh = line.trim() == "```sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        let line = line.split(" #").next().unwrap_or("").trim_end();
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        let full = format!("{pending}{line}");
        pending.clear();
        if let Some(args) = full.trim().strip_prefix("cargo run --release -- ") {
            out.push(shell_words(args));
        }
    }
    out
}

/// The words of a shell command line: split at blanks, except inside single
/// quotes (the README quotes arguments with blanks, such as link names).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                word.get_or_insert_with(String::new);
            }
            c if c.is_whitespace() && !quoted => words.extend(word.take()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    assert!(!quoted, "an unclosed quote in the README: {line}");
    words.extend(word);
    words
}

/// The same command on `tiny`, with sizes and folders a test can afford.
fn on_tiny(args: &[String], dir: &std::path::Path) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut it = args.iter().peekable();
    let mut has_topology = false;
    while let Some(a) = it.next() {
        match a.as_str() {
            "--topology" => {
                has_topology = true;
                it.next();
                out.extend(["--topology".into(), "tiny".into()]);
            }
            "--out" | "--trace" | "--html" | "--chakra" => {
                let v = it.next().expect("a value follows");
                out.push(a.clone());
                out.push(dir.join(v).to_string_lossy().into_owned());
            }
            "--size" | "-e" => {
                it.next();
                out.extend([a.clone(), "8K".into()]);
            }
            "-b" => {
                it.next();
                out.extend([a.clone(), "4K".into()]);
            }
            "--html-point" => {
                // A point of the scaled-down sweep: its smallest size.
                let v = it.next().expect("a value follows");
                let algo = v.split('@').next().unwrap_or_default();
                out.extend([a.clone(), format!("{algo}@4K")]);
            }
            "--max-memory" => {
                // The guard's own example refuses on purpose; keep it generous here.
                it.next();
                out.extend([a.clone(), "4G".into()]);
            }
            "--set" => {
                let v = it.next().expect("a value follows");
                // Matrices of 1024 become 64.
                out.extend([a.clone(), v.replace("1024", "64")]);
            }
            _ => out.push(a.clone()),
        }
    }
    let sub = out.first().cloned().unwrap_or_default();
    if !has_topology && ["run", "sweep", "probe"].contains(&sub.as_str()) {
        out.extend(["--topology".into(), "tiny".into()]);
    }
    out
}

#[test]
fn every_kernbench_command_of_the_readme_runs_on_tiny() {
    let cmds = commands();
    // The tour's graph, run and sweep, and the memory guard's run.
    for sub in ["graph", "run", "sweep"] {
        assert!(
            cmds.iter().any(|c| c[0] == sub),
            "the README shows a `{sub}`: {cmds:?}"
        );
    }
    let dir = std::env::temp_dir().join(format!("kernbench-tour-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut failures = Vec::new();
    for c in &cmds {
        let args = on_tiny(c, &dir);
        let o = Command::new(env!("CARGO_BIN_EXE_kernbench"))
            .args(&args)
            .output()
            .expect("the kernbench binary runs");
        if !o.status.success() {
            failures.push(format!(
                "kernbench {} (from `{}`): {}",
                args.join(" "),
                c.join(" "),
                String::from_utf8_lossy(&o.stderr)
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn the_graph_the_readme_prints_is_the_graph_of_today() {
    // The first plain code block after the `graph hello_send` command.
    let at = README
        .find("-- graph hello_send")
        .expect("the tour prints a graph");
    let rest = &README[at..];
    let block = rest
        .split("```\n")
        .nth(2)
        .expect("a printed block follows the command");
    let cmd = commands()
        .into_iter()
        .find(|c| c.first().map(String::as_str) == Some("graph"))
        .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_kernbench"))
        .args(&cmd)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let printed = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        printed.trim_end(),
        block.trim_end(),
        "README.md shows an old graph; paste the new one"
    );
}
