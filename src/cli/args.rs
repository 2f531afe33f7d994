//! What several subcommands parse: topologies, sizes, grids, `--set` values,
//! and kernel arguments built from them.

use super::{usage, Fail, Result};
use kernbench_ccl::table::parse_size;
use kernbench_ccl::RedOp;
use kernbench_core::ir::{ArgValue, KernelArgs, ParamKind};
use kernbench_core::topology::Topology;
use kernbench_core::DType;
use kernbench_tl::{KernelMeta, ParamMeta};

/// The kernels and algorithms the binary ships, referenced so the linker keeps
/// their registrations (`inventory` collects only what is linked in).
pub fn link_kernels() {
    std::hint::black_box(&crate::kernels::hello_send);
    std::hint::black_box(&crate::kernels::flash_attention);
    std::hint::black_box(&crate::probe::probe_send);
    std::hint::black_box(kernbench_ccl::algorithms::BUILTIN);
}

/// A topology from a file, or one of the built-in names; the embedded
/// default when `None`.
pub fn topology(spec: Option<&str>) -> Result<Topology> {
    match spec {
        None => Ok(Topology::embedded_default()),
        Some(spec) => Topology::resolve(spec).map_err(usage),
    }
}

/// `topo` with the links of `links` degraded (`--degrade`) and the parts
/// of `slow` straggling (`--slow`), besides what its file says.
pub fn with_stragglers(
    topo: Topology,
    links: &[kernbench_core::topology::DegradedLink],
    slow: &[kernbench_core::topology::SlowPart],
) -> Result<Topology> {
    if links.is_empty() && slow.is_empty() {
        return Ok(topo);
    }
    let mut config = topo.config().clone();
    let (from_links, from_slow) = (config.degraded.links.len(), config.slow.len());
    config.degraded.links.extend_from_slice(links);
    config.slow.extend_from_slice(slow);
    Topology::from_config(config).map_err(|e| match &e {
        // Name the flag's own entry, not a line of a file it is not in.
        kernbench_core::topology::TopologyError::Invalid { path, message, .. } => {
            let entry = |prefix: &str, from: usize| {
                path.strip_prefix(prefix)
                    .and_then(|p| p.split(']').next())
                    .and_then(|k| k.parse::<usize>().ok())
                    .and_then(|k| k.checked_sub(from))
            };
            if let Some(d) = entry("degraded.links[", from_links).and_then(|k| links.get(k)) {
                usage(format!("--degrade `{}`: {message}", d.link))
            } else if let Some(p) = entry("slow[", from_slow).and_then(|k| slow.get(k)) {
                usage(format!("--slow `{}`: {message}", p.at))
            } else {
                usage(e)
            }
        }
        _ => usage(e),
    })
}

/// clap parser: a size in bytes (`64`, `8K`, `1M`, `2G`; binary multiples).
pub fn size(s: &str) -> std::result::Result<u64, String> {
    match parse_size(s) {
        Some(0) => Err("a size must be at least 1 byte".into()),
        Some(n) => Ok(n),
        None => Err(format!("`{s}` is not a size (e.g. 64, 8K, 1M)")),
    }
}

/// clap parser: a count of at least 1.
pub fn count(s: &str) -> std::result::Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("give at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{s}` is not a whole number")),
    }
}

/// clap parser: an element type.
pub fn dtype(s: &str) -> std::result::Result<DType, String> {
    DType::parse(s).ok_or_else(|| format!("`{s}` is not a type (float, half, bfloat16, int32)"))
}

/// clap parser: a reduction.
pub fn redop(s: &str) -> std::result::Result<RedOp, String> {
    RedOp::parse(s).ok_or_else(|| format!("`{s}` is not a reduction (sum, max, min)"))
}

/// A grid or a program id: 1 to 3 axes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Axes(pub Vec<u32>);

/// clap parser: a grid or program id, `8,2` (1 to 3 axes).
pub fn axes(s: &str) -> std::result::Result<Axes, String> {
    let v: Vec<u32> = s
        .split(',')
        .map(|x| {
            x.trim()
                .parse::<u32>()
                .map_err(|_| format!("`{x}` in `{s}` is not a whole number"))
        })
        .collect::<std::result::Result<_, _>>()?;
    if v.is_empty() || v.len() > 3 {
        return Err(format!("`{s}`: give 1 to 3 comma-separated axes"));
    }
    Ok(Axes(v))
}

/// One `--set name=value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Set {
    /// The parameter (`n`, or `x.len` for a pointer's length).
    pub name: String,
    /// The value as written.
    pub value: String,
}

/// clap parser: `name=value`.
pub fn set(s: &str) -> std::result::Result<Set, String> {
    let (n, v) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}`: write NAME=VALUE"))?;
    let (n, v) = (n.trim(), v.trim());
    if n.is_empty() || v.is_empty() {
        return Err(format!("`{s}`: write NAME=VALUE"));
    }
    Ok(Set {
        name: n.to_string(),
        value: v.to_string(),
    })
}

/// A scalar value: `true`/`false`, an integer (with K/M/G suffixes), or a float.
fn scalar(p: &ParamMeta, v: &str) -> Result<ArgValue> {
    // An enum takes its value's name (`op=max`) or its code (`op=1`).
    if !p.variants.is_empty() {
        let code = p
            .variants
            .iter()
            .position(|n| *n == v)
            .or_else(|| v.parse::<usize>().ok().filter(|c| *c < p.variants.len()));
        return code.map(|c| ArgValue::Int(c as i64)).ok_or_else(|| {
            usage(format!(
                "--set {}={v}: `{v}` is not a `{}` (one of {})",
                p.name,
                p.ty,
                p.variants.join(", ")
            ))
        });
    }
    let int = if let Some(h) = v.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()
    } else {
        v.parse::<i64>()
            .ok()
            .or_else(|| parse_size(v).and_then(|n| i64::try_from(n).ok()))
    };
    Ok(match (v, int) {
        ("true", _) => ArgValue::Bool(true),
        ("false", _) => ArgValue::Bool(false),
        (_, Some(i)) => ArgValue::Int(i),
        _ => ArgValue::Float(v.parse::<f64>().map_err(|_| {
            usage(format!(
                "--set {}={v}: `{v}` is not a number or a boolean (`{}: {}`)",
                p.name, p.name, p.ty
            ))
        })?),
    })
}

/// A buffer a kernel parameter needs.
#[derive(Clone, Debug)]
pub struct BufferReq<'a> {
    /// Its position among the kernel's buffer parameters (0, 1, ...).
    pub index: usize,
    /// The parameter.
    pub param: &'a ParamMeta,
    /// Element type.
    pub dtype: DType,
    /// `Some([rows, cols])` for a tensor, `None` for a pointer.
    pub shape: Option<[usize; 2]>,
    /// Elements.
    pub len: usize,
}

/// Elements of a pointer buffer when no `--set NAME.len=N` gives them.
pub const DEFAULT_PTR_LEN: usize = 1 << 24;

fn shape(p: &ParamMeta, v: &str) -> Result<[usize; 2]> {
    let bad = || {
        usage(format!(
            "--set {}={v}: a tensor's shape is ROWSxCOLS, e.g. --set {}=1024x512",
            p.name, p.name
        ))
    };
    let (r, c) = v.split_once(['x', 'X']).ok_or_else(bad)?;
    let (r, c) = (
        r.trim().parse::<usize>().map_err(|_| bad())?,
        c.trim().parse::<usize>().map_err(|_| bad())?,
    );
    if r == 0 || c == 0 {
        return Err(bad());
    }
    Ok([r, c])
}

/// The kernel's arguments from `--set` values; `buffer` makes each pointer or
/// tensor argument. Every scalar must be given. A generic kernel's type
/// parameters are `elem`, or what `--set T=f16` gives.
pub fn kernel_args(
    meta: &KernelMeta,
    sets: &[Set],
    elem: DType,
    buffer: &mut dyn FnMut(&BufferReq) -> Result<ArgValue>,
) -> Result<KernelArgs> {
    let names: Vec<&str> = meta.params.iter().map(|p| p.name).collect();
    let param = |n: &str| meta.params.iter().find(|p| p.name == n);
    for s in sets {
        if meta.generics.contains(&s.name.as_str()) {
            dtype(&s.value).map_err(|e| usage(format!("--set {}={}: {e}", s.name, s.value)))?;
            continue;
        }
        let base = s.name.strip_suffix(".len").unwrap_or(&s.name);
        let Some(p) = param(base) else {
            return Err(usage(format!(
                "--set {}: kernel `{}` has no parameter `{base}` (it takes {})",
                s.name,
                meta.name,
                names.join(", ")
            )));
        };
        if base != s.name && p.kind != ParamKind::Ptr {
            return Err(usage(format!(
                "--set {}: only pointer parameters take a length; `{base}` is a {}",
                s.name, p.kind
            )));
        }
        if base == s.name && p.kind == ParamKind::Ptr {
            return Err(usage(format!(
                "--set {}: `{base}` is a pointer; give its length with --set {base}.len=N",
                s.name
            )));
        }
    }
    let get = |n: &str| {
        sets.iter()
            .rev()
            .find(|s| s.name == n)
            .map(|s| s.value.as_str())
    };
    let mut args = KernelArgs::new();
    let mut index = 0;
    for p in meta.params {
        let v = match p.kind {
            ParamKind::Ptr | ParamKind::Tensor => {
                let dtype = match p.generic {
                    Some(g) => get(g).and_then(DType::parse).unwrap_or(elem),
                    None => p.dtype.unwrap_or(DType::F32),
                };
                let (shape, len) = if p.kind == ParamKind::Tensor {
                    let s = get(p.name).ok_or_else(|| {
                        usage(format!(
                            "kernel `{}` needs a shape for tensor `{}: {}`: add --set {}=ROWSxCOLS",
                            meta.name, p.name, p.ty, p.name
                        ))
                    })?;
                    let s = shape(p, s)?;
                    let len = s[0].checked_mul(s[1]).ok_or_else(|| {
                        usage(format!(
                            "--set {}={}x{}: more elements than memory can address",
                            p.name, s[0], s[1]
                        ))
                    })?;
                    (Some(s), len)
                } else {
                    let key = format!("{}.len", p.name);
                    let len = match get(&key) {
                        None => DEFAULT_PTR_LEN,
                        Some(v) => match parse_size(v) {
                            Some(n) if n > 0 => n as usize,
                            _ => return Err(usage(format!("--set {key}={v}: a length is a whole number of elements (K, M suffixes)"))),
                        },
                    };
                    (None, len)
                };
                let req = BufferReq {
                    index,
                    param: p,
                    dtype,
                    shape,
                    len,
                };
                index += 1;
                buffer(&req)?
            }
            ParamKind::Scalar | ParamKind::Constexpr => {
                let v = get(p.name).ok_or_else(|| {
                    usage(format!(
                        "kernel `{}` needs a value for {} `{}: {}`: add --set {}=VALUE",
                        meta.name, p.kind, p.name, p.ty, p.name
                    ))
                })?;
                scalar(p, v)?
            }
        };
        args.set(p.name, v);
    }
    Ok(args)
}

/// A failed check, for results with wrong elements.
pub fn check(msg: impl Into<String>) -> Fail {
    Fail::Check(msg.into())
}

/// A comma-separated list of PEs.
#[derive(Clone, Debug)]
pub struct PeList(pub Vec<kernbench_core::PeId>);

/// Parses `sip.cube.pe[,sip.cube.pe...]` into PEs.
pub fn pe_list(s: &str) -> std::result::Result<PeList, String> {
    s.split(',')
        .map(|p| {
            let v: Vec<&str> = p.trim().split('.').collect();
            match v.as_slice() {
                [a, b, c] => match (a.parse(), b.parse(), c.parse()) {
                    (Ok(a), Ok(b), Ok(c)) => Ok(kernbench_core::PeId::new(a, b, c)),
                    _ => Err(format!("`{p}` is not a PE: write sip.cube.pe, e.g. 0.3.5")),
                },
                _ => Err(format!("`{p}` is not a PE: write sip.cube.pe, e.g. 0.3.5")),
            }
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map(PeList)
}

/// Parses a time window `FROM..TO` in ns.
pub fn window(s: &str) -> std::result::Result<(f64, f64), String> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| format!("`{s}` is not a window: write FROM..TO in ns, e.g. 0..5000"))?;
    let (a, b): (f64, f64) = match (a.trim().parse(), b.trim().parse()) {
        (Ok(a), Ok(b)) => (a, b),
        _ => return Err(format!("`{s}` is not a window of numbers (ns)")),
    };
    if !(a.is_finite() && b.is_finite() && a < b && a >= 0.0) {
        return Err(format!("`{s}`: the window must satisfy 0 <= FROM < TO"));
    }
    Ok((a, b))
}
