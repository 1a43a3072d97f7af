//! A pairing that could not decide a metric, decided by the stored
//! baseline instead (`compare::decidable_by_baseline` says which metrics
//! may be; `run/session.rs` runs the head once more in stored mode, with its
//! confirmation and slow-state rules, and hands both here).

use crate::compare::{MetricVerdict, Verdict};
use crate::result::ScenarioResult;

/// The pairing's result and verdicts, where each metric of `keys` takes the
/// stored-mode verdict of the same metric when that one decided (`pass`,
/// `improved` or `regressed`), keeping the pairs as evidence and both notes;
/// otherwise it stays `inconclusive` and says what the stored run gave. The
/// stored run's wall time, warnings and invalid reasons are added to the
/// pairing's.
pub fn decided_by_baseline(
    mut paired: ScenarioResult,
    mut verdicts: Vec<MetricVerdict>,
    keys: &[String],
    stored: &ScenarioResult,
    stored_verdicts: &[MetricVerdict],
) -> (ScenarioResult, Vec<MetricVerdict>) {
    let mut decided = Vec::new();
    for v in verdicts
        .iter_mut()
        .filter(|v| keys.contains(&v.key.to_string()))
    {
        let why = v.note.take().unwrap_or_default();
        let Some(s) = stored_verdicts.iter().find(|s| s.key == v.key) else {
            v.note = Some(format!(
                "{why}; the stored-baseline run of this tree did not report it"
            ));
            continue;
        };
        let stored_note = s
            .note
            .as_deref()
            .map_or(String::new(), |n| format!(" ({n})"));
        if matches!(
            s.verdict,
            Verdict::Pass | Verdict::Improved | Verdict::Regressed
        ) {
            let mut taken = s.clone();
            taken.pairs = std::mem::take(&mut v.pairs);
            taken.pair_order = std::mem::take(&mut v.pair_order);
            taken.note = Some(format!(
                "the pairs could not decide ({why}); decided against the stored baseline, \
                 whose runs match the base tree's, by a run of this tree: {}{stored_note}",
                s.verdict
            ));
            *v = taken;
            decided.push(v.key.to_string());
        } else {
            v.note = Some(format!(
                "{why}; the stored baseline could not decide either: {}{stored_note}",
                s.verdict
            ));
        }
    }
    paired.warnings.push(format!(
        "the pairs left {} undecided: a stored-baseline run of this tree {}",
        keys.join(", "),
        if decided.is_empty() {
            "did not decide it either".to_string()
        } else {
            format!("decided {}", decided.join(", "))
        }
    ));
    for w in &stored.warnings {
        paired.warnings.push(format!("stored-baseline run: {w}"));
    }
    paired
        .invalid_reasons
        .extend(stored.invalid_reasons.iter().cloned());
    paired.wall_time_s += stored.wall_time_s;
    (paired, verdicts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::PairOrder;
    use crate::metric::MetricSeries;

    fn verdict(key: &str, verdict: Verdict, note: &str) -> MetricVerdict {
        MetricVerdict {
            note: Some(note.into()),
            pairs: vec![(94.0, 99.0), (140.0, 150.0)],
            pair_order: (0..2).map(PairOrder::alternating).collect(),
            ..MetricVerdict::gated_time(key, verdict)
        }
    }

    fn result(wall: f64, warning: &str) -> ScenarioResult {
        let mut r =
            ScenarioResult::from_metrics("s", "sort", vec![MetricSeries::seconds("t", vec![1.0])]);
        r.wall_time_s = wall;
        r.warnings.push(warning.into());
        r
    }

    #[test]
    fn a_decided_stored_verdict_replaces_the_undecided_one_and_keeps_the_pairs() {
        let paired = vec![
            verdict("t", Verdict::Inconclusive, "31 of 32 pairs set aside"),
            verdict("u", Verdict::Pass, "paired: 4 pairs"),
        ];
        let stored = vec![verdict(
            "t",
            Verdict::Regressed,
            "confirmed by two more runs",
        )];
        let (r, v) = decided_by_baseline(
            result(11.0, "paired with the base tree: 32 pairs"),
            paired,
            &["t".to_string()],
            &result(4.0, "other processes used 0.3 cores"),
            &stored,
        );
        assert_eq!(v[0].verdict, Verdict::Regressed);
        assert_eq!(v[0].pairs, vec![(94.0, 99.0), (140.0, 150.0)]);
        let note = v[0].note.as_deref().unwrap();
        assert!(
            note.starts_with("the pairs could not decide (31 of 32 pairs set aside)"),
            "{note}"
        );
        assert!(
            note.ends_with("regressed (confirmed by two more runs)"),
            "{note}"
        );
        assert_eq!(v[1].verdict, Verdict::Pass, "other metrics untouched");
        assert_eq!(r.wall_time_s, 15.0);
        assert!(
            r.warnings.iter().any(|w| w.ends_with("decided t")),
            "{:?}",
            r.warnings
        );
        assert!(
            r.warnings
                .contains(&"stored-baseline run: other processes used 0.3 cores".to_string())
        );
    }

    #[test]
    fn an_undecided_stored_verdict_leaves_the_metric_inconclusive_and_says_so() {
        let paired = vec![verdict("t", Verdict::Inconclusive, "too few pairs")];
        for s in [
            vec![verdict("t", Verdict::Invalid, "contention")],
            vec![verdict("t", Verdict::Inconclusive, "slow state")],
        ] {
            let (r, v) = decided_by_baseline(
                result(1.0, "w"),
                paired.clone(),
                &["t".to_string()],
                &result(1.0, "x"),
                &s,
            );
            assert_eq!(v[0].verdict, Verdict::Inconclusive);
            assert!(
                v[0].note
                    .as_deref()
                    .unwrap()
                    .contains("the stored baseline could not decide either"),
                "{:?}",
                v[0].note
            );
            assert!(
                r.warnings
                    .iter()
                    .any(|w| w.ends_with("did not decide it either"))
            );
        }
        let (_, v) = decided_by_baseline(
            result(1.0, "w"),
            paired,
            &["t".to_string()],
            &result(1.0, "x"),
            &[],
        );
        assert!(v[0].note.as_deref().unwrap().ends_with("did not report it"));
    }
}
