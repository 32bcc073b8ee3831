//! Criterion benchmarks of the greenlets backend, each group with its raw
//! baselines beside it.
//!
//! `cargo bench --bench greenlets` (all groups) or `cargo bench --bench
//! greenlets -- thread_ring` (one group). Every benchmark reports the time of
//! one operation:
//!
//! | group | one operation | ours | baselines |
//! | --- | --- | --- | --- |
//! | `commstime` | one consumer read (4 rendezvous) | greenlets | corosensei pair |
//! | `thread_ring` | one hop of the token, 503 processes | greenlets | corosensei pair, may |
//! | `ping_pong` | one round trip | greenlets | corosensei pair, may |
//! | `alt` | one select (2 inputs, 1 output) | greenlets | corosensei pair |
//! | `spawn` | one process: spawn, block, release, end | greenlets | corosensei create + 2 resumes |
//!
//! "corosensei pair" is one resume plus one suspend of a bare coroutine: the
//! two stack switches that a process needs to block and be resumed.

use std::time::Duration;

use criterion::{BenchmarkGroup, Criterion, measurement::WallTime};

mod common;

/// Ring size of the classic thread-ring benchmark.
const RING: usize = 503;

/// The spawn benchmark releases its processes in batches of at most this many
/// (each batch is one `csp::run`), so memory stays bounded however many
/// iterations criterion asks for.
const SPAWN_BATCH: u64 = 10_000;

fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    g
}

fn corosensei_pair(g: &mut BenchmarkGroup<'_, WallTime>) {
    g.bench_function("corosensei_pair", |b| b.iter_custom(common::coro_pairs));
}

fn commstime(c: &mut Criterion) {
    let mut g = group(c, "commstime");
    g.bench_function("greenlets", |b| b.iter_custom(common::commstime));
    corosensei_pair(&mut g);
    g.finish();
}

fn thread_ring(c: &mut Criterion) {
    let mut g = group(c, "thread_ring");
    g.bench_function("greenlets", |b| {
        b.iter_custom(|hops| common::ring(RING, hops))
    });
    corosensei_pair(&mut g);
    g.bench_function("may", |b| {
        b.iter_custom(|hops| common::may_ring(RING, hops))
    });
    g.finish();
}

fn ping_pong(c: &mut Criterion) {
    let mut g = group(c, "ping_pong");
    g.bench_function("greenlets", |b| b.iter_custom(common::ping_pong));
    corosensei_pair(&mut g);
    g.bench_function("may", |b| b.iter_custom(common::may_ping_pong));
    g.finish();
}

fn alt(c: &mut Criterion) {
    let mut g = group(c, "alt");
    g.bench_function("greenlets", |b| b.iter_custom(|n| common::alt(n).elapsed));
    corosensei_pair(&mut g);
    g.finish();
}

fn spawn(c: &mut Criterion) {
    let mut g = group(c, "spawn");
    g.bench_function("greenlets", |b| {
        b.iter_custom(|n| {
            let mut total = Duration::ZERO;
            let mut left = n;
            while left > 0 {
                let batch = left.min(SPAWN_BATCH);
                let r = common::spawn(usize::try_from(batch).unwrap_or(usize::MAX));
                total += r.to_blocked + r.release;
                left -= batch;
            }
            total
        });
    });
    g.bench_function("corosensei_lifecycle", |b| {
        b.iter_custom(common::coro_lifecycles)
    });
    g.finish();
}

fn main() {
    // may starts its scheduler on first use; one worker, as our one thread.
    common::may_one_worker();
    let mut c = Criterion::default().configure_from_args();
    commstime(&mut c);
    thread_ring(&mut c);
    ping_pong(&mut c);
    alt(&mut c);
    spawn(&mut c);
    c.final_summary();
}
