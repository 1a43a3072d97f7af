//! CUDA-event timing, cuBLAS GEMM helpers, and this device's measured peaks
//! (memory bandwidth from a large device-to-device copy, FLOP/s from a
//! cuBLAS GEMM), measured once per process and GPU.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use cudarc::cublas::{CudaBlas, Gemm, GemmConfig, sys as blas_sys};
use cudarc::driver::{
    CudaContext, CudaEvent, CudaSlice, CudaStream, DeviceRepr, PushKernelArg, sys,
};
use half::bf16;

use super::{DeviceError, driver_err};

/// A start/end pair of CUDA events on one stream.
pub struct EventTimer {
    start: CudaEvent,
    end: CudaEvent,
}

impl EventTimer {
    pub fn new(ctx: &Arc<CudaContext>) -> Result<Self, DeviceError> {
        let ev = || {
            ctx.new_event(Some(sys::CUevent_flags::CU_EVENT_DEFAULT))
                .map_err(|e| DeviceError::Driver(driver_err("cuEventCreate", e)))
        };
        Ok(Self {
            start: ev()?,
            end: ev()?,
        })
    }

    /// Seconds between events recorded around what `work` enqueues on `stream`.
    /// Waits for the end event, so asynchronous kernel faults surface here,
    /// named after `what`.
    pub fn time(
        &self,
        stream: &CudaStream,
        what: &str,
        work: impl FnOnce() -> Result<(), String>,
    ) -> Result<f64, DeviceError> {
        self.timed(stream, what, work).map_err(DeviceError::Driver)
    }

    fn timed(
        &self,
        stream: &CudaStream,
        what: &str,
        work: impl FnOnce() -> Result<(), String>,
    ) -> Result<f64, String> {
        self.start
            .record(stream)
            .map_err(|e| driver_err("cuEventRecord (start)", e))?;
        work()?;
        self.end
            .record(stream)
            .map_err(|e| driver_err("cuEventRecord (end)", e))?;
        self.end
            .synchronize()
            .map_err(|e| driver_err(&format!("{what}: cuEventSynchronize after the launch"), e))?;
        let ms = event_elapsed_ms(&self.start, &self.end).map_err(|e| format!("{what}: {e}"))?;
        Ok(ms as f64 / 1e3)
    }
}

type ElapsedFn = unsafe extern "C" fn(*mut f32, sys::CUevent, sys::CUevent) -> sys::CUresult;

/// `cuEventElapsedTime_v2` (CUDA ≥ 12.8, what cudarc's CUDA 13 bindings
/// call) or, on older drivers, `cuEventElapsedTime`: looked up here so an
/// older driver gives a time instead of a "missing symbol" panic.
fn event_elapsed_ms(start: &CudaEvent, end: &CudaEvent) -> Result<f32, String> {
    static F: OnceLock<Option<(ElapsedFn, &'static str)>> = OnceLock::new();
    let f = F.get_or_init(|| {
        // SAFETY: libcuda is loaded (we have events); the signatures match
        // the CUDA driver API for both names.
        let lib = unsafe { sys::culib() };
        for name in ["cuEventElapsedTime_v2", "cuEventElapsedTime"] {
            let sym = unsafe { lib.get::<ElapsedFn>(name.as_bytes()) };
            if let Ok(sym) = sym {
                return Some((*sym, name));
            }
        }
        None
    });
    let Some((f, name)) = *f else {
        return Err("libcuda has neither cuEventElapsedTime_v2 nor cuEventElapsedTime".into());
    };
    let mut ms = 0.0f32;
    // SAFETY: both events belong to the current context and have completed.
    let r = unsafe { f(&mut ms, start.cu_event(), end.cu_event()) };
    r.result().map_err(|e| driver_err(name, e))?;
    Ok(ms)
}

/// A cuBLAS handle on `stream`, with a clear error when libcublas is missing.
pub fn blas(stream: &Arc<CudaStream>) -> Result<CudaBlas, DeviceError> {
    if let Some(r) = cublas_unavailable_reason() {
        return Err(DeviceError::NoCuda(r));
    }
    super::guarded("cuBLAS", || CudaBlas::new(stream.clone()))
        .map_err(DeviceError::Driver)?
        .map_err(|e| DeviceError::Driver(format!("cublasCreate failed: {e:?}")))
}

/// `None` when libcublas loads.
pub fn cublas_unavailable_reason() -> Option<String> {
    // SAFETY: only tries to dlopen the candidate names.
    if unsafe { blas_sys::is_culib_present() } {
        None
    } else {
        Some(
            "cuBLAS not found (libcublas.so could not be loaded; it comes with the CUDA toolkit or the nvidia-cublas wheel)"
                .into(),
        )
    }
}

/// Column-major `C (m×n) = A (m×k) · B (k×n)`, f32 accumulate.
#[allow(clippy::too_many_arguments)]
pub fn gemm<T: DeviceRepr>(
    blas: &CudaBlas,
    m: usize,
    n: usize,
    k: usize,
    a: &CudaSlice<T>,
    b: &CudaSlice<T>,
    c: &mut CudaSlice<T>,
    one: T,
    zero: T,
) -> Result<(), DeviceError>
where
    CudaBlas: Gemm<T>,
{
    let dim = |v: usize, what: &str| {
        i32::try_from(v).map_err(|_| {
            DeviceError::Invalid(format!("GEMM {what} = {v} does not fit cuBLAS's int"))
        })
    };
    let cfg = GemmConfig {
        transa: blas_sys::cublasOperation_t::CUBLAS_OP_N,
        transb: blas_sys::cublasOperation_t::CUBLAS_OP_N,
        m: dim(m, "m")?,
        n: dim(n, "n")?,
        k: dim(k, "k")?,
        alpha: one,
        lda: dim(m, "m")?,
        ldb: dim(k, "k")?,
        beta: zero,
        ldc: dim(m, "m")?,
    };
    // SAFETY: the slices hold m*k, k*n and m*n elements (checked by callers).
    unsafe { blas.gemm(cfg, a, b, c) }.map_err(|e| {
        DeviceError::Driver(format!(
            "cublasGemmEx/cublasSgemm ({m}x{n}x{k}) failed: {e:?}"
        ))
    })
}

/// This device's measured peaks.
#[derive(Clone, Debug, PartialEq)]
pub struct DevicePeaks {
    /// Bytes read + written per second by a large device-to-device copy.
    pub bandwidth: f64,
    /// FLOP/s of a large cuBLAS GEMM; `Err` says why it was not measured.
    pub flops: Result<f64, String>,
    /// e.g. "bf16 GEMM 8192^3 (tensor ops, f32 accumulate)".
    pub flops_method: String,
    pub bandwidth_method: String,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Measured once per process and GPU; later calls return the cached result.
pub fn device_peaks(ctx: &Arc<CudaContext>, cache_dir: &Path) -> Result<DevicePeaks, DeviceError> {
    static PEAKS: OnceLock<Mutex<BTreeMap<usize, Result<DevicePeaks, String>>>> = OnceLock::new();
    let mut map = PEAKS
        .get_or_init(|| Mutex::new(BTreeMap::new()))
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    map.entry(ctx.ordinal())
        .or_insert_with(|| measure_peaks(ctx, cache_dir))
        .clone()
        .map_err(DeviceError::Driver)
}

fn measure_peaks(ctx: &Arc<CudaContext>, cache_dir: &Path) -> Result<DevicePeaks, String> {
    let stream = ctx.default_stream();
    let timer = EventTimer::new(ctx)?;
    let (free, _) = ctx
        .mem_get_info()
        .map_err(|e| driver_err("cuMemGetInfo", e))?;

    // Bandwidth: 1 GiB each way (less on small GPUs), best of the driver's
    // copy and the built-in float4 copy kernel.
    let elems = ((1usize << 30).min(free / 8) / 4) & !255;
    // SAFETY: both buffers are fully written before being read.
    let mut x: CudaSlice<f32> =
        unsafe { stream.alloc(elems) }.map_err(|e| driver_err("cuMemAlloc (peak copy)", e))?;
    let mut y: CudaSlice<f32> =
        unsafe { stream.alloc(elems) }.map_err(|e| driver_err("cuMemAlloc (peak copy)", e))?;
    stream
        .memset_zeros(&mut x)
        .map_err(|e| driver_err("cuMemsetD8Async", e))?;
    let bytes = (2 * elems * 4) as f64;
    let mut memcpy_t = Vec::new();
    for i in 0..23 {
        let t = timer.time(&stream, "peak copy (cuMemcpyDtoDAsync)", || {
            stream
                .memcpy_dtod(&x, &mut y)
                .map_err(|e| driver_err("cuMemcpyDtoDAsync", e))
        })?;
        if i >= 3 {
            memcpy_t.push(t);
        }
    }
    let mut bandwidth = bytes / median(memcpy_t);
    let mut bandwidth_method = format!("cuMemcpyDtoD {} MiB", (elems * 4) >> 20);
    if let Ok(module) = super::builtin::module(ctx, cache_dir) {
        let f = super::builtin::function(&module, "np_copy_f32", super::builtin::NAME)?;
        let n = elems as u64;
        let cfg = super::launch::derive(Some(&[(elems / 4) as i64]), Some(&[256]), None, 0)?;
        let mut kt = Vec::new();
        for i in 0..23 {
            let t = timer.time(&stream, "peak copy kernel np_copy_f32", || {
                let mut b = stream.launch_builder(&f);
                b.arg(&x).arg(&mut y).arg(&n);
                // SAFETY: arguments match np_copy_f32(const float*, float*, u64).
                unsafe { b.launch(cfg.to_cudarc()) }
                    .map(|_| ())
                    .map_err(|e| driver_err("cuLaunchKernel(np_copy_f32)", e))
            })?;
            if i >= 3 {
                kt.push(t);
            }
        }
        let kbw = bytes / median(kt);
        if kbw > bandwidth {
            bandwidth = kbw;
            bandwidth_method = format!("np_copy_f32 kernel {} MiB", (elems * 4) >> 20);
        }
    }
    drop((x, y));
    let (flops, flops_method) = match measure_gemm_peak(ctx, &stream, &timer, free) {
        Ok((f, m)) => (Ok(f), m),
        Err(e) => (Err(e), String::new()),
    };
    Ok(DevicePeaks {
        bandwidth,
        flops,
        flops_method,
        bandwidth_method,
    })
}

#[allow(clippy::needless_late_init)]
fn measure_gemm_peak(
    ctx: &Arc<CudaContext>,
    stream: &Arc<CudaStream>,
    timer: &EventTimer,
    free: usize,
) -> Result<(f64, String), String> {
    use super::buffers::HostData;
    use crate::plan::gpu_kernel::Dtype;
    // FLOP/s: bf16 tensor-op GEMM where the device has bf16 tensor cores
    // (compute capability ≥ 8.0), else f32.
    let cc = super::compute_capability(ctx)?;
    let blas = blas(stream)?;
    let size = if free > (3usize << 30) { 8192 } else { 4096 };
    let flop = 2.0 * (size as f64).powi(3);
    let mut times = Vec::new();
    let flops_method;
    if cc.0 >= 8 {
        // Random data: zeros draw less power and would overstate the peak.
        let HostData::Bf16(h) = HostData::random(Dtype::Bf16, size * size, 3) else {
            unreachable!()
        };
        let a: CudaSlice<bf16> = stream
            .clone_htod(&h)
            .map_err(|e| driver_err("cuMemAlloc + cuMemcpyHtoD (peak GEMM)", e))?;
        let b = a.clone();
        let mut c = a.clone();
        for i in 0..13 {
            let t = timer.time(stream, "peak bf16 GEMM", || {
                gemm(
                    &blas,
                    size,
                    size,
                    size,
                    &a,
                    &b,
                    &mut c,
                    bf16::ONE,
                    bf16::ZERO,
                )
                .map_err(String::from)
            })?;
            if i >= 3 {
                times.push(t);
            }
        }
        flops_method = format!("cuBLAS bf16 GEMM {size}^3 (tensor ops, f32 accumulate)");
    } else {
        let HostData::F32(h) = HostData::random(Dtype::F32, size * size, 3) else {
            unreachable!()
        };
        let a: CudaSlice<f32> = stream
            .clone_htod(&h)
            .map_err(|e| driver_err("cuMemAlloc + cuMemcpyHtoD (peak GEMM)", e))?;
        let b = a.clone();
        let mut c = a.clone();
        for i in 0..8 {
            let t = timer.time(stream, "peak f32 GEMM", || {
                gemm(&blas, size, size, size, &a, &b, &mut c, 1.0f32, 0.0f32).map_err(String::from)
            })?;
            if i >= 3 {
                times.push(t);
            }
        }
        flops_method = format!("cuBLAS f32 GEMM {size}^3");
    }
    Ok((flop / median(times), flops_method))
}
