//! Scenarios on OS threads: the parallel backend, and the same scenarios with
//! `crossbeam-channel` as the raw baseline (its `bounded(0)` is a rendezvous
//! channel, the same contract as ours).
//!
//! Each function returns the time measured inside the network, from the first
//! operation to the last, and checks what the network computed (a wrong count
//! panics, naming the scenario).

use std::sync::Arc;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use csp::runtime::Channel;
use csp::{Process, Runtime};
use csp_parallel::Parallel as P;

use super::{expect_ok, shutdown_ok};

type Chan = Channel<u64, P>;

/// Two processes: `ping` writes a number, `pong` reads it and writes it
/// back, `rounds` times.
pub(crate) fn ping_pong(rounds: u64) -> Duration {
    let (there, back) = (Chan::new(), Chan::new());
    let (w, r) = (there.writer(), back.reader());
    let ping = Process::new("ping", move || {
        let start = Instant::now();
        for i in 0..rounds {
            w.write(i)?;
            let v = r.read()?;
            if v != i {
                return Err(csp::Error::config(format!("ping-pong: sent {i}, got {v}")));
            }
        }
        let el = start.elapsed();
        w.poison();
        Ok(el)
    });
    let (r, w) = (there.reader(), back.writer());
    let pong = Process::new("pong", move || {
        let run = || -> csp::Result<()> {
            loop {
                w.write(r.read()?)?;
            }
        };
        let res = run();
        r.poison();
        w.poison();
        shutdown_ok(res, ())
    });
    let (el, _) = expect_ok(
        "parallel ping-pong",
        csp::runtime::par_tuple::<P, _>((ping, pong)),
    );
    el.unwrap_or_default()
}

/// The crossbeam baseline of [`ping_pong`]: two threads, two `bounded(0)`.
pub(crate) fn cb_ping_pong(rounds: u64) -> Duration {
    let (tx, rx) = crossbeam_channel::bounded::<u64>(0);
    let (btx, brx) = crossbeam_channel::bounded::<u64>(0);
    let pong = thread::spawn(move || {
        while let Ok(v) = rx.recv() {
            if btx.send(v).is_err() {
                break;
            }
        }
    });
    let start = Instant::now();
    for i in 0..rounds {
        tx.send(i).expect("crossbeam ping-pong: pong is gone");
        let v = brx.recv().expect("crossbeam ping-pong: pong is gone");
        assert_eq!(v, i, "crossbeam ping-pong");
    }
    let el = start.elapsed();
    drop(tx);
    pong.join().expect("crossbeam pong panicked");
    el
}

/// Commstime on OS threads: prefix, delta, successor, consumer; `loops`
/// values through the loop (four communications each).
pub(crate) fn commstime(loops: u64) -> Duration {
    let (a, b, c, d) = (Chan::new(), Chan::new(), Chan::new(), Chan::new());
    let (c_r, a_w) = (c.reader(), a.writer());
    let prefix = Process::new("prefix", move || {
        let run = || -> csp::Result<()> {
            a_w.write(0)?;
            loop {
                a_w.write(c_r.read()?)?;
            }
        };
        let r = run();
        c_r.poison();
        a_w.poison();
        shutdown_ok(r, ())
    });
    let (a_r, b_w, d_w) = (a.reader(), b.writer(), d.writer());
    let delta = Process::new("delta", move || {
        let run = || -> csp::Result<()> {
            loop {
                let v = a_r.read()?;
                b_w.write(v)?;
                d_w.write(v)?;
            }
        };
        let r = run();
        a_r.poison();
        b_w.poison();
        d_w.poison();
        shutdown_ok(r, ())
    });
    let (b_r, c_w) = (b.reader(), c.writer());
    let successor = Process::new("successor", move || {
        let run = || -> csp::Result<()> {
            loop {
                c_w.write(b_r.read()? + 1)?;
            }
        };
        let r = run();
        b_r.poison();
        c_w.poison();
        shutdown_ok(r, ())
    });
    let d_r = d.reader();
    let consumer = Process::new("consumer", move || {
        let first = d_r.read()?;
        let start = Instant::now();
        for i in 1..=loops {
            let v = d_r.read()?;
            if v != first + i {
                return Err(csp::Error::config(format!(
                    "commstime: expected {} got {v}",
                    first + i
                )));
            }
        }
        let el = start.elapsed();
        d_r.poison();
        Ok(el)
    });
    // The consumer's poison reaches delta, which poisons its other ends, and
    // so on around the loop (each process poisons its ends when it stops).
    let (_, _, _, el) = expect_ok(
        "parallel commstime",
        csp::runtime::par_tuple::<P, _>((prefix, delta, successor, consumer)),
    );
    el.unwrap_or_default()
}

/// The crossbeam baseline of [`commstime`].
pub(crate) fn cb_commstime(loops: u64) -> Duration {
    use crossbeam_channel::bounded;
    let (a_tx, a_rx) = bounded::<u64>(0);
    let (b_tx, b_rx) = bounded::<u64>(0);
    let (c_tx, c_rx) = bounded::<u64>(0);
    let (d_tx, d_rx) = bounded::<u64>(0);
    let prefix = thread::spawn(move || {
        if a_tx.send(0).is_err() {
            return;
        }
        while let Ok(v) = c_rx.recv() {
            if a_tx.send(v).is_err() {
                return;
            }
        }
    });
    let delta = thread::spawn(move || {
        while let Ok(v) = a_rx.recv() {
            if b_tx.send(v).is_err() || d_tx.send(v).is_err() {
                return;
            }
        }
    });
    let successor = thread::spawn(move || {
        while let Ok(v) = b_rx.recv() {
            if c_tx.send(v + 1).is_err() {
                return;
            }
        }
    });
    let first = d_rx.recv().expect("crossbeam commstime: delta is gone");
    let start = Instant::now();
    for i in 1..=loops {
        let v = d_rx.recv().expect("crossbeam commstime: delta is gone");
        assert_eq!(v, first + i, "crossbeam commstime");
    }
    let el = start.elapsed();
    // Dropping the consumer's receiver ends delta, whose senders' drop ends
    // successor and then prefix.
    drop(d_rx);
    for t in [prefix, delta, successor] {
        t.join().expect("crossbeam commstime thread panicked");
    }
    el
}

/// The sum of `0..n`, to check that every message arrived once.
fn sum_below(n: u64) -> u64 {
    n * n.saturating_sub(1) / 2
}

/// `writers` processes write `per_writer` messages each to ONE rendezvous
/// channel that `readers` processes read until it retires. Returns the time
/// from the start (all parties ready) to the last message read.
pub(crate) fn mpmc(writers: u64, readers: u64, per_writer: u64) -> Duration {
    let c = Chan::new();
    let total = writers * per_writer;
    let ready = Arc::new(Barrier::new(
        usize::try_from(writers + readers + 1).unwrap_or(1),
    ));
    let mut procs: Vec<Process<(u64, u64)>> = Vec::new();
    for k in 0..writers {
        let w = c.writer();
        let ready = ready.clone();
        procs.push(Process::new("writer", move || {
            ready.wait();
            for i in 0..per_writer {
                w.write(k * per_writer + i)?;
            }
            w.retire();
            Ok((0, 0))
        }));
    }
    for _ in 0..readers {
        let r = c.reader();
        let ready = ready.clone();
        procs.push(Process::new("reader", move || {
            ready.wait();
            let (mut n, mut sum) = (0u64, 0u64);
            loop {
                match r.read() {
                    Ok(v) => {
                        n += 1;
                        sum += v;
                    }
                    Err(csp::Error::Retired) => return Ok((n, sum)),
                    Err(e) => return Err(e),
                }
            }
        }));
    }
    drop(c);
    let timer = thread::spawn(move || {
        ready.wait();
        Instant::now()
    });
    let results = expect_ok("parallel mpmc", P::par(procs));
    let end = Instant::now();
    let start = timer.join().expect("mpmc timer thread panicked");
    let (n, sum) = results
        .into_iter()
        .flatten()
        .fold((0, 0), |(n, s), (a, b)| (n + a, s + b));
    assert_eq!(
        (n, sum),
        (total, sum_below(total)),
        "parallel mpmc: every message read once"
    );
    end - start
}

/// The crossbeam baseline of [`mpmc`]: `bounded(0)`, `writers` senders and
/// `readers` receivers, each on its own thread.
pub(crate) fn cb_mpmc(writers: u64, readers: u64, per_writer: u64) -> Duration {
    let (tx, rx) = crossbeam_channel::bounded::<u64>(0);
    let total = writers * per_writer;
    let ready = Arc::new(Barrier::new(
        usize::try_from(writers + readers + 1).unwrap_or(1),
    ));
    let mut senders = Vec::new();
    for k in 0..writers {
        let tx = tx.clone();
        let ready = ready.clone();
        senders.push(thread::spawn(move || {
            ready.wait();
            for i in 0..per_writer {
                tx.send(k * per_writer + i)
                    .expect("crossbeam mpmc: receivers gone");
            }
        }));
    }
    drop(tx);
    let mut receivers = Vec::new();
    for _ in 0..readers {
        let rx = rx.clone();
        let ready = ready.clone();
        receivers.push(thread::spawn(move || {
            ready.wait();
            let (mut n, mut sum) = (0u64, 0u64);
            while let Ok(v) = rx.recv() {
                n += 1;
                sum += v;
            }
            (n, sum)
        }));
    }
    drop(rx);
    ready.wait();
    let start = Instant::now();
    for s in senders {
        s.join().expect("crossbeam mpmc sender panicked");
    }
    let (mut n, mut sum) = (0, 0);
    for r in receivers {
        let (a, b) = r.join().expect("crossbeam mpmc receiver panicked");
        n += a;
        sum += b;
    }
    let el = start.elapsed();
    assert_eq!(
        (n, sum),
        (total, sum_below(total)),
        "crossbeam mpmc: every message read once"
    );
    el
}
