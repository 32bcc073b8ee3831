//! # csp: Communicating Sequential Processes for Rust
//!
//! Write a program once as processes that share nothing and talk only over
//! channels; run it as millions of green threads on one core (`greenlets`) or,
//! with the `parallel` backend, on OS threads, OS processes and cluster nodes.
//!
//! ```
//! use csp::{Channel, Reader, Writer, par, process};
//!
//! #[process]
//! fn producer(out: Writer<u64>, n: u64) -> csp::Result<()> {
//!     for i in 0..n {
//!         out.write(i)?;
//!     }
//!     out.retire();
//!     Ok(())
//! }
//!
//! #[process]
//! fn consumer(input: Reader<u64>) -> csp::Result<u64> {
//!     let mut sum = 0;
//!     loop {
//!         match input.read() {
//!             Ok(v) => sum += v,
//!             Err(csp::Error::Retired) => return Ok(sum),
//!             Err(e) => return Err(e),
//!         }
//!     }
//! }
//!
//! let c = Channel::new();
//! let (_, sum) = csp::par!(producer(c.writer(), 10), consumer(c.reader())).unwrap();
//! assert_eq!(sum, Some(45));
//! ```
//!
//! ## Backends
//!
//! | feature | backend | processes are |
//! | --- | --- | --- |
//! | `parallel` (default) | [`parallel::Parallel`] | OS threads (later OS processes and cluster nodes) |
//! | `greenlets` | [`greenlets::Greenlets`] | coroutines on one OS thread, our own scheduler |
//!
//! The names at the top level (`csp::Channel`, `csp::par`, ...) use the
//! backend [`Backend`]:
//!
//! - only `parallel` on (the default): [`parallel::Parallel`];
//! - only `greenlets` on (`--no-default-features --features greenlets`):
//!   [`greenlets::Greenlets`];
//! - **both on: `greenlets`.** `parallel` is on by default, so turning
//!   `greenlets` on is how a build asks for it (`cargo test --features
//!   greenlets` runs a program on greenlets). Both backends stay reachable by
//!   path: `csp::greenlets::Channel`, `csp::parallel::par`, ...
//!   (`docs/decisions/0007-both-backends.md`).
//!
//! Each backend's module has the same names as the top level. Code generic over
//! [`Runtime`] (`fn ring<R: csp::Runtime>()`) uses `csp::runtime::Channel<T, R>`
//! and `R::par(..)` and runs on any backend.
#![warn(missing_docs)]

#[cfg(not(any(feature = "greenlets", feature = "parallel")))]
compile_error!("enable a backend: the cargo feature `parallel` (the default) or `greenlets`");

pub use csp_runtime::{
    BlockedProcess, ChannelSpec, Clock, Config, DeadlockReport, Direction, EndSet, Ends, Error,
    Fair, Message, Process, Result, Runtime, Schedule, alt, process,
};

/// The backend-generic types, for code written as `fn f<R: csp::Runtime>()`.
pub mod runtime {
    pub use csp_runtime::{Alt, Channel, Reader, Writer, par_tuple, seq};
}

/// Defines, in the module where it is used, the user-facing names for one
/// backend: the aliases `Channel`, `Reader`, `Writer`, `Alt` and the
/// functions `par`, `seq`, `spawn`, `sleep`, `now`, `io`, `run`,
/// `current_process`.
macro_rules! backend_names {
    ($backend:ty) => {
        use std::time::Duration;

        use $crate::{Config, Process, Result, Runtime};

        /// This module's backend.
        pub type Backend = $backend;

        /// A channel of this backend. See [`csp_runtime::Channel`].
        pub type Channel<T> = csp_runtime::Channel<T, Backend>;
        /// The reading end of a channel of this backend.
        pub type Reader<T> = csp_runtime::Reader<T, Backend>;
        /// The writing end of a channel of this backend.
        pub type Writer<T> = csp_runtime::Writer<T, Backend>;
        /// An alternation on this backend. See [`csp_runtime::Alt`].
        pub type Alt<'a, U> = csp_runtime::Alt<'a, U, Backend>;

        /// Runs the processes concurrently and waits for all of them. See
        /// [`Runtime::par`].
        ///
        /// # Errors
        /// The first failure in argument order; `Deadlock` on greenlets when
        /// the network could not move and nothing else failed.
        pub fn par<O: Send + 'static>(
            procs: impl IntoIterator<Item = Process<O>>,
        ) -> Result<Vec<Option<O>>> {
            Backend::par(procs.into_iter().collect())
        }

        /// Runs the processes one after another. See [`csp_runtime::seq`].
        ///
        /// # Errors
        /// As [`par()`].
        pub fn seq<O: Send + 'static>(
            procs: impl IntoIterator<Item = Process<O>>,
        ) -> Result<Vec<Option<O>>> {
            csp_runtime::seq::<Backend, O>(procs)
        }

        /// Starts a process in the background; the process that spawned it
        /// waits for it when its own body ends.
        ///
        /// # Errors
        /// The process could not be started (no memory for its stack, no
        /// thread).
        pub fn spawn<O: Send + 'static>(proc: Process<O>) -> Result<()> {
            Backend::spawn(proc)
        }

        /// Suspends the calling process for `d` on the run's clock.
        ///
        /// # Errors
        /// Reserved for backends whose sleep can be interrupted.
        pub fn sleep(d: Duration) -> Result<()> {
            Backend::sleep(d)
        }

        /// Time since the run started, on its clock (real or simulated).
        pub fn now() -> Duration {
            Backend::now()
        }

        /// Runs a blocking call (a file, a socket, heavy compute) without
        /// stopping the other processes. A panic in `f` comes back as
        /// `Error::Panicked`.
        ///
        /// # Errors
        /// `Panicked` if `f` panicked; `Io` if no helper thread could be
        /// started.
        pub fn io<F, T>(f: F) -> Result<T>
        where
            F: FnOnce() -> T + Send + 'static,
            T: Send + 'static,
        {
            Backend::io(f)
        }

        /// Runs `f` as the main process of a run set up by `config`
        /// (schedule, clock, stack size), then waits for every process still
        /// alive.
        ///
        /// # Errors
        /// `Config` when a run is already active on this thread, or the
        /// configuration asks for what this backend cannot do.
        pub fn run<O>(config: Config, f: impl FnOnce() -> O) -> Result<O> {
            Backend::run(config, f)
        }

        /// The name of the calling process (`"main"` outside any process).
        pub fn current_process() -> String {
            Backend::current_process()
        }
    };
}

/// The greenlets backend: coroutines on one OS thread, with the same names as
/// the top level.
///
/// ```
/// use csp::{Clock, Config, Schedule};
/// let slept = csp::greenlets::run(
///     Config::new().clock(Clock::Simulated).schedule(Schedule::seeded(1)),
///     || {
///         csp::greenlets::sleep(std::time::Duration::from_secs(3600)).unwrap();
///         csp::greenlets::now()
///     },
/// )
/// .unwrap();
/// assert!(slept >= std::time::Duration::from_secs(3600));
/// ```
#[cfg(feature = "greenlets")]
pub mod greenlets {
    pub use csp_greenlets::{Greenlets, current_config};
    backend_names!(Greenlets);
}

/// The parallel backend: every process an OS thread, with the same names as
/// the top level.
///
/// ```
/// use csp::parallel::{Channel, par};
/// use csp::Process;
///
/// let c = Channel::<u32>::new();
/// let (r, w) = (c.reader(), c.writer());
/// let out = par([
///     Process::new("writer", move || w.write(7).map(|()| 0)),
///     Process::new("reader", move || r.read()),
/// ])
/// .unwrap();
/// assert_eq!(out, [Some(0), Some(7)]);
/// ```
#[cfg(feature = "parallel")]
pub mod parallel {
    pub use csp_parallel::Parallel;
    backend_names!(Parallel);
}

#[cfg(feature = "greenlets")]
pub use greenlets::{
    Alt, Backend, Channel, Reader, Writer, current_process, io, now, par, run, seq, sleep, spawn,
};

#[cfg(all(feature = "parallel", not(feature = "greenlets")))]
pub use parallel::{
    Alt, Backend, Channel, Reader, Writer, current_process, io, now, par, run, seq, sleep, spawn,
};

/// Runs processes with different result types concurrently; returns a tuple of
/// their results (`None` for a process stopped by poison or retire).
///
/// ```
/// let (a, b) = csp::par!(
///     csp::Process::new("a", || Ok(1u8)),
///     csp::Process::new("b", || Ok("two")),
/// )
/// .unwrap();
/// assert_eq!((a, b), (Some(1), Some("two")));
/// ```
#[macro_export]
macro_rules! par {
    ($($p:expr),+ $(,)?) => {
        $crate::runtime::par_tuple::<$crate::Backend, _>(($($p,)+))
    };
}

#[doc(hidden)]
pub use csp_runtime::__private;

/// The README's examples, compiled and run as doc tests (with both features
/// on: the README shows `csp::greenlets` too).
#[cfg(all(doctest, feature = "greenlets", feature = "parallel"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
