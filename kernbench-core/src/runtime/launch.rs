//! Launching a kernel from the host: arguments bound to parameters by name
//! and kind, the PEs chosen from the tensors' placement, the launch simulated.

use super::{DeviceTensor, LaunchSetupError, Runtime, RuntimeError};
use crate::ir::{ArgValue, KernelArgs, ParamKind, TraceErrorKind};
use crate::program::Program;
use crate::sim::{simulate, Launch, Report, SimError};
use crate::{DType, PeId};
use std::collections::BTreeSet;

/// One launch argument.
#[derive(Clone, Copy, Debug)]
pub enum Arg<'a> {
    /// A device tensor, for a `Ptr<T>` or `Tensor<T>` parameter.
    Tensor(&'a DeviceTensor),
    /// An integer scalar.
    Int(i64),
    /// A floating-point scalar.
    Float(f64),
    /// A boolean scalar.
    Bool(bool),
}

impl Arg<'_> {
    fn describe(&self) -> String {
        match self {
            Arg::Tensor(t) => format!("a {:?} tensor of {}", t.shape(), t.dtype()),
            Arg::Int(v) => format!("the integer {v}"),
            Arg::Float(v) => format!("the float {v}"),
            Arg::Bool(v) => format!("the boolean {v}"),
        }
    }
}

/// Launch arguments by parameter name.
///
/// ```
/// # use kernbench_core::runtime::{Args, Placement, Runtime};
/// # use kernbench_core::{topology::Topology, DType};
/// # let rt = Runtime::with_topology(Topology::builtin("tiny").unwrap())?;
/// let x = rt.zeros(&[4, 4], DType::F32, &Placement::single())?;
/// let args = Args::new().tensor("x", &x).int("n", 16).float("scale", 0.5);
/// assert_eq!(args.names(), ["x", "n", "scale"]);
/// # Ok::<(), kernbench_core::runtime::RuntimeError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Args<'a> {
    entries: Vec<(String, Arg<'a>)>,
    /// The tensor arguments each instance sees on its own PE ([`Args::local`]).
    locals: Vec<String>,
}

impl<'a> Args<'a> {
    /// No arguments.
    pub fn new() -> Self {
        Args::default()
    }

    /// Adds (or replaces) an argument; chainable.
    pub fn arg(mut self, name: &str, value: Arg<'a>) -> Self {
        self.locals.retain(|n| n != name);
        if let Some(e) = self.entries.iter_mut().find(|(n, _)| n == name) {
            e.1 = value;
        } else {
            self.entries.push((name.to_string(), value));
        }
        self
    }

    /// Adds a tensor argument.
    pub fn tensor(self, name: &str, t: &'a DeviceTensor) -> Self {
        self.arg(name, Arg::Tensor(t))
    }

    /// Adds a tensor argument for a `Ptr<T>` parameter that each instance
    /// sees over the part of `t` on its own PE: its replica when `t` is
    /// replicated over the launch's PEs, its shard otherwise. A kernel that
    /// reads a copy every PE holds (a layer norm's weights) so reads its
    /// own PE's copy, where [`Args::tensor`] would give every instance the
    /// whole storage, from the first shard on. A launch with an instance on
    /// a PE that holds no part of `t` is a [`RuntimeError::WrongArg`].
    pub fn local(self, name: &str, t: &'a DeviceTensor) -> Self {
        let mut args = self.arg(name, Arg::Tensor(t));
        args.locals.push(name.to_string());
        args
    }

    /// Adds an integer argument.
    pub fn int(self, name: &str, v: i64) -> Self {
        self.arg(name, Arg::Int(v))
    }

    /// Adds a float argument.
    pub fn float(self, name: &str, v: f64) -> Self {
        self.arg(name, Arg::Float(v))
    }

    /// Adds a boolean argument.
    pub fn bool(self, name: &str, v: bool) -> Self {
        self.arg(name, Arg::Bool(v))
    }

    /// The argument of a name.
    pub fn get(&self, name: &str) -> Option<&Arg<'a>> {
        self.entries.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// The names, in the order given.
    pub fn names(&self) -> Vec<&str> {
        self.entries.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// The tensors, in the order given.
    pub fn tensors(&self) -> impl Iterator<Item = &'a DeviceTensor> + '_ {
        self.entries.iter().filter_map(|(_, a)| match a {
            Arg::Tensor(t) => Some(*t),
            _ => None,
        })
    }
}

/// One parameter of a kernel's signature, for [`Runtime::launch_checked`]
/// (`kernbench_ccl::dist::signature` builds them from a `#[kernel]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Param {
    /// Its name.
    pub name: String,
    /// Pointer, tensor, scalar or constexpr.
    pub kind: ParamKind,
    /// Element type of a pointer or tensor.
    pub dtype: Option<DType>,
    /// The kernel's type parameter that is this pointer's or tensor's element
    /// type (`dtype` is then `None`): the tensors of one type parameter must
    /// have one element type.
    pub generic: Option<String>,
}

/// Binds arguments; with a signature, by kind and checked before anything runs.
pub(super) fn bind(
    kernel: &str,
    params: Option<&[Param]>,
    args: &Args,
) -> Result<KernelArgs, RuntimeError> {
    let mut out = KernelArgs::new();
    let scalar = |a: &Arg| match a {
        Arg::Int(v) => Some(ArgValue::Int(*v)),
        Arg::Float(v) => Some(ArgValue::Float(*v)),
        Arg::Bool(v) => Some(ArgValue::Bool(*v)),
        Arg::Tensor(_) => None,
    };
    let Some(params) = params else {
        // No signature: tensors bind as tensors (a `Ptr<T>` parameter accepts
        // them too); the kernel's own binding reports what does not fit.
        for (name, a) in &args.entries {
            let v = match a {
                Arg::Tensor(t) => t.arg_tensor(),
                other => scalar(other).expect("scalars bind as scalars"),
            };
            out.set(name, v);
        }
        return Ok(out);
    };
    let wrong = |param: &str, msg: String| RuntimeError::WrongArg {
        kernel: kernel.into(),
        param: param.into(),
        msg,
    };
    for (name, _) in &args.entries {
        if !params.iter().any(|p| &p.name == name) {
            return Err(RuntimeError::UnknownArg {
                kernel: kernel.into(),
                param: name.clone(),
                known: params.iter().map(|p| p.name.clone()).collect(),
            });
        }
    }
    for p in params {
        let a = args.get(&p.name).ok_or_else(|| RuntimeError::MissingArg {
            kernel: kernel.into(),
            param: p.name.clone(),
            msg: match p.dtype {
                Some(d) => format!("the kernel takes a {} of {d}", p.kind),
                None => format!("the kernel takes a {}", p.kind),
            },
        })?;
        let v = match (p.kind, a) {
            (ParamKind::Ptr | ParamKind::Tensor, Arg::Tensor(t)) => {
                // The first tensor of a type parameter binds it; the others agree.
                if let Some(g) = &p.generic {
                    let first = params
                        .iter()
                        .filter(|q| q.generic.as_ref() == Some(g))
                        .find_map(|q| match args.get(&q.name) {
                            Some(Arg::Tensor(u)) => Some((q, u.dtype())),
                            _ => None,
                        });
                    if let Some((q, d)) = first.filter(|(_, d)| *d != t.dtype()) {
                        return Err(wrong(
                            &p.name,
                            format!(
                                "its tensor holds {} but `{}` holds {d}: both have the kernel's \
                                 element type `{g}`, so they must have one element type",
                                t.dtype(),
                                q.name
                            ),
                        ));
                    }
                }
                if let Some(d) = p.dtype {
                    if d != t.dtype() {
                        return Err(wrong(
                            &p.name,
                            format!("expected a {} of {d}, got {}", p.kind, a.describe()),
                        ));
                    }
                }
                if p.kind == ParamKind::Ptr {
                    t.arg_ptr()
                } else {
                    t.arg_tensor()
                }
            }
            (ParamKind::Ptr | ParamKind::Tensor, other) => {
                let d = p.dtype.map(|d| format!(" of {d}")).unwrap_or_default();
                return Err(wrong(
                    &p.name,
                    format!("expected a {}{d}, got {}", p.kind, other.describe()),
                ));
            }
            (ParamKind::Scalar | ParamKind::Constexpr, Arg::Tensor(_)) => {
                return Err(wrong(
                    &p.name,
                    format!("expected a {}, got {}", p.kind, a.describe()),
                ));
            }
            (ParamKind::Scalar | ParamKind::Constexpr, other) => scalar(other).expect("a scalar"),
        };
        out.set(&p.name, v);
    }
    Ok(out)
}

/// `launch`, of arguments bound from `args` ([`bind`]), with each local
/// tensor argument of `args` ([`Args::local`]) bound per instance.
pub(super) fn with_locals<'k>(
    mut launch: Launch<'k>,
    params: Option<&[Param]>,
    args: &Args,
) -> Result<Launch<'k>, RuntimeError> {
    let kernel = launch.program.name();
    for name in &args.locals {
        let values = local_values(kernel, params.unwrap_or_default(), args, name, &launch.pes)?;
        launch = launch.per_instance(name, values);
    }
    Ok(launch)
}

/// The values of local tensor argument `name` ([`Args::local`]): per
/// instance on `pes`, a `Ptr` over the part of the tensor on its PE.
fn local_values(
    kernel: &str,
    params: &[Param],
    args: &Args,
    name: &str,
    pes: &[PeId],
) -> Result<Vec<ArgValue>, RuntimeError> {
    let wrong = |msg: String| RuntimeError::WrongArg {
        kernel: kernel.into(),
        param: name.into(),
        msg,
    };
    let Some(Arg::Tensor(t)) = args.get(name) else {
        unreachable!("a local argument is a tensor (Args::local)")
    };
    if let Some(p) = params.iter().find(|p| p.name == name) {
        if p.kind != ParamKind::Ptr {
            return Err(wrong(format!(
                "a local tensor binds a pointer parameter, and this is a {}",
                p.kind
            )));
        }
    }
    let es = t.dtype().size() as u64;
    pes.iter()
        .enumerate()
        .map(|(i, &pe)| {
            let s = t.shards().iter().find(|s| s.pe_id() == pe).ok_or_else(|| {
                wrong(format!(
                    "a local tensor must have a part on every PE of the launch; \
                     instance {i} runs on {pe}, which holds none of it"
                ))
            })?;
            Ok(ArgValue::Ptr {
                va: t.va() + s.offset as u64 * es,
                dtype: t.dtype(),
                len: s.len,
            })
        })
        .collect()
}

/// Maps a simulation error to the runtime's, lifting argument errors.
pub(super) fn sim_error(kernel: &str, err: SimError) -> RuntimeError {
    match err {
        SimError::Trace { err: t, .. } if matches!(t.kind, TraceErrorKind::Arg { .. }) => {
            let TraceErrorKind::Arg { param, err } = t.kind else {
                unreachable!("matched above")
            };
            let msg = err.message(&param);
            if err.is_missing() {
                RuntimeError::MissingArg {
                    kernel: kernel.into(),
                    param,
                    msg,
                }
            } else {
                RuntimeError::WrongArg {
                    kernel: kernel.into(),
                    param,
                    msg,
                }
            }
        }
        SimError::Launch(err) => RuntimeError::launch(kernel, LaunchSetupError::Sim(err)),
        err => RuntimeError::Sim {
            kernel: kernel.into(),
            err: Box::new(err),
        },
    }
}

impl Runtime {
    /// The PEs a launch of `grid` runs on: the PEs of the first tensor argument
    /// with exactly one shard per program instance, in shard order (instance
    /// `i` on the PE of shard `i`, where its block is); otherwise the first
    /// PEs of the current SIP in structural order. A grid of no axes, more
    /// than three or an axis of 0 is [`LaunchSetupError::Grid`], and one
    /// with more instances than the SIP has PEs [`LaunchSetupError::TooFewPes`].
    pub fn launch_pes(&self, grid: &[u32], args: &Args) -> Result<Vec<PeId>, LaunchSetupError> {
        let n: usize = grid.iter().map(|g| *g as usize).product();
        if grid.is_empty() || grid.len() > 3 || n == 0 {
            return Err(LaunchSetupError::Grid {
                grid: grid.to_vec(),
            });
        }
        if let Some(t) = args.tensors().find(|t| t.shards().len() == n) {
            return Ok(t.shards().iter().map(|s| s.pe_id()).collect());
        }
        let sip = self.current_device() as u16;
        let pes: Vec<PeId> = self
            .topology()
            .pes()
            .filter(|p| p.sip == sip)
            .take(n)
            .collect();
        if pes.len() < n {
            return Err(LaunchSetupError::TooFewPes {
                grid: grid.to_vec(),
                instances: n,
                sip: sip.into(),
                pes: pes.len(),
            });
        }
        Ok(pes)
    }

    /// Launches `kernel` over `grid` with arguments bound by name, simulates
    /// it on the current device and returns its report. Instances run on the
    /// PEs [`Runtime::launch_pes`] chooses.
    ///
    /// Tensors bind as `Tensor<T>` arguments of [`DeviceTensor::launch_shape`]
    /// (which a `Ptr<T>` parameter accepts too). A missing argument, or one of
    /// the wrong kind or type, is a [`RuntimeError::MissingArg`] or
    /// [`RuntimeError::WrongArg`] naming the parameter; [`Runtime::launch_checked`]
    /// also rejects arguments the kernel does not take.
    pub fn launch(
        &self,
        kernel: &dyn Program,
        grid: &[u32],
        args: &Args,
    ) -> Result<Report, RuntimeError> {
        let pes = self
            .launch_pes(grid, args)
            .map_err(|kind| RuntimeError::launch(kernel.name(), kind))?;
        self.launch_on(kernel, grid, &pes, args)
    }

    /// [`Runtime::launch`] on the given PEs (instance `i` on `pes[i]`, axis 0 fastest).
    pub fn launch_on(
        &self,
        kernel: &dyn Program,
        grid: &[u32],
        pes: &[PeId],
        args: &Args,
    ) -> Result<Report, RuntimeError> {
        let kargs = bind(kernel.name(), None, args)?;
        let launch = Launch::new(kernel, kargs, pes.to_vec()).grid(grid);
        self.simulate(&with_locals(launch, None, args)?)
    }

    /// [`Runtime::launch`] against a signature: every parameter must have an
    /// argument of its kind and type, and every argument a parameter, all
    /// checked before anything is simulated; tensors bind as pointers or
    /// tensors as the parameter asks.
    pub fn launch_checked(
        &self,
        kernel: &dyn Program,
        params: &[Param],
        grid: &[u32],
        args: &Args,
    ) -> Result<Report, RuntimeError> {
        let kargs = bind(kernel.name(), Some(params), args)?;
        let pes = self
            .launch_pes(grid, args)
            .map_err(|kind| RuntimeError::launch(kernel.name(), kind))?;
        let launch = Launch::new(kernel, kargs, pes).grid(grid);
        self.simulate(&with_locals(launch, Some(params), args)?)
    }

    /// Simulates a hand-built launch on the shared machine and advances the
    /// device time of the SIPs it runs on (see the module docs).
    pub fn simulate(&self, launch: &Launch) -> Result<Report, RuntimeError> {
        let kernel = launch.program.name();
        self.check_abort(&format!("launch of `{kernel}`"))?;
        let n: usize = launch.grid.iter().map(|g| *g as usize).product();
        if n != launch.pes.len() {
            return Err(RuntimeError::launch(
                kernel,
                LaunchSetupError::grid_size(&launch.grid, n, launch.pes.len()),
            ));
        }
        let sips: BTreeSet<u16> = launch.pes.iter().map(|p| p.sip).collect();
        // A synchronous launch waits for the work pending on its devices.
        self.shared
            .synchronize(&sips.iter().copied().collect::<Vec<_>>())?;
        let report = {
            let mut m = self.shared.machine();
            simulate(&mut m, launch).map_err(|e| sim_error(kernel, e))?
        };
        self.advance(&sips, &report);
        Ok(report)
    }
}
