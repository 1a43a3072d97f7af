//! A run spent in a slow state of the machine, told by its shape.
//!
//! On a shared VM a neighbour on the host core can slow every instruction
//! of one vCPU by 30–55% for seconds (docs/gate-quality.md, "How long a
//! slow spell lasts"). A run wholly in such a state moves its p5 with it,
//! and no interval built from that run can tell it from a regression. But a
//! spell is rarely quite whole: in 21 of 29 slow 0.7 s stretches of the
//! sort workload on this VM (2026-11-28 03:05 UTC) the fastest sample was
//! still within 2% of the machine's fastest, while the p5 sat 27–52% above
//! it. A real slowdown moves the fastest samples with the rest, so the
//! *gap* between a run's estimator and its extreme sample stays what it was
//! at bless time; a slow state widens it.
//!
//! So, for a metric gated on a low quantile of a lower-is-better value (or
//! a high quantile of a higher-is-better one):
//! - a `regressed` whose run's gap is wider than the baseline reservoir's
//!   by more than [`STATE_GAP`], and whose fastest samples are within the
//!   tolerance of the reservoir's fastest, is not claimed (`inconclusive`,
//!   with a note);
//! - an `improved` whose baseline reservoir's gap is wider than the run's
//!   by more than [`STATE_GAP`], and whose fastest samples are not better
//!   than the reservoir's by the tolerance, is not claimed either: the
//!   baseline was blessed in a slow state.
//!
//! - a `pass` where one side's gap is wider than the other's by more than
//!   [`STATE_GAP`] and the fastest samples differ by more than the
//!   tolerance is not claimed either: the two sides ran in different
//!   states, and the estimators' agreement is a coincidence of the two.
//!
//! Paired mode applies the same rule to the head's runs pooled against the
//! base's ([`check_paired_sides`]).
//!
//! The two sides' best samples are compared at matching ranks: the best
//! of a run as large as the reference, else its k-th best, k the ratio of
//! their sizes ([`best_rank`]), since the best of 13,000 samples is a far
//! rarer draw than the best of a 256-sample reservoir.
//!
//! The gap is compared with the baseline's, not with zero, so a metric
//! whose distribution is wide by nature (round-trip times of a flood, a
//! program with a rare fast path) is judged as before.
//! What this can hide: a change that makes nearly every sample slower but
//! leaves a few untouched (a cache that now misses almost always). Such a
//! change still shows as `inconclusive`, with the numbers, never `pass`.
//! Pure, like the rest of the module.

use crate::baseline::BaselineScenario;
use crate::metric::{Direction, Estimator};
use crate::result::ScenarioResult;

use super::{MetricVerdict, Verdict, estimate};

/// A run whose estimator sits more than this further beyond its extreme
/// sample than expected spent most of its time in a slower state than it
/// showed it could reach (the 15% that `scripts/slow-spells.py` calls a
/// slow window).
pub const STATE_GAP: f64 = 0.15;

/// A gap wider than this (an estimator more than twice its best sample) on
/// either side says that side's best samples are another mode of the
/// metric, not the same work done in a faster state: a server that writes
/// two frames at once gives inter-reply gaps of microseconds beside gaps
/// of milliseconds. Slow states slow a vCPU by 30–55% (the module's
/// header); the rule says nothing past this.
pub const MAX_STATE_GAP: f64 = 1.0;

/// Fewer samples than this say too little about a run's extremes.
pub const MIN_SAMPLES: usize = 50;

/// How far `samples`' estimate sits from their extreme sample, in "worse is
/// positive" terms: `estimate / min − 1` for a low quantile (≤ p25) of a
/// lower-is-better metric, `max / estimate − 1` for a high quantile (≥ p75)
/// of a higher-is-better one. `None` for other estimators, fewer than
/// [`MIN_SAMPLES`] finite samples, or non-positive values.
pub fn gap(samples: &[f64], estimator: Estimator, direction: Direction) -> Option<f64> {
    let (est, ext) = estimate_and_extreme(samples, estimator, direction, 1)?;
    Some(gap_between(est, ext, direction))
}

/// Which order statistic of a side with `len` samples stands for "its
/// best sample" against a side with `other`: the best of `len` when the
/// two are alike in size, else the k-th best with k = len / other rounded
/// (at least 1), the place where the smaller side's best is expected. The
/// best of 13,104 inter-reply gaps against the best of a 256-sample
/// reservoir compared an extreme of one with a much milder extreme of the
/// other: in 3 of 4 unchanged runs of a flood (2026-12-07) the run's best
/// gap was 28–72% below the reservoir's, and a pass was called
/// "different states of the machine".
fn best_rank(len: usize, other: usize) -> usize {
    let smaller = len.min(other).max(1);
    ((len as f64 / smaller as f64).round() as usize).max(1)
}

/// The gap of an estimate from an extreme sample, worse is positive.
fn gap_between(est: f64, ext: f64, direction: Direction) -> f64 {
    match direction {
        Direction::LowerIsBetter => est / ext - 1.0,
        _ => ext / est - 1.0,
    }
}

/// The estimate and the `rank`-th best sample (1: the best).
fn estimate_and_extreme(
    samples: &[f64],
    estimator: Estimator,
    direction: Direction,
    rank: usize,
) -> Option<(f64, f64)> {
    let low = match (estimator, direction) {
        (Estimator::Quantile(q), Direction::LowerIsBetter) if q <= 0.25 => true,
        (Estimator::Quantile(q), Direction::HigherIsBetter) if q >= 0.75 => false,
        _ => return None,
    };
    let mut finite: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
    if finite.len() < MIN_SAMPLES {
        return None;
    }
    let est = estimate(&finite, estimator)?;
    let k = rank.clamp(1, finite.len()) - 1;
    let at = if low { k } else { finite.len() - 1 - k };
    let ext = *finite.select_nth_unstable_by(at, f64::total_cmp).1;
    (est > 0.0 && ext > 0.0).then_some((est, ext))
}

/// Applies the rule above to a stored-baseline comparison's verdicts, the
/// baseline's reservoir as the reference. Returns the keys it turned
/// `inconclusive`.
pub fn check_slow_state(
    result: &ScenarioResult,
    verdicts: &mut [MetricVerdict],
    baseline: Option<&BaselineScenario>,
) -> Vec<String> {
    let Some(baseline) = baseline else {
        return Vec::new();
    };
    let mut changed = Vec::new();
    for v in verdicts.iter_mut() {
        let key = v.key.to_string();
        let (Some(series), Some(base)) = (
            result.metrics.iter().find(|m| m.key == v.key),
            baseline.metric.get(&key),
        ) else {
            continue;
        };
        if judge(v, &series.samples, &base.reservoir, "the baseline") {
            changed.push(key);
        }
    }
    changed
}

/// The same rule for paired mode: the head's runs pooled against the base's
/// runs pooled. Paired mode's own spell rule compares runs with the best
/// run nearby, scaled by the effect the two sides' best runs show, so it
/// cannot see one side slow in *every* run (seen 2026-11-28 04:27: an
/// unchanged pairing whose 8 base runs took 125–157 µs and whose head runs
/// 95 µs was called `improved` by 26%); the shape of each side's samples
/// can. Returns the keys it turned `inconclusive`.
pub fn check_paired_sides(
    head: &ScenarioResult,
    verdicts: &mut [MetricVerdict],
    base: &ScenarioResult,
) -> Vec<String> {
    let mut changed = Vec::new();
    for v in verdicts.iter_mut() {
        let (Some(h), Some(b)) = (
            head.metrics.iter().find(|m| m.key == v.key),
            base.metrics.iter().find(|m| m.key == v.key),
        ) else {
            continue;
        };
        if judge(v, &h.samples, &b.samples, "the base") {
            changed.push(v.key.to_string());
        }
    }
    changed
}

/// One metric: `current` samples against `reference` ones (a baseline's
/// reservoir, a base side's runs). `true` when it turned the verdict
/// `inconclusive`.
fn judge(v: &mut MetricVerdict, current: &[f64], reference: &[f64], reference_name: &str) -> bool {
    if !matches!(
        v.verdict,
        Verdict::Regressed | Verdict::Improved | Verdict::Pass
    ) || v.bound_violation.is_some()
        || !v.gated
    {
        return false;
    }
    let (n_cur, n_ref) = (finite_len(current), finite_len(reference));
    let (Some((c_est, c_ext)), Some((r_est, r_ext))) = (
        estimate_and_extreme(current, v.estimator, v.direction, best_rank(n_cur, n_ref)),
        estimate_and_extreme(reference, v.estimator, v.direction, best_rank(n_ref, n_cur)),
    ) else {
        return false;
    };
    let (c_gap, r_gap) = (
        gap_between(c_est, c_ext, v.direction),
        gap_between(r_est, r_ext, v.direction),
    );
    if c_gap.max(r_gap) > MAX_STATE_GAP {
        return false;
    }
    // The extremes' change, worse is positive.
    let ext_change = match v.direction {
        Direction::LowerIsBetter => c_ext / r_ext - 1.0,
        _ => 1.0 - c_ext / r_ext,
    };
    let tol = v.tolerance;
    let est = v.estimator;
    let fastest = format!(
        "{:+.1}% from {reference_name}'s",
        signed(ext_change, v.direction) * 100.0
    );
    let why = match v.verdict {
        Verdict::Regressed if c_gap > r_gap + STATE_GAP && ext_change <= tol => format!(
            "not claimed: this run spent most of its time in a slow state of the machine \
             (its {est} is {:.0}% beyond its best sample, {reference_name}'s {:.1}%), and its \
             best sample is {fastest}, within the ±{:.1}% tolerance",
            c_gap * 100.0,
            r_gap * 100.0,
            tol * 100.0
        ),
        Verdict::Improved if r_gap > c_gap + STATE_GAP && ext_change >= -tol => format!(
            "not claimed: {reference_name} ran mostly in a slow state of the machine (its \
             {est} is {:.0}% beyond its best sample, this run's {:.1}%), and this run's best \
             sample is {fastest}, within the ±{:.1}% tolerance{}",
            r_gap * 100.0,
            c_gap * 100.0,
            tol * 100.0,
            if reference_name == "the baseline" {
                ": re-bless"
            } else {
                ""
            }
        ),
        Verdict::Pass if (c_gap - r_gap).abs() > STATE_GAP && ext_change.abs() > tol => format!(
            "not a pass: this run and {reference_name} ran in different states of the \
             machine (their {est} is {:.0}% and {:.0}% beyond their best samples), and the \
             best samples differ by more than the ±{:.1}% tolerance: this run's is {fastest}",
            c_gap * 100.0,
            r_gap * 100.0,
            tol * 100.0
        ),
        _ => return false,
    };
    v.verdict = Verdict::Inconclusive;
    v.note = Some(match v.note.take() {
        Some(n) => format!("{n}; {why}"),
        None => why,
    });
    true
}

fn finite_len(samples: &[f64]) -> usize {
    samples.iter().filter(|x| x.is_finite()).count()
}

/// The extremes' change in the raw sense (`current / baseline − 1`), from
/// the worse-is-positive one.
fn signed(worse: f64, direction: Direction) -> f64 {
    match direction {
        Direction::LowerIsBetter => worse,
        _ => -worse,
    }
}

/// Whether every run in `runs` spent most of its time in a slow state on
/// some gated metric of `keys` (a gap beyond [`STATE_GAP`]); `false` when
/// no run tells (no such metric, too few samples). With no baseline to
/// compare with, the gap is judged against zero: for scenario kinds that
/// repeat one fixed piece of work (`Kind::bless_can_tell`).
pub fn all_in_slow_state(
    runs: &[&ScenarioResult],
    keys: &[(String, Estimator, Direction)],
) -> bool {
    if runs.is_empty() || keys.is_empty() {
        return false;
    }
    let mut told = false;
    for r in runs {
        let mut slow = false;
        for (key, est, dir) in keys {
            let Some(series) = r.metrics.iter().find(|m| &m.key.to_string() == key) else {
                continue;
            };
            if let Some(g) = gap(&series.samples, *est, *dir) {
                told = true;
                slow |= g > STATE_GAP;
            }
        }
        if !slow {
            return false;
        }
    }
    told
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::BaselineMetric;
    use crate::metric::{MetricKey, MetricSeries, Unit};
    use std::collections::BTreeMap;

    const P5: Estimator = Estimator::Quantile(0.05);

    /// `n` samples: `fast_share` of them at `fast` (+ up to 0.5%), the rest
    /// at `slow` (+ up to 0.5%), interleaved deterministically.
    fn run(n: usize, fast: f64, slow: f64, fast_share: f64) -> Vec<f64> {
        (0..n)
            .map(|i| {
                let j = 1.0 + 0.005 * ((i * 7919) % 1000) as f64 / 1000.0;
                if (i as f64 * fast_share).fract() + fast_share >= 1.0 {
                    fast * j
                } else {
                    slow * j
                }
            })
            .collect()
    }

    fn series(samples: Vec<f64>) -> MetricSeries {
        let mut s = MetricSeries::new(
            MetricKey::new("sort_time"),
            Unit::Seconds,
            Direction::LowerIsBetter,
            P5,
        );
        s.samples = samples;
        s
    }

    fn baseline(reservoir: Vec<f64>) -> BaselineScenario {
        let mut reservoir = reservoir;
        reservoir.sort_by(f64::total_cmp);
        let est = estimate(&reservoir, P5).unwrap();
        let mut metric = BTreeMap::new();
        metric.insert(
            "sort_time".to_string(),
            BaselineMetric {
                unit: Unit::Seconds,
                direction: Direction::LowerIsBetter,
                estimator: P5,
                estimate: est,
                runs: vec![est],
                samples_seen: reservoir.len() as u64,
                reservoir,
            },
        );
        BaselineScenario {
            commit: "c".into(),
            date: "2026-11-28T00:00:00Z".into(),
            metric,
        }
    }

    fn verdict(verdict: Verdict, tolerance: f64) -> MetricVerdict {
        MetricVerdict {
            estimator: P5,
            current: 0.0,
            baseline: None,
            tolerance,
            ..MetricVerdict::gated_time("sort_time", verdict)
        }
    }

    fn check(current: Vec<f64>, base: Vec<f64>, v: Verdict, tol: f64) -> (Verdict, Option<String>) {
        let result = ScenarioResult::from_metrics("s", "sort", vec![series(current)]);
        let mut vs = vec![verdict(v, tol)];
        check_slow_state(&result, &mut vs, Some(&baseline(base)));
        (vs[0].verdict, vs[0].note.clone())
    }

    #[test]
    fn gap_is_the_estimate_beyond_the_best_sample() {
        let g = gap(&run(1000, 94.0, 135.0, 0.02), P5, Direction::LowerIsBetter).unwrap();
        assert!(g > 0.4 && g < 0.45, "{g}");
        let g = gap(&run(1000, 94.0, 135.0, 0.5), P5, Direction::LowerIsBetter).unwrap();
        assert!(g < 0.01, "{g}");
        assert_eq!(
            gap(&run(10, 94.0, 135.0, 0.02), P5, Direction::LowerIsBetter),
            None
        );
        assert_eq!(
            gap(
                &run(1000, 94.0, 135.0, 0.02),
                Estimator::Median,
                Direction::LowerIsBetter
            ),
            None
        );
        // A rate mirrored: the p95 below the fastest rate.
        let rates: Vec<f64> = run(1000, 94.0, 135.0, 0.02)
            .iter()
            .map(|t| 1.0 / t)
            .collect();
        let g = gap(&rates, Estimator::Quantile(0.95), Direction::HigherIsBetter).unwrap();
        assert!(g > 0.4 && g < 0.45, "{g}");
    }

    /// 13,000 inter-reply gaps, 0.2% of them short (two replies read in
    /// one wake-up), against a 256-sample reservoir without any: the
    /// run's single best gap says nothing about the machine's state, its
    /// 51st best (where the reservoir's best is expected) does.
    #[test]
    fn runs_of_different_sizes_are_compared_at_matching_ranks() {
        let even =
            |n: usize| (0..n).map(move |i| 5.3e-3 + 0.3e-3 * ((i * 7919) % n) as f64 / n as f64);
        let current: Vec<f64> = even(13_000)
            .enumerate()
            .map(|(i, g)| if i % 500 == 0 { 3.0e-3 } else { g })
            .collect();
        let (v, note) = check(current, even(256).collect(), Verdict::Pass, 0.10);
        assert_eq!(v, Verdict::Pass, "{note:?}");
        assert_eq!(best_rank(13_000, 256), 51);
        assert_eq!((best_rank(256, 13_000), best_rank(200, 256)), (1, 1));
    }

    /// A team's server that sometimes writes two tokens at once (seen
    /// 2026-12-07 on a FastAPI app with a 2 ms token delay): about 0.5% of
    /// the inter-reply gaps are microseconds. The reservoir's best was one
    /// such gap, the run's 67th best another: "their p5 is 19% and 75852%
    /// beyond their best samples", and 4 of 4 unchanged reruns came out
    /// inconclusive. Best samples of another mode tell nothing of a state.
    #[test]
    fn best_samples_of_another_mode_say_nothing_of_the_machines_state() {
        let gaps = |n: usize, every: usize| -> Vec<f64> {
            (0..n)
                .map(|i| {
                    if i % every == every / 2 {
                        2.0e-6 + 1e-9 * (i % 7) as f64
                    } else {
                        1.3e-3 + 0.4e-3 * ((i * 7919) % n) as f64 / n as f64
                    }
                })
                .collect()
        };
        for v in [Verdict::Pass, Verdict::Regressed, Verdict::Improved] {
            let (got, note) = check(gaps(17_000, 200), gaps(256, 256), v, 0.10);
            assert_eq!(got, v, "{note:?}");
        }
    }

    #[test]
    fn a_regression_from_a_slow_state_is_not_claimed() {
        // Unchanged code, run in a slow state with 2% of samples fast.
        let (v, note) = check(
            run(1000, 94.0, 135.0, 0.02),
            run(256, 94.0, 135.0, 0.6),
            Verdict::Regressed,
            0.05,
        );
        assert_eq!(v, Verdict::Inconclusive);
        assert!(note.unwrap().contains("slow state of the machine"));
    }

    #[test]
    fn a_real_slowdown_moves_the_best_samples_and_stands() {
        // +10%, whole run fast: no gap, stands.
        let (v, _) = check(
            run(1000, 103.4, 135.0, 0.6),
            run(256, 94.0, 135.0, 0.6),
            Verdict::Regressed,
            0.05,
        );
        assert_eq!(v, Verdict::Regressed);
        // +10% in a slow state: the best samples show it too, stands.
        let (v, _) = check(
            run(1000, 103.4, 148.0, 0.02),
            run(256, 94.0, 135.0, 0.6),
            Verdict::Regressed,
            0.05,
        );
        assert_eq!(v, Verdict::Regressed);
    }

    #[test]
    fn a_program_whose_baseline_had_the_same_gap_is_judged_as_usual() {
        // A program with a rare fast path: the baseline has the gap too.
        let (v, _) = check(
            run(1000, 94.0, 140.0, 0.02),
            run(256, 94.0, 130.0, 0.02),
            Verdict::Regressed,
            0.05,
        );
        assert_eq!(v, Verdict::Regressed);
        // A wide distribution by nature (a 20% gap in the baseline) whose
        // gap widens by less than STATE_GAP: judged as usual.
        let (v, _) = check(
            run(1000, 94.0, 125.0, 0.02),
            run(256, 94.0, 113.0, 0.02),
            Verdict::Regressed,
            0.05,
        );
        assert_eq!(v, Verdict::Regressed);
    }

    #[test]
    fn an_improvement_over_a_baseline_blessed_in_a_slow_state_is_not_claimed() {
        let (v, note) = check(
            run(1000, 94.0, 135.0, 0.6),
            run(256, 94.0, 135.0, 0.02),
            Verdict::Improved,
            0.05,
        );
        assert_eq!(v, Verdict::Inconclusive);
        assert!(note.unwrap().contains("re-bless"));
        // A real improvement moves the best samples below the baseline's.
        let (v, _) = check(
            run(1000, 84.0, 135.0, 0.6),
            run(256, 94.0, 135.0, 0.02),
            Verdict::Improved,
            0.05,
        );
        assert_eq!(v, Verdict::Improved);
    }

    #[test]
    fn a_pass_between_two_machine_states_is_not_claimed() {
        // Blessed in a slow state (p5 at 135, fastest 94); a real +30%
        // slowdown run on a quiet machine has the same p5.
        let (v, note) = check(
            run(1000, 122.0, 135.0, 0.6),
            run(256, 94.0, 135.0, 0.02),
            Verdict::Pass,
            0.05,
        );
        assert_eq!(v, Verdict::Inconclusive);
        assert!(note.unwrap().contains("different states"));
        // The same states with equal fastest samples: a pass stands.
        let (v, _) = check(
            run(1000, 94.0, 135.0, 0.6),
            run(256, 94.0, 135.0, 0.02),
            Verdict::Pass,
            0.05,
        );
        assert_eq!(v, Verdict::Pass);
    }

    #[test]
    fn paired_sides_one_slow_throughout() {
        // The 04:27 pairing: every base run slow, the head's fast.
        let head =
            ScenarioResult::from_metrics("s", "sort", vec![series(run(480, 94.8, 131.0, 0.9))]);
        let base =
            ScenarioResult::from_metrics("s", "sort", vec![series(run(480, 94.6, 137.0, 0.02))]);
        let mut vs = vec![verdict(Verdict::Improved, 0.05)];
        assert_eq!(
            check_paired_sides(&head, &mut vs, &base),
            vec!["sort_time".to_string()]
        );
        assert_eq!(vs[0].verdict, Verdict::Inconclusive);
        assert!(
            vs[0]
                .note
                .as_deref()
                .unwrap()
                .contains("the base ran mostly in a slow state")
        );
        // Both sides fast: untouched.
        let base =
            ScenarioResult::from_metrics("s", "sort", vec![series(run(480, 94.6, 137.0, 0.9))]);
        let mut vs = vec![verdict(Verdict::Improved, 0.05)];
        assert!(check_paired_sides(&head, &mut vs, &base).is_empty());
    }

    #[test]
    fn bounds_and_other_verdicts_are_left_alone() {
        let (v, _) = check(
            run(1000, 94.0, 135.0, 0.02),
            run(256, 94.0, 135.0, 0.6),
            Verdict::Pass,
            0.05,
        );
        assert_eq!(v, Verdict::Pass);
        let result =
            ScenarioResult::from_metrics("s", "sort", vec![series(run(1000, 94.0, 135.0, 0.02))]);
        let mut vs = vec![verdict(Verdict::Regressed, 0.05)];
        vs[0].bound_violation = Some("above max".into());
        assert!(
            check_slow_state(
                &result,
                &mut vs,
                Some(&baseline(run(256, 94.0, 135.0, 0.6)))
            )
            .is_empty()
        );
        assert_eq!(vs[0].verdict, Verdict::Regressed);
    }

    #[test]
    fn all_in_slow_state_needs_every_run_slow() {
        let keys = vec![("sort_time".to_string(), P5, Direction::LowerIsBetter)];
        let slow =
            ScenarioResult::from_metrics("s", "sort", vec![series(run(1000, 94.0, 135.0, 0.02))]);
        let fast =
            ScenarioResult::from_metrics("s", "sort", vec![series(run(1000, 94.0, 135.0, 0.6))]);
        assert!(all_in_slow_state(&[&slow, &slow], &keys));
        assert!(!all_in_slow_state(&[&slow, &fast], &keys));
        assert!(!all_in_slow_state(&[&slow], &[]));
        let few =
            ScenarioResult::from_metrics("s", "sort", vec![series(run(10, 94.0, 135.0, 0.02))]);
        assert!(
            !all_in_slow_state(&[&few], &keys),
            "too few samples tell nothing"
        );
    }
}
