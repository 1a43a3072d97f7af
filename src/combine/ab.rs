//! `neon-perf compare OLD.json NEW.json`: the gate's verdicts for two
//! results files, e.g. the base and the head of a pull request measured on
//! one runner. OLD's samples stand in for a baseline blessed from one run
//! (recorded with the same code `bless` uses); NEW is judged against them
//! with NEW's metric rules and tolerance, by the gate's own compare.

use std::collections::BTreeMap;

use super::{CombineError, ResultsFile, same_hardware};
use crate::baseline::{BaselineMetric, BaselineScenario};
use crate::checklist;
use crate::compare::{self, Policy};
use crate::outcome::{RunReport, ScenarioReport, Status, exit_code, not_measured, status_of};
use crate::result::Outcome;
use crate::stats::rng::hash_str;

/// What `compare` found besides verdicts (scenarios in one file only).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AbNotes {
    /// In OLD, not in NEW: each is a `failed` scenario in the report (a
    /// scenario that went missing must not pass the comparison).
    pub only_old: Vec<String>,
    /// In NEW, not in OLD (or not run there): `no-baseline`.
    pub only_new: Vec<String>,
}

/// NEW judged against OLD. The report keeps NEW's results, with fresh
/// verdicts, checklist and exit code; its mode is `compare`.
pub fn compare_files(
    old: &ResultsFile,
    new: &ResultsFile,
    policy: &Policy,
    fail_on_inconclusive: bool,
) -> Result<(RunReport, AbNotes), CombineError> {
    same_hardware(&[old.clone(), new.clone()])?;
    let olds: BTreeMap<String, &ScenarioReport> = old
        .report
        .scenarios
        .iter()
        .map(|s| (s.result.full_name(), s))
        .collect();
    let mut notes = AbNotes::default();
    let mut scenarios = Vec::new();
    for s in &new.report.scenarios {
        let name = s.result.full_name();
        if let Some(o) = olds.get(&name) {
            same_units(o, s, old, new)?;
        }
        let base = olds
            .get(&name)
            .filter(|o| o.result.outcome == Outcome::Ran)
            .map(|o| as_baseline(o, &old.report));
        if base.is_none() {
            notes.only_new.push(name);
        }
        let verdicts = if s.result.outcome == Outcome::Ran {
            compare::compare_scenario(&s.result, base.as_ref(), &s.rules, s.tolerance, policy)
        } else {
            Vec::new()
        };
        scenarios.push(ScenarioReport {
            status: status_of(&s.result, &verdicts),
            verdicts,
            smoke: false,
            ..s.clone()
        });
    }
    let news: Vec<String> = scenarios.iter().map(|s| s.result.full_name()).collect();
    for o in &old.report.scenarios {
        let name = o.result.full_name();
        if !news.contains(&name) && !notes.only_old.contains(&name) {
            scenarios.push(missing_from_new(o, old, new));
            notes.only_old.push(name);
        }
    }

    let statuses: Vec<Status> = scenarios.iter().map(|s| s.status).collect();
    let report = RunReport {
        created: jiff::Timestamp::now().to_string(),
        mode: "compare".into(),
        checklist: checklist::evaluate(&scenarios),
        exit_code: exit_code(
            &statuses,
            fail_on_inconclusive,
            false,
            not_measured("compare", &scenarios),
        ),
        scenarios,
        blessed: Vec::new(),
        not_recorded: Vec::new(),
        ..new.report.clone()
    };
    Ok((report, notes))
}

/// A scenario OLD has and NEW lacks, as a failed scenario of the report.
fn missing_from_new(o: &ScenarioReport, old: &ResultsFile, new: &ResultsFile) -> ScenarioReport {
    let mut s = o.clone();
    s.result.outcome = Outcome::Failed {
        error: format!(
            "missing from {}: {} has a result for it, so it went unjudged \
             (was the new run filtered, partitioned or cut short?)",
            new.path.display(),
            old.path.display()
        ),
    };
    s.result.metrics.clear();
    s.result.checks.clear();
    s.result.invalid_reasons.clear();
    s.result.warnings.clear();
    s.result.wall_time_s = 0.0;
    s.verdicts.clear();
    s.smoke = false;
    s.status = status_of(&s.result, &s.verdicts);
    s
}

/// A metric whose unit changed between the two files cannot be judged: a
/// ratio of milliseconds to bytes means nothing.
fn same_units(
    o: &ScenarioReport,
    s: &ScenarioReport,
    old: &ResultsFile,
    new: &ResultsFile,
) -> Result<(), CombineError> {
    for m in &s.result.metrics {
        let Some(om) = o.result.metrics.iter().find(|om| om.key == m.key) else {
            continue;
        };
        if !om.unit.same_quantity(&m.unit) {
            return Err(CombineError::Invalid {
                path: new.path.clone(),
                what: format!(
                    "scenario `{}`, metric `{}` is in `{}` here but in `{}` in {}: the two cannot be compared",
                    s.result.full_name(),
                    m.key,
                    m.unit.symbol(),
                    om.unit.symbol(),
                    old.path.display()
                ),
            });
        }
    }
    Ok(())
}

/// One run's metrics as a baseline blessed from that run alone: the same
/// record `bless` writes (estimator, seeded reservoir), so the between-run
/// prior applies as it does to any one-run baseline.
fn as_baseline(s: &ScenarioReport, report: &RunReport) -> BaselineScenario {
    let metric = s
        .result
        .metrics
        .iter()
        .filter_map(|m| {
            let key = m.key.to_string();
            let seed = hash_str(&format!("{}/{}", s.result.scenario, key));
            BaselineMetric::record(None, m, seed).map(|b| (key, b))
        })
        .collect();
    BaselineScenario {
        commit: report
            .git_commit
            .clone()
            .unwrap_or_else(|| "unknown".into()),
        date: report.created.clone(),
        metric,
    }
}
