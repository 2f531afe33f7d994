//! `kernbench list`: the registered kernels and the registry's collective algorithms.

use super::user::Catalog;
use super::{out, usage, Result};
use clap::Args;
use kernbench_ccl::{Algorithm, Registry};

use kernbench_core::ir::ParamKind;
use serde::Serialize;
use std::fmt::Write as _;
use std::io::Write;

/// Flags of `kernbench list`.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// Print JSON: `{"kernels": [...], "algorithms": [...]}`.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Param {
    name: &'static str,
    kind: ParamKind,
    dtype: Option<&'static str>,
    /// The type parameter that is its element type, for a generic kernel.
    #[serde(skip_serializing_if = "Option::is_none")]
    generic: Option<&'static str>,
    /// An enum parameter's values.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    variants: &'static [&'static str],
    ty: &'static str,
}

#[derive(Serialize)]
struct KernelInfo {
    name: &'static str,
    /// Type parameters: element types a launch's buffers give.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    generics: &'static [&'static str],
    params: Vec<Param>,
    file: &'static str,
    line: u32,
    module: &'static str,
    doc: String,
    /// The defaults the program gives, as `--set` values (`n=4096`, `x.len=4096`, `grid=4`).
    #[serde(skip_serializing_if = "String::is_empty")]
    defaults: String,
}

#[derive(Serialize)]
struct Listing<'a> {
    kernels: Vec<KernelInfo>,
    algorithms: &'a [Algorithm],
}

/// The first sentence of a doc comment's first paragraph (its first line when
/// that paragraph has no sentence end).
fn first_line(doc: &str) -> String {
    let para: Vec<&str> = doc
        .lines()
        .map(str::trim)
        .skip_while(|l| l.is_empty())
        .take_while(|l| !l.is_empty())
        .collect();
    let para = para.join(" ");
    match para.find(". ") {
        Some(i) => para[..=i].to_string(),
        None => para,
    }
}

fn signature(k: &KernelInfo) -> String {
    let ps: Vec<String> = k
        .params
        .iter()
        .map(|p| match (p.kind, p.dtype.or(p.generic)) {
            (ParamKind::Ptr, Some(d)) => format!("{}: ptr<{d}>", p.name),
            (ParamKind::Tensor, Some(d)) => format!("{}: tensor<{d}>", p.name),
            (ParamKind::Constexpr, _) => format!("const {}: {}", p.name, p.ty),
            _ => format!("{}: {}", p.name, p.ty),
        })
        .collect();
    let generics = if k.generics.is_empty() {
        String::new()
    } else {
        format!("<{}>", k.generics.join(", "))
    };
    format!("{}{generics}({})", k.name, ps.join(", "))
}

/// Runs `kernbench list`.
pub(crate) fn run(a: &ListArgs, cat: &Catalog, w: &mut dyn Write) -> Result<()> {
    let kernels: Vec<KernelInfo> = cat
        .kernels()
        .iter()
        .map(|(k, defaults)| {
            let m = k.meta();
            KernelInfo {
                name: m.name,
                generics: m.generics,
                params: m
                    .params
                    .iter()
                    .map(|p| Param {
                        name: p.name,
                        kind: p.kind,
                        dtype: p.dtype.map(|d| d.name()),
                        generic: p.generic,
                        variants: p.variants,
                        ty: p.ty,
                    })
                    .collect(),
                file: m.file,
                line: m.line,
                module: m.module,
                doc: first_line(m.doc),
                defaults: defaults.describe(),
            }
        })
        .collect();
    let algorithms = cat.algorithms(
        &Registry::try_builtin().map_err(super::usage)?,
        "configs/ccl.yaml",
    )?;
    if a.json {
        let l = Listing {
            kernels,
            algorithms: &algorithms,
        };
        return out(
            w,
            &format!("{}\n", serde_json::to_string_pretty(&l).map_err(usage)?),
        );
    }
    let mut s = String::new();
    writeln!(s, "kernels ({}):", kernels.len()).unwrap();
    for k in &kernels {
        writeln!(s, "  {}", signature(k)).unwrap();
        writeln!(s, "      {}:{}  {}", k.file, k.line, k.doc).unwrap();
        if !k.defaults.is_empty() {
            writeln!(s, "      defaults: {}", k.defaults).unwrap();
        }
    }
    let own = cat.own_algorithms().len();
    let from = if own == 0 {
        "configs/ccl.yaml".to_string()
    } else {
        format!(
            "{} from configs/ccl.yaml, {own} from this program",
            algorithms.len() - own
        )
    };
    writeln!(s, "\ncollective algorithms ({}, {from}):", algorithms.len()).unwrap();
    writeln!(
        s,
        "  {:<24} {:<15} {:<24} {:<13} {:<7} {:>9} {:>6}",
        "name", "collective", "kernel", "map", "buffer", "seg_bytes", "world"
    )
    .unwrap();
    for al in &algorithms {
        writeln!(
            s,
            "  {:<24} {:<15} {:<24} {:<13} {:<7} {:>9} {:>6}",
            al.name,
            al.collective.name(),
            format!("{}_<type>", al.kernel),
            al.map_name(),
            format!("{:?}", al.ipcq.buffer).to_lowercase(),
            al.seg_bytes,
            al.world.map_or("all".to_string(), |w| w.to_string())
        )
        .unwrap();
    }
    out(w, &s)
}
