//! The CUDA side of neon-perf, through cudarc (driver, NVRTC, cuBLAS) and
//! NVML: whether CUDA is usable here, a per-process context cache, NVRTC
//! compilation with a PTX cache, `doctor`, the hardware key, and the pieces
//! the `gpu_kernel` and `oom_stress` executors share (expressions, launch
//! configurations, typed buffers, built-in kernels, measured peaks).
//!
//! cudarc is built with `dynamic-loading`: every library is looked up at run
//! time, and a missing library or symbol panics inside cudarc. Everything
//! here checks `is_culib_present()` first and runs the first calls under
//! `catch_unwind`, so a host without CUDA gets a reason, never a panic.

pub mod buffers;
pub mod builtin;
pub mod doctor;
pub mod launch;
pub mod nvrtc;
pub mod peaks;
pub mod throttle;

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, OnceLock};

use cudarc::driver::{CudaContext, DriverError, sys};
use nvml_wrapper::Nvml;

use crate::baseline::key::GpuKey;

pub use doctor::{DoctorReport, probe};
pub use nvrtc::{CompileError, CompileOptions, Ptx, compile_ptx, nvrtc_unavailable_reason};

/// Why the GPU could not be used: the error of the device layer's entry
/// points ([`gpu_count`], [`context`], [`nvml`], [`gpu_keys`], and the
/// buffers, launches, kernels and peaks the executors use). Its text is
/// what users read; callers decide from the variant whether a scenario is
/// ignored (CUDA is not usable here) or failed (a call went wrong).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum DeviceError {
    /// No usable CUDA here: no driver, no GPU, or a driver that does not
    /// load (the sentence `doctor` shows).
    #[error("{0}")]
    NoCuda(String),
    /// A GPU beyond the ones visible.
    #[error(
        "cuda:{ordinal} requested but only {count} GPU(s) are visible (CUDA_VISIBLE_DEVICES={visible})"
    )]
    NoSuchGpu {
        ordinal: usize,
        count: i32,
        visible: String,
    },
    /// A CUDA driver call failed, or cudarc panicked inside one (a missing
    /// library or symbol): the call and the driver's words.
    #[error("{0}")]
    Driver(String),
    /// NVML is not there or does not initialise.
    #[error("{0}")]
    Nvml(String),
    /// Kernel source that does not compile or load, or an entry point the
    /// module lacks (NVRTC's log or the driver's words, with a hint).
    #[error("{0}")]
    Kernel(String),
    /// A value CUDA cannot take: host data of the wrong length or type, a
    /// scalar out of range, launch dimensions over CUDA's limits.
    #[error("{0}")]
    Invalid(String),
}

/// For the GPU code that still passes messages along as strings.
impl From<DeviceError> for String {
    fn from(e: DeviceError) -> String {
        e.to_string()
    }
}

/// Runs `f`, turning a panic (cudarc's reaction to a missing library or
/// symbol) into an error message.
pub(crate) fn guarded<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown panic".into());
        format!("{what}: {msg}")
    })
}

/// Adds what to do to a cudarc panic message (a missing library or symbol).
pub fn panic_hint(msg: String) -> String {
    if msg.contains("Missing symbol") {
        format!(
            "{msg}; hint: the CUDA driver is older than the CUDA 13.0 API neon-perf is built against \
             (driver CUDA version: {}), update the driver",
            cuda_driver_version()
                .map(|v| format!("{}.{}", v / 1000, v % 1000 / 10))
                .unwrap_or_else(|| "unknown".into())
        )
    } else if msg.contains("Unable to dynamically load") {
        format!("{msg}; hint: run `neon-perf doctor` to see which CUDA libraries are found")
    } else {
        msg
    }
}

/// "cuMemAlloc failed: CUDA_ERROR_OUT_OF_MEMORY (out of memory)".
pub fn driver_err(call: &str, e: DriverError) -> String {
    let text = e
        .error_string()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "no description".into());
    format!("{call} failed: {:?} ({text})", e.0)
}

/// Whether a driver error is CUDA_ERROR_OUT_OF_MEMORY.
pub fn is_oom(e: &DriverError) -> bool {
    e.0 == sys::CUresult::CUDA_ERROR_OUT_OF_MEMORY
}

/// `None` when libcuda loads and at least one GPU is visible; otherwise why not.
pub fn cuda_unavailable_reason() -> Option<String> {
    static REASON: OnceLock<Option<String>> = OnceLock::new();
    REASON.get_or_init(compute_cuda_reason).clone()
}

fn compute_cuda_reason() -> Option<String> {
    // SAFETY: only tries to dlopen the candidate library names.
    if !unsafe { sys::is_culib_present() } {
        return Some("no CUDA driver found (libcuda.so could not be loaded)".into());
    }
    match guarded("CUDA driver unusable", CudaContext::device_count) {
        Err(msg) => Some(msg),
        Ok(Err(e)) if e.0 == sys::CUresult::CUDA_ERROR_NO_DEVICE => {
            Some("CUDA driver found but no GPU".into())
        }
        Ok(Err(e)) => Some(format!(
            "CUDA driver found but unusable: {}",
            driver_err("cuInit/cuDeviceGetCount", e)
        )),
        Ok(Ok(0)) => Some("CUDA driver found but no GPU".into()),
        Ok(Ok(_)) => None,
    }
}

/// How many GPUs the CUDA driver sees (after `CUDA_VISIBLE_DEVICES`); an
/// error says why CUDA is unusable.
pub fn gpu_count() -> Result<usize, DeviceError> {
    if let Some(reason) = cuda_unavailable_reason() {
        return Err(DeviceError::NoCuda(reason));
    }
    Ok(device_count()?.max(0) as usize)
}

fn device_count() -> Result<i32, DeviceError> {
    guarded("cuDeviceGetCount", CudaContext::device_count)
        .map_err(DeviceError::Driver)?
        .map_err(|e| DeviceError::Driver(driver_err("cuDeviceGetCount", e)))
}

/// The primary context of GPU `ordinal`, created once per process and kept:
/// creating a context costs hundreds of milliseconds and would otherwise be
/// paid by every scenario.
pub fn context(ordinal: usize) -> Result<Arc<CudaContext>, DeviceError> {
    if let Some(reason) = cuda_unavailable_reason() {
        return Err(DeviceError::NoCuda(reason));
    }
    static CTXS: OnceLock<Mutex<BTreeMap<usize, Arc<CudaContext>>>> = OnceLock::new();
    let mut map = CTXS
        .get_or_init(|| Mutex::new(BTreeMap::new()))
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(ctx) = map.get(&ordinal) {
        ctx.bind_to_thread()
            .map_err(|e| DeviceError::Driver(driver_err("cuCtxSetCurrent", e)))?;
        return Ok(ctx.clone());
    }
    let count = device_count()?;
    if ordinal >= count.max(0) as usize {
        return Err(DeviceError::NoSuchGpu {
            ordinal,
            count,
            visible: std::env::var("CUDA_VISIBLE_DEVICES").unwrap_or_else(|_| "unset".into()),
        });
    }
    let ctx = guarded("creating the CUDA context", || CudaContext::new(ordinal))
        .map_err(DeviceError::Driver)?
        .map_err(|e| {
            DeviceError::Driver(driver_err(
                &format!("cuDevicePrimaryCtxRetain (cuda:{ordinal})"),
                e,
            ))
        })?;
    map.insert(ordinal, ctx.clone());
    Ok(ctx)
}

/// Held by every GPU executor while it runs: scenarios on the GPU never
/// overlap, even when the harness runs tests on several threads (they would
/// share the GPU and its default stream, and distort each other's timings).
pub fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    static GPU: Mutex<()> = Mutex::new(());
    GPU.lock().unwrap_or_else(|p| p.into_inner())
}

/// A device attribute, with the attribute named in the error.
pub fn attribute(ctx: &CudaContext, attr: sys::CUdevice_attribute) -> Result<i32, DeviceError> {
    ctx.attribute(attr)
        .map_err(|e| DeviceError::Driver(driver_err(&format!("cuDeviceGetAttribute({attr:?})"), e)))
}

/// `(major, minor)` compute capability.
pub fn compute_capability(ctx: &CudaContext) -> Result<(i32, i32), DeviceError> {
    ctx.compute_capability()
        .map_err(|e| DeviceError::Driver(driver_err("cuDeviceGetAttribute(COMPUTE_CAPABILITY)", e)))
}

/// `compute_90` for a 9.0 device: the NVRTC `--gpu-architecture` value.
pub fn arch_for(cc: (i32, i32)) -> String {
    format!("compute_{}{}", cc.0, cc.1)
}

/// CUDA driver API version (e.g. 13000), from `cuDriverGetVersion`.
pub fn cuda_driver_version() -> Option<u32> {
    if !unsafe { sys::is_culib_present() } {
        return None;
    }
    guarded("cuDriverGetVersion", || {
        let mut v: std::ffi::c_int = 0;
        // SAFETY: writes one int.
        let r = unsafe { sys::cuDriverGetVersion(&mut v) };
        (r == sys::CUresult::CUDA_SUCCESS).then_some(v as u32)
    })
    .ok()
    .flatten()
}

/// NVML, initialised once per process; `Err` says why it is unavailable.
pub fn nvml() -> Result<&'static Nvml, DeviceError> {
    static NVML: OnceLock<Result<Nvml, String>> = OnceLock::new();
    NVML.get_or_init(|| {
        guarded("NVML", Nvml::init).and_then(|r| r.map_err(|e| format!("NVML unavailable: {e}")))
    })
    .as_ref()
    .map_err(|e| DeviceError::Nvml(e.clone()))
}

/// "580.65.06" → 580.
pub fn driver_major(version: &str) -> u32 {
    version
        .split('.')
        .next()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// The GPU part of the baseline hardware key, one per visible GPU, from NVML
/// (preferred) or the CUDA driver (MIG unknown → false, power limit → 0).
pub fn gpu_keys() -> Result<Vec<GpuKey>, DeviceError> {
    let nvml_err = match nvml() {
        Ok(nvml) => match nvml_gpu_keys(nvml) {
            Ok(keys) => return Ok(keys),
            Err(e) => e,
        },
        Err(e) => e.to_string(),
    };
    cuda_gpu_keys().map_err(|e| DeviceError::Nvml(format!("{nvml_err}; and {e}")))
}

fn nvml_gpu_keys(nvml: &Nvml) -> Result<Vec<GpuKey>, String> {
    let count = nvml
        .device_count()
        .map_err(|e| format!("nvmlDeviceGetCount failed: {e}"))?;
    let driver = nvml
        .sys_driver_version()
        .map_err(|e| format!("nvmlSystemGetDriverVersion failed: {e}"))?;
    let cuda = nvml
        .sys_cuda_driver_version()
        .map(|v| v as u32)
        .or_else(|_| cuda_driver_version().ok_or(()))
        .unwrap_or(0);
    let mut keys = Vec::new();
    for i in 0..count {
        let d = nvml
            .device_by_index(i)
            .map_err(|e| format!("nvmlDeviceGetHandleByIndex({i}) failed: {e}"))?;
        keys.push(GpuKey {
            name: d
                .name()
                .map_err(|e| format!("nvmlDeviceGetName({i}) failed: {e}"))?,
            memory_bytes: d
                .memory_info()
                .map_err(|e| format!("nvmlDeviceGetMemoryInfo({i}) failed: {e}"))?
                .total,
            driver_major: driver_major(&driver),
            cuda_version: cuda,
            mig: d.mig_mode().map(|m| m.current == 1).unwrap_or(false),
            ecc: d
                .is_ecc_enabled()
                .map(|e| e.currently_enabled)
                .unwrap_or(false),
            power_limit_w: d
                .power_management_limit()
                .map(|mw| (mw as f64 / 1000.0).round() as u32)
                .unwrap_or(0),
        });
    }
    Ok(keys)
}

fn cuda_gpu_keys() -> Result<Vec<GpuKey>, String> {
    if let Some(r) = cuda_unavailable_reason() {
        return Err(r);
    }
    let count = device_count()?;
    let cuda = cuda_driver_version().unwrap_or(0);
    let mut keys = Vec::new();
    for i in 0..count.max(0) as usize {
        let ctx = context(i)?;
        keys.push(GpuKey {
            name: ctx.name().map_err(|e| driver_err("cuDeviceGetName", e))?,
            memory_bytes: ctx
                .total_mem()
                .map_err(|e| driver_err("cuDeviceTotalMem", e))? as u64,
            driver_major: 0,
            cuda_version: cuda,
            mig: false,
            ecc: attribute(
                &ctx,
                sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_ECC_ENABLED,
            )? != 0,
            power_limit_w: 0,
        });
    }
    Ok(keys)
}

/// The hardware key of this host: CPU model and cores, plus GPUs when found.
pub fn hardware_key() -> crate::baseline::HardwareKey {
    crate::baseline::HardwareKey {
        cpu_model: crate::host::cpu_model(),
        cpu_cores: crate::host::cpu_cores(),
        gpus: gpu_keys().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn availability_without_cuda_is_a_reason_not_a_panic() {
        // On a GPU host this is None; elsewhere it must be a plain sentence.
        match cuda_unavailable_reason() {
            None => assert!(context(0).is_ok()),
            Some(r) => {
                assert!(r.contains("CUDA"), "{r}");
                assert_eq!(context(0).unwrap_err(), DeviceError::NoCuda(r));
                assert!(gpu_keys().is_err() || nvml().is_ok());
            }
        }
    }

    #[test]
    fn arch_and_driver_major() {
        assert_eq!(arch_for((9, 0)), "compute_90");
        assert_eq!(arch_for((8, 6)), "compute_86");
        assert_eq!(driver_major("580.65.06"), 580);
        assert_eq!(driver_major("garbage"), 0);
    }

    #[test]
    fn guarded_turns_panics_into_messages() {
        let r: Result<(), String> = guarded("loading libfoo", || panic!("no such library"));
        assert_eq!(r.unwrap_err(), "loading libfoo: no such library");
        assert_eq!(guarded("x", || 3), Ok(3));
    }
}
