//! Unit-level checks of the parallel backend: the unsafe paths (a select's
//! slots written by other threads, messages given back to output guards,
//! offers withdrawn), many-iteration stress of alternations against plain
//! operations across threads (every message counted: none lost, none
//! duplicated), poison through a pipeline of threads, panics reported by
//! name, and `spawn` waiting.
//!
//! Iteration counts grow with `CSP_STRESS=1`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, PoisonError};
use std::time::Duration;

use csp_parallel::Parallel as P;
use csp_runtime::{
    Alt, ChanOps, Channel, ChannelSpec, Clock, Config, Direction, Ends, Error, Process, Reader,
    Result, Runtime, Writer,
};

fn stress() -> bool {
    std::env::var("CSP_STRESS").is_ok_and(|v| v.trim() == "1")
}

/// `n`, or ten times more under `CSP_STRESS=1`.
fn scaled(n: usize) -> usize {
    if stress() { n * 10 } else { n }
}

/// A raw channel of the backend, with one reader and one writer joined.
fn raw(capacity: usize) -> <P as Runtime>::Chan<u64> {
    let c = P::channel::<u64>(ChannelSpec {
        name: None,
        capacity,
    });
    c.join(Direction::Read);
    c.join(Direction::Write);
    c
}

/// A process whose ends are poisoned or retired with it (as `#[process]`
/// does), without cloning them (a clone would be one more end).
fn proc<E, O, F>(name: &'static str, ends: E, body: F) -> Process<O>
where
    E: Ends + Send + 'static,
    O: Send + 'static,
    F: FnOnce(E) -> Result<O> + Send + 'static,
{
    let cell = Arc::new(Mutex::new(Some(ends)));
    let inner = Arc::clone(&cell);
    let p = Process::new(name, move || {
        let ends = inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .ok_or_else(|| Error::config("a process body ran twice"))?;
        body(ends)
    });
    let guard = cell.lock().unwrap_or_else(PoisonError::into_inner);
    p.with_ends(&*guard)
}

#[test]
fn rendezvous_between_two_threads() {
    let c = Channel::<u64, P>::new();
    let (w, r) = (c.writer(), c.reader());
    let out = P::par(vec![
        Process::new("writer", move || {
            for i in 0..1000 {
                w.write(i)?;
            }
            w.retire();
            Ok(0)
        }),
        Process::new("reader", move || {
            let mut sum = 0;
            loop {
                match r.read() {
                    Ok(v) => sum += v,
                    Err(Error::Retired) => return Ok(sum),
                    Err(e) => return Err(e),
                }
            }
        }),
    ])
    .expect("the par succeeds");
    assert_eq!(out, vec![Some(0), Some(999 * 1000 / 2)]);
}

/// The slot of a waiting input guard is written by the writer's thread
/// (`Wakes::complete` → `LocalParty::put`), then read by the select.
#[test]
fn waiting_input_guard_receives_from_another_thread() {
    let a = raw(0);
    let b = raw(0);
    let n = scaled(2000) as u64;
    let (wa, wb) = (a.clone(), b.clone());
    let writer = std::thread::spawn(move || {
        for i in 0..n {
            let c = if i % 2 == 0 { &wa } else { &wb };
            c.write(i).expect("the select reads every message");
        }
    });
    let mut got = Vec::new();
    for _ in 0..n {
        let (mut sa, mut sb) = (None, None);
        let k = {
            let mut guards = [P::input_guard(&a, &mut sa), P::input_guard(&b, &mut sb)];
            P::select(&mut guards).expect("select")
        };
        match (k, sa, sb) {
            (0, Some(v), None) | (1, None, Some(v)) => got.push(v),
            other => panic!("guard and slots disagree: {other:?}"),
        }
    }
    writer.join().expect("writer");
    assert_eq!(got, (0..n).collect::<Vec<_>>());
}

/// An output guard that does not commit keeps its message: whether it was
/// withdrawn (`withdraw` returns it) or given back (a lost claim,
/// `Wakes::give_back`), it is back in its `Option` when the select returns.
#[test]
fn uncommitted_output_guards_keep_their_messages() {
    let a = raw(0);
    let b = raw(0);
    let n = scaled(2000) as u64;
    let (ra, rb) = (a.clone(), b.clone());
    // One reader per channel; each stops when it reads the end marker.
    let readers: Vec<_> = [ra, rb]
        .into_iter()
        .map(|c| {
            std::thread::spawn(move || {
                let mut got = Vec::new();
                loop {
                    let v = c.read().expect("read");
                    if v == u64::MAX {
                        return got;
                    }
                    got.push(v);
                }
            })
        })
        .collect();
    let mut sent = Vec::new();
    for i in 0..n {
        let (mut va, mut vb) = (Some(2 * i), Some(2 * i + 1));
        let k = {
            let mut guards = [P::output_guard(&a, &mut va), P::output_guard(&b, &mut vb)];
            P::select(&mut guards).expect("select")
        };
        match (k, va, vb) {
            (0, None, Some(x)) if x == 2 * i + 1 => sent.push(2 * i),
            (1, Some(x), None) if x == 2 * i => sent.push(2 * i + 1),
            other => panic!("round {i}: guard and messages disagree: {other:?}"),
        }
    }
    a.write(u64::MAX).expect("end marker a");
    b.write(u64::MAX).expect("end marker b");
    let mut got: Vec<u64> = readers
        .into_iter()
        .flat_map(|t| t.join().expect("reader"))
        .collect();
    got.sort_unstable();
    sent.sort_unstable();
    assert_eq!(got, sent, "every committed message arrives once");
}

/// A select that timed out leaves no offer behind: a later writer is not
/// matched with the dead select (whose slot no longer exists), and an output
/// guard's message is back in its `Option`.
#[test]
fn timed_out_select_withdraws_its_offers() {
    let a = raw(0);
    for round in 0..scaled(50) as u64 {
        let mut slot = None;
        let mut out = Some(round);
        let k = {
            let mut guards = [
                P::input_guard(&a, &mut slot),
                P::output_guard(&a, &mut out),
                P::timeout_guard(Duration::from_micros(200)),
            ];
            P::select(&mut guards).expect("select")
        };
        assert_eq!(k, 2, "only the timeout can commit");
        assert_eq!(slot, None);
        assert_eq!(out, Some(round), "the output guard's message came back");
        // Were an offer left queued, this write would complete it (writing
        // into a frame that is gone) instead of this thread's read.
        let wa = a.clone();
        let t = std::thread::spawn(move || wa.write(round + 1000));
        assert_eq!(a.read().expect("read"), round + 1000);
        t.join().expect("writer").expect("write");
    }
}

/// Poison reaches a select that waits, and the message of its output guard
/// comes back to it.
#[test]
fn poison_fails_a_waiting_select_and_returns_its_message() {
    for _ in 0..scaled(100) {
        let a = raw(0);
        let b = raw(0);
        let barrier = Arc::new(Barrier::new(2));
        let (pb, bar) = (b.clone(), Arc::clone(&barrier));
        let t = std::thread::spawn(move || {
            bar.wait();
            pb.poison(Direction::Read);
        });
        let mut slot = None;
        let mut out = Some(7);
        barrier.wait();
        let r = {
            let mut guards = [P::input_guard(&a, &mut slot), P::output_guard(&b, &mut out)];
            P::select(&mut guards)
        };
        assert_eq!(r, Err(Error::Poisoned));
        assert_eq!(out, Some(7));
        assert_eq!(slot, None);
        t.join().expect("poisoner");
    }
}

/// Plain writers and writers in alternations, plain readers and readers in
/// alternations, on a rendezvous and a buffered channel: every message is
/// received exactly once.
///
/// Writer 0 writes to `a` plainly or by alternation, writer 1 likewise to
/// `b`, writer 2 always by alternation; readers mirror them. So every
/// waiting writer always has a reader that will come for it (no deadlock by
/// construction), and every kind of match happens: plain with plain, plain
/// with alternation, alternation with alternation.
#[test]
fn alt_and_plain_operations_lose_and_duplicate_nothing() {
    for capacity in [0usize, 3] {
        let per_writer = scaled(3000) as u64;
        let total = (per_writer * 3) as usize;
        let a = Channel::<u64, P>::buffered(capacity);
        let b = Channel::<u64, P>::buffered(capacity);
        let received = Arc::new(AtomicUsize::new(0));
        let mut procs: Vec<Process<Vec<u64>>> = Vec::new();
        for w in 0..3u64 {
            let (wa, wb) = (a.writer(), b.writer());
            procs.push(Process::new("writer", move || {
                for i in 0..per_writer {
                    let v = w * per_writer + i;
                    match (w, i % 2) {
                        (0, 0) => wa.write(v)?,
                        (1, 0) => wb.write(v)?,
                        _ => Alt::new()
                            .write(&wa, v, || ())
                            .write(&wb, v, || ())
                            .select()?,
                    }
                }
                Ok(Vec::new())
            }));
        }
        for k in 0..3u64 {
            let (ra, rb) = (a.reader(), b.reader());
            let received = Arc::clone(&received);
            procs.push(Process::new("reader", move || {
                let mut got = Vec::new();
                let mut step = 0u64;
                loop {
                    step += 1;
                    let r = match (k, step % 2) {
                        (0, 0) => ra.read(),
                        (1, 0) => rb.read(),
                        _ => Alt::new().read(&ra, |v| v).read(&rb, |v| v).select(),
                    };
                    match r {
                        Ok(v) => {
                            got.push(v);
                            if received.fetch_add(1, Ordering::AcqRel) + 1 == total {
                                // The last message: stop every reader.
                                ra.poison();
                                rb.poison();
                            }
                        }
                        Err(Error::Poisoned) => return Ok(got),
                        Err(e) => return Err(e),
                    }
                }
            }));
        }
        let out = P::par(procs).expect("the par succeeds");
        let mut all: Vec<u64> = out.into_iter().flatten().flatten().collect();
        assert_eq!(all.len(), total, "capacity {capacity}: messages received");
        all.sort_unstable();
        all.dedup();
        assert_eq!(
            all.len(),
            total,
            "capacity {capacity}: a message was duplicated"
        );
    }
}

/// Two alternations that each offer both directions on the same channels
/// never match themselves, and what one sends the other receives.
#[test]
fn alternations_meet_alternations() {
    let n = scaled(2000);
    let a = Channel::<u64, P>::new();
    let b = Channel::<u64, P>::new();
    let done = Arc::new(AtomicUsize::new(0));
    let mut procs = Vec::new();
    for id in 0..2u64 {
        let (ra, wa, rb, wb) = (a.reader(), a.writer(), b.reader(), b.writer());
        let done = Arc::clone(&done);
        procs.push(Process::new("alt", move || {
            let mut fair = csp_runtime::Fair::new();
            for i in 0..n as u64 {
                let v = id << 32 | i;
                let own = Alt::new()
                    .read(&ra, move |x| x >> 32 == id)
                    .write(&wa, v, || false)
                    .read(&rb, move |x| x >> 32 == id)
                    .write(&wb, v, || false)
                    // Only a stalled machine times out (then the two
                    // fall out of step, and the last select times out too).
                    .timeout(Duration::from_millis(50), || false)
                    .select_fair(&mut fair)?;
                assert!(!own, "an alternation received its own message");
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        }));
    }
    P::par(procs).expect("the par succeeds");
    assert_eq!(done.load(Ordering::Relaxed), 2 * n);
}

#[test]
fn poison_propagates_through_a_pipeline_of_threads() {
    const STAGES: usize = 8;
    let chans: Vec<Channel<u64, P>> = (0..=STAGES).map(|_| Channel::new()).collect();
    let mut procs: Vec<Process<u64>> = Vec::new();
    let w0 = chans[0].writer();
    procs.push(proc("source", w0, |w| {
        for i in 0..100 {
            w.write(i)?;
        }
        w.poison();
        Ok(100)
    }));
    for s in 0..STAGES {
        let ends = (chans[s].reader(), chans[s + 1].writer());
        procs.push(proc(
            "stage",
            ends,
            |(r, w): (Reader<u64, P>, Writer<u64, P>)| loop {
                let v = r.read()?;
                w.write(v + 1)?;
            },
        ));
    }
    let sink_r = chans[STAGES].reader();
    let seen = Arc::new(AtomicUsize::new(0));
    let seen_in = Arc::clone(&seen);
    procs.push(proc("sink", sink_r, move |r| {
        loop {
            r.read()?;
            seen_in.fetch_add(1, Ordering::Relaxed);
        }
    }));
    let out = P::par(procs).expect("poison is a shutdown, not a failure");
    assert_eq!(out[0], Some(100));
    assert!(
        out[1..].iter().all(Option::is_none),
        "every stage stopped by poison: {out:?}"
    );
    assert!(seen.load(Ordering::Relaxed) <= 100);
    for c in &chans {
        assert!(c.is_poisoned(), "channel {} was not poisoned", c.name());
    }
}

#[test]
fn a_panic_is_reported_by_name_and_poisons_the_network() {
    let c = Channel::<u64, P>::new();
    let out = P::par(vec![
        proc("listener", c.reader(), |r| r.read()),
        proc("crasher", c.writer(), |_w| -> Result<u64> {
            panic!("boom {}", 42)
        }),
    ]);
    match out {
        Err(Error::Panicked { process, message }) => {
            assert_eq!(process, "crasher");
            assert_eq!(message, "boom 42");
        }
        other => panic!("expected a panic report, got {other:?}"),
    }
    assert!(c.is_poisoned());
}

#[test]
fn processes_know_their_names_and_threads_are_named() {
    let out = P::par(vec![
        Process::new("alpha", || {
            Ok((
                P::current_process(),
                std::thread::current().name().map(str::to_owned),
            ))
        }),
        Process::new("beta", || {
            Ok((
                P::current_process(),
                std::thread::current().name().map(str::to_owned),
            ))
        }),
    ])
    .expect("par");
    assert_eq!(out[0], Some(("alpha".to_owned(), Some("alpha".to_owned()))));
    assert_eq!(out[1], Some(("beta".to_owned(), Some("beta".to_owned()))));
    let outside = std::thread::spawn(P::current_process)
        .join()
        .expect("thread");
    assert_eq!(outside, "main");
}

/// The sleeps below only make a missing wait visible (a `par` that did not
/// wait would return before the flag is set); the test passes whatever the
/// timing when the backend waits.
#[test]
fn a_process_waits_for_what_it_spawned() {
    let done = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&done);
    let out = P::par(vec![Process::new("parent", move || {
        P::spawn(Process::new("child", move || {
            std::thread::sleep(Duration::from_millis(20));
            P::spawn(Process::new("grandchild", move || {
                std::thread::sleep(Duration::from_millis(20));
                flag.store(true, Ordering::Release);
                Ok(())
            }))?;
            Ok(())
        }))?;
        Ok(())
    })])
    .expect("par");
    assert_eq!(out, vec![Some(())]);
    assert!(
        done.load(Ordering::Acquire),
        "par returned before the spawned processes ended"
    );
}

/// As above: the sleep only makes a missing wait visible.
#[test]
fn run_waits_for_mains_spawned_processes() {
    let done = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&done);
    P::run(Config::new(), move || {
        P::spawn(Process::new("background", move || {
            std::thread::sleep(Duration::from_millis(20));
            flag.store(true, Ordering::Release);
            Ok(())
        }))
    })
    .expect("run")
    .expect("spawn");
    assert!(done.load(Ordering::Acquire));
}

#[test]
fn run_refuses_a_simulated_clock_and_nesting() {
    match P::run(Config::new().clock(Clock::Simulated), || ()) {
        Err(Error::Config(m)) => assert!(m.contains("Clock::Simulated"), "{m}"),
        other => panic!("expected a Config error, got {other:?}"),
    }
    let inner = P::run(Config::new(), || P::run(Config::new(), || ())).expect("outer run");
    assert!(matches!(inner, Err(Error::Config(_))), "{inner:?}");
    // The thread can run again afterwards, and `now` counts from the run's start.
    let t = P::run(Config::new(), P::now).expect("run");
    assert!(t < Duration::from_secs(5));
}

#[test]
fn io_runs_and_reports_panics() {
    assert_eq!(P::io(|| 6 * 7), Ok(42));
    let r = P::par(vec![Process::new("worker", || {
        P::io(|| -> u32 { panic!("disk on fire") })
    })]);
    match r {
        Err(Error::Panicked { process, message }) => {
            assert_eq!(process, "worker");
            assert!(message.contains("disk on fire"), "{message}");
        }
        other => panic!("expected a panic report, got {other:?}"),
    }
}

/// An alternation over many guards (more than the linear grouping handles),
/// with channels that appear more than once: every message arrives once.
#[test]
fn wide_alternation_with_repeated_channels() {
    const CHANS: usize = 24;
    let chans: Vec<Channel<u64, P>> = (0..CHANS).map(|_| Channel::new()).collect();
    // Every channel once, then the first eight again.
    let readers: Vec<Reader<u64, P>> = chans
        .iter()
        .chain(chans.iter().take(8))
        .map(Channel::reader)
        .collect();
    let writers: Vec<Writer<u64, P>> = chans.iter().map(Channel::writer).collect();
    let n = scaled(500) as u64;
    let out = P::par(vec![
        Process::new("writer", move || {
            for i in 0..n {
                writers[(i as usize * 7) % CHANS].write(i)?;
            }
            Ok(Vec::new())
        }),
        Process::new("selector", move || {
            let mut got = Vec::new();
            for _ in 0..n {
                got.push(Alt::new().read_each(&readers, |_, v| v).select()?);
            }
            Ok(got)
        }),
    ])
    .expect("par");
    let got = out[1].clone().unwrap_or_default();
    assert_eq!(got, (0..n).collect::<Vec<_>>());
}

/// Many threads in a ring pass a token around several times.
#[test]
fn many_threads_in_a_ring() {
    const N: usize = 200;
    let laps = 5u64;
    let chans: Vec<Channel<u64, P>> = (0..N).map(|_| Channel::new()).collect();
    let mut procs = Vec::new();
    for i in 0..N {
        let (r, w) = (chans[i].reader(), chans[(i + 1) % N].writer());
        procs.push(Process::new("node", move || {
            if i == 0 {
                w.write(0)?;
                for _ in 1..laps {
                    let v = r.read()?;
                    w.write(v + 1)?;
                }
                return r.read();
            }
            let mut last = 0;
            for _ in 0..laps {
                last = r.read()?;
                w.write(last + 1)?;
            }
            Ok(last)
        }));
    }
    let start = std::time::Instant::now();
    let out = P::par(procs).expect("par");
    eprintln!("{N} threads, {laps} laps: {:?}", start.elapsed());
    assert_eq!(out[0], Some(laps * N as u64 - 1));
}
