//! The comparison harness of the parallel backend: each scenario beside the
//! same scenario on `crossbeam-channel` (its `bounded(0)`, a rendezvous
//! channel), measured in the same run, in interleaved rounds (round k of every
//! scenario, then round k + 1), so a slow stretch of the machine hits ours and
//! the baseline alike. Figures are medians; ratios are medians of the
//! per-round ratios.
//!
//! `cargo bench --bench parallel` (about a minute).
//!
//! Targets (issue 3): ping-pong between two threads ≤ 1.3× crossbeam's time.
//! Commstime and 16 writers × 16 readers on one channel are reported beside
//! crossbeam with no target.
//!
//! For profiling: `parallel --only <scenario> <ops>` runs one scenario once
//! (`ping-pong`, `cb-ping-pong`, `commstime`, `cb-commstime`, `mpmc`,
//! `cb-mpmc`).

mod common;

use common::table::{Row, Scenario, measure, print_table, same_rounds};
use common::threads;

/// Repetitions of each measurement (the median is reported).
const REPS: usize = 9;
/// Writers and readers on the one channel of the mpmc scenario.
const SIDES: u64 = 16;

fn only(name: &str, ops: u64) {
    let el = match name {
        "ping-pong" => threads::ping_pong(ops),
        "cb-ping-pong" => threads::cb_ping_pong(ops),
        "commstime" => threads::commstime(ops),
        "cb-commstime" => threads::cb_commstime(ops),
        "mpmc" => threads::mpmc(SIDES, SIDES, ops / SIDES),
        "cb-mpmc" => threads::cb_mpmc(SIDES, SIDES, ops / SIDES),
        other => {
            eprintln!("unknown scenario {other:?}");
            std::process::exit(2);
        }
    };
    println!(
        "{name}: {ops} ops in {el:?}: {:.1} ns/op",
        el.as_nanos() as f64 / ops as f64
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--only") {
        let name = args.get(i + 1).map_or("", String::as_str);
        let ops = args
            .get(i + 2)
            .and_then(|s| s.parse().ok())
            .unwrap_or(1_000_000);
        only(name, ops);
        return;
    }
    // `cargo bench` passes `--bench`; any other run (e.g. `cargo test
    // --benches`) only checks that the scenarios work, with small sizes.
    let quick = !args.iter().any(|a| a == "--bench");
    let scale = if quick { 100 } else { 1 };
    let reps = if quick { 1 } else { REPS };

    println!(
        "csp parallel vs crossbeam-channel: median of {reps} interleaved rounds ({} cores)",
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    let mpmc_msgs = 320_000 / scale;
    let scenarios = [
        Scenario::new(200_000 / scale, threads::ping_pong),
        Scenario::new(200_000 / scale, threads::cb_ping_pong),
        Scenario::new(100_000 / scale, threads::commstime),
        Scenario::new(100_000 / scale, threads::cb_commstime),
        Scenario::new(mpmc_msgs, |n| threads::mpmc(SIDES, SIDES, n / SIDES)),
        Scenario::new(mpmc_msgs, |n| threads::cb_mpmc(SIDES, SIDES, n / SIDES)),
    ];
    let [ping, cb_ping, comms, cb_comms, mpmc, cb_mpmc] =
        match <[_; 6]>::try_from(measure(&scenarios, reps)) {
            Ok(a) => a,
            Err(_) => unreachable!("one Stats per scenario"),
        };
    let rows = vec![
        Row::new(
            "ping-pong, 2 threads (per round trip)",
            &ping,
            "ns",
            "crossbeam bounded(0)",
            same_rounds(&ping, &cb_ping, 1.0),
            Some(1.3 * cb_ping.median),
            0,
        ),
        Row::new(
            "commstime, 4 threads (per loop)",
            &comms,
            "ns",
            "crossbeam bounded(0)",
            same_rounds(&comms, &cb_comms, 1.0),
            None,
            0,
        ),
        Row::new(
            "16 writers × 16 readers, one channel (per message)",
            &mpmc,
            "ns",
            "crossbeam bounded(0)",
            same_rounds(&mpmc, &cb_mpmc, 1.0),
            None,
            0,
        ),
    ];
    println!();
    print_table(&rows);
    println!();
    println!(
        "16 × 16: ours {:.2} M messages/s, crossbeam {:.2} M messages/s",
        1e3 / mpmc.median,
        1e3 / cb_mpmc.median
    );
    println!("ping-pong target: ≤ 1.3× crossbeam's time (the row's target column)");
}
