//! Compare a run with its baseline and decide each metric's verdict. Pure:
//! no I/O, no clock; every random choice is seeded from [`Policy::seed`] and
//! the metric's name, so the same inputs always give the same verdicts.
//!
//! The rule (docs/gate-design.md explains why): a metric `regressed` only
//! when the whole confidence interval of `current / baseline` lies beyond
//! the tolerance line on the worse side. The interval is a seeded bootstrap
//! over both sample sets, widened by a between-run term estimated from the
//! baseline's blessed runs (with a prior, so one blessed run is not taken
//! as the truth). Absolute bounds fail regardless of any baseline.

use std::collections::BTreeMap;
use std::fmt;

mod anchor;
mod paired;
mod spells;
pub mod state;
pub use anchor::{check_base_against_baseline, decidable_by_baseline};
pub use paired::compare_paired;
pub use spells::{Spells, spells};

use serde::{Deserialize, Serialize};

use crate::baseline::{BaselineMetric, BaselineScenario};
use crate::metric::{Direction, Estimator, MetricKey, MetricSeries, Unit};
use crate::plan::MetricRule;
use crate::result::{Outcome, ScenarioResult};
use crate::stats::{self, BootstrapConfig, rng::hash_str};

pub use crate::baseline::estimate;

/// A metric's (or scenario's) verdict. Serialized snake_case
/// (`no_baseline`); displayed as in the docs (`no-baseline`). The derived
/// order is declaration order, not severity (see [`overall`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Regressed,
    Improved,
    /// Too noisy to decide within the sampling budget.
    Inconclusive,
    NoBaseline,
    /// The run itself cannot be trusted (throttled, clocks low, no samples).
    Invalid,
}

impl Verdict {
    pub fn id(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Regressed => "regressed",
            Verdict::Improved => "improved",
            Verdict::Inconclusive => "inconclusive",
            Verdict::NoBaseline => "no-baseline",
            Verdict::Invalid => "invalid",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// One metric's verdict with the evidence behind it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricVerdict {
    pub key: MetricKey,
    pub unit: Unit,
    pub direction: Direction,
    /// The estimator both sides were reduced with.
    pub estimator: Estimator,
    pub verdict: Verdict,
    /// This run's estimate (NaN when the run had no finite samples: `null`
    /// in JSON, read back as NaN).
    #[serde(deserialize_with = "nan_if_null")]
    pub current: f64,
    /// The baseline's estimate.
    pub baseline: Option<f64>,
    /// `current / baseline - 1`, whatever the direction.
    pub change: Option<f64>,
    /// Confidence interval of `change` at [`Policy::confidence`].
    pub ci: Option<(f64, f64)>,
    /// Two-sided Mann-Whitney p-value, current samples vs the baseline
    /// reservoir. Informational: it ignores between-run variance.
    pub p_value: Option<f64>,
    pub tolerance: f64,
    /// E.g. "above max 5.00 ms" (the bound, not the value: that is
    /// `current`); set when an absolute bound is violated.
    pub bound_violation: Option<String>,
    /// Whether a change can fail the gate (`false`: direction `neither` or
    /// `gate = false`; bounds still apply).
    pub gated: bool,
    pub note: Option<String>,
    /// Paired mode only: each pair's (base, head) estimates, in run order.
    /// Empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pairs: Vec<(f64, f64)>,
    /// Paired mode only: where each of `pairs` ran (its number among all
    /// the pairs run, and which side first). Pairs dropped because a run
    /// was invalid or had no estimate leave gaps in the numbers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pair_order: Vec<PairOrder>,
}

impl MetricVerdict {
    /// The verdict on `series` before anything is judged: `pass`, with the
    /// rule's direction, estimator, tolerance and gate (else the series'
    /// own and `default_tolerance`; direction `neither` is never gated), no
    /// estimate yet (NaN), and no baseline, interval, bound, note or pairs.
    pub fn unjudged(
        series: &MetricSeries,
        rule: Option<&MetricRule>,
        default_tolerance: f64,
    ) -> Self {
        let direction = rule.and_then(|r| r.direction).unwrap_or(series.direction);
        MetricVerdict {
            key: series.key.clone(),
            unit: series.unit.clone(),
            direction,
            estimator: rule.and_then(|r| r.estimator).unwrap_or(series.estimator),
            verdict: Verdict::Pass,
            current: f64::NAN,
            baseline: None,
            change: None,
            ci: None,
            p_value: None,
            tolerance: rule
                .and_then(|r| r.tolerance)
                .unwrap_or(default_tolerance)
                .abs(),
            bound_violation: None,
            gated: rule.and_then(|r| r.gate).unwrap_or(true) && direction != Direction::Neither,
            note: None,
            pairs: Vec::new(),
            pair_order: Vec::new(),
        }
    }
}

/// A number, or NaN for the `null` serde_json writes for one: a results
/// file with a metric that had no samples must read back (`compare`,
/// `merge`).
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Where one pair of a paired comparison ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairOrder {
    /// The pair's number in run order, from 0, counting every pair run.
    pub index: usize,
    /// Whether the head ran before the base in this pair.
    pub head_first: bool,
}

impl PairOrder {
    /// The order `run_pairs` runs pair `index` in: B H when even, H B when
    /// odd, so that a linear drift adds as much to heads as to bases.
    pub fn alternating(index: usize) -> PairOrder {
        PairOrder {
            index,
            head_first: index % 2 == 1,
        }
    }
}

/// How verdicts are decided.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// Seeds every bootstrap (mixed with each metric's name).
    pub seed: u64,
    /// Two-sided confidence level of the interval, 0.95.
    pub confidence: f64,
    pub bootstrap_resamples: usize,
    /// Assumed run-to-run standard deviation of an estimator, relative
    /// (log space), before blessed runs show otherwise: 0.004. One blessed
    /// run is one draw; this keeps its luck from being taken as certainty.
    pub run_noise_prior: f64,
    /// Weight of that prior, in pseudo-runs (2): with `k` blessed runs the
    /// between-run variance is `(w·prior² + (k-1)·s²) / (w + k - 1)`.
    pub prior_weight: f64,
    /// For the mean, current samples above this are thinned (seeded
    /// reservoir) before the bootstrap, to bound its cost (quantiles use an
    /// O(1)-per-resample exact method and keep every sample); between-run
    /// noise dominates long before. Also bounds the Mann-Whitney input.
    pub max_bootstrap_samples: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            seed: 0x6e65_6f6e_2d70_6572, // "neon-per"
            confidence: 0.95,
            bootstrap_resamples: 2000,
            run_noise_prior: 0.004,
            prior_weight: 2.0,
            max_bootstrap_samples: 4096,
        }
    }
}

/// The estimator the gate recommends for a metric when nothing says
/// otherwise: p5 for lower-is-better times (noise only adds time, so the
/// fast tail is the stable part; p5 stays in it even when contention covers
/// 90% of a run), p95 for higher-is-better rates (the same argument
/// mirrored), the median for everything else (memory, counts, ratios).
pub fn recommended_estimator(unit: &Unit, direction: Direction) -> Estimator {
    crate::metric::default_estimator(unit, direction)
}

/// Compares one metric with its baseline. See the module docs for the rule.
pub fn compare_metric(
    current: &MetricSeries,
    baseline: Option<&BaselineMetric>,
    rule: Option<&MetricRule>,
    default_tolerance: f64,
    run_invalid: bool,
    policy: &Policy,
) -> MetricVerdict {
    let mut v = MetricVerdict::unjudged(current, rule, default_tolerance);
    let (direction, estimator, tolerance, gated) = (v.direction, v.estimator, v.tolerance, v.gated);
    let mut notes: Vec<String> = Vec::new();

    let finite = current.finite_samples();
    let cur = estimate(&finite, estimator);
    v.current = cur.unwrap_or(f64::NAN);
    if finite.len() < current.samples.len() {
        notes.push(format!(
            "{} non-finite sample(s) ignored",
            current.samples.len() - finite.len()
        ));
    }

    if let (Some(c), Some(rule)) = (cur, rule) {
        v.bound_violation = bound_violation(c, rule, &current.unit);
    }

    let outliers = stats::count_outliers(&finite, 3.0);
    if outliers.total >= 20 && outliers.high * 10 > outliers.total {
        notes.push(format!(
            "{:.0}% of samples are far above the bulk (Tukey 3·IQR): a noisy machine",
            100.0 * outliers.high as f64 / outliers.total as f64
        ));
    }

    let comparable = match (cur, baseline) {
        (Some(c), Some(b)) => comparison(c, &finite, b, estimator, current, policy, &mut notes),
        _ => None,
    };
    if let Some(cmp) = &comparable {
        v.baseline = Some(cmp.baseline);
        v.change = cmp.ci.map(|ci| ci.point - 1.0);
        v.ci = cmp.ci.map(|ci| (ci.lo - 1.0, ci.hi - 1.0));
        v.p_value = cmp.p_value;
    }

    v.verdict = if v.bound_violation.is_some() {
        Verdict::Regressed
    } else if run_invalid {
        Verdict::Invalid
    } else if cur.is_none() {
        notes.push("no finite samples".into());
        Verdict::Invalid
    } else if comparable.is_none() {
        Verdict::NoBaseline
    } else if !gated {
        notes.push("reported only: not gated on change".into());
        Verdict::Pass
    } else {
        let cmp = comparable.as_ref().expect("checked above");
        match cmp.ci {
            None => {
                notes.push(format!(
                    "ratio to a baseline of {} is undefined; set an absolute bound (max/min) for this metric",
                    current.unit.format(cmp.baseline)
                ));
                Verdict::Inconclusive
            }
            Some(ci) => {
                let (lo, hi, point) = (ci.lo, ci.hi, ci.point);
                decide(
                    lo,
                    hi,
                    point,
                    direction,
                    tolerance,
                    STORED_REMEDY,
                    &mut notes,
                )
            }
        }
    };
    if !notes.is_empty() {
        v.note = Some(notes.join("; "));
    }
    v
}

struct Comparison {
    baseline: f64,
    /// The ratio `current / baseline` with its interval; `None` when the
    /// ratio is undefined (a zero or negative estimate).
    ci: Option<stats::RatioCi>,
    p_value: Option<f64>,
}

/// `None` when the baseline is not comparable at all (unit changed).
fn comparison(
    cur: f64,
    finite: &[f64],
    b: &BaselineMetric,
    estimator: Estimator,
    current: &MetricSeries,
    policy: &Policy,
    notes: &mut Vec<String>,
) -> Option<Comparison> {
    if !b.unit.same_quantity(&current.unit) {
        notes.push(format!(
            "the baseline is in {} but this run reports {}: re-bless",
            b.unit.symbol(),
            current.unit.symbol()
        ));
        return None;
    }
    let key_text = current.key.to_string();
    let seed = policy.seed ^ hash_str(&key_text);
    let reservoir: Vec<f64> = b
        .reservoir
        .iter()
        .copied()
        .filter(|x| x.is_finite())
        .collect();
    let (centre, run_sd, k) = centre_and_spread(b, estimator, &reservoir, notes)?;
    if !centre.is_finite() {
        return None;
    }
    let thinned;
    let cur_samples: &[f64] = if finite.len() > policy.max_bootstrap_samples {
        thinned = stats::reservoir_sample(finite, policy.max_bootstrap_samples, seed ^ 0x5eed);
        &thinned
    } else {
        finite
    };
    let base_samples: Vec<f64> = if reservoir.is_empty() {
        vec![centre]
    } else {
        reservoir
    };
    let p_value = stats::mann_whitney_u(cur_samples, &base_samples).map(|m| m.p);
    let cfg = BootstrapConfig {
        resamples: policy.bootstrap_resamples,
        confidence: policy.confidence,
        seed,
        extra_log_sd: extra_log_sd(policy, run_sd, k),
    };
    let ci = ratio_ci(cur, centre, (finite, cur_samples), estimator, &cfg);
    Some(Comparison {
        baseline: centre,
        ci,
        p_value,
    })
}

/// The baseline's centre and between-run spread (log sd, and how many
/// runs), both under `estimator`: the blessed ones, or, when it was blessed
/// with another estimator, the reservoir's (with a note).
fn centre_and_spread(
    b: &BaselineMetric,
    estimator: Estimator,
    reservoir: &[f64],
    notes: &mut Vec<String>,
) -> Option<(f64, Option<f64>, usize)> {
    if b.estimator == estimator {
        return Some((b.estimate, b.run_log_sd(), b.runs.len().max(1)));
    }
    notes.push(format!(
        "baseline blessed with estimator {}, compared by {} on its reservoir: re-bless",
        b.estimator, estimator
    ));
    Some((estimate(reservoir, estimator)?, None, 1))
}

/// The between-run noise a comparison adds (log sd): the run-to-run
/// variance, its prior pooled with the `k` blessed runs' spread; the current
/// run is a fresh draw (variance σ²) and the centre averages k runs (σ²/k).
fn extra_log_sd(policy: &Policy, run_sd: Option<f64>, k: usize) -> f64 {
    let prior = policy.run_noise_prior;
    let w = policy.prior_weight.max(0.0);
    let between_var = match run_sd {
        Some(s) => (w * prior * prior + (k as f64 - 1.0) * s * s) / (w + k as f64 - 1.0),
        None => prior * prior,
    };
    (between_var * (1.0 + 1.0 / k as f64)).sqrt()
}

/// The ratio `cur / centre` with its interval; `None` when it is undefined
/// (a zero or negative estimate). `finite` are the current run's samples,
/// `cur_samples` the same thinned for the bootstrap.
fn ratio_ci(
    cur: f64,
    centre: f64,
    (finite, cur_samples): (&[f64], &[f64]),
    estimator: Estimator,
    cfg: &BootstrapConfig,
) -> Option<stats::RatioCi> {
    let exact = |v: f64| {
        Some(stats::RatioCi {
            point: v,
            lo: v,
            hi: v,
        })
    };
    if centre == 0.0 && cur == 0.0 {
        return exact(1.0);
    }
    if !(centre > 0.0 && cur >= 0.0) {
        return None;
    }
    if cur == 0.0 {
        // A zero estimate has no multiplicative spread to bootstrap.
        return exact(0.0);
    }
    // Only the current run is resampled. The centre's uncertainty is the
    // between-run term (σ²/k), which already holds each blessed run's
    // within-run noise; resampling one blessed run's reservoir as well
    // counted it twice, and a reservoir from a run partly in a slow spell
    // (bimodal around p5) tripled the interval (measured: [-3%, +12%]
    // around +8.3%).
    let how = crate::baseline::reduce_of(estimator);
    let fixed = [centre];
    let ci = match how {
        stats::Reduce::Quantile(q) => stats::bootstrap_quantile_ratio_ci(finite, &fixed, q, cfg),
        stats::Reduce::Mean => {
            stats::bootstrap_ratio_ci(cur_samples, &fixed, |s| stats::reduce_in_place(s, how), cfg)
        }
    };
    ci.map(|ci| ci.recentred(cur / centre))
}

/// What to do about a change the interval cannot confirm, per mode.
const STORED_REMEDY: &str = "re-run, add samples, or use paired mode (--against)";
const PAIRED_REMEDY: &str = "re-run, or run more pairs (--pairs)";

fn decide(
    lo: f64,
    hi: f64,
    point: f64,
    direction: Direction,
    tol: f64,
    remedy: &str,
    notes: &mut Vec<String>,
) -> Verdict {
    let half = (hi - lo) / 2.0;
    // In "worse is positive" terms.
    let (worse_lo, worse_hi, worse_point) = match direction {
        Direction::HigherIsBetter => (1.0 - hi, 1.0 - lo, 1.0 - point),
        _ => (lo - 1.0, hi - 1.0, point - 1.0),
    };
    if worse_lo > tol {
        Verdict::Regressed
    } else if worse_hi < -tol {
        Verdict::Improved
    } else if worse_lo <= tol && worse_hi > tol && half > tol {
        notes.push(format!(
            "interval ±{:.1}% is wider than the ±{:.1}% tolerance: add samples or reduce noise",
            half * 100.0,
            tol * 100.0
        ));
        Verdict::Inconclusive
    } else if worse_point > tol {
        // The best guess is a regression the interval cannot confirm: not a
        // pass (measured: 5 of 20 real +5% changes against a 3% tolerance
        // ended here and were waved through as `pass`).
        notes.push(format!(
            "{:.1}% worse, beyond the {:.1}% tolerance, but its interval reaches {:.1}%, within \
             it: {remedy}",
            worse_point * 100.0,
            tol * 100.0,
            worse_lo * 100.0
        ));
        Verdict::Inconclusive
    } else {
        Verdict::Pass
    }
}

/// Which bound `value` breaks, as "above max 10.0 ms": the bound only,
/// since every report shows the value beside it (in its own column, or
/// through [`crate::report::bound_line`]).
fn bound_violation(value: f64, rule: &MetricRule, unit: &Unit) -> Option<String> {
    match (rule.max, rule.min) {
        (Some(max), _) if value > max => Some(format!("above max {}", unit.format(max))),
        (_, Some(min)) if value < min => Some(format!("below min {}", unit.format(min))),
        _ => None,
    }
}

/// The rule for a metric: an exact `name{labels}` match first, then the bare name.
pub fn rule_for<'a>(
    rules: &'a BTreeMap<String, MetricRule>,
    key: &MetricKey,
) -> Option<&'a MetricRule> {
    rules.get(&key.to_string()).or_else(|| rules.get(&key.name))
}

/// Every metric of one scenario result, compared. Ignored scenarios give no
/// verdicts; a failed one's metrics, and those of a run with
/// `invalid_reasons`, are `invalid` unless a bound fails. A run that
/// measured everything and then failed a check (a leak, a robustness
/// check) is compared as measured: its metrics are whole.
pub fn compare_scenario(
    result: &ScenarioResult,
    baseline: Option<&BaselineScenario>,
    rules: &BTreeMap<String, MetricRule>,
    tolerance: f64,
    policy: &Policy,
) -> Vec<MetricVerdict> {
    if matches!(result.outcome, Outcome::Ignored { .. }) {
        return Vec::new();
    }
    let mut reasons = result.invalid_reasons.clone();
    if let Outcome::Failed { error } = &result.outcome
        && !result.measured()
    {
        reasons.push(format!("scenario failed: {error}"));
    }
    let run_invalid = !reasons.is_empty();
    result
        .metrics
        .iter()
        .map(|m| {
            let base = baseline.and_then(|b| b.metric.get(&m.key.to_string()));
            let mut v = compare_metric(
                m,
                base,
                rule_for(rules, &m.key),
                tolerance,
                run_invalid,
                policy,
            );
            if v.verdict == Verdict::Invalid && run_invalid {
                let why = reasons.join("; ");
                v.note = Some(match v.note.take() {
                    Some(n) => format!("{why}; {n}"),
                    None => why,
                });
            }
            v
        })
        .collect()
}

/// A scenario's verdict: the worst of its metrics', with counts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScenarioVerdict {
    pub verdict: Option<Verdict>,
    pub passed: usize,
    pub regressed: usize,
    pub improved: usize,
    pub inconclusive: usize,
    pub no_baseline: usize,
    pub invalid: usize,
}

/// Regressed > invalid > inconclusive > improved > pass > no-baseline (only
/// when every metric lacks one). `verdict` is `None` for a scenario with no
/// metrics (its checks decide).
pub fn overall(verdicts: &[MetricVerdict]) -> ScenarioVerdict {
    let mut s = ScenarioVerdict::default();
    for v in verdicts {
        match v.verdict {
            Verdict::Pass => s.passed += 1,
            Verdict::Regressed => s.regressed += 1,
            Verdict::Improved => s.improved += 1,
            Verdict::Inconclusive => s.inconclusive += 1,
            Verdict::NoBaseline => s.no_baseline += 1,
            Verdict::Invalid => s.invalid += 1,
        }
    }
    s.verdict = if verdicts.is_empty() {
        None
    } else if s.regressed > 0 {
        Some(Verdict::Regressed)
    } else if s.invalid > 0 {
        Some(Verdict::Invalid)
    } else if s.inconclusive > 0 {
        Some(Verdict::Inconclusive)
    } else if s.improved > 0 {
        Some(Verdict::Improved)
    } else if s.passed > 0 {
        Some(Verdict::Pass)
    } else {
        Some(Verdict::NoBaseline)
    };
    s
}

#[cfg(test)]
impl MetricVerdict {
    /// A gated p5 time, lower is better, at a 3% tolerance, with no
    /// interval, note or pairs: what tests of verdict handling start from.
    pub(crate) fn gated_time(key: &str, verdict: Verdict) -> Self {
        MetricVerdict {
            key: MetricKey::new(key),
            unit: Unit::Seconds,
            direction: Direction::LowerIsBetter,
            estimator: Estimator::Quantile(0.05),
            verdict,
            current: 1.0,
            baseline: Some(1.0),
            change: None,
            ci: None,
            p_value: None,
            tolerance: 0.03,
            bound_violation: None,
            gated: true,
            note: None,
            pairs: Vec::new(),
            pair_order: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_beyond_tolerance_but_not_significant_names_the_mode_s_remedy() {
        // +4.6% [+2.65%, +6.55%] against a 3% tolerance: the 07:57 paired case.
        for (remedy, other) in [(STORED_REMEDY, "--pairs"), (PAIRED_REMEDY, "--against")] {
            let mut notes = Vec::new();
            let v = decide(
                1.0265,
                1.0655,
                1.046,
                Direction::LowerIsBetter,
                0.03,
                remedy,
                &mut notes,
            );
            assert_eq!(v, Verdict::Inconclusive);
            assert_eq!(notes.len(), 1);
            assert!(notes[0].starts_with("4.6% worse, beyond the 3.0% tolerance"));
            assert!(notes[0].ends_with(remedy), "{}", notes[0]);
            assert!(!notes[0].contains(other), "{}", notes[0]);
        }
    }
}
