//! A `command` scenario's `find_max_batch`: the largest value of a
//! placeholder whose run of the program succeeds under a memory limit.
//! Doubling, then bisection (`exec::search::max_true`), one run per probe,
//! under RLIMIT_DATA. A run that fails with out-of-memory output is "does
//! not fit"; any other failure, or a hang past `timeout`, stops the search
//! and fails the scenario with the program's output.

use std::time::Instant;

use regex::Regex;

use super::{ChildRun, Invocation, run_child};
use crate::exec::search::max_true;
use crate::exec::{ExecError, ExecEvent, ExecOutput, RunCtx};
use crate::metric::{ChecklistItem, Direction, MetricKey, MetricSeries, Unit};
use crate::plan::command::max_batch::{CommandMaxBatch, MemoryLimit, OOM_WORDS};
use crate::plan::{CommandSpec, ParamPoint, ParamValue, ScenarioPlan};
use crate::result::Check;
use crate::units::format_bytes;

/// Whether a failed run's text (its exit and output tail) says it ran out
/// of memory.
pub fn is_oom(text: &str, extra: Option<&Regex>) -> bool {
    let lower = text.to_lowercase();
    OOM_WORDS.iter().any(|w| lower.contains(w)) || extra.is_some_and(|r| r.is_match(text))
}

pub fn search(
    plan: &ScenarioPlan,
    spec: &CommandSpec,
    m: &CommandMaxBatch,
    ctx: &mut RunCtx<'_>,
) -> Result<ExecOutput, ExecError> {
    let extra = m
        .oom_pattern
        .as_deref()
        .map(Regex::new)
        .transpose()
        .map_err(|e| ExecError::Failed(format!("`oom_pattern`: {e}")))?;
    let limit = match m.limit() {
        MemoryLimit::Host(b) => {
            super::rlimit::check_data_limit(b).map_err(ExecError::Unavailable)?;
            Limit::Host(b)
        }
        MemoryLimit::GpuFraction(f) => Limit::Gpu(GpuLimit::open(f).map_err(ExecError::Failed)?),
    };
    let pids = ctx.child_pids.clone();
    let timeout = ctx.settings.timeout;
    let output_tail = ctx.settings.output_tail as usize;
    let env = ctx.env.clone();
    let mut probes = 0usize;
    let mut first_refusal: Option<(usize, String)> = None;
    let mut out_of_memory = false;
    let started = Instant::now();
    let best = max_true(m.max(), |b| {
        probes += 1;
        ctx.event(ExecEvent::Point {
            index: probes - 1,
            total: probes,
            label: format!("{}={b}", m.param),
        });
        let mut point = ParamPoint::new();
        point.insert(m.param.clone(), ParamValue::Int(b as i64));
        let inv = Invocation {
            mem_limit: match &limit {
                Limit::Host(b) => Some(*b),
                Limit::Gpu(_) => None,
            },
            output_tail,
            ..Invocation::build(spec, plan, &point, &env)?
        };
        let register = |pid| {
            if let Ok(mut p) = pids.lock() {
                p.push(pid)
            }
        };
        match run_child(&inv, timeout, register) {
            Ok(run) => match limit.over(&run)? {
                None => Ok(true),
                Some(text) => {
                    if first_refusal.as_ref().is_none_or(|(f, _)| b < *f) {
                        first_refusal = Some((b, text));
                    }
                    Ok(false)
                }
            },
            Err(ExecError::Failed(text)) if is_oom(&text, extra.as_ref()) => {
                out_of_memory = true;
                if first_refusal.as_ref().is_none_or(|(f, _)| b < *f) {
                    first_refusal = Some((b, text));
                }
                Ok(false)
            }
            Err(ExecError::Failed(text)) => Err(ExecError::Failed(format!(
                "find_max_batch stopped at {}={b}: the run failed, and not for lack of memory: {text}",
                m.param
            ))),
            Err(ExecError::TimedOut(text)) => Err(ExecError::TimedOut(format!(
                "find_max_batch stopped at {}={b}: {text}",
                m.param
            ))),
            Err(e) => Err(e),
        }
    })?;
    let mut out = report(m, &limit.describe(), best, probes, first_refusal, started);
    // Evidence for "error handling" only where the program met its out of
    // memory and said so (a search capped at `max`, or decided by a GPU
    // limit's samples alone, exercised no error path).
    if !out_of_memory {
        for c in &mut out.checks {
            c.item = None;
        }
    }
    out.device = limit.device().into();
    Ok(out)
}

/// The limit a probe runs under.
enum Limit {
    /// RLIMIT_DATA on the program, bytes.
    Host(u64),
    Gpu(GpuLimit),
}

impl Limit {
    fn describe(&self) -> String {
        match self {
            Limit::Host(b) => format!("{} (RLIMIT_DATA)", format_bytes(*b as f64)),
            Limit::Gpu(g) => g.describe(),
        }
    }

    fn device(&self) -> &'static str {
        match self {
            Limit::Host(_) => "cpu (child process under RLIMIT_DATA)",
            Limit::Gpu(_) => "cuda (child process, NVML per-process memory)",
        }
    }

    /// Why a run that succeeded does not fit after all (a GPU limit's
    /// peak); `None` when it fits. Under RLIMIT_DATA a success fits.
    fn over(&self, run: &ChildRun) -> Result<Option<String>, ExecError> {
        match self {
            Limit::Host(_) => Ok(None),
            Limit::Gpu(g) => g.over(run),
        }
    }
}

/// `memory_limit = "gpu:F"`: F of the GPU's memory (the smallest GPU's,
/// when there are several), checked against the peak of NVML's
/// per-process samples of the program's tree (every 20 ms: a peak shorter
/// than that can be missed; a program that runs out of memory on the
/// device says so in its output, which counts as not fitting too).
struct GpuLimit {
    fraction: f64,
    total: u64,
    bytes: u64,
}

impl GpuLimit {
    fn open(fraction: f64) -> Result<GpuLimit, String> {
        let nvml = crate::device::nvml().map_err(|e| e.to_string())?;
        let count = nvml.device_count().map_err(|e| format!("NVML: {e}"))?;
        let total = (0..count)
            .map(|i| {
                nvml.device_by_index(i)
                    .and_then(|d| d.memory_info())
                    .map(|m| m.total)
                    .map_err(|e| format!("NVML: memory of GPU {i}: {e}"))
            })
            .collect::<Result<Vec<u64>, String>>()?
            .into_iter()
            .min()
            .ok_or("NVML reports no GPU")?;
        Ok(GpuLimit::of(fraction, total))
    }

    fn of(fraction: f64, total: u64) -> GpuLimit {
        GpuLimit {
            fraction,
            total,
            bytes: (total as f64 * fraction) as u64,
        }
    }

    fn describe(&self) -> String {
        format!(
            "{} of GPU memory (gpu:{} of {}, NVML per-process samples)",
            format_bytes(self.bytes as f64),
            self.fraction,
            format_bytes(self.total as f64)
        )
    }

    /// Why a run that succeeded does not fit: its tree's peak GPU memory
    /// over the limit; `None` when it fits.
    fn over(&self, run: &ChildRun) -> Result<Option<String>, ExecError> {
        match &run.gpu_memory {
            None => Err(ExecError::Failed(
                "the program's GPU memory was not sampled (NVML per-process accounting unavailable)".into(),
            )),
            Some(Err(e)) => Err(ExecError::Failed(format!(
                "the program's GPU memory could not be sampled: {e}"
            ))),
            Some(Ok(m)) if let Some(why) = m.unattributable() => Err(ExecError::Unavailable(
                format!("`memory_limit = \"gpu:{}\"` cannot be judged here: {why}", self.fraction),
            )),
            Some(Ok(m)) if m.peak > self.bytes => Ok(Some(format!(
                "its processes used {} of GPU memory at their peak, over the limit {}",
                format_bytes(m.peak as f64),
                format_bytes(self.bytes as f64)
            ))),
            Some(Ok(_)) => Ok(None),
        }
    }
}

fn report(
    m: &CommandMaxBatch,
    limit: &str,
    best: usize,
    probes: usize,
    first_refusal: Option<(usize, String)>,
    started: Instant,
) -> ExecOutput {
    let single = MetricSeries::single;
    let refusal = match &first_refusal {
        Some((b, text)) => format!(
            "the first that does not fit, {}={b}: {}",
            m.param,
            first_line_of_oom(text)
        ),
        None => format!("none up to max = {}", m.max()),
    };
    let evidence = format!(
        "largest {} that fits {limit}: {best} ({probes} probes, one run each{}); {refusal}",
        m.param,
        if best >= m.max() {
            ", capped at `max`"
        } else {
            ""
        },
    );
    ExecOutput {
        metrics: vec![
            single(
                MetricKey::new("max_batch"),
                Unit::Count,
                Direction::HigherIsBetter,
                best as f64,
            ),
            single(
                MetricKey::new("max_batch_search_time"),
                Unit::Seconds,
                Direction::Neither,
                started.elapsed().as_secs_f64(),
            ),
        ],
        checks: vec![Check::new(
            "largest batch under the memory limit found",
            best > 0,
            evidence,
            Some(ChecklistItem::ErrorHandling),
        )],
        device: "cpu (child process under RLIMIT_DATA)".into(),
        ..Default::default()
    }
}

/// The line of a failure's text that says it ran out of memory, else its
/// first line: without terminal colours, at most 300 characters, cut
/// around the out-of-memory words (ONNX Runtime's line starts with 200
/// characters of source location and signature before them).
fn first_line_of_oom(text: &str) -> String {
    let line = text
        .lines()
        .find(|l| is_oom(l, None))
        .or_else(|| text.lines().next())
        .unwrap_or("");
    let plain = Regex::new("\x1b\\[[0-9;]*m")
        .map(|r| r.replace_all(line, "").into_owned())
        .unwrap_or_else(|_| line.to_string());
    let chars: Vec<char> = plain.trim().chars().collect();
    if chars.len() <= 300 {
        return chars.into_iter().collect();
    }
    let lower: String = chars.iter().map(|c| c.to_ascii_lowercase()).collect();
    let at = OOM_WORDS
        .iter()
        .filter_map(|w| lower.find(w))
        .min()
        .map_or(0, |byte| lower[..byte].chars().count());
    let start = at.saturating_sub(100).min(chars.len() - 300);
    let cut: String = chars[start..start + 300].iter().collect();
    format!(
        "{}{cut}{}",
        if start > 0 { "…" } else { "" },
        if start + 300 < chars.len() { "…" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The decision only (NVML's samples come from a GPU machine): a run
    /// whose tree peaked over F of the GPU's memory does not fit.
    #[test]
    fn a_gpu_limit_is_the_fraction_of_the_smallest_gpu_and_the_peak_decides() {
        let g = GpuLimit::of(0.8, 80 << 30);
        assert_eq!(g.bytes, 64 << 30);
        assert!(
            g.describe()
                .starts_with("64.0 GiB of GPU memory (gpu:0.8 of 80.0 GiB"),
            "{}",
            g.describe()
        );
        let run = |peak: u64| ChildRun {
            gpu_memory: Some(Ok(crate::monitor::tree_gpu::TreeGpuMemory {
                start: 0,
                peak,
                end: 0,
                samples: 10,
                unseen: 0,
                ..Default::default()
            })),
            ..Default::default()
        };
        assert_eq!(g.over(&run(64 << 30)).unwrap(), None);
        let why = g.over(&run(70 << 30)).unwrap().unwrap();
        assert!(
            why.contains("70.0 GiB of GPU memory at their peak, over the limit 64.0 GiB"),
            "{why}"
        );
        let unsampled = ChildRun::default();
        assert!(g.over(&unsampled).is_err());
    }

    /// ONNX Runtime's line (seen 2026-12-07) puts 200 characters of source
    /// location and signature before its words: the quote keeps them.
    #[test]
    fn a_long_out_of_memory_line_is_cut_around_its_words() {
        let line = format!(
            "onnxruntime.capi.onnxruntime_pybind11_state.RuntimeException: [ONNXRuntimeError] : 6 : \
             RUNTIME_EXCEPTION : Non-zero status code returned while running MatMul node. Name:'mm' \
             Status Message: /onnxruntime_src/onnxruntime/core/framework/bfc_arena.cc:360 void* \
             onnxruntime::BFCArena::AllocateRawInternal(size_t, bool, onnxruntime::Stream*, bool, \
             onnxruntime::WaitNotificationFn) Failed to allocate memory for requested buffer of size \
             1073741824{}",
            " and more".repeat(40)
        );
        let q = first_line_of_oom(&format!("Traceback\n{line}\n"));
        assert!(
            q.contains("Failed to allocate memory for requested buffer"),
            "{q}"
        );
        assert!(q.starts_with('…') && q.ends_with('…'), "{q}");
        assert_eq!(q.chars().count(), 302, "{q}");
        assert_eq!(first_line_of_oom("MemoryError"), "MemoryError");
    }

    #[test]
    fn out_of_memory_words_of_each_runtime() {
        for text in [
            "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
            "CUDA_ERROR_OUT_OF_MEMORY",
            "Traceback (most recent call last):\nMemoryError",
            "terminate called after throwing an instance of 'std::bad_alloc'",
            "memory allocation of 1048576 bytes failed",
            "onnxruntime: Failed to allocate memory: out of memory",
            // PyTorch on the CPU under RLIMIT_DATA (seen with torch 2.15).
            "RuntimeError: [enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: \
             can't allocate memory: you tried to allocate 2147483648 bytes. Error code 12 \
             (Cannot allocate memory)",
            "OSError: [Errno 12] Cannot allocate memory",
            "RuntimeError: CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`",
        ] {
            assert!(is_oom(text, None), "{text}");
        }
        assert!(!is_oom("ValueError: bad batch", None));
        let extra = Regex::new("arena exhausted").unwrap();
        assert!(is_oom("the arena exhausted at 3 GiB", Some(&extra)));
    }
}
