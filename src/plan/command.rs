//! `kind = "command"`: the user's own program, run as a child process.

use std::collections::BTreeMap;
use std::ops::Range;
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

/// `{name}` placeholders in `s`: byte range of each (braces included) and its name.
pub fn placeholders(s: &str) -> Vec<(Range<usize>, &str)> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(open) = s[i..].find('{').map(|o| o + i) {
        match s[open + 1..].find('}').map(|c| c + open + 1) {
            Some(close) if is_ident(&s[open + 1..close]) => {
                out.push((open..close + 1, &s[open + 1..close]));
                i = close + 1;
            }
            _ => i = open + 1,
        }
    }
    out
}

/// A placeholder name: an ASCII identifier.
pub fn is_ident(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
