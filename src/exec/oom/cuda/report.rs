//! The metrics and checks of a CUDA `find_max_batch` search, from what the
//! probe children reported (pure: tested without a GPU).

use super::{CudaMaxBatch, CudaProbeReport, Probe, Verdicts};
use crate::exec::ExecOutput;
use crate::metric::{ChecklistItem, Direction, MetricKey, MetricSeries, Unit};
use crate::plan::DeviceSel;
use crate::result::Check;
use crate::units::format_byte_count;

/// What a CUDA `find_max_batch` search saw.
pub(super) struct Search<'a> {
    pub s: &'a CudaMaxBatch,
    pub device: DeviceSel,
    pub probes: &'a [Probe],
    /// The fresh child at the best batch after a failed probe.
    pub after: Option<&'a Probe>,
    pub best: usize,
    pub search_time: f64,
    /// Free device memory before and after the search, and the total.
    pub free_start: u64,
    pub free_end: u64,
    pub total: u64,
}

const NONE_FAILED: &str =
    "no probe ran out of memory up to max_batch: lower `memory_limit` or raise `max_batch`";

pub(super) fn report(x: &Search<'_>, v: &Verdicts) -> ExecOutput {
    let mut out = ExecOutput {
        device: format!("{} (one oom-child per probe)", x.device),
        ..Default::default()
    };
    push_metrics(&mut out, x);
    out.checks.push(found_check(x));
    let oom_child = x
        .probes
        .iter()
        .find(|p| p.report.as_ref().is_some_and(|r| r.oom) && p.exit.is_none());
    out.checks.push(clean_oom_check(x, v, oom_child));
    out.checks.push(returned_check(x, v, oom_child));
    if x.free_start > 0 && x.total > 0 && !v.device_memory_returned {
        out.warnings.push(format!(
            "free device memory did not return within {} (another process on the GPU can cause this)",
            format_byte_count(x.s.leak_tolerance)
        ));
    }
    out
}

fn best_probe<'a>(x: &Search<'a>) -> Option<&'a Probe> {
    x.probes.iter().find(|p| p.fits && p.batch == x.best)
}

fn push_metrics(out: &mut ExecOutput, x: &Search<'_>) {
    let single = MetricSeries::single;
    out.metrics.push(single(
        MetricKey::new("max_batch"),
        Unit::Count,
        Direction::HigherIsBetter,
        x.best as f64,
    ));
    if let Some(peak) = best_probe(x).and_then(|p| p.report.as_ref()?.model_peak) {
        out.metrics.push(single(
            MetricKey::new("max_batch_memory"),
            Unit::Bytes,
            Direction::Neither,
            peak as f64,
        ));
    }
    for (key, v, unit) in [
        ("max_batch_probes", x.probes.len() as f64, Unit::Count),
        ("max_batch_search_time", x.search_time, Unit::Seconds),
        (
            "leaked",
            x.free_start.saturating_sub(x.free_end) as f64,
            Unit::Bytes,
        ),
    ] {
        out.metrics
            .push(single(MetricKey::new(key), unit, Direction::Neither, v));
    }
    // Per-probe start-up costs: the first child pays what no cache covers
    // (module JIT, library loading), later ones show what a cache saves.
    let series = |key: &str, f: fn(&CudaProbeReport) -> f64| {
        let mut m = single(MetricKey::new(key), Unit::Seconds, Direction::Neither, 0.0);
        m.samples = x
            .probes
            .iter()
            .filter_map(|p| p.report.as_ref())
            .map(f)
            .collect();
        m
    };
    for (key, f) in [
        (
            "probe_device_init",
            (|r: &CudaProbeReport| r.device_init_seconds) as fn(&CudaProbeReport) -> f64,
        ),
        ("probe_forward", |r| r.forward_seconds),
    ] {
        let m = series(key, f);
        if !m.samples.is_empty() {
            out.metrics.push(m);
        }
    }
}

/// "largest batch under the device memory limit found".
fn found_check(x: &Search<'_>) -> Check {
    let first = x.probes.iter().find_map(|p| p.report.as_ref());
    let usable = first.map_or("?".to_string(), |r| {
        format!(
            "{} usable of {} free ({} filler; {} total)",
            format_byte_count(r.usable),
            format_byte_count(r.free_start),
            format_byte_count(r.filler),
            format_byte_count(r.total)
        )
    });
    let first_fail = x.probes.iter().find(|p| !p.fits);
    Check::new(
        "largest batch under the device memory limit found",
        x.best > 0,
        format!(
            "largest batch that fits {usable}: {}{} ({} probes, one child each, {:.1} s); the first that does not fit: {}",
            x.best,
            best_probe(x)
                .and_then(|p| p.report.as_ref()?.model_peak)
                .map(|b| format!(" using {} of the pool at its peak", format_byte_count(b)))
                .unwrap_or_default(),
            x.probes.len(),
            x.search_time,
            match first_fail {
                Some(p) => format!("batch {}: {}", p.batch, p.failure()),
                None => format!("none up to max_batch {} (search capped)", x.s.max_batch),
            }
        ),
        Some(ChecklistItem::ErrorHandling),
    )
}

/// "CUDA out-of-memory was a clean, recoverable error".
fn clean_oom_check(x: &Search<'_>, v: &Verdicts, oom_child: Option<&Probe>) -> Check {
    let first_fail = x.probes.iter().find(|p| !p.fits);
    Check::new(
        "CUDA out-of-memory was a clean, recoverable error",
        v.clean_oom && v.in_process_recovered && v.fresh_child_ok,
        match (oom_child, first_fail) {
            (Some(p), _) => {
                let r = p.report.as_ref().expect("oom_child has a report");
                format!(
                    "batch {}: \"{}\", the child exited cleanly; in that process batch 1 then {}; a fresh child at batch {} {}",
                    p.batch,
                    r.error,
                    if r.retry_ok == Some(true) {
                        "ran"
                    } else {
                        "FAILED"
                    },
                    x.best.max(1),
                    match x.after {
                        Some(a) if a.fits => "fit".to_string(),
                        Some(a) => format!("FAILED: {}", a.failure()),
                        None => "was not run".into(),
                    }
                )
            }
            (None, Some(p)) => format!(
                "batch {} failed without a clean out-of-memory error: {}",
                p.batch,
                p.failure()
            ),
            (None, None) => NONE_FAILED.into(),
        },
        Some(ChecklistItem::ErrorHandling),
    )
}

/// "device memory returned after out-of-memory".
fn returned_check(x: &Search<'_>, v: &Verdicts, oom_child: Option<&Probe>) -> Check {
    let in_child = oom_child.and_then(|p| p.report.as_ref()).map(|r| {
        format!(
            "in the child: free {} before the failed pass, {} after it (pool trimmed)",
            format_byte_count(r.free_before_forward),
            r.free_after_recovery.map_or("?".into(), format_byte_count)
        )
    });
    Check::new(
        "device memory returned after out-of-memory",
        oom_child.is_some() && v.in_process_recovered && v.device_memory_returned,
        format!(
            "{}; on the device after every probe exited: free {} before the search, {} after (tolerance {})",
            in_child.unwrap_or_else(|| NONE_FAILED.into()),
            format_byte_count(x.free_start),
            format_byte_count(x.free_end),
            format_byte_count(x.s.leak_tolerance),
        ),
        Some(ChecklistItem::MemoryCleanup),
    )
}

#[cfg(test)]
mod tests {
    use super::super::tests::{probe, spec};
    use super::super::verdicts;
    use super::*;

    #[test]
    fn report_without_an_oom_says_what_to_change() {
        let s = CudaMaxBatch::from_spec(&spec(
            "find_max_batch = true\nmodel = { arch = \"mlp\", layers = [8, 8] }\nmax_batch = 4",
        ))
        .unwrap();
        let probes: Vec<Probe> = [1, 2, 4].map(|b| probe(b, true, false, false, 0)).to_vec();
        let v = verdicts(&probes, None, 10, 10, 0);
        let search = Search {
            s: &s,
            device: DeviceSel::Cuda(0),
            probes: &probes,
            after: None,
            best: 4,
            search_time: 0.5,
            free_start: 10,
            free_end: 10,
            total: 20,
        };
        let out = report(&search, &v);
        let c: Vec<(bool, &str)> = out
            .checks
            .iter()
            .map(|c| (c.passed, c.evidence.as_str()))
            .collect();
        assert!(c[0].0 && c[0].1.contains("search capped"), "{c:?}");
        assert!(!c[1].0 && c[1].1.contains("lower `memory_limit`"), "{c:?}");
        assert!(!c[2].0, "{c:?}");
        let max = out
            .metrics
            .iter()
            .find(|m| m.key.to_string() == "max_batch")
            .unwrap();
        assert_eq!(max.samples, vec![4.0]);
    }
}
