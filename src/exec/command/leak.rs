//! `metric.<name> = { leak = true }` on a `command` scenario: the values one
//! run of the program prints, in order, fitted by a line. A growth per
//! iteration whose 95% interval lies above the tolerance fails the check
//! "memory cleanup: no growth" (checklist: memory cleanup handlers in
//! place); `<name>_growth` reports the slope.

use std::collections::BTreeMap;

use crate::metric::{ChecklistItem, Direction, MetricKey, MetricSeries, Unit};
use crate::plan::ScenarioPlan;
use crate::result::Check;
use crate::stats::linear_trend;

/// Default tolerance: this share of the run's first value, per iteration.
pub const DEFAULT_SHARE: f64 = 0.001;

/// One run's values of each leak-checked metric.
#[derive(Default)]
pub struct LeakRuns {
    /// The last measured run that printed the metric: its values and unit.
    runs: BTreeMap<MetricKey, (Unit, Vec<f64>)>,
}

impl LeakRuns {
    /// Whether `key` has a `leak = true` rule.
    pub fn wanted(plan: &ScenarioPlan, key: &MetricKey) -> bool {
        plan.rule_for(key).and_then(|r| r.leak) == Some(true)
    }

    /// A finished run's values: they replace the previous run's.
    pub fn record(&mut self, run: BTreeMap<MetricKey, (Unit, Vec<f64>)>) {
        self.runs.extend(run);
    }

    /// The checks and growth metrics; a leak rule whose metric was never
    /// printed fails its check too, naming the closest of the `reported`
    /// metric names.
    pub fn finish(
        self,
        plan: &ScenarioPlan,
        point_labels: &BTreeMap<String, String>,
        reported: &[&str],
    ) -> (Vec<MetricSeries>, Vec<Check>) {
        let mut metrics = Vec::new();
        let mut checks = Vec::new();
        for (key, (unit, values)) in &self.runs {
            let tolerance = plan.rule_for(key).and_then(|r| r.leak_tolerance);
            let (growth, check) = judge(key, unit, values, tolerance);
            metrics.extend(growth);
            checks.push(check);
        }
        for (rule, r) in &plan.metric_rules {
            let seen = self
                .runs
                .keys()
                .any(|k| k.name == *rule || k.to_string() == *rule);
            if r.leak == Some(true) && !seen {
                let key = rule
                    .parse::<MetricKey>()
                    .map(|k| k.with_labels(point_labels).to_string())
                    .unwrap_or_else(|_| rule.clone());
                let hint = crate::plan::hint::closest(rule, reported.iter().copied())
                    .map(|c| format!(" (did you mean `metric.{c}`?)"))
                    .unwrap_or_default();
                checks.push(Check::new(
                    check_name(&key),
                    false,
                    format!("the program printed no `{rule}`: nothing to check for growth{hint}"),
                    Some(ChecklistItem::MemoryCleanup),
                ));
            }
        }
        (metrics, checks)
    }
}

fn check_name(key: &str) -> String {
    format!("memory cleanup: no growth of {key}")
}

/// The growth of one run's values against the tolerance.
fn judge(
    key: &MetricKey,
    unit: &Unit,
    values: &[f64],
    tolerance: Option<f64>,
) -> (Option<MetricSeries>, Check) {
    let name = check_name(&key.to_string());
    let item = Some(ChecklistItem::MemoryCleanup);
    let Some(t) = linear_trend(values, 0.95) else {
        return (
            None,
            Check::new(
                name,
                false,
                format!(
                    "`{key}` was printed {} time(s) in one run: fitting a growth needs at least 3 finite values (print it once per iteration)",
                    values.len()
                ),
                item,
            ),
        );
    };
    let tol = tolerance.unwrap_or(DEFAULT_SHARE * values[0].abs());
    let per = |v: f64| format!("{}/iteration", unit.format(v));
    let leaks = t.low > tol;
    let evidence = format!(
        "{} {} [{}, {}] over {} iterations (tolerance {})",
        if leaks {
            "grows"
        } else {
            "no growth beyond tolerance:"
        },
        per(t.slope),
        unit.format(t.low),
        unit.format(t.high),
        t.n,
        per(tol),
    );
    let mut growth_key = MetricKey::new(format!("{}_growth", key.name));
    growth_key.labels = key.labels.clone();
    let growth = MetricSeries::single(growth_key, unit.clone(), Direction::Neither, t.slope);
    (Some(growth), Check::new(name, !leaks, evidence, item))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: f64 = 1024.0 * 1024.0;

    #[test]
    fn a_planted_leak_fails_and_names_its_rate() {
        let v: Vec<f64> = (0..30).map(|i| 100.0 * MIB + i as f64 * MIB).collect();
        let (growth, c) = judge(&MetricKey::new("rss"), &Unit::Bytes, &v, None);
        assert!(!c.passed);
        assert!(c.evidence.starts_with("grows "), "{}", c.evidence);
        assert!(c.evidence.contains("over 30 iterations"), "{}", c.evidence);
        let growth = growth.unwrap();
        assert_eq!(growth.key.to_string(), "rss_growth");
        assert_eq!(growth.samples, [MIB]);
    }

    #[test]
    fn a_flat_series_passes() {
        let v: Vec<f64> = (0..30)
            .map(|i| 100.0 * MIB + (i % 3) as f64 * 4096.0)
            .collect();
        let (_, c) = judge(&MetricKey::new("rss"), &Unit::Bytes, &v, None);
        assert!(c.passed, "{}", c.evidence);
        assert_eq!(c.item, Some(ChecklistItem::MemoryCleanup));
    }

    #[test]
    fn two_values_cannot_be_judged() {
        let (g, c) = judge(&MetricKey::new("rss"), &Unit::Bytes, &[1.0, 2.0], None);
        assert!(g.is_none() && !c.passed);
        assert!(c.evidence.contains("printed 2 time(s)"), "{}", c.evidence);
    }
}
