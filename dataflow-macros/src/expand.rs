//! Step 3: the generated code.
//!
//! For `fn name<G>(#[config] c: C, x: In) -> R { body }` the macro emits
//!
//! * `struct name<G>`: the operator, holding the configuration;
//! * `fn name<G>(c: C) -> name<G>`: its constructor (so `stream.apply(name(c))`);
//! * `name::call(c, x) -> R`: the function as written, callable in tests;
//! * `impl Operator for name<G>` (only without keyed state: an operator with
//!   state parameters applies to a keyed stream alone), `impl
//!   KeyedFnOperator for name<G>` and `impl FnOperator for name<G>`.

use crate::model::{Model, OutputKind, Param};
use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

pub(crate) fn expand(m: &Model) -> TokenStream {
    let Model { attrs, vis, ident, generics, options, params, input, output, kind, ret, body, is_async } = m;
    let krate = quote!(::dataflow_core);
    let (impl_g, ty_g, where_c) = generics.split_for_impl();
    let type_params: Vec<_> = generics.type_params().map(|t| &t.ident).collect();
    let docs: Vec<_> = attrs.iter().filter(|a| a.path().is_ident("doc")).collect();
    let others: Vec<_> = attrs.iter().filter(|a| !a.path().is_ident("doc")).collect();

    let configs: Vec<_> = params
        .iter()
        .filter_map(|p| match p {
            Param::Config { ident, ty, stored, by_ref, .. } => Some((ident, ty, stored, *by_ref)),
            _ => None,
        })
        .collect();
    // A `&T` configuration is kept as `Arc<T::Owned>`: cloned once, shared
    // by every subtask and call. A `T` one is cloned per call (the function
    // takes it by value).
    let stored_ty = |stored: &syn::Type, by_ref: bool| {
        if by_ref { quote!(::std::sync::Arc<<#stored as ::std::borrow::ToOwned>::Owned>) } else { quote!(#stored) }
    };
    let fields = configs.iter().map(|(i, _, stored, by_ref)| {
        let t = stored_ty(stored, *by_ref);
        quote!(#i: #t)
    });
    let ctor_args = configs.iter().map(|(i, ty, _, _)| quote!(#i: #ty));
    let ctor_inits = configs.iter().map(|(i, _, _, by_ref)| {
        if *by_ref { quote!(#i: ::std::sync::Arc::new(::std::borrow::ToOwned::to_owned(#i))) } else { quote!(#i) }
    });
    let clones = configs.iter().map(|(i, ..)| quote!(#i: ::core::clone::Clone::clone(&self.#i)));
    let stored_tys: Vec<_> = configs.iter().filter(|c| !c.3).map(|(_, _, stored, _)| stored).collect();

    // A timer callback talks through the context even if the function
    // itself takes none.
    let has_ctx = params.iter().any(|p| matches!(p, Param::Context { .. })) || options.on_timer.is_some();
    let fallible = *kind == OutputKind::Fallible;
    let ctx_field = has_ctx.then(|| quote!(__ctx: #krate::operator::Context<#output>,));
    let ctx_init = has_ctx.then(|| quote!(__ctx: ::core::default::Default::default(),));
    let bad_fields = fallible.then(|| quote!(__bad: #krate::operator::function::BadRecords,));
    let bad_init = fallible.then(|| quote!(__bad: ::core::default::Default::default(),));

    let call_params = params.iter().map(|p| match p {
        Param::Config { pat, ty, .. } => quote!(#pat: #ty),
        Param::Input { pat, ty } | Param::Context { pat, ty } | Param::State { pat, ty, .. } => quote!(#pat: #ty),
    });
    let state_tys: Vec<_> = params
        .iter()
        .filter_map(|p| match p {
            Param::State { state, .. } => Some(state),
            _ => None,
        })
        .collect();
    // Timers are per key: an operator with a timer callback is keyed only.
    let has_state = !state_tys.is_empty() || options.on_timer.is_some();
    let mut state_index = 0..;
    let call_args: Vec<_> = params
        .iter()
        .map(|p| match p {
            Param::State { .. } => {
                let i = syn::Index::from(state_index.next().unwrap_or_default());
                quote!(&mut state.#i)
            }
            Param::Config { ident, by_ref: true, .. } => quote!(::std::borrow::Borrow::borrow(&*self.#ident)),
            Param::Config { ident, .. } => quote!(::core::clone::Clone::clone(&self.#ident)),
            Param::Input { .. } => quote!(record.value),
            Param::Context { .. } => quote!(&mut self.__ctx),
        })
        .collect();

    let emit = match kind {
        OutputKind::One => quote!(#krate::operator::function::__emit_one(__result, __ts, out);),
        OutputKind::Optional => quote! {
            if let ::core::option::Option::Some(v) = __result {
                #krate::operator::function::__emit_one(v, __ts, out);
            }
        },
        OutputKind::Many => quote!(#krate::operator::function::__emit_many(__result, __ts, out);),
        OutputKind::Fallible => quote! {
            match __result {
                ::core::result::Result::Ok(v) => #krate::operator::function::__emit_one(v, __ts, out),
                ::core::result::Result::Err(e) => {
                    return self.__bad.reject(e, __position, __ts, out);
                }
            }
        },
        OutputKind::Unit => quote!(let () = __result;),
    };
    // One output per record and nothing else to track: map the whole batch
    // in one pass, like the built-in `map`.
    let batch_args = params.iter().map(|p| match p {
        Param::Config { ident, by_ref: true, .. } => quote!(::std::borrow::Borrow::borrow(&*this.#ident)),
        Param::Config { ident, .. } => quote!(::core::clone::Clone::clone(&this.#ident)),
        Param::Input { .. } => quote!(value),
        // Never: batch mapping is for functions without context or state.
        Param::Context { .. } | Param::State { .. } => quote!(),
    });
    let process_batch = (*kind == OutputKind::One && !has_ctx && !has_state).then(|| {
        quote! {
            #[inline]
            fn process_batch(
                &mut self,
                batch: &mut #krate::Batch<#input>,
                out: &mut #krate::Collector<#output>,
            ) -> ::core::result::Result<(), #krate::BoxError> {
                let this = &*self;
                batch.map_into(out.batch_mut(), |value| Self::call(#(#batch_args),*));
                ::core::result::Result::Ok(())
            }
        }
    });
    let begin_ctx = has_ctx.then(|| quote!(self.__ctx.__begin(__ts);));
    let flush_ctx = has_ctx.then(|| quote!(self.__ctx.__flush_into(out);));
    let count_position = fallible.then(|| {
        quote! {
            let __position = self.__bad.next_position();
        }
    });
    let open = fallible.then(|| {
        quote! {
            fn open(&mut self, info: &#krate::OperatorInfo) -> ::core::result::Result<(), #krate::BoxError> {
                self.__bad = #krate::operator::function::BadRecords::new(info);
                ::core::result::Result::Ok(())
            }
        }
    });
    let on_watermark = has_ctx.then(|| {
        quote! {
            fn on_watermark(
                &mut self,
                watermark: #krate::time::Watermark,
                _out: &mut #krate::Collector<#output>,
            ) -> ::core::result::Result<(), #krate::BoxError> {
                self.__ctx.__set_watermark(watermark);
                ::core::result::Result::Ok(())
            }
        }
    });

    let name = match &options.name {
        Some(n) => quote!(#n),
        None => {
            let s = ident.to_string();
            quote!(#s)
        }
    };
    let uid = match &options.uid {
        Some(u) => quote!(::core::option::Option::Some(#u)),
        None => quote!(::core::option::Option::None),
    };
    let parallelism = match &options.parallelism {
        Some(p) => quote!(::core::option::Option::Some(#p)),
        None => quote!(::core::option::Option::None),
    };
    // Spanned on the input type, so a stream of the wrong type points there.
    let in_assoc = quote_spanned!(input.span()=> type In = #input;);
    let marker = format_ident!("__marker");
    let data_bounds = quote!(#input: #krate::Data, #output: #krate::Data, Self: ::core::marker::Send + 'static);
    let where_preds = where_c.map(|w| {
        let p = w.predicates.iter();
        quote!(#(#p,)*)
    });

    let asyncness = is_async.then(|| quote!(async));
    // The impl of `KeyedFnOperator<__K>` is generic over the key type too.
    let mut keyed_generics = generics.clone();
    keyed_generics.params.insert(0, syn::parse_quote!(__K: #krate::Key));
    let keyed_impl_g = keyed_generics.split_for_impl().0;
    let unit = quote!(::core::result::Result<(), #krate::BoxError>);
    let process_body = |timers: TokenStream| {
        let timers = has_ctx.then_some(timers);
        quote! {
            let __ts = record.timestamp();
            #count_position
            #begin_ctx
            let __result = Self::call(#(#call_args),*);
            #flush_ctx
            #timers
            #emit
            ::core::result::Result::Ok(())
        }
    };
    let keyed_body = process_body(quote!(self.__ctx.__apply_timers(out);));
    let plain_body = process_body(quote!(self.__ctx.__no_timers()?;));
    let on_timer = options.on_timer.as_ref().map(|path| {
        let states = (0..state_tys.len()).map(syn::Index::from);
        quote! {
            fn on_timer(
                &mut self,
                timer: #krate::time::Timer<__K, ()>,
                state: &mut Self::State,
                out: &mut #krate::operator::KeyedContext<'_, __K, (), #output>,
            ) -> #unit {
                self.__ctx.__begin(::core::option::Option::Some(timer.timestamp));
                let () = #path(timer.timestamp, #(&mut state.#states,)* &mut self.__ctx);
                self.__ctx.__flush_into(out);
                self.__ctx.__apply_timers(out);
                ::core::result::Result::Ok(())
            }
        }
    });
    let record_params = quote!(record: #krate::Record<#input>, out: &mut #krate::Collector<#output>);
    let operator_impls = if *is_async {
        let owned = configs.iter().map(|(i, ..)| quote!(let #i = ::core::clone::Clone::clone(&self.#i);));
        let async_args = params.iter().map(|p| match p {
            Param::Config { ident, by_ref: true, .. } => quote!(::std::borrow::Borrow::borrow(&*#ident)),
            Param::Config { ident, .. } => quote!(#ident),
            Param::Input { .. } => quote!(__value),
            // Rejected for async functions by the model.
            Param::Context { .. } | Param::State { .. } => quote!(),
        });
        let convert = match kind {
            OutputKind::One => quote!(::core::result::Result::Ok(::std::vec![__result])),
            OutputKind::Optional | OutputKind::Many => {
                quote!(::core::result::Result::Ok(::core::iter::IntoIterator::into_iter(__result).collect()))
            }
            OutputKind::Fallible => quote!(match __result {
                ::core::result::Result::Ok(v) => ::core::result::Result::Ok(::std::vec![v]),
                ::core::result::Result::Err(e) => ::core::result::Result::Err(::core::convert::Into::into(e)),
            }),
            OutputKind::Unit => quote!(::core::result::Result::Ok(::std::vec::Vec::new())),
        };
        let capacity = options.capacity.as_ref().map(|c| quote!(const CAPACITY: usize = #c;));
        let order = options.unordered.map(|(unordered, _)| {
            let v = if unordered { quote!(Unordered) } else { quote!(Ordered) };
            quote!(const ORDER: #krate::operator::AsyncOrder = #krate::operator::AsyncOrder::#v;)
        });
        let timeout = options.timeout_ms.as_ref().map(|t| {
            quote! {
                const TIMEOUT: ::core::option::Option<::core::time::Duration> =
                    ::core::option::Option::Some(::core::time::Duration::from_millis(#t));
            }
        });
        quote! {
            impl #impl_g #krate::operator::AsyncFnOperator for #ident #ty_g where #where_preds #data_bounds {
                #in_assoc
                type Out = #output;
                #capacity
                #order
                #timeout

                fn start(&self, __value: #input) -> #krate::operator::AsyncCall<#output> {
                    #(#owned)*
                    ::std::boxed::Box::pin(async move {
                        let __result = Self::call(#(#async_args),*).await;
                        #convert
                    })
                }
            }
        }
    } else if has_state {
        // Keyed state: only a keyed operator, so applying it to a plain
        // stream does not compile.
        quote! {
            impl #keyed_impl_g #krate::operator::KeyedFnOperator<__K> for #ident #ty_g
            where #where_preds #data_bounds
            {
                #in_assoc
                type Out = #output;
                type State = (#(#state_tys,)*);
                type Namespace = ();

                #open
                #on_watermark
                #on_timer

                #[inline]
                fn process_keyed(
                    &mut self,
                    _key: &__K,
                    record: #krate::Record<#input>,
                    state: &mut Self::State,
                    out: &mut #krate::operator::KeyedContext<'_, __K, (), #output>,
                ) -> #unit {
                    #keyed_body
                }
            }
        }
    } else {
        quote! {
            impl #impl_g #krate::Operator for #ident #ty_g where #where_preds #data_bounds {
                #in_assoc
                type Out = #output;

                #open
                #on_watermark
                #process_batch

                #[inline]
                fn process(&mut self, #record_params) -> #unit {
                    #plain_body
                }
            }

            impl #keyed_impl_g #krate::operator::KeyedFnOperator<__K> for #ident #ty_g
            where #where_preds #data_bounds
            {
                type In = #input;
                type Out = #output;
                type State = ();
                type Namespace = ();

                fn open(&mut self, info: &#krate::OperatorInfo) -> #unit {
                    <Self as #krate::Operator>::open(self, info)
                }

                #[inline]
                fn process_keyed(
                    &mut self,
                    _key: &__K,
                    record: #krate::Record<#input>,
                    _state: &mut (),
                    out: &mut #krate::operator::KeyedContext<'_, __K, (), #output>,
                ) -> #unit {
                    <Self as #krate::Operator>::process(self, record, out)
                }

                fn on_watermark(
                    &mut self,
                    watermark: #krate::time::Watermark,
                    out: &mut #krate::Collector<#output>,
                ) -> #unit {
                    <Self as #krate::Operator>::on_watermark(self, watermark, out)
                }
            }
        }
    };

    quote! {
        #(#docs)*
        #[allow(non_camel_case_types)]
        #vis struct #ident #impl_g #where_c {
            #(#fields,)*
            #ctx_field
            #bad_fields
            #marker: ::core::marker::PhantomData<fn() -> (#(#type_params,)*)>,
        }

        impl #impl_g ::core::clone::Clone for #ident #ty_g
        where #where_preds #(#stored_tys: ::core::clone::Clone,)*
        {
            fn clone(&self) -> Self {
                Self { #(#clones,)* #ctx_init #bad_init #marker: ::core::marker::PhantomData }
            }
        }

        #(#docs)*
        #vis fn #ident #impl_g (#(#ctor_args),*) -> #ident #ty_g #where_c {
            #ident { #(#ctor_inits,)* #ctx_init #bad_init #marker: ::core::marker::PhantomData }
        }

        impl #impl_g #ident #ty_g #where_c {
            /// The function as written, without the operator around it.
            #[allow(dead_code, clippy::too_many_arguments)]
            #(#others)*
            #vis #asyncness fn call(#(#call_params),*) #ret #body
        }

        #operator_impls

        impl #impl_g #krate::operator::FnOperator for #ident #ty_g #where_c {
            const NAME: &'static str = #name;
            const UID: ::core::option::Option<&'static str> = #uid;
            const PARALLELISM: ::core::option::Option<usize> = #parallelism;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::model::Model;
    use quote::quote;

    fn expand(attr: proc_macro2::TokenStream, item: proc_macro2::TokenStream) -> String {
        let m = Model::from_parsed(crate::parse::parse(attr, item).unwrap()).unwrap();
        super::expand(&m).to_string()
    }

    #[test]
    fn generates_struct_constructor_and_impls() {
        let out = expand(
            quote!(uid = "p-1"),
            quote!(
                pub fn parse(#[config] min: u8, x: u8) -> Option<u8> {
                    None
                }
            ),
        );
        for needle in [
            "pub struct parse",
            "pub fn parse (min : u8) -> parse",
            "pub fn call (min : u8 , x : u8) -> Option < u8 >",
            "impl :: dataflow_core :: Operator for parse",
            "const UID : :: core :: option :: Option < & 'static str > = :: core :: option :: Option :: Some (\"p-1\")",
        ] {
            assert!(out.contains(needle), "missing `{needle}` in {out}");
        }
        assert!(!out.contains("__bad"), "no bad-record state without Result");
    }

    #[test]
    fn fallible_functions_track_position_and_policy() {
        let out = expand(
            quote!(),
            quote!(
                fn f(x: u8) -> Result<u8, String> {
                    Ok(x)
                }
            ),
        );
        assert!(out.contains("self . __bad . reject"), "{out}");
        assert!(out.contains("BadRecords :: new (info)"), "{out}");
    }
}
