//! Confirming a paired regression with more pairs (see `run_pairs`).

use crate::compare::{MetricVerdict, PairOrder, Verdict};
use crate::metric::Direction;

/// Where each of `v.pairs` ran: `v.pair_order`, or, for a verdict without
/// it (written by an older version), `run_pairs`' alternating order.
fn placed(v: &MetricVerdict) -> Vec<PairOrder> {
    if v.pair_order.len() == v.pairs.len() {
        v.pair_order.clone()
    } else {
        (0..v.pairs.len()).map(PairOrder::alternating).collect()
    }
}

/// Whether a `regressed` verdict needs more pairs to count. Not when its
/// evidence is clean: every pair kept (no run in a slow spell) and none
/// clipped as an outlier. Then the machine showed nothing that the t
/// interval does not model, and the interval alone bounds the false alarms
/// (2.5% one-sided at the tolerance, far less beyond it). Confirmation is
/// for what the model misses: slow spells and bursts that line up with the
/// head's runs (once +19.6% on unchanged code, before spells were set aside).
pub fn needs_confirmation(v: &MetricVerdict) -> bool {
    if v.verdict != Verdict::Regressed || v.bound_violation.is_some() {
        return false;
    }
    let spells = crate::compare::spells(&v.pairs, v.direction, v.tolerance);
    if spells.keep.iter().any(|k| !k) {
        return true;
    }
    let order: Vec<bool> = placed(v).iter().map(|o| o.head_first).collect();
    crate::stats::paired_ratio_ci(&v.pairs, &order, 0.95).is_none_or(|ci| ci.clipped > 0)
}

/// The verdicts after a confirmation: every pair pooled (`pooled`, whose
/// `pairs` list them all in order), but a metric is `regressed` only if it
/// was in the `first` verdicts too and, where its first verdict
/// [needed confirmation](needs_confirmation), the pairs run after the first
/// `first_n` (the confirmation) put it beyond its tolerance on their own: the median
/// log-ratio of those of them in the machine's good state (all of them if
/// none are). They need not be significant on their own: a slow spell that
/// faked the first regression does not also fake the second set's
/// estimate, and asking for two significant results would miss real
/// regressions close to the tolerance.
pub fn confirm_with_more_pairs(
    first: &[MetricVerdict],
    mut pooled: Vec<MetricVerdict>,
    first_n: usize,
) -> Vec<MetricVerdict> {
    for v in &mut pooled {
        let before = first.iter().find(|f| f.key == v.key);
        let was = before.is_some_and(|f| f.verdict == Verdict::Regressed);
        let needed = before.is_some_and(needs_confirmation);
        let again = second_estimate(v, first_n).map(|(c, _)| c);
        let beyond = again.is_some_and(|c| worse(c, v.direction) > v.tolerance);
        let second_said =
            again.map_or("no estimate".to_string(), |c| format!("{:+.1}%", 100.0 * c));
        let mut note = |text: String| {
            v.note = Some(match v.note.take() {
                Some(n) => format!("{n}; {text}"),
                None => text,
            });
        };
        let regressed = v.verdict == Verdict::Regressed;
        if regressed && v.bound_violation.is_some() {
            // An absolute bound is a fact about the runs, not an estimate.
            continue;
        }
        match (regressed, was, needed, beyond) {
            (true, true, true, true) => note(format!(
                "confirmed: the confirmation pairs alone gave {second_said}"
            )),
            // Clean evidence needed no confirmation; the pooled pairs agree.
            (true, true, false, _) => {}
            (true, _, _, _) => {
                v.verdict = Verdict::Inconclusive;
                note(format!(
                    "not confirmed: {} the confirmation pairs alone gave {second_said}",
                    if was {
                        "regressed in the first pairs, but"
                    } else {
                        "regressed only with the confirmation pairs pooled;"
                    }
                ));
            }
            (false, true, _, _) => note(format!(
                "the first pairs regressed, the confirmation pairs gave {second_said}: pooled, as shown"
            )),
            _ => {}
        }
    }
    pooled
}

/// The change the pairs run after the first `first_n` show on their own
/// (by their number in run order, so a dropped pair shifts nothing): the median
/// log-ratio of those in the machine's good state (spells judged with every
/// pair as context), or of all of them when none is; and how many were in
/// the good state.
pub(super) fn second_estimate(v: &MetricVerdict, first_n: usize) -> Option<(f64, usize)> {
    let placed = placed(v);
    if placed.iter().all(|o| o.index < first_n) {
        return None;
    }
    let keep = crate::compare::spells(&v.pairs, v.direction, v.tolerance).keep;
    let ratios = |only_kept: bool| -> Vec<f64> {
        v.pairs
            .iter()
            .zip(&keep)
            .zip(&placed)
            .filter(|&(_, o)| o.index >= first_n)
            .map(|(pk, _)| pk)
            .filter(|&(&(b, h), &k)| (k || !only_kept) && b > 0.0 && h > 0.0)
            .map(|(&(b, h), _)| (h / b).ln())
            .filter(|x| x.is_finite())
            .collect()
    };
    let mut d = ratios(true);
    let kept = d.len();
    if d.is_empty() {
        d = ratios(false);
    }
    if d.is_empty() {
        return None;
    }
    d.sort_by(f64::total_cmp);
    let n = d.len();
    let median = if n % 2 == 1 {
        d[n / 2]
    } else {
        (d[n / 2 - 1] + d[n / 2]) / 2.0
    };
    Some((median.exp() - 1.0, kept))
}

/// A change in "worse is positive" terms.
fn worse(change: f64, direction: Direction) -> f64 {
    match direction {
        Direction::HigherIsBetter => -change,
        _ => change,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::PairOrder;

    fn regressed(pairs: Vec<(f64, f64)>, indices: &[usize]) -> MetricVerdict {
        MetricVerdict {
            change: Some(0.05),
            ci: Some((0.04, 0.06)),
            pair_order: indices.iter().map(|&i| PairOrder::alternating(i)).collect(),
            pairs,
            ..MetricVerdict::gated_time("t", Verdict::Regressed)
        }
    }

    #[test]
    fn the_confirmation_pairs_are_found_by_their_number_when_a_pair_was_dropped() {
        // Pair 3 of the first four was dropped (an invalid run): the
        // confirmation pairs 4..=7 are at positions 3..=6 of `pairs`.
        let mut pairs = vec![(100.0, 105.0); 3];
        pairs.extend([
            (100.0, 101.0),
            (100.0, 104.5),
            (100.0, 104.5),
            (100.0, 101.0),
        ]);
        let v = regressed(pairs, &[0, 1, 2, 4, 5, 6, 7]);
        let (change, kept) = second_estimate(&v, 4).unwrap();
        assert_eq!(kept, 4);
        // The median of +1, +1, +4.5, +4.5 (skipping four positions would
        // lose pair 4 and give +4.5%: "confirmed" beyond the 3% tolerance).
        assert!((change - 0.0275).abs() < 5e-4, "{change}");
        let confirmed = confirm_with_more_pairs(std::slice::from_ref(&v), vec![v.clone()], 4);
        assert_eq!(confirmed[0].verdict, Verdict::Inconclusive);
    }

    #[test]
    fn a_verdict_without_pair_order_falls_back_to_alternating() {
        let mut pairs = vec![(100.0, 105.0); 4];
        pairs.extend([(100.0, 104.0); 4]);
        let mut v = regressed(pairs, &[]);
        v.pair_order.clear();
        assert_eq!(second_estimate(&v, 4).map(|(_, k)| k), Some(4));
        assert_eq!(second_estimate(&v, 8), None);
    }
}
