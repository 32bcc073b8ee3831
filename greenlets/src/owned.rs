//! A cell that only the OS thread that made it may open.
//!
//! Greenlets channels are shared (`Arc`) and their ends are `Send`, because a
//! program must compile unchanged on the parallel backend, where ends cross
//! threads. On greenlets every process runs on one thread, so the channel state
//! needs no lock: [`Owned`] checks, on every access, that the caller is the
//! thread that created the cell, and refuses otherwise. That check is one
//! thread-local read, no atomic operation.

use std::cell::{Cell, UnsafeCell};
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static TOKEN: Cell<u64> = const { Cell::new(0) };
}

/// A number that identifies the calling OS thread for as long as it lives.
#[inline]
pub(crate) fn thread_token() -> u64 {
    TOKEN.with(|t| {
        let v = t.get();
        if v != 0 {
            v
        } else {
            let v = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
            t.set(v);
            v
        }
    })
}

/// Why an [`Owned`] cell could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The caller is not the owning thread.
    OtherThread,
    /// The cell is already open further up the call stack (a runtime bug).
    Busy,
}

/// State owned by one OS thread. See the [module docs](self).
pub(crate) struct Owned<S> {
    owner: u64,
    open: Cell<bool>,
    state: UnsafeCell<S>,
}

// SAFETY: `Owned` hands out access to `state` and `open` only from `with`,
// which first checks that the calling thread is the owner (a token no other
// live thread can hold: tokens come from a global counter and are never
// reused). So at most one thread ever touches the interior, and `Cell` /
// `UnsafeCell` need no synchronization. Moving the cell (or the last `Arc` to
// it) to another thread and dropping it there is fine: `S: Send`, and a drop
// has exclusive access.
unsafe impl<S: Send> Sync for Owned<S> {}
// SAFETY: see the `Sync` impl; the interior is `Send`.
unsafe impl<S: Send> Send for Owned<S> {}

impl<S> Owned<S> {
    /// A cell owned by the calling thread.
    pub(crate) fn new(state: S) -> Self {
        Owned {
            owner: thread_token(),
            open: Cell::new(false),
            state: UnsafeCell::new(state),
        }
    }

    /// Runs `f` on the state, if the caller is the owning thread and the cell
    /// is not already open.
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut S) -> R) -> Result<R, Refused> {
        if thread_token() != self.owner {
            return Err(Refused::OtherThread);
        }
        if self.open.replace(true) {
            return Err(Refused::Busy);
        }
        struct Close<'a>(&'a Cell<bool>);
        impl Drop for Close<'_> {
            fn drop(&mut self) {
                self.0.set(false);
            }
        }
        let _close = Close(&self.open);
        // SAFETY: we are on the owning thread (checked above), so no other
        // thread can be inside `with`; `open` was false, so no caller further
        // up this thread's stack holds a reference into `state`. The `&mut`
        // lives only for the call to `f`, and `open` stays true until `_close`
        // drops after it, so no second `&mut` can be made meanwhile.
        let state = unsafe { &mut *self.state.get() };
        Ok(f(state))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn owner_thread_opens_other_threads_are_refused() {
        let cell = Arc::new(Owned::new(5u32));
        assert_eq!(cell.with(|v| *v + 1), Ok(6));
        let c2 = cell.clone();
        let got = std::thread::spawn(move || c2.with(|v| *v)).join().ok();
        assert_eq!(got, Some(Err(Refused::OtherThread)));
    }

    #[test]
    fn nested_open_is_refused() {
        let cell = Owned::new(0u32);
        let inner = cell.with(|_| cell.with(|_| ()));
        assert_eq!(inner, Ok(Err(Refused::Busy)));
        // And the cell opens again afterwards.
        assert_eq!(cell.with(|v| *v), Ok(0));
    }

    #[test]
    fn tokens_differ_between_threads() {
        let here = thread_token();
        let there = std::thread::spawn(thread_token).join().ok();
        assert!(there.is_some_and(|t| t != here));
        assert_eq!(thread_token(), here);
    }
}
