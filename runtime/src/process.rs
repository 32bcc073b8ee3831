//! Processes: values that describe a piece of sequential code to run. See [`Process`].
use std::any::Any;
use std::borrow::Cow;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::ends::{EndSet, Ends};
use crate::{Error, Result};

type Body<O> = Box<dyn FnOnce() -> Result<O> + Send>;

/// Processes: values that describe a piece of sequential code to run.
///
/// A [`Process`] is made by a `#[process]` function (or [`Process::new`]) and
/// does nothing until it is given to `par`, `seq` or `spawn`. Its body returns
/// `Result<O>`:
///
/// - `Ok(value)`: the process finished; `par` returns `Some(value)` for it;
/// - `Err(Poisoned)`: it stopped because the network is being shut down; every
///   channel end among its arguments is poisoned, and `par` returns `None` for it;
/// - `Err(Retired)`: likewise, but its ends are retired;
/// - any other error, or a panic: every end among its arguments is poisoned (so
///   the rest of the network stops instead of hanging), and `par` fails with
///   that error.
///
#[must_use = "a process does nothing until it is given to par, seq or spawn"]
pub struct Process<O> {
    name: Cow<'static, str>,
    ends: EndSet,
    body: Body<O>,
}

impl<O: Send + 'static> Process<O> {
    /// A process from a closure. Its arguments are whatever the closure
    /// captured; add the channel ends that should be poisoned or retired with it
    /// by [`Process::with_ends`] (a `#[process]` function does this for you).
    ///
    /// ```
    /// let p = csp_runtime::Process::new("answer", || Ok(42));
    /// assert_eq!(p.name(), "answer");
    /// ```
    pub fn new(
        name: impl Into<Cow<'static, str>>,
        body: impl FnOnce() -> Result<O> + Send + 'static,
    ) -> Self {
        Process {
            name: name.into(),
            ends: EndSet::new(),
            body: Box::new(body),
        }
    }

    /// Used by `#[process]`.
    #[doc(hidden)]
    pub fn __with_end_set(
        name: &'static str,
        ends: EndSet,
        body: impl FnOnce() -> Result<O> + Send + 'static,
    ) -> Self {
        Process {
            name: Cow::Borrowed(name),
            ends,
            body: Box::new(body),
        }
    }

    /// Adds the channel ends held by `ends` to those poisoned or retired when
    /// this process stops (see the [`Process`] docs).
    pub fn with_ends(mut self, ends: &impl Ends) -> Self {
        ends.collect_ends(&mut self.ends);
        self
    }

    /// Renames the process (the name shows in deadlock reports and errors).
    pub fn named(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = name.into();
        self
    }

    /// The process's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A process that runs this one and then `f` on its value.
    pub fn map<P: Send + 'static>(self, f: impl FnOnce(O) -> P + Send + 'static) -> Process<P> {
        let body = self.body;
        Process {
            name: self.name,
            ends: self.ends,
            body: Box::new(move || body().map(f)),
        }
    }

    /// Splits the process for a backend: its name, and a body that runs it on
    /// the calling thread or coroutine, catches a panic, and applies poison and
    /// retire propagation. Backends call this; programs do not need it.
    pub fn into_parts(self) -> (Cow<'static, str>, Body<O>) {
        let Process { name, ends, body } = self;
        let pname = name.clone();
        let run = move || -> Result<O> {
            let result = match catch_unwind(AssertUnwindSafe(body)) {
                Ok(r) => r,
                Err(payload) => Err(Error::Panicked {
                    process: pname.into_owned(),
                    message: panic_message(&*payload),
                }),
            };
            match &result {
                Ok(_) => {}
                Err(Error::Retired) => ends.retire_all(),
                Err(_) => ends.poison_all(),
            }
            result
        };
        (name, Box::new(run))
    }
}

impl<O> fmt::Debug for Process<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process")
            .field("name", &self.name)
            .field("ends", &self.ends.len())
            .finish()
    }
}

/// The text of a panic payload.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-text payload".to_owned()
    }
}

/// Turns the results of the processes of a `par` into its result: `Some` for
/// values, `None` for processes stopped by poison or retire, and the first
/// failure in argument order (a deadlock only if nothing else failed).
/// For backends.
pub fn par_outcome<O>(results: Vec<Result<O>>) -> Result<Vec<Option<O>>> {
    let mut deadlock = None;
    let mut failure = None;
    let mut out = Vec::with_capacity(results.len());
    for r in results {
        match r {
            Ok(v) => out.push(Some(v)),
            Err(e) if e.is_shutdown() => out.push(None),
            Err(e @ Error::Deadlock(_)) => {
                deadlock.get_or_insert(e);
                out.push(None);
            }
            Err(e) => {
                failure.get_or_insert(e);
                out.push(None);
            }
        }
    }
    match failure.or(deadlock) {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// A tuple of processes with different result types, for `par!`.
pub trait ProcessTuple {
    /// The tuple of `Option`s that `par!` returns.
    type Output;
    /// Erases the processes' types so one `par` can run them.
    #[doc(hidden)]
    fn into_erased(self) -> Vec<Process<Box<dyn Any + Send>>>;
    /// Restores the types of the results.
    #[doc(hidden)]
    fn from_erased(values: Vec<Option<Box<dyn Any + Send>>>) -> Self::Output;
}

fn erase<O: Send + 'static>(p: Process<O>) -> Process<Box<dyn Any + Send>> {
    p.map(|v| Box::new(v) as Box<dyn Any + Send>)
}

fn unerase<O: 'static>(v: Option<Box<dyn Any + Send>>) -> Option<O> {
    // The values come back in the order and with the types they were erased
    // with, so the downcast cannot fail.
    v.and_then(|b| b.downcast::<O>().ok().map(|b| *b))
}

macro_rules! process_tuple {
    ($($n:tt $t:ident),+) => {
        impl<$($t: Send + 'static),+> ProcessTuple for ($(Process<$t>,)+) {
            type Output = ($(Option<$t>,)+);
            fn into_erased(self) -> Vec<Process<Box<dyn Any + Send>>> {
                vec![$(erase(self.$n)),+]
            }
            fn from_erased(values: Vec<Option<Box<dyn Any + Send>>>) -> Self::Output {
                let mut it = values.into_iter();
                ($(unerase::<$t>(it.next().flatten()),)+)
            }
        }
    };
}
process_tuple!(0 A);
process_tuple!(0 A, 1 B);
process_tuple!(0 A, 1 B, 2 C);
process_tuple!(0 A, 1 B, 2 C, 3 D);
process_tuple!(0 A, 1 B, 2 C, 3 D, 4 E);
process_tuple!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F);
process_tuple!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G);
process_tuple!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H);
process_tuple!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H, 8 I);
process_tuple!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H, 8 I, 9 J);
process_tuple!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H, 8 I, 9 J, 10 K);
process_tuple!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H, 8 I, 9 J, 10 K, 11 L);
