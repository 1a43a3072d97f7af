//! `oom_stress`: allocate plain device memory (`cuMemAlloc`, never managed
//! memory) until the driver refuses or a cap is reached, free it all, and
//! prove recovery: free memory returns to its starting level and a probe
//! kernel still runs correctly.
//!
//! This folder is the whole kind: `mod.rs` the executor and the device
//! stress's evidence, `stress` its phases, `probe` the kernel that proves
//! recovery, `cuda` the largest batch of a model on a GPU, `host` the host
//! stress, `child` the `oom-child` process both use, `memory` what the GPU
//! paths read of device memory. Imports go mod → child → cuda → host, and
//! to stress → probe and memory; never back.

mod child;
pub mod cuda;
pub mod host;
mod memory;
mod probe;
mod stress;

pub use child::child_main;
pub use memory::memory_returned;
use stress::Stressed;

use crate::device::{self, driver_err};
use crate::exec::gpus::{self, OnGpu};
use crate::exec::{Availability, ExecError, ExecEvent, ExecOutput, Executes, Executor, RunCtx};
use crate::metric::{ChecklistItem, Direction, MetricKey, MetricSeries, Unit};
use crate::plan::oom::OomStressSpec;
use crate::plan::{DeviceSel, KindSpec, ScenarioPlan};
use crate::result::Check;
use crate::units::format_byte_count;

pub struct OomStressExecutor;

fn spec_of(plan: &ScenarioPlan) -> Result<&OomStressSpec, String> {
    match &plan.spec {
        KindSpec::OomStress(s) => Ok(s),
        other => Err(format!("oom_stress executor got a {} plan", other.kind())),
    }
}

impl Executes for crate::plan::OomStressSpec {
    const EXECUTOR: &'static dyn Executor = &OomStressExecutor;
}

impl Executor for OomStressExecutor {
    fn availability(&self, plan: &ScenarioPlan) -> Availability {
        if plan.device != DeviceSel::Cpu && spec_of(plan).is_ok_and(|s| s.find_max_batch) {
            // Probes run candle on the GPU: the `cuda` feature and a driver.
            let sel = match plan.device {
                DeviceSel::Cuda(n) => DeviceSel::Cuda(n),
                _ => DeviceSel::Cuda(0),
            };
            return match crate::model::device::unavailable(sel) {
                Some(r) => Availability::Missing(r),
                None => match device::cuda_unavailable_reason() {
                    Some(r) => Availability::Missing(r),
                    None => Availability::Ready,
                },
            };
        }
        if plan.device == DeviceSel::Cpu {
            return match spec_of(plan) {
                Ok(_) => Availability::Ready,
                Err(e) => Availability::Missing(e),
            };
        }
        if let Err(e) = spec_of(plan) {
            return Availability::Missing(e);
        }
        match device::cuda_unavailable_reason() {
            Some(r) => Availability::Missing(r),
            None => Availability::Ready,
        }
    }

    fn run(&self, plan: &ScenarioPlan, ctx: &mut RunCtx<'_>) -> Result<ExecOutput, ExecError> {
        if plan.device == DeviceSel::Cpu {
            let spec = spec_of(plan).map_err(ExecError::Failed)?;
            return host::run_host(plan, spec, ctx);
        }
        if let Ok(spec) = spec_of(plan)
            && spec.find_max_batch
        {
            return cuda::run_cuda(plan, spec, ctx);
        }
        gpus::guarded_run(plan, "oom_stress", || run_scenario(plan, ctx))
    }
}

fn run_scenario(plan: &ScenarioPlan, rctx: &mut RunCtx<'_>) -> Result<ExecOutput, String> {
    let spec = spec_of(plan)?;
    spec.validate()
        .map_err(|e| format!("{}: {e}", plan.location))?;
    let mut out = ExecOutput::default();
    gpus::on_each_gpu(plan.device, "oom_stress", &mut out, |gpu, out| {
        run_on_gpu(spec, rctx, gpu, out)
    })?;
    Ok(out)
}

/// The stress on one GPU, and its metrics and checks.
fn run_on_gpu(
    spec: &OomStressSpec,
    rctx: &mut RunCtx<'_>,
    gpu: &OnGpu<'_>,
    out: &mut ExecOutput,
) -> Result<(), String> {
    rctx.event(ExecEvent::Point {
        index: gpu.index,
        total: gpu.set.ordinals.len(),
        label: MetricKey::new("")
            .with_labels(gpu.labels.iter())
            .to_string(),
    });
    let s = stress::stress(spec, &gpu.ctx, &gpu.stream, &rctx.env.cache_dir)?;
    push_metrics(out, gpu, &s);
    push_checks(out, gpu, spec, &s);
    gpu.ctx
        .check_err()
        .map_err(|e| driver_err("a deferred CUDA call (recorded by cudarc)", e))?;
    Ok(())
}

fn push_metrics(out: &mut ExecOutput, gpu: &OnGpu<'_>, s: &Stressed) {
    let key = |n: &str| MetricKey::new(n).with_labels(gpu.labels.iter());
    out.metrics.push(MetricSeries::single(
        key("peak_allocated"),
        Unit::Bytes,
        Direction::Neither,
        s.peak as f64,
    ));
    out.metrics.push(MetricSeries::single(
        key("alloc_time"),
        Unit::Seconds,
        Direction::LowerIsBetter,
        s.alloc_time,
    ));
    out.metrics.push(MetricSeries::single(
        key("recovery_time"),
        Unit::Seconds,
        Direction::LowerIsBetter,
        s.recovery_time,
    ));
}

/// The three checks (bounded, returned, clean error) and the warning when
/// memory did not return.
fn push_checks(out: &mut ExecOutput, gpu: &OnGpu<'_>, spec: &OomStressSpec, s: &Stressed) {
    let (gpus, ord) = (gpu.set, gpu.ordinal);
    out.checks.push(Check::new(
        gpus.name(ord, "device memory bounded"),
        s.peak > 0 && s.peak <= s.cap.max(s.chunk),
        bounded_evidence(spec, s),
        Some(ChecklistItem::GpuMemory),
    ));
    out.checks.push(Check::new(
        gpus.name(ord, "memory returned"),
        s.returned,
        format!(
            "free before {}, after freeing {} allocations {} (difference {}, tolerance {}); recovery took {:.1} ms",
            format_byte_count(s.free0),
            s.n_chunks,
            format_byte_count(s.free1),
            if s.free1 >= s.free0 { format!("+{}", format_byte_count(s.free1 - s.free0)) } else { format!("-{}", format_byte_count(s.free0 - s.free1)) },
            format_byte_count(s.tolerance),
            s.recovery_time * 1e3
        ),
        Some(ChecklistItem::MemoryCleanup),
    ));
    let (oom_seen, oom_how) = oom_evidence(s);
    out.checks.push(Check::new(
        gpus.name(ord, "OOM was a clean, recoverable error"),
        oom_seen && s.probe.is_ok() && s.returned,
        format!(
            "{oom_how}; afterwards {}",
            match &s.probe {
                Ok(ev) => format!("the probe ran correctly ({ev})"),
                Err(e) => format!("the probe FAILED: {e}"),
            }
        ),
        Some(ChecklistItem::ErrorHandling),
    ));
    if !s.returned {
        out.warnings.push(gpus.prefix(
            ord,
            &format!(
                "free memory did not return within {} (another process on the GPU can cause this; see the monitor)",
                format_byte_count(s.tolerance)
            ),
        ));
    }
}

fn bounded_evidence(spec: &OomStressSpec, s: &Stressed) -> String {
    format!(
        "allocated {} in {} chunks of {} ({:.1}% of {} total; cap {} = memory_fraction {}); {}; free at peak {}{}",
        format_byte_count(s.peak),
        s.peak / s.chunk,
        format_byte_count(s.chunk),
        100.0 * s.peak as f64 / s.total as f64,
        format_byte_count(s.total),
        format_byte_count(s.cap),
        spec.fraction(),
        if s.natural_oom {
            "stopped by CUDA_ERROR_OUT_OF_MEMORY"
        } else {
            "stopped by the cap"
        },
        format_byte_count(s.free_at_peak),
        s.frag_note,
    )
}

/// Whether an out-of-memory error was seen, and how.
fn oom_evidence(s: &Stressed) -> (bool, String) {
    match s.provoked {
        None => (
            s.natural_oom,
            "cuMemAlloc returned CUDA_ERROR_OUT_OF_MEMORY while filling the device".to_string(),
        ),
        Some((ask, true)) => (
            true,
            format!(
                "cap reached first; a single cuMemAlloc of {} (> {} free) returned CUDA_ERROR_OUT_OF_MEMORY",
                format_byte_count(ask as u64),
                format_byte_count(s.free_now)
            ),
        ),
        Some((ask, false)) => (
            false,
            format!(
                "cuMemAlloc of {} succeeded although only {} was free: OOM could not be provoked",
                format_byte_count(ask as u64),
                format_byte_count(s.free_now)
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_returned_within_tolerance() {
        let mib = 1u64 << 20;
        assert!(memory_returned(1000 * mib, 1000 * mib, 64 * mib));
        assert!(memory_returned(1000 * mib, 950 * mib, 64 * mib));
        assert!(!memory_returned(1000 * mib, 900 * mib, 64 * mib));
        assert!(memory_returned(1000 * mib, 1100 * mib, 0));
    }
}
