//! Runs spread out in time. On a shared machine a run is one draw of the
//! machine's state, and the states last: on the 2-vCPU development VM a
//! neighbour's slow spell shifts even the fastest samples by 30–50% for
//! 0.2–3 s at a time, and two runs started back to back fall into the same
//! spell far more often than two runs a second or more apart
//! (docs/gate-quality.md, "How long a slow spell lasts"). So the runs that
//! decide something — the confirmation of a regression, the runs a bless
//! records — are started [`SPREAD_GAP`] apart.

use std::time::Duration;

use crate::metric::MetricSeries;
use crate::result::{Outcome, ScenarioResult};

/// The pause before each spread run: on the VM measured, the chance that
/// a run falls into a slow spell given that the last one did fell from 0.65
/// after 0.1 s to the base rate by 1–2 s.
pub const SPREAD_GAP: Duration = Duration::from_secs(1);

/// Runs that confirm a stored-baseline regression, pooled into one series:
/// the pool is slow only when every run is, so an unchanged scenario is
/// called regressed only when the first run and both of these fell into
/// slow spells.
pub const CONFIRM_RUNS: usize = 2;

/// Runs one `bless` records per scenario by default.
pub const DEFAULT_BLESS_RUNS: u32 = 3;

/// At most this many more bless runs when every run so far spent most of
/// its time in a slow state (`compare::state`): with the spread gap they
/// reach ~6 s past the last run, past the 0.2–3 s spells measured.
pub const EXTRA_BLESS_RUNS: usize = 3;

/// Up to `n` runs, each after a pause of `gap`; stops after a run that
/// did not end with [`Outcome::Ran`] (a failure is not repeated).
pub fn spread_runs(
    n: usize,
    gap: Duration,
    pause: &mut dyn FnMut(Duration),
    run: &mut dyn FnMut(usize) -> ScenarioResult,
) -> Vec<ScenarioResult> {
    let mut runs = Vec::with_capacity(n);
    for i in 0..n {
        pause(gap);
        let r = run(i);
        let ran = matches!(r.outcome, Outcome::Ran);
        runs.push(r);
        if !ran {
            break;
        }
    }
    runs
}

/// Several runs of one scenario as one result: every sample of every run,
/// in order; the last run's outcome, checks and monitor; the warnings and
/// invalid reasons of all runs (each once); the wall time of all runs.
pub fn pool(runs: &[ScenarioResult]) -> ScenarioResult {
    let last = runs.last().expect("at least one run to pool");
    let mut pooled = last.clone();
    let mut metrics: Vec<MetricSeries> = Vec::new();
    for r in runs {
        for m in &r.metrics {
            match metrics.iter_mut().find(|x| x.key == m.key) {
                Some(x) => x.samples.extend_from_slice(&m.samples),
                None => metrics.push(m.clone()),
            }
        }
    }
    pooled.metrics = metrics;
    pooled.warnings = fold_alike(runs.iter().map(|r| r.warnings.as_slice()));
    pooled.invalid_reasons = fold_alike(runs.iter().map(|r| r.invalid_reasons.as_slice()));
    pooled.wall_time_s = runs.iter().map(|r| r.wall_time_s).sum();
    pooled
}

/// Each warning of pooled runs once, in first-seen order. The same
/// warning from each run, alike but for its numbers ("goodput: 40 of 80
/// streams … missed" and "… 38 of 80 …"), is said once, as the last run
/// said it, with how many runs said it. Warnings of one run are never
/// folded into each other (two GPUs, two points): the k-th of a shape in
/// one run folds only with the k-th of that shape in another.
pub fn fold_alike<'a>(runs: impl Iterator<Item = &'a [String]>) -> Vec<String> {
    struct Said<'a> {
        shape: String,
        nth: usize,
        last: &'a String,
        runs: usize,
        same: bool,
    }
    let mut out: Vec<Said<'a>> = Vec::new();
    for items in runs {
        let mut seen: Vec<String> = Vec::new();
        for s in items {
            let shape = numbers_blanked(s);
            let nth = seen.iter().filter(|k| **k == shape).count();
            seen.push(shape.clone());
            match out.iter_mut().find(|x| x.shape == shape && x.nth == nth) {
                Some(x) => {
                    x.same &= x.last == s;
                    x.last = s;
                    x.runs += 1;
                }
                None => out.push(Said {
                    shape,
                    nth,
                    last: s,
                    runs: 1,
                    same: true,
                }),
            }
        }
    }
    out.into_iter()
        .map(|x| match (x.runs, x.same) {
            (1, _) | (_, true) => x.last.clone(),
            (n, false) => format!(
                "{} (the last of {n} runs that said this, each with its own numbers)",
                x.last
            ),
        })
        .collect()
}

/// `s` with every number that stands alone (its digits, and the points
/// and commas between them) as one `#`. Digits joined to a name stay: `p99`,
/// `n=10000`, `H100` and `sort_time{n=10}` are names, not counts.
fn numbers_blanked(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let (mut in_number, mut in_name) = (false, false);
    for c in s.chars() {
        let digit = c.is_ascii_digit();
        let part = !in_name && (digit || (in_number && matches!(c, '.' | ',')));
        if part && !in_number {
            out.push('#');
        } else if !part {
            out.push(c);
        }
        in_number = part;
        in_name = !part && (c.is_alphanumeric() || matches!(c, '_' | '=')) || (in_name && digit);
    }
    out
}

/// Each distinct string once, in first-seen order.
pub fn union<'a>(items: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in items {
        if !out.contains(s) {
            out.push(s.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(samples: &[f64], warning: &str) -> ScenarioResult {
        let mut r = ScenarioResult::from_metrics(
            "s",
            "x",
            vec![MetricSeries::seconds("m", samples.to_vec())],
        );
        r.warnings.push(warning.into());
        r.wall_time_s = 0.5;
        r
    }

    #[test]
    fn pooling_keeps_every_sample_and_each_warning_once() {
        let mut b = run(&[3.0], "busy");
        b.invalid_reasons.push("throttled".into());
        let p = pool(&[run(&[1.0, 2.0], "busy"), b]);
        assert_eq!(p.metrics[0].samples, vec![1.0, 2.0, 3.0]);
        assert_eq!(p.warnings, vec!["busy".to_string()]);
        assert_eq!(p.invalid_reasons, vec!["throttled".to_string()]);
        assert_eq!(p.wall_time_s, 1.0);
    }

    #[test]
    fn a_warning_each_run_gave_with_its_own_numbers_is_said_once() {
        let w = |n: u32| {
            format!(
                "goodput: {n} of 80 streams sent in the window missed a bound: {n} over time_to_first_reply = 100 ms"
            )
        };
        let p = pool(&[
            run(&[1.0], &w(40)),
            run(&[2.0], &w(38)),
            run(&[3.0], "busy"),
        ]);
        assert_eq!(
            p.warnings,
            vec![
                format!(
                    "{} (the last of 2 runs that said this, each with its own numbers)",
                    w(38)
                ),
                "busy".to_string()
            ]
        );
        // Two warnings of one run stay two (two GPUs, two points).
        let gpu = |i: u32| format!("GPU {i} (H100) was throttled while measuring: hw_slowdown");
        let mut a = run(&[1.0], &gpu(0));
        a.warnings.push(gpu(1));
        let mut b = run(&[2.0], &gpu(0));
        b.warnings.push(gpu(1));
        assert_eq!(pool(&[a, b]).warnings, vec![gpu(0), gpu(1)]);
        // Other words are another warning, whatever the numbers.
        assert_eq!(
            numbers_blanked("used 1.39 of 2 CPU cores"),
            "used # of # CPU cores"
        );
        assert_ne!(numbers_blanked("3 over a"), numbers_blanked("3 under a"));
        assert_eq!(
            numbers_blanked("p99 of n=10000 on H100: 12.5 ms"),
            "p99 of n=10000 on H100: # ms"
        );
    }

    #[test]
    fn every_run_waits_the_gap_first_and_a_failure_is_not_repeated() {
        let mut pauses = Vec::new();
        let runs = spread_runs(
            3,
            Duration::from_millis(7),
            &mut |d| pauses.push(d),
            &mut |i| {
                let mut r = run(&[i as f64], "");
                if i == 1 {
                    r.outcome = Outcome::Failed {
                        error: "boom".into(),
                    };
                }
                r
            },
        );
        assert_eq!(runs.len(), 2, "stops after the failed run");
        assert_eq!(pauses, vec![Duration::from_millis(7); 2]);
    }
}
