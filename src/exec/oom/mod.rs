//! `oom_stress`: allocate plain device memory (`cuMemAlloc`, never managed
//! memory) until the driver refuses or a cap is reached, free it all, and
//! prove recovery: free memory returns to its starting level and a probe
//! kernel still runs correctly.
//!
//! This folder is the whole kind: `mod.rs` the executor and the device
//! stress, `cuda` the largest batch of a model on a GPU, `host` the host
//! stress, `child` the `oom-child` process both use, `memory` what the GPU
//! paths read of device memory. Imports go mod → child → cuda → host, and
//! to memory; never back.

mod child;
pub mod cuda;
pub mod host;
mod memory;

pub use child::child_main;
pub use memory::memory_returned;
use memory::{free_mem, settle};

use std::sync::Arc;
use std::time::Instant;

use cudarc::driver::{CudaContext, CudaStream, result, sys};

use crate::device::{self, driver_err, is_oom};
use crate::exec::gpus::{self, OnGpu};
use crate::exec::{Availability, ExecError, ExecEvent, ExecOutput, Executes, Executor, RunCtx};
use crate::metric::{ChecklistItem, Direction, MetricKey, MetricSeries, Unit};
use crate::plan::oom::{OomPattern, OomStressSpec};
use crate::plan::{DeviceSel, KindSpec, ScenarioPlan};
use crate::result::Check;
use crate::units::format_bytes;

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

/// One `cuMemAlloc` allocation, freed with `cuMemFree` on drop.
struct Chunk {
    ptr: sys::CUdeviceptr,
    bytes: usize,
}

impl Drop for Chunk {
    fn drop(&mut self) {
        // SAFETY: allocated by cuMemAlloc, freed once; errors surface via
        // the free-memory check that follows.
        let _ = unsafe { result::free_sync(self.ptr) };
    }
}

/// What `cuMemAlloc` said.
enum Alloc {
    Ok(Chunk),
    Oom,
}

fn alloc(bytes: usize) -> Result<Alloc, String> {
    // SAFETY: plain device allocation, owned by the returned Chunk.
    match unsafe { result::malloc_sync(bytes) } {
        Ok(ptr) => Ok(Alloc::Ok(Chunk { ptr, bytes })),
        Err(e) if is_oom(&e) => Ok(Alloc::Oom),
        Err(e) => Err(driver_err(
            &format!(
                "cuMemAlloc({}) (expected success or CUDA_ERROR_OUT_OF_MEMORY)",
                format_bytes(bytes as f64)
            ),
            e,
        )),
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

/// The stress on one GPU.
fn run_on_gpu(
    spec: &OomStressSpec,
    rctx: &mut RunCtx<'_>,
    gpu: &OnGpu<'_>,
    out: &mut ExecOutput,
) -> Result<(), String> {
    let OnGpu {
        set: gpus,
        ordinal: ord,
        index: g,
        ctx,
        stream,
        labels,
    } = gpu;
    let (ord, g) = (*ord, *g);
    rctx.event(ExecEvent::Point {
        index: g,
        total: gpus.ordinals.len(),
        label: MetricKey::new("").with_labels(labels.iter()).to_string(),
    });
    let key = |n: &str| MetricKey::new(n).with_labels(labels.iter());

    settle(ctx)?;
    let (free0, total) = free_mem(ctx)?;
    let chunk = spec.chunk_bytes() as usize;
    let cap = (spec.fraction() * total as f64) as u64;
    let tolerance = spec.leak_tolerance_bytes();

    // Grow. cuMemAlloc allocates in the current context: this GPU's.
    ctx.bind_to_thread()
        .map_err(|e| driver_err("cuCtxSetCurrent", e))?;
    let mut chunks: Vec<Chunk> = Vec::new();
    let mut held: u64 = 0;
    let mut natural_oom = false;
    let t0 = Instant::now();
    while held + chunk as u64 <= cap {
        match alloc(chunk)? {
            Alloc::Ok(c) => {
                held += c.bytes as u64;
                chunks.push(c);
            }
            Alloc::Oom => {
                natural_oom = true;
                break;
            }
        }
    }
    let alloc_time = t0.elapsed().as_secs_f64();
    // Touch every chunk so the memory is really resident.
    for c in &chunks {
        // SAFETY: writes a chunk we own.
        unsafe { result::memset_d8_async(c.ptr, 0x5A, c.bytes, stream.cu_stream()) }
            .map_err(|e| driver_err("cuMemsetD8Async (touching allocated chunks)", e))?;
    }
    stream
        .synchronize()
        .map_err(|e| driver_err("cuStreamSynchronize", e))?;
    let peak = held;
    let (free_at_peak, _) = free_mem(ctx)?;

    // Fragment: free every other chunk, then ask for chunks larger than any hole.
    let mut frag_note = String::new();
    if spec.pattern.unwrap_or_default() == OomPattern::Fragment && chunks.len() >= 2 {
        let mut keep = Vec::new();
        let mut holes = 0usize;
        for (i, c) in chunks.drain(..).enumerate() {
            if i % 2 == 0 {
                keep.push(c);
            } else {
                holes += 1;
            }
        }
        chunks = keep;
        let big = 2 * chunk;
        let (mut ok, mut refused) = (0usize, 0usize);
        for _ in 0..holes / 2 + 1 {
            match alloc(big)? {
                Alloc::Ok(c) => {
                    ok += 1;
                    chunks.push(c);
                }
                Alloc::Oom => {
                    refused += 1;
                    natural_oom = true;
                    break;
                }
            }
        }
        frag_note = format!(
            "; fragment: freed {holes} alternate chunks, then {ok} allocations of {} (2x any hole) succeeded, {refused} refused",
            format_bytes(big as f64)
        );
    }

    // Without a natural OOM (the cap came first), provoke one: a single
    // request larger than what is free must fail cleanly with
    // CUDA_ERROR_OUT_OF_MEMORY and leave the context usable.
    let (free_now, _) = free_mem(ctx)?;
    let provoked = if natural_oom {
        None
    } else {
        let ask = (free_now + (1 << 30)) as usize;
        Some(match alloc(ask)? {
            Alloc::Oom => (ask, true),
            Alloc::Ok(c) => {
                drop(c);
                (ask, false)
            }
        })
    };

    // Recover.
    let t1 = Instant::now();
    let n_chunks = chunks.len();
    drop(chunks);
    settle(ctx)?;
    let recovery_time = t1.elapsed().as_secs_f64();
    let (free1, _) = free_mem(ctx)?;
    let returned = memory_returned(free0, free1, tolerance);
    let probe = probe_kernel(ctx, stream, &rctx.env.cache_dir);

    out.metrics.push(MetricSeries::single(
        key("peak_allocated"),
        Unit::Bytes,
        Direction::Neither,
        peak as f64,
    ));
    out.metrics.push(MetricSeries::single(
        key("alloc_time"),
        Unit::Seconds,
        Direction::LowerIsBetter,
        alloc_time,
    ));
    out.metrics.push(MetricSeries::single(
        key("recovery_time"),
        Unit::Seconds,
        Direction::LowerIsBetter,
        recovery_time,
    ));

    let gib = |b: u64| format_bytes(b as f64);
    out.checks.push(Check::new(
        gpus.name(ord, "device memory bounded"),
        peak > 0 && peak <= cap.max(chunk as u64),
        format!(
            "allocated {} in {} chunks of {} ({:.1}% of {} total; cap {} = memory_fraction {}); {}; free at peak {}{frag_note}",
            gib(peak),
            peak / chunk as u64,
            gib(chunk as u64),
            100.0 * peak as f64 / total as f64,
            gib(total),
            gib(cap),
            spec.fraction(),
            if natural_oom { "stopped by CUDA_ERROR_OUT_OF_MEMORY" } else { "stopped by the cap" },
            gib(free_at_peak),
        ),
        Some(ChecklistItem::GpuMemory),
    ));
    out.checks.push(Check::new(
        gpus.name(ord, "memory returned"),
        returned,
        format!(
            "free before {}, after freeing {n_chunks} allocations {} (difference {}, tolerance {}); recovery took {:.1} ms",
            gib(free0),
            gib(free1),
            if free1 >= free0 { format!("+{}", gib(free1 - free0)) } else { format!("-{}", gib(free0 - free1)) },
            gib(tolerance),
            recovery_time * 1e3
        ),
        Some(ChecklistItem::MemoryCleanup),
    ));
    let (oom_seen, oom_how) = match provoked {
        None => (
            natural_oom,
            "cuMemAlloc returned CUDA_ERROR_OUT_OF_MEMORY while filling the device".to_string(),
        ),
        Some((ask, true)) => (
            true,
            format!(
                "cap reached first; a single cuMemAlloc of {} (> {} free) returned CUDA_ERROR_OUT_OF_MEMORY",
                gib(ask as u64),
                gib(free_now)
            ),
        ),
        Some((ask, false)) => (
            false,
            format!(
                "cuMemAlloc of {} succeeded although only {} was free: OOM could not be provoked",
                gib(ask as u64),
                gib(free_now)
            ),
        ),
    };
    let probe_ok = probe.is_ok();
    out.checks.push(Check::new(
        gpus.name(ord, "OOM was a clean, recoverable error"),
        oom_seen && probe_ok && returned,
        format!(
            "{oom_how}; afterwards {}",
            match &probe {
                Ok(ev) => format!("the probe ran correctly ({ev})"),
                Err(e) => format!("the probe FAILED: {e}"),
            }
        ),
        Some(ChecklistItem::ErrorHandling),
    ));
    if !returned {
        out.warnings.push(gpus.prefix(
            ord,
            &format!(
                "free memory did not return within {} (another process on the GPU can cause this; see the monitor)",
                gib(tolerance)
            ),
        ));
    }
    ctx.check_err()
        .map_err(|e| driver_err("a deferred CUDA call (recorded by cudarc)", e))?;
    Ok(())
}

/// After recovery: saxpy on 1M elements through the built-in kernel (NVRTC),
/// or, without NVRTC, a device-to-device copy checked on the host.
fn probe_kernel(
    ctx: &Arc<CudaContext>,
    stream: &Arc<CudaStream>,
    cache_dir: &std::path::Path,
) -> Result<String, String> {
    use crate::device::buffers::{DevBuf, HostData, Scalar, compare};
    use crate::plan::gpu_kernel::Dtype;
    use cudarc::driver::PushKernelArg;
    let n = 1usize << 20;
    let x = HostData::random(Dtype::F32, n, 11);
    let y = HostData::random(Dtype::F32, n, 12);
    let (HostData::F32(xv), HostData::F32(yv)) = (&x, &y) else {
        unreachable!()
    };
    let dx = stream
        .clone_htod(xv)
        .map_err(|e| driver_err("probe cuMemcpyHtoD", e))?;
    let dy = stream
        .clone_htod(yv)
        .map_err(|e| driver_err("probe cuMemcpyHtoD", e))?;
    match device::builtin::module(ctx, cache_dir) {
        Ok(m) => {
            let f = device::builtin::function(&m, "np_saxpy_f32", device::builtin::NAME)?;
            let mut z = DevBuf::poisoned(stream, Dtype::F32, n, "z")?;
            let DevBuf::F32(zs) = &mut z else {
                unreachable!()
            };
            let a = Scalar::F32(2.0);
            let nn = n as u64;
            let cfg = device::launch::derive(Some(&[(n / 4) as i64]), Some(&[256]), None, 0)?;
            let mut b = stream.launch_builder(&f);
            b.arg(&dx).arg(&dy).arg(&*zs);
            a.push(&mut b);
            b.arg(&nn);
            // SAFETY: matches np_saxpy_f32(const float*, const float*, float*, float, u64).
            unsafe { b.launch(cfg.to_cudarc()) }
                .map_err(|e| driver_err("probe cuLaunchKernel(np_saxpy_f32)", e))?;
            stream
                .synchronize()
                .map_err(|e| driver_err("probe cuStreamSynchronize", e))?;
            let got = z.download(stream, "z")?;
            let r = compare(
                n,
                |i| got.get(i),
                |i| 2.0f32.mul_add(xv[i], yv[i]) as f64,
                0.0,
                0.0,
            );
            if r.passed() {
                Ok(format!("saxpy on {n} f32, exact"))
            } else {
                Err(r.evidence("saxpy probe", 0.0, 0.0))
            }
        }
        Err(nvrtc) => {
            let mut dz = dy.clone();
            stream
                .memcpy_dtod(&dx, &mut dz)
                .map_err(|e| driver_err("probe cuMemcpyDtoD", e))?;
            let got = stream
                .clone_dtoh(&dz)
                .map_err(|e| driver_err("probe cuMemcpyDtoH", e))?;
            if got == *xv {
                Ok(format!(
                    "device copy of {n} f32 verified (no kernel: {nvrtc})"
                ))
            } else {
                Err("device copy probe returned wrong data".into())
            }
        }
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
