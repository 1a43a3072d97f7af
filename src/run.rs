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
use crate::paired::{self, Against, BaseTree, DEFAULT_PAIRS, Paired};
use crate::plan::{ScenarioPlan, Settings, Suite};
use crate::result::{Check, MonitorSummary, Outcome, ScenarioResult};
use crate::spread;
use crate::units::HumanDuration;

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
    Against(String),
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
}

impl Session {
    pub fn new(cfg: RunConfig) -> Result<Session, SetupError> {
        let mut warnings = Vec::new();
        if cfg!(debug_assertions) {
            if matches!(cfg.mode, Mode::Bless { .. }) {
                return Err(SetupError::DebugBuild);
            }
            warnings.push(
                "debug build: speed is not gated (smoke mode); build with --release to compare with baselines"
                    .to_string(),
            );
        }
        let store = BaselineStore::new(cfg.baselines_dir.clone());
        let base_tree = match &cfg.against {
            None => None,
            Some(_) if !matches!(cfg.mode, Mode::Gate) => {
                return Err(SetupError::Against(
                    "paired A/B is a way to gate: it cannot be combined with bless or smoke".into(),
                ));
            }
            Some(a) => {
                let cwd = std::env::current_dir()
                    .map_err(|e| SetupError::Against(format!("current directory: {e}")))?;
                Some(BaseTree::new(&a.dir, &cwd).map_err(SetupError::Against)?)
            }
        };
        Ok(Session {
            cfg,
            hardware: crate::device::hardware_key(),
            store,
            baselines: BTreeMap::new(),
            warnings,
            base_tree,
            bless_runs: BTreeMap::new(),
        })
    }

    pub fn hardware(&self) -> &HardwareKey {
        &self.hardware
    }

    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    pub fn config(&self) -> &RunConfig {
        &self.cfg
    }

    /// The suite's baseline file for this hardware, loaded once.
    pub fn baseline(&mut self, suite: &str) -> Result<Option<&BaselineFile>, BaselineError> {
        if !self.baselines.contains_key(suite) {
            let loaded = self.store.load(&self.hardware, suite)?;
            self.baselines.insert(suite.to_string(), loaded);
        }
        Ok(self.baselines.get(suite).and_then(|b| b.as_ref()))
    }

    /// Whether this scenario is sampled on the smoke budget.
    fn smoke_for(&mut self, plan: &ScenarioPlan) -> Result<bool, BaselineError> {
        Ok(match self.cfg.mode {
            Mode::Smoke => true,
            Mode::Bless { .. } => false,
            Mode::Gate if cfg!(debug_assertions) => true,
            Mode::Gate => {
                self.cfg.smoke_without_baseline
                    && self
                        .baseline(&plan.suite)?
                        .is_none_or(|b| !b.scenario.contains_key(&plan.name))
            }
        })
    }

    /// Runs one scenario and compares it with its baseline.
    pub fn run_scenario(
        &mut self,
        plan: &ScenarioPlan,
        on_event: &mut dyn FnMut(ExecEvent),
    ) -> Result<ScenarioReport, SetupError> {
        let smoke = self.smoke_for(plan)?;
        let mut settings = self.cfg.overrides.clone().or(&plan.settings);
        if smoke {
            settings = self.cfg.overrides.clone().or(&smoke_caps(&settings));
        }
        let tolerance = settings.resolve().tolerance;
        let gating = !smoke && !matches!(self.cfg.mode, Mode::Bless { .. });
        let policy = self.cfg.policy.clone();
        let baseline = if gating {
            self.baseline(&plan.suite)?
                .and_then(|b| b.scenario.get(&plan.name))
                .cloned()
        } else {
            None
        };
        let judge = |result: &ScenarioResult| {
            if matches!(result.outcome, Outcome::Ran) {
                compare::compare_scenario(
                    result,
                    baseline.as_ref(),
                    &plan.metric_rules,
                    tolerance,
                    &policy,
                )
            } else {
                Vec::new()
            }
        };
        let measure = |on_event: &mut dyn FnMut(ExecEvent)| {
            let result = execute(plan, &self.cfg.env, &settings, on_event);
            let verdicts = judge(&result);
            (result, verdicts)
        };
        let report = |mut result: ScenarioResult, verdicts: Vec<MetricVerdict>| {
            // A rule no reported metric matches (a typo) is never enforced:
            // say so, with a did-you-mean from what was reported.
            if matches!(result.outcome, Outcome::Ran) {
                let keys: Vec<_> = result.metrics.iter().map(|m| m.key.clone()).collect();
                let unmatched = config::unmatched_rules(plan.metric_rules.keys(), &keys);
                result.warnings.extend(unmatched);
            }
            ScenarioReport {
                status: status_of(&result, &verdicts),
                result,
                verdicts,
                checklist: plan.checklist.clone(),
                smoke,
                rules: plan.metric_rules.clone(),
                tolerance,
            }
        };
        let mut fallback = None;
        let mut undecided = None;
        if gating && let Some(tree) = self.base_tree.as_mut() {
            let pairs = self.cfg.against.as_ref().map_or(DEFAULT_PAIRS, |a| a.pairs);
            match tree.plan_for(plan) {
                Ok(Some(base)) => {
                    match paired::run_pairs(
                        plan,
                        &base,
                        pairs,
                        &settings,
                        tolerance,
                        &policy,
                        self.cfg.confirm_regressions,
                        &self.cfg.env,
                        on_event,
                        &execute,
                    ) {
                        Paired::Done(result, mut verdicts) => {
                            compare::check_base_against_baseline(&mut verdicts, baseline.as_ref());
                            // What the pairs left undecided, the stored
                            // baseline may decide, by the stored path below.
                            let keys = compare::decidable_by_baseline(&verdicts, baseline.as_ref());
                            if keys.is_empty() || !matches!(result.outcome, Outcome::Ran) {
                                return Ok(report(*result, verdicts));
                            }
                            undecided = Some((result, verdicts, keys));
                        }
                        Paired::BaseUnusable(why) => fallback = Some(why),
                    }
                }
                Ok(None) => fallback = Some("no base variant (new in this tree)".to_string()),
                Err(why) => fallback = Some(why),
            }
        }
        let (mut result, mut verdicts) = measure(on_event);
        if let Mode::Bless { runs, .. } = self.cfg.mode {
            // The runs a bless records: this one, then `runs - 1` more, each
            // after [`spread::SPREAD_GAP`], so that one slow spell of the
            // machine cannot make every recorded run slow.
            let total = runs.max(1) as usize;
            let mut all = vec![(result, verdicts)];
            if total > 1 && !unrecordable(status_of(&all[0].0, &all[0].1)) {
                let started = Instant::now();
                let more = execute_spread(
                    plan,
                    &self.cfg,
                    &settings,
                    (1, total),
                    total - 1,
                    "bless run",
                    on_event,
                );
                let waited = started.elapsed().as_secs_f64();
                all.extend(more.into_iter().map(|r| {
                    let v = judge(&r);
                    (r, v)
                }));
                let first_wall = all[0].0.wall_time_s;
                let (last, _) = all.last_mut().expect("the first run");
                last.wall_time_s = first_wall + waited;
            }
            bless_extra_runs(plan, &self.cfg, &settings, &mut all, &judge, on_event);
            let name = plan.full_name();
            let keep;
            (result, verdicts, keep) = choose_bless_runs(all);
            self.bless_runs.insert(name, keep);
        }
        let confirming =
            gating && self.cfg.confirm_regressions && regressed_keys(&verdicts).next().is_some();
        if confirming {
            let first: Vec<String> = regressed_keys(&verdicts).collect();
            // The pooled runs share one run's time budget, so a confirmed
            // regression costs at most twice a run's budget plus the pauses.
            let share = Settings {
                max_time: Some(HumanDuration(
                    settings.resolve().max_time / spread::CONFIRM_RUNS as u32,
                )),
                ..settings.clone()
            };
            let started = Instant::now();
            let runs = execute_spread(
                plan,
                &self.cfg,
                &share,
                (0, spread::CONFIRM_RUNS),
                spread::CONFIRM_RUNS,
                "confirmation run",
                on_event,
            );
            let mut pooled = spread::pool(&runs);
            // The scenario's wall time is every run's and the pauses (as in
            // paired mode).
            pooled.wall_time_s = result.wall_time_s + started.elapsed().as_secs_f64();
            let mut v2 = judge(&pooled);
            // A pool that spent most of its time in a slow state does not
            // confirm (the first run's regression is then "not confirmed").
            compare::state::check_slow_state(&pooled, &mut v2, baseline.as_ref());
            (result, verdicts) = confirm(first, pooled, v2);
        }
        if gating && !confirming {
            // Without a confirmation (`--no-confirm`, or no regression), the
            // one run is checked; a confirmation's pool was checked above.
            compare::state::check_slow_state(&result, &mut verdicts, baseline.as_ref());
        }
        if let Some((paired, paired_verdicts, keys)) = undecided
            && matches!(result.outcome, Outcome::Ran)
        {
            // (A head that fails in this run fails the scenario, as in a pair.)
            let (result, verdicts) =
                paired::decided_by_baseline(*paired, paired_verdicts, &keys, &result, &verdicts);
            return Ok(report(result, verdicts));
        }
        if let Some(why) = fallback {
            result.warnings.insert(
                0,
                format!("not paired: {why}; compared with the stored baseline instead"),
            );
        }
        Ok(report(result, verdicts))
    }

    /// Blesses (when asked), evaluates the checklist and sets the exit code.
    pub fn finish(mut self, scenarios: Vec<ScenarioReport>) -> Result<RunReport, SetupError> {
        let mut blessed = Vec::new();
        let mut recorded: BTreeSet<String> = BTreeSet::new();
        let mut why_not: BTreeMap<String, String> = BTreeMap::new();
        let git_commit = crate::host::git_commit(&self.cfg.baselines_dir.join(".."));
        if let Mode::Bless {
            reason, replace, ..
        } = &self.cfg.mode
        {
            // Per suite, each scenario's runs to record, in order.
            let mut by_suite: BTreeMap<&str, Vec<Vec<ScenarioResult>>> = BTreeMap::new();
            for s in &scenarios {
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
                        .entry(s.result.suite.as_str())
                        .or_default()
                        .push(runs),
                }
            }
            for (suite, per_scenario) in by_suite {
                let n = per_scenario.iter().map(Vec::len).max().unwrap_or(0);
                let provenance = Provenance::now(
                    git_commit.clone().unwrap_or_else(|| "unknown".into()),
                    reason.clone(),
                );
                let mode = if *replace {
                    BlessMode::Replace
                } else {
                    BlessMode::Append
                };
                // The suite's `gate = false` metrics cannot refuse a run.
                let gated = |r: &ScenarioResult, m: &crate::metric::MetricSeries| {
                    scenarios
                        .iter()
                        .find(|s| s.result.suite == r.suite && s.result.scenario == r.scenario)
                        .and_then(|s| crate::compare::rule_for(&s.rules, &m.key))
                        .and_then(|rule| rule.gate)
                        .unwrap_or(true)
                };
                let mut rounds: Vec<BlessSummary> = Vec::new();
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
                if let Some(summary) = crate::baseline::rounds::combine(rounds) {
                    for c in &summary.scenarios {
                        if c.status != crate::baseline::ScenarioStatus::Kept {
                            recorded.insert(format!("{suite}::{}", c.scenario));
                        }
                    }
                    blessed.push(summary.to_string());
                }
            }
        }
        let not_recorded: Vec<String> = if matches!(self.cfg.mode, Mode::Bless { .. }) {
            scenarios
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
                .collect()
        } else {
            Vec::new()
        };
        for n in &not_recorded {
            blessed.push(format!("not recorded: {n}"));
        }
        let checklist = checklist::evaluate(&scenarios);
        let statuses: Vec<Status> = scenarios.iter().map(|s| s.status).collect();
        let exit_code = exit_code(
            &statuses,
            self.cfg.fail_on_inconclusive,
            !not_recorded.is_empty(),
        );
        Ok(RunReport {
            format_version: RESULTS_FORMAT_VERSION,
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            created: jiff::Timestamp::now().to_string(),
            git_commit,
            mode: match self.cfg.mode {
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
        })
    }
}

/// A run that must not become the reference, nor be repeated to be one.
fn unrecordable(s: Status) -> bool {
    matches!(s, Status::Failed | Status::Regressed | Status::Ignored)
}

/// `n` more runs of the scenario, each after the session's spread gap,
/// announced as points `at.0 + i` of `at.1` with `label`.
fn execute_spread(
    plan: &ScenarioPlan,
    cfg: &RunConfig,
    settings: &Settings,
    at: (usize, usize),
    n: usize,
    label: &str,
    on_event: &mut dyn FnMut(ExecEvent),
) -> Vec<ScenarioResult> {
    spread::spread_runs(n, cfg.spread_gap, &mut std::thread::sleep, &mut |i| {
        on_event(ExecEvent::Point {
            index: at.0 + i,
            total: at.1,
            label: label.into(),
        });
        execute(plan, &cfg.env, settings, on_event)
    })
}

/// Why a bless runs more: every recordable run spent most of its time in
/// a slow state of the machine, or the runs disagree.
#[derive(Clone)]
enum MoreRuns {
    /// [`compare::state`]: a gated metric's p5 far beyond its fastest
    /// samples in every run.
    SlowState,
    /// [`baseline::agreement`]: a gated metric's run estimates spread wider
    /// than its tolerance allows; said in words.
    Disagree(String),
}

/// Up to [`spread::EXTRA_BLESS_RUNS`] more bless runs, each after the
/// spread gap, while the runs so far give a reason ([`MoreRuns`]). After a
/// slow state, the bless guard lets the first fast run replace the slow
/// ones; after a disagreement, the median and the robust spread of five or
/// six runs no longer follow one or two slow ones. If the reason remains,
/// the last run carries a warning.
fn bless_extra_runs(
    plan: &ScenarioPlan,
    cfg: &RunConfig,
    settings: &Settings,
    all: &mut Vec<(ScenarioResult, Vec<MetricVerdict>)>,
    judge: &dyn Fn(&ScenarioResult) -> Vec<MetricVerdict>,
    on_event: &mut dyn FnMut(ExecEvent),
) {
    let gated: Vec<agreement::Gated> = all[0]
        .1
        .iter()
        .filter(|v| v.gated)
        .map(|v| agreement::Gated {
            key: v.key.to_string(),
            estimator: v.estimator,
            direction: v.direction,
            tolerance: v.tolerance,
        })
        .collect();
    let keys: Vec<(String, Estimator, Direction)> = gated
        .iter()
        .map(|g| (g.key.clone(), g.estimator, g.direction))
        .collect();
    let can_tell_state = compare::state::bless_can_tell(plan.kind());
    let reason = |all: &[(ScenarioResult, Vec<MetricVerdict>)]| {
        let recordable: Vec<&ScenarioResult> = all
            .iter()
            .filter(|(r, v)| status_of(r, v) != Status::Invalid)
            .map(|(r, _)| r)
            .collect();
        if can_tell_state && compare::state::all_in_slow_state(&recordable, &keys) {
            Some(MoreRuns::SlowState)
        } else {
            agreement::disagreement(&recordable, &gated).map(MoreRuns::Disagree)
        }
    };
    if all.iter().any(|(r, v)| unrecordable(status_of(r, v))) {
        return;
    }
    let Some(first_reason) = reason(all) else {
        return;
    };
    let started = Instant::now();
    let before = all.len();
    let wall_before = all[before - 1].0.wall_time_s;
    let mut now = Some(first_reason.clone());
    for i in 0..spread::EXTRA_BLESS_RUNS {
        let label = match now {
            Some(MoreRuns::SlowState) => "bless run past a slow state",
            _ => "bless run: the runs disagree",
        };
        let more = execute_spread(
            plan,
            cfg,
            settings,
            (i, spread::EXTRA_BLESS_RUNS),
            1,
            label,
            on_event,
        );
        for r in more {
            let v = judge(&r);
            all.push((r, v));
        }
        if unrecordable(status_of(&all[all.len() - 1].0, &all[all.len() - 1].1)) {
            break;
        }
        now = reason(all);
        if now.is_none() {
            break;
        }
    }
    let extra = all.len() - before;
    let (last, _) = all.last_mut().expect("the first run");
    last.wall_time_s = wall_before + started.elapsed().as_secs_f64();
    let gap = compare::state::STATE_GAP * 100.0;
    last.warnings.push(match now {
        Some(MoreRuns::SlowState) => format!(
            "every bless run, {extra} extra ones included, spent most of its time in a slow state \
             (its p5 over {gap:.0}% beyond its fastest samples): the machine was busy or in a slow \
             spell, or the program takes a fast path rarely; if later runs come out `improved` \
             on unchanged code, bless again on a quieter machine"
        ),
        Some(MoreRuns::Disagree(why)) => format!(
            "the bless runs still disagree after {extra} extra run(s) ({why}): changes near the \
             tolerance will come out `inconclusive` against this baseline; bless again on a \
             quieter machine"
        ),
        None => match first_reason {
            MoreRuns::SlowState => format!(
                "the first bless runs spent most of their time in a slow state (p5 over {gap:.0}% \
                 beyond their fastest samples); {extra} extra run(s) until one did not"
            ),
            MoreRuns::Disagree(why) => format!(
                "the first bless runs disagreed ({why}); {extra} extra run(s) until they agreed"
            ),
        },
    });
}

/// Of a bless's runs: a failed run, or one that broke an absolute bound, is
/// reported and nothing is recorded; invalid runs are left out (with a
/// warning when others are recorded). Returns the run to report (the last),
/// its verdicts and the runs to record.
fn choose_bless_runs(
    mut all: Vec<(ScenarioResult, Vec<MetricVerdict>)>,
) -> (ScenarioResult, Vec<MetricVerdict>, Vec<ScenarioResult>) {
    let total = all.len();
    let statuses: Vec<Status> = all.iter().map(|(r, v)| status_of(r, v)).collect();
    if let Some(bad) = statuses.iter().position(|s| unrecordable(*s)) {
        let (r, v) = all.swap_remove(bad);
        return (r, v, Vec::new());
    }
    let mut keep = Vec::new();
    let mut left_out = Vec::new();
    for (i, ((r, _), st)) in all.iter().zip(&statuses).enumerate() {
        if *st == Status::Invalid {
            left_out.push(format!("{} ({})", i + 1, r.invalid_reasons.join("; ")));
        } else {
            keep.push(r.clone());
        }
    }
    let (mut last, verdicts) = all.pop().expect("at least one run");
    if !left_out.is_empty() && !keep.is_empty() {
        last.warnings.push(format!(
            "bless run(s) {} of {total} invalid, not recorded",
            left_out.join(", ")
        ));
    }
    (last, verdicts, keep)
}

fn regressed_keys(verdicts: &[MetricVerdict]) -> impl Iterator<Item = String> + '_ {
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
const CONFIRMED: &str = "confirmed by the pooled samples of two more runs, 1 s apart";

fn confirm(
    first: Vec<String>,
    mut result: ScenarioResult,
    mut verdicts: Vec<MetricVerdict>,
) -> (ScenarioResult, Vec<MetricVerdict>) {
    let mut unconfirmed = Vec::new();
    for v in &mut verdicts {
        let key = v.key.to_string();
        let was = first.contains(&key);
        if v.verdict == Verdict::Regressed {
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

/// Smoke budget: enough samples to prove the scenario runs and reports.
fn smoke_caps(s: &Settings) -> Settings {
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

/// Runs a scenario's executor inside the monitor window. Never panics on a
/// failing workload: the failure becomes the outcome. A run the monitor
/// marks invalid (throttling, low clocks) is retried once.
pub fn execute(
    plan: &ScenarioPlan,
    env: &ExecEnv,
    settings: &Settings,
    on_event: &mut dyn FnMut(ExecEvent),
) -> ScenarioResult {
    let start = Instant::now();
    let mut result = ScenarioResult {
        suite: plan.suite.clone(),
        scenario: plan.name.clone(),
        kind: plan.kind(),
        location: plan.location.clone(),
        device: String::new(),
        outcome: Outcome::Ran,
        metrics: Vec::new(),
        checks: Vec::new(),
        monitor: MonitorSummary::default(),
        invalid_reasons: Vec::new(),
        warnings: Vec::new(),
        wall_time_s: 0.0,
    };
    let Some(executor) = exec::executor_for(plan.kind()) else {
        result.outcome = Outcome::Ignored {
            reason: format!("kind `{}` is not supported by this build", plan.kind()),
        };
        return result;
    };
    if let Availability::Missing(reason) = executor.availability(plan) {
        result.outcome = Outcome::Ignored { reason };
        return result;
    }
    let resolved = settings.resolve();
    for attempt in 0..2 {
        let pids = Arc::new(Mutex::new(Vec::new()));
        let monitor = Monitor::start(resolved.monitor_interval, pids.clone());
        let mut ctx = RunCtx::new(env, resolved.clone(), on_event, pids);
        let outcome = executor.run(plan, &mut ctx);
        let summary = monitor.stop();
        let (mut invalid, mut warnings) = monitor::validity(&summary);
        let cpu_bound = matches!(&outcome, Ok(out) if out.device == "cpu");
        let limit = cpu_bound.then_some(resolved.max_contention);
        host_contention(&summary, limit, &mut invalid, &mut warnings);
        result.monitor = summary;
        result.warnings = warnings;
        match outcome {
            Ok(out) => {
                result.device = out.device;
                result.metrics = out.metrics;
                result.checks = out.checks;
                result.warnings.extend(out.warnings);
                result.invalid_reasons = out.invalid_reasons;
                result.invalid_reasons.extend(invalid);
                result.outcome = match result.checks.iter().find(|c| !c.passed) {
                    Some(c) => Outcome::Failed {
                        error: format!("check `{}` failed: {}", c.name, c.evidence),
                    },
                    None => Outcome::Ran,
                };
            }
            Err(ExecError::Failed(error)) => result.outcome = Outcome::Failed { error },
            Err(ExecError::Unavailable(reason)) => result.outcome = Outcome::Ignored { reason },
        }
        if result.invalid_reasons.is_empty() || attempt == 1 {
            break;
        }
        result.warnings.push(format!(
            "first attempt invalid ({}); retried once",
            result.invalid_reasons.join("; ")
        ));
    }
    add_monitoring_check(&mut result);
    result.wall_time_s = start.elapsed().as_secs_f64();
    result
}

/// CPU that other processes took while a scenario measured. On the CPU,
/// that time is stolen from the workload: beyond `max_contention` of the
/// machine's cores (default half) the run is `invalid` (retried once), from a
/// quarter of a core a warning. GPU scenarios time on the device, so there
/// it is only a warning (`limit` is `None`).
fn host_contention(
    summary: &MonitorSummary,
    limit: Option<f64>,
    invalid: &mut Vec<String>,
    warnings: &mut Vec<String>,
) {
    let Some(other) = summary.host.other_cpu_cores else {
        return;
    };
    let cores = crate::host::cpu_cores() as f64;
    let text = format!(
        "other processes used {other:.2} of {cores:.0} CPU cores while this scenario measured"
    );
    if limit.is_some_and(|l| other > l * cores) {
        invalid.push(format!("{text}: its CPU timings cannot be trusted"));
    } else if other >= 0.25 {
        warnings.push(text);
    }
}

/// Evidence for "performance monitoring enabled". A GPU scenario counts only
/// when NVML sampled its GPU: without NVML the check fails, so the item is
/// not ticked. A CPU scenario's evidence is the host sampler, said as such.
fn add_monitoring_check(result: &mut ScenarioResult) {
    let m = &result.monitor;
    let on_gpu = result.device.starts_with("cuda");
    let gpu_samples: usize = m.gpus.iter().map(|g| g.samples).sum();
    let (passed, evidence) = match (&m.gpu_unavailable, on_gpu) {
        (Some(why), true) => (
            false,
            format!(
                "GPU scenario not monitored: NVML unavailable ({why}); {} host samples",
                m.host.samples
            ),
        ),
        (Some(_), false) => (
            m.host.samples > 0,
            format!(
                "host monitoring: {} samples (CPU scenario, no GPU to sample)",
                m.host.samples
            ),
        ),
        (None, _) => (
            m.host.samples > 0,
            format!(
                "{} host samples, {gpu_samples} NVML samples over {} GPU(s)",
                m.host.samples,
                m.gpus.len()
            ),
        ),
    };
    result.checks.push(Check::new(
        "monitoring",
        passed,
        evidence,
        Some(ChecklistItem::Monitoring),
    ));
}

#[cfg(test)]
mod tests {
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
