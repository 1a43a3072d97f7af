//! plan → execute → compare → report, in that order. The CLI and the
//! libtest harness both drive a [`Session`]: one scenario at a time, then
//! `finish` blesses (when asked) and builds the report.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::baseline::{
    BaselineError, BaselineFile, BaselineStore, BlessMode, BlessSummary, HardwareKey, Provenance,
    agreement,
};
use crate::checklist;
use crate::compare::{self, MetricVerdict, Policy, Verdict};
use crate::config::{self, ConfigError};
use crate::exec::{self, Availability, ExecEnv, ExecError, ExecEvent, RunCtx};
use crate::metric::{ChecklistItem, Direction, Estimator};
use crate::monitor::{self, Monitor};
use crate::outcome::{
    RESULTS_FORMAT_VERSION, RunReport, ScenarioReport, Status, exit_code, status_of,
};
use crate::plan::{ScenarioPlan, Settings, Suite};
use crate::result::{Check, MonitorSummary, Outcome, ScenarioResult};
use crate::units::HumanDuration;

mod bless;
mod confirm;
mod execute;
mod finish;
pub mod paired;
mod profile;
mod session;
pub mod spread;

use bless::{bless_extra_runs, choose_bless_runs, execute_spread};
use confirm::{confirm, regressed_keys, smoke_caps};
pub use execute::execute;
use finish::unrecordable;
use paired::{Against, BaseTree, DEFAULT_PAIRS, Paired};

/// What the run is for.
#[derive(Clone, Debug, PartialEq)]
pub enum Mode {
    /// Measure and compare with baselines.
    Gate,
    /// Prove every scenario runs and reports, on a small sampling budget,
    /// without gating on speed (absolute bounds still apply).
    Smoke,
    /// Measure and record the results as baselines: `runs` runs of each
    /// scenario, [`spread::SPREAD_GAP`] apart, each through the bless guard.
    Bless {
        reason: String,
        replace: bool,
        runs: u32,
    },
}

/// Everything a session needs to know up front.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub mode: Mode,
    /// Settings from the command line; they win over suite and scenario.
    pub overrides: Settings,
    pub baselines_dir: PathBuf,
    pub policy: Policy,
    pub env: ExecEnv,
    /// In gate mode, run scenarios that have no baseline for this hardware
    /// as smoke tests (what `cargo test` does: nothing to compare with, so a
    /// full sampling budget would buy nothing).
    pub smoke_without_baseline: bool,
    /// Exit 3 when the only problems are inconclusive or invalid verdicts.
    pub fail_on_inconclusive: bool,
    /// Re-run a scenario that regressed and claim only what both runs show.
    pub confirm_regressions: bool,
    /// The pause before each confirmation run and between the runs a bless
    /// records ([`spread::SPREAD_GAP`] unless a test shortens it).
    pub spread_gap: Duration,
    /// Paired A/B against a base tree instead of the stored baselines.
    pub against: Option<Against>,
    /// Where profiles go (the `profile` setting), normally
    /// `<reports folder>/profiles`.
    pub profile_dir: PathBuf,
}

/// Problems that stop a run before or after measuring (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Baseline(#[from] BaselineError),
    #[error(
        "refusing to record baselines from a debug build: its timings are not the optimized code's\n  hint: use `cargo run --release -- bless` or `NEON_BLESS=1 cargo test --release --test perf`"
    )]
    DebugBuild,
    #[error("no scenarios matched {0}")]
    NothingMatched(String),
    #[error("--against: {0}")]
    Against(#[from] paired::BaseTreeError),
    #[error("--against: paired A/B is a way to gate: it cannot be combined with bless or smoke")]
    AgainstNotGating,
    #[error("--against: current directory: {0}")]
    CurrentDir(std::io::Error),
}

/// Loads every suite under `paths`; all errors are collected.
pub fn load_suites(paths: &[PathBuf]) -> Result<Vec<Suite>, Vec<ConfigError>> {
    let files = config::discover(paths).map_err(|e| vec![e])?;
    let mut suites = Vec::new();
    let mut errors = Vec::new();
    for f in files {
        match config::load_suite(&f) {
            Ok(s) => suites.push(s),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    // Two suites with one name would overwrite each other's baselines.
    let duplicates = config::duplicate_suite_names(&suites);
    if duplicates.is_empty() {
        Ok(suites)
    } else {
        Err(duplicates)
    }
}

/// Drives scenarios through execute → compare, then bless and report.
pub struct Session {
    cfg: RunConfig,
    hardware: HardwareKey,
    store: BaselineStore,
    baselines: BTreeMap<String, Option<BaselineFile>>,
    warnings: Vec<String>,
    base_tree: Option<BaseTree>,
    /// In bless mode, the runs of each scenario (by full name) to record,
    /// in order: those that were neither invalid nor failed.
    bless_runs: BTreeMap<String, Vec<ScenarioResult>>,
    /// `perf`, or why it cannot record here: looked for once, and only
    /// when a scenario is profiled.
    perf: Option<Result<crate::profile::Perf, String>>,
    /// Scenarios to profile once every scenario was measured, with their
    /// settings and why (`regressed`, `always`).
    to_profile: Vec<(ScenarioPlan, Settings, &'static str)>,
    /// `nsys`, or why it cannot: looked for once, on a GPU runner only.
    nsys: Option<Result<crate::profile::nsys::Nsys, String>>,
}

#[cfg(test)]
mod tests {
    use super::confirm::CONFIRMED;
    use super::*;

    fn verdict(key: &str, verdict: Verdict) -> MetricVerdict {
        MetricVerdict {
            key: key.parse().unwrap(),
            unit: crate::metric::Unit::Seconds,
            direction: crate::metric::Direction::LowerIsBetter,
            estimator: crate::metric::Estimator::Quantile(0.05),
            verdict,
            current: 1.0,
            baseline: Some(1.0),
            change: Some(0.0),
            ci: Some((0.0, 0.0)),
            p_value: None,
            tolerance: 0.05,
            bound_violation: None,
            gated: true,
            note: None,
            pairs: Vec::new(),
            pair_order: Vec::new(),
        }
    }

    fn empty_result() -> ScenarioResult {
        ScenarioResult {
            suite: "s".into(),
            scenario: "x".into(),
            kind: crate::plan::Kind::Command,
            location: Default::default(),
            device: "cpu".into(),
            outcome: Outcome::Ran,
            metrics: vec![],
            checks: vec![],
            monitor: Default::default(),
            invalid_reasons: vec![],
            warnings: vec![],
            wall_time_s: 0.0,
        }
    }

    #[test]
    fn regressions_count_only_when_a_second_run_confirms_them() {
        use Verdict::*;
        let first = vec!["a".to_string(), "b".to_string()];
        let second = vec![
            verdict("a", Regressed), // confirmed
            verdict("b", Pass),      // a burst in the first run
            verdict("c", Regressed), // only in the second run
        ];
        let (r, v) = confirm(first, empty_result(), second);
        assert_eq!(v[0].verdict, Regressed);
        assert_eq!(v[0].note.as_deref(), Some(CONFIRMED));
        assert_eq!(v[1].verdict, Pass);
        assert_eq!(v[2].verdict, Inconclusive);
        assert_eq!(r.warnings.len(), 1);
        assert!(r.warnings[0].contains("regressed on b"), "{:?}", r.warnings);
        assert_eq!(status_of(&r, &v), Status::Regressed);
    }

    /// #21 finding 10: the confirmation runs were invalid (a busy machine)
    /// yet showed the first run's +4.7% beyond a 3% tolerance. Never "not
    /// the code"; the scenario is invalid, which a gate reports as not
    /// measured (exit 5), never a pass.
    #[test]
    fn an_invalid_confirmation_never_clears_the_code() {
        let first = vec!["a".to_string(), "b".to_string()];
        let mut shown = verdict("a", Verdict::Invalid);
        shown.change = Some(0.047);
        shown.ci = Some((0.040, 0.054));
        shown.tolerance = 0.03;
        let mut within = verdict("b", Verdict::Invalid);
        within.change = Some(0.01);
        within.ci = Some((-0.01, 0.03));
        within.tolerance = 0.03;
        let mut pooled = empty_result();
        pooled.invalid_reasons = vec!["other processes used 1.01 of 2 CPU cores".into()];
        let (r, v) = confirm(first, pooled, vec![shown, within]);
        let all = r.warnings.join("\n");
        assert!(!all.contains("not the code"), "{all}");
        assert!(
            r.warnings[0].contains("show it too: +4.7% [+4.0%, +5.4%], beyond the 3.0% tolerance"),
            "{all}"
        );
        assert!(
            r.warnings[1].contains("neither confirmed nor cleared"),
            "{all}"
        );
        assert_eq!(status_of(&r, &v), Status::Invalid);
        let report = ScenarioReport {
            result: r,
            status: Status::Invalid,
            verdicts: v,
            checklist: vec![],
            smoke: false,
            rules: Default::default(),
            tolerance: 0.03,
            profile: None,
        };
        let reports = [report];
        assert!(crate::outcome::not_measured("gate", &reports));
        assert_eq!(
            exit_code(&[Status::Invalid], false, false, true),
            crate::outcome::EXIT_NOT_MEASURED
        );
    }

    fn bless_run(
        invalid: Option<&str>,
        outcome: Outcome,
        wall: f64,
    ) -> (ScenarioResult, Vec<MetricVerdict>) {
        let mut r = empty_result();
        r.outcome = outcome;
        r.wall_time_s = wall;
        r.invalid_reasons = invalid.map(|w| vec![w.to_string()]).unwrap_or_default();
        (r, Vec::new())
    }

    #[test]
    fn a_bless_records_its_valid_runs_and_names_the_invalid_ones() {
        let runs = vec![
            bless_run(None, Outcome::Ran, 1.0),
            bless_run(Some("GPU throttled (thermal)"), Outcome::Ran, 2.0),
            bless_run(None, Outcome::Ran, 3.0),
        ];
        let (last, _, keep) = choose_bless_runs(runs);
        assert_eq!(last.wall_time_s, 3.0, "the last run is the one reported");
        let kept: Vec<f64> = keep.iter().map(|r| r.wall_time_s).collect();
        assert_eq!(kept, [1.0, 3.0]);
        assert_eq!(
            last.warnings,
            ["bless run(s) 2 (GPU throttled (thermal)) of 3 invalid, not recorded"]
        );
    }

    #[test]
    fn a_bless_whose_runs_are_all_invalid_records_nothing() {
        let runs = vec![
            bless_run(Some("host busy"), Outcome::Ran, 1.0),
            bless_run(Some("host busy"), Outcome::Ran, 2.0),
        ];
        let (last, _, keep) = choose_bless_runs(runs);
        assert!(keep.is_empty());
        assert_eq!(status_of(&last, &[]), Status::Invalid);
        assert!(last.warnings.is_empty(), "{:?}", last.warnings);
    }

    #[test]
    fn a_failed_bless_run_is_reported_and_nothing_is_recorded() {
        let failed = Outcome::Failed {
            error: "exit status 1".into(),
        };
        let runs = vec![
            bless_run(None, Outcome::Ran, 1.0),
            bless_run(None, failed, 2.0),
            bless_run(Some("host busy"), Outcome::Ran, 3.0),
        ];
        let (reported, _, keep) = choose_bless_runs(runs);
        assert!(keep.is_empty());
        assert_eq!(
            reported.wall_time_s, 2.0,
            "the failed run is the one reported"
        );
        assert_eq!(status_of(&reported, &[]), Status::Failed);
    }

    #[test]
    fn smoke_caps_shrink_but_never_grow() {
        let s = Settings {
            max_time: Some(HumanDuration(Duration::from_millis(200))),
            min_samples: Some(50),
            ..Default::default()
        };
        let r = smoke_caps(&s).resolve();
        assert_eq!(r.max_time, Duration::from_millis(200));
        assert_eq!(r.min_samples, 3);
        assert!(r.max_samples >= r.min_samples);
    }
}
