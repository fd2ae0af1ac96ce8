//! Step 2: what the function's signature means.
//!
//! Parameters are, in any order: configuration (`#[config]`, captured by the
//! constructor), exactly one input (the record's value, by value), and at
//! most one context (`&mut Context<Out>`). The return type says how many
//! outputs a record gives. Every misuse is an error at the offending token.

use crate::parse::{Options, Parsed};
use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{
    Attribute, Block, FnArg, GenericArgument, Generics, Ident, Pat, PathArguments, ReturnType, Type, TypeParamBound,
    Visibility,
};

/// How a parameter is used.
// Built once per parameter at compile time: size does not matter here.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Param {
    /// `#[config] name: T` (stored as `T`) or `#[config] name: &T` (stored
    /// as `T`, passed by reference).
    Config { pat: Box<Pat>, ident: Ident, ty: Box<Type>, stored: Box<Type>, by_ref: bool },
    /// The record's value.
    Input { pat: Box<Pat>, ty: Type },
    /// `ctx: &mut Context<Out>`.
    Context { pat: Box<Pat>, ty: Type },
    /// `count: &mut ValueState<T>` (or `ListState`, `MapState`,
    /// `ReducingState`, `AggregatingState`): state of
    /// the current key. `state` is the type behind the `&mut`.
    State { pat: Box<Pat>, ty: Type, state: Type },
}

/// How the return value becomes outputs.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum OutputKind {
    /// `-> T`: exactly one output.
    One,
    /// `-> Option<T>`: zero or one.
    Optional,
    /// `-> Vec<T>` or `-> impl IntoIterator<Item = T>`: any number.
    Many,
    /// `-> Result<T, E>`: one output, or a bad record.
    Fallible,
    /// No return value: outputs go through the context.
    Unit,
}

/// The operator a function describes.
pub(crate) struct Model {
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) vis: Visibility,
    pub(crate) ident: Ident,
    pub(crate) generics: Generics,
    pub(crate) options: Options,
    pub(crate) params: Vec<Param>,
    pub(crate) input: Type,
    pub(crate) output: Type,
    pub(crate) kind: OutputKind,
    pub(crate) ret: ReturnType,
    pub(crate) body: Box<Block>,
    pub(crate) is_async: bool,
}

fn err<T>(span: Span, msg: impl std::fmt::Display) -> syn::Result<T> {
    Err(syn::Error::new(span, msg))
}

/// The last path segment of a type, if it is a path: `Context` in
/// `dataflow_core::operator::Context<T>`.
fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last(),
        _ => None,
    }
}

/// The single type argument of a path segment (`T` in `Option<T>`).
fn type_args(seg: &syn::PathSegment) -> Vec<&Type> {
    match &seg.arguments {
        PathArguments::AngleBracketed(a) => a
            .args
            .iter()
            .filter_map(|g| match g {
                GenericArgument::Type(t) => Some(t),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

const STATES: [&str; 5] = ["ValueState", "ListState", "MapState", "ReducingState", "AggregatingState"];

fn is_named(ty: &Type, names: &[&str]) -> bool {
    last_segment(ty).is_some_and(|s| names.iter().any(|n| s.ident == n))
}

impl Model {
    pub(crate) fn from_parsed(parsed: Parsed) -> syn::Result<Model> {
        let Parsed { options, function } = parsed;
        let sig = &function.sig;
        let is_async = sig.asyncness.is_some();
        if !is_async {
            let async_only = [
                options.capacity.as_ref().map(|c| c.span()),
                options.timeout_ms.as_ref().map(|t| t.span()),
                options.unordered.map(|(_, s)| s),
            ];
            if let Some(span) = async_only.into_iter().flatten().next() {
                return err(span, "`capacity`, `ordered`, `unordered` and `timeout_ms` are options of async operators");
            }
        }
        if let (true, Some(path)) = (is_async, &options.on_timer) {
            return err(path.span(), "`on_timer` needs a synchronous operator: async operators have no timers");
        }
        if let Some(l) = sig.generics.lifetimes().next() {
            return err(l.span(), "an operator owns its data: #[operator] functions cannot have lifetime parameters");
        }
        let mut params = Vec::new();
        let (mut input, mut context) = (None::<Type>, None::<Type>);
        for arg in &sig.inputs {
            let pt = match arg {
                FnArg::Receiver(r) => {
                    return err(
                        r.self_token.span(),
                        "an #[operator] function cannot take `self`; write a free function",
                    );
                }
                FnArg::Typed(pt) => pt,
            };
            let is_config = pt.attrs.iter().any(|a| a.path().is_ident("config"));
            if let Some(a) = pt.attrs.iter().find(|a| !a.path().is_ident("config")) {
                return err(a.span(), "the only attribute an #[operator] parameter takes is #[config]");
            }
            let ty = (*pt.ty).clone();
            if is_config {
                let ident = match &*pt.pat {
                    Pat::Ident(p) => p.ident.clone(),
                    other => return err(other.span(), "a #[config] parameter needs a plain name"),
                };
                let (stored, by_ref) = match &ty {
                    Type::Reference(r) if r.mutability.is_none() => (r.elem.clone(), true),
                    Type::Reference(r) => return err(r.span(), "a #[config] parameter cannot be `&mut`"),
                    t => (Box::new(t.clone()), false),
                };
                params.push(Param::Config { pat: pt.pat.clone(), ident, ty: Box::new(ty), stored, by_ref });
                continue;
            }
            if is_named(&ty, &STATES) {
                return err(ty.span(), "keyed state is taken as `&mut`, e.g. `&mut ValueState<..>`");
            }
            if let Type::Reference(r) = &ty {
                if is_named(&r.elem, &STATES) {
                    if r.mutability.is_none() {
                        return err(r.span(), "keyed state is taken as `&mut`, e.g. `&mut ValueState<..>`");
                    }
                    params.push(Param::State { pat: pt.pat.clone(), ty: ty.clone(), state: (*r.elem).clone() });
                    continue;
                }
                if let Some(seg) = last_segment(&r.elem).filter(|s| s.ident == "Context") {
                    if r.mutability.is_none() {
                        return err(r.span(), "the context is taken as `&mut Context<Out>`");
                    }
                    if context.is_some() {
                        return err(pt.span(), "an #[operator] function takes at most one context parameter");
                    }
                    let out = match type_args(seg).as_slice() {
                        [t] => (*t).clone(),
                        _ => return err(seg.span(), "the context names its output type: `Context<Out>`"),
                    };
                    context = Some(out);
                    params.push(Param::Context { pat: pt.pat.clone(), ty });
                    continue;
                }
                return err(r.span(), "the input is taken by value (an operator owns its records)");
            }
            if is_named(&ty, &["Context"]) {
                return err(ty.span(), "the context is taken as `&mut Context<Out>`");
            }
            if input.is_some() {
                return err(pt.span(), "an #[operator] function takes one input; mark configuration with #[config]");
            }
            input = Some(ty.clone());
            params.push(Param::Input { pat: pt.pat.clone(), ty });
        }
        let async_misuse = params.iter().find_map(|p| match p {
            Param::Context { pat, .. } | Param::State { pat, .. } if is_async => Some(pat),
            _ => None,
        });
        if let Some(p) = async_misuse {
            return err(p.span(), "an async operator returns its outputs: it takes no context and no keyed state");
        }
        let Some(input) = input else {
            return err(sig.ident.span(), "an #[operator] function needs an input parameter (the record's value)");
        };
        let (kind, output) = match &sig.output {
            ReturnType::Default => match &context {
                Some(out) => (OutputKind::Unit, out.clone()),
                None => {
                    return err(
                        sig.ident.span(),
                        "this function returns nothing and has no `&mut Context<Out>`: it can emit nothing",
                    );
                }
            },
            ReturnType::Type(_, ty) => classify_return(ty)?,
        };
        Ok(Model {
            attrs: function.attrs.clone(),
            vis: function.vis.clone(),
            ident: sig.ident.clone(),
            generics: sig.generics.clone(),
            options,
            params,
            input,
            output,
            kind,
            ret: sig.output.clone(),
            body: function.block.clone(),
            is_async,
        })
    }
}

/// The output kind and item type of a return type.
fn classify_return(ty: &Type) -> syn::Result<(OutputKind, Type)> {
    let unsupported = || {
        err(
            ty.span(),
            "unsupported return type: an #[operator] returns `T`, `Option<T>`, `Vec<T>`, \
             `impl IntoIterator<Item = T>`, `Result<T, E>`, or nothing (emitting through a context)",
        )
    };
    match ty {
        Type::Path(_) => {
            let seg = last_segment(ty).ok_or_else(|| syn::Error::new(ty.span(), "unsupported return type"))?;
            let args = type_args(seg);
            let kind = match seg.ident.to_string().as_str() {
                "Option" => OutputKind::Optional,
                "Vec" => OutputKind::Many,
                "Result" => OutputKind::Fallible,
                _ => return Ok((OutputKind::One, ty.clone())),
            };
            match args.first() {
                Some(t) => Ok((kind, (*t).clone())),
                None => unsupported(),
            }
        }
        Type::Tuple(t) if t.elems.is_empty() => unsupported(),
        Type::Tuple(_) | Type::Array(_) => Ok((OutputKind::One, ty.clone())),
        Type::ImplTrait(it) => {
            let item = it.bounds.iter().find_map(|b| {
                let TypeParamBound::Trait(tb) = b else { return None };
                let seg = tb.path.segments.last().filter(|s| s.ident == "IntoIterator" || s.ident == "Iterator")?;
                let PathArguments::AngleBracketed(a) = &seg.arguments else { return None };
                a.args.iter().find_map(|g| match g {
                    GenericArgument::AssocType(at) if at.ident == "Item" => Some(at.ty.clone()),
                    _ => None,
                })
            });
            match item {
                Some(t) => Ok((OutputKind::Many, t)),
                None => unsupported(),
            }
        }
        _ => unsupported(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn model(attr: proc_macro2::TokenStream, item: proc_macro2::TokenStream) -> syn::Result<Model> {
        Model::from_parsed(crate::parse::parse(attr, item)?)
    }

    fn ty(t: &Type) -> String {
        quote!(#t).to_string()
    }

    #[test]
    fn return_kinds() {
        let cases = [
            (
                quote!(
                    fn f(x: u8) -> u16 {
                        0
                    }
                ),
                OutputKind::One,
                "u16",
            ),
            (
                quote!(
                    fn f(x: u8) -> Option<String> {
                        None
                    }
                ),
                OutputKind::Optional,
                "String",
            ),
            (
                quote!(
                    fn f(x: u8) -> Vec<(u8, u8)> {
                        vec![]
                    }
                ),
                OutputKind::Many,
                "(u8 , u8)",
            ),
            (
                quote!(
                    fn f(x: u8) -> impl IntoIterator<Item = u32> {
                        []
                    }
                ),
                OutputKind::Many,
                "u32",
            ),
            (
                quote!(
                    fn f(x: u8) -> Result<u8, String> {
                        Ok(x)
                    }
                ),
                OutputKind::Fallible,
                "u8",
            ),
            (
                quote!(
                    fn f(x: u8, c: &mut Context<i64>) {}
                ),
                OutputKind::Unit,
                "i64",
            ),
        ];
        for (item, kind, out) in cases {
            let m = model(quote!(), item).unwrap();
            assert_eq!(m.kind, kind);
            assert_eq!(ty(&m.output), out);
            assert_eq!(ty(&m.input), "u8");
        }
    }

    #[test]
    fn parameters_by_role() {
        let m = model(
            quote!(),
            quote!(
                fn f(#[config] t: &Cfg, x: u8, #[config] n: u32, c: &mut Context<u8>) {}
            ),
        )
        .unwrap();
        let roles: Vec<&str> = m
            .params
            .iter()
            .map(|p| match p {
                Param::Config { by_ref: true, .. } => "config&",
                Param::Config { .. } => "config",
                Param::Input { .. } => "input",
                Param::Context { .. } => "context",
                Param::State { .. } => "state",
            })
            .collect();
        assert_eq!(roles, ["config&", "input", "config", "context"]);
        let m = model(
            quote!(),
            quote!(
                fn f(x: u8, a: &mut ValueState<u8>, b: &mut MapState<u8, u8>) -> u8 {
                    x
                }
            ),
        )
        .unwrap();
        assert!(matches!(m.params[1], Param::State { .. }) && matches!(m.params[2], Param::State { .. }));
    }

    #[test]
    fn misuse_is_an_error() {
        let cases = [
            (
                quote!(
                    fn f(self, x: u8) -> u8 {
                        x
                    }
                ),
                "cannot take `self`",
            ),
            (
                quote!(
                    fn f(x: u8, a: &mut Context<u8>, b: &mut Context<u8>) {}
                ),
                "at most one context",
            ),
            (
                quote!(
                    fn f(x: u8, y: u8) -> u8 {
                        x
                    }
                ),
                "takes one input",
            ),
            (
                quote!(
                    fn f(x: &str) -> u8 {
                        0
                    }
                ),
                "taken by value",
            ),
            (
                quote!(
                    fn f(x: u8) -> &'static str {
                        ""
                    }
                ),
                "unsupported return type",
            ),
            (
                quote!(
                    fn f(x: u8) {}
                ),
                "can emit nothing",
            ),
            (
                quote!(
                    fn f() -> u8 {
                        0
                    }
                ),
                "needs an input",
            ),
            (
                quote!(
                    fn f(x: u8, s: ValueState<u8>) -> u8 {
                        x
                    }
                ),
                "`&mut ValueState<..>`",
            ),
            (
                quote!(
                    fn f(x: u8, s: &ListState<u8>) -> u8 {
                        x
                    }
                ),
                "taken as `&mut`",
            ),
            (
                quote!(
                    async fn f(x: u8, c: &mut Context<u8>) {}
                ),
                "async operator returns its outputs",
            ),
            (
                quote!(
                    fn f<'a>(x: u8) -> u8 {
                        x
                    }
                ),
                "lifetime",
            ),
        ];
        for (item, msg) in cases {
            let e = model(quote!(), item).err().expect("an error");
            assert!(e.to_string().contains(msg), "{e} does not say {msg}");
        }
    }
}
