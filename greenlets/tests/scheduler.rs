//! Properties of the greenlets scheduler itself: replayable seeded schedules,
//! simulated time, io offload, spawn, and misuse reported as errors.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use csp_greenlets::Greenlets as G;
use csp_runtime::{Alt, Channel, Clock, Config, Error, Process, Runtime, Schedule};

/// Four writers race to one reader; the order the reader sees is the schedule's fingerprint.
fn race_trace(config: Config) -> Vec<u32> {
    G::run(config, || {
        let c = Channel::<u32, G>::new();
        let mut procs = Vec::new();
        for id in 0..4u32 {
            let w = c.writer();
            procs.push(Process::new("writer", move || {
                for i in 0..5 {
                    w.write(id * 10 + i)?;
                }
                Ok(Vec::new())
            }));
        }
        let r = c.reader();
        procs.push(Process::new("reader", move || {
            (0..20).map(|_| r.read()).collect()
        }));
        let out = G::par(procs).unwrap();
        out.into_iter().flatten().flatten().collect()
    })
    .unwrap()
}

#[test]
fn same_seed_replays_the_same_interleaving() {
    for seed in [1u64, 7, 42, 1234] {
        let a = race_trace(Config::new().schedule(Schedule::seeded(seed)));
        let b = race_trace(Config::new().schedule(Schedule::seeded(seed)));
        assert_eq!(a, b, "seed {seed} must replay");
        assert_eq!(a.len(), 20);
    }
}

#[test]
fn different_seeds_explore_different_interleavings() {
    let traces: std::collections::HashSet<Vec<u32>> = (0..20)
        .map(|seed| race_trace(Config::new().schedule(Schedule::seeded(seed))))
        .collect();
    assert!(
        traces.len() > 5,
        "20 seeds gave only {} interleavings",
        traces.len()
    );
    // FIFO is deterministic too.
    assert_eq!(race_trace(Config::new()), race_trace(Config::new()));
}

#[test]
fn simulated_time_jumps_to_the_next_timer() {
    let wall = Instant::now();
    let (order, now) = G::run(Config::new().clock(Clock::Simulated), || {
        let log = Arc::new(Mutex::new(Vec::new()));
        let procs: Vec<_> = [3u64, 1, 2]
            .into_iter()
            .map(|h| {
                let log = log.clone();
                Process::new("sleeper", move || {
                    G::sleep(Duration::from_secs(h * 3600))?;
                    log.lock()
                        .map_err(|_| Error::config("poisoned lock"))?
                        .push(h);
                    Ok(())
                })
            })
            .collect();
        G::par(procs).unwrap();
        let order = log.lock().unwrap().clone();
        (order, G::now())
    })
    .unwrap();
    assert_eq!(order, vec![1, 2, 3], "sleepers wake in deadline order");
    assert!(now >= Duration::from_secs(3 * 3600));
    assert!(
        wall.elapsed() < Duration::from_secs(5),
        "simulated hours must take no real time"
    );
}

#[test]
fn timeout_guard_fires_on_the_simulated_clock() {
    let got = G::run(Config::new().clock(Clock::Simulated), || {
        let c = Channel::<u8, G>::new();
        let r = c.reader();
        let t0 = G::now();
        let v = Alt::new()
            .read(&r, |_| "read")
            .timeout(Duration::from_secs(60), || "timeout")
            .select();
        (v, G::now() - t0)
    })
    .unwrap();
    assert_eq!(got.0, Ok("timeout"));
    assert!(got.1 >= Duration::from_secs(60));
}

#[test]
fn io_calls_run_concurrently_and_return_values_and_panics() {
    // Each call waits until all eight are in flight at once: calls that ran
    // one after another would each give up after the timeout and say so.
    let meeting = Arc::new((Mutex::new(0usize), std::sync::Condvar::new()));
    let out = G::par(
        (0..8u64)
            .map(|i| {
                let meeting = meeting.clone();
                Process::new("io", move || {
                    G::io(move || {
                        let (count, all_here) = &*meeting;
                        let mut n = count.lock().unwrap();
                        *n += 1;
                        all_here.notify_all();
                        let (n, timeout) = all_here
                            .wait_timeout_while(n, Duration::from_secs(20), |n| *n < 8)
                            .unwrap();
                        (!timeout.timed_out() && *n >= 8).then_some(i * 2)
                    })
                })
            })
            .collect(),
    )
    .unwrap();
    assert_eq!(out, (0..8).map(|i| Some(Some(i * 2))).collect::<Vec<_>>());
    let err = G::par(vec![Process::new("io-panic", || {
        G::io(|| -> u8 { panic!("disk on fire") })
    })])
    .unwrap_err();
    match err {
        Error::Panicked { process, message } => {
            assert_eq!(process, "io-panic");
            assert!(message.contains("disk on fire"), "{message}");
        }
        e => panic!("expected Panicked, got {e:?}"),
    }
}

#[test]
fn other_processes_run_while_io_blocks() {
    let c = Channel::<u32, G>::buffered(100);
    let (w, r) = (c.writer(), c.reader());
    let out = G::par(vec![
        Process::new("slow-io", move || {
            G::io(|| std::thread::sleep(Duration::from_millis(100))).map(|_| 0)
        }),
        Process::new("busy", move || {
            for i in 0..50 {
                w.write(i)?;
            }
            Ok(50)
        }),
        Process::new("drain", move || {
            (0..50).map(|_| r.read()).sum::<csp_runtime::Result<u32>>()
        }),
    ])
    .unwrap();
    assert_eq!(out, vec![Some(0), Some(50), Some((0..50).sum())]);
}

#[test]
fn spawned_processes_are_joined_when_their_spawner_ends() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l2 = log.clone();
    G::par(vec![Process::new("parent", move || {
        let l3 = l2.clone();
        G::spawn(Process::new("child", move || {
            G::sleep(Duration::from_millis(20))?;
            l3.lock().map_err(|_| Error::config("lock"))?.push("child");
            Ok(())
        }))?;
        l2.lock()
            .map_err(|_| Error::config("lock"))?
            .push("parent body done");
        Ok(())
    })])
    .unwrap();
    // par returned only after the child ended.
    assert_eq!(*log.lock().unwrap(), vec!["parent body done", "child"]);
}

#[test]
fn a_channel_used_from_another_thread_is_refused() {
    let c = Channel::<u8, G>::buffered(1);
    let w = c.writer();
    let got = std::thread::spawn(move || w.write(1)).join().unwrap();
    match got {
        Err(Error::Config(m)) => assert!(m.contains("another OS thread"), "{m}"),
        other => panic!("expected a Config error, got {other:?}"),
    }
}

#[test]
fn run_does_not_nest() {
    let inner = G::run(Config::new(), || G::run(Config::new(), || ())).unwrap();
    assert!(matches!(inner, Err(Error::Config(_))), "{inner:?}");
    // And a run works again afterwards.
    assert_eq!(G::run(Config::new(), || 5).unwrap(), 5);
}

#[test]
fn a_process_panic_is_reported_with_its_name_and_poisons_its_ends() {
    let c = Channel::<u8, G>::new();
    let (w, r) = (c.writer(), c.reader());
    let err = G::par(vec![
        Process::new("boom", move || -> csp_runtime::Result<()> {
            panic!("kaboom")
        })
        .with_ends(&w),
        Process::new("waiter", move || r.read().map(|_| ())),
    ])
    .unwrap_err();
    assert_eq!(
        err,
        Error::Panicked {
            process: "boom".into(),
            message: "kaboom".into()
        }
    );
    assert!(
        c.is_poisoned(),
        "the panicking process poisons its ends so the waiter stops"
    );
}

#[test]
fn deadlock_report_names_alt_guards_and_the_scheduler_recovers() {
    let a = Channel::<u8, G>::named("a");
    let b = Channel::<u8, G>::named("b");
    let (ra, wb) = (a.reader(), b.writer());
    let err = G::par(vec![Process::new("chooser", move || {
        Alt::new().read(&ra, |_| ()).write(&wb, 1, || ()).select()
    })])
    .unwrap_err();
    let Error::Deadlock(report) = err else {
        panic!("expected a deadlock")
    };
    let text = report.to_string();
    assert!(
        text.contains("'chooser' waits on alt over [read on channel 'a', write on channel 'b']"),
        "{text}"
    );
    assert_eq!(
        G::par(vec![Process::new("fine", || Ok(1))]).unwrap(),
        vec![Some(1)]
    );
}
