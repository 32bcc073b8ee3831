//! Channels of the greenlets backend: rendezvous and buffered, any-to-any.
//!
//! # Invariants (of `State`, between operations)
//!
//! - A live waiting reader exists only while the buffer is empty; a live
//!   waiting writer only while the buffer is full (capacity 0: always "full").
//!   Entries of one alternation may sit in both queues of a rendezvous
//!   channel; they never match each other, because matching happens only
//!   when a *running* process arrives, and a running process has no live entries.
//! - Queues may hold stale entries (their process stopped waiting, or waits
//!   again with another epoch); every scan skips and drops them.
//! - A waiter's `slot` points into the blocked operation's frame on its
//!   process's stack. It is dereferenced only while that wait is live, which
//!   is exactly while the frame exists and the process is suspended.
//! - Once `poisoned` or `retired` is set it stays set, and no waiter is left live.

use std::collections::VecDeque;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use csp_runtime::{ChanOps, ChannelSpec, Direction, Error, Message, Result};

use crate::owned::{Owned, Refused};
use crate::sched::{self, Describe, Pid, Sched, WaitKind, Wake, with_sched};

/// A blocked read, write or guard.
struct Waiter<T> {
    pid: Pid,
    epoch: u64,
    /// The index of the guard within the wait (0 for a plain read or write).
    guard: usize,
    /// Readers: where to put the message. Writers: where the message is.
    slot: NonNull<Option<T>>,
}

// SAFETY: a `Waiter` lives inside an `Owned` channel state, which only its
// owning thread opens; the slot pointer is dereferenced only there, and only
// while the wait is live (module invariants). Moving or dropping a `Waiter`
// on another thread (when the last handle to a channel is dropped there)
// never dereferences the pointer.
unsafe impl<T: Send> Send for Waiter<T> {}

/// How a channel stops once its buffer has drained.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stop {
    Poison,
    Retire,
}

pub(crate) struct State<T> {
    readers: usize,
    writers: usize,
    poisoned: bool,
    retired: bool,
    /// A writer-side poison or retire that waits for the buffer to drain.
    after_drain: Option<Stop>,
    buffer: VecDeque<T>,
    read_waiters: VecDeque<Waiter<T>>,
    write_waiters: VecDeque<Waiter<T>>,
}

/// The shared part of a greenlets channel.
pub(crate) struct ChanCell<T> {
    name: Box<str>,
    capacity: usize,
    state: Owned<State<T>>,
}

impl<T> Describe for ChanCell<T> {
    fn name(&self) -> &str {
        &self.name
    }
}

/// The outcome of trying an operation without blocking.
pub(crate) enum Try<T> {
    /// Done (for a read: with this message).
    Done(T),
    /// Would block.
    NotReady,
    /// The channel is poisoned or retired.
    Failed(Error),
}

fn refused(name: &str, r: Refused) -> Error {
    match r {
        Refused::OtherThread => Error::config(format!(
            "channel '{name}' belongs to the greenlets scheduler of another OS thread; \
             on greenlets a channel is used only on the thread that made it \
             (use the parallel backend to share channels between threads)"
        )),
        Refused::Busy => Error::config(format!(
            "channel '{name}' was re-entered while in use (a bug in csp-greenlets)"
        )),
    }
}

/// Pops the first waiter whose wait is still live, dropping stale ones.
fn pop_live<T>(q: &mut VecDeque<Waiter<T>>, s: &Sched) -> Option<Waiter<T>> {
    while let Some(w) = q.pop_front() {
        if s.is_waiting(w.pid, w.epoch) {
            return Some(w);
        }
    }
    None
}

fn fail_all<T>(q: &mut VecDeque<Waiter<T>>, s: &mut Sched, e: &Error) {
    let wake = Wake::failing(e);
    for w in q.drain(..) {
        s.wake(w.pid, w.epoch, wake);
    }
}

impl<T> State<T> {
    fn stopped(&self) -> Option<Error> {
        if self.poisoned {
            Some(Error::Poisoned)
        } else if self.retired {
            Some(Error::Retired)
        } else {
            None
        }
    }

    /// After the buffer shrank: finish a deferred stop once it is empty.
    fn after_take(&mut self, s: &mut Sched) {
        if self.buffer.is_empty() {
            if let Some(stop) = self.after_drain.take() {
                let e = match stop {
                    Stop::Poison => {
                        self.poisoned = true;
                        Error::Poisoned
                    }
                    Stop::Retire => {
                        self.retired = true;
                        Error::Retired
                    }
                };
                fail_all(&mut self.read_waiters, s, &e);
                fail_all(&mut self.write_waiters, s, &e);
            }
        }
    }

    /// A read that does not block.
    fn try_read(&mut self, capacity: usize, s: &mut Sched) -> Try<T> {
        if self.poisoned {
            return Try::Failed(Error::Poisoned);
        }
        if let Some(v) = self.buffer.pop_front() {
            if let Some(w) = pop_live(&mut self.write_waiters, s) {
                // SAFETY: `w` is live (checked by `pop_live`), so its slot
                // points into the frame of its blocked write, which holds the
                // message (see the module invariants). Single thread: nothing
                // else touches it now.
                if let Some(m) = unsafe { (*w.slot.as_ptr()).take() } {
                    self.buffer.push_back(m);
                }
                s.wake(w.pid, w.epoch, Wake::Guard(w.guard));
            }
            self.after_take(s);
            return Try::Done(v);
        }
        if self.retired {
            return Try::Failed(Error::Retired);
        }
        if capacity == 0 {
            if let Some(w) = pop_live(&mut self.write_waiters, s) {
                // SAFETY: as above: a live writer's slot holds its message.
                let m = unsafe { (*w.slot.as_ptr()).take() };
                s.wake(w.pid, w.epoch, Wake::Guard(w.guard));
                if let Some(m) = m {
                    return Try::Done(m);
                }
            }
        }
        Try::NotReady
    }

    /// A write that does not block; on `NotReady` the message stays in `value`.
    fn try_write(&mut self, capacity: usize, value: &mut Option<T>, s: &mut Sched) -> Try<()> {
        if self.poisoned || self.after_drain == Some(Stop::Poison) {
            return Try::Failed(Error::Poisoned);
        }
        if self.retired {
            return Try::Failed(Error::Retired);
        }
        if let Some(r) = pop_live(&mut self.read_waiters, s) {
            // SAFETY: `r` is live, so its slot points into the frame of its
            // blocked read (or alternation), which waits for exactly this.
            unsafe { *r.slot.as_ptr() = value.take() };
            s.wake(r.pid, r.epoch, Wake::Guard(r.guard));
            return Try::Done(());
        }
        if self.buffer.len() < capacity {
            if let Some(v) = value.take() {
                self.buffer.push_back(v);
            }
            return Try::Done(());
        }
        Try::NotReady
    }

    fn remove(&mut self, dir: Direction, pid: Pid, epoch: u64) {
        let q = match dir {
            Direction::Read => &mut self.read_waiters,
            Direction::Write => &mut self.write_waiters,
        };
        q.retain(|w| !(w.pid == pid && w.epoch == epoch));
    }
}

static NEXT_NAME: AtomicU64 = AtomicU64::new(1);

/// A greenlets channel: the `Chan` type of [`Greenlets`](crate::Greenlets).
pub struct GreenChan<T> {
    cell: Arc<ChanCell<T>>,
}

impl<T> Clone for GreenChan<T> {
    fn clone(&self) -> Self {
        GreenChan {
            cell: self.cell.clone(),
        }
    }
}

impl<T> std::fmt::Debug for GreenChan<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GreenChan({:?})", self.cell.name)
    }
}

impl<T: Message> GreenChan<T> {
    pub(crate) fn new(spec: ChannelSpec) -> Self {
        let name = spec
            .name
            .unwrap_or_else(|| format!("chan#{}", NEXT_NAME.fetch_add(1, Ordering::Relaxed)));
        GreenChan {
            cell: Arc::new(ChanCell {
                name: name.into_boxed_str(),
                capacity: spec.capacity,
                state: Owned::new(State {
                    readers: 0,
                    writers: 0,
                    poisoned: false,
                    retired: false,
                    after_drain: None,
                    buffer: VecDeque::with_capacity(spec.capacity.min(1024)),
                    read_waiters: VecDeque::new(),
                    write_waiters: VecDeque::new(),
                }),
            }),
        }
    }

    pub(crate) fn cell(&self) -> &ChanCell<T> {
        &self.cell
    }

    fn with<R>(&self, f: impl FnOnce(&mut State<T>) -> R) -> Result<R> {
        self.cell.with(f)
    }
}

impl<T: Message> ChanCell<T> {
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut State<T>) -> R) -> Result<R> {
        self.state.with(f).map_err(|r| refused(&self.name, r))
    }

    /// Tries a read without blocking.
    pub(crate) fn try_read_now(&self, s: &mut Sched) -> Result<Try<T>> {
        let cap = self.capacity;
        self.with(|st| st.try_read(cap, s))
    }

    /// Tries a write without blocking; on `NotReady` the value stays in `value`.
    pub(crate) fn try_write_now(&self, value: &mut Option<T>, s: &mut Sched) -> Result<Try<()>> {
        let cap = self.capacity;
        self.with(|st| st.try_write(cap, value, s))
    }

    /// Registers a waiting reader or writer for guard `guard` of wait `(pid, epoch)`.
    pub(crate) fn register(
        &self,
        dir: Direction,
        pid: Pid,
        epoch: u64,
        guard: usize,
        slot: NonNull<Option<T>>,
    ) -> Result<()> {
        self.with(|st| {
            let w = Waiter {
                pid,
                epoch,
                guard,
                slot,
            };
            match dir {
                Direction::Read => st.read_waiters.push_back(w),
                Direction::Write => st.write_waiters.push_back(w),
            }
        })
    }

    /// Removes the entries of wait `(pid, epoch)` on side `dir`.
    pub(crate) fn deregister(&self, dir: Direction, pid: Pid, epoch: u64) {
        // Only refused on another thread, where we never registered.
        let _ = self.with(|st| st.remove(dir, pid, epoch));
    }
}

/// Ends a blocked operation: on failure, removes its entry from the channel.
fn finish_wait<T: Message>(
    cell: &ChanCell<T>,
    dir: Direction,
    pid: Pid,
    epoch: u64,
    woke: Result<usize>,
) -> Result<()> {
    match woke {
        Ok(_) => Ok(()),
        Err(e) => {
            cell.deregister(dir, pid, epoch);
            Err(e)
        }
    }
}

/// What a read or write found on its one visit to the channel.
enum Step<T> {
    /// Done; the bool says whether a seeded schedule wants to preempt now.
    Done(T, bool),
    /// Enqueued as wait `(pid, epoch)`.
    Wait(Pid, u64),
}

impl<T: Message> ChanOps<T> for GreenChan<T> {
    fn join(&self, dir: Direction) {
        let r = self.with(|st| match dir {
            Direction::Read => st.readers += 1,
            Direction::Write => st.writers += 1,
        });
        if let Err(e) = r {
            eprintln!("csp: cannot add an end to channel: {e}");
        }
    }

    fn retire(&self, dir: Direction) {
        let cap = self.cell.capacity;
        let r = self.with(|st| {
            with_sched(|s| match dir {
                Direction::Read => {
                    st.readers = st.readers.saturating_sub(1);
                    if st.readers == 0 && st.stopped().is_none() {
                        st.retired = true;
                        fail_all(&mut st.write_waiters, s, &Error::Retired);
                        fail_all(&mut st.read_waiters, s, &Error::Retired);
                    }
                }
                Direction::Write => {
                    st.writers = st.writers.saturating_sub(1);
                    if st.writers == 0 && st.stopped().is_none() {
                        if cap > 0 && !st.buffer.is_empty() {
                            st.after_drain.get_or_insert(Stop::Retire);
                        } else {
                            st.retired = true;
                            fail_all(&mut st.read_waiters, s, &Error::Retired);
                            fail_all(&mut st.write_waiters, s, &Error::Retired);
                        }
                    }
                }
            })
        });
        if let Err(e) = r {
            eprintln!("csp: cannot retire an end: {e}");
        }
    }

    fn poison(&self, dir: Direction) {
        let cap = self.cell.capacity;
        let r = self.with(|st| {
            with_sched(|s| {
                if st.poisoned {
                    return;
                }
                if dir == Direction::Write && cap > 0 && !st.buffer.is_empty() {
                    // Readers drain the buffer first; writers stop now.
                    st.after_drain = Some(Stop::Poison);
                    fail_all(&mut st.write_waiters, s, &Error::Poisoned);
                } else {
                    st.poisoned = true;
                    st.after_drain = None;
                    st.buffer.clear();
                    fail_all(&mut st.read_waiters, s, &Error::Poisoned);
                    fail_all(&mut st.write_waiters, s, &Error::Poisoned);
                }
            })
        });
        if let Err(e) = r {
            eprintln!("csp: cannot poison a channel: {e}");
        }
    }

    fn read(&self) -> Result<T> {
        let cell = &*self.cell;
        let cap = cell.capacity;
        let mut slot: Option<T> = None;
        let slot_ptr = NonNull::from(&mut slot);
        let info: *const dyn Describe = cell;
        // One visit to the scheduler and one to the channel: try, else enqueue.
        let step = with_sched(|s| {
            cell.with(|st| match st.try_read(cap, s) {
                Try::Done(v) => Ok(Step::Done(v, s.wants_preempt())),
                Try::Failed(e) => Err(e),
                Try::NotReady => {
                    let (pid, epoch) = s.begin_wait(WaitKind::Chan(Direction::Read, info))?;
                    st.read_waiters.push_back(Waiter {
                        pid,
                        epoch,
                        guard: 0,
                        slot: slot_ptr,
                    });
                    Ok(Step::Wait(pid, epoch))
                }
            })
        })??;
        match step {
            Step::Done(v, preempt) => {
                if preempt {
                    sched::yield_now();
                }
                Ok(v)
            }
            Step::Wait(pid, epoch) => {
                let wake = sched::block();
                finish_wait(cell, Direction::Read, pid, epoch, wake)?;
                slot.take().ok_or_else(|| {
                    Error::config("a read was woken without a message (a bug in csp-greenlets)")
                })
            }
        }
    }

    fn write(&self, value: T) -> Result<()> {
        let cell = &*self.cell;
        let cap = cell.capacity;
        let mut slot: Option<T> = Some(value);
        let slot_ptr = NonNull::from(&mut slot);
        let info: *const dyn Describe = cell;
        let step = with_sched(|s| {
            cell.with(|st| {
                // SAFETY: `slot_ptr` was made from `slot` above; nothing else
                // refers to `slot` until this closure returns.
                let value = unsafe { &mut *slot_ptr.as_ptr() };
                match st.try_write(cap, value, s) {
                    Try::Done(()) => Ok(Step::Done((), s.wants_preempt())),
                    Try::Failed(e) => Err(e),
                    Try::NotReady => {
                        let (pid, epoch) = s.begin_wait(WaitKind::Chan(Direction::Write, info))?;
                        st.write_waiters.push_back(Waiter {
                            pid,
                            epoch,
                            guard: 0,
                            slot: slot_ptr,
                        });
                        Ok(Step::Wait(pid, epoch))
                    }
                }
            })
        })??;
        match step {
            Step::Done((), preempt) => {
                if preempt {
                    sched::yield_now();
                }
                Ok(())
            }
            Step::Wait(pid, epoch) => {
                let wake = sched::block();
                finish_wait(cell, Direction::Write, pid, epoch, wake)
            }
        }
    }

    fn name(&self) -> &str {
        &self.cell.name
    }

    fn capacity(&self) -> usize {
        self.cell.capacity
    }

    fn is_poisoned(&self) -> bool {
        self.with(|st| st.poisoned).unwrap_or(false)
    }

    fn is_retired(&self) -> bool {
        self.with(|st| st.retired).unwrap_or(false)
    }
}
