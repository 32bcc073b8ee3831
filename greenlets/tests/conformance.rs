//! The conformance suite of `csp_runtime::conformance`, run on greenlets.
//!
//! One test per (source module × schedule):
//!
//! - `<source>_fifo`: every case of the module once, FIFO schedule, real clock;
//! - `<source>_seeded`: every seeded case of the module under seeds `0..N`,
//!   seeded schedule (`Schedule::Seeded(seed)`), simulated clock.
//!
//! Environment:
//!
//! - `CSP_SEEDS=<n>`: run the seeded tests under seeds `0..n` (default 200);
//! - `CSP_STRESS=1`: seeds `0..2000` (unless `CSP_SEEDS` is set);
//! - `CSP_SEED=<n>`: only seed `n` (to replay a failure: the failure line
//!   says `replay with CSP_SEED=n`), e.g.
//!   `CSP_SEED=17 cargo test -p csp-greenlets --test conformance rules_seeded`.

use csp_greenlets::Greenlets as G;
use csp_runtime::conformance::{self, Case, SOURCES};
use csp_runtime::{Clock, Config, Schedule};

/// The seeds the seeded tests run under.
fn seeds() -> Vec<u64> {
    fn var(name: &str) -> Option<u64> {
        let v = std::env::var(name).ok()?;
        match v.trim().parse() {
            Ok(n) => Some(n),
            Err(e) => panic!("{name}={v:?} is not a number: {e}"),
        }
    }
    if let Some(seed) = var("CSP_SEED") {
        return vec![seed];
    }
    let n = var("CSP_SEEDS").unwrap_or(if var("CSP_STRESS") == Some(1) {
        2000
    } else {
        200
    });
    (0..n).collect()
}

fn cases_of(source: &str) -> Vec<Case> {
    conformance::cases::<G>()
        .into_iter()
        .filter(|c| c.source == source)
        .collect()
}

fn fifo(source: &str) {
    let cases = cases_of(source);
    match conformance::run_cases::<G>(&cases, |_| vec![Config::new()]) {
        Ok(runs) => eprintln!("{source}: {runs} runs passed (FIFO, real clock)"),
        Err(report) => panic!("{report}"),
    }
}

fn seeded(source: &str) {
    let cases = cases_of(source);
    let seeds = seeds();
    let configs: Vec<Config> = seeds
        .iter()
        .map(|&s| {
            Config::new()
                .schedule(Schedule::Seeded(s))
                .clock(Clock::Simulated)
        })
        .collect();
    let result = conformance::run_cases::<G>(&cases, |case| {
        if case.seeded {
            configs.clone()
        } else {
            Vec::new()
        }
    });
    match result {
        Ok(runs) => eprintln!(
            "{source}: {runs} runs passed ({} seeds, simulated clock)",
            seeds.len()
        ),
        Err(report) => panic!("{report}"),
    }
}

#[test]
fn every_case_is_in_a_tested_source_and_named_once() {
    let all = conformance::cases::<G>();
    let mut names: Vec<(&str, &str)> = all.iter().map(|c| (c.source, c.name)).collect();
    for c in &all {
        assert!(
            SOURCES.contains(&c.source),
            "case {} has source {} which no test here runs",
            c.name,
            c.source
        );
        assert!(
            !c.origin.is_empty(),
            "case {} says nothing of its origin",
            c.name
        );
    }
    names.sort_unstable();
    let n = names.len();
    names.dedup();
    assert_eq!(n, names.len(), "two cases share a name");
}

#[test]
fn pycsp_fifo() {
    fifo("pycsp");
}

#[test]
fn pycsp_seeded() {
    seeded("pycsp");
}

#[test]
fn golang_fifo() {
    fifo("golang");
}

#[test]
fn golang_seeded() {
    seeded("golang");
}

#[test]
fn rules_fifo() {
    fifo("rules");
}

#[test]
fn rules_seeded() {
    seeded("rules");
}

#[test]
fn deadlock_fifo() {
    fifo("deadlock");
}

#[test]
fn deadlock_seeded() {
    seeded("deadlock");
}
