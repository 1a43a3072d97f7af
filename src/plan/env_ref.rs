//! `{env:NAME}`: a part of a string read from neon-perf's environment when
//! the scenario runs, in a flood's handshake `headers`, a started server's
//! `server.env` and a `command`'s `env`. An unset `NAME` is a config error
//! at its text when a scenario that reads it is about to run: `run` and
//! its `cargo test` trial fail that scenario (the others run; `run` exits
//! 2), `bless` and `calibrate` stop before anything runs; loading the
//! suite, `list` and `check` only say so, so that one missing secret does
//! not stop the scenarios that do not read it. The values are secrets and
//! nothing prints them.

use std::ops::Range;

use crate::plan::kinds::{At, SpecError};

/// `{env:NAME}` references in `s`: the byte range of each and the name.
pub fn refs(s: &str) -> Vec<(Range<usize>, &str)> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(open) = s[i..].find("{env:").map(|o| o + i) {
        let Some(close) = s[open..].find('}').map(|c| c + open) else {
            break;
        };
        out.push((open..close + 1, &s[open + 5..close]));
        i = close + 1;
    }
    out
}

/// `value` with every `{env:NAME}` replaced by the variable's value
/// (`lookup`); the first name that is unset is the error.
pub fn expand(value: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut last = 0;
    for (range, name) in refs(value) {
        let v = lookup(name).ok_or_else(|| name.to_string())?;
        out.push_str(&value[last..range.start]);
        out.push_str(&v);
        last = range.end;
    }
    out.push_str(&value[last..]);
    Ok(out)
}

/// `value` expanded from this process's environment; the error names what
/// (`what`, e.g. "header `Authorization`") needed which unset variable.
pub fn expand_now(what: &str, value: &str) -> Result<String, String> {
    expand(value, |n| std::env::var(n).ok())
        .map_err(|n| format!("{what} needs the environment variable `{n}`, which is not set"))
}

/// A `{env:NAME}` a scenario reads: where (`at`, for the parser to
/// locate), what reads it ("header `Authorization`") and the name.
#[derive(Clone, Debug, PartialEq)]
pub struct EnvUse {
    pub at: At,
    pub what: String,
    pub name: String,
}

impl EnvUse {
    /// The error when `name` is unset.
    pub fn unset_error(&self) -> SpecError {
        let (message, hint) = unset_text(&self.what, &self.name);
        SpecError::new(self.at.clone(), message).hint(Some(hint))
    }
}

/// What an unset `name` read by `what` is, and what to do: the message and
/// the hint of its config error.
pub fn unset_text(what: &str, name: &str) -> (String, String) {
    (
        format!("{what} reads the environment variable `{name}`, which is not set"),
        format!("export {name}=... before the run (its value is never shown in reports)"),
    )
}

/// Every `{env:NAME}` in the values of the table at `path` (`(key, value)`
/// pairs), in order; `what` names a key ("header `Authorization`").
pub fn uses<'a>(
    path: &'static str,
    values: impl IntoIterator<Item = (&'a String, &'a String)>,
    what: impl Fn(&str) -> String,
) -> Vec<EnvUse> {
    let mut out = Vec::new();
    for (key, value) in values {
        for (_, name) in refs(value) {
            out.push(EnvUse {
                at: At::Within {
                    path,
                    needle: format!("{{env:{name}}}"),
                },
                what: what(key),
                name: name.to_string(),
            });
        }
    }
    out
}

/// A `{env:NAME}` of a loaded scenario, located in its suite file.
#[derive(Clone, Debug, PartialEq)]
pub struct EnvNeed {
    pub name: String,
    /// "header `Authorization`".
    pub what: String,
    /// The `{env:NAME}` text in the suite file (bytes), and its line and column.
    pub span: Range<usize>,
    pub location: crate::plan::SourceLocation,
}

/// The error of a scenario that reads the unset `needs`, each at its
/// place in the suite file; `None` when there are none.
pub fn unset_message(needs: &[&EnvNeed]) -> Option<String> {
    let first = needs.first()?;
    let parts: Vec<String> = needs
        .iter()
        .map(|e| format!("{}: {}", e.location, unset_text(&e.what, &e.name).0))
        .collect();
    Some(format!(
        "{}; {}",
        parts.join("; "),
        unset_text(&first.what, &first.name).1
    ))
}

impl EnvNeed {
    /// Set, as the run reads it (a value that is not UTF-8 is not).
    pub fn is_set(&self) -> bool {
        std::env::var(&self.name).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_expand_and_other_braces_stay() {
        let look = |n: &str| (n == "TOKEN").then(|| "s3cret".to_string());
        assert_eq!(expand("Bearer {env:TOKEN}", look).unwrap(), "Bearer s3cret");
        assert_eq!(expand("{x} {env:TOKEN}!", look).unwrap(), "{x} s3cret!");
        assert_eq!(expand("a {env:NOPE}", look).unwrap_err(), "NOPE");
        assert_eq!(expand("{env:unclosed", look).unwrap(), "{env:unclosed");
    }

    #[test]
    fn an_unset_variable_is_an_error_at_its_text() {
        let env = std::collections::BTreeMap::from([(
            "BACKEND_TOKEN".to_string(),
            "{env:NEON_PERF_TEST_UNSET_VAR} and {env:OTHER}".to_string(),
        )]);
        let used = uses("server.env", &env, |k| format!("`server.env.{k}`"));
        assert_eq!(used.len(), 2);
        assert_eq!(used[1].name, "OTHER");
        let e = used[0].unset_error();
        assert_eq!(
            e.message,
            "`server.env.BACKEND_TOKEN` reads the environment variable `NEON_PERF_TEST_UNSET_VAR`, which is not set"
        );
        assert_eq!(
            e.at,
            At::Within {
                path: "server.env",
                needle: "{env:NEON_PERF_TEST_UNSET_VAR}".into()
            }
        );
    }
}
