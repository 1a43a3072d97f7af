//! One bless that records several runs of each scenario: each run goes
//! through the store's guard in turn (refused when worse than the recorded
//! runs, replacing them when better beyond the limit), and what the bless
//! did is shown as one summary against the file as it was before.

use super::store::{BlessSummary, ScenarioStatus};

/// The summaries of a bless's rounds (run 1, run 2, …, in order) as one:
/// the scenarios as the last round left them, each metric's `old` from
/// before the first round; the refused, replaced and skipped runs of every
/// round, each naming its run.
pub fn combine(rounds: Vec<BlessSummary>) -> Option<BlessSummary> {
    let n = rounds.len();
    let mut it = rounds.into_iter().enumerate();
    let (_, first) = it.next()?;
    let label = |i: usize, s: String| {
        if n > 1 {
            format!("{s} (run {} of {n})", i + 1)
        } else {
            s
        }
    };
    let mut out = BlessSummary {
        path: first.path.clone(),
        mode: first.mode,
        scenarios: first.scenarios.clone(),
        skipped: first.skipped.into_iter().map(|s| label(0, s)).collect(),
        refused: first.refused.into_iter().map(|s| label(0, s)).collect(),
        superseded: first.superseded.into_iter().map(|s| label(0, s)).collect(),
    };
    for (i, next) in it {
        let before = std::mem::take(&mut out.scenarios);
        for mut s in next.scenarios {
            let prev = before.iter().find(|p| p.scenario == s.scenario);
            if let Some(p) = prev.filter(|_| s.status == ScenarioStatus::Kept) {
                // Not run this round (it had fewer runs): as it stood.
                out.scenarios.push(p.clone());
                continue;
            }
            if let Some(p) = prev {
                for m in &mut s.metrics {
                    m.old = p
                        .metrics
                        .iter()
                        .find(|pm| pm.key == m.key)
                        .and_then(|pm| pm.old);
                }
                s.status = match (p.status, s.status) {
                    (ScenarioStatus::Added, _) => ScenarioStatus::Added,
                    (ScenarioStatus::Kept, ScenarioStatus::Kept) => ScenarioStatus::Kept,
                    _ if s.metrics.iter().all(|m| m.old == m.new) => ScenarioStatus::Unchanged,
                    _ => ScenarioStatus::Changed,
                };
            }
            out.scenarios.push(s);
        }
        out.skipped
            .extend(next.skipped.into_iter().map(|s| label(i, s)));
        out.refused
            .extend(next.refused.into_iter().map(|s| label(i, s)));
        out.superseded
            .extend(next.superseded.into_iter().map(|s| label(i, s)));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::{BlessMode, MetricChange, ScenarioChange};
    use crate::metric::Unit;

    fn round(scenarios: Vec<ScenarioChange>, refused: &[&str]) -> BlessSummary {
        BlessSummary {
            path: "b/x.toml".into(),
            mode: BlessMode::Append,
            scenarios,
            skipped: vec![],
            refused: refused.iter().map(|s| s.to_string()).collect(),
            superseded: vec![],
        }
    }

    fn change(name: &str, status: ScenarioStatus, old: Option<f64>, new: f64) -> ScenarioChange {
        ScenarioChange {
            scenario: name.into(),
            status,
            metrics: if status == ScenarioStatus::Kept {
                vec![]
            } else {
                vec![MetricChange {
                    key: "t".into(),
                    unit: Unit::Seconds,
                    old,
                    new: Some(new),
                    runs: 1,
                }]
            },
        }
    }

    #[test]
    fn rounds_read_as_one_change_from_the_file_before() {
        use ScenarioStatus::*;
        let combined = combine(vec![
            round(
                vec![
                    change("a", Added, None, 1.0),
                    change("b", Changed, Some(2.0), 2.1),
                ],
                &[],
            ),
            round(
                vec![
                    change("a", Changed, Some(1.0), 1.1),
                    change("b", Kept, None, 0.0),
                ],
                &["a: t +40% (slow spell)"],
            ),
            round(
                vec![
                    change("a", Changed, Some(1.1), 1.05),
                    change("b", Changed, Some(2.1), 2.0),
                ],
                &[],
            ),
        ])
        .unwrap();
        let a = &combined.scenarios[0];
        assert_eq!(
            (a.status, a.metrics[0].old, a.metrics[0].new),
            (Added, None, Some(1.05))
        );
        // b had no run in round 2: it stays as round 1 left it, then round 3
        // brings it back to where it started.
        let b = &combined.scenarios[1];
        assert_eq!(
            (b.status, b.metrics[0].old, b.metrics[0].new),
            (Unchanged, Some(2.0), Some(2.0))
        );
        assert_eq!(
            combined.refused,
            vec!["a: t +40% (slow spell) (run 2 of 3)".to_string()]
        );
        assert!(combine(vec![]).is_none());
    }
}
