//! `alt!`: an alternation whose arms run in the caller's scope.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Expr, Ident, Pat, Token, parenthesized};

const GUARDS: &str =
    "read(..) -> pat, read_each(..) -> (i, pat), write(.., ..), skip or timeout(..)";

/// The whole input of `alt!`.
struct AltInput {
    fair: Option<Expr>,
    arms: Vec<Arm>,
}

/// One arm: a guard, an optional precondition, a body.
struct Arm {
    guard: Guard,
    cond: Option<Expr>,
    body: Expr,
}

enum Guard {
    Read { reader: Expr, pat: Pat },
    ReadEach { readers: Expr, pat: Pat },
    Write { writer: Expr, value: Expr },
    Skip,
    Timeout { after: Expr },
}

impl Guard {
    fn is_channel(&self) -> bool {
        matches!(
            self,
            Guard::Read { .. } | Guard::ReadEach { .. } | Guard::Write { .. }
        )
    }
}

impl Parse for AltInput {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut fair = None;
        let mut arms = Vec::new();
        let mut first = true;
        while !input.is_empty() {
            let kw = input.call(Ident::parse_any).map_err(|e| {
                syn::Error::new(e.span(), format!("expected an alt! guard: {GUARDS}"))
            })?;
            let kind = kw.to_string();
            if kind == "fair" {
                if !first {
                    return Err(syn::Error::new_spanned(
                        &kw,
                        "`fair(..)` must come first in alt!, before the guards",
                    ));
                }
                let content;
                parenthesized!(content in input);
                fair = Some(one_expr(&content, &kw, "fair(&mut fair_state)")?);
                first = false;
                if !input.is_empty() {
                    input.parse::<Token![,]>()?;
                }
                continue;
            }
            first = false;
            let guard = match kind.as_str() {
                "read" | "read_each" => {
                    let usage = if kind == "read" {
                        "read(reader) -> msg => body"
                    } else {
                        "read_each(readers) -> (i, msg) => body"
                    };
                    let content;
                    parenthesized!(content in input);
                    let expr = one_expr(&content, &kw, usage)?;
                    if !input.peek(Token![->]) {
                        return Err(syn::Error::new(
                            input.span(),
                            format!("an input guard binds what it reads: {usage}"),
                        ));
                    }
                    input.parse::<Token![->]>()?;
                    let pat = Pat::parse_multi_with_leading_vert(input)?;
                    if kind == "read" {
                        Guard::Read { reader: expr, pat }
                    } else {
                        Guard::ReadEach { readers: expr, pat }
                    }
                }
                "write" => {
                    let content;
                    parenthesized!(content in input);
                    let usage = "write(writer, value) => body";
                    let writer: Expr = content.parse()?;
                    if content.is_empty() {
                        return Err(syn::Error::new_spanned(
                            &kw,
                            format!("an output guard needs a writer and a value: {usage}"),
                        ));
                    }
                    content.parse::<Token![,]>()?;
                    let value: Expr = content.parse()?;
                    if !content.is_empty() {
                        content.parse::<Token![,]>()?;
                    }
                    if !content.is_empty() {
                        return Err(content.error(format!("unexpected tokens; expected {usage}")));
                    }
                    Guard::Write { writer, value }
                }
                "skip" => {
                    if input.peek(syn::token::Paren) {
                        return Err(syn::Error::new(
                            input.span(),
                            "skip takes no arguments: skip => body",
                        ));
                    }
                    Guard::Skip
                }
                "timeout" => {
                    let content;
                    parenthesized!(content in input);
                    let after = one_expr(&content, &kw, "timeout(duration) => body")?;
                    Guard::Timeout { after }
                }
                _ => {
                    return Err(syn::Error::new_spanned(
                        &kw,
                        format!("unknown alt! guard `{kw}`: expected {GUARDS}"),
                    ));
                }
            };
            let cond = if input.peek(Token![if]) {
                input.parse::<Token![if]>()?;
                Some(input.parse::<Expr>()?)
            } else {
                None
            };
            input.parse::<Token![=>]>()?;
            let body = Expr::parse_with_earlier_boundary_rule(input)?;
            if !input.is_empty() {
                if is_block_like(&body) {
                    input.parse::<Option<Token![,]>>()?;
                } else {
                    input.parse::<Token![,]>()?;
                }
            }
            arms.push(Arm { guard, cond, body });
        }
        Ok(AltInput { fair, arms })
    }
}

/// Exactly one expression (a trailing comma allowed) inside a guard's parentheses.
fn one_expr(content: ParseStream<'_>, kw: &Ident, usage: &str) -> syn::Result<Expr> {
    if content.is_empty() {
        return Err(syn::Error::new_spanned(
            kw,
            format!("`{kw}` needs an argument: {usage}"),
        ));
    }
    let e: Expr = content.parse()?;
    if !content.is_empty() {
        content.parse::<Token![,]>()?;
    }
    if !content.is_empty() {
        return Err(content.error(format!("unexpected tokens; expected {usage}")));
    }
    Ok(e)
}

/// Whether an arm body ends without needing a comma, as in `match`.
fn is_block_like(e: &Expr) -> bool {
    match e {
        Expr::Block(_)
        | Expr::If(_)
        | Expr::Match(_)
        | Expr::While(_)
        | Expr::Loop(_)
        | Expr::ForLoop(_)
        | Expr::TryBlock(_)
        | Expr::Unsafe(_)
        | Expr::Const(_) => true,
        Expr::Group(g) => is_block_like(&g.expr),
        _ => false,
    }
}

pub(crate) fn expand(input: TokenStream) -> TokenStream {
    let parsed: AltInput = match syn::parse2(input) {
        Ok(p) => p,
        Err(e) => return e.to_compile_error(),
    };
    if !parsed.arms.iter().any(|a| a.guard.is_channel()) {
        return syn::Error::new(
            Span::call_site(),
            "alt! needs at least one read or write guard \
             (the backend is inferred from the channel ends; \
             for skip or timeout alone, use the Alt builder with explicit types)",
        )
        .to_compile_error();
    }
    generate(&parsed)
}

fn generate(input: &AltInput) -> TokenStream {
    let site = Span::mixed_site();
    let enum_name = Ident::new("__CspAltArm", site);
    let alt = Ident::new("__csp_alt", site);

    let mut type_params = Vec::new();
    let mut variants = Vec::new();
    let mut evals = Vec::new();
    let mut builds = Vec::new();
    let mut match_arms = Vec::new();

    for (i, arm) in input.arms.iter().enumerate() {
        let variant = format_ident!("__Arm{}", i, span = site);
        let cond_var = format_ident!("__csp_c{}", i, span = site);
        let g = format_ident!("__csp_g{}", i, span = site);
        let v = format_ident!("__csp_v{}", i, span = site);
        let r = Ident::new("__csp_r", site);
        let x = Ident::new("__csp_x", site);
        let idx = Ident::new("__csp_i", site);
        let msg = Ident::new("__csp_msg", site);
        let ctor = quote!(#enum_name::#variant);

        if let Some(cond) = &arm.cond {
            evals.push(quote_spanned!(cond.span()=> let #cond_var: bool = #cond;));
        }
        let body = &arm.body;

        match &arm.guard {
            Guard::Read { reader, pat }
            | Guard::ReadEach {
                readers: reader,
                pat,
            } => {
                let m = format_ident!("__M{}", i, span = site);
                type_params.push(m.clone());
                let is_each = matches!(arm.guard, Guard::ReadEach { .. });
                if is_each {
                    variants.push(quote!(#variant((usize, #m))));
                } else {
                    variants.push(quote!(#variant(#m)));
                }
                let method = if is_each {
                    quote!(read_each)
                } else {
                    quote!(read)
                };
                let action = if is_each {
                    quote!(|#idx, #x| #ctor((#idx, #x)))
                } else {
                    quote!(#ctor)
                };
                if arm.cond.is_some() {
                    evals.push(quote! {
                        let #g: &[&_] = if #cond_var { &[&(#reader)] } else { &[] };
                    });
                    builds.push(quote! {
                        if let [#r] = #g {
                            #alt = #alt.#method(*#r, #action);
                        }
                    });
                } else {
                    evals.push(quote!(let #g = &(#reader);));
                    builds.push(quote!(#alt = #alt.#method(#g, #action);));
                }
                // Bound by `let`, so that a refutable pattern is an error
                // about the pattern, not about the generated enum.
                match_arms.push(quote!(#ctor(#msg) => { let #pat = #msg; #body }));
            }
            Guard::Write { writer, value } => {
                variants.push(quote!(#variant));
                if arm.cond.is_some() {
                    evals.push(quote! {
                        let #g: &[&_] = if #cond_var { &[&(#writer)] } else { &[] };
                        let #v = if #cond_var {
                            ::core::option::Option::Some(#value)
                        } else {
                            ::core::option::Option::None
                        };
                    });
                    builds.push(quote! {
                        if let ([#r], ::core::option::Option::Some(#x)) = (#g, #v) {
                            #alt = #alt.write(*#r, #x, || #ctor);
                        }
                    });
                } else {
                    evals.push(quote! {
                        let #g = &(#writer);
                        let #v = #value;
                    });
                    builds.push(quote!(#alt = #alt.write(#g, #v, || #ctor);));
                }
                match_arms.push(quote!(#ctor => #body,));
            }
            Guard::Skip => {
                variants.push(quote!(#variant));
                if arm.cond.is_some() {
                    builds.push(quote! {
                        if #cond_var {
                            #alt = #alt.skip(|| #ctor);
                        }
                    });
                } else {
                    builds.push(quote!(#alt = #alt.skip(|| #ctor);));
                }
                match_arms.push(quote!(#ctor => #body,));
            }
            Guard::Timeout { after } => {
                variants.push(quote!(#variant));
                if arm.cond.is_some() {
                    evals.push(quote! {
                        let #v: ::core::option::Option<::core::time::Duration> = if #cond_var {
                            ::core::option::Option::Some(#after)
                        } else {
                            ::core::option::Option::None
                        };
                    });
                    builds.push(quote! {
                        if let ::core::option::Option::Some(#x) = #v {
                            #alt = #alt.timeout(#x, || #ctor);
                        }
                    });
                } else {
                    evals.push(quote!(let #v: ::core::time::Duration = #after;));
                    builds.push(quote!(#alt = #alt.timeout(#v, || #ctor);));
                }
                match_arms.push(quote!(#ctor => #body,));
            }
        }
    }

    let fair_var = Ident::new("__csp_fair", site);
    let fair_eval = input
        .fair
        .as_ref()
        .map(|f| quote_spanned!(f.span()=> let #fair_var: &mut ::csp::Fair = #f;));
    let select = if input.fair.is_some() {
        quote!(#alt.select_fair(#fair_var))
    } else {
        quote!(#alt.select())
    };
    let chosen = Ident::new("__csp_chosen", site);
    let err = Ident::new("__csp_err", site);
    let value = Ident::new("__csp_value", site);
    let ok = Ident::new("__csp_ok", site);
    let generics = if type_params.is_empty() {
        TokenStream::new()
    } else {
        quote!(<#(#type_params),*>)
    };

    quote! {
        {
            #[allow(non_camel_case_types, clippy::large_enum_variant)]
            enum #enum_name #generics {
                #(#variants,)*
            }
            #fair_eval
            #(#evals)*
            let mut #alt = ::csp::Alt::new();
            #(#builds)*
            match #select {
                ::core::result::Result::Ok(#chosen) => {
                    let #value = match #chosen {
                        #(#match_arms)*
                    };
                    // When every body diverges (`return`, `break`, `continue`)
                    // this is unreachable, and rightly so: silence the lint
                    // here only, not in the bodies.
                    #[allow(unreachable_code)]
                    let #ok = ::core::result::Result::Ok(#value);
                    #ok
                }
                ::core::result::Result::Err(#err) => ::core::result::Result::Err(#err),
            }
        }
    }
}
