//! `neon-perf calibrate`: how noisy is each metric on this runner, and what
//! tolerance keeps false alarms under 1%?
//!
//! A scenario runs N times unchanged; each run is reduced by the metric's
//! estimator, as the gate does. The run-to-run spread `s` (standard
//! deviation of the log estimates) is the noise a stored baseline cannot
//! average away. A fresh run compared with the mean of `k` blessed runs
//! differs by a log-ratio with standard deviation `σ·√(1 + 1/k)`; the
//! recommended tolerance is its one-sided 99% prediction bound,
//! `t(0.99, N−1) · s · √(1 + 1/k)` (Student t, since `s` is itself an
//! estimate from N runs), rounded up to a 0.5% step, at least 1%. Pure: the
//! CLI runs the scenarios and writes the files.

pub mod write;

use serde::Serialize;

use crate::metric::{Direction, Estimator, MetricKey, Unit};
use crate::stats::t_quantile;

/// Blessed runs a baseline is assumed to average (docs/gate-design.md
/// recommends three).
pub const BLESSED_RUNS: usize = 3;
/// The false-alarm rate the recommendation is for (one-sided).
pub const FALSE_ALARM: f64 = 0.01;
/// Smallest tolerance recommended, whatever the noise.
pub const FLOOR: f64 = 0.01;

/// One metric's calibration.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MetricNoise {
    pub key: MetricKey,
    pub unit: Unit,
    pub direction: Direction,
    pub estimator: Estimator,
    /// The estimate of each run, in run order.
    pub estimates: Vec<f64>,
    /// Run-to-run relative noise: standard deviation of the log estimates.
    pub run_sd: f64,
    /// Largest relative distance of one run from the geometric mean of the others.
    pub max_deviation: f64,
    /// Tolerance that keeps false alarms under [`FALSE_ALARM`] against a
    /// baseline of [`BLESSED_RUNS`] runs.
    pub recommended: f64,
    /// The tolerance the suite sets now.
    pub current: f64,
    /// Whether the gate judges this metric's changes at all.
    pub gated: bool,
}

impl MetricNoise {
    /// Whether the suite's tolerance is tighter than this runner's noise allows.
    pub fn too_tight(&self) -> bool {
        self.gated && self.current + 1e-12 < self.recommended
    }
}

/// Calibrates one metric from its per-run estimates (`None` with fewer than
/// 3 positive estimates: nothing to say about spread).
pub fn calibrate_metric(
    key: MetricKey,
    unit: Unit,
    direction: Direction,
    estimator: Estimator,
    estimates: Vec<f64>,
    current: f64,
    gated: bool,
) -> Option<MetricNoise> {
    let logs: Vec<f64> = estimates
        .iter()
        .filter(|x| **x > 0.0 && x.is_finite())
        .map(|x| x.ln())
        .collect();
    let n = logs.len();
    if n < 3 {
        return None;
    }
    let mean = logs.iter().sum::<f64>() / n as f64;
    let run_sd = (logs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
    let max_deviation = logs
        .iter()
        .map(|x| {
            let others = (mean * n as f64 - x) / (n - 1) as f64;
            (x - others).exp() - 1.0
        })
        .fold(0.0f64, |m, d| m.max(d.abs()));
    let bound =
        t_quantile(1.0 - FALSE_ALARM, n - 1) * run_sd * (1.0 + 1.0 / BLESSED_RUNS as f64).sqrt();
    let recommended = ((bound.exp() - 1.0) / 0.005).ceil() * 0.005;
    Some(MetricNoise {
        key,
        unit,
        direction,
        estimator,
        estimates,
        run_sd,
        max_deviation,
        recommended: recommended.max(FLOOR),
        current,
        gated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Rng;

    fn noise(values: Vec<f64>, current: f64) -> Option<MetricNoise> {
        calibrate_metric(
            MetricKey::new("t"),
            Unit::Seconds,
            Direction::LowerIsBetter,
            Estimator::Quantile(0.05),
            values,
            current,
            true,
        )
    }

    #[test]
    fn quiet_metrics_get_the_floor() {
        let n = noise(vec![1.0, 1.0001, 0.9999, 1.0], 0.05).unwrap();
        assert_eq!(n.recommended, FLOOR);
        assert!(!n.too_tight());
    }

    #[test]
    fn recommendation_follows_the_prediction_bound() {
        // 10 runs with 2% log-normal noise: s ≈ 0.02, bound ≈ 2.82·0.02·1.155 ≈ 6.5%.
        let mut rng = Rng::new(5);
        let values: Vec<f64> = (0..10).map(|_| (0.02 * rng.normal()).exp()).collect();
        let n = noise(values, 0.03).unwrap();
        let want = t_quantile(0.99, 9) * n.run_sd * (4.0f64 / 3.0).sqrt();
        assert!(n.recommended >= want.exp() - 1.0, "{n:?}");
        assert!(n.recommended < want.exp() - 1.0 + 0.005 + 1e-12, "{n:?}");
        assert!(
            (n.recommended * 1000.0).round() % 5.0 == 0.0,
            "0.5% steps: {n:?}"
        );
        assert!(n.too_tight(), "3% is below {}", n.recommended);
        assert!(n.max_deviation > 0.0);
    }

    #[test]
    fn too_few_runs_say_nothing() {
        assert_eq!(noise(vec![1.0, 1.1], 0.05), None);
        assert_eq!(noise(vec![1.0, 0.0, -1.0, 1.1], 0.05), None);
    }
}
