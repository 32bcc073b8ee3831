//! # csp-greenlets: the greenlets backend of csp
//!
//! Every process is a stackful coroutine (corosensei) on the calling OS thread,
//! run by our own scheduler:
//!
//! - a switch is a stack switch: no atomics and no locks on the hot path;
//! - stacks are carved from large mappings, guard pages that do not split the
//!   mapping, pooled and reused, so millions of processes fit;
//! - the run queue is FIFO, or seeded random (`Schedule::Seeded`): the same seed
//!   replays the same interleaving;
//! - time is real or simulated (`Clock::Simulated`: when every process is
//!   blocked the clock jumps to the next timer);
//! - when nothing can run and no timer or io is pending, the run ends with
//!   `Error::Deadlock`, whose report names every blocked process;
//! - `io(|| ...)` runs a blocking call on a helper thread while the other
//!   processes run.
//!
//! Programs use it through the facade crate `csp` with the `greenlets`
//! feature; [`Greenlets`] is the `csp_runtime::Runtime` to name in
//! generic code.
#![warn(missing_docs)]

mod chan;
mod io;
mod owned;
mod rng;
mod sched;
mod select;
mod stack;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use csp_runtime::{ChannelSpec, Config, Message, Process, Result, Runtime};

pub use chan::GreenChan;
pub use select::GreenGuard;

/// The greenlets backend. See the [crate docs](crate).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Greenlets;

impl Runtime for Greenlets {
    type Chan<T: Message> = GreenChan<T>;
    type Guard<'a> = GreenGuard<'a>;

    const NAME: &'static str = "greenlets";

    fn channel<T: Message>(spec: ChannelSpec) -> GreenChan<T> {
        GreenChan::new(spec)
    }

    fn par<O: Send + 'static>(procs: Vec<Process<O>>) -> Result<Vec<Option<O>>> {
        let n = procs.len();
        let results: Rc<RefCell<Vec<Option<Result<O>>>>> =
            Rc::new(RefCell::new((0..n).map(|_| None).collect()));
        let entries: Vec<sched::Entry> = procs
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                let (name, body) = p.into_parts();
                let results = results.clone();
                let entry: Box<dyn FnOnce()> = Box::new(move || {
                    let r = body();
                    sched::join_spawned();
                    if let Some(slot) = results.borrow_mut().get_mut(i) {
                        *slot = Some(r);
                    }
                });
                (name, entry)
            })
            .collect();
        sched::par_entries(entries)?;
        let results = results.take();
        let results = results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(csp_runtime::Error::config(
                        "a process of this par did not finish (a bug in csp-greenlets)",
                    ))
                })
            })
            .collect();
        csp_runtime::par_outcome(results)
    }

    fn spawn<O: Send + 'static>(proc: Process<O>) -> Result<()> {
        let (name, body) = proc.into_parts();
        let shown = name.clone();
        sched::spawn_entry(
            name,
            Box::new(move || {
                let r = body();
                sched::join_spawned();
                if let Err(e) = r {
                    if !e.is_shutdown() {
                        eprintln!("csp: spawned process '{shown}' failed: {e}");
                    }
                }
            }),
        )
    }

    fn sleep(d: Duration) -> Result<()> {
        sched::sleep(d)
    }

    fn now() -> Duration {
        sched::with_sched(|s| s.now())
    }

    fn io<F, T>(f: F) -> Result<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        sched::io(f)
    }

    fn run<O>(config: Config, f: impl FnOnce() -> O) -> Result<O> {
        sched::run(config, f)
    }

    fn current_process() -> String {
        sched::with_sched(|s| s.current_name())
    }

    fn input_guard<'a, T: Message>(
        chan: &'a GreenChan<T>,
        slot: &'a mut Option<T>,
    ) -> GreenGuard<'a> {
        GreenGuard::input(chan, slot)
    }

    fn output_guard<'a, T: Message>(
        chan: &'a GreenChan<T>,
        value: &'a mut Option<T>,
    ) -> GreenGuard<'a> {
        GreenGuard::output(chan, value)
    }

    fn skip_guard<'a>() -> GreenGuard<'a> {
        GreenGuard::skip()
    }

    fn timeout_guard<'a>(after: Duration) -> GreenGuard<'a> {
        GreenGuard::timeout(after)
    }

    fn select(guards: &mut [GreenGuard<'_>]) -> Result<usize> {
        select::select(guards)
    }
}

/// The configuration of the run active on this thread (the default one
/// outside [`Runtime::run`]). Tests print its schedule to make a failure
/// replayable.
pub fn current_config() -> Config {
    sched::current_config()
}
