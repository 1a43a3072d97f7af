//! The metrics and checks of a CUDA `find_max_batch` search, from what the
//! probe children reported (pure: tested without a GPU).

use super::{CudaMaxBatch, CudaProbeReport, Probe, Verdicts};
use crate::exec::ExecOutput;
use crate::metric::{ChecklistItem, Direction, MetricKey, MetricSeries, Unit};
use crate::plan::DeviceSel;
use crate::result::Check;
use crate::units::format_bytes;

#[allow(clippy::too_many_arguments)]
pub(super) fn report(
    s: &CudaMaxBatch,
    device: DeviceSel,
    probes: &[Probe],
    after: Option<&Probe>,
    best: usize,
    search_time: f64,
    (free_start, free_end, total): (u64, u64, u64),
    v: &Verdicts,
) -> ExecOutput {
    let mib = |b: u64| format_bytes(b as f64);
    let single = MetricSeries::single;
    let mut out = ExecOutput {
        device: format!("{device} (one oom-child per probe)"),
        ..Default::default()
    };
    let best_probe = probes.iter().find(|p| p.fits && p.batch == best);
    let first = probes.iter().find_map(|p| p.report.as_ref());
    out.metrics.push(single(
        MetricKey::new("max_batch"),
        Unit::Count,
        Direction::HigherIsBetter,
        best as f64,
    ));
    if let Some(peak) = best_probe.and_then(|p| p.report.as_ref()?.model_peak) {
        out.metrics.push(single(
            MetricKey::new("max_batch_memory"),
            Unit::Bytes,
            Direction::Neither,
            peak as f64,
        ));
    }
    for (key, v, unit) in [
        ("max_batch_probes", probes.len() as f64, Unit::Count),
        ("max_batch_search_time", search_time, Unit::Seconds),
        (
            "leaked",
            free_start.saturating_sub(free_end) as f64,
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
        m.samples = probes
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
    let usable = first.map_or("?".to_string(), |r| {
        format!(
            "{} usable of {} free ({} filler; {} total)",
            mib(r.usable),
            mib(r.free_start),
            mib(r.filler),
            mib(r.total)
        )
    });
    let first_fail = probes.iter().find(|p| !p.fits);
    out.checks.push(Check::new(
        "largest batch under the device memory limit found",
        best > 0,
        format!(
            "largest batch that fits {usable}: {best}{} ({} probes, one child each, {search_time:.1} s); the first that does not fit: {}",
            best_probe
                .and_then(|p| p.report.as_ref()?.model_peak)
                .map(|b| format!(" using {} of the pool at its peak", mib(b)))
                .unwrap_or_default(),
            probes.len(),
            match first_fail {
                Some(p) => format!("batch {}: {}", p.batch, p.failure()),
                None => format!("none up to max_batch {} (search capped)", s.max_batch),
            }
        ),
        Some(ChecklistItem::ErrorHandling),
    ));
    let oom_child = probes
        .iter()
        .find(|p| p.report.as_ref().is_some_and(|r| r.oom) && p.exit.is_none());
    let none_failed =
        "no probe ran out of memory up to max_batch: lower `memory_limit` or raise `max_batch`";
    out.checks.push(Check::new(
        "CUDA out-of-memory was a clean, recoverable error",
        v.clean_oom && v.in_process_recovered && v.fresh_child_ok,
        match (oom_child, first_fail) {
            (Some(p), _) => {
                let r = p.report.as_ref().expect("oom_child has a report");
                format!(
                    "batch {}: \"{}\", the child exited cleanly; in that process batch 1 then {}; a fresh child at batch {} {}",
                    p.batch,
                    r.error,
                    if r.retry_ok == Some(true) { "ran" } else { "FAILED" },
                    best.max(1),
                    match after {
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
            (None, None) => none_failed.into(),
        },
        Some(ChecklistItem::ErrorHandling),
    ));
    let in_child = oom_child.and_then(|p| p.report.as_ref()).map(|r| {
        format!(
            "in the child: free {} before the failed pass, {} after it (pool trimmed)",
            mib(r.free_before_forward),
            r.free_after_recovery.map_or("?".into(), mib)
        )
    });
    out.checks.push(Check::new(
        "device memory returned after out-of-memory",
        oom_child.is_some() && v.in_process_recovered && v.device_memory_returned,
        format!(
            "{}; on the device after every probe exited: free {} before the search, {} after (tolerance {})",
            in_child.unwrap_or_else(|| none_failed.into()),
            mib(free_start),
            mib(free_end),
            mib(s.leak_tolerance),
        ),
        Some(ChecklistItem::MemoryCleanup),
    ));
    if free_start > 0 && total > 0 && !v.device_memory_returned {
        out.warnings.push(format!(
            "free device memory did not return within {} (another process on the GPU can cause this)",
            mib(s.leak_tolerance)
        ));
    }
    out
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
        let out = report(
            &s,
            DeviceSel::Cuda(0),
            &probes,
            None,
            4,
            0.5,
            (10, 10, 20),
            &v,
        );
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
