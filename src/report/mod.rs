//! Reporters turn a [`RunReport`] into bytes; they never write files
//! themselves. [`files`] (one owner) writes what they return, for the CLI
//! and the harness alike.

pub mod annotations;
pub mod dashboards;
pub mod files;
pub mod github;
pub mod headline;
pub mod html;
pub mod junit;
pub mod markdown;
pub mod terminal;

use crate::compare::MetricVerdict;
use crate::outcome::RunReport;

/// The JSON results (schema: docs/json-schema.md).
pub fn json(report: &RunReport) -> Vec<u8> {
    let mut v = serde_json::to_vec_pretty(report).expect("report serializes");
    v.push(b'\n');
    v
}

/// A broken bound with the value that broke it, each said once:
/// "12.0 ms is above max 10.0 ms" (`bound` is the verdict's
/// `bound_violation`). For reports with no column for the value.
pub fn bound_text(v: &MetricVerdict, bound: &str) -> String {
    format!("{} is {bound}", v.unit.format(v.current))
}

/// The `inconclusive` verdicts of a scenario that say why (the key, the
/// note): shown under its table, since the verdict alone does not say
/// what to do.
pub fn inconclusive_notes(s: &crate::outcome::ScenarioReport) -> Vec<(String, &str)> {
    s.verdicts
        .iter()
        .filter(|v| v.verdict == crate::compare::Verdict::Inconclusive)
        .filter_map(|v| Some((v.key.to_string(), v.note.as_deref()?)))
        .collect()
}

/// The baseline and current cells of a verdict's row: a dash where there
/// is no value, and a zero in the scale of the other side ("0 ms" beside
/// "12.3 ms").
pub fn value_cells(v: &MetricVerdict) -> (String, String) {
    let baseline = v
        .baseline
        .map(|b| v.unit.format_like(b, Some(v.current)))
        .unwrap_or_else(|| crate::units::NO_VALUE.into());
    (baseline, v.unit.format_like(v.current, v.baseline))
}

/// "+3.2%" for a relative change.
pub fn percent(change: f64) -> String {
    if change.is_finite() {
        format!("{:+.1}%", change * 100.0)
    } else {
        "n/a".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::{Policy, compare_metric};
    use crate::metric::MetricSeries;
    use crate::report::html::fixture;

    /// The synthetic report with one more metric in its first scenario,
    /// and that metric's verdict changed by `edit`.
    fn with_metric(m: MetricSeries, edit: impl FnOnce(&mut MetricVerdict)) -> RunReport {
        let mut report = fixture::synthetic(20);
        let s = &mut report.scenarios[0];
        let mut v = compare_metric(&m, None, None, 0.05, false, &Policy::default());
        edit(&mut v);
        s.verdicts.push(v);
        s.result.metrics.push(m);
        report
    }

    /// The row of `metric`, its cells' spacing made single (column
    /// widths depend on the other rows).
    fn row(table: &str, metric: &str) -> String {
        table
            .lines()
            .find(|l| l.contains(metric))
            .unwrap_or_else(|| panic!("no row for {metric} in\n{table}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn a_metric_with_no_samples_shows_a_dash_in_every_table() {
        let report = with_metric(MetricSeries::seconds("lat", vec![]), |_| {});
        assert!(report.scenarios[0].verdicts[2].current.is_nan());
        let term = terminal::scenario_table(&report.scenarios[0]);
        let md = String::from_utf8(markdown::markdown(&report)).unwrap();
        let html = String::from_utf8(html::html(&report)).unwrap();
        for out in [&term, &md, &html] {
            assert!(!out.contains("NaN"), "{out}");
        }
        assert!(row(&term, "lat ").contains("p5 of 0 — — —"), "{term}");
        assert!(row(&md, "`lat`").contains("| `lat` | — | — |"), "{md}");
    }

    #[test]
    fn a_zero_takes_the_scale_of_the_value_beside_it() {
        let report = with_metric(MetricSeries::seconds("idle", vec![0.0; 5]), |v| {
            v.baseline = Some(3.2e-6)
        });
        let term = terminal::scenario_table(&report.scenarios[0]);
        assert!(row(&term, "idle").contains("3.20 µs 0 µs"), "{term}");
        let md = String::from_utf8(markdown::markdown(&report)).unwrap();
        assert!(row(&md, "`idle`").contains("| 3.20 µs | 0 µs |"), "{md}");
        // Alone, a zero time is in milliseconds, not "0 s".
        let report = with_metric(MetricSeries::seconds("idle", vec![0.0; 5]), |_| {});
        let term = terminal::scenario_table(&report.scenarios[0]);
        assert!(row(&term, "idle").contains("— 0 ms"), "{term}");
    }
}
