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
/// CUDA, PyTorch, Python (numpy's `_ArrayMemoryError` too), C++, ONNX
/// Runtime and Rust's own words.
pub const OOM_WORDS: [&str; 7] = [
    "cuda out of memory",
    "cuda_error_out_of_memory",
    "memoryerror",
    "std::bad_alloc",
    "out of memory",
    "failed to allocate memory",
    "memory allocation of",
];

/// The keys of `find_max_batch`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandMaxBatch {
    /// The placeholder the searched value goes in (not one of `params`).
    pub param: String,
    /// The program's memory limit: a size (`"512MiB"`), enforced on the
    /// child as RLIMIT_DATA.
    pub memory_limit: String,
    /// Upper end of the search (default 65536).
    #[serde(default)]
    pub max: Option<u32>,
    /// A regular expression: more output that marks a failed run as out of
    /// memory, besides [`OOM_WORDS`].
    #[serde(default)]
    pub oom_pattern: Option<String>,
}

impl CommandMaxBatch {
    /// The limit in bytes (checked by the suite parser).
    pub fn limit_bytes(&self) -> u64 {
        parse_size(&self.memory_limit).unwrap_or(u64::MAX)
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
    if m.memory_limit.starts_with("gpu:") {
        return Err(err(format!(
            "`memory_limit = \"{}\"`: a limit on GPU memory is not supported yet (it needs NVML's per-process samples); give a host size such as \"8GiB\"",
            m.memory_limit
        )));
    }
    match parse_size(&m.memory_limit) {
        Ok(0) => return Err(err("`find_max_batch.memory_limit` must be positive".into())),
        Ok(_) => {}
        Err(e) => return Err(err(format!("`find_max_batch.memory_limit`: {e}"))),
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
