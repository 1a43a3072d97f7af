//! `oom_stress` on the host (`device = "cpu"`): a child process — neon-perf
//! itself, through the hidden `oom-child` subcommand — lowers its own
//! RLIMIT_DATA, allocates with fallible allocation until refused, frees
//! everything and proves recovery (RSS back within `leak_tolerance`, and a new
//! allocation succeeds). `find_max_batch` bisects the largest batch of a
//! model whose forward pass fits the limit, one child per probe, so an abort
//! on allocation failure inside candle only ends that probe.
//!
//! The limit never endangers the machine: it is refused above half of the
//! memory available, and the child cannot grow beyond it.

pub(in crate::exec::oom) mod child;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::exec::search::max_true;
use crate::exec::{ExecError, ExecEvent, ExecOutput, RunCtx};
use crate::metric::{ChecklistItem, Direction, MetricKey, MetricSeries, Unit};
use crate::plan::batch_sweep::ModelSpec;
use crate::plan::oom::OomPattern;
use crate::plan::{OomStressSpec, ScenarioPlan};
use crate::result::Check;
use crate::units::{format_byte_count, format_bytes};

pub use child::{OomChildArgs, ProbeReport, StressReport, stress};

/// Test hook: bytes the child keeps (and forgets) after freeing, so a test
/// can prove a leak is caught. Read by the child only; never set it otherwise.
pub const PLANT_LEAK_ENV: &str = "NEON_PERF_OOM_PLANT_LEAK";

/// The host settings of an `oom_stress` scenario with defaults applied: the
/// host-only keys of [`OomStressSpec`] (`memory_limit`, `pattern`, `chunk`,
/// `leak_tolerance`) plus `find_max_batch` / `model` / `max_batch`.
#[derive(Clone, Debug, PartialEq)]
pub struct HostOomSettings {
    pub memory_limit: u64,
    pub pattern: OomPattern,
    pub chunk: u64,
    pub leak_tolerance: u64,
    pub find_max_batch: Option<(ModelSpec, usize)>,
}

impl HostOomSettings {
    pub const DEFAULT_LIMIT: u64 = 256 << 20;
    pub const DEFAULT_CHUNK: u64 = 8 << 20;
    pub const DEFAULT_LEAK_TOLERANCE: u64 = 8 << 20;

    pub fn from_spec(spec: &OomStressSpec) -> Result<Self, String> {
        let find = match (spec.find_max_batch, &spec.model) {
            (true, Some(m)) => Some((m.clone(), spec.max_batch.unwrap_or(65536).max(1) as usize)),
            (true, None) => {
                return Err("`find_max_batch = true` needs a `model = { .. }` to probe".into());
            }
            (false, _) => None,
        };
        let chunk = spec.chunk.map_or(Self::DEFAULT_CHUNK, |c| c.0).max(4096);
        Ok(HostOomSettings {
            memory_limit: spec.memory_limit.map_or(Self::DEFAULT_LIMIT, |b| b.0),
            pattern: spec.pattern.unwrap_or_default(),
            chunk,
            leak_tolerance: spec
                .leak_tolerance
                .map_or(Self::DEFAULT_LEAK_TOLERANCE, |b| b.0),
            find_max_batch: find,
        })
    }
}

/// How a child ended.
pub(crate) struct ChildRun {
    pub stdout: String,
    pub stderr: String,
    pub status: Option<std::process::ExitStatus>,
    pub timed_out: bool,
}

pub(crate) fn run_child(
    bin: &Path,
    args: &[String],
    timeout: Duration,
    ctx: &mut RunCtx<'_>,
) -> Result<ChildRun, ExecError> {
    let tag = crate::process::Tag::new();
    let mut cmd = Command::new(bin);
    cmd.env(crate::process::TAG_VAR, tag.value())
        .arg("oom-child")
        .args(args)
        .env("MALLOC_ARENA_MAX", "2")
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| {
        ExecError::Failed(format!("cannot start `{} oom-child`: {e}", bin.display()))
    })?;
    let pid = child.id();
    // A cancel (SIGINT, SIGTERM) ends it through the list of live programs.
    let _live = crate::process::live::register(None, &tag);
    if let Ok(mut p) = ctx.child_pids.lock() {
        p.push(pid);
    }
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if start.elapsed() > timeout => {
                let _ = child.kill();
                timed_out = true;
                break child.wait().ok();
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(_) => break None,
        }
    };
    if let Ok(mut p) = ctx.child_pids.lock() {
        p.retain(|&x| x != pid);
    }
    Ok(ChildRun {
        stdout: t_out.join().unwrap_or_default(),
        stderr: t_err.join().unwrap_or_default(),
        status,
        timed_out,
    })
}

pub(crate) fn describe_exit(r: &ChildRun) -> String {
    use std::os::unix::process::ExitStatusExt;
    let how = match r.status {
        _ if r.timed_out => "timed out".to_string(),
        Some(s) => match (s.code(), s.signal()) {
            (Some(c), _) => format!("exit code {c}"),
            (None, Some(sig)) => format!("signal {sig}"),
            _ => "unknown status".into(),
        },
        None => "unknown status".into(),
    };
    // Rust's allocation-failure message, else the last line said.
    let lines: Vec<&str> = r.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let last = lines
        .iter()
        .find(|l| l.contains("memory allocation of"))
        .or(lines.last());
    match last {
        Some(l) => format!("{how}: {l}"),
        None => how,
    }
}

/// Runs `oom_stress` on the host. The lead dispatches `device = "cpu"` here.
pub fn run_host(
    plan: &ScenarioPlan,
    spec: &OomStressSpec,
    ctx: &mut RunCtx<'_>,
) -> Result<ExecOutput, ExecError> {
    let s = HostOomSettings::from_spec(spec).map_err(ExecError::Failed)?;
    if let Some(avail) = crate::host::mem_available().filter(|a| s.memory_limit > a / 2) {
        return Err(ExecError::Unavailable(format!(
            "memory_limit {} is more than half of the memory available here ({}): lower it",
            format_bytes(s.memory_limit as f64),
            format_bytes(avail as f64)
        )));
    }
    let mut out = ExecOutput {
        device: "cpu (child process under RLIMIT_DATA)".into(),
        ..Default::default()
    };
    let total = 1 + usize::from(s.find_max_batch.is_some());
    ctx.event(ExecEvent::Point {
        index: 0,
        total,
        label: format!("pattern={:?}", s.pattern).to_lowercase(),
    });
    let t = Instant::now();
    let run = run_child(
        &ctx.env.neon_perf_bin.clone(),
        &stress_args(&s),
        ctx.settings.timeout,
        ctx,
    )?;
    let wall = t.elapsed().as_secs_f64();
    unenforceable(&run)?;
    let Some(r) = last_json::<StressReport>(&run.stdout) else {
        return Err(ExecError::Failed(format!(
            "oom-child gave no report ({})",
            describe_exit(&run)
        )));
    };
    push_stress_metrics(&mut out, &s, &r, wall);
    push_stress_checks(&mut out, &s, &r, &run);
    if let Some((model, max)) = &s.find_max_batch {
        ctx.event(ExecEvent::Point {
            index: 1,
            total,
            label: "find_max_batch".into(),
        });
        search_max_batch(plan, &s, (model, *max), &mut out, ctx)?;
    }
    Ok(out)
}

/// `Unavailable` when the child said its limit cannot be enforced here.
fn unenforceable(run: &ChildRun) -> Result<(), ExecError> {
    match last_json::<child::Unenforceable>(&run.stdout) {
        Some(u) => Err(ExecError::Unavailable(u.unenforceable)),
        None => Ok(()),
    }
}

/// The last line of `stdout` that parses as a `T`.
fn last_json<T: serde::de::DeserializeOwned>(stdout: &str) -> Option<T> {
    stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
}

/// The `oom-child` arguments of the stress.
fn stress_args(s: &HostOomSettings) -> Vec<String> {
    vec![
        "--limit".into(),
        s.memory_limit.to_string(),
        "--pattern".into(),
        match s.pattern {
            OomPattern::Grow => "grow".into(),
            OomPattern::Fragment => "fragment".into(),
        },
        "--chunk".into(),
        s.chunk.to_string(),
    ]
}

/// The stress's metrics. One sample each and noisy (allocator, page
/// cache): reported with direction `Neither`; the checks enforce the limits
/// that matter.
fn push_stress_metrics(out: &mut ExecOutput, s: &HostOomSettings, r: &StressReport, wall: f64) {
    let single = |name: &str, unit: Unit, v: f64| {
        MetricSeries::single(MetricKey::new(name), unit, Direction::Neither, v)
    };
    let leak = r.rss_after.saturating_sub(r.rss_start);
    out.metrics.extend([
        single("oom_allocated", Unit::Bytes, r.allocated_bytes as f64),
        single("oom_allocations", Unit::Count, r.allocations as f64),
        single("oom_alloc_time", Unit::Seconds, r.alloc_seconds),
        single("oom_child_wall_time", Unit::Seconds, wall),
        single("rss_peak", Unit::Bytes, r.rss_peak as f64),
        single("leaked", Unit::Bytes, leak as f64),
    ]);
    if s.pattern == OomPattern::Fragment {
        out.metrics.push(single(
            "refill_after_fragmentation",
            Unit::Bytes,
            r.refill_bytes as f64,
        ));
    }
}

/// "allocation refused cleanly" and "memory returns".
fn push_stress_checks(out: &mut ExecOutput, s: &HostOomSettings, r: &StressReport, run: &ChildRun) {
    let clean_exit = run.status.is_some_and(|st| st.success()) && !run.timed_out;
    out.checks.push(Check::new(
        "allocation refused cleanly at the limit",
        r.refused && clean_exit,
        format!(
            "{} allocations, {} allocated under a {} limit before refusal (\"{}\"); child {}",
            r.allocations,
            format_byte_count(r.allocated_bytes),
            format_byte_count(s.memory_limit),
            r.refusal,
            if clean_exit {
                "exited cleanly".to_string()
            } else {
                describe_exit(run)
            }
        ),
        Some(ChecklistItem::ErrorHandling),
    ));
    let leak = r.rss_after.saturating_sub(r.rss_start);
    let recovered = leak <= s.leak_tolerance && r.realloc_ok;
    out.checks.push(Check::new(
        "memory returns after out-of-memory",
        recovered,
        format!(
            "RSS {} before, {} at peak, {} after freeing ({} above start, tolerance {}); a new {} allocation {}",
            format_byte_count(r.rss_start),
            format_byte_count(r.rss_peak),
            format_byte_count(r.rss_after),
            format_byte_count(leak),
            format_byte_count(s.leak_tolerance),
            format_byte_count(s.chunk),
            if r.realloc_ok { "succeeded" } else { "failed" }
        ),
        Some(ChecklistItem::MemoryCleanup),
    ));
}

/// `find_max_batch`: the largest batch of `model` (up to `max`) whose
/// forward pass fits the limit, one child per probe.
fn search_max_batch(
    plan: &ScenarioPlan,
    s: &HostOomSettings,
    (model, max): (&ModelSpec, usize),
    out: &mut ExecOutput,
    ctx: &mut RunCtx<'_>,
) -> Result<(), ExecError> {
    let bin = ctx.env.neon_perf_bin.clone();
    let timeout = ctx.settings.timeout;
    let json =
        serde_json::to_string(model).map_err(|e| ExecError::Failed(format!("model spec: {e}")))?;
    let base = plan.base_dir.display().to_string();
    let mut probes = 0usize;
    let mut last_failure = String::new();
    let mut fits = |b: usize, ctx: &mut RunCtx<'_>| -> Result<bool, ExecError> {
        probes += 1;
        let args = vec![
            "--limit".into(),
            s.memory_limit.to_string(),
            "--model".into(),
            json.clone(),
            "--batch".into(),
            b.to_string(),
            "--base-dir".into(),
            base.clone(),
        ];
        let run = run_child(&bin, &args, timeout, ctx)?;
        unenforceable(&run)?;
        let rep: Option<ProbeReport> = last_json(&run.stdout);
        let ok = rep.as_ref().is_some_and(|p| p.fits) && run.status.is_some_and(|s| s.success());
        if !ok {
            last_failure = match rep {
                Some(p) if !p.error.is_empty() => p.error,
                _ => describe_exit(&run),
            };
        }
        Ok(ok)
    };
    let t = Instant::now();
    let best = max_true(max, |b| fits(b, ctx))?;
    let single = MetricSeries::single;
    out.metrics.push(single(
        MetricKey::new("max_batch"),
        Unit::Count,
        Direction::HigherIsBetter,
        best as f64,
    ));
    out.metrics.push(single(
        MetricKey::new("max_batch_search_time"),
        Unit::Seconds,
        Direction::Neither,
        t.elapsed().as_secs_f64(),
    ));
    out.checks.push(Check::new(
        "largest batch under the memory limit found",
        best > 0,
        format!(
            "largest batch that fits {}: {best} ({probes} probes, one child each{}); the first that does not fit: {}",
            format_byte_count(s.memory_limit),
            if best >= max { ", search capped at max_batch" } else { "" },
            if last_failure.is_empty() { "none up to max_batch".into() } else { last_failure },
        ),
        Some(ChecklistItem::ErrorHandling),
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_defaults_and_model_required() {
        let s = HostOomSettings::from_spec(&OomStressSpec::default()).unwrap();
        assert_eq!(s.memory_limit, HostOomSettings::DEFAULT_LIMIT);
        assert_eq!(s.pattern, OomPattern::Grow);
        let e = HostOomSettings::from_spec(&OomStressSpec {
            find_max_batch: true,
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.contains("needs a `model"), "{e}");
    }
}
