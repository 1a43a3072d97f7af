//! A regression stands only when a confirmation shows it too; a smoke
//! run's small budget.

use super::*;

pub(super) fn regressed_keys(verdicts: &[MetricVerdict]) -> impl Iterator<Item = String> + '_ {
    verdicts
        .iter()
        .filter(|v| v.verdict == Verdict::Regressed)
        .map(|v| v.key.to_string())
}

/// A regression is claimed only when the confirmation shows it too: the
/// samples of [`spread::CONFIRM_RUNS`] more runs, each started
/// [`spread::SPREAD_GAP`] after the last, pooled. Samples within one run
/// share the machine's state (a neighbour's slow spell, a cold page cache),
/// so one run is one draw, and a run started right after it often shares
/// the spell; the pooled runs are slow only when every one of them is. The
/// confirmation is the result reported; a metric it calls regressed that
/// the first run did not becomes inconclusive.
pub(super) const CONFIRMED: &str = "confirmed by the pooled samples of two more runs, 1 s apart";

pub(super) fn confirm(
    first: Vec<String>,
    mut result: ScenarioResult,
    mut verdicts: Vec<MetricVerdict>,
) -> (ScenarioResult, Vec<MetricVerdict>) {
    let mut unconfirmed = Vec::new();
    for v in &mut verdicts {
        let key = v.key.to_string();
        let was = first.contains(&key);
        if was && v.verdict == Verdict::Invalid {
            // Invalid runs neither confirm nor refute: say which they show,
            // never that the code is cleared.
            result.warnings.push(invalid_confirmation(v));
        } else if v.verdict == Verdict::Regressed {
            if was {
                v.note = Some(match v.note.take() {
                    Some(n) => format!("{n}; {CONFIRMED}"),
                    None => CONFIRMED.into(),
                });
            } else {
                v.verdict = Verdict::Inconclusive;
                v.note = Some("regressed in the confirmation run only".into());
            }
        } else if was {
            unconfirmed.push(key);
        }
    }
    if !unconfirmed.is_empty() {
        result.warnings.push(format!(
            "a first run regressed on {} but the confirmation runs did not (interference from the machine, not the code); the confirmation is reported",
            unconfirmed.join(", ")
        ));
    }
    (result, verdicts)
}

/// What an invalid confirmation says of a first run's regression: the
/// change it measured, and whether that too is beyond the tolerance.
fn invalid_confirmation(v: &MetricVerdict) -> String {
    let key = &v.key;
    let tol = v.tolerance * 100.0;
    let Some((lo, hi)) = v.ci else {
        return format!(
            "a first run regressed on {key}, and the confirmation runs were invalid (see why below) with no interval to judge: not measured, neither confirmed nor cleared"
        );
    };
    // In "worse is positive" terms, as the gate decides.
    let worse_lo = match v.direction {
        Direction::HigherIsBetter => -hi,
        _ => lo,
    };
    let shown = format!(
        "{:+.1}% [{:+.1}%, {:+.1}%]",
        v.change.unwrap_or(f64::NAN) * 100.0,
        lo * 100.0,
        hi * 100.0
    );
    if worse_lo > v.tolerance {
        format!(
            "a first run regressed on {key}, and the confirmation runs, though invalid (see why below), show it too: {shown}, beyond the {tol:.1}% tolerance; not measured, so not a pass"
        )
    } else {
        format!(
            "a first run regressed on {key}; the confirmation runs were invalid (see why below) and show {shown} against a {tol:.1}% tolerance: not measured, neither confirmed nor cleared"
        )
    }
}

/// Smoke budget: enough samples to prove the scenario runs and reports.
pub(super) fn smoke_caps(s: &Settings) -> Settings {
    let r = s.resolve();
    let cap = |d: Duration, max: Duration| Some(HumanDuration(d.min(max)));
    Settings {
        warmup: cap(r.warmup, Duration::from_millis(100)),
        warmup_runs: Some(r.warmup_runs.min(1)),
        min_samples: Some(r.min_samples.min(3)),
        max_samples: Some(r.max_samples.max(3)),
        max_time: cap(r.max_time, Duration::from_millis(500)),
        ..s.clone()
    }
}
