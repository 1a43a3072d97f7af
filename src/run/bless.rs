//! A bless's runs: spread over time, more of them while they disagree or
//! look slow, and which of them to record.

use super::*;

/// `n` more runs of the scenario, each after the session's spread gap,
/// announced as points `at.0 + i` of `at.1` with `label`.
pub(super) fn execute_spread(
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
pub(super) fn bless_extra_runs(
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
    let can_tell_state = plan.kind().bless_can_tell();
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
    last.warnings
        .push(extra_runs_said(&first_reason, now.as_ref(), extra));
}

/// What the last bless run says of the extra runs: why they ran, and
/// whether the reason went away.
fn extra_runs_said(first_reason: &MoreRuns, now: Option<&MoreRuns>, extra: usize) -> String {
    let gap = compare::state::STATE_GAP * 100.0;
    match now {
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
    }
}

/// Of a bless's runs: a failed run, or one that broke an absolute bound, is
/// reported and nothing is recorded; invalid runs are left out (with a
/// warning when others are recorded). Returns the run to report (the last),
/// its verdicts and the runs to record.
pub(super) fn choose_bless_runs(
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
