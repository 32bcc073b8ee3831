//! The in-memory party of a channel home: a blocked thread of this OS process.
//!
//! A [`LocalParty`] is what a thread leaves queued at a
//! [`ChannelHome`](csp_netproto::home::ChannelHome) when it blocks: its
//! [`Waiter`], the index of the guard the offer belongs to (0 for a plain
//! read or write), whether the offer must be claimed (an Alt guard), and a
//! pointer to its *slot*, an `Option<T>` in the blocked owner's stack frame.
//! The home reports what happened to the offer through [`Wakes`], its
//! [`Parties`] implementation, which writes the slot and the waiter's state
//! word while the caller holds the channel's lock, and keeps the waiters to
//! unpark once the lock is released ([`Wakes::wake_all`]).
//!
//! # The slot
//!
//! - For a reader the slot is where a message read is left; for a writer it
//!   is where its message comes back if the write fails or the claim of its
//!   offer is lost (the message itself travels inside the home while the
//!   offer is queued).
//! - The slot is written only by [`Wakes`] (under the lock of the channel the
//!   offer is queued at, while the offer is still queued there or being taken
//!   out of it), and its owner reads it only after its wait has ended *and*
//!   it can no longer be written:
//!   - a plain offer is consumed by exactly one `complete`, which writes the
//!     slot and then publishes the outcome with a `Release` store of the
//!     state word; the owner reads the word with `Acquire` before the slot;
//!   - an Alt's offers are withdrawn by their owner, channel by channel, each
//!     under its channel's lock, before it looks at any slot; withdrawing
//!     also synchronizes with every earlier writer of that slot, which held
//!     the same lock.
//! - So the frame holding the slot outlives every write to it: the owner does
//!   not leave the frame before both of these have happened.

use std::ptr::NonNull;
use std::sync::Arc;

use csp_netproto::home::{Claim, Offer, Outcome, Parties};

use crate::waiter::{Selected, Waiter};

/// A blocked thread's offer at one channel: see the [module docs](self).
pub(crate) struct LocalParty<T> {
    /// The owner's waiter.
    pub(crate) waiter: Arc<Waiter>,
    /// The guard this offer stands for (0 for a plain read or write).
    pub(crate) guard: usize,
    /// True for an Alt guard: the offer is claimed before it is completed,
    /// and a failure must win the state word to count.
    pub(crate) alt: bool,
    /// The owner's slot (see the module docs).
    pub(crate) slot: NonNull<Option<T>>,
}

// SAFETY: a `LocalParty` is moved between threads only inside a channel home,
// which is behind a mutex. Its `slot` is dereferenced only by `Wakes`, under
// that mutex, while the owner cannot look at the slot and its frame is alive
// (module docs: the owner leaves the frame only after its offer was consumed
// or withdrawn under the same lock). The value written there is a `T: Send`
// that was sent to the owner's thread, as a channel does. Moving or dropping
// a `LocalParty` never dereferences the pointer.
unsafe impl<T: Send> Send for LocalParty<T> {}

impl<T> LocalParty<T> {
    /// The offer of `waiter`'s guard `guard` with slot `slot`: an Alt guard
    /// (`alt`) needs a claim, a plain read or write does not.
    pub(crate) fn offer(
        waiter: &Arc<Waiter>,
        guard: usize,
        alt: bool,
        slot: NonNull<Option<T>>,
    ) -> Offer<LocalParty<T>> {
        Offer {
            party: LocalParty {
                waiter: Arc::clone(waiter),
                guard,
                alt,
                slot,
            },
            needs_claim: alt,
        }
    }
}

impl<T> std::fmt::Debug for LocalParty<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalParty")
            .field("guard", &self.guard)
            .field("alt", &self.alt)
            .finish_non_exhaustive()
    }
}

impl<T> LocalParty<T> {
    /// Leaves `value` in the owner's slot.
    ///
    /// # Safety
    /// The caller holds the lock of the channel this party is (or was just)
    /// queued at, and the party was queued there by its owner, whose wait is
    /// not over (see the module docs).
    unsafe fn put(&self, value: T) {
        // SAFETY: by the caller's promise the owner's frame is alive and the
        // owner does not touch the slot until it has synchronized with us
        // (through the state word or the channel lock), so this is the only
        // access. The slot is empty: a reader's slot starts empty and is
        // filled once (the offer is consumed by that fill), and a writer's
        // slot was emptied when its message moved into the home.
        unsafe {
            let slot = &mut *self.slot.as_ptr();
            debug_assert!(slot.is_none(), "a party's slot was filled twice");
            *slot = Some(value);
        }
    }
}

/// The [`Parties`] of an in-memory home: records the waiters to wake.
#[derive(Debug, Default)]
pub(crate) struct Wakes {
    /// The first waiter to wake (the usual case: one, with no allocation).
    first: Option<Arc<Waiter>>,
    /// More waiters (a poison or retire of a busy channel).
    rest: Vec<Arc<Waiter>>,
}

impl Wakes {
    /// No waiters to wake yet.
    #[inline]
    pub(crate) fn new() -> Self {
        Wakes {
            first: None,
            rest: Vec::new(),
        }
    }

    #[inline]
    fn push(&mut self, w: Arc<Waiter>) {
        if self.first.is_none() {
            self.first = Some(w);
        } else {
            self.rest.push(w);
        }
    }

    /// Unparks every recorded waiter. Call after releasing the channel lock.
    #[inline]
    pub(crate) fn wake_all(self) {
        if let Some(w) = self.first {
            w.unpark();
        }
        for w in self.rest {
            w.unpark();
        }
    }
}

impl Wakes {
    /// Records that `party`'s offer committed here.
    #[inline]
    fn chosen<T>(party: &LocalParty<T>) {
        let chosen = Selected::Chosen(party.guard);
        if party.alt {
            // The home claimed the offer before completing it, so the word
            // already says so; the compare-and-swap only makes sure of it.
            let r = party.waiter.try_select(chosen);
            debug_assert!(
                r.is_ok() || r == Err(chosen),
                "an Alt offer completed without its claim: {r:?}"
            );
        } else {
            party.waiter.finish(chosen);
        }
    }
}

impl<T> Parties<LocalParty<T>, T> for Wakes {
    #[inline]
    fn claim(&mut self, party: &LocalParty<T>) -> Claim {
        match party.waiter.try_select(Selected::Chosen(party.guard)) {
            Ok(()) => Claim::Won,
            Err(_) => Claim::Lost,
        }
    }

    fn release(&mut self, _party: &LocalParty<T>) {
        // A home releases a claim only when a match needs two claims (two
        // remote Alt offers). In memory every match has a running party on
        // one side, so at most one claim is made and it is never undone;
        // reverting the word here could confuse an owner that already saw it.
        debug_assert!(false, "an in-memory claim was released");
    }

    #[inline]
    fn complete(&mut self, party: LocalParty<T>, outcome: Outcome<T>) {
        match outcome {
            Outcome::Read(v) => {
                // SAFETY: called by the home under its channel's lock, with a
                // party its owner queued there and that is being consumed now.
                unsafe { party.put(v) };
                // An Alt offer's owner reads the slot only after taking this
                // channel's lock to withdraw.
                Self::chosen(&party);
                self.push(party.waiter);
            }
            Outcome::Written => {
                Self::chosen(&party);
                self.push(party.waiter);
            }
            Outcome::Failed(f, value) => {
                if let Some(v) = value {
                    // SAFETY: as above; a failing writer gets its message back.
                    unsafe { party.put(v) };
                }
                if party.alt {
                    // The failure counts only if nothing committed before it.
                    if party
                        .waiter
                        .try_select(Selected::Failed(f, party.guard))
                        .is_ok()
                    {
                        self.push(party.waiter);
                    }
                } else {
                    party.waiter.finish(Selected::Failed(f, party.guard));
                    self.push(party.waiter);
                }
            }
        }
    }

    #[inline]
    fn give_back(&mut self, party: LocalParty<T>, value: T) {
        // SAFETY: called under the channel's lock for a writer offer that was
        // still queued there; its owner will withdraw from this channel (under
        // this lock) before looking at the slot.
        unsafe { party.put(value) };
    }
}

#[cfg(test)]
mod tests {
    //! Deterministic checks of the slot writes: each test builds the exact
    //! situation (a queued offer whose owner was chosen elsewhere, a poison
    //! while a writer waits, ...) on a bare home, on one thread.
    use std::ptr::NonNull;
    use std::sync::Arc;

    use csp_netproto::home::{ChannelHome, Failure, Offer, Side, TryRead, TryWrite};

    use super::{LocalParty, Wakes};
    use crate::waiter::{Selected, Waiter};

    fn home(capacity: usize) -> ChannelHome<LocalParty<String>, String> {
        let mut h = ChannelHome::new(capacity);
        h.join(Side::Read);
        h.join(Side::Write);
        h
    }

    fn party(
        w: &Arc<Waiter>,
        guard: usize,
        alt: bool,
        slot: &mut Option<String>,
    ) -> Offer<LocalParty<String>> {
        LocalParty::offer(w, guard, alt, NonNull::from(slot))
    }

    #[test]
    fn a_waiting_reader_gets_the_message_in_its_slot() {
        let w = Waiter::current();
        let mut slot = None;
        let mut h = home(0);
        h.wait_read(party(&w, 0, false, &mut slot));
        let mut wakes = Wakes::new();
        assert_eq!(h.try_write("hi".into(), &mut wakes), TryWrite::Done);
        wakes.wake_all();
        assert_eq!(w.selected(), Selected::Chosen(0));
        assert_eq!(slot.as_deref(), Some("hi"));
    }

    #[test]
    fn a_claimed_alt_reader_gets_the_message_and_keeps_its_guard() {
        let w = Waiter::current();
        let mut slot = None;
        let mut h = home(0);
        h.wait_read(party(&w, 3, true, &mut slot));
        let mut wakes = Wakes::new();
        assert_eq!(h.try_write("x".into(), &mut wakes), TryWrite::Done);
        assert_eq!(w.selected(), Selected::Chosen(3));
        assert_eq!(slot.as_deref(), Some("x"));
    }

    #[test]
    fn a_lost_claim_gives_the_writers_message_back() {
        let w = Waiter::current();
        let mut slot = None;
        let mut h = home(0);
        h.wait_write(party(&w, 1, true, &mut slot), "mine".into());
        // The owner committed elsewhere (or gave up) before this read came.
        assert_eq!(w.try_select(Selected::Chosen(0)), Ok(()));
        let mut wakes = Wakes::new();
        assert_eq!(h.try_read(&mut wakes), TryRead::NotReady);
        assert_eq!(slot.as_deref(), Some("mine"), "give_back filled the slot");
        assert_eq!(h.waiting(Side::Write), 0, "the stale offer was dropped");
        assert_eq!(w.selected(), Selected::Chosen(0), "the word is untouched");
    }

    #[test]
    fn poison_returns_a_waiting_writers_message() {
        for alt in [false, true] {
            let w = Waiter::current();
            let mut slot = None;
            let mut h = home(0);
            h.wait_write(party(&w, 2, alt, &mut slot), "back".into());
            let mut wakes = Wakes::new();
            h.poison(Side::Read, &mut wakes);
            assert_eq!(w.selected(), Selected::Failed(Failure::Poisoned, 2));
            assert_eq!(slot.as_deref(), Some("back"));
        }
    }

    #[test]
    fn a_failure_after_an_alt_commit_only_returns_the_message() {
        let w = Waiter::current();
        let mut slot = None;
        let mut h = home(0);
        h.wait_write(party(&w, 1, true, &mut slot), "kept".into());
        assert_eq!(w.try_select(Selected::Chosen(0)), Ok(()));
        let mut wakes = Wakes::new();
        h.retire(Side::Read, &mut wakes);
        assert_eq!(w.selected(), Selected::Chosen(0), "the commit stands");
        assert_eq!(slot.as_deref(), Some("kept"));
    }

    #[test]
    fn withdraw_returns_a_queued_message_and_leaves_others() {
        let w = Waiter::current();
        let (mut s1, mut s2) = (None, None);
        let mut h = home(0);
        h.wait_write(party(&w, 0, true, &mut s1), "zero".into());
        h.wait_write(party(&w, 1, true, &mut s2), "one".into());
        let back = h.withdraw(Side::Write, |p| p.waiter.is(&w) && p.guard == 1);
        assert_eq!(back.as_deref(), Some("one"));
        assert_eq!(h.waiting(Side::Write), 1);
        let back = h.withdraw(Side::Write, |p| p.waiter.is(&w) && p.guard == 0);
        assert_eq!(back.as_deref(), Some("zero"));
        assert_eq!((s1, s2), (None, None), "withdraw itself writes no slot");
    }
}
