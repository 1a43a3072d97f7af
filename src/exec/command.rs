//! `command`: the user's own program, run as a child process per sample.
//!
//! Each run is timed from spawn to exit; the child's peak RSS and CPU time
//! come from `wait4`'s rusage; metrics it prints as JSON lines on stdout
//! (`{"metric": "latency", "value": 12.5, "unit": "ms"}`) become samples.
//! A timeout kills the child's whole process group.

pub mod child;
pub mod gpu_memory;
pub mod launch;
mod leak;
mod leftovers;
mod lines;
pub mod max_batch;
mod output;
pub mod python;
pub mod rlimit;
mod sweep;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::exec::sampler::run_adaptive;
use crate::exec::{
    Availability, ExecEnv, ExecError, ExecEvent, ExecOutput, Executes, Executor, RunCtx,
};
use crate::metric::{Direction, Estimator, MetricKey, MetricSeries, Unit, default_estimator};
use crate::plan::command::placeholders;
use crate::plan::env_ref;
use crate::plan::{CommandSpec, KindSpec, ParamPoint, ScenarioPlan, point_labels};
use crate::result::Check;

pub use child::{ChildRun, run_child};

pub struct CommandExecutor;

impl Executes for crate::plan::CommandSpec {
    const EXECUTOR: &'static dyn Executor = &CommandExecutor;
}

impl Executor for CommandExecutor {
    /// Ready, except that a `find_max_batch` under a GPU memory limit
    /// (`"gpu:0.8"`) needs NVML's per-process samples: without them it is
    /// ignored with the reason.
    fn availability(&self, plan: &ScenarioPlan) -> Availability {
        let KindSpec::Command(spec) = &plan.spec else {
            return Availability::Ready;
        };
        let gpu_limit = spec.find_max_batch.as_ref().filter(|m| {
            matches!(
                m.limit(),
                crate::plan::command::max_batch::MemoryLimit::GpuFraction(_)
            )
        });
        match gpu_limit.map(|m| (m, crate::monitor::tree_gpu::NvmlProcesses::open())) {
            Some((m, Err(why))) => Availability::Missing(format!(
                "`memory_limit = \"{}\"` needs NVML's per-process GPU memory: {why}",
                m.memory_limit
            )),
            _ => Availability::Ready,
        }
    }

    fn run(&self, plan: &ScenarioPlan, ctx: &mut RunCtx<'_>) -> Result<ExecOutput, ExecError> {
        let KindSpec::Command(spec) = &plan.spec else {
            return Err(ExecError::Failed("not a command scenario".into()));
        };
        if let Some(m) = &spec.find_max_batch {
            return max_batch::search(plan, spec, m, ctx);
        }
        let mut out = ExecOutput {
            device: "cpu".into(),
            ..Default::default()
        };
        let total = plan.points.len();
        for (index, point) in plan.points.iter().enumerate() {
            let label = point_label_text(point);
            ctx.event(ExecEvent::Point {
                index,
                total,
                label,
            });
            let mut inv = Invocation::build(spec, plan, point, ctx.env)?;
            // The layered settings, the command line's overrides included.
            inv.output_tail = ctx.settings.output_tail as usize;
            let (metrics, checks, warnings) = measure_point(&inv, spec, plan, point, ctx)?;
            out.metrics.extend(metrics);
            out.checks.extend(checks);
            out.warnings.extend(warnings);
        }
        if let Some(sw) = &spec.sweep {
            sweep::analyse(plan, sw, &mut out)?;
        }
        Ok(out)
    }
}

/// One point's program as a profiler starts it (issue #22): argv,
/// environment and folder with every placeholder filled, no launcher. A
/// `batch_sweep`, a `websocket_flood` or a `gpu_kernel` runs in neon-perf
/// itself, so its program is neon-perf running that one scenario (see
/// [`self_run`]). A `find_max_batch` search and an `oom_stress` are
/// searches and stress, not timings: they are not profiled.
pub fn program(
    plan: &ScenarioPlan,
    point: &ParamPoint,
    env: &ExecEnv,
    max_time: std::time::Duration,
) -> Result<Invocation, ExecError> {
    let spec = match &plan.spec {
        KindSpec::Command(spec) => spec,
        KindSpec::BatchSweep(_) | KindSpec::WebsocketFlood(_) | KindSpec::GpuKernel(_) => {
            return self_run(plan, env, max_time);
        }
        _ => {
            return Err(ExecError::Failed(format!(
                "`{}` scenarios are not profiled: a stress test, not a timing",
                plan.kind().id()
            )));
        }
    };
    if spec.find_max_batch.is_some() {
        return Err(ExecError::Failed(
            "a `find_max_batch` search is not profiled: profile a `command` that runs one batch"
                .into(),
        ));
    }
    let mut inv = Invocation::build(spec, plan, point, env)?;
    inv.launcher = None;
    Ok(inv)
}

/// neon-perf running this one scenario, for a kind that runs in neon-perf
/// (a model's forward passes, a flood's client; a server the flood starts
/// is its child, so a profiler that follows children records it too). It
/// gates against an empty baselines folder (so it samples the full
/// `max_time`, judges nothing and exits 0), writes its reports to a
/// scratch folder, not the step summary, and profiles nothing itself.
fn self_run(
    plan: &ScenarioPlan,
    env: &ExecEnv,
    max_time: std::time::Duration,
) -> Result<Invocation, ExecError> {
    let scratch = std::path::absolute(env.cache_dir.join("profile-run"))
        .map_err(|e| ExecError::Failed(format!("{}: {e}", env.cache_dir.display())))?;
    let baselines = scratch.join("no-baselines");
    std::fs::create_dir_all(&baselines)
        .map_err(|e| ExecError::Failed(format!("cannot create {}: {e}", baselines.display())))?;
    let cwd = std::env::current_dir()
        .map_err(|e| ExecError::Failed(format!("current directory: {e}")))?;
    let mut argv = vec![env.neon_perf_bin.display().to_string(), "run".into()];
    argv.push(plan.location.file.display().to_string());
    argv.extend(["--exact", "-f"].map(String::from));
    argv.push(plan.full_name());
    argv.extend(["--profile", "off", "--no-color", "--max-time"].map(String::from));
    argv.push(format!("{}ms", max_time.as_millis().max(1)));
    argv.push("--baselines".into());
    argv.push(baselines.display().to_string());
    let env_vars = BTreeMap::from([
        (
            "NEON_PERF_REPORTS_DIR".to_string(),
            scratch.join("reports").display().to_string(),
        ),
        ("GITHUB_STEP_SUMMARY".to_string(), String::new()),
    ]);
    Ok(Invocation {
        argv,
        env: env_vars,
        cwd,
        mem_limit: None,
        launcher: None,
        output_tail: 64 * 1024,
    })
}

fn point_label_text(point: &ParamPoint) -> String {
    point
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// argv, env and cwd with every placeholder filled in.
#[derive(Clone, Debug, PartialEq)]
pub struct Invocation {
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub cwd: PathBuf,
    /// RLIMIT_DATA set on the child before it starts, bytes.
    pub mem_limit: Option<u64>,
    /// The run launcher (`launch.rs`) the program is started through, so
    /// its peak RSS is its own; `None` starts it directly.
    pub launcher: Option<PathBuf>,
    /// Bytes of stderr kept while it is drained (`output_tail`).
    pub output_tail: usize,
}

impl Invocation {
    pub fn build(
        spec: &CommandSpec,
        plan: &ScenarioPlan,
        point: &ParamPoint,
        env: &ExecEnv,
    ) -> Result<Invocation, ExecError> {
        let neon_perf_bin = env.neon_perf_bin.as_path();
        let mut vars: BTreeMap<String, String> = point_labels(point);
        // Absolute: the child runs in the suite's folder (or `cwd`), where a
        // relative `suites/…` would point one level too deep.
        let suite_dir = std::path::absolute(&plan.base_dir).unwrap_or(plan.base_dir.clone());
        vars.insert("neon_perf".into(), neon_perf_bin.display().to_string());
        vars.insert("suite_dir".into(), suite_dir.display().to_string());
        let subst = |s: &str| substitute(s, &vars).map_err(ExecError::Failed);
        let mut argv = spec
            .command
            .iter()
            .map(|a| subst(a))
            .collect::<Result<Vec<_>, _>>()?;
        if argv.is_empty() {
            return Err(ExecError::Failed("empty command".into()));
        }
        if spec.shell {
            argv = vec!["sh".into(), "-c".into(), argv.join(" ")];
        }
        let mut child_env: BTreeMap<String, String> = spec
            .env
            .iter()
            .map(|(k, v)| {
                let v = env_ref::expand_now(&format!("`env.{k}`"), &subst(v)?);
                Ok((k.clone(), v.map_err(ExecError::Failed)?))
            })
            .collect::<Result<_, ExecError>>()?;
        let helper = python::helper_dir(&env.cache_dir).map_err(ExecError::Failed)?;
        let path = python::pythonpath(&helper, child_env.get("PYTHONPATH").map(String::as_str));
        child_env.insert("PYTHONPATH".into(), path);
        let cwd = match &spec.cwd {
            Some(c) => suite_dir.join(c),
            None => suite_dir,
        };
        let launcher = launch::install(&env.cache_dir).map_err(ExecError::Failed)?;
        Ok(Invocation {
            argv,
            env: child_env,
            cwd,
            mem_limit: None,
            launcher,
            output_tail: plan.settings.resolve().output_tail as usize,
        })
    }
}

/// Replaces each `{identifier}` placeholder with `vars[identifier]`; other
/// braces (JSON in a shell command, `{}`) are left as they are — the same
/// rule the suite parser checks with.
pub fn substitute(s: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut last = 0;
    for (range, name) in placeholders(s) {
        let v = vars
            .get(name)
            .ok_or_else(|| format!("unknown placeholder `{{{name}}}` in `{s}`"))?;
        out.push_str(&s[last..range.start]);
        out.push_str(v);
        last = range.end;
    }
    out.push_str(&s[last..]);
    Ok(out)
}

fn printed_names(run: &ChildRun) -> String {
    // Each name once, in the order printed (a program prints its metrics
    // once per iteration).
    let mut names: Vec<&str> = Vec::new();
    for m in &run.metrics {
        if !names.contains(&m.metric.as_str()) {
            names.push(&m.metric);
        }
    }
    if names.is_empty() {
        "no metric lines".into()
    } else {
        names.join(", ")
    }
}

/// Accumulates samples per metric for one point.
struct Collector {
    labels: BTreeMap<String, String>,
    series: BTreeMap<MetricKey, MetricSeries>,
}

/// The key of a metric named `name` (labels of its own allowed, as a
/// program prints `phase_time{phase=load}`) at the point with `labels`.
fn point_key(name: &str, labels: &BTreeMap<String, String>) -> MetricKey {
    name.parse::<MetricKey>()
        .unwrap_or_else(|_| MetricKey::new(name))
        .with_labels(labels)
}

impl Collector {
    fn push(&mut self, name: &str, unit: Unit, direction: Direction, value: f64) {
        let estimator = default_estimator(&unit, direction);
        self.push_as(name, unit, direction, estimator, value);
    }

    fn push_as(
        &mut self,
        name: &str,
        unit: Unit,
        direction: Direction,
        estimator: Estimator,
        value: f64,
    ) {
        let key = point_key(name, &self.labels);
        self.series
            .entry(key.clone())
            .or_insert_with(|| MetricSeries::new(key, unit, direction, estimator))
            .samples
            .push(value);
    }

    /// A metric the program printed: one unit per metric, or the samples
    /// of two quantities would be pooled into one distribution.
    fn push_printed(
        &mut self,
        m: &lines::ProgramMetric,
        unit: Unit,
        value: f64,
    ) -> Result<(), String> {
        let key = point_key(&m.metric, &self.labels);
        if let Some(s) = self.series.get(&key)
            && !s.unit.same_quantity(&unit)
        {
            return Err(format!(
                "printed metric `{}` in two units: first `{}`, then `{}` (in `{{\"metric\": \"{}\", \"value\": {}, \"unit\": \"{}\"}}`); print each quantity under its own name",
                m.metric,
                s.unit.symbol(),
                unit.symbol(),
                m.metric,
                m.value,
                m.unit.as_deref().unwrap_or("")
            ));
        }
        let direction = m.direction.unwrap_or_else(|| unit.default_direction());
        self.push(&m.metric, unit, direction, value);
        Ok(())
    }
}

/// A point's series, the checks its runs printed, and warnings about what
/// the runs left behind.
type MeasuredPoint = (Vec<MetricSeries>, Vec<Check>, Vec<String>);

fn measure_point(
    inv: &Invocation,
    spec: &CommandSpec,
    plan: &ScenarioPlan,
    point: &ParamPoint,
    ctx: &mut RunCtx<'_>,
) -> Result<MeasuredPoint, ExecError> {
    let primary = spec.primary.clone().unwrap_or_else(|| "wall_time".into());
    let primary_key = MetricKey::new(primary.as_str()).with_labels(&point_labels(point));
    let mut settings = ctx.settings.clone();
    // One probe run tells the primary metric's unit, so adaptive stopping
    // watches the same estimator the gate compares. It counts as warm-up
    // (a run, and its time), or, with no warm-up at all (`warmup = "0s"`,
    // `warmup_runs = 0`, as a paired variant's later runs have), as the
    // first measured sample.
    let pids = ctx.child_pids.clone();
    let register = move |pid| {
        if let Ok(mut p) = pids.lock() {
            p.push(pid)
        }
    };
    let probe_start = std::time::Instant::now();
    // Registered like every sample's process: it may be one.
    let probe = run_child(inv, settings.timeout, register.clone())?;
    let mut leftovers = leftovers::Leftovers::default();
    leftovers.record(&probe);
    let probe_is_sample = settings.warmup_runs == 0 && settings.warmup.is_zero();
    settings.warmup_runs = settings.warmup_runs.saturating_sub(1);
    settings.warmup = settings.warmup.saturating_sub(probe_start.elapsed());
    let (unit, direction) = primary_unit(&primary, &probe, inv)?;
    let estimator = plan
        .rule_for(&primary_key)
        .and_then(|r| r.estimator)
        .unwrap_or_else(|| default_estimator(&unit, direction));
    let mut runs = PointRuns {
        plan,
        inv,
        primary: &primary,
        envelope: envelope_direction(spec, &probe),
        col: Collector {
            labels: point_labels(point),
            series: BTreeMap::new(),
        },
        gpu: gpu_memory::GpuMemoryRuns::default(),
        leaks: leak::LeakRuns::default(),
        printed_checks: Vec::new(),
    };
    let mut first_sample = probe_is_sample.then_some(probe);
    run_adaptive(
        &settings,
        estimator,
        |warmup| {
            let run = match first_sample.take() {
                Some(probe) => probe,
                None => {
                    let run = run_child(inv, settings.timeout, register.clone())?;
                    leftovers.record(&run);
                    run
                }
            };
            if warmup {
                return Ok(Vec::new());
            }
            runs.record(run)
        },
        |count| ctx.event(ExecEvent::Sample { count }),
    )?;
    let (metrics, checks, mut warnings) = runs.finish(point);
    warnings.extend(leftovers.warnings(&inv.argv.join(" ")));
    Ok((metrics, checks, warnings))
}

/// `wall_time` and `cpu_time` are the gate's measure of a program that
/// prints nothing of its own, or whose `primary` is one of them. Once it
/// prints its own metrics they are its measure, and the process's times
/// are reported, not gated: they hold the interpreter's start-up, imports
/// and model loading, whose noise on a shared runner refused blesses and
/// failed gates that the program's own latency passed. A rule's
/// `direction = "lower"` gates them again.
fn envelope_direction(spec: &CommandSpec, probe: &ChildRun) -> Direction {
    let primary = spec.primary.as_deref();
    if probe.metrics.is_empty() || matches!(primary, Some("wall_time" | "cpu_time")) {
        Direction::LowerIsBetter
    } else {
        Direction::Neither
    }
}

/// The unit and direction of the primary metric: `wall_time`'s, or those
/// the probe run printed it with.
fn primary_unit(
    primary: &str,
    probe: &ChildRun,
    inv: &Invocation,
) -> Result<(Unit, Direction), ExecError> {
    if primary == "wall_time" {
        return Ok((Unit::Seconds, Direction::LowerIsBetter));
    }
    let m = probe
        .metrics
        .iter()
        .find(|m| m.metric == primary)
        .ok_or_else(|| {
            let names = probe.metrics.iter().map(|m| m.metric.as_str());
            let hint = crate::plan::hint::closest(primary, names)
                .map(|c| format!("; did you mean `primary = \"{c}\"`?"))
                .unwrap_or_default();
            ExecError::Failed(format!(
                "primary metric `{primary}` was not printed by `{}` (it printed: {}){hint}",
                inv.argv.join(" "),
                printed_names(probe)
            ))
        })?;
    let unit = Unit::parse_with_scale(m.unit.as_deref().unwrap_or("")).0;
    let direction = m.direction.unwrap_or_else(|| unit.default_direction());
    Ok((unit, direction))
}

/// What a point's measured runs gather.
struct PointRuns<'a> {
    plan: &'a ScenarioPlan,
    inv: &'a Invocation,
    primary: &'a str,
    /// The direction of `wall_time` and `cpu_time`: gated (lower is
    /// better) when they are all the program tells, reported only when it
    /// prints metrics of its own (see [`envelope_direction`]).
    envelope: Direction,
    col: Collector,
    gpu: gpu_memory::GpuMemoryRuns,
    leaks: leak::LeakRuns,
    printed_checks: Vec<Check>,
}

impl PointRuns<'_> {
    /// One measured run: its series, and every value of the primary metric
    /// it printed (the gate's estimator sees them all, so the stopping rule
    /// does too).
    fn record(&mut self, run: ChildRun) -> Result<Vec<f64>, ExecError> {
        self.gpu.record(&run);
        let col = &mut self.col;
        let estimator = default_estimator(&Unit::Seconds, Direction::LowerIsBetter);
        for (name, value) in [("wall_time", run.wall), ("cpu_time", run.cpu)] {
            col.push_as(
                name,
                Unit::Seconds,
                self.envelope,
                estimator,
                value.as_secs_f64(),
            );
        }
        col.push(
            "peak_rss",
            Unit::Bytes,
            Direction::LowerIsBetter,
            run.peak_rss as f64,
        );
        let mut primary_values: Vec<f64> = if self.primary == "wall_time" {
            vec![run.wall.as_secs_f64()]
        } else {
            Vec::new()
        };
        let mut this_run: BTreeMap<MetricKey, (Unit, Vec<f64>)> = BTreeMap::new();
        for m in &run.metrics {
            let (unit, scale) = Unit::parse_with_scale(m.unit.as_deref().unwrap_or(""));
            let v = m.value * scale;
            if m.metric == self.primary {
                primary_values.push(v);
            }
            let key = point_key(&m.metric, &col.labels);
            if leak::LeakRuns::wanted(self.plan, &key) {
                this_run
                    .entry(key)
                    .or_insert_with(|| (unit.clone(), Vec::new()))
                    .1
                    .push(v);
            }
            col.push_printed(m, unit, v)
                .map_err(|e| ExecError::Failed(format!("`{}` {e}", self.inv.argv.join(" "))))?;
        }
        self.leaks.record(this_run);
        keep_checks(&mut self.printed_checks, run.checks);
        Ok(primary_values)
    }

    /// The point's series (with leak growth and GPU memory), checks and
    /// warnings.
    fn finish(self, point: &ParamPoint) -> MeasuredPoint {
        let labels = &self.col.labels;
        let reported: Vec<&str> = self.col.series.keys().map(|k| k.name.as_str()).collect();
        let (growth, mut checks) = self.leaks.finish(self.plan, labels, &reported);
        let (gpu_series, gpu_checks, warnings) = self.gpu.finish(self.plan, labels);
        let labelled = !labels.is_empty();
        let mut metrics: Vec<MetricSeries> = self.col.series.into_values().collect();
        checks.extend(gpu_memory::helper_peak_bounds(self.plan, &metrics));
        metrics.extend(growth);
        metrics.extend(gpu_series);
        checks.extend(gpu_checks);
        checks.extend(self.printed_checks.into_iter().map(|mut c| {
            if labelled {
                c.name = format!("{} ({})", c.name, point_label_text(point));
            }
            c
        }));
        (metrics, checks, warnings)
    }
}

/// The checks a run printed, over the point's measured runs: one per name,
/// a failure kept over a later pass (it happened), else the latest.
fn keep_checks(kept: &mut Vec<Check>, run: Vec<Check>) {
    for c in run {
        match kept.iter_mut().find(|k| k.name == c.name) {
            Some(k) if k.passed || !c.passed => *k = c,
            Some(_) => {}
            None => kept.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// #21 finding 5: one metric in two units is refused, naming both,
    /// never pooled into one distribution.
    #[test]
    fn a_metric_in_two_units_is_refused() {
        let mut col = Collector {
            labels: BTreeMap::new(),
            series: BTreeMap::new(),
        };
        let line = |l: &str| lines::parse_metric_line(l).unwrap().unwrap();
        let ms = line(r#"{"metric": "lat", "value": 12, "unit": "ms"}"#);
        let us = line(r#"{"metric": "lat", "value": 900, "unit": "us"}"#);
        let bytes = line(r#"{"metric": "lat", "value": 4096, "unit": "B"}"#);
        col.push_printed(&ms, Unit::Seconds, 0.012).unwrap();
        col.push_printed(&us, Unit::Seconds, 0.0009).unwrap();
        let e = col.push_printed(&bytes, Unit::Bytes, 4096.0).unwrap_err();
        assert!(e.contains("in two units: first `s`, then `B`"), "{e}");
        assert!(e.contains(r#""value": 4096, "unit": "B""#), "{e}");
        assert_eq!(col.series.values().next().unwrap().samples.len(), 2);
    }

    /// A printed name with labels of its own is one key with the point's
    /// labels added, so that a rule on the bare name (`metric.phase_time`)
    /// applies to it and its text reads back as the same key.
    #[test]
    fn printed_labels_join_the_points_labels() {
        let point = BTreeMap::from([("batch".to_string(), "8".to_string())]);
        let k = point_key("phase_time{phase=load}", &point);
        assert_eq!(k.name, "phase_time");
        assert_eq!(k.to_string(), "phase_time{batch=8,phase=load}");
        assert_eq!(k.to_string().parse::<MetricKey>().unwrap(), k);
        assert_eq!(
            point_key("wall_time", &point).to_string(),
            "wall_time{batch=8}"
        );
    }

    fn vars() -> BTreeMap<String, String> {
        [("n", "1024"), ("neon_perf", "/bin/np")]
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn substitution() {
        let v = vars();
        let cases = [
            ("--n={n}", Ok("--n=1024".to_string())),
            ("{neon_perf}", Ok("/bin/np".to_string())),
            (r#"{"json": {n}}"#, Ok(r#"{"json": 1024}"#.to_string())),
            ("{}", Ok("{}".to_string())),
            ("plain", Ok("plain".to_string())),
            (
                "{missing}",
                Err("unknown placeholder `{missing}` in `{missing}`".to_string()),
            ),
            ("{n", Ok("{n".to_string())),
        ];
        for (input, want) in cases {
            assert_eq!(substitute(input, &v), want, "{input}");
        }
    }
}
