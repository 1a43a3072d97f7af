//! Kernels neon-perf ships, and the per-context module cache that loads them.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use cudarc::driver::{CudaContext, CudaFunction, CudaModule};

use super::{CompileOptions, DeviceError, compile_ptx, driver_err};

/// The CUDA source of the built-in kernels.
pub const SOURCE: &str = include_str!("kernels/builtin.cu");
/// The name NVRTC messages use for it.
pub const NAME: &str = "neon-perf/builtin.cu";

/// Every kernel source compiled into the binary, `(name, source)`, for the
/// compile check in CI.
pub fn sources() -> Vec<(&'static str, &'static str)> {
    vec![(NAME, SOURCE)]
}

/// Compiles (or loads from the PTX cache) a source and loads it into `ctx`,
/// with errors naming the file and the failing call.
pub fn load_module(
    ctx: &Arc<CudaContext>,
    src: &str,
    name: &str,
    opts: &CompileOptions,
    cache_dir: &Path,
) -> Result<Arc<CudaModule>, DeviceError> {
    // Compile for this context's GPU (not GPU 0's) unless told otherwise.
    let mut opts = opts.clone();
    if opts.arch.is_none() {
        opts.arch = Some(super::arch_for(super::compute_capability(ctx)?));
    }
    let ptx =
        compile_ptx(src, name, &opts, cache_dir).map_err(|e| DeviceError::Kernel(e.to_string()))?;
    ctx.load_module(ptx.to_cudarc()).map_err(|e| {
        let mut msg = driver_err(
            &format!("cuModuleLoadData ({name}, PTX for {})", ptx.arch),
            e,
        );
        if format!("{:?}", e.0).contains("PTX") {
            msg.push_str(
                "; hint: the PTX comes from a newer NVRTC than this driver supports: \
                 use the NVRTC of the driver's CUDA version (see `neon-perf doctor`)",
            );
        }
        DeviceError::Kernel(msg)
    })
}

/// The built-in module for this context, compiled once per process.
pub fn module(ctx: &Arc<CudaContext>, cache_dir: &Path) -> Result<Arc<CudaModule>, DeviceError> {
    static MODS: OnceLock<Mutex<BTreeMap<usize, Arc<CudaModule>>>> = OnceLock::new();
    let mut map = MODS
        .get_or_init(|| Mutex::new(BTreeMap::new()))
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(m) = map.get(&ctx.ordinal()) {
        return Ok(m.clone());
    }
    let m = load_module(ctx, SOURCE, NAME, &CompileOptions::default(), cache_dir)?;
    map.insert(ctx.ordinal(), m.clone());
    Ok(m)
}

/// A function from a loaded module, with a message that says what to check.
pub fn function(
    module: &Arc<CudaModule>,
    name: &str,
    file: &str,
) -> Result<CudaFunction, DeviceError> {
    module.load_function(name).map_err(|e| {
        DeviceError::Kernel(format!(
            "{}; is `{name}` in {file} declared `extern \"C\" __global__`?",
            driver_err(&format!("cuModuleGetFunction(`{name}`)"), e)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_source_declares_every_kernel_the_executor_launches() {
        for k in [
            "np_copy_f32",
            "np_saxpy_f32",
            "np_reduce_partial",
            "np_reduce_final",
            "np_transpose_f32",
        ] {
            assert!(
                SOURCE.contains(&format!("extern \"C\" __global__ void {k}(")),
                "{k} missing from builtin.cu"
            );
        }
    }
}
