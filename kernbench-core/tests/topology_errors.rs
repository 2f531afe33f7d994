//! Every file in `tests/bad_topologies/` is rejected with an error that names
//! the file, the field and its line.

use kernbench_core::topology::{Topology, TopologyError};
use std::path::PathBuf;

/// File -> fragments its error message must contain.
const CASES: &[(&str, &[&str])] = &[
    ("malformed_yaml.yaml", &["line 5", "did not find expected"]),
    (
        "unknown_field.yaml",
        &["sip.cube.noc.colz", "unknown field `colz`", "line 6"],
    ),
    (
        "wrong_type.yaml",
        &["pe.math_lanes", "invalid type", "line 5"],
    ),
    ("no_sips.yaml", &["sips", "at least 1 SIP", "line 3"]),
    ("no_pes.yaml", &["sip.cube.pes", "at least 1", "line 4"]),
    (
        "negative_bandwidth.yaml",
        &["sip.cube.noc.links.gbps", "-256", "line 6"],
    ),
    ("nan_bandwidth.yaml", &["system.gbps", "NaN", "line 4"]),
    (
        "negative_latency.yaml",
        &["sip.io.pcie.latency_ns", "-5", "line 7"],
    ),
    (
        "efficiency.yaml",
        &["pe.hbm_efficiency", "(0, 1]", "line 4"],
    ),
    (
        "too_many_pes.yaml",
        &["sip.cube.pes", "40 PEs", "router ports", "line 5"],
    ),
    (
        "excluded_attachment.yaml",
        &["sip.cube.attach.pes[2]", "[2, 2]", "excluded", "line 8"],
    ),
    (
        "missing_router.yaml",
        &[
            "sip.cube.ucie.routers.e",
            "[2, 9]",
            "does not exist",
            "line 8",
        ],
    ),
    (
        "ucie_not_on_edge.yaml",
        &["sip.cube.ucie.routers.w", "west edge", "line 6"],
    ),
    (
        "split_mesh.yaml",
        &["sip.cube.noc.exclude", "split", "line 8"],
    ),
    (
        "cube_mesh_too_large.yaml",
        &["sip.cubes.rows", "8 cubes", "4 UCIe ports", "line 4"],
    ),
    ("zero_slots.yaml", &["ipcq.slots", "at least 1", "line 3"]),
    (
        "slot_bytes.yaml",
        &["ipcq.slot_bytes", "multiple of 16", "1000", "line 4"],
    ),
    (
        "tcm_too_small.yaml",
        &["pe.tcm_bytes", "two tiles", "line 4"],
    ),
    (
        "gemm_tile_zero.yaml",
        &["pe.gemm_tile", "tk is 0", "line 3"],
    ),
    (
        "pe_list_length.yaml",
        &["sip.cube.attach.pes", "lists 3 routers", "4 PEs", "line 6"],
    ),
    (
        "latency_and_wire.yaml",
        &["sip.cube.noc.links.latency_ns", "not both", "line 5"],
    ),
    (
        "shared_router_port.yaml",
        &[
            "sip.cube.attach.sram",
            "already used by the M_CPU",
            "line 6",
        ],
    ),
];

/// A field path such as `sip.cube.noc.colz` or `sips`: the first fragment of
/// a case, matched as a whole word.
fn is_field(frag: &str) -> bool {
    !frag.is_empty()
        && frag
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._[]".contains(c))
        && frag.chars().next().is_some_and(|c| c.is_ascii_lowercase())
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/bad_topologies")
}

#[test]
fn every_bad_file_is_rejected_with_field_and_line() {
    let mut failures = Vec::new();
    for (file, fragments) in CASES {
        let path = dir().join(file);
        let msg = match Topology::load(&path) {
            Ok(_) => {
                failures.push(format!("{file}: loaded, but should be rejected"));
                continue;
            }
            Err(e) => e.to_string(),
        };
        // The message starts with the file; the rest is matched without it,
        // so no fragment is satisfied by the file's own name.
        let prefix = format!("{}: ", path.display());
        let Some(rest) = msg.strip_prefix(&prefix) else {
            failures.push(format!(
                "{file}: message does not start with the file: {msg}"
            ));
            continue;
        };
        for frag in *fragments {
            if let Some(n) = frag.strip_prefix("line ") {
                // Exactly this line, first: `line 4` must not pass for `line 40`.
                let want = format!("line {n}");
                let exact = rest
                    .strip_prefix(&want)
                    .is_some_and(|after| after.starts_with(':') || after.starts_with(','));
                if !exact {
                    failures.push(format!("{file}: expected to start with {want:?}: {rest}"));
                }
            } else if is_field(frag) {
                // The field, whole: as the error's path, or as a whole word of the text.
                let whole = rest
                    .split(|c: char| c.is_whitespace() || c == ':' || c == '`' || c == ',')
                    .any(|w| w == *frag);
                if !whole {
                    failures.push(format!("{file}: field {frag:?} not named in: {rest}"));
                }
            } else if !rest.contains(frag) {
                failures.push(format!("{file}: missing {frag:?} in: {rest}"));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn every_file_in_the_directory_has_a_case() {
    let mut files: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    files.sort();
    let mut cases: Vec<String> = CASES.iter().map(|(f, _)| f.to_string()).collect();
    cases.sort();
    assert_eq!(files, cases);
    assert!(files.len() >= 12);
}

#[test]
fn errors_expose_path_and_line() {
    let err = Topology::load(&dir().join("efficiency.yaml")).unwrap_err();
    assert!(matches!(err, TopologyError::Invalid { .. }));
    assert_eq!(err.path(), Some("pe.hbm_efficiency"));
    assert_eq!(err.line(), Some(4));
    let err = Topology::load(&dir().join("does_not_exist.yaml")).unwrap_err();
    assert!(matches!(err, TopologyError::Io { .. }));
    assert!(err.to_string().contains("does_not_exist.yaml"));
    // The I/O error is in the message, so it is not also the source: a
    // report that walks the chain says it once.
    let TopologyError::Io { err: io, .. } = &err else {
        unreachable!()
    };
    assert!(err.to_string().ends_with(&io.to_string()));
    assert!(std::error::Error::source(&err).is_none());
}

#[test]
fn hostile_input_is_an_error_not_a_panic() {
    let cases = [
        "sips: 65536",
        "sips: -1",
        "sip: {cubes: {rows: 65535, cols: 65535}}",
        "sips: 16\nsip: {cubes: {rows: 64, cols: 64}, io: {ucie_ports: 64}}",
        "sip: {cube: {noc: {rows: 1000, cols: 1000}}}",
        "sips: 32\nsip: {cubes: {rows: 16, cols: 16}, io: {ucie_ports: 16}, cube: {noc: {rows: 32, cols: 32}}}",
        "sip: {cube: {noc: {rows: 1, cols: 1}}}",
        "sip: {cube: {noc: {rows: 0}}}",
        "sip: {cube: {noc: {exclude: [[9, 9]]}}}",
        "sip: {cube: {noc: {exclude: [[0,0],[0,1],[0,2],[0,3],[0,4],[0,5],[1,0],[1,1],[1,2],[1,3],[1,4],[1,5],[2,0],[2,1],[2,2],[2,3],[2,4],[2,5],[3,0],[3,1],[3,2],[3,3],[3,4],[3,5],[4,0],[4,1],[4,2],[4,3],[4,4],[4,5],[5,0],[5,1],[5,2],[5,3],[5,4],[5,5]]}}}",
        "sip: {cube: {ucie: {connections: 0}}}",
        "sip: {cube: {ucie: {connections: 60000}}}",
        "sip: {cube: {attach: {hbm_ports: []}}}",
        "sip: {cube: {noc: {links: {latency_ns: 1e300}}}}",
        "sip: {io: {pcie: {ns_per_mm: 1}}}",
        "pe: {hbm_pcs: 6}",
        "pe: {hbm_slice_bytes: 1000}",
        "pe: {hbm_slice_bytes: 1099511627776}",
        "pe: {gemm_tile: [4294967295, 4294967295, 4294967295]}",
        "ipcq: {slots: 4294967295, slot_bytes: 4294967280}",
        "ipcq: {buffer: disk}",
        "launch: {io_cpu_ns: .inf}",
        "name: ''",
        "- a\n- b",
        "42",
        "{",
        "a: [",
        "--- {}\n--- {}",
    ];
    for text in cases {
        let r = Topology::from_yaml(text, "hostile.yaml");
        let err = r
            .err()
            .unwrap_or_else(|| panic!("{text:?} should be rejected"));
        let msg = err.to_string();
        assert!(msg.starts_with("hostile.yaml: line "), "{text:?}: {msg}");
    }
}
