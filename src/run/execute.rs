//! One run of a scenario's executor inside the monitor window, with the
//! host's contention and the monitoring evidence.

use super::*;

/// Attempts of a run that comes out invalid (the first included).
pub const ATTEMPTS: usize = 3;

/// Runs a scenario's executor inside the monitor window. Never panics on a
/// failing workload: the failure becomes the outcome. A run the monitor
/// marks invalid (other processes on the CPU, throttling, low clocks) is
/// tried again, up to [`ATTEMPTS`] in all, each after waiting up to the
/// `quiet_wait` setting (default 20 s) for the machine to be quiet; every retry is said in the
/// scenario's warnings. One still invalid after that is reported invalid
/// ("not measured"), never as a pass.
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
    let executor = exec::executor_for(plan.kind());
    if let Availability::Missing(reason) = executor.availability(plan) {
        result.outcome = Outcome::Ignored { reason };
        return result;
    }
    // An unset `{env:NAME}` it reads: a config error at its text, for this
    // scenario alone (the others run).
    if let Some(error) = crate::plan::env_ref::unset_message(&plan.unset_env()) {
        result.outcome = Outcome::Failed { error };
        return result;
    }
    let resolved = settings.resolve();
    let mut retries: Vec<String> = Vec::new();
    for attempt in 1..=ATTEMPTS {
        attempt_once(plan, executor, env, &resolved, on_event, &mut result);
        if let Some(error) = crate::process::cancel::reason() {
            // Whatever it measured before the signal, it did not finish.
            result.outcome = Outcome::Failed { error };
            break;
        }
        if result.invalid_reasons.is_empty() || attempt == ATTEMPTS {
            break;
        }
        let waited = wait_for_quiet(resolved.max_contention, resolved.quiet_wait);
        retries.push(format!(
            "attempt {attempt} of {ATTEMPTS} invalid ({}); waited {waited} for the machine to be quiet, then tried again",
            result.invalid_reasons.join("; ")
        ));
    }
    result.warnings.splice(0..0, retries);
    add_monitoring_check(&mut result);
    result.wall_time_s = start.elapsed().as_secs_f64();
    result
}

/// One run in the monitor window; its outcome, metrics, checks, validity
/// and warnings replace the previous attempt's.
fn attempt_once(
    plan: &ScenarioPlan,
    executor: &dyn exec::Executor,
    env: &ExecEnv,
    resolved: &crate::plan::Resolved,
    on_event: &mut dyn FnMut(ExecEvent),
    result: &mut ScenarioResult,
) {
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
    result.invalid_reasons = invalid;
    match outcome {
        Ok(out) => {
            result.device = out.device;
            result.metrics = out.metrics;
            result.checks = out.checks;
            result.warnings.extend(out.warnings);
            result.invalid_reasons.splice(0..0, out.invalid_reasons);
            result.outcome = match result.checks.iter().find(|c| !c.passed) {
                Some(c) => Outcome::Failed {
                    error: format!("check `{}` failed: {}", c.name, c.evidence),
                },
                None => Outcome::Ran,
            };
        }
        // A run that did not measure is not retried for the machine's sake.
        Err(
            ExecError::Failed(error) | ExecError::TimedOut(error) | ExecError::Cancelled(error),
        ) => {
            result.outcome = Outcome::Failed { error };
            result.invalid_reasons.clear();
        }
        Err(ExecError::Unavailable(reason)) => {
            result.outcome = Outcome::Ignored { reason };
            result.invalid_reasons.clear();
        }
    }
}

/// Waits until other processes use at most `max_contention` of the cores
/// over a 1-s window, or `budget` has passed. Returns the time waited, as
/// text.
fn wait_for_quiet(max_contention: f64, budget: Duration) -> String {
    let start = Instant::now();
    let limit = max_contention * crate::host::cpu_cores() as f64;
    while start.elapsed() < budget {
        match monitor::other_cpu_over(Duration::from_secs(1)) {
            Some(other) if other > limit => {}
            _ => break,
        }
    }
    crate::units::format_duration(start.elapsed())
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
    if let Some(l) = limit.filter(|l| other > l * cores) {
        invalid.push(format!(
            "{text}: its CPU timings cannot be trusted (limit {:.2}, `max_contention = {l}`; on \
             a runner shared on purpose, `--max-contention 1` or the setting turns the check off, \
             and noise goes into the timings)",
            l * cores
        ));
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
