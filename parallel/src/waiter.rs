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
//! [`Waiter::wait_until`] spins for a few microseconds (crossbeam's `Backoff`:
//! exponentially longer `spin_loop` runs, then a few `yield_now`s), then parks.
//! The party that changes the word records the waiter and unparks it *after*
//! releasing the channel's lock ([`Wakes`](crate::party::Wakes)); an unpark
//! of a thread that is still spinning costs one atomic swap and leaves a token
//! that a later `park` consumes (every park is in a loop that re-reads the word).

use std::hint;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// Spin steps (each `2^step` `spin_loop` hints) before yielding.
const SPIN_LIMIT: u32 = 6;
/// Steps after which the waiter parks (steps past `SPIN_LIMIT` yield).
const YIELD_LIMIT: u32 = 8;

/// One blocked thread's wait: see the [module docs](self).
#[derive(Debug)]
pub(crate) struct Waiter {
    /// The state word.
    state: AtomicUsize,
    /// The owning thread, to unpark.
    thread: Thread,
}

thread_local! {
    /// This thread's waiter, made at its first blocking operation.
    static WAITER: Arc<Waiter> = Arc::new(Waiter {
        state: AtomicUsize::new(0),
        thread: thread::current(),
    });
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
        let w = WAITER.with(Arc::clone);
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
        self.thread.unpark();
    }

    /// True if `self` is the waiter `other` points to.
    #[inline]
    pub(crate) fn is(&self, other: &Arc<Waiter>) -> bool {
        std::ptr::eq(self, Arc::as_ptr(other))
    }

    /// Blocks the owning thread until the word leaves `Waiting`, or until
    /// `deadline` passes (then returns `Waiting`: the caller decides what a
    /// timeout means, usually by `try_select`ing its timeout guard).
    pub(crate) fn wait_until(&self, deadline: Option<Instant>) -> Selected {
        // Spin first: a partner on another core usually answers within a
        // microsecond or two, far less than a park/unpark round trip.
        let mut step = 0u32;
        while step <= YIELD_LIMIT {
            let s = self.selected();
            if s != Selected::Waiting {
                return s;
            }
            if step <= SPIN_LIMIT {
                for _ in 0..1u32 << step {
                    hint::spin_loop();
                }
            } else {
                thread::yield_now();
            }
            step += 1;
        }
        loop {
            let s = self.selected();
            if s != Selected::Waiting {
                return s;
            }
            match deadline {
                None => thread::park(),
                Some(end) => {
                    let now = Instant::now();
                    if now >= end {
                        return Selected::Waiting;
                    }
                    thread::park_timeout(end - now);
                }
            }
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
            thread::sleep(std::time::Duration::from_millis(5));
            remote.finish(Selected::Chosen(0));
            remote.unpark();
        });
        assert_eq!(w.wait_until(None), Selected::Chosen(0));
        t.join().expect("the waking thread ends");
    }
}
