//! Whether a bless's runs agree closely enough to make a baseline the gate
//! can judge a change against.
//!
//! The stored-mode interval widens with the spread between the blessed runs
//! (`compare`: the between-run term). Three runs of which one or two fell
//! into a slow spell of the machine leave that term wide, and a real change
//! then comes out `inconclusive` on every later run against that baseline.
//! Seen 2026-11-28 07:45 on the 2-vCPU VM: one bless kept runs at 94.4 and
//! 98.5 µs (its middle run, +10.8%, was refused), another 95.3, 94.0 and
//! 94.6 µs; against them 15 of 20 real +5% slowdowns (3% tolerance) were
//! `inconclusive` (intervals ±4.4% and ±1.7%), where the other two baselines
//! of the same run, with spreads under 0.2%, caught all 10.
//! So a bless whose runs spread more than [`spread_limit`] runs more
//! (`run/bless.rs`); with five or six runs the robust spread no longer follows one
//! or two slow ones.

use crate::metric::{Direction, Estimator};
use crate::result::ScenarioResult;

use super::{estimate, log_sd_of_runs};

/// The share of the tolerance the between-run term may take: the spread
/// `s` (log sd) enters the interval as `1.96 · s · √(1 + 1/k)`, about
/// `2.3 · s` for three runs; `s ≤ tolerance / 7` keeps that under a third
/// of the tolerance, so a change of 1.5× the tolerance can still be told.
pub const TOLERANCE_SHARE: f64 = 7.0;

/// The limit never goes below the run-to-run noise the gate assumes for an
/// unseen runner (`Policy::run_noise_prior`, 0.4%): a tight tolerance must
/// not send every bless to its extra runs.
pub const MIN_SPREAD_LIMIT: f64 = 0.004;

/// The largest run-to-run spread (log sd) a baseline for this tolerance
/// should have.
pub fn spread_limit(tolerance: f64) -> f64 {
    (tolerance / TOLERANCE_SHARE).max(MIN_SPREAD_LIMIT)
}

/// One gated metric a bless checks: its key, how runs are reduced, which
/// way is better, and its tolerance.
#[derive(Clone, Debug, PartialEq)]
pub struct Gated {
    pub key: String,
    pub estimator: Estimator,
    pub direction: Direction,
    pub tolerance: f64,
}

/// The first gated metric whose run estimates over `runs` spread more than
/// [`spread_limit`] of its tolerance, said in words; `None` when they
/// agree, or when fewer than two runs have an estimate. Metrics without a
/// better direction are not judged by change, so their spread is not
/// checked.
pub fn disagreement(runs: &[&ScenarioResult], gated: &[Gated]) -> Option<String> {
    for g in gated.iter().filter(|g| g.direction != Direction::Neither) {
        let estimates: Vec<f64> = runs
            .iter()
            .filter_map(|r| r.metrics.iter().find(|m| m.key.to_string() == g.key))
            .filter_map(|m| estimate(&m.finite_samples(), g.estimator))
            .collect();
        let Some(s) = log_sd_of_runs(&estimates) else {
            continue;
        };
        let limit = spread_limit(g.tolerance);
        if s > limit {
            return Some(format!(
                "{}: {} runs spread ±{:.2}% (limit ±{:.2}% for its {}% tolerance)",
                g.key,
                estimates.len(),
                100.0 * s,
                100.0 * limit,
                crate::units::sig3(100.0 * g.tolerance)
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::MetricSeries;

    fn run(values: &[f64]) -> ScenarioResult {
        ScenarioResult::from_metrics(
            "s",
            "sort",
            vec![MetricSeries::seconds("t", values.to_vec())],
        )
    }

    fn gated(tolerance: f64) -> Vec<Gated> {
        vec![Gated {
            key: "t".into(),
            estimator: Estimator::Quantile(0.05),
            direction: Direction::LowerIsBetter,
            tolerance,
        }]
    }

    #[test]
    fn the_limit_is_a_seventh_of_the_tolerance_with_a_floor() {
        assert!((spread_limit(0.07) - 0.01).abs() < 1e-12);
        assert!((spread_limit(0.035) - 0.005).abs() < 1e-12);
        assert_eq!(spread_limit(0.01), MIN_SPREAD_LIMIT);
    }

    #[test]
    fn the_runs_seen_at_0745_disagree_and_tight_ones_do_not() {
        // The two baselines that left +5% slowdowns inconclusive.
        let wide = [run(&[94.36e-6; 20]), run(&[98.48e-6; 20])];
        let why = disagreement(&wide.iter().collect::<Vec<_>>(), &gated(0.05));
        let why = why.expect("4.4% apart");
        assert!(why.contains("t: 2 runs spread ±3.0"), "{why}");
        let three = [
            run(&[95.29e-6; 20]),
            run(&[94.03e-6; 20]),
            run(&[94.60e-6; 20]),
        ];
        assert!(disagreement(&three.iter().collect::<Vec<_>>(), &gated(0.03)).is_some());
        // The same three agree well enough for a 10% tolerance.
        assert!(disagreement(&three.iter().collect::<Vec<_>>(), &gated(0.10)).is_none());
        // A typical bless of that run: 0.2% apart.
        let tight = [
            run(&[94.78e-6; 20]),
            run(&[94.34e-6; 20]),
            run(&[94.26e-6; 20]),
        ];
        assert!(disagreement(&tight.iter().collect::<Vec<_>>(), &gated(0.03)).is_none());
    }

    #[test]
    fn one_slow_run_among_five_does_not_count() {
        let runs = [
            run(&[94.36e-6; 20]),
            run(&[98.48e-6; 20]),
            run(&[94.40e-6; 20]),
            run(&[94.30e-6; 20]),
            run(&[94.50e-6; 20]),
        ];
        assert!(disagreement(&runs.iter().collect::<Vec<_>>(), &gated(0.03)).is_none());
    }

    #[test]
    fn ungated_directions_and_lone_runs_tell_nothing() {
        let wide = [run(&[1.0; 5]), run(&[2.0; 5])];
        let mut g = gated(0.05);
        g[0].direction = Direction::Neither;
        assert!(disagreement(&wide.iter().collect::<Vec<_>>(), &g).is_none());
        assert!(disagreement(&[&wide[0]], &gated(0.05)).is_none());
        assert!(disagreement(&wide.iter().collect::<Vec<_>>(), &[]).is_none());
    }
}
