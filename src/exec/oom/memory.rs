//! Device memory as the out-of-memory scenarios read it: settle the
//! allocator's cache, read free memory, and the pure recovery verdict.
//! Shared by the device stress (`mod.rs`) and the model search (`cuda`).

use std::sync::Arc;

use cudarc::driver::{CudaContext, sys};

use crate::device::driver_err;

/// Releases memory cached by the stream-ordered allocator (earlier
/// scenarios' buffers), so free memory reflects what is really held.
pub(crate) fn settle(ctx: &Arc<CudaContext>) -> Result<(), String> {
    ctx.synchronize()
        .map_err(|e| driver_err("cuCtxSynchronize", e))?;
    if ctx.has_async_alloc() {
        let mut pool: sys::CUmemoryPool = std::ptr::null_mut();
        // SAFETY: queries the device's default pool and trims it to zero.
        unsafe {
            sys::cuDeviceGetDefaultMemPool(&mut pool, ctx.cu_device())
                .result()
                .map_err(|e| driver_err("cuDeviceGetDefaultMemPool", e))?;
            sys::cuMemPoolTrimTo(pool, 0)
                .result()
                .map_err(|e| driver_err("cuMemPoolTrimTo", e))?;
        }
    }
    Ok(())
}

pub(super) fn free_mem(ctx: &Arc<CudaContext>) -> Result<(u64, u64), String> {
    ctx.mem_get_info()
        .map(|(f, t)| (f as u64, t as u64))
        .map_err(|e| driver_err("cuMemGetInfo", e))
}

/// Recovery verdict, pure: free memory back within `tolerance` of `before`.
pub fn memory_returned(before: u64, after: u64, tolerance: u64) -> bool {
    after.saturating_add(tolerance) >= before
}
