//! `kind = "command"`: the user's own program, run as a child process.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

/// Keys of a `command` scenario besides the common ones.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandSpec {
    /// argv; `{param}` is replaced by a sweep parameter's value, `{neon_perf}`
    /// by the path of the neon-perf binary, `{suite_dir}` by the suite's folder.
    /// No shell is involved unless `shell = true`.
    pub command: Vec<String>,
    /// Run `command` (joined by spaces) through `sh -c`.
    #[serde(default)]
    pub shell: bool,
    /// Extra environment variables (values are substituted like argv).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory, relative to the suite file's folder.
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    /// The metric whose confidence interval drives adaptive stopping
    /// (default `wall_time`).
    #[serde(default)]
    pub primary: Option<String>,
}
