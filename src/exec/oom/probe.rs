//! The probe after recovery: saxpy on 1M elements through the built-in
//! kernel (NVRTC), or, without NVRTC, a device-to-device copy checked on the
//! host. Either proves the context still computes correctly.

use std::sync::Arc;

use cudarc::driver::{CudaContext, CudaSlice, CudaStream, PushKernelArg};

use crate::device::buffers::{DevBuf, HostData, Scalar, compare};
use crate::device::{self, driver_err};
use crate::plan::gpu_kernel::Dtype;

const N: usize = 1 << 20;

/// What the probe verified, or why it failed.
pub(super) fn probe_kernel(
    ctx: &Arc<CudaContext>,
    stream: &Arc<CudaStream>,
    cache_dir: &std::path::Path,
) -> Result<String, String> {
    let x = HostData::random(Dtype::F32, N, 11);
    let y = HostData::random(Dtype::F32, N, 12);
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
            saxpy(stream, &f, (&dx, &dy), (xv, yv))
        }
        Err(nvrtc) => copy(stream, &dx, &dy, xv, &nvrtc.to_string()),
    }
}

/// z = 2·x + y on the device, compared exactly with the host's.
fn saxpy(
    stream: &Arc<CudaStream>,
    f: &cudarc::driver::CudaFunction,
    (dx, dy): (&CudaSlice<f32>, &CudaSlice<f32>),
    (xv, yv): (&[f32], &[f32]),
) -> Result<String, String> {
    let mut z = DevBuf::poisoned(stream, Dtype::F32, N, "z")?;
    let DevBuf::F32(zs) = &mut z else {
        unreachable!()
    };
    let a = Scalar::F32(2.0);
    let nn = N as u64;
    let cfg = device::launch::derive(Some(&[(N / 4) as i64]), Some(&[256]), None, 0)?;
    let mut b = stream.launch_builder(f);
    b.arg(dx).arg(dy).arg(&*zs);
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
        N,
        |i| got.get(i),
        |i| 2.0f32.mul_add(xv[i], yv[i]) as f64,
        0.0,
        0.0,
    );
    if r.passed() {
        Ok(format!("saxpy on {N} f32, exact"))
    } else {
        Err(r.evidence("saxpy probe", 0.0, 0.0))
    }
}

/// Without NVRTC: x copied over y on the device, read back and compared.
fn copy(
    stream: &Arc<CudaStream>,
    dx: &CudaSlice<f32>,
    dy: &CudaSlice<f32>,
    xv: &[f32],
    nvrtc: &str,
) -> Result<String, String> {
    let mut dz = dy.clone();
    stream
        .memcpy_dtod(dx, &mut dz)
        .map_err(|e| driver_err("probe cuMemcpyDtoD", e))?;
    let got = stream
        .clone_dtoh(&dz)
        .map_err(|e| driver_err("probe cuMemcpyDtoH", e))?;
    if got == *xv {
        Ok(format!(
            "device copy of {N} f32 verified (no kernel: {nvrtc})"
        ))
    } else {
        Err("device copy probe returned wrong data".into())
    }
}
