//! The exact rules of channels, processes and alternation: poison, retire and
//! buffers (pycsp-semantics §3.3–§3.6, §3.10), the fixes of PyCSP's bugs
//! (§10: L9, L10, L11), process results and propagation, and timeouts.
//!
//! Most cases drive the channels directly from the case (the main process)
//! and check each step; those that need blocked processes use `par`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{Case, Ctx, Log, Outcome, Sleeper, expect_err, key, proc, tag};
use crate::{Alt, Channel, Error, Process, Reader, Result, Runtime, Writer, alt, process, seq};

const SOURCE: &str = "rules";

/// The cases of this module.
pub(crate) fn cases<R: Runtime>() -> Vec<Case> {
    vec![
        case!(
            R,
            retired_end_is_unusable,
            "pycsp-semantics §3.4, §10 L9 (fixed)"
        ),
        case!(
            R,
            retire_counts_ends_and_clones,
            "pycsp-semantics §3.3, §3.4; Clone of an end"
        ),
        case!(
            R,
            dropping_an_end_does_not_retire,
            "pycsp-semantics §3.3 (counts go down only through retire)"
        ),
        case!(
            R,
            retire_fails_blocked_other_side,
            "pycsp-semantics §3.4 (blocked readers/writers get RETIRE)"
        ),
        case!(
            R,
            writer_poison_drains_buffer,
            "pycsp-semantics §3.5, §3.10, §10 L10 (fixed)"
        ),
        case!(
            R,
            writer_poison_many_readers,
            "pycsp-semantics §3.10, §10 L11 (fixed)"
        ),
        case!(
            R,
            writer_retire_defers_until_drained,
            "pycsp-semantics §3.4 deferred buffered retirement, §10 L11"
        ),
        case!(
            R,
            reader_poison_discards_buffer,
            "pycsp-semantics §3.5 poison_reader"
        ),
        case!(
            R,
            reader_retire_is_immediate,
            "pycsp-semantics §3.10 (reader-side retire acts at once)"
        ),
        case!(
            R,
            poison_is_sticky_and_wakes_waiters,
            "pycsp-semantics §3.5, §4.5"
        ),
        case!(
            R,
            poison_propagates_through_with_ends,
            "pycsp-semantics §3.6 (poison)"
        ),
        case!(
            R,
            retire_propagates_through_with_ends,
            "pycsp-semantics §3.6 (retire)"
        ),
        case!(
            R,
            panic_poisons_and_is_reported,
            "pycsp-semantics §3.6, §10 L19 (fixed)"
        ),
        case!(
            R,
            other_error_poisons_and_is_reported,
            "pycsp-semantics §3.6, §10 L19 (fixed)"
        ),
        case!(
            R,
            normal_return_propagates_nothing,
            "pycsp-semantics §3.6 (not propagated)"
        ),
        case!(
            R,
            par_results_in_order,
            "pycsp-semantics §1.4 Parallel, §3.6 (None for poisoned/retired)"
        ),
        case!(
            R,
            par_reports_first_failure,
            "DESIGN §3 Errors; Runtime::par"
        ),
        case!(R, seq_runs_in_order, "pycsp-semantics §1.4 Sequence"),
        case!(R, seq_stops_at_failure, "csp_runtime::seq"),
        case!(
            R,
            spawn_joined_by_spawner,
            "pycsp-semantics §11 (Spawn joined by the spawner at exit)"
        ),
        case!(
            R,
            spawn_from_main,
            "pycsp-semantics §1.4 Spawn (from the main process)"
        ),
        case!(R, alt_timeout, "pycsp-semantics §4.4 TimeoutGuard"),
        case!(
            R,
            alt_priority_and_skip,
            "pycsp-semantics §4.2, §4.4 SkipGuard"
        ),
        case!(R, alt_poisoned_or_retired_guard, "pycsp-semantics §4.5"),
        case!(
            R,
            alt_commits_exactly_one_output,
            "DESIGN §3 Alt (exactly one guard commits)"
        ),
        case!(
            R,
            alt_fair_puts_skip_last,
            "pycsp-semantics §4.3 (Skip/Timeout always last in FairSelect)"
        ),
        case!(
            R,
            alt_commit_then_poison,
            "pycsp-semantics §4.5, §10 L37 (fixed)"
        ),
        case!(
            R,
            mobile_ends_keep_their_count,
            "pycsp-semantics §3.9 (mobile ends keep their join counts)"
        ),
        case!(R, sleep_advances_now, "Runtime::sleep / Runtime::now"),
        case!(R, current_process_names, "Runtime::current_process"),
        case!(
            R,
            process_macro_propagates_poison,
            "#[process] / pycsp-semantics §3.6 (Vec, Option, tuple args)"
        ),
        case!(
            R,
            process_macro_propagates_retire,
            "#[process] / pycsp-semantics §3.6 (retire)"
        ),
        case!(R, process_macro_panic, "#[process] / Error::Panicked"),
        case!(
            R,
            alt_macro,
            "alt! / pycsp-semantics §4 (priority, skip, timeout, preconditions, fair)"
        ),
    ]
}

/// Reads without blocking: `Some(value)`, or `None` if nothing is ready.
fn poll<T: crate::Message, R: Runtime>(r: &Reader<T, R>) -> Result<Option<T>> {
    Alt::new().read(r, Some).skip(|| None).select()
}

/// L9 fixed: a retired end is unusable (`Err(Retired)` at once, in `read`,
/// `write` and alternations, even with a skip) while the channel stays open
/// for the other ends. PyCSP's `self.__call__ = self._retire` was a no-op, so
/// its retired ends kept working.
pub fn retired_end_is_unusable<R: Runtime>() -> Outcome {
    let c = Channel::<u32, R>::buffered(4);
    let (r1, r2, w) = (c.reader(), c.reader(), c.writer());
    r1.retire();
    ensure!(
        r1.is_retired(),
        "L9: a reader end should say it is retired after retire()"
    );
    ensure!(
        !c.is_retired(),
        "L9: the channel must stay open while another reader end exists"
    );
    expect_err(
        "L9: read on a retired reader end",
        r1.read(),
        &Error::Retired,
    )?;
    expect_err(
        "L9: alternation (with a skip) over a retired reader end",
        poll(&r1),
        &Error::Retired,
    )?;
    w.write(5)
        .ctx("L9: write with one of two readers retired")?;
    ensure!(
        r2.read() == Ok(5),
        "L9: the other reader end should still read"
    );

    let w2 = c.writer();
    w2.retire();
    ensure!(
        !c.is_retired(),
        "L9: the channel must stay open while another writer end exists"
    );
    expect_err(
        "L9: write on a retired writer end",
        w2.write(1),
        &Error::Retired,
    )?;
    expect_err(
        "L9: alternation (with a skip) over a retired writer end",
        Alt::new().write(&w2, 1, || ()).skip(|| ()).select(),
        &Error::Retired,
    )?;
    w.write(6).ctx("L9: write on the other writer end")?;
    let got = r2.read();
    ensure!(
        got == Ok(6),
        "L9: expected to read 6 written by the live writer, got {got:?}"
    );
    Ok(())
}

/// Retire counting (§3.3, §3.4): every `reader()`/`writer()` and every clone
/// of an end is one end; the channel retires when the last end of one side
/// retires; retiring an end twice counts once.
pub fn retire_counts_ends_and_clones<R: Runtime>() -> Outcome {
    // Reader side.
    let c = Channel::<u32, R>::buffered(4);
    let r1 = c.reader();
    let r2 = r1.clone();
    let w1 = c.writer();
    let w2 = w1.clone();
    r1.retire();
    r1.retire();
    ensure!(
        !c.is_retired(),
        "retire counting: a clone of a reader is one more reader end; retiring the original (twice) must not retire the channel"
    );
    w1.write(1)
        .ctx("retire counting: write with the clone still there")?;
    let got = r2.read();
    ensure!(
        got == Ok(1),
        "retire counting: the clone should read 1, got {got:?}"
    );
    r2.retire();
    ensure!(
        c.is_retired(),
        "retire counting: when the last reader end (a clone) retires, the channel retires"
    );
    expect_err(
        "retire counting: write after every reader retired",
        w2.write(2),
        &Error::Retired,
    )?;
    expect_err(
        "retire counting: write on the other writer after every reader retired",
        w1.write(2),
        &Error::Retired,
    )?;

    // Writer side.
    let d = Channel::<u32, R>::buffered(4);
    let r = d.reader();
    let wa = d.writer();
    let wb = wa.clone();
    let wc = d.writer();
    wa.retire();
    wb.retire();
    ensure!(
        !d.is_retired(),
        "retire counting: two of three writer ends (one a clone) retired must not retire the channel"
    );
    wc.write(3)
        .ctx("retire counting: write on the third writer end")?;
    let got = r.read();
    ensure!(got == Ok(3), "retire counting: expected 3, got {got:?}");
    wc.retire();
    ensure!(
        d.is_retired(),
        "retire counting: the last writer end retired (empty buffer): the channel retires at once"
    );
    expect_err(
        "retire counting: read after every writer retired",
        r.read(),
        &Error::Retired,
    )?;
    Ok(())
}

/// §3.3: counts go down only through `retire`; dropping an end releases
/// memory but does not retire it, so the channel stays open.
pub fn dropping_an_end_does_not_retire<R: Runtime>() -> Outcome {
    let c = Channel::<u32, R>::buffered(1);
    let r1 = c.reader();
    drop(c.reader());
    r1.retire();
    ensure!(
        !c.is_retired(),
        "dropping a reader end must not retire it (only retire() lowers the count)"
    );
    let w1 = c.writer();
    drop(c.writer());
    w1.retire();
    ensure!(!c.is_retired(), "dropping a writer end must not retire it");
    Ok(())
}

/// What a blocked operation ended with, as text (for comparison).
fn outcome<T: std::fmt::Debug>(r: Result<T>) -> String {
    format!("{r:?}")
}

/// §3.4: a process blocked reading when the last writer end retires gets
/// `Retired`; so do blocked writers when the last reader end retires, and a
/// blocked alternation over such a channel.
pub fn retire_fails_blocked_other_side<R: Runtime>() -> Outcome {
    // A blocked reader and a blocked alternation; the last writer retires.
    let c = Channel::<u32, R>::new();
    let d = Channel::<u32, R>::new();
    let w = c.writer();
    let blocked_read = proc("blocked_read", c.reader(), |r| Ok(outcome(r.read())));
    let _keep_d = d.writer();
    let blocked_alt = proc("blocked_alt", (c.reader(), d.reader()), |(rc, rd)| {
        Ok(outcome(
            Alt::new().read(&rd, |v| v).read(&rc, |v| v).select(),
        ))
    });
    let retirer = proc("retirer", w, |w| {
        R::sleep(Duration::from_millis(1))?;
        w.retire();
        Ok(String::new())
    });
    let out = R::par(vec![blocked_read, blocked_alt, retirer]).ctx("last writer retires")?;
    let want = vec![
        Some("Err(Retired)".to_owned()),
        Some("Err(Retired)".to_owned()),
        Some(String::new()),
    ];
    ensure!(
        out == want,
        "when the last writer end retires, a blocked read and a blocked alternation must fail with Retired: expected {want:?}, got {out:?}"
    );

    // A blocked writer; the last reader retires.
    let c = Channel::<u32, R>::new();
    let blocked_write = proc("blocked_write", c.writer(), |w| Ok(outcome(w.write(1))));
    let retirer = proc("retirer", c.reader(), |r| {
        R::sleep(Duration::from_millis(1))?;
        r.retire();
        Ok(String::new())
    });
    let out = R::par(vec![blocked_write, retirer]).ctx("last reader retires")?;
    let want = vec![Some("Err(Retired)".to_owned()), Some(String::new())];
    ensure!(
        out == want,
        "when the last reader end retires, a blocked write must fail with Retired: expected {want:?}, got {out:?}"
    );
    Ok(())
}

/// §3.5/§3.10 and L10 fixed: a writer-side poison of a non-empty buffer
/// stops writers at once but lets readers drain the buffer, through any end
/// (PyCSP's local flag short-circuit skipped the buffer for ends of the same
/// `Channel` object); then every read fails with `Poisoned`. The channel
/// counts as poisoned only once drained.
pub fn writer_poison_drains_buffer<R: Runtime>() -> Outcome {
    let c = Channel::<u32, R>::buffered(4);
    let (r, w) = (c.reader(), c.writer());
    w.write(1).ctx("L10: write 1")?;
    w.write(2).ctx("L10: write 2")?;
    w.poison();
    expect_err(
        "L10: write after a writer-side poison",
        w.write(3),
        &Error::Poisoned,
    )?;
    ensure!(
        !c.is_poisoned(),
        "L10: a writer-side poison of a non-empty buffer counts only once the buffer is empty (ChanOps::is_poisoned)"
    );
    let got = r.read();
    ensure!(
        got == Ok(1),
        "L10: the first buffered message should still be read after a writer-side poison, got {got:?}"
    );
    let r2 = c.reader();
    let got = r2.read();
    ensure!(
        got == Ok(2),
        "L10: an end made after the poison should read the second buffered message, got {got:?}"
    );
    expect_err(
        "L10: read of the drained, poisoned buffer",
        r.read(),
        &Error::Poisoned,
    )?;
    ensure!(
        c.is_poisoned(),
        "L10: after draining, the channel is poisoned"
    );
    expect_err(
        "L10: read on the other end after draining",
        r2.read(),
        &Error::Poisoned,
    )?;
    Ok(())
}

/// L11 fixed: a writer writes N messages into a small buffer and then
/// poisons (or retires); several readers with random sleeps read until they
/// are told. Every message is read exactly once, each reader sees them in
/// order, and every reader is told (`Poisoned`/`Retired`) — none hangs when
/// the last item is taken.
pub fn writer_poison_many_readers<R: Runtime>() -> Outcome {
    const N: u64 = 30;
    for poison in [true, false] {
        let name = if poison {
            "L11 (poison)"
        } else {
            "L11 (retire)"
        };
        let t = tag(name);
        let c = Channel::<u64, R>::buffered(4);
        let mut procs: Vec<Process<Vec<u64>>> = vec![proc("writer", c.writer(), move |w| {
            for i in 0..N {
                Sleeper::Random.sleep::<R>(key(t, 0, i))?;
                w.write(i)?;
            }
            if poison {
                w.poison();
            } else {
                w.retire();
            }
            Ok(Vec::new())
        })];
        let want_end = if poison {
            Error::Poisoned
        } else {
            Error::Retired
        };
        for id in 1..=3u64 {
            let want_end = want_end.clone();
            procs.push(proc(format!("reader{id}"), c.reader(), move |r| {
                let mut got = Vec::new();
                for i in 0.. {
                    Sleeper::Random.sleep::<R>(key(t, id, i))?;
                    match r.read() {
                        Ok(v) => got.push(v),
                        Err(e) if e == want_end => break,
                        Err(e) => return Err(e),
                    }
                }
                Ok(got)
            }));
        }
        let out = R::par(procs).ctx(name)?;
        let mut all = Vec::new();
        for (id, got) in out.iter().enumerate().skip(1) {
            let Some(got) = got else {
                return Err(format!("{name}: reader{id} did not end normally: {out:?}"));
            };
            ensure!(
                got.windows(2).all(|p| p[0] < p[1]),
                "{name}: reader{id} should see its messages in FIFO order, got {got:?}"
            );
            all.extend_from_slice(got);
        }
        all.sort_unstable();
        let want: Vec<u64> = (0..N).collect();
        ensure!(
            all == want,
            "{name}: every message should be read exactly once before the readers are told; got {all:?}"
        );
    }
    Ok(())
}

/// §3.4 deferred buffered retirement: when the last writer retires with
/// messages buffered, the channel retires only once they are read; readers
/// get them all, then `Retired`.
pub fn writer_retire_defers_until_drained<R: Runtime>() -> Outcome {
    let c = Channel::<u32, R>::buffered(10);
    let (r, w1, w2) = (c.reader(), c.writer(), c.writer());
    for v in [1, 2, 3] {
        w1.write(v).ctx("deferred retire: filling")?;
    }
    w1.retire();
    ensure!(
        !c.is_retired(),
        "deferred retire: one of two writers retired, the channel stays open"
    );
    w2.retire();
    ensure!(
        !c.is_retired(),
        "deferred retire: the last writer retired with 3 messages buffered: retirement waits until they are read"
    );
    for v in [1, 2, 3] {
        let got = r.read();
        ensure!(
            got == Ok(v),
            "deferred retire: expected to read {v}, got {got:?}"
        );
    }
    expect_err(
        "deferred retire: read after the buffer drained",
        r.read(),
        &Error::Retired,
    )?;
    ensure!(
        c.is_retired(),
        "deferred retire: once drained, the channel is retired"
    );
    Ok(())
}

/// §3.5 `poison_reader`: a poison through a reader end (or the channel)
/// discards the buffered messages at once; every later read or write fails.
pub fn reader_poison_discards_buffer<R: Runtime>() -> Outcome {
    for through_channel in [false, true] {
        let what = if through_channel {
            "Channel::poison"
        } else {
            "reader-side poison"
        };
        let c = Channel::<u32, R>::buffered(5);
        let (r, w) = (c.reader(), c.writer());
        for v in [1, 2, 3] {
            w.write(v).ctx(&format!("{what}: filling"))?;
        }
        if through_channel {
            c.poison();
        } else {
            r.poison();
        }
        ensure!(c.is_poisoned(), "{what}: the channel is poisoned at once");
        expect_err(
            &format!("{what}: read of a buffer with 3 messages"),
            r.read(),
            &Error::Poisoned,
        )?;
        expect_err(
            &format!("{what}: read on a new end"),
            c.reader().read(),
            &Error::Poisoned,
        )?;
        expect_err(&format!("{what}: write"), w.write(4), &Error::Poisoned)?;
    }
    Ok(())
}

/// §3.10: retire from the reader side acts at once: when the last reader
/// retires, the channel retires even with messages buffered.
pub fn reader_retire_is_immediate<R: Runtime>() -> Outcome {
    let c = Channel::<u32, R>::buffered(5);
    let (r, w) = (c.reader(), c.writer());
    w.write(1).ctx("reader retire: write 1")?;
    w.write(2).ctx("reader retire: write 2")?;
    r.retire();
    ensure!(
        c.is_retired(),
        "reader retire: the last reader retiring retires the channel at once, even with messages buffered"
    );
    expect_err(
        "reader retire: write after the last reader retired",
        w.write(3),
        &Error::Retired,
    )?;
    Ok(())
}

/// §3.5, §4.5: poison is global and sticky: a blocked reader, a blocked
/// writer and a blocked alternation fail with `Poisoned`, and so does every
/// later operation, through old ends and new ones.
pub fn poison_is_sticky_and_wakes_waiters<R: Runtime>() -> Outcome {
    let a = Channel::<u32, R>::new();
    let b = Channel::<u32, R>::new();
    let c = Channel::<u32, R>::new();
    let quiet = Channel::<u32, R>::new();
    let _quiet_writer = quiet.writer();
    let procs = vec![
        proc("blocked_read", a.reader(), |r| Ok(outcome(r.read()))),
        proc("blocked_write", b.writer(), |w| Ok(outcome(w.write(1)))),
        proc("blocked_alt", (quiet.reader(), c.writer()), |(q, w)| {
            Ok(outcome(
                Alt::new().read(&q, |_| ()).write(&w, 5, || ()).select(),
            ))
        }),
        proc(
            "poisoner",
            (a.writer(), b.reader(), c.reader()),
            |(a, b, c)| {
                R::sleep(Duration::from_millis(1))?;
                a.poison();
                b.poison();
                c.poison();
                Ok(String::new())
            },
        ),
    ];
    let out = R::par(procs).ctx("poison wakes waiters")?;
    let p = Some("Err(Poisoned)".to_owned());
    let want = vec![p.clone(), p.clone(), p, Some(String::new())];
    ensure!(
        out == want,
        "a blocked read, write and alternation must fail with Poisoned when their channel is poisoned: expected {want:?}, got {out:?}"
    );
    for (name, ch) in [("a", &a), ("b", &b), ("c", &c)] {
        ensure!(ch.is_poisoned(), "channel {name} should be poisoned");
        expect_err(
            &format!("read on a new end of poisoned channel {name}"),
            ch.reader().read(),
            &Error::Poisoned,
        )?;
        expect_err(
            &format!("write on a new end of poisoned channel {name}"),
            ch.writer().write(0),
            &Error::Poisoned,
        )?;
    }
    ensure!(
        !quiet.is_poisoned(),
        "a channel that was only in the same alternation must not be poisoned"
    );
    Ok(())
}

/// The channels of a propagation test: one input, ends of four outputs in
/// nested containers, and one end captured but not declared.
struct PropagationNet<R: Runtime> {
    input: Channel<u32, R>,
    outs: Vec<Channel<u32, R>>,
    undeclared: Channel<u32, R>,
}

impl<R: Runtime> PropagationNet<R> {
    fn new() -> Self {
        PropagationNet {
            input: Channel::new(),
            outs: (0..4).map(|_| Channel::new()).collect(),
            undeclared: Channel::new(),
        }
    }

    /// A process that reads `input` (returning its error with `?`) and holds
    /// the outputs' writer ends as a tuple of a `Vec`, an `Option` and a
    /// `Box`, plus a reader end of the last output.
    fn victim(&self) -> Process<u32> {
        let hidden = self.undeclared.writer();
        let ends = (
            self.input.reader(),
            vec![self.outs[0].writer(), self.outs[1].writer()],
            Some(self.outs[2].writer()),
            Box::new(self.outs[3].reader()),
        );
        proc("victim", ends, move |(input, _v, _o, _b)| {
            let _hidden = &hidden;
            input.read()
        })
    }
}

/// §3.6: a process that ends with `Err(Poisoned)` poisons every channel end
/// among its declared arguments (`Process::with_ends`), inside a tuple,
/// `Vec`, `Option` and `Box`, readers and writers alike, and `par` gives
/// `None` for it. An end it only captured is left alone.
pub fn poison_propagates_through_with_ends<R: Runtime>() -> Outcome {
    let net = PropagationNet::<R>::new();
    let poisoner = proc("poisoner", net.input.writer(), |w| {
        R::sleep(Duration::from_millis(1))?;
        w.poison();
        Ok(0)
    });
    let out = R::par(vec![net.victim(), poisoner]).ctx("poison propagation")?;
    ensure!(
        out == vec![None, Some(0)],
        "poison propagation: the poisoned process should give None, the poisoner Some(0); got {out:?}"
    );
    for (i, c) in net.outs.iter().enumerate() {
        ensure!(
            c.is_poisoned(),
            "poison propagation: output {i} (an end inside a Vec/Option/Box of the arguments) should be poisoned"
        );
    }
    ensure!(
        !net.undeclared.is_poisoned(),
        "poison propagation: an end the process captured but did not declare must not be poisoned"
    );
    Ok(())
}

/// §3.6: a process that ends with `Err(Retired)` retires every declared end
/// (a channel whose only end on that side it held retires; one with another
/// end stays open), and `par` gives `None` for it.
pub fn retire_propagates_through_with_ends<R: Runtime>() -> Outcome {
    let net = PropagationNet::<R>::new();
    let other_writer = net.outs[1].writer();
    let retirer = proc("retirer", net.input.writer(), |w| {
        R::sleep(Duration::from_millis(1))?;
        w.retire();
        Ok(0)
    });
    let out = R::par(vec![net.victim(), retirer]).ctx("retire propagation")?;
    ensure!(
        out == vec![None, Some(0)],
        "retire propagation: the retired process should give None, the retirer Some(0); got {out:?}"
    );
    for i in [0, 2, 3] {
        ensure!(
            net.outs[i].is_retired(),
            "retire propagation: output {i} (its only end on one side was the process's) should be retired"
        );
        ensure!(
            !net.outs[i].is_poisoned(),
            "retire propagation: output {i} must be retired, not poisoned"
        );
    }
    ensure!(
        !net.outs[1].is_retired(),
        "retire propagation: output 1 has another writer end, so it must stay open"
    );
    other_writer.retire();
    ensure!(
        net.outs[1].is_retired(),
        "retire propagation: output 1 retires once its other writer end retires too (the process's end was counted out)"
    );
    ensure!(
        !net.undeclared.is_retired(),
        "retire propagation: an undeclared end must not be retired"
    );
    Ok(())
}

/// L19 fixed: a panic in a process poisons its declared ends (so a neighbour
/// blocked on them stops instead of hanging) and `par` fails with
/// `Error::Panicked` naming the process and carrying the panic message.
pub fn panic_poisons_and_is_reported<R: Runtime>() -> Outcome {
    let out = Channel::<u32, R>::new();
    let crasher = proc("crasher", out.writer(), |_w| -> Result<u32> {
        panic!("boom {}", 42)
    });
    let listener = proc("listener", out.reader(), |r| r.read());
    match R::par(vec![crasher, listener]) {
        Err(Error::Panicked { process, message }) => {
            ensure!(
                process == "crasher",
                "a panic should be reported with the process's name 'crasher', got '{process}'"
            );
            ensure!(
                message.contains("boom 42"),
                "the panic report should carry the panic message 'boom 42', got '{message}'"
            );
        }
        other => {
            return Err(format!(
                "a panicking process: expected par to fail with Error::Panicked {{ process: \"crasher\", .. }}, got {other:?}"
            ));
        }
    }
    ensure!(
        out.is_poisoned(),
        "a panicking process's declared ends should be poisoned"
    );
    Ok(())
}

/// §3.6 / L19: a process that fails with any error other than `Poisoned` or
/// `Retired` poisons its declared ends, and `par` fails with that error.
pub fn other_error_poisons_and_is_reported<R: Runtime>() -> Outcome {
    let out = Channel::<u32, R>::new();
    let failer = proc("failer", out.writer(), |_w| -> Result<u32> {
        Err(Error::config("my own failure"))
    });
    let listener = proc("listener", out.reader(), |r| r.read());
    let got = R::par(vec![failer, listener]);
    ensure!(
        got == Err(Error::config("my own failure")),
        "a failing process: expected par to fail with its error Config(\"my own failure\"), got {got:?}"
    );
    ensure!(
        out.is_poisoned(),
        "a failing process's declared ends should be poisoned"
    );
    Ok(())
}

/// §3.6: a process that returns normally propagates nothing: its ends are
/// neither poisoned nor retired.
pub fn normal_return_propagates_nothing<R: Runtime>() -> Outcome {
    let c = Channel::<u32, R>::buffered(1);
    let p = proc("fine", (c.reader(), c.writer()), |(_r, w)| {
        w.write(1)?;
        Ok(7)
    });
    let out = R::par(vec![p]).ctx("normal return")?;
    ensure!(
        out == vec![Some(7)],
        "normal return: expected [Some(7)], got {out:?}"
    );
    ensure!(
        !c.is_poisoned() && !c.is_retired(),
        "normal return: the process's ends must be neither poisoned nor retired"
    );
    let got = c.reader().read();
    ensure!(
        got == Ok(1),
        "normal return: the message it wrote should still be readable, got {got:?}"
    );
    Ok(())
}

/// `par` returns the results in argument order whatever the order of
/// finishing, with `None` for processes stopped by poison or retire.
pub fn par_results_in_order<R: Runtime>() -> Outcome {
    let procs: Vec<Process<u64>> = (0..6u64)
        .map(|i| {
            Process::new(format!("p{i}"), move || {
                R::sleep(Duration::from_millis(6 - i))?;
                match i {
                    2 => Err(Error::Poisoned),
                    4 => Err(Error::Retired),
                    _ => Ok(i * 10),
                }
            })
        })
        .collect();
    let out = R::par(procs).ctx("par order")?;
    let want = vec![Some(0), Some(10), None, Some(30), None, Some(50)];
    ensure!(
        out == want,
        "par: expected results in argument order with None for the poisoned and retired processes: {want:?}, got {out:?}"
    );
    Ok(())
}

/// `par` waits for every process and fails with the first failure in
/// argument order (not the first in time).
pub fn par_reports_first_failure<R: Runtime>() -> Outcome {
    let log: Log<u64> = Log::new();
    let procs: Vec<Process<u64>> = (0..4u64)
        .map(|i| {
            let log = log.clone();
            Process::new(format!("p{i}"), move || {
                R::sleep(Duration::from_millis(4 - i))?;
                log.push(i);
                match i {
                    1 => Err(Error::config("second")),
                    3 => Err(Error::config("fourth")),
                    _ => Ok(i),
                }
            })
        })
        .collect();
    let got = R::par(procs);
    ensure!(
        got == Err(Error::config("second")),
        "par: expected the first failure in argument order, Config(\"second\"), got {got:?}"
    );
    let mut ran = log.items();
    ran.sort_unstable();
    ensure!(
        ran == vec![0, 1, 2, 3],
        "par: every process should run to its end even when some fail, ran {ran:?}"
    );
    Ok(())
}

/// `seq` runs the processes one after another, in order, each to its end,
/// and returns their results in order (None for one stopped by poison).
pub fn seq_runs_in_order<R: Runtime>() -> Outcome {
    let log: Log<u64> = Log::new();
    let procs: Vec<Process<u64>> = (0..4u64)
        .map(|i| {
            let log = log.clone();
            Process::new(format!("s{i}"), move || {
                log.push(i * 10);
                R::sleep(Duration::from_millis(4 - i))?;
                log.push(i * 10 + 1);
                if i == 2 { Err(Error::Poisoned) } else { Ok(i) }
            })
        })
        .collect();
    let out = seq::<R, u64>(procs).ctx("seq")?;
    ensure!(
        out == vec![Some(0), Some(1), None, Some(3)],
        "seq: expected [Some(0), Some(1), None, Some(3)], got {out:?}"
    );
    let order = log.items();
    ensure!(
        order == vec![0, 1, 10, 11, 20, 21, 30, 31],
        "seq: each process should run to its end before the next starts; events {order:?}"
    );
    Ok(())
}

/// `seq` stops at a failure: the processes after it do not run.
pub fn seq_stops_at_failure<R: Runtime>() -> Outcome {
    let log: Log<u64> = Log::new();
    let procs: Vec<Process<u64>> = (0..3u64)
        .map(|i| {
            let log = log.clone();
            Process::new(format!("s{i}"), move || {
                log.push(i);
                if i == 1 {
                    Err(Error::config("stop here"))
                } else {
                    Ok(i)
                }
            })
        })
        .collect();
    let got = seq::<R, u64>(procs);
    ensure!(
        got == Err(Error::config("stop here")),
        "seq: expected the failure Config(\"stop here\"), got {got:?}"
    );
    ensure!(
        log.items() == vec![0, 1],
        "seq: the process after the failure must not run; ran {:?}",
        log.items()
    );
    Ok(())
}

/// A process that spawns another ends only after the spawned one has (PyCSP:
/// `Spawn` is joined by the spawner at exit), so `par` returns after both.
pub fn spawn_joined_by_spawner<R: Runtime>() -> Outcome {
    let log: Log<&'static str> = Log::new();
    let inner = log.clone();
    let spawner = Process::new("spawner", move || {
        inner.push("spawner body");
        let l = inner.clone();
        R::spawn(Process::new("spawned", move || {
            R::sleep(Duration::from_millis(3))?;
            l.push("spawned done");
            Ok(())
        }))?;
        Ok(())
    });
    R::par(vec![spawner]).ctx("spawn join")?;
    let got = log.items();
    ensure!(
        got == vec!["spawner body", "spawned done"],
        "spawn: par should return only after the spawned process ended; events {got:?}"
    );
    Ok(())
}

/// The main process can spawn: the spawned writer runs while main reads from
/// it, and its retire ends main's reading.
pub fn spawn_from_main<R: Runtime>() -> Outcome {
    let c = Channel::<u32, R>::new();
    R::spawn(proc("spawned_writer", c.writer(), |w| {
        for i in 1..=3 {
            w.write(i)?;
        }
        w.retire();
        Ok(())
    }))
    .ctx("spawn from main")?;
    let r = c.reader();
    let mut got = Vec::new();
    loop {
        match r.read() {
            Ok(v) => got.push(v),
            Err(Error::Retired) => break,
            Err(e) => {
                return Err(format!(
                    "spawn from main: reading failed with {e:?} after {got:?}"
                ));
            }
        }
    }
    ensure!(
        got == vec![1, 2, 3],
        "spawn from main: expected [1, 2, 3] from the spawned writer, got {got:?}"
    );
    Ok(())
}

/// §4.4 TimeoutGuard: with no input ready the timeout arm is chosen, after at
/// least its duration; with an input ready the input is chosen at once; with
/// an input that becomes ready long before the timeout, the input wins.
pub fn alt_timeout<R: Runtime>() -> Outcome {
    const T: Duration = Duration::from_millis(3);
    let c = Channel::<u32, R>::new();
    let _w = c.writer();
    let r = c.reader();
    let t0 = R::now();
    let got = Alt::new()
        .read(&r, Some)
        .timeout(T, || None)
        .select()
        .ctx("timeout with no input")?;
    let waited = R::now().saturating_sub(t0);
    ensure!(
        got.is_none(),
        "timeout: with no input ready the timeout arm should win, got {got:?}"
    );
    ensure!(
        waited >= T,
        "timeout: the {T:?} timeout fired after only {waited:?}"
    );

    let b = Channel::<u32, R>::buffered(1);
    b.writer().write(7).ctx("timeout: filling")?;
    let rb = b.reader();
    let got = Alt::new()
        .read(&rb, Some)
        .timeout(Duration::from_secs(5), || None)
        .select()
        .ctx("timeout with input ready")?;
    ensure!(
        got == Some(7),
        "timeout: with an input ready the input should win, got {got:?}"
    );

    let d = Channel::<u32, R>::new();
    let late = proc("late_writer", d.writer(), |w| {
        R::sleep(Duration::from_millis(1))?;
        w.write(9)?;
        Ok(None)
    });
    let waiter = proc("waiter", d.reader(), |r| {
        Alt::new()
            .read(&r, Some)
            .timeout(Duration::from_secs(5), || None)
            .select()
    });
    let out = R::par(vec![late, waiter]).ctx("timeout with a late input")?;
    ensure!(
        out[1] == Some(Some(9)),
        "timeout: an input ready after 1 ms should beat a 5 s timeout, got {:?}",
        out[1]
    );
    Ok(())
}

/// §4.2/§4.4: a priority select picks the first ready guard in order; a skip
/// wins only if every guard before it is not ready.
pub fn alt_priority_and_skip<R: Runtime>() -> Outcome {
    let a = Channel::<u32, R>::buffered(4);
    let b = Channel::<u32, R>::buffered(4);
    let e = Channel::<u32, R>::buffered(1);
    for v in [1, 2] {
        a.writer().write(v).ctx("priority: filling a")?;
        b.writer().write(10 + v).ctx("priority: filling b")?;
    }
    let (ra, rb, re) = (a.reader(), b.reader(), e.reader());
    let got = Alt::new()
        .read(&ra, |v| v)
        .read(&rb, |v| v)
        .select()
        .ctx("priority a,b")?;
    ensure!(
        got == 1,
        "priority: (a, b) both ready should give a's 1, got {got}"
    );
    let got = Alt::new()
        .read(&rb, |v| v)
        .read(&ra, |v| v)
        .select()
        .ctx("priority b,a")?;
    ensure!(
        got == 11,
        "priority: (b, a) both ready should give b's 11, got {got}"
    );
    let got = Alt::new()
        .skip(|| 0)
        .read(&ra, |v| v)
        .select()
        .ctx("skip first")?;
    ensure!(
        got == 0,
        "priority: a skip before a ready guard wins, got {got}"
    );
    let got = Alt::new()
        .read(&re, |v| v)
        .skip(|| 0)
        .read(&ra, |v| v)
        .select()
        .ctx("empty, skip, ready")?;
    ensure!(
        got == 0,
        "priority: (empty, skip, ready) should take the skip, got {got}"
    );
    let got = Alt::new()
        .read(&re, |v| v)
        .read(&ra, |v| v)
        .skip(|| 0)
        .select()
        .ctx("empty, ready, skip")?;
    ensure!(
        got == 2,
        "priority: (empty, ready, skip) should take the ready guard's 2, got {got}"
    );
    Ok(())
}

/// §4.5: in a priority select a ready guard before a poisoned one commits;
/// a poisoned (or retired) guard before a ready one makes the select fail.
pub fn alt_poisoned_or_retired_guard<R: Runtime>() -> Outcome {
    let ready = Channel::<u32, R>::buffered(4);
    let wr = ready.writer();
    for v in [1, 2] {
        wr.write(v).ctx("filling")?;
    }
    let rr = ready.reader();
    let poisoned = Channel::<u32, R>::new();
    let rp = poisoned.reader();
    poisoned.poison();
    let got = Alt::new().read(&rr, Some).read(&rp, Some).select();
    ensure!(
        got == Ok(Some(1)),
        "§4.5: PriSelect(ready, poisoned) should return the ready message 1, got {got:?}"
    );
    expect_err(
        "§4.5: PriSelect(poisoned, ready)",
        Alt::new().read(&rp, Some).read(&rr, Some).select(),
        &Error::Poisoned,
    )?;
    let retired = Channel::<u32, R>::new();
    let rt = retired.reader();
    retired.writer().retire();
    expect_err(
        "§4.5: PriSelect(retired, ready)",
        Alt::new().read(&rt, Some).read(&rr, Some).select(),
        &Error::Retired,
    )?;
    let got = rr.read();
    ensure!(
        got == Ok(2),
        "§4.5: the failed selects must not have taken the ready message 2, got {got:?}"
    );
    Ok(())
}

/// Exactly one guard commits: an alternation with two output guards whose
/// readers both wait sends on one channel only; the other reader gets a later
/// plain write. With buffers, the guard not chosen leaves its buffer empty.
pub fn alt_commits_exactly_one_output<R: Runtime>() -> Outcome {
    let a = Channel::<u32, R>::new();
    let b = Channel::<u32, R>::new();
    let ra = proc("reader_a", a.reader(), |r| r.read());
    let rb = proc("reader_b", b.reader(), |r| r.read());
    let alter = proc("alter", (a.writer(), b.writer()), |(wa, wb)| {
        R::sleep(Duration::from_millis(1))?;
        let chose = Alt::new()
            .write(&wa, 1, || 'a')
            .write(&wb, 1, || 'b')
            .select()?;
        match chose {
            'a' => wb.write(2)?,
            _ => wa.write(2)?,
        }
        Ok(0)
    });
    let out = R::par(vec![ra, rb, alter]).ctx("exactly one output")?;
    let got = (out[0], out[1]);
    ensure!(
        got == (Some(1), Some(2)) || got == (Some(2), Some(1)),
        "exactly one output guard should send 1; the other reader gets the plain write 2: got (a, b) = {got:?}"
    );

    let a = Channel::<u32, R>::buffered(2);
    let b = Channel::<u32, R>::buffered(2);
    let (wa, wb) = (a.writer(), b.writer());
    Alt::new()
        .write(&wa, 1, || ())
        .write(&wb, 1, || ())
        .select()
        .ctx("buffered outputs")?;
    let (ra, rb) = (a.reader(), b.reader());
    let got = (
        poll(&ra).ctx("poll a")?,
        poll(&ra).ctx("poll a again")?,
        poll(&rb).ctx("poll b")?,
    );
    ensure!(
        got == (Some(1), None, None),
        "exactly one output: with room on both, the first output guard sends once and the second not at all; (a, a again, b) = {got:?}"
    );
    Ok(())
}

/// §4.3: a fair select orders skip and timeout guards after every channel
/// guard, whatever their position: with a ready input after a skip, the
/// input wins; with nothing ready, the skip.
pub fn alt_fair_puts_skip_last<R: Runtime>() -> Outcome {
    let a = Channel::<u32, R>::buffered(2);
    a.writer().write(4).ctx("fair skip: filling")?;
    let e = Channel::<u32, R>::buffered(1);
    let (ra, re) = (a.reader(), e.reader());
    let mut fair = crate::Fair::new();
    let got = Alt::new()
        .skip(|| 0)
        .timeout(Duration::ZERO, || 1)
        .read(&re, |v| v)
        .read(&ra, |v| v)
        .select_fair(&mut fair)
        .ctx("fair select with skip first")?;
    ensure!(
        got == 4,
        "fair select: skip and timeout go last, so the ready input (4) should win, got {got}"
    );
    let got = Alt::new()
        .skip(|| 0)
        .timeout(Duration::ZERO, || 1)
        .read(&re, |v| v)
        .read(&ra, |v| v)
        .select_fair(&mut fair)
        .ctx("fair select with nothing ready")?;
    ensure!(
        got == 0,
        "fair select: with no input ready, the skip (first of the non-channel guards) should win, got {got}"
    );
    Ok(())
}

/// L37 fixed: once an alternation has committed (a writer's write to one of
/// its guards completed), a later poison or retire of another of its guards'
/// channels must not change its outcome: it returns the message. Its next
/// alternation then sees the poison.
pub fn alt_commit_then_poison<R: Runtime>() -> Outcome {
    for poison in [true, false] {
        let what = if poison { "poison" } else { "retire" };
        let a = Channel::<u32, R>::new();
        let b = Channel::<u32, R>::new();
        let alter = proc("alter", (a.reader(), b.reader()), |(ra, rb)| {
            let first = Alt::new()
                .read(&rb, |v| ('b', v))
                .read(&ra, |v| ('a', v))
                .select();
            let second = Alt::new()
                .read(&rb, |v| ('b', v))
                .read(&ra, |v| ('a', v))
                .select();
            Ok(format!("{first:?} then {second:?}"))
        });
        let w = proc("writer", (a.writer(), b.writer()), move |(wa, wb)| {
            wa.write(1)?;
            if poison {
                wb.poison();
            } else {
                wb.retire();
            }
            Ok(String::new())
        });
        let out = R::par(vec![alter, w]).ctx(&format!("commit then {what}"))?;
        let want = if poison {
            "Ok(('a', 1)) then Err(Poisoned)"
        } else {
            "Ok(('a', 1)) then Err(Retired)"
        };
        ensure!(
            out[0].as_deref() == Some(want),
            "L37: an alternation whose guard on a committed before b's {what} should return a's message and fail only the next time: expected {want:?}, got {:?}",
            out[0]
        );
    }
    Ok(())
}

/// §3.9: channel ends are values that can be sent over channels; a moved end
/// keeps its count (no new join): a process that receives the only writer
/// end, writes with it and retires it retires the channel.
pub fn mobile_ends_keep_their_count<R: Runtime>() -> Outcome {
    let c = Channel::<u32, R>::new();
    let carrier = Channel::<Writer<u32, R>, R>::new();
    let sender = proc("sender", carrier.writer(), {
        let w = c.writer();
        move |out| {
            out.write(w)?;
            Ok(0)
        }
    });
    let user = proc("user", carrier.reader(), |inp| {
        let w = inp.read()?;
        w.write(5)?;
        w.retire();
        Ok(0)
    });
    let reader = proc("reader", c.reader(), |r| {
        let first = r.read()?;
        let then = r.read();
        Ok(if then == Err(Error::Retired) {
            first
        } else {
            1000 + first
        })
    });
    let out = R::par(vec![sender, user, reader]).ctx("mobile ends")?;
    ensure!(
        out == vec![Some(0), Some(0), Some(5)],
        "mobile ends: the reader should get 5 through the moved writer end and then Retired when that end (the only writer) retires; got {out:?} (1005 means the second read did not fail with Retired)"
    );
    Ok(())
}

/// `R::sleep(d)` advances `R::now()` by at least `d`, in the main process and
/// in another process; `sleep(0)` returns.
pub fn sleep_advances_now<R: Runtime>() -> Outcome {
    const D: Duration = Duration::from_millis(3);
    let t0 = R::now();
    R::sleep(D).ctx("sleep in main")?;
    let dt = R::now().saturating_sub(t0);
    ensure!(
        dt >= D,
        "sleep: R::now advanced by {dt:?} across a sleep of {D:?}"
    );
    R::sleep(Duration::ZERO).ctx("sleep(0)")?;
    let p = Process::new("sleeper", || {
        let t0 = R::now();
        R::sleep(D)?;
        Ok(R::now().saturating_sub(t0))
    });
    let out = R::par(vec![p]).ctx("sleep in a process")?;
    let dt = out[0].unwrap_or_default();
    ensure!(
        dt >= D,
        "sleep in a process: R::now advanced by {dt:?} across a sleep of {D:?}"
    );
    Ok(())
}

/// `R::current_process()` is `"main"` outside processes and the process's
/// name inside one.
pub fn current_process_names<R: Runtime>() -> Outcome {
    let main = R::current_process();
    ensure!(
        main == "main",
        "current_process outside any process should be \"main\", got {main:?}"
    );
    let out = R::par(vec![
        Process::new("worker7", || Ok(R::current_process())),
        Process::new("first", || Ok(R::current_process())).named("renamed"),
    ])
    .ctx("current_process")?;
    let want = vec![Some("worker7".to_owned()), Some("renamed".to_owned())];
    ensure!(
        out == want,
        "current_process inside processes: expected {want:?}, got {out:?}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// The macros.

/// Reads `input` and forwards to every output, until the input stops.
#[process]
fn relay<R: Runtime>(
    input: Reader<u32, R>,
    many: Vec<Writer<u32, R>>,
    maybe: Option<Writer<u32, R>>,
    pair: (Writer<u32, R>, u32),
    tag: String,
) -> Result<()> {
    let _ = tag;
    loop {
        let v = input.read()?;
        for w in &many {
            w.write(v)?;
        }
        if let Some(w) = &maybe {
            w.write(v)?;
        }
        pair.0.write(v + pair.1)?;
    }
}

/// Panics with a message.
#[process]
fn exploder<R: Runtime>(out: Writer<u32, R>) -> Result<u32> {
    let _ = &out;
    panic!("exploded on purpose")
}

/// The input channel, the four output channels and the relay process.
type RelayNet<R> = (Channel<u32, R>, Vec<Channel<u32, R>>, Process<()>);

fn relay_net<R: Runtime>() -> RelayNet<R> {
    let input = Channel::<u32, R>::buffered(1);
    let outs: Vec<Channel<u32, R>> = (0..4).map(|_| Channel::buffered(4)).collect();
    let p = relay(
        input.reader(),
        vec![outs[0].writer(), outs[1].writer()],
        Some(outs[2].writer()),
        (outs[3].writer(), 100),
        "relay".to_owned(),
    );
    (input, outs, p)
}

/// `#[process]`: a process that ends with `Poisoned` poisons the ends among
/// its arguments inside a `Vec`, an `Option` and a tuple (its writer ends:
/// a writer-side poison, so the message it forwarded before can still be read
/// from each output's buffer, then `Poisoned`). The process is named after
/// its fn.
pub fn process_macro_propagates_poison<R: Runtime>() -> Outcome {
    let (input, outs, p) = relay_net::<R>();
    ensure!(
        p.name() == "relay",
        "#[process]: the process should be named after its fn, 'relay', got '{}'",
        p.name()
    );
    let feeder = proc("feeder", input.writer(), |w| {
        w.write(1)?;
        w.poison();
        Ok(())
    });
    let out = R::par(vec![p, feeder]).ctx("#[process] poison")?;
    ensure!(
        out == vec![None, Some(())],
        "#[process] poison: the relay should stop with Poisoned (None): {out:?}"
    );
    for (i, c) in outs.iter().enumerate() {
        let want = if i == 3 { 101 } else { 1 };
        let r = c.reader();
        let got = r.read();
        ensure!(
            got == Ok(want),
            "#[process] poison: output {i} should still hold the forwarded {want} (writer-side poison drains first), got {got:?}"
        );
        expect_err(
            &format!("#[process] poison: output {i} (Vec/Option/tuple argument) after draining"),
            r.read(),
            &Error::Poisoned,
        )?;
    }
    Ok(())
}

/// `#[process]`: a process that ends with `Retired` retires the ends among its
/// arguments inside a `Vec`, an `Option` and a tuple.
pub fn process_macro_propagates_retire<R: Runtime>() -> Outcome {
    let (input, outs, p) = relay_net::<R>();
    let feeder = proc("feeder", input.writer(), |w| {
        w.write(1)?;
        w.retire();
        Ok(())
    });
    let out = R::par(vec![p, feeder]).ctx("#[process] retire")?;
    ensure!(
        out == vec![None, Some(())],
        "#[process] retire: the relay should stop with Retired (None): {out:?}"
    );
    for (i, c) in outs.iter().enumerate() {
        let r = c.reader();
        let got = r.read();
        ensure!(
            got.is_ok(),
            "#[process] retire: output {i} should still hold its message, got {got:?}"
        );
        expect_err(
            &format!("#[process] retire: output {i} (Vec/Option/tuple argument) after draining"),
            r.read(),
            &Error::Retired,
        )?;
        ensure!(
            !c.is_poisoned(),
            "#[process] retire: output {i} must be retired, not poisoned"
        );
    }
    Ok(())
}

/// `#[process]`: a panic is reported as `Error::Panicked` with the fn's name
/// and the message, and poisons the argument's channel.
pub fn process_macro_panic<R: Runtime>() -> Outcome {
    let c = Channel::<u32, R>::new();
    let got = R::par(vec![exploder(c.writer())]);
    match got {
        Err(Error::Panicked { process, message }) => {
            ensure!(
                process == "exploder" && message.contains("exploded on purpose"),
                "#[process] panic: expected Panicked {{ process: \"exploder\", message: \"exploded on purpose\" }}, got process {process:?}, message {message:?}"
            );
        }
        other => {
            return Err(format!(
                "#[process] panic: expected Err(Panicked), got {other:?}"
            ));
        }
    }
    ensure!(
        c.is_poisoned(),
        "#[process] panic: the argument's channel should be poisoned"
    );
    Ok(())
}

/// `alt!`: priority order, skip, a precondition that leaves a guard out, a
/// timeout, an output guard, and a fair select that alternates.
pub fn alt_macro<R: Runtime>() -> Outcome {
    let a = Channel::<u32, R>::buffered(8);
    let b = Channel::<u32, R>::buffered(8);
    let (wa, wb) = (a.writer(), b.writer());
    for v in 0..4 {
        wa.write(v).ctx("alt!: filling a")?;
        wb.write(100 + v).ctx("alt!: filling b")?;
    }
    let (ra, rb) = (a.reader(), b.reader());
    let got = alt! {
        read(ra) -> x => ('a', x),
        read(rb) -> y => ('b', y),
    }
    .ctx("alt! priority")?;
    ensure!(
        got == ('a', 0),
        "alt!: priority select should take a's 0, got {got:?}"
    );
    let open = false;
    let got = alt! {
        read(ra) -> x if open => ('a', x),
        read(rb) -> y => ('b', y),
    }
    .ctx("alt! precondition")?;
    ensure!(
        got == ('b', 100),
        "alt!: a guard whose precondition is false is left out; expected b's 100, got {got:?}"
    );
    let e = Channel::<u32, R>::new();
    let _we = e.writer();
    let re = e.reader();
    let got = alt! {
        read(re) -> x => Some(x),
        skip => None,
    }
    .ctx("alt! skip")?;
    ensure!(
        got.is_none(),
        "alt!: skip after an empty channel should win, got {got:?}"
    );
    let got = alt! {
        read(re) -> x => Some(x),
        timeout(Duration::from_millis(1)) => None,
    }
    .ctx("alt! timeout")?;
    ensure!(
        got.is_none(),
        "alt!: the timeout should win over an empty channel, got {got:?}"
    );
    let got = alt! {
        write(wa, 50) => "sent",
        skip => "skipped",
    }
    .ctx("alt! write")?;
    ensure!(
        got == "sent",
        "alt!: an output guard to a buffer with room should send, got {got:?}"
    );
    let mut fair = crate::Fair::new();
    let mut seq = Vec::new();
    for _ in 0..4 {
        let k = alt! {
            fair(&mut fair),
            read(ra) -> _x => 'a',
            read(rb) -> _y => 'b',
        }
        .ctx("alt! fair")?;
        seq.push(k);
    }
    ensure!(
        seq == vec!['a', 'b', 'a', 'b'],
        "alt!: a fair select over two ready inputs should alternate, got {seq:?}"
    );
    let stopped = Arc::new(AtomicBool::new(false));
    let s = Arc::clone(&stopped);
    let p = proc(
        "alt_in_process",
        (a.reader(), e.reader()),
        move |(ra, re)| {
            let mut n = 0;
            loop {
                let more = alt! {
                    read(re) -> _x => true,
                    read(ra) -> _x => { n += 1; true },
                    skip => false,
                }?;
                if !more {
                    s.store(true, Ordering::SeqCst);
                    return Ok(n);
                }
            }
        },
    );
    let out = R::par(vec![p]).ctx("alt! in a process")?;
    ensure!(
        stopped.load(Ordering::SeqCst),
        "alt!: the loop in a process should end through the skip arm"
    );
    ensure!(
        out == vec![Some(2)],
        "alt!: a held 3 and 50 after the fair selects; the loop should read both then skip, got {out:?}"
    );
    Ok(())
}
