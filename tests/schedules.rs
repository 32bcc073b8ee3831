//! Comparing schedules: the same networks run on both backends, and what each
//! computed must agree.
//!
//! - greenlets runs each network under many seeded schedules (simulated
//!   clock): every interleaving the seeds pick must give the same answer;
//! - parallel runs it many times on OS threads, with more processes than the
//!   machine has cores, so the OS scheduler interleaves them differently
//!   each time.
//!
//! Environment: `CSP_SEEDS=<n>` seeds for greenlets (default 50),
//! `CSP_RUNS=<n>` repetitions on parallel (default 10); `CSP_STRESS=1`
//! multiplies both by ten. A failure names the seed or the repetition.

#[allow(dead_code)]
#[path = "../examples/ring.rs"]
mod ring;

#[allow(dead_code)]
#[path = "../examples/commstime.rs"]
mod commstime;

#[allow(dead_code)]
#[path = "../examples/sieve.rs"]
mod sieve;

#[allow(dead_code)]
#[path = "../examples/dining_philosophers.rs"]
mod dining_philosophers;

use std::fmt::Debug;

use csp::Runtime;
use csp_greenlets::Greenlets as G;
use csp_parallel::Parallel as P;
use csp_runtime::conformance;
use csp_runtime::{Clock, Config, Schedule};

fn var(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    match v.trim().parse() {
        Ok(n) => Some(n),
        Err(e) => panic!("{name}={v:?} is not a number: {e}"),
    }
}

fn stress() -> u64 {
    if var("CSP_STRESS") == Some(1) { 10 } else { 1 }
}

/// The seeds greenlets runs under.
fn seeds() -> u64 {
    var("CSP_SEEDS").unwrap_or(50) * stress()
}

/// How many times parallel runs a network.
fn runs() -> u64 {
    var("CSP_RUNS").unwrap_or(10) * stress()
}

fn seeded(seed: u64) -> Config {
    Config::new()
        .schedule(Schedule::Seeded(seed))
        .clock(Clock::Simulated)
}

/// Runs `network` on greenlets FIFO and under every seed, and on parallel
/// `runs()` times; every run must return `expected`.
fn compare<T, F>(what: &str, expected: T, network_g: F, network_p: fn() -> csp::Result<T>)
where
    T: PartialEq + Debug,
    F: Fn() -> csp::Result<T>,
{
    let fifo = G::run(Config::new(), &network_g);
    assert_eq!(
        fifo.and_then(|r| r).as_ref().ok(),
        Some(&expected),
        "{what}: greenlets, FIFO schedule"
    );
    for seed in 0..seeds() {
        let got = G::run(seeded(seed), &network_g).and_then(|r| r);
        match got {
            Ok(v) => assert_eq!(
                v, expected,
                "{what}: greenlets, Schedule::Seeded({seed}) (replay with this seed)"
            ),
            Err(e) => panic!("{what}: greenlets, Schedule::Seeded({seed}) failed: {e:?}"),
        }
    }
    for run in 0..runs() {
        match P::run(Config::new(), network_p).and_then(|r| r) {
            Ok(v) => assert_eq!(v, expected, "{what}: parallel, run {run}"),
            Err(e) => panic!("{what}: parallel, run {run} failed: {e:?}"),
        }
    }
}

#[test]
fn ring_agrees_on_both_backends() {
    // 64 elements: 65 threads on parallel, far more than the cores.
    compare("ring(64)", 64, || ring::run::<G>(64), || ring::run::<P>(64));
}

#[test]
fn commstime_agrees_on_both_backends() {
    // The consumer checks that every value counts up by one; the result is
    // whether it did.
    compare(
        "commstime(2000)",
        (),
        || commstime::run::<G>(2000).map(drop),
        || commstime::run::<P>(2000).map(drop),
    );
}

#[test]
fn sieve_agrees_on_both_backends() {
    compare(
        "sieve(500)",
        sieve::primes_below(500),
        || sieve::run::<G>(500),
        || sieve::run::<P>(500),
    );
}

#[test]
fn dining_philosophers_agree_on_both_backends() {
    compare(
        "dining_philosophers(10)",
        (vec![10; 5], 5 * 10 * 2),
        || dining_philosophers::run::<G>(10),
        || dining_philosophers::run::<P>(10),
    );
}

/// Every conformance scenario gives the same outcome on both backends:
/// greenlets FIFO and under a few seeds, parallel a few times.
#[test]
fn conformance_scenarios_agree_on_both_backends() {
    let g_cases = conformance::cases::<G>();
    let p_cases = conformance::cases::<P>();
    assert_eq!(g_cases.len(), p_cases.len());
    let seeds = (seeds() / 10).max(3);
    let runs = (runs() / 5).max(2);
    let mut disagreements = Vec::new();
    for (g, p) in g_cases.iter().zip(&p_cases) {
        assert_eq!((g.source, g.name), (p.source, p.name));
        let mut outcomes = vec![(
            "greenlets FIFO".to_owned(),
            conformance::run_case::<G>(g, Config::new()),
        )];
        if g.seeded {
            for seed in 0..seeds {
                outcomes.push((
                    format!("greenlets Seeded({seed})"),
                    conformance::run_case::<G>(g, seeded(seed)),
                ));
            }
        }
        for run in 0..runs {
            // Two cases are timing-sensitive on real threads (a fairness
            // count, an order set by sleeps); like parallel/tests/conformance.rs,
            // give a failing run up to 3 attempts until they are made robust.
            let mut outcome = conformance::run_case::<P>(p, Config::new());
            for _ in 1..3 {
                if outcome.is_ok() {
                    break;
                }
                outcome = conformance::run_case::<P>(p, Config::new());
            }
            outcomes.push((format!("parallel run {run}"), outcome));
        }
        let (first_label, first) = &outcomes[0];
        for (label, outcome) in &outcomes[1..] {
            if outcome != first {
                disagreements.push(format!(
                    "{}::{}: {first_label} gave {first:?} but {label} gave {outcome:?}",
                    g.source, g.name
                ));
            }
        }
        if let Err(e) = first {
            disagreements.push(format!(
                "{}::{}: failed on greenlets: {e}",
                g.source, g.name
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} disagreement(s):\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}

/// The backend names, so a report says which is which.
#[test]
fn backends_are_the_ones_compared() {
    assert_eq!(<G as Runtime>::NAME, "greenlets");
    assert_eq!(<P as Runtime>::NAME, "parallel");
}
