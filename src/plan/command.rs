//! `kind = "command"`: the user's own program, run as a child process.

pub mod max_batch;
pub mod sweep;

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;

use serde::Deserialize;

use super::env_ref;
use super::hint::closest;
use super::kinds::{At, CheckCtx, KindRules, SpecError};

/// Placeholders a command may use besides the params.
pub const BUILTIN_PLACEHOLDERS: [&str; 2] = ["neon_perf", "suite_dir"];

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
    /// Extra environment variables (values are substituted like argv;
    /// `{env:NAME}` reads neon-perf's environment).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory, relative to the suite file's folder.
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    /// The metric whose confidence interval drives adaptive stopping
    /// (default `wall_time`).
    #[serde(default)]
    pub primary: Option<String>,
    /// Analyse the points as a batch sweep of one param.
    #[serde(default)]
    pub sweep: Option<sweep::CommandSweep>,
    /// Search the largest value of a placeholder whose run fits a memory
    /// limit, instead of measuring.
    #[serde(default)]
    pub find_max_batch: Option<max_batch::CommandMaxBatch>,
}

impl KindRules for CommandSpec {
    const BLESS_CAN_TELL: bool = true;
    const FRESH_PROCESSES: bool = true;
    const LEAK_RULES: bool = true;

    /// `command` is non-empty, its placeholders (and those of `env`
    /// values) name a param or a built-in.
    fn check(&self, ctx: &CheckCtx<'_>) -> Result<(), SpecError> {
        if self.command.is_empty() {
            return Err(SpecError::new(At::Key("command"), "`command` must not be empty")
                .hint(Some("give the program and its arguments: `command = [\"python\", \"bench.py\", \"--n={n}\"]`".into())));
        }
        let known: Vec<&str> = ctx
            .params
            .iter()
            .map(String::as_str)
            .chain(BUILTIN_PLACEHOLDERS)
            .chain(self.find_max_batch.as_ref().map(|m| m.param.as_str()))
            .collect();
        let strings = self.command.iter().chain(self.env.values());
        let Some(name) = first_unknown_placeholder(strings, &known) else {
            if let Some(m) = &self.find_max_batch {
                max_batch::check(self, m, ctx)?;
            }
            return match &self.sweep {
                Some(sw) => sweep::check(self, sw, ctx),
                None => Ok(()),
            };
        };
        let listed = known
            .iter()
            .map(|k| format!("`{{{k}}}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let hint = closest(name, known.iter().copied())
            .map(|c| format!("did you mean `{{{c}}}`?"))
            .unwrap_or_else(|| format!("placeholders are the params and the built-ins: {listed}"));
        Err(SpecError::new(
            At::Placeholder {
                within: &["command", "env"],
                name: name.to_string(),
            },
            format!("unknown placeholder `{{{name}}}`: no param or built-in is called `{name}`"),
        )
        .hint(Some(hint)))
    }

    fn env_uses(&self) -> Vec<env_ref::EnvUse> {
        env_ref::uses("env", &self.env, |k| format!("`env.{k}`"))
    }
}

impl CommandSpec {
    /// Whether `{param}` appears in `command` or an `env` value, so its
    /// value reaches the program.
    pub fn passes(&self, param: &str) -> bool {
        self.command
            .iter()
            .chain(self.env.values())
            .any(|s| placeholders(s).iter().any(|(_, n)| *n == param))
    }
}

/// The first placeholder in `strings` that is not in `known`.
pub fn first_unknown_placeholder<'a>(
    strings: impl IntoIterator<Item = &'a String>,
    known: &[&str],
) -> Option<&'a str> {
    strings
        .into_iter()
        .flat_map(|s| placeholders(s))
        .map(|(_, name)| name)
        .find(|name| !known.contains(name))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholder_scan() {
        let got: Vec<_> = placeholders("--n={n} {suite_dir}/x {} {'a': 1} {{x}")
            .into_iter()
            .map(|(_, n)| n)
            .collect();
        assert_eq!(got, ["n", "suite_dir", "x"]);
        assert!(placeholders("{9x}").is_empty());
    }
}
