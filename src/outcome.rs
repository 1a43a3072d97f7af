//! The results model every layer above the executors reads: how each
//! scenario ended ([`Status`], [`ScenarioReport`]), the whole run
//! ([`RunReport`], the JSON results file), the checklist's entries, and the
//! one exit-code rule. It imports only what results are made of (`result`,
//! `compare`'s verdicts, `metric`, `plan`'s rules, `baseline`'s key), so
//! `run`, `checklist`, `report` and `combine` all depend on it and on
//! nothing of each other's for it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::baseline::HardwareKey;
use crate::compare::{MetricVerdict, Verdict};
use crate::metric::ChecklistItem;
use crate::result::{Outcome, ScenarioResult};

/// Version of the JSON results schema (docs/json-schema.md).
pub const RESULTS_FORMAT_VERSION: u32 = 1;

/// How one scenario ended, all verdicts considered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Improved,
    NoBaseline,
    Inconclusive,
    Invalid,
    Regressed,
    Failed,
    Ignored,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Improved => "IMPROVED",
            Status::NoBaseline => "NO-BASELINE",
            Status::Inconclusive => "INCONCLUSIVE",
            Status::Invalid => "INVALID",
            Status::Regressed => "REGRESSED",
            Status::Failed => "FAILED",
            Status::Ignored => "IGNORED",
        }
    }

    /// Whether the scenario's metrics were judged against a baseline.
    pub fn compared(self) -> bool {
        matches!(
            self,
            Status::Pass | Status::Improved | Status::Inconclusive | Status::Regressed
        )
    }

    /// Whether `cargo test` should fail the trial.
    pub fn is_failure(self) -> bool {
        matches!(self, Status::Regressed | Status::Failed)
    }
}

/// One scenario's result with its verdicts.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScenarioReport {
    #[serde(flatten)]
    pub result: ScenarioResult,
    pub status: Status,
    pub verdicts: Vec<MetricVerdict>,
    /// Checklist items the suite says this scenario is evidence for.
    pub checklist: Vec<ChecklistItem>,
    /// Sampled on the smoke budget.
    pub smoke: bool,
    /// The scenario's per-metric rules and default tolerance, so that
    /// `neon-perf compare` can judge two results files with the same rules.
    #[serde(default)]
    pub rules: BTreeMap<String, crate::plan::MetricRule>,
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
    /// Its profile, when it was profiled (`profile` setting, `--profile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<crate::profile::ProfileReport>,
}

fn default_tolerance() -> f64 {
    crate::plan::Resolved::default().tolerance
}

/// The whole run: the JSON results file is this, serialized.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunReport {
    pub format_version: u32,
    pub tool_version: String,
    pub created: String,
    pub git_commit: Option<String>,
    pub mode: String,
    pub hardware_key: HardwareKey,
    pub hardware_dir: String,
    pub scenarios: Vec<ScenarioReport>,
    pub checklist: Vec<ChecklistEntry>,
    pub exit_code: i32,
    /// Baseline changes, when the run blessed.
    pub blessed: Vec<String>,
    /// The shard this run measured (`--partition`), e.g. "hash:2/4".
    #[serde(default)]
    pub partition: Option<String>,
    /// A bless's scenarios that ran but were not recorded (invalid runs,
    /// runs refused by the recorded ones), each `suite::name — why`: they
    /// make the bless exit [`EXIT_NOT_RECORDED`].
    #[serde(default)]
    pub not_recorded: Vec<String>,
    /// Set when a SIGINT or SIGTERM cancelled the run: which signal, and
    /// which scenarios finished. The exit code is then 128 + the signal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled: Option<String>,
}

/// A bless that recorded nothing for a scenario that ran (and nothing
/// failed or regressed): the baseline a user asked for does not exist.
pub const EXIT_NOT_RECORDED: i32 = 4;

/// A gate whose scenario stayed invalid (a busy machine, throttling) after
/// its retries: not measured, so neither a pass nor a regression.
pub const EXIT_NOT_MEASURED: i32 = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemState {
    Ticked,
    Failed,
    NotChecked,
    /// Its checks passed, but no scenario behind it was compared with a
    /// baseline: nothing says its performance held.
    NotCompared,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChecklistEntry {
    pub item: ChecklistItem,
    /// Read back as empty; [`ChecklistItem::title`] restores it.
    #[serde(skip_deserializing)]
    pub title: &'static str,
    pub state: ItemState,
    /// One line per piece of evidence: "scenario: check — evidence".
    pub evidence: Vec<String>,
    /// Why an item is not checked or failed.
    pub reason: Option<String>,
}

/// A scenario's status from its outcome and metric verdicts.
pub fn status_of(result: &ScenarioResult, verdicts: &[MetricVerdict]) -> Status {
    match &result.outcome {
        Outcome::Ignored { .. } => return Status::Ignored,
        Outcome::Failed { .. } => return Status::Failed,
        Outcome::Ran => {}
    }
    let has = |v: Verdict| verdicts.iter().any(|m| m.verdict == v);
    if has(Verdict::Regressed) {
        Status::Regressed
    } else if has(Verdict::Invalid) || !result.invalid_reasons.is_empty() {
        Status::Invalid
    } else if has(Verdict::Inconclusive) {
        Status::Inconclusive
    } else if has(Verdict::Improved) {
        Status::Improved
    } else if has(Verdict::Pass) {
        Status::Pass
    } else {
        Status::NoBaseline
    }
}

/// The one exit-code rule, for every front end and every results file:
/// 1 a regression or failure; 3 only inconclusive/invalid when the policy
/// says so; [`EXIT_NOT_RECORDED`] a bless that recorded nothing for a
/// scenario that ran (`not_recorded`); [`EXIT_NOT_MEASURED`] a gate whose
/// scenario stayed invalid after its retries (`not_measured`, see
/// [`not_measured`]); else 0. (2, bad input or setup, is decided where it
/// happens: before anything runs, or writing a report; 130/143 a cancel.)
pub fn exit_code(
    statuses: &[Status],
    fail_on_inconclusive: bool,
    not_recorded: bool,
    not_measured: bool,
) -> i32 {
    if statuses.iter().any(|s| s.is_failure()) {
        1
    } else if fail_on_inconclusive
        && statuses
            .iter()
            .any(|s| matches!(s, Status::Inconclusive | Status::Invalid))
    {
        3
    } else if not_recorded {
        EXIT_NOT_RECORDED
    } else if not_measured {
        EXIT_NOT_MEASURED
    } else {
        0
    }
}

/// A gate that could not measure: a scenario (not a smoke one) stayed
/// invalid after its retries, so its verdict is unknown and the gate must
/// not read as a pass. A bless says the same through `not_recorded`.
pub fn not_measured(mode: &str, scenarios: &[ScenarioReport]) -> bool {
    mode != "bless"
        && scenarios
            .iter()
            .any(|s| s.status == Status::Invalid && !s.smoke)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        use Status::*;
        let table: &[(&[Status], bool, bool, bool, i32)] = &[
            (
                &[Pass, NoBaseline, Ignored, Improved],
                true,
                false,
                false,
                0,
            ),
            (&[Pass, Regressed], false, false, false, 1),
            (&[Failed], false, false, false, 1),
            (&[Failed, Inconclusive], true, false, false, 1),
            (&[Inconclusive], false, false, false, 0),
            (&[Pass, Inconclusive], true, false, false, 3),
            (&[Invalid], true, false, true, 3),
            (&[Invalid, Regressed], true, false, true, 1),
            (&[Invalid, Regressed], false, false, true, 1),
            (&[Pass, Invalid], false, false, true, EXIT_NOT_MEASURED),
            (&[Invalid], false, false, true, EXIT_NOT_MEASURED),
            (&[], true, false, false, 0),
            (&[Pass], false, true, false, EXIT_NOT_RECORDED),
            (&[Invalid], true, true, false, 3),
            (&[Regressed], false, true, false, 1),
        ];
        for (statuses, strict, not_recorded, not_measured, want) in table {
            assert_eq!(
                exit_code(statuses, *strict, *not_recorded, *not_measured),
                *want,
                "{statuses:?} {strict} {not_recorded} {not_measured}"
            );
        }
    }
}
