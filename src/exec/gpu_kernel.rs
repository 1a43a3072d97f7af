//! `gpu_kernel`: NVRTC-compiled CUDA kernels (or built-in ones, cuBLAS GEMMs
//! included) timed with CUDA events, warm or with L2 flushed between
//! launches, checked against a reference, and related to the device's
//! measured peaks. Every CUDA failure names the call that failed.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use cudarc::driver::{CudaFunction, CudaSlice, CudaStream, sys};

use crate::device::buffers::{DevBuf, HostData, Scalar};
use crate::device::launch::LaunchDims;
use crate::device::peaks::{DevicePeaks, EventTimer, cublas_unavailable_reason};
use crate::device::{self, driver_err};

mod builtins;
mod p2p;
mod user;
use crate::exec::gpus::{self, OnGpu};
use crate::exec::sampler::{SamplingReport, StopReason, run_adaptive};
use crate::exec::{Availability, ExecError, ExecEvent, ExecOutput, Executes, Executor, RunCtx};
use crate::metric::{Direction, MetricKey, MetricSeries, Unit, default_estimator};
use crate::plan::gpu_kernel::expr;
use crate::plan::gpu_kernel::{Builtin, GpuKernelSpec};
use crate::plan::{
    DeviceSel, KindSpec, ParamPoint, ParamValue, Resolved, ScenarioPlan, point_labels,
};
use crate::result::Check;
use builtins::run_builtin_point;
use user::{UserKernels, load_user_kernels, run_user_point};

pub struct GpuKernelExecutor;

pub(super) const DEFAULT_SEED: u64 = 0x5EED;

fn spec_of(plan: &ScenarioPlan) -> Result<&GpuKernelSpec, String> {
    match &plan.spec {
        KindSpec::GpuKernel(s) => Ok(s),
        other => Err(format!("gpu_kernel executor got a {} plan", other.kind())),
    }
}

/// The CUDA ordinal a scenario runs on.
pub fn ordinal(device: DeviceSel, kind: &str) -> Result<usize, String> {
    match device {
        DeviceSel::Cpu => Err(format!(
            "{kind} runs on CUDA devices only, but the scenario says device = \"cpu\""
        )),
        DeviceSel::Auto | DeviceSel::AllGpus => Ok(0),
        DeviceSel::Cuda(n) => Ok(n as usize),
    }
}

fn needs_nvrtc(spec: &GpuKernelSpec) -> bool {
    !matches!(
        spec.builtin,
        Some(Builtin::Sgemm | Builtin::Hgemm | Builtin::Bf16gemm | Builtin::P2pCopy)
    )
}

fn needs_cublas(spec: &GpuKernelSpec) -> bool {
    matches!(
        spec.builtin,
        Some(Builtin::Sgemm | Builtin::Hgemm | Builtin::Bf16gemm)
    )
}

impl Executes for crate::plan::GpuKernelSpec {
    const EXECUTOR: &'static dyn Executor = &GpuKernelExecutor;
}

impl Executor for GpuKernelExecutor {
    fn availability(&self, plan: &ScenarioPlan) -> Availability {
        let spec = match spec_of(plan) {
            Ok(s) => s,
            Err(e) => return Availability::Missing(e),
        };
        if let Err(e) = ordinal(plan.device, "gpu_kernel") {
            return Availability::Missing(e);
        }
        if let Some(r) = device::cuda_unavailable_reason() {
            return Availability::Missing(r);
        }
        if spec.builtin == Some(Builtin::P2pCopy) {
            let count = match device::gpu_count() {
                Ok(n) => n,
                Err(e) => return Availability::Missing(e.to_string()),
            };
            if let Some(r) = gpus::p2p_unavailable_reason(count) {
                return Availability::Missing(r);
            }
        }
        if needs_nvrtc(spec)
            && let Some(r) = device::nvrtc_unavailable_reason()
        {
            return Availability::Missing(r);
        }
        if needs_cublas(spec)
            && let Some(r) = cublas_unavailable_reason()
        {
            return Availability::Missing(r);
        }
        Availability::Ready
    }

    fn run(&self, plan: &ScenarioPlan, ctx: &mut RunCtx<'_>) -> Result<ExecOutput, ExecError> {
        gpus::guarded_run(plan, "gpu_kernel", || run_scenario(plan, ctx))
    }
}

fn run_scenario(plan: &ScenarioPlan, rctx: &mut RunCtx<'_>) -> Result<ExecOutput, String> {
    let spec = spec_of(plan)?;
    spec.validate()
        .and_then(|()| spec.validate_device(plan.device))
        .map_err(|e| format!("{}: {e}", plan.location))?;
    if spec.builtin == Some(Builtin::P2pCopy) {
        return p2p::run(plan, spec, rctx);
    }
    let mut out = ExecOutput::default();
    gpus::on_each_gpu(plan.device, "gpu_kernel", &mut out, |gpu, out| {
        run_on_gpu(plan, spec, rctx, gpu, out)
    })?;
    Ok(out)
}

/// Every sweep point on one GPU.
fn run_on_gpu(
    plan: &ScenarioPlan,
    spec: &GpuKernelSpec,
    rctx: &mut RunCtx<'_>,
    gpu: &OnGpu<'_>,
    out: &mut ExecOutput,
) -> Result<(), String> {
    let cache_dir = rctx.env.cache_dir.clone();
    let peaks = measure_peaks(gpu, &cache_dir, out);
    let mut flush = flush_buffer(spec, gpu)?;
    let timer = EventTimer::new(&gpu.ctx)?;
    let user = match (&spec.source, &spec.builtin) {
        (Some(src), _) => Some(load_user_kernels(
            spec,
            src,
            &plan.base_dir,
            &gpu.ctx,
            &cache_dir,
        )?),
        _ => None,
    };
    let on_gpu = GpuEnv {
        plan,
        spec,
        gpu,
        timer: &timer,
        user: user.as_ref(),
        peaks: peaks.as_ref(),
        cache_dir: &cache_dir,
    };
    for (i, point) in plan.points.iter().enumerate() {
        // A SIGINT or SIGTERM: the points left are not started (the run is
        // reported as cancelled whatever it measured).
        if crate::process::cancel::requested().is_some() {
            break;
        }
        on_gpu.run_point(i, point, flush.as_mut(), rctx, out)?;
    }
    drop(flush);
    gpu.stream
        .synchronize()
        .map_err(|e| driver_err("cuStreamSynchronize (end of scenario)", e))?;
    gpu.ctx
        .check_err()
        .map_err(|e| driver_err("a deferred CUDA call (recorded while freeing buffers)", e))?;
    Ok(())
}

/// The device's measured peaks as metrics, or a warning why not.
fn measure_peaks(gpu: &OnGpu<'_>, cache_dir: &Path, out: &mut ExecOutput) -> Option<DevicePeaks> {
    let (gpus, ord, gpu_labels) = (gpu.set, gpu.ordinal, &gpu.labels);
    match device::peaks::device_peaks(&gpu.ctx, cache_dir) {
        Ok(p) => {
            out.metrics.push(MetricSeries::single(
                MetricKey::new("device_peak_bandwidth").with_labels(gpu_labels.iter()),
                Unit::BytesPerSecond,
                Direction::Neither,
                p.bandwidth,
            ));
            match &p.flops {
                Ok(f) => out.metrics.push(MetricSeries::single(
                    MetricKey::new("device_peak_flops").with_labels(gpu_labels.iter()),
                    Unit::FlopPerSecond,
                    Direction::Neither,
                    *f,
                )),
                Err(e) => out.warnings.push(gpus.prefix(
                    ord,
                    &format!("device FLOP/s peak not measured, no peak_fraction_flops: {e}"),
                )),
            }
            Some(p)
        }
        Err(e) => {
            out.warnings.push(gpus.prefix(
                ord,
                &format!("device peaks not measured, no peak_fraction metrics: {e}"),
            ));
            None
        }
    }
}

/// With `cold = true`: a buffer twice the L2 (at least 64 MiB) that is
/// written between launches, so every launch starts with a cold cache.
fn flush_buffer(spec: &GpuKernelSpec, gpu: &OnGpu<'_>) -> Result<Option<CudaSlice<u8>>, String> {
    if !spec.cold {
        return Ok(None);
    }
    let l2 = device::attribute(
        &gpu.ctx,
        sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE,
    )?
    .max(0) as usize;
    let bytes = (2 * l2).max(64 << 20);
    // SAFETY: only ever written (memset) between launches.
    let buf = unsafe { gpu.stream.alloc::<u8>(bytes) }
        .map_err(|e| driver_err(&format!("cuMemAlloc (L2 flush buffer, {bytes} bytes)"), e))?;
    Ok(Some(buf))
}

/// What every point on one GPU shares.
struct GpuEnv<'a> {
    plan: &'a ScenarioPlan,
    spec: &'a GpuKernelSpec,
    gpu: &'a OnGpu<'a>,
    timer: &'a EventTimer,
    user: Option<&'a UserKernels>,
    peaks: Option<&'a DevicePeaks>,
    cache_dir: &'a Path,
}

impl GpuEnv<'_> {
    /// Point `i` of the sweep: measured, named for its GPU, recorded.
    fn run_point(
        &self,
        i: usize,
        point: &ParamPoint,
        flush: Option<&mut CudaSlice<u8>>,
        rctx: &mut RunCtx<'_>,
        out: &mut ExecOutput,
    ) -> Result<(), String> {
        let (gpus, ord, spec) = (self.gpu.set, self.gpu.ordinal, self.spec);
        let mut labels = point_labels(point);
        if spec.cold {
            labels.insert("cache".into(), "cold".into());
        }
        gpus.label(ord, &mut labels);
        let label_text = MetricKey::new("").with_labels(labels.iter()).to_string();
        let per_gpu = self.plan.points.len();
        rctx.event(ExecEvent::Point {
            index: self.gpu.index * per_gpu + i,
            total: per_gpu * gpus.ordinals.len(),
            label: label_text.clone(),
        });
        let settings = rctx.settings.clone();
        let mut env = PointEnv {
            settings: &settings,
            stream: &self.gpu.stream,
            timer: self.timer,
            flush,
            spec,
            point,
            base_dir: &self.plan.base_dir,
        };
        let mut on_sample = |count: usize| rctx.event(ExecEvent::Sample { count });
        let mut pm = match (self.user, spec.builtin) {
            (Some(k), _) => run_user_point(&mut env, k, &mut on_sample),
            (None, Some(b)) => {
                run_builtin_point(&mut env, b, &self.gpu.ctx, self.cache_dir, &mut on_sample)
            }
            (None, None) => Err("no kernel to run".into()),
        }
        .map_err(|e| {
            if label_text.is_empty() {
                e
            } else {
                format!("{label_text}: {e}")
            }
        })?;
        if gpus.per_gpu {
            if let Some(c) = &mut pm.check {
                c.name = gpus.name(ord, &c.name);
            }
            for w in &mut pm.warnings {
                *w = gpus.prefix(ord, w);
            }
        }
        record_point(out, &labels, &label_text, pm, self.peaks, &settings);
        Ok(())
    }
}

/// What measuring one sweep point produced.
pub(super) struct PointMeasure {
    pub(super) times: Vec<f64>,
    pub(super) report: SamplingReport,
    pub(super) bytes: Option<f64>,
    pub(super) flops: Option<f64>,
    pub(super) check: Option<Check>,
    pub(super) warnings: Vec<String>,
}

fn record_point(
    out: &mut ExecOutput,
    labels: &BTreeMap<String, String>,
    label_text: &str,
    pm: PointMeasure,
    peaks: Option<&DevicePeaks>,
    settings: &Resolved,
) {
    let key = |n: &str| MetricKey::new(n).with_labels(labels.iter());
    let median = |v: &[f64]| crate::stats::median(v).unwrap_or(f64::NAN);
    let mut time = MetricSeries::new(
        key("time"),
        Unit::Seconds,
        Direction::LowerIsBetter,
        default_estimator(&Unit::Seconds, Direction::LowerIsBetter),
    );
    time.samples = pm.times.clone();
    out.metrics.push(time);
    for (what, per_launch, unit, peak_name, peak) in [
        (
            "bandwidth",
            pm.bytes,
            Unit::BytesPerSecond,
            "peak_fraction_bw",
            peaks.map(|p| p.bandwidth),
        ),
        (
            "flops",
            pm.flops,
            Unit::FlopPerSecond,
            "peak_fraction_flops",
            peaks.and_then(|p| p.flops.clone().ok()),
        ),
    ] {
        let Some(amount) = per_launch else { continue };
        let estimator = default_estimator(&unit, Direction::HigherIsBetter);
        let mut m = MetricSeries::new(key(what), unit, Direction::HigherIsBetter, estimator);
        m.samples = pm.times.iter().map(|t| amount / t).collect();
        let med = median(&m.samples);
        out.metrics.push(m);
        if let Some(peak) = peak
            && peak > 0.0
        {
            out.metrics.push(MetricSeries::single(
                key(peak_name),
                Unit::Ratio,
                Direction::Neither,
                med / peak,
            ));
        }
    }
    if let Some(c) = pm.check {
        out.checks.push(c);
    }
    out.warnings.extend(pm.warnings);
    out.warnings
        .extend(sampling_warning(&pm.report, label_text, settings));
}

/// A warning when sampling stopped before the CI reached its target.
pub(super) fn sampling_warning(
    r: &SamplingReport,
    label_text: &str,
    settings: &Resolved,
) -> Option<String> {
    (r.reason != StopReason::Converged && r.rel_ci > settings.target_rel_ci).then(|| {
        format!(
            "{}: sampling stopped ({:?}) after {} samples with the estimator's CI at ±{:.2}% (target ±{:.2}%)",
            if label_text.is_empty() { "time" } else { label_text },
            r.reason,
            r.samples,
            r.rel_ci * 100.0,
            settings.target_rel_ci * 100.0
        )
    })
}

/// Everything a point needs besides the kernel.
pub(super) struct PointEnv<'a> {
    pub(super) settings: &'a Resolved,
    pub(super) stream: &'a Arc<CudaStream>,
    pub(super) timer: &'a EventTimer,
    pub(super) flush: Option<&'a mut CudaSlice<u8>>,
    pub(super) spec: &'a GpuKernelSpec,
    pub(super) point: &'a ParamPoint,
    pub(super) base_dir: &'a Path,
}

impl PointEnv<'_> {
    /// Warm-up + adaptive sampling of `launch`, one CUDA-event pair per launch.
    pub(super) fn measure(
        &mut self,
        what: &str,
        mut launch: impl FnMut() -> Result<(), String>,
        on_sample: &mut dyn FnMut(usize),
    ) -> Result<(Vec<f64>, SamplingReport), String> {
        let mut times = Vec::new();
        let mut fill = 0u8;
        let stream = self.stream;
        let timer = self.timer;
        let flush = &mut self.flush;
        let report = run_adaptive(
            self.settings,
            default_estimator(&Unit::Seconds, Direction::LowerIsBetter),
            |warm| {
                if let Some(f) = flush.as_deref_mut() {
                    stream
                        .context()
                        .bind_to_thread()
                        .map_err(|e| driver_err("cuCtxSetCurrent", e))?;
                    fill = fill.wrapping_add(1);
                    let bytes = f.len();
                    let (ptr, _rec) = cudarc::driver::DevicePtrMut::device_ptr_mut(f, stream);
                    // SAFETY: writes the flush buffer we own.
                    unsafe {
                        cudarc::driver::result::memset_d8_async(
                            ptr,
                            fill,
                            bytes,
                            stream.cu_stream(),
                        )
                    }
                    .map_err(|e| driver_err("cuMemsetD8Async (L2 flush)", e))?;
                }
                let t = timer.time(stream, what, &mut launch)?;
                if !warm {
                    times.push(t);
                }
                Ok::<_, String>(Some(t))
            },
            on_sample,
        )?;
        Ok((times, report))
    }

    pub(super) fn eval_opt(
        &self,
        e: &Option<Box<crate::plan::gpu_kernel::ExprText>>,
        what: &str,
    ) -> Result<Option<f64>, String> {
        e.as_deref()
            .map(|x| {
                expr::eval_f64(x.as_str(), self.point).map_err(|err| format!("`{what}`: {err}"))
            })
            .transpose()
    }

    /// An integer sweep parameter (`name`), or `fallback`'s value.
    pub(super) fn param(&self, name: &str, fallback: Option<&str>) -> Result<i64, String> {
        let v = self
            .point
            .get(name)
            .or_else(|| fallback.and_then(|f| self.point.get(f)));
        match v {
            Some(ParamValue::Int(i)) if *i > 0 => Ok(*i),
            Some(other) => Err(format!(
                "parameter `{name}` = {other} must be a positive integer"
            )),
            None => Err(format!(
                "this builtin needs the sweep parameter `{name}`{}; add it to `params`",
                fallback.map(|f| format!(" (or `{f}`)")).unwrap_or_default()
            )),
        }
    }
}

/// A kernel argument with its data.
pub(super) enum ArgVal {
    Buf(DevBuf),
    Scalar(Scalar),
}

pub(super) fn launch(
    stream: &CudaStream,
    f: &CudaFunction,
    name: &str,
    cfg: LaunchDims,
    vals: &[ArgVal],
    idx: &[usize],
) -> Result<(), String> {
    let mut b = stream.launch_builder(f);
    for &i in idx {
        match &vals[i] {
            ArgVal::Buf(d) => d.push(&mut b),
            ArgVal::Scalar(s) => s.push(&mut b),
        }
    }
    // SAFETY: the argument list follows the suite's `args` (user kernels) or
    // the built-in kernel's signature; lengths come from the same expressions.
    unsafe { b.launch(cfg.to_cudarc()) }
        .map(|_| ())
        .map_err(|e| {
            driver_err(
                &format!(
                    "cuLaunchKernel(`{name}`, grid {:?}, block {:?}, {} B shared)",
                    cfg.grid, cfg.block, cfg.shared_mem_bytes
                ),
                e,
            )
        })
}

pub(super) fn sync(stream: &CudaStream, what: &str) -> Result<(), String> {
    stream
        .synchronize()
        .map_err(|e| driver_err(&format!("{what}: cuStreamSynchronize after the launch"), e))
}

/// A built-in step before its function is loaded: (kernel, launch, argument indices).
pub(super) type StepSpec<'s> = (&'s str, LaunchDims, Vec<usize>);

/// One launch step of a (possibly multi-kernel) operation.
pub(super) struct Step<'a> {
    pub(super) f: &'a CudaFunction,
    pub(super) name: &'a str,
    pub(super) cfg: LaunchDims,
    pub(super) args: Vec<usize>,
}

pub(super) fn run_steps(
    stream: &CudaStream,
    steps: &[Step<'_>],
    vals: &[ArgVal],
) -> Result<(), String> {
    for s in steps {
        launch(stream, s.f, s.name, s.cfg, vals, &s.args)?;
    }
    Ok(())
}

pub(super) fn buf(vals: &[ArgVal], i: usize) -> &DevBuf {
    match &vals[i] {
        ArgVal::Buf(b) => b,
        ArgVal::Scalar(_) => unreachable!("argument {i} is a scalar"),
    }
}

fn poison(
    stream: &Arc<CudaStream>,
    vals: &mut [ArgVal],
    idx: &[usize],
    names: &[String],
) -> Result<(), String> {
    for &i in idx {
        if let ArgVal::Buf(b) = &mut vals[i] {
            b.poison(stream, &names[i])?;
        }
    }
    Ok(())
}

fn download(
    stream: &Arc<CudaStream>,
    vals: &[ArgVal],
    idx: &[usize],
    names: &[String],
) -> Result<Vec<HostData>, String> {
    idx.iter()
        .map(|&i| {
            buf(vals, i)
                .download(stream, &names[i])
                .map_err(String::from)
        })
        .collect()
}

// ---------------------------------------------------------------- user kernels

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinal_from_device_selection() {
        assert_eq!(ordinal(DeviceSel::Auto, "gpu_kernel"), Ok(0));
        assert_eq!(ordinal(DeviceSel::Cuda(2), "gpu_kernel"), Ok(2));
        assert!(
            ordinal(DeviceSel::Cpu, "gpu_kernel")
                .unwrap_err()
                .contains("device = \"cpu\"")
        );
    }

    #[test]
    fn gemm_builtins_skip_nvrtc() {
        let mut s = GpuKernelSpec {
            builtin: Some(Builtin::Bf16gemm),
            ..Default::default()
        };
        assert!(!needs_nvrtc(&s));
        assert!(needs_cublas(&s));
        s.builtin = Some(Builtin::Copy);
        assert!(needs_nvrtc(&s) && !needs_cublas(&s));
        s.builtin = Some(Builtin::P2pCopy);
        assert!(!needs_nvrtc(&s) && !needs_cublas(&s));
    }
}
