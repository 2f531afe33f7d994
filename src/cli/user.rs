//! A program's own kernels and collective algorithms on the command: [`Cli`]
//! collects them, checks them against what KernBench ships, and runs a
//! command line over both.

use super::args::{self, Set};
use super::{usage, CommandLine, Result};
use kernbench_ccl::registry::check_ipcq;
use kernbench_ccl::run::DRIVER_PARAMS;
use kernbench_ccl::{Algorithm, EntryError, Registry};
use kernbench_core::ir::ParamKind;
use kernbench_core::DType;
use kernbench_tl::Kernel;
use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

/// The `kernbench` command over a program's own kernels and collective
/// algorithms as well as the shipped ones.
///
/// A binary that registers its kernels with [`Cli::kernel`] (or
/// [`Cli::kernel_with`], giving default arguments) and its algorithms with
/// [`Cli::collective`], then calls [`Cli::main`], is `kernbench` with them
/// added: `list` lists them, `graph` and `run` take their names, `sweep`
/// sweeps the algorithms with the shipped ones of their collective.
///
/// Every `#[kernel]` linked into the program is found by name; registering a
/// kernel makes sure the linker keeps it and gives its defaults. Names must be
/// unique: a kernel named like another linked kernel (a shipped one
/// included), or an algorithm named like a shipped algorithm or a kernel, is
/// an error before any command runs.
///
/// A collective algorithm names a kernel family: a run in any element type
/// launches the kernel of that name, generic over its element type
/// (`fn relay_allreduce<T: Element>(buf: Ptr<T>, ..)`), which takes parameters of [`DRIVER_PARAMS`](kernbench_ccl::run::DRIVER_PARAMS)
/// by name. The driver fills the buffer, checks every element of the result
/// (`run --verify-data`, `sweep` unless `--no-check`) and reports the
/// nccl-tests columns.
///
/// ```
/// use kernbench::ccl::{Algorithm, Collective, MapKind};
/// use kernbench::cli::{Cli, Defaults};
/// use kernbench::prelude::*;
///
/// /// `y = a * x + y` over `n` elements, `block` a program instance.
/// #[kernel]
/// fn doc_saxpy(x: Ptr<f32>, y: Ptr<f32>, a: f64, n: usize, #[constexpr] block: usize) {
///     let start = tl::program_id(0) * block;
///     let len = block.min(n - start);
///     let vx = tl::load(x.offset(start), [len]);
///     let vy = tl::load(y.offset(start), [len]);
///     tl::store(y.offset(start), &(vx * a + vy));
/// }
///
/// let cli = Cli::new()
///     .kernel_with(
///         &doc_saxpy,
///         Defaults::new()
///             .len("x", 4096)
///             .len("y", 4096)
///             .float("a", 2.0)
///             .int("n", 4096)
///             .int("block", 1024)
///             .grid(&[4]),
///     )
///     // A shipped kernel family with other settings, under a name of its own.
///     .collective(Algorithm {
///         seg_bytes: 4096,
///         ..Algorithm::new("ring_allreduce_4k", "ring_allreduce", Collective::AllReduce, MapKind::Ring)
///     });
///
/// let mut out = Vec::new();
/// cli.run_args(["my_tool", "list"], &mut out).unwrap();
/// let listing = String::from_utf8(out).unwrap();
/// assert!(listing.contains("doc_saxpy(x: ptr<f32>, y: ptr<f32>, a: f64, n: usize, const block: usize)"));
/// assert!(listing.contains("ring_allreduce_4k"));
///
/// // The defaults launch it: 4 instances on the first 4 PEs.
/// let mut out = Vec::new();
/// cli.run_args(["my_tool", "run", "doc_saxpy", "--topology", "tiny", "--json"], &mut out).unwrap();
/// let report: serde_json::Value = serde_json::from_slice(&out).unwrap();
/// assert_eq!(report["flops"], 2 * 4096);
/// ```
#[derive(Default)]
pub struct Cli {
    kernels: Vec<(&'static dyn Kernel, Defaults)>,
    algorithms: Vec<Algorithm>,
}

/// Default arguments of a program's kernel on the command line: what `graph`
/// and `run` use for a parameter no `--set` gives, and the launch grid.
///
/// Each value stands for the `--set` it replaces: [`Defaults::int`] for
/// `--set n=4096`, [`Defaults::shape`] for `--set a=64x64`, [`Defaults::len`]
/// for `--set x.len=4096`. A `--set` on the command line wins.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Defaults {
    values: Vec<(String, Value)>,
    grid: Option<Vec<u32>>,
}

#[derive(Clone, Debug, PartialEq)]
enum Value {
    Int(i64),
    Float(f64),
    Bool(bool),
    Shape(usize, usize),
    Len(usize),
}

impl Defaults {
    /// No defaults: every scalar and tensor shape comes from `--set`.
    pub fn new() -> Self {
        Self::default()
    }

    fn with(mut self, name: &str, v: Value) -> Self {
        self.values.push((name.to_string(), v));
        self
    }

    /// An integer for a scalar or `#[constexpr]` parameter.
    pub fn int(self, name: &str, v: i64) -> Self {
        self.with(name, Value::Int(v))
    }

    /// A float for a scalar parameter.
    pub fn float(self, name: &str, v: f64) -> Self {
        self.with(name, Value::Float(v))
    }

    /// A boolean for a scalar or `#[constexpr]` parameter.
    pub fn flag(self, name: &str, v: bool) -> Self {
        self.with(name, Value::Bool(v))
    }

    /// The shape of a `Tensor` parameter.
    pub fn shape(self, name: &str, rows: usize, cols: usize) -> Self {
        self.with(name, Value::Shape(rows, cols))
    }

    /// The length in elements of a `Ptr` parameter's buffer.
    pub fn len(self, name: &str, elems: usize) -> Self {
        self.with(name, Value::Len(elems))
    }

    /// The launch grid, 1 to 3 axes: `graph`'s grid, and `run`'s grid and
    /// PE count when neither `--grid` nor `--pes` is given.
    pub fn grid(mut self, axes: &[u32]) -> Self {
        self.grid = Some(axes.to_vec());
        self
    }

    /// The launch grid, when one was given.
    pub(crate) fn launch_grid(&self) -> Option<&[u32]> {
        self.grid.as_deref()
    }

    /// The defaults as the `--set` values they stand for.
    pub(crate) fn sets(&self) -> Vec<Set> {
        self.values
            .iter()
            .map(|(n, v)| match v {
                Value::Int(i) => set(n, i.to_string()),
                Value::Float(f) => set(n, format!("{f:?}")),
                Value::Bool(b) => set(n, b.to_string()),
                Value::Shape(r, c) => set(n, format!("{r}x{c}")),
                Value::Len(l) => set(&format!("{n}.len"), l.to_string()),
            })
            .collect()
    }

    /// `n=4096 x.len=4096 grid=4`, or empty.
    pub(crate) fn describe(&self) -> String {
        let mut v: Vec<String> = self
            .sets()
            .iter()
            .map(|s| format!("{}={}", s.name, s.value))
            .collect();
        if let Some(g) = &self.grid {
            let axes: Vec<String> = g.iter().map(u32::to_string).collect();
            v.push(format!("grid={}", axes.join(",")));
        }
        v.join(" ")
    }

    /// Checks the defaults against the kernel's parameters.
    fn check(&self, k: &dyn Kernel) -> std::result::Result<(), String> {
        let m = k.meta();
        for (name, v) in &self.values {
            let Some(p) = m.params.iter().find(|p| p.name == name) else {
                let names: Vec<&str> = m.params.iter().map(|p| p.name).collect();
                return Err(format!(
                    "a default for `{name}`, which is not a parameter (it takes {})",
                    names.join(", ")
                ));
            };
            let fits = match v {
                Value::Int(_) | Value::Float(_) | Value::Bool(_) => {
                    matches!(p.kind, ParamKind::Scalar | ParamKind::Constexpr)
                }
                Value::Shape(..) => p.kind == ParamKind::Tensor,
                Value::Len(_) => p.kind == ParamKind::Ptr,
            };
            let given = match v {
                Value::Int(_) => "an integer",
                Value::Float(_) => "a float",
                Value::Bool(_) => "a boolean",
                Value::Shape(..) => "a shape",
                Value::Len(_) => "a length",
            };
            if !fits {
                let want = match p.kind {
                    ParamKind::Ptr => "a length (Defaults::len)",
                    ParamKind::Tensor => "a shape (Defaults::shape)",
                    _ => "a value (Defaults::int, float or flag)",
                };
                return Err(format!(
                    "the default for `{name}: {}` is {given}; a {} takes {want}",
                    p.ty, p.kind
                ));
            }
            if matches!(v, Value::Shape(0, _) | Value::Shape(_, 0) | Value::Len(0)) {
                return Err(format!(
                    "the default for `{name}` has a 0 in it; a buffer has at least one element"
                ));
            }
        }
        if let Some(g) = &self.grid {
            if g.is_empty() || g.len() > 3 || g.contains(&0) {
                return Err(format!(
                    "the default grid {g:?} must have 1 to 3 axes, none of them 0"
                ));
            }
        }
        Ok(())
    }
}

fn set(name: &str, value: String) -> Set {
    Set {
        name: name.to_string(),
        value,
    }
}

/// Crates whose kernels KernBench ships.
const SHIPPED_CRATES: [&str; 4] = [
    "kernbench",
    "kernbench_ccl",
    "kernbench_tl",
    "kernbench_core",
];

/// Whether KernBench ships the kernel (its module is in one of its crates).
fn shipped(k: &dyn Kernel) -> bool {
    let krate = k.meta().module.split("::").next().unwrap_or_default();
    SHIPPED_CRATES.contains(&krate)
}

fn place(k: &dyn Kernel) -> String {
    let m = k.meta();
    format!("{}:{} in `{}`", m.file, m.line, m.module)
}

fn same(a: &dyn Kernel, b: &dyn Kernel) -> bool {
    std::ptr::eq(a.meta(), b.meta())
}

impl Cli {
    /// The shipped kernels and algorithms only (and any `#[kernel]` linked
    /// into the program); add the program's own with the other methods.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a kernel: `graph` and `run` take its name, `list` lists it.
    ///
    /// Its name must be its own among the kernels linked into the program:
    ///
    /// ```
    /// use kernbench::cli::Cli;
    /// use kernbench::prelude::*;
    ///
    /// /// Not the shipped `vector_add`.
    /// #[kernel]
    /// fn vector_add(x: Ptr<f32>, n: usize) {
    ///     tl::store(x, &tl::load(x, [n]));
    /// }
    ///
    /// let e = Cli::new()
    ///     .kernel(&vector_add)
    ///     .run_args(["my_tool", "list"], &mut Vec::new())
    ///     .unwrap_err();
    /// assert!(e.to_string().starts_with("kernbench ships a kernel named `vector_add` (src/kernels.rs:"), "{e}");
    /// ```
    pub fn kernel(self, kernel: &'static dyn Kernel) -> Self {
        self.kernel_with(kernel, Defaults::new())
    }

    /// Adds a kernel with default arguments, so that `kernbench run NAME`
    /// needs no `--set` for the parameters they give.
    pub fn kernel_with(mut self, kernel: &'static dyn Kernel, defaults: Defaults) -> Self {
        self.kernels.push((kernel, defaults));
        self
    }

    /// Adds a collective algorithm, as an entry of `configs/ccl.yaml` would
    /// (see [`Algorithm::new`]): `list` lists it, `run NAME` runs it at one
    /// size, `sweep --collective ...` sweeps it with the shipped algorithms
    /// of its collective.
    pub fn collective(mut self, algorithm: Algorithm) -> Self {
        self.algorithms.push(algorithm);
        self
    }

    /// Runs one command line, as [`run_args`](super::run_args) does for the
    /// shipped `kernbench`, with this program's kernels and algorithms. A
    /// name that clashes, or a bad default or algorithm, fails every
    /// command but `--help` and `--version` with a usage error.
    pub fn run_args<I, T>(&self, args: I, w: &mut dyn Write) -> Result<()>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let Some(cl) = CommandLine::parse(args, w)? else {
            return Ok(());
        };
        let cat = self.catalog()?;
        cl.dispatch(&cat, w)
    }

    /// Runs the process's command line with stdout as the output and returns
    /// its exit code (see [`exit_code`](super::exit_code)); a program's
    /// `main` returns it.
    pub fn main(&self) -> ExitCode {
        super::exit_code(self.run_args(std::env::args_os(), &mut std::io::stdout()))
    }

    /// Every kernel and the program's algorithms, checked.
    fn catalog(&self) -> Result<Catalog> {
        args::link_kernels();
        let mut kernels: Vec<(&'static dyn Kernel, Defaults)> = Vec::new();
        for (k, d) in &self.kernels {
            if let Some((_, had)) = kernels.iter().find(|(o, _)| same(*o, *k)) {
                if had != d {
                    return Err(usage(format!(
                        "kernel `{}` ({}) is registered twice with different defaults",
                        k.meta().name,
                        place(*k)
                    )));
                }
                continue;
            }
            d.check(*k)
                .map_err(|e| usage(format!("kernel `{}` ({}): {e}", k.meta().name, place(*k))))?;
            kernels.push((*k, d.clone()));
        }
        for k in kernbench_tl::registered_kernels() {
            if !kernels.iter().any(|(o, _)| same(*o, k)) {
                kernels.push((k, Defaults::new()));
            }
        }
        kernels.sort_by_key(|(k, _)| (k.meta().name, !shipped(*k)));
        for pair in kernels.windows(2) {
            let (a, b) = (pair[0].0, pair[1].0);
            if a.meta().name != b.meta().name {
                continue;
            }
            let name = a.meta().name;
            return Err(usage(if shipped(a) && !shipped(b) {
                format!(
                    "kernbench ships a kernel named `{name}` ({}); rename the kernel at {}: \
                     the command finds kernels by name",
                    place(a),
                    place(b)
                )
            } else {
                format!(
                    "two kernels are named `{name}`, at {} and at {}; rename one: \
                     the command finds kernels by name",
                    place(a),
                    place(b)
                )
            }));
        }
        let cat = Catalog {
            kernels,
            algorithms: self.algorithms.clone(),
        };
        cat.algorithms(
            &Registry::try_builtin().map_err(super::usage)?,
            "configs/ccl.yaml",
        )?;
        Ok(cat)
    }
}

/// The kernels and the program's algorithms a command knows.
pub(crate) struct Catalog {
    /// Every kernel, sorted by name, with its defaults.
    kernels: Vec<(&'static dyn Kernel, Defaults)>,
    /// The program's own algorithms.
    algorithms: Vec<Algorithm>,
}

impl Catalog {
    /// Every kernel, sorted by name, with its defaults.
    pub(crate) fn kernels(&self) -> &[(&'static dyn Kernel, Defaults)] {
        &self.kernels
    }

    /// A kernel by name, with its defaults, or an error that says where to
    /// look; with the element type a name `KERNEL_TYPE` gives a generic
    /// kernel (`softmax_f16` is `softmax` on f16 tensors).
    pub(crate) fn kernel_typed(
        &self,
        name: &str,
    ) -> Result<(&'static dyn Kernel, &Defaults, Option<DType>)> {
        if let Some((k, d)) = self.kernels.iter().find(|(k, _)| k.meta().name == name) {
            return Ok((*k, d, None));
        }
        if let Some((base, t)) = name.rsplit_once('_') {
            let typed = self
                .kernels
                .iter()
                .find(|(k, _)| k.meta().name == base && !k.meta().generics.is_empty());
            if let (Some((k, d)), Some(dtype)) = (typed, DType::parse(t).filter(|d| d.name() == t))
            {
                return Ok((*k, d, Some(dtype)));
            }
        }
        let near: Vec<&str> = self
            .kernels
            .iter()
            .map(|(k, _)| k.meta().name)
            .filter(|k| k.contains(name) || name.contains(k))
            .take(8)
            .collect();
        let hint = if near.is_empty() {
            String::new()
        } else {
            format!(" (did you mean {}?)", near.join(", "))
        };
        Err(usage(format!(
            "no kernel `{name}` is registered{hint}; `kernbench list` shows them"
        )))
    }

    /// The program's own algorithms.
    pub(crate) fn own_algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }

    /// The algorithms of `base` (read from `origin`) followed by the
    /// program's, each checked: a name used twice, or an algorithm whose
    /// settings or kernel family are wrong, is a usage error.
    pub(crate) fn algorithms(&self, base: &Registry, origin: &str) -> Result<Vec<Algorithm>> {
        let mut all: Vec<Algorithm> = base.algorithms().to_vec();
        for a in &self.algorithms {
            let bad = |msg: String| usage(format!("algorithm `{}`: {msg}", a.name));
            if a.name.is_empty() {
                return Err(usage("an algorithm has an empty name"));
            }
            if all.iter().any(|o| o.name == a.name) {
                let whose = if base.get(&a.name).is_ok() {
                    format!("{origin} has an algorithm of that name")
                } else {
                    "it is added twice".to_string()
                };
                return Err(bad(format!(
                    "{whose}; give it a name of its own (`kernbench list` shows the names taken)"
                )));
            }
            // An algorithm may share the name of its own kernel, as the
            // shipped ones do: `run NAME` runs the algorithm, `graph NAME`
            // shows the kernel. Another kernel of its name is ambiguous.
            if let Some((k, _)) = self
                .kernels
                .iter()
                .find(|(k, _)| k.meta().name == a.name && a.kernel != a.name)
            {
                return Err(bad(format!(
                    "a kernel has that name ({}); `kernbench run {}` could not tell them apart",
                    place(*k),
                    a.name
                )));
            }
            check_ipcq(&a.ipcq, a.seg_bytes).map_err(|(_, e)| bad(e.to_string()))?;
            if a.world == Some(0) {
                return Err(bad(EntryError::ZeroWorld.to_string()));
            }
            // The driver finds it among the `#[kernel]`s linked in.
            let Some(k) = kernbench_tl::find_kernel(&a.kernel) else {
                return Err(bad(format!(
                    "no kernel `{k}` is registered: a run launches the `#[kernel]` named \
                     `{k}`, whose buffer gives its element type \
                     (`fn {k}<T: Element>(buf: Ptr<T>, ..)`)",
                    k = a.kernel
                )));
            };
            if let Some(p) = k
                .meta()
                .params
                .iter()
                .find(|p| !DRIVER_PARAMS.contains(&p.name))
            {
                return Err(bad(format!(
                    "its kernel `{}` ({}) takes `{}`, which the collective driver does not pass \
                     (it passes {})",
                    k.meta().name,
                    place(k),
                    p.name,
                    DRIVER_PARAMS.join(", ")
                )));
            }
            all.push(a.clone());
        }
        Ok(all)
    }
}
