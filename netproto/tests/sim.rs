//! The protocol in a simulated network: thousands of seeded scenarios
//! (nodes, channels homed at different nodes, reads, writes, Alts across
//! homes, poison, retire, become-home, crashes), invariants checked after
//! every step (see `csp_netproto::sim`).
//!
//! `CSP_SEED=n` replays one seed; `CSP_STRESS=1` runs many more seeds;
//! `CSP_SEEDS=n` sets how many.

use csp_netproto::sim::{Config, Sim, Stats};

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|s| s.trim().parse().ok())
}

/// Runs the seeds `first..first + count` (or just `CSP_SEED`), failing with
/// the first violation's report.
fn run_seeds(first: u64, default_count: u64, cfg: &Config) -> Stats {
    let seeds: Vec<u64> = match env_u64("CSP_SEED") {
        Some(seed) => vec![seed],
        None => {
            let count =
                env_u64("CSP_SEEDS").unwrap_or(if std::env::var_os("CSP_STRESS").is_some() {
                    default_count * 50
                } else {
                    default_count
                });
            (first..first + count).collect()
        }
    };
    let mut total = Stats::default();
    for seed in seeds {
        match Sim::run(seed, cfg) {
            Ok(s) => {
                total.steps += s.steps;
                total.delivered += s.delivered;
                total.completed += s.completed;
                total.reads += s.reads;
                total.moves += s.moves;
                total.crashes += s.crashes;
            }
            Err(v) => panic!("{v}"),
        }
    }
    total
}

#[test]
fn random_scenarios_keep_every_invariant() {
    let stats = run_seeds(0, 10_000, &Config::default());
    if env_u64("CSP_SEED").is_none() {
        // The scenarios must exercise the protocol, not idle.
        assert!(stats.reads > 1000, "too few reads: {stats:?}");
        assert!(stats.moves > 50, "too few home moves: {stats:?}");
        assert!(stats.crashes > 10, "too few crashes: {stats:?}");
    }
}

#[test]
fn without_crashes_every_value_arrives_exactly_once() {
    let cfg = Config {
        crash_percent: 0,
        ..Config::default()
    };
    run_seeds(1_000_000, 3000, &cfg);
}

#[test]
fn crowded_alts_and_moves_on_few_channels() {
    let cfg = Config {
        max_nodes: 3,
        max_channels: 2,
        max_procs: 8,
        max_ops: 8,
        poison: false,
        crash_percent: 0,
        ..Config::default()
    };
    run_seeds(2_000_000, 2000, &cfg);
}
