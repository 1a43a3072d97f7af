//! The session's life up to its report: set up (baselines, the base tree
//! of a paired run), then one scenario at a time, measured, confirmed and
//! judged.

use super::*;

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
}
