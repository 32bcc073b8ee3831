//! # csp-parallel: the parallel backend of csp
//!
//! Every process is an OS thread, and channels are shared between threads:
//!
//! - `par` starts one thread per process, named after the process, and
//!   returns their results in argument order; a panic becomes
//!   `Error::Panicked` naming the process, and (through the process's
//!   arguments) poisons the network around it;
//! - `spawn` starts a background thread; the process that spawned it waits for
//!   it when its own body ends, and the main thread's spawned processes are
//!   waited for at the end of [`Runtime::run`];
//! - a channel is a `csp_netproto` channel home behind one mutex: the channel
//!   rules (FIFO matching, buffer, reader and writer counts, poison, retire)
//!   are written once, there, for this backend's threads and, later, for
//!   other nodes;
//! - a blocked thread spins for a few microseconds, then parks; the party
//!   that completes its offer wakes it. An alternation commits through one
//!   compare-and-swap on the waiting thread's state word (crossbeam-channel's
//!   `Context` design), so exactly one guard commits;
//! - `sleep`, `now` and timeouts follow the wall clock; `io(f)` simply runs
//!   `f` (the caller is an OS thread of its own).
//!
//! Programs use it through the facade crate `csp` with the `parallel`
//! feature; [`Parallel`] is the `csp_runtime::Runtime` to name in generic
//! code.
//!
//! # Example
//!
//! ```
//! use csp_parallel::Parallel;
//! use csp_runtime::{Channel, Config, Error, Process, Runtime};
//!
//! let sum = Parallel::run(Config::new(), || {
//!     let c = Channel::<u64, Parallel>::new();
//!     let (w, r) = (c.writer(), c.reader());
//!     let out = Parallel::par(vec![
//!         Process::new("producer", move || {
//!             for i in 1..=10 {
//!                 w.write(i)?;
//!             }
//!             w.retire();
//!             Ok(0)
//!         }),
//!         Process::new("consumer", move || {
//!             let mut sum = 0;
//!             loop {
//!                 match r.read() {
//!                     Ok(v) => sum += v,
//!                     Err(Error::Retired) => return Ok(sum),
//!                     Err(e) => return Err(e),
//!                 }
//!             }
//!         }),
//!     ])?;
//!     Ok::<_, Error>(out[1])
//! })??;
//! assert_eq!(sum, Some(55));
//! # Ok::<(), Error>(())
//! ```
#![warn(missing_docs)]
#![doc(test(attr(deny(warnings))))]

mod chan;
mod party;
mod select;
mod threads;
mod waiter;

use std::time::Duration;

use csp_runtime::{ChannelSpec, Config, Message, Process, Result, Runtime};

pub use chan::ParChan;
pub use select::ParGuard;

/// The parallel backend: processes are OS threads. See the [crate docs](crate).
///
/// About [`Config`] ([`Runtime::run`]):
///
/// - `Schedule::Seeded(n)` is accepted and recorded ([`current_config`]
///   returns it), but threads are scheduled by the OS, so it does not make a
///   run replayable; `Schedule::Fifo` likewise only names the default;
/// - `Clock::Simulated` is refused with `Error::Config`: a simulated clock
///   needs one scheduler that sees every process blocked, which only the
///   greenlets backend has; a program that sleeps for an hour would really
///   sleep for an hour here;
/// - `stack_size` is for green processes and is ignored (threads get the
///   standard library's default stack, `RUST_MIN_STACK` to change it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Parallel;

impl Runtime for Parallel {
    type Chan<T: Message> = ParChan<T>;
    type Guard<'a> = ParGuard<'a>;

    const NAME: &'static str = "parallel";

    fn channel<T: Message>(spec: ChannelSpec) -> ParChan<T> {
        ParChan::new(spec)
    }

    /// Starts one OS thread per process (named after it) and joins them all.
    /// If the OS refuses a thread, that process runs on the calling thread
    /// once the others have started (and a line on stderr says so).
    fn par<O: Send + 'static>(procs: Vec<Process<O>>) -> Result<Vec<Option<O>>> {
        threads::par(procs)
    }

    /// Starts the process on a background thread. A failure other than poison
    /// or retire is printed to stderr, as nobody waits for its result.
    ///
    /// # Errors
    /// `Io` when the OS refuses a thread (the process is dropped unstarted).
    fn spawn<O: Send + 'static>(proc: Process<O>) -> Result<()> {
        threads::spawn(proc)
    }

    fn sleep(d: Duration) -> Result<()> {
        threads::sleep(d);
        Ok(())
    }

    /// Time since the run started (outside a run: since the clock was first
    /// read in this OS process).
    fn now() -> Duration {
        threads::now()
    }

    /// Runs `f` on the calling thread: it is an OS thread of its own, so the
    /// other processes keep running. A panic in `f` becomes `Panicked`.
    fn io<F, T>(f: F) -> Result<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        threads::io(f)
    }

    /// Runs `f` on the calling thread as the main process, then waits for the
    /// processes it spawned. See [`Parallel`] for what `config` means here.
    ///
    /// # Errors
    /// `Config` for `Clock::Simulated`, or when a run is already active on
    /// this thread (or the thread is one of its processes).
    fn run<O>(config: Config, f: impl FnOnce() -> O) -> Result<O> {
        threads::run(config, f)
    }

    fn current_process() -> String {
        threads::current_name()
    }

    fn input_guard<'a, T: Message>(chan: &'a ParChan<T>, slot: &'a mut Option<T>) -> ParGuard<'a> {
        ParGuard::input(chan, slot)
    }

    fn output_guard<'a, T: Message>(
        chan: &'a ParChan<T>,
        value: &'a mut Option<T>,
    ) -> ParGuard<'a> {
        ParGuard::output(chan, value)
    }

    fn skip_guard<'a>() -> ParGuard<'a> {
        ParGuard::skip()
    }

    fn timeout_guard<'a>(after: Duration) -> ParGuard<'a> {
        ParGuard::timeout(after)
    }

    fn select(guards: &mut [ParGuard<'_>]) -> Result<usize> {
        select::select(guards)
    }
}

/// The configuration of the run the calling thread belongs to (processes
/// inherit their parent's run), or the default configuration outside a run.
///
/// ```
/// use csp_parallel::{Parallel, current_config};
/// use csp_runtime::{Config, Runtime, Schedule};
///
/// let seen = Parallel::run(Config::new().schedule(Schedule::seeded(9)), current_config)?;
/// assert_eq!(seen.schedule, Schedule::Seeded(9));
/// # Ok::<(), csp_runtime::Error>(())
/// ```
pub fn current_config() -> Config {
    threads::current_config()
}
