//! The contract a backend fulfils: what `greenlets` and `parallel` each provide.
//!
//! User code never calls these traits directly except through `R::par`,
//! `R::spawn`, ... in code that is generic over the backend; the public types
//! ([`Channel`](crate::Channel), [`Reader`](crate::Reader), [`Alt`](crate::Alt),
//! [`Process`](crate::Process)) are written once, here, on top of them.

use std::time::Duration;

use crate::{Config, Message, Process, Result};

/// Which side of a channel an end is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The end reads.
    Read,
    /// The end writes.
    Write,
}

/// How a channel is made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelSpec {
    /// The channel's name; `None` lets the backend pick a unique one.
    pub name: Option<String>,
    /// 0 for a rendezvous channel, otherwise the buffer's capacity.
    pub capacity: usize,
}

/// A backend: where processes run and how channels match readers with writers.
///
/// The two implementations are `csp_greenlets::Greenlets` and
/// `csp_parallel::Parallel`. Code written against `R: Runtime` runs on both.
pub trait Runtime: Sized + Send + Sync + 'static {
    /// The backend's shared state of one channel. Cloning shares it.
    type Chan<T: Message>: ChanOps<T>;

    /// One guard of an alternation, ready for [`Runtime::select`].
    type Guard<'a>;

    /// A short name for messages: `"greenlets"` or `"parallel"`.
    const NAME: &'static str;

    /// Makes a channel.
    fn channel<T: Message>(spec: ChannelSpec) -> Self::Chan<T>;

    /// Runs the processes concurrently and waits for all of them. Returns their
    /// results in argument order: `Some(value)` for a process that returned a
    /// value, `None` for one that stopped with `Poisoned` or `Retired`.
    ///
    /// # Errors
    /// The first failure in argument order (a panic, an error the process
    /// returned, ...); `Deadlock` only if nothing else failed.
    fn par<O: Send + 'static>(procs: Vec<Process<O>>) -> Result<Vec<Option<O>>>;

    /// Starts a process in the background. The process that spawned it waits for
    /// it when its own body ends (PyCSP's `Spawn`).
    fn spawn<O: Send + 'static>(proc: Process<O>) -> Result<()>;

    /// Suspends the calling process for `d` (simulated time where configured).
    fn sleep(d: Duration) -> Result<()>;

    /// Time since the run started, on the run's clock (real or simulated).
    fn now() -> Duration;

    /// Runs a blocking call without stopping the other processes.
    fn io<F, T>(f: F) -> Result<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static;

    /// Runs `f` as the main process of a run configured by `config`.
    fn run<O>(config: Config, f: impl FnOnce() -> O) -> Result<O>;

    /// The name of the calling process (`"main"` outside any process).
    fn current_process() -> String;

    /// An input guard: if chosen, the value read is left in `slot`.
    fn input_guard<'a, T: Message>(
        chan: &'a Self::Chan<T>,
        slot: &'a mut Option<T>,
    ) -> Self::Guard<'a>;

    /// An output guard: if chosen, the value is taken out of `value`.
    fn output_guard<'a, T: Message>(
        chan: &'a Self::Chan<T>,
        value: &'a mut Option<T>,
    ) -> Self::Guard<'a>;

    /// A guard that is always ready.
    fn skip_guard<'a>() -> Self::Guard<'a>;

    /// A guard that becomes ready `after` the select starts waiting.
    fn timeout_guard<'a>(after: Duration) -> Self::Guard<'a>;

    /// Commits exactly one guard: the first ready one in slice order, else the
    /// first to become ready. Returns its index.
    ///
    /// # Errors
    /// `Poisoned`/`Retired` when a guard's channel is (or becomes) poisoned or
    /// retired before any guard commits; `Config` for an empty slice.
    fn select(guards: &mut [Self::Guard<'_>]) -> Result<usize>;
}

/// The operations of one channel's shared state, as a backend implements them.
pub trait ChanOps<T: Message>: Clone + Send + Sync + 'static {
    /// A new end joins on `dir`'s side (the reader or writer count goes up).
    fn join(&self, dir: Direction);
    /// An end on `dir`'s side leaves for good.
    fn retire(&self, dir: Direction);
    /// Poisons the channel through an end on `dir`'s side (a writer's poison
    /// lets readers drain a buffer first).
    fn poison(&self, dir: Direction);
    /// Reads one message, blocking until a writer offers one.
    fn read(&self) -> Result<T>;
    /// Writes one message, blocking until a reader takes it (or it is buffered).
    fn write(&self, value: T) -> Result<()>;
    /// The channel's name.
    fn name(&self) -> &str;
    /// 0 for rendezvous, else the buffer capacity.
    fn capacity(&self) -> usize;
    /// True once poisoned (a writer-side poison of a non-empty buffer counts
    /// only once the buffer is empty).
    fn is_poisoned(&self) -> bool;
    /// True once retired.
    fn is_retired(&self) -> bool;
}
