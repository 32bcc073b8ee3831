//! Channels of the parallel backend: a [`ChannelHome`] behind one mutex.
//!
//! The channel rules (FIFO matching, the buffer, reader and writer counts,
//! poison, retire and drain) live once, in `csp_netproto::home`; this module
//! only drives the home in memory: it locks the channel's mutex, asks the home
//! to try the operation, queues a [`LocalParty`] if it must wait, unlocks,
//! wakes whoever the home completed, and blocks on its [`Waiter`].
//!
//! An operation that does not wait takes the channel's mutex once and no other
//! lock. One that waits takes it once to queue and is woken by the party that
//! completes it (it never takes the lock again).

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use csp_netproto::home::{ChannelHome, Failure, Side, TryRead, TryWrite};
use csp_runtime::{ChanOps, ChannelSpec, Direction, Error, Message, Result};

use crate::party::{LocalParty, Wakes};
use crate::waiter::{Selected, Waiter};

/// The home of a channel whose parties are threads of this OS process.
pub(crate) type Home<T> = ChannelHome<LocalParty<T>, T>;

/// The shared part of a channel.
pub(crate) struct ChanInner<T> {
    /// The channel's name.
    pub(crate) name: Box<str>,
    /// 0 for rendezvous, else the buffer's capacity.
    pub(crate) capacity: usize,
    /// The rules and queues.
    home: Mutex<Home<T>>,
}

impl<T> ChanInner<T> {
    /// Locks the home. A panic while the lock was held (in a message's `Drop`,
    /// say) leaves the home consistent: every home method finishes its
    /// bookkeeping before it calls out, so the poison flag is ignored.
    #[inline]
    pub(crate) fn lock(&self) -> MutexGuard<'_, Home<T>> {
        self.home.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A channel of the parallel backend: the `Chan` type of
/// [`Parallel`](crate::Parallel). Cloning shares the channel.
///
/// Programs use it through `csp::Channel`; see `csp_runtime::ChanOps` for
/// its operations.
pub struct ParChan<T> {
    inner: Arc<ChanInner<T>>,
}

impl<T> Clone for ParChan<T> {
    fn clone(&self) -> Self {
        ParChan {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T> std::fmt::Debug for ParChan<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ParChan({:?})", self.inner.name)
    }
}

static NEXT_NAME: AtomicU64 = AtomicU64::new(1);

/// The runtime's direction as the home's side.
#[inline]
pub(crate) fn side(dir: Direction) -> Side {
    match dir {
        Direction::Read => Side::Read,
        Direction::Write => Side::Write,
    }
}

/// The runtime's error for a channel failure.
#[inline]
pub(crate) fn error(f: Failure) -> Error {
    match f {
        Failure::Poisoned => Error::Poisoned,
        Failure::Retired => Error::Retired,
    }
}

impl<T: Message> ParChan<T> {
    pub(crate) fn new(spec: ChannelSpec) -> Self {
        let name = spec
            .name
            .unwrap_or_else(|| format!("chan#{}", NEXT_NAME.fetch_add(1, Ordering::Relaxed)));
        ParChan {
            inner: Arc::new(ChanInner {
                name: name.into_boxed_str(),
                capacity: spec.capacity,
                home: Mutex::new(ChannelHome::new(spec.capacity)),
            }),
        }
    }

    pub(crate) fn inner(&self) -> &ChanInner<T> {
        &self.inner
    }

    /// Removes this thread's plain offer on `side`, if still queued.
    #[cold]
    fn withdraw_plain(&self, side: Side, waiter: &Arc<Waiter>) {
        drop(self.inner.lock().withdraw(side, |p| p.waiter.is(waiter)));
    }

    /// Runs `f` on the locked home, then wakes whoever it completed.
    #[inline]
    fn with_home<R>(&self, f: impl FnOnce(&mut Home<T>, &mut Wakes) -> R) -> R {
        let mut wakes = Wakes::new();
        let r = {
            let mut home = self.inner.lock();
            f(&mut home, &mut wakes)
        };
        wakes.wake_all();
        r
    }
}

/// A bug in this crate, reported as an error rather than a panic.
fn bug(what: &str) -> Error {
    Error::config(format!(
        "{what} (a bug in csp-parallel: please report it with the program that shows it)"
    ))
}

impl<T: Message> ChanOps<T> for ParChan<T> {
    fn join(&self, dir: Direction) {
        self.inner.lock().join(side(dir));
    }

    fn retire(&self, dir: Direction) {
        self.with_home(|home, wakes| home.retire(side(dir), wakes));
    }

    fn poison(&self, dir: Direction) {
        self.with_home(|home, wakes| home.poison(side(dir), wakes));
    }

    fn read(&self) -> Result<T> {
        let mut slot: Option<T> = None;
        let slot_ptr = NonNull::from(&mut slot);
        let mut wakes = Wakes::new();
        let waiter = {
            let mut home = self.inner.lock();
            match home.try_read(&mut wakes) {
                TryRead::Done(v) => {
                    drop(home);
                    wakes.wake_all();
                    return Ok(v);
                }
                TryRead::Failed(f) => {
                    drop(home);
                    wakes.wake_all();
                    return Err(error(f));
                }
                TryRead::NotReady => {
                    let waiter = Waiter::current();
                    home.wait_read(LocalParty::offer(&waiter, 0, false, slot_ptr));
                    waiter
                }
            }
        };
        wakes.wake_all();
        // From here until the wait ends, `slot` is only written through
        // `slot_ptr` by the party that completes our offer.
        match waiter.wait_until(None) {
            Selected::Chosen(_) => {
                // SAFETY: the completing party wrote the slot before its
                // `Release` store of the word, which `wait_until` read with
                // `Acquire`; our offer was consumed, so nobody writes it again.
                let got = unsafe { (*slot_ptr.as_ptr()).take() };
                got.ok_or_else(|| bug("a read was woken without a message"))
            }
            Selected::Failed(f, _) => Err(error(f)),
            Selected::Waiting | Selected::Aborted => {
                // Cannot happen (`wait_until(None)` returns only an outcome,
                // and nobody aborts a plain wait); leave no offer behind.
                self.withdraw_plain(Side::Read, &waiter);
                Err(bug("a read stopped waiting without an outcome"))
            }
        }
    }

    fn write(&self, value: T) -> Result<()> {
        // Where the message comes back if the channel fails while we wait.
        let mut slot: Option<T> = None;
        let slot_ptr = NonNull::from(&mut slot);
        let mut wakes = Wakes::new();
        let waiter = {
            let mut home = self.inner.lock();
            match home.try_write(value, &mut wakes) {
                TryWrite::Done => {
                    drop(home);
                    wakes.wake_all();
                    return Ok(());
                }
                TryWrite::Failed(f, v) => {
                    drop(home);
                    wakes.wake_all();
                    drop(v);
                    return Err(error(f));
                }
                TryWrite::NotReady(v) => {
                    let waiter = Waiter::current();
                    home.wait_write(LocalParty::offer(&waiter, 0, false, slot_ptr), v);
                    waiter
                }
            }
        };
        wakes.wake_all();
        match waiter.wait_until(None) {
            Selected::Chosen(_) => Ok(()),
            Selected::Failed(f, _) => {
                // SAFETY: as in `read`: the failing party gave the message back
                // before publishing the failure; the offer is consumed. The
                // message is dropped here, outside any lock.
                drop(unsafe { (*slot_ptr.as_ptr()).take() });
                Err(error(f))
            }
            Selected::Waiting | Selected::Aborted => {
                self.withdraw_plain(Side::Write, &waiter);
                Err(bug("a write stopped waiting without an outcome"))
            }
        }
    }

    fn name(&self) -> &str {
        &self.inner.name
    }

    fn capacity(&self) -> usize {
        self.inner.capacity
    }

    fn is_poisoned(&self) -> bool {
        self.inner.lock().is_poisoned()
    }

    fn is_retired(&self) -> bool {
        self.inner.lock().is_retired()
    }
}

#[cfg(test)]
mod tests {
    use std::thread;

    use csp_runtime::{ChanOps, ChannelSpec, Direction, Error};

    use super::ParChan;
    use csp_netproto::home::Side;

    fn chan(capacity: usize) -> ParChan<String> {
        let c = ParChan::new(ChannelSpec {
            name: Some("t".into()),
            capacity,
        });
        c.join(Direction::Read);
        c.join(Direction::Write);
        c
    }

    /// Waits (yielding, no sleep) until `n` offers are queued on `side`.
    fn until_waiting(c: &ParChan<String>, side: Side, n: usize) {
        while c.inner().lock().waiting(side) < n {
            thread::yield_now();
        }
    }

    #[test]
    fn a_blocked_writer_is_failed_by_poison_and_its_message_dropped() {
        let c = chan(0);
        let w = c.clone();
        let t = thread::spawn(move || w.write("lost".into()));
        until_waiting(&c, Side::Write, 1);
        c.poison(Direction::Read);
        assert_eq!(t.join().expect("writer"), Err(Error::Poisoned));
    }

    #[test]
    fn a_blocked_reader_is_failed_by_retire() {
        let c = chan(0);
        let r = c.clone();
        let t = thread::spawn(move || r.read());
        until_waiting(&c, Side::Read, 1);
        c.retire(Direction::Write);
        assert_eq!(t.join().expect("reader"), Err(Error::Retired));
    }

    #[test]
    fn a_blocked_reader_gets_the_message_written_later() {
        let c = chan(0);
        let r = c.clone();
        let t = thread::spawn(move || r.read());
        until_waiting(&c, Side::Read, 1);
        c.write("late".into()).expect("write");
        assert_eq!(t.join().expect("reader").as_deref(), Ok("late"));
    }

    #[test]
    fn a_writer_blocked_on_a_full_buffer_moves_in_when_there_is_room() {
        let c = chan(1);
        c.write("first".into()).expect("room");
        let w = c.clone();
        let t = thread::spawn(move || w.write("second".into()));
        until_waiting(&c, Side::Write, 1);
        assert_eq!(c.read().as_deref(), Ok("first"));
        t.join().expect("writer").expect("write");
        assert_eq!(c.read().as_deref(), Ok("second"));
    }
}
