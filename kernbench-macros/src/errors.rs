//! Collecting every error of an expansion so that all are reported together.

use proc_macro2::TokenStream;
use quote::quote;

/// The errors found so far, combined with `syn::Error::combine`.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    /// Adds an error.
    pub(crate) fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    /// Adds all errors of `other`.
    pub(crate) fn push_all(&mut self, other: Errors) {
        if let Some(e) = other.0 {
            self.push(e);
        }
    }

    /// `true` when no error was found.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// How many errors were found.
    #[cfg(test)]
    pub(crate) fn count(&self) -> usize {
        self.0.clone().map_or(0, |e| e.into_iter().count())
    }

    /// The errors (as `compile_error!` invocations, each at its own span) followed by `item`.
    pub(crate) fn emit_with(self, item: TokenStream) -> TokenStream {
        let errors = self.0.map(|e| e.to_compile_error());
        quote!(#errors #item)
    }
}
