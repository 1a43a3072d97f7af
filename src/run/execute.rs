//! One run of a scenario's executor inside the monitor window, with the
//! host's contention and the monitoring evidence.

use super::*;

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
    let executor = exec::executor_for(plan.kind());
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
            Err(
                ExecError::Failed(error) | ExecError::TimedOut(error) | ExecError::Cancelled(error),
            ) => result.outcome = Outcome::Failed { error },
            Err(ExecError::Unavailable(reason)) => result.outcome = Outcome::Ignored { reason },
        }
        let cancelled = crate::process::cancel::reason();
        if let Some(error) = cancelled {
            // Whatever it measured before the signal, it did not finish.
            result.outcome = Outcome::Failed { error };
            break;
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
