//! JUnit XML: one testsuite per suite, one testcase per scenario.

use std::collections::BTreeMap;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::compare::Verdict;
use crate::report::percent;
use crate::result::Outcome;
use crate::run::{RunReport, Status};

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
                            format!("{}: {} is {b}", v.key, v.unit.format(v.current))
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
            .set_time(Duration::from_secs_f64(r.wall_time_s.max(0.0)))
            .set_system_out(super::terminal::scenario_table(s));
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
