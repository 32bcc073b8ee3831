//! The comparison table shared by the harnesses (`benches/compare.rs`,
//! `benches/parallel.rs`): scenarios measured in interleaved rounds, their
//! statistics, baselines measured in the same rounds, and the printed table.

use std::time::Duration;

/// Repetition figures of one measurement, in its unit.
pub(crate) struct Stats {
    pub(crate) median: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
    /// The repetitions in the order they ran (round `k` of every scenario ran
    /// in the same stretch of time).
    pub(crate) samples: Vec<f64>,
}

pub(crate) fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

pub(crate) fn stats(samples: Vec<f64>) -> Stats {
    assert!(!samples.is_empty());
    Stats {
        median: median(&samples),
        min: samples.iter().copied().fold(f64::INFINITY, f64::min),
        max: samples.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        samples,
    }
}

/// One in-process scenario: ns per operation of `run(ops)`.
pub(crate) struct Scenario<'a> {
    pub(crate) ops: u64,
    pub(crate) run: Box<dyn Fn(u64) -> Duration + 'a>,
}

impl<'a> Scenario<'a> {
    pub(crate) fn new(ops: u64, run: impl Fn(u64) -> Duration + 'a) -> Self {
        Scenario {
            ops,
            run: Box::new(run),
        }
    }
}

/// Runs every scenario once to warm up, then `reps` rounds of all of them,
/// one after another, so that a slow stretch of the machine (this is a VM
/// whose speed drifts) hits every scenario of a round alike. Returns ns per
/// operation, per scenario.
pub(crate) fn measure(scenarios: &[Scenario<'_>], reps: usize) -> Vec<Stats> {
    for s in scenarios {
        let _ = (s.run)((s.ops / 10).max(1));
    }
    let mut samples = vec![Vec::with_capacity(reps); scenarios.len()];
    for _ in 0..reps {
        for (s, out) in scenarios.iter().zip(&mut samples) {
            out.push((s.run)(s.ops).as_nanos() as f64 / s.ops as f64);
        }
    }
    samples.into_iter().map(stats).collect()
}

/// A baseline for a row: its value, and ours relative to it.
pub(crate) struct Base {
    pub(crate) value: f64,
    pub(crate) ratio: f64,
}

/// A baseline measured in the same rounds as ours, times `factor`: the ratio
/// is the median of the per-round ratios.
pub(crate) fn same_rounds(ours: &Stats, base: &Stats, factor: f64) -> Option<Base> {
    let ratios: Vec<f64> = ours
        .samples
        .iter()
        .zip(&base.samples)
        .map(|(o, b)| o / (b * factor))
        .collect();
    Some(Base {
        value: base.median * factor,
        ratio: median(&ratios),
    })
}

/// A baseline given as one value.
pub(crate) fn fixed(ours: &Stats, value: f64) -> Option<Base> {
    Some(Base {
        value,
        ratio: ours.median / value,
    })
}

/// One line of the table.
pub(crate) struct Row {
    scenario: String,
    ours: String,
    baseline: String,
    base: String,
    pub(crate) ratio: String,
    target: String,
    verdict: String,
    spread: String,
}

impl Row {
    #[allow(clippy::too_many_arguments, reason = "one argument per column")]
    pub(crate) fn new(
        scenario: &str,
        ours: &Stats,
        unit: &str,
        baseline: &str,
        base: Option<Base>,
        target: Option<f64>,
        digits: usize,
    ) -> Row {
        let fmt = |x: f64| format!("{x:.digits$} {unit}");
        Row {
            scenario: scenario.to_owned(),
            ours: fmt(ours.median),
            baseline: baseline.to_owned(),
            base: base
                .as_ref()
                .map_or_else(|| "—".to_owned(), |b| fmt(b.value)),
            ratio: base.map_or_else(|| "—".to_owned(), |b| format!("{:.2}×", b.ratio)),
            target: target.map_or_else(|| "—".to_owned(), |t| format!("≤ {}", fmt(t))),
            verdict: target.map_or_else(
                || "—".to_owned(),
                |t| if ours.median <= t { "PASS" } else { "MISS" }.to_owned(),
            ),
            spread: format!("{:.digits$}–{:.digits$}", ours.min, ours.max),
        }
    }
}

pub(crate) fn print_table(rows: &[Row]) {
    let header = [
        "scenario",
        "ours",
        "baseline",
        "baseline value",
        "ratio",
        "target",
        "verdict",
        "ours min–max",
    ];
    let cells: Vec<[&str; 8]> = rows
        .iter()
        .map(|r| {
            [
                r.scenario.as_str(),
                r.ours.as_str(),
                r.baseline.as_str(),
                r.base.as_str(),
                r.ratio.as_str(),
                r.target.as_str(),
                r.verdict.as_str(),
                r.spread.as_str(),
            ]
        })
        .collect();
    let mut width = header.map(|h| h.chars().count());
    for row in &cells {
        for (w, c) in width.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |row: &[&str; 8]| {
        let parts: Vec<String> = row
            .iter()
            .zip(width)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect();
        println!("| {} |", parts.join(" | "));
    };
    line(&header);
    let dashes = width.map(|w| "-".repeat(w));
    line(&dashes.each_ref().map(String::as_str));
    for row in &cells {
        line(row);
    }
}
