//! Where a model runs: picking a candle device from `device = ..`, telling
//! why CUDA is unavailable (never panicking when the driver is absent), and
//! measuring memory per batch (host RSS growth, or device memory on CUDA).

use candle_core::Device;

use crate::plan::DeviceSel;

/// Reason shown when a CUDA scenario meets a binary built without CUDA.
pub const NO_CUDA_FEATURE: &str =
    "built without the `cuda` feature: cargo build --release --features cuda";

/// `None` when `sel` can be opened here; otherwise why not. Cheap: loads the
/// driver library and counts devices, creates no context.
pub fn unavailable(sel: DeviceSel) -> Option<String> {
    match sel {
        DeviceSel::Cpu | DeviceSel::Auto => None,
        DeviceSel::Cuda(n) => cuda::unavailable(n as usize),
        DeviceSel::AllGpus => cuda::unavailable(0),
    }
}

/// Opens the device: `auto` is CUDA device 0 when usable, else the CPU.
/// Returns the device and a description ("cpu", "cuda:0 NVIDIA H100 ...").
pub fn open(sel: DeviceSel) -> Result<(Device, String), String> {
    match sel {
        DeviceSel::Cpu => Ok((Device::Cpu, "cpu".into())),
        DeviceSel::Auto => match cuda::unavailable(0) {
            None => cuda::open(0),
            Some(_) => Ok((Device::Cpu, "cpu".into())),
        },
        DeviceSel::Cuda(n) => cuda::open(n as usize),
        DeviceSel::AllGpus => cuda::open(0),
    }
}

/// Memory in use as seen by one probe: host RSS, or device memory.
#[derive(Clone, Copy, Debug, Default)]
pub struct MemReading {
    /// Bytes in use now: RSS, or on CUDA memory in use from the pool candle
    /// allocates from (total − free on the device when there is no pool).
    pub current: u64,
    /// Peak since the last [`reset_peak`] (VmHWM, or the CUDA memory pool's
    /// used high-water mark); `None` when the platform cannot tell.
    pub peak: Option<u64>,
}

/// Resets the peak counter of `dev`'s memory (best effort).
pub fn reset_peak(dev: &Device) {
    if dev.is_cuda() {
        cuda::reset_pool_peak(dev);
    } else {
        host::reset_peak();
    }
}

/// Reads `dev`'s memory use.
pub fn read_memory(dev: &Device) -> Option<MemReading> {
    if dev.is_cuda() {
        cuda::read(dev)
    } else {
        host::read()
    }
}

/// Host memory of this process, from /proc (Linux only; `None` elsewhere).
pub mod host {
    use super::MemReading;

    fn status_kib(field: &str) -> Option<u64> {
        let s = std::fs::read_to_string("/proc/self/status").ok()?;
        s.lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Resident set size now, bytes.
    pub fn rss() -> Option<u64> {
        status_kib("VmRSS:").map(|k| k * 1024)
    }

    /// Peak resident set size since start or the last reset, bytes.
    pub fn peak_rss() -> Option<u64> {
        status_kib("VmHWM:").map(|k| k * 1024)
    }

    /// Writing 5 to clear_refs resets VmHWM to the current RSS (Linux ≥ 4.0).
    pub fn reset_peak() {
        let _ = std::fs::write("/proc/self/clear_refs", "5");
    }

    pub fn read() -> Option<MemReading> {
        Some(MemReading {
            current: rss()?,
            peak: peak_rss(),
        })
    }
}

#[cfg(not(feature = "cuda"))]
mod cuda {
    use candle_core::Device;

    use super::{MemReading, NO_CUDA_FEATURE};

    pub fn unavailable(_ordinal: usize) -> Option<String> {
        Some(NO_CUDA_FEATURE.into())
    }

    pub fn open(_ordinal: usize) -> Result<(Device, String), String> {
        Err(NO_CUDA_FEATURE.into())
    }

    pub fn reset_pool_peak(_dev: &Device) {}

    pub fn read(_dev: &Device) -> Option<MemReading> {
        None
    }
}

#[cfg(feature = "cuda")]
mod cuda {
    use std::panic::{AssertUnwindSafe, catch_unwind};

    use candle_core::Device;
    use cudarc::driver::sys;

    use super::MemReading;

    /// Runs `f`, turning a panic (cudarc panics on a missing symbol or
    /// library) into an error message.
    fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
        // The panic is reported as the reason; keep the default hook from
        // also printing it with a backtrace.
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let r = catch_unwind(AssertUnwindSafe(f));
        std::panic::set_hook(hook);
        match r {
            Ok(r) => r,
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "unknown panic".into());
                Err(format!("{what}: {msg}"))
            }
        }
    }

    pub fn unavailable(ordinal: usize) -> Option<String> {
        // SAFETY: only tries to dlopen the driver library.
        if !unsafe { sys::is_culib_present() } {
            return Some("no CUDA driver found (libcuda.so.1 could not be loaded)".into());
        }
        let count = guarded("CUDA driver", || {
            cudarc::driver::CudaContext::device_count().map_err(|e| format!("CUDA driver: {e}"))
        });
        match count {
            Err(e) => Some(e),
            Ok(0) => Some("no CUDA device found".into()),
            Ok(n) if ordinal >= n as usize => Some(format!("no CUDA device {ordinal}: found {n}")),
            Ok(_) => None,
        }
    }

    pub fn open(ordinal: usize) -> Result<(Device, String), String> {
        if let Some(why) = unavailable(ordinal) {
            return Err(why);
        }
        guarded("opening the CUDA device", || {
            let dev = Device::new_cuda(ordinal).map_err(|e| format!("cuda:{ordinal}: {e}"))?;
            let name = dev
                .as_cuda_device()
                .ok()
                .and_then(|c| c.cuda_stream().context().name().ok())
                .unwrap_or_default();
            Ok((dev, format!("cuda:{ordinal} {name}").trim_end().to_string()))
        })
    }

    /// The memory pool cuMemAllocAsync draws from (candle allocates through it
    /// when the device supports memory pools).
    fn pool(dev: &Device) -> Option<sys::CUmemoryPool> {
        let ctx = dev.as_cuda_device().ok()?.cuda_stream().context().clone();
        if !ctx.has_async_alloc() {
            return None;
        }
        let mut pool: sys::CUmemoryPool = std::ptr::null_mut();
        // SAFETY: out-pointer to a local; the device handle comes from a live context.
        let r = unsafe { sys::cuDeviceGetMemPool(&mut pool, ctx.cu_device()) };
        (r == sys::CUresult::CUDA_SUCCESS && !pool.is_null()).then_some(pool)
    }

    pub fn reset_pool_peak(dev: &Device) {
        let _ = guarded("mempool", || {
            if let Some(p) = pool(dev) {
                let mut zero: u64 = 0;
                // SAFETY: USED_MEM_HIGH takes a cuuint64_t; 0 resets it.
                unsafe {
                    sys::cuMemPoolSetAttribute(
                        p,
                        sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_USED_MEM_HIGH,
                        (&mut zero as *mut u64).cast(),
                    )
                };
            }
            Ok(())
        });
    }

    fn pool_attr(p: sys::CUmemoryPool, attr: sys::CUmemPool_attribute) -> Option<u64> {
        let mut v: u64 = 0;
        // SAFETY: the USED_MEM_* attributes write one cuuint64_t.
        let r = unsafe { sys::cuMemPoolGetAttribute(p, attr, (&mut v as *mut u64).cast()) };
        (r == sys::CUresult::CUDA_SUCCESS).then_some(v)
    }

    /// With candle allocating from the device's memory pool: bytes in use
    /// from the pool now and its high-water mark. Without a pool: device
    /// memory in use (total − free, all processes) and no peak.
    pub fn read(dev: &Device) -> Option<MemReading> {
        use sys::CUmemPool_attribute::{
            CU_MEMPOOL_ATTR_USED_MEM_CURRENT, CU_MEMPOOL_ATTR_USED_MEM_HIGH,
        };
        guarded("device memory", || {
            if let Some(p) = pool(dev) {
                if let Some(current) = pool_attr(p, CU_MEMPOOL_ATTR_USED_MEM_CURRENT) {
                    return Ok(MemReading {
                        current,
                        peak: pool_attr(p, CU_MEMPOOL_ATTR_USED_MEM_HIGH),
                    });
                }
            }
            let cd = dev.as_cuda_device().map_err(|e| e.to_string())?;
            let (free, total) = cd
                .cuda_stream()
                .context()
                .mem_get_info()
                .map_err(|e| e.to_string())?;
            Ok(MemReading {
                current: (total - free) as u64,
                peak: None,
            })
        })
        .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_always_opens() {
        assert_eq!(open(DeviceSel::Cpu).unwrap().1, "cpu");
        assert!(unavailable(DeviceSel::Cpu).is_none());
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_says_how_to_build() {
        assert_eq!(
            unavailable(DeviceSel::Cuda(0)).as_deref(),
            Some(NO_CUDA_FEATURE)
        );
        assert_eq!(open(DeviceSel::Auto).unwrap().1, "cpu");
    }

    #[cfg(feature = "cuda")]
    #[test]
    fn cuda_probe_never_panics() {
        // With or without a GPU: a reason or a device, never a panic.
        match unavailable(DeviceSel::Cuda(0)) {
            Some(why) => assert!(!why.is_empty()),
            None => assert!(open(DeviceSel::Cuda(0)).is_ok()),
        }
    }

    #[test]
    fn host_memory_reads() {
        let m = read_memory(&Device::Cpu).unwrap();
        assert!(m.current > 0);
        assert!(m.peak.unwrap() >= m.current / 2);
    }
}
