//! The waiter: how a blocked thread is chosen, told how its wait ended, and woken.
//!
//! Every thread that blocks on a channel (a plain read or write, or an
//! alternation) has one [`Waiter`], kept in a thread-local and reused: an
//! atomic *state word* and the thread's handle to unpark it. The design is
//! crossbeam-channel's `Context` (`context.rs`): the word starts at
//! [`Selected::Waiting`], and exactly one party moves it away from there,
//! with one compare-and-swap ([`Waiter::try_select`]) for an alternation's
//! offers (which could commit on several channels) or one store
//! ([`Waiter::finish`]) for a plain read or write (which waits on one
//! channel only, so nobody races for it).
//!
//! # The state word
//!
//! `guard << TAG_BITS | tag`, where `tag` is
//!
//! | tag | meaning |
//! | --- | --- |
//! | 0 | [`Selected::Waiting`] (the whole word is 0) |
//! | 1 | [`Selected::Chosen`]: guard `guard` committed |
//! | 2 | [`Selected::Failed`] with `Poisoned`: guard `guard`'s channel failed before any commit |
//! | 3 | [`Selected::Failed`] with `Retired` |
//! | 4 | [`Selected::Aborted`]: the owner gave up its wait (to retry, or on a timeout) |
//!
//! # Blocking
//!
//! [`Waiter::wait_until`] spins for a few microseconds (exponentially longer
//! runs of `spin_loop` hints, as crossbeam's `Backoff`), then parks. The party
//! that changes the word records the waiter and unparks it *after* releasing
//! the channel's lock ([`Wakes`](crate::party::Wakes)); an unpark of a thread
//! that is still spinning costs one atomic swap and leaves a token that a
//! later `park` consumes (every park is in a loop that re-reads the word).
//!
//! Spinning pays only while the partner has a CPU of its own. The waiters
//! keep a count of the threads that are not parked ([`ACTIVE`]; a waker
//! counts the thread it wakes at once), and a waiter spins only while that
//! count is at most the number of CPUs. With more runnable threads than
//! CPUs (three busy processes on two cores, say) waiters park at once, so
//! the thread that has work gets the CPU. Measured on a two-core machine:
//! two threads in a rendezvous ping-pong take ~0.3-0.5 µs a round trip
//! (a park/unpark round trip there costs ~30 µs), and the conformance case
//! `select_fair_processes` (a selector and two senders) stays fair.

use std::cell::Cell;
use std::hint;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, Thread};
use std::time::Instant;

use csp_netproto::home::Failure;

const TAG_BITS: u32 = 3;
const TAG_MASK: usize = (1 << TAG_BITS) - 1;
const TAG_CHOSEN: usize = 1;
const TAG_POISONED: usize = 2;
const TAG_RETIRED: usize = 3;
const TAG_ABORTED: usize = 4;

/// How a wait ended (or that it has not yet).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Selected {
    /// Nothing happened yet.
    Waiting,
    /// This guard committed (0 for a plain read or write).
    Chosen(usize),
    /// This guard's channel failed before any guard committed.
    Failed(Failure, usize),
    /// The owner gave up the wait.
    Aborted,
}

impl Selected {
    fn encode(self) -> usize {
        match self {
            Selected::Waiting => 0,
            Selected::Chosen(g) => (g << TAG_BITS) | TAG_CHOSEN,
            Selected::Failed(Failure::Poisoned, g) => (g << TAG_BITS) | TAG_POISONED,
            Selected::Failed(Failure::Retired, g) => (g << TAG_BITS) | TAG_RETIRED,
            Selected::Aborted => TAG_ABORTED,
        }
    }

    fn decode(word: usize) -> Self {
        let g = word >> TAG_BITS;
        match word & TAG_MASK {
            TAG_CHOSEN => Selected::Chosen(g),
            TAG_POISONED => Selected::Failed(Failure::Poisoned, g),
            TAG_RETIRED => Selected::Failed(Failure::Retired, g),
            TAG_ABORTED => Selected::Aborted,
            _ => Selected::Waiting,
        }
    }
}

/// The most guards an alternation may have: the guard index must fit in the
/// state word next to the tag.
pub(crate) const MAX_GUARDS: usize = usize::MAX >> TAG_BITS;

/// Spin steps: step `k` runs `2^k` `spin_loop` hints, so a waiter spins
/// about 2^(SPIN_LIMIT+1) hints (a few microseconds) before it parks.
const SPIN_LIMIT: u32 = 9;

/// How many threads that use channels are not parked (the main thread and
/// processes, running or runnable). Waiters spin only while this is at most
/// the number of CPUs: when more threads want to run than there are CPUs, a
/// spinning waiter would only keep a runnable thread (often the very partner
/// it waits for) off a CPU. Kept exactly by the swap of [`Waiter::parked`];
/// read with `Relaxed` because it is only a hint.
static ACTIVE: AtomicIsize = AtomicIsize::new(0);

/// The number of CPUs this OS process may use (at least 1).
fn cpus() -> isize {
    static CPUS: OnceLock<isize> = OnceLock::new();
    *CPUS.get_or_init(|| {
        thread::available_parallelism()
            .map_or(1, |n| isize::try_from(n.get()).unwrap_or(isize::MAX))
    })
}

/// True if a waiter may spin now (see [`ACTIVE`]).
#[inline]
fn may_spin() -> bool {
    ACTIVE.load(Ordering::Relaxed) <= cpus()
}

/// One blocked thread's wait: see the [module docs](self).
#[derive(Debug)]
pub(crate) struct Waiter {
    /// The state word.
    state: AtomicUsize,
    /// The owning thread, to unpark.
    thread: Thread,
    /// True while the owner is (about to be) parked and not counted in
    /// [`ACTIVE`]. Whoever swaps it back to false counts the owner again:
    /// the waker, at once (so that spinners see a thread that needs a CPU),
    /// or the owner itself after a timeout or a spurious wake-up.
    parked: AtomicBool,
}

/// A thread's waiter, and its place in [`ACTIVE`] while the thread lives.
struct Local {
    waiter: Arc<Waiter>,
}

impl Local {
    fn new() -> Self {
        // A process thread was counted by its parent before it started.
        if !PRECOUNTED.replace(false) {
            ACTIVE.fetch_add(1, Ordering::Relaxed);
        }
        Local {
            waiter: Arc::new(Waiter {
                state: AtomicUsize::new(0),
                thread: thread::current(),
                parked: AtomicBool::new(false),
            }),
        }
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        // The thread ends; it is not parked (it is running this).
        ACTIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

thread_local! {
    /// This thread's waiter, made at its first blocking operation (or when
    /// its process starts).
    static LOCAL: Local = Local::new();
    /// Set while a process thread adopts the count its parent made for it.
    static PRECOUNTED: Cell<bool> = const { Cell::new(false) };
}

/// Counts a process thread about to be started as active, so that waiters
/// stop spinning for its sake before it first runs (a new thread waits for a
/// CPU like a woken one). Undo with [`thread_not_started`] if the start fails;
/// the new thread calls [`thread_started`].
pub(crate) fn thread_starting() {
    ACTIVE.fetch_add(1, Ordering::Relaxed);
}

/// Undoes [`thread_starting`] for a thread the OS refused.
pub(crate) fn thread_not_started() {
    ACTIVE.fetch_sub(1, Ordering::Relaxed);
}

/// In a new process thread: takes over the count [`thread_starting`] made
/// (the count ends when the thread does).
pub(crate) fn thread_started() {
    PRECOUNTED.set(true);
    let _ = LOCAL.try_with(|_| ());
    PRECOUNTED.set(false);
}

/// Runs `f`, a call that blocks the thread outside a channel (joining a
/// thread, sleeping), with the thread not counted as active meanwhile.
pub(crate) fn blocking<R>(f: impl FnOnce() -> R) -> R {
    struct Back;
    impl Drop for Back {
        fn drop(&mut self) {
            ACTIVE.fetch_add(1, Ordering::Relaxed);
        }
    }
    // Touch the thread-local first, so that the thread is counted (once) and
    // the decrement below has something to undo.
    let counted = LOCAL.try_with(|_| ()).is_ok();
    if !counted {
        return f();
    }
    ACTIVE.fetch_sub(1, Ordering::Relaxed);
    let _back = Back;
    f()
}

impl Waiter {
    /// This thread's waiter, reset to [`Selected::Waiting`].
    ///
    /// Resetting is sound because a waiter is reused only once its previous
    /// wait is over: every offer that named it was consumed by the channel
    /// (completed or given back) or withdrawn by its owner, each under that
    /// channel's lock, before the previous operation returned. Late
    /// `unpark`s from that wait only leave a park token behind.
    pub(crate) fn current() -> Arc<Waiter> {
        let w = LOCAL.with(|l| Arc::clone(&l.waiter));
        w.state.store(0, Ordering::Relaxed);
        w
    }

    /// Moves the word from `Waiting` to `s` (the one commit of an
    /// alternation); on failure returns what the word holds.
    #[inline]
    pub(crate) fn try_select(&self, s: Selected) -> Result<(), Selected> {
        self.state
            .compare_exchange(0, s.encode(), Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
            .map_err(Selected::decode)
    }

    /// Ends a plain (unclaimed) wait with `s`. Everything written to the
    /// waiter's slot before this call is visible to the owner once it sees `s`.
    #[inline]
    pub(crate) fn finish(&self, s: Selected) {
        debug_assert_eq!(
            self.selected(),
            Selected::Waiting,
            "a plain wait finished twice"
        );
        self.state.store(s.encode(), Ordering::Release);
    }

    /// What the word holds now.
    #[inline]
    pub(crate) fn selected(&self) -> Selected {
        Selected::decode(self.state.load(Ordering::Acquire))
    }

    /// Wakes the owner (after the channel lock was released).
    #[inline]
    pub(crate) fn unpark(&self) {
        if self.parked.swap(false, Ordering::AcqRel) {
            ACTIVE.fetch_add(1, Ordering::Relaxed);
        }
        self.thread.unpark();
    }

    /// True if `self` is the waiter `other` points to.
    #[inline]
    pub(crate) fn is(&self, other: &Arc<Waiter>) -> bool {
        std::ptr::eq(self, Arc::as_ptr(other))
    }

    /// The owner counts itself active again, unless a waker already did.
    #[inline]
    fn unparked(&self) {
        if self.parked.swap(false, Ordering::AcqRel) {
            ACTIVE.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Blocks the owning thread until the word leaves `Waiting`, or until
    /// `deadline` passes (then returns `Waiting`: the caller decides what a
    /// timeout means, usually by `try_select`ing its timeout guard).
    pub(crate) fn wait_until(&self, deadline: Option<Instant>) -> Selected {
        // Spin first: a partner on another CPU usually answers within a
        // microsecond, far less than a park/unpark round trip, but only
        // while no other thread needs this CPU.
        for step in 0..=SPIN_LIMIT {
            let s = self.selected();
            if s != Selected::Waiting {
                return s;
            }
            if !may_spin() {
                break;
            }
            for _ in 0..1u32 << step {
                hint::spin_loop();
            }
        }
        loop {
            let s = self.selected();
            if s != Selected::Waiting {
                return s;
            }
            // Leave the count, then look again: a waker that changed the
            // word before seeing `parked` still unparks (its token makes
            // `park` return at once), so no wake-up is lost either way.
            self.parked.store(true, Ordering::SeqCst);
            ACTIVE.fetch_sub(1, Ordering::Relaxed);
            let s = self.selected();
            if s != Selected::Waiting {
                self.unparked();
                return s;
            }
            match deadline {
                None => thread::park(),
                Some(end) => {
                    let now = Instant::now();
                    if now >= end {
                        self.unparked();
                        return Selected::Waiting;
                    }
                    thread::park_timeout(end - now);
                }
            }
            self.unparked();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        for s in [
            Selected::Waiting,
            Selected::Chosen(0),
            Selected::Chosen(12345),
            Selected::Failed(Failure::Poisoned, 3),
            Selected::Failed(Failure::Retired, 0),
            Selected::Failed(Failure::Retired, MAX_GUARDS),
            Selected::Aborted,
        ] {
            assert_eq!(Selected::decode(s.encode()), s);
        }
    }

    #[test]
    fn only_one_select_wins() {
        let w = Waiter::current();
        assert_eq!(w.try_select(Selected::Chosen(2)), Ok(()));
        assert_eq!(
            w.try_select(Selected::Aborted),
            Err(Selected::Chosen(2)),
            "a second select must lose"
        );
        assert_eq!(w.wait_until(None), Selected::Chosen(2));
        let w = Waiter::current();
        assert_eq!(w.selected(), Selected::Waiting);
    }

    #[test]
    fn wait_times_out() {
        let w = Waiter::current();
        let end = Instant::now() + std::time::Duration::from_millis(2);
        assert_eq!(w.wait_until(Some(end)), Selected::Waiting);
        assert!(Instant::now() >= end);
    }

    #[test]
    fn wakes_across_threads() {
        let w = Waiter::current();
        let remote = Arc::clone(&w);
        let t = thread::spawn(move || {
            // Not for correctness (the test passes whenever the word is set):
            // waiting a little lets the owner get past its spin and park, so
            // that the park/unpark path runs.
            thread::sleep(std::time::Duration::from_millis(5));
            remote.finish(Selected::Chosen(0));
            remote.unpark();
        });
        assert_eq!(w.wait_until(None), Selected::Chosen(0));
        t.join().expect("the waking thread ends");
    }
}
