//! A suite's own kernel (`source`, `entry`, `args`): compiled with NVRTC,
//! its arguments built per point (inputs from `init`, outputs poisoned),
//! checked against `reference_entry` (or for every output element being
//! written), then timed.

use std::path::Path;
use std::sync::Arc;

use cudarc::driver::{CudaContext, CudaFunction, CudaStream};

use super::{ArgVal, DEFAULT_SEED, PointEnv, PointMeasure, download, launch, poison, sync};
use crate::device::buffers::{DevBuf, HostData, Scalar, compare};
use crate::device::launch::{LaunchDims, derive};
use crate::device::{CompileOptions, builtin};
use crate::metric::ChecklistItem;
use crate::plan::ParamPoint;
use crate::plan::gpu_kernel::expr;
use crate::plan::gpu_kernel::{ArgSpec, Dims, GpuKernelSpec, Init};
use crate::result::Check;

/// The compiled entry (and reference) of a suite's kernel file.
pub(super) struct UserKernels {
    file: String,
    entry: CudaFunction,
    reference: Option<CudaFunction>,
}

pub(super) fn load_user_kernels(
    spec: &GpuKernelSpec,
    source: &str,
    base_dir: &Path,
    cctx: &Arc<CudaContext>,
    cache_dir: &Path,
) -> Result<UserKernels, String> {
    let path = base_dir.join(source);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "cannot read kernel source `{source}` ({}): {e}",
            path.display()
        )
    })?;
    let opts = CompileOptions {
        arch: None,
        options: spec.nvrtc_options.clone(),
        include_paths: path
            .parent()
            .map(|p| vec![p.to_path_buf()])
            .unwrap_or_default(),
    };
    let module = builtin::load_module(cctx, &text, source, &opts, cache_dir)?;
    let entry_name = spec.entry.as_deref().unwrap_or_default();
    Ok(UserKernels {
        file: source.to_string(),
        entry: builtin::function(&module, entry_name, source)?,
        reference: spec
            .reference_entry
            .as_deref()
            .map(|r| builtin::function(&module, r, source))
            .transpose()?,
    })
}

fn eval_dims(d: Option<&Dims>, what: &str, point: &ParamPoint) -> Result<Option<Vec<i64>>, String> {
    d.map(|d| {
        d.0.iter()
            .map(|e| expr::eval_int(e.as_str(), point).map_err(|err| format!("`{what}`: {err}")))
            .collect()
    })
    .transpose()
}

fn host_init(a: &ArgSpec, len: usize, seed: u64, base_dir: &Path) -> Result<HostData, String> {
    match a.init.unwrap_or_default() {
        Init::Random => Ok(HostData::random(a.dtype, len, a.seed.unwrap_or(seed))),
        Init::Constant => Ok(HostData::constant(a.dtype, len, a.fill.unwrap_or(0.0))),
        Init::File => {
            let file = a.file.as_deref().unwrap_or_default();
            let path = base_dir.join(file);
            let bytes = std::fs::read(&path)
                .map_err(|e| format!("cannot read `{file}` ({}): {e}", path.display()))?;
            HostData::from_le_bytes(a.dtype, len, &bytes).map_err(|e| format!("`{file}` {e}"))
        }
    }
}

/// The kernel's arguments at one point, and which of them are what.
struct Args {
    vals: Vec<ArgVal>,
    /// Each argument's initial host data (inputs only).
    hosts: Vec<Option<HostData>>,
    names: Vec<String>,
    /// Every argument, in order: the launch's argument list.
    all: Vec<usize>,
    /// Outputs (`out` or `inout`): what is checked.
    outs: Vec<usize>,
    /// `out` only: poisoned before every checked launch.
    write_only: Vec<usize>,
}

impl Args {
    /// Buffers (inputs filled, outputs poisoned) and scalars at `env.point`.
    fn new(env: &PointEnv<'_>) -> Result<Args, String> {
        let (spec, point, stream) = (env.spec, env.point, env.stream);
        let seed = spec.seed.unwrap_or(DEFAULT_SEED);
        let mut vals = Vec::new();
        let mut hosts: Vec<Option<HostData>> = Vec::new();
        for (ai, a) in spec.args.iter().enumerate() {
            let ctx = |e: String| format!("argument `{}`: {e}", a.name);
            if let Some(len) = &a.len {
                let n = expr::eval_int(len.as_str(), point).map_err(ctx)?;
                if n < 1 {
                    return Err(ctx(format!(
                        "len `{len}` = {n}: a buffer needs at least 1 element"
                    )));
                }
                let n = n as usize;
                if a.out {
                    vals.push(ArgVal::Buf(DevBuf::poisoned(stream, a.dtype, n, &a.name)?));
                    hosts.push(None);
                } else {
                    let h =
                        host_init(a, n, seed.wrapping_add(ai as u64), env.base_dir).map_err(ctx)?;
                    vals.push(ArgVal::Buf(DevBuf::upload(stream, &h, &a.name)?));
                    hosts.push(Some(h));
                }
            } else if let Some(v) = &a.value {
                let x = if a.dtype.is_float() {
                    expr::eval_f64(v.as_str(), point).map_err(ctx)?
                } else {
                    expr::eval_int(v.as_str(), point).map_err(ctx)? as f64
                };
                vals.push(ArgVal::Scalar(
                    Scalar::new(a.dtype, x).map_err(|e| ctx(e.into()))?,
                ));
                hosts.push(None);
            }
        }
        let which = |keep: fn(&ArgSpec) -> bool| -> Vec<usize> {
            spec.args
                .iter()
                .enumerate()
                .filter(|(_, a)| keep(a))
                .map(|(i, _)| i)
                .collect()
        };
        Ok(Args {
            all: (0..vals.len()).collect(),
            outs: which(ArgSpec::is_output),
            write_only: which(|a| a.out),
            names: spec.args.iter().map(|a| a.name.clone()).collect(),
            vals,
            hosts,
        })
    }

    /// Puts the initial data back into read-write buffers.
    fn restore_inputs(&mut self, stream: &Arc<CudaStream>) -> Result<(), String> {
        for &i in &self.outs {
            if let (ArgVal::Buf(b), Some(h)) = (&mut self.vals[i], &self.hosts[i]) {
                b.write(stream, h, &self.names[i])?;
            }
        }
        Ok(())
    }

    /// Poisons the write-only outputs, launches `f` once, waits (`what`
    /// names the kernel in an error), and reads the outputs back.
    fn run_once(
        &mut self,
        stream: &Arc<CudaStream>,
        (f, name, what): (&CudaFunction, &str, &str),
        cfg: LaunchDims,
    ) -> Result<Vec<HostData>, String> {
        poison(stream, &mut self.vals, &self.write_only, &self.names)?;
        launch(stream, f, name, cfg, &self.vals, &self.all)?;
        sync(stream, &format!("{what} `{name}`"))?;
        download(stream, &self.vals, &self.outs, &self.names)
    }
}

/// The launch's grid, block and shared memory at `point`.
fn launch_dims(spec: &GpuKernelSpec, point: &ParamPoint) -> Result<LaunchDims, String> {
    let threads = eval_dims(spec.threads.as_deref(), "threads", point)?;
    let block = eval_dims(spec.block.as_deref(), "block", point)?;
    let grid = eval_dims(spec.grid.as_deref(), "grid", point)?;
    let shared = match &spec.shared_mem {
        Some(e) => {
            expr::eval_int(e.as_str(), point).map_err(|err| format!("`shared_mem`: {err}"))?
        }
        None => 0,
    };
    derive(
        threads.as_deref(),
        block.as_deref(),
        grid.as_deref(),
        shared,
    )
    .map_err(String::from)
}

/// One point of a suite's kernel: checked on fresh inputs, then timed.
pub(super) fn run_user_point(
    env: &mut PointEnv<'_>,
    k: &UserKernels,
    on_sample: &mut dyn FnMut(usize),
) -> Result<PointMeasure, String> {
    let (spec, stream) = (env.spec, env.stream);
    let mut args = Args::new(env)?;
    let cfg = launch_dims(spec, env.point)?;
    let entry = spec.entry.as_deref().unwrap_or_default();
    let mut warnings = Vec::new();
    // Correctness first, on fresh inputs.
    let got = args.run_once(stream, (&k.entry, entry, "kernel"), cfg)?;
    let check = if args.outs.is_empty() {
        warnings.push(format!(
            "`{entry}` has no output buffers (`out = true` or `inout = true`): its results are not checked"
        ));
        None
    } else if let (Some(reference), Some(rname)) = (&k.reference, spec.reference_entry.as_deref()) {
        args.restore_inputs(stream)?;
        let want = args.run_once(stream, (reference, rname, "reference kernel"), cfg)?;
        Some(reference_check(
            spec,
            (entry, rname),
            k,
            &args,
            (&got, &want),
        ))
    } else {
        warnings.push(format!(
            "`{entry}` has no `reference_entry`: only checked that every output element was written"
        ));
        Some(written_check(entry, k, &args, &got))
    };
    args.restore_inputs(stream)?;
    drop(got);
    let Args { vals, all, .. } = &args;
    let (times, report) = env.measure(
        entry,
        || launch(stream, &k.entry, entry, cfg, vals, all),
        on_sample,
    )?;
    Ok(PointMeasure {
        times,
        report,
        bytes: env.eval_opt(&spec.bytes, "bytes")?,
        flops: env.eval_opt(&spec.flops, "flops")?,
        check,
        warnings,
    })
}

/// Every output of the entry against the reference's, within the dtype's
/// (or the suite's) tolerances.
fn reference_check(
    spec: &GpuKernelSpec,
    (entry, rname): (&str, &str),
    k: &UserKernels,
    args: &Args,
    (got, want): (&[HostData], &[HostData]),
) -> Check {
    let mut passed = true;
    let mut ev = Vec::new();
    for (j, &i) in args.outs.iter().enumerate() {
        let dt = spec.args[i].dtype;
        let (rt, at) = dt.default_tolerance();
        let (rtol, atol) = (spec.rtol.unwrap_or(rt), spec.atol.unwrap_or(at));
        let r = compare(
            got[j].len(),
            |e| got[j].get(e),
            |e| want[j].get(e),
            rtol,
            atol,
        );
        passed &= r.passed();
        ev.push(r.evidence(&args.names[i], rtol, atol));
    }
    Check::new(
        format!("`{entry}` matches `{rname}` ({})", k.file),
        passed,
        format!(
            "{}; timed with CUDA events, read after cuEventSynchronize",
            ev.join("; ")
        ),
        Some(ChecklistItem::CudaSync),
    )
}

/// Without a reference: every output element was written (none is left
/// NaN after poisoning).
fn written_check(entry: &str, k: &UserKernels, args: &Args, got: &[HostData]) -> Check {
    let mut passed = true;
    let mut ev = Vec::new();
    for (j, &i) in args.outs.iter().enumerate() {
        let nan = (0..got[j].len())
            .filter(|&e| got[j].get(e).is_nan())
            .count();
        passed &= nan == 0 && !got[j].is_empty();
        ev.push(format!(
            "{}: {} elements, {nan} left NaN after poisoning",
            args.names[i],
            got[j].len()
        ));
    }
    Check::new(
        format!("`{entry}` writes every output element ({})", k.file),
        passed,
        ev.join("; "),
        Some(ChecklistItem::CudaSync),
    )
}
