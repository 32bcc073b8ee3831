//! Ports of Go's channel tests (`test/chan/*.go`, `src/runtime/chan_test.go`)
//! that apply to rendezvous and buffered channels, select and poison.
//!
//! Go's `close` has no direct counterpart: where a Go test closes a channel to
//! end its readers, the port retires the writer end (readers then get
//! `Retired`) or poisons. Go's `select` is random; ours is a priority select
//! (`Alt::select`) or a fair one (`Alt::select_fair`), and the fairness cases
//! check both against Go's bounds.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{Case, Ctx, Outcome, Sleeper, key, proc, tag};
use crate::{Alt, Channel, Error, Fair, Process, Reader, Result, Runtime, Writer};

const SOURCE: &str = "golang";

/// The cases of this module.
pub(crate) fn cases<R: Runtime>() -> Vec<Case> {
    vec![
        case!(R, fifo_async, "Go test/chan/fifo.go AsynchFifo"),
        case!(R, fifo_sync, "Go test/chan/fifo.go SynchFifo"),
        case!(
            R,
            fifo_sync_writers,
            "Go test/chan/fifo.go SynchFifo, mirrored: a chain of writers"
        ),
        case!(
            R,
            fifo_queued_writers,
            "Go test/chan/fifo.go (queued senders) / pycsp-semantics §3.1 FIFO matching"
        ),
        case!(
            R,
            chan_fifo_order,
            "Go src/runtime/chan_test.go TestChan (FIFO order, caps 0..)"
        ),
        case!(
            R,
            chan_blocking,
            "Go src/runtime/chan_test.go TestChan (recv from empty / send to full blocks)"
        ),
        case!(R, sieve1, "Go test/chan/sieve1.go"),
        case!(
            R,
            select_fair_input,
            "Go src/runtime/chan_test.go TestPseudoRandomSend / TestSelectFairness (receive side)"
        ),
        case!(
            R,
            select_fair_output,
            "Go src/runtime/chan_test.go TestPseudoRandomSend (send side)"
        ),
        case!(
            R,
            select_fair_processes,
            "Go src/runtime/chan_test.go TestSelectFairness (with sending goroutines)"
        ),
        case!(
            R,
            select_priority,
            "Go src/runtime/chan_test.go TestPseudoRandomSend, priority counterpart"
        ),
        case!(R, nonblock, "Go test/chan/nonblock.go"),
        case!(
            R,
            nonblock_eventually,
            "Go test/chan/nonblock.go (retry loop) / chan_test.go TestNonblockRecvRace"
        ),
        case!(R, doubleselect, "Go test/chan/doubleselect.go"),
        case!(R, self_select, "Go src/runtime/chan_test.go TestSelfSelect"),
        case!(
            R,
            self_select_partner,
            "Go src/runtime/chan_test.go TestSelfSelect / PyCSP bug L12"
        ),
        case!(
            R,
            select_duplicate_channel,
            "Go src/runtime/chan_test.go TestSelectDuplicateChannel"
        ),
        case!(R, select6, "Go test/chan/select6.go (issue 2075)"),
        case!(
            R,
            multi_consumer,
            "Go src/runtime/chan_test.go TestMultiConsumer"
        ),
        case!(R, zerosize, "Go test/chan/zerosize.go"),
        case!(R, goroutines, "Go test/chan/goroutines.go"),
    ]
}

/// `AsynchFifo`: on a channel with buffer N, N writes then N reads give the
/// values back in order.
pub fn fifo_async<R: Runtime>() -> Outcome {
    const N: u64 = 10;
    let c = Channel::<u64, R>::buffered(N as usize);
    let (w, r) = (c.writer(), c.reader());
    for i in 0..N {
        w.write(i)
            .ctx(&format!("AsynchFifo: write {i} into a buffer of {N}"))?;
    }
    for i in 0..N {
        let v = r.read().ctx("AsynchFifo: read")?;
        ensure!(
            v == i,
            "AsynchFifo: read #{i} gave {v}, expected {i} (buffered channels are FIFO)"
        );
    }
    Ok(())
}

/// `SynchFifo`: a chain of N readers, each reading the shared rendezvous
/// channel only after the previous one has read and passed a token; the
/// writer writes 0..N and reader i must get i.
pub fn fifo_sync<R: Runtime>() -> Outcome {
    const N: u64 = 10;
    let ch = Channel::<u64, R>::new();
    let tokens: Vec<Channel<(), R>> = (0..=N).map(|_| Channel::new()).collect();
    let mut procs: Vec<Process<u64>> = Vec::new();
    for (i, pair) in (0..).zip(tokens.windows(2)) {
        let ends = (ch.reader(), pair[0].reader(), pair[1].writer());
        procs.push(proc(format!("Chain{i}"), ends, |(ch, inp, out)| {
            inp.read()?;
            let v = ch.read()?;
            out.write(())?;
            Ok(v)
        }));
    }
    let ends = (ch.writer(), tokens[0].writer(), tokens[N as usize].reader());
    procs.push(proc("main", ends, |(ch, start, end)| {
        start.write(())?;
        for i in 0..N {
            ch.write(i)?;
        }
        end.read()?;
        Ok(N)
    }));
    let out = R::par(procs).ctx("SynchFifo")?;
    let want: Vec<Option<u64>> = (0..=N).map(Some).collect();
    ensure!(
        out == want,
        "SynchFifo: chain element i should read i (and main return {N}): expected {want:?}, got {out:?}"
    );
    Ok(())
}

/// The mirror of `SynchFifo`: a chain of N writers, writer i writing i after
/// the previous writer's write completed; one reader gets 0..N in order.
pub fn fifo_sync_writers<R: Runtime>() -> Outcome {
    const N: u64 = 10;
    let ch = Channel::<u64, R>::new();
    let tokens: Vec<Channel<(), R>> = (0..=N).map(|_| Channel::new()).collect();
    let mut procs: Vec<Process<Vec<u64>>> = Vec::new();
    for (i, pair) in (0..).zip(tokens.windows(2)) {
        let ends = (ch.writer(), pair[0].reader(), pair[1].writer());
        procs.push(proc(format!("Chain{i}"), ends, move |(ch, inp, out)| {
            inp.read()?;
            ch.write(i)?;
            out.write(())?;
            Ok(Vec::new())
        }));
    }
    let ends = (ch.reader(), tokens[0].writer(), tokens[N as usize].reader());
    procs.push(proc("main", ends, |(ch, start, end)| {
        start.write(())?;
        let mut got = Vec::new();
        for _ in 0..N {
            got.push(ch.read()?);
        }
        end.read()?;
        Ok(got)
    }));
    let out = R::par(procs).ctx("SynchFifo (writers)")?;
    let got = out.last().cloned().flatten().unwrap_or_default();
    let want: Vec<u64> = (0..N).collect();
    ensure!(
        got == want,
        "SynchFifo (writers): expected {want:?}, got {got:?}"
    );
    Ok(())
}

/// Writers queued on a rendezvous channel are matched in the order they
/// arrived (pycsp-semantics §3.1, `ChannelHome.match`). Writer i starts its
/// write after sleeping `20·(i+1)` ms; the reader starts after every writer
/// is queued and must get 0, 1, 2, 3. The 20 ms gaps are the only ordering.
pub fn fifo_queued_writers<R: Runtime>() -> Outcome {
    const N: u64 = 4;
    const GAP: Duration = Duration::from_millis(20);
    let ch = Channel::<u64, R>::new();
    let mut procs: Vec<Process<Vec<u64>>> = Vec::new();
    for i in 0..N {
        procs.push(proc(format!("writer{i}"), ch.writer(), move |w| {
            R::sleep(GAP * (i as u32 + 1))?;
            w.write(i)?;
            Ok(Vec::new())
        }));
    }
    procs.push(proc("reader", ch.reader(), |r| {
        R::sleep(GAP * (N as u32 + 1))?;
        (0..N).map(|_| r.read()).collect()
    }));
    let out = R::par(procs).ctx("queued writers")?;
    let got = out.last().cloned().flatten().unwrap_or_default();
    let want: Vec<u64> = (0..N).collect();
    ensure!(
        got == want,
        "queued writers: writers queued in order {want:?} should be matched in that order, got {got:?}"
    );
    Ok(())
}

/// TestChan: "Send 100 integers, ensure that we receive them non-corrupted in
/// FIFO order", for capacities 0, 1, 2, 5, 10 and 100.
pub fn chan_fifo_order<R: Runtime>() -> Outcome {
    const N: u64 = 100;
    for cap in [0, 1, 2, 5, 10, 100] {
        let c = Channel::<u64, R>::buffered(cap);
        let sender = proc("sender", c.writer(), |w| {
            for i in 0..N {
                w.write(i)?;
            }
            Ok(Vec::new())
        });
        let receiver = proc("receiver", c.reader(), |r| {
            (0..N).map(|_| r.read()).collect()
        });
        let out = R::par(vec![sender, receiver]).ctx(&format!("TestChan FIFO, cap {cap}"))?;
        let got = out.last().cloned().flatten().unwrap_or_default();
        let want: Vec<u64> = (0..N).collect();
        ensure!(
            got == want,
            "TestChan FIFO, cap {cap}: expected 0..{N} in order, got {got:?}"
        );
    }
    Ok(())
}

/// TestChan: "Ensure that receive from empty chan blocks" and "Ensure that
/// send to full chan blocks", for capacities 0, 1 and 5. The check is one-sided
/// (a flag that must not be set yet after a sleep), so a slow scheduler cannot
/// make it fail.
pub fn chan_blocking<R: Runtime>() -> Outcome {
    for cap in [0usize, 1, 5] {
        // Receive from an empty channel blocks until a write.
        let c = Channel::<u64, R>::buffered(cap);
        let received = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&received);
        let receiver = proc("receiver", c.reader(), move |r| {
            let v = r.read()?;
            flag.store(true, Ordering::SeqCst);
            Ok(v == 42)
        });
        let flag = Arc::clone(&received);
        let sender = proc("sender", c.writer(), move |w| {
            R::sleep(Duration::from_millis(2))?;
            let early = flag.load(Ordering::SeqCst);
            w.write(42)?;
            Ok(!early)
        });
        let out =
            R::par(vec![receiver, sender]).ctx(&format!("TestChan recv blocks, cap {cap}"))?;
        ensure!(
            out == vec![Some(true), Some(true)],
            "TestChan, cap {cap}: a read from an empty channel must block until the write and then get 42; got (read got 42, read had not completed before the write) = {out:?}"
        );

        // Send to a full channel blocks until a read.
        let c = Channel::<u64, R>::buffered(cap);
        let w = c.writer();
        for i in 0..cap as u64 {
            w.write(i)
                .ctx(&format!("TestChan, cap {cap}: filling the buffer"))?;
        }
        let sent = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&sent);
        let sender = proc("sender", w, move |w| {
            w.write(1000)?;
            flag.store(true, Ordering::SeqCst);
            Ok(true)
        });
        let flag = Arc::clone(&sent);
        let receiver = proc("receiver", c.reader(), move |r| {
            R::sleep(Duration::from_millis(2))?;
            let early = flag.load(Ordering::SeqCst);
            let mut all = Vec::new();
            for _ in 0..=cap {
                all.push(r.read()?);
            }
            let want: Vec<u64> = (0..cap as u64).chain([1000]).collect();
            Ok(!early && all == want)
        });
        let out =
            R::par(vec![sender, receiver]).ctx(&format!("TestChan send blocks, cap {cap}"))?;
        ensure!(
            out == vec![Some(true), Some(true)],
            "TestChan, cap {cap}: a write to a full channel must block until a read, and every value must arrive in order; got {out:?}"
        );
        ensure!(
            sent.load(Ordering::SeqCst),
            "TestChan, cap {cap}: the blocked write never completed"
        );
    }
    Ok(())
}

/// The first 25 primes.
const PRIMES: [u64; 25] = [
    2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97,
];

fn filter<R: Runtime>(inp: Reader<u64, R>, out: Writer<u64, R>, prime: u64) -> Process<()> {
    proc(format!("Filter{prime}"), (inp, out), move |(inp, out)| {
        loop {
            let i = inp.read()?;
            if i % prime != 0 {
                out.write(i)?;
            }
        }
    })
}

/// sieve1.go: the concurrent prime sieve. A generator, a growing chain of
/// filters spawned by the sieve, and a consumer that takes the first 25
/// primes and then poisons; the poison reaches every filter and the
/// generator through propagation, and the sieve (which spawned them) ends
/// only after all of them have.
pub fn sieve1<R: Runtime>() -> Outcome {
    let primes = Channel::<u64, R>::new();
    let sieve = proc("Sieve", primes.writer(), |primes| {
        let first = Channel::<u64, R>::new();
        R::spawn(proc("Generate", first.writer(), |w| -> Result<()> {
            let mut i = 2;
            loop {
                w.write(i)?;
                i += 1;
            }
        }))?;
        let mut ch = first.reader();
        let err = loop {
            let prime = match ch.read() {
                Ok(p) => p,
                Err(e) => break e,
            };
            if let Err(e) = primes.write(prime) {
                break e;
            }
            let next = Channel::<u64, R>::new();
            let out = next.reader();
            let spawned = R::spawn(filter(ch, next.writer(), prime));
            ch = out;
            if let Err(e) = spawned {
                break e;
            }
        };
        // The current end of the chain is not an argument: poison it here.
        ch.poison();
        Err::<Vec<u64>, Error>(err)
    });
    let consumer = proc("main", primes.reader(), |r| {
        let got = (0..PRIMES.len())
            .map(|_| r.read())
            .collect::<Result<Vec<u64>>>()?;
        r.poison();
        Ok(got)
    });
    let out = R::par(vec![sieve, consumer]).ctx("sieve1")?;
    ensure!(
        out[0].is_none(),
        "sieve1: the sieve should end with Poisoned (None), got {:?}",
        out[0]
    );
    let got = out[1].clone().unwrap_or_default();
    ensure!(
        got == PRIMES,
        "sieve1: expected the first 25 primes {PRIMES:?}, got {got:?}"
    );
    Ok(())
}

const FAIR_N: usize = 100;

/// Two buffered channels, each always holding a message: a fair select over
/// them picks each a fair share (Go's bound: at least n/10 each); ours,
/// least-chosen first, alternates exactly (the counts differ by at most one).
pub fn select_fair_input<R: Runtime>() -> Outcome {
    let a = Channel::<u64, R>::buffered(FAIR_N);
    let b = Channel::<u64, R>::buffered(FAIR_N);
    let (wa, wb) = (a.writer(), b.writer());
    for i in 0..FAIR_N as u64 {
        wa.write(i).ctx("fair select: filling a")?;
        wb.write(i).ctx("fair select: filling b")?;
    }
    let (ra, rb) = (a.reader(), b.reader());
    let mut fair = Fair::new();
    let mut counts = [0usize; 2];
    for _ in 0..FAIR_N {
        let k = Alt::new()
            .read(&ra, |_| 0)
            .read(&rb, |_| 1)
            .select_fair(&mut fair)
            .ctx("fair select")?;
        counts[k] += 1;
    }
    ensure!(
        counts.iter().all(|&c| c >= FAIR_N / 10),
        "fair select over two ready inputs: each should be chosen at least {} of {FAIR_N} times (Go's bound), got {counts:?}",
        FAIR_N / 10
    );
    ensure!(
        counts[0].abs_diff(counts[1]) <= 1,
        "fair select over two always-ready inputs should alternate (least chosen first), got {counts:?}"
    );
    ensure!(
        fair.counts() == counts.map(|c| c as u64),
        "Fair::counts() should match the choices: {:?} vs {counts:?}",
        fair.counts()
    );
    Ok(())
}

/// TestPseudoRandomSend on the send side: a fair select over two output
/// guards to buffered channels with room picks each a fair share.
pub fn select_fair_output<R: Runtime>() -> Outcome {
    let a = Channel::<u64, R>::buffered(FAIR_N);
    let b = Channel::<u64, R>::buffered(FAIR_N);
    let (wa, wb) = (a.writer(), b.writer());
    let mut fair = Fair::new();
    let mut counts = [0usize; 2];
    for i in 0..FAIR_N as u64 {
        let k = Alt::new()
            .write(&wa, i, || 0)
            .write(&wb, i, || 1)
            .select_fair(&mut fair)
            .ctx("fair send select")?;
        counts[k] += 1;
    }
    ensure!(
        counts.iter().all(|&c| c >= FAIR_N / 10),
        "fair send select: each output should be chosen at least {} of {FAIR_N} times (Go's bound), got {counts:?}",
        FAIR_N / 10
    );
    ensure!(
        counts[0].abs_diff(counts[1]) <= 1,
        "fair send select over two outputs with room should alternate, got {counts:?}"
    );
    // Every message went to exactly one channel.
    let (ra, rb) = (a.reader(), b.reader());
    let mut got = Vec::new();
    for (r, n) in [(&ra, counts[0]), (&rb, counts[1])] {
        for _ in 0..n {
            got.push(r.read().ctx("fair send select: draining")?);
        }
        let extra = Alt::new()
            .read(r, Some)
            .skip(|| None)
            .select()
            .ctx("fair send select: checking for extra messages")?;
        ensure!(
            extra.is_none(),
            "fair send select: a channel holds a message nobody chose: {extra:?}"
        );
    }
    got.sort_unstable();
    let want: Vec<u64> = (0..FAIR_N as u64).collect();
    ensure!(
        got == want,
        "fair send select: each value should be sent exactly once, got {got:?}"
    );
    Ok(())
}

/// TestSelectFairness with sending goroutines: two processes write forever;
/// a fair select over both picks each at least n/10 times (Go's bound).
pub fn select_fair_processes<R: Runtime>() -> Outcome {
    const N: usize = 200;
    let a = Channel::<u64, R>::new();
    let b = Channel::<u64, R>::new();
    let sender = |name: &'static str, w: Writer<u64, R>| {
        proc(name, w, |w| -> Result<[usize; 2]> {
            loop {
                w.write(0)?;
            }
        })
    };
    let selector = proc("selector", (a.reader(), b.reader()), |(ra, rb)| {
        let mut fair = Fair::new();
        let mut counts = [0usize; 2];
        for _ in 0..N {
            let k = Alt::new()
                .read(&ra, |_| 0)
                .read(&rb, |_| 1)
                .select_fair(&mut fair)?;
            counts[k] += 1;
        }
        ra.poison();
        rb.poison();
        Ok(counts)
    });
    let out = R::par(vec![
        sender("senderA", a.writer()),
        sender("senderB", b.writer()),
        selector,
    ])
    .ctx("fair select with senders")?;
    let counts = out[2].unwrap_or_default();
    ensure!(
        counts.iter().all(|&c| c >= N / 10),
        "fair select with two always-sending processes: each should be chosen at least {} of {N} times, got {counts:?}",
        N / 10
    );
    Ok(())
}

/// The priority counterpart: a priority select over two always-ready inputs
/// (or outputs) always picks the first.
pub fn select_priority<R: Runtime>() -> Outcome {
    let a = Channel::<u64, R>::buffered(FAIR_N);
    let b = Channel::<u64, R>::buffered(FAIR_N);
    let (wa, wb) = (a.writer(), b.writer());
    for i in 0..FAIR_N as u64 {
        let k = Alt::new()
            .write(&wa, i, || 0)
            .write(&wb, i, || 1)
            .select()
            .ctx("priority send select")?;
        ensure!(
            k == 0,
            "priority send select over two outputs with room chose #{k} at step {i}, expected #0"
        );
    }
    for i in 0..FAIR_N as u64 {
        wb.write(i).ctx("priority select: filling b")?;
    }
    let (ra, rb) = (a.reader(), b.reader());
    for i in 0..FAIR_N as u64 {
        let (k, v) = Alt::new()
            .read(&ra, |v| (0, v))
            .read(&rb, |v| (1, v))
            .select()
            .ctx("priority select")?;
        ensure!(
            k == 0 && v == i,
            "priority select over two ready inputs gave (#{k}, {v}) at step {i}, expected (#0, {i})"
        );
    }
    Ok(())
}

/// nonblock.go: a select with a skip (Go's `default`) on a channel that is
/// not ready returns the skip at once; on a ready one it communicates. For
/// reads and writes, on capacities 0, 1 and 8.
pub fn nonblock<R: Runtime>() -> Outcome {
    for cap in [0usize, 1, 8] {
        let c = Channel::<u64, R>::buffered(cap);
        let (r, w) = (c.reader(), c.writer());
        let got = Alt::new()
            .read(&r, Some)
            .skip(|| None)
            .select()
            .ctx("nonblock read")?;
        ensure!(
            got.is_none(),
            "nonblock, cap {cap}: a non-blocking read of an empty channel should take the skip, got {got:?}"
        );
        let sent = Alt::new()
            .write(&w, 7, || true)
            .skip(|| false)
            .select()
            .ctx("nonblock write")?;
        ensure!(
            sent == (cap > 0),
            "nonblock, cap {cap}: a non-blocking write with no reader should {}, got sent = {sent}",
            if cap > 0 {
                "fill the buffer"
            } else {
                "take the skip"
            }
        );
        if cap > 0 {
            let got = Alt::new()
                .read(&r, Some)
                .skip(|| None)
                .select()
                .ctx("nonblock read")?;
            ensure!(
                got == Some(7),
                "nonblock, cap {cap}: a non-blocking read of a buffered message should get it, got {got:?}"
            );
            for i in 0..cap as u64 {
                w.write(i).ctx("nonblock: filling")?;
            }
            let sent = Alt::new()
                .write(&w, 99, || true)
                .skip(|| false)
                .select()
                .ctx("nonblock write to full")?;
            ensure!(
                !sent,
                "nonblock, cap {cap}: a non-blocking write to a full buffer should take the skip"
            );
        }
    }
    Ok(())
}

/// nonblock.go's retry loops: with a writer (reader) blocked on the other
/// side, a non-blocking read (write) retried with short sleeps eventually
/// communicates, and gets (gives) exactly that value. Capacities 0 and 1.
pub fn nonblock_eventually<R: Runtime>() -> Outcome {
    const TRIES: u32 = 1000;
    for cap in [0usize, 1] {
        let c = Channel::<u64, R>::buffered(cap);
        let sender = proc("sender", c.writer(), |w| {
            w.write(42)?;
            Ok(None)
        });
        let poller = proc("poller", c.reader(), |r| {
            for _ in 0..TRIES {
                if let Some(v) = Alt::new().read(&r, Some).skip(|| None).select()? {
                    return Ok(Some(v));
                }
                R::sleep(Duration::from_micros(100))?;
            }
            Ok(None)
        });
        let out = R::par(vec![sender, poller]).ctx("nonblock retry read")?;
        ensure!(
            out[1] == Some(Some(42)),
            "nonblock, cap {cap}: a retried non-blocking read never got the blocked writer's 42 ({TRIES} tries): {out:?}"
        );

        let c = Channel::<u64, R>::buffered(cap);
        let receiver = proc("receiver", c.reader(), |r| Ok(Some(r.read()?)));
        let poller = proc("poller", c.writer(), |w| {
            for _ in 0..TRIES {
                if Alt::new().write(&w, 43, || true).skip(|| false).select()? {
                    return Ok(Some(0));
                }
                R::sleep(Duration::from_micros(100))?;
            }
            Ok(None)
        });
        let out = R::par(vec![receiver, poller]).ctx("nonblock retry write")?;
        ensure!(
            out == vec![Some(Some(43)), Some(Some(0))],
            "nonblock, cap {cap}: a retried non-blocking write never reached the blocked reader ({TRIES} tries): {out:?}"
        );
    }
    Ok(())
}

/// doubleselect.go: several writers alternate over output guards to four
/// channels; a mux process per channel forwards to one channel; the receiver
/// must see every value exactly once (an output guard that was not chosen
/// sends nothing).
pub fn doubleselect<R: Runtime>() -> Outcome {
    const WRITERS: u64 = 3;
    const N: u64 = 100;
    let t = tag("doubleselect");
    let cs: Vec<Channel<u64, R>> = (0..4).map(|_| Channel::new()).collect();
    let cmux = Channel::<u64, R>::new();
    let mut procs: Vec<Process<Vec<u64>>> = Vec::new();
    for id in 0..WRITERS {
        let outs: Vec<Writer<u64, R>> = cs.iter().map(Channel::writer).collect();
        procs.push(proc(format!("sender{id}"), outs, move |outs| {
            for i in 0..N {
                if i % 10 == 0 {
                    Sleeper::Random.sleep::<R>(key(t, id, i))?;
                }
                let v = id * N + i;
                let mut alt = Alt::new();
                for o in &outs {
                    alt = alt.write(o, v, || ());
                }
                alt.select()?;
            }
            for o in &outs {
                o.retire();
            }
            Ok(Vec::new())
        }));
    }
    for (k, c) in cs.iter().enumerate() {
        procs.push(proc(
            format!("mux{k}"),
            (c.reader(), cmux.writer()),
            |(inp, out)| loop {
                out.write(inp.read()?)?;
            },
        ));
    }
    procs.push(proc("recver", cmux.reader(), |r| {
        let mut seen = Vec::new();
        loop {
            match r.read() {
                Ok(v) => seen.push(v),
                Err(Error::Retired) => return Ok(seen),
                Err(e) => return Err(e),
            }
        }
    }));
    let out = R::par(procs).ctx("doubleselect")?;
    let mut seen = out.last().cloned().flatten().unwrap_or_default();
    seen.sort_unstable();
    let want: Vec<u64> = (0..WRITERS * N).collect();
    if seen != want {
        let mut dups = seen.clone();
        dups.dedup();
        return Err(format!(
            "doubleselect: expected each of 0..{} exactly once; got {} values, {} distinct{}",
            WRITERS * N,
            seen.len(),
            dups.len(),
            if seen.len() < 40 {
                format!(": {seen:?}")
            } else {
                String::new()
            }
        ));
    }
    Ok(())
}

/// What a `TestSelfSelect` process did: (messages sent, messages received,
/// its own messages received).
type SelfCounts = (u64, u64, u64);

/// TestSelfSelect: two processes each alternate, 100 times, over an output
/// and an input guard on the same channel (in both orders). On a rendezvous
/// channel a process must never receive its own message (PyCSP bug L12 let
/// requests of one process meet), and nothing deadlocks; with a buffer of 10,
/// a process may read its own message, and every message sent is received or
/// left in the buffer.
pub fn self_select<R: Runtime>() -> Outcome {
    const ITER: u64 = 100;
    for cap in [0usize, 10] {
        let c = Channel::<u64, R>::buffered(cap);
        let mut procs: Vec<Process<SelfCounts>> = Vec::new();
        for p in 0..2u64 {
            procs.push(proc(
                format!("selfselect{p}"),
                (c.reader(), c.writer()),
                move |(r, w)| {
                    let (mut sent, mut recv, mut own) = (0, 0, 0);
                    for i in 0..ITER {
                        let got = if p == 0 || i % 2 == 0 {
                            Alt::new().write(&w, p, || None).read(&r, Some).select()?
                        } else {
                            Alt::new().read(&r, Some).write(&w, p, || None).select()?
                        };
                        match got {
                            None => sent += 1,
                            Some(v) => {
                                recv += 1;
                                if v == p {
                                    own += 1;
                                }
                            }
                        }
                    }
                    Ok((sent, recv, own))
                },
            ));
        }
        let out = R::par(procs).ctx(&format!("TestSelfSelect, cap {cap}"))?;
        let (Some(a), Some(b)) = (out[0], out[1]) else {
            return Err(format!(
                "TestSelfSelect, cap {cap}: a process did not finish: {out:?}"
            ));
        };
        if cap == 0 {
            ensure!(
                a.2 == 0 && b.2 == 0,
                "TestSelfSelect, cap 0: a process received its own message (self-match, PyCSP L12): (sent, received, own) = {a:?} and {b:?}"
            );
            ensure!(
                a.0 == b.1 && b.0 == a.1,
                "TestSelfSelect, cap 0: what one sent the other must receive: (sent, received, own) = {a:?} and {b:?}"
            );
        } else {
            let r = c.reader();
            let mut left = 0;
            while Alt::new()
                .read(&r, |_| true)
                .skip(|| false)
                .select()
                .ctx("TestSelfSelect: draining")?
            {
                left += 1;
            }
            ensure!(
                a.0 + b.0 == a.1 + b.1 + left,
                "TestSelfSelect, cap {cap}: {} sent, but {} received and {left} left in the buffer: {a:?} and {b:?}",
                a.0 + b.0,
                a.1 + b.1
            );
        }
    }
    Ok(())
}

/// PyCSP bug L12: an alternation with an output and an input guard on the
/// same rendezvous channel, in one process, must not match itself; with a
/// reader (writer) present it must commit its output (input) to that other
/// process, in either guard order, without deadlock.
pub fn self_select_partner<R: Runtime>() -> Outcome {
    for write_first in [true, false] {
        for partner_reads in [true, false] {
            let name = format!(
                "self-select with a partner (write guard first: {write_first}, partner reads: {partner_reads})"
            );
            let c = Channel::<u64, R>::new();
            let alter = proc("alter", (c.reader(), c.writer()), move |(r, w)| {
                let got = if write_first {
                    Alt::new()
                        .write(&w, 1, || 0)
                        .read(&r, |v| 10 + v)
                        .select()?
                } else {
                    Alt::new()
                        .read(&r, |v| 10 + v)
                        .write(&w, 1, || 0)
                        .select()?
                };
                Ok(got)
            });
            let partner = if partner_reads {
                proc("partner", c.reader(), |r| Ok(100 + r.read()?))
            } else {
                proc("partner", c.writer(), |w| {
                    w.write(2)?;
                    Ok(100)
                })
            };
            let out = R::par(vec![alter, partner]).ctx(&name)?;
            let want = if partner_reads {
                vec![Some(0), Some(101)]
            } else {
                vec![Some(12), Some(100)]
            };
            ensure!(
                out == want,
                "{name}: expected (alter, partner) = {want:?}, got {out:?}"
            );
        }
    }
    Ok(())
}

/// TestSelectDuplicateChannel: process A alternates over `read c, read c,
/// read d`; process B reads c; main writes d (A takes it), waits for A, then
/// writes c, which must reach B (A's stale offers on c must be gone).
pub fn select_duplicate_channel<R: Runtime>() -> Outcome {
    let c = Channel::<u64, R>::new();
    let d = Channel::<u64, R>::new();
    let e = Channel::<u64, R>::new();
    let a = proc(
        "A",
        (c.reader(), c.reader(), d.reader(), e.writer()),
        |(c1, c2, d, e)| {
            let got = Alt::new()
                .read(&c1, |v| ('c', v))
                .read(&c1, |v| ('c', v))
                .read(&c2, |v| ('c', v))
                .read(&d, |v| ('d', v))
                .select()?;
            e.write(9)?;
            Ok(got)
        },
    );
    let b = proc("B", c.reader(), |c| Ok(('c', c.read()?)));
    let main = proc("main", (c.writer(), d.writer(), e.reader()), |(c, d, e)| {
        R::sleep(Duration::from_millis(1))?;
        d.write(7)?;
        let nine = e.read()?;
        c.write(8)?;
        Ok(('e', nine))
    });
    let out = R::par(vec![a, b, main]).ctx("TestSelectDuplicateChannel")?;
    let want = vec![Some(('d', 7)), Some(('c', 8)), Some(('e', 9))];
    ensure!(
        out == want,
        "TestSelectDuplicateChannel: expected (A, B, main) = {want:?}, got {out:?}"
    );
    Ok(())
}

/// select6.go (Go issue 2075): a select that loses on c1 must not corrupt
/// c1's queue of waiting readers. P1 reads c1; P2 alternates over c1 and c2,
/// gets c2, tells main over c3, then reads c1; main writes c1 twice: both
/// writes must be taken.
pub fn select6<R: Runtime>() -> Outcome {
    let c1 = Channel::<bool, R>::new();
    let c2 = Channel::<bool, R>::new();
    let c3 = Channel::<bool, R>::new();
    let p1 = proc("P1", c1.reader(), |c1| {
        Ok(format!("P1 read {}", c1.read()?))
    });
    let p2 = proc(
        "P2",
        (c1.reader(), c2.reader(), c3.writer()),
        |(c1, c2, c3)| {
            let which = Alt::new()
                .read(&c1, |_| "c1")
                .read(&c2, |_| "c2")
                .select()?;
            if which == "c2" {
                c3.write(true)?;
            }
            let then = c1.read()?;
            Ok(format!("P2 chose {which}, then read {then}"))
        },
    );
    let p3 = proc("P3", c2.writer(), |c2| {
        c2.write(true)?;
        Ok("P3 wrote".to_owned())
    });
    let main = proc("main", (c1.writer(), c3.reader()), |(c1, c3)| {
        c3.read()?;
        c1.write(true)?;
        c1.write(true)?;
        Ok("main wrote twice".to_owned())
    });
    let out = R::par(vec![p1, p2, p3, main]).ctx("select6")?;
    let want: Vec<Option<String>> = [
        "P1 read true",
        "P2 chose c2, then read true",
        "P3 wrote",
        "main wrote twice",
    ]
    .iter()
    .map(|s| Some((*s).to_owned()))
    .collect();
    ensure!(out == want, "select6: expected {want:?}, got {out:?}");
    Ok(())
}

/// TestMultiConsumer: a producer sends 0..N through a buffered channel to
/// five workers that forward to a buffered result channel; the consumer gets
/// every value once (count and sum). Go closes the channels; here the
/// producer retires and retire propagates through the workers.
pub fn multi_consumer<R: Runtime>() -> Outcome {
    const WORK: usize = 5;
    const N: u64 = 100;
    let q = Channel::<u64, R>::buffered(WORK * 3);
    let r = Channel::<u64, R>::buffered(WORK * 3);
    let mut procs: Vec<Process<(u64, u64)>> = Vec::new();
    for i in 0..WORK {
        procs.push(proc(
            format!("worker{i}"),
            (q.reader(), r.writer()),
            |(q, r)| loop {
                r.write(q.read()?)?;
            },
        ));
    }
    procs.push(proc("producer", q.writer(), |q| {
        for i in 0..N {
            q.write(i)?;
        }
        q.retire();
        Ok((0, 0))
    }));
    procs.push(proc("consumer", r.reader(), |r| {
        let (mut n, mut sum) = (0, 0);
        loop {
            match r.read() {
                Ok(v) => {
                    n += 1;
                    sum += v;
                }
                Err(Error::Retired) => return Ok((n, sum)),
                Err(e) => return Err(e),
            }
        }
    }));
    let out = R::par(procs).ctx("TestMultiConsumer")?;
    let got = out.last().copied().flatten();
    let want = (N, N * (N - 1) / 2);
    ensure!(
        got == Some(want),
        "TestMultiConsumer: expected (count, sum) = {want:?}, got {got:?}"
    );
    Ok(())
}

/// zerosize.go: channels of a zero-sized type (`()`) carry exactly the
/// number of messages written, rendezvous and buffered.
pub fn zerosize<R: Runtime>() -> Outcome {
    for cap in [0usize, 1, 5] {
        let c = Channel::<(), R>::buffered(cap);
        let w = proc("writer", c.writer(), |w| {
            for _ in 0..10 {
                w.write(())?;
            }
            w.retire();
            Ok(0)
        });
        let r = proc("reader", c.reader(), |r| {
            let mut n = 0;
            loop {
                match r.read() {
                    Ok(()) => n += 1,
                    Err(Error::Retired) => return Ok(n),
                    Err(e) => return Err(e),
                }
            }
        });
        let out = R::par(vec![w, r]).ctx(&format!("zerosize, cap {cap}"))?;
        ensure!(
            out == vec![Some(0), Some(10)],
            "zerosize, cap {cap}: expected 10 messages of () to arrive, got {out:?}"
        );
    }
    Ok(())
}

/// goroutines.go: a chain of 200 processes, each reading from its right and
/// writing to its left; one value travels the whole chain (each process adds
/// one, so the result shows that all took part).
pub fn goroutines<R: Runtime>() -> Outcome {
    const N: u64 = 200;
    let chans: Vec<Channel<u64, R>> = (0..=N).map(|_| Channel::new()).collect();
    let mut procs: Vec<Process<u64>> = Vec::new();
    for (i, pair) in (0..).zip(chans.windows(2)) {
        procs.push(proc(
            format!("f{i}"),
            (pair[0].writer(), pair[1].reader()),
            |(left, right)| {
                let v = right.read()?;
                left.write(v + 1)?;
                Ok(0)
            },
        ));
    }
    procs.push(proc("feeder", chans[N as usize].writer(), |w| {
        w.write(1)?;
        Ok(0)
    }));
    procs.push(proc("main", chans[0].reader(), |r| r.read()));
    let out = R::par(procs).ctx("goroutines")?;
    let got = out.last().copied().flatten();
    ensure!(
        got == Some(N + 1),
        "goroutines: the value should arrive incremented by each of the {N} processes ({}), got {got:?}",
        N + 1
    );
    Ok(())
}
