//! Procedural macros of dataflow: the `#[operator]` attribute.
//!
//! `#[operator]` turns an ordinary function into an operator of
//! `dataflow-core`'s operator model. It works in three steps, one file each:
//!
//! * `parse`: the attribute's options and the function's tokens;
//! * `model`: what the signature means: configuration, input, context,
//!   output kind; every misuse is an error at the offending token;
//! * `expand`: the generated struct, constructor and trait implementations.
//!
//! Use it through `dataflow_core::operator`; `docs/operators.md` gives the
//! signature rules.

mod expand;
mod model;
mod parse;

use proc_macro::TokenStream;

/// Turns a function into an operator. See `dataflow_core::operator::function`
/// and `docs/operators.md` for the signature rules and examples.
#[proc_macro_attribute]
pub fn operator(attr: TokenStream, item: TokenStream) -> TokenStream {
    operator2(attr.into(), item.into()).into()
}

fn operator2(attr: proc_macro2::TokenStream, item: proc_macro2::TokenStream) -> proc_macro2::TokenStream {
    let result = parse::parse(attr, item).and_then(model::Model::from_parsed).map(|m| expand::expand(&m));
    result.unwrap_or_else(syn::Error::into_compile_error)
}
