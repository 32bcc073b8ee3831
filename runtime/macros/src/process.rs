//! `#[process]`: a fn that returns `csp::Result<X>` becomes a constructor of a
//! `csp::Process<X>`, plus (for a non-generic fn) an entry in the process
//! registry.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{
    AttrStyle, Attribute, FnArg, GenericArgument, Ident, ItemFn, Pat, PathArguments, ReturnType,
    Type, TypeParamBound,
};

const RETURN_MSG: &str = "a #[process] fn returns csp::Result<T>";

/// Expands `#[process]`; on error, the errors followed by the item unchanged
/// (so that uses of the fn do not add confusing "not found" errors).
pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        let err = syn::Error::new_spanned(&attr, "#[process] takes no arguments");
        return with_item(err, item);
    }
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(e) => {
            let err = syn::Error::new(
                e.span(),
                format!("#[process] goes on a fn that returns csp::Result<T>: {e}"),
            );
            return with_item(err, item);
        }
    };
    match expand_fn(func) {
        Ok(ts) => ts,
        Err(err) => with_item(err, item),
    }
}

fn with_item(err: syn::Error, item: TokenStream) -> TokenStream {
    let err = err.to_compile_error();
    quote!(#err #item)
}

fn push_err(errors: &mut Option<syn::Error>, e: syn::Error) {
    match errors {
        Some(all) => all.combine(e),
        None => *errors = Some(e),
    }
}

/// One parameter of the process fn.
struct Param {
    /// Attributes of the parameter: `#[cfg]` goes on the constructor's
    /// parameter and on the binding in the body, the others on the binding.
    attrs: Vec<Attribute>,
    /// The name the constructor's parameter gets.
    name: Ident,
    /// The original pattern, bound to `name` at the top of the body.
    pat: Box<Pat>,
    ty: Box<Type>,
}

fn expand_fn(func: ItemFn) -> syn::Result<TokenStream> {
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = func;
    let mut errors: Option<syn::Error> = None;

    if let Some(t) = &sig.constness {
        push_err(
            &mut errors,
            syn::Error::new_spanned(
                t,
                "a #[process] fn cannot be const: it makes a process value at run time",
            ),
        );
    }
    if let Some(t) = &sig.asyncness {
        push_err(
            &mut errors,
            syn::Error::new_spanned(
                t,
                "a #[process] fn cannot be async: a process body is ordinary sequential code, \
                 and its channel operations block only this process",
            ),
        );
    }
    if let Some(t) = &sig.unsafety {
        push_err(
            &mut errors,
            syn::Error::new_spanned(
                t,
                "a #[process] fn cannot be unsafe: use `unsafe` blocks inside its body",
            ),
        );
    }
    if let Some(abi) = &sig.abi {
        push_err(
            &mut errors,
            syn::Error::new_spanned(abi, "a #[process] fn cannot have an extern ABI"),
        );
    }
    if let Some(v) = &sig.variadic {
        push_err(
            &mut errors,
            syn::Error::new_spanned(v, "a #[process] fn cannot be variadic"),
        );
    }

    let mut params = Vec::new();
    for (i, arg) in sig.inputs.iter().enumerate() {
        match arg {
            FnArg::Receiver(r) => push_err(
                &mut errors,
                syn::Error::new_spanned(
                    r,
                    "a #[process] fn cannot take `self`: make it a free fn and pass what the \
                     process needs as arguments",
                ),
            ),
            FnArg::Typed(pt) => {
                if let Some(t) = find_impl_trait(&pt.ty) {
                    push_err(
                        &mut errors,
                        syn::Error::new_spanned(
                            t,
                            "a #[process] fn cannot take `impl Trait` arguments: \
                             use a named type parameter (`fn f<T: Trait>(x: T)`)",
                        ),
                    );
                }
                let name = match &*pt.pat {
                    Pat::Ident(pi) if pi.by_ref.is_none() && pi.subpat.is_none() => {
                        pi.ident.clone()
                    }
                    _ => format_ident!("__csp_arg{}", i, span = Span::mixed_site()),
                };
                params.push(Param {
                    attrs: pt.attrs.clone(),
                    name,
                    pat: pt.pat.clone(),
                    ty: pt.ty.clone(),
                });
            }
        }
    }

    let (output, user_ret) = match (result_type(&sig.output, &sig.ident), errors) {
        (Ok(found), None) => found,
        (Ok(_), Some(e)) => return Err(e),
        (Err(e), None) => return Err(e),
        (Err(e), Some(mut all)) => {
            all.combine(e);
            return Err(all);
        }
    };

    // Outer attributes stay on the constructor; inner ones (`#![allow(..)]`
    // at the top of the body) mean the same there.
    let attrs: Vec<Attribute> = attrs
        .into_iter()
        .map(|mut a| {
            a.style = AttrStyle::Outer;
            a
        })
        .collect();

    let fn_name = &sig.ident;
    let name_str = fn_name.unraw().to_string();
    let generics = &sig.generics;
    let where_clause = &generics.where_clause;
    let fn_token = &sig.fn_token;
    // The body's statements go straight into the closure's block (wrapping the
    // fn's block in it would draw `unused_braces` on one-expression bodies).
    let stmts = &block.stmts;

    let ends = Ident::new("__csp_ends", Span::mixed_site());
    // `#[cfg]` on a parameter applies to the parameter and to its binding in
    // the body; lint attributes (`#[allow(unused_variables)]`) only to the
    // binding, since the constructor's parameter is always used.
    let is_cfg = |a: &&Attribute| a.path().is_ident("cfg");
    let sig_params = params.iter().map(|p| {
        let Param {
            attrs, name, ty, ..
        } = p;
        let cfgs = attrs.iter().filter(is_cfg);
        quote!(#(#cfgs)* #name: #ty)
    });
    let ends_ref = &ends;
    let probes = params.iter().flat_map(|p| {
        let name = &p.name;
        let cfgs: Vec<&Attribute> = p.attrs.iter().filter(is_cfg).collect();
        probes(quote!(#name), &p.ty).into_iter().map(move |target| {
            quote! {
                #(#cfgs)*
                (&&::csp::__private::Probe(&#target)).__csp_collect_ends(&mut #ends_ref);
            }
        })
    });
    let binds = params.iter().map(|p| {
        let Param {
            attrs,
            name,
            pat,
            ty,
        } = p;
        quote!(#(#attrs)* let #pat: #ty = #name;)
    });
    // The body's closure returns the type as the user wrote it (so that a
    // `use csp::Result;` stays used and errors read as they would in a fn);
    // `__with_end_set` then requires it to be `csp::Result<X>`.
    let process_ty = quote_spanned!(user_ret.span()=> ::csp::Process<#output>);
    let result_ty = &user_ret;

    let constructor = quote! {
        #(#attrs)*
        #vis #fn_token #fn_name #generics (#(#sig_params),*) -> #process_ty #where_clause {
            #[allow(unused_mut)]
            let mut #ends = ::csp::EndSet::new();
            {
                #[allow(unused_imports)]
                use ::csp::__private::{ViaEnds as _, ViaNothing as _};
                #(#probes)*
            }
            ::csp::Process::__with_end_set(#name_str, #ends, move || -> #result_ty {
                #(#binds)*
                #(#stmts)*
            })
        }
    };

    let param_cfg = params
        .iter()
        .any(|p| p.attrs.iter().any(|a| a.path().is_ident("cfg")));
    let registration = if generics.params.is_empty() && !param_cfg {
        // A `#[cfg]`-gated process is registered only when it exists.
        let cfgs: Vec<&Attribute> = attrs.iter().filter(|a| a.path().is_ident("cfg")).collect();
        registration(fn_name, &name_str, &params, &output, &cfgs)
    } else {
        TokenStream::new()
    };

    Ok(quote! {
        #constructor
        #registration
    })
}

/// The places whose ends are collected for a parameter: the parameter itself,
/// or, for a tuple type, each of its fields (so that a tuple mixing ends with
/// types that do not implement `Ends` still has its ends found).
fn probes(place: TokenStream, ty: &Type) -> Vec<TokenStream> {
    match ty {
        Type::Paren(p) => probes(place, &p.elem),
        Type::Group(g) => probes(place, &g.elem),
        Type::Tuple(t) => t
            .elems
            .iter()
            .enumerate()
            .flat_map(|(j, elem)| {
                let j = syn::Index::from(j);
                probes(quote!((#place).#j), elem)
            })
            .collect(),
        _ => vec![place],
    }
}

/// The `X` of `-> Result<X>` (any path whose last segment is `Result` with one
/// type argument), and the return type as written.
fn result_type(output: &ReturnType, name: &Ident) -> syn::Result<(Type, Type)> {
    let ty = match output {
        ReturnType::Type(_, ty) => ty,
        ReturnType::Default => {
            return Err(syn::Error::new(
                name.span(),
                format!("{RETURN_MSG}; this fn returns nothing"),
            ));
        }
    };
    let wrong = || syn::Error::new_spanned(ty, RETURN_MSG);
    let Type::Path(tp) = &**ty else {
        return Err(wrong());
    };
    if tp.qself.is_some() {
        return Err(wrong());
    }
    let Some(last) = tp.path.segments.last() else {
        return Err(wrong());
    };
    if last.ident != "Result" {
        return Err(wrong());
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return Err(wrong());
    };
    if args.args.len() != 1 {
        return Err(syn::Error::new_spanned(
            ty,
            format!(
                "{RETURN_MSG}: one type argument, the process's value (the error is csp::Error)"
            ),
        ));
    }
    let Some(GenericArgument::Type(x)) = args.args.first() else {
        return Err(wrong());
    };
    if let Some(t) = find_impl_trait(x) {
        return Err(syn::Error::new_spanned(
            t,
            "the value of a #[process] fn cannot be `impl Trait`: name its type",
        ));
    }
    Ok((x.clone(), (**ty).clone()))
}

/// The first `impl Trait` inside a type, if any.
fn find_impl_trait(ty: &Type) -> Option<&Type> {
    match ty {
        Type::ImplTrait(_) => Some(ty),
        Type::Array(a) => find_impl_trait(&a.elem),
        Type::Group(g) => find_impl_trait(&g.elem),
        Type::Paren(p) => find_impl_trait(&p.elem),
        Type::Ptr(p) => find_impl_trait(&p.elem),
        Type::Reference(r) => find_impl_trait(&r.elem),
        Type::Slice(s) => find_impl_trait(&s.elem),
        Type::Tuple(t) => t.elems.iter().find_map(find_impl_trait),
        Type::Path(p) => {
            let in_qself = p.qself.as_ref().and_then(|q| find_impl_trait(&q.ty));
            in_qself.or_else(|| {
                p.path
                    .segments
                    .iter()
                    .find_map(|s| find_in_arguments(&s.arguments))
            })
        }
        Type::TraitObject(t) => t.bounds.iter().find_map(|b| match b {
            TypeParamBound::Trait(tb) => tb
                .path
                .segments
                .iter()
                .find_map(|s| find_in_arguments(&s.arguments)),
            _ => None,
        }),
        _ => None,
    }
}

fn find_in_arguments(args: &PathArguments) -> Option<&Type> {
    match args {
        PathArguments::AngleBracketed(a) => a.args.iter().find_map(|g| match g {
            GenericArgument::Type(t) => find_impl_trait(t),
            GenericArgument::AssocType(a) => find_impl_trait(&a.ty),
            _ => None,
        }),
        PathArguments::Parenthesized(p) => {
            p.inputs
                .iter()
                .find_map(find_impl_trait)
                .or_else(|| match &p.output {
                    ReturnType::Type(_, t) => find_impl_trait(t),
                    ReturnType::Default => None,
                })
        }
        PathArguments::None => None,
    }
}

/// The hidden constructor from bytes and the link-time registry entry, inside
/// an anonymous `const` so that nothing leaks into the caller's namespace and
/// two processes never clash (a `const _` is its own scope).
fn registration(
    fn_name: &Ident,
    name_str: &str,
    params: &[Param],
    output: &Type,
    cfgs: &[&Attribute],
) -> TokenStream {
    let site = Span::mixed_site();
    let upper = name_str.to_uppercase();
    let static_name = syn::parse_str::<Ident>(&format!("__CSP_PROCESS_{upper}"))
        .unwrap_or_else(|_| Ident::new("__CSP_PROCESS", Span::call_site()));
    let construct = Ident::new("__csp_construct", site);
    let full_name = Ident::new("__CSP_NAME", site);
    let bytes = Ident::new("__csp_bytes", site);
    let tys: Vec<&Type> = params.iter().map(|p| &*p.ty).collect();
    let vars: Vec<Ident> = (0..params.len())
        .map(|i| format_ident!("__csp_a{}", i, span = site))
        .collect();
    let args_ty = quote!((#(#tys,)*));
    quote! {
        #(#cfgs)*
        const _: () = {
            const #full_name: &str = ::core::concat!(::core::module_path!(), "::", #name_str);

            #[allow(deprecated, dead_code)]
            fn #construct(#bytes: &[u8])
                -> ::csp::Result<::csp::Process<::std::vec::Vec<u8>>>
            {
                #[allow(unused_imports)]
                use ::csp::__private::{ViaDecode as _, ViaNoDecode as _};
                (&&::csp::__private::ArgsProbe::<#args_ty, #output>::new()).__csp_construct(
                    #full_name,
                    #bytes,
                    |(#(#vars,)*): #args_ty| #fn_name(#(#vars),*),
                )
            }

            // The platforms where linkme collects entries (see
            // `csp_runtime::registry::PROCESS_REGISTRY`).
            #[cfg(any(
                target_os = "none",
                target_os = "linux",
                target_os = "macos",
                target_os = "ios",
                target_os = "tvos",
                target_os = "android",
                target_os = "fuchsia",
                target_os = "illumos",
                target_os = "freebsd",
                target_os = "openbsd",
                target_os = "psp",
                target_os = "uefi",
                target_os = "windows",
            ))]
            #[::csp::__private::linkme::distributed_slice(::csp::__private::PROCESS_REGISTRY)]
            #[linkme(crate = ::csp::__private::linkme)]
            #[allow(non_upper_case_globals)]
            static #static_name: ::csp::__private::ProcessEntry = ::csp::__private::ProcessEntry {
                name: #full_name,
                construct: #construct,
            };
        };
    }
}
