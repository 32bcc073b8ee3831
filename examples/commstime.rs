//! Commstime, the classic CSP benchmark: a prefix, a delta, a successor and a
//! consumer in a loop. Each loop is four channel communications; the time per
//! loop is the cost of a context switch plus a rendezvous, four times over.
//!
//! `cargo run --release --example commstime -- [loops] [runs]` (default 1 000 000 loops, 3 runs)

use std::time::{Duration, Instant};

use csp::runtime::{Channel, Reader, Writer};
use csp::{Runtime, process};

#[process]
fn prefix<R: Runtime>(first: u64, input: Reader<u64, R>, out: Writer<u64, R>) -> csp::Result<()> {
    out.write(first)?;
    loop {
        out.write(input.read()?)?;
    }
}

/// Copies its input to both outputs, one after the other.
#[process]
fn delta<R: Runtime>(
    input: Reader<u64, R>,
    out_a: Writer<u64, R>,
    out_b: Writer<u64, R>,
) -> csp::Result<()> {
    loop {
        let v = input.read()?;
        out_a.write(v)?;
        out_b.write(v)?;
    }
}

#[process]
fn successor<R: Runtime>(input: Reader<u64, R>, out: Writer<u64, R>) -> csp::Result<()> {
    loop {
        out.write(input.read()? + 1)?;
    }
}

/// Reads `loops` values, checks they count up, then poisons the network.
#[process]
fn consumer<R: Runtime>(input: Reader<u64, R>, loops: u64) -> csp::Result<Duration> {
    let first = input.read()?;
    let start = Instant::now();
    for i in 1..=loops {
        let v = input.read()?;
        if v != first + i {
            return Err(csp::Error::config(format!(
                "expected {} got {v}",
                first + i
            )));
        }
    }
    let elapsed = start.elapsed();
    input.poison();
    Ok(elapsed)
}

/// Runs commstime for `loops` loops on backend `R`; returns the time the
/// consumer measured.
pub(crate) fn run<R: Runtime>(loops: u64) -> csp::Result<Duration> {
    let (a, b, c, d) = (
        Channel::<u64, R>::named("a"),
        Channel::named("b"),
        Channel::named("c"),
        Channel::named("d"),
    );
    let (_, _, _, elapsed) = csp::runtime::par_tuple::<R, _>((
        prefix(0, c.reader(), a.writer()),
        delta(a.reader(), b.writer(), d.writer()),
        successor(b.reader(), c.writer()),
        consumer(d.reader(), loops),
    ))?;
    elapsed.ok_or_else(|| csp::Error::config("the consumer did not finish"))
}

fn main() -> csp::Result<()> {
    let mut args = std::env::args().skip(1);
    let loops: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let runs: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    for r in 1..=runs {
        let elapsed = run::<csp::Backend>(loops)?;
        let per_loop = elapsed.as_nanos() as f64 / loops as f64;
        println!(
            "run {r}: {loops} loops in {elapsed:?}: {per_loop:.1} ns per loop, {:.1} ns per communication",
            per_loop / 4.0
        );
    }
    println!("consumer done, network poisoned and shut down");
    Ok(())
}
