//! The concurrent prime sieve: a growing pipeline of filter processes. Each
//! filter keeps the first number it receives as its prime, spawns the next
//! filter on a new channel, and passes on only the numbers its prime does not
//! divide. (PyCSP's `Sieve.py`; the same program is the classic Go example.)
//!
//! `cargo run --release --example sieve -- [limit]` (default 2000: 303 primes)

use csp::runtime::{Channel, Reader, Writer};
use csp::{Runtime, process};

#[process]
fn numbers<R: Runtime>(out: Writer<u64, R>, limit: u64) -> csp::Result<()> {
    for n in 2..limit {
        out.write(n)?;
    }
    // Poison after the last number: every number written was taken by the
    // first filter (a rendezvous), so nothing is lost.
    out.poison();
    Ok(())
}

#[process]
fn filter<R: Runtime>(input: Reader<u64, R>, primes: Writer<u64, R>) -> csp::Result<()> {
    // The last filter gets no prime: its read fails with Poisoned, and
    // returning that poisons its arguments, `primes` included, which ends
    // the collector after the last prime.
    let prime = input.read()?;
    primes.write(prime)?;
    let next = Channel::<u64, R>::new();
    R::spawn(filter(next.reader(), primes.clone()))?;
    let out = next.writer();
    loop {
        let n = match input.read() {
            Ok(n) => n,
            Err(e) if e.is_shutdown() => {
                // Pass the shutdown down the pipeline and end quietly: the
                // primes channel must stay open for the filters after us.
                out.poison();
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        if n % prime != 0 {
            out.write(n)?;
        }
    }
}

#[process]
fn collect<R: Runtime>(primes: Reader<u64, R>) -> csp::Result<Vec<u64>> {
    let mut got = Vec::new();
    loop {
        match primes.read() {
            Ok(p) => got.push(p),
            Err(e) if e.is_shutdown() => return Ok(got),
            Err(e) => return Err(e),
        }
    }
}

/// Runs the sieve on the numbers below `limit` on backend `R`; returns the
/// primes found, in order.
pub(crate) fn run<R: Runtime>(limit: u64) -> csp::Result<Vec<u64>> {
    let (nums, primes) = (Channel::<u64, R>::new(), Channel::<u64, R>::new());
    let (_, _, got) = csp::runtime::par_tuple::<R, _>((
        numbers(nums.writer(), limit),
        filter(nums.reader(), primes.writer()),
        collect(primes.reader()),
    ))?;
    Ok(got.unwrap_or_default())
}

/// The primes below `limit`, by trial division, to check the sieve against.
pub(crate) fn primes_below(limit: u64) -> Vec<u64> {
    (2..limit)
        .filter(|&n| (2..n).take_while(|d| d * d <= n).all(|d| n % d != 0))
        .collect()
}

fn main() -> csp::Result<()> {
    let limit: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let got = run::<csp::Backend>(limit)?;
    println!(
        "{} primes below {limit}; the last is {:?}",
        got.len(),
        got.last()
    );
    assert_eq!(
        got,
        primes_below(limit),
        "the sieve must find exactly the primes, in order"
    );
    println!("all {} primes checked against trial division", got.len());
    Ok(())
}
