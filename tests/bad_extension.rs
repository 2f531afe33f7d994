//! A registry extension that fails is a clear error on the command, not a
//! panic: this test binary links one that registers a map twice.

use kernbench::ccl::registry::{Extension, RegistryError};
use kernbench::ccl::Registry;
use kernbench::core::neighbors::NeighborMap;

fn register(r: &mut Registry) -> Result<(), RegistryError> {
    let ring = |_: &kernbench::core::topology::Topology, pes: &[kernbench::core::PeId]| {
        NeighborMap::ring(pes).map_err(|e| e.to_string())
    };
    r.register_map("twice", ring)?;
    r.register_map("twice", ring)
}

kernbench::ccl::inventory::submit! {
    Extension { name: "bad_extension", register }
}

#[test]
fn a_failing_extension_is_reported_by_the_registry_and_the_command() {
    let err = Registry::try_builtin().unwrap_err().to_string();
    assert!(err.contains("twice"), "{err}");
    let mut out = Vec::new();
    let err = kernbench::cli::run_args(["kernbench", "list"], &mut out)
        .unwrap_err()
        .to_string();
    assert!(err.contains("twice"), "{err}");
}
