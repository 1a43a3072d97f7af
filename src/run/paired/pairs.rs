//! The pairing loop: base and head alternately, B H H B B H …, judged pair
//! by pair, extended while undecided, confirmed when asked.

use super::confirm::{confirm_with_more_pairs, needs_confirmation, second_estimate};
use super::{MAX_EXTENSION, execution_settings, later_runs, next_target};
use crate::compare::{MetricVerdict, PairOrder, Policy, Verdict, compare_paired};
use crate::exec::{ExecEnv, ExecEvent};
use crate::plan::{ScenarioPlan, Settings};
use crate::result::{Outcome, ScenarioResult};

/// Runs one variant once: the session's executor in its monitor window.
pub type ExecuteFn =
    dyn Fn(&ScenarioPlan, &ExecEnv, &Settings, &mut dyn FnMut(ExecEvent)) -> ScenarioResult;

/// How a pairing ended.
pub enum Paired {
    /// The head's runs merged into one result, and the paired verdicts.
    Done(Box<ScenarioResult>, Vec<MetricVerdict>),
    /// The base variant failed or cannot run here: the caller falls back
    /// to the stored baseline and says why.
    BaseUnusable(String),
}

/// Runs base and head alternately and compares them pair by pair.
/// `execute` runs one variant once (the session's executor in its monitor
/// window). With `confirm`, a regression counts only when `pairs` more
/// pairs, run after the verdict, agree ([`confirm_with_more_pairs`]).
#[allow(clippy::too_many_arguments)]
pub fn run_pairs(
    head: &ScenarioPlan,
    base: &ScenarioPlan,
    pairs: usize,
    settings: &Settings,
    tolerance: f64,
    policy: &Policy,
    confirm: bool,
    env: &ExecEnv,
    on_event: &mut dyn FnMut(ExecEvent),
    execute: &ExecuteFn,
) -> Paired {
    let pairs = pairs.max(2);
    let each = execution_settings(settings, pairs);
    let mut runs = Runs {
        head,
        base,
        later: later_runs(&each),
        each,
        env,
        execute,
        tolerance,
        policy,
        base_runs: Vec::with_capacity(2 * pairs),
        head_runs: Vec::with_capacity(2 * pairs),
    };
    let (target, mut judged) = match runs.until_decided(pairs, on_event) {
        Ok(decided) => decided,
        Err(stop) => return stop,
    };
    let mut confirmation = None;
    if confirm && judged.verdicts.iter().any(needs_confirmation) {
        match runs.confirm(pairs, judged, on_event) {
            Ok((confirmed, extra)) => {
                judged = confirmed;
                confirmation = Some(extra);
            }
            Err(stop) => return stop,
        }
    }
    let done = runs.base_runs.len();
    let mut merged = merge_runs(&runs.head_runs, &runs.base_runs);
    // A head run that failed a check fails the scenario, whichever run
    // came last; its checks are the ones reported.
    if let Some(failed) = runs
        .head_runs
        .iter()
        .find(|r| matches!(r.outcome, Outcome::Failed { .. }))
    {
        merged.outcome = failed.outcome.clone();
        merged.checks = failed.checks.clone();
    }
    merged
        .warnings
        .insert(0, pairing_note(done, target, pairs, confirmation));
    if judged.dropped > 0 && judged.invalid.is_none() {
        merged.warnings.push(format!(
            "{} of {done} pairs dropped: a run was invalid",
            judged.dropped
        ));
    }
    merged.warnings.extend(judged.unconfirmed);
    if let Some(why) = judged.invalid {
        merged.invalid_reasons.push(why);
    }
    Paired::Done(Box::new(merged), judged.verdicts)
}

/// The first warning of a paired result: how many pairs, extended or
/// confirmed, each on what share of the budget.
fn pairing_note(done: usize, target: usize, pairs: usize, confirmation: Option<usize>) -> String {
    format!(
        "paired with the base tree: {done} pairs{}{}, B H H B order, each run on 1/{} of the budget",
        if target > MAX_EXTENSION * pairs {
            " (extended: the first were inconclusive, and slow spells of the machine took \
             most of them)"
        } else if target > pairs {
            " (extended: the first were inconclusive)"
        } else {
            ""
        },
        confirmation.map_or(String::new(), |n| format!(
            " (the last {n} to confirm a regression)"
        )),
        2 * pairs
    )
}

/// The verdicts of the pairs so far.
struct Judged {
    verdicts: Vec<MetricVerdict>,
    /// Why the metrics are `invalid` (fewer than two valid pairs).
    invalid: Option<String>,
    /// Pairs left out because a run was invalid.
    dropped: usize,
    /// The warning when confirmation pairs did not confirm a regression.
    unconfirmed: Option<String>,
}

/// The runs of one pairing so far, and what it takes to run more.
struct Runs<'a> {
    head: &'a ScenarioPlan,
    base: &'a ScenarioPlan,
    each: Settings,
    env: &'a ExecEnv,
    execute: &'a ExecuteFn,
    tolerance: f64,
    policy: &'a Policy,
    /// `each` without any warm-up: a `command` variant's runs after its
    /// first ([`later_runs`]).
    later: Settings,
    base_runs: Vec<ScenarioResult>,
    head_runs: Vec<ScenarioResult>,
}

impl Runs<'_> {
    /// Runs `pairs` pairs, then more while a gated metric is inconclusive
    /// ([`next_target`]): the extra pairs cost time only when the answer is
    /// unclear (noise, or pairs set aside for slow spells). Returns the
    /// pairs run and their verdicts.
    fn until_decided(
        &mut self,
        pairs: usize,
        on_event: &mut dyn FnMut(ExecEvent),
    ) -> Result<(usize, Judged), Paired> {
        let mut target = pairs;
        loop {
            self.run_to(target, on_event)?;
            let judged = self.judge();
            match next_target(target, pairs, &judged.verdicts) {
                Some(next) => target = next,
                None => return Ok((target, judged)),
            }
        }
    }

    /// A second, later set of pairs for a regression: a slow spell of the
    /// machine that lined up with the head's runs does not line up again.
    /// If every confirmation pair of a regressed metric had a run in a slow
    /// spell, `pairs` more are run once: a confirmation taken only from
    /// spells says nothing. Returns the verdicts of all pairs pooled, and
    /// how many confirmation pairs ran.
    fn confirm(
        &mut self,
        pairs: usize,
        first: Judged,
        on_event: &mut dyn FnMut(ExecEvent),
    ) -> Result<(Judged, usize), Paired> {
        let done = self.base_runs.len();
        let mut extra = pairs;
        let pooled = loop {
            self.run_to(done + extra, on_event)?;
            let pooled = self.judge();
            let starved = pooled.verdicts.iter().any(|v| {
                first
                    .verdicts
                    .iter()
                    .any(|f| f.key == v.key && needs_confirmation(f))
                    && second_estimate(v, done).is_some_and(|(_, kept)| kept == 0)
            });
            if !starved || extra >= 2 * pairs {
                break pooled;
            }
            extra += pairs;
        };
        let confirmed = confirm_with_more_pairs(&first.verdicts, pooled.verdicts, done);
        let unconfirmed: Vec<String> = first
            .verdicts
            .iter()
            .filter(|v| v.verdict == Verdict::Regressed)
            .filter(|v| {
                confirmed
                    .iter()
                    .any(|c| c.key == v.key && c.verdict != Verdict::Regressed)
            })
            .map(|v| v.key.to_string())
            .collect();
        let judged = Judged {
            verdicts: confirmed,
            unconfirmed: (!unconfirmed.is_empty()).then(|| {
                format!(
                    "the first pairs regressed on {} but the confirmation pairs did not confirm it \
                     (interference from the machine, not the code): all pairs pooled are reported",
                    unconfirmed.join(", ")
                )
            }),
            ..pooled
        };
        Ok((judged, extra))
    }

    fn judge(&self) -> Judged {
        let (verdicts, invalid, dropped) = judge(
            self.head,
            &self.base_runs,
            &self.head_runs,
            self.tolerance,
            self.policy,
        );
        Judged {
            verdicts,
            invalid,
            dropped,
            unconfirmed: None,
        }
    }

    /// Runs pairs until there are `target`; `Err` ends the pairing (the
    /// head failed, or the base cannot be used).
    fn run_to(&mut self, target: usize, on_event: &mut dyn FnMut(ExecEvent)) -> Result<(), Paired> {
        for i in self.base_runs.len()..target {
            // B H, H B, B H, …: a linear drift adds as much to heads as to bases.
            let order: [bool; 2] = if i % 2 == 0 {
                [false, true]
            } else {
                [true, false]
            };
            for is_head in order {
                let (plan, side) = if is_head {
                    (self.head, "head")
                } else {
                    (self.base, "base")
                };
                on_event(ExecEvent::Point {
                    index: i,
                    total: target,
                    label: format!("pair {}/{target} {side}", i + 1),
                });
                let warm = if is_head {
                    !self.head_runs.is_empty()
                } else {
                    !self.base_runs.is_empty()
                };
                let each = if warm && plan.kind().samples_are_fresh_processes() {
                    &self.later
                } else {
                    &self.each
                };
                let r = (self.execute)(plan, self.env, each, on_event);
                let why = match &r.outcome {
                    // Measured, then failed a check: its metrics pair as
                    // measured (the scenario still fails, `run_pairs`), so
                    // a failed check does not hide what else changed.
                    _ if r.measured() => None,
                    Outcome::Ran => None,
                    Outcome::Failed { error } => Some(format!("failed: {error}")),
                    Outcome::Ignored { reason } => Some(format!("was ignored: {reason}")),
                };
                if is_head {
                    self.head_runs.push(r);
                    if why.is_some() {
                        let head_runs = std::mem::take(&mut self.head_runs);
                        return Err(Paired::Done(
                            Box::new(head_failed(head_runs, &self.base_runs)),
                            Vec::new(),
                        ));
                    }
                } else if let Some(why) = why {
                    return Err(Paired::BaseUnusable(format!(
                        "the base tree's variant {why}"
                    )));
                } else {
                    self.base_runs.push(r);
                }
            }
        }
        Ok(())
    }
}

/// Verdicts from the valid pairs so far; with fewer than two valid pairs,
/// every run is used and the metrics are `invalid` with the reasons.
fn judge(
    head: &ScenarioPlan,
    base_runs: &[ScenarioResult],
    head_runs: &[ScenarioResult],
    tolerance: f64,
    policy: &Policy,
) -> (Vec<MetricVerdict>, Option<String>, usize) {
    let n = base_runs.len().min(head_runs.len());
    let valid: Vec<usize> = (0..n)
        .filter(|&i| {
            base_runs[i].invalid_reasons.is_empty() && head_runs[i].invalid_reasons.is_empty()
        })
        .collect();
    let invalid = (valid.len() < 2).then(|| {
        let why: Vec<&str> = base_runs
            .iter()
            .chain(head_runs)
            .flat_map(|r| r.invalid_reasons.iter().map(String::as_str))
            .collect();
        format!(
            "only {} of {n} pairs were valid: {}",
            valid.len(),
            why.join("; ")
        )
    });
    let used: Vec<usize> = if invalid.is_some() {
        (0..n).collect()
    } else {
        valid.clone()
    };
    let b: Vec<ScenarioResult> = used.iter().map(|&i| base_runs[i].clone()).collect();
    let h: Vec<ScenarioResult> = used.iter().map(|&i| head_runs[i].clone()).collect();
    let order: Vec<PairOrder> = used.iter().map(|&i| PairOrder::alternating(i)).collect();
    let mut verdicts = compare_paired(
        &b,
        &h,
        &order,
        &head.metric_rules,
        tolerance,
        invalid.as_deref(),
        policy,
    );
    // One side slow in every run is what the spell rule cannot see; each
    // side's samples, pooled, show it (compare::state).
    if invalid.is_none() && !b.is_empty() {
        crate::compare::state::check_paired_sides(
            &crate::run::spread::pool(&h),
            &mut verdicts,
            &crate::run::spread::pool(&b),
        );
    }
    (verdicts, invalid, n - valid.len())
}

/// A failing head run is the scenario's failure (with the wall time of
/// every run so far).
fn head_failed(mut head_runs: Vec<ScenarioResult>, base_runs: &[ScenarioResult]) -> ScenarioResult {
    let mut r = head_runs.pop().expect("the failed head run");
    r.wall_time_s += head_runs
        .iter()
        .chain(base_runs)
        .map(|x| x.wall_time_s)
        .sum::<f64>();
    r
}

/// The head's runs as one result: every sample of every run, in order; the
/// last run's checks and monitor; the wall time of all runs, both sides.
fn merge_runs(head_runs: &[ScenarioResult], base_runs: &[ScenarioResult]) -> ScenarioResult {
    let mut merged = crate::run::spread::pool(head_runs);
    merged.warnings =
        crate::run::spread::union(head_runs.iter().chain(base_runs).flat_map(|r| &r.warnings));
    merged.invalid_reasons = Vec::new();
    merged.wall_time_s += base_runs.iter().map(|r| r.wall_time_s).sum::<f64>();
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;
    use crate::metric::MetricSeries;
    use crate::run::paired::PAIRED_CI_RELAXATION;
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use std::path::Path;
    use std::rc::Rc;
    use std::time::Duration;

    fn plan(dir: &Path, kind: &str) -> ScenarioPlan {
        let spec = match kind {
            "command" => "kind = \"command\"\ncommand = [\"true\"]",
            _ => "kind = \"websocket_flood\"\ntarget = \"builtin\"",
        };
        let text = format!(
            "[suite]\nname = \"s\"\n[defaults]\nwarmup = \"800ms\"\n\
             [[scenario]]\nname = \"x\"\n{spec}\n"
        );
        let path = dir.join("s.toml");
        config::parse_suite(&path, &text)
            .unwrap()
            .scenarios
            .remove(0)
    }

    /// Four pairs of `head` and `base` through the test double `execute`,
    /// at a 5% tolerance, with confirmation or not.
    fn four_pairs(
        head: &ScenarioPlan,
        base: &ScenarioPlan,
        confirm: bool,
        execute: &ExecuteFn,
    ) -> Paired {
        let env = ExecEnv {
            neon_perf_bin: "neon-perf".into(),
            cache_dir: std::env::temp_dir(),
        };
        run_pairs(
            head,
            base,
            4,
            &head.settings,
            0.05,
            &Policy::default(),
            confirm,
            &env,
            &mut |_| {},
            execute,
        )
    }

    /// Test double of the executor: records each run's variant and
    /// warm-up (time, runs), returns the same samples for both variants.
    fn warmups(plan: &ScenarioPlan) -> Vec<(&'static str, (Duration, u32))> {
        let seen = Rc::new(RefCell::new(Vec::new()));
        let record = Rc::clone(&seen);
        let head = plan.clone();
        let mut base = plan.clone();
        base.name = "base".into();
        let execute = move |p: &ScenarioPlan,
                            _: &ExecEnv,
                            s: &Settings,
                            _: &mut dyn FnMut(ExecEvent)| {
            let side = if p.name == "base" { "base" } else { "head" };
            let r = s.resolve();
            record.borrow_mut().push((side, (r.warmup, r.warmup_runs)));
            ScenarioResult::from_metrics("s", "x", vec![MetricSeries::seconds("m", vec![1.0; 10])])
        };
        let done = four_pairs(&head, &base, true, &execute);
        assert!(matches!(done, Paired::Done(..)));
        seen.take()
    }

    #[test]
    fn a_command_variant_warms_up_on_its_first_run_only() {
        let dir = tempfile::tempdir().unwrap();
        let seen = warmups(&plan(dir.path(), "command"));
        // 800 ms / (2 × 4), and the default one warm-up run; then none.
        let (share, none) = ((Duration::from_millis(100), 1), (Duration::ZERO, 0));
        #[rustfmt::skip]
        let expected = vec![
            ("base", share), ("head", share), // B H
            ("head", none), ("base", none),   // H B
            ("base", none), ("head", none),   // B H
            ("head", none), ("base", none),   // H B
        ];
        assert_eq!(seen, expected);
    }

    /// A head run that measured and then failed a check (a noisy batching
    /// check on a small share of the budget): the pairs still give their
    /// verdicts (here a regression), and the scenario fails with the check.
    #[test]
    fn a_failed_check_on_the_head_keeps_the_pairs_verdicts() {
        let dir = tempfile::tempdir().unwrap();
        let head = plan(dir.path(), "command");
        let mut base = head.clone();
        base.name = "base".into();
        let runs = Rc::new(RefCell::new(0usize));
        let execute =
            move |p: &ScenarioPlan, _: &ExecEnv, _: &Settings, _: &mut dyn FnMut(ExecEvent)| {
                let is_head = p.name != "base";
                let t = if is_head { 1.5 } else { 1.0 };
                let mut r = ScenarioResult::from_metrics(
                    "s",
                    "x",
                    vec![MetricSeries::seconds("m", vec![t; 10])],
                );
                *runs.borrow_mut() += 1;
                if is_head && *runs.borrow() == 2 {
                    r.checks
                        .push(crate::result::Check::new("scales", false, "1.49x", None));
                    r.outcome = Outcome::Failed {
                        error: "check `scales` failed".into(),
                    };
                }
                r
            };
        let done = four_pairs(&head, &base, false, &execute);
        let Paired::Done(result, verdicts) = done else {
            panic!("the pairs ran to their end")
        };
        assert!(
            matches!(result.outcome, Outcome::Failed { .. }),
            "{:?}",
            result.outcome
        );
        assert!(result.checks.iter().any(|c| !c.passed));
        let m = verdicts
            .iter()
            .find(|v| v.key.name == "m")
            .expect("m judged");
        assert_eq!(m.verdict, Verdict::Regressed, "{m:?}");
    }

    /// A verdict from pairs of one-sample runs: `(base, head)` each.
    fn judged(pairs: &[(f64, f64)]) -> MetricVerdict {
        let side = |x: f64| {
            ScenarioResult::from_metrics("s", "x", vec![MetricSeries::seconds("t", vec![x; 5])])
        };
        let base: Vec<_> = pairs.iter().map(|p| side(p.0)).collect();
        let head: Vec<_> = pairs.iter().map(|p| side(p.1)).collect();
        let order: Vec<_> = (0..pairs.len()).map(PairOrder::alternating).collect();
        let policy = Policy::default();
        compare_paired(&base, &head, &order, &BTreeMap::new(), 0.03, None, &policy).remove(0)
    }

    #[test]
    fn a_pairing_mostly_in_slow_spells_goes_past_the_usual_cap() {
        // 16 pairs, 14 with a run in a slow spell (+40%): 2 clean ones left.
        let pairs: Vec<(f64, f64)> = (0..16)
            .map(|i| match i {
                3 | 11 => (1.0, 1.05),
                _ if i % 2 == 0 => (1.4, 1.05),
                _ => (1.0, 1.47),
            })
            .collect();
        let v = judged(&pairs);
        assert_eq!(v.verdict, Verdict::Inconclusive, "{v:?}");
        assert_eq!(next_target(16, 4, std::slice::from_ref(&v)), Some(18));
        assert_eq!(next_target(30, 4, std::slice::from_ref(&v)), Some(32));
        assert_eq!(next_target(32, 4, std::slice::from_ref(&v)), None);

        // Inconclusive from noise, every pair kept: the usual cap of 16.
        let noisy: Vec<(f64, f64)> = (0..16)
            .map(|i| (1.0, [1.0, 1.05, 1.02, 1.06][i % 4]))
            .collect();
        let v = judged(&noisy);
        assert_eq!(v.verdict, Verdict::Inconclusive, "{v:?}");
        assert_eq!(next_target(14, 4, std::slice::from_ref(&v)), Some(16));
        assert_eq!(next_target(16, 4, std::slice::from_ref(&v)), None);

        // Decided: no more pairs.
        let clean: Vec<(f64, f64)> = (0..4).map(|_| (1.0, 1.0)).collect();
        let v = judged(&clean);
        assert_eq!(v.verdict, Verdict::Pass, "{v:?}");
        assert_eq!(next_target(4, 4, std::slice::from_ref(&v)), None);
    }

    #[test]
    fn each_run_gets_a_share_of_the_budget_and_a_relaxed_target() {
        let dir = tempfile::tempdir().unwrap();
        let p = plan(dir.path(), "command");
        let r = p.settings.resolve();
        let each = execution_settings(&p.settings, 4).resolve();
        assert_eq!(
            each.max_time,
            (r.max_time / 8).max(Duration::from_millis(50))
        );
        assert_eq!(each.warmup, r.warmup / 8);
        assert_eq!(each.min_samples, (r.min_samples / 8).max(2));
        let relaxed = r.target_rel_ci * 8f64.sqrt() * PAIRED_CI_RELAXATION;
        assert!((each.target_rel_ci - relaxed).abs() < 1e-12);
        assert_eq!(each.max_contention, 1.0, "contention cancels in a pair");
    }

    #[test]
    fn other_kinds_warm_up_on_every_run() {
        let dir = tempfile::tempdir().unwrap();
        let seen = warmups(&plan(dir.path(), "websocket_flood"));
        assert_eq!(seen.len(), 8);
        let share = (Duration::from_millis(100), 1);
        assert!(seen.iter().all(|(_, w)| *w == share), "{seen:?}");
    }
}
