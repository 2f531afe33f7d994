//! Body checks: what the kernel language does not support, reported at its span.
//!
//! Applies to the bodies of `#[kernel]` and `#[kernel_fn]` functions and to
//! the items nested in them, except nested functions marked `#[kernel_fn]`,
//! which their own expansion checks.

use crate::errors::Errors;
use proc_macro2::TokenStream;
use quote::quote;
use syn::punctuated::Punctuated;
use syn::visit::{self, Visit};
use syn::{Block, Expr, Macro, Path, Token, UseTree};

/// Reports every unsupported construct in `block`.
pub(crate) fn body(block: &Block, errors: &mut Errors) {
    let mut v = BodyCheck { errors };
    v.visit_block(block);
}

struct BodyCheck<'a> {
    errors: &'a mut Errors,
}

impl BodyCheck<'_> {
    fn error(&mut self, tokens: TokenStream, msg: impl std::fmt::Display) {
        self.errors.push(syn::Error::new_spanned(tokens, msg));
    }
}

const UNBOUNDED: &str =
    "has no bound the trace can see: write `for i in 0..n` with a bound known when the kernel is traced";

const STATIC: &str = "items are shared by every program instance, which kernels cannot do: use a \
                      `const`, or pass the value as a parameter";

/// What a path into a host facility means for a kernel, if it is one.
fn forbidden_path(segments: &[String]) -> Option<String> {
    let first = segments.first()?.as_str();
    if first == "rayon" {
        return Some(threads("`rayon`"));
    }
    if first != "std" {
        return None;
    }
    let module = segments.get(1)?.as_str();
    let what = format!("`std::{module}`");
    Some(match module {
        "thread" => threads(&what),
        "fs" | "io" | "net" | "process" => format!(
            "{what} is host I/O, which a kernel cannot do: pass data in through `Ptr<T>` \
             parameters and write results with `tl::store`"
        ),
        "env" => format!(
            "{what} reads the host environment, which would make the trace differ from run to \
             run: pass the value as a kernel parameter"
        ),
        _ => return None,
    })
}

fn threads(what: &str) -> String {
    format!(
        "{what} runs host threads, which a kernel cannot do: each program instance runs on one \
         PE; spread work over the grid with `tl::program_id`"
    )
}

fn is_kernel_fn(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path()
            .segments
            .last()
            .is_some_and(|s| s.ident == "kernel_fn")
    })
}

impl<'ast> Visit<'ast> for BodyCheck<'_> {
    fn visit_expr_unsafe(&mut self, e: &'ast syn::ExprUnsafe) {
        let t = &e.unsafe_token;
        self.error(
            quote!(#t),
            "`unsafe` is not part of the kernel language: remove the `unsafe` block; a kernel \
             touches memory only through `tl::load` and `tl::store`",
        );
        visit::visit_expr_unsafe(self, e);
    }

    fn visit_expr_async(&mut self, e: &'ast syn::ExprAsync) {
        let (a, m) = (&e.async_token, &e.capture);
        self.error(
            quote!(#a #m),
            "`async` blocks are not part of the kernel language: a kernel is traced \
             synchronously; to overlap a receive with other work, use \
             `tl::recv_async(dir, shape)` and later `tl::wait(future)`",
        );
        visit::visit_expr_async(self, e);
    }

    fn visit_expr_await(&mut self, e: &'ast syn::ExprAwait) {
        let (d, a) = (&e.dot_token, &e.await_token);
        self.error(
            quote!(#d #a),
            "`.await` is not part of the kernel language: to wait for a `tl::recv_async`, \
             write `tl::wait(future)`",
        );
        visit::visit_expr_await(self, e);
    }

    fn visit_expr_loop(&mut self, e: &'ast syn::ExprLoop) {
        let t = &e.loop_token;
        self.error(quote!(#t), format!("`loop` {UNBOUNDED}"));
        visit::visit_expr_loop(self, e);
    }

    fn visit_expr_while(&mut self, e: &'ast syn::ExprWhile) {
        let (w, c) = (&e.while_token, &e.cond);
        self.error(quote!(#w #c), format!("`while` {UNBOUNDED}"));
        visit::visit_expr_while(self, e);
    }

    fn visit_expr_closure(&mut self, e: &'ast syn::ExprClosure) {
        let (a, m, o1, inputs, o2) = (
            &e.asyncness,
            &e.capture,
            &e.or1_token,
            &e.inputs,
            &e.or2_token,
        );
        self.error(
            quote!(#a #m #o1 #inputs #o2),
            "closures are not part of the kernel language (they cannot capture tiles): write a \
             `#[kernel_fn]` helper function and call it",
        );
        visit::visit_expr_closure(self, e);
    }

    fn visit_expr_method_call(&mut self, e: &'ast syn::ExprMethodCall) {
        let m = e.method.to_string();
        if matches!(
            m.as_str(),
            "par_iter"
                | "par_iter_mut"
                | "into_par_iter"
                | "par_chunks"
                | "par_chunks_mut"
                | "par_bridge"
        ) {
            let (d, id) = (&e.dot_token, &e.method);
            self.error(quote!(#d #id), threads(&format!("`.{m}()`")));
        }
        visit::visit_expr_method_call(self, e);
    }

    fn visit_item_static(&mut self, i: &'ast syn::ItemStatic) {
        let (s, m, id) = (&i.static_token, &i.mutability, &i.ident);
        self.error(quote!(#s #m #id), format!("`static` {STATIC}"));
        visit::visit_item_static(self, i);
    }

    fn visit_item_fn(&mut self, i: &'ast syn::ItemFn) {
        // A nested `#[kernel_fn]` is checked by its own expansion; anything else
        // nested in a kernel is kernel code.
        if !is_kernel_fn(&i.attrs) {
            visit::visit_item_fn(self, i);
        }
    }

    fn visit_item_use(&mut self, i: &'ast syn::ItemUse) {
        let mut found = Vec::new();
        use_paths(&i.tree, &mut Vec::new(), &mut found);
        if let Some(msg) = found.into_iter().find_map(|p| forbidden_path(&p)) {
            let (u, t) = (&i.use_token, &i.tree);
            self.error(quote!(#u #t), msg);
        }
    }

    fn visit_path(&mut self, p: &'ast Path) {
        let segments: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
        if let Some(msg) = forbidden_path(&segments) {
            self.error(quote!(#p), msg);
        }
        visit::visit_path(self, p);
    }

    fn visit_macro(&mut self, m: &'ast Macro) {
        let name = m
            .path
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .unwrap_or_default();
        let (path, bang) = (&m.path, &m.bang_token);
        match name.as_str() {
            "println" | "print" | "eprintln" | "eprint" | "dbg" => self.error(
                quote!(#path #bang),
                format!(
                    "`{name}!` is host I/O, which has no meaning inside a kernel trace: remove \
                     it; to see what a kernel does, print its command graph \
                     (`kernbench_tl::trace(..)?.to_text()`)"
                ),
            ),
            "thread_local" => self.error(quote!(#path #bang), format!("`thread_local!` {STATIC}")),
            _ => {}
        }
        visit::visit_macro(self, m);
        // Look inside macros whose arguments are expressions (`assert!`,
        // `vec!`, `format!`...); others are opaque.
        if name != "macro_rules" {
            if let Ok(args) = m.parse_body_with(Punctuated::<Expr, Token![,]>::parse_terminated) {
                for e in &args {
                    self.visit_expr(e);
                }
            }
        }
    }
}

/// The full paths a `use` tree names.
fn use_paths(tree: &UseTree, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match tree {
        UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            use_paths(&p.tree, prefix, out);
            prefix.pop();
        }
        UseTree::Name(n) => out.push(
            prefix
                .iter()
                .cloned()
                .chain([n.ident.to_string()])
                .collect(),
        ),
        UseTree::Rename(r) => out.push(
            prefix
                .iter()
                .cloned()
                .chain([r.ident.to_string()])
                .collect(),
        ),
        UseTree::Glob(_) => out.push(prefix.clone()),
        UseTree::Group(g) => {
            for t in &g.items {
                use_paths(t, prefix, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    fn count(block: Block) -> usize {
        let mut errors = Errors::default();
        body(&block, &mut errors);
        errors.count()
    }

    #[test]
    fn plain_kernel_code_passes() {
        let b: Block = parse_quote!({
            let n = tl::program_id(0);
            for i in 0..n {
                if i % 2 == 0 {
                    continue;
                }
            }
            let v = vec![1, 2, 3];
            assert!(n < 4, "n = {}", n);
            fn helper(x: usize) -> usize {
                x + 1
            }
        });
        assert_eq!(count(b), 0);
    }

    #[test]
    fn constructs_inside_macros_and_nested_items_are_found() {
        let b: Block = parse_quote!({
            assert!(std::fs::metadata("x").is_ok());
            let _ = vec![loop {}];
            impl Foo {
                fn f(&self) {
                    unsafe {}
                }
            }
            use std::{fmt, io::Write};
            let _ = v.par_iter();
            thread_local!(static X: u8 = 0);
        });
        assert_eq!(count(b), 6);
    }
}
