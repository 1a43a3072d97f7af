//! The session's life up to its report: set up (baselines, the base tree
//! of a paired run), then one scenario at a time, measured, confirmed and
//! judged.

use super::*;
use crate::baseline::BaselineScenario;

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
                return Err(SetupError::AgainstNotGating);
            }
            Some(a) => {
                let cwd = std::env::current_dir().map_err(SetupError::CurrentDir)?;
                Some(BaseTree::new(&a.dir, &cwd)?)
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
            perf: None,
            nsys: None,
            to_profile: Vec::new(),
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

    /// Whether this scenario is gated against a baseline recorded on this
    /// hardware (a gate, not smoke, with the scenario in the suite's file).
    pub fn gates_against_a_baseline(&mut self, plan: &ScenarioPlan) -> Result<bool, BaselineError> {
        Ok(matches!(self.cfg.mode, Mode::Gate) && !self.smoke_for(plan)?)
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

    /// Runs one scenario and compares it with its baseline: paired with
    /// the base tree when there is one, else (or for what the pairs leave
    /// undecided) measured here, the bless's runs or a regression's
    /// confirmation added, and the slow-state rule applied.
    /// When its `profile` setting asks for a profile, the scenario is kept
    /// for [`Session::profile_pending`], which runs after every scenario
    /// was measured, so that a profile never disturbs a measurement.
    pub fn run_scenario(
        &mut self,
        plan: &ScenarioPlan,
        on_event: &mut dyn FnMut(ExecEvent),
    ) -> Result<ScenarioReport, SetupError> {
        let sc = self.prepare(plan)?;
        let settings = sc.settings.clone();
        let report = self.measure_and_judge(sc, on_event)?;
        self.queue_profile(plan, settings, &report);
        Ok(report)
    }

    fn measure_and_judge(
        &mut self,
        sc: Scenario<'_>,
        on_event: &mut dyn FnMut(ExecEvent),
    ) -> Result<ScenarioReport, SetupError> {
        let plan = sc.plan;
        let mut fallback = None;
        let mut undecided = None;
        if sc.gating && self.base_tree.is_some() {
            match self.run_paired(&sc, on_event) {
                PairedStep::Done(report) => return Ok(*report),
                PairedStep::Undecided(u) => undecided = Some(u),
                PairedStep::Fallback(why) => fallback = Some(why),
            }
        }
        let result = execute(plan, &self.cfg.env, &sc.settings, on_event);
        let verdicts = sc.judge(&result);
        let (mut result, verdicts) = match self.cfg.mode {
            Mode::Bless { runs, .. } => self.bless_runs(&sc, runs, (result, verdicts), on_event),
            _ => (result, verdicts),
        };
        let (result2, verdicts) = self.confirm_or_check(&sc, result, verdicts, on_event);
        result = result2;
        if let Some((paired, paired_verdicts, keys)) = undecided
            && matches!(result.outcome, Outcome::Ran)
        {
            // (A head that fails in this run fails the scenario, as in a pair.)
            let (result, verdicts) =
                paired::decided_by_baseline(*paired, paired_verdicts, &keys, &result, &verdicts);
            return Ok(sc.report(result, verdicts));
        }
        if let Some(why) = fallback {
            result.warnings.insert(
                0,
                format!("not paired: {why}; compared with the stored baseline instead"),
            );
        }
        Ok(sc.report(result, verdicts))
    }

    /// What one scenario's run needs, fixed before it starts.
    fn prepare<'p>(&mut self, plan: &'p ScenarioPlan) -> Result<Scenario<'p>, SetupError> {
        let smoke = self.smoke_for(plan)?;
        let mut settings = self.cfg.overrides.clone().or(&plan.settings);
        if smoke {
            settings = self.cfg.overrides.clone().or(&smoke_caps(&settings));
        }
        let gating = !smoke && !matches!(self.cfg.mode, Mode::Bless { .. });
        let baseline = if gating {
            self.baseline(&plan.suite)?
                .and_then(|b| b.scenario.get(&plan.name))
                .cloned()
        } else {
            None
        };
        Ok(Scenario {
            plan,
            baseline_file: self.store.path(&self.hardware, &plan.suite),
            tolerance: settings.resolve().tolerance,
            settings,
            gating,
            smoke,
            policy: self.cfg.policy.clone(),
            baseline,
        })
    }

    /// Paired mode: the pairs' verdicts, or what they left undecided for the
    /// stored baseline, or why the base tree could not be used.
    fn run_paired(&mut self, sc: &Scenario<'_>, on_event: &mut dyn FnMut(ExecEvent)) -> PairedStep {
        let pairs = self.cfg.against.as_ref().map_or(DEFAULT_PAIRS, |a| a.pairs);
        let tree = self
            .base_tree
            .as_mut()
            .expect("paired mode has a base tree");
        let base = match tree.plan_for(sc.plan) {
            Ok(Some(base)) => base,
            Ok(None) => return PairedStep::Fallback("no base variant (new in this tree)".into()),
            Err(why) => return PairedStep::Fallback(why.to_string()),
        };
        let paired = paired::run_pairs(
            sc.plan,
            &base,
            pairs,
            &sc.settings,
            sc.tolerance,
            &sc.policy,
            self.cfg.confirm_regressions,
            &self.cfg.env,
            on_event,
            &execute,
        );
        match paired {
            Paired::Done(result, mut verdicts) => {
                compare::check_base_against_baseline(&mut verdicts, sc.baseline.as_ref());
                // What the pairs left undecided, the stored baseline may
                // decide, by the stored path.
                let keys = compare::decidable_by_baseline(&verdicts, sc.baseline.as_ref());
                if keys.is_empty() || !matches!(result.outcome, Outcome::Ran) {
                    return PairedStep::Done(Box::new(sc.report(*result, verdicts)));
                }
                PairedStep::Undecided((result, verdicts, keys))
            }
            Paired::BaseUnusable(why) => PairedStep::Fallback(why),
        }
    }

    /// The runs a bless records: this one, then `runs - 1` more, each after
    /// [`spread::SPREAD_GAP`], so that one slow spell of the machine cannot
    /// make every recorded run slow; then more while they disagree. Returns
    /// the run to report; keeps the runs to record.
    fn bless_runs(
        &mut self,
        sc: &Scenario<'_>,
        runs: u32,
        first: (ScenarioResult, Vec<MetricVerdict>),
        on_event: &mut dyn FnMut(ExecEvent),
    ) -> (ScenarioResult, Vec<MetricVerdict>) {
        let judge = |r: &ScenarioResult| sc.judge(r);
        let total = if found_not_sampled(&first.0, &first.1) {
            1
        } else {
            runs.max(1) as usize
        };
        let mut all = vec![first];
        if total > 1 && !unrecordable(status_of(&all[0].0, &all[0].1)) {
            let started = Instant::now();
            let more = execute_spread(
                sc.plan,
                &self.cfg,
                &sc.settings,
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
        bless_extra_runs(sc.plan, &self.cfg, &sc.settings, &mut all, &judge, on_event);
        let (result, verdicts, keep) = choose_bless_runs(all);
        self.bless_runs.insert(sc.plan.full_name(), keep);
        (result, verdicts)
    }

    /// A regression is confirmed by more runs (see [`confirm`]); without
    /// one (`--no-confirm`, or no regression) the one run is checked for a
    /// slow state instead.
    fn confirm_or_check(
        &self,
        sc: &Scenario<'_>,
        result: ScenarioResult,
        mut verdicts: Vec<MetricVerdict>,
        on_event: &mut dyn FnMut(ExecEvent),
    ) -> (ScenarioResult, Vec<MetricVerdict>) {
        if !sc.gating {
            return (result, verdicts);
        }
        // A scenario that failed a check fails whatever more runs say.
        if !self.cfg.confirm_regressions
            || regressed_keys(&verdicts).next().is_none()
            || !matches!(result.outcome, Outcome::Ran)
        {
            compare::state::check_slow_state(&result, &mut verdicts, sc.baseline.as_ref());
            return (result, verdicts);
        }
        let first: Vec<String> = regressed_keys(&verdicts).collect();
        // The pooled runs share one run's time budget, so a confirmed
        // regression costs at most twice a run's budget plus the pauses.
        let share = Settings {
            max_time: Some(HumanDuration(
                sc.settings.resolve().max_time / spread::CONFIRM_RUNS as u32,
            )),
            ..sc.settings.clone()
        };
        let started = Instant::now();
        let runs = execute_spread(
            sc.plan,
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
        let mut v2 = sc.judge(&pooled);
        // A pool that spent most of its time in a slow state does not
        // confirm (the first run's regression is then "not confirmed").
        compare::state::check_slow_state(&pooled, &mut v2, sc.baseline.as_ref());
        confirm(first, pooled, v2)
    }
}

/// What the pairs of a paired run gave.
enum PairedStep {
    /// The verdicts, reported as they are.
    Done(Box<ScenarioReport>),
    /// Verdicts the pairs left for the stored baseline to decide.
    Undecided((Box<ScenarioResult>, Vec<MetricVerdict>, Vec<String>)),
    /// Why the base tree could not be used: compared with the stored
    /// baseline instead.
    Fallback(String),
}

/// One scenario's run, fixed before it starts: its settings (smoke-capped
/// when smoke), whether speed is gated, and the baseline it is judged by.
struct Scenario<'p> {
    plan: &'p ScenarioPlan,
    settings: Settings,
    tolerance: f64,
    gating: bool,
    smoke: bool,
    policy: Policy,
    baseline: Option<BaselineScenario>,
    /// Where this hardware's baseline of the suite lives (named in errors).
    baseline_file: std::path::PathBuf,
}

impl Scenario<'_> {
    /// A scenario ignored for something this runner lacks (its server
    /// program, a driver) is a failure where it has a baseline on this
    /// hardware: it was measured here before, so the gate would go green
    /// on a runner that lost a piece. Without a baseline, ignored stands
    /// (an optional piece a fresh clone lacks).
    fn fail_what_it_cannot_skip(&self, result: &mut ScenarioResult) {
        if let (true, Some(_), Outcome::Ignored { reason }) =
            (self.gating, &self.baseline, &result.outcome)
        {
            result.outcome = Outcome::Failed {
                error: format!(
                    "{reason}; this scenario has a baseline on this hardware, so the gate \
                     cannot pass it unmeasured: install what is missing, or, if it no longer \
                     runs here, delete its `[scenario.{}]` tables from {}",
                    self.plan.name,
                    self.baseline_file.display()
                ),
            };
        }
    }

    /// The run's verdicts against the baseline: none for a run that did not
    /// run, but a run that measured and then failed a check is compared
    /// too (a leak found must not hide whether the rest regressed).
    fn judge(&self, result: &ScenarioResult) -> Vec<MetricVerdict> {
        if !result.measured() {
            return Vec::new();
        }
        compare::compare_scenario(
            result,
            self.baseline.as_ref(),
            &self.plan.metric_rules,
            self.tolerance,
            &self.policy,
        )
    }

    /// The scenario's report. A rule no reported metric matches (a typo) is
    /// never enforced: say so, with a did-you-mean from what was reported;
    /// so is `gate = true` on a metric only reported: say how to gate it.
    fn report(&self, mut result: ScenarioResult, verdicts: Vec<MetricVerdict>) -> ScenarioReport {
        self.fail_what_it_cannot_skip(&mut result);
        if matches!(result.outcome, Outcome::Ran) {
            let keys: Vec<_> = result.metrics.iter().map(|m| m.key.clone()).collect();
            let unmatched = config::unmatched_rules(self.plan.metric_rules.keys(), &keys);
            result.warnings.extend(unmatched);
            let ungated = config::ungated_rules(&self.plan.metric_rules, &result.metrics);
            result.warnings.extend(ungated);
        }
        ScenarioReport {
            status: status_of(&result, &verdicts),
            result,
            verdicts,
            checklist: self.plan.checklist.clone(),
            smoke: self.smoke,
            rules: self.plan.metric_rules.clone(),
            tolerance: self.tolerance,
            profile: None,
        }
    }
}

/// Whether every gated metric of a run is one count the run found, not
/// sampled (`find_max_batch`'s `max_batch`): no noise for runs spread over
/// time to average out, so a bless records this one run rather than
/// searching again.
fn found_not_sampled(result: &ScenarioResult, verdicts: &[MetricVerdict]) -> bool {
    let mut gated = verdicts.iter().filter(|v| v.gated).peekable();
    gated.peek().is_some()
        && gated.all(|v| {
            v.unit == crate::metric::Unit::Count
                && result
                    .metrics
                    .iter()
                    .find(|m| m.key == v.key)
                    .is_some_and(|m| m.samples.len() == 1)
        })
}
