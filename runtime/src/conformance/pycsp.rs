//! Ports of PyCSP 0.9.2's test scripts (pycsp-semantics §8.2–§8.8).
//!
//! The scripts print `OK - <name>` from an `Assert` process that counts the
//! values it reads; here the same networks run, `Assert` returns what it
//! read, and the case checks it with PyCSP's rules (count, minimum,
//! vocabulary). Each test runs over PyCSP's matrix of reader and writer
//! sleepers: {None, sleep_one, sleep_random}² minus (sleep_one, sleep_one).
//!
//! Where our semantics promise more than PyCSP checked (no message is lost or
//! duplicated by an alternation; a rendezvous write completes only once read),
//! the cases check that too, and say so. Where PyCSP's bound has a race that
//! a seeded schedule finds (poisontest), the case uses the bound that holds
//! and explains why.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use super::{Case, Ctx, Log, Outcome, Sleeper, key, proc, tag};
use crate::{Alt, Channel, Error, Fair, Process, Reader, Result, Runtime, Writer, seq};

const SOURCE: &str = "pycsp";

/// The cases of this module.
pub(crate) fn cases<R: Runtime>() -> Vec<Case> {
    vec![
        case!(R, parallel_test, "PyCSP test/autotest.py Parallel_Test"),
        case!(R, sequence_test, "PyCSP test/autotest.py Sequence_Test"),
        case!(R, one2one, "PyCSP test/autotest.py One2One_Test"),
        case!(
            R,
            any2one_alting,
            "PyCSP test/autotest.py Any2One_Alting_Test"
        ),
        case!(
            R,
            any2one_fair_alting,
            "PyCSP test/autotest.py Any2One_FairAlting_Test"
        ),
        case!(
            R,
            any2one_pri_alting,
            "PyCSP test/autotest.py Any2One_PriAlting_Test"
        ),
        case!(R, any2any, "PyCSP test/autotest.py Any2Any_Test"),
        case!(
            R,
            buffer_buffer_test,
            "PyCSP test/buffertest.py Buffer_Test"
        ),
        case!(R, buffer_one2one, "PyCSP test/buffertest.py One2One_Test"),
        case!(R, buffer_any2one, "PyCSP test/buffertest.py Any2One_Test"),
        case!(R, buffer_one2any, "PyCSP test/buffertest.py One2Any_Test"),
        case!(
            R,
            buffer_one_alting2any,
            "PyCSP test/buffertest.py One_Alting2Any_Test"
        ),
        case!(R, buffer_any2any, "PyCSP test/buffertest.py Any2Any_Test"),
        case!(
            R,
            buffer_any_alting2any_alting,
            "PyCSP test/buffertest.py Any_Alting2Any_Alting_Test"
        ),
        case!(R, comm_one2one, "PyCSP test/commtest.py One2One_Test"),
        case!(R, comm_any2one, "PyCSP test/commtest.py Any2One_Test"),
        case!(R, comm_one2any, "PyCSP test/commtest.py One2Any_Test"),
        case!(
            R,
            comm_one_alting2any,
            "PyCSP test/commtest.py One_Alting2Any_Test"
        ),
        case!(R, comm_any2any, "PyCSP test/commtest.py Any2Any_Test"),
        case!(
            R,
            comm_any_alting2any_alting,
            "PyCSP test/commtest.py Any_Alting2Any_Alting_Test"
        ),
        case!(R, poison_one2one, "PyCSP test/poisontest.py One2One_Test"),
        case!(
            R,
            poison_any2one_alting,
            "PyCSP test/poisontest.py Any2One_Alting_Test"
        ),
        case!(R, poison_any2any, "PyCSP test/poisontest.py Any2Any_Test"),
        case!(
            R,
            poison_any_alting2any_alting,
            "PyCSP test/poisontest.py Any_Alting2Any_Alting_Test"
        ),
        case!(
            R,
            guard_skip_sel,
            "PyCSP test/guardtest.py Any2One_Alting_Test(par_reader_skip_sel)"
        ),
        case!(
            R,
            guard_timeout_sel,
            "PyCSP test/guardtest.py Any2One_Alting_Test(par_reader_timeout_sel)"
        ),
        case!(
            R,
            guard_skip_exec,
            "PyCSP test/guardtest.py Any2One_Alting_Test(par_reader_skip_exec)"
        ),
        case!(
            R,
            guard_timeout_exec,
            "PyCSP test/guardtest.py Any2One_Alting_Test(par_reader_timeout_exec)"
        ),
        case!(
            R,
            guard_any2any_skip_sel,
            "PyCSP test/guardtest.py Any2Any_Alting_Test(par_reader_skip_sel)"
        ),
        case!(
            R,
            guard_any2any_timeout_sel,
            "PyCSP test/guardtest.py Any2Any_Alting_Test(par_reader_timeout_sel)"
        ),
        case!(
            R,
            select_alt,
            "PyCSP test/selecttest.py par_reader (AltSelect)"
        ),
        case!(
            R,
            select_pri,
            "PyCSP test/selecttest.py par_reader_pri (PriSelect)"
        ),
        case!(
            R,
            select_fair,
            "PyCSP test/selecttest.py par_reader_fair (FairSelect)"
        ),
        case!(R, iotest, "PyCSP test/iotest.py", false),
    ]
}

/// The messages of the tests: `(writer id, sequence number)`.
type Msg = (u64, u64);

/// How a PyCSP writer ends after its last write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// `retire(cout)` (autotest, buffertest, commtest).
    Retire,
    /// `poison(cout)` (poisontest).
    Poison,
    /// Nothing (guardtest, selecttest).
    Nothing,
}

/// The three alternation flavours of PyCSP.
#[allow(clippy::enum_variant_names, reason = "PyCSP's names")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// `AltSelect`: here `Alt::read_each(..).select()`.
    AltSelect,
    /// `PriSelect`: here one `Alt::read` per channel, `select()`.
    PriSelect,
    /// `FairSelect`: here `Alt::read_each(..).select_fair(..)`.
    FairSelect,
}

/// PyCSP's combination matrix of (read sleeper, write sleeper).
const MATRIX: [(Sleeper, Sleeper); 8] = [
    (Sleeper::Zero, Sleeper::Zero),
    (Sleeper::Zero, Sleeper::One),
    (Sleeper::Zero, Sleeper::Random),
    (Sleeper::One, Sleeper::Zero),
    (Sleeper::One, Sleeper::Random),
    (Sleeper::Random, Sleeper::Zero),
    (Sleeper::Random, Sleeper::One),
    (Sleeper::Random, Sleeper::Random),
];

/// Runs `test` once per combination of the matrix, with the PyCSP test name
/// (`One2One_Test(sleep_one, None)`) and a tag for its sleeps.
fn matrix(name: &str, test: impl Fn(&str, Sleeper, Sleeper, u64) -> Outcome) -> Outcome {
    for (rs, ws) in MATRIX {
        let full = format!("{name}({}, {})", rs.label(), ws.label());
        test(&full, rs, ws, tag(&full))?;
    }
    Ok(())
}

/// `writer(cout, id, cnt, sleeper)`: writes `(id, i)` for `i < cnt`, then
/// retires, poisons, or does nothing.
fn writer<R: Runtime>(
    cout: Writer<Msg, R>,
    id: u64,
    cnt: u64,
    sl: Sleeper,
    t: u64,
    end: End,
) -> Process<()> {
    proc(format!("writer{id}"), cout, move |cout| {
        for i in 0..cnt {
            sl.sleep::<R>(key(t, id, i))?;
            cout.write((id, i))?;
        }
        match end {
            End::Retire => cout.retire(),
            End::Poison => cout.poison(),
            End::Nothing => {}
        }
        Ok(())
    })
}

/// `reader(cin, id, sleeper, assertCheck)`: forever { sleep; read; report `id` }.
fn reader<R: Runtime>(
    cin: Reader<Msg, R>,
    id: u64,
    sl: Sleeper,
    t: u64,
    check: Writer<u64, R>,
) -> Process<()> {
    proc(format!("reader{id}"), (cin, check), move |(cin, check)| {
        let mut i = 0;
        loop {
            sl.sleep::<R>(key(t, 1000 + id, i))?;
            cin.read()?;
            check.write(id)?;
            i += 1;
        }
    })
}

/// `par_reader(c1..c4, sleeper, assertCheck)`: forever { sleep; alternation
/// over the four inputs; report the index of the chosen one }.
fn par_reader<R: Runtime>(
    id: u64,
    cins: Vec<Reader<Msg, R>>,
    sl: Sleeper,
    t: u64,
    check: Writer<u64, R>,
    mode: Mode,
) -> Process<()> {
    proc(
        format!("par_reader{id}"),
        (cins, check),
        move |(cins, check)| {
            let mut fair = Fair::new();
            let mut i = 0;
            loop {
                sl.sleep::<R>(key(t, 2000 + id, i))?;
                let k = match mode {
                    Mode::AltSelect => Alt::new()
                        .read_each(&cins, |k, _m: Msg| k as u64)
                        .select()?,
                    Mode::PriSelect => {
                        let mut alt = Alt::new();
                        for (k, c) in cins.iter().enumerate() {
                            alt = alt.read(c, move |_m: Msg| k as u64);
                        }
                        alt.select()?
                    }
                    Mode::FairSelect => Alt::new()
                        .read_each(&cins, |k, _m: Msg| k as u64)
                        .select_fair(&mut fair)?,
                };
                check.write(k)?;
                i += 1;
            }
        },
    )
}

/// `par_writer(c1..c4, cnt, sleeper)`: `4 * cnt` alternations over four
/// output guards, each offering `(id, i)`, then retire or poison all four.
fn par_writer<R: Runtime>(
    id: u64,
    couts: Vec<Writer<Msg, R>>,
    cnt: u64,
    sl: Sleeper,
    t: u64,
    end: End,
) -> Process<()> {
    proc(format!("par_writer{id}"), couts, move |couts| {
        for i in 0..4 * cnt {
            sl.sleep::<R>(key(t, 3000 + id, i))?;
            let mut alt = Alt::new();
            for c in &couts {
                alt = alt.write(c, (id, i), || ());
            }
            alt.select()?;
        }
        for c in &couts {
            match end {
                End::Retire => c.retire(),
                End::Poison => c.poison(),
                End::Nothing => {}
            }
        }
        Ok(())
    })
}

/// What `Assert` read, and how its reading ended.
#[derive(Debug)]
struct Received {
    values: Vec<u64>,
    ended: &'static str,
}

/// PyCSP's `check.Assert` parameters.
#[derive(Clone, Debug, Default)]
struct Expect {
    count: usize,
    minimum: usize,
    vocabulary: Vec<u64>,
    quit_on_count: bool,
}

impl Expect {
    fn exactly(count: usize, vocabulary: &[u64]) -> Self {
        Expect {
            count,
            vocabulary: vocabulary.to_vec(),
            ..Expect::default()
        }
    }

    fn between(minimum: usize, count: usize, vocabulary: &[u64]) -> Self {
        Expect {
            count,
            minimum,
            vocabulary: vocabulary.to_vec(),
            ..Expect::default()
        }
    }

    fn quit_on_count(mut self) -> Self {
        self.quit_on_count = true;
        self
    }

    /// PyCSP's checks, in its order.
    fn check(&self, name: &str, got: &Received) -> Outcome {
        let n = got.values.len();
        let mut errors = Vec::new();
        if n < self.minimum {
            errors.push(format!("expected at least {} values", self.minimum));
        }
        if self.count > 0 {
            if self.minimum > 0 {
                if n > self.count {
                    errors.push(format!("expected at most {} values", self.count));
                }
            } else if n != self.count {
                errors.push(format!("expected exactly {} values", self.count));
            }
        }
        if !self.vocabulary.is_empty() {
            for v in &got.values {
                if !self.vocabulary.contains(v) {
                    errors.push(format!(
                        "value {v} is not in the vocabulary {:?}",
                        self.vocabulary
                    ));
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{name}: {}; received {n} values {:?} (Assert's reading ended: {})",
                errors.join("; "),
                got.values,
                got.ended
            ))
        }
    }
}

/// `check.Assert(cin, ..)`: reads until poisoned or retired (or, with
/// `quit_on_count`, until it has `count` values; it then retires its end so
/// that a late writer is told rather than left blocked).
fn assert_proc<R: Runtime>(cin: Reader<u64, R>, quit_at: Option<usize>) -> Process<Received> {
    proc("Assert", cin, move |cin| {
        let mut values = Vec::new();
        let ended = loop {
            if quit_at == Some(values.len()) {
                cin.retire();
                break "count reached";
            }
            match cin.read() {
                Ok(v) => values.push(v),
                Err(Error::Poisoned) => break "poisoned",
                Err(Error::Retired) => break "retired",
                Err(e) => return Err(e),
            }
        };
        Ok(Received { values, ended })
    })
}

/// Runs `procs` in parallel with an `Assert` on `x` and checks what it read.
/// Returns what it read for further checks.
fn run_with_assert<R: Runtime>(
    name: &str,
    x: &Channel<u64, R>,
    expect: &Expect,
    procs: Vec<Process<()>>,
) -> Result<Received, String> {
    let quit_at = expect.quit_on_count.then_some(expect.count);
    let mut all: Vec<Process<Option<Received>>> = vec![assert_proc(x.reader(), quit_at).map(Some)];
    all.extend(procs.into_iter().map(|p| p.map(|()| None)));
    let out = R::par(all).ctx(&format!("{name}: the network"))?;
    let got = match out.into_iter().next() {
        Some(Some(Some(got))) => got,
        other => return Err(format!("{name}: Assert returned no values: {other:?}")),
    };
    expect.check(name, &got)?;
    Ok(got)
}

fn channels<R: Runtime>(caps: [usize; 4]) -> Vec<Channel<Msg, R>> {
    caps.iter().map(|&c| Channel::buffered(c)).collect()
}

/// `return_msg(cin, sleeper)`: `return cin()`.
fn return_msg<R: Runtime>(
    cin: Reader<Msg, R>,
    j: u64,
    sl: Sleeper,
    t: u64,
) -> Process<Option<Msg>> {
    proc(format!("return_msg{j}"), cin, move |cin| {
        sl.sleep::<R>(key(t, 500 + j, 0))?;
        Ok(Some(cin.read()?))
    })
}

const SLEEPERS: [Sleeper; 3] = [Sleeper::Zero, Sleeper::One, Sleeper::Random];

/// `Parallel(writer(c.writer(),0,10,s), 10*return_msg(c.reader(),s))` returns
/// eleven results in order: the writer's (no message) and one message per
/// `return_msg`. PyCSP checks `len(L)==11`, `L[0] is None` and no `None` in
/// `L[1:]`; we also check that the ten messages are exactly `(0,0)..(0,9)`.
pub fn parallel_test<R: Runtime>() -> Outcome {
    for s in SLEEPERS {
        let name = format!("Parallel_Test({})", s.label());
        let t = tag(&name);
        let c = Channel::<Msg, R>::new();
        let mut procs = vec![writer(c.writer(), 0, 10, s, t, End::Retire).map(|()| None)];
        for j in 0..10 {
            procs.push(return_msg(c.reader(), j, s, t));
        }
        let l = R::par(procs).ctx(&name)?;
        ensure!(
            l.len() == 11,
            "{name}: expected 11 results, got {}: {l:?}",
            l.len()
        );
        ensure!(
            l[0] == Some(None),
            "{name}: the writer's result should be Some(None) (a value, no message), got {:?}",
            l[0]
        );
        let mut msgs = Vec::new();
        for (j, r) in l.iter().enumerate().skip(1) {
            match r {
                Some(Some(m)) => msgs.push(*m),
                other => {
                    return Err(format!(
                        "{name}: return_msg #{j} should have returned a message, got {other:?} (all: {l:?})"
                    ));
                }
            }
        }
        msgs.sort_unstable();
        let want: Vec<Msg> = (0..10).map(|i| (0, i)).collect();
        ensure!(
            msgs == want,
            "{name}: the ten readers should have read each of {want:?} once, got {msgs:?}"
        );
    }
    Ok(())
}

/// `Spawn(writer(...10...)); L = Sequence(10*return_msg(...))`: ten results,
/// none missing. Run inside a process so that the spawned writer is joined
/// when that process ends. We also check the order: one writer writes
/// `(0,0)..(0,9)` and the readers run one after another, so `L[i] == (0,i)`.
pub fn sequence_test<R: Runtime>() -> Outcome {
    for s in SLEEPERS {
        let name = format!("Sequence_Test({})", s.label());
        let t = tag(&name);
        let c = Channel::<Msg, R>::new();
        let w = c.writer();
        let readers: Vec<Reader<Msg, R>> = (0..10).map(|_| c.reader()).collect();
        let main = Process::new("Sequence_Test", move || {
            R::spawn(writer(w, 0, 10, s, t, End::Retire))?;
            seq::<R, Option<Msg>>(
                readers
                    .into_iter()
                    .zip(0..)
                    .map(|(r, j)| return_msg(r, j, s, t)),
            )
        });
        let out = R::par(vec![main]).ctx(&name)?;
        let l = match out.into_iter().next() {
            Some(Some(l)) => l,
            other => {
                return Err(format!(
                    "{name}: the process running the sequence returned {other:?}"
                ));
            }
        };
        let want: Vec<Option<Option<Msg>>> = (0..10).map(|i| Some(Some((0, i)))).collect();
        ensure!(
            l == want,
            "{name}: expected the sequence to return {want:?}, got {l:?}"
        );
    }
    Ok(())
}

/// One reader and one writer of 10 messages that retires: `Assert` gets
/// exactly ten 0s, and the retire cascade (writer → reader → Assert's
/// channel) ends the network.
pub fn one2one<R: Runtime>() -> Outcome {
    matrix("One2One_Test", |name, rs, ws, t| {
        let x = Channel::<u64, R>::new();
        let c1 = Channel::<Msg, R>::new();
        let procs = vec![
            reader(c1.reader(), 0, rs, t, x.writer()),
            writer(c1.writer(), 1, 10, ws, t, End::Retire),
        ];
        run_with_assert(name, &x, &Expect::exactly(10, &[0]), procs).map(drop)
    })
}

fn any2one_alting_on<R: Runtime>(test: &str, mode: Mode, end: End, expect: &Expect) -> Outcome {
    matrix(test, |name, rs, ws, t| {
        let x = Channel::<u64, R>::new();
        let cs = channels::<R>([0; 4]);
        let mut procs = vec![par_reader(
            0,
            cs.iter().map(Channel::reader).collect(),
            rs,
            t,
            x.writer(),
            mode,
        )];
        for (k, c) in (0..).zip(&cs) {
            procs.push(writer(c.writer(), k, 10, ws, t, end));
        }
        run_with_assert(name, &x, expect, procs).map(drop)
    })
}

/// `par_reader` (AltSelect) over four channels, each with a writer of 10 that
/// retires: between 10 and 40 values from {0,1,2,3}. The first retired
/// channel ends the reader through `Retired` from the alternation.
pub fn any2one_alting<R: Runtime>() -> Outcome {
    any2one_alting_on::<R>(
        "Any2One_Alting_Test",
        Mode::AltSelect,
        End::Retire,
        &Expect::between(10, 40, &[0, 1, 2, 3]).quit_on_count(),
    )
}

/// As [`any2one_alting()`] with FairSelect (`Alt::select_fair`).
pub fn any2one_fair_alting<R: Runtime>() -> Outcome {
    any2one_alting_on::<R>(
        "Any2One_FairAlting_Test",
        Mode::FairSelect,
        End::Retire,
        &Expect::between(10, 40, &[0, 1, 2, 3]).quit_on_count(),
    )
}

/// As [`any2one_alting()`] with PriSelect (one `Alt::read` per channel).
pub fn any2one_pri_alting<R: Runtime>() -> Outcome {
    any2one_alting_on::<R>(
        "Any2One_PriAlting_Test",
        Mode::PriSelect,
        End::Retire,
        &Expect::between(10, 40, &[0, 1, 2, 3]).quit_on_count(),
    )
}

/// Four readers (each with its own Assert writer end) and four writers of 10
/// on one channel: exactly 40 values. The channel retires only when all four
/// writers have retired.
pub fn any2any<R: Runtime>() -> Outcome {
    any2any_on::<R>(
        "Any2Any_Test",
        0,
        End::Retire,
        &Expect::exactly(40, &[0, 1, 2, 3]),
    )
}

fn any2any_on<R: Runtime>(test: &str, cap: usize, end: End, expect: &Expect) -> Outcome {
    matrix(test, |name, rs, ws, t| {
        let x = Channel::<u64, R>::new();
        let c1 = Channel::<Msg, R>::buffered(cap);
        let mut procs = Vec::new();
        for id in 0..4 {
            procs.push(reader(c1.reader(), id, rs, t, x.writer()));
            procs.push(writer(c1.writer(), id, 10, ws, t, end));
        }
        run_with_assert(name, &x, expect, procs).map(drop)
    })
}

/// `Buffer_Test`: a writer of 10 on a channel with buffer 10 finishes with no
/// reader (its retire is deferred until the buffer drains); then a reader
/// started later reads exactly 10 and is retired. `Assert` is spawned (as in
/// PyCSP) by a process that runs both `Parallel`s, so it is joined when that
/// process ends.
pub fn buffer_buffer_test<R: Runtime>() -> Outcome {
    matrix("Buffer_Test", |name, rs, ws, t| {
        let x = Channel::<u64, R>::new();
        let c = Channel::<Msg, R>::buffered(10);
        let got: Log<Received> = Log::new();
        let slot = got.clone();
        let assert_end = x.reader();
        let check_end = x.writer();
        let w = c.writer();
        let later = c.clone();
        let main = Process::new("Buffer_Test", move || {
            R::spawn(assert_proc(assert_end, None).map(move |r| slot.push(r)))?;
            R::par(vec![writer(w, 0, 10, ws, t, End::Retire)])?;
            R::par(vec![reader(later.reader(), 0, rs, t, check_end)])?;
            Ok(())
        });
        R::par(vec![main]).ctx(name)?;
        let mut got = got.items_moved();
        let Some(got) = got.pop() else {
            return Err(format!(
                "{name}: the spawned Assert had not finished when the process that spawned it ended (spawn must be joined)"
            ));
        };
        let vocab: Vec<u64> = (0..10).collect();
        Expect::exactly(10, &vocab).check(name, &got)
    })
}

fn one2one_pairs<R: Runtime>(test: &str, caps: [usize; 4]) -> Outcome {
    matrix(test, |name, rs, ws, t| {
        let x = Channel::<u64, R>::new();
        let cs = channels::<R>(caps);
        let mut procs = Vec::new();
        for (id, c) in (0..).zip(&cs) {
            procs.push(reader(c.reader(), id, rs, t, x.writer()));
            procs.push(writer(c.writer(), id, 10, ws, t, End::Retire));
        }
        run_with_assert(name, &x, &Expect::exactly(40, &[0, 1, 2, 3]), procs).map(drop)
    })
}

fn any2one_on<R: Runtime>(test: &str, cap: usize) -> Outcome {
    matrix(test, |name, rs, ws, t| {
        let x = Channel::<u64, R>::new();
        let c1 = Channel::<Msg, R>::buffered(cap);
        let mut procs = vec![reader(c1.reader(), 0, rs, t, x.writer())];
        for id in 0..4 {
            procs.push(writer(c1.writer(), id, 10, ws, t, End::Retire));
        }
        run_with_assert(name, &x, &Expect::exactly(40, &[0]), procs).map(drop)
    })
}

fn one2any_on<R: Runtime>(test: &str, cap: usize) -> Outcome {
    matrix(test, |name, rs, ws, t| {
        let x = Channel::<u64, R>::new();
        let c1 = Channel::<Msg, R>::buffered(cap);
        let mut procs = vec![writer(c1.writer(), 0, 40, ws, t, End::Retire)];
        for id in 0..4 {
            procs.push(reader(c1.reader(), id, rs, t, x.writer()));
        }
        run_with_assert(name, &x, &Expect::exactly(40, &[0, 1, 2, 3]), procs).map(drop)
    })
}

fn one_alting2any_on<R: Runtime>(test: &str, caps: [usize; 4]) -> Outcome {
    matrix(test, |name, rs, ws, t| {
        let x = Channel::<u64, R>::new();
        let cs = channels::<R>(caps);
        let mut procs = vec![par_writer(
            0,
            cs.iter().map(Channel::writer).collect(),
            10,
            ws,
            t,
            End::Retire,
        )];
        for (id, c) in (0..).zip(&cs) {
            procs.push(reader(c.reader(), id, rs, t, x.writer()));
        }
        run_with_assert(name, &x, &Expect::exactly(40, &[0, 1, 2, 3]), procs).map(drop)
    })
}

/// `par_writer`s and `par_reader`s over four channels with capacities
/// `caps`. Returns the number of values Assert read.
#[allow(clippy::too_many_arguments)]
fn any_alting2any_alting_on<R: Runtime>(
    name: &str,
    caps: [usize; 4],
    writers: u64,
    readers: u64,
    rs: Sleeper,
    ws: Sleeper,
    end: End,
    expect: &Expect,
) -> Result<usize, String> {
    let t = tag(name);
    let x = Channel::<u64, R>::new();
    let cs = channels::<R>(caps);
    let mut procs = Vec::new();
    for id in 0..writers {
        procs.push(par_writer(
            id,
            cs.iter().map(Channel::writer).collect(),
            10,
            ws,
            t,
            end,
        ));
    }
    for id in 0..readers {
        procs.push(par_reader(
            id,
            cs.iter().map(Channel::reader).collect(),
            rs,
            t,
            x.writer(),
            Mode::AltSelect,
        ));
    }
    run_with_assert(name, &x, expect, procs).map(|got| got.values.len())
}

/// buffertest's `One2One_Test`: four reader/writer pairs on buffers 1, 5, 10
/// and 20: exactly 40 values from {0,1,2,3}.
pub fn buffer_one2one<R: Runtime>() -> Outcome {
    one2one_pairs::<R>("Buffer One2One_Test", [1, 5, 10, 20])
}

/// buffertest's `Any2One_Test`: one reader, four writers of 10, buffer 20:
/// exactly 40 values, all 0.
pub fn buffer_any2one<R: Runtime>() -> Outcome {
    any2one_on::<R>("Buffer Any2One_Test", 20)
}

/// buffertest's `One2Any_Test`: one writer of 40, four readers, buffer 20:
/// exactly 40 values. The writer's retire waits until the buffer drains.
pub fn buffer_one2any<R: Runtime>() -> Outcome {
    one2any_on::<R>("Buffer One2Any_Test", 20)
}

/// buffertest's `One_Alting2Any_Test`: one `par_writer` alternating over four
/// outputs (buffers 1/5/10/20), a reader on each: exactly 40 values.
pub fn buffer_one_alting2any<R: Runtime>() -> Outcome {
    one_alting2any_on::<R>("Buffer One_Alting2Any_Test", [1, 5, 10, 20])
}

/// buffertest's `Any2Any_Test`: four readers, four writers of 10, buffer 20:
/// exactly 40 values.
pub fn buffer_any2any<R: Runtime>() -> Outcome {
    any2any_on::<R>(
        "Buffer Any2Any_Test",
        20,
        End::Retire,
        &Expect::exactly(40, &[0, 1, 2, 3]),
    )
}

/// buffertest's `Any_Alting2Any_Alting_Test`: four `par_writer`s and four
/// `par_reader`s over buffers 1/5/10/20. PyCSP: between 40 and 160 values.
/// Ours, stronger: a channel can first retire only from the writers' side,
/// after all 160 writes completed, so at most the 36 buffered messages go
/// unread: at least 124.
pub fn buffer_any_alting2any_alting<R: Runtime>() -> Outcome {
    matrix("Buffer Any_Alting2Any_Alting_Test", |name, rs, ws, _t| {
        let caps = [1, 5, 10, 20];
        let n = any_alting2any_alting_on::<R>(
            name,
            caps,
            4,
            4,
            rs,
            ws,
            End::Retire,
            &Expect::between(40, 160, &[0, 1, 2, 3]),
        )?;
        let floor = 160 - caps.iter().sum::<usize>();
        ensure!(
            n >= floor,
            "{name}: only {n} of 160 messages were read; at most the {} buffered ones may be left",
            160 - floor
        );
        Ok(())
    })
}

/// commtest's `One2One_Test` on unbuffered channels: exactly 40 values.
pub fn comm_one2one<R: Runtime>() -> Outcome {
    one2one_pairs::<R>("Comm One2One_Test", [0; 4])
}

/// commtest's `Any2One_Test`: one reader, four writers of 10: exactly 40 0s.
pub fn comm_any2one<R: Runtime>() -> Outcome {
    any2one_on::<R>("Comm Any2One_Test", 0)
}

/// commtest's `One2Any_Test`: one writer of 40, four readers: exactly 40.
pub fn comm_one2any<R: Runtime>() -> Outcome {
    one2any_on::<R>("Comm One2Any_Test", 0)
}

/// commtest's `One_Alting2Any_Test`: one `par_writer` over four unbuffered
/// outputs, a reader on each: exactly 40 values.
pub fn comm_one_alting2any<R: Runtime>() -> Outcome {
    one_alting2any_on::<R>("Comm One_Alting2Any_Test", [0; 4])
}

/// commtest's `Any2Any_Test`: four readers and four writers of 10 on one
/// unbuffered channel: exactly 40 values.
pub fn comm_any2any<R: Runtime>() -> Outcome {
    any2any_on::<R>(
        "Comm Any2Any_Test",
        0,
        End::Retire,
        &Expect::exactly(40, &[0, 1, 2, 3]),
    )
}

/// commtest's `Any_Alting2Any_Alting_Test` on unbuffered channels. PyCSP:
/// between 40 and 160 values. Ours, stronger: every rendezvous write
/// completes only when read, and no channel retires before all 160 writes
/// completed, so exactly 160 (no message lost or duplicated by an alternation).
pub fn comm_any_alting2any_alting<R: Runtime>() -> Outcome {
    matrix("Comm Any_Alting2Any_Alting_Test", |name, rs, ws, _t| {
        let n = any_alting2any_alting_on::<R>(
            name,
            [0; 4],
            4,
            4,
            rs,
            ws,
            End::Retire,
            &Expect::between(40, 160, &[0, 1, 2, 3]),
        )?;
        ensure!(
            n == 160,
            "{name}: expected all 160 messages to be read exactly once, Assert counted {n}"
        );
        Ok(())
    })
}

/// poisontest's `One2One_Test`: the writer poisons after its 10th write;
/// exactly 10 values (poison after the last synchronous write loses nothing).
pub fn poison_one2one<R: Runtime>() -> Outcome {
    matrix("Poison One2One_Test", |name, rs, ws, t| {
        let x = Channel::<u64, R>::new();
        let c1 = Channel::<Msg, R>::new();
        let procs = vec![
            reader(c1.reader(), 0, rs, t, x.writer()),
            writer(c1.writer(), 1, 10, ws, t, End::Poison),
        ];
        let got = run_with_assert(name, &x, &Expect::exactly(10, &[0]), procs)?;
        ensure!(
            got.ended == "poisoned",
            "{name}: Assert should have been poisoned at the end, its reading ended: {}",
            got.ended
        );
        Ok(())
    })
}

/// poisontest's `Any2One_Alting_Test`: the first writer to finish poisons its
/// channel; the alternation fails with `Poisoned` and the reader poisons the
/// rest. Between 10 and 40 values.
pub fn poison_any2one_alting<R: Runtime>() -> Outcome {
    any2one_alting_on::<R>(
        "Poison Any2One_Alting_Test",
        Mode::AltSelect,
        End::Poison,
        &Expect::between(10, 40, &[0, 1, 2, 3]).quit_on_count(),
    )
}

/// poisontest's `Any2Any_Test`: four readers, four writers of 10 on one
/// channel; the first writer to finish poisons everyone. PyCSP asserts
/// between 10 and 40 values, but its lower bound has a race: the first
/// finisher's 10 messages are all read, yet a reader that has taken one and
/// not yet reported it loses the report when another reader propagates the
/// poison to the shared Assert channel. At most three readers can be in that
/// state (the fourth propagates), so the bound that holds in every schedule
/// is 7. (In practice the other writers' messages make up for the loss: 300
/// seeded greenlets schedules never went below PyCSP's 10.)
pub fn poison_any2any<R: Runtime>() -> Outcome {
    any2any_on::<R>(
        "Poison Any2Any_Test",
        0,
        End::Poison,
        &Expect::between(7, 40, &[0, 1, 2, 3]),
    )
}

/// poisontest's `Any_Alting2Any_Alting_Test(None, None)`: two `par_writer`s
/// and two `par_reader`s; the first writer to finish poisons all four
/// channels. PyCSP asserts between 40 and 80; as in [`poison_any2any`], one
/// reader may hold an unreported message when the other poisons the Assert
/// channel, so the bound that holds in every schedule is 39.
pub fn poison_any_alting2any_alting<R: Runtime>() -> Outcome {
    let name = "Poison Any_Alting2Any_Alting_Test(None, None)";
    any_alting2any_alting_on::<R>(
        name,
        [0; 4],
        2,
        2,
        Sleeper::Zero,
        Sleeper::Zero,
        End::Poison,
        &Expect::between(39, 80, &[0, 1, 2, 3]),
    )
    .map(drop)
}

/// What one alternation of a guardtest reader chose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Choice {
    Input(usize, Msg),
    Skip,
    Timeout,
}

const GUARD_TIMEOUT: Duration = Duration::from_millis(1);

/// The alternations of guardtest's readers: four inputs with a `SkipGuard`
/// between the second and third (`skip`), or four inputs and a
/// `TimeoutGuard` last. `exec` uses actions with side effects (PyCSP's string
/// actions) instead of the select's value.
fn guard_reader<R: Runtime>(
    cins: Vec<Reader<Msg, R>>,
    selects: u64,
    sl: Sleeper,
    t: u64,
    skip: bool,
    exec: bool,
) -> Process<Vec<(Choice, Duration)>> {
    proc("par_reader", cins, move |cins| {
        let mut log = Vec::new();
        for i in 0..selects {
            sl.sleep::<R>(key(t, 4000, i))?;
            let start = R::now();
            let choice = if exec {
                let seen = RefCell::new(None);
                let mut alt = Alt::new();
                for (k, c) in cins.iter().enumerate() {
                    if skip && k == 2 {
                        alt = alt.skip(|| *seen.borrow_mut() = Some(Choice::Skip));
                    }
                    let seen = &seen;
                    alt = alt.read(c, move |m| *seen.borrow_mut() = Some(Choice::Input(k, m)));
                }
                if !skip {
                    alt = alt.timeout(GUARD_TIMEOUT, || *seen.borrow_mut() = Some(Choice::Timeout));
                }
                alt.select()?;
                seen.into_inner()
                    .ok_or_else(|| Error::config("no action of the alternation ran"))?
            } else {
                let mut alt = Alt::new();
                for (k, c) in cins.iter().enumerate() {
                    if skip && k == 2 {
                        alt = alt.skip(|| Choice::Skip);
                    }
                    alt = alt.read(c, move |m| Choice::Input(k, m));
                }
                if !skip {
                    alt = alt.timeout(GUARD_TIMEOUT, || Choice::Timeout);
                }
                alt.select()?
            };
            log.push((choice, R::now().saturating_sub(start)));
        }
        for c in &cins {
            c.retire();
        }
        Ok(log)
    })
}

/// Runs a guardtest network: `writers_per_channel` writers of `cnt` on each
/// of four channels, and one guard reader doing `selects` alternations.
#[allow(clippy::too_many_arguments)]
fn guard_test<R: Runtime>(
    name: &str,
    writers_per_channel: u64,
    cnt: u64,
    selects: u64,
    rs: Sleeper,
    ws: Sleeper,
    skip: bool,
    exec: bool,
) -> Outcome {
    let t = tag(name);
    let cs = channels::<R>([0; 4]);
    let mut procs = vec![guard_reader(
        cs.iter().map(Channel::reader).collect(),
        selects,
        rs,
        t,
        skip,
        exec,
    )];
    let mut channel_of = Vec::new();
    for (k, c) in cs.iter().enumerate() {
        for _ in 0..writers_per_channel {
            let id = channel_of.len() as u64;
            channel_of.push(k);
            procs.push(writer(c.writer(), id, cnt, ws, t, End::Nothing).map(|()| Vec::new()));
        }
    }
    let out = R::par(procs).ctx(name)?;
    let mut out = out.into_iter();
    let log = match out.next() {
        Some(Some(log)) => log,
        other => return Err(format!("{name}: the alternating reader returned {other:?}")),
    };
    ensure!(
        log.len() as u64 == selects,
        "{name}: expected {selects} selections, got {}",
        log.len()
    );
    let mut per_writer: Vec<Vec<u64>> = vec![Vec::new(); channel_of.len()];
    for (choice, waited) in &log {
        match *choice {
            Choice::Input(k, (id, i)) => {
                ensure!(
                    !(skip && k >= 2),
                    "{name}: input guard {} was chosen, but it comes after the SkipGuard in a priority select",
                    k + 1
                );
                let Some(&ch) = channel_of.get(id as usize) else {
                    return Err(format!(
                        "{name}: a message from an unknown writer {id}: {choice:?}"
                    ));
                };
                ensure!(
                    ch == k,
                    "{name}: writer {id} writes on channel {}, but its message came from guard {}",
                    ch + 1,
                    k + 1
                );
                per_writer[id as usize].push(i);
            }
            Choice::Skip => ensure!(
                skip,
                "{name}: a skip guard was chosen in an alternation without one"
            ),
            Choice::Timeout => {
                ensure!(
                    !skip,
                    "{name}: a timeout guard was chosen in an alternation without one"
                );
                ensure!(
                    *waited >= GUARD_TIMEOUT,
                    "{name}: the timeout guard ({GUARD_TIMEOUT:?}) was chosen after only {waited:?}"
                );
            }
        }
    }
    for (id, (got, result)) in per_writer.iter().zip(out).enumerate() {
        let want: Vec<u64> = (0..got.len() as u64).collect();
        ensure!(
            *got == want,
            "{name}: writer {id}'s messages should arrive in order and once each, got {got:?}"
        );
        let finished = result.is_some();
        ensure!(
            finished == (got.len() as u64 == cnt),
            "{name}: writer {id} had {} of {cnt} messages read but {} (a writer ends normally iff all its messages were read, else with Retired)",
            got.len(),
            if finished {
                "ended normally"
            } else {
                "was stopped"
            }
        );
    }
    Ok(())
}

/// guardtest scenario 1: `PriSelect(In c1, In c2, SkipGuard, In c3, In c4)`,
/// 40 selections with random sleeps on both sides, then `retire` of all four
/// inputs, which ends the blocked writers. Derived assertions: c3 and c4 are
/// never chosen (the skip is ahead of them); every message arrives once, in
/// its writer's order; a writer ends normally iff all its messages were read.
pub fn guard_skip_sel<R: Runtime>() -> Outcome {
    guard_test::<R>(
        "guardtest par_reader_skip_sel",
        1,
        10,
        40,
        Sleeper::Random,
        Sleeper::Random,
        true,
        false,
    )
}

/// guardtest scenario 2: four inputs and `TimeoutGuard` last; writers sleep
/// `sleep_long_random`. Derived assertion: the timeout is chosen only after
/// at least its duration has passed.
pub fn guard_timeout_sel<R: Runtime>() -> Outcome {
    guard_test::<R>(
        "guardtest par_reader_timeout_sel",
        1,
        10,
        40,
        Sleeper::Random,
        Sleeper::LongRandom,
        false,
        false,
    )
}

/// guardtest scenario 3: as [`guard_skip_sel`], with actions that record the
/// choice (PyCSP's string actions) instead of the select's value.
pub fn guard_skip_exec<R: Runtime>() -> Outcome {
    guard_test::<R>(
        "guardtest par_reader_skip_exec",
        1,
        10,
        40,
        Sleeper::Random,
        Sleeper::Random,
        true,
        true,
    )
}

/// guardtest scenario 4: as [`guard_timeout_sel`] with recording actions.
pub fn guard_timeout_exec<R: Runtime>() -> Outcome {
    guard_test::<R>(
        "guardtest par_reader_timeout_exec",
        1,
        10,
        40,
        Sleeper::Random,
        Sleeper::LongRandom,
        false,
        true,
    )
}

/// guardtest scenario 5: `Any2Any_Alting_Test`: 16 writers (4 per channel, 40
/// messages each, `sleep_long` before every write), one reader doing 160
/// selections with a skip guard and no sleep, then retiring.
pub fn guard_any2any_skip_sel<R: Runtime>() -> Outcome {
    guard_test::<R>(
        "guardtest Any2Any par_reader_skip_sel",
        4,
        40,
        160,
        Sleeper::Zero,
        Sleeper::Long,
        true,
        false,
    )
}

/// guardtest scenario 6: as [`guard_any2any_skip_sel`] with a timeout guard.
pub fn guard_any2any_timeout_sel<R: Runtime>() -> Outcome {
    guard_test::<R>(
        "guardtest Any2Any par_reader_timeout_sel",
        4,
        40,
        160,
        Sleeper::Zero,
        Sleeper::Long,
        false,
        false,
    )
}

/// selecttest: one alternating reader does exactly 40 selections over four
/// writers of 10 (random sleeps on both sides); pass when all 40 messages
/// arrive, each once, and everything ends normally.
fn select_test<R: Runtime>(name: &str, mode: Mode) -> Outcome {
    let t = tag(name);
    let cs = channels::<R>([0; 4]);
    let reader = proc(
        "par_reader",
        cs.iter().map(Channel::reader).collect::<Vec<_>>(),
        move |cins| {
            let mut fair = Fair::new();
            let mut got = Vec::new();
            for i in 0..40 {
                Sleeper::Random.sleep::<R>(key(t, 5000, i))?;
                let m = match mode {
                    Mode::AltSelect => Alt::new().read_each(&cins, |_, m: Msg| m).select()?,
                    Mode::PriSelect => {
                        let mut alt = Alt::new();
                        for c in &cins {
                            alt = alt.read(c, |m: Msg| m);
                        }
                        alt.select()?
                    }
                    Mode::FairSelect => Alt::new()
                        .read_each(&cins, |_, m: Msg| m)
                        .select_fair(&mut fair)?,
                };
                got.push(m);
            }
            Ok(got)
        },
    );
    let mut procs = vec![reader];
    for (id, c) in (0..).zip(&cs) {
        procs.push(
            writer(c.writer(), id, 10, Sleeper::Random, t, End::Nothing).map(|()| Vec::new()),
        );
    }
    let out = R::par(procs).ctx(name)?;
    ensure!(
        out.iter().all(Option::is_some),
        "{name}: every process should end normally, got {out:?}"
    );
    let mut got = out.into_iter().next().flatten().unwrap_or_default();
    got.sort_unstable();
    let want: Vec<Msg> = (0..4)
        .flat_map(|id| (0..10).map(move |i| (id, i)))
        .collect();
    ensure!(
        got == want,
        "{name}: expected every (writer, i) message once, got {got:?}"
    );
    Ok(())
}

/// selecttest with `AltSelect`.
pub fn select_alt<R: Runtime>() -> Outcome {
    select_test::<R>("selecttest par_reader", Mode::AltSelect)
}

/// selecttest with `PriSelect`.
pub fn select_pri<R: Runtime>() -> Outcome {
    select_test::<R>("selecttest par_reader_pri", Mode::PriSelect)
}

/// selecttest with `FairSelect`.
pub fn select_fair<R: Runtime>() -> Outcome {
    select_test::<R>("selecttest par_reader_fair", Mode::FairSelect)
}

/// iotest: ten processes each make a blocking call through `R::io` that
/// takes `i` steps of 40 ms (PyCSP: `i` seconds); they print in order 0..9
/// and the whole takes about the longest call, not the sum. Uses the wall
/// clock and real blocking calls, so it is not seeded. Bounds are generous:
/// at least the longest call (360 ms), less than the sum (1800 ms).
pub fn iotest<R: Runtime>() -> Outcome {
    const STEP: Duration = Duration::from_millis(40);
    let log: Log<u32> = Log::new();
    let start = Instant::now();
    let procs: Vec<Process<()>> = (0..10u32)
        .map(|i| {
            let log = log.clone();
            Process::new(format!("delay_output{i}"), move || {
                R::io(move || std::thread::sleep(STEP * i))?;
                log.push(i);
                Ok(())
            })
        })
        .collect();
    R::par(procs).ctx("iotest")?;
    let elapsed = start.elapsed();
    let order = log.items();
    let want: Vec<u32> = (0..10).collect();
    ensure!(
        order == want,
        "iotest: expected the delays to end in order {want:?}, got {order:?}"
    );
    ensure!(
        elapsed >= STEP * 9,
        "iotest: the longest call takes {:?}, but the run took only {elapsed:?}",
        STEP * 9
    );
    ensure!(
        elapsed < STEP * 45,
        "iotest: the io calls should run concurrently (about {:?}), but the run took {elapsed:?} (their sum is {:?})",
        STEP * 9,
        STEP * 45
    );
    Ok(())
}
