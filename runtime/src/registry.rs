//! The process registry: finding a process by name, to run it in another OS
//! process or on another node.
//!
//! On one OS process, a [`Process`] is a closure and runs where it was made.
//! To run it somewhere else (`.os_process()`, `.on_host(..)`, `.cluster(..)` on
//! the `parallel` backend), the other side must be able to make the same
//! process from the same arguments. It runs the same binary, so it has the same
//! code; what it needs is a way to find the constructor by name and a byte
//! form of the arguments. The registry provides both:
//!
//! - every non-generic `#[process]` function adds a [`ProcessEntry`] to
//!   [`PROCESS_REGISTRY`] at link time (no code runs at start-up). Its name is
//!   the function's path, `module_path!()::fn_name` (for example
//!   `my_app::workers::square`), and its `construct` function decodes the
//!   argument tuple from [`postcard`] bytes, builds the process, and encodes
//!   its result back to postcard bytes;
//! - on platforms where link-time collection does not work, and for processes
//!   not made by `#[process]`, [`register`] adds an entry at run time;
//! - [`lookup`] finds an entry by name; [`names`] lists them all.
//!
//! A process whose arguments or result are not serializable [`Message`]s is
//! registered too, but constructing it from bytes fails with a clear
//! [`Error::Config`]: it can only run in the OS process that made it.
//!
//! # The registry hash
//!
//! Two programs that exchange processes by name must agree on what the names
//! mean. [`registry_hash`] is a stable 64-bit FNV-1a hash of the sorted names;
//! the two sides of a link compare it at the handshake and refuse to run a
//! process when it differs, which catches a node running a different build.
//! The hash does not depend on addresses, the order of linking, or the run.
//!
//! ```
//! use csp_runtime::registry;
//!
//! let before = registry::registry_hash();
//! assert_eq!(before, registry::registry_hash());
//! let bytes = registry::encode_args("doc::example", &(3u64, String::from("x")))?;
//! let back: (u64, String) = registry::decode("doc::example", "arguments", &bytes)?;
//! assert_eq!(back, (3, "x".to_owned()));
//! # Ok::<(), csp_runtime::Error>(())
//! ```
//!
//! [`Message`]: crate::Message

use std::fmt;
use std::marker::PhantomData;
use std::sync::{Mutex, PoisonError};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Error, Process, Result};

/// How to make a process from bytes: its registered name and its constructor.
///
/// `construct` takes the postcard encoding of the tuple of the process's
/// arguments, and returns a process whose value is the postcard encoding of
/// the process's result (see [`decode`] for the other side).
#[derive(Clone, Copy)]
pub struct ProcessEntry {
    /// The process's name: `module_path!()::fn_name` for a `#[process]` fn.
    pub name: &'static str,
    /// Makes the process from its encoded arguments.
    pub construct: fn(&[u8]) -> Result<Process<Vec<u8>>>,
}

impl fmt::Debug for ProcessEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessEntry")
            .field("name", &self.name)
            .field("construct", &(self.construct as *const ()))
            .finish()
    }
}

/// The processes registered at link time by `#[process]` (one entry per
/// non-generic `#[process]` fn). Prefer [`lookup`] and [`names`], which also
/// see the entries added by [`register`].
///
/// Link-time collection works on the platforms `linkme` supports (Linux,
/// Android, macOS, iOS, Windows, the BSDs, illumos, Fuchsia, bare metal); on
/// the others this slice is empty, `#[process]` registers nothing, and a
/// program that needs processes by name calls [`register`] at start-up.
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
#[linkme::distributed_slice]
pub static PROCESS_REGISTRY: [ProcessEntry];

/// The processes registered at link time: none on this platform, where
/// `linkme` cannot collect them; use [`register`].
#[cfg(not(any(
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
)))]
pub static PROCESS_REGISTRY: [ProcessEntry; 0] = [];

/// The entries added at run time by [`register`].
static REGISTERED: Mutex<Vec<ProcessEntry>> = Mutex::new(Vec::new());

fn registered() -> std::sync::MutexGuard<'static, Vec<ProcessEntry>> {
    // The vector is only pushed to under the lock: a panic elsewhere cannot
    // leave it half-changed, so a poisoned lock still guards good data.
    REGISTERED.lock().unwrap_or_else(PoisonError::into_inner)
}

fn same_construct(a: &ProcessEntry, b: &ProcessEntry) -> bool {
    std::ptr::fn_addr_eq(a.construct, b.construct)
}

/// Adds an entry at run time, for platforms where link-time registration does
/// not collect entries and for processes not made by `#[process]`.
/// Registering the same entry again does nothing.
///
/// ```
/// use csp_runtime::registry::{self, ProcessEntry};
/// use csp_runtime::{Process, Result};
///
/// fn answer(_args: &[u8]) -> Result<Process<Vec<u8>>> {
///     Ok(Process::new("answer", || registry::encode_result("doc::answer", &42u32)))
/// }
///
/// registry::register(ProcessEntry { name: "doc::answer", construct: answer })?;
/// assert!(registry::lookup("doc::answer").is_some());
/// assert!(registry::names().contains(&"doc::answer"));
/// # Ok::<(), csp_runtime::Error>(())
/// ```
///
/// # Errors
/// `Config` when another constructor is already registered under the same
/// name (at link time or by an earlier call).
pub fn register(entry: ProcessEntry) -> Result<()> {
    let clash = |existing: &ProcessEntry| {
        Error::config(format!(
            "process '{}' is already registered with another constructor; \
             every registered process needs its own name",
            existing.name
        ))
    };
    if let Some(existing) = PROCESS_REGISTRY.iter().find(|e| e.name == entry.name) {
        return if same_construct(existing, &entry) {
            Ok(())
        } else {
            Err(clash(existing))
        };
    }
    let mut list = registered();
    if let Some(existing) = list.iter().find(|e| e.name == entry.name) {
        return if same_construct(existing, &entry) {
            Ok(())
        } else {
            Err(clash(existing))
        };
    }
    list.push(entry);
    Ok(())
}

/// Finds a process by its registered name: first among the `#[process]`
/// entries collected at link time, then among those added by [`register`].
/// If a name occurs twice (which `#[process]` cannot produce), the first
/// entry wins.
pub fn lookup(name: &str) -> Option<ProcessEntry> {
    PROCESS_REGISTRY
        .iter()
        .find(|e| e.name == name)
        .copied()
        .or_else(|| registered().iter().find(|e| e.name == name).copied())
}

/// Every registered name, sorted, each once.
pub fn names() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = PROCESS_REGISTRY.iter().map(|e| e.name).collect();
    all.extend(registered().iter().map(|e| e.name));
    all.sort_unstable();
    all.dedup();
    all
}

/// A stable hash of the registry's contents: 64-bit FNV-1a over the sorted
/// names joined by `'\n'`. Two programs built from the same code have the same
/// hash; they compare it at handshake before running processes for each other.
pub fn registry_hash() -> u64 {
    fnv1a_joined(&names())
}

/// FNV-1a, 64 bits, over `names` joined by `'\n'`.
fn fnv1a_joined(names: &[&str]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    for (i, name) in names.iter().enumerate() {
        let sep: &[u8] = if i == 0 { b"" } else { b"\n" };
        for &b in sep.iter().chain(name.as_bytes()) {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(PRIME);
        }
    }
    hash
}

/// Encodes a process's argument tuple for [`ProcessEntry::construct`].
///
/// # Errors
/// `Config` naming `process` when an argument cannot be serialized (a channel
/// end that cannot leave this OS process, a sequence of unknown length, ...).
pub fn encode_args<A: Serialize + ?Sized>(process: &str, args: &A) -> Result<Vec<u8>> {
    encode(process, "arguments", args)
}

/// Encodes a process's result, as the process made by
/// [`ProcessEntry::construct`] does.
///
/// # Errors
/// `Config` naming `process` when the value cannot be serialized.
pub fn encode_result<X: Serialize + ?Sized>(process: &str, value: &X) -> Result<Vec<u8>> {
    encode(process, "result", value)
}

fn encode<X: Serialize + ?Sized>(process: &str, what: &str, value: &X) -> Result<Vec<u8>> {
    postcard::to_allocvec(value).map_err(|e| {
        Error::config(format!(
            "cannot encode the {what} of process '{process}': {e}"
        ))
    })
}

/// Decodes the `what` (`"arguments"`, `"result"`) of `process` from postcard
/// bytes. Bad bytes (truncated, garbage, or with bytes left over) are an
/// error, never a panic.
///
/// # Errors
/// `Config` saying what could not be decoded, for which process, and why.
pub fn decode<T: DeserializeOwned>(process: &str, what: &str, bytes: &[u8]) -> Result<T> {
    match postcard::take_from_bytes::<T>(bytes) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(Error::config(format!(
            "cannot decode the {what} of process '{process}': {} bytes left over after the value",
            rest.len()
        ))),
        Err(e) => Err(Error::config(format!(
            "cannot decode the {what} of process '{process}': {e}"
        ))),
    }
}

/// Autoref specialization used by `#[process]`: the registered constructor of
/// a process with argument tuple `A` and result `X` decodes and encodes when
/// `A: DeserializeOwned` and `X: Serialize` ([`ViaDecode`]), and otherwise
/// fails with a clear error ([`ViaNoDecode`]). Not public API.
#[doc(hidden)]
pub struct ArgsProbe<A, X>(PhantomData<fn() -> (A, X)>);

impl<A, X> ArgsProbe<A, X> {
    /// A probe for argument tuple `A` and result `X`.
    #[inline]
    pub const fn new() -> Self {
        ArgsProbe(PhantomData)
    }
}

impl<A, X> Default for ArgsProbe<A, X> {
    fn default() -> Self {
        Self::new()
    }
}

impl<A, X> fmt::Debug for ArgsProbe<A, X> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ArgsProbe")
    }
}

/// Picked when the arguments decode and the result encodes.
#[doc(hidden)]
pub trait ViaDecode<A, X> {
    /// Decodes the arguments, makes the process, encodes its result.
    fn __csp_construct(
        &self,
        name: &'static str,
        bytes: &[u8],
        make: fn(A) -> Process<X>,
    ) -> Result<Process<Vec<u8>>>;
}

impl<A: DeserializeOwned, X: Serialize + Send + 'static> ViaDecode<A, X> for &ArgsProbe<A, X> {
    fn __csp_construct(
        &self,
        name: &'static str,
        bytes: &[u8],
        make: fn(A) -> Process<X>,
    ) -> Result<Process<Vec<u8>>> {
        let args: A = decode(name, "arguments", bytes)?;
        let (pname, run) = make(args).into_parts();
        // `run` already catches a panic and poisons or retires the ends of the
        // arguments; the outer process only encodes the value.
        Ok(Process::new(pname, move || {
            let value = run()?;
            encode_result(name, &value)
        }))
    }
}

/// Picked otherwise: the process cannot be made from bytes.
#[doc(hidden)]
pub trait ViaNoDecode<A, X> {
    /// Fails: the arguments or the result are not serializable.
    fn __csp_construct(
        &self,
        name: &'static str,
        bytes: &[u8],
        make: fn(A) -> Process<X>,
    ) -> Result<Process<Vec<u8>>>;
}

impl<A, X> ViaNoDecode<A, X> for ArgsProbe<A, X> {
    fn __csp_construct(
        &self,
        name: &'static str,
        _bytes: &[u8],
        _make: fn(A) -> Process<X>,
    ) -> Result<Process<Vec<u8>>> {
        Err(Error::config(format!(
            "process {name} cannot run in another OS process: \
             its arguments or result are not serializable Messages"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nothing(_: &[u8]) -> Result<Process<Vec<u8>>> {
        Ok(Process::new("nothing", || Ok(Vec::new())))
    }

    fn other(_: &[u8]) -> Result<Process<Vec<u8>>> {
        Err(Error::config("other"))
    }

    #[test]
    fn the_hash_is_fnv1a_64_of_the_joined_names() {
        // Reference values of FNV-1a 64.
        assert_eq!(fnv1a_joined(&[]), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a_joined(&["a"]), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a_joined(&["foobar"]), 0x8594_4171_f739_67e8);
        assert_eq!(fnv1a_joined(&["a", "b"]), fnv1a_joined(&["a\nb"]));
        assert_ne!(fnv1a_joined(&["a", "b"]), fnv1a_joined(&["ab"]));
    }

    #[test]
    fn register_twice_same_is_ok_other_is_error() {
        let e = ProcessEntry {
            name: "registry::tests::nothing",
            construct: nothing,
        };
        register(e).unwrap();
        register(e).unwrap();
        let clash = register(ProcessEntry {
            name: "registry::tests::nothing",
            construct: other,
        })
        .unwrap_err();
        assert!(matches!(&clash, Error::Config(m) if m.contains("registry::tests::nothing")));
        assert!(lookup("registry::tests::nothing").is_some());
        let n = names();
        assert!(n.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn decode_rejects_garbage_and_leftovers() {
        let bytes = encode_args("p", &(1u8, 2u8)).unwrap();
        let ok: (u8, u8) = decode("p", "arguments", &bytes).unwrap();
        assert_eq!(ok, (1, 2));
        let left = decode::<u8>("p", "arguments", &bytes).unwrap_err();
        assert!(matches!(&left, Error::Config(m) if m.contains("left over") && m.contains("'p'")));
        let bad = decode::<String>("p", "arguments", &[0xff, 0xff, 0xff]).unwrap_err();
        assert!(matches!(&bad, Error::Config(m) if m.contains("arguments")));
    }
}

/// Compile-time checks of `#[process]` and `alt!`, run as doc tests (the macro
/// crate cannot depend on the runtime, so they live here). Each
/// `compile_fail` case below differs from the first, compiling, example by
/// one mistake, and fails with the message quoted above it.
///
/// What compiles: a process and an alternation generic over the backend.
///
/// ```
/// #![allow(dead_code)]
/// extern crate csp_runtime as csp;
/// use csp::{Reader, Result, Runtime};
/// use csp::{alt, process};
///
/// #[process]
/// fn first<R: Runtime>(a: Reader<u64, R>) -> Result<u64> {
///     a.read()
/// }
///
/// fn either<R: Runtime>(a: &Reader<u64, R>, b: &Reader<u64, R>) -> Result<u64> {
///     alt! { read(a) -> x => x, read(b) -> y => y, skip => 0 }
/// }
///
/// fn main() {}
/// ```
///
/// "a #[process] fn returns csp::Result<T>":
///
/// ```compile_fail
/// extern crate csp_runtime as csp;
/// use csp::{Reader, Runtime};
/// #[csp::process]
/// fn first<R: Runtime>(a: Reader<u64, R>) -> u64 {
///     a.read().unwrap_or(0)
/// }
/// fn main() {}
/// ```
///
/// "a #[process] fn returns csp::Result<T>: one type argument, ...":
///
/// ```compile_fail
/// extern crate csp_runtime as csp;
/// use csp::{Reader, Runtime};
/// #[csp::process]
/// fn first<R: Runtime>(a: Reader<u64, R>) -> Result<u64, csp::Error> {
///     a.read()
/// }
/// fn main() {}
/// ```
///
/// "a #[process] fn returns csp::Result<T>; this fn returns nothing":
///
/// ```compile_fail
/// extern crate csp_runtime as csp;
/// use csp::{Reader, Runtime};
/// #[csp::process]
/// fn first<R: Runtime>(a: Reader<u64, R>) {
///     let _ = a.read();
/// }
/// fn main() {}
/// ```
///
/// "a #[process] fn cannot be async: ...":
///
/// ```compile_fail
/// extern crate csp_runtime as csp;
/// use csp::{Reader, Result, Runtime};
/// #[csp::process]
/// async fn first<R: Runtime>(a: Reader<u64, R>) -> Result<u64> {
///     a.read()
/// }
/// fn main() {}
/// ```
///
/// "a #[process] fn cannot be const: ...":
///
/// ```compile_fail
/// extern crate csp_runtime as csp;
/// use csp::Result;
/// #[csp::process]
/// const fn answer() -> Result<u64> {
///     Ok(42)
/// }
/// fn main() {}
/// ```
///
/// "a #[process] fn cannot take `self`: ...":
///
/// ```compile_fail
/// extern crate csp_runtime as csp;
/// use csp::Result;
/// struct Worker;
/// impl Worker {
///     #[csp::process]
///     fn answer(self) -> Result<u64> {
///         Ok(42)
///     }
/// }
/// fn main() {}
/// ```
///
/// "a #[process] fn cannot take `impl Trait` arguments: ...":
///
/// ```compile_fail
/// extern crate csp_runtime as csp;
/// use csp::Result;
/// #[csp::process]
/// fn answer(n: Vec<impl Into<u64> + Send + 'static>) -> Result<u64> {
///     Ok(n.into_iter().map(Into::into).sum())
/// }
/// fn main() {}
/// ```
///
/// "alt! needs at least one read or write guard ...":
///
/// ```compile_fail
/// extern crate csp_runtime as csp;
/// use csp::Result;
/// fn nothing() -> Result<u64> {
///     csp::alt! { skip => 0, timeout(std::time::Duration::ZERO) => 1 }
/// }
/// fn main() {}
/// ```
///
/// "unknown alt! guard `recv`: expected read(..) -> pat, ...":
///
/// ```compile_fail
/// extern crate csp_runtime as csp;
/// use csp::{Reader, Result, Runtime};
/// fn either<R: Runtime>(a: &Reader<u64, R>) -> Result<u64> {
///     csp::alt! { recv(a) -> x => x, skip => 0 }
/// }
/// fn main() {}
/// ```
///
/// "an input guard binds what it reads: read(reader) -> msg => body":
///
/// ```compile_fail
/// extern crate csp_runtime as csp;
/// use csp::{Reader, Result, Runtime};
/// fn either<R: Runtime>(a: &Reader<u64, R>) -> Result<u64> {
///     csp::alt! { read(a) => 1, skip => 0 }
/// }
/// fn main() {}
/// ```
///
/// "`fair(..)` must come first in alt!, before the guards":
///
/// ```compile_fail
/// extern crate csp_runtime as csp;
/// use csp::{Fair, Reader, Result, Runtime};
/// fn either<R: Runtime>(a: &Reader<u64, R>, fair: &mut Fair) -> Result<u64> {
///     csp::alt! { read(a) -> x => x, fair(fair), skip => 0 }
/// }
/// fn main() {}
/// ```
///
/// A refutable pattern in an input guard ("refutable pattern in local binding"):
///
/// ```compile_fail,E0005
/// extern crate csp_runtime as csp;
/// use csp::{Reader, Result, Runtime};
/// fn either<R: Runtime>(a: &Reader<Option<u64>, R>) -> Result<u64> {
///     csp::alt! { read(a) -> Some(x) => x, skip => 0 }
/// }
/// fn main() {}
/// ```
#[cfg(doctest)]
pub struct MacroCompileChecks;
