//! Alternation on the parallel backend: commit exactly one guard.
//!
//! Three named passes, as in crossbeam-channel's `run_select` and Go's
//! `selectgo`:
//!
//! 1. **poll**: try each guard in priority order with the home's `try_read`
//!    / `try_write`; a skip guard is ready at once. The first guard that can
//!    complete now (or whose channel has failed) decides the select.
//! 2. **enroll**: queue an offer for every channel guard, all naming this
//!    thread's [`Waiter`] and claimed before they commit (`needs_claim`).
//!    The guards of one channel are enrolled together under one lock, after
//!    asking the home whether a running party would find something there
//!    ([`ChannelHome::ready`](csp_netproto::home::ChannelHome::ready)): if
//!    so, the select aborts its own wait (one compare-and-swap: if that fails,
//!    a guard was already chosen, which is kept) and goes back to pass 1.
//!    Otherwise it waits until a partner claims one of its offers (the word
//!    becomes `Chosen(guard)`), a guard's channel fails (`Failed`), or the
//!    earliest timeout guard's deadline passes (the select then claims that
//!    guard for itself, if nothing else did first).
//! 3. **withdraw**: remove every offer from every channel, each under its
//!    lock, putting the messages of output guards that did not commit back
//!    into their `Option`s. Only then does the select look at any slot.
//!
//! Checking readiness before enrolling on a channel, under the same lock,
//! loses no wake-up: a partner that came earlier is seen by `ready`, one that
//! comes later finds our offer. Enrolling all the guards of one channel under
//! one lock keeps a select from seeing its own offers as a ready partner (an
//! input and an output guard on the same channel), so it cannot spin on
//! itself; and two offers of one select never match each other, because a
//! home matches a queued offer only with a running party.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::{Duration, Instant};

use csp_netproto::home::{TryRead, TryWrite};
use csp_runtime::{Direction, Error, Message, Result};

use crate::chan::{ChanInner, ParChan, error, side};
use crate::party::{LocalParty, Wakes};
use crate::waiter::{MAX_GUARDS, Selected, Waiter};

/// One channel guard to enroll: its index, direction and slot.
#[derive(Clone, Copy, Debug)]
struct Reg {
    guard: usize,
    dir: Direction,
    /// Points to the guard's `Option<T>` (see [`ParGuard`]).
    slot: NonNull<()>,
}

/// A channel guard with its channel.
type Entry<'g> = (&'g (dyn GuardOps + 'g), Reg);

/// A channel, seen by an alternation without its message type.
trait GuardOps: Sync {
    /// The channel's name (for `Debug`).
    fn name(&self) -> &str;
    /// Pass 1: tries the guard now. `Ok(true)`: done (a message read is in
    /// the slot, or the slot's message was taken); `Ok(false)`: not ready.
    ///
    /// # Safety
    /// `slot` points to a live `Option<T>` of this channel's `T` that nothing
    /// else accesses during the call.
    unsafe fn try_now(&self, dir: Direction, slot: NonNull<()>) -> Result<bool>;
    /// Pass 2: unless a running party on the side of one of `regs` would find
    /// something now, queues an Alt offer for each of them and returns true.
    ///
    /// # Safety
    /// Each slot points to an `Option<T>` of this channel's `T` that stays
    /// alive, and is not accessed by the caller, until [`withdraw`](Self::withdraw)
    /// has returned for the same `regs`.
    unsafe fn enroll(&self, waiter: &Arc<Waiter>, regs: &[Entry<'_>]) -> bool;
    /// Pass 3: removes the offers of `regs`, moving a queued message back
    /// into its slot.
    ///
    /// # Safety
    /// As for `enroll`, with the `regs` that `enroll` queued.
    unsafe fn withdraw(&self, waiter: &Arc<Waiter>, regs: &[Entry<'_>]);
}

impl<T: Message> GuardOps for ChanInner<T> {
    fn name(&self) -> &str {
        &self.name
    }

    unsafe fn try_now(&self, dir: Direction, slot: NonNull<()>) -> Result<bool> {
        // SAFETY: the caller promises a live `Option<T>` that only we access.
        let slot = unsafe { &mut *slot.cast::<Option<T>>().as_ptr() };
        let mut wakes = Wakes::new();
        let r = match dir {
            Direction::Read => {
                let got = self.lock().try_read(&mut wakes);
                match got {
                    TryRead::Done(v) => {
                        *slot = Some(v);
                        Ok(true)
                    }
                    TryRead::NotReady => Ok(false),
                    TryRead::Failed(f) => Err(error(f)),
                }
            }
            Direction::Write => {
                let Some(v) = slot.take() else {
                    return Err(Error::config(format!(
                        "an output guard on channel '{}' has no message to send \
                         (it was already sent by an earlier select)",
                        self.name
                    )));
                };
                let got = self.lock().try_write(v, &mut wakes);
                match got {
                    TryWrite::Done => Ok(true),
                    TryWrite::NotReady(v) => {
                        *slot = Some(v);
                        Ok(false)
                    }
                    TryWrite::Failed(f, v) => {
                        *slot = Some(v);
                        Err(error(f))
                    }
                }
            }
        };
        wakes.wake_all();
        r
    }

    unsafe fn enroll(&self, waiter: &Arc<Waiter>, regs: &[Entry<'_>]) -> bool {
        let mut home = self.lock();
        if regs.iter().any(|(_, r)| home.ready(side(r.dir))) {
            return false;
        }
        for (_, r) in regs {
            let slot = r.slot.cast::<Option<T>>();
            let offer = LocalParty::offer(waiter, r.guard, true, slot);
            match r.dir {
                Direction::Read => home.wait_read(offer),
                Direction::Write => {
                    // SAFETY: the caller promises a live slot; no offer names
                    // it yet, so nothing else accesses it.
                    let value = unsafe { (*slot.as_ptr()).take() };
                    // Pass 1 found a message in it (else it failed); if it
                    // were empty there would be nothing to offer.
                    if let Some(v) = value {
                        home.wait_write(offer, v);
                    }
                }
            }
        }
        true
    }

    unsafe fn withdraw(&self, waiter: &Arc<Waiter>, regs: &[Entry<'_>]) {
        let mut home = self.lock();
        for (_, r) in regs {
            let back = home.withdraw(side(r.dir), |p| p.waiter.is(waiter) && p.guard == r.guard);
            if let Some(v) = back {
                // SAFETY: the slot is alive (caller's promise). Its offer was
                // still queued, so no party wrote the slot since enrolling
                // (every write consumes the offer) and, holding the lock,
                // none can now.
                unsafe { *r.slot.cast::<Option<T>>().as_ptr() = Some(v) };
            }
        }
    }
}

enum Kind<'a> {
    Chan {
        dir: Direction,
        ops: &'a (dyn GuardOps + 'a),
        /// The channel's identity (its shared state's address).
        id: *const (),
        slot: NonNull<()>,
    },
    Skip,
    Timeout(Duration),
}

/// One guard of an alternation on the parallel backend (the `Guard` type of
/// [`Parallel`](crate::Parallel)).
///
/// A channel guard keeps a pointer to its `Option<T>` (the input guard's
/// slot, the output guard's message), borrowed mutably for `'a`; the select
/// is the only user of it while it runs.
pub struct ParGuard<'a> {
    kind: Kind<'a>,
    // The guard borrows its slot mutably for 'a.
    _slot: PhantomData<&'a mut ()>,
}

impl std::fmt::Debug for ParGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            Kind::Chan { dir, ops, .. } => write!(f, "ParGuard({dir:?} '{}')", ops.name()),
            Kind::Skip => f.write_str("ParGuard(skip)"),
            Kind::Timeout(d) => write!(f, "ParGuard(timeout {d:?})"),
        }
    }
}

impl<'a> ParGuard<'a> {
    pub(crate) fn input<T: Message>(chan: &'a ParChan<T>, slot: &'a mut Option<T>) -> Self {
        Self::chan(chan, Direction::Read, slot)
    }

    pub(crate) fn output<T: Message>(chan: &'a ParChan<T>, value: &'a mut Option<T>) -> Self {
        Self::chan(chan, Direction::Write, value)
    }

    fn chan<T: Message>(chan: &'a ParChan<T>, dir: Direction, slot: &'a mut Option<T>) -> Self {
        let inner: &'a ChanInner<T> = chan.inner();
        ParGuard {
            kind: Kind::Chan {
                dir,
                ops: inner,
                id: std::ptr::from_ref(inner).cast(),
                slot: NonNull::from(slot).cast(),
            },
            _slot: PhantomData,
        }
    }

    pub(crate) fn skip() -> Self {
        ParGuard {
            kind: Kind::Skip,
            _slot: PhantomData,
        }
    }

    pub(crate) fn timeout(after: Duration) -> Self {
        ParGuard {
            kind: Kind::Timeout(after),
            _slot: PhantomData,
        }
    }
}

/// The channel guards of a select, grouped by channel (pass 2 and 3).
struct Plan<'g> {
    /// The channel guards, those of one channel next to each other (in
    /// runs, in the order each channel first appears), each with its channel.
    regs: Vec<Entry<'g>>,
    /// The earliest timeout guard: its delay and index.
    timeout: Option<(Duration, usize)>,
}

impl<'g> Plan<'g> {
    fn new(guards: &'g [ParGuard<'_>]) -> Self {
        let mut timeout: Option<(Duration, usize)> = None;
        // (group, channel, reg) for every channel guard; a group is a
        // channel, numbered in order of first appearance.
        let mut found: Vec<(usize, *const (), &'g (dyn GuardOps + 'g), Reg)> = Vec::new();
        let mut groups: Option<HashMap<*const (), usize>> = None;
        let mut next_group = 0;
        for (i, g) in guards.iter().enumerate() {
            match &g.kind {
                Kind::Chan { dir, ops, id, slot } => {
                    // A linear search for the usual few guards, a map for many.
                    let known = if found.len() < 16 {
                        found.iter().find(|f| f.1 == *id).map(|f| f.0)
                    } else {
                        let map = groups
                            .get_or_insert_with(|| found.iter().map(|f| (f.1, f.0)).collect());
                        map.get(id).copied()
                    };
                    let group = known.unwrap_or_else(|| {
                        next_group += 1;
                        next_group - 1
                    });
                    if let Some(map) = groups.as_mut() {
                        map.insert(*id, group);
                    }
                    let reg = Reg {
                        guard: i,
                        dir: *dir,
                        slot: *slot,
                    };
                    found.push((group, *id, *ops, reg));
                }
                Kind::Timeout(d) => {
                    if timeout.is_none_or(|(t, _)| *d < t) {
                        timeout = Some((*d, i));
                    }
                }
                Kind::Skip => {}
            }
        }
        // Stable: a channel's guards stay in guard order.
        found.sort_by_key(|f| f.0);
        Plan {
            regs: found
                .into_iter()
                .map(|(_, _, ops, reg)| (ops, reg))
                .collect(),
            timeout,
        }
    }

    /// The run of `regs` that starts at `from` and shares its channel: the
    /// channel and the run.
    fn run_at(&self, from: usize) -> Option<(&'g (dyn GuardOps + 'g), &[Entry<'g>])> {
        let (ops, _) = *self.regs.get(from)?;
        let rest = &self.regs[from..];
        let len = rest
            .iter()
            .take_while(|(o, _)| std::ptr::addr_eq(*o, ops))
            .count();
        Some((ops, &rest[..len]))
    }
}

/// The offers of pass 2; withdrawn (pass 3) when dropped, so that no offer
/// outlives the select, even if it unwinds.
struct Enrolled<'p, 'g> {
    plan: &'p Plan<'g>,
    waiter: &'p Arc<Waiter>,
    /// How many of `plan.regs` (whole runs) hold our offers.
    enrolled: usize,
}

impl Drop for Enrolled<'_, '_> {
    fn drop(&mut self) {
        let mut at = 0;
        while at < self.enrolled {
            let Some((ops, run)) = self.plan.run_at(at) else {
                break;
            };
            // SAFETY: these are exactly the regs `enroll` queued; their slots
            // are the guards' `Option`s, alive for the whole select.
            unsafe { ops.withdraw(self.waiter, run) };
            at += run.len();
        }
    }
}

/// Pass 1: the first guard that can complete now, if any.
fn poll(guards: &[ParGuard<'_>]) -> Result<Option<usize>> {
    for (i, g) in guards.iter().enumerate() {
        match &g.kind {
            Kind::Skip => return Ok(Some(i)),
            Kind::Timeout(_) => {}
            Kind::Chan { dir, ops, slot, .. } => {
                // SAFETY: the slot is the guard's `&'a mut Option<T>` for the
                // channel's `T`; no offer of ours is queued during pass 1, so
                // nothing else accesses it.
                if unsafe { ops.try_now(*dir, *slot)? } {
                    return Ok(Some(i));
                }
            }
        }
    }
    Ok(None)
}

/// Commits exactly one guard; see the [module docs](self).
pub(crate) fn select(guards: &mut [ParGuard<'_>]) -> Result<usize> {
    if guards.is_empty() {
        return Err(Error::config("an alternation needs at least one guard"));
    }
    if guards.len() > MAX_GUARDS {
        return Err(Error::config(format!(
            "an alternation has {} guards; at most {MAX_GUARDS} fit",
            guards.len()
        )));
    }
    if let Some(i) = poll(guards)? {
        return Ok(i);
    }
    let guards: &[ParGuard<'_>] = guards;
    let plan = Plan::new(guards);
    // The timeout counts from the first time the select waits.
    let deadline = plan
        .timeout
        .map(|(d, i)| (Instant::now().checked_add(d), i));
    loop {
        let waiter = Waiter::current();
        let mut enrolled = Enrolled {
            plan: &plan,
            waiter: &waiter,
            enrolled: 0,
        };
        let mut ready = false;
        while let Some((ops, run)) = plan.run_at(enrolled.enrolled) {
            // SAFETY: the slots are the guards' `Option`s, alive for the
            // whole select; `Enrolled` withdraws every enrolled reg before
            // the select looks at a slot or returns.
            if unsafe { ops.enroll(&waiter, run) } {
                enrolled.enrolled += run.len();
            } else {
                ready = true;
                break;
            }
        }
        let selected = if ready {
            match waiter.try_select(Selected::Aborted) {
                Ok(()) => Selected::Aborted,
                Err(s) => s,
            }
        } else {
            wait(&waiter, deadline)
        };
        // Pass 3.
        drop(enrolled);
        match selected {
            Selected::Chosen(i) => return Ok(i),
            Selected::Failed(f, _) => return Err(error(f)),
            Selected::Aborted => {
                if let Some(i) = poll(guards)? {
                    return Ok(i);
                }
            }
            Selected::Waiting => {
                return Err(Error::config(
                    "a select stopped waiting without an outcome \
                     (a bug in csp-parallel: please report it)",
                ));
            }
        }
    }
}

/// Blocks until a guard is chosen or failed, or the timeout guard wins.
fn wait(waiter: &Waiter, deadline: Option<(Option<Instant>, usize)>) -> Selected {
    match deadline {
        // No timeout guard, or one too far away to represent: wait for a
        // channel guard (forever, if there is none: that is what was asked).
        None | Some((None, _)) => waiter.wait_until(None),
        Some((Some(end), guard)) => loop {
            let s = waiter.wait_until(Some(end));
            if s != Selected::Waiting {
                return s;
            }
            if Instant::now() >= end {
                return match waiter.try_select(Selected::Chosen(guard)) {
                    Ok(()) => Selected::Chosen(guard),
                    Err(s) => s,
                };
            }
        },
    }
}
