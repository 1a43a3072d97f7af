//! Verdicts from interleaved base/head runs (`neon-perf run --against DIR`).
//!
//! Each pair is one run of the base tree's variant and one of the head's,
//! back to back; each run is reduced by the metric's estimator, and the
//! verdict comes from the Student t interval of the pairs' log-ratios
//! (`stats::paired`). The tolerance rule is the stored-baseline one
//! ([`super::decide`]); only the interval differs. Pure, like the rest of
//! `compare`.

use std::collections::{BTreeMap, BTreeSet};

use super::{MetricVerdict, Policy, Verdict, bound_violation, decide, estimate, rule_for};
use crate::metric::{Direction, MetricSeries};
use crate::plan::MetricRule;
use crate::result::ScenarioResult;
use crate::stats;

/// Compares every metric of the head runs with the base runs, pair by pair
/// (`base[i]` with `head[i]`). Callers pass only pairs where both runs were
/// valid; `invalid` says why there are too few of them, if so.
pub fn compare_paired(
    base: &[ScenarioResult],
    head: &[ScenarioResult],
    rules: &BTreeMap<String, MetricRule>,
    tolerance: f64,
    invalid: Option<&str>,
    policy: &Policy,
) -> Vec<MetricVerdict> {
    let keys: BTreeSet<String> = head
        .iter()
        .flat_map(|r| r.metrics.iter().map(|m| m.key.to_string()))
        .collect();
    keys.iter()
        .filter_map(|key| {
            let heads: Vec<Option<&MetricSeries>> = head.iter().map(|r| r.metric(key)).collect();
            let bases: Vec<Option<&MetricSeries>> = base.iter().map(|r| r.metric(key)).collect();
            let first = heads.iter().flatten().next()?;
            Some(paired_metric(
                first, &bases, &heads, rules, tolerance, invalid, policy,
            ))
        })
        .collect()
}

fn paired_metric(
    first: &MetricSeries,
    bases: &[Option<&MetricSeries>],
    heads: &[Option<&MetricSeries>],
    rules: &BTreeMap<String, MetricRule>,
    default_tolerance: f64,
    invalid: Option<&str>,
    policy: &Policy,
) -> MetricVerdict {
    let rule = rule_for(rules, &first.key);
    let direction = rule.and_then(|r| r.direction).unwrap_or(first.direction);
    let estimator = rule.and_then(|r| r.estimator).unwrap_or(first.estimator);
    let tolerance = rule
        .and_then(|r| r.tolerance)
        .unwrap_or(default_tolerance)
        .abs();
    let gated = rule.and_then(|r| r.gate).unwrap_or(true) && direction != Direction::Neither;
    let finite = |s: &MetricSeries| -> Vec<f64> {
        s.samples
            .iter()
            .copied()
            .filter(|x| x.is_finite())
            .collect()
    };
    let pooled = |side: &[Option<&MetricSeries>]| -> Vec<f64> {
        side.iter().flatten().flat_map(|s| finite(s)).collect()
    };
    let current = estimate(&pooled(heads), estimator);
    let baseline = estimate(&pooled(bases), estimator);
    let pairs: Vec<(f64, f64)> = bases
        .iter()
        .zip(heads)
        .filter_map(|(b, h)| {
            Some((
                estimate(&finite((*b)?), estimator)?,
                estimate(&finite((*h)?), estimator)?,
            ))
        })
        .collect();
    let mut notes = Vec::new();
    let mut v = MetricVerdict {
        key: first.key.clone(),
        unit: first.unit.clone(),
        direction,
        estimator,
        verdict: Verdict::Pass,
        current: current.unwrap_or(f64::NAN),
        baseline,
        change: None,
        ci: None,
        p_value: stats::sign_flip_p(&pairs),
        tolerance,
        bound_violation: None,
        gated,
        note: None,
    };
    if let (Some(c), Some(rule)) = (current, rule) {
        v.bound_violation = bound_violation(c, rule, &first.unit);
    }
    let ci = stats::paired_ratio_ci(&pairs, policy.confidence);
    if let Some(ci) = &ci {
        v.change = Some(ci.point - 1.0);
        v.ci = Some((ci.lo - 1.0, ci.hi - 1.0));
        notes.push(format!(
            "paired: {} base/head pairs, one pair's noise ±{:.2}%",
            ci.n,
            100.0 * ci.sd
        ));
        if ci.clipped > 0 {
            notes.push(format!(
                "{} outlying pair(s) clipped (a burst of load during one run)",
                ci.clipped
            ));
        }
    }
    v.verdict = if v.bound_violation.is_some() {
        Verdict::Regressed
    } else if let Some(why) = invalid {
        notes.push(why.to_string());
        Verdict::Invalid
    } else if current.is_none() {
        notes.push("no finite samples".into());
        Verdict::Invalid
    } else if baseline.is_none() {
        notes.push("the base tree's variant does not report this metric".into());
        Verdict::NoBaseline
    } else if !gated {
        notes.push("reported only: not gated on change".into());
        Verdict::Pass
    } else {
        match ci {
            Some(ci) => decide(ci.lo, ci.hi, ci.point, direction, tolerance, &mut notes),
            None => {
                notes.push(format!(
                    "only {} usable pair(s) (positive estimates on both sides): cannot decide",
                    pairs.len()
                ));
                Verdict::Inconclusive
            }
        }
    };
    if !notes.is_empty() {
        v.note = Some(notes.join("; "));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::{Estimator, MetricKey, Unit};
    use crate::plan::{Kind, SourceLocation};
    use crate::result::{MonitorSummary, Outcome};
    use crate::stats::Rng;

    fn run(samples: Vec<f64>) -> ScenarioResult {
        ScenarioResult {
            suite: "s".into(),
            scenario: "x".into(),
            kind: Kind::Command,
            location: SourceLocation {
                file: "s.toml".into(),
                line: 1,
                column: 1,
            },
            device: "cpu".into(),
            outcome: Outcome::Ran,
            metrics: vec![MetricSeries {
                key: MetricKey::new("t"),
                unit: Unit::Seconds,
                direction: Direction::LowerIsBetter,
                estimator: Estimator::Quantile(0.05),
                samples,
            }],
            checks: vec![],
            monitor: MonitorSummary::default(),
            invalid_reasons: vec![],
            warnings: vec![],
            wall_time_s: 0.0,
        }
    }

    /// Pairs whose level drifts by up to 30% between pairs (what separates
    /// a stored baseline from today) with `effect` on the head side.
    fn drifting(
        effect: f64,
        pairs: usize,
        seed: u64,
    ) -> (Vec<ScenarioResult>, Vec<ScenarioResult>) {
        let mut rng = Rng::new(seed);
        let mut side = |level: f64| {
            run((0..40)
                .map(|_| level * (1.0 + 0.01 * rng.next_f64() + 0.2 * rng.exp1() * 0.1))
                .collect())
        };
        let mut base = Vec::new();
        let mut head = Vec::new();
        for i in 0..pairs {
            let level = 1.0 + 0.3 * (i as f64 / pairs as f64);
            base.push(side(level));
            head.push(side(level * (1.0 + effect)));
        }
        (base, head)
    }

    fn verdict(effect: f64, tol: f64, seed: u64) -> MetricVerdict {
        let (b, h) = drifting(effect, 6, seed);
        let v = compare_paired(&b, &h, &BTreeMap::new(), tol, None, &Policy::default());
        assert_eq!(v.len(), 1);
        v.into_iter().next().unwrap()
    }

    #[test]
    fn drift_cancels_between_pairs() {
        for seed in 0..5 {
            assert_eq!(
                verdict(0.0, 0.03, seed).verdict,
                Verdict::Pass,
                "A/A seed {seed}"
            );
            let slow = verdict(0.05, 0.03, seed);
            assert_eq!(
                slow.verdict,
                Verdict::Regressed,
                "+5% seed {seed}: {slow:?}"
            );
            let (lo, hi) = slow.ci.unwrap();
            assert!(lo < 0.05 && 0.05 < hi, "{slow:?}");
            assert_eq!(verdict(-0.08, 0.03, seed).verdict, Verdict::Improved);
        }
    }

    #[test]
    fn missing_base_metric_and_invalid_runs() {
        let (mut b, h) = drifting(0.0, 4, 1);
        for r in &mut b {
            r.metrics[0].key = MetricKey::new("other");
        }
        let v = compare_paired(&b, &h, &BTreeMap::new(), 0.05, None, &Policy::default());
        assert_eq!(v[0].verdict, Verdict::NoBaseline);
        let (b, h) = drifting(0.0, 4, 1);
        let v = compare_paired(
            &b,
            &h,
            &BTreeMap::new(),
            0.05,
            Some("too few valid pairs"),
            &Policy::default(),
        );
        assert_eq!(v[0].verdict, Verdict::Invalid);
        assert!(
            v[0].note
                .as_deref()
                .unwrap()
                .contains("too few valid pairs")
        );
    }

    #[test]
    fn absolute_bounds_still_apply() {
        let (b, h) = drifting(0.0, 4, 2);
        let mut rules = BTreeMap::new();
        rules.insert(
            "t".to_string(),
            MetricRule {
                max: Some(0.5),
                ..Default::default()
            },
        );
        let v = compare_paired(&b, &h, &rules, 0.05, None, &Policy::default());
        assert_eq!(v[0].verdict, Verdict::Regressed);
        assert!(v[0].bound_violation.is_some());
    }
}
