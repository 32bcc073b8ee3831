//! # csp-macros: `#[process]` and `alt!` for the csp runtime
//!
//! Use them through the facade crate, as `csp::process` and `csp::alt` (or
//! `csp_runtime::process` / `csp_runtime::alt`). The code they generate names
//! everything by absolute paths under `::csp`, so a crate that uses them needs
//! the facade `csp` as a dependency (or, for crates built on the runtime
//! alone, `extern crate csp_runtime as csp;` at the crate root).
#![warn(missing_docs)]

use proc_macro::TokenStream;

mod alt;
mod process;

/// Turns a function into a process constructor.
///
/// ```ignore
/// use csp::{process, Reader, Result, Writer};
///
/// /// Doubles every number it reads.
/// #[process]
/// pub fn doubler(input: Reader<u64>, output: Writer<u64>) -> Result<()> {
///     loop {
///         let n = input.read()?;
///         output.write(2 * n)?;
///     }
/// }
///
/// let c = csp::Channel::<u64>::new();
/// let d = csp::Channel::<u64>::new();
/// let p = doubler(c.reader(), d.writer()); // nothing runs yet
/// ```
///
/// A `#[process]` fn is written as the process's body and returns
/// `csp::Result<X>`. The attribute turns it into a fn with the same name,
/// visibility, doc comments, generics and parameters that returns a
/// `csp::Process<X>` and runs nothing: the body runs when the process is given
/// to `par`, `seq` or `spawn`, and its `Ok` value becomes the process's value.
/// Inside the body, `return` and `?` leave the process, as they would leave
/// the fn.
///
/// ## Shutdown propagation
///
/// The constructor collects every channel end among the arguments — a
/// `Reader` or `Writer`, and ends inside `Vec`, `VecDeque`, `Option`, `Box`,
/// arrays, slices and tuples, or inside your own types that implement
/// `csp::Ends`. When the body ends with `Err(Poisoned)`, or any error, or
/// panics, all of them are poisoned; when it ends with `Err(Retired)`, all of
/// them are retired (an end the body already retired is not retired twice).
/// So a network shuts down as a whole after a single `poison()`: the reader
/// that sees `Poisoned` returns it with `?`, and its process poisons its
/// other channels. Arguments whose types do not implement `Ends` are skipped.
/// A panic becomes `Error::Panicked { process: "<fn name>", .. }`.
///
/// ## Running in another OS process
///
/// A non-generic `#[process]` fn is also registered by name
/// (`module_path!()::fn_name`, see `csp::registry`), so a backend can make the
/// same process in another OS process of the same program from its encoded
/// arguments. That needs the tuple of its arguments to be deserializable and
/// its value serializable (in practice: all of them `Message`s); otherwise the
/// process is still registered, and making it remotely fails with a clear
/// `Error::Config`. Generic fns are not registered.
///
/// ## Rules
///
/// - The return type is written `Result<X>`, `csp::Result<X>` or any path
///   ending in `Result` with one type argument, and means `csp::Result<X>`.
/// - Parameters may use patterns (`(a, b): (u8, u8)`, `mut n: u64`).
/// - Arguments, and the value, must be `Send + 'static`, since the process may
///   run on another thread.
/// - Not allowed: `async fn`, `const fn`, `unsafe fn`, `self` parameters and
///   `impl Trait` in arguments or in the value (use a type parameter).
///
/// ```ignore
/// #[process]
/// fn wrong(input: csp::Reader<u64>) -> u64 { 0 }
/// // error: a #[process] fn returns csp::Result<T>
/// ```
///
/// These rules are checked by compile-fail doc tests in
/// `csp_runtime::registry` (they need the runtime, which this crate cannot
/// depend on).
#[proc_macro_attribute]
pub fn process(attr: TokenStream, item: TokenStream) -> TokenStream {
    process::expand(attr.into(), item.into()).into()
}

/// External choice: waits until one of several guards is ready, commits
/// exactly that one, and runs its arm.
///
/// ```ignore
/// use std::time::Duration;
/// use csp::{alt, Fair};
///
/// let mut fair = Fair::new();
/// loop {
///     let done = alt! {
///         fair(&mut fair),                                  // optional: fair select
///         read(commands) -> cmd => handle(cmd)?,            // input guard
///         read(data) -> x if accepting => { total += x; false }
///         read_each(workers) -> (i, result) => { results[i] = Some(result); false }
///         write(out, total) if total > limit => true,      // output guard
///         timeout(Duration::from_millis(50)) => continue,   // timeout guard
///     }?;
///     if done { break; }
/// }
/// ```
///
/// The arms are written like `match` arms (a comma is optional after a block
/// body). The guards:
///
/// | guard | ready when | the arm gets |
/// | --- | --- | --- |
/// | `read(reader) -> pat` | a writer offers a message | the message, bound to `pat` |
/// | `read_each(readers) -> (i, pat)` | any reader of a slice or `Vec` can read | its index and the message |
/// | `write(writer, value)` | a reader takes `value` (or a buffer has room) | nothing |
/// | `skip` | always | nothing |
/// | `timeout(duration)` | `duration` after the select began to wait | nothing |
///
/// Any guard may have a precondition, `if cond`, written before `=>`: when
/// `cond` is false the guard is left out of this select (its channel
/// expressions and value are not evaluated).
///
/// Without `fair(..)` the select has priority order: the first guard, in the
/// order written, that is ready wins; so `skip` last means "if nothing else is
/// ready". With `fair(&mut state)` first (a `csp::Fair` kept across
/// iterations), channel guards are tried least-chosen first, so none of them
/// starves; `skip` and `timeout` still come last.
///
/// `alt!` evaluates to `csp::Result<B>`, where `B` is the type of the arm
/// bodies. It fails with `Poisoned` or `Retired` when a guard's channel is
/// poisoned or retired before any guard commits. The channel expressions and
/// values are evaluated once, in the order written, before the select; the
/// readers and writers are borrowed, not moved. The chosen arm's body runs
/// after the select, in the caller's scope: `return`, `break`, `continue` and
/// `?` inside a body act on the enclosing fn or loop, exactly as in a `match`.
///
/// Exactly one guard commits: a message offered by a `write` guard that was
/// not chosen is dropped with the alternation, never half-sent.
///
/// An `alt!` needs at least one `read`, `read_each` or `write` guard, since
/// the backend is inferred from the channel ends. An unknown guard kind is an
/// error pointing at it.
#[proc_macro]
pub fn alt(input: TokenStream) -> TokenStream {
    alt::expand(input.into()).into()
}
