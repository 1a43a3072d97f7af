//! `headers = { Authorization = "Bearer {env:API_TOKEN}" }`: handshake
//! headers, whose `{env:NAME}` parts are read from the environment. Values
//! are secrets: nothing here or downstream prints them (`<redacted>`).

use std::collections::BTreeMap;

use crate::plan::kinds::{At, SpecError};

/// What reports and logs show instead of a header's value.
pub const REDACTED: &str = "<redacted>";

/// `{env:NAME}` references in `s`: the byte range of each and the name.
fn env_refs(s: &str) -> Vec<(std::ops::Range<usize>, &str)> {
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
pub fn expand_env(value: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut last = 0;
    for (range, name) in env_refs(value) {
        let v = lookup(name).ok_or_else(|| name.to_string())?;
        out.push_str(&value[last..range.start]);
        out.push_str(&v);
        last = range.end;
    }
    out.push_str(&value[last..]);
    Ok(out)
}

/// The headers with the environment's values, in name order.
pub fn resolve(headers: &BTreeMap<String, String>) -> Result<Vec<(String, String)>, String> {
    headers
        .iter()
        .map(|(k, v)| {
            let v = expand_env(v, |n| std::env::var(n).ok()).map_err(|n| {
                format!("header `{k}` needs the environment variable `{n}`, which is not set")
            })?;
            Ok((k.clone(), v))
        })
        .collect()
}

/// Names are HTTP tokens, and every `{env:NAME}` is set.
pub fn check(headers: &BTreeMap<String, String>) -> Result<(), SpecError> {
    for (name, value) in headers {
        let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if name.is_empty() || !name.chars().all(token) {
            return Err(SpecError::new(
                At::Key("headers"),
                format!("`{name}` is not a valid HTTP header name"),
            ));
        }
        if value.contains(['\r', '\n']) {
            return Err(SpecError::new(
                At::Key("headers"),
                format!("header `{name}`: a value cannot span lines"),
            ));
        }
        for (_, env) in env_refs(value) {
            if std::env::var_os(env).is_none() {
                return Err(SpecError::new(
                    At::Within {
                        path: "headers",
                        needle: format!("{{env:{env}}}"),
                    },
                    format!(
                        "header `{name}` reads the environment variable `{env}`, which is not set"
                    ),
                )
                .hint(Some(format!(
                    "export {env}=... before the run (its value is never shown in reports)"
                ))));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_references_expand() {
        let look = |n: &str| (n == "TOKEN").then(|| "s3cret".to_string());
        assert_eq!(
            expand_env("Bearer {env:TOKEN}", look).unwrap(),
            "Bearer s3cret"
        );
        assert_eq!(expand_env("{x} {env:TOKEN}!", look).unwrap(), "{x} s3cret!");
        assert_eq!(expand_env("a {env:NOPE}", look).unwrap_err(), "NOPE");
    }

    #[test]
    fn unset_variables_are_named_where_they_are() {
        let mut h = BTreeMap::new();
        h.insert(
            "Authorization".to_string(),
            "Bearer {env:NEON_PERF_TEST_UNSET_TOKEN}".to_string(),
        );
        let e = check(&h).unwrap_err();
        assert!(e.message.contains("`NEON_PERF_TEST_UNSET_TOKEN`"), "{e:?}");
        assert!(matches!(
            e.at,
            At::Within {
                path: "headers",
                ..
            }
        ));
        h.clear();
        h.insert("Bad Name".into(), "x".into());
        assert!(check(&h).unwrap_err().message.contains("not a valid"));
    }
}
