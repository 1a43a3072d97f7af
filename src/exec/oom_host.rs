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

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::exec::{ExecError, ExecEvent, ExecOutput, RunCtx};
use crate::metric::{ChecklistItem, Direction, MetricKey, MetricSeries, Unit};
use crate::plan::batch_sweep::ModelSpec;
use crate::plan::oom::OomPattern;
use crate::plan::{OomStressSpec, ScenarioPlan};
use crate::result::Check;
use crate::units::format_bytes;

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

/// The hidden `neon-perf oom-child` subcommand's arguments.
#[derive(Clone, Debug, clap::Args)]
pub struct OomChildArgs {
    /// Bytes the child may add to its data segment (RLIMIT_DATA above its start).
    #[arg(long)]
    pub limit: u64,
    /// `grow` or `fragment`.
    #[arg(long, default_value = "grow", value_parser = ["grow", "fragment"])]
    pub pattern: String,
    /// Allocation size (grow) or largest size (fragment), bytes.
    #[arg(long, default_value_t = HostOomSettings::DEFAULT_CHUNK)]
    pub chunk: u64,
    /// Probe mode: a model spec as JSON; the child runs one forward pass of
    /// `--batch` under the limit instead of the allocation pattern.
    #[arg(long)]
    pub model: Option<String>,
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Folder that relative `weights` paths resolve against.
    #[arg(long)]
    pub base_dir: Option<PathBuf>,
}

/// What a stress child reports (one JSON line on stdout).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StressReport {
    pub limit_bytes: u64,
    pub allocated_bytes: u64,
    pub allocations: u64,
    pub refused: bool,
    pub refusal: String,
    pub rss_start: u64,
    pub rss_peak: u64,
    pub rss_after: u64,
    pub realloc_ok: bool,
    /// fragment: bytes re-obtained in double-size blocks after freeing half.
    pub refill_bytes: u64,
    pub alloc_seconds: f64,
}

/// What a probe child reports.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProbeReport {
    pub batch: usize,
    pub fits: bool,
    pub error: String,
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

/// Lowers this process's RLIMIT_DATA to its current data size + `extra`.
fn limit_self(extra: u64) -> Result<u64, String> {
    let data = status_kib("VmData:");
    let lim = data.saturating_add(extra);
    let r = libc::rlimit {
        rlim_cur: lim as libc::rlim_t,
        rlim_max: lim as libc::rlim_t,
    };
    // SAFETY: plain syscall with a valid pointer to a local struct.
    if unsafe { libc::setrlimit(libc::RLIMIT_DATA, &r) } != 0 {
        return Err(format!(
            "setrlimit(RLIMIT_DATA, {lim}): {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(lim)
}

/// Returns freed heap pages to the kernel, so RSS shows what is really held
/// (glibc keeps freed small blocks otherwise).
fn trim() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free memory.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// A block of `n` bytes with every page touched (so it is resident), or the
/// allocator's refusal.
fn block(n: usize) -> Result<Vec<u8>, String> {
    let mut v: Vec<u8> = Vec::new();
    v.try_reserve_exact(n).map_err(|e| e.to_string())?;
    // SAFETY: capacity is n; every byte is written below before being read.
    unsafe { v.set_len(n) };
    for i in (0..n).step_by(4096) {
        v[i] = 1;
    }
    Ok(v)
}

/// The stress pattern, inside the child.
pub fn stress(limit: u64, pattern: OomPattern, chunk: u64) -> Result<StressReport, String> {
    let mut r = StressReport {
        rss_start: status_kib("VmRSS:"),
        ..Default::default()
    };
    r.limit_bytes = limit;
    let mut held: Vec<Vec<u8>> = Vec::new();
    // The list of blocks must never need to grow at the limit.
    held.try_reserve(1 << 16).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let chunk = chunk as usize;
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next_size = || match pattern {
        OomPattern::Grow => chunk,
        OomPattern::Fragment => {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // 4 KiB .. chunk, log-uniform-ish
            let shift = (x % 12) as u32;
            (chunk >> shift).max(4096)
        }
    };
    while held.len() < held.capacity() {
        let n = next_size();
        match block(n) {
            Ok(b) => {
                r.allocated_bytes += n as u64;
                r.allocations += 1;
                held.push(b);
            }
            Err(e) => {
                r.refused = true;
                r.refusal = e;
                break;
            }
        }
    }
    r.alloc_seconds = start.elapsed().as_secs_f64();
    r.rss_peak = status_kib("VmHWM:");
    if pattern == OomPattern::Fragment && r.refused {
        // Free every other block, then ask for blocks twice the largest size:
        // how much of the freed memory can be used again.
        let mut i = 0;
        held.retain(|_| {
            i += 1;
            i % 2 == 0
        });
        trim();
        let mut refill: Vec<Vec<u8>> = Vec::new();
        let _ = refill.try_reserve(1 << 12);
        while refill.len() < refill.capacity() {
            match block(chunk * 2) {
                Ok(b) => {
                    r.refill_bytes += b.len() as u64;
                    refill.push(b);
                }
                Err(_) => break,
            }
        }
        drop(refill);
    }
    drop(held);
    trim();
    if let Some(n) = std::env::var(PLANT_LEAK_ENV)
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        if let Ok(b) = block(n) {
            std::mem::forget(b);
        }
    }
    r.rss_after = status_kib("VmRSS:");
    // Work still runs: a fresh allocation of one chunk succeeds.
    r.realloc_ok = block(chunk).is_ok();
    Ok(r)
}

/// One forward pass of `model` at `batch`, inside the child. candle aborts
/// the process when an allocation fails; the parent reads that as "no fit".
fn probe(model: &ModelSpec, batch: usize, base_dir: &Path) -> ProbeReport {
    use crate::model::{Model, Precision, Weights};
    let run = || -> Result<(), String> {
        let w = match &model.weights {
            Some(p) => Weights::load(&base_dir.join(p), model),
            None => Weights::random(model),
        }
        .map_err(|e| e.to_string())?;
        let m = Model::build(
            model,
            &w,
            Precision::of_model(model.dtype()),
            &candle_core::Device::Cpu,
        )
        .map_err(|e| e.to_string())?;
        drop(w);
        let x = m.input(batch, model.seed()).map_err(|e| e.to_string())?;
        m.forward(&x).map_err(|e| e.to_string())?;
        Ok(())
    };
    match run() {
        Ok(()) => ProbeReport {
            batch,
            fits: true,
            error: String::new(),
        },
        Err(error) => ProbeReport {
            batch,
            fits: false,
            error,
        },
    }
}

fn pattern_of(s: &str) -> OomPattern {
    if s == "fragment" {
        OomPattern::Fragment
    } else {
        OomPattern::Grow
    }
}

/// Entry of `neon-perf oom-child`: prints one JSON line, returns the exit code.
pub fn child_main(args: &OomChildArgs) -> i32 {
    // One thread for candle inside the child: thread stacks and per-thread
    // malloc arenas would otherwise eat the limit.
    // SAFETY: single-threaded at this point (called first thing in the child).
    unsafe {
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }
    let spec = match &args.model {
        Some(json) => match serde_json::from_str::<ModelSpec>(json) {
            Ok(m) => Some(m),
            Err(e) => {
                eprintln!("oom-child: bad --model: {e}");
                return 2;
            }
        },
        None => None,
    };
    let limit = match limit_self(args.limit) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("oom-child: {e}");
            return 2;
        }
    };
    let line = match spec {
        Some(m) => {
            let base = args.base_dir.clone().unwrap_or_else(|| PathBuf::from("."));
            serde_json::to_string(&probe(&m, args.batch, &base))
        }
        None => match stress(args.limit, pattern_of(&args.pattern), args.chunk) {
            Ok(mut r) => {
                r.limit_bytes = limit;
                serde_json::to_string(&r)
            }
            Err(e) => {
                eprintln!("oom-child: {e}");
                return 1;
            }
        },
    };
    match line {
        Ok(l) => {
            println!("{l}");
            0
        }
        Err(e) => {
            eprintln!("oom-child: {e}");
            1
        }
    }
}

/// How a child ended.
struct ChildRun {
    stdout: String,
    stderr: String,
    status: Option<std::process::ExitStatus>,
    timed_out: bool,
}

fn run_child(
    bin: &Path,
    args: &[String],
    timeout: Duration,
    ctx: &mut RunCtx<'_>,
) -> Result<ChildRun, ExecError> {
    let mut cmd = Command::new(bin);
    cmd.arg("oom-child")
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

fn mem_available() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|k| k * 1024)
}

fn describe_exit(r: &ChildRun) -> String {
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
    if let Some(avail) = mem_available().filter(|a| s.memory_limit > a / 2) {
        return Err(ExecError::Unavailable(format!(
            "memory_limit {} is more than half of the memory available here ({}): lower it",
            format_bytes(s.memory_limit as f64),
            format_bytes(avail as f64)
        )));
    }
    let bin = ctx.env.neon_perf_bin.clone();
    let timeout = ctx.settings.timeout;
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
    let args = vec![
        "--limit".into(),
        s.memory_limit.to_string(),
        "--pattern".into(),
        match s.pattern {
            OomPattern::Grow => "grow".into(),
            OomPattern::Fragment => "fragment".into(),
        },
        "--chunk".into(),
        s.chunk.to_string(),
    ];
    let t = Instant::now();
    let run = run_child(&bin, &args, timeout, ctx)?;
    let wall = t.elapsed().as_secs_f64();
    let clean_exit = run.status.is_some_and(|st| st.success()) && !run.timed_out;
    let report: Option<StressReport> = run
        .stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok());
    let Some(r) = report else {
        return Err(ExecError::Failed(format!(
            "oom-child gave no report ({})",
            describe_exit(&run)
        )));
    };
    let single = MetricSeries::single;
    let leak = r.rss_after.saturating_sub(r.rss_start);
    out.metrics.extend([
        single(
            MetricKey::new("oom_allocated"),
            Unit::Bytes,
            Direction::Neither,
            r.allocated_bytes as f64,
        ),
        single(
            MetricKey::new("oom_allocations"),
            Unit::Count,
            Direction::Neither,
            r.allocations as f64,
        ),
        single(
            MetricKey::new("oom_alloc_time"),
            Unit::Seconds,
            Direction::LowerIsBetter,
            r.alloc_seconds,
        ),
        single(
            MetricKey::new("oom_child_wall_time"),
            Unit::Seconds,
            Direction::LowerIsBetter,
            wall,
        ),
        single(
            MetricKey::new("rss_peak"),
            Unit::Bytes,
            Direction::LowerIsBetter,
            r.rss_peak as f64,
        ),
        single(
            MetricKey::new("leaked"),
            Unit::Bytes,
            Direction::LowerIsBetter,
            leak as f64,
        ),
    ]);
    if s.pattern == OomPattern::Fragment {
        out.metrics.push(single(
            MetricKey::new("refill_after_fragmentation"),
            Unit::Bytes,
            Direction::HigherIsBetter,
            r.refill_bytes as f64,
        ));
    }
    let mib = |b: u64| format_bytes(b as f64);
    out.checks.push(Check::new(
        "allocation refused cleanly at the limit",
        r.refused && clean_exit,
        format!(
            "{} allocations, {} allocated under a {} limit before refusal (\"{}\"); child {}",
            r.allocations,
            mib(r.allocated_bytes),
            mib(s.memory_limit),
            r.refusal,
            if clean_exit {
                "exited cleanly".to_string()
            } else {
                describe_exit(&run)
            }
        ),
        Some(ChecklistItem::ErrorHandling),
    ));
    let recovered = leak <= s.leak_tolerance && r.realloc_ok;
    out.checks.push(Check::new(
        "memory returns after out-of-memory",
        recovered,
        format!(
            "RSS {} before, {} at peak, {} after freeing ({} above start, tolerance {}); a new {} allocation {}",
            mib(r.rss_start),
            mib(r.rss_peak),
            mib(r.rss_after),
            mib(leak),
            mib(s.leak_tolerance),
            mib(s.chunk),
            if r.realloc_ok { "succeeded" } else { "failed" }
        ),
        Some(ChecklistItem::MemoryCleanup),
    ));

    if let Some((model, max)) = &s.find_max_batch {
        ctx.event(ExecEvent::Point {
            index: 1,
            total,
            label: "find_max_batch".into(),
        });
        let json = serde_json::to_string(model)
            .map_err(|e| ExecError::Failed(format!("model spec: {e}")))?;
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
            let rep: Option<ProbeReport> = run
                .stdout
                .lines()
                .rev()
                .find_map(|l| serde_json::from_str(l).ok());
            let ok =
                rep.as_ref().is_some_and(|p| p.fits) && run.status.is_some_and(|s| s.success());
            if !ok {
                last_failure = match rep {
                    Some(p) if !p.error.is_empty() => p.error,
                    _ => describe_exit(&run),
                };
            }
            Ok(ok)
        };
        let t = Instant::now();
        let best = max_true(*max, |b| fits(b, ctx))?;
        out.metrics.push(single(
            MetricKey::new("max_batch"),
            Unit::Count,
            Direction::HigherIsBetter,
            best as f64,
        ));
        out.metrics.push(single(
            MetricKey::new("max_batch_search_time"),
            Unit::Seconds,
            Direction::LowerIsBetter,
            t.elapsed().as_secs_f64(),
        ));
        out.checks.push(Check::new(
            "largest batch under the memory limit found",
            best > 0,
            format!(
                "largest batch that fits {}: {best} ({probes} probes, one child each{}); the first that does not fit: {}",
                mib(s.memory_limit),
                if best >= *max { ", search capped at max_batch" } else { "" },
                if last_failure.is_empty() { "none up to max_batch".into() } else { last_failure },
            ),
            Some(ChecklistItem::ErrorHandling),
        ));
    }
    Ok(out)
}

/// The largest `b` in 1..=max with `fits(b)`, assuming fits is monotone
/// (true up to some batch, false after): doubling, then bisection. 0 when
/// even 1 does not fit.
pub fn max_true<E>(max: usize, mut fits: impl FnMut(usize) -> Result<bool, E>) -> Result<usize, E> {
    if max == 0 || !fits(1)? {
        return Ok(0);
    }
    let (mut lo, mut hi) = (1usize, None::<usize>); // lo fits; hi does not
    while hi.is_none() {
        let next = (lo * 2).min(max);
        if next == lo {
            return Ok(lo);
        }
        if fits(next)? {
            lo = next;
        } else {
            hi = Some(next);
        }
    }
    let mut hi = hi.expect("set above");
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if fits(mid)? {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(lo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_finds_the_edge_with_few_probes() {
        for edge in [0usize, 1, 2, 3, 37, 64, 1000, 65536] {
            let mut n = 0;
            let got = max_true::<()>(65536, |b| {
                n += 1;
                Ok(b <= edge)
            })
            .unwrap();
            assert_eq!(got, edge.min(65536), "edge {edge}");
            assert!(n <= 34, "edge {edge}: {n} probes");
        }
    }

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
