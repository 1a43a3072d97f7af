//! `{env:NAME}`: a part of a string read from neon-perf's environment when
//! the scenario runs, in a flood's handshake `headers`, a started server's
//! `server.env` and a `command`'s `env`. An unset `NAME` is a config error
//! at its text; the values are secrets and nothing prints them.

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

/// Every `{env:NAME}` in the values of the table at `path` (`(key, value)`
/// pairs) is set; else an error at the first unset one's text. `what`
/// names a key in the message ("header `Authorization`").
pub fn check_set<'a>(
    path: &'static str,
    values: impl IntoIterator<Item = (&'a String, &'a String)>,
    what: impl Fn(&str) -> String,
) -> Result<(), SpecError> {
    for (key, value) in values {
        let Some((_, env)) = refs(value)
            .into_iter()
            .find(|(_, n)| std::env::var_os(n).is_none())
        else {
            continue;
        };
        return Err(SpecError::new(
            At::Within {
                path,
                needle: format!("{{env:{env}}}"),
            },
            format!(
                "{} reads the environment variable `{env}`, which is not set",
                what(key)
            ),
        )
        .hint(Some(format!(
            "export {env}=... before the run (its value is never shown in reports)"
        ))));
    }
    Ok(())
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
            "{env:NEON_PERF_TEST_UNSET_VAR}".to_string(),
        )]);
        let e = check_set("server.env", &env, |k| format!("`server.env.{k}`")).unwrap_err();
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
