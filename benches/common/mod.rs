//! The scenarios shared by the criterion benchmarks (`benches/greenlets.rs`)
//! and the comparison harness (`benches/compare.rs`).
//!
//! Every function runs one scenario for a given number of operations and
//! returns the time those operations took, measured *inside* the network (from
//! the first operation to the last), so that building the network (making
//! channels, spawning processes) does not count, except in [`spawn`], where it
//! is what is measured.
//!
//! Ours: the greenlets backend, named by path (module [`g`]) whatever the
//! facade's features say; the parallel backend's scenarios are in
//! [`threads`], beside their crossbeam baselines.
//! Baselines: a bare corosensei coroutine on a plain mmap'd stack, and `may`
//! coroutines with its channels on one worker thread.
#![allow(
    dead_code,
    reason = "each bench target uses a different subset of the scenarios"
)]

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use corosensei::stack::{Stack, StackPointer};
use corosensei::{Coroutine, CoroutineResult, Yielder};

pub(crate) mod table;
pub(crate) mod threads;

/// The greenlets backend's names, as the facade's `csp::greenlets` has them.
pub(crate) mod g {
    use csp::{Process, Result, Runtime};
    use csp_greenlets::Greenlets as B;

    pub(crate) type Channel<T> = csp::runtime::Channel<T, B>;
    pub(crate) type Writer<T> = csp::runtime::Writer<T, B>;
    pub(crate) type Alt<'a, U> = csp::runtime::Alt<'a, U, B>;

    pub(crate) fn par<O: Send + 'static>(
        procs: impl IntoIterator<Item = Process<O>>,
    ) -> Result<Vec<Option<O>>> {
        B::par(procs.into_iter().collect())
    }
    pub(crate) fn spawn<O: Send + 'static>(p: Process<O>) -> Result<()> {
        B::spawn(p)
    }
    pub(crate) fn sleep(d: std::time::Duration) -> Result<()> {
        B::sleep(d)
    }
    pub(crate) fn run<O>(config: csp::Config, f: impl FnOnce() -> O) -> Result<O> {
        B::run(config, f)
    }
}

/// Turns a shutdown (`Poisoned`/`Retired`) of a benchmark loop into `Ok(value)`;
/// any other error stays an error.
fn shutdown_ok<T>(r: csp::Result<T>, value: T) -> csp::Result<T> {
    match r {
        Err(e) if e.is_shutdown() => Ok(value),
        other => other,
    }
}

/// Unwraps a benchmark result, naming the scenario if the network failed.
fn expect_ok<T>(what: &str, r: csp::Result<T>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what}: the network failed: {e}"),
    }
}

// ---------------------------------------------------------------------------
// Ours: the greenlets backend.
// ---------------------------------------------------------------------------

/// `n` processes in a ring of rendezvous channels pass one token `hops` times.
/// Process 0 injects the token; every process passes it on, decremented; the
/// process that reads 0 stops and poisons, which shuts the ring down.
pub(crate) fn ring(n: usize, hops: u64) -> Duration {
    assert!(n >= 2 && hops >= 1);
    let chans: Vec<g::Channel<u64>> = (0..n).map(|_| g::Channel::new()).collect();
    let procs: Vec<csp::Process<(Option<Instant>, Option<Instant>)>> = (0..n)
        .map(|i| {
            let r = chans[i].reader();
            let w = chans[(i + 1) % n].writer();
            csp::Process::new("ring", move || {
                let mut start = None;
                let mut run = || -> csp::Result<Option<Instant>> {
                    if i == 0 {
                        start = Some(Instant::now());
                        // `hops` writes in all: values hops-1 down to 0.
                        w.write(hops - 1)?;
                    }
                    loop {
                        let v = r.read()?;
                        if v == 0 {
                            return Ok(Some(Instant::now()));
                        }
                        w.write(v - 1)?;
                    }
                };
                let end = shutdown_ok(run(), None);
                r.poison();
                w.poison();
                Ok((start, end?))
            })
        })
        .collect();
    let out = expect_ok("thread ring", g::par(procs));
    let start = out.iter().flatten().find_map(|(s, _)| *s);
    let end = out.iter().flatten().find_map(|(_, e)| *e);
    match (start, end) {
        (Some(s), Some(e)) => e - s,
        _ => panic!("thread ring: the token was lost"),
    }
}

/// Two processes, two rendezvous channels: `rounds` round trips.
pub(crate) fn ping_pong(rounds: u64) -> Duration {
    let a = g::Channel::<u64>::new();
    let b = g::Channel::<u64>::new();
    let (aw, ar, bw, br) = (a.writer(), a.reader(), b.writer(), b.reader());
    let ping = csp::Process::new("ping", move || {
        let t = Instant::now();
        for i in 0..rounds {
            aw.write(i)?;
            let v = br.read()?;
            assert_eq!(v, i, "ping-pong: wrong message");
        }
        let el = t.elapsed();
        aw.poison();
        br.poison();
        Ok(el)
    });
    let pong = csp::Process::new("pong", move || {
        let r = (|| -> csp::Result<()> {
            loop {
                let v = ar.read()?;
                bw.write(v)?;
            }
        })();
        ar.poison();
        bw.poison();
        shutdown_ok(r, ())
    });
    let (el, _) = expect_ok(
        "ping-pong",
        csp::runtime::par_tuple::<csp_greenlets::Greenlets, _>((ping, pong)),
    );
    el.unwrap_or_else(|| panic!("ping-pong: ping did not finish"))
}

/// The classic commstime network: Prefix(0), Delta (outputs in sequence: first
/// to the consumer, then to the successor), Successor, Consumer. One loop is
/// one read by the consumer (four rendezvous communications in the network).
pub(crate) fn commstime(loops: u64) -> Duration {
    let a = g::Channel::<u64>::named("a");
    let b = g::Channel::<u64>::named("b");
    let c = g::Channel::<u64>::named("c");
    let d = g::Channel::<u64>::named("d");

    let (c_in, a_out) = (c.reader(), a.writer());
    let prefix = csp::Process::new("prefix", move || {
        let r = (|| -> csp::Result<()> {
            a_out.write(0)?;
            loop {
                let v = c_in.read()?;
                a_out.write(v)?;
            }
        })();
        c_in.poison();
        a_out.poison();
        shutdown_ok(r, ())
    });

    let (a_in, d_out, b_out) = (a.reader(), d.writer(), b.writer());
    let delta = csp::Process::new("delta", move || {
        let r = (|| -> csp::Result<()> {
            loop {
                let v = a_in.read()?;
                d_out.write(v)?;
                b_out.write(v)?;
            }
        })();
        a_in.poison();
        d_out.poison();
        b_out.poison();
        shutdown_ok(r, ())
    });

    let (b_in, c_out) = (b.reader(), c.writer());
    let successor = csp::Process::new("successor", move || {
        let r = (|| -> csp::Result<()> {
            loop {
                let v = b_in.read()?;
                c_out.write(v + 1)?;
            }
        })();
        b_in.poison();
        c_out.poison();
        shutdown_ok(r, ())
    });

    let d_in = d.reader();
    let consumer = csp::Process::new("consumer", move || {
        // One warm-up read, then time `loops` reads.
        let first = d_in.read()?;
        let t = Instant::now();
        for i in 1..=loops {
            let v = d_in.read()?;
            assert_eq!(v, first + i, "commstime: wrong value");
        }
        let el = t.elapsed();
        d_in.poison();
        Ok(el)
    });

    let (_, _, _, el) = expect_ok(
        "commstime",
        csp::runtime::par_tuple::<csp_greenlets::Greenlets, _>((
            prefix, delta, successor, consumer,
        )),
    );
    el.unwrap_or_else(|| panic!("commstime: the consumer did not finish"))
}

/// What [`alt`] measured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AltRun {
    /// Time for all the selects.
    pub(crate) elapsed: Duration,
    /// How often each guard (input 1, input 2, output) committed.
    pub(crate) chosen: [u64; 3],
}

/// A process alternating `selects` times over a priority `Alt` of two input
/// guards and one output guard, fed by two writers and drained by one reader.
///
/// It also checks that exactly one guard commits per select and nothing is
/// lost or duplicated: each writer sends 0, 1, 2, ... and the alternator checks
/// that it reads each writer's numbers in order without a gap; at the end, each
/// writer's completed writes and the reader's completed reads must equal the
/// commits of their guards.
pub(crate) fn alt(selects: u64) -> AltRun {
    let in1 = g::Channel::<u64>::named("in1");
    let in2 = g::Channel::<u64>::named("in2");
    let out = g::Channel::<u64>::named("out");

    // Writes 0, 1, 2, ... until stopped; returns how many writes completed.
    let feeder = |name: &'static str, c: &g::Channel<u64>| {
        let w = c.writer();
        csp::Process::new(name, move || {
            let mut sent = 0u64;
            let stop = loop {
                if let Err(e) = w.write(sent) {
                    break e;
                }
                sent += 1;
            };
            w.poison();
            shutdown_ok(Err(stop), sent)
        })
    };
    let w1 = feeder("writer1", &in1);
    let w2 = feeder("writer2", &in2);

    // Reads until stopped; returns how many reads completed.
    let out_r = out.reader();
    let drain = csp::Process::new("reader", move || {
        let mut got = 0u64;
        let stop = loop {
            match out_r.read() {
                Ok(v) => {
                    black_box(v);
                    got += 1;
                }
                Err(e) => break e,
            }
        };
        out_r.poison();
        shutdown_ok(Err(stop), got)
    });

    let (r1, r2, w) = (in1.reader(), in2.reader(), out.writer());
    let alternator = csp::Process::new("alternator", move || {
        let mut chosen = [0u64; 3];
        let t = Instant::now();
        for i in 0..selects {
            let (g, v) = g::Alt::new()
                .read(&r1, |v| (0, v))
                .read(&r2, |v| (1, v))
                .write(&w, i, || (2, 0))
                .select()?;
            if g < 2 {
                assert_eq!(
                    v, chosen[g],
                    "alt: input guard {g} read message {v}, expected {} (lost or duplicated)",
                    chosen[g]
                );
            }
            chosen[g] += 1;
        }
        let elapsed = t.elapsed();
        r1.poison();
        r2.poison();
        w.poison();
        Ok(AltRun { elapsed, chosen })
    });

    let (sent1, sent2, got, run) = expect_ok(
        "alt",
        csp::runtime::par_tuple::<csp_greenlets::Greenlets, _>((w1, w2, drain, alternator)),
    );
    let run = run.unwrap_or_else(|| panic!("alt: the alternator did not finish"));
    let done = [sent1, sent2, got].map(|n| n.unwrap_or(u64::MAX));
    assert_eq!(
        done, run.chosen,
        "alt: completed operations (writer 1, writer 2, reader) differ from guard commits"
    );
    run
}

/// The resident set size of this OS process, in KiB (`VmRSS`), or with
/// `peak`, its high-water mark (`VmHWM`).
pub(crate) fn rss_kib(peak: bool) -> Option<u64> {
    let key = if peak { "VmHWM:" } else { "VmRSS:" };
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// The resident KiB of the greenlets stack chunks, from `/proc/self/smaps`: the
/// anonymous mappings whose size is a multiple of one stack slot (default
/// stack size plus a 4 KiB guard page) and at least 16 slots. A diagnostic
/// that relies on how the backend lays out its stacks; `None` if it finds none.
pub(crate) fn stack_rss_kib() -> Option<u64> {
    let slot_kib = (csp::Config::DEFAULT_STACK_SIZE / 1024 + 4) as u64;
    let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
    let field = |line: &str, key: &str| -> Option<u64> {
        line.strip_prefix(key)?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    };
    let mut total = 0;
    let mut found = false;
    let mut in_stacks = false;
    for line in smaps.lines() {
        // A mapping's header line starts with its address range; its fields
        // ("Size:", "Rss:", ...) follow.
        let first = line.split_whitespace().next().unwrap_or("");
        if first.contains('-') && !first.ends_with(':') {
            // Anonymous mappings have no path (6th column).
            in_stacks = line.split_whitespace().nth(5).is_none();
        } else if let Some(size) = field(line, "Size:") {
            in_stacks &= size % slot_kib == 0 && size >= 16 * slot_kib;
        } else if let Some(rss) = field(line, "Rss:") {
            if in_stacks {
                total += rss;
                found = true;
            }
        }
    }
    found.then_some(total)
}

/// Bytes that glibc's malloc has handed out and not got back (in its arenas
/// and in its own mappings for large blocks), including its chunk headers.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn heap_in_use() -> Option<u64> {
    // SAFETY: mallinfo2 has no preconditions; it returns a struct by value.
    let m = unsafe { libc::mallinfo2() };
    u64::try_from(m.uordblks + m.hblkhd).ok()
}

/// Not available off glibc.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn heap_in_use() -> Option<u64> {
    None
}

/// What [`spawn`] measured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SpawnRun {
    /// Processes.
    pub(crate) n: usize,
    /// From the first `spawn` until every process has run and blocked on its read.
    pub(crate) to_blocked: Duration,
    /// From the first release write until every process has ended.
    pub(crate) release: Duration,
    /// `VmRSS` growth from before the first spawn to when all were blocked, in KiB
    /// (channels and writer ends were made before, so they do not count).
    pub(crate) rss_growth_kib: Option<u64>,
    /// Of `VmRSS` when all were blocked, the part in the stack chunks (see
    /// [`stack_rss_kib`]), in KiB.
    pub(crate) stack_rss_kib: Option<u64>,
    /// Growth of the bytes malloc had handed out and not got back (see
    /// [`heap_in_use`]) from before the first spawn to when all were blocked.
    pub(crate) heap_growth: Option<u64>,
    /// `CLOCK_MONOTONIC` seconds at the first spawn, when all were blocked and
    /// when all had ended: slice a `perf record -k CLOCK_MONOTONIC` profile
    /// with `perf report --time <from>,<to>`.
    pub(crate) marks: [f64; 3],
}

/// `CLOCK_MONOTONIC` now, in seconds (the clock `perf record -k CLOCK_MONOTONIC` uses).
pub(crate) fn monotonic_s() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the call only writes it.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// `n` processes spawned (`spawn` inside `run`), each blocked reading
/// its own channel; then main releases them by writing to each channel.
pub(crate) fn spawn(n: usize) -> SpawnRun {
    let run = g::run(csp::Config::new(), || -> csp::Result<SpawnRun> {
        let chans: Vec<g::Channel<u64>> = (0..n).map(|_| g::Channel::new()).collect();
        let writers: Vec<g::Writer<u64>> = chans.iter().map(g::Channel::writer).collect();
        let started = Arc::new(AtomicUsize::new(0));
        let ended = Arc::new(AtomicUsize::new(0));
        let rss0 = rss_kib(false);
        let heap0 = heap_in_use();

        let mark0 = monotonic_s();
        let t0 = Instant::now();
        for (i, c) in chans.iter().enumerate() {
            let r = c.reader();
            let (started, ended) = (started.clone(), ended.clone());
            g::spawn(csp::Process::new("blocked", move || {
                started.fetch_add(1, Ordering::Relaxed);
                let v = r.read()?;
                assert_eq!(v, i as u64, "spawn: wrong message");
                ended.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }))?;
        }
        // A process blocks on its read right after counting itself, so once
        // all have counted, all are blocked. Main yields until then (FIFO:
        // one yield lets every spawned process run once).
        while started.load(Ordering::Relaxed) < n {
            g::sleep(Duration::ZERO)?;
        }
        let to_blocked = t0.elapsed();
        let mark1 = monotonic_s();
        let rss1 = rss_kib(false);
        let stack_rss = stack_rss_kib();
        let heap1 = heap_in_use();

        let t1 = Instant::now();
        for (i, w) in writers.iter().enumerate() {
            w.write(i as u64)?;
        }
        while ended.load(Ordering::Relaxed) < n {
            g::sleep(Duration::ZERO)?;
        }
        let release = t1.elapsed();
        let mark2 = monotonic_s();
        Ok(SpawnRun {
            n,
            to_blocked,
            release,
            rss_growth_kib: rss0.zip(rss1).map(|(a, b)| b.saturating_sub(a)),
            stack_rss_kib: stack_rss,
            heap_growth: heap0.zip(heap1).map(|(a, b)| b.saturating_sub(a)),
            marks: [mark0, mark1, mark2],
        })
    });
    match run {
        Ok(Ok(r)) => r,
        Ok(Err(e)) | Err(e) => panic!("spawn of {n} processes failed: {e}"),
    }
}

// ---------------------------------------------------------------------------
// Baseline: bare corosensei.
// ---------------------------------------------------------------------------

/// A coroutine stack: one private anonymous mapping whose lowest page is made
/// inaccessible (the guard page), the rest read-write.
pub(crate) struct MmapStack {
    start: usize,
    len: usize,
}

impl MmapStack {
    /// A stack with at least `usable` bytes above its guard page.
    pub(crate) fn new(usable: usize) -> MmapStack {
        // SAFETY: sysconf has no preconditions; it only reads a constant.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        let len = usable.max(16 * 1024).next_multiple_of(page) + page;
        // SAFETY: a fresh private anonymous mapping at an address the kernel
        // picks; it cannot alias any memory the program already uses.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        assert!(p != libc::MAP_FAILED, "mmap of a {len}-byte stack failed");
        // SAFETY: the lowest page of the mapping made just above, which holds
        // no Rust object; this only makes it inaccessible.
        let rc = unsafe { libc::mprotect(p, page, libc::PROT_NONE) };
        assert_eq!(rc, 0, "mprotect of the guard page failed");
        MmapStack {
            start: p as usize,
            len,
        }
    }
}

impl Drop for MmapStack {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`. A coroutine that
        // runs on this stack owns it, and corosensei drops (unwinds) the
        // coroutine before its stack, so nothing runs on it any more.
        unsafe { libc::munmap(self.start as *mut libc::c_void, self.len) };
    }
}

// SAFETY: corosensei needs a guard page below the usable area and at least
// `MIN_STACK_SIZE` (4 KiB) of usable memory, valid while the stack lives:
// - `limit()` is the bottom of the mapping, whose first page is PROT_NONE (set
//   in `new` before the stack can be used, and never changed); Rust probes
//   frames larger than a page, so an overflow always hits the guard first;
// - the usable area `[start + page, start + len)` is at least 16 KiB of
//   read-write memory inside our own mapping, which stays mapped until `drop`;
// - both addresses are page aligned, so 16-byte aligned (`STACK_ALIGNMENT`).
unsafe impl Stack for MmapStack {
    fn base(&self) -> StackPointer {
        StackPointer::new(self.start + self.len).unwrap_or(StackPointer::MIN)
    }

    fn limit(&self) -> StackPointer {
        StackPointer::new(self.start).unwrap_or(StackPointer::MIN)
    }
}

/// `n` resume/suspend pairs of one bare corosensei coroutine (two stack
/// switches each: into the coroutine and back).
pub(crate) fn coro_pairs(n: u64) -> Duration {
    let stack = MmapStack::new(64 * 1024);
    let mut co = Coroutine::with_stack(stack, |y: &Yielder<u64, u64>, mut v: u64| {
        loop {
            v = y.suspend(v.wrapping_add(1));
        }
    });
    let _ = co.resume(0);
    let t = Instant::now();
    for i in 0..n {
        black_box(co.resume(black_box(i)));
    }
    let el = t.elapsed();
    // Dropping the suspended coroutine unwinds it, then unmaps its stack.
    drop(co);
    el
}

/// `n` bare coroutine lifetimes on one reused stack: create, resume (runs to
/// its one `suspend`, like a process that blocks), resume again (runs to its
/// end). The floor under `spawn`'s per-process cost, minus memory effects.
pub(crate) fn coro_lifecycles(n: u64) -> Duration {
    let mut stack = Some(MmapStack::new(64 * 1024));
    let t = Instant::now();
    for i in 0..n {
        let Some(s) = stack.take() else { break };
        let mut co = Coroutine::with_stack(s, |y: &Yielder<u64, ()>, v: u64| {
            let w = y.suspend(());
            v ^ w
        });
        black_box(co.resume(black_box(i)));
        match co.resume(black_box(i)) {
            CoroutineResult::Return(r) => {
                black_box(r);
            }
            CoroutineResult::Yield(()) => unreachable!("the coroutine suspends once"),
        }
        stack = Some(co.into_stack());
    }
    t.elapsed()
}

// ---------------------------------------------------------------------------
// Baseline: may (coroutines on its worker threads; configure one worker with
// `may_one_worker` before the first may call).
// ---------------------------------------------------------------------------

/// Configures may to run every coroutine on one worker thread. Must run before
/// any other may call (may starts its scheduler on first use).
pub(crate) fn may_one_worker() {
    may::config().set_workers(1);
}

/// Starts a may coroutine.
fn may_go<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> may::coroutine::JoinHandle<T> {
    // SAFETY: may marks spawning unsafe for two reasons: (1) thread-local
    // storage seen from a coroutine may belong to another worker thread after
    // a migration, and (2) a coroutine that overflows its stack faults. The
    // benchmark bodies touch no thread-local storage (may's channels and the
    // `Instant`s they use are coroutine-safe) and run shallow loops far below
    // may's default stack size; with one worker there is no migration at all.
    unsafe { may::coroutine::spawn(f) }
}

/// The thread ring on may: `n` coroutines, may's mpsc channels (unbounded:
/// may has no rendezvous channel), `hops` passes of one token.
pub(crate) fn may_ring(n: usize, hops: u64) -> Duration {
    assert!(n >= 2 && hops >= 1);
    let mut txs = Vec::with_capacity(n);
    let mut rxs = Vec::with_capacity(n);
    for _ in 0..n {
        let (tx, rx) = may::sync::mpsc::channel::<u64>();
        txs.push(Some(tx));
        rxs.push(Some(rx));
    }
    let mut handles = Vec::with_capacity(n);
    for i in 0..n {
        let rx = rxs[i].take().expect("each receiver is taken once");
        let tx = txs[(i + 1) % n].take().expect("each sender is taken once");
        handles.push(may_go(move || {
            let mut start = None;
            if i == 0 {
                start = Some(Instant::now());
                let _ = tx.send(hops - 1);
            }
            // Ends when the token reaches 0, or when the previous node is gone
            // (its sender dropped): the ring then unravels.
            while let Ok(v) = rx.recv() {
                if v == 0 {
                    return (start, Some(Instant::now()));
                }
                if tx.send(v - 1).is_err() {
                    break;
                }
            }
            (start, None)
        }));
    }
    let (mut start, mut end) = (None, None);
    for h in handles {
        let (s, e) = h
            .join()
            .unwrap_or_else(|_| panic!("may ring: a coroutine panicked"));
        start = start.or(s);
        end = end.or(e);
    }
    match (start, end) {
        (Some(s), Some(e)) => e - s,
        _ => panic!("may ring: the token was lost"),
    }
}

/// Ping-pong on may: two coroutines, two mpsc channels, `rounds` round trips.
pub(crate) fn may_ping_pong(rounds: u64) -> Duration {
    let (a_tx, a_rx) = may::sync::mpsc::channel::<u64>();
    let (b_tx, b_rx) = may::sync::mpsc::channel::<u64>();
    let pong = may_go(move || {
        while let Ok(v) = a_rx.recv() {
            if b_tx.send(v).is_err() {
                break;
            }
        }
    });
    let ping = may_go(move || {
        let t = Instant::now();
        for i in 0..rounds {
            a_tx.send(i).expect("may ping-pong: pong is gone");
            let v = b_rx.recv().expect("may ping-pong: pong is gone");
            assert_eq!(v, i, "may ping-pong: wrong message");
        }
        t.elapsed()
        // Dropping `a_tx` here ends pong.
    });
    let el = ping
        .join()
        .unwrap_or_else(|_| panic!("may ping-pong: ping panicked"));
    pong.join()
        .unwrap_or_else(|_| panic!("may ping-pong: pong panicked"));
    el
}

// ---------------------------------------------------------------------------
// Baseline: the memory floor under a cold spawn.
// ---------------------------------------------------------------------------

/// What [`fault_floor`] measured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FaultFloor {
    /// Writing one byte at the top of each of `n` never-touched stack slots
    /// (one page fault each).
    pub(crate) touch: Duration,
    /// `n` `madvise(MADV_GUARD_INSTALL)` calls, one guard page per slot, as the
    /// greenlets stack pool does on Linux 6.13+; `None` if the kernel lacks it.
    pub(crate) guards: Option<Duration>,
}

/// The least a cold spawn of `n` processes must do to memory: one fresh page
/// at the top of each process's stack (and one guard page below it), in one
/// `MAP_NORESERVE` mapping of `n` slots of the default stack size plus a 4 KiB
/// guard, without any scheduler. Run it in a fresh OS process to see what
/// fresh memory costs on this machine.
pub(crate) fn fault_floor(n: usize) -> FaultFloor {
    const MADV_GUARD_INSTALL: libc::c_int = 102;
    const PAGE: usize = 4096;
    let slot = csp::Config::DEFAULT_STACK_SIZE + PAGE;
    let len = n.max(1) * slot;
    // SAFETY: a fresh private anonymous mapping at an address the kernel
    // picks; it cannot alias any memory the program already uses.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    assert!(p != libc::MAP_FAILED, "mmap of {len} bytes failed");
    let base = p.cast::<u8>();
    // SAFETY: advice on the mapping just made; it cannot change its contents.
    unsafe { libc::madvise(p, len, libc::MADV_NOHUGEPAGE) };

    let t = Instant::now();
    let mut guards_ok = true;
    for i in 0..n {
        // SAFETY: the bottom page of slot `i`, inside the mapping, untouched.
        let rc = unsafe { libc::madvise(base.add(i * slot).cast(), PAGE, MADV_GUARD_INSTALL) };
        if rc != 0 {
            guards_ok = false;
            break;
        }
    }
    let guards = guards_ok.then(|| t.elapsed());

    let t = Instant::now();
    for i in 0..n {
        // SAFETY: the last 64 bytes of slot `i`: inside the mapping, above
        // the slot's guard page, read-write.
        unsafe { base.add((i + 1) * slot - 64).write_volatile(1) };
    }
    let touch = t.elapsed();
    // SAFETY: unmaps exactly the mapping made above; nothing points into it.
    unsafe { libc::munmap(p, len) };
    FaultFloor { touch, guards }
}
