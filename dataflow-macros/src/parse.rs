//! Step 1: the attribute's options and the function, as tokens.

use proc_macro2::TokenStream;
use syn::parse::Parser;
use syn::spanned::Spanned;
use syn::{ItemFn, LitInt, LitStr};

/// The options of `#[operator(...)]`.
#[derive(Default)]
pub(crate) struct Options {
    pub(crate) name: Option<LitStr>,
    pub(crate) uid: Option<LitStr>,
    pub(crate) parallelism: Option<LitInt>,
    /// Async only: calls in flight per subtask.
    pub(crate) capacity: Option<LitInt>,
    /// Async only: `ordered` (the default) or `unordered`, with its span.
    pub(crate) unordered: Option<(bool, proc_macro2::Span)>,
    /// Async only: a timeout per call, in milliseconds.
    pub(crate) timeout_ms: Option<LitInt>,
    /// The function called when a timer of the current key fires.
    pub(crate) on_timer: Option<syn::Path>,
}

/// What the attribute was given.
pub(crate) struct Parsed {
    pub(crate) options: Options,
    pub(crate) function: ItemFn,
}

const OPTIONS: &str = "`name = \"..\"`, `uid = \"..\"`, `parallelism = N`, `on_timer = path`, and for async \
                       functions `capacity = N`, `ordered`, `unordered`, `timeout_ms = N`";

/// Parses the attribute's options and the annotated function.
pub(crate) fn parse(attr: TokenStream, item: TokenStream) -> syn::Result<Parsed> {
    let mut options = Options::default();
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("name") {
            options.name = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("uid") {
            options.uid = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("parallelism") {
            let n: LitInt = meta.value()?.parse()?;
            if n.base10_parse::<usize>()? == 0 {
                return Err(syn::Error::new(n.span(), "parallelism must be at least 1"));
            }
            options.parallelism = Some(n);
        } else if meta.path.is_ident("capacity") {
            let n: LitInt = meta.value()?.parse()?;
            if n.base10_parse::<usize>()? == 0 {
                return Err(syn::Error::new(n.span(), "capacity must be at least 1"));
            }
            options.capacity = Some(n);
        } else if meta.path.is_ident("timeout_ms") {
            let n: LitInt = meta.value()?.parse()?;
            n.base10_parse::<u64>()?;
            options.timeout_ms = Some(n);
        } else if meta.path.is_ident("on_timer") {
            options.on_timer = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("ordered") || meta.path.is_ident("unordered") {
            options.unordered = Some((meta.path.is_ident("unordered"), meta.path.span()));
        } else {
            let name = meta.path.get_ident().map_or_else(|| "this".to_string(), |i| format!("`{i}`"));
            return Err(meta.error(format!("unsupported option {name}: #[operator] takes {OPTIONS}")));
        }
        Ok(())
    });
    parser.parse2(attr)?;
    let function: ItemFn = syn::parse2(item)?;
    Ok(Parsed { options, function })
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    #[test]
    fn reads_every_option() {
        let p = parse(
            quote!(name = "n", uid = "u", parallelism = 3),
            quote!(
                fn f(x: u8) -> u8 {
                    x
                }
            ),
        )
        .unwrap();
        assert_eq!(p.options.name.unwrap().value(), "n");
        assert_eq!(p.options.uid.unwrap().value(), "u");
        assert_eq!(p.options.parallelism.unwrap().base10_parse::<usize>().unwrap(), 3);
    }

    #[test]
    fn rejects_unknown_options_and_zero_parallelism() {
        let e = parse(
            quote!(speed = 3),
            quote!(
                fn f(x: u8) -> u8 {
                    x
                }
            ),
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("unsupported option `speed`"), "{e}");
        let e = parse(
            quote!(parallelism = 0),
            quote!(
                fn f(x: u8) -> u8 {
                    x
                }
            ),
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("at least 1"), "{e}");
    }
}
