//! `find_max_batch = { param = "batch", memory_limit = "8GiB" }` on a
//! `command` scenario: the largest value of `param` whose run of the program
//! succeeds under a memory limit (doubling, then bisection).

use serde::Deserialize;

use super::super::kinds::{At, CheckCtx, SpecError};
use super::CommandSpec;
use crate::units::parse_size;

/// Default upper end of the search.
pub const DEFAULT_MAX: u32 = 65536;

/// Output that marks a failed run as out of memory (matched without case):
/// CUDA, PyTorch (its CPU allocator's "can't allocate memory" too), Python
/// (numpy's `_ArrayMemoryError` too), C++, ONNX Runtime, Rust's own words,
/// the C library's `strerror(ENOMEM)`, and cuBLAS failing to allocate its
/// workspace (`CUBLAS_STATUS_ALLOC_FAILED`, which PyTorch raises as is).
pub const OOM_WORDS: [&str; 10] = [
    "cuda out of memory",
    "cuda_error_out_of_memory",
    "memoryerror",
    "std::bad_alloc",
    "out of memory",
    "failed to allocate memory",
    "memory allocation of",
    "can't allocate memory",
    "cannot allocate memory",
    "cublas_status_alloc_failed",
];

/// The keys of `find_max_batch`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandMaxBatch {
    /// The placeholder the searched value goes in (not one of `params`).
    pub param: String,
    /// The program's memory limit: a size (`"512MiB"`), enforced on the
    /// child as RLIMIT_DATA; or `"gpu:F"`, a fraction of the GPU's memory,
    /// checked against NVML's per-process samples of the program's tree.
    pub memory_limit: String,
    /// Upper end of the search (default 65536).
    #[serde(default)]
    pub max: Option<u32>,
    /// A regular expression: more output that marks a failed run as out of
    /// memory, besides [`OOM_WORDS`].
    #[serde(default)]
    pub oom_pattern: Option<String>,
}

/// Where `memory_limit` applies.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MemoryLimit {
    /// Bytes of host memory, RLIMIT_DATA on the child.
    Host(u64),
    /// A fraction of the GPU's memory (`"gpu:0.8"`, as PyTorch's
    /// `set_per_process_memory_fraction(0.8)`), from NVML.
    GpuFraction(f64),
}

/// `"gpu:F"` → F, when it is a number in (0, 1]; `None` without the prefix.
fn gpu_fraction(s: &str) -> Option<Result<f64, String>> {
    let f = s.strip_prefix("gpu:")?;
    Some(match f.trim().parse::<f64>() {
        Ok(x) if x > 0.0 && x <= 1.0 => Ok(x),
        Ok(x) => Err(format!(
            "the fraction of GPU memory must be in (0, 1], found {x}"
        )),
        Err(_) => Err(format!(
            "expected `gpu:<fraction>` such as `gpu:0.8`, found `{s}`"
        )),
    })
}

impl CommandMaxBatch {
    /// The limit (checked by the suite parser).
    pub fn limit(&self) -> MemoryLimit {
        match gpu_fraction(&self.memory_limit) {
            Some(f) => MemoryLimit::GpuFraction(f.unwrap_or(1.0)),
            None => MemoryLimit::Host(parse_size(&self.memory_limit).unwrap_or(u64::MAX)),
        }
    }

    pub fn max(&self) -> usize {
        self.max.unwrap_or(DEFAULT_MAX) as usize
    }
}

/// The checks of `find_max_batch` serde cannot do.
pub(super) fn check(
    spec: &CommandSpec,
    m: &CommandMaxBatch,
    ctx: &CheckCtx<'_>,
) -> Result<(), SpecError> {
    let err = |text: String| SpecError::new(At::Key("find_max_batch"), text);
    let param = m.param.as_str();
    if spec.sweep.is_some() {
        return Err(err(
            "give `find_max_batch` and `sweep` in two scenarios: one searches the largest batch, the other measures each".into(),
        ));
    }
    if let Some(p) = ctx.params.first() {
        return Err(err(format!(
            "`params.{p}`: a `find_max_batch` scenario runs the values it searches, not `params`"
        ))
        .hint(Some(format!(
            "remove `params`; `{{{param}}}` in `command` receives each probed value"
        ))));
    }
    if !spec.passes(param) {
        return Err(err(format!(
            "`find_max_batch.param` `{param}` does not reach the program: no `{{{param}}}` in `command` or `env`"
        )));
    }
    if let Some(f) = gpu_fraction(&m.memory_limit) {
        f.map_err(|e| err(format!("`find_max_batch.memory_limit`: {e}")))?;
    } else {
        match parse_size(&m.memory_limit) {
            Ok(0) => return Err(err("`find_max_batch.memory_limit` must be positive".into())),
            Ok(_) => {}
            Err(e) => return Err(err(format!("`find_max_batch.memory_limit`: {e}"))),
        }
    }
    if m.max == Some(0) {
        return Err(err("`find_max_batch.max` must be at least 1".into()));
    }
    if let Some(p) = &m.oom_pattern
        && let Err(e) = regex::Regex::new(p)
    {
        return Err(err(format!(
            "`find_max_batch.oom_pattern` is not a regular expression: {e}"
        )));
    }
    Ok(())
}
