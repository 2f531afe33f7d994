//! Model -> tokens: the unit struct, its `Kernel` impl, metadata and registration.
//!
//! Every path is absolute (`::core::...`, or `tl`, the language crate's path
//! as the calling package names it). Code that concerns one parameter is built
//! at that parameter's span, so that a type that cannot be a parameter is
//! reported on the type as written.

use crate::parse::KernelModel;
use proc_macro2::{Group, Ident, Literal, Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::ItemFn;

/// The expansion of a valid kernel.
pub(crate) fn kernel(m: &KernelModel, tl: &TokenStream) -> TokenStream {
    let KernelModel {
        vis,
        name,
        doc,
        doc_attrs,
        cfg_attrs,
        generics,
        accs,
        params,
        body,
    } = m;
    let call = Span::call_site();
    let meta = Ident::new("__KB_META", call);
    let args = Ident::new("__kb_args", call);
    let body_name = Ident::new("__kb_body", name.span());
    let name_str = name.unraw().to_string();
    // `line!()` and `file!()` at the name's span give the kernel's own line.
    let line = quote_spanned!(name.span()=> ::core::line!());
    let file = quote_spanned!(name.span()=> ::core::file!());

    let generic_names: Vec<String> = generics.iter().map(|g| g.unraw().to_string()).collect();
    let param_metas = params.iter().map(|p| {
        let (ty, ty_text, pname) = (&p.ty, &p.ty_text, p.name.unraw().to_string());
        // What does not depend on the element type is read off the type with
        // its type parameters made concrete.
        let cty = concrete(ty, generics);
        let span = ty.span();
        let kind = if p.constexpr {
            quote_spanned!(span=> #tl::ParamKind::Constexpr)
        } else {
            quote_spanned!(span=> <#cty as #tl::KernelParam>::KIND)
        };
        let (dtype, generic) = match &p.generic {
            Some(g) => {
                let g = g.unraw().to_string();
                (
                    quote!(::core::option::Option::None),
                    quote!(::core::option::Option::Some(#g)),
                )
            }
            None => (
                quote_spanned!(span=> <#ty as #tl::KernelParam>::DTYPE),
                quote!(::core::option::Option::None),
            ),
        };
        quote_spanned! {span=>
            #tl::ParamMeta {
                name: #pname,
                kind: #kind,
                dtype: #dtype,
                generic: #generic,
                variants: <#cty as #tl::KernelParam>::VARIANTS,
                ty: #ty_text,
            }
        }
    });
    // A `#[constexpr]` parameter's type must be a scalar (or enum) one.
    let constexpr_checks = params.iter().filter(|p| p.constexpr).map(|p| {
        let ty = &p.ty;
        let msg = format!(
            "a `#[constexpr]` parameter is a scalar or an enum with `#[derive(KernelEnum)]`: \
             `{}` is not",
            p.ty_text
        );
        quote_spanned! {ty.span()=>
            const _: () = ::core::assert!(
                ::core::matches!(<#ty as #tl::KernelParam>::KIND, #tl::ParamKind::Scalar),
                #msg
            );
        }
    });
    let locals: Vec<Ident> = (0..params.len())
        .map(|i| format_ident!("__kb_p{}", i))
        .collect();
    let binds: Vec<TokenStream> = params
        .iter()
        .zip(&locals)
        .enumerate()
        .map(|(i, (p, local))| {
            let (ty, pname) = (&p.ty, p.name.unraw().to_string());
            let index = Literal::u16_suffixed(i as u16);
            quote_spanned! {ty.span()=>
                let #local = #tl::bind_param::<#ty>(#args, &#meta, #index, #pname)?;
            }
        })
        .collect();
    let run = if generics.is_empty() {
        quote! {
            #(#binds)*
            #body_name(#(#locals),*);
            ::core::result::Result::Ok(())
        }
    } else {
        // One instance of the body per element type; the launch's buffers
        // choose which runs.
        let run_name = Ident::new("__kb_run", call);
        let elems: Vec<Ident> = (0..generics.len())
            .map(|i| format_ident!("__kb_e{}", i))
            .collect();
        let elems: Vec<(Ident, &str, Option<&str>)> = elems
            .into_iter()
            .zip(&generic_names)
            .zip(accs)
            .map(|((e, g), acc)| (e, g.as_str(), acc.as_deref()))
            .collect();
        let dispatch = dispatch(tl, &run_name, &args, &meta, &elems, &mut Vec::new());
        let elem_locals = elems.iter().map(|(e, ..)| e);
        let bounds = generics.iter().zip(accs).map(|(g, acc)| match acc {
            Some(acc) => {
                let acc = Ident::new(acc, call);
                quote!(#g: #tl::Element<Acc = #acc>)
            }
            None => quote!(#g: #tl::Element),
        });
        quote! {
            fn #run_name<#(#bounds),*>(
                #args: &#tl::KernelArgs,
            ) -> ::core::result::Result<(), #tl::TraceError> {
                #(#binds)*
                #body_name::<#(#generics),*>(#(#locals),*);
                ::core::result::Result::Ok(())
            }
            #(let #elem_locals = #tl::bind_elem(#args, &#meta, #generic_names)?;)*
            #dispatch
        }
    };
    let builder = builder(m, tl);
    let mut body: ItemFn = body.clone();
    body.sig.ident = body_name.clone();

    quote! {
        #(#cfg_attrs)*
        #(#doc_attrs)*
        #[allow(non_camel_case_types)]
        #[derive(
            ::core::clone::Clone,
            ::core::marker::Copy,
            ::core::fmt::Debug,
            ::core::default::Default,
        )]
        #vis struct #name;

        #builder

        #(#cfg_attrs)*
        const _: () = {
            #(#constexpr_checks)*

            static #meta: #tl::KernelMeta = #tl::KernelMeta {
                name: #name_str,
                generics: &[#(#generic_names),*],
                params: &[#(#param_metas),*],
                file: #file,
                line: #line,
                module: ::core::module_path!(),
                doc: #doc,
            };

            impl #tl::Kernel for #name {
                fn meta(&self) -> &'static #tl::KernelMeta {
                    &#meta
                }

                fn run_body(
                    &self,
                    #args: &#tl::KernelArgs,
                ) -> ::core::result::Result<(), #tl::TraceError> {
                    #body
                    #run
                }
            }

            impl #tl::kernbench_core::program::Program for #name {
                fn name(&self) -> &str {
                    #name_str
                }

                fn trace(
                    &self,
                    args: &#tl::KernelArgs,
                    grid: &[u32],
                    pid: &[u32],
                ) -> ::core::result::Result<#tl::kernbench_core::ir::CommandGraph, #tl::TraceError> {
                    #tl::trace_program(self, args, grid, pid)
                }

                fn trace_limited(
                    &self,
                    args: &#tl::KernelArgs,
                    grid: &[u32],
                    pid: &[u32],
                    limits: #tl::kernbench_core::ir::TraceLimits,
                ) -> ::core::result::Result<#tl::kernbench_core::ir::CommandGraph, #tl::TraceError> {
                    #tl::trace_with(self, args, grid, pid, limits)
                }
            }

            #tl::inventory::submit! {
                #tl::KernelEntry { kernel: &#name }
            }
        };
    }
}

/// The element types a type parameter may be bound to: their `DType`s,
/// Rust types and accumulator types.
fn element_types(tl: &TokenStream) -> [(TokenStream, TokenStream, &'static str, &'static str); 5] {
    [
        (
            quote!(#tl::DType::F32),
            quote!(::core::primitive::f32),
            "f32",
            "f32",
        ),
        (quote!(#tl::DType::F16), quote!(#tl::f16), "f32", "f16"),
        (quote!(#tl::DType::Bf16), quote!(#tl::bf16), "f32", "bf16"),
        (
            quote!(#tl::DType::I32),
            quote!(::core::primitive::i32),
            "i32",
            "i32",
        ),
        (
            quote!(#tl::DType::Bool),
            quote!(::core::primitive::bool),
            "bool",
            "bool",
        ),
    ]
}

/// Nested matches over the bound element types, calling `run` with them;
/// a type its parameter's bound excludes is an error.
fn dispatch(
    tl: &TokenStream,
    run: &Ident,
    args: &Ident,
    meta: &Ident,
    elems: &[(Ident, &str, Option<&str>)],
    chosen: &mut Vec<TokenStream>,
) -> TokenStream {
    let Some(((e, g, acc), rest)) = elems.split_first() else {
        return quote!(#run::<#(#chosen),*>(#args));
    };
    let allowed: Vec<&str> = element_types(tl)
        .iter()
        .filter(|t| acc.is_none_or(|a| a == t.2))
        .map(|t| t.3)
        .collect();
    let arms = element_types(tl).into_iter().map(|(dtype, ty, a, _)| {
        if acc.is_some_and(|acc| acc != a) {
            let msg = format!(
                "`{g}: Element<Acc = {}>` is one of {}",
                acc.unwrap_or_default(),
                allowed.join(", ")
            );
            return quote! {
                #dtype => ::core::result::Result::Err(#tl::elem_refused(&#meta, #g, #dtype, #msg)),
            };
        }
        chosen.push(ty);
        let inner = dispatch(tl, run, args, meta, rest, chosen);
        chosen.pop();
        quote!(#dtype => #inner,)
    });
    quote!(match #e { #(#arms)* })
}

/// `ty` with each of `generics` replaced by `f32`: for what does not depend
/// on the element type (a parameter's kind, its builder input).
fn concrete(ty: &syn::Type, generics: &[Ident]) -> TokenStream {
    fn walk(ts: TokenStream, generics: &[Ident]) -> TokenStream {
        ts.into_iter()
            .map(|t| match t {
                TokenTree::Ident(i) if generics.contains(&i) => {
                    TokenTree::Ident(Ident::new("f32", i.span()))
                }
                TokenTree::Group(g) => {
                    let mut n = Group::new(g.delimiter(), walk(g.stream(), generics));
                    n.set_span(g.span());
                    TokenTree::Group(n)
                }
                other => other,
            })
            .collect()
    }
    walk(ty.to_token_stream(), generics)
}

/// `hello_send` -> `HelloSendArgs`: the name of a kernel's argument builder.
pub(crate) fn builder_name(name: &Ident) -> Ident {
    let mut out = String::new();
    for part in name
        .unraw()
        .to_string()
        .split('_')
        .filter(|p| !p.is_empty())
    {
        let mut cs = part.chars();
        if let Some(c) = cs.next() {
            out.extend(c.to_uppercase());
            out.push_str(cs.as_str());
        }
    }
    out.push_str("Args");
    Ident::new(&out, name.span())
}

/// The typed argument builder: `name::args()` and one method per parameter.
fn builder(m: &KernelModel, tl: &TokenStream) -> TokenStream {
    let KernelModel {
        vis,
        name,
        cfg_attrs,
        generics,
        params,
        ..
    } = m;
    let b = builder_name(name);
    let field = Ident::new("__kb_args", Span::call_site());
    let name_str = name.unraw().to_string();
    let struct_doc = format!(
        "The arguments of a launch of [`{name_str}`], typed: one method per parameter, \
         which takes a `&Buffer` for a pointer, a `TensorRef` (`buf.view(rows, cols)?`) \
         for a tensor and the value for a scalar. Made by `{name_str}::args()`; a \
         `KernelArgs` by `.into()`."
    );
    let setters = params.iter().map(|p| {
        let (pname, pstr) = (&p.name, p.name.unraw().to_string());
        let cty = concrete(&p.ty, generics);
        let doc = format!("Sets `{pstr}: {}`.", p.ty_text);
        quote_spanned! {p.ty.span()=>
            #[doc = #doc]
            pub fn #pname(mut self, v: <#cty as #tl::KernelParam>::Input<'_>) -> Self {
                self.#field.set(#pstr, <#cty as #tl::KernelParam>::input(v));
                self
            }
        }
    });
    quote! {
        #(#cfg_attrs)*
        #[doc = #struct_doc]
        #[derive(::core::clone::Clone, ::core::fmt::Debug, ::core::default::Default)]
        #[must_use]
        #[allow(dead_code)]
        #vis struct #b {
            #field: #tl::KernelArgs,
        }

        #(#cfg_attrs)*
        #[allow(dead_code)]
        impl #name {
            /// The typed arguments of a launch of this kernel: set each
            /// parameter by its method, then pass them (`.into()`) where
            /// `KernelArgs` are taken.
            #vis fn args() -> #b {
                ::core::default::Default::default()
            }
        }

        #(#cfg_attrs)*
        #[allow(dead_code)]
        impl #b {
            #(#setters)*
        }

        #(#cfg_attrs)*
        impl ::core::convert::From<#b> for #tl::KernelArgs {
            fn from(b: #b) -> Self {
                b.#field
            }
        }
    }
}

/// What is emitted for a kernel whose signature has errors: the author's
/// function, stripped of what rustc would reject on its own, so that tools
/// still understand the code around the errors.
pub(crate) fn fallback(stripped: &ItemFn) -> TokenStream {
    quote! {
        #[allow(dead_code)]
        #stripped
    }
}
