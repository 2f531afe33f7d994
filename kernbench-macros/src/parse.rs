//! Syntax -> model: reads a kernel's signature into a [`KernelModel`] and
//! reports everything in it that cannot be a kernel.

use crate::errors::Errors;
use proc_macro2::{Delimiter, Spacing, TokenStream, TokenTree};
use quote::ToTokens;
use syn::{
    Attribute, Expr, ExprLit, FnArg, GenericArgument, GenericParam, Ident, ItemFn, Lit, Meta, Pat,
    PathArguments, ReturnType, Type, Visibility,
};

/// The scalar types a `#[constexpr]` parameter may have (those `KernelParam` is implemented for).
const SCALARS: &[&str] = &[
    "usize", "u8", "u16", "u32", "u64", "isize", "i32", "i64", "f32", "f64", "bool",
];

/// Attributes a parameter may carry through to the body function.
const LINT_ATTRS: &[&str] = &["allow", "warn", "deny", "forbid", "expect"];

/// A kernel as the generator needs it.
pub(crate) struct KernelModel {
    /// The kernel's visibility, given to the generated struct.
    pub vis: Visibility,
    /// The function's name: the kernel's name and the struct's.
    pub name: Ident,
    /// The doc comment as text.
    pub doc: String,
    /// `#[doc]` attributes, for the struct.
    pub doc_attrs: Vec<Attribute>,
    /// `#[cfg]` attributes, for everything generated.
    pub cfg_attrs: Vec<Attribute>,
    /// Type parameters (element types), in order.
    pub generics: Vec<Ident>,
    /// For each type parameter, the accumulator type its bound requires
    /// (`Some("f32")` for `T: Element<Acc = f32>`).
    pub accs: Vec<Option<String>>,
    /// Parameters in order.
    pub params: Vec<Param>,
    /// The author's function as it will run: other attributes kept, parameter
    /// attributes stripped, body unchanged.
    pub body: ItemFn,
}

/// One kernel parameter.
pub(crate) struct Param {
    /// Its name (the launch argument's name).
    pub name: Ident,
    /// Its type as written.
    pub ty: Type,
    /// The type as text, for the metadata.
    pub ty_text: String,
    /// Marked `#[constexpr]`.
    pub constexpr: bool,
    /// The type parameter that is its element type (`T` of `Ptr<T>`).
    pub generic: Option<Ident>,
}

/// What parsing a kernel gives.
pub(crate) struct Parsed {
    /// The model, when the signature is a valid kernel signature.
    pub model: Option<KernelModel>,
    /// The function with what rustc would not accept on its own (`#[constexpr]`
    /// and unknown parameter attributes, `self`, variadics) removed: emitted
    /// when there is no model, and the body to check.
    pub stripped: ItemFn,
}

/// Reads `#[kernel] fn ...`, reporting every problem of its signature to `errors`.
pub(crate) fn kernel(func: ItemFn, errors: &mut Errors) -> Parsed {
    let mut problems = Errors::default();
    let sig = &func.sig;
    // In source order, so that the errors read top to bottom.
    if let Some(t) = &sig.constness {
        problems.push(syn::Error::new(
            t.span,
            "a kernel is traced at run time, not evaluated at compile time: remove `const`",
        ));
    }
    if let Some(t) = &sig.asyncness {
        problems.push(syn::Error::new(
            t.span,
            "a kernel is traced synchronously: remove `async`; to overlap a receive with other \
             work, use `tl::recv_async` and `tl::wait`",
        ));
    }
    if let Some(t) = &sig.unsafety {
        problems.push(syn::Error::new(
            t.span,
            "kernels cannot be `unsafe`: remove it; a kernel touches memory only through \
             `tl::load` and `tl::store`",
        ));
    }
    if let Some(abi) = &sig.abi {
        problems.push(syn::Error::new_spanned(
            abi,
            format!("kernels use the Rust ABI: remove `{}`", text(abi)),
        ));
    }
    let mut generics: Vec<Ident> = Vec::new();
    let mut accs: Vec<Option<String>> = Vec::new();
    for p in &sig.generics.params {
        let msg = match p {
            GenericParam::Type(t) => match element_param(t) {
                Ok(acc) => {
                    generics.push(t.ident.clone());
                    accs.push(acc);
                    continue;
                }
                Err(msg) => msg,
            },
            GenericParam::Const(c) => format!(
                "kernels take no const generics: make `{0}` a parameter instead: \
                 `#[constexpr] {0}: {1}`",
                c.ident,
                text(&c.ty)
            ),
            GenericParam::Lifetime(l) => format!(
                "kernel parameters hold no references, so need no lifetimes: remove `{}`",
                l.lifetime
            ),
        };
        problems.push(syn::Error::new_spanned(p, msg));
    }

    let mut stripped = func.clone();
    stripped.sig.variadic = None;
    stripped.sig.inputs = Default::default();
    let mut params = Vec::new();
    for arg in &func.sig.inputs {
        let pt = match arg {
            FnArg::Receiver(r) => {
                problems.push(syn::Error::new_spanned(
                    r,
                    "a kernel is a free function, not a method: remove `self` and pass what the \
                     kernel reads as `Ptr<T>` or scalar parameters",
                ));
                continue;
            }
            FnArg::Typed(pt) => pt,
        };
        let mut pt = pt.clone();
        let constexpr = param_attrs(&mut pt.attrs, &mut problems);
        stripped.sig.inputs.push(FnArg::Typed(pt.clone()));

        let name = match &*pt.pat {
            Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => Some(p.ident.clone()),
            Pat::Wild(_) => {
                problems.push(syn::Error::new_spanned(
                    &pt.pat,
                    "every kernel parameter needs a name, since launch arguments are bound by \
                     name: write `name: T` (start it with `_`, as in `_n`, if the body does not \
                     use it)",
                ));
                None
            }
            other => {
                problems.push(syn::Error::new_spanned(
                    other,
                    "kernel parameters are bound by name: write a plain name, `x: T`, and \
                     destructure in the body",
                ));
                None
            }
        };
        let ty = (*pt.ty).clone();
        let generic = element_of(&ty, &generics);
        if let Some(msg) = param_type_problem(&ty) {
            problems.push(syn::Error::new_spanned(&ty, msg));
        } else if generic.is_none() && mentions(&ty, &generics) {
            problems.push(syn::Error::new_spanned(
                &ty,
                format!(
                    "a kernel's type parameter is the element type of its pointers and tensors \
                     only: write `Ptr<T>` or `Tensor<T>`, and a scalar as a concrete type such \
                     as `f32` (`{}` cannot be bound from a launch)",
                    text(&ty)
                ),
            ));
        } else if constexpr && generic.is_some() {
            problems.push(syn::Error::new_spanned(
                &ty,
                "a `#[constexpr]` parameter is a scalar or an enum, not a pointer: remove \
                 `#[constexpr]`",
            ));
        } else if constexpr && !is_scalar(&ty) && !is_enum_like(&ty) {
            problems.push(syn::Error::new_spanned(
                &ty,
                format!(
                    "a `#[constexpr]` parameter is a scalar or an enum: write an integer, \
                     float or bool type such as `usize`, or an enum with \
                     `#[derive(KernelEnum)]` (`{}` is neither), or remove `#[constexpr]`",
                    text(&ty)
                ),
            ));
        }
        if let Some(name) = name {
            params.push(Param {
                name,
                ty_text: text(&ty),
                ty,
                constexpr,
                generic,
            });
        }
    }

    if let Some(v) = &sig.variadic {
        problems.push(syn::Error::new_spanned(
            v,
            "kernels cannot be variadic: list each parameter with its name and type",
        ));
    }
    if let ReturnType::Type(..) = &sig.output {
        problems.push(syn::Error::new_spanned(
            &sig.output,
            "a kernel returns nothing: it writes results through pointers with `tl::store`; \
             remove the return type",
        ));
    }
    if let Some(w) = &sig.generics.where_clause {
        problems.push(syn::Error::new_spanned(
            w,
            "a kernel takes no `where` clause: its type parameters are element types, written \
             `<T: Element>`; remove the `where` clause",
        ));
    }
    for g in &generics {
        if !params.iter().any(|p| p.generic.as_ref() == Some(g)) {
            problems.push(syn::Error::new_spanned(
                g,
                format!(
                    "a launch binds `{g}` from the buffer of a `Ptr<{g}>` or `Tensor<{g}>` \
                     parameter, and the kernel has none: add one, or remove `{g}`"
                ),
            ));
        }
    }

    let ok = problems.is_empty();
    errors.push_all(problems);
    if !ok {
        return Parsed {
            model: None,
            stripped,
        };
    }

    let mut doc_attrs = Vec::new();
    let mut cfg_attrs = Vec::new();
    let mut other_attrs = Vec::new();
    for a in &stripped.attrs {
        if a.path().is_ident("doc") {
            doc_attrs.push(a.clone());
        } else if a.path().is_ident("cfg") {
            cfg_attrs.push(a.clone());
        } else {
            other_attrs.push(a.clone());
        }
    }
    let body = ItemFn {
        attrs: other_attrs,
        vis: Visibility::Inherited,
        ..stripped.clone()
    };
    let model = KernelModel {
        vis: func.vis.clone(),
        name: func.sig.ident.clone(),
        doc: doc_text(&doc_attrs),
        doc_attrs,
        cfg_attrs,
        generics,
        accs,
        params,
        body,
    };
    Parsed {
        model: Some(model),
        stripped,
    }
}

/// Reads `#[kernel_fn] fn ...`: its signature is free but for `async` and
/// `unsafe`; `#[constexpr]` on its parameters is reported and stripped.
pub(crate) fn kernel_fn(mut func: ItemFn, errors: &mut Errors) -> ItemFn {
    if let Some(t) = &func.sig.asyncness {
        errors.push(syn::Error::new(
            t.span,
            "a `#[kernel_fn]` runs inside a synchronous trace: remove `async`; to overlap a \
             receive with other work, use `tl::recv_async` and `tl::wait`",
        ));
    }
    if let Some(t) = &func.sig.unsafety {
        errors.push(syn::Error::new(
            t.span,
            "a `#[kernel_fn]` cannot be `unsafe`: remove it; kernel code touches memory only \
             through `tl::load` and `tl::store`",
        ));
    }
    for arg in &mut func.sig.inputs {
        if let FnArg::Typed(pt) = arg {
            pt.attrs.retain(|a| {
                if a.path().is_ident("constexpr") {
                    errors.push(syn::Error::new_spanned(
                        a,
                        "`#[constexpr]` marks kernel parameters; a `#[kernel_fn]` helper takes \
                         plain values: remove it",
                    ));
                    false
                } else {
                    true
                }
            });
        }
    }
    func
}

/// Sorts a parameter's attributes: removes `#[constexpr]` (returning whether
/// it was there) and anything but lint attributes, reporting what is wrong.
fn param_attrs(attrs: &mut Vec<Attribute>, problems: &mut Errors) -> bool {
    let mut constexpr = false;
    attrs.retain(|a| {
        let path = a.path();
        if path.is_ident("constexpr") {
            if !matches!(a.meta, Meta::Path(_)) {
                problems.push(syn::Error::new_spanned(
                    a,
                    "`#[constexpr]` takes no arguments: write `#[constexpr] name: usize`",
                ));
            } else if constexpr {
                problems.push(syn::Error::new_spanned(
                    a,
                    "`#[constexpr]` is given twice: remove one",
                ));
            }
            constexpr = true;
            false
        } else if LINT_ATTRS.iter().any(|l| path.is_ident(l)) {
            true
        } else {
            problems.push(syn::Error::new_spanned(
                a,
                format!(
                    "unknown parameter attribute `#[{}]`: a kernel parameter takes only \
                     `#[constexpr]` (and lint attributes such as `#[allow(..)]`)",
                    text(path)
                ),
            ));
            false
        }
    });
    constexpr
}

/// Why a type cannot be a kernel parameter, with what to write instead; `None`
/// when it may be one as far as syntax tells (the `KernelParam` bound checks the rest).
fn param_type_problem(ty: &Type) -> Option<String> {
    const ANY: &str = "write `Ptr<T>`, `Tensor<T>`, or a scalar such as `usize`";
    match ty {
        Type::Paren(p) => param_type_problem(&p.elem),
        Type::Group(g) => param_type_problem(&g.elem),
        Type::Reference(r) => Some(reference_problem(r)),
        Type::Slice(s) => Some(host_memory("a slice", &s.elem)),
        Type::Array(a) => Some(host_memory("an array", &a.elem)),
        Type::Ptr(p) => Some(host_memory("a raw pointer", &p.elem)),
        Type::ImplTrait(_) => Some(format!(
            "`impl Trait` cannot be bound to a launch argument: write a concrete type: {}",
            &ANY["write ".len()..]
        )),
        Type::TraitObject(_)
        | Type::BareFn(_)
        | Type::Tuple(_)
        | Type::Never(_)
        | Type::Infer(_) => Some(format!(
            "`{}` cannot be a kernel parameter: {ANY}",
            text(ty)
        )),
        Type::Path(p) if p.qself.is_none() => {
            let last = p.path.segments.last()?;
            let name = last.ident.to_string();
            match name.as_str() {
                "Vec" | "VecDeque" | "Box" | "Rc" | "Arc" => {
                    let elem =
                        first_type_arg(&last.arguments).map_or("T".to_string(), |t| match t {
                            Type::Slice(s) => text(&s.elem),
                            t => text(t),
                        });
                    Some(format!(
                        "`{}` is host memory: kernels take device pointers; write `Ptr<{elem}>`",
                        text(ty)
                    ))
                }
                "String" | "str" | "OsString" | "PathBuf" => Some(strings(ty)),
                "Tile" => Some(format!(
                    "`{}` cannot be passed into a kernel: pass the data as `Ptr<T>` (or \
                     `Tensor<T>`) and `tl::load` it in the body",
                    text(ty)
                )),
                _ => None,
            }
        }
        _ => None,
    }
}

fn reference_problem(r: &syn::TypeReference) -> String {
    let mut inner = &*r.elem;
    while let Type::Paren(syn::TypeParen { elem, .. }) | Type::Group(syn::TypeGroup { elem, .. }) =
        inner
    {
        inner = elem;
    }
    let elem = match inner {
        Type::Slice(s) => Some(&*s.elem),
        Type::Array(a) => Some(&*a.elem),
        Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "Vec") => {
            first_type_arg(&p.path.segments.last().unwrap().arguments)
        }
        _ => None,
    };
    if let Some(elem) = elem {
        return format!(
            "kernels take device pointers, not references to host memory: write `Ptr<{}>`",
            text(elem)
        );
    }
    if is_scalar(inner) {
        return if r.mutability.is_some() {
            format!(
                "a kernel cannot write to host memory: pass a `Ptr<{0}>` and write it with \
                 `tl::store`, or take the scalar by value: `{0}`",
                text(inner)
            )
        } else {
            format!("scalars are passed by value: write `{}`", text(inner))
        };
    }
    if let Type::Path(p) = inner {
        let last = p
            .path
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .unwrap_or_default();
        match last.as_str() {
            "Ptr" | "Tensor" => {
                return format!(
                    "device pointers are passed by value: write `{}`",
                    text(inner)
                )
            }
            "str" | "String" => return strings(inner),
            _ => {}
        }
    }
    format!(
        "kernels take device pointers, not references to host data: write `Ptr<{}>`",
        text(inner)
    )
}

fn host_memory(what: &str, elem: &Type) -> String {
    format!(
        "{what} is host memory: kernels take device pointers; write `Ptr<{}>`",
        text(elem)
    )
}

fn strings(ty: &Type) -> String {
    format!(
        "`{}` has no meaning on the device: pass a number, or a `#[constexpr]` scalar",
        text(ty)
    )
}

fn first_type_arg(args: &PathArguments) -> Option<&Type> {
    match args {
        PathArguments::AngleBracketed(a) => a.args.iter().find_map(|a| match a {
            GenericArgument::Type(t) => Some(t),
            _ => None,
        }),
        _ => None,
    }
}

/// The accumulator type a kernel's type parameter requires (`T: Element`
/// requires none, `T: Element<Acc = f32>` requires `f32`), or what is wrong
/// with it: it must be one of these, nothing more.
fn element_param(t: &syn::TypeParam) -> Result<Option<String>, String> {
    let id = &t.ident;
    let write = format!(
        "a kernel's type parameter is an element type, which the launch's buffers give: write \
         `{id}: Element` (`{id}: Element<Acc = f32>` for f32, f16 and bf16 only)"
    );
    if t.default.is_some() {
        return Err(format!("{write}, without a default"));
    }
    let other = || {
        Err(format!(
            "{write}; `{}` cannot be chosen at launch",
            text(&t.bounds)
        ))
    };
    let mut bounds = t.bounds.iter();
    let (Some(syn::TypeParamBound::Trait(b)), None) = (bounds.next(), bounds.next()) else {
        return if t.bounds.is_empty() {
            Err(format!("{write}; `{id}` has no bound"))
        } else {
            other()
        };
    };
    let Some(last) = b.path.segments.last() else {
        return other();
    };
    if b.lifetimes.is_some()
        || !matches!(b.modifier, syn::TraitBoundModifier::None)
        || last.ident != "Element"
    {
        return other();
    }
    match &last.arguments {
        PathArguments::None => Ok(None),
        PathArguments::AngleBracketed(a) if a.args.len() == 1 => match &a.args[0] {
            GenericArgument::AssocType(at) if at.ident == "Acc" && at.generics.is_none() => {
                let acc = text(&at.ty);
                if ["f32", "i32", "bool"].contains(&acc.as_str()) {
                    Ok(Some(acc))
                } else {
                    other()
                }
            }
            _ => other(),
        },
        _ => other(),
    }
}

/// The type parameter of `generics` that `ty` has as its element type:
/// `T` for `Ptr<T>` or `Tensor<T>` (any path whose one argument is `T`).
fn element_of(ty: &Type, generics: &[Ident]) -> Option<Ident> {
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    let PathArguments::AngleBracketed(a) = &last.arguments else {
        return None;
    };
    if a.args.len() != 1 {
        return None;
    }
    match first_type_arg(&last.arguments)? {
        Type::Path(t) if t.qself.is_none() => {
            let id = t.path.get_ident()?;
            generics.iter().find(|g| *g == id).cloned()
        }
        _ => None,
    }
}

/// `true` when `ty` names one of `generics` anywhere.
fn mentions(ty: &Type, generics: &[Ident]) -> bool {
    fn walk(ts: TokenStream, generics: &[Ident]) -> bool {
        ts.into_iter().any(|t| match t {
            TokenTree::Ident(i) => generics.contains(&i),
            TokenTree::Group(g) => walk(g.stream(), generics),
            _ => false,
        })
    }
    walk(ty.to_token_stream(), generics)
}

/// `true` for a type that may be an enum with `#[derive(KernelEnum)]`: a
/// capitalised path without type arguments that is not a kernel-language or
/// host type (the `KernelParam` bound and a check of its kind do the rest).
fn is_enum_like(ty: &Type) -> bool {
    let Type::Path(p) = ty else { return false };
    if p.qself.is_some() || !p.path.segments.iter().all(|s| s.arguments.is_none()) {
        return false;
    }
    let Some(last) = p.path.segments.last() else {
        return false;
    };
    let name = last.ident.to_string();
    name.starts_with(|c: char| c.is_ascii_uppercase())
        && !matches!(
            name.as_str(),
            "Ptr" | "Tensor" | "Tile" | "Block" | "Dir" | "Peer" | "RecvFuture" | "Self"
        )
}

/// `true` for the scalar types a `#[constexpr]` parameter may have.
fn is_scalar(ty: &Type) -> bool {
    let Type::Path(p) = ty else { return false };
    if p.qself.is_some() {
        return false;
    }
    let segs: Vec<String> = p
        .path
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    let plain = p.path.segments.iter().all(|s| s.arguments.is_none());
    let prefix_ok = match segs.len() {
        1 => p.path.leading_colon.is_none(),
        3 => (segs[0] == "core" || segs[0] == "std") && segs[1] == "primitive",
        _ => false,
    };
    plain && prefix_ok && SCALARS.contains(&segs[segs.len() - 1].as_str())
}

/// The doc comment of `#[doc = "..."]` attributes as text: one leading space
/// of each line removed (as rustdoc does), surrounding blank lines trimmed.
fn doc_text(attrs: &[Attribute]) -> String {
    let mut lines = Vec::new();
    for a in attrs {
        if let Meta::NameValue(nv) = &a.meta {
            if let Expr::Lit(ExprLit {
                lit: Lit::Str(s), ..
            }) = &nv.value
            {
                for line in s.value().lines() {
                    lines.push(
                        line.strip_prefix(' ')
                            .unwrap_or(line)
                            .trim_end()
                            .to_string(),
                    );
                }
            }
        }
    }
    lines.join("\n").trim_matches('\n').to_string()
}

/// Tokens as compact text: `Ptr<f16>`, `&mut [f32]`, `core::primitive::usize`.
pub(crate) fn text(t: &impl ToTokens) -> String {
    let mut out = String::new();
    write_tokens(t.to_token_stream(), &mut out);
    out
}

fn write_tokens(ts: TokenStream, out: &mut String) {
    let mut prev_word = false;
    for tt in ts {
        match tt {
            TokenTree::Ident(_) | TokenTree::Literal(_) => {
                if prev_word {
                    out.push(' ');
                }
                out.push_str(&tt.to_string());
                prev_word = true;
            }
            TokenTree::Punct(p) => {
                let c = p.as_char();
                let spaced = c == '+'
                    || c == '='
                        && p.spacing() == Spacing::Alone
                        && !out.ends_with(['=', '!', '<', '>']);
                if spaced {
                    out.push(' ');
                }
                out.push(c);
                if spaced || matches!(c, ',' | ';') {
                    out.push(' ');
                }
                prev_word = false;
            }
            TokenTree::Group(g) => {
                let (open, close) = match g.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Brace => ("{", "}"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::None => ("", ""),
                };
                if prev_word && matches!(g.delimiter(), Delimiter::Brace | Delimiter::Bracket) {
                    out.push(' ');
                }
                out.push_str(open);
                write_tokens(g.stream(), out);
                out.push_str(close);
                prev_word = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    #[test]
    fn types_print_compactly() {
        let t: Type = parse_quote!(Ptr<half::f16>);
        assert_eq!(text(&t), "Ptr<half::f16>");
        let t: Type = parse_quote!(&'a mut [f32; 4]);
        assert_eq!(text(&t), "&'a mut [f32; 4]");
        let t: Type = parse_quote!(Box<dyn Fn(u8) -> u8 + Send>);
        assert_eq!(text(&t), "Box<dyn Fn(u8)->u8 + Send>");
    }

    #[test]
    fn scalars() {
        for t in [
            parse_quote!(usize),
            parse_quote!(core::primitive::f32),
            parse_quote!(bool),
        ] {
            assert!(is_scalar(&t), "{}", text(&t));
        }
        for t in [
            parse_quote!(Ptr<f16>),
            parse_quote!(i8),
            parse_quote!(a::usize),
            parse_quote!(&usize),
        ] {
            assert!(!is_scalar(&t), "{}", text(&t));
        }
    }

    #[test]
    fn suggestions_name_the_element_type() {
        let cases: [(Type, &str); 8] = [
            (parse_quote!(&[f32]), "write `Ptr<f32>`"),
            (parse_quote!(&mut Vec<f16>), "write `Ptr<f16>`"),
            (parse_quote!(&usize), "write `usize`"),
            (parse_quote!(&Ptr<f16>), "write `Ptr<f16>`"),
            (parse_quote!(Box<[bf16]>), "write `Ptr<bf16>`"),
            (parse_quote!(*const i32), "write `Ptr<i32>`"),
            (parse_quote!(impl Copy), "a concrete type"),
            (parse_quote!(Tile<f32>), "`tl::load` it"),
        ];
        for (ty, want) in cases {
            let got = param_type_problem(&ty).unwrap();
            assert!(got.contains(want), "{}: {got}", text(&ty));
        }
        assert!(param_type_problem(&parse_quote!(Ptr<f16>)).is_none());
        assert!(param_type_problem(&parse_quote!(Tensor<f32>)).is_none());
    }

    #[test]
    fn doc_text_strips_one_space() {
        let f: ItemFn = parse_quote! {
            /// First.
            ///   Indented.
            ///
            fn f() {}
        };
        assert_eq!(doc_text(&f.attrs), "First.\n  Indented.");
    }
}
