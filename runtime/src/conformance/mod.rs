//! The conformance suite: one set of behavioural cases that every backend must
//! pass, written once against [`Runtime`] so that the greenlets backend and
//! the parallel backend run exactly the same code.
//!
//! The cases come from four sources, one module each:
//!
//! - [`pycsp`]: PyCSP 0.9.2's test scripts (`test/autotest.py`,
//!   `buffertest.py`, `commtest.py`, `poisontest.py`, `guardtest.py`,
//!   `selecttest.py`, `iotest.py`), with PyCSP's assertions and, where our
//!   semantics promise more, stronger ones;
//! - [`golang`]: Go's channel tests (`test/chan/*.go`,
//!   `src/runtime/chan_test.go`) that apply to rendezvous, buffered channels,
//!   select and poison;
//! - [`rules`]: the exact poison, retire, buffer, process and alternation rules
//!   (pycsp-semantics §3.3–3.6, §3.10, and the fixes of §10);
//! - [`deadlock`]: deadlock reports (greenlets only: the cases return early on
//!   other backends).
//!
//! # Use from a backend's tests
//!
//! ```
//! # #[allow(dead_code)]
//! # fn doc<R: csp_runtime::Runtime>() -> Result<(), String> {
//! use csp_runtime::conformance;
//! use csp_runtime::{Clock, Config, Schedule};
//! // every case once, FIFO schedule, real clock
//! conformance::run_all::<R>(|_| vec![Config::new()])?;
//! // every seeded case under seeds 0..10, simulated clock
//! conformance::run_all::<R>(|case| {
//!     if !case.seeded {
//!         return Vec::new();
//!     }
//!     (0..10)
//!         .map(|s| Config::new().schedule(Schedule::Seeded(s)).clock(Clock::Simulated))
//!         .collect()
//! })?;
//! # Ok(()) }
//! ```
//!
//! # Writing a case
//!
//! A case is `pub fn name<R: Runtime>() -> Result<(), String>`, run inside
//! [`Runtime::run`]. It returns `Err` with a message that says what was
//! expected and what happened; it never panics for a failed check (a panic is
//! still caught and reported by [`run_case`]). It makes no assumption that
//! holds on one thread only (process bodies are `Send`, nothing is `Rc`), and
//! no timing assertion beyond generous bounds: sleeps use [`Runtime::sleep`],
//! whose "random" lengths are computed from the case's ids (see `Sleeper`), so
//! a seeded schedule replays exactly.

use std::borrow::Cow;
use std::fmt::Debug;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::{Clock, Config, Ends, Error, Process, Runtime, Schedule, panic_message};

/// Returns `Err(format!(..))` from the enclosing case when `cond` is false.
macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err(format!($($arg)+));
        }
    };
}

/// Builds a [`Case`] for the enclosing module's `SOURCE`.
macro_rules! case {
    ($R:ty, $name:ident, $origin:expr) => {
        case!($R, $name, $origin, true)
    };
    ($R:ty, $name:ident, $origin:expr, $seeded:expr) => {
        $crate::conformance::Case {
            name: stringify!($name),
            source: SOURCE,
            origin: $origin,
            run: $name::<$R>,
            seeded: $seeded,
        }
    };
}

pub mod deadlock;
pub mod golang;
pub mod pycsp;
pub mod rules;

/// What a case returns: `Err` says what was expected and what happened.
pub type Outcome = Result<(), String>;

/// One case of the suite, ready to run on one backend.
#[derive(Clone, Copy, Debug)]
pub struct Case {
    /// The case's function name, e.g. `one2one`.
    pub name: &'static str,
    /// The module it lives in: one of [`SOURCES`].
    pub source: &'static str,
    /// Where it came from, e.g. `PyCSP test/autotest.py One2One_Test`.
    pub origin: &'static str,
    /// The case itself, instantiated for the backend. Call it inside
    /// [`Runtime::run`] (or use [`run_case`]).
    pub run: fn() -> Outcome,
    /// False for cases that use real io or the wall clock (`iotest`): run them
    /// once, not under hundreds of seeds with a simulated clock.
    pub seeded: bool,
}

/// The source modules, in the order [`cases`] lists them.
pub const SOURCES: [&str; 4] = ["pycsp", "golang", "rules", "deadlock"];

/// Every case of the suite, instantiated for backend `R`.
pub fn cases<R: Runtime>() -> Vec<Case> {
    let mut all = pycsp::cases::<R>();
    all.extend(golang::cases::<R>());
    all.extend(rules::cases::<R>());
    all.extend(deadlock::cases::<R>());
    all
}

/// Runs one case on backend `R` inside `R::run(config, ..)`, catching a panic
/// so that one broken case does not hide the others.
///
/// # Errors
/// The case's own message, the runtime's refusal to run, or the panic's text.
pub fn run_case<R: Runtime>(case: &Case, config: Config) -> Outcome {
    let run = case.run;
    match catch_unwind(AssertUnwindSafe(move || R::run(config, run))) {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) => Err(format!(
            "the {} runtime failed the run itself: {e:?}: {e}",
            R::NAME
        )),
        Err(payload) => Err(format!("panicked: {}", panic_message(&*payload))),
    }
}

/// How a configuration reads in a failure line.
pub fn describe_config(config: &Config) -> String {
    let schedule = match config.schedule {
        Schedule::Fifo => "Schedule::Fifo".to_owned(),
        Schedule::Seeded(n) => format!("Schedule::Seeded({n})"),
    };
    let clock = match config.clock {
        Clock::Real => "Clock::Real",
        Clock::Simulated => "Clock::Simulated",
    };
    format!("{schedule}, {clock}")
}

/// Runs each of `cases` under every configuration `configs` gives for it
/// (none: the case is skipped), and collects every failure.
///
/// # Errors
/// One line per failed run, naming the case, its origin and the
/// configuration (for a seeded schedule: how to replay it with `CSP_SEED`).
pub fn run_cases<R: Runtime>(
    cases: &[Case],
    configs: impl Fn(&Case) -> Vec<Config>,
) -> Result<usize, String> {
    let mut runs = 0usize;
    let mut failures = Vec::new();
    for case in cases {
        for config in configs(case) {
            runs += 1;
            let shown = describe_config(&config);
            let replay = match config.schedule {
                Schedule::Seeded(n) => format!(" (replay with CSP_SEED={n})"),
                Schedule::Fifo => String::new(),
            };
            if let Err(msg) = run_case::<R>(case, config) {
                failures.push(format!(
                    "FAILED {}::{} [{}] on {} under {shown}{replay}: {}",
                    case.source,
                    case.name,
                    case.origin,
                    R::NAME,
                    msg.replace('\n', "\n        ")
                ));
            }
        }
    }
    if failures.is_empty() {
        Ok(runs)
    } else {
        Err(format!(
            "{} of {runs} conformance runs failed on {}:\n{}",
            failures.len(),
            R::NAME,
            failures.join("\n")
        ))
    }
}

/// Runs every case of the suite under every configuration `configs` gives for
/// it (none: the case is skipped), and collects every failure.
///
/// # Errors
/// As [`run_cases`]: one line per failed run.
pub fn run_all<R: Runtime>(configs: impl Fn(&Case) -> Vec<Config>) -> Result<usize, String> {
    run_cases::<R>(&cases::<R>(), configs)
}

// ---------------------------------------------------------------------------
// Helpers shared by the cases.

/// A process whose body owns `ends` and whose ends are poisoned or retired
/// with it (the propagation `#[process]` gives), built from `Process::new`
/// and `with_ends` only.
pub(crate) fn proc<E, O, F>(name: impl Into<Cow<'static, str>>, ends: E, body: F) -> Process<O>
where
    E: Ends + Send + 'static,
    O: Send + 'static,
    F: FnOnce(E) -> crate::Result<O> + Send + 'static,
{
    // The ends must be both inside the body and known to `with_ends`; a clone
    // would be one more end, so hand them over through a shared cell.
    let cell = Arc::new(Mutex::new(Some(ends)));
    let inner = Arc::clone(&cell);
    let p = Process::new(name, move || {
        let ends = inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .ok_or_else(|| Error::config("conformance: a process body ran twice"))?;
        body(ends)
    });
    let guard = cell.lock().unwrap_or_else(PoisonError::into_inner);
    p.with_ends(&*guard)
}

/// A list shared between processes (and the case), in the order items were
/// pushed.
#[derive(Debug)]
pub(crate) struct Log<T>(Arc<Mutex<Vec<T>>>);

impl<T> Clone for Log<T> {
    fn clone(&self) -> Self {
        Log(Arc::clone(&self.0))
    }
}

impl<T> Log<T> {
    pub(crate) fn new() -> Self {
        Log(Arc::new(Mutex::new(Vec::new())))
    }

    pub(crate) fn push(&self, item: T) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(item);
    }

    /// Takes the items out (for values that are not `Clone`).
    pub(crate) fn items_moved(&self) -> Vec<T> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl<T: Clone> Log<T> {
    pub(crate) fn items(&self) -> Vec<T> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Adds a description to a runtime error.
pub(crate) trait Ctx<T> {
    /// `Err(e)` becomes `Err("<what>: failed with <e>")`.
    fn ctx(self, what: &str) -> Result<T, String>;
}

impl<T> Ctx<T> for crate::Result<T> {
    fn ctx(self, what: &str) -> Result<T, String> {
        self.map_err(|e| format!("{what}: failed with {e:?} ({e})"))
    }
}

/// Checks that `got` is exactly the error `want`.
pub(crate) fn expect_err<T: Debug>(what: &str, got: crate::Result<T>, want: &Error) -> Outcome {
    match got {
        Err(e) if &e == want => Ok(()),
        other => Err(format!("{what}: expected Err({want:?}), got {other:?}")),
    }
}

/// The SplitMix64 finaliser: a good 64-bit mix.
pub(crate) fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A stable number for a test name (FNV-1a), the root of its sleep lengths.
pub(crate) fn tag(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The key of sleep number `i` of process `who` in the test tagged `tag`.
pub(crate) fn key(tag: u64, who: u64, i: u64) -> u64 {
    mix(tag ^ mix(who ^ mix(i)))
}

/// PyCSP's sleepers (`sleep_one`, `sleep_random`, ...), scaled from tens of
/// milliseconds to single milliseconds, on the run's clock. The "random"
/// lengths are computed from a key made of the test's ids, never from
/// wall-clock randomness, so a seeded schedule replays exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sleeper {
    /// `None`: no sleep.
    Zero,
    /// `sleep_one`: 1 ms.
    One,
    /// `sleep_random`: 0..2 ms.
    Random,
    /// `sleep_long` (guardtest): 4 ms.
    Long,
    /// `sleep_long_random` (guardtest): 0..8 ms.
    LongRandom,
}

impl Sleeper {
    /// Sleeps as this sleeper does for the given key (see [`key`]).
    pub(crate) fn sleep<R: Runtime>(self, key: u64) -> crate::Result<()> {
        let micros = match self {
            Sleeper::Zero => return Ok(()),
            Sleeper::One => 1_000,
            Sleeper::Random => mix(key) % 2_001,
            Sleeper::Long => 4_000,
            Sleeper::LongRandom => mix(key) % 8_001,
        };
        R::sleep(Duration::from_micros(micros))
    }

    /// The PyCSP name of the sleeper, for test names.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Sleeper::Zero => "None",
            Sleeper::One => "sleep_one",
            Sleeper::Random => "sleep_random",
            Sleeper::Long => "sleep_long",
            Sleeper::LongRandom => "sleep_long_random",
        }
    }
}
