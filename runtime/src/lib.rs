//! # csp-runtime: the contract of the csp runtime
//!
//! This crate holds what every backend shares: the user-facing types
//! ([`Channel`], [`Reader`], [`Writer`], [`Alt`], [`Process`], [`Error`]), the
//! [`Runtime`] trait that a backend implements, and the conformance suite that
//! every backend must pass. Programs use it through the facade crate `csp`,
//! which picks a backend by cargo feature; code generic over `R: Runtime`
//! runs on any backend.
//!
//! The types take the backend as a type parameter (`Channel<T, R>`); the
//! facade's aliases (`csp::Channel<T>`) fill it in.
#![warn(missing_docs)]
#![doc(test(attr(deny(warnings))))]

// `#[process]` and `alt!` expand to paths under `::csp`; inside this crate
// (the conformance suite) that name means this crate.
#[allow(
    unused_extern_crates,
    reason = "used by the paths that #[process] and alt! generate"
)]
extern crate self as csp;

mod alt;
mod backend;
mod channel;
mod config;
mod ends;
mod error;
mod message;
mod process;
pub mod registry;

pub mod conformance;

pub use alt::{Alt, Fair};
pub use backend::{ChanOps, ChannelSpec, Direction, Runtime};
pub use channel::{Channel, Reader, Writer};
pub use config::{Clock, Config, Schedule};
pub use csp_macros::{alt, process};
pub use ends::{EndSet, Ends};
pub use error::{BlockedProcess, DeadlockReport, Error, Result};
pub use message::Message;
pub use process::{Process, ProcessTuple, panic_message, par_outcome};

/// Runs the processes one after another, each to its end, on backend `R`.
/// Returns their results as `par` does.
///
/// # Errors
/// As [`Runtime::par`]; a failure stops the sequence.
pub fn seq<R: Runtime, O: Send + 'static>(
    procs: impl IntoIterator<Item = Process<O>>,
) -> Result<Vec<Option<O>>> {
    let mut out = Vec::new();
    for p in procs {
        let mut one = R::par(vec![p])?;
        out.push(one.pop().flatten());
    }
    Ok(out)
}

/// Runs a tuple of processes with different result types concurrently on
/// backend `R`; `par!` in the facade calls this.
///
/// # Errors
/// As [`Runtime::par`].
pub fn par_tuple<R: Runtime, P: ProcessTuple>(procs: P) -> Result<P::Output> {
    let values = R::par(procs.into_erased())?;
    Ok(P::from_erased(values))
}

/// Items used by the code that `#[process]` and `alt!` generate. Not public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::ends::{Probe, ViaEnds, ViaNothing};
    pub use crate::registry::{ArgsProbe, PROCESS_REGISTRY, ProcessEntry, ViaDecode, ViaNoDecode};
    pub use linkme;
}
