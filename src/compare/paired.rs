//! Verdicts from interleaved base/head runs (`neon-perf run --against DIR`).
//!
//! Each pair is one run of the base tree's variant and one of the head's,
//! back to back; each run is reduced by the metric's estimator, and the
//! verdict comes from the Student t interval of the pairs' log-ratios
//! (`stats::paired`). The tolerance rule is the stored-baseline one
//! ([`super::decide`]); only the interval differs. Pure, like the rest of
//! `compare`.

use std::collections::{BTreeMap, BTreeSet};

use super::spells::{Spells, spells};
use super::{
    MetricVerdict, PAIRED_REMEDY, PairOrder, Policy, Verdict, bound_violation, decide, estimate,
    rule_for,
};
use crate::metric::{Estimator, MetricSeries};
use crate::plan::MetricRule;
use crate::result::ScenarioResult;
use crate::stats;

/// Compares every metric of the head runs with the base runs, pair by pair
/// (`base[i]` with `head[i]`). Callers pass only pairs where both runs were
/// valid; `invalid` says why there are too few of them, if so.
/// `order[i]` says where pair `i` ran (its number in run order, which side
/// first); without it, pair `i` is number `i`, base first.
pub fn compare_paired(
    base: &[ScenarioResult],
    head: &[ScenarioResult],
    order: &[PairOrder],
    rules: &BTreeMap<String, MetricRule>,
    tolerance: f64,
    invalid: Option<&str>,
    policy: &Policy,
) -> Vec<MetricVerdict> {
    let keys: BTreeSet<String> = head
        .iter()
        .flat_map(|r| r.metrics.iter().map(|m| m.key.to_string()))
        .collect();
    let judge = Judge {
        order,
        rules,
        tolerance,
        invalid,
        policy,
    };
    keys.iter()
        .filter_map(|key| {
            let heads: Vec<Option<&MetricSeries>> = head.iter().map(|r| r.metric(key)).collect();
            let bases: Vec<Option<&MetricSeries>> = base.iter().map(|r| r.metric(key)).collect();
            let first = heads.iter().flatten().next()?;
            Some(paired_metric(first, &bases, &heads, &judge))
        })
        .collect()
}

/// What every metric of one paired comparison is judged by.
struct Judge<'a> {
    order: &'a [PairOrder],
    rules: &'a BTreeMap<String, MetricRule>,
    tolerance: f64,
    invalid: Option<&'a str>,
    policy: &'a Policy,
}

fn paired_metric(
    first: &MetricSeries,
    bases: &[Option<&MetricSeries>],
    heads: &[Option<&MetricSeries>],
    j: &Judge<'_>,
) -> MetricVerdict {
    let rule = rule_for(j.rules, &first.key);
    let mut v = MetricVerdict::unjudged(first, rule, j.tolerance);
    let estimator = v.estimator;
    let pooled = |side: &[Option<&MetricSeries>]| -> Vec<f64> {
        side.iter()
            .flatten()
            .flat_map(|s| s.finite_samples())
            .collect()
    };
    let current = estimate(&pooled(heads), estimator);
    v.current = current.unwrap_or(f64::NAN);
    v.baseline = estimate(&pooled(bases), estimator);
    let (pairs, placed) = pairs_of(bases, heads, j.order, estimator);
    v.pair_order = placed.clone();
    if let (Some(c), Some(rule)) = (current, rule) {
        v.bound_violation = bound_violation(c, rule, &first.unit);
    }
    v.pairs = pairs.clone();
    let mut notes = Vec::new();
    let spells = spells(&pairs, v.direction, v.tolerance);
    let (pairs, orders): (Vec<(f64, f64)>, Vec<bool>) = pairs
        .iter()
        .zip(&placed)
        .zip(&spells.keep)
        .filter(|(_, keep)| **keep)
        .map(|((p, o), _)| (*p, o.head_first))
        .unzip();
    v.p_value = stats::sign_flip_p(&pairs);
    notes.extend(spells.note.clone());
    let ci = stats::paired_ratio_ci(&pairs, &orders, j.policy.confidence);
    if let Some(ci) = &ci {
        describe_ci(&mut v, ci, &mut notes);
    }
    v.verdict = if v.bound_violation.is_some() {
        Verdict::Regressed
    } else if let Some(why) = j.invalid {
        notes.push(why.to_string());
        Verdict::Invalid
    } else if current.is_none() {
        notes.push("no finite samples".into());
        Verdict::Invalid
    } else if v.baseline.is_none() {
        notes.push("the base tree's variant does not report this metric".into());
        Verdict::NoBaseline
    } else if !v.gated {
        notes.push("reported only: not gated on change".into());
        Verdict::Pass
    } else {
        by_pairs(&v, ci, &spells, pairs.len(), &mut notes)
    };
    if !notes.is_empty() {
        v.note = Some(notes.join("; "));
    }
    v
}

/// Each pair's (base, head) estimates, where both sides have one, and
/// where each pair ran (`order[i]`, else number `i`, base first).
fn pairs_of(
    bases: &[Option<&MetricSeries>],
    heads: &[Option<&MetricSeries>],
    order: &[PairOrder],
    estimator: Estimator,
) -> (Vec<(f64, f64)>, Vec<PairOrder>) {
    bases
        .iter()
        .zip(heads)
        .enumerate()
        .map(|(i, bh)| {
            let at = order.get(i).copied().unwrap_or(PairOrder {
                index: i,
                head_first: false,
            });
            (bh, at)
        })
        .filter_map(|((b, h), at)| {
            Some((
                (
                    estimate(&(*b)?.finite_samples(), estimator)?,
                    estimate(&(*h)?.finite_samples(), estimator)?,
                ),
                at,
            ))
        })
        .unzip()
}

/// The change and its interval, and notes on the pairs' noise.
fn describe_ci(v: &mut MetricVerdict, ci: &stats::PairedCi, notes: &mut Vec<String>) {
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

/// A gated metric with both sides measured: the verdict of the pairs'
/// interval, unless too few pairs are left or the head was slow more
/// often (a change that slows only some runs).
fn by_pairs(
    v: &MetricVerdict,
    ci: Option<stats::PairedCi>,
    spells: &Spells,
    usable: usize,
    notes: &mut Vec<String>,
) -> Verdict {
    let by_interval = |ci: &stats::PairedCi, notes: &mut Vec<String>| {
        let (lo, hi, point) = (ci.lo, ci.hi, ci.point);
        decide(
            lo,
            hi,
            point,
            v.direction,
            v.tolerance,
            PAIRED_REMEDY,
            notes,
        )
    };
    match ci {
        Some(_) if spells.too_few => Verdict::Inconclusive,
        Some(ci) if spells.head_more_often_slow => {
            let d = by_interval(&ci, notes);
            if d == Verdict::Regressed {
                d
            } else {
                notes.push(
                    "the head's runs were slow more often than the base's: \
                     a change that slows only some runs would look like this"
                        .into(),
                );
                Verdict::Inconclusive
            }
        }
        Some(ci) => by_interval(&ci, notes),
        None => {
            notes.push(format!(
                "only {usable} usable pair(s) (positive estimates on both sides): cannot decide"
            ));
            Verdict::Inconclusive
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::{Direction, Estimator, MetricKey, Unit};
    use crate::stats::Rng;

    fn run(samples: Vec<f64>) -> ScenarioResult {
        ScenarioResult::from_metrics(
            "s",
            "x",
            vec![MetricSeries {
                key: MetricKey::new("t"),
                unit: Unit::Seconds,
                direction: Direction::LowerIsBetter,
                estimator: Estimator::Quantile(0.05),
                samples,
            }],
        )
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
        let order: Vec<PairOrder> = (0..b.len()).map(PairOrder::alternating).collect();
        let v = compare_paired(
            &b,
            &h,
            &order,
            &BTreeMap::new(),
            tol,
            None,
            &Policy::default(),
        );
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
        let v = compare_paired(
            &b,
            &h,
            &[],
            &BTreeMap::new(),
            0.05,
            None,
            &Policy::default(),
        );
        assert_eq!(v[0].verdict, Verdict::NoBaseline);
        let (b, h) = drifting(0.0, 4, 1);
        let v = compare_paired(
            &b,
            &h,
            &[],
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
        let v = compare_paired(&b, &h, &[], &rules, 0.05, None, &Policy::default());
        assert_eq!(v[0].verdict, Verdict::Regressed);
        assert!(v[0].bound_violation.is_some());
    }

    /// Runs at the given levels (ms), each with a little seeded jitter.
    fn levels(xs: &[f64], seed: u64) -> Vec<ScenarioResult> {
        let mut rng = Rng::new(seed);
        xs.iter()
            .map(|&l| {
                run((0..40)
                    .map(|_| l * (1.0 + 0.002 * rng.next_f64()))
                    .collect())
            })
            .collect()
    }

    fn judge_levels(b: &[f64], h: &[f64], tol: f64) -> MetricVerdict {
        let order: Vec<PairOrder> = (0..b.len()).map(PairOrder::alternating).collect();
        let v = compare_paired(
            &levels(b, 1),
            &levels(h, 2),
            &order,
            &BTreeMap::new(),
            tol,
            None,
            &Policy::default(),
        );
        v.into_iter().next().unwrap()
    }

    #[test]
    fn slow_spells_are_set_aside_on_both_sides() {
        // Measured shape on the 2-vCPU VM: fast state 94, slow 130-150,
        // three pairs of eight mixed, two slow head runs in a row.
        let b = [94.0, 132.0, 94.0, 94.0, 96.0, 94.0, 94.0, 94.0];
        let aa = [94.0, 94.0, 95.0, 94.0, 141.0, 139.0, 94.0, 94.0];
        let v = judge_levels(&b, &aa, 0.05);
        assert_eq!(v.verdict, Verdict::Pass, "{v:?}");
        assert!(
            v.note
                .as_deref()
                .unwrap()
                .contains("set aside for a slow spell")
        );
        let slow5 = [98.7, 98.7, 99.0, 98.7, 142.0, 139.0, 98.7, 98.7];
        let v = judge_levels(&b, &slow5, 0.03);
        assert_eq!(v.verdict, Verdict::Regressed, "{v:?}");
        assert_eq!(v.pairs.len(), 8, "every pair is reported, kept or not");
    }

    #[test]
    fn two_pairs_left_do_not_decide() {
        // Seen with +10% work: the base slow in its first four runs, the
        // head in two; the two pairs left agreed on -25%, an `improved`.
        let v = judge_levels(
            &[142.0, 142.0, 139.0, 138.0],
            &[154.0, 147.0, 104.0, 103.0],
            0.05,
        );
        assert_eq!(v.verdict, Verdict::Inconclusive, "{v:?}");
        assert!(
            v.note.as_deref().unwrap().contains("cannot decide"),
            "{v:?}"
        );
    }

    #[test]
    fn a_long_spell_on_one_side_is_not_an_effect() {
        // Seen in an A/A run: three base runs in a row slow, one head run.
        // It was once reported `improved` by 12.8%.
        let v = judge_levels(
            &[94.0, 132.0, 122.0, 121.0],
            &[95.0, 96.0, 124.0, 95.0],
            0.05,
        );
        assert!(
            matches!(v.verdict, Verdict::Pass | Verdict::Inconclusive),
            "{v:?}"
        );
    }

    #[test]
    fn a_head_that_is_slow_in_some_runs_is_not_waved_through() {
        // The base is steady; the head is 40% slower in 5 of 8 runs.
        let b = [100.0; 8];
        let h = [140.0, 100.0, 140.0, 140.0, 100.0, 140.0, 100.0, 140.0];
        let v = judge_levels(&b, &h, 0.05);
        assert_ne!(v.verdict, Verdict::Pass, "{v:?}");
        assert!(
            v.note.as_deref().unwrap().contains("slow more often"),
            "{v:?}"
        );
    }

    fn verdict_of(key: &str, verdict: Verdict, change: f64) -> MetricVerdict {
        MetricVerdict {
            change: Some(change),
            ..MetricVerdict::gated_time(key, verdict)
        }
    }

    #[test]
    fn confirmation_needs_the_second_pairs_beyond_tolerance() {
        use crate::run::paired::confirm_with_more_pairs as confirm;
        let with_pairs = |verdict, pairs: &[(f64, f64)]| MetricVerdict {
            pairs: pairs.to_vec(),
            ..verdict_of("t", verdict, 0.04)
        };
        let first = [verdict_of("t", Verdict::Regressed, 0.05)];
        let four = [(100.0, 105.0); 4];
        // The confirmation pairs at +4.5% (one in a slow spell, set aside):
        // beyond the 3% tolerance: confirmed.
        let mut pairs = four.to_vec();
        pairs.extend([
            (100.0, 104.5),
            (100.0, 104.5),
            (145.0, 104.5),
            (100.0, 104.5),
        ]);
        let v = confirm(&first, vec![with_pairs(Verdict::Regressed, &pairs)], 4);
        assert_eq!(v[0].verdict, Verdict::Regressed, "{v:?}");
        assert!(
            v[0].note
                .as_deref()
                .unwrap()
                .contains("confirmed: the confirmation pairs alone gave +4.5%"),
            "{v:?}"
        );
        // The confirmation pairs at +1%: the first pairs were the machine.
        let mut pairs = four.to_vec();
        pairs.extend([(100.0, 101.0); 4]);
        let v = confirm(&first, vec![with_pairs(Verdict::Regressed, &pairs)], 4);
        assert_eq!(v[0].verdict, Verdict::Inconclusive);
        assert!(v[0].note.as_deref().unwrap().contains("not confirmed"));
        // Regressed only once pooled, never in the first pairs: not claimed.
        let mut pairs = vec![(100.0, 102.0); 4];
        pairs.extend([(100.0, 109.0); 4]);
        let v = confirm(
            &[verdict_of("t", Verdict::Pass, 0.02)],
            vec![with_pairs(Verdict::Regressed, &pairs)],
            4,
        );
        assert_eq!(v[0].verdict, Verdict::Inconclusive);
    }

    #[test]
    fn clean_evidence_needs_no_confirmation() {
        use crate::run::paired::needs_confirmation;
        let with_pairs = |pairs: &[(f64, f64)]| MetricVerdict {
            pairs: pairs.to_vec(),
            ..verdict_of("t", Verdict::Regressed, 0.05)
        };
        // Every pair kept, none an outlier: the interval stands alone.
        let clean = [
            (100.0, 105.1),
            (100.2, 105.0),
            (99.9, 104.9),
            (100.1, 105.2),
        ];
        assert!(!needs_confirmation(&with_pairs(&clean)));
        // A run in a slow spell (set aside): confirm.
        let mut spell = clean.to_vec();
        spell[1] = (100.2, 146.0);
        assert!(needs_confirmation(&with_pairs(&spell)));
        // A pair clipped as an outlier (a burst): confirm.
        let burst = [
            (100.0, 105.1),
            (100.2, 105.0),
            (99.9, 104.9),
            (100.1, 105.2),
            (100.0, 105.0),
            (100.0, 107.9),
        ];
        assert!(needs_confirmation(&with_pairs(&burst)));
        // Not regressed, or an absolute bound (a fact, not an estimate): no.
        let pass = MetricVerdict {
            verdict: Verdict::Pass,
            ..with_pairs(&spell)
        };
        assert!(!needs_confirmation(&pass));
        let bound = MetricVerdict {
            bound_violation: Some("over max".into()),
            ..with_pairs(&spell)
        };
        assert!(!needs_confirmation(&bound));
    }
}
