//! Adaptive sampling shared by every kind: warm-up, then measure until the
//! primary metric's 95% confidence interval is tight enough (nvbench's
//! stdrel idea, with a distribution-free CI), the time budget is spent, or
//! the sample cap is reached — never before `min_samples`.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::metric::Estimator;
use crate::plan::Resolved;
use crate::stats;

/// Why sampling stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The CI of the estimator reached `target_rel_ci`.
    Converged,
    /// `max_time` was spent.
    TimeBudget,
    /// `max_samples` were taken.
    MaxSamples,
    /// A SIGINT or SIGTERM asked the run to stop (the scenario is reported
    /// as cancelled, whatever it measured).
    Cancelled,
}

#[derive(Clone, Debug)]
pub struct SamplingReport {
    pub samples: usize,
    pub warmup_runs: usize,
    pub elapsed: Duration,
    pub reason: StopReason,
    /// Relative CI half-width of the primary metric at the stop.
    pub rel_ci: f64,
}

/// The quantile the stopping rule watches for an estimator.
fn watched_quantile(e: Estimator) -> f64 {
    match e {
        Estimator::Quantile(q) => q,
        Estimator::Min => 0.05,
        Estimator::Max => 0.95,
        Estimator::Median | Estimator::Mean => 0.5,
    }
}

/// Runs `measure(warmup)` repeatedly. `measure` records whatever metrics it
/// takes itself and returns the primary metric's values from that sample
/// (an `Option` for one value; a program that prints many values per run
/// returns them all, as the gate's estimator sees them all); only measured
/// (non-warm-up) values count towards stopping. `min_samples` and
/// `max_samples` count calls. `on_sample` is told the running count after
/// each measured sample.
pub fn run_adaptive<E, V: IntoIterator<Item = f64>>(
    cfg: &Resolved,
    estimator: Estimator,
    mut measure: impl FnMut(bool) -> Result<V, E>,
    mut on_sample: impl FnMut(usize),
) -> Result<SamplingReport, E> {
    let warm_start = Instant::now();
    let mut warmup_runs = 0usize;
    while warmup_runs < cfg.warmup_runs as usize || warm_start.elapsed() < cfg.warmup {
        if crate::process::cancel::requested().is_some() {
            return Ok(report(
                0,
                warmup_runs,
                warm_start,
                StopReason::Cancelled,
                f64::INFINITY,
            ));
        }
        measure(true)?;
        warmup_runs += 1;
    }

    let q = watched_quantile(estimator);
    let start = Instant::now();
    let mut primary: Vec<f64> = Vec::new();
    let mut taken = 0usize;
    // Re-checking the CI after every sample costs O(n log n); check at a
    // geometric schedule instead so long runs stay cheap.
    let mut next_check = cfg.min_samples as usize;
    loop {
        if crate::process::cancel::requested().is_some() {
            return Ok(report(
                taken,
                warmup_runs,
                start,
                StopReason::Cancelled,
                f64::INFINITY,
            ));
        }
        primary.extend(measure(false)?);
        taken += 1;
        on_sample(taken);
        let enough = taken >= cfg.min_samples as usize;
        if enough && taken >= next_check {
            let rel_ci = stats::quantile_rel_ci_halfwidth(&primary, q).unwrap_or(f64::INFINITY);
            next_check = taken + (taken / 10).max(1);
            if rel_ci <= cfg.target_rel_ci {
                return Ok(report(
                    taken,
                    warmup_runs,
                    start,
                    StopReason::Converged,
                    rel_ci,
                ));
            }
        }
        if taken >= cfg.max_samples as usize {
            let rel_ci = stats::quantile_rel_ci_halfwidth(&primary, q).unwrap_or(f64::INFINITY);
            return Ok(report(
                taken,
                warmup_runs,
                start,
                StopReason::MaxSamples,
                rel_ci,
            ));
        }
        if enough && start.elapsed() >= cfg.max_time {
            let rel_ci = stats::quantile_rel_ci_halfwidth(&primary, q).unwrap_or(f64::INFINITY);
            return Ok(report(
                taken,
                warmup_runs,
                start,
                StopReason::TimeBudget,
                rel_ci,
            ));
        }
    }
}

fn report(
    samples: usize,
    warmup_runs: usize,
    start: Instant,
    reason: StopReason,
    rel_ci: f64,
) -> SamplingReport {
    SamplingReport {
        samples,
        warmup_runs,
        elapsed: start.elapsed(),
        reason,
        rel_ci,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(min: u32, max: u32) -> Resolved {
        Resolved {
            warmup: Duration::ZERO,
            warmup_runs: 2,
            min_samples: min,
            max_samples: max,
            max_time: Duration::from_secs(3600),
            target_rel_ci: 0.01,
            ..Resolved::default()
        }
    }

    #[test]
    fn constant_signal_converges_at_min_samples() {
        let mut warm = 0;
        let r = run_adaptive::<(), _>(
            &cfg(10, 1000),
            Estimator::Median,
            |w| {
                if w {
                    warm += 1;
                }
                Ok(Some(5.0))
            },
            |_| {},
        )
        .unwrap();
        assert_eq!(r.reason, StopReason::Converged);
        assert_eq!(r.samples, 10);
        assert_eq!(warm, 2);
    }

    /// Sampling a program that prints `per_run` values per run, all 1.0
    /// but the last, which alternates between 1.0 and 100.0.
    fn alternating_last(per_run: usize) -> SamplingReport {
        let mut i = 0u64;
        run_adaptive::<(), _>(
            &cfg(5, 50),
            Estimator::Median,
            |_| {
                i += 1;
                let mut v = vec![1.0; per_run - 1];
                v.push(if i % 2 == 0 { 1.0 } else { 100.0 });
                Ok(v)
            },
            |_| {},
        )
        .unwrap()
    }

    #[test]
    fn noisy_signal_hits_sample_cap() {
        let r = alternating_last(1);
        assert_eq!(r.reason, StopReason::MaxSamples);
        assert_eq!(r.samples, 50);
    }

    #[test]
    fn every_value_of_a_sample_counts() {
        // 50 values per run: the median of all of them is steady, so
        // sampling stops at min_samples; watching only each run's last
        // value it would run to the cap, as above.
        let r = alternating_last(50);
        assert_eq!(r.reason, StopReason::Converged);
        assert_eq!(r.samples, 5);
    }

    #[test]
    fn errors_propagate() {
        let r = run_adaptive(
            &cfg(5, 50),
            Estimator::Median,
            |_| Err::<Option<f64>, _>("boom"),
            |_| {},
        );
        assert_eq!(r.unwrap_err(), "boom");
    }
}
