//! Model -> tokens: the unit struct, its `Kernel` impl, metadata and registration.
//!
//! Every path is absolute (`::core::...`, or `tl`, the language crate's path
//! as the calling package names it). Code that concerns one parameter is built
//! at that parameter's span, so that a type that cannot be a parameter is
//! reported on the type as written.

use crate::parse::KernelModel;
use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
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

    let param_metas = params.iter().map(|p| {
        let (ty, ty_text, pname) = (&p.ty, &p.ty_text, p.name.unraw().to_string());
        let span = ty.span();
        let kind = if p.constexpr {
            quote_spanned!(span=> #tl::ParamKind::Constexpr)
        } else {
            quote_spanned!(span=> <#ty as #tl::KernelParam>::KIND)
        };
        quote_spanned! {span=>
            #tl::ParamMeta {
                name: #pname,
                kind: #kind,
                dtype: <#ty as #tl::KernelParam>::DTYPE,
                ty: #ty_text,
            }
        }
    });
    let locals: Vec<Ident> = (0..params.len())
        .map(|i| format_ident!("__kb_p{}", i))
        .collect();
    let binds = params
        .iter()
        .zip(&locals)
        .enumerate()
        .map(|(i, (p, local))| {
            let (ty, pname) = (&p.ty, p.name.unraw().to_string());
            let index = Literal::u16_suffixed(i as u16);
            quote_spanned! {ty.span()=>
                let #local = #tl::bind_param::<#ty>(#args, &#meta, #index, #pname)?;
            }
        });
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

        #(#cfg_attrs)*
        const _: () = {
            static #meta: #tl::KernelMeta = #tl::KernelMeta {
                name: #name_str,
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
                    #(#binds)*
                    #body_name(#(#locals),*);
                    ::core::result::Result::Ok(())
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

/// What is emitted for a kernel whose signature has errors: the author's
/// function, stripped of what rustc would reject on its own, so that tools
/// still understand the code around the errors.
pub(crate) fn fallback(stripped: &ItemFn) -> TokenStream {
    quote! {
        #[allow(dead_code)]
        #stripped
    }
}
