//! The end of a session: the bless (when asked), the checklist, the exit
//! code, and the report.

use super::*;

impl Session {
    /// Blesses (when asked), evaluates the checklist and sets the exit code.
    pub fn finish(mut self, scenarios: Vec<ScenarioReport>) -> Result<RunReport, SetupError> {
        let git_commit = crate::host::git_commit(&self.cfg.baselines_dir.join(".."));
        let cancelled = crate::process::cancel::requested();
        let (mut blessed, not_recorded) = match self.cfg.mode.clone() {
            // A cancelled bless records nothing: half a bless is not a
            // reviewable change.
            Mode::Bless { .. } if cancelled.is_some() => (
                vec!["nothing recorded: the bless was cancelled".to_string()],
                Vec::new(),
            ),
            Mode::Bless {
                reason, replace, ..
            } => self.record(&scenarios, &git_commit, &reason, replace)?,
            _ => (Vec::new(), Vec::new()),
        };
        for n in &not_recorded {
            blessed.push(format!("not recorded: {n}"));
        }
        let cancelled = cancelled.map(|sig| {
            format!(
                "cancelled by {}: {} scenario(s) ran, the last one cut short",
                crate::process::cancel::signal_name(sig),
                scenarios.len()
            )
        });
        let checklist = checklist::evaluate(&scenarios);
        let statuses: Vec<Status> = scenarios.iter().map(|s| s.status).collect();
        let exit_code = crate::process::cancel::exit_code().unwrap_or_else(|| {
            let mode = if matches!(self.cfg.mode, Mode::Bless { .. }) {
                "bless"
            } else {
                "gate"
            };
            exit_code(
                &statuses,
                self.cfg.fail_on_inconclusive,
                !not_recorded.is_empty(),
                crate::outcome::not_measured(mode, &scenarios),
            )
        });
        Ok(RunReport {
            format_version: RESULTS_FORMAT_VERSION,
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            created: jiff::Timestamp::now().to_string(),
            git_commit,
            mode: match self.cfg.mode {
                // Judged against the base tree's runs, not stored baselines.
                Mode::Gate if self.cfg.against.is_some() => "paired",
                Mode::Gate => "gate",
                Mode::Smoke => "smoke",
                Mode::Bless { .. } => "bless",
            }
            .to_string(),
            hardware_dir: self.hardware.dirname(),
            hardware_key: self.hardware,
            scenarios,
            checklist,
            exit_code,
            blessed,
            partition: None,
            not_recorded,
            cancelled,
        })
    }

    /// Records the bless's runs, suite by suite, through the store's guard.
    /// Returns each suite's summary and, for every scenario that ran but was
    /// not recorded, `suite::name — why`.
    fn record(
        &mut self,
        scenarios: &[ScenarioReport],
        git_commit: &Option<String>,
        reason: &str,
        replace: bool,
    ) -> Result<(Vec<String>, Vec<String>), SetupError> {
        let (by_suite, mut why_not) = self.runs_to_record(scenarios);
        let mut blessed = Vec::new();
        let mut recorded: BTreeSet<String> = BTreeSet::new();
        for (suite, per_scenario) in by_suite {
            let provenance = Provenance::now(
                git_commit.clone().unwrap_or_else(|| "unknown".into()),
                reason.to_string(),
            );
            let mode = if replace {
                BlessMode::Replace
            } else {
                BlessMode::Append
            };
            let rounds = self.record_suite(scenarios, &suite, &per_scenario, provenance, mode)?;
            if let Some(summary) = crate::baseline::rounds::combine(rounds) {
                for c in &summary.scenarios {
                    if c.status != crate::baseline::ScenarioStatus::Kept {
                        recorded.insert(format!("{suite}::{}", c.scenario));
                    }
                }
                blessed.push(summary.to_string());
            }
        }
        let not_recorded = scenarios
            .iter()
            .filter(|s| s.result.outcome == Outcome::Ran)
            .map(|s| s.result.full_name())
            .filter(|name| !recorded.contains(name))
            .map(|name| {
                let why = why_not.remove(&name).unwrap_or_else(|| {
                    "every run was refused or had no finite samples (see above)".into()
                });
                format!("{name} — {why}")
            })
            .collect();
        Ok((blessed, not_recorded))
    }

    /// Per suite, each scenario's runs to record, in order; and why each
    /// scenario whose every run was invalid is not recorded.
    #[allow(clippy::type_complexity)]
    fn runs_to_record(
        &mut self,
        scenarios: &[ScenarioReport],
    ) -> (
        BTreeMap<String, Vec<Vec<ScenarioResult>>>,
        BTreeMap<String, String>,
    ) {
        let mut by_suite: BTreeMap<String, Vec<Vec<ScenarioResult>>> = BTreeMap::new();
        let mut why_not = BTreeMap::new();
        for s in scenarios {
            let runs = self
                .bless_runs
                .remove(&s.result.full_name())
                .unwrap_or_else(|| vec![s.result.clone()]);
            match s.status {
                // A failed or untrustworthy run must not become the reference.
                Status::Failed | Status::Regressed | Status::Ignored => {}
                Status::Invalid if runs.iter().all(|r| !r.invalid_reasons.is_empty()) => {
                    why_not.insert(
                        s.result.full_name(),
                        format!(
                            "the run was invalid ({})",
                            s.result.invalid_reasons.join("; ")
                        ),
                    );
                }
                _ => by_suite
                    .entry(s.result.suite.clone())
                    .or_default()
                    .push(runs),
            }
        }
        (by_suite, why_not)
    }

    /// One suite's bless: round `i` records every scenario's `i`-th run.
    fn record_suite(
        &self,
        scenarios: &[ScenarioReport],
        suite: &str,
        per_scenario: &[Vec<ScenarioResult>],
        provenance: Provenance,
        mode: BlessMode,
    ) -> Result<Vec<BlessSummary>, SetupError> {
        // The suite's `gate = false` metrics cannot refuse a run.
        let gated = |r: &ScenarioResult, m: &crate::metric::MetricSeries| {
            scenarios
                .iter()
                .find(|s| s.result.suite == r.suite && s.result.scenario == r.scenario)
                .and_then(|s| crate::compare::rule_for(&s.rules, &m.key))
                .and_then(|rule| rule.gate)
                .unwrap_or(true)
        };
        let n = per_scenario.iter().map(Vec::len).max().unwrap_or(0);
        let mut rounds = Vec::new();
        for i in 0..n {
            let results: Vec<ScenarioResult> = per_scenario
                .iter()
                .filter_map(|runs| runs.get(i).cloned())
                .collect();
            rounds.push(self.store.bless_gated(
                &self.hardware,
                suite,
                &results,
                provenance.clone(),
                if i == 0 { mode } else { BlessMode::Append },
                &gated,
            )?);
        }
        Ok(rounds)
    }
}

/// A run that must not become the reference, nor be repeated to be one.
pub(super) fn unrecordable(s: Status) -> bool {
    matches!(s, Status::Failed | Status::Regressed | Status::Ignored)
}
