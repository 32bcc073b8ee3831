//! PyCSP's `1MillionProcesses`, on the greenlets backend.
//!
//! ```text
//! cargo run --release --features greenlets --example million_processes [N]
//! ```
//!
//! One shared any-to-any channel `A`; `N` (default 1 000 000) processes each
//! read exactly one message from it (PyCSP: `Spawn(1000000 * readP(A.reader()))`),
//! and main writes `0..N` to it, printing a dot every 20 000 messages. Every
//! process checks what it read; at the end the program counts the messages that
//! were lost (read by no process) or duplicated (read by more than one), and
//! exits with status 1 if there was any, or if any process failed.
//!
//! It prints the time of each phase and the peak resident memory per process
//! (`VmHWM` growth over the `VmRSS` at start, divided by `N`).

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use csp::greenlets::{Channel, Reader};
use csp::{Config, Process};

/// A dot per this many messages, as PyCSP's example prints them.
const DOT_EVERY: usize = 20_000;

/// A field of `/proc/self/status` (`VmRSS`, `VmHWM`, ...), in KiB.
fn status_kib(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| {
        l.strip_prefix(key)
            .is_some_and(|rest| rest.starts_with(':'))
    })?;
    line[key.len() + 1..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// What the processes saw, shared with main.
struct Tally {
    /// How often each value was read.
    seen: Vec<AtomicU8>,
    /// Processes that started (and went on to block on their read).
    started: AtomicUsize,
    /// Processes whose read failed.
    failed: AtomicUsize,
    /// Values read that were out of range.
    out_of_range: AtomicUsize,
}

/// PyCSP's `readP`: read one message and record it.
fn read_p(input: Reader<u64>, tally: Arc<Tally>) -> Process<()> {
    Process::new("readP", move || {
        tally.started.fetch_add(1, Ordering::Relaxed);
        match input.read() {
            Ok(v) => match usize::try_from(v).ok().and_then(|i| tally.seen.get(i)) {
                Some(count) => {
                    count.fetch_add(1, Ordering::Relaxed);
                }
                None => {
                    tally.out_of_range.fetch_add(1, Ordering::Relaxed);
                }
            },
            Err(e) => {
                tally.failed.fetch_add(1, Ordering::Relaxed);
                return Err(e);
            }
        }
        Ok(())
    })
}

/// Times of the phases of the run.
struct Phases {
    spawn: Duration,
    to_blocked: Duration,
    writes: Duration,
    to_end: Duration,
}

fn run(n: usize, tally: &Arc<Tally>) -> csp::Result<Phases> {
    let a = Channel::<u64>::named("A");
    let t0 = Instant::now();
    for _ in 0..n {
        csp::greenlets::spawn(read_p(a.reader(), tally.clone()))?;
    }
    let spawn = t0.elapsed();
    // Let every process run up to its read (FIFO: one yield of main lets each
    // spawned process run once; loop in case the schedule is different).
    while tally.started.load(Ordering::Relaxed) < n {
        csp::greenlets::sleep(Duration::ZERO)?;
    }
    let to_blocked = t0.elapsed();

    let cout = a.writer();
    let mut out = std::io::stdout();
    for i in 0..n {
        cout.write(i as u64)?;
        if i % DOT_EVERY == 0 {
            // Progress only: a failed write to stdout changes nothing.
            let _ = out.write_all(b".");
            let _ = out.flush();
        }
    }
    let writes = t0.elapsed();
    Ok(Phases {
        spawn,
        to_blocked,
        writes,
        to_end: Duration::ZERO,
    })
}

fn main() -> ExitCode {
    let n: usize = match std::env::args().nth(1).map(|s| s.replace('_', "").parse()) {
        None => 1_000_000,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("usage: million_processes [N]  ({e})");
            return ExitCode::from(2);
        }
    };
    let rss0 = status_kib("VmRSS");
    let tally = Arc::new(Tally {
        seen: (0..n).map(|_| AtomicU8::new(0)).collect(),
        started: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        out_of_range: AtomicUsize::new(0),
    });
    let rss_start = status_kib("VmRSS");

    let t0 = Instant::now();
    // `csp::greenlets::run` waits for every spawned process before it returns.
    let result = csp::greenlets::run(Config::new(), || run(n, &tally));
    let total = t0.elapsed();
    let peak = status_kib("VmHWM");

    let phases = match result {
        Ok(Ok(p)) => Some(Phases { to_end: total, ..p }),
        Ok(Err(e)) | Err(e) => {
            println!();
            eprintln!("million_processes: the run failed: {e}");
            None
        }
    };

    let mut lost = 0usize;
    let mut duplicated = 0usize;
    for c in &tally.seen {
        match c.load(Ordering::Relaxed) {
            0 => lost += 1,
            1 => {}
            _ => duplicated += 1,
        }
    }
    let failed = tally.failed.load(Ordering::Relaxed);
    let out_of_range = tally.out_of_range.load(Ordering::Relaxed);

    if let Some(p) = &phases {
        println!("done");
        println!(
            "{n} processes: spawned in {:.3} s, all blocked after {:.3} s, {n} messages written after {:.3} s, all ended after {:.3} s",
            p.spawn.as_secs_f64(),
            p.to_blocked.as_secs_f64(),
            p.writes.as_secs_f64(),
            p.to_end.as_secs_f64(),
        );
    }
    if let (Some(start), Some(peak)) = (rss_start, peak) {
        let per = (peak.saturating_sub(start) as f64 * 1024.0) / n.max(1) as f64;
        println!(
            "peak RSS {:.1} MiB ({:.1} MiB at start, {:.1} MiB of it the bookkeeping of this example): {:.0} bytes ({:.2} KiB) per process",
            peak as f64 / 1024.0,
            start as f64 / 1024.0,
            start.saturating_sub(rss0.unwrap_or(start)) as f64 / 1024.0,
            per,
            per / 1024.0,
        );
    }
    println!(
        "messages: {} read once, {lost} lost, {duplicated} duplicated; {out_of_range} out of range; {failed} processes failed",
        n - lost - duplicated
    );
    if phases.is_none() || lost > 0 || duplicated > 0 || failed > 0 || out_of_range > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
