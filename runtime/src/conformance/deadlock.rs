//! Deadlock detection and reports (DESIGN §4, pycsp-semantics §10 L35).
//!
//! Only the greenlets backend detects deadlocks exactly (the parallel
//! backend's OS threads cannot tell a deadlock from a slow peer): every case
//! that expects a deadlock returns `Ok` at once when `R::NAME` is not
//! `"greenlets"`. The cases that check that something is *not* a deadlock
//! run on every backend.
//!
//! On greenlets, when no process can run and no timer or io is pending, every
//! process blocked on a channel is woken with `Error::Deadlock(report)`, and
//! the report names every blocked process and what it waits on
//! (`read on channel 'x'`, `write on channel 'x'`, `alt over [...]`).

use super::{Case, Ctx, Outcome, proc};
use std::time::Duration;

use crate::{Alt, Channel, DeadlockReport, Error, Process, Result, Runtime};

const SOURCE: &str = "deadlock";

/// The cases of this module.
pub(crate) fn cases<R: Runtime>() -> Vec<Case> {
    vec![
        case!(
            R,
            deadlock_read_nobody_writes,
            "DESIGN §4 (deadlock report); greenlets/tests/smoke.rs"
        ),
        case!(
            R,
            deadlock_cycle,
            "DESIGN §4; the classic two-process write/write cycle"
        ),
        case!(
            R,
            deadlock_alt_lists_guards,
            "DESIGN §4 (report of an alternation)"
        ),
        case!(
            R,
            deadlock_self_alt_is_not_self_match,
            "PyCSP bug L12 (an alternation must not match itself)"
        ),
        case!(
            R,
            deadlock_main_blocked,
            "DESIGN §4 (the main process blocked alone)"
        ),
        case!(
            R,
            deadlock_then_usable,
            "pycsp-semantics §10 L35 (scheduler unusable after a Deadlock)"
        ),
        case!(
            R,
            not_a_deadlock_while_sleeping,
            "DESIGN §4 (a deadlock needs no timer pending)"
        ),
        case!(
            R,
            deadlock_ignores_cancelled_timers,
            "pycsp-semantics §10 L24 (timeout timers cancelled)"
        ),
        case!(
            R,
            deadlock_loses_to_a_failure,
            "Runtime::par (Deadlock only if nothing else failed)"
        ),
    ]
}

fn on_greenlets<R: Runtime>() -> bool {
    R::NAME == "greenlets"
}

/// Expects `got` to be a deadlock and returns its report.
fn report<T: std::fmt::Debug>(
    what: &str,
    got: Result<T>,
) -> Result<std::sync::Arc<DeadlockReport>, String> {
    match got {
        Err(Error::Deadlock(rep)) => Ok(rep),
        other => Err(format!("{what}: expected Err(Deadlock(..)), got {other:?}")),
    }
}

/// Checks that the report lists `process` waiting on exactly `waiting_on`.
fn names(what: &str, rep: &DeadlockReport, process: &str, waiting_on: &str) -> Outcome {
    let found = rep
        .blocked
        .iter()
        .any(|b| b.process == process && b.waiting_on == waiting_on);
    ensure!(
        found,
        "{what}: the report should list '{process}' waiting on \"{waiting_on}\"; it says:\n{rep}"
    );
    let line = format!("'{process}' waits on {waiting_on}");
    ensure!(
        rep.to_string().contains(&line),
        "{what}: the report's text should contain \"{line}\"; it says:\n{rep}"
    );
    Ok(())
}

/// A `par` whose only process reads a channel nobody writes ends with
/// `Error::Deadlock`; the report names the process and
/// `read on channel 'nobody'`.
pub fn deadlock_read_nobody_writes<R: Runtime>() -> Outcome {
    if !on_greenlets::<R>() {
        return Ok(());
    }
    let c = Channel::<u32, R>::named("nobody");
    let r = c.reader();
    let rep = report(
        "a read nobody serves",
        R::par(vec![Process::new("lonely", move || r.read())]),
    )?;
    names(
        "a read nobody serves",
        &rep,
        "lonely",
        "read on channel 'nobody'",
    )
}

/// Two processes each write to the other first: both block in a write; the
/// report names both and their writes.
pub fn deadlock_cycle<R: Runtime>() -> Outcome {
    if !on_greenlets::<R>() {
        return Ok(());
    }
    let ab = Channel::<u32, R>::named("ab");
    let ba = Channel::<u32, R>::named("ba");
    let a = proc("A", (ab.writer(), ba.reader()), |(w, r)| {
        w.write(1)?;
        r.read()
    });
    let b = proc("B", (ba.writer(), ab.reader()), |(w, r)| {
        w.write(2)?;
        r.read()
    });
    let rep = report("a write/write cycle", R::par(vec![a, b]))?;
    names("a write/write cycle", &rep, "A", "write on channel 'ab'")?;
    names("a write/write cycle", &rep, "B", "write on channel 'ba'")
}

/// A process blocked in an alternation is listed with every guard of it.
pub fn deadlock_alt_lists_guards<R: Runtime>() -> Outcome {
    if !on_greenlets::<R>() {
        return Ok(());
    }
    let x = Channel::<u32, R>::named("x");
    let y = Channel::<u32, R>::named("y");
    let p = proc("alter", (x.reader(), y.writer()), |(rx, wy)| {
        Alt::new().read(&rx, |v| v).write(&wy, 1, || 0).select()
    });
    let rep = report("an alternation nobody serves", R::par(vec![p]))?;
    names(
        "an alternation nobody serves",
        &rep,
        "alter",
        "alt over [read on channel 'x', write on channel 'y']",
    )
}

/// PyCSP bug L12: an alternation with an output and an input guard on the
/// same rendezvous channel, alone, must not communicate with itself: it is a
/// deadlock, reported with both guards.
pub fn deadlock_self_alt_is_not_self_match<R: Runtime>() -> Outcome {
    if !on_greenlets::<R>() {
        return Ok(());
    }
    let c = Channel::<u32, R>::named("self");
    let p = proc("narcissus", (c.reader(), c.writer()), |(r, w)| {
        Alt::new().write(&w, 1, || 0).read(&r, |v| v + 10).select()
    });
    let rep = report(
        "an alternation alone with both ends of one channel",
        R::par(vec![p]),
    )?;
    names(
        "an alternation alone with both ends of one channel",
        &rep,
        "narcissus",
        "alt over [write on channel 'self', read on channel 'self']",
    )
}

/// The main process itself blocked on a read with no other process: its read
/// fails with `Deadlock`, naming `main`.
pub fn deadlock_main_blocked<R: Runtime>() -> Outcome {
    if !on_greenlets::<R>() {
        return Ok(());
    }
    let c = Channel::<u32, R>::named("mainonly");
    let (r, _w) = (c.reader(), c.writer());
    let rep = report("main reading alone", r.read())?;
    names(
        "main reading alone",
        &rep,
        "main",
        "read on channel 'mainonly'",
    )
}

/// After a deadlock, the same run can build and run networks again (PyCSP's
/// greenlets scheduler could not, L35): a new `par`, a main-level exchange
/// and an alternation all work.
pub fn deadlock_then_usable<R: Runtime>() -> Outcome {
    if !on_greenlets::<R>() {
        return Ok(());
    }
    let c = Channel::<u32, R>::named("stuck");
    let r = c.reader();
    report(
        "the first deadlock",
        R::par(vec![Process::new("stuck", move || r.read())]),
    )?;

    let d = Channel::<u32, R>::new();
    let w = proc("writer", d.writer(), |w| {
        for i in 0..3 {
            w.write(i)?;
        }
        w.retire();
        Ok(0)
    });
    let rd = proc("reader", d.reader(), |r| {
        let mut sum = 0;
        loop {
            match r.read() {
                Ok(v) => sum += v,
                Err(Error::Retired) => return Ok(sum),
                Err(e) => return Err(e),
            }
        }
    });
    let out = R::par(vec![w, rd]).ctx("a par after a deadlock")?;
    ensure!(
        out == vec![Some(0), Some(3)],
        "after a deadlock: a new par should work, expected [Some(0), Some(3)], got {out:?}"
    );

    let b = Channel::<u32, R>::buffered(1);
    b.writer()
        .write(5)
        .ctx("after a deadlock: main-level write")?;
    let rb = b.reader();
    let got = Alt::new()
        .read(&rb, Some)
        .skip(|| None)
        .select()
        .ctx("after a deadlock: alternation")?;
    ensure!(
        got == Some(5),
        "after a deadlock: expected an alternation to read 5, got {got:?}"
    );

    // And a second deadlock is detected and reported like the first.
    let e = Channel::<u32, R>::named("again");
    let re = e.reader();
    let rep = report(
        "a second deadlock",
        R::par(vec![Process::new("again", move || re.read())]),
    )?;
    names(
        "a second deadlock",
        &rep,
        "again",
        "read on channel 'again'",
    )
}

/// A network where one process waits on a channel that a sleeping process
/// will write is not deadlocked: the write comes after the sleep.
pub fn not_a_deadlock_while_sleeping<R: Runtime>() -> Outcome {
    let c = Channel::<u32, R>::new();
    let waiter = proc("waiter", c.reader(), |r| r.read());
    let sleeper = proc("sleeper", c.writer(), |w| {
        R::sleep(Duration::from_millis(5))?;
        w.write(3)?;
        Ok(0)
    });
    let out = R::par(vec![waiter, sleeper]).ctx("a reader waiting for a sleeping writer")?;
    ensure!(
        out == vec![Some(3), Some(0)],
        "a reader waiting for a sleeping writer should get its 3, got {out:?}"
    );
    Ok(())
}

/// L24: the timer of a timeout guard that lost is cancelled: a deadlock that
/// follows is reported at once, not after the old timer would have fired
/// (with a simulated clock, the clock must not jump to it).
pub fn deadlock_ignores_cancelled_timers<R: Runtime>() -> Outcome {
    if !on_greenlets::<R>() {
        return Ok(());
    }
    const LONG: Duration = Duration::from_secs(60);
    let t0 = R::now();
    let b = Channel::<u32, R>::buffered(1);
    b.writer().write(1).ctx("L24: filling")?;
    let rb = b.reader();
    let got = Alt::new()
        .read(&rb, Some)
        .timeout(LONG, || None)
        .select()
        .ctx("L24: select")?;
    ensure!(
        got == Some(1),
        "L24: the ready input should beat the timeout, got {got:?}"
    );
    let c = Channel::<u32, R>::named("after_timeout");
    let r = c.reader();
    let rep = report(
        "L24: a deadlock after a cancelled timeout",
        R::par(vec![Process::new("late", move || r.read())]),
    )?;
    names(
        "L24: a deadlock after a cancelled timeout",
        &rep,
        "late",
        "read on channel 'after_timeout'",
    )?;
    let dt = R::now().saturating_sub(t0);
    ensure!(
        dt < LONG / 2,
        "L24: the deadlock was declared only after {dt:?}: the cancelled {LONG:?} timer was still pending"
    );
    Ok(())
}

/// `par` reports a deadlock only if nothing else failed: with one process
/// failing with its own error and another deadlocked, `par` gives the error.
pub fn deadlock_loses_to_a_failure<R: Runtime>() -> Outcome {
    if !on_greenlets::<R>() {
        return Ok(());
    }
    let c = Channel::<u32, R>::named("never");
    let r = c.reader();
    let stuck = Process::new("stuck", move || r.read());
    let failer = Process::new("failer", || -> Result<u32> {
        R::sleep(Duration::from_millis(1))?;
        Err(Error::config("a real failure"))
    });
    let got = R::par(vec![stuck, failer]);
    ensure!(
        got == Err(Error::config("a real failure")),
        "par with a deadlocked process and a failed one should report the failure, got {got:?}"
    );
    Ok(())
}
