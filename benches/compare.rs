//! The comparison harness: measures the greenlets backend and its raw
//! baselines in the same OS process run and prints our figures as ratios to
//! them, with the targets.
//!
//! `cargo bench --bench compare` (about a minute). The in-process scenarios
//! run in `REPS` interleaved rounds (round k of every scenario, then round
//! k + 1), so a slow stretch of the machine hits ours and the baselines alike;
//! each figure is the median of the rounds, each ratio the median of the
//! per-round ratios, and the last column shows the spread (min–max) of ours.
//!
//! The 1 M-process figures run in fresh child processes (this binary
//! re-executed with `--spawn-child N`), so the first round meets cold stacks
//! (never-touched memory) and the second, in the same thread, reuses the
//! stacks the first one gave back. Their raw floor (`--fault-floor-child N`)
//! touches one fresh page per stack slot and installs one guard page per slot
//! in a fresh process, with no scheduler at all.
//!
//! For profiling: `compare --only <scenario> <ops>` runs one scenario once,
//! e.g. `perf record -g target/release/deps/compare-* --only commstime 10000000`;
//! the spawn child prints `CLOCK_MONOTONIC` marks of its phases for
//! `perf record -k CLOCK_MONOTONIC` + `perf report --time <from>,<to>`.

use std::process::Command;

mod common;

use common::table::{Row, Scenario, Stats, fixed, measure, print_table, same_rounds, stats};

/// Repetitions of each in-process measurement (the median is reported).
const REPS: usize = 7;
/// Child processes for the 1 M-process figures (the median is reported).
const CHILD_REPS: usize = 3;
/// Processes in the cold/warm spawn figures.
const MILLION: usize = 1_000_000;
/// Ring size of the classic thread ring.
const RING: usize = 503;

/// The argument that makes this binary run as the spawn child.
const CHILD_ARG: &str = "--spawn-child";
/// The argument that makes this binary run as the fault-floor child.
const FLOOR_ARG: &str = "--fault-floor-child";
/// The argument that runs one scenario once (for `perf record`).
const ONLY_ARG: &str = "--only";

/// One round of the spawn child, as it reports it.
struct ChildRound {
    to_blocked_s: f64,
    release_s: f64,
    rss_per_proc_kib: Option<f64>,
    stack_rss_per_proc_kib: Option<f64>,
    heap_per_proc_bytes: Option<f64>,
}

/// The child: two rounds (or `rounds`) of `n` spawned processes in this fresh
/// OS process: the first meets cold stacks, the second reuses them.
fn child(n: usize, rounds: usize) {
    for round in ["cold", "warm"].into_iter().take(rounds) {
        let r = common::spawn(n);
        println!(
            "ROUND {round} n={} to_blocked_s={:.6} release_s={:.6} rss_growth_kib={} stack_rss_kib={} heap_growth_bytes={}",
            r.n,
            r.to_blocked.as_secs_f64(),
            r.release.as_secs_f64(),
            r.rss_growth_kib
                .map_or_else(|| "?".to_owned(), |k| k.to_string()),
            r.stack_rss_kib
                .map_or_else(|| "?".to_owned(), |k| k.to_string()),
            r.heap_growth
                .map_or_else(|| "?".to_owned(), |k| k.to_string()),
        );
        println!(
            "MARKS {round} (CLOCK_MONOTONIC, for perf report --time) spawn={:.6} blocked={:.6} ended={:.6}",
            r.marks[0], r.marks[1], r.marks[2]
        );
    }
    if let Some(peak) = common::rss_kib(true) {
        println!("PEAK_RSS_KIB {peak}");
    }
}

fn parse_round(line: &str) -> Option<(String, ChildRound)> {
    let mut it = line.split_whitespace();
    if it.next()? != "ROUND" {
        return None;
    }
    let round = it.next()?.to_owned();
    let mut n = None;
    let mut to_blocked = None;
    let mut release = None;
    let mut rss = None;
    let mut stack_rss = None;
    let mut heap = None;
    for kv in it {
        let (k, v) = kv.split_once('=')?;
        match k {
            "n" => n = v.parse::<f64>().ok(),
            "to_blocked_s" => to_blocked = v.parse().ok(),
            "release_s" => release = v.parse().ok(),
            "rss_growth_kib" => rss = v.parse::<f64>().ok(),
            "stack_rss_kib" => stack_rss = v.parse::<f64>().ok(),
            "heap_growth_bytes" => heap = v.parse::<f64>().ok(),
            _ => {}
        }
    }
    Some((
        round,
        ChildRound {
            to_blocked_s: to_blocked?,
            release_s: release?,
            rss_per_proc_kib: rss.zip(n).map(|(r, n)| r / n),
            stack_rss_per_proc_kib: stack_rss.zip(n).map(|(r, n)| r / n),
            heap_per_proc_bytes: heap.zip(n).map(|(r, n)| r / n),
        },
    ))
}

/// Runs this binary again with `args`; returns its standard output.
fn run_child(args: &[&str]) -> String {
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => panic!("cannot find this benchmark's executable to re-run it: {e}"),
    };
    let out = match Command::new(&exe).args(args).output() {
        Ok(o) => o,
        Err(e) => panic!("cannot start the child {} {args:?}: {e}", exe.display()),
    };
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        panic!(
            "the child {args:?} failed ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    stdout
}

/// What the child processes measured.
#[derive(Default)]
struct Children {
    cold: Vec<ChildRound>,
    warm: Vec<ChildRound>,
    /// Seconds to touch `n` fresh stack pages (the fault-floor child).
    floor_touch: Vec<f64>,
    /// Seconds for `n` guard-page installs (the fault-floor child).
    floor_guards: Vec<f64>,
}

/// Runs the fault-floor child and the spawn child, `CHILD_REPS` times each,
/// alternating.
fn run_children(n: usize) -> Children {
    let mut c = Children::default();
    let n_arg = n.to_string();
    for _ in 0..CHILD_REPS {
        for line in run_child(&[FLOOR_ARG, &n_arg]).lines() {
            let Some(rest) = line.strip_prefix("FLOOR ") else {
                continue;
            };
            for kv in rest.split_whitespace() {
                match kv.split_once('=') {
                    Some(("touch_s", v)) => c.floor_touch.extend(v.parse::<f64>().ok()),
                    Some(("guards_s", v)) => c.floor_guards.extend(v.parse::<f64>().ok()),
                    _ => {}
                }
            }
        }
        for line in run_child(&[CHILD_ARG, &n_arg]).lines() {
            match parse_round(line) {
                Some((r, round)) if r == "cold" => c.cold.push(round),
                Some((_, round)) => c.warm.push(round),
                None => {}
            }
        }
    }
    c
}

/// Runs one scenario once with `ops` operations and prints ns per operation:
/// `compare --only <scenario> <ops>`, for profiling one scenario with
/// `perf record -g`.
fn only(name: &str, ops: u64) {
    let ops = ops.max(1);
    let el = match name {
        "commstime" => common::commstime(ops),
        "ring" => common::ring(RING, ops),
        "ping_pong" => common::ping_pong(ops),
        "alt" => common::alt(ops).elapsed,
        "spawn" => {
            let r = common::spawn(usize::try_from(ops).unwrap_or(usize::MAX));
            r.to_blocked + r.release
        }
        "corosensei_pair" => common::coro_pairs(ops),
        "corosensei_lifecycle" => common::coro_lifecycles(ops),
        "may_ring" => common::may_ring(RING, ops),
        "may_ping_pong" => common::may_ping_pong(ops),
        _ => {
            eprintln!(
                "unknown scenario '{name}': commstime, ring, ping_pong, alt, spawn, \
                 corosensei_pair, corosensei_lifecycle, may_ring, may_ping_pong"
            );
            std::process::exit(2);
        }
    };
    println!(
        "{name}: {ops} ops, {:.1} ns/op",
        el.as_nanos() as f64 / ops as f64
    );
}

/// CPU ticks (USER_HZ) spent so far by the whole machine (busy, not idle) and
/// by this OS process with its waited-for children, from `/proc/stat` and
/// `/proc/self/stat`.
fn cpu_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let busy = cpu.iter().take(8).sum::<u64>() - cpu.get(3)? - cpu.get(4)?;
    let me = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest: Vec<u64> = me
        .rsplit_once(')')?
        .1
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    // utime, stime, cutime, cstime are fields 14..=17; `rest` starts at field 4
    // (field 3, the state, is not a number and was dropped).
    let mine = rest.get(10..14)?.iter().sum();
    Some((busy, mine))
}

/// Cores that *other* programs kept busy on average since `start` (from
/// [`cpu_ticks`]), over `secs` seconds.
fn others_load(start: Option<(u64, u64)>, secs: f64) -> String {
    match start.zip(cpu_ticks()) {
        Some(((b0, m0), (b1, m1))) => {
            let others = (b1 - b0).saturating_sub(m1 - m0) as f64 / 100.0;
            format!("{:.2} cores", others / secs.max(1e-9))
        }
        None => "?".to_owned(),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == CHILD_ARG) {
        let n = args
            .get(i + 1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(MILLION);
        let rounds = args.get(i + 2).and_then(|s| s.parse().ok()).unwrap_or(2);
        child(n, rounds);
        return;
    }
    if let Some(i) = args.iter().position(|a| a == FLOOR_ARG) {
        let n = args
            .get(i + 1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(MILLION);
        let f = common::fault_floor(n);
        println!(
            "FLOOR n={n} touch_s={:.6} guards_s={}",
            f.touch.as_secs_f64(),
            f.guards
                .map_or_else(|| "?".to_owned(), |g| format!("{:.6}", g.as_secs_f64()))
        );
        return;
    }
    common::may_one_worker();
    if let Some(i) = args.iter().position(|a| a == ONLY_ARG) {
        let name = args.get(i + 1).map_or("", String::as_str);
        let ops = args
            .get(i + 2)
            .and_then(|s| s.parse().ok())
            .unwrap_or(10_000_000);
        only(name, ops);
        return;
    }

    println!(
        "csp greenlets vs raw baselines: median of {REPS} runs (1 M-process figures: median of {CHILD_REPS} child processes)"
    );
    let ticks0 = cpu_ticks();
    let wall0 = std::time::Instant::now();
    println!();

    let scenarios = [
        Scenario::new(10_000_000, common::coro_pairs),
        Scenario::new(1_000_000, common::coro_lifecycles),
        Scenario::new(1_000_000, common::commstime),
        Scenario::new(1_000_000, |h| common::ring(RING, h)),
        Scenario::new(1_000_000, common::ping_pong),
        Scenario::new(1_000_000, |n| common::alt(n).elapsed),
        Scenario::new(100_000, |n| {
            let r = common::spawn(usize::try_from(n).unwrap_or(usize::MAX));
            r.to_blocked + r.release
        }),
        Scenario::new(1_000_000, |h| common::may_ring(RING, h)),
        Scenario::new(500_000, common::may_ping_pong),
    ];
    let [
        pair,
        lifecycle,
        commstime,
        ring,
        ping_pong,
        alt,
        spawn,
        may_ring,
        may_ping_pong,
    ]: [Stats; 9] = match measure(&scenarios, REPS).try_into() {
        Ok(a) => a,
        Err(_) => unreachable!("one Stats per scenario"),
    };

    let children = run_children(MILLION);
    let of = |v: &[ChildRound], f: fn(&ChildRound) -> Option<f64>| {
        stats(v.iter().filter_map(f).collect())
    };
    let cold_blocked = of(&children.cold, |c| Some(c.to_blocked_s));
    let warm_blocked = of(&children.warm, |c| Some(c.to_blocked_s));
    let cold_release = of(&children.cold, |c| Some(c.release_s));
    let rss = of(&children.cold, |c| c.rss_per_proc_kib);
    let stack_rss = of(&children.cold, |c| c.stack_rss_per_proc_kib);
    let heap = of(&children.cold, |c| c.heap_per_proc_bytes);
    let floor_touch = stats(children.floor_touch.clone());
    let floor_guards =
        (!children.floor_guards.is_empty()).then(|| stats(children.floor_guards.clone()));
    // Per child pair: pages + guards (pages alone where guards are unavailable).
    let floor = stats(
        children
            .floor_touch
            .iter()
            .enumerate()
            .map(|(k, t)| t + children.floor_guards.get(k).copied().unwrap_or(0.0))
            .collect(),
    );
    let m = MILLION as f64;
    let lifecycle_1m_s = lifecycle.median * m / 1e9;

    let row = Row::new;
    let rows = vec![
        row(
            "commstime (per loop)",
            &commstime,
            "ns",
            "corosensei pair ×4",
            same_rounds(&commstime, &pair, 4.0),
            Some(150.0),
            1,
        ),
        row(
            "thread ring, 503 (per hop)",
            &ring,
            "ns",
            "may mpsc, 1 worker",
            same_rounds(&ring, &may_ring, 1.0),
            Some(80.0),
            1,
        ),
        row(
            "thread ring, 503 (per hop)",
            &ring,
            "ns",
            "corosensei pair ×1",
            same_rounds(&ring, &pair, 1.0),
            Some(80.0),
            1,
        ),
        row(
            "ping-pong (per round trip)",
            &ping_pong,
            "ns",
            "may mpsc, 1 worker",
            same_rounds(&ping_pong, &may_ping_pong, 1.0),
            Some(120.0),
            1,
        ),
        row(
            "ping-pong (per round trip)",
            &ping_pong,
            "ns",
            "corosensei pair ×2",
            same_rounds(&ping_pong, &pair, 2.0),
            Some(120.0),
            1,
        ),
        row(
            "alt 2 in + 1 out (per select)",
            &alt,
            "ns",
            "corosensei pair ×1",
            same_rounds(&alt, &pair, 1.0),
            None,
            1,
        ),
        row(
            "spawn 100 k, warm (per process)",
            &spawn,
            "ns",
            "corosensei lifecycle",
            same_rounds(&spawn, &lifecycle, 1.0),
            None,
            1,
        ),
        row(
            "1 M spawned until all blocked, cold",
            &cold_blocked,
            "s",
            "fresh pages + guards ×1 M",
            same_rounds(&cold_blocked, &floor, 1.0),
            Some(2.0),
            3,
        ),
        row(
            "1 M spawned until all blocked, cold",
            &cold_blocked,
            "s",
            "corosensei lifecycle ×1 M",
            fixed(&cold_blocked, lifecycle_1m_s),
            Some(2.0),
            3,
        ),
        row(
            "1 M spawned until all blocked, reused stacks",
            &warm_blocked,
            "s",
            "corosensei lifecycle ×1 M",
            fixed(&warm_blocked, lifecycle_1m_s),
            Some(0.5),
            3,
        ),
        row(
            "1 M released until all ended, cold",
            &cold_release,
            "s",
            "—",
            None,
            None,
            3,
        ),
        row(
            "RSS per blocked process (1 M)",
            &rss,
            "KiB",
            "one 4 KiB stack page",
            fixed(&rss, 4.0),
            Some(4.5),
            2,
        ),
    ];
    print_table(&rows);
    println!();
    println!(
        "baselines: corosensei pair = one resume + one suspend of a bare coroutine ({:.2} ns, min–max {:.2}–{:.2}); \
         corosensei lifecycle = create on a reused stack + resume to its one suspend + resume to its end ({:.1} ns); \
         may = may 0.3 coroutines on one worker with may::sync::mpsc (unbounded; may has no rendezvous channel): \
         ring {:.1} ns/hop ({:.1}–{:.1}), ping-pong {:.1} ns/round trip ({:.1}–{:.1})",
        pair.median,
        pair.min,
        pair.max,
        lifecycle.median,
        may_ring.median,
        may_ring.min,
        may_ring.max,
        may_ping_pong.median,
        may_ping_pong.min,
        may_ping_pong.max,
    );
    println!(
        "1 M cold: fresh-page floor = touching 1 M never-used stack tops {:.3} s (min–max {:.3}–{:.3}) + 1 M guard installs {} \
         (a child process with one mapping and no scheduler); \
         RSS per blocked process: {:.2} KiB in stacks + {:.0} bytes of heap handed out by malloc",
        floor_touch.median,
        floor_touch.min,
        floor_touch.max,
        floor_guards.as_ref().map_or_else(
            || "not available (no MADV_GUARD_INSTALL)".to_owned(),
            |g| format!("{:.3} s (min–max {:.3}–{:.3})", g.median, g.min, g.max)
        ),
        stack_rss.median,
        heap.median,
    );
    println!(
        "other programs kept {} busy on average during this run ({:.0} s; this machine has 2; \
         much above 0 means the figures are disturbed)",
        others_load(ticks0, wall0.elapsed().as_secs_f64()),
        wall0.elapsed().as_secs_f64()
    );
    let alt_run = common::alt(300_000);
    println!(
        "alt: guards chosen in a 300 k-select run: input 1 {}, input 2 {}, output {}",
        alt_run.chosen[0], alt_run.chosen[1], alt_run.chosen[2]
    );
}
