//! Process stacks: millions of small coroutine stacks carved out of a few large mappings, with
//! guard pages that turn a stack overflow into a clear fatal error naming the process.
//!
//! # Layout
//!
//! A [`StackPool`] (one per OS thread) reserves address space in *chunks*: one anonymous
//! `mmap(PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK)` of up
//! to [`STACKS_PER_CHUNK`] *slots*. Nothing is committed up front: a page costs memory only once
//! a process touches it. Each slot is one guard page (lowest address) followed by the usable
//! stack; the stack grows down from the top of its slot towards its guard page.
//!
//! ```text
//!  low addresses                                                            high addresses
//!  chunk.start                                                                   chunk end
//!  |                                                                                     |
//!  v                                                                                     v
//!  +-------+-------------------+-------+-------------------+-----+-------+-------------------+
//!  | guard |  usable stack 0   | guard |  usable stack 1   | ... | guard | usable stack 255  |
//!  +-------+-------------------+-------+-------------------+-----+-------+-------------------+
//!  ^       ^                   ^
//!  |       |                   base() of stack 0: its first frame starts here, growing left
//!  |       usable_bottom() of stack 0 (lowest byte a process may use)
//!  limit() of stack 0 (the trait's limit includes the guard page)
//!  |<------------ slot ------->|
//! ```
//!
//! Guard pages are put in place with `madvise(MADV_GUARD_INSTALL)` (Linux 6.13+), which marks
//! the page in the page tables and leaves the mapping whole: one kernel mapping per chunk, no
//! matter how many guards. Older kernels get `mprotect(PROT_NONE)` instead, which splits the
//! mapping around every guard, so each stack costs about two entries of the process's map table
//! and `vm.max_map_count` (65 530 by default) caps the number of stacks near 32 000; running out
//! is reported by [`StackPool::take`] as a [`StackError`] that says so and how to raise it.
//!
//! A slot's guard page is installed when the slot is first handed out, and a returned stack goes
//! on a LIFO free list without giving its pages back to the kernel, so that taking a stack again
//! is a `Vec::pop` and the most recently used (cache-warm) stack is reused first.
//!
//! # Stack overflow
//!
//! [`install_overflow_handler`] installs a process-wide `SIGSEGV`/`SIGBUS` handler that runs on
//! the thread's alternate signal stack ([`ensure_altstack`]). When the faulting address is in the
//! guard page of one of our stacks (looked up in a lock-free registry of chunks), it prints
//! `csp: stack overflow in process '<name>' (stack size <N> KiB); ...` using the name published
//! with [`set_running`], and aborts. Any other fault is passed on to the handler that was
//! installed before ours (normally Rust's own, which reports overflows of thread stacks).
//!
//! # Invariants
//!
//! 1. A slot's guard page is made inaccessible before the [`ProcStack`] for that slot exists, and
//!    it stays inaccessible for as long as the chunk is mapped (nothing here ever removes it).
//! 2. A slot is carved exactly once (`StackPool::next_slot` only grows), after which it lives in
//!    exactly one place: one `ProcStack` value (not `Clone`) or the pool's free list. So at most
//!    one coroutine ever runs on a slot at a time.
//! 3. Every `ProcStack` holds an `Rc<Chunk>`; a chunk is unmapped only when its last reference
//!    (the pool's, the free list's and every outstanding stack's) is gone. A `ProcStack` can
//!    therefore never outlive its memory, even if the pool is dropped first.
//! 4. A chunk is removed from the overflow registry before it is unmapped, and a registry entry's
//!    bounds are written before the entry is published (its start address is stored last).
//! 5. The signal handler only does async-signal-safe things: atomic loads, a read of a
//!    const-initialised thread-local without destructor, `writev`, `sigaction`, `raise`, `abort`,
//!    and calling the previously installed handler. It never allocates, locks or formats with
//!    `std::fmt`, and it never dereferences the process name itself (see [`set_running`]).

use std::cell::Cell;
use std::ffi::{c_int, c_void};
use std::fmt;
use std::io;
use std::num::NonZeroUsize;
use std::ptr;
use std::rc::Rc;
use std::sync::Once;
use std::sync::atomic::{AtomicI32, AtomicU8, AtomicUsize, Ordering};

use corosensei::stack::{Stack, StackPointer};

/// Smallest usable stack we hand out, whatever the caller asks for.
const MIN_STACK_SIZE: usize = 16 * 1024;

/// Largest usable stack we hand out; bigger requests make [`StackPool::take`] fail.
const MAX_STACK_SIZE: usize = 1 << 30;

/// Slots per chunk (fewer when stacks are so large that a chunk would exceed
/// [`MAX_CHUNK_BYTES`]).
const STACKS_PER_CHUNK: usize = 256;

/// Upper bound on the address space one chunk reserves (unless a single slot is larger).
const MAX_CHUNK_BYTES: usize = 1 << 30;

/// `madvise` advice that turns a range into guard pages without splitting the mapping
/// (Linux 6.13+, `include/uapi/asm-generic/mman-common.h`); not yet exported by `libc`.
const MADV_GUARD_INSTALL: c_int = 102;

/// Usable size of the alternate signal stack [`ensure_altstack`] installs (plus a guard page).
const ALTSTACK_SIZE: usize = 64 * 1024;

/// Longest process name the overflow message prints (longer names are cut).
const MAX_NAME_BYTES: usize = 256;

/// Why a pool uses `mprotect` guards although `MADV_GUARD_INSTALL` is preferred.
const REASON_KERNEL_LACKS: &str = "this kernel lacks MADV_GUARD_INSTALL (Linux 6.13+)";

/// Why a pool uses `mprotect` guards when it was built with [`GuardKind::Mprotect`].
const REASON_FORCED: &str =
    "this stack pool was set to make guard pages with mprotect instead of MADV_GUARD_INSTALL";

/// The system page size, cached after the first call (also read by the signal handler: it is
/// non-zero before any chunk is registered).
static PAGE_SIZE: AtomicUsize = AtomicUsize::new(0);

/// Returns the system page size (4096 if `sysconf` fails or answers nonsense).
fn page_size() -> usize {
    let cached = PAGE_SIZE.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    // SAFETY: sysconf has no preconditions; it only reads a system constant.
    let raw = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let page = usize::try_from(raw)
        .ok()
        .filter(|p| p.is_power_of_two())
        .unwrap_or(4096);
    PAGE_SIZE.store(page, Ordering::Relaxed);
    page
}

/// Rounds `bytes` up to a multiple of `page` (a power of two); `None` on overflow.
fn round_up(bytes: usize, page: usize) -> Option<usize> {
    Some(bytes.checked_add(page - 1)? & !(page - 1))
}

/// The calling thread's last OS error number (0 if there is none).
fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Formats an errno as `ENOMEM: Cannot allocate memory (os error 12)` for error messages.
struct Errno(i32);

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.0 {
            libc::ENOMEM => "ENOMEM: ",
            libc::EINVAL => "EINVAL: ",
            libc::EACCES => "EACCES: ",
            libc::EPERM => "EPERM: ",
            libc::EAGAIN => "EAGAIN: ",
            libc::EFAULT => "EFAULT: ",
            _ => "",
        };
        write!(f, "{name}{}", io::Error::from_raw_os_error(self.0))
    }
}

/// How the guard page below each stack is made inaccessible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GuardKind {
    /// `madvise(MADV_GUARD_INSTALL)` (Linux 6.13+): the guard lives in the page tables and the
    /// chunk stays one mapping, so the number of stacks is limited only by memory.
    Madvise,
    /// `mprotect(PROT_NONE)` on each guard page (older kernels): every guard splits the chunk's
    /// mapping, so each stack costs about two mappings and `vm.max_map_count` limits the count.
    Mprotect,
}

impl GuardKind {
    /// The best guard kind this kernel supports, probed once per process and cached.
    pub(crate) fn best_available() -> GuardKind {
        /// 0 = not probed yet, 1 = `MADV_GUARD_INSTALL` works, 2 = it does not.
        static PROBED: AtomicU8 = AtomicU8::new(0);
        match PROBED.load(Ordering::Relaxed) {
            1 => GuardKind::Madvise,
            2 => GuardKind::Mprotect,
            _ => match probe_madv_guard_install() {
                Some(true) => {
                    PROBED.store(1, Ordering::Relaxed);
                    GuardKind::Madvise
                }
                Some(false) => {
                    PROBED.store(2, Ordering::Relaxed);
                    GuardKind::Mprotect
                }
                // The probe itself could not run (no memory for two pages): assume the
                // fallback this time and probe again next time.
                None => GuardKind::Mprotect,
            },
        }
    }
}

/// Tries `MADV_GUARD_INSTALL` on a scratch mapping: `Some(true)` if the kernel accepts it,
/// `Some(false)` if it refuses (EINVAL before Linux 6.13), `None` if the probe could not run.
fn probe_madv_guard_install() -> Option<bool> {
    let page = page_size();
    // SAFETY: a fresh private anonymous mapping at an address of the kernel's choosing; it
    // cannot alias any memory the program uses.
    let map = unsafe {
        libc::mmap(
            ptr::null_mut(),
            2 * page,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if map == libc::MAP_FAILED {
        return None;
    }
    // SAFETY: the first page of the mapping created above, which nothing else knows about.
    let works = unsafe { libc::madvise(map, page, MADV_GUARD_INSTALL) } == 0;
    // SAFETY: unmaps exactly the mapping created above; no reference into it exists.
    unsafe { libc::munmap(map, 2 * page) };
    Some(works)
}

/// Reads `/proc/sys/vm/max_map_count`, the kernel's limit on mappings per process.
fn read_max_map_count() -> Option<usize> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Why [`StackPool::take`] (or [`ensure_altstack`]) could not provide a stack. Its `Display`
/// says what happened and what to do about it.
#[derive(Debug, Clone)]
pub(crate) struct StackError {
    /// 1-based number of the stack that could not be created (`stacks carved so far + 1`), or 0
    /// for an error of [`ensure_altstack`] called on its own.
    stack_no: usize,
    /// What went wrong.
    kind: StackErrorKind,
}

/// The different ways creating a stack can fail.
#[derive(Debug, Clone)]
enum StackErrorKind {
    /// `mmap`/`mprotect` failed with ENOMEM while guards are made with `mprotect`: the process
    /// has most likely reached `vm.max_map_count`.
    MapCount {
        /// The call that failed.
        call: &'static str,
        /// The current `vm.max_map_count`, if it could be read.
        max_map_count: Option<usize>,
        /// Why this pool uses `mprotect` guards.
        reason: &'static str,
    },
    /// Reserving a new chunk failed for another reason.
    Mmap {
        /// The OS error number.
        errno: i32,
        /// Bytes the chunk tried to reserve.
        chunk_bytes: usize,
        /// Stacks in the chunk.
        stacks: usize,
        /// Usable bytes per stack.
        stack_size: usize,
        /// Guard bytes per stack.
        guard_size: usize,
    },
    /// Installing a guard page failed for another reason.
    Guard {
        /// The call that failed.
        call: &'static str,
        /// The OS error number.
        errno: i32,
        /// Address of the guard page.
        addr: usize,
    },
    /// The requested stack size is above [`MAX_STACK_SIZE`].
    TooLarge {
        /// Usable bytes requested (after rounding).
        stack_size: usize,
    },
    /// The alternate signal stack that reports overflows could not be set up.
    AltStack {
        /// The call that failed.
        call: &'static str,
        /// The OS error number.
        errno: i32,
    },
}

impl StackError {
    /// True when the error means "the kernel's per-process mapping limit was reached".
    #[allow(dead_code, reason = "diagnostic helper for callers and tests")]
    pub(crate) fn is_map_count_exhausted(&self) -> bool {
        matches!(self.kind, StackErrorKind::MapCount { .. })
    }
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.stack_no;
        match &self.kind {
            StackErrorKind::MapCount {
                call,
                max_map_count,
                reason,
            } => {
                let (current, suggested) = match max_map_count {
                    Some(m) => (
                        m.to_string(),
                        m.saturating_mul(4)
                            .max(n.saturating_mul(4))
                            .checked_next_power_of_two()
                            .unwrap_or(usize::MAX),
                    ),
                    None => (
                        "unknown".to_owned(),
                        n.saturating_mul(4)
                            .max(262_144)
                            .checked_next_power_of_two()
                            .unwrap_or(usize::MAX),
                    ),
                };
                write!(
                    f,
                    "cannot create stack #{n}: the kernel refused another memory mapping \
                     ({call} failed with ENOMEM; vm.max_map_count = {current}; {reason}, so each \
                     stack's guard page costs a mapping). Raise it with \
                     `sudo sysctl -w vm.max_map_count={suggested}` or use fewer live processes"
                )
            }
            StackErrorKind::Mmap {
                errno,
                chunk_bytes,
                stacks,
                stack_size,
                guard_size,
            } => {
                write!(
                    f,
                    "cannot create stack #{n}: mmap of a {} KiB chunk for {stacks} stacks \
                     ({} KiB usable + {} KiB guard page each) failed with {}",
                    chunk_bytes / 1024,
                    stack_size / 1024,
                    guard_size / 1024,
                    Errno(*errno),
                )?;
                if *errno == libc::ENOMEM {
                    write!(
                        f,
                        ". The kernel refused to reserve more address space: check `ulimit -v`, \
                         vm.overcommit_memory (mode 2 ignores MAP_NORESERVE) and \
                         vm.max_map_count, or use smaller stacks (Config::stack_size) or fewer \
                         live processes"
                    )?;
                }
                Ok(())
            }
            StackErrorKind::Guard { call, errno, addr } => {
                write!(
                    f,
                    "cannot create stack #{n}: making its guard page at {addr:#x} inaccessible \
                     with {call} failed with {}",
                    Errno(*errno)
                )?;
                if *errno == libc::ENOMEM {
                    write!(
                        f,
                        "; the kernel is out of memory for page tables: use fewer live \
                         processes or smaller stacks (Config::stack_size)"
                    )
                } else {
                    write!(f, "; this is unexpected, please report it")
                }
            }
            StackErrorKind::TooLarge { stack_size } => write!(
                f,
                "cannot create stack #{n}: the stack size of {stack_size} bytes is larger than \
                 the supported maximum of {} MiB; ask for smaller stacks with Config::stack_size",
                MAX_STACK_SIZE / (1024 * 1024)
            ),
            StackErrorKind::AltStack { call, errno } => {
                if n != 0 {
                    write!(f, "cannot create stack #{n}: ")?;
                }
                write!(
                    f,
                    "the alternate signal stack that reports stack overflows could not be set \
                     up on this thread ({call} failed with {}); without it an overflow would \
                     kill the program without naming the process",
                    Errno(*errno)
                )
            }
        }
    }
}

impl std::error::Error for StackError {}

/// One large mapping that stacks are carved from. Unmapped (after leaving the overflow
/// registry) when the last `Rc<Chunk>` — held by the pool and by every stack carved from it —
/// is dropped.
#[derive(Debug)]
struct Chunk {
    /// Lowest address of the mapping.
    start: NonZeroUsize,
    /// Length of the mapping in bytes (`slots * slot_size`).
    len: usize,
    /// Bytes per slot: guard page + usable stack.
    slot_size: usize,
    /// Index of this chunk's entry in the overflow registry (`None` if the registry was full).
    registry_index: Option<usize>,
}

impl Drop for Chunk {
    fn drop(&mut self) {
        if let Some(index) = self.registry_index {
            registry::unregister(index);
        }
        // SAFETY: [start, start + len) is the mapping this chunk created and owns alone. Every
        // stack carved from it holds an `Rc<Chunk>`, so when this last reference is dropped no
        // `ProcStack` (and hence no coroutine) can still use the memory.
        let rc = unsafe { libc::munmap(self.start.get() as *mut c_void, self.len) };
        // munmap can only fail here with ENOMEM, when unmapping would split a mapping the
        // kernel merged with a neighbour while the process is at vm.max_map_count. Then the
        // range simply stays reserved (and unregistered); nothing refers to it any more.
        let _ = rc;
    }
}

/// A stack for one process: `usable` bytes above a guard page, inside a chunk of a
/// [`StackPool`]. Give it back with [`StackPool::give_back`] when the process has finished
/// (dropping it instead is safe but wastes the slot until all stacks of its chunk are gone).
///
/// It keeps its chunk alive through an `Rc`, so it stays valid even if the pool is dropped
/// first; for the same reason it is neither `Send` nor `Sync`.
#[derive(Debug)]
pub(crate) struct ProcStack {
    /// Top of the usable area (exclusive); the stack grows down from here.
    base: StackPointer,
    /// Bottom of the slot, i.e. of the guard page.
    limit: StackPointer,
    /// Keeps the mapping alive while this stack exists (invariant 3).
    chunk: Rc<Chunk>,
}

impl ProcStack {
    /// Lowest usable address (just above the guard page). Processes may use
    /// `usable_bottom()..base()`.
    #[allow(
        dead_code,
        reason = "used by tests; available for stack-usage diagnostics"
    )]
    pub(crate) fn usable_bottom(&self) -> usize {
        self.base.get() - self.usable_size()
    }

    /// Usable bytes of this stack (the pool's [`StackPool::stack_size`]).
    pub(crate) fn usable_size(&self) -> usize {
        self.chunk.slot_size - page_size()
    }
}

// SAFETY: corosensei requires (1) a guard page that catches overflows and (2) at least
// `MIN_STACK_SIZE` (4 KiB) of usable memory between `limit()` and `base()`, valid and exclusively
// ours for as long as the `ProcStack` lives:
// - The guard page [limit, limit + page) is made inaccessible before the `ProcStack` is created
//   and is never made accessible again while the chunk is mapped (invariant 1). Rust code probes
//   frames larger than a page, so a growing stack always touches the guard page first.
// - The usable area is at least 16 KiB, read-write, and lies inside the chunk's mapping, which
//   stays mapped while this `ProcStack` holds its `Rc<Chunk>` (invariant 3).
// - No other `ProcStack` covers the same slot (invariant 2).
// - `base()` is the top of the slot, which is page aligned and so 16-byte aligned
//   (`STACK_ALIGNMENT`); `limit()` is the page-aligned bottom of the slot. The trait documents that
//   the limit "must include any guard pages", so `limit()` is the guard page's bottom;
//   `usable_bottom()` is the lowest usable byte.
unsafe impl Stack for ProcStack {
    #[inline]
    fn base(&self) -> StackPointer {
        self.base
    }

    #[inline]
    fn limit(&self) -> StackPointer {
        self.limit
    }
}

/// Counters describing a [`StackPool`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(
    dead_code,
    reason = "diagnostics; fields are read by tests and Debug output"
)]
pub(crate) struct StackStats {
    /// Stacks carved so far (each has its guard page; never decreases).
    pub(crate) reserved: usize,
    /// Stacks on the free list, ready for reuse.
    pub(crate) free: usize,
    /// How this pool's guard pages are made.
    pub(crate) guard: GuardKind,
}

/// Hands out [`ProcStack`]s for the processes of one OS thread's scheduler. Not `Send`.
pub(crate) struct StackPool {
    /// Usable bytes per stack (page multiple, at least [`MIN_STACK_SIZE`]).
    usable: usize,
    /// Bytes per slot: guard page + `usable`.
    slot_size: usize,
    /// The page size (= guard size).
    page: usize,
    /// Slots per chunk.
    slots_per_chunk: usize,
    /// How guard pages are made.
    guard: GuardKind,
    /// Why `guard` is `Mprotect` (for error messages); empty for `Madvise`.
    fallback_reason: &'static str,
    /// Returned stacks, most recently returned last (LIFO).
    free: Vec<ProcStack>,
    /// The chunk new slots are carved from, if any.
    current: Option<Rc<Chunk>>,
    /// Index of the next uncarved slot in `current`.
    next_slot: usize,
    /// Stacks carved so far.
    reserved: usize,
    /// Set if the thread's alternate signal stack could not be set up; reported by `take`.
    setup_error: Option<StackError>,
    /// Test hook: the next chunk `mmap` fails with this errno.
    #[cfg(test)]
    fail_mmap: Option<i32>,
    /// Test hook: the next guard installation fails with this errno.
    #[cfg(test)]
    fail_guard: Option<i32>,
}

impl StackPool {
    /// A pool of stacks with `stack_size` usable bytes each (rounded up to whole pages, at least
    /// 16 KiB), using the best guard kind the kernel supports.
    ///
    /// Also installs the overflow handler ([`install_overflow_handler`]) and makes sure the
    /// calling thread has an alternate signal stack ([`ensure_altstack`]); the pool is meant to
    /// be used on this thread. If the signal stack cannot be set up, `take` reports it.
    pub(crate) fn new(stack_size: usize) -> StackPool {
        StackPool::with_guard(stack_size, GuardKind::Madvise)
    }

    /// Like [`StackPool::new`], but `GuardKind::Mprotect` forces the `mprotect` fallback even on
    /// kernels with `MADV_GUARD_INSTALL` (asking for `Madvise` on an older kernel falls back).
    pub(crate) fn with_guard(stack_size: usize, guard: GuardKind) -> StackPool {
        install_overflow_handler();
        let setup_error = ensure_altstack().err();
        let page = page_size();
        let usable =
            round_up(stack_size.max(MIN_STACK_SIZE), page).unwrap_or(usize::MAX & !(page - 1));
        let slot_size = usable.saturating_add(page);
        let slots_per_chunk = (MAX_CHUNK_BYTES / slot_size).clamp(1, STACKS_PER_CHUNK);
        let best = GuardKind::best_available();
        let (guard, fallback_reason) = match (guard, best) {
            (GuardKind::Madvise, GuardKind::Madvise) => (GuardKind::Madvise, ""),
            (GuardKind::Mprotect, GuardKind::Madvise) => (GuardKind::Mprotect, REASON_FORCED),
            (_, GuardKind::Mprotect) => (GuardKind::Mprotect, REASON_KERNEL_LACKS),
        };
        StackPool {
            usable,
            slot_size,
            page,
            slots_per_chunk,
            guard,
            fallback_reason,
            free: Vec::new(),
            current: None,
            next_slot: 0,
            reserved: 0,
            setup_error,
            #[cfg(test)]
            fail_mmap: None,
            #[cfg(test)]
            fail_guard: None,
        }
    }

    /// Usable bytes of each stack this pool hands out.
    #[allow(dead_code, reason = "diagnostics; the scheduler may not need it")]
    pub(crate) fn stack_size(&self) -> usize {
        self.usable
    }

    /// Counters: stacks carved, stacks free, guard kind.
    #[allow(dead_code, reason = "diagnostics; the scheduler may not need it")]
    pub(crate) fn stats(&self) -> StackStats {
        StackStats {
            reserved: self.reserved,
            free: self.free.len(),
            guard: self.guard,
        }
    }

    /// Hands out a stack: the most recently returned one if any, else a new slot (mapping a new
    /// chunk when the current one is used up).
    ///
    /// Fails (without panicking) when the kernel refuses the memory or the mapping; the error
    /// says why and what to do.
    #[inline]
    pub(crate) fn take(&mut self) -> Result<ProcStack, StackError> {
        match self.free.pop() {
            Some(stack) => Ok(stack),
            None => self.carve(),
        }
    }

    /// Returns a stack for reuse. Its pages are kept (not `madvise`d away), so the next
    /// [`take`](StackPool::take) gets it back warm. A stack of a different size (from another
    /// pool) is dropped instead.
    #[inline]
    pub(crate) fn give_back(&mut self, stack: ProcStack) {
        if stack.chunk.slot_size == self.slot_size {
            self.free.push(stack);
        }
    }

    /// Carves the next never-used slot, mapping a new chunk if needed.
    #[inline(never)]
    fn carve(&mut self) -> Result<ProcStack, StackError> {
        if let Some(error) = &self.setup_error {
            return Err(StackError {
                stack_no: self.reserved + 1,
                ..error.clone()
            });
        }
        if self.usable > MAX_STACK_SIZE {
            return Err(self.error(StackErrorKind::TooLarge {
                stack_size: self.usable,
            }));
        }
        let chunk = match &self.current {
            Some(chunk) if self.next_slot < self.slots_per_chunk => Rc::clone(chunk),
            _ => {
                let chunk = Rc::new(self.map_chunk()?);
                self.current = Some(Rc::clone(&chunk));
                self.next_slot = 0;
                chunk
            }
        };
        // Cannot overflow: the slot lies inside the chunk's mapping, which exists.
        let limit = chunk.start.saturating_add(self.next_slot * self.slot_size);
        self.install_guard(limit.get())?;
        let base = limit.saturating_add(self.slot_size);
        self.next_slot += 1;
        self.reserved += 1;
        Ok(ProcStack { base, limit, chunk })
    }

    /// Reserves a new chunk of `slots_per_chunk` slots and registers it for the overflow
    /// handler.
    fn map_chunk(&mut self) -> Result<Chunk, StackError> {
        // Cannot overflow: usable <= MAX_STACK_SIZE (checked by `carve`), and slots_per_chunk is
        // 1 or at most MAX_CHUNK_BYTES / slot_size.
        let len = self.slots_per_chunk * self.slot_size;
        #[cfg(test)]
        if let Some(errno) = self.fail_mmap.take() {
            return Err(self.mmap_error(errno, len));
        }
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK;
        // SAFETY: a fresh private anonymous mapping at an address of the kernel's choosing; it
        // cannot alias any memory the program already uses.
        let map = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                -1,
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(self.mmap_error(errno(), len));
        }
        let Some(start) = NonZeroUsize::new(map as usize) else {
            // Impossible with vm.mmap_min_addr > 0; leave the odd mapping alone and fail.
            return Err(self.mmap_error(libc::EINVAL, len));
        };
        // Stacks are touched sparsely from the top: transparent huge pages would turn one
        // touched 4 KiB page into 2 MiB of memory. (MAP_STACK implies this from Linux 6.7 on.)
        // SAFETY: advice on the mapping created above, which holds no data yet; the call cannot
        // change its contents. Failure only means THP stays possible, so it is ignored.
        unsafe { libc::madvise(map, len, libc::MADV_NOHUGEPAGE) };
        let registry_index = registry::register(start.get(), len, self.slot_size);
        Ok(Chunk {
            start,
            len,
            slot_size: self.slot_size,
            registry_index,
        })
    }

    /// Makes the page at `addr` (the bottom page of a slot never handed out) a guard page.
    fn install_guard(&mut self, addr: usize) -> Result<(), StackError> {
        #[cfg(test)]
        if let Some(errno) = self.fail_guard.take() {
            return Err(self.guard_error(errno, addr));
        }
        let rc = match self.guard {
            // SAFETY: `addr` is the page-aligned bottom page of a slot inside a live chunk that
            // this pool mapped and that has never been handed out, so no Rust object lives there;
            // the call only makes that page inaccessible.
            GuardKind::Madvise => unsafe {
                libc::madvise(addr as *mut c_void, self.page, MADV_GUARD_INSTALL)
            },
            // SAFETY: as above; mprotect(PROT_NONE) only makes that unused page inaccessible.
            GuardKind::Mprotect => unsafe {
                libc::mprotect(addr as *mut c_void, self.page, libc::PROT_NONE)
            },
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(self.guard_error(errno(), addr))
        }
    }

    /// Error for a failed chunk `mmap`.
    fn mmap_error(&self, errno: i32, len: usize) -> StackError {
        if errno == libc::ENOMEM && self.guard == GuardKind::Mprotect {
            return self.map_count_error("mmap of a new chunk of stacks");
        }
        self.error(StackErrorKind::Mmap {
            errno,
            chunk_bytes: len,
            stacks: self.slots_per_chunk,
            stack_size: self.usable,
            guard_size: self.page,
        })
    }

    /// Error for a failed guard installation at `addr`.
    fn guard_error(&self, errno: i32, addr: usize) -> StackError {
        match self.guard {
            GuardKind::Mprotect if errno == libc::ENOMEM => {
                self.map_count_error("mprotect(PROT_NONE) of its guard page")
            }
            GuardKind::Mprotect => self.error(StackErrorKind::Guard {
                call: "mprotect(PROT_NONE)",
                errno,
                addr,
            }),
            GuardKind::Madvise => self.error(StackErrorKind::Guard {
                call: "madvise(MADV_GUARD_INSTALL)",
                errno,
                addr,
            }),
        }
    }

    /// Error for "out of mappings" in `mprotect` mode.
    fn map_count_error(&self, call: &'static str) -> StackError {
        self.error(StackErrorKind::MapCount {
            call,
            max_map_count: read_max_map_count(),
            reason: self.fallback_reason,
        })
    }

    /// Wraps `kind` with the number of the stack being created.
    fn error(&self, kind: StackErrorKind) -> StackError {
        StackError {
            stack_no: self.reserved + 1,
            kind,
        }
    }
}

impl fmt::Debug for StackPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StackPool")
            .field("stack_size", &self.usable)
            .field("slot_size", &self.slot_size)
            .field("slots_per_chunk", &self.slots_per_chunk)
            .field("guard", &self.guard)
            .field("reserved", &self.reserved)
            .field("free", &self.free.len())
            .finish_non_exhaustive()
    }
}

/// Lock-free, append-mostly registry of chunk address ranges, readable from the signal handler.
///
/// Entries are claimed by compare-and-swap of `start` from 0 to `BUSY` (1), filled in,
/// and published by storing the real start last. Unregistering stores 0 into `start`, making the
/// entry reusable. If all entries are taken, new chunks are simply not registered (their
/// overflows then reach the previous handler, i.e. a plain crash without the process name).
mod registry {
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Number of entries: with 256 stacks per chunk, 16 Mi stacks are covered (1.5 MiB of
    /// zero-initialised static memory, touched only as far as it is used).
    pub(super) const CAPACITY: usize = 1 << 16;

    /// Marks an entry that is being filled in.
    const BUSY: usize = 1;

    /// One registered chunk: `start == 0` free, `start == BUSY` being written, else valid.
    struct Entry {
        /// Lowest address of the chunk, stored last when publishing.
        start: AtomicUsize,
        /// One past the highest address of the chunk.
        end: AtomicUsize,
        /// Bytes per slot (the guard page is the lowest page of each slot).
        slot: AtomicUsize,
    }

    /// The entries.
    static ENTRIES: [Entry; CAPACITY] = [const {
        Entry {
            start: AtomicUsize::new(0),
            end: AtomicUsize::new(0),
            slot: AtomicUsize::new(0),
        }
    }; CAPACITY];

    /// One past the highest entry index ever used (the handler scans only this far).
    static HIGH_WATER: AtomicUsize = AtomicUsize::new(0);

    /// Where the next search for a free entry starts (only a hint).
    static HINT: AtomicUsize = AtomicUsize::new(0);

    /// Registers chunk `[start, start + len)` with slots of `slot` bytes. Returns the entry
    /// index, or `None` if the registry is full.
    pub(super) fn register(start: usize, len: usize, slot: usize) -> Option<usize> {
        let hint = HINT.load(Ordering::Relaxed).min(CAPACITY);
        for index in (hint..CAPACITY).chain(0..hint) {
            let entry = &ENTRIES[index];
            // Plain load first: when the registry is nearly full most entries are taken, and a
            // failing compare-and-swap still pulls the cache line in exclusively.
            if entry.start.load(Ordering::Relaxed) == 0
                && entry
                    .start
                    .compare_exchange(0, BUSY, Ordering::SeqCst, Ordering::Relaxed)
                    .is_ok()
            {
                entry.end.store(start.saturating_add(len), Ordering::SeqCst);
                entry.slot.store(slot, Ordering::SeqCst);
                HIGH_WATER.fetch_max(index + 1, Ordering::SeqCst);
                entry.start.store(start, Ordering::SeqCst);
                HINT.store(index + 1, Ordering::Relaxed);
                return Some(index);
            }
        }
        None
    }

    /// Removes entry `index` (returned by [`register`]) before its chunk is unmapped.
    pub(super) fn unregister(index: usize) {
        if let Some(entry) = ENTRIES.get(index) {
            entry.start.store(0, Ordering::SeqCst);
            HINT.fetch_min(index, Ordering::Relaxed);
        }
    }

    /// If `addr` lies in the guard page (the lowest `guard` bytes of a slot) of a registered
    /// chunk, returns that chunk's slot size. Async-signal-safe: atomic loads only, no panics.
    pub(super) fn find_guard(addr: usize, guard: usize) -> Option<usize> {
        let used = HIGH_WATER.load(Ordering::SeqCst).min(CAPACITY);
        for entry in ENTRIES.iter().take(used) {
            let start = entry.start.load(Ordering::SeqCst);
            if start <= BUSY {
                continue;
            }
            let end = entry.end.load(Ordering::SeqCst);
            let slot = entry.slot.load(Ordering::SeqCst);
            // If the entry was replaced while we read it, skip it: the chunk it described is
            // gone, so it cannot be the stack we are running on.
            if entry.start.load(Ordering::SeqCst) != start || slot == 0 {
                continue;
            }
            if addr >= start && addr < end && (addr - start) % slot < guard {
                return Some(slot);
            }
        }
        None
    }
}

thread_local! {
    /// The process running on this thread: (name pointer, name length, usable stack size), or
    /// zeros. Read by the overflow handler.
    ///
    /// Reading it inside a signal handler is fine because it is const-initialised and its type
    /// has no destructor: such a thread-local is a plain `#[thread_local]` static, with no lazy
    /// initialisation state, no destructor registration and no "already destroyed" state, so
    /// accessing it is a load relative to the thread pointer that cannot allocate, lock or
    /// panic. (In a dynamically loaded library the very first access on a thread may go through
    /// `__tls_get_addr`, which can allocate; [`set_running`] makes that first access before any
    /// process runs, so a fault inside a process never sees it.) Only the interrupted thread
    /// itself writes it, so the handler sees a consistent value unless the fault happened
    /// inside `set_running`, which touches no guard page.
    static RUNNING: Cell<(usize, usize, usize)> = const { Cell::new((0, 0, 0)) };
}

/// Publishes the process about to run on this thread, so that a stack overflow can name it.
/// Call it before resuming the process's coroutine; `stack_size` is its usable stack size in
/// bytes (0 = take it from the stack's pool).
///
/// The name bytes should stay valid until [`clear_running`] or the next `set_running`. This is
/// not a safety requirement: the overflow handler never reads the name itself but passes the
/// pointer to the `writev` system call, and the kernel checks it (a stale pointer prints garbage
/// or `<unreadable name>`, it cannot cause undefined behaviour). At most 256 bytes are printed.
pub(crate) fn set_running(name_ptr: *const u8, name_len: usize, stack_size: usize) {
    RUNNING.set((name_ptr as usize, name_len, stack_size));
}

/// Marks that no process is running on this thread (the overflow message then says
/// `<unknown>`).
#[allow(
    dead_code,
    reason = "part of the API; the scheduler may leave the last name in place"
)]
pub(crate) fn clear_running() {
    RUNNING.set((0, 0, 0));
}

/// The handler that was installed for a signal before ours, to chain to.
struct PrevAction {
    /// Its `sa_sigaction` (`SIG_DFL`, `SIG_IGN` or a function address).
    action: AtomicUsize,
    /// Its `sa_flags` (we only look at `SA_SIGINFO`).
    flags: AtomicI32,
}

/// The `SIGSEGV` handler before ours.
static PREV_SEGV: PrevAction = PrevAction {
    action: AtomicUsize::new(libc::SIG_DFL),
    flags: AtomicI32::new(0),
};

/// The `SIGBUS` handler before ours.
static PREV_BUS: PrevAction = PrevAction {
    action: AtomicUsize::new(libc::SIG_DFL),
    flags: AtomicI32::new(0),
};

/// Installs, once per process, the `SIGSEGV`/`SIGBUS` handler that turns a fault in one of our
/// guard pages into `csp: stack overflow in process '<name>' ...` on stderr and `abort()`, and
/// passes every other fault to the handler installed before it (Rust's own handler for thread
/// stack overflows, or the default action). Idempotent and thread-safe.
///
/// The handler runs with `SA_ONSTACK`: every thread that runs processes needs an alternate
/// signal stack ([`ensure_altstack`]; [`StackPool::new`] calls both).
///
/// A handler installed by someone else between our reading the old action and installing ours
/// would be lost; install this early (the scheduler does so when it creates its pool).
pub(crate) fn install_overflow_handler() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // The handler reads PAGE_SIZE; make sure it is set before it can run.
        let _ = page_size();
        install_for(libc::SIGSEGV, &PREV_SEGV);
        install_for(libc::SIGBUS, &PREV_BUS);
    });
}

/// Saves the current action for `sig` into `prev`, then installs [`handle_fault`].
fn install_for(sig: c_int, prev: &PrevAction) {
    // SAFETY: `sigaction` is a plain C struct for which all-zero bytes are a valid value
    // (handler SIG_DFL, no flags, empty mask).
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: only queries the current action (act = NULL) into a valid out-pointer.
    if unsafe { libc::sigaction(sig, ptr::null(), &mut old) } != 0 {
        return;
    }
    // Saved before our handler is installed, so the handler always finds it.
    prev.action.store(old.sa_sigaction, Ordering::SeqCst);
    prev.flags.store(old.sa_flags, Ordering::SeqCst);
    // SAFETY: as above, all-zero is a valid `sigaction`.
    let mut new: libc::sigaction = unsafe { std::mem::zeroed() };
    new.sa_sigaction =
        handle_fault as extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void) as usize;
    new.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
    // SAFETY: `new.sa_mask` is a valid, writable sigset_t.
    unsafe { libc::sigemptyset(&mut new.sa_mask) };
    // SAFETY: installs a valid action: `handle_fault` has the SA_SIGINFO signature and is
    // async-signal-safe (invariant 5).
    unsafe { libc::sigaction(sig, &new, ptr::null_mut()) };
}

/// The `SIGSEGV`/`SIGBUS` handler. Runs on the alternate signal stack, so it does not depend on
/// the (overflowed) stack of the faulting coroutine.
extern "C" fn handle_fault(sig: c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    // SAFETY: __errno_location has no preconditions and returns this thread's errno slot.
    let errno_slot = unsafe { libc::__errno_location() };
    // SAFETY: the errno slot is valid for the lifetime of the thread.
    let saved_errno = unsafe { *errno_slot };
    let mut from_kernel = false;
    if !info.is_null() {
        // SAFETY: for an SA_SIGINFO handler the kernel passes a valid siginfo_t; si_addr is
        // the meaningful union member for SIGSEGV/SIGBUS (and only used when si_code > 0, i.e.
        // the kernel reported a fault rather than someone sending the signal).
        let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr() as usize) };
        from_kernel = code > 0;
        let guard = PAGE_SIZE.load(Ordering::Relaxed);
        let hit = if from_kernel && guard != 0 {
            registry::find_guard(addr, guard)
        } else {
            None
        };
        if let Some(slot) = hit {
            report_overflow_and_abort(slot.saturating_sub(guard));
        }
    }
    chain(sig, info, ctx, from_kernel);
    // SAFETY: as above; restores errno for the interrupted code.
    unsafe { *errno_slot = saved_errno };
}

/// Writes the overflow message for the running process to stderr and aborts.
/// `registry_usable` is the usable stack size recorded for the faulting chunk.
fn report_overflow_and_abort(registry_usable: usize) -> ! {
    const UNKNOWN: &[u8] = b"<unknown>";
    const UNREADABLE: &[u8] = b"<unreadable name>";
    let (name_ptr, name_len, size) = RUNNING.try_with(Cell::get).unwrap_or((0, 0, 0));
    let size = if size != 0 { size } else { registry_usable };
    let mut digits = [0u8; 20];
    let kib = format_decimal(size / 1024, &mut digits);
    let name: (*const u8, usize) = if name_ptr == 0 || name_len == 0 {
        (UNKNOWN.as_ptr(), UNKNOWN.len())
    } else {
        (name_ptr as *const u8, name_len.min(MAX_NAME_BYTES))
    };
    if !write_overflow_message(name, kib) {
        write_overflow_message((UNREADABLE.as_ptr(), UNREADABLE.len()), kib);
    }
    // SAFETY: abort is async-signal-safe and does not return.
    unsafe { libc::abort() }
}

/// `writev`s the overflow message to fd 2. The name is passed to the kernel unread (it may be
/// stale; the kernel checks it). Returns false if the kernel could not read the name (EFAULT).
fn write_overflow_message(name: (*const u8, usize), kib: &[u8]) -> bool {
    const PREFIX: &[u8] = b"csp: stack overflow in process '";
    const MIDDLE: &[u8] = b"' (stack size ";
    const SUFFIX: &[u8] = b" KiB); give processes bigger stacks with Config::stack_size\n";
    let part = |ptr: *const u8, len: usize| libc::iovec {
        iov_base: ptr as *mut c_void,
        iov_len: len,
    };
    let iov = [
        part(PREFIX.as_ptr(), PREFIX.len()),
        part(name.0, name.1),
        part(MIDDLE.as_ptr(), MIDDLE.len()),
        part(kib.as_ptr(), kib.len()),
        part(SUFFIX.as_ptr(), SUFFIX.len()),
    ];
    loop {
        // SAFETY: `iov` is a valid array of 5 iovecs; the kernel validates every buffer and
        // reports EFAULT instead of faulting if one (the name) is not readable.
        let written = unsafe { libc::writev(2, iov.as_ptr(), iov.len() as c_int) };
        if written >= 0 {
            return true;
        }
        // SAFETY: __errno_location has no preconditions; the slot is valid for the thread.
        match unsafe { *libc::__errno_location() } {
            libc::EINTR => continue,
            libc::EFAULT => return false,
            _ => return true,
        }
    }
}

/// Formats `n` in decimal into the end of `buf`, returning the digits. No allocation.
fn format_decimal(mut n: usize, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    while i > 0 {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

/// Passes a fault that is not one of our stack overflows to the previously installed handler.
fn chain(sig: c_int, info: *mut libc::siginfo_t, ctx: *mut c_void, from_kernel: bool) {
    let prev = match sig {
        libc::SIGSEGV => &PREV_SEGV,
        libc::SIGBUS => &PREV_BUS,
        _ => return,
    };
    let action = prev.action.load(Ordering::SeqCst);
    let flags = prev.flags.load(Ordering::SeqCst);
    if action == libc::SIG_IGN && !from_kernel {
        // A sent (not kernel-raised) signal that was being ignored: keep ignoring it.
        return;
    }
    if action == libc::SIG_DFL || action == libc::SIG_IGN {
        // Restore the default action. A kernel-raised fault re-executes the faulting
        // instruction on return and is then fatal; a sent signal is raised again (it stays
        // pending while this handler runs and is delivered when it returns).
        // SAFETY: all-zero is a valid `sigaction` whose handler is SIG_DFL (0).
        let mut dfl: libc::sigaction = unsafe { std::mem::zeroed() };
        dfl.sa_sigaction = libc::SIG_DFL;
        // SAFETY: sigaction is async-signal-safe; `dfl` is a valid action.
        unsafe { libc::sigaction(sig, &dfl, ptr::null_mut()) };
        if !from_kernel {
            // SAFETY: raise is async-signal-safe.
            unsafe { libc::raise(sig) };
        }
        return;
    }
    if flags & libc::SA_SIGINFO != 0 {
        // SAFETY: `action` is the handler the kernel reported for `sig`, installed with
        // SA_SIGINFO, so it is a function with this signature (not SIG_DFL/SIG_IGN, checked
        // above); we pass it the arguments the kernel gave us.
        let handler = unsafe {
            std::mem::transmute::<usize, extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void)>(
                action,
            )
        };
        handler(sig, info, ctx);
    } else {
        // SAFETY: as above, for a handler installed without SA_SIGINFO.
        let handler = unsafe { std::mem::transmute::<usize, extern "C" fn(c_int)>(action) };
        handler(sig);
    }
}

/// An alternate signal stack installed by [`ensure_altstack`]; disabled and unmapped when the
/// thread exits.
#[derive(Debug)]
struct AltStack {
    /// Start of the mapping (its lowest page is a guard page).
    map: usize,
    /// Length of the mapping.
    len: usize,
    /// `ss_sp` as given to `sigaltstack`.
    sp: usize,
}

impl Drop for AltStack {
    fn drop(&mut self) {
        // SAFETY: all-zero is a valid `stack_t`.
        let mut current: libc::stack_t = unsafe { std::mem::zeroed() };
        // SAFETY: only queries the current alternate stack into a valid out-pointer.
        if unsafe { libc::sigaltstack(ptr::null(), &mut current) } != 0 {
            return; // Cannot tell whether it is still in use: leak it.
        }
        if current.ss_sp as usize == self.sp && current.ss_flags & libc::SS_DISABLE == 0 {
            if current.ss_flags & libc::SS_ONSTACK != 0 {
                return; // Running on it (cannot happen in a destructor): leak it.
            }
            let disable = libc::stack_t {
                ss_sp: ptr::null_mut(),
                ss_flags: libc::SS_DISABLE,
                ss_size: 0,
            };
            // SAFETY: disables this thread's alternate stack; we are not running on it.
            if unsafe { libc::sigaltstack(&disable, ptr::null_mut()) } != 0 {
                return; // Still registered: leak it rather than unmap memory the kernel uses.
            }
        }
        // SAFETY: the mapping was created by `ensure_altstack`, is owned by this value alone
        // and is no longer this thread's alternate signal stack (checked above).
        unsafe { libc::munmap(self.map as *mut c_void, self.len) };
    }
}

thread_local! {
    /// The alternate signal stack this module installed on this thread, if any.
    static OUR_ALTSTACK: Cell<Option<AltStack>> = const { Cell::new(None) };
}

/// Makes sure the calling thread has an alternate signal stack, so that the overflow handler can
/// run when the process's stack is exhausted. Does nothing if one is set (Rust's runtime sets one
/// up for the main thread and the threads it spawns); otherwise maps a 64 KiB stack (plus a guard
/// page) that is released when the thread exits. Call it on every thread that runs processes
/// ([`StackPool::new`] does).
pub(crate) fn ensure_altstack() -> Result<(), StackError> {
    let fail = |call: &'static str, errno: i32| StackError {
        stack_no: 0,
        kind: StackErrorKind::AltStack { call, errno },
    };
    // SAFETY: all-zero is a valid `stack_t`.
    let mut current: libc::stack_t = unsafe { std::mem::zeroed() };
    // SAFETY: only queries the current alternate stack into a valid out-pointer.
    if unsafe { libc::sigaltstack(ptr::null(), &mut current) } != 0 {
        return Err(fail("sigaltstack", errno()));
    }
    if current.ss_flags & libc::SS_DISABLE == 0 {
        return Ok(());
    }
    let page = page_size();
    // SAFETY: getauxval has no preconditions; it returns 0 for unknown entries.
    let min_kernel = unsafe { libc::getauxval(libc::AT_MINSIGSTKSZ) } as usize;
    let size =
        round_up(ALTSTACK_SIZE.max(min_kernel.saturating_mul(4)), page).unwrap_or(ALTSTACK_SIZE);
    let len = size + page;
    // SAFETY: a fresh private anonymous mapping at an address of the kernel's choosing.
    let map = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if map == libc::MAP_FAILED {
        return Err(fail("mmap of the signal stack", errno()));
    }
    // Best effort guard page below the signal stack; without it the signal stack still works.
    let advice = match GuardKind::best_available() {
        // SAFETY: the lowest page of the mapping created above, unused.
        GuardKind::Madvise => unsafe { libc::madvise(map, page, MADV_GUARD_INSTALL) },
        // SAFETY: as above.
        GuardKind::Mprotect => unsafe { libc::mprotect(map, page, libc::PROT_NONE) },
    };
    let _ = advice;
    let sp = map as usize + page;
    let stack = libc::stack_t {
        ss_sp: sp as *mut c_void,
        ss_flags: 0,
        ss_size: size,
    };
    // SAFETY: `stack` describes `size` writable bytes that stay mapped until the AltStack
    // destructor has disabled the alternate stack again.
    if unsafe { libc::sigaltstack(&stack, ptr::null_mut()) } != 0 {
        let error = fail("sigaltstack", errno());
        // SAFETY: the mapping created above, never registered anywhere.
        unsafe { libc::munmap(map, len) };
        return Err(error);
    }
    let ours = AltStack {
        map: map as usize,
        len,
        sp,
    };
    // If the thread is already tearing down its thread-locals, the closure is not run and
    // `ours` is dropped... which would unmap a registered stack; so forget it instead.
    let mut ours = Some(ours);
    let stored = OUR_ALTSTACK.try_with(|slot| slot.set(ours.take()));
    if stored.is_err() {
        std::mem::forget(ours);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Output};

    use corosensei::{Coroutine, CoroutineResult};

    /// Environment variable telling a re-executed test binary which child scenario to run.
    const CHILD_ENV: &str = "CSP_STACK_TEST_CHILD";

    /// The libtest name of test `name` in this module (without the crate name).
    fn test_path(name: &str) -> String {
        let module = module_path!();
        let without_crate = module.split_once("::").map_or(module, |(_, rest)| rest);
        format!("{without_crate}::{name}")
    }

    /// Re-executes this test binary, running only test `name` with `CHILD_ENV=mode`.
    fn run_child(name: &str, mode: &str) -> Output {
        let exe = std::env::current_exe().expect("path of the test binary");
        Command::new(exe)
            .args([
                "--exact",
                &test_path(name),
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, mode)
            .output()
            .expect("spawn the test binary as a child")
    }

    /// Describes a child's outcome for assertion messages.
    fn describe(out: &Output) -> String {
        format!(
            "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// Keeps an intentionally crashing child from writing a core dump.
    fn no_core_dumps() {
        let zero = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: plain syscalls on this process with valid arguments.
        unsafe {
            libc::setrlimit(libc::RLIMIT_CORE, &zero);
            libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
        }
    }

    /// Whether the kernel accepts `write(pipe, addr, 1)` from `addr` (false: EFAULT).
    fn kernel_can_read(addr: usize) -> bool {
        let mut fds = [0 as c_int; 2];
        // SAFETY: `fds` is a valid array of two ints.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: the kernel validates `addr` and reports EFAULT if it is not readable.
        let n = unsafe { libc::write(fds[1], addr as *const c_void, 1) };
        let err = errno();
        // SAFETY: closing the two descriptors created above.
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
        if n == 1 {
            true
        } else {
            assert_eq!(err, libc::EFAULT, "unexpected write error");
            false
        }
    }

    /// The `/proc/self/maps` line whose range contains `addr`: (start, end, perms).
    fn mapping_of(addr: usize) -> Option<(usize, usize, String)> {
        let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
        maps.lines().find_map(|line| {
            let mut fields = line.split_whitespace();
            let (lo, hi) = fields.next()?.split_once('-')?;
            let lo = usize::from_str_radix(lo, 16).ok()?;
            let hi = usize::from_str_radix(hi, 16).ok()?;
            let perms = fields.next()?.to_owned();
            (lo <= addr && addr < hi).then_some((lo, hi, perms))
        })
    }

    /// Writes the highest and lowest usable byte of `stack` and reads them back.
    fn touch_both_ends(stack: &ProcStack, value: u8) {
        let top = (stack.base().get() - 1) as *mut u8;
        let bottom = stack.usable_bottom() as *mut u8;
        // SAFETY: both bytes lie in the stack's usable, read-write area, which no coroutine is
        // using.
        unsafe {
            top.write_volatile(value);
            bottom.write_volatile(value);
            assert_eq!(top.read_volatile(), value);
            assert_eq!(bottom.read_volatile(), value);
        }
    }

    #[test]
    fn sizes_are_rounded_and_have_a_minimum() {
        let page = page_size();
        assert_eq!(StackPool::new(0).stack_size(), MIN_STACK_SIZE);
        assert_eq!(
            StackPool::new(MIN_STACK_SIZE + 1).stack_size(),
            MIN_STACK_SIZE + page
        );
        let mut pool = StackPool::new(64 * 1024);
        assert_eq!(pool.stack_size(), 64 * 1024);
        let stack = pool.take().expect("a stack");
        assert_eq!(stack.base().get() % 16, 0);
        assert_eq!(stack.base().get() - stack.limit().get(), 64 * 1024 + page);
        assert_eq!(stack.usable_bottom(), stack.limit().get() + page);
        assert_eq!(stack.usable_size(), 64 * 1024);
    }

    #[test]
    fn give_back_then_take_is_lifo() {
        let mut pool = StackPool::new(16 * 1024);
        let a = pool.take().expect("stack a");
        let b = pool.take().expect("stack b");
        let (a_base, b_base) = (a.base(), b.base());
        assert_ne!(a_base, b_base);
        pool.give_back(a);
        pool.give_back(b);
        let stats = pool.stats();
        assert_eq!((stats.reserved, stats.free), (2, 2));
        assert_eq!(pool.take().expect("reuse").base(), b_base);
        assert_eq!(pool.take().expect("reuse").base(), a_base);
        assert_eq!(pool.stats().free, 0);
        assert_eq!(pool.stats().reserved, 2);
        assert_eq!(
            pool.take().expect("new").base().get() - a_base.get(),
            2 * pool.slot_size
        );
    }

    #[test]
    fn ten_thousand_stacks_are_usable_top_and_bottom() {
        let mut pool = StackPool::new(16 * 1024);
        let stacks: Vec<ProcStack> = (0..10_000)
            .map(|i| {
                let stack = pool.take().expect("stack");
                touch_both_ends(&stack, i as u8);
                stack
            })
            .collect();
        assert_eq!(pool.stats().reserved, 10_000);
        for (i, stack) in stacks.iter().enumerate() {
            // SAFETY: the usable top byte written above; still mapped (the stack is alive).
            let top = unsafe { ((stack.base().get() - 1) as *const u8).read_volatile() };
            assert_eq!(top, i as u8);
        }
        for stack in stacks {
            pool.give_back(stack);
        }
        assert_eq!(pool.stats().free, 10_000);
    }

    /// Checks that every guard page of a few chunks' worth of stacks is unreadable and the
    /// usable bytes next to it are readable.
    fn check_guards(kind: GuardKind) -> StackPool {
        let mut pool = StackPool::with_guard(16 * 1024, kind);
        let stacks: Vec<ProcStack> = (0..STACKS_PER_CHUNK + 3)
            .map(|_| pool.take().expect("stack"))
            .collect();
        for stack in &stacks {
            let guard = stack.limit().get();
            assert!(!kernel_can_read(guard), "guard page {guard:#x} is readable");
            assert!(!kernel_can_read(stack.usable_bottom() - 1));
            assert!(kernel_can_read(stack.usable_bottom()));
            assert!(kernel_can_read(stack.base().get() - 1));
            assert_eq!(
                registry::find_guard(guard + 100, page_size()),
                Some(pool.slot_size),
                "chunk not registered"
            );
            assert_eq!(
                registry::find_guard(stack.usable_bottom(), page_size()),
                None
            );
        }
        for stack in stacks {
            pool.give_back(stack);
        }
        pool
    }

    #[test]
    fn madvise_guards_fault_and_keep_one_mapping_per_chunk() {
        if GuardKind::best_available() != GuardKind::Madvise {
            eprintln!("skipped: this kernel lacks MADV_GUARD_INSTALL");
            return;
        }
        let mut pool = check_guards(GuardKind::Madvise);
        assert_eq!(pool.stats().guard, GuardKind::Madvise);
        let stack = pool.take().expect("stack");
        let chunk_start = stack.chunk.start.get();
        let chunk_end = chunk_start + stack.chunk.len;
        let (lo, hi, perms) = mapping_of(chunk_start).expect("chunk in /proc/self/maps");
        assert!(
            lo <= chunk_start && chunk_end <= hi,
            "chunk {chunk_start:#x}..{chunk_end:#x} is split: mapping {lo:#x}..{hi:#x}"
        );
        assert_eq!(perms, "rw-p");
    }

    #[test]
    fn mprotect_fallback_guards_fault() {
        let mut pool = check_guards(GuardKind::Mprotect);
        assert_eq!(pool.stats().guard, GuardKind::Mprotect);
        let stack = pool.take().expect("stack");
        let (_, _, perms) = mapping_of(stack.limit().get()).expect("guard in /proc/self/maps");
        assert_eq!(perms, "---p");
        let (_, _, perms) = mapping_of(stack.usable_bottom()).expect("stack in /proc/self/maps");
        assert_eq!(perms, "rw-p");
    }

    #[test]
    fn coroutine_runs_on_a_pool_stack_and_returns_it() {
        let mut pool = StackPool::new(32 * 1024);
        for round in 0..3u64 {
            let stack = pool.take().expect("stack");
            let (lo, hi) = (stack.usable_bottom(), stack.base().get());
            let mut co = Coroutine::with_stack(stack, move |yielder, start: u64| {
                let local = std::hint::black_box(start);
                let here = &local as *const u64 as usize;
                let next = yielder.suspend(here);
                local + next
            });
            let CoroutineResult::Yield(addr) = co.resume(round) else {
                panic!("coroutine did not yield")
            };
            assert!(lo <= addr && addr < hi, "coroutine ran outside its stack");
            assert_eq!(co.resume(10), CoroutineResult::Return(round + 10));
            pool.give_back(co.into_stack());
        }
        assert_eq!(pool.stats().reserved, 1);
    }

    #[test]
    fn stack_outlives_its_pool() {
        let mut pool = StackPool::new(16 * 1024);
        let stack = pool.take().expect("stack");
        drop(pool);
        touch_both_ends(&stack, 7);
        assert!(!kernel_can_read(stack.limit().get()));
    }

    #[test]
    fn foreign_size_stack_is_not_reused() {
        let mut small = StackPool::new(16 * 1024);
        let mut big = StackPool::new(64 * 1024);
        big.give_back(small.take().expect("stack"));
        assert_eq!(big.stats().free, 0);
    }

    #[test]
    fn enomem_in_fallback_mode_names_max_map_count() {
        let mut pool = StackPool::with_guard(16 * 1024, GuardKind::Mprotect);
        pool.fail_mmap = Some(libc::ENOMEM);
        let err = pool.take().expect_err("injected mmap failure");
        assert!(err.is_map_count_exhausted());
        let msg = err.to_string();
        for needle in [
            "cannot create stack #1:",
            "the kernel refused another memory mapping",
            "vm.max_map_count = ",
            "MADV_GUARD_INSTALL",
            "sysctl -w vm.max_map_count=",
            "fewer live processes",
        ] {
            assert!(msg.contains(needle), "{needle:?} missing in: {msg}");
        }
        if let Some(max) = read_max_map_count() {
            assert!(msg.contains(&format!("vm.max_map_count = {max};")), "{msg}");
        }

        // The same for the mprotect of a guard page, a few stacks in.
        pool.take().expect("stack 1");
        pool.take().expect("stack 2");
        pool.fail_guard = Some(libc::ENOMEM);
        let msg = pool
            .take()
            .expect_err("injected mprotect failure")
            .to_string();
        assert!(msg.contains("cannot create stack #3:"), "{msg}");
        assert!(msg.contains("mprotect(PROT_NONE)"), "{msg}");
        assert!(msg.contains("vm.max_map_count"), "{msg}");
        // The failed slot is retried, not skipped.
        let stack = pool.take().expect("stack 3");
        assert_eq!(pool.stats().reserved, 3);
        drop(stack);
    }

    #[test]
    fn other_mmap_errors_name_errno_and_sizes() {
        let mut pool = StackPool::with_guard(64 * 1024, GuardKind::Madvise);
        pool.fail_mmap = Some(libc::EACCES);
        let err = pool.take().expect_err("injected mmap failure");
        assert!(!err.is_map_count_exhausted());
        let msg = err.to_string();
        for needle in [
            "cannot create stack #1:",
            "EACCES",
            "os error 13",
            "64 KiB usable",
            "stacks",
        ] {
            assert!(msg.contains(needle), "{needle:?} missing in: {msg}");
        }
        pool.fail_mmap = Some(libc::ENOMEM);
        let msg = pool.take().expect_err("injected ENOMEM").to_string();
        if pool.stats().guard == GuardKind::Madvise {
            assert!(msg.contains("ENOMEM") && msg.contains("ulimit -v"), "{msg}");
        }
        pool.fail_guard = Some(libc::EINVAL);
        let msg = pool.take().expect_err("injected guard failure").to_string();
        assert!(
            msg.contains("EINVAL") && msg.contains("guard page"),
            "{msg}"
        );
        assert!(pool.take().is_ok());
    }

    #[test]
    fn too_large_stacks_are_refused() {
        let mut pool = StackPool::new(MAX_STACK_SIZE + 1);
        let msg = pool.take().expect_err("too large").to_string();
        assert!(msg.contains("larger than the supported maximum"), "{msg}");
        let mut pool = StackPool::new(usize::MAX);
        assert!(pool.take().is_err());
    }

    #[test]
    fn registry_registers_finds_and_forgets() {
        // A range no real mapping can occupy (non-canonical on x86_64).
        let start = usize::MAX - (1 << 24) + 1;
        let slot = 5 * 4096;
        let index = registry::register(start, 4 * slot, slot).expect("registry has room");
        assert_eq!(registry::find_guard(start + slot + 10, 4096), Some(slot));
        assert_eq!(registry::find_guard(start + slot + 4096, 4096), None);
        assert_eq!(registry::find_guard(start + 4 * slot, 4096), None);
        registry::unregister(index);
        assert_eq!(registry::find_guard(start + slot + 10, 4096), None);
    }

    #[test]
    fn decimal_formatting() {
        let mut buf = [0u8; 20];
        assert_eq!(format_decimal(0, &mut buf), b"0");
        assert_eq!(format_decimal(64, &mut buf), b"64");
        assert_eq!(
            format_decimal(usize::MAX, &mut buf),
            usize::MAX.to_string().as_bytes()
        );
    }

    #[test]
    fn altstack_is_installed_when_missing() {
        std::thread::spawn(|| {
            // SAFETY: all-zero is a valid `stack_t`.
            let mut current: libc::stack_t = unsafe { std::mem::zeroed() };
            let disable = libc::stack_t {
                ss_sp: ptr::null_mut(),
                ss_flags: libc::SS_DISABLE,
                ss_size: 0,
            };
            // SAFETY: disables this (test) thread's alternate stack; we are not running on it.
            assert_eq!(unsafe { libc::sigaltstack(&disable, ptr::null_mut()) }, 0);
            ensure_altstack().expect("altstack");
            // SAFETY: query into a valid out-pointer.
            assert_eq!(unsafe { libc::sigaltstack(ptr::null(), &mut current) }, 0);
            assert_eq!(current.ss_flags & libc::SS_DISABLE, 0);
            assert!(current.ss_size >= ALTSTACK_SIZE);
            ensure_altstack().expect("idempotent");
        })
        .join()
        .expect("thread");
    }

    /// Recurses until the stack overflows.
    #[inline(never)]
    fn recurse_forever(depth: u64) -> u64 {
        let frame = std::hint::black_box([depth; 64]);
        if std::hint::black_box(depth) == u64::MAX {
            return 0;
        }
        recurse_forever(depth + 1).wrapping_add(frame[depth as usize % 64])
    }

    /// Child side of the overflow tests: does nothing unless re-executed with `CHILD_ENV`.
    #[test]
    fn child_overflows_its_stack() {
        let Ok(mode) = std::env::var(CHILD_ENV) else {
            return;
        };
        let kind = match mode.as_str() {
            "overflow-madvise" => GuardKind::Madvise,
            "overflow-mprotect" => GuardKind::Mprotect,
            "overflow-own-altstack" => {
                let disable = libc::stack_t {
                    ss_sp: ptr::null_mut(),
                    ss_flags: libc::SS_DISABLE,
                    ss_size: 0,
                };
                // SAFETY: disables this thread's alternate stack so that `StackPool::new`
                // must install ours; we are not running on it.
                assert_eq!(unsafe { libc::sigaltstack(&disable, ptr::null_mut()) }, 0);
                GuardKind::Madvise
            }
            _ => return,
        };
        no_core_dumps();
        let mut pool = StackPool::with_guard(64 * 1024, kind);
        let stack = pool.take().expect("stack");
        let name = "deep";
        set_running(name.as_ptr(), name.len(), pool.stack_size());
        let mut co = Coroutine::<(), (), u64, _>::with_stack(stack, |_, ()| recurse_forever(0));
        let result = co.resume(());
        clear_running();
        eprintln!("child: the coroutine returned {result:?} instead of overflowing");
        std::process::exit(3);
    }

    /// Asserts that the overflow child in `mode` died of SIGABRT after naming the process.
    fn assert_overflow_reported(mode: &str) {
        let out = run_child("child_overflows_its_stack", mode);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGABRT),
            "{}",
            describe(&out)
        );
        assert!(
            stderr.contains(
                "csp: stack overflow in process 'deep' (stack size 64 KiB); give processes \
                 bigger stacks with Config::stack_size\n"
            ),
            "{}",
            describe(&out)
        );
    }

    #[test]
    fn overflow_is_reported_with_madvise_guards() {
        assert_overflow_reported("overflow-madvise");
    }

    #[test]
    fn overflow_is_reported_with_mprotect_guards() {
        assert_overflow_reported("overflow-mprotect");
    }

    #[test]
    fn overflow_is_reported_on_our_own_altstack() {
        assert_overflow_reported("overflow-own-altstack");
    }

    /// Child side: a fault outside our stacks must reach the previous handler (a plain SIGSEGV).
    #[test]
    fn child_faults_elsewhere() {
        if std::env::var(CHILD_ENV).as_deref() != Ok("foreign-fault") {
            return;
        }
        no_core_dumps();
        let _pool = StackPool::new(16 * 1024);
        let page = page_size();
        // SAFETY: a fresh inaccessible mapping at an address of the kernel's choosing.
        let map = unsafe {
            libc::mmap(
                ptr::null_mut(),
                page,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(map, libc::MAP_FAILED);
        // SAFETY: deliberately faults (the page is PROT_NONE); the process is killed by
        // SIGSEGV before the write could be observed by any Rust code.
        unsafe { (map as *mut u8).write_volatile(1) };
        eprintln!("child: the write to a PROT_NONE page did not fault");
        std::process::exit(3);
    }

    #[test]
    fn faults_outside_our_stacks_are_chained() {
        let out = run_child("child_faults_elsewhere", "foreign-fault");
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGSEGV),
            "{}",
            describe(&out)
        );
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("csp:"),
            "{}",
            describe(&out)
        );
    }

    /// Child side: with mprotect guards, take stacks until vm.max_map_count stops us.
    #[test]
    fn child_exhausts_map_count() {
        if std::env::var(CHILD_ENV).as_deref() != Ok("map-count") {
            return;
        }
        let max = read_max_map_count().expect("vm.max_map_count");
        let mut pool = StackPool::with_guard(16 * 1024, GuardKind::Mprotect);
        // Allocated up front: growing it at the limit would need a new mapping itself.
        let mut held = Vec::with_capacity(max / 2 + 1024);
        let err = loop {
            match pool.take() {
                Ok(stack) => held.push(stack),
                Err(err) => break err,
            }
            assert!(held.len() <= max, "no error after {} stacks", held.len());
        };
        let count = held.len();
        drop(held);
        drop(pool);
        eprintln!(
            "CHILD count={count} map_count={} error={err}",
            err.is_map_count_exhausted()
        );
    }

    #[test]
    fn running_out_of_mappings_is_explained() {
        match read_max_map_count() {
            Some(max) if max <= 1 << 20 => {}
            other => {
                eprintln!("skipped: vm.max_map_count is {other:?}");
                return;
            }
        }
        let out = run_child("child_exhausts_map_count", "map-count");
        assert!(out.status.success(), "{}", describe(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let line = stderr
            .lines()
            .find(|l| l.starts_with("CHILD "))
            .unwrap_or_else(|| panic!("no result line: {}", describe(&out)));
        let count: usize = line
            .split_once("count=")
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .expect("stack count");
        assert!(count > 1000, "only {count} stacks: {line}");
        assert!(line.contains("map_count=true"), "{line}");
        assert!(
            line.contains(&format!("cannot create stack #{}:", count + 1)),
            "{line}"
        );
        assert!(line.contains("vm.max_map_count = "), "{line}");
    }
}
