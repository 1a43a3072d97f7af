//! `headers = { Authorization = "Bearer {env:API_TOKEN}" }`: handshake
//! headers, whose `{env:NAME}` parts are read from the environment
//! ([`env_ref`]). Values are secrets: nothing here or downstream prints them
//! (`<redacted>`).

use std::collections::BTreeMap;

use crate::plan::env_ref;
use crate::plan::kinds::{At, SpecError};

/// What reports and logs show instead of a header's value.
pub const REDACTED: &str = "<redacted>";

/// The headers with the environment's values, in name order.
pub fn resolve(headers: &BTreeMap<String, String>) -> Result<Vec<(String, String)>, String> {
    headers
        .iter()
        .map(|(k, v)| Ok((k.clone(), env_ref::expand_now(&format!("header `{k}`"), v)?)))
        .collect()
}

/// Names are HTTP tokens and values one line.
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
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_variables_are_named_where_they_are_when_they_run() {
        let mut h = BTreeMap::new();
        h.insert(
            "Authorization".to_string(),
            "Bearer {env:NEON_PERF_TEST_UNSET_TOKEN}".to_string(),
        );
        // The suite is fine; the run says what it lacks.
        check(&h).unwrap();
        let e = resolve(&h).unwrap_err();
        assert!(e.contains("`NEON_PERF_TEST_UNSET_TOKEN`"), "{e}");
        let uses = env_ref::uses("headers", &h, |k| format!("header `{k}`"));
        let e = uses[0].unset_error();
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
