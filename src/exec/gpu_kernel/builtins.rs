//! Built-in kernels of `gpu_kernel`: copy, saxpy, reduction and transpose
//! (NVRTC-compiled, shipped in the binary) and the cuBLAS GEMMs, each with
//! its own host-side correctness check.

use std::path::Path;
use std::sync::Arc;

use cudarc::driver::{CudaContext, CudaFunction, CudaSlice, CudaStream, sys};
use half::{bf16, f16};

use super::{
    ArgVal, DEFAULT_SEED, PointEnv, PointMeasure, Step, StepSpec, buf, launch, run_steps, sync,
};
use crate::device::buffers::{CompareReport, DevBuf, HostData, Scalar, compare, rel_l2_error};
use crate::device::launch::{LaunchDims, derive};
use crate::device::peaks::{blas, gemm};
use crate::device::{self, builtin};
use crate::metric::ChecklistItem;
use crate::plan::gpu_kernel::{Builtin, Dtype};
use crate::result::Check;

pub(super) fn run_builtin_point(
    env: &mut PointEnv<'_>,
    b: Builtin,
    cctx: &Arc<CudaContext>,
    cache_dir: &Path,
    on_sample: &mut dyn FnMut(usize),
) -> Result<PointMeasure, String> {
    match b {
        Builtin::Sgemm | Builtin::Hgemm | Builtin::Bf16gemm => run_gemm_point(env, b, on_sample),
        Builtin::P2pCopy => Err("p2p_copy runs across GPUs, not per GPU".into()),
        _ => {
            let module = builtin::module(cctx, cache_dir)?;
            run_builtin_kernel_point(env, b, &module, cctx, on_sample)
        }
    }
}

fn exact_check(name: &str, what: &str, r: CompareReport) -> Check {
    Check::new(
        format!("builtin {name} output is exact"),
        r.passed(),
        format!(
            "{}; timed with CUDA events, read after cuEventSynchronize",
            r.evidence(what, 0.0, 0.0)
        ),
        Some(ChecklistItem::CudaSync),
    )
}

/// A built-in kernel's point, ready to time: its arguments, its launch
/// steps, the check of its first run, and its bytes and FLOPs per run.
struct Prepared {
    vals: Vec<ArgVal>,
    steps: Vec<StepSpec<'static>>,
    check: Check,
    bytes: f64,
    flops: Option<f64>,
}

/// Loads a built-in kernel by name.
type Load<'m> = &'m dyn Fn(&str) -> Result<CudaFunction, String>;

fn run_builtin_kernel_point(
    env: &mut PointEnv<'_>,
    b: Builtin,
    module: &Arc<cudarc::driver::CudaModule>,
    cctx: &Arc<CudaContext>,
    on_sample: &mut dyn FnMut(usize),
) -> Result<PointMeasure, String> {
    let stream = env.stream;
    let f = |n: &str| builtin::function(module, n, builtin::NAME).map_err(String::from);
    let id = b.id();
    let p = match b {
        Builtin::Copy => copy_point(env, &f)?,
        Builtin::Saxpy => saxpy_point(env, &f)?,
        Builtin::Reduction => reduction_point(env, &f, cctx)?,
        Builtin::Transpose => transpose_point(env, &f)?,
        _ => unreachable!("GEMMs run through cuBLAS"),
    };
    let fns: Vec<CudaFunction> = p
        .steps
        .iter()
        .map(|(n, _, _)| f(n))
        .collect::<Result<_, _>>()?;
    let steps: Vec<Step<'_>> = p
        .steps
        .iter()
        .zip(&fns)
        .map(|((name, cfg, idx), func)| Step {
            f: func,
            name,
            cfg: *cfg,
            args: idx.clone(),
        })
        .collect();
    let vals = p.vals;
    let (times, report) = env.measure(id, || run_steps(stream, &steps, &vals), on_sample)?;
    Ok(PointMeasure {
        times,
        report,
        bytes: env.eval_opt(&env.spec.bytes, "bytes")?.or(Some(p.bytes)),
        flops: env.eval_opt(&env.spec.flops, "flops")?.or(p.flops),
        check: Some(p.check),
        warnings: Vec::new(),
    })
}

/// Launches built-in kernel `name` once and waits for it (`what` names it
/// in an error).
fn launch_once(
    stream: &CudaStream,
    f: Load<'_>,
    name: &str,
    cfg: LaunchDims,
    (vals, idx): (&[ArgVal], &[usize]),
    what: &str,
) -> Result<(), String> {
    launch(stream, &f(name)?, name, cfg, vals, idx)?;
    sync(stream, what)
}

fn seed(env: &PointEnv<'_>) -> u64 {
    env.spec.seed.unwrap_or(DEFAULT_SEED)
}

/// copy and saxpy: one thread per 4 elements, blocks of 256.
fn elementwise_launch(n: usize) -> Result<LaunchDims, String> {
    let threads = ((n / 4).max(n % 4)).max(1) as i64;
    derive(Some(&[threads]), Some(&[256]), None, 0).map_err(String::from)
}

/// y = x, checked exactly.
fn copy_point(env: &PointEnv<'_>, f: Load<'_>) -> Result<Prepared, String> {
    let stream = env.stream;
    let n = env.param("n", None)? as usize;
    let x = HostData::random(Dtype::F32, n, seed(env));
    let cfg = elementwise_launch(n)?;
    let vals = vec![
        ArgVal::Buf(DevBuf::upload(stream, &x, "x")?),
        ArgVal::Buf(DevBuf::poisoned(stream, Dtype::F32, n, "y")?),
        ArgVal::Scalar(Scalar::U64(n as u64)),
    ];
    launch_once(
        stream,
        f,
        "np_copy_f32",
        cfg,
        (&vals, &[0, 1, 2]),
        "builtin copy",
    )?;
    let y = buf(&vals, 1).download(stream, "y")?;
    let check = exact_check(
        Builtin::Copy.id(),
        "y = x",
        compare(n, |i| y.get(i), |i| x.get(i), 0.0, 0.0),
    );
    Ok(Prepared {
        vals,
        steps: vec![("np_copy_f32", cfg, vec![0, 1, 2])],
        check,
        bytes: 8.0 * n as f64,
        flops: None,
    })
}

/// z = a·x + y (one fused multiply-add), checked exactly.
fn saxpy_point(env: &PointEnv<'_>, f: Load<'_>) -> Result<Prepared, String> {
    let stream = env.stream;
    let n = env.param("n", None)? as usize;
    let seed = seed(env);
    let x = HostData::random(Dtype::F32, n, seed);
    let cfg = elementwise_launch(n)?;
    let y = HostData::random(Dtype::F32, n, seed.wrapping_add(1));
    let a = 2.0f32;
    let vals = vec![
        ArgVal::Buf(DevBuf::upload(stream, &x, "x")?),
        ArgVal::Buf(DevBuf::upload(stream, &y, "y")?),
        ArgVal::Buf(DevBuf::poisoned(stream, Dtype::F32, n, "z")?),
        ArgVal::Scalar(Scalar::F32(a)),
        ArgVal::Scalar(Scalar::U64(n as u64)),
    ];
    let idx = vec![0, 1, 2, 3, 4];
    launch_once(
        stream,
        f,
        "np_saxpy_f32",
        cfg,
        (&vals, &idx),
        "builtin saxpy",
    )?;
    let z = buf(&vals, 2).download(stream, "z")?;
    let (HostData::F32(xv), HostData::F32(yv)) = (&x, &y) else {
        unreachable!()
    };
    let check = exact_check(
        Builtin::Saxpy.id(),
        "z = fma(a, x, y)",
        compare(
            n,
            |i| z.get(i),
            |i| a.mul_add(xv[i], yv[i]) as f64,
            0.0,
            0.0,
        ),
    );
    Ok(Prepared {
        vals,
        steps: vec![("np_saxpy_f32", cfg, idx)],
        check,
        bytes: 12.0 * n as f64,
        flops: Some(2.0 * n as f64),
    })
}

/// The sum of x in two launches (partial sums per block, then one block),
/// checked against the host's f64 sum.
fn reduction_point(
    env: &PointEnv<'_>,
    f: Load<'_>,
    cctx: &Arc<CudaContext>,
) -> Result<Prepared, String> {
    let stream = env.stream;
    let n = env.param("n", None)? as usize;
    let x = HostData::random(Dtype::F32, n, seed(env));
    let sms = device::attribute(
        cctx,
        sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT,
    )?;
    let blocks = ((sms.max(1) as usize) * 8).min(n.div_ceil(256)).max(1);
    let cfg1 = derive(None, Some(&[256]), Some(&[blocks as i64]), 0)?;
    let cfg2 = derive(None, Some(&[1024]), Some(&[1]), 0)?;
    let vals = vec![
        ArgVal::Buf(DevBuf::upload(stream, &x, "x")?),
        ArgVal::Buf(DevBuf::poisoned(stream, Dtype::F32, blocks, "partial")?),
        ArgVal::Buf(DevBuf::poisoned(stream, Dtype::F32, 1, "sum")?),
        ArgVal::Scalar(Scalar::U64(n as u64)),
        ArgVal::Scalar(Scalar::U32(blocks as u32)),
    ];
    let steps: Vec<StepSpec<'static>> = vec![
        ("np_reduce_partial", cfg1, vec![0, 1, 3]),
        ("np_reduce_final", cfg2, vec![1, 2, 4]),
    ];
    let fns: Vec<CudaFunction> = steps
        .iter()
        .map(|(n, _, _)| f(n))
        .collect::<Result<_, _>>()?;
    for ((name, cfg, idx), func) in steps.iter().zip(&fns) {
        launch(stream, func, name, *cfg, &vals, idx)?;
    }
    sync(stream, "builtin reduction")?;
    let got = buf(&vals, 2).download(stream, "sum")?.get(0);
    let HostData::F32(xv) = &x else {
        unreachable!()
    };
    let want: f64 = xv.iter().map(|v| *v as f64).sum();
    let scale: f64 = xv.iter().map(|v| v.abs() as f64).sum();
    let err = (got - want).abs() / scale.max(f64::MIN_POSITIVE);
    let check = Check::new(
        format!("builtin {} sum matches the host", Builtin::Reduction.id()),
        err <= 1e-5 && got.is_finite(),
        format!(
            "sum of {n} f32: got {got}, host (f64) {want}, |error| / sum|x| = {err:.2e} (limit 1e-5); timed with CUDA events, read after cuEventSynchronize"
        ),
        Some(ChecklistItem::CudaSync),
    );
    Ok(Prepared {
        vals,
        steps,
        check,
        bytes: 4.0 * n as f64,
        flops: Some(n as f64),
    })
}

/// out = inᵀ for a rows × cols matrix, checked exactly.
fn transpose_point(env: &PointEnv<'_>, f: Load<'_>) -> Result<Prepared, String> {
    let stream = env.stream;
    let rows = env.param("rows", Some("n"))? as usize;
    let cols = env.param("cols", Some("n"))? as usize;
    if rows > i32::MAX as usize || cols > i32::MAX as usize {
        return Err("transpose rows/cols must fit in a 32-bit int".into());
    }
    let x = HostData::random(Dtype::F32, rows * cols, seed(env));
    let cfg = derive(
        Some(&[cols as i64, (rows as i64 + 3) / 4]),
        Some(&[32, 8]),
        None,
        0,
    )?;
    let vals = vec![
        ArgVal::Buf(DevBuf::upload(stream, &x, "in")?),
        ArgVal::Buf(DevBuf::poisoned(stream, Dtype::F32, rows * cols, "out")?),
        ArgVal::Scalar(Scalar::I32(rows as i32)),
        ArgVal::Scalar(Scalar::I32(cols as i32)),
    ];
    let idx = vec![0, 1, 2, 3];
    launch_once(
        stream,
        f,
        "np_transpose_f32",
        cfg,
        (&vals, &idx),
        "builtin transpose",
    )?;
    let o = buf(&vals, 1).download(stream, "out")?;
    // out[c][r] = in[r][c]
    let check = exact_check(
        Builtin::Transpose.id(),
        "out = in^T",
        compare(
            rows * cols,
            |i| o.get(i),
            |i| x.get((i % rows) * cols + i / rows),
            0.0,
            0.0,
        ),
    );
    Ok(Prepared {
        vals,
        steps: vec![("np_transpose_f32", cfg, idx)],
        check,
        bytes: 8.0 * (rows * cols) as f64,
        flops: None,
    })
}

/// Typed GEMM operands.
enum GemmBufs {
    F32(CudaSlice<f32>, CudaSlice<f32>, CudaSlice<f32>),
    F16(CudaSlice<f16>, CudaSlice<f16>, CudaSlice<f16>),
    Bf16(CudaSlice<bf16>, CudaSlice<bf16>, CudaSlice<bf16>),
}

fn run_gemm_point(
    env: &mut PointEnv<'_>,
    b: Builtin,
    on_sample: &mut dyn FnMut(usize),
) -> Result<PointMeasure, String> {
    let stream = env.stream;
    let m = env.param("m", Some("n"))? as usize;
    let n = env.param("n", None)? as usize;
    let k = env.param("k", Some("n"))? as usize;
    let seed = env.spec.seed.unwrap_or(DEFAULT_SEED);
    let dtype = match b {
        Builtin::Sgemm => Dtype::F32,
        Builtin::Hgemm => Dtype::F16,
        _ => Dtype::Bf16,
    };
    let ha = HostData::random(dtype, m * k, seed);
    let hb = HostData::random(dtype, k * n, seed.wrapping_add(1));
    let up = |h: &HostData, name: &str| DevBuf::upload(stream, h, name);
    let mut bufs = match (
        up(&ha, "A")?,
        up(&hb, "B")?,
        DevBuf::poisoned(stream, dtype, m * n, "C")?,
    ) {
        (DevBuf::F32(a), DevBuf::F32(bb), DevBuf::F32(c)) => GemmBufs::F32(a, bb, c),
        (DevBuf::F16(a), DevBuf::F16(bb), DevBuf::F16(c)) => GemmBufs::F16(a, bb, c),
        (DevBuf::Bf16(a), DevBuf::Bf16(bb), DevBuf::Bf16(c)) => GemmBufs::Bf16(a, bb, c),
        _ => unreachable!("same dtype"),
    };
    let handle = blas(stream)?;
    let run = |bufs: &mut GemmBufs| match bufs {
        GemmBufs::F32(a, bb, c) => gemm(&handle, m, n, k, a, bb, c, 1.0f32, 0.0f32),
        GemmBufs::F16(a, bb, c) => gemm(&handle, m, n, k, a, bb, c, f16::ONE, f16::ZERO),
        GemmBufs::Bf16(a, bb, c) => gemm(&handle, m, n, k, a, bb, c, bf16::ONE, bf16::ZERO),
    };
    // C was poisoned with NaN; beta = 0, so cuBLAS must overwrite it.
    run(&mut bufs)?;
    sync(stream, b.id())?;
    let c = match &bufs {
        GemmBufs::F32(_, _, c) => DevBuf::F32(c.clone()),
        GemmBufs::F16(_, _, c) => DevBuf::F16(c.clone()),
        GemmBufs::Bf16(_, _, c) => DevBuf::Bf16(c.clone()),
    }
    .download(stream, "C")?;
    // 256 sampled elements against an f64 host dot product (column-major).
    let mut st = seed ^ 0xC0FFEE;
    let mut pairs = Vec::new();
    let mut nan = 0usize;
    for _ in 0..256 {
        let i = (device::buffers::splitmix64(&mut st) % m as u64) as usize;
        let j = (device::buffers::splitmix64(&mut st) % n as u64) as usize;
        let want: f64 = (0..k).map(|l| ha.get(i + l * m) * hb.get(l + j * k)).sum();
        let got = c.get(i + j * m);
        if got.is_nan() {
            nan += 1;
        }
        pairs.push((got, want));
    }
    let err = rel_l2_error(&pairs);
    let limit = if dtype == Dtype::F32 { 1e-4 } else { 1e-2 };
    let check = Check::new(
        format!("builtin {} matches a host GEMM", b.id()),
        nan == 0 && err <= limit,
        format!(
            "{m}x{n}x{k} {}: relative L2 error {err:.2e} on 256 sampled elements of C (limit {limit:e}), {nan} NaN; timed with CUDA events, read after cuEventSynchronize",
            dtype.id()
        ),
        Some(ChecklistItem::CudaSync),
    );
    let elem = dtype.size() as f64;
    let (times, report) =
        env.measure(b.id(), || run(&mut bufs).map_err(String::from), on_sample)?;
    Ok(PointMeasure {
        times,
        report,
        bytes: env
            .eval_opt(&env.spec.bytes, "bytes")?
            .or(Some(elem * (m * k + k * n + m * n) as f64)),
        flops: env
            .eval_opt(&env.spec.flops, "flops")?
            .or(Some(2.0 * m as f64 * n as f64 * k as f64)),
        check: Some(check),
        warnings: Vec::new(),
    })
}
