//! The ring of the paper "Scaling PyCSP" (Listing 3): N element processes
//! pass a token around, each adding one; the connection process injects 0,
//! prints what comes back (N) and poisons the ring, which shuts it down.
//!
//! `cargo run --release --example ring -- [N]` (default 1000)

//!
//! The network is generic over the backend `R`, so the tests run it on both
//! greenlets and parallel; `main` runs it on the backend the features chose.

use csp::runtime::{Channel, Reader, Writer};
use csp::{Runtime, process};

#[process]
fn element<R: Runtime>(this_read: Reader<u64, R>, next_write: Writer<u64, R>) -> csp::Result<()> {
    // Loop until poisoned: `?` returns Poisoned, and #[process] then poisons
    // both ends, so the poison travels around the ring.
    loop {
        let token = this_read.read()?;
        next_write.write(token + 1)?;
    }
}

#[process]
fn connection<R: Runtime>(
    value: u64,
    chan_out: Writer<u64, R>,
    chan_result: Reader<u64, R>,
) -> csp::Result<u64> {
    chan_out.write(value)?;
    let result = chan_result.read()?;
    println!("the token came back as {result}");
    // Poison the element processes.
    chan_out.poison();
    Ok(result)
}

/// Runs a ring of `n` elements; returns the value the token came back with.
pub(crate) fn run<R: Runtime>(n: u64) -> csp::Result<u64> {
    let head = Channel::<u64, R>::new();
    let mut current = head.clone();
    let mut ring = Vec::new();
    for _ in 0..n {
        let next = Channel::new();
        ring.push(element(current.reader(), next.writer()));
        current = next;
    }
    let elements = csp::Process::new("ring", move || R::par(ring).map(|_| ()));
    let (result, _) = csp::runtime::par_tuple::<R, _>((
        connection(0, head.writer(), current.reader()),
        elements,
    ))?;
    result.ok_or_else(|| csp::Error::config("the connection process did not finish"))
}

fn main() -> csp::Result<()> {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let t = std::time::Instant::now();
    let result = run::<csp::Backend>(n)?;
    println!("{n} processes in {:?}", t.elapsed());
    assert_eq!(result, n, "each of the {n} elements adds one");
    Ok(())
}
