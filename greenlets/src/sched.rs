//! The scheduler: one per OS thread, running every green process of that
//! thread as a corosensei coroutine.
//!
//! # Model
//!
//! - The program's own thread is the process `main` (pid 0). It has no
//!   coroutine: when main blocks, it runs the scheduling loop on its own stack
//!   until something wakes it. Every other process is a coroutine that
//!   suspends when it blocks; the loop resumes it when it is woken.
//! - A blocking operation first registers its offers (on channels, timers,
//!   io) tagged with `(pid, epoch)`, where `epoch` is fresh for every wait,
//!   then blocks. Whoever completes an offer calls [`Sched::wake`], which
//!   succeeds only if that process still waits with that epoch: so exactly
//!   one offer of a wait commits, and stale offers left elsewhere are
//!   recognised and skipped. The woken process removes its other offers.
//! - When nothing is runnable, the loop fires due timers, waits for io or the
//!   next timer (or, on the simulated clock, jumps to it), and otherwise
//!   declares a deadlock: every process blocked on a channel is woken with
//!   `Error::Deadlock`, and until the network is empty again every new
//!   channel wait fails the same way at once.
//!
//! # Invariants
//!
//! - A process is in the run queue at most once, and only while it does not wait.
//! - `wait.is_some()` exactly while a process is blocked.
//! - A process's parent (par) and spawner outlive it: `par` waits for its
//!   children, and a process waits for the processes it spawned when its body ends.
//! - The scheduler's `RefCell` is never borrowed across a coroutine switch.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant};

use corosensei::{Coroutine, CoroutineResult, Yielder};
use csp_runtime::{
    BlockedProcess, Clock, Config, DeadlockReport, Direction, Error, Result, Schedule,
};

use crate::rng::SplitMix64;
use crate::stack::{self, ProcStack, StackPool};

/// A process's index in the scheduler's table.
pub(crate) type Pid = u32;

/// The program's own thread.
pub(crate) const MAIN: Pid = 0;

/// Boxed so that handing it between the table and the loop moves one pointer.
type Coro = Box<Coroutine<Wake, (), (), ProcStack>>;

/// The yielder of a process's coroutine: resuming it passes how its wait ended.
type ProcYielder = Yielder<Wake, ()>;

/// How a wait ended. `Copy` and small on purpose: it is written on every wake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Not woken yet.
    Pending,
    /// Offer number `n` of the wait committed.
    Guard(usize),
    /// The channel was poisoned.
    Poisoned,
    /// The channel was retired.
    Retired,
    /// The network deadlocked (the report is `Sched::last_deadlock`).
    Deadlock,
}

impl Wake {
    /// The wake that fails a wait with `e` (a shutdown error).
    pub(crate) fn failing(e: &Error) -> Wake {
        match e {
            Error::Retired => Wake::Retired,
            _ => Wake::Poisoned,
        }
    }
}

/// Something a process can wait on, as a deadlock report shows it.
pub(crate) trait Describe {
    /// The channel's name.
    fn name(&self) -> &str;
}

/// Describes the guards of a blocked alternation, given the pointer and
/// length stored in [`WaitKind::Alt`].
pub(crate) type DescribeGuards = unsafe fn(*const (), usize) -> String;

/// What a blocked process waits on. `Copy`, so that starting a wait writes a
/// few words and drops nothing.
#[derive(Clone, Copy)]
pub(crate) enum WaitKind {
    /// A read or a write on one channel. The pointer stays valid while the
    /// process waits: the blocked operation holds the channel.
    Chan(Direction, *const dyn Describe),
    /// An alternation: its guard slice (pointer, length) on the blocked
    /// process's stack, valid while it waits, and how to describe it.
    Alt(*const (), usize, DescribeGuards),
    Sleep,
    Io,
    Par,
    JoinSpawned,
    JoinAll,
    Yield,
}

/// `read on channel 'x'` / `write on channel 'x'`.
pub(crate) fn describe_chan(dir: Direction, c: *const dyn Describe) -> String {
    // SAFETY: callers pass a channel pointer of a process that is still
    // blocked, so its operation still holds the channel.
    let name = unsafe { &*c }.name();
    match dir {
        Direction::Read => format!("read on channel '{name}'"),
        Direction::Write => format!("write on channel '{name}'"),
    }
}

impl WaitKind {
    /// True for the waits that a deadlock ends (the others end by themselves
    /// once the processes they wait for end).
    fn is_channel_wait(&self) -> bool {
        matches!(self, WaitKind::Chan(..) | WaitKind::Alt(..))
    }

    fn describe(&self) -> String {
        match *self {
            WaitKind::Chan(dir, c) => describe_chan(dir, c),
            // SAFETY: see `WaitKind::Alt`: we only describe blocked processes,
            // whose alternation frame (and guard slice) is still alive.
            WaitKind::Alt(ptr, len, describe) => unsafe { describe(ptr, len) },
            WaitKind::Sleep => "sleep".to_owned(),
            WaitKind::Io => "io".to_owned(),
            WaitKind::Par => "par (its processes to end)".to_owned(),
            WaitKind::JoinSpawned => "the processes it spawned to end".to_owned(),
            WaitKind::JoinAll => "every process of the run to end".to_owned(),
            WaitKind::Yield => "its turn".to_owned(),
        }
    }
}

struct ProcCtl {
    name: Cow<'static, str>,
    coro: Option<Coro>,
    yielder: *const ProcYielder,
    epoch: u64,
    wait: Option<WaitKind>,
    wake: Wake,
    parent: Option<Pid>,
    spawner: Option<Pid>,
    live_children: usize,
    spawned_live: usize,
    seq: u64,
}

impl ProcCtl {
    fn new(name: Cow<'static, str>, seq: u64) -> Self {
        ProcCtl {
            name,
            coro: None,
            yielder: std::ptr::null(),
            epoch: 0,
            wait: None,
            wake: Wake::Pending,
            parent: None,
            spawner: None,
            live_children: 0,
            spawned_live: 0,
            seq,
        }
    }
}

struct IoDone {
    pid: Pid,
    epoch: u64,
}

#[derive(Clone, Copy)]
struct TimerEntry {
    pid: Pid,
    epoch: u64,
    guard: usize,
}

/// A process to start: its name and its body.
pub(crate) type Entry = (Cow<'static, str>, Box<dyn FnOnce()>);

/// The key of a registered timer, to cancel it.
pub(crate) type TimerKey = (Duration, u64);

/// What the loop found to do next.
enum Next {
    Main,
    /// Resume this process, telling it how its wait ended.
    Run(Pid, Coro, Wake),
}

/// The scheduler of one thread. See the [module docs](self).
pub(crate) struct Sched {
    procs: Vec<Option<ProcCtl>>,
    free: Vec<Pid>,
    live: usize,
    runq: VecDeque<Pid>,
    current: Pid,
    next_epoch: u64,
    next_seq: u64,
    rng: Option<SplitMix64>,
    clock: Clock,
    start: Instant,
    sim_now: Duration,
    timers: BTreeMap<TimerKey, TimerEntry>,
    timer_seq: u64,
    io_pending: usize,
    io_tx: Sender<IoDone>,
    io_rx: Receiver<IoDone>,
    deadlocked: Option<Arc<DeadlockReport>>,
    /// The report of the latest deadlock, for waits woken by it.
    last_deadlock: Arc<DeadlockReport>,
    pool: StackPool,
    in_run: bool,
    config: Config,
    /// Set while a `with_sched` call holds `&mut Sched`.
    busy: bool,
}

thread_local! {
    /// This thread's scheduler, or null before first use. A plain pointer in a
    /// const thread-local with no destructor: reading it costs one load, with
    /// no lazy-initialisation or destructor-state check (measured: the
    /// `RefCell<Option<Box<_>>>` it replaced was a third of the time per hop).
    static SCHED: Cell<*mut Sched> = const { Cell::new(std::ptr::null_mut()) };
    /// The running process and its coroutine's yielder (null before the
    /// coroutine first ran, and for main). Set by the loop around each resume.
    static CURRENT: Cell<(Pid, *const ProcYielder)> = const { Cell::new((MAIN, std::ptr::null())) };
    /// Owns the scheduler and drops it when the thread ends.
    static OWNER: RefCell<Option<Box<Sched>>> = const { RefCell::new(None) };
}

#[cold]
fn init_sched() -> *mut Sched {
    let mut boxed = Box::new(Sched::new(Config::new()));
    let ptr: *mut Sched = &mut *boxed;
    let owned = OWNER.try_with(|o| {
        if let Ok(mut o) = o.try_borrow_mut() {
            *o = Some(boxed);
            true
        } else {
            false
        }
    });
    if owned != Ok(true) {
        // The thread is ending (its destructors run): leak this late scheduler
        // rather than free it while the pointer may still be used.
        return Box::into_raw(Box::new(Sched::new(Config::new())));
    }
    SCHED.set(ptr);
    ptr
}

/// Runs `f` on this thread's scheduler, making it on first use.
///
/// # Panics
/// If called again from inside `f` (a bug in this crate, never user input).
#[inline]
pub(crate) fn with_sched<R>(f: impl FnOnce(&mut Sched) -> R) -> R {
    let mut p = SCHED.get();
    if p.is_null() {
        p = init_sched();
    }
    // SAFETY: `p` points to this thread's scheduler, which lives (owned by
    // `OWNER`) until the thread's destructors run, and `Sched::drop` resets
    // `SCHED` to null first. Only this thread reads `SCHED`. The `busy` flag,
    // read and written through the raw pointer without making a reference,
    // guarantees that no other `&mut Sched` from an enclosing `with_sched`
    // exists while we make this one; `Busy` clears it even if `f` panics.
    unsafe {
        assert!(!(*p).busy, "csp-greenlets: the scheduler was re-entered");
        (*p).busy = true;
        struct Busy(*mut Sched);
        impl Drop for Busy {
            fn drop(&mut self) {
                // SAFETY: same pointer, same thread, still alive (see above).
                unsafe { (*self.0).busy = false };
            }
        }
        let _busy = Busy(p);
        f(&mut *p)
    }
}

impl Sched {
    fn new(config: Config) -> Self {
        stack::install_overflow_handler();
        if let Err(e) = stack::ensure_altstack() {
            // Processes still run; only the stack-overflow message is lost.
            eprintln!(
                "csp: warning: no signal stack on this thread, a stack overflow will not be named: {e}"
            );
        }
        let (io_tx, io_rx) = channel();
        let mut s = Sched {
            procs: vec![Some(ProcCtl::new(Cow::Borrowed("main"), 0))],
            free: Vec::new(),
            live: 0,
            runq: VecDeque::new(),
            current: MAIN,
            next_epoch: 1,
            next_seq: 1,
            rng: None,
            clock: Clock::Real,
            start: Instant::now(),
            sim_now: Duration::ZERO,
            timers: BTreeMap::new(),
            timer_seq: 0,
            io_pending: 0,
            io_tx,
            io_rx,
            deadlocked: None,
            last_deadlock: Arc::default(),
            pool: StackPool::new(config.stack_size),
            in_run: false,
            config: Config::new(),
            busy: false,
        };
        s.apply(config);
        s
    }

    fn apply(&mut self, config: Config) {
        self.rng = match config.schedule {
            Schedule::Fifo => None,
            Schedule::Seeded(seed) => Some(SplitMix64::new(seed)),
        };
        self.clock = config.clock;
        self.start = Instant::now();
        self.sim_now = Duration::ZERO;
        if self.pool.stack_size() < config.stack_size || config.stack_size != self.config.stack_size
        {
            self.pool = StackPool::new(config.stack_size);
        }
        self.config = config;
    }

    #[inline]
    fn proc(&self, pid: Pid) -> Option<&ProcCtl> {
        self.procs.get(pid as usize).and_then(Option::as_ref)
    }

    #[inline]
    fn proc_mut(&mut self, pid: Pid) -> Option<&mut ProcCtl> {
        self.procs.get_mut(pid as usize).and_then(Option::as_mut)
    }

    /// The running process's name.
    pub(crate) fn current_name(&self) -> String {
        self.proc(self.current)
            .map_or_else(|| "main".to_owned(), |p| p.name.to_string())
    }

    /// Time on the run's clock.
    pub(crate) fn now(&self) -> Duration {
        match self.clock {
            Clock::Real => self.start.elapsed(),
            Clock::Simulated => self.sim_now,
        }
    }

    /// Starts a wait of the running process: returns its pid and the wait's
    /// epoch, or the deadlock error if the network is deadlocked.
    #[inline]
    pub(crate) fn begin_wait(&mut self, kind: WaitKind) -> Result<(Pid, u64)> {
        if kind.is_channel_wait() {
            if let Some(report) = &self.deadlocked {
                return Err(Error::Deadlock(report.clone()));
            }
        }
        let epoch = self.next_epoch;
        self.next_epoch += 1;
        let pid = self.current;
        match self.proc_mut(pid) {
            Some(p) => {
                p.epoch = epoch;
                p.wait = Some(kind);
                p.wake = Wake::Pending;
                Ok((pid, epoch))
            }
            None => Err(Error::config(
                "the running process is not known to the scheduler",
            )),
        }
    }

    /// True if `pid` still waits with `epoch`.
    #[inline]
    pub(crate) fn is_waiting(&self, pid: Pid, epoch: u64) -> bool {
        self.proc(pid)
            .is_some_and(|p| p.epoch == epoch && p.wait.is_some())
    }

    /// Ends the wait `(pid, epoch)` with `wake` and makes the process runnable.
    /// Returns false (and does nothing) if that wait is over already.
    #[inline]
    pub(crate) fn wake(&mut self, pid: Pid, epoch: u64, wake: Wake) -> bool {
        match self.proc_mut(pid) {
            Some(p) if p.epoch == epoch && p.wait.is_some() => {
                p.wait = None;
                p.wake = wake;
                self.runq.push_back(pid);
                true
            }
            _ => false,
        }
    }

    /// Registers a timer that commits offer `guard` of wait `(pid, epoch)` at `deadline`.
    pub(crate) fn add_timer(
        &mut self,
        after: Duration,
        pid: Pid,
        epoch: u64,
        guard: usize,
    ) -> TimerKey {
        let deadline = self.now().saturating_add(after);
        self.timer_seq += 1;
        let key = (deadline, self.timer_seq);
        self.timers.insert(key, TimerEntry { pid, epoch, guard });
        key
    }

    /// Cancels a timer (no effect if it fired).
    pub(crate) fn cancel_timer(&mut self, key: TimerKey) {
        self.timers.remove(&key);
    }

    /// In a seeded schedule, sometimes lets another process run before the
    /// caller goes on, to explore more interleavings.
    #[inline]
    pub(crate) fn wants_preempt(&mut self) -> bool {
        match &mut self.rng {
            Some(rng) => rng.below(4) == 0,
            None => false,
        }
    }

    fn pop_runq(&mut self) -> Option<Pid> {
        match &mut self.rng {
            None => self.runq.pop_front(),
            Some(rng) => {
                if self.runq.is_empty() {
                    None
                } else {
                    let i = rng.below(self.runq.len());
                    self.runq.swap_remove_back(i)
                }
            }
        }
    }

    /// Creates a process that runs `entry`, with the given parent (par) or
    /// spawner (spawn), and makes it runnable.
    fn create(
        &mut self,
        name: Cow<'static, str>,
        entry: Box<dyn FnOnce()>,
        parent: Option<Pid>,
        spawner: Option<Pid>,
    ) -> Result<Pid> {
        let stack = self
            .pool
            .take()
            .map_err(|e| Error::config(format!("cannot start process '{name}': {e}")))?;
        let pid = match self.free.pop() {
            Some(pid) => pid,
            None => {
                let pid = Pid::try_from(self.procs.len()).map_err(|_| {
                    Error::config("more than 4 294 967 295 live processes on one thread")
                })?;
                self.procs.push(None);
                pid
            }
        };
        let coro = Box::new(Coroutine::with_stack(
            stack,
            move |y: &ProcYielder, _first: Wake| {
                let y: *const ProcYielder = y;
                CURRENT.set((pid, y));
                with_sched(|s| {
                    if let Some(p) = s.proc_mut(pid) {
                        p.yielder = y;
                    }
                });
                entry();
            },
        ));
        let mut ctl = ProcCtl::new(name, self.next_seq);
        self.next_seq += 1;
        ctl.coro = Some(coro);
        ctl.parent = parent;
        ctl.spawner = spawner;
        self.procs[pid as usize] = Some(ctl);
        if let Some(p) = parent.and_then(|p| self.proc_mut(p)) {
            p.live_children += 1;
        }
        if let Some(p) = spawner.and_then(|p| self.proc_mut(p)) {
            p.spawned_live += 1;
        }
        self.live += 1;
        self.runq.push_back(pid);
        Ok(pid)
    }

    /// Bookkeeping after a process's coroutine returned.
    #[allow(
        clippy::boxed_local,
        reason = "the coroutine travels boxed; unboxing it here would move it"
    )]
    fn finish(&mut self, pid: Pid, coro: Coro) {
        let Some(ctl) = self.procs.get_mut(pid as usize).and_then(Option::take) else {
            return;
        };
        self.free.push(pid);
        self.live -= 1;
        self.pool.give_back(coro.into_stack());
        if let Some(parent) = ctl.parent {
            if let Some(p) = self.proc_mut(parent) {
                p.live_children -= 1;
                if p.live_children == 0 && matches!(p.wait, Some(WaitKind::Par)) {
                    let epoch = p.epoch;
                    self.wake(parent, epoch, Wake::Guard(0));
                }
            }
        }
        if let Some(spawner) = ctl.spawner {
            if let Some(p) = self.proc_mut(spawner) {
                p.spawned_live -= 1;
                if p.spawned_live == 0 && matches!(p.wait, Some(WaitKind::JoinSpawned)) {
                    let epoch = p.epoch;
                    self.wake(spawner, epoch, Wake::Guard(0));
                }
            }
        }
        if self.live == 0 {
            if let Some(main) = self.proc(MAIN) {
                if matches!(main.wait, Some(WaitKind::JoinAll)) {
                    let epoch = main.epoch;
                    self.wake(MAIN, epoch, Wake::Guard(0));
                }
            }
        }
    }

    /// Puts a process's coroutine back after it suspended, or finishes it.
    fn after_resume(&mut self, pid: Pid, result: CoroutineResult<(), ()>, coro: Coro) {
        CURRENT.set((MAIN, std::ptr::null()));
        self.current = MAIN;
        match result {
            CoroutineResult::Yield(()) => {
                if let Some(p) = self.proc_mut(pid) {
                    p.coro = Some(coro);
                }
            }
            CoroutineResult::Return(()) => self.finish(pid, coro),
        }
    }

    /// Finds the next thing to run, waiting for timers and io as needed.
    fn next(&mut self) -> Next {
        loop {
            if let Some(pid) = self.pop_runq() {
                if pid == MAIN {
                    return Next::Main;
                }
                let taken = self.proc_mut(pid).and_then(|p| {
                    let wake = std::mem::replace(&mut p.wake, Wake::Pending);
                    p.coro.take().map(|c| (c, wake))
                });
                match taken {
                    Some((coro, wake)) => {
                        self.current = pid;
                        return Next::Run(pid, coro, wake);
                    }
                    // A process without a coroutine is not runnable (cannot
                    // happen: only main has none); skip it.
                    None => continue,
                }
            }
            if self.fire_due_timers() || self.drain_io() {
                continue;
            }
            if self.io_pending > 0 || !self.timers.is_empty() {
                self.wait_outside();
                continue;
            }
            self.declare_deadlock();
        }
    }

    fn fire_due_timers(&mut self) -> bool {
        let now = self.now();
        let mut fired = false;
        while let Some((&key, &t)) = self.timers.first_key_value() {
            if key.0 > now {
                break;
            }
            self.timers.remove(&key);
            fired |= self.wake(t.pid, t.epoch, Wake::Guard(t.guard));
        }
        fired
    }

    fn on_io_done(&mut self, d: IoDone) -> bool {
        self.io_pending = self.io_pending.saturating_sub(1);
        self.wake(d.pid, d.epoch, Wake::Guard(0))
    }

    fn drain_io(&mut self) -> bool {
        let mut woke = false;
        while let Ok(d) = self.io_rx.try_recv() {
            woke |= self.on_io_done(d);
        }
        woke
    }

    /// Nothing is runnable but timers or io are pending: wait for the first.
    fn wait_outside(&mut self) {
        let next_timer = self.timers.first_key_value().map(|(k, _)| k.0);
        if self.clock == Clock::Simulated && self.io_pending == 0 {
            if let Some(deadline) = next_timer {
                self.sim_now = self.sim_now.max(deadline);
            }
            return;
        }
        let timeout = match (self.clock, next_timer) {
            (Clock::Real, Some(deadline)) => Some(deadline.saturating_sub(self.now())),
            _ => None,
        };
        let got = match timeout {
            Some(t) => self.io_rx.recv_timeout(t),
            None => self
                .io_rx
                .recv()
                .map_err(|_| RecvTimeoutError::Disconnected),
        };
        if let Ok(d) = got {
            self.on_io_done(d);
        }
    }

    /// Nothing can run and nothing is pending: fail every channel wait.
    fn declare_deadlock(&mut self) {
        let mut blocked: Vec<(u64, BlockedProcess)> = self
            .procs
            .iter()
            .flatten()
            .filter_map(|p| {
                p.wait.as_ref().map(|w| {
                    (
                        p.seq,
                        BlockedProcess {
                            process: p.name.to_string(),
                            waiting_on: w.describe(),
                        },
                    )
                })
            })
            .collect();
        blocked.sort_by_key(|(seq, _)| *seq);
        let report = Arc::new(DeadlockReport {
            blocked: blocked.into_iter().map(|(_, b)| b).collect(),
        });
        self.deadlocked = Some(report.clone());
        self.last_deadlock = report.clone();
        let victims: Vec<(Pid, u64)> = self
            .procs
            .iter()
            .enumerate()
            .filter_map(|(pid, p)| {
                let p = p.as_ref()?;
                let w = p.wait.as_ref()?;
                w.is_channel_wait().then_some((pid as Pid, p.epoch))
            })
            .collect();
        let mut woke = false;
        for (pid, epoch) in victims {
            woke |= self.wake(pid, epoch, Wake::Deadlock);
        }
        if !woke {
            // Cannot happen (some process at the bottom of every par waits
            // on a channel), but never loop forever: hand the report to main.
            if let Some(epoch) = self.proc(MAIN).map(|m| m.epoch) {
                self.wake(MAIN, epoch, Wake::Deadlock);
            }
        }
    }
}

impl Drop for Sched {
    fn drop(&mut self) {
        let me: *mut Sched = self;
        let _ = SCHED.try_with(|p| {
            if p.get() == me {
                p.set(std::ptr::null_mut());
            }
        });
        // Processes still suspended when the thread ends cannot be unwound
        // safely (unwinding them would run code that needs this scheduler,
        // which is being destroyed). Leak them: their stacks are never reused.
        for p in self.procs.iter_mut().flatten() {
            if let Some(c) = p.coro.take() {
                std::mem::forget(c);
            }
        }
    }
}

/// Turns how a wait ended into its result.
fn outcome(wake: Wake, s: &Sched) -> Result<usize> {
    match wake {
        Wake::Guard(i) => Ok(i),
        Wake::Poisoned => Err(Error::Poisoned),
        Wake::Retired => Err(Error::Retired),
        Wake::Deadlock => Err(Error::Deadlock(s.last_deadlock.clone())),
        Wake::Pending => Err(Error::config(
            "a wait ended without an outcome (a bug in csp-greenlets)",
        )),
    }
}

/// The running process blocks until its current wait is woken. Returns the
/// index of the offer that committed, or why the wait failed. The caller
/// must have called [`Sched::begin_wait`].
pub(crate) fn block() -> Result<usize> {
    let (me, yielder) = CURRENT.get();
    if me == MAIN {
        run_loop();
        return with_sched(|s| {
            if s.live == 0 {
                s.deadlocked = None;
            }
            let wake = match s.proc_mut(MAIN) {
                Some(p) => {
                    p.wait = None;
                    std::mem::replace(&mut p.wake, Wake::Pending)
                }
                None => Wake::Pending,
            };
            outcome(wake, s)
        });
    }
    if yielder.is_null() {
        return Err(Error::config(
            "a process blocked before it started (a bug in csp-greenlets)",
        ));
    }
    // SAFETY: `CURRENT` holds the yielder of the process running now: the
    // loop sets it before resuming a process's coroutine (from the pointer
    // the coroutine stored when it started, taken from the `&Yielder`
    // corosensei passes to its function) and clears it after. That
    // reference is valid until the coroutine's function returns, and we are
    // inside it. No scheduler borrow is held across the switch.
    let wake = unsafe { (*yielder).suspend(()) };
    match wake {
        Wake::Guard(i) => Ok(i),
        Wake::Poisoned => Err(Error::Poisoned),
        Wake::Retired => Err(Error::Retired),
        _ => with_sched(|s| outcome(wake, s)),
    }
}

/// Lets other runnable processes run before the caller goes on.
pub(crate) fn yield_now() {
    let started = with_sched(|s| {
        let (pid, epoch) = s.begin_wait(WaitKind::Yield).ok()?;
        s.wake(pid, epoch, Wake::Guard(0));
        Some(())
    });
    if started.is_some() {
        let _ = block();
    }
}

/// Main's side of the loop: run processes until main is woken.
fn run_loop() {
    let mut last: Option<(Pid, CoroutineResult<(), ()>, Coro)> = None;
    loop {
        let next = with_sched(|s| {
            if let Some((pid, result, coro)) = last.take() {
                s.after_resume(pid, result, coro);
            }
            match s.next() {
                Next::Main => {
                    s.current = MAIN;
                    None
                }
                Next::Run(pid, coro, wake) => {
                    let size = s.pool.stack_size();
                    let (ptr, len, yielder) = s
                        .proc(pid)
                        .map_or((std::ptr::null(), 0, std::ptr::null()), |p| {
                            (p.name.as_ptr(), p.name.len(), p.yielder)
                        });
                    CURRENT.set((pid, yielder));
                    Some((pid, coro, wake, ptr, len, size))
                }
            }
        });
        let Some((pid, mut coro, wake, ptr, len, size)) = next else {
            return;
        };
        stack::set_running(ptr, len, size);
        // No `clear_running` after: the name is only read when a fault hits a
        // guard page of one of our stacks, which only the running process can do.
        let result = coro.resume(wake);
        last = Some((pid, result, coro));
    }
}

/// Waits, in the running process, until every process it spawned has ended.
pub(crate) fn join_spawned() {
    loop {
        let waiting = with_sched(|s| {
            let me = s.current;
            let n = s.proc(me).map_or(0, |p| p.spawned_live);
            n > 0 && s.begin_wait(WaitKind::JoinSpawned).is_ok()
        });
        if !waiting {
            return;
        }
        let _ = block();
    }
}

/// Runs processes as children of the running process and waits for them all.
/// `entries` are the processes' names and bodies; each body stores its own
/// result where its caller wants it.
pub(crate) fn par_entries(entries: Vec<Entry>) -> Result<()> {
    let failed = with_sched(|s| {
        let me = s.current;
        for (name, entry) in entries {
            if let Err(e) = s.create(name, entry, Some(me), None) {
                return Some(e);
            }
        }
        None
    });
    // Wait for the children that did start, even if some could not.
    loop {
        let waiting = with_sched(|s| {
            let me = s.current;
            let n = s.proc(me).map_or(0, |p| p.live_children);
            n > 0 && s.begin_wait(WaitKind::Par).is_ok()
        });
        if !waiting {
            break;
        }
        let _ = block();
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Starts a process in the background, as a spawned child of the running one.
pub(crate) fn spawn_entry(name: Cow<'static, str>, entry: Box<dyn FnOnce()>) -> Result<()> {
    with_sched(|s| {
        let me = s.current;
        s.create(name, entry, None, Some(me)).map(|_| ())
    })
}

/// Suspends the running process for `d` on the run's clock.
pub(crate) fn sleep(d: Duration) -> Result<()> {
    if d.is_zero() {
        yield_now();
        return Ok(());
    }
    with_sched(|s| {
        let (pid, epoch) = s.begin_wait(WaitKind::Sleep)?;
        s.add_timer(d, pid, epoch, 0);
        Ok::<_, Error>(())
    })?;
    block().map(|_| ())
}

/// Runs `f` on a helper thread while other processes run.
pub(crate) fn io<F, T>(f: F) -> Result<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let slot: Arc<std::sync::Mutex<Option<std::thread::Result<T>>>> = Arc::default();
    let (pid, epoch, tx) = with_sched(|s| {
        let (pid, epoch) = s.begin_wait(WaitKind::Io)?;
        s.io_pending += 1;
        Ok::<_, Error>((pid, epoch, s.io_tx.clone()))
    })?;
    let out = slot.clone();
    let submitted = crate::io::submit(Box::new(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        *out.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
        // The scheduler may be gone (its thread ended); nothing to tell then.
        let _ = tx.send(IoDone { pid, epoch });
    }));
    if let Err(e) = submitted {
        with_sched(|s| {
            s.io_pending = s.io_pending.saturating_sub(1);
            if let Some(p) = s.proc_mut(pid) {
                if p.epoch == epoch {
                    p.wait = None;
                }
            }
        });
        return Err(Error::from(e));
    }
    block()?;
    let got = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
    match got {
        Some(Ok(v)) => Ok(v),
        Some(Err(payload)) => Err(Error::Panicked {
            process: with_sched(|s| s.current_name()),
            message: format!(
                "its io call panicked: {}",
                csp_runtime::panic_message(&*payload)
            ),
        }),
        None => Err(Error::config("an io call ended without a result")),
    }
}

/// Runs `f` as the main process of a configured run, then waits for every
/// process still alive.
pub(crate) fn run<O>(config: Config, f: impl FnOnce() -> O) -> Result<O> {
    with_sched(|s| {
        if s.in_run {
            return Err(Error::config(
                "a greenlets run is already active on this thread; call run only from outside any run",
            ));
        }
        if s.live > 0 {
            return Err(Error::config(format!(
                "{} processes from earlier use of this thread are still alive; start the run before spawning them",
                s.live
            )));
        }
        s.apply(config);
        s.in_run = true;
        Ok(())
    })?;
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            if !SCHED.get().is_null() {
                with_sched(|s| {
                    s.in_run = false;
                    s.apply(Config::new());
                });
            }
        }
    }
    let _reset = Reset;
    let out = f();
    loop {
        let waiting = with_sched(|s| s.live > 0 && s.begin_wait(WaitKind::JoinAll).is_ok());
        if !waiting {
            break;
        }
        let _ = block();
    }
    Ok(out)
}

/// The seed of the current run's schedule, if it is seeded.
pub(crate) fn current_config() -> Config {
    with_sched(|s| s.config.clone())
}
