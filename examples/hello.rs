//! Two processes and a channel: the smallest CSP network.
//!
//! `cargo run --release --example hello`

use csp::{Channel, Reader, Writer, process};

#[process]
fn greeter(out: Writer<String>) -> csp::Result<()> {
    out.write("Hello from a CSP process".to_owned())?;
    out.retire();
    Ok(())
}

#[process]
fn printer(input: Reader<String>) -> csp::Result<usize> {
    let mut lines = 0;
    loop {
        match input.read() {
            Ok(line) => {
                println!("{line}");
                lines += 1;
            }
            // The greeter retired its end: no more messages will come.
            Err(csp::Error::Retired) => return Ok(lines),
            Err(e) => return Err(e),
        }
    }
}

/// Runs the network; returns how many lines the printer received.
pub(crate) fn run() -> csp::Result<usize> {
    let c = Channel::named("greetings");
    let (_, lines) = csp::par!(greeter(c.writer()), printer(c.reader()))?;
    Ok(lines.unwrap_or(0))
}

fn main() -> csp::Result<()> {
    let lines = run()?;
    println!("printer received {lines} line(s)");
    assert_eq!(lines, 1);
    Ok(())
}
