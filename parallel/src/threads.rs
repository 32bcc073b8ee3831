//! Processes as OS threads: `par`, `spawn`, `run`, the clock, and the
//! thread-local context of each process.
//!
//! # Lifetimes
//!
//! - `par` starts one thread per process (named after it) and joins them all,
//!   in argument order.
//! - A process waits, when its body ends, for every process it spawned
//!   (PyCSP's `Spawn`); a `par` therefore also waits for its children's
//!   spawned processes. The main thread's spawned processes are waited for at
//!   the end of [`run`]; outside a run they are detached.
//! - A thread knows its process name and the run it belongs to (for
//!   [`now`]); both are inherited by the processes it starts.

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use csp_runtime::{Clock, Config, Error, Process, Result, panic_message};

use crate::waiter::{blocking, thread_not_started, thread_started, thread_starting};

/// The run a thread belongs to.
#[derive(Debug)]
struct RunInfo {
    /// When the run started.
    start: Instant,
    /// Its configuration (recorded; see [`run`]).
    config: Config,
}

/// A process started by `spawn`, to be waited for by its spawner.
#[derive(Debug)]
struct Spawned {
    name: Cow<'static, str>,
    handle: JoinHandle<()>,
}

/// What a thread knows about itself.
#[derive(Debug, Default)]
struct Context {
    /// The process this thread runs (`None`: the program's own thread, "main").
    name: Option<Cow<'static, str>>,
    /// The run it belongs to, if any.
    run: Option<Arc<RunInfo>>,
    /// Processes it spawned that it has not waited for yet.
    spawned: Vec<Spawned>,
}

thread_local! {
    static CONTEXT: RefCell<Context> = RefCell::new(Context::default());
}

/// The clock used outside any run: started at the first look.
fn process_start() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

fn current_run() -> Option<Arc<RunInfo>> {
    CONTEXT.with(|c| c.borrow().run.clone())
}

/// The name of the calling process (`"main"` outside any process).
pub(crate) fn current_name() -> String {
    CONTEXT.with(|c| c.borrow().name.as_deref().unwrap_or("main").to_owned())
}

/// Time since the current run started (outside a run: since the clock was
/// first read in this OS process).
pub(crate) fn now() -> Duration {
    match current_run() {
        Some(r) => r.start.elapsed(),
        None => process_start().elapsed(),
    }
}

/// The configuration of the run the calling thread belongs to (the default
/// configuration outside a run).
pub(crate) fn current_config() -> Config {
    current_run().map_or_else(Config::new, |r| r.config.clone())
}

/// Prints a line on stderr for something nobody else would see (a failure
/// of a spawned process). Never panics, even if stderr is closed.
fn report(line: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// A thread name the OS accepts: no NUL bytes.
fn thread_name(name: &str) -> String {
    name.replace('\0', "\u{FFFD}")
}

/// The body of a process thread: sets the context up, runs the process,
/// waits for what it spawned.
fn process_main<O>(
    name: Cow<'static, str>,
    run: Option<Arc<RunInfo>>,
    body: Box<dyn FnOnce() -> Result<O> + Send>,
    own_thread: bool,
) -> Result<O> {
    if own_thread {
        thread_started();
    }
    let saved = CONTEXT.with(|c| {
        std::mem::replace(
            &mut *c.borrow_mut(),
            Context {
                name: Some(name),
                run,
                spawned: Vec::new(),
            },
        )
    });
    // `into_parts` made `body` catch a panic of the process and propagate
    // poison or retire through its ends.
    let result = body();
    join_spawned();
    // Restore the context (only matters when a process ran inline on its
    // parent's thread; see `par`).
    CONTEXT.with(|c| *c.borrow_mut() = saved);
    result
}

/// Waits for every process the calling thread spawned (and that they
/// spawned, since each waits for its own). Failures other than poison or
/// retire are printed, as nobody else can see them.
pub(crate) fn join_spawned() {
    loop {
        let spawned = CONTEXT.with(|c| std::mem::take(&mut c.borrow_mut().spawned));
        if spawned.is_empty() {
            return;
        }
        for s in spawned {
            if let Err(payload) = blocking(|| s.handle.join()) {
                report(format_args!(
                    "csp: the thread of spawned process '{}' panicked outside its body: {}",
                    s.name,
                    panic_message(&*payload)
                ));
            }
        }
    }
}

/// A process body ready to move to its thread, recoverable if the thread
/// cannot be started.
type Pending<O> = Arc<Mutex<Option<Box<dyn FnOnce() -> Result<O> + Send>>>>;

fn take_body<O>(cell: &Pending<O>) -> Option<Box<dyn FnOnce() -> Result<O> + Send>> {
    cell.lock().unwrap_or_else(PoisonError::into_inner).take()
}

/// `Runtime::par`: one thread per process, results in argument order.
pub(crate) fn par<O: Send + 'static>(procs: Vec<Process<O>>) -> Result<Vec<Option<O>>> {
    let run = current_run();
    enum Started<O> {
        Thread(Cow<'static, str>, JoinHandle<Result<O>>),
        /// The OS refused a thread: the process runs on this thread, after
        /// the others have started.
        Inline(Cow<'static, str>, Pending<O>, std::io::Error),
    }
    let mut started: Vec<Started<O>> = Vec::with_capacity(procs.len());
    for p in procs {
        let (name, body) = p.into_parts();
        let cell: Pending<O> = Arc::new(Mutex::new(Some(body)));
        let theirs = Arc::clone(&cell);
        let (tname, trun) = (name.clone(), run.clone());
        thread_starting();
        let spawned =
            thread::Builder::new()
                .name(thread_name(&name))
                .spawn(move || match take_body(&theirs) {
                    Some(body) => process_main(tname, trun, body, true),
                    None => Err(Error::config("a process body was taken twice")),
                });
        started.push(match spawned {
            Ok(h) => Started::Thread(name, h),
            Err(e) => {
                thread_not_started();
                Started::Inline(name, cell, e)
            }
        });
    }
    let mut results = Vec::with_capacity(started.len());
    for s in started {
        results.push(match s {
            Started::Thread(name, h) => blocking(|| h.join()).unwrap_or_else(|payload| {
                Err(Error::Panicked {
                    process: name.into_owned(),
                    message: panic_message(&*payload),
                })
            }),
            Started::Inline(name, cell, e) => {
                report(format_args!(
                    "csp: could not start a thread for process '{name}' ({e}); \
                     running it on its parent's thread instead"
                ));
                match take_body(&cell) {
                    Some(body) => process_main(name, run.clone(), body, false),
                    None => Err(Error::from(e)),
                }
            }
        });
    }
    csp_runtime::par_outcome(results)
}

/// `Runtime::spawn`: a background thread, waited for by the caller when its
/// body (or run) ends.
pub(crate) fn spawn<O: Send + 'static>(proc: Process<O>) -> Result<()> {
    let run = current_run();
    let (name, body) = proc.into_parts();
    let (tname, shown) = (name.clone(), name.clone());
    thread_starting();
    let handle = thread::Builder::new()
        .name(thread_name(&name))
        .spawn(move || {
            if let Err(e) = process_main(tname, run, body, true) {
                if !e.is_shutdown() {
                    report(format_args!("csp: spawned process '{shown}' failed: {e}"));
                }
            }
        })
        .map_err(|e| {
            thread_not_started();
            Error::Io(Arc::new(std::io::Error::new(
                e.kind(),
                format!("could not start a thread for spawned process '{name}': {e}"),
            )))
        })?;
    CONTEXT.with(|c| c.borrow_mut().spawned.push(Spawned { name, handle }));
    Ok(())
}

/// `Runtime::run`: see [`Parallel::run`](crate::Parallel).
pub(crate) fn run<O>(config: Config, f: impl FnOnce() -> O) -> Result<O> {
    if config.clock == Clock::Simulated {
        return Err(Error::config(
            "Clock::Simulated is a greenlets feature: the parallel backend's threads \
             run on the wall clock; use Clock::Real (Config::new()) here, or run the \
             program on the greenlets backend to simulate time",
        ));
    }
    let info = Arc::new(RunInfo {
        start: Instant::now(),
        config,
    });
    CONTEXT.with(|c| {
        let mut c = c.borrow_mut();
        if c.run.is_some() {
            return Err(Error::config(
                "a parallel run is already active on this thread (or this thread is one of \
                 its processes); call run only from outside any run",
            ));
        }
        c.run = Some(info);
        Ok(())
    })?;
    /// Leaves the run even if `f` panics (its spawned processes are then
    /// detached: waiting for them could hang).
    struct Leave;
    impl Drop for Leave {
        fn drop(&mut self) {
            let _ = CONTEXT.try_with(|c| {
                let mut c = c.borrow_mut();
                c.run = None;
                c.spawned.clear();
            });
        }
    }
    let _leave = Leave;
    let out = f();
    join_spawned();
    Ok(out)
}

/// `Runtime::sleep`: the calling thread sleeps on the wall clock.
pub(crate) fn sleep(d: Duration) {
    blocking(|| thread::sleep(d));
}

/// `Runtime::io`: the caller is an OS thread already, so it runs `f` itself.
pub(crate) fn io<F, T>(f: F) -> Result<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| Error::Panicked {
        process: current_name(),
        message: format!("its io call panicked: {}", panic_message(&*payload)),
    })
}
