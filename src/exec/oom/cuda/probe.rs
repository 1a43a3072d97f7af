//! One `find_max_batch` probe on a GPU, inside `neon-perf oom-child --device
//! cuda:N`: open the device through candle, take all free device memory but
//! the usable amount with one filler allocation, build the model, run one
//! forward pass at one batch. On CUDA an out-of-memory is an error, not an
//! abort, so the child also proves in-process recovery: after the failed pass
//! it trims the memory pool, reads free memory again and runs batch 1.
//! Prints one JSON line ([`CudaProbeReport`]) for the parent.

use serde::{Deserialize, Serialize};

use crate::exec::oom::host::OomChildArgs;
use crate::plan::batch_sweep::ModelSpec;

/// What a CUDA probe child reports.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CudaProbeReport {
    pub batch: usize,
    pub fits: bool,
    /// Why the probe did not fit (the candle/driver error), or a setup error.
    pub error: String,
    /// The error was CUDA_ERROR_OUT_OF_MEMORY (or cuBLAS's allocation failure).
    pub oom: bool,
    /// Device memory free after the child's context and cuBLAS handle exist.
    pub free_start: u64,
    pub total: u64,
    /// Device memory the probe was allowed; `filler` bytes took the rest.
    pub usable: u64,
    pub filler: u64,
    /// Device memory in use from candle's pool at its high-water mark during
    /// the pass (weights + activations); `None` without a memory pool.
    pub model_peak: Option<u64>,
    /// Free device memory with the model loaded, before the pass.
    pub free_before_forward: u64,
    /// After a failed pass, its memory dropped and the pool trimmed.
    pub free_after_recovery: Option<u64>,
    /// After a failed pass: a batch-1 pass in the same process succeeded.
    pub retry_ok: Option<bool>,
    /// Device open (context, cuBLAS, cuRAND) and model build, seconds.
    pub device_init_seconds: f64,
    pub build_seconds: f64,
    /// The one forward pass at `batch` (kernel loading included), seconds.
    pub forward_seconds: f64,
}

/// Whether an error text is a device out-of-memory.
pub fn is_oom_text(e: &str) -> bool {
    e.contains("OUT_OF_MEMORY") || e.contains("ALLOC_FAILED") || e.contains("out of memory")
}

/// `cuda:N` or `cuda` → N.
pub fn ordinal_of(dev: &str) -> Result<usize, String> {
    match dev.strip_prefix("cuda") {
        Some("") => Ok(0),
        Some(n) => n
            .strip_prefix(':')
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("--device {dev}: expected cuda or cuda:N")),
        None => Err(format!("--device {dev}: expected cuda or cuda:N")),
    }
}

/// Entry of `oom-child --device cuda:N --model ..`: prints one JSON line.
pub fn child_main(dev: &str, model: &ModelSpec, args: &OomChildArgs) -> i32 {
    let ordinal = match ordinal_of(dev) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("oom-child: {e}");
            return 2;
        }
    };
    let base = args
        .base_dir
        .clone()
        .unwrap_or_else(|| std::path::PathBuf::from("."));
    let r = imp::probe(model, args.batch, &base, ordinal, args.limit, args.fraction);
    match serde_json::to_string(&r) {
        Ok(l) => {
            println!("{l}");
            0
        }
        Err(e) => {
            eprintln!("oom-child: {e}");
            1
        }
    }
}

#[cfg(not(feature = "cuda"))]
mod imp {
    use super::CudaProbeReport;
    use crate::plan::batch_sweep::ModelSpec;

    pub fn probe(
        _: &ModelSpec,
        batch: usize,
        _: &std::path::Path,
        _: usize,
        _: u64,
        _: f64,
    ) -> CudaProbeReport {
        CudaProbeReport {
            batch,
            error: crate::model::device::NO_CUDA_FEATURE.into(),
            ..Default::default()
        }
    }
}

#[cfg(feature = "cuda")]
mod imp {
    use std::path::Path;
    use std::time::Instant;

    use candle_core::Device;
    use cudarc::driver::result;

    use super::{CudaProbeReport, is_oom_text};
    use crate::model::device as mdev;
    use crate::model::{Model, Precision, Weights};
    use crate::plan::DeviceSel;
    use crate::plan::batch_sweep::ModelSpec;

    /// The filler: one cuMemAlloc, freed on drop.
    struct Filler(cudarc::driver::sys::CUdeviceptr);

    impl Drop for Filler {
        fn drop(&mut self) {
            // SAFETY: allocated by cuMemAlloc below, freed once.
            let _ = unsafe { result::free_sync(self.0) };
        }
    }

    fn forward(m: &Model, batch: usize, seed: u64) -> Result<(), String> {
        let x = m.input(batch, seed).map_err(|e| e.to_string())?;
        let y = m.forward(&x).map_err(|e| e.to_string())?;
        m.sync().map_err(|e| e.to_string())?;
        drop(y);
        Ok(())
    }

    pub fn probe(
        model: &ModelSpec,
        batch: usize,
        base_dir: &Path,
        ordinal: usize,
        limit: u64,
        fraction: f64,
    ) -> CudaProbeReport {
        let mut r = CudaProbeReport {
            batch,
            ..Default::default()
        };
        // cudarc panics on a missing library or symbol: a reason, not a crash.
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run(&mut r, model, batch, base_dir, ordinal, limit, fraction)
        }));
        std::panic::set_hook(hook);
        let err = match res {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(p) => Some(format!(
                "panic: {}",
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            )),
        };
        if let Some(e) = err {
            r.fits = false;
            r.oom = is_oom_text(&e);
            r.error = e;
        }
        r
    }

    fn run(
        r: &mut CudaProbeReport,
        model: &ModelSpec,
        batch: usize,
        base_dir: &Path,
        ordinal: usize,
        limit: u64,
        fraction: f64,
    ) -> Result<(), String> {
        let t = Instant::now();
        let (dev, _) = mdev::open(DeviceSel::Cuda(ordinal as u32))?;
        let Device::Cuda(cd) = &dev else {
            return Err("not a CUDA device".into());
        };
        let ctx = cd.cuda_stream().context().clone();
        ctx.bind_to_thread()
            .map_err(|e| format!("cuCtxSetCurrent: {e}"))?;
        r.device_init_seconds = t.elapsed().as_secs_f64();
        let free = |what: &str| {
            ctx.mem_get_info()
                .map(|(f, t)| (f as u64, t as u64))
                .map_err(|e| format!("cuMemGetInfo ({what}): {e}"))
        };
        let (free0, total) = free("start")?;
        r.free_start = free0;
        r.total = total;
        r.usable = if limit > 0 {
            limit.min(free0)
        } else {
            (fraction.clamp(0.0, 1.0) * free0 as f64) as u64
        };
        r.filler = free0 - r.usable;
        let _filler = if r.filler >= 1 << 20 {
            // SAFETY: plain device allocation, owned (and freed) by Filler.
            let p = unsafe { result::malloc_sync(r.filler as usize) }
                .map_err(|e| format!("filler cuMemAlloc({} bytes): {e}", r.filler))?;
            Some(Filler(p))
        } else {
            r.filler = 0;
            None
        };

        let t = Instant::now();
        let w = match &model.weights {
            Some(p) => Weights::load(&base_dir.join(p), model),
            None => Weights::random(model),
        }
        .map_err(|e| e.to_string())?;
        let m = Model::build(model, &w, Precision::of_model(model.dtype()), &dev)
            .map_err(|e| e.to_string())?;
        drop(w);
        m.sync().map_err(|e| e.to_string())?;
        r.build_seconds = t.elapsed().as_secs_f64();
        r.free_before_forward = free("model loaded")?.0;
        mdev::reset_peak(&dev);

        let t = Instant::now();
        let pass = forward(&m, batch, model.seed());
        r.forward_seconds = t.elapsed().as_secs_f64();
        r.model_peak = mdev::read_memory(&dev).and_then(|m| m.peak);
        match pass {
            Ok(()) => {
                r.fits = true;
                Ok(())
            }
            Err(e) => {
                r.error = e;
                r.oom = is_oom_text(&r.error);
                // Recover in this process: the failed pass's tensors are
                // dropped; give the pool's cached memory back and look.
                let _ = m.sync();
                crate::exec::oom::memory::settle(&ctx)?;
                r.free_after_recovery = Some(free("after recovery")?.0);
                r.retry_ok = Some(forward(&m, 1, model.seed()).is_ok());
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_and_oom_texts() {
        assert_eq!(ordinal_of("cuda"), Ok(0));
        assert_eq!(ordinal_of("cuda:3"), Ok(3));
        assert!(ordinal_of("cuda:x").is_err());
        assert!(ordinal_of("cpu").is_err());
        assert!(is_oom_text(
            "DriverError(CUDA_ERROR_OUT_OF_MEMORY, \"out of memory\")"
        ));
        assert!(is_oom_text("cublas error: CUBLAS_STATUS_ALLOC_FAILED"));
        assert!(!is_oom_text("DriverError(CUDA_ERROR_ILLEGAL_ADDRESS, ..)"));
    }
}
