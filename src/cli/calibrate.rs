//! `neon-perf calibrate`: runs scenarios N times unchanged and reports each
//! metric's run-to-run noise with the tolerance it supports (see
//! [`crate::calibrate`]); `--write` puts the recommendations into the suites.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::commands::{exec_env, select_to_run};
use super::progress::Progress;
use super::{CalibrateArgs, exit};
use crate::calibrate::{self, BLESSED_RUNS, FALSE_ALARM, MetricNoise, write};
use crate::compare::{estimate, rule_for};
use crate::metric::Direction;
use crate::plan::ScenarioPlan;
use crate::result::{Outcome, ScenarioResult};
use crate::run;

/// One scenario's calibration.
#[derive(serde::Serialize)]
struct ScenarioNoise {
    scenario: String,
    file: PathBuf,
    runs: usize,
    invalid_runs: usize,
    metrics: Vec<MetricNoise>,
}

pub fn calibrate(a: CalibrateArgs) -> i32 {
    if cfg!(debug_assertions) {
        eprintln!("error: calibrate measures noise: build with --release");
        return exit::BAD_INPUT;
    }
    let plans = match select_to_run(&a.select) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let runs = usize::from(a.runs);
    let env = exec_env();
    let overrides = a.sampling.settings();
    println!(
        "neon-perf calibrate · {} scenario(s) × {runs} runs · hardware {}",
        plans.len(),
        crate::device::hardware_key().dirname()
    );
    let mut progress = Progress::new(plans.len() * runs);
    let mut out = Vec::new();
    for plan in &plans {
        let settings = overrides.clone().or(&plan.settings);
        let mut results = Vec::new();
        let mut failure = None;
        for i in 0..runs {
            if i > 0 {
                // Runs back to back share a slow spell of a shared machine
                // more often than the gate's runs do (they are a bless and a
                // pull request apart): spaced like a bless's runs, the
                // spread measured is the one the gate meets.
                std::thread::sleep(crate::run::spread::SPREAD_GAP);
            }
            progress.start(&format!("{} run {}/{runs}", plan.full_name(), i + 1));
            let r = run::execute(plan, &env, &settings, &mut |e| progress.event(&e));
            progress.line(&format!(
                "{} run {}/{runs}: {}",
                plan.full_name(),
                i + 1,
                outcome(&r)
            ));
            match &r.outcome {
                Outcome::Ran => results.push(r),
                Outcome::Failed { error } => {
                    failure = Some(format!("failed: {error}"));
                    break;
                }
                Outcome::Ignored { reason } => {
                    failure = Some(format!("ignored: {reason}"));
                    break;
                }
            }
        }
        if let Some(why) = failure {
            progress.line(&format!("{}: not calibrated, {why}", plan.full_name()));
            continue;
        }
        let tolerance = settings.resolve().tolerance;
        out.push(noise_of(plan, &results, tolerance));
    }
    progress.done();
    print!("{}", table(&out, runs));
    if let Some(p) = &a.json {
        let bytes = serde_json::to_vec_pretty(&out).expect("calibration serializes");
        if let Err(e) = std::fs::write(p, bytes) {
            eprintln!("error: writing {}: {e}", p.display());
            return exit::BAD_INPUT;
        }
    }
    if let Some(p) = &a.markdown
        && let Err(e) = std::fs::write(p, table(&out, runs))
    {
        eprintln!("error: writing {}: {e}", p.display());
        return exit::BAD_INPUT;
    }
    if a.write {
        for line in write_suites(&out) {
            match line {
                Ok(l) => println!("{l}"),
                Err(e) => {
                    eprintln!("error: {e}");
                    return exit::BAD_INPUT;
                }
            }
        }
    }
    exit::OK
}

fn outcome(r: &ScenarioResult) -> String {
    match &r.outcome {
        Outcome::Ran if r.invalid_reasons.is_empty() => format!("ran in {:.1} s", r.wall_time_s),
        Outcome::Ran => format!("invalid ({})", r.invalid_reasons.join("; ")),
        Outcome::Failed { error } => format!("failed: {error}"),
        Outcome::Ignored { reason } => format!("ignored: {reason}"),
    }
}

/// Per metric: each valid run's estimate under the metric's estimator.
fn noise_of(plan: &ScenarioPlan, results: &[ScenarioResult], tolerance: f64) -> ScenarioNoise {
    let valid: Vec<&ScenarioResult> = results
        .iter()
        .filter(|r| r.invalid_reasons.is_empty())
        .collect();
    let mut keys = Vec::new();
    for r in &valid {
        for m in &r.metrics {
            if !keys.contains(&m.key) {
                keys.push(m.key.clone());
            }
        }
    }
    let metrics = keys
        .into_iter()
        .filter_map(|key| {
            let first = valid.iter().find_map(|r| r.metric(&key.to_string()))?;
            let rule = rule_for(&plan.metric_rules, &key);
            let estimator = rule.and_then(|r| r.estimator).unwrap_or(first.estimator);
            let direction = rule.and_then(|r| r.direction).unwrap_or(first.direction);
            let gated =
                rule.and_then(|r| r.gate).unwrap_or(true) && direction != Direction::Neither;
            let estimates: Vec<f64> = valid
                .iter()
                .filter_map(|r| estimate(&r.metric(&key.to_string())?.samples, estimator))
                .collect();
            calibrate::calibrate_metric(
                key,
                first.unit.clone(),
                direction,
                estimator,
                estimates,
                rule.and_then(|r| r.tolerance).unwrap_or(tolerance),
                gated,
            )
        })
        .collect();
    ScenarioNoise {
        scenario: plan.full_name(),
        file: plan.location.file.clone(),
        runs: results.len(),
        invalid_runs: results.len() - valid.len(),
        metrics,
    }
}

fn table(out: &[ScenarioNoise], runs: usize) -> String {
    let mut s = format!(
        "\nRun-to-run noise ({runs} runs each) and the tolerance that keeps false alarms under {:.0}% \
         against a baseline of {BLESSED_RUNS} blessed runs:\n\n",
        FALSE_ALARM * 100.0
    );
    s.push_str("| scenario | metric | estimator | runs | mean | noise (sd) | max deviation | tolerance now | recommended |\n");
    s.push_str("|---|---|---|---|---|---|---|---|---|\n");
    for sc in out {
        for m in &sc.metrics {
            let mean = m.estimates.iter().map(|x| x.ln()).sum::<f64>() / m.estimates.len() as f64;
            let flag = if m.too_tight() {
                " ⚠ too tight"
            } else if !m.gated {
                " (not gated)"
            } else {
                ""
            };
            s.push_str(&format!(
                "| {} | {} | {} | {}{} | {} | ±{:.2}% | {:.2}% | {:.1}% | {:.1}%{flag} |\n",
                sc.scenario,
                m.key,
                m.estimator,
                m.estimates.len(),
                if sc.invalid_runs > 0 {
                    format!(" (+{} invalid)", sc.invalid_runs)
                } else {
                    String::new()
                },
                m.unit.format(mean.exp()),
                100.0 * m.run_sd,
                100.0 * m.max_deviation,
                100.0 * m.current,
                100.0 * m.recommended,
            ));
        }
    }
    s
}

/// `(metric name, tolerance)` for one scenario.
type Tolerances = Vec<(String, f64)>;

/// One tolerance per gated metric name per scenario (the largest over its
/// labels), written into each suite file.
fn write_suites(out: &[ScenarioNoise]) -> Vec<Result<String, String>> {
    let mut by_file: BTreeMap<&Path, Vec<(&str, Tolerances)>> = BTreeMap::new();
    for sc in out {
        let mut names: BTreeMap<String, f64> = BTreeMap::new();
        for m in sc.metrics.iter().filter(|m| m.gated) {
            let t = names.entry(m.key.name.clone()).or_insert(0.0);
            *t = t.max(m.recommended);
        }
        let name = sc
            .scenario
            .split_once("::")
            .map_or(sc.scenario.as_str(), |x| x.1);
        by_file
            .entry(sc.file.as_path())
            .or_default()
            .push((name, names.into_iter().collect()));
    }
    by_file
        .into_iter()
        .map(|(file, scenarios)| {
            let mut text = std::fs::read_to_string(file)
                .map_err(|e| format!("reading {}: {e}", file.display()))?;
            for (scenario, tols) in &scenarios {
                text = write::set_tolerances(&text, scenario, tols)
                    .map_err(|e| format!("{}: {e}", file.display()))?;
            }
            crate::baseline::store::write_atomically(file, text.as_bytes())
                .map_err(|e| format!("writing {}: {e}", file.display()))?;
            Ok(format!(
                "wrote recommended tolerances into {} (review with `git diff`)",
                file.display()
            ))
        })
        .collect()
}
