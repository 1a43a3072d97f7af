//! A `command` scenario's `find_max_batch`: the largest value of a
//! placeholder whose run of the program succeeds under a memory limit.
//! Doubling, then bisection (`exec::search::max_true`), one run per probe,
//! under RLIMIT_DATA. A run that fails with out-of-memory output is "does
//! not fit"; any other failure, or a hang past `timeout`, stops the search
//! and fails the scenario with the program's output.

use std::time::Instant;

use regex::Regex;

use super::{Invocation, run_child};
use crate::exec::search::max_true;
use crate::exec::{ExecError, ExecEvent, ExecOutput, RunCtx};
use crate::metric::{ChecklistItem, Direction, MetricKey, MetricSeries, Unit};
use crate::plan::command::max_batch::{CommandMaxBatch, OOM_WORDS};
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
    let limit = m.limit_bytes();
    let pids = ctx.child_pids.clone();
    let timeout = ctx.settings.timeout;
    let output_tail = ctx.settings.output_tail as usize;
    let env = ctx.env.clone();
    let mut probes = 0usize;
    let mut first_refusal: Option<(usize, String)> = None;
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
            mem_limit: Some(limit),
            output_tail,
            ..Invocation::build(spec, plan, &point, &env)?
        };
        let register = |pid| {
            if let Ok(mut p) = pids.lock() {
                p.push(pid)
            }
        };
        match run_child(&inv, timeout, register) {
            Ok(_) => Ok(true),
            Err(ExecError::Failed(text)) if is_oom(&text, extra.as_ref()) => {
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
    Ok(report(m, limit, best, probes, first_refusal, started))
}

fn report(
    m: &CommandMaxBatch,
    limit: u64,
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
        "largest {} that fits {} (RLIMIT_DATA): {best} ({probes} probes, one run each{}); {refusal}",
        m.param,
        format_bytes(limit as f64),
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
/// first line: without terminal colours, at most 300 characters.
fn first_line_of_oom(text: &str) -> String {
    let line = text
        .lines()
        .find(|l| is_oom(l, None))
        .or_else(|| text.lines().next())
        .unwrap_or("");
    let plain = Regex::new("\x1b\\[[0-9;]*m")
        .map(|r| r.replace_all(line, "").into_owned())
        .unwrap_or_else(|_| line.to_string());
    let plain = plain.trim();
    match plain.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &plain[..i]),
        None => plain.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_memory_words_of_each_runtime() {
        for text in [
            "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
            "CUDA_ERROR_OUT_OF_MEMORY",
            "Traceback (most recent call last):\nMemoryError",
            "terminate called after throwing an instance of 'std::bad_alloc'",
            "memory allocation of 1048576 bytes failed",
            "onnxruntime: Failed to allocate memory: out of memory",
        ] {
            assert!(is_oom(text, None), "{text}");
        }
        assert!(!is_oom("ValueError: bad batch", None));
        let extra = Regex::new("arena exhausted").unwrap();
        assert!(is_oom("the arena exhausted at 3 GiB", Some(&extra)));
    }
}
