//! JUnit XML: one testsuite per suite, one testcase per scenario.

use std::collections::BTreeMap;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::compare::Verdict;
use crate::outcome::{RunReport, Status};
use crate::report::percent;
use crate::result::Outcome;

pub fn junit(report: &RunReport) -> Vec<u8> {
    let mut suites: BTreeMap<&str, TestSuite> = BTreeMap::new();
    let mut total = 0.0;
    for s in &report.scenarios {
        let r = &s.result;
        total += r.wall_time_s;
        let status = match (&r.outcome, s.status) {
            (Outcome::Ignored { reason }, _) => {
                let mut st = TestCaseStatus::skipped();
                st.set_message(reason.as_str());
                st
            }
            (Outcome::Failed { error }, _) => {
                let mut st = TestCaseStatus::non_success(NonSuccessKind::Error);
                st.set_message(first_line(error))
                    .set_description(error.as_str());
                st
            }
            (Outcome::Ran, Status::Regressed) => {
                let lines: Vec<String> = s
                    .verdicts
                    .iter()
                    .filter(|v| v.verdict == Verdict::Regressed)
                    .map(|v| {
                        if let Some(b) = &v.bound_violation {
                            format!("{}: {}", v.key, super::bound_text(v, b))
                        } else {
                            let ci =
                                v.ci.map(|(lo, hi)| {
                                    format!(" (95% CI {} to {})", percent(lo), percent(hi))
                                })
                                .unwrap_or_default();
                            format!(
                                "{} regressed: {}{ci}, beyond tolerance {}",
                                v.key,
                                v.change.map(percent).unwrap_or_default(),
                                percent(v.tolerance)
                            )
                        }
                    })
                    .collect();
                let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
                st.set_message(lines.first().cloned().unwrap_or_default())
                    .set_type("regression")
                    .set_description(lines.join("\n"));
                st
            }
            _ => TestCaseStatus::success(),
        };
        let mut case = TestCase::new(r.scenario.as_str(), status);
        case.set_classname(r.suite.as_str())
            .set_time(Duration::from_secs_f64(r.wall_time_s.max(0.0)));
        // A failed scenario has no metrics: its error is the failure text,
        // and an empty table would only be noise.
        let table = super::terminal::scenario_table(s);
        if !table.is_empty() {
            case.set_system_out(table);
        }
        suites
            .entry(r.suite.as_str())
            .or_insert_with(|| TestSuite::new(r.suite.as_str()))
            .add_test_case(case);
    }
    let mut rep = Report::new("neon-perf");
    rep.set_time(Duration::from_secs_f64(total));
    rep.add_test_suites(suites.into_values());
    rep.to_string().expect("junit serializes").into_bytes()
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::{Policy, compare_metric};
    use crate::metric::MetricSeries;
    use crate::plan::MetricRule;
    use crate::report::html::fixture;

    fn xml(report: &RunReport) -> String {
        String::from_utf8(junit(report)).unwrap()
    }

    /// The `<testcase>` element that contains `needle`.
    fn case<'a>(xml: &'a str, needle: &str) -> &'a str {
        xml.split("<testcase")
            .find(|c| c.contains(needle))
            .unwrap_or_else(|| panic!("no testcase with {needle} in\n{xml}"))
    }

    #[test]
    fn a_broken_bound_names_metric_value_and_bound_once() {
        let mut report = fixture::synthetic(20);
        let s = &mut report.scenarios[0];
        let m = MetricSeries::seconds("lat", vec![0.012; 5]);
        let rule = MetricRule {
            max: Some(0.010),
            ..Default::default()
        };
        s.verdicts = vec![compare_metric(
            &m,
            None,
            Some(&rule),
            0.05,
            false,
            &Policy::default(),
        )];
        s.result.metrics = vec![m];
        s.status = Status::Regressed;
        let x = xml(&report);
        let c = case(&x, "<failure");
        assert!(
            c.contains(r#"<failure message="lat: 12.0 ms is above max 10.0 ms" type="regression">lat: 12.0 ms is above max 10.0 ms</failure>"#),
            "{c}"
        );
        // The table beside it has the value in its own column.
        assert!(c.contains("regressed: above max 10.0 ms\n"), "{c}");
        assert!(!c.contains("(12.0 ms)"), "{c}");
    }

    #[test]
    fn a_failed_scenario_has_its_error_and_no_empty_table() {
        let mut report = fixture::synthetic(20);
        let s = &mut report.scenarios[0];
        s.result.outcome = Outcome::Failed {
            error: "`sh run.sh` exited with status 3\nmodel file missing".into(),
        };
        s.result.metrics.clear();
        s.result.checks.clear();
        s.verdicts.clear();
        s.status = Status::Failed;
        let x = xml(&report);
        let c = case(&x, "<error");
        assert!(c.contains("model file missing"), "{c}");
        assert!(!c.contains("<system-out"), "{c}");
        // Its checks, if any, stay, without the table's header.
        report.scenarios[0].result.checks = vec![crate::result::Check::new(
            "monitoring",
            true,
            "2 host samples",
            None,
        )];
        let x = xml(&report);
        let c = case(&x, "<error");
        assert!(
            c.contains("<system-out>  check monitoring passed: 2 host samples\n</system-out>"),
            "{c}"
        );
    }
}
