//! A small synchronous backend for testing the macros without a scheduler.
//!
//! - Channels are buffered only: a write to a full buffer (or to a rendezvous
//!   channel) and a read from an empty one fail with `Error::Config("mock: ..
//!   would block")` instead of blocking.
//! - `par` runs the processes one after another, in order.
//! - `select` fails if any guard's channel is poisoned or retired, else picks
//!   the first ready guard (skip is always ready), else the first timeout.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use csp::{ChanOps, ChannelSpec, Config, Direction, Error, Message, Process, Result, Runtime};

/// The mock backend.
#[derive(Debug)]
pub(crate) struct Mock;

struct State<T> {
    buf: VecDeque<T>,
    readers: usize,
    writers: usize,
    poisoned: bool,
    retired: bool,
}

/// One channel of the mock backend.
pub(crate) struct MockChan<T> {
    state: Arc<Mutex<State<T>>>,
    name: Arc<str>,
    capacity: usize,
}

impl<T> Clone for MockChan<T> {
    fn clone(&self) -> Self {
        MockChan {
            state: self.state.clone(),
            name: self.name.clone(),
            capacity: self.capacity,
        }
    }
}

impl<T> MockChan<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<T: Message> ChanOps<T> for MockChan<T> {
    fn join(&self, dir: Direction) {
        let mut s = self.lock();
        match dir {
            Direction::Read => s.readers += 1,
            Direction::Write => s.writers += 1,
        }
    }
    fn retire(&self, dir: Direction) {
        let mut s = self.lock();
        let left = match dir {
            Direction::Read => {
                s.readers -= 1;
                s.readers
            }
            Direction::Write => {
                s.writers -= 1;
                s.writers
            }
        };
        if left == 0 {
            s.retired = true;
        }
    }
    fn poison(&self, _dir: Direction) {
        let mut s = self.lock();
        s.poisoned = true;
        s.buf.clear();
    }
    fn read(&self) -> Result<T> {
        let mut s = self.lock();
        if s.poisoned {
            return Err(Error::Poisoned);
        }
        if let Some(v) = s.buf.pop_front() {
            return Ok(v);
        }
        if s.retired {
            return Err(Error::Retired);
        }
        Err(Error::config(format!(
            "mock: read on '{}' would block",
            self.name
        )))
    }
    fn write(&self, value: T) -> Result<()> {
        let mut s = self.lock();
        if s.poisoned {
            return Err(Error::Poisoned);
        }
        if s.retired {
            return Err(Error::Retired);
        }
        if s.buf.len() >= self.capacity {
            return Err(Error::config(format!(
                "mock: write on '{}' would block",
                self.name
            )));
        }
        s.buf.push_back(value);
        Ok(())
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn capacity(&self) -> usize {
        self.capacity
    }
    fn is_poisoned(&self) -> bool {
        self.lock().poisoned
    }
    fn is_retired(&self) -> bool {
        self.lock().retired
    }
}

pub(crate) enum Readiness {
    Ready,
    NotReady,
    Failed(Error),
}

pub(crate) trait Pending {
    fn readiness(&self) -> Readiness;
    fn commit(&mut self);
}

struct InputGuard<'a, T> {
    chan: &'a MockChan<T>,
    slot: &'a mut Option<T>,
}

impl<T: Message> Pending for InputGuard<'_, T> {
    fn readiness(&self) -> Readiness {
        let s = self.chan.lock();
        if s.poisoned {
            Readiness::Failed(Error::Poisoned)
        } else if !s.buf.is_empty() {
            Readiness::Ready
        } else if s.retired {
            Readiness::Failed(Error::Retired)
        } else {
            Readiness::NotReady
        }
    }
    fn commit(&mut self) {
        *self.slot = self.chan.lock().buf.pop_front();
    }
}

struct OutputGuard<'a, T> {
    chan: &'a MockChan<T>,
    value: &'a mut Option<T>,
}

impl<T: Message> Pending for OutputGuard<'_, T> {
    fn readiness(&self) -> Readiness {
        let s = self.chan.lock();
        if s.poisoned {
            Readiness::Failed(Error::Poisoned)
        } else if s.retired {
            Readiness::Failed(Error::Retired)
        } else if s.buf.len() < self.chan.capacity {
            Readiness::Ready
        } else {
            Readiness::NotReady
        }
    }
    fn commit(&mut self) {
        if let Some(v) = self.value.take() {
            self.chan.lock().buf.push_back(v);
        }
    }
}

/// A guard of the mock backend.
pub(crate) enum MockGuard<'a> {
    /// An input or output guard.
    Chan(Box<dyn Pending + 'a>),
    /// Always ready.
    Skip,
    /// Chosen when nothing else is ready.
    Timeout,
}

static NEXT_CHANNEL: AtomicUsize = AtomicUsize::new(0);

impl Runtime for Mock {
    type Chan<T: Message> = MockChan<T>;
    type Guard<'a> = MockGuard<'a>;
    const NAME: &'static str = "mock";

    fn channel<T: Message>(spec: ChannelSpec) -> Self::Chan<T> {
        let name = spec
            .name
            .unwrap_or_else(|| format!("c{}", NEXT_CHANNEL.fetch_add(1, Ordering::Relaxed)));
        MockChan {
            state: Arc::new(Mutex::new(State {
                buf: VecDeque::new(),
                readers: 0,
                writers: 0,
                poisoned: false,
                retired: false,
            })),
            name: name.into(),
            capacity: spec.capacity,
        }
    }

    fn par<O: Send + 'static>(procs: Vec<Process<O>>) -> Result<Vec<Option<O>>> {
        let results = procs
            .into_iter()
            .map(|p| {
                let (_name, run) = p.into_parts();
                run()
            })
            .collect();
        csp::par_outcome(results)
    }

    fn spawn<O: Send + 'static>(proc: Process<O>) -> Result<()> {
        Self::par(vec![proc]).map(drop)
    }

    fn sleep(_d: Duration) -> Result<()> {
        Ok(())
    }

    fn now() -> Duration {
        Duration::ZERO
    }

    fn io<F, T>(f: F) -> Result<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        Ok(f())
    }

    fn run<O>(_config: Config, f: impl FnOnce() -> O) -> Result<O> {
        Ok(f())
    }

    fn current_process() -> String {
        "main".to_owned()
    }

    fn input_guard<'a, T: Message>(
        chan: &'a Self::Chan<T>,
        slot: &'a mut Option<T>,
    ) -> Self::Guard<'a> {
        MockGuard::Chan(Box::new(InputGuard { chan, slot }))
    }

    fn output_guard<'a, T: Message>(
        chan: &'a Self::Chan<T>,
        value: &'a mut Option<T>,
    ) -> Self::Guard<'a> {
        MockGuard::Chan(Box::new(OutputGuard { chan, value }))
    }

    fn skip_guard<'a>() -> Self::Guard<'a> {
        MockGuard::Skip
    }

    fn timeout_guard<'a>(_after: Duration) -> Self::Guard<'a> {
        MockGuard::Timeout
    }

    fn select(guards: &mut [Self::Guard<'_>]) -> Result<usize> {
        if guards.is_empty() {
            return Err(Error::config("mock: select over no guards"));
        }
        for g in guards.iter() {
            if let MockGuard::Chan(p) = g
                && let Readiness::Failed(e) = p.readiness()
            {
                return Err(e);
            }
        }
        let ready = guards.iter().position(|g| match g {
            MockGuard::Chan(p) => matches!(p.readiness(), Readiness::Ready),
            MockGuard::Skip => true,
            MockGuard::Timeout => false,
        });
        let chosen = ready.or_else(|| guards.iter().position(|g| matches!(g, MockGuard::Timeout)));
        match chosen {
            Some(i) => {
                if let MockGuard::Chan(p) = &mut guards[i] {
                    p.commit();
                }
                Ok(i)
            }
            None => Err(Error::config("mock: select would block")),
        }
    }
}
