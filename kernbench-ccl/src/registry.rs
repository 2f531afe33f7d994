//! The registry of collective algorithms (`ccl.yaml`): each names its kernel,
//! the logical topology it needs, its IPCQ settings, and an optional world size.
//!
//! The kernel families it ships with, and the collective and maps each
//! takes, are the [built-in algorithms](crate::algorithms::BUILTIN).
//!
//! A program can extend it from Rust: [`Registry::register_kernel`] makes a
//! kernel family of its own known (its kernel is the `#[kernel]` of that
//! name, generic over its element type), [`Registry::register_map`] adds
//! a neighbour map of its own, and [`Registry::add_yaml`] adds entries that
//! may name both. Registered in an [`Extension`], they are part of
//! [`Registry::builtin`] and of every registry file read with
//! [`Registry::load`], so the command line's `list`, `run` and `sweep` see
//! them too.
//!
//! ```
//! use kernbench_ccl::registry::{Collective, Registry};
//! use kernbench_core::neighbors::NeighborMap;
//!
//! let mut reg = Registry::builtin();
//! // A ring over the ranks in rank order, built by hand: the ring kernel's
//! // `E` must be the next rank, and this map keeps to that.
//! reg.register_map("my_ring", |_topo, pes| {
//!     NeighborMap::ring(pes).map_err(|e| e.to_string())
//! })
//! .unwrap();
//! reg.allow_map("ring_allreduce", "my_ring").unwrap();
//! reg.add_yaml(
//!     "algorithms:\n  my_ring_allreduce:\n    kernel: ring_allreduce\n    collective: all_reduce\n    topology: my_ring\n",
//!     "mine.yaml",
//! )
//! .unwrap();
//! let a = reg.get("my_ring_allreduce").unwrap();
//! assert_eq!(a.map_name(), "my_ring");
//! assert_eq!(a.collective, Collective::AllReduce);
//! ```

use kernbench_core::neighbors::NeighborMap;
use kernbench_core::topology::{field_line, BufferKind, IpcqSpec, Topology};
use kernbench_core::PeId;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

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
    /// The root ends with the reduction of all vectors.
    Reduce,
    /// Rank `r` contributes chunk `r`; the root ends with all chunks.
    Gather,
    /// Block `j` of rank `r`'s vector ends as block `r` of rank `j`'s.
    AllToAll,
}

impl Collective {
    /// nccl-tests' bus bandwidth factor for `n` ranks.
    pub fn busbw_factor(self, n: usize) -> f64 {
        let n = n as f64;
        match self {
            Collective::AllReduce => 2.0 * (n - 1.0) / n,
            Collective::ReduceScatter
            | Collective::AllGather
            | Collective::Gather
            | Collective::AllToAll => (n - 1.0) / n,
            Collective::Broadcast | Collective::Reduce => 1.0,
        }
    }

    /// Whether it takes a reduction operator.
    pub fn reduces(self) -> bool {
        matches!(
            self,
            Collective::AllReduce | Collective::ReduceScatter | Collective::Reduce
        )
    }

    /// Whether it has a root rank.
    pub fn has_root(self) -> bool {
        matches!(
            self,
            Collective::Broadcast | Collective::Reduce | Collective::Gather
        )
    }

    /// Every collective.
    pub const ALL: [Collective; 7] = [
        Collective::AllReduce,
        Collective::ReduceScatter,
        Collective::AllGather,
        Collective::Broadcast,
        Collective::Reduce,
        Collective::Gather,
        Collective::AllToAll,
    ];

    /// The collective a snake-case name names (`all_reduce`).
    pub fn parse(name: &str) -> Option<Collective> {
        Collective::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The snake-case name.
    pub fn name(self) -> &'static str {
        match self {
            Collective::AllReduce => "all_reduce",
            Collective::ReduceScatter => "reduce_scatter",
            Collective::AllGather => "all_gather",
            Collective::Broadcast => "broadcast",
            Collective::Reduce => "reduce",
            Collective::Gather => "gather",
            Collective::AllToAll => "all_to_all",
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
    /// No neighbour map: the kernel addresses its peers by rank.
    Ranks,
    /// A map registered with [`Registry::register_map`] (the algorithm's
    /// [`Algorithm::custom_map`] builds it).
    Custom,
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
            MapKind::Ranks => "ranks",
            MapKind::Custom => "custom",
        }
    }

    /// Every map a registry entry can name by itself (all but `custom`).
    pub const NAMED: [MapKind; 8] = [
        MapKind::Ring,
        MapKind::Torus2d,
        MapKind::Tree,
        MapKind::Hierarchical,
        MapKind::IntercubeRing,
        MapKind::IntercubeTorus2d,
        MapKind::IntercubeMesh2d,
        MapKind::Ranks,
    ];

    /// Whether one PE per cube takes part (the inter-cube maps).
    pub fn one_pe_per_cube(self) -> bool {
        matches!(
            self,
            MapKind::IntercubeRing | MapKind::IntercubeTorus2d | MapKind::IntercubeMesh2d
        )
    }
}

/// Builds a custom neighbour map over the ranks of a launch, in rank order.
pub type MapBuilder = dyn Fn(&Topology, &[PeId]) -> Result<NeighborMap, String> + Send + Sync;

/// A neighbour map registered from Rust: its name and how to build it.
#[derive(Clone)]
pub struct CustomMap {
    /// Its name, as `ccl.yaml` writes it.
    pub name: String,
    build: Arc<MapBuilder>,
}

impl CustomMap {
    /// A map named `name` built by `build`.
    pub fn new(
        name: &str,
        build: impl Fn(&Topology, &[PeId]) -> Result<NeighborMap, String> + Send + Sync + 'static,
    ) -> Self {
        CustomMap {
            name: name.to_string(),
            build: Arc::new(build),
        }
    }

    /// The map over `pes`.
    pub fn build(&self, topo: &Topology, pes: &[PeId]) -> Result<NeighborMap, String> {
        (self.build)(topo, pes)
    }
}

impl std::fmt::Debug for CustomMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CustomMap({})", self.name)
    }
}

impl PartialEq for CustomMap {
    fn eq(&self, o: &Self) -> bool {
        self.name == o.name && Arc::ptr_eq(&self.build, &o.build)
    }
}

impl serde::Serialize for CustomMap {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name)
    }
}

/// A kernel family the registry knows: the collective it implements and the
/// maps it is written for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelFamily {
    /// The family: the name of its `#[kernel]` (`ring_allreduce`).
    pub name: String,
    /// The collective.
    pub collective: Collective,
    /// The maps it runs on: built-in names (`ring`, `ranks`, ...) or registered ones.
    pub maps: Vec<String>,
}

/// Additions to every registry, registered with `inventory::submit!` (the
/// crate re-exports [`inventory`](crate::inventory)): `register` runs on each
/// registry [`Registry::builtin`] or [`Registry::load`] makes, before its
/// file is read.
pub struct Extension {
    /// Its name (extensions apply in the order of their names).
    pub name: &'static str,
    /// Adds kernel families, maps and entries.
    pub register: fn(&mut Registry) -> Result<(), RegistryError>,
}

kernbench_tl::inventory::collect!(Extension);

/// One algorithm, resolved against the defaults.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Algorithm {
    /// Its name in the registry.
    pub name: String,
    /// The kernel family: the name of its `#[kernel]` (`ring_allreduce`),
    /// which a run in any element type launches.
    pub kernel: String,
    /// The collective.
    pub collective: Collective,
    /// The neighbour map.
    pub topology: MapKind,
    /// The registered map, when `topology` is [`MapKind::Custom`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_map: Option<CustomMap>,
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
    /// a kernel family: a run in any element type launches the registered
    /// kernel of that name, whose element type the run's buffer binds
    /// (`fn my_allreduce<T: Element>(buf: Ptr<T>, ..)`). Adjust the public
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
            custom_map: None,
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
    #[error("{origin}: line {line}: algorithm `{name}`: {err}")]
    Entry {
        /// The file.
        origin: String,
        /// The 1-based line of the field at fault (or of the entry, when the
        /// value comes from `defaults` or is not written).
        line: usize,
        /// The entry.
        name: String,
        /// The field at fault (`kernel`, `slots`, ...).
        field: &'static str,
        /// What is wrong (boxed: it holds the names at fault).
        err: Box<EntryError>,
    },
    /// A file that breaks a limit on input (size, nesting depth, alias
    /// expansion); it was not parsed.
    #[error("{origin}: {err}")]
    Input {
        /// The file.
        origin: String,
        /// The limit broken, and where (part of the message).
        err: kernbench_core::input::InputError,
    },
    /// A kernel family or map that cannot be registered.
    #[error("ccl registry: {0}")]
    Register(RegisterError),
    /// An algorithm that is not in the registry.
    #[error("no algorithm `{name}` in the registry (known: {known})")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The known names.
        known: String,
    },
}

/// What is wrong with an entry of a registry file (see
/// [`RegistryError::Entry`]), with the names and values at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// A name the registry already has.
    #[error("algorithm `{name}` is already registered")]
    AlreadyRegistered {
        /// The name.
        name: String,
    },
    /// A kernel family the registry does not know.
    #[error("unknown kernel `{kernel}` (known: {})", .known.join(", "))]
    UnknownKernel {
        /// The kernel named.
        kernel: String,
        /// The families the registry knows.
        known: Vec<String>,
    },
    /// A map the registry does not know.
    #[error(transparent)]
    UnknownMap(UnknownMap),
    /// An IPCQ ring of no slots.
    #[error("slots must be at least 1")]
    ZeroSlots,
    /// A slot size that is zero or not a multiple of 16 bytes.
    #[error("slot_bytes {bytes} must be a non-zero multiple of 16")]
    SlotBytes {
        /// The size given.
        bytes: u64,
    },
    /// A message size below one element.
    #[error("seg_bytes {bytes} is smaller than one element")]
    SegBytes {
        /// The size given.
        bytes: u64,
    },
    /// A kernel family of another collective than the entry's.
    #[error("kernel `{kernel}` implements {}, not {}", .implements.name(), .asked.name())]
    WrongCollective {
        /// The kernel family.
        kernel: String,
        /// The collective it implements.
        implements: Collective,
        /// The entry's collective.
        asked: Collective,
    },
    /// A kernel family that does not run on the entry's map.
    #[error(
        "kernel `{kernel}` and topology `{topology}` do not go together: {kernel} runs on {}",
        .maps.join(" or ")
    )]
    MapNotAllowed {
        /// The kernel family.
        kernel: String,
        /// The entry's map.
        topology: String,
        /// The maps the family runs on.
        maps: Vec<String>,
    },
    /// A world of no ranks.
    #[error("world must be at least 1")]
    ZeroWorld,
}

/// A map name that is neither shipped nor registered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown topology `{name}` (known: {})", .known.join(", "))]
pub struct UnknownMap {
    /// The name given.
    pub name: String,
    /// The maps the registry knows.
    pub known: Vec<String>,
}

/// A kernel family or map that cannot be registered (see
/// [`RegistryError::Register`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    /// A family name the registry already has.
    #[error("kernel family `{family}` is already known")]
    FamilyKnown {
        /// The family.
        family: String,
    },
    /// A family with no name or no map.
    #[error("kernel family `{family}` needs a name and at least one map")]
    FamilyEmpty {
        /// The family.
        family: String,
    },
    /// A family the registry does not know.
    #[error("no kernel family `{family}` is known")]
    NoFamily {
        /// The family.
        family: String,
    },
    /// A map the registry does not know.
    #[error(transparent)]
    UnknownMap(UnknownMap),
    /// A map name that is empty or already a map's.
    #[error("map name `{name}` is empty or already taken")]
    MapTaken {
        /// The name.
        name: String,
    },
}

/// Checks an algorithm's ring and message sizes: at least one slot, slots
/// of a non-zero multiple of 16 bytes, messages of at least one element.
/// The error names the field at fault.
pub fn check_ipcq(ipcq: &IpcqSpec, seg_bytes: u64) -> Result<(), (&'static str, EntryError)> {
    if ipcq.slots == 0 {
        return Err(("slots", EntryError::ZeroSlots));
    }
    if ipcq.slot_bytes == 0 || ipcq.slot_bytes % 16 != 0 {
        return Err((
            "slot_bytes",
            EntryError::SlotBytes {
                bytes: ipcq.slot_bytes,
            },
        ));
    }
    if seg_bytes < 4 {
        return Err(("seg_bytes", EntryError::SegBytes { bytes: seg_bytes }));
    }
    Ok(())
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
    topology: String,
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

/// The algorithms of a registry, with the kernel families and maps its
/// entries may name.
#[derive(Clone, Debug)]
pub struct Registry {
    algorithms: Vec<Algorithm>,
    kernels: Vec<KernelFamily>,
    maps: Vec<CustomMap>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

impl Registry {
    /// A registry with no algorithms that knows the shipped kernel families
    /// (those of [`BUILTIN`](crate::algorithms::BUILTIN), in its order) and
    /// maps (no extension is applied).
    pub fn new() -> Registry {
        let kernels = crate::algorithms::BUILTIN
            .iter()
            .map(|b| KernelFamily {
                name: b.name().to_string(),
                collective: b.collective,
                maps: b.maps.iter().map(|m| m.name().to_string()).collect(),
            })
            .collect();
        Registry {
            algorithms: Vec::new(),
            kernels,
            maps: Vec::new(),
        }
    }

    /// [`Registry::new`] with every registered [`Extension`] applied.
    pub fn extended() -> Result<Registry, RegistryError> {
        let mut r = Registry::new();
        let mut ext: Vec<&Extension> = kernbench_tl::inventory::iter::<Extension>
            .into_iter()
            .collect();
        // Registration order is the linker's: apply them in a fixed order.
        ext.sort_by_key(|e| e.name);
        for e in ext {
            (e.register)(&mut r)?;
        }
        Ok(r)
    }

    /// Reads a registry file on top of [`Registry::extended`]; one larger
    /// than [`MAX_YAML_BYTES`](kernbench_core::input::MAX_YAML_BYTES) is refused unread.
    pub fn load(path: &std::path::Path) -> Result<Registry, RegistryError> {
        let origin = path.display().to_string();
        let text = kernbench_core::input::read_limited(path, kernbench_core::input::MAX_YAML_BYTES)
            .map_err(|err| RegistryError::Input {
                origin: origin.clone(),
                err,
            })?;
        let mut r = Registry::extended()?;
        r.add_yaml(&text, &origin)?;
        Ok(r)
    }

    /// The registry shipped in `configs/ccl.yaml`, with every registered
    /// [`Extension`] applied before it; an extension that fails, or adds an
    /// entry the shipped file also has, is an error that names it.
    pub fn try_builtin() -> Result<Registry, RegistryError> {
        let mut r = Registry::extended()?;
        r.add_yaml(include_str!("../../configs/ccl.yaml"), "configs/ccl.yaml")?;
        Ok(r)
    }

    /// [`Registry::try_builtin`], for programs that know their extensions are sound.
    ///
    /// # Panics
    ///
    /// When an extension fails or adds an entry the shipped file also has:
    /// a bug of the program that registered it. Command-line front ends use
    /// [`Registry::try_builtin`] and report the error instead.
    pub fn builtin() -> Registry {
        Registry::try_builtin()
            .unwrap_or_else(|e| panic!("the shipped registry with its extensions: {e}"))
    }

    /// Reads a registry; `origin` names it in errors. Text that breaks the
    /// [input limits](kernbench_core::input) is refused before it is parsed.
    /// It knows the shipped kernel families and maps only.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Registry, RegistryError> {
        let mut r = Registry::new();
        r.add_yaml(text, origin)?;
        Ok(r)
    }

    /// Makes a kernel family known: `collective` is what it implements, and
    /// `maps` the maps it runs on (shipped names such as `ring` or `ranks`, or
    /// maps registered with [`Registry::register_map`]). Its kernel is the
    /// `#[kernel]` named `family`, generic over its element type
    /// (`fn my_allreduce<T: Element>(buf: Ptr<T>, ..)`); a kernel written for
    /// one element type runs only that type, and a run in another is an
    /// error naming the kernel.
    pub fn register_kernel(
        &mut self,
        family: &str,
        collective: Collective,
        maps: &[&str],
    ) -> Result<(), RegistryError> {
        let bad = RegistryError::Register;
        let family_name = || family.to_string();
        if self.kernels.iter().any(|k| k.name == family) {
            return Err(bad(RegisterError::FamilyKnown {
                family: family_name(),
            }));
        }
        if family.is_empty() || maps.is_empty() {
            return Err(bad(RegisterError::FamilyEmpty {
                family: family_name(),
            }));
        }
        for m in maps {
            self.resolve_map(m)
                .map_err(|e| bad(RegisterError::UnknownMap(e)))?;
        }
        self.kernels.push(KernelFamily {
            name: family.to_string(),
            collective,
            maps: maps.iter().map(|m| m.to_string()).collect(),
        });
        Ok(())
    }

    /// Lets kernel family `family` also run on map `map`.
    pub fn allow_map(&mut self, family: &str, map: &str) -> Result<(), RegistryError> {
        let bad = RegistryError::Register;
        self.resolve_map(map)
            .map_err(|e| bad(RegisterError::UnknownMap(e)))?;
        let k = self
            .kernels
            .iter_mut()
            .find(|k| k.name == family)
            .ok_or_else(|| {
                bad(RegisterError::NoFamily {
                    family: family.to_string(),
                })
            })?;
        if !k.maps.iter().any(|m| m == map) {
            k.maps.push(map.to_string());
        }
        Ok(())
    }

    /// Adds a neighbour map named `name`, built over an algorithm's ranks (in
    /// rank order) by `build`; entries then name it as their `topology`.
    pub fn register_map(
        &mut self,
        name: &str,
        build: impl Fn(&Topology, &[PeId]) -> Result<NeighborMap, String> + Send + Sync + 'static,
    ) -> Result<(), RegistryError> {
        let taken = MapKind::NAMED.iter().any(|m| m.name() == name)
            || name == MapKind::Custom.name()
            || self.maps.iter().any(|m| m.name == name);
        if taken || name.is_empty() {
            return Err(RegistryError::Register(RegisterError::MapTaken {
                name: name.to_string(),
            }));
        }
        self.maps.push(CustomMap::new(name, build));
        Ok(())
    }

    /// The kernel families the registry knows.
    pub fn kernels(&self) -> &[KernelFamily] {
        &self.kernels
    }

    /// The map `name` names: a shipped kind, or a registered one.
    fn resolve_map(&self, name: &str) -> Result<(MapKind, Option<CustomMap>), UnknownMap> {
        if let Some(k) = MapKind::NAMED.iter().find(|m| m.name() == name) {
            return Ok((*k, None));
        }
        if let Some(c) = self.maps.iter().find(|m| m.name == name) {
            return Ok((MapKind::Custom, Some(c.clone())));
        }
        let mut known: Vec<String> = MapKind::NAMED.iter().map(|m| m.name().into()).collect();
        known.extend(self.maps.iter().map(|m| m.name.clone()));
        Err(UnknownMap {
            name: name.to_string(),
            known,
        })
    }

    /// Adds the entries of a registry file (its `defaults` apply to its own
    /// entries only). Entries may name the kernel families and maps
    /// registered so far; a name the registry already has is an error.
    pub fn add_yaml(&mut self, text: &str, origin: &str) -> Result<(), RegistryError> {
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
        let mut added = Vec::new();
        for (name, e) in file.algorithms {
            let err_at = |field: &'static str, err: EntryError| RegistryError::Entry {
                origin: origin.into(),
                line: field_line(text, &format!("algorithms.{name}.{field}")),
                name: name.clone(),
                field,
                err: Box::new(err),
            };
            if self.algorithms.iter().any(|a| a.name == name) {
                return Err(err_at(
                    "kernel",
                    EntryError::AlreadyRegistered { name: name.clone() },
                ));
            }
            let Some(family) = self.kernels.iter().find(|k| k.name == e.kernel) else {
                return Err(err_at(
                    "kernel",
                    EntryError::UnknownKernel {
                        kernel: e.kernel.clone(),
                        known: self.kernels.iter().map(|k| k.name.clone()).collect(),
                    },
                ));
            };
            let (topology, custom_map) = self
                .resolve_map(&e.topology)
                .map_err(|m| err_at("topology", EntryError::UnknownMap(m)))?;
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
            let seg_bytes = pick(
                e.settings.seg_bytes,
                file.defaults.seg_bytes,
                ipcq.ring_bytes(),
            );
            check_ipcq(&ipcq, seg_bytes).map_err(|(field, err)| err_at(field, err))?;
            let world = e.settings.world.or(file.defaults.world);
            if family.collective != e.collective {
                return Err(err_at(
                    "collective",
                    EntryError::WrongCollective {
                        kernel: e.kernel.clone(),
                        implements: family.collective,
                        asked: e.collective,
                    },
                ));
            }
            if !family.maps.contains(&e.topology) {
                return Err(err_at(
                    "topology",
                    EntryError::MapNotAllowed {
                        kernel: e.kernel.clone(),
                        topology: e.topology.clone(),
                        maps: family.maps.clone(),
                    },
                ));
            }
            if world == Some(0) {
                return Err(err_at("world", EntryError::ZeroWorld));
            }
            added.push(Algorithm {
                name: name.clone(),
                kernel: e.kernel,
                collective: e.collective,
                topology,
                custom_map,
                ipcq,
                seg_bytes,
                world,
            });
        }
        self.algorithms.extend(added);
        self.algorithms.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(())
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

impl Algorithm {
    /// The name of its neighbour map: a shipped kind's, or the registered map's.
    pub fn map_name(&self) -> &str {
        match &self.custom_map {
            Some(c) => &c.name,
            None => self.topology.name(),
        }
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
        // The limit is in the message, so it is not also the source.
        assert!(std::error::Error::source(&e).is_none());
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
        assert!(
            matches!(
                &e,
                RegistryError::Entry {
                    line: 6,
                    field: "slots",
                    err,
                    ..
                } if **err == EntryError::ZeroSlots
            ),
            "{e:?}"
        );
        let entry = |text: &str| match Registry::from_yaml(text, "t.yaml") {
            Err(RegistryError::Entry { field, err, .. }) => (field, *err),
            other => panic!("not an entry error: {other:?}"),
        };
        assert_eq!(
            entry(cases[4].0),
            ("slot_bytes", EntryError::SlotBytes { bytes: 10 })
        );
        assert!(matches!(
            entry(cases[0].0),
            ("kernel", EntryError::UnknownKernel { kernel, known })
                if kernel == "nope" && known.iter().any(|k| k == "ring_allreduce")
        ));
        let seg = "algorithms:\n  a:\n    kernel: ring_allreduce\n    collective: all_reduce\n    topology: ring\n    seg_bytes: 2\n";
        assert_eq!(entry(seg), ("seg_bytes", EntryError::SegBytes { bytes: 2 }));
        let world = "algorithms:\n  a:\n    kernel: ring_allreduce\n    collective: all_reduce\n    topology: ring\n    world: 0\n";
        assert_eq!(entry(world), ("world", EntryError::ZeroWorld));
        let map = "algorithms:\n  a:\n    kernel: tree_allreduce\n    collective: all_reduce\n    topology: torus2d\n";
        assert!(matches!(
            entry(map),
            ("topology", EntryError::MapNotAllowed { kernel, topology, maps })
                if kernel == "tree_allreduce" && topology == "torus2d" && maps == ["tree"]
        ));
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
