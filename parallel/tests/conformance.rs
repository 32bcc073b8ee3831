//! The conformance suite of `csp_runtime::conformance`, run on the parallel
//! backend.
//!
//! One test per source module: every case of the module, `Config::new()`
//! (real clock; the OS schedules the threads), repeated to shake out races:
//!
//! - by default each case runs 3 times;
//! - `CSP_STRESS=1`: 200 times;
//! - `CSP_REPEAT=<n>`: `n` times (overrides both), e.g.
//!   `CSP_REPEAT=1000 cargo test -p csp-parallel --release --test conformance rules`.
//!
//! The deadlock cases return at once on this backend (only greenlets detects
//! deadlocks), except those that check that something is *not* a deadlock.

use std::sync::{Mutex, PoisonError};

use csp_parallel::Parallel as P;
use csp_runtime::Config;
use csp_runtime::conformance::{self, Case, SOURCES};

/// How many times each case runs.
fn repeats() -> usize {
    fn var(name: &str) -> Option<usize> {
        let v = std::env::var(name).ok()?;
        match v.trim().parse() {
            Ok(n) => Some(n),
            Err(e) => panic!("{name}={v:?} is not a number: {e}"),
        }
    }
    var("CSP_REPEAT").unwrap_or(if var("CSP_STRESS") == Some(1) { 200 } else { 3 })
}

fn cases_of(source: &str) -> Vec<Case> {
    conformance::cases::<P>()
        .into_iter()
        .filter(|c| c.source == source)
        .collect()
}

/// The sources run one at a time: a few cases (`select_fair_processes`,
/// `fifo_queued_writers`) measure how threads share the CPUs, and the test
/// harness would otherwise run the four sources' networks at once on a
/// machine that may have two cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn run(source: &str) {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let cases = cases_of(source);
    assert!(!cases.is_empty(), "no cases from source {source}");
    let n = repeats();
    let start = std::time::Instant::now();
    match conformance::run_cases::<P>(&cases, |_| vec![Config::new(); n]) {
        Ok(runs) => eprintln!(
            "{source}: {runs} runs of {} cases passed ({n} each) in {:?}",
            cases.len(),
            start.elapsed()
        ),
        Err(report) => panic!("{report}"),
    }
}

#[test]
fn every_case_is_in_a_tested_source() {
    let all = conformance::cases::<P>();
    assert!(all.len() >= 98, "only {} cases", all.len());
    for c in &all {
        assert!(
            SOURCES.contains(&c.source),
            "case {} has source {} which no test here runs",
            c.name,
            c.source
        );
    }
}

#[test]
fn pycsp() {
    run("pycsp");
}

#[test]
fn golang() {
    run("golang");
}

#[test]
fn rules() {
    run("rules");
}

#[test]
fn deadlock() {
    run("deadlock");
}
