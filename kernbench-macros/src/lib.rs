//! `#[kernel]` and `#[kernel_fn]`: the compile-time half of the KernBench kernel language.
//!
//! Kernel authors do not depend on this crate directly; they import the macros
//! through `kernbench::prelude::*` (or `kernbench_tl::prelude::*`):
//!
//! ```
//! use kernbench_tl::prelude::*;
//!
//! /// Each PE sends its slice east and stores what arrives from the west.
//! #[kernel]
//! pub fn hello_send(t: Ptr<f16>, n_elem: usize, #[constexpr] block: usize) {
//!     let rank = tl::program_id(1) * tl::num_programs(0) + tl::program_id(0);
//!     let x = tl::load(t.offset(rank * n_elem), [n_elem]);
//!     tl::send(Dir::E, &x);
//!     let y = tl::recv::<f16>(Dir::W, [n_elem]);
//!     tl::store(t.offset(rank * n_elem), &y);
//! }
//!
//! let args = KernelArgs::new()
//!     .with("t", ArgValue::Ptr { va: 0x1000_0000, dtype: DType::F16, len: 16 * 1024 })
//!     .int("n_elem", 1024)
//!     .int("block", 64);
//! let g = kernbench_tl::trace(&hello_send, &args, &[8, 2], &[3, 1]).unwrap();
//! assert!(g.to_text().contains("send E"));
//! ```
//!
//! # What `#[kernel]` generates
//!
//! The function becomes a unit struct of the same name and visibility (carrying
//! the function's doc comment) that implements `kernbench_tl::Kernel`, its
//! typed argument builder (see below), plus a registration with `inventory` so that `kernbench_tl::registered_kernels()`
//! lists it. For the kernel above the expansion is, in outline:
//!
//! ```text
//! /// Each PE sends its slice east and stores what arrives from the west.
//! #[allow(non_camel_case_types)]
//! #[derive(Clone, Copy, Debug, Default)]
//! pub struct hello_send;
//! const _: () = {
//!     static __KB_META: ::kernbench_tl::KernelMeta = ::kernbench_tl::KernelMeta {
//!         name: "hello_send",
//!         generics: &[],
//!         params: &[
//!             ParamMeta { name: "t", kind: <Ptr<f16> as KernelParam>::KIND,
//!                         dtype: <Ptr<f16> as KernelParam>::DTYPE, ty: "Ptr<f16>" },
//!             ParamMeta { name: "n_elem", kind: <usize as KernelParam>::KIND, .. },
//!             ParamMeta { name: "block", kind: ParamKind::Constexpr, .. },
//!         ],
//!         file: file!(), line: /* the line of `hello_send` */, module: module_path!(),
//!         doc: "Each PE sends ...",
//!     };
//!     impl ::kernbench_tl::Kernel for hello_send {
//!         fn meta(&self) -> &'static KernelMeta { &__KB_META }
//!         fn run_body(&self, __kb_args: &KernelArgs) -> Result<(), TraceError> {
//!             fn __kb_body(t: Ptr<f16>, n_elem: usize, block: usize) { /* the body, unchanged */ }
//!             let __kb_p0 = ::kernbench_tl::bind_param::<Ptr<f16>>(__kb_args, &__KB_META, 0u16, "t")?;
//!             let __kb_p1 = ::kernbench_tl::bind_param::<usize>(__kb_args, &__KB_META, 1u16, "n_elem")?;
//!             let __kb_p2 = ::kernbench_tl::bind_param::<usize>(__kb_args, &__KB_META, 2u16, "block")?;
//!             __kb_body(__kb_p0, __kb_p1, __kb_p2);
//!             Ok(())
//!         }
//!     }
//!     ::kernbench_tl::inventory::submit! { ::kernbench_tl::KernelEntry { kernel: &hello_send } }
//! };
//! ```
//!
//! The body is kept as written inside `__kb_body`, so `return` works, spans
//! (and so lints and type errors) stay the author's, and every `tl::` call
//! records its own source line through `#[track_caller]`; the macro does not
//! rewrite calls. Attributes on the function other than doc comments and
//! `#[cfg]` go onto `__kb_body`; `#[cfg]` goes onto everything generated.
//!
//! Generated code names absolute paths only. The path of the language crate
//! is found with `proc-macro-crate`: `::kernbench_tl` when the calling package
//! depends on `kernbench-tl` (or is it), else `::kernbench::__private::tl`
//! when it depends on `kernbench`; with neither, the expansion is a compile
//! error saying which dependency to add.
//!
//! # Parameters
//!
//! Each parameter is `name: Type` where `Type` implements
//! `kernbench_tl::KernelParam`: `Ptr<T>`, `Tensor<T>`, an integer, a float,
//! `bool`, or an enum with `#[derive(KernelEnum)]`. Arguments are bound by
//! name at launch. A parameter marked `#[constexpr]` must be a scalar or such
//! an enum; it is recorded as `ParamKind::Constexpr`, is part of the kernel's
//! specialisation key, and is printed in the graph header as
//! `const name = value` (an enum by its variant's name).
//!
//! # Generic kernels
//!
//! A kernel may take element types as type parameters, each bounded by
//! `Element` (or `Element<Acc = f32>`, `i32` or `bool`, for the types that
//! accumulate so) and each the element type of at least one `Ptr<T>` or
//! `Tensor<T>` parameter:
//!
//! ```
//! use kernbench_tl::prelude::*;
//!
//! #[kernel]
//! fn scale<T: Element>(x: Ptr<T>, n: usize) {
//!     tl::store(x, &(tl::load(x, [n]) * 2.0));
//! }
//!
//! for dtype in [DType::F32, DType::F16] {
//!     let args = KernelArgs::new()
//!         .with("x", ArgValue::Ptr { va: 0x1000_0000, dtype, len: 64 })
//!         .int("n", 64);
//!     let g = kernbench_tl::trace(&scale, &args, &[1], &[0]).unwrap();
//!     assert!(g.to_text().contains(&format!("tile<{dtype},[64]>")));
//! }
//! ```
//!
//! The body is instantiated for every element type; at launch the buffers
//! of a type parameter's pointers choose which instance runs. Pointers of one
//! type parameter whose buffers hold different types are an argument error
//! naming both parameters.
//!
//! # The typed argument builder
//!
//! `#[kernel] fn scale(..)` also generates `ScaleArgs` (the kernel's name in
//! camel case, then `Args`) and `scale::args()`, with one method per
//! parameter, named like it: a pointer takes a `&Buffer`, a tensor a
//! `TensorRef` (`buf.view(rows, cols)?`), a scalar or enum its own type. An
//! unknown name or a wrong type is a compile error. The builder converts into
//! `KernelArgs` (`.into()`), and `Launch::new` takes it as it is.
//!
//! # What is rejected
//!
//! Every error is reported (not just the first), each at its own span, with a
//! message that says what to write instead. On error the macro still emits
//! the function (with `#[constexpr]` stripped) so that tools keep
//! understanding the code.
//!
//! - In the signature: `self`, references, slices, arrays and raw pointers
//!   (kernels take `Ptr<T>`), host containers (`Vec`, `Box`, `String`, ...),
//!   `impl Trait` and other non-bindable types, type parameters with another
//!   bound or none, type parameters no pointer or tensor has as its element
//!   type, scalar parameters of a type parameter's type, const-generic and
//!   lifetime parameters and `where` clauses, a return type, `async`, `unsafe`,
//!   `const`, an `extern` ABI, variadics, patterns other than a plain name,
//!   attributes on parameters other than `#[constexpr]` and lint attributes,
//!   and `#[constexpr]` on what is neither a scalar nor an enum.
//! - In the body (of kernels and of `#[kernel_fn]` helpers): `unsafe` blocks,
//!   `async` blocks and `.await`, `loop` and `while` (write `for i in 0..n`),
//!   closures, `static` items and `thread_local!`, host I/O (`println!`,
//!   `print!`, `eprintln!`, `eprint!`, `dbg!`, and paths into `std::fs`,
//!   `std::io`, `std::net`, `std::process`, `std::env`), and threads
//!   (`std::thread`, `rayon`, `.par_iter()`).
//!
//! Items nested in a body (helper `fn`s, `impl` blocks) are allowed and their
//! bodies are checked as kernel code; a nested fn marked `#[kernel_fn]` is
//! checked by its own expansion instead.
//!
//! # `#[kernel_fn]`
//!
//! Marks a helper that kernels call. Its body gets the same checks as a
//! kernel's; its signature is free (helpers take tiles by reference, are
//! generic, return values), except that it may not be `async` or `unsafe`.
//! The function is emitted unchanged.
#![warn(missing_docs)]

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::quote;

mod check;
mod errors;
mod generate;
mod parse;

use errors::Errors;

/// Turns a function into a KernBench kernel.
///
/// Write it on a free function whose parameters are `Ptr<T>`, `Tensor<T>`,
/// scalars, or `#[constexpr]` scalars, and whose body calls `tl::*`. See the
/// [crate docs](crate) for what it generates and what it rejects.
#[proc_macro_attribute]
pub fn kernel(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand_kernel(attr.into(), item.into(), resolve_tl_path).into()
}

/// Marks a helper function that kernels call: its body is checked like a
/// kernel body; the function itself is emitted unchanged.
#[proc_macro_attribute]
pub fn kernel_fn(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand_kernel_fn(attr.into(), item.into()).into()
}

/// Makes a field-less enum a kernel parameter type, usually of a
/// `#[constexpr]` parameter (`#[constexpr] op: RedOp`).
///
/// A launch gives the value as its code, the variant's position (`0` for the
/// first); graphs and the command line name it by the variant's name in lower
/// case (`Sum` -> `sum`). Implements `kernbench_tl::KernelEnum` and
/// `kernbench_tl::KernelParam`.
#[proc_macro_derive(KernelEnum)]
pub fn derive_kernel_enum(item: TokenStream) -> TokenStream {
    expand_kernel_enum(item.into(), resolve_tl_path).into()
}

/// `#[derive(KernelEnum)]` on token streams.
fn expand_kernel_enum(
    item: TokenStream2,
    tl_path: impl FnOnce() -> Result<TokenStream2, String>,
) -> TokenStream2 {
    let input: syn::DeriveInput = match syn::parse2(item) {
        Ok(i) => i,
        Err(e) => return e.to_compile_error(),
    };
    let syn::Data::Enum(data) = &input.data else {
        return syn::Error::new_spanned(
            &input.ident,
            "`#[derive(KernelEnum)]` goes on an enum whose variants have no fields",
        )
        .to_compile_error();
    };
    let mut errors = Errors::default();
    if !input.generics.params.is_empty() {
        errors.push(syn::Error::new_spanned(
            &input.generics,
            "a kernel enum is a plain list of values: remove the generic parameters",
        ));
    }
    for v in &data.variants {
        if !matches!(v.fields, syn::Fields::Unit) {
            errors.push(syn::Error::new_spanned(
                v,
                "a kernel enum's variants carry no data (a launch passes one code): remove the fields",
            ));
        }
        if let Some((_, d)) = &v.discriminant {
            errors.push(syn::Error::new_spanned(
                d,
                "a kernel enum's codes are the variants' positions: remove the discriminant",
            ));
        }
    }
    if data.variants.is_empty() {
        errors.push(syn::Error::new_spanned(
            &input.ident,
            "a kernel enum needs at least one variant",
        ));
    }
    let tl = match tl_path() {
        Ok(tl) => tl,
        Err(msg) => {
            errors.push(syn::Error::new(Span::call_site(), msg));
            return errors.emit_with(quote!());
        }
    };
    if !errors.is_empty() {
        return errors.emit_with(quote!());
    }
    let name = &input.ident;
    let name_str = name.to_string();
    let idents: Vec<&syn::Ident> = data.variants.iter().map(|v| &v.ident).collect();
    let names: Vec<String> = idents
        .iter()
        .map(|i| {
            use syn::ext::IdentExt;
            i.unraw().to_string().to_lowercase()
        })
        .collect();
    let codes: Vec<usize> = (0..idents.len()).collect();
    quote! {
        impl #tl::KernelEnum for #name {
            const NAMES: &'static [&'static str] = &[#(#names),*];
            fn from_code(code: usize) -> ::core::option::Option<Self> {
                match code {
                    #(#codes => ::core::option::Option::Some(#name::#idents),)*
                    _ => ::core::option::Option::None,
                }
            }
            fn code(self) -> usize {
                match self {
                    #(#name::#idents => #codes,)*
                }
            }
        }

        impl #tl::KernelParam for #name {
            const KIND: #tl::ParamKind = #tl::ParamKind::Scalar;
            const DTYPE: ::core::option::Option<#tl::DType> = ::core::option::Option::None;
            const VARIANTS: &'static [&'static str] = <#name as #tl::KernelEnum>::NAMES;
            type Input<'a> = #name;
            fn input(v: #name) -> #tl::ArgValue {
                #tl::ArgValue::Int(<#name as #tl::KernelEnum>::code(v) as i64)
            }
            fn from_arg(
                _: u16,
                _: &'static str,
                v: &#tl::ArgValue,
            ) -> ::core::result::Result<Self, #tl::ArgError> {
                #tl::enum_from_arg::<#name>(#name_str, v)
            }
        }
    }
}

/// `#[kernel]` on token streams; `tl_path` finds the path of the language crate.
fn expand_kernel(
    attr: TokenStream2,
    item: TokenStream2,
    tl_path: impl FnOnce() -> Result<TokenStream2, String>,
) -> TokenStream2 {
    let mut errors = Errors::default();
    no_arguments(
        &attr,
        "kernel",
        "mark compile-time parameters with `#[constexpr]` instead",
        &mut errors,
    );
    let func: syn::ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(_) => {
            errors.push(syn::Error::new(
                first_span(&item),
                "`#[kernel]` goes on a function: write \
                 `#[kernel] pub fn name(x: Ptr<f32>, n: usize) { ... }`",
            ));
            return errors.emit_with(item);
        }
    };
    let parsed = parse::kernel(func, &mut errors);
    check::body(&parsed.stripped.block, &mut errors);
    let Some(model) = parsed.model else {
        return errors.emit_with(generate::fallback(&parsed.stripped));
    };
    match tl_path() {
        Ok(tl) => errors.emit_with(generate::kernel(&model, &tl)),
        Err(msg) => {
            errors.push(syn::Error::new(Span::call_site(), msg));
            errors.emit_with(generate::fallback(&parsed.stripped))
        }
    }
}

/// `#[kernel_fn]` on token streams.
fn expand_kernel_fn(attr: TokenStream2, item: TokenStream2) -> TokenStream2 {
    let mut errors = Errors::default();
    no_arguments(
        &attr,
        "kernel_fn",
        "write `#[kernel_fn]` alone",
        &mut errors,
    );
    let func: syn::ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(_) => {
            errors.push(syn::Error::new(
                first_span(&item),
                "`#[kernel_fn]` goes on a helper function that kernels call: write \
                 `#[kernel_fn] fn helper(x: &Tile<f32>) -> Tile<f32> { ... }`",
            ));
            return errors.emit_with(item);
        }
    };
    let func = parse::kernel_fn(func, &mut errors);
    check::body(&func.block, &mut errors);
    errors.emit_with(quote!(#func))
}

/// Reports arguments given to an attribute that takes none.
fn no_arguments(attr: &TokenStream2, name: &str, instead: &str, errors: &mut Errors) {
    if !attr.is_empty() {
        errors.push(syn::Error::new_spanned(
            attr,
            format!("`#[{name}]` takes no arguments: {instead}"),
        ));
    }
}

fn first_span(tokens: &TokenStream2) -> Span {
    tokens
        .clone()
        .into_iter()
        .next()
        .map_or_else(Span::call_site, |t| t.span())
}

/// The path of `kernbench-tl` as the calling package names it.
fn resolve_tl_path() -> Result<TokenStream2, String> {
    use proc_macro_crate::{crate_name, Error, FoundCrate};
    let path = |name: &str, rest: TokenStream2| {
        let id = proc_macro2::Ident::new(name, Span::call_site());
        quote!(::#id #rest)
    };
    match crate_name("kernbench-tl") {
        Ok(FoundCrate::Itself) => return Ok(quote!(::kernbench_tl)),
        Ok(FoundCrate::Name(n)) => return Ok(path(&n, quote!())),
        // Built without Cargo (no manifest to read): assume the usual name.
        Err(Error::CargoManifestDirNotSet) => return Ok(quote!(::kernbench_tl)),
        Err(_) => {}
    }
    match crate_name("kernbench") {
        Ok(FoundCrate::Itself) => Ok(quote!(::kernbench::__private::tl)),
        Ok(FoundCrate::Name(n)) => Ok(path(&n, quote!(::__private::tl))),
        Err(Error::CrateNotFound { .. }) => Err(
            "`#[kernel]` needs the KernBench crates: add `kernbench` (or `kernbench-tl`) to \
             [dependencies] in this package's Cargo.toml"
                .to_string(),
        ),
        Err(e) => Err(format!(
            "`#[kernel]` could not find the `kernbench` or `kernbench-tl` dependency: {e}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tl() -> Result<TokenStream2, String> {
        Ok(quote!(::kernbench_tl))
    }

    fn error_messages(out: &TokenStream2) -> Vec<String> {
        let text = out.to_string();
        text.split("compile_error !")
            .skip(1)
            .map(|s| {
                let start = s.find('"').unwrap() + 1;
                let end = start + s[start..].find("\" }").unwrap();
                s[start..end].to_string()
            })
            .collect()
    }

    #[test]
    fn a_good_kernel_expands_without_errors() {
        let out = expand_kernel(
            quote!(),
            quote! {
                /// Doc line one.
                ///   indented.
                pub fn hello_send(t: Ptr<f16>, n_elem: usize, #[constexpr] block: usize) {
                    if n_elem == 0 { return; }
                    let _ = (t, block);
                }
            },
            tl,
        );
        let text = out.to_string();
        assert!(error_messages(&out).is_empty(), "{text}");
        assert!(text.contains("pub struct hello_send ;"), "{text}");
        assert!(
            text.contains("impl :: kernbench_tl :: Kernel for hello_send"),
            "{text}"
        );
        assert!(text.contains("name : \"hello_send\""), "{text}");
        assert!(text.contains("ty : \"Ptr<f16>\""), "{text}");
        assert!(
            text.contains("kind : :: kernbench_tl :: ParamKind :: Constexpr"),
            "{text}"
        );
        assert!(
            text.contains("doc : \"Doc line one.\\n  indented.\""),
            "{text}"
        );
        assert!(
            text.contains("fn __kb_body (t : Ptr < f16 > , n_elem : usize , block : usize)"),
            "{text}"
        );
        assert!(!text.contains("constexpr ]"), "{text}");
        assert!(
            text.contains(":: kernbench_tl :: inventory :: submit !"),
            "{text}"
        );
    }

    #[test]
    fn a_generic_kernel_dispatches_on_its_buffers_types() {
        let out = expand_kernel(
            quote!(),
            quote! {
                pub fn scale_rows<T: Element, A: Element<Acc = f32>>(
                    x: Ptr<T>, w: Tensor<A>, #[constexpr] op: RedOp, n: usize
                ) {
                    let _ = (x, w, op, n);
                }
            },
            tl,
        );
        let text = out.to_string();
        assert!(error_messages(&out).is_empty(), "{text}");
        assert!(text.contains("generics : & [\"T\" , \"A\"]"), "{text}");
        assert!(
            text.contains("generic : :: core :: option :: Option :: Some (\"T\")"),
            "{text}"
        );
        assert!(
            text.contains("bind_elem (__kb_args , & __KB_META , \"A\")"),
            "{text}"
        );
        // `A` accumulates in f32: i32 and masks are refused, not instantiated.
        assert!(text.contains("elem_refused"), "{text}");
        assert!(
            text.contains("fn __kb_run < T : :: kernbench_tl :: Element , A : :: kernbench_tl :: Element < Acc = f32 > >"),
            "{text}"
        );
        assert!(text.contains("pub struct ScaleRowsArgs"), "{text}");
        assert!(text.contains("pub fn op (mut self , v : < RedOp as :: kernbench_tl :: KernelParam > :: Input < '_ >)"), "{text}");
        // What does not depend on the element type is read with it made concrete.
        assert!(
            text.contains("< Ptr < f32 > as :: kernbench_tl :: KernelParam > :: KIND"),
            "{text}"
        );
    }

    #[test]
    fn the_builder_is_named_in_camel_case() {
        let id = |s: &str| proc_macro2::Ident::new(s, Span::call_site());
        assert_eq!(
            generate::builder_name(&id("ring_allreduce")).to_string(),
            "RingAllreduceArgs"
        );
        assert_eq!(generate::builder_name(&id("_k__2d")).to_string(), "K2dArgs");
        let raw = proc_macro2::Ident::new_raw("type", Span::call_site());
        assert_eq!(generate::builder_name(&raw).to_string(), "TypeArgs");
    }

    #[test]
    fn every_signature_error_is_reported() {
        let out = expand_kernel(
            quote!(fast),
            quote! {
                async unsafe extern "C" fn k<T, const N: usize>(
                    &self, a: &[f32], b: impl Copy, (c, d): (u8, u8), #[constexpr] e: Ptr<f16>, #[other] f: usize
                ) -> u32 where T: Copy { 0 }
            },
            tl,
        );
        let msgs = error_messages(&out);
        assert_eq!(msgs.len(), 15, "{msgs:#?}");
        assert!(
            msgs.iter().any(|m| m.contains("write `Ptr<f32>`")),
            "{msgs:#?}"
        );
        // On error the stripped function is still emitted.
        assert!(out.to_string().contains("fn k"), "{out}");
        assert!(!out.to_string().contains("# [constexpr]"), "{out}");
    }

    #[test]
    fn every_body_error_is_reported() {
        let out = expand_kernel(
            quote!(),
            quote! {
                fn k(n: usize) {
                    unsafe {}
                    loop {}
                    while n > 0 {}
                    let f = |x: usize| x;
                    static S: usize = 0;
                    println!("{}", n);
                    let _ = std::fs::read("x");
                    std::thread::spawn(|| ());
                    let _ = async { 1 };
                    fn helper() { dbg!(1); }
                    #[kernel_fn]
                    fn checked_elsewhere() { loop {} }
                }
            },
            tl,
        );
        let msgs = error_messages(&out);
        // The closure inside `spawn` is reported too.
        assert_eq!(msgs.len(), 11, "{msgs:#?}");
    }

    #[test]
    fn raw_identifiers_are_named_without_their_prefix() {
        let out = expand_kernel(
            quote!(),
            quote!(
                fn r#type(r#in: usize) {}
            ),
            tl,
        );
        let text = out.to_string();
        assert!(text.contains("name : \"type\""), "{text}");
        assert!(text.contains("name : \"in\""), "{text}");
        assert!(text.contains("struct r#type ;"), "{text}");
    }

    #[test]
    fn kernel_on_a_struct_is_an_error() {
        let out = expand_kernel(
            quote!(),
            quote!(
                struct S;
            ),
            tl,
        );
        let msgs = error_messages(&out);
        assert_eq!(msgs.len(), 1);
        assert!(msgs[0].contains("goes on a function"));
        assert!(out.to_string().contains("struct S"));
    }

    #[test]
    fn a_missing_dependency_is_an_error() {
        let out = expand_kernel(
            quote!(),
            quote!(
                fn k(n: usize) {}
            ),
            || Err("add it".into()),
        );
        assert_eq!(error_messages(&out), vec!["add it".to_string()]);
    }

    #[test]
    fn kernel_fn_is_emitted_unchanged() {
        let item = quote!(
            fn helper<T: Element>(x: &Tile<T>) -> Tile<T> {
                tl::exp(x)
            }
        );
        let out = expand_kernel_fn(quote!(), item.clone());
        assert_eq!(out.to_string(), item.to_string());
        let out = expand_kernel_fn(
            quote!(),
            quote!(
                async fn h() {
                    loop {}
                }
            ),
        );
        assert_eq!(error_messages(&out).len(), 2);
    }
}
