//! Confirming a paired regression with more pairs (see `run_pairs`).

use crate::compare::{MetricVerdict, Verdict};
use crate::metric::Direction;

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
    let order: Vec<bool> = (0..v.pairs.len()).map(|i| i % 2 == 1).collect();
    crate::stats::paired_ratio_ci(&v.pairs, &order, 0.95).is_none_or(|ci| ci.clipped > 0)
}

/// The verdicts after a confirmation: every pair pooled (`pooled`, whose
/// `pairs` list them all in order), but a metric is `regressed` only if it
/// was in the `first` verdicts too and, where its first verdict
/// [needed confirmation](needs_confirmation), the pairs after the first
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

/// The change the pairs after `first_n` show on their own: the median
/// log-ratio of those in the machine's good state (spells judged with every
/// pair as context), or of all of them when none is; and how many were in
/// the good state.
pub(super) fn second_estimate(v: &MetricVerdict, first_n: usize) -> Option<(f64, usize)> {
    if v.pairs.len() <= first_n {
        return None;
    }
    let keep = crate::compare::spells(&v.pairs, v.direction, v.tolerance).keep;
    let ratios = |only_kept: bool| -> Vec<f64> {
        v.pairs
            .iter()
            .zip(&keep)
            .skip(first_n)
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
