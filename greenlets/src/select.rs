//! Alternation on the greenlets backend.
//!
//! Three named passes, as in Go's `selectgo`:
//!
//! 1. **poll**: try each guard in order; the first that can complete now
//!    (or is poisoned/retired) decides the select.
//! 2. **enqueue**: register an offer for every channel guard and a timer for
//!    every timeout guard, all tagged with one fresh wait epoch, and block.
//!    The first party to complete an offer wakes us with its guard index; the
//!    epoch makes every other offer stale at once, so exactly one commits.
//! 3. **dequeue**: remove our remaining offers and cancel our timers.

use std::marker::PhantomData;
use std::ptr::NonNull;
use std::time::Duration;

use csp_runtime::{Direction, Error, Message, Result};

use crate::chan::{ChanCell, GreenChan, Try};
use crate::sched::Describe;
use crate::sched::{self, Sched, TimerKey, WaitKind, describe_chan, with_sched};

/// A channel, seen by an alternation without its message type.
pub(crate) trait GuardOps: Describe {
    /// Tries the guard now. For a read, a message read is stored in `slot`
    /// (an `Option<T>`); for a write, the message is taken from it.
    fn try_now(&self, dir: Direction, slot: NonNull<()>, s: &mut Sched) -> Result<Try<()>>;
    /// Registers the guard's offer.
    fn register(
        &self,
        dir: Direction,
        pid: u32,
        epoch: u64,
        guard: usize,
        slot: NonNull<()>,
    ) -> Result<()>;
    /// Removes the offers of wait `(pid, epoch)`.
    fn deregister(&self, dir: Direction, pid: u32, epoch: u64);
}

impl<T: Message> GuardOps for ChanCell<T> {
    fn try_now(&self, dir: Direction, slot: NonNull<()>, s: &mut Sched) -> Result<Try<()>> {
        let slot = slot.cast::<Option<T>>();
        match dir {
            Direction::Read => Ok(match self.try_read_now(s)? {
                Try::Done(v) => {
                    // SAFETY: the guard was built by `input_guard` from a
                    // `&mut Option<T>` of this very `T` that outlives the guard,
                    // and nothing else refers to it during the select.
                    unsafe { *slot.as_ptr() = Some(v) };
                    Try::Done(())
                }
                Try::NotReady => Try::NotReady,
                Try::Failed(e) => Try::Failed(e),
            }),
            Direction::Write => {
                // SAFETY: as above, built by `output_guard` from a `&mut Option<T>`.
                let value = unsafe { &mut *slot.as_ptr() };
                self.try_write_now(value, s)
            }
        }
    }

    fn register(
        &self,
        dir: Direction,
        pid: u32,
        epoch: u64,
        guard: usize,
        slot: NonNull<()>,
    ) -> Result<()> {
        ChanCell::register(self, dir, pid, epoch, guard, slot.cast::<Option<T>>())
    }

    fn deregister(&self, dir: Direction, pid: u32, epoch: u64) {
        ChanCell::deregister(self, dir, pid, epoch)
    }
}

enum Kind<'a> {
    Chan {
        dir: Direction,
        ops: &'a (dyn GuardOps + 'static),
        slot: NonNull<()>,
    },
    Skip,
    Timeout(Duration),
}

/// One guard of an alternation on greenlets (the `Guard` type of
/// [`Greenlets`](crate::Greenlets)).
pub struct GreenGuard<'a> {
    kind: Kind<'a>,
    // The guard borrows its slot mutably for 'a.
    _slot: PhantomData<&'a mut ()>,
}

impl std::fmt::Debug for GreenGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            Kind::Chan { dir, ops, .. } => write!(f, "GreenGuard({dir:?} '{}')", ops.name()),
            Kind::Skip => f.write_str("GreenGuard(skip)"),
            Kind::Timeout(d) => write!(f, "GreenGuard(timeout {d:?})"),
        }
    }
}

impl<'a> GreenGuard<'a> {
    pub(crate) fn input<T: Message>(chan: &'a GreenChan<T>, slot: &'a mut Option<T>) -> Self {
        GreenGuard {
            kind: Kind::Chan {
                dir: Direction::Read,
                ops: chan.cell(),
                slot: NonNull::from(slot).cast(),
            },
            _slot: PhantomData,
        }
    }

    pub(crate) fn output<T: Message>(chan: &'a GreenChan<T>, value: &'a mut Option<T>) -> Self {
        GreenGuard {
            kind: Kind::Chan {
                dir: Direction::Write,
                ops: chan.cell(),
                slot: NonNull::from(value).cast(),
            },
            _slot: PhantomData,
        }
    }

    pub(crate) fn skip() -> Self {
        GreenGuard {
            kind: Kind::Skip,
            _slot: PhantomData,
        }
    }

    pub(crate) fn timeout(after: Duration) -> Self {
        GreenGuard {
            kind: Kind::Timeout(after),
            _slot: PhantomData,
        }
    }
}

/// Describes a blocked alternation's guards for a deadlock report.
///
/// # Safety
/// `ptr` and `len` must be the guard slice of an alternation that is still
/// blocked (its frame alive), as stored in `WaitKind::Alt`.
unsafe fn describe_guards(ptr: *const (), len: usize) -> String {
    // SAFETY: the caller guarantees the slice is alive; `GreenGuard`'s
    // lifetime parameter only restricts what the guards borrow, which is
    // alive as long as the frame is.
    let guards: &[GreenGuard<'_>] = unsafe { std::slice::from_raw_parts(ptr.cast(), len) };
    let parts: Vec<String> = guards
        .iter()
        .map(|g| match &g.kind {
            Kind::Chan { dir, ops, .. } => {
                let d: &(dyn Describe + 'static) = *ops;
                describe_chan(*dir, d)
            }
            Kind::Skip => "skip".to_owned(),
            Kind::Timeout(d) => format!("timeout {d:?}"),
        })
        .collect();
    format!("alt over [{}]", parts.join(", "))
}

/// Pass 1 found guard `Ok(i)` ready, or pass 2 enqueued wait
/// `Err((pid, epoch, timers))`.
type Polled = std::result::Result<usize, (u32, u64, Vec<TimerKey>)>;

/// Commits exactly one guard; see the [module docs](self).
pub(crate) fn select(guards: &mut [GreenGuard<'_>]) -> Result<usize> {
    if guards.is_empty() {
        return Err(Error::config("an alternation needs at least one guard"));
    }
    // Pass 1 (poll) and pass 2 (enqueue), under one look at the scheduler.
    let polled = with_sched(|s| -> Result<Polled> {
        for (i, g) in guards.iter().enumerate() {
            match &g.kind {
                Kind::Skip => return Ok(Ok(i)),
                Kind::Timeout(_) => {}
                Kind::Chan { dir, ops, slot } => match ops.try_now(*dir, *slot, s)? {
                    Try::Done(()) => return Ok(Ok(i)),
                    Try::Failed(e) => return Err(e),
                    Try::NotReady => {}
                },
            }
        }
        let (pid, epoch) = s.begin_wait(WaitKind::Alt(
            guards.as_ptr().cast(),
            guards.len(),
            describe_guards,
        ))?;
        let mut timers = Vec::new();
        for (i, g) in guards.iter().enumerate() {
            match &g.kind {
                Kind::Chan { dir, ops, slot } => ops.register(*dir, pid, epoch, i, *slot)?,
                Kind::Timeout(d) => timers.push(s.add_timer(*d, pid, epoch, i)),
                Kind::Skip => {}
            }
        }
        Ok(Err((pid, epoch, timers)))
    })?;
    let (pid, epoch, timers) = match polled {
        Ok(i) => {
            if with_sched(Sched::wants_preempt) {
                sched::yield_now();
            }
            return Ok(i);
        }
        Err(w) => w,
    };
    let woke = sched::block();
    // Pass 3 (dequeue).
    with_sched(|s| {
        for key in timers {
            s.cancel_timer(key);
        }
    });
    for g in guards.iter() {
        if let Kind::Chan { dir, ops, .. } = &g.kind {
            ops.deregister(*dir, pid, epoch);
        }
    }
    woke
}
