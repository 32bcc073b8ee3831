use csp_greenlets::Greenlets as G;
use csp_runtime::conformance;
use csp_runtime::{Clock, Config, Schedule};
#[test]
fn timing() {
    let seeds: u64 = std::env::var("TS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let only = std::env::var("TC").ok();
    for c in conformance::cases::<G>() {
        if let Some(o) = &only {
            if !c.name.contains(o.as_str()) {
                continue;
            }
        }
        let t = std::time::Instant::now();
        let r = conformance::run_case::<G>(&c, Config::new());
        let fifo = t.elapsed();
        let t = std::time::Instant::now();
        let mut fails = 0;
        let mut first = None;
        if c.seeded {
            for s in 0..seeds {
                if let Err(e) = conformance::run_case::<G>(
                    &c,
                    Config::new()
                        .schedule(Schedule::Seeded(s))
                        .clock(Clock::Simulated),
                ) {
                    fails += 1;
                    if first.is_none() {
                        first = Some((s, e));
                    }
                }
            }
        }
        eprintln!(
            "{:40} fifo {:>9.1?} {:?} seeded x{seeds} {:>9.1?} fails {fails} {:?}",
            c.name,
            fifo,
            r.err(),
            t.elapsed(),
            first
        );
    }
}
