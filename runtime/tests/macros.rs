//! Tests of `#[process]` and `alt!` on a small synchronous mock backend
//! (`tests/mock`): constructors, shutdown propagation through arguments,
//! panics, parameter patterns, generic processes, registration by name, and
//! the alternation's priority, preconditions, fairness and control flow.

// The macros expand to paths under `::csp`; here that is the runtime itself.
extern crate csp_runtime as csp;

mod mock;

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use csp::registry::{self, ProcessEntry};
use csp::{EndSet, Ends, Error, Fair, Runtime, alt, process};
use mock::Mock;

type Channel<T> = csp::Channel<T, Mock>;
type Reader<T> = csp::Reader<T, Mock>;
type Writer<T> = csp::Writer<T, Mock>;

fn run_one<O: Send + 'static>(p: csp::Process<O>) -> csp::Result<Option<O>> {
    Mock::par(vec![p]).map(|mut v| v.pop().flatten())
}

// ---------------------------------------------------------------------------
// #[process]: constructors and values

static SUM_RUNS: AtomicUsize = AtomicUsize::new(0);

/// Sums `n` numbers from `input`, writes the sum to `out` and returns it.
#[process]
pub fn summer(input: Reader<u64>, out: Writer<u64>, n: usize) -> csp::Result<u64> {
    SUM_RUNS.fetch_add(1, Ordering::SeqCst);
    let mut sum = 0;
    for _ in 0..n {
        sum += input.read()?;
    }
    out.write(sum)?;
    Ok(sum)
}

#[test]
fn constructor_runs_nothing_and_running_yields_the_value() {
    let a = Channel::<u64>::buffered(4);
    let b = Channel::<u64>::buffered(1);
    for i in 1..=3 {
        a.writer().write(i).unwrap();
    }
    let before = SUM_RUNS.load(Ordering::SeqCst);
    let p: csp::Process<u64> = summer(a.reader(), b.writer(), 3);
    assert_eq!(
        SUM_RUNS.load(Ordering::SeqCst),
        before,
        "the constructor ran the body"
    );
    assert_eq!(p.name(), "summer");
    assert_eq!(run_one(p).unwrap(), Some(6));
    assert_eq!(SUM_RUNS.load(Ordering::SeqCst), before + 1);
    assert_eq!(b.reader().read().unwrap(), 6);
}

#[test]
fn return_and_question_mark_leave_the_process() {
    #[process]
    fn early(input: Reader<u64>) -> csp::Result<u64> {
        let first = input.read()?;
        if first == 0 {
            return Ok(100);
        }
        let second = input.read()?; // fails: nothing more to read
        Ok(first + second)
    }
    let c = Channel::<u64>::buffered(2);
    c.writer().write(0).unwrap();
    assert_eq!(run_one(early(c.reader())).unwrap(), Some(100));
    c.writer().write(5).unwrap();
    let err = run_one(early(c.reader())).unwrap_err();
    assert!(
        matches!(err, Error::Config(ref m) if m.contains("would block")),
        "{err:?}"
    );
    // A failure (not a shutdown) poisons the argument's channel.
    assert!(c.is_poisoned());
}

// ---------------------------------------------------------------------------
// Propagation of poison and retire through the arguments

/// A user type without `Ends`: skipped by propagation.
#[derive(Debug, Clone, PartialEq)]
struct Plain {
    n: u64,
}

/// A user type that holds an end and says so.
struct Port {
    w: Writer<u64>,
}

impl Ends for Port {
    fn collect_ends(&self, set: &mut EndSet) {
        self.w.collect_ends(set);
    }
}

#[process]
#[allow(clippy::too_many_arguments)]
fn stops_with(
    err: Error,
    a: Reader<u64>,
    many: Vec<Writer<u64>>,
    maybe: Option<Reader<u64>>,
    pair: (Writer<u64>, Plain),
    arr: [Reader<u64>; 2],
    port: Port,
    plain: Plain,
) -> csp::Result<()> {
    let _ = (&a, &many, &maybe, &pair, &arr, &port, &plain);
    Err(err)
}

struct Net {
    chans: Vec<Channel<u64>>,
}

impl Net {
    fn new() -> Self {
        Net {
            chans: (0..8).map(|_| Channel::buffered(1)).collect(),
        }
    }
    fn process(&self, err: Error) -> csp::Process<()> {
        let c = &self.chans;
        stops_with(
            err,
            c[0].reader(),
            vec![c[1].writer(), c[2].writer()],
            Some(c[3].reader()),
            (c[4].writer(), Plain { n: 1 }),
            [c[5].reader(), c[6].reader()],
            Port { w: c[7].writer() },
            Plain { n: 2 },
        )
    }
}

#[test]
fn poisoned_body_poisons_every_end_among_the_arguments() {
    let net = Net::new();
    let p = net.process(Error::Poisoned);
    assert!(net.chans.iter().all(|c| !c.is_poisoned()));
    // A process stopped by poison counts as stopped, not failed.
    assert_eq!(Mock::par(vec![p]).unwrap(), vec![None]);
    for (i, c) in net.chans.iter().enumerate() {
        assert!(c.is_poisoned(), "channel {i} was not poisoned");
    }
}

#[test]
fn retired_body_retires_every_end_among_the_arguments() {
    let net = Net::new();
    let p = net.process(Error::Retired);
    assert_eq!(Mock::par(vec![p]).unwrap(), vec![None]);
    for (i, c) in net.chans.iter().enumerate() {
        assert!(c.is_retired(), "channel {i} was not retired");
        assert!(!c.is_poisoned(), "channel {i} was poisoned");
    }
}

#[test]
fn an_end_the_body_retired_is_not_retired_twice() {
    #[process]
    fn leaves(r: Reader<u64>) -> csp::Result<()> {
        r.retire();
        Err(Error::Retired)
    }
    let c = Channel::<u64>::buffered(1);
    let other = c.reader();
    assert_eq!(run_one(leaves(c.reader())).unwrap(), None);
    // Two readers joined, one left (once): the channel is still open.
    assert!(!c.is_retired());
    other.retire();
    assert!(c.is_retired());
}

#[test]
fn a_panicking_body_is_an_error_naming_the_process_and_poisons() {
    #[process]
    fn exploder(w: Writer<u64>, backup: Option<Writer<u64>>) -> csp::Result<()> {
        let _ = (&w, &backup);
        panic!("boom {}", 42);
    }
    let a = Channel::<u64>::buffered(1);
    let b = Channel::<u64>::buffered(1);
    let err = run_one(exploder(a.writer(), Some(b.writer()))).unwrap_err();
    assert_eq!(
        err,
        Error::Panicked {
            process: "exploder".into(),
            message: "boom 42".into()
        }
    );
    assert!(a.is_poisoned() && b.is_poisoned());
}

// ---------------------------------------------------------------------------
// Parameters and generics

struct Wrapper(u64);

#[process]
fn patterns(
    (a, b): (u8, u8),
    mut n: u64,
    _: String,
    Wrapper(w): Wrapper,
    #[allow(unused_variables)] unused: bool,
) -> csp::Result<u64> {
    n += 1;
    Ok(u64::from(a) * 100 + u64::from(b) * 10 + n + w)
}

#[test]
fn parameters_may_be_patterns() {
    let p = patterns((1, 2), 3, "ignored".into(), Wrapper(1000), true);
    assert_eq!(run_one(p).unwrap(), Some(1124));
}

/// Generic over the backend, as library code is.
#[process]
fn relay<R: Runtime, T>(input: csp::Reader<T, R>, out: csp::Writer<T, R>) -> csp::Result<T>
where
    T: csp::Message + Clone,
{
    let v = input.read()?;
    out.write(v.clone())?;
    Err(Error::Poisoned)
}

#[process]
fn carry<T: Send + 'static>(x: T) -> csp::Result<T> {
    Ok(x)
}

#[test]
fn generic_process_collects_its_ends() {
    let a = Channel::<String>::buffered(1);
    let b = Channel::<String>::buffered(1);
    a.writer().write("hi".into()).unwrap();
    let p = relay(a.reader(), b.writer());
    assert_eq!(run_one(p).unwrap(), None);
    assert!(a.is_poisoned() && b.is_poisoned());
    assert_eq!(
        run_one(carry(Plain { n: 9 })).unwrap(),
        Some(Plain { n: 9 })
    );
    // Generic processes are not registered.
    assert!(registry::lookup(concat!(module_path!(), "::relay")).is_none());
    assert!(registry::lookup(concat!(module_path!(), "::carry")).is_none());
}

// ---------------------------------------------------------------------------
// Registration by name

#[process]
fn add(a: u64, b: u64) -> csp::Result<u64> {
    Ok(a + b)
}

/// Not serializable: no serde derive.
struct Opaque(u64);

#[process]
fn takes_opaque(o: Opaque) -> csp::Result<u64> {
    Ok(o.0)
}

#[process]
fn makes_opaque(n: u64) -> csp::Result<Vec<Opaque>> {
    Ok(vec![Opaque(n)])
}

mod one {
    #[csp::process]
    pub(crate) fn same() -> csp::Result<u8> {
        Ok(1)
    }
}

mod two {
    use csp::Result;

    #[csp::process]
    pub(crate) fn same() -> Result<u8> {
        Ok(2)
    }
}

fn construct_and_run(name: &str, args: &[u8]) -> csp::Result<Vec<u8>> {
    let entry = registry::lookup(name).expect("registered");
    let p = (entry.construct)(args)?;
    Ok(run_one(p)?.expect("a value"))
}

#[test]
fn a_non_generic_process_is_registered_and_runs_from_bytes() {
    let name = concat!(module_path!(), "::add");
    assert_eq!(name, "macros::add");
    let entry = registry::lookup(name).expect("add is registered");
    assert_eq!(entry.name, name);
    assert!(registry::names().contains(&name));

    let args = registry::encode_args(name, &(3u64, 4u64)).unwrap();
    let out = construct_and_run(name, &args).unwrap();
    let v: u64 = registry::decode(name, "result", &out).unwrap();
    assert_eq!(v, 7);

    // Bad bytes are an error, not a panic.
    for garbage in [
        &[][..],
        &[0xff, 0xff, 0xff][..],
        &[1][..],
        &[1, 2, 3, 4, 5][..],
    ] {
        let err = (entry.construct)(garbage).unwrap_err();
        assert!(
            matches!(&err, Error::Config(m) if m.contains("arguments") && m.contains(name)),
            "{err:?}"
        );
    }
    // Process-defined-inside-a-fn works too.
    #[process]
    fn inner_process(s: String) -> csp::Result<usize> {
        Ok(s.len())
    }
    let inner = concat!(module_path!(), "::inner_process");
    let args = registry::encode_args(inner, &(String::from("four"),)).unwrap();
    let out = construct_and_run(inner, &args).unwrap();
    assert_eq!(registry::decode::<usize>(inner, "result", &out).unwrap(), 4);
    assert_eq!(run_one(inner_process("ab".into())).unwrap(), Some(2));
}

#[test]
fn same_fn_name_in_two_modules_registers_twice() {
    let args = registry::encode_args("same", &()).unwrap();
    let one = construct_and_run("macros::one::same", &args).unwrap();
    let two = construct_and_run("macros::two::same", &args).unwrap();
    assert_eq!(registry::decode::<u8>("same", "result", &one).unwrap(), 1);
    assert_eq!(registry::decode::<u8>("same", "result", &two).unwrap(), 2);
}

#[test]
fn a_process_that_cannot_be_serialized_is_registered_but_not_constructible() {
    for (name, args) in [
        (
            concat!(module_path!(), "::takes_opaque"),
            registry::encode_args("x", &(1u64,)).unwrap(),
        ),
        (
            concat!(module_path!(), "::makes_opaque"),
            registry::encode_args("x", &(1u64,)).unwrap(),
        ),
    ] {
        let entry = registry::lookup(name).expect("registered anyway");
        let err = (entry.construct)(&args).unwrap_err();
        assert_eq!(
            err,
            Error::Config(format!(
                "process {name} cannot run in another OS process: \
                 its arguments or result are not serializable Messages"
            ))
        );
    }
    // Locally they run as usual.
    assert_eq!(run_one(takes_opaque(Opaque(5))).unwrap(), Some(5));
    assert_eq!(run_one(makes_opaque(6)).unwrap().unwrap()[0].0, 6);
}

#[test]
fn a_channel_end_argument_decodes_to_a_clear_error() {
    #[process]
    fn reads(r: Reader<u64>) -> csp::Result<u64> {
        r.read()
    }
    // Ends claim to be Messages, but cannot cross OS processes on this
    // backend: encoding them fails, and so does decoding.
    let c = Channel::<u64>::buffered(1);
    let enc = registry::encode_args("reads", &(c.reader(),)).unwrap_err();
    assert!(matches!(&enc, Error::Config(m) if m.contains("arguments of process 'reads'")));
    let entry = registry::lookup(concat!(module_path!(), "::reads")).unwrap();
    assert!((entry.construct)(&[0]).is_err());
}

#[test]
fn duplicate_names_do_not_panic() {
    fn first() -> csp::Process<u8> {
        #[process]
        fn dup() -> csp::Result<u8> {
            Ok(1)
        }
        dup()
    }
    fn second() -> csp::Process<u8> {
        #[process]
        fn dup() -> csp::Result<u8> {
            Ok(2)
        }
        dup()
    }
    let name = concat!(module_path!(), "::dup");
    assert_eq!(registry::names().iter().filter(|n| **n == name).count(), 1);
    assert!(registry::lookup(name).is_some());
    assert_eq!(run_one(first()).unwrap(), Some(1));
    assert_eq!(run_one(second()).unwrap(), Some(2));
}

#[test]
fn registry_hash_is_stable_and_follows_the_names() {
    let h1 = registry::registry_hash();
    assert_eq!(h1, registry::registry_hash());
    fn nothing(_: &[u8]) -> csp::Result<csp::Process<Vec<u8>>> {
        Err(Error::config("nothing"))
    }
    fn something(_: &[u8]) -> csp::Result<csp::Process<Vec<u8>>> {
        Err(Error::config("something"))
    }
    let entry = ProcessEntry {
        name: "macros::registered_by_hand",
        construct: nothing,
    };
    registry::register(entry).unwrap();
    let h2 = registry::registry_hash();
    assert_ne!(h1, h2);
    // Registering the same entry again changes nothing.
    registry::register(entry).unwrap();
    assert_eq!(h2, registry::registry_hash());
    // Another constructor under a taken name is refused, by hand or by macro.
    for name in ["macros::registered_by_hand", "macros::add"] {
        let err = registry::register(ProcessEntry {
            name,
            construct: something,
        })
        .unwrap_err();
        assert!(
            matches!(&err, Error::Config(m) if m.contains(name)),
            "{err:?}"
        );
    }
    // The registered entry is found after the link-time ones.
    let found = registry::lookup("macros::registered_by_hand").unwrap();
    assert!((found.construct)(&[]).is_err());
}

// ---------------------------------------------------------------------------
// alt!

fn filled(values: &[u64]) -> Channel<u64> {
    let c = Channel::buffered(values.len().max(1));
    let w = c.writer();
    for &v in values {
        w.write(v).unwrap();
    }
    c
}

#[test]
fn alt_is_a_priority_select() {
    let a = filled(&[1, 2]);
    let b = filled(&[10, 20]);
    let (ra, rb) = (a.reader(), b.reader());
    let got = alt! {
        read(ra) -> x => ("a", x),
        read(rb) -> y => ("b", y),
    };
    assert_eq!(got, Ok(("a", 1)));
    let got = alt! {
        read(rb) -> y => ("b", y),
        read(ra) -> x => ("a", x),
    };
    assert_eq!(got, Ok(("b", 10)));
    // An empty channel is passed over; skip wins only when nothing before it is ready.
    let empty = Channel::<u64>::buffered(1);
    let re = empty.reader();
    let got = alt! {
        read(re) -> x => x,
        skip => 0,
        read(ra) -> x => x,
    };
    assert_eq!(got, Ok(0));
    let got = alt! {
        read(&re) -> x => x,
        read(&ra) -> x => x,
        skip => 0,
    };
    assert_eq!(got, Ok(2));
    let got = alt! {
        read(re) -> x => Some(x),
        timeout(Duration::from_secs(1)) => None,
    };
    assert_eq!(got, Ok(None));
}

#[test]
fn alt_preconditions_leave_guards_out() {
    let a = filled(&[1]);
    let b = filled(&[2]);
    let (ra, rb) = (a.reader(), b.reader());
    let evaluated = Cell::new(0);
    let count = |v: u64| {
        evaluated.set(evaluated.get() + 1);
        v
    };
    let readers = [a.reader()];
    let open = false;
    let w = a.writer();
    let got = alt! {
        read(readers[5]) -> x if open => x, // not evaluated: no out-of-bounds panic
        write(w, count(7)) if open => 7,
        read(ra) -> x if 1 > 2 => x,
        read(rb) -> y if true => y,
    };
    assert_eq!(got, Ok(2));
    assert_eq!(
        evaluated.get(),
        0,
        "the value of a left-out write was evaluated"
    );
    // The left-out read did not consume a's message.
    assert_eq!(ra.read(), Ok(1));
    let got = alt! {
        skip if open => 0,
        timeout(Duration::ZERO) if open => 1,
        write(w, count(3)) if !open => 3,
    };
    assert_eq!(got, Ok(3));
    assert_eq!(evaluated.get(), 1);
    assert_eq!(ra.read(), Ok(3));
}

#[test]
fn alt_read_each_gives_the_index() {
    let chans: Vec<Channel<u64>> = vec![filled(&[]), filled(&[]), filled(&[42])];
    let readers: Vec<Reader<u64>> = chans.iter().map(Channel::reader).collect();
    let other = filled(&[]);
    let ro = other.reader();
    let got = alt! {
        read(ro) -> x => (usize::MAX, x),
        read_each(readers) -> (i, v) => (i, v),
    };
    assert_eq!(got, Ok((2, 42)));
    let got = alt! {
        read_each(&readers[..2]) -> (i, v) if true => Some((i, v)),
        skip => None,
    };
    assert_eq!(got, Ok(None));
}

#[test]
fn alt_write_guard_sends_and_a_temporary_end_works() {
    let c = Channel::<u64>::buffered(1);
    let got = alt! {
        write(c.writer(), 5) => "sent",
    };
    assert_eq!(got, Ok("sent"));
    // Full now: the write guard is not ready; a temporary reader reads.
    let got = alt! {
        write(c.writer(), 6) => None,
        read(c.reader()) -> x if true => Some(x),
    };
    assert_eq!(got, Ok(Some(5)));
}

fn fails(x: u64) -> csp::Result<u64> {
    if x == 13 { Err(Error::Timeout) } else { Ok(x) }
}

fn sum_until_zero(r: &Reader<u64>) -> csp::Result<u64> {
    let mut total = 0;
    let mut skipped = 0;
    loop {
        let n = alt! {
            read(r) -> x => {
                if x == 0 {
                    break;
                }
                if x == 99 {
                    return Ok(99);
                }
                if x == 7 {
                    continue;
                }
                fails(x)?
            }
            skip => {
                skipped += 1;
                if skipped > 3 {
                    return Ok(u64::MAX);
                }
                continue;
            }
        }?;
        total += n;
    }
    Ok(total)
}

#[test]
fn alt_bodies_act_on_the_caller() {
    let c = filled(&[1, 7, 2, 0, 5]);
    assert_eq!(sum_until_zero(&c.reader()), Ok(3));
    let c = filled(&[1, 99, 2]);
    assert_eq!(sum_until_zero(&c.reader()), Ok(99));
    let c = filled(&[1, 13, 2]);
    assert_eq!(sum_until_zero(&c.reader()), Err(Error::Timeout));
    let c = filled(&[]);
    assert_eq!(sum_until_zero(&c.reader()), Ok(u64::MAX));
    // A poisoned channel fails the select itself.
    let c = filled(&[1]);
    c.poison();
    assert_eq!(sum_until_zero(&c.reader()), Err(Error::Poisoned));
}

#[test]
fn alt_fair_rotates_among_ready_guards() {
    let a = filled(&[0; 6]);
    let b = filled(&[0; 6]);
    let (ra, rb) = (a.reader(), b.reader());
    let mut fair = Fair::new();
    let mut picks = String::new();
    for _ in 0..6 {
        let p = alt! {
            fair(&mut fair),
            read(ra) -> _x => 'a',
            skip => 's',
            read(rb) -> _y => 'b',
        }
        .unwrap();
        picks.push(p);
    }
    assert_eq!(picks, "ababab");
    assert_eq!(fair.counts()[0] + fair.counts()[2], 6);
    // Priority select on the same guards always picks the first.
    let mut picks = String::new();
    for _ in 0..3 {
        picks.push(
            alt! {
                read(ra) -> _x => 'a',
                read(rb) -> _y => 'b',
            }
            .unwrap(),
        );
    }
    assert_eq!(picks, "aaa");
}

#[process]
fn merger(inputs: Vec<Reader<u64>>, control: Reader<bool>, out: Writer<u64>) -> csp::Result<u64> {
    let mut fair = Fair::new();
    let mut total = 0;
    loop {
        alt! {
            fair(&mut fair),
            read(control) -> stop if true => if stop { break },
            read_each(inputs) -> (_i, v) => {
                total += v;
                // A nested alt in a body.
                alt! { write(out, v) => (), skip => () }?;
            }
            skip => break,
        }?;
    }
    Ok(total)
}

#[test]
fn alt_inside_a_process() {
    let ins = [filled(&[1, 2]), filled(&[3])];
    let control = Channel::<bool>::buffered(1);
    let out = Channel::<u64>::buffered(1);
    let p = merger(
        ins.iter().map(Channel::reader).collect(),
        control.reader(),
        out.writer(),
    );
    assert_eq!(run_one(p).unwrap(), Some(6));
    assert_eq!(out.reader().read(), Ok(1));
}

#[test]
fn alt_with_only_write_guards_infers_the_backend() {
    let c = Channel::<u64>::buffered(2);
    let w = c.writer();
    let n = alt! { write(w, 1) => 1, write(w, 2) => 2 }.unwrap();
    assert_eq!(n, 1);
    let r = c.reader();
    assert_eq!(r.read(), Ok(1));
}
