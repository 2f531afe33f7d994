//! The registry of collective algorithms (`ccl.yaml`): each names its kernel,
//! the logical topology it needs, its IPCQ settings, and an optional world size.

use kernbench_core::topology::{field_line, BufferKind, IpcqSpec};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The collective an algorithm implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Collective {
    /// Every rank ends with the reduction of all vectors.
    AllReduce,
    /// Rank `r` ends with the reduction of chunk `r`.
    ReduceScatter,
    /// Rank `r` contributes chunk `r`; every rank ends with all chunks.
    AllGather,
    /// Every rank ends with the root's vector.
    Broadcast,
}

impl Collective {
    /// nccl-tests' bus bandwidth factor for `n` ranks.
    pub fn busbw_factor(self, n: usize) -> f64 {
        let n = n as f64;
        match self {
            Collective::AllReduce => 2.0 * (n - 1.0) / n,
            Collective::ReduceScatter | Collective::AllGather => (n - 1.0) / n,
            Collective::Broadcast => 1.0,
        }
    }

    /// Whether it takes a reduction operator.
    pub fn reduces(self) -> bool {
        matches!(self, Collective::AllReduce | Collective::ReduceScatter)
    }

    /// The snake-case name.
    pub fn name(self) -> &'static str {
        match self {
            Collective::AllReduce => "all_reduce",
            Collective::ReduceScatter => "reduce_scatter",
            Collective::AllGather => "all_gather",
            Collective::Broadcast => "broadcast",
        }
    }
}

/// The logical neighbour map an algorithm needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MapKind {
    /// A ring over the ranks (`E` next, `W` previous).
    Ring,
    /// A 2D torus, as square as the world size allows.
    Torus2d,
    /// A binary tree in heap order.
    Tree,
    /// Rings inside cubes, across cubes and across SIPs (whole cubes and SIPs only).
    Hierarchical,
    /// One PE per cube: a tree inside each SIP rooted at the centre cube, the roots on a ring of SIPs.
    IntercubeRing,
    /// As `intercube_ring`, the roots on a 2D torus of SIPs.
    IntercubeTorus2d,
    /// As `intercube_ring`, the roots on a 2D mesh of SIPs.
    IntercubeMesh2d,
}

impl MapKind {
    /// The snake-case name, as `ccl.yaml` writes it.
    pub fn name(self) -> &'static str {
        match self {
            MapKind::Ring => "ring",
            MapKind::Torus2d => "torus2d",
            MapKind::Tree => "tree",
            MapKind::Hierarchical => "hierarchical",
            MapKind::IntercubeRing => "intercube_ring",
            MapKind::IntercubeTorus2d => "intercube_torus2d",
            MapKind::IntercubeMesh2d => "intercube_mesh2d",
        }
    }

    /// Whether one PE per cube takes part (the inter-cube maps).
    pub fn one_pe_per_cube(self) -> bool {
        matches!(
            self,
            MapKind::IntercubeRing | MapKind::IntercubeTorus2d | MapKind::IntercubeMesh2d
        )
    }
}

/// One algorithm, resolved against the defaults.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Algorithm {
    /// Its name in the registry.
    pub name: String,
    /// The kernel family (`ring_allreduce` -> `ring_allreduce_f32`, ...).
    pub kernel: String,
    /// The collective.
    pub collective: Collective,
    /// The neighbour map.
    pub topology: MapKind,
    /// IPCQ settings of its launches.
    pub ipcq: IpcqSpec,
    /// Bytes per message.
    pub seg_bytes: u64,
    /// World size (PEs); all of the machine's when `None`.
    pub world: Option<usize>,
}

impl Algorithm {
    /// An algorithm as `configs/ccl.yaml` resolves an entry that sets only
    /// these four fields: the file's `defaults` (16 KiB messages, IPCQ rings
    /// of 8 slots of 4 KiB in TCM) and every PE of the machine. `kernel` names
    /// a kernel family: a run in element type `T` launches the registered
    /// kernel `{kernel}_{T}` (`my_allreduce_f32`, ...). Adjust the public
    /// fields for other settings.
    ///
    /// ```
    /// use kernbench_ccl::{Algorithm, Collective, MapKind, Registry};
    ///
    /// let a = Algorithm::new("ring_allreduce", "ring_allreduce", Collective::AllReduce, MapKind::Ring);
    /// assert_eq!(&a, Registry::builtin().get("ring_allreduce").unwrap());
    /// let hbm = Algorithm { ipcq: kernbench_core::topology::IpcqSpec { buffer: kernbench_core::topology::BufferKind::Hbm, ..a.ipcq }, ..a };
    /// assert_eq!(&hbm.ipcq, &Registry::builtin().get("ring_allreduce_hbm").unwrap().ipcq);
    /// ```
    pub fn new(name: &str, kernel: &str, collective: Collective, topology: MapKind) -> Algorithm {
        let ipcq = IpcqSpec {
            slots: 8,
            slot_bytes: 4096,
            buffer: BufferKind::Tcm,
            ..IpcqSpec::default()
        };
        Algorithm {
            name: name.to_string(),
            kernel: kernel.to_string(),
            collective,
            topology,
            ipcq,
            seg_bytes: 16384,
            world: None,
        }
    }
}

/// A registry that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// YAML that does not parse or has unknown fields.
    #[error("{origin}: {msg}")]
    Yaml {
        /// The file.
        origin: String,
        /// The 1-based line the parser stopped at, when it says.
        line: Option<usize>,
        /// serde_yaml's message (with line and column).
        msg: String,
    },
    /// An entry that does not make sense.
    #[error("{origin}: line {line}: algorithm `{name}`: {msg}")]
    Entry {
        /// The file.
        origin: String,
        /// The 1-based line of the field at fault (or of the entry, when the
        /// value comes from `defaults` or is not written).
        line: usize,
        /// The entry.
        name: String,
        /// What is wrong.
        msg: String,
    },
    /// A file that breaks a limit on input (size, nesting depth, alias
    /// expansion); it was not parsed.
    #[error("{origin}: {err}")]
    Input {
        /// The file.
        origin: String,
        /// The limit broken, and where.
        #[source]
        err: kernbench_core::input::InputError,
    },
    /// An algorithm that is not in the registry.
    #[error("no algorithm `{name}` in the registry (known: {known})")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The known names.
        known: String,
    },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    seg_bytes: Option<u64>,
    buffer: Option<BufferKind>,
    slots: Option<u32>,
    slot_bytes: Option<u64>,
    world: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    kernel: String,
    collective: Collective,
    topology: MapKind,
    #[serde(flatten)]
    settings: Settings,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    defaults: Settings,
    algorithms: BTreeMap<String, Entry>,
}

/// The known kernel families.
pub const KERNELS: [&str; 8] = [
    "intercube_allreduce",
    "ring_allreduce",
    "mesh_allreduce",
    "tree_allreduce",
    "hierarchical_allreduce",
    "reduce_scatter",
    "all_gather",
    "broadcast",
];

/// The collective a kernel family implements and the maps its directions
/// are written for (a kernel on another map either pairs no message or, where
/// the map happens to give the directions it uses, computes something else).
fn kernel_needs(kernel: &str) -> Option<(Collective, &'static [MapKind])> {
    Some(match kernel {
        "intercube_allreduce" => (
            Collective::AllReduce,
            &[
                MapKind::IntercubeRing,
                MapKind::IntercubeTorus2d,
                MapKind::IntercubeMesh2d,
            ],
        ),
        "ring_allreduce" => (Collective::AllReduce, &[MapKind::Ring]),
        "mesh_allreduce" => (Collective::AllReduce, &[MapKind::Torus2d]),
        "tree_allreduce" => (Collective::AllReduce, &[MapKind::Tree]),
        "hierarchical_allreduce" => (Collective::AllReduce, &[MapKind::Hierarchical]),
        "reduce_scatter" => (Collective::ReduceScatter, &[MapKind::Ring]),
        "all_gather" => (Collective::AllGather, &[MapKind::Ring]),
        "broadcast" => (Collective::Broadcast, &[MapKind::Ring]),
        _ => return None,
    })
}

/// The algorithms of a registry.
#[derive(Clone, Debug)]
pub struct Registry {
    algorithms: Vec<Algorithm>,
}

impl Registry {
    /// Reads a registry file; one larger than
    /// [`MAX_YAML_BYTES`](kernbench_core::input::MAX_YAML_BYTES) is refused unread.
    pub fn load(path: &std::path::Path) -> Result<Registry, RegistryError> {
        let origin = path.display().to_string();
        let text = kernbench_core::input::read_limited(path, kernbench_core::input::MAX_YAML_BYTES)
            .map_err(|err| RegistryError::Input {
                origin: origin.clone(),
                err,
            })?;
        Registry::from_yaml(&text, &origin)
    }

    /// The registry shipped in `configs/ccl.yaml`.
    pub fn builtin() -> Registry {
        Registry::from_yaml(include_str!("../../configs/ccl.yaml"), "configs/ccl.yaml")
            .expect("the shipped ccl.yaml is valid (a test checks it)")
    }

    /// Reads a registry; `origin` names it in errors. Text that breaks the
    /// [input limits](kernbench_core::input) is refused before it is parsed.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Registry, RegistryError> {
        kernbench_core::input::check_yaml(text, &kernbench_core::input::Limits::default())
            .map_err(|err| RegistryError::Input {
                origin: origin.into(),
                err,
            })?;
        let file: File = serde_yaml::from_str(text).map_err(|e| RegistryError::Yaml {
            origin: origin.into(),
            line: e.location().map(|l| l.line().max(1)),
            msg: e.to_string(),
        })?;
        let mut algorithms = Vec::new();
        for (name, e) in file.algorithms {
            let err_at = |field: &str, msg: String| RegistryError::Entry {
                origin: origin.into(),
                line: field_line(text, &format!("algorithms.{name}.{field}")),
                name: name.clone(),
                msg,
            };
            if !KERNELS.contains(&e.kernel.as_str()) {
                return Err(err_at(
                    "kernel",
                    format!(
                        "unknown kernel `{}` (known: {})",
                        e.kernel,
                        KERNELS.join(", ")
                    ),
                ));
            }
            let pick = |a: Option<u64>, b: Option<u64>, d: u64| a.or(b).unwrap_or(d);
            let mut ipcq = IpcqSpec::default();
            ipcq.slots = e
                .settings
                .slots
                .or(file.defaults.slots)
                .unwrap_or(ipcq.slots);
            ipcq.slot_bytes = pick(
                e.settings.slot_bytes,
                file.defaults.slot_bytes,
                ipcq.slot_bytes,
            );
            ipcq.buffer = e
                .settings
                .buffer
                .or(file.defaults.buffer)
                .unwrap_or(ipcq.buffer);
            if ipcq.slots == 0 {
                return Err(err_at("slots", "slots must be at least 1".into()));
            }
            if ipcq.slot_bytes == 0 || ipcq.slot_bytes % 16 != 0 {
                return Err(err_at(
                    "slot_bytes",
                    format!(
                        "slot_bytes {} must be a non-zero multiple of 16",
                        ipcq.slot_bytes
                    ),
                ));
            }
            let seg_bytes = pick(
                e.settings.seg_bytes,
                file.defaults.seg_bytes,
                ipcq.ring_bytes(),
            );
            if seg_bytes < 4 {
                return Err(err_at(
                    "seg_bytes",
                    format!("seg_bytes {seg_bytes} is smaller than one element"),
                ));
            }
            let world = e.settings.world.or(file.defaults.world);
            if let Some((collective, maps)) = kernel_needs(&e.kernel) {
                if collective != e.collective {
                    return Err(err_at(
                        "collective",
                        format!(
                            "kernel `{}` implements {}, not {}",
                            e.kernel,
                            collective.name(),
                            e.collective.name()
                        ),
                    ));
                }
                if !maps.contains(&e.topology) {
                    let names: Vec<&str> = maps.iter().map(|m| m.name()).collect();
                    return Err(err_at(
                        "topology",
                        format!(
                            "kernel `{}` and topology `{}` do not go together: {} runs on {}",
                            e.kernel,
                            e.topology.name(),
                            e.kernel,
                            names.join(" or ")
                        ),
                    ));
                }
            }
            if world == Some(0) {
                return Err(err_at("world", "world must be at least 1".into()));
            }
            algorithms.push(Algorithm {
                name: name.clone(),
                kernel: e.kernel,
                collective: e.collective,
                topology: e.topology,
                ipcq,
                seg_bytes,
                world,
            });
        }
        Ok(Registry { algorithms })
    }

    /// Every algorithm, by name.
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }

    /// An algorithm by name.
    pub fn get(&self, name: &str) -> Result<&Algorithm, RegistryError> {
        self.algorithms
            .iter()
            .find(|a| a.name == name)
            .ok_or_else(|| RegistryError::Unknown {
                name: name.to_string(),
                known: self
                    .algorithms
                    .iter()
                    .map(|a| a.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_registry_loads() {
        let r = Registry::builtin();
        assert!(r.get("ring_allreduce").is_ok());
        assert_eq!(
            r.get("ring_allreduce_hbm").unwrap().ipcq.buffer,
            BufferKind::Hbm
        );
    }

    #[test]
    fn hostile_files_are_refused_before_parsing() {
        let bound = std::time::Duration::from_secs(if cfg!(debug_assertions) { 3 } else { 1 });
        // Unknown keys of an entry are buffered whole before they are refused,
        // so aliases there would expand in full: a large anchor aliased many times.
        let big = vec!["1"; 100_000].join(", ");
        let refs: String = (0..20_000).map(|i| format!("      x{i}: *big\n")).collect();
        let text = format!(
            "defaults: {{seg_bytes: 4096}}\nalgorithms:\n  a:\n    kernel: ring_allreduce\n    collective: all_reduce\n    topology: ring\n    pad: &big [{big}]\n    more:\n{refs}"
        );
        let t = std::time::Instant::now();
        let e = Registry::from_yaml(&text, "bomb.yaml").unwrap_err();
        assert!(t.elapsed() < bound, "took {:?}", t.elapsed());
        let msg = e.to_string();
        assert!(
            msg.starts_with("bomb.yaml: line 9:")
                && msg.contains("`*big`")
                && msg.contains("100000"),
            "{msg}"
        );
        let text = format!("algorithms: {}\n", "{a: ".repeat(100_000));
        let t = std::time::Instant::now();
        let msg = Registry::from_yaml(&text, "deep.yaml")
            .unwrap_err()
            .to_string();
        assert!(t.elapsed() < bound, "took {:?}", t.elapsed());
        assert!(
            msg.contains("line 1") && msg.contains("deeper than 64 levels"),
            "{msg}"
        );
    }

    #[test]
    fn bad_entries_are_clear_errors() {
        let cases = [
            ("algorithms:\n  a:\n    kernel: nope\n    collective: all_reduce\n    topology: ring\n", "unknown kernel `nope`"),
            ("algorithms:\n  a:\n    kernel: ring_allreduce\n    collective: all_reduce\n    topology: ring\n    slots: 0\n", "slots must be at least 1"),
            ("algorithms:\n  a:\n    kernel: ring_allreduce\n    collective: everything\n    topology: ring\n", "unknown variant `everything`"),
            ("algorithms:\n  a:\n    kernel: ring_allreduce\n    collective: all_reduce\n    topology: ring\n    colour: red\n", "colour"),
            ("algorithms:\n  a:\n    kernel: ring_allreduce\n    collective: all_reduce\n    topology: ring\n    slot_bytes: 10\n", "multiple of 16"),
            ("algorithms: [\n", "line"),
        ];
        for (text, want) in cases {
            let e = Registry::from_yaml(text, "t.yaml").unwrap_err().to_string();
            assert!(e.contains(want) && e.contains("t.yaml"), "{e}");
        }
        // Entry errors point at the field's line.
        let e = Registry::from_yaml(cases[1].0, "t.yaml").unwrap_err();
        assert!(matches!(e, RegistryError::Entry { line: 6, .. }), "{e:?}");
        assert!(
            e.to_string().starts_with("t.yaml: line 6: algorithm `a`"),
            "{e}"
        );
        // A kernel must run the collective and the map it is written for.
        let mismatched = [
            ("all_gather", "all_gather", "hierarchical", "runs on ring"),
            (
                "ring_allreduce",
                "broadcast",
                "ring",
                "implements all_reduce, not broadcast",
            ),
            ("tree_allreduce", "all_reduce", "torus2d", "runs on tree"),
        ];
        for (kernel, coll, map, want) in mismatched {
            let text = format!(
                "algorithms:\n  a:\n    kernel: {kernel}\n    collective: {coll}\n    topology: {map}\n"
            );
            let e = Registry::from_yaml(&text, "t.yaml")
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{e}");
        }
        let e = Registry::builtin().get("nope").unwrap_err().to_string();
        assert!(e.contains("ring_allreduce"), "{e}");
    }
}
