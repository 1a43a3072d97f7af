//! The checks of `[scenario.protocol]` serde cannot do: JSON pointer
//! syntax (RFC 6901), template placeholders, one way to end a stream, and
//! keys that only make sense together. Each error is located at its key,
//! or at the offending text inside it.

use super::protocol::{EndSpec, MatchSpec, ProtocolSpec};
use crate::plan::ParamPoint;
use crate::plan::command::placeholders;
use crate::plan::hint::closest;
use crate::plan::kinds::{At, SpecError};

/// Placeholders every request template knows.
pub const TEMPLATE_VARS: [&str; 3] = ["id", "conn", "seq"];

/// Why `p` is not an RFC 6901 JSON pointer, if it is not.
pub fn pointer_syntax(p: &str) -> Option<String> {
    if !p.is_empty() && !p.starts_with('/') {
        return Some(format!(
            "`{p}` is not a JSON pointer: it must be empty or start with `/` (RFC 6901), e.g. `/{p}`"
        ));
    }
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return Some(format!(
                "`{p}` is not a JSON pointer: `~` must be followed by `0` (for `~`) or `1` (for `/`)"
            ));
        }
    }
    None
}

impl ProtocolSpec {
    /// Whether a param `name` is for the request: the template has
    /// `{name}`, or the request is a file (read, and its placeholders
    /// checked, when the scenario starts).
    pub fn template_uses(&self, name: &str) -> bool {
        match &self.request.text {
            Some(t) => placeholders(t).iter().any(|(_, n)| *n == name),
            None => self.request.file.is_some(),
        }
    }

    /// Every check; `points` give the params a template may use.
    pub fn check(&self, points: &[ParamPoint]) -> Result<(), SpecError> {
        self.check_pointers()?;
        self.check_request(points)?;
        self.check_end()?;
        if let Some(u) = &self.units {
            if u.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
                return Err(key("protocol.units", "`units.name` must not be empty"));
            }
        }
        Ok(())
    }

    fn check_pointers(&self) -> Result<(), SpecError> {
        let end = match &self.end {
            Some(EndSpec::Table(t)) => t.json.as_deref(),
            _ => None,
        };
        let matching = match &self.matching {
            Some(MatchSpec::Json(p)) => Some(p.as_str()),
            _ => None,
        };
        let all: [(&'static str, Option<&str>); 5] = [
            ("protocol.match.json", matching),
            ("protocol.end.json", end),
            ("protocol.skip_empty", self.skip_empty.as_deref()),
            (
                "protocol.error.json",
                self.error.as_ref().map(|e| e.json.as_str()),
            ),
            (
                "protocol.units.json",
                self.units.as_ref().map(|u| u.json.as_str()),
            ),
        ];
        for (at, p) in all {
            if let Some(why) = p.and_then(pointer_syntax) {
                return Err(key(at, why));
            }
        }
        Ok(())
    }

    fn check_request(&self, points: &[ParamPoint]) -> Result<(), SpecError> {
        let r = &self.request;
        let given = [r.text.is_some(), r.binary.is_some(), r.file.is_some()];
        if given.iter().filter(|g| **g).count() != 1 {
            return Err(key(
                "protocol.request",
                "`request` takes exactly one of `text = \"<template>\"`, `binary = <size>` and `file = \"requests.jsonl\"`",
            ));
        }
        if let Some(b) = r.binary {
            if b.min > b.max || b.max > super::MAX_SIZE {
                return Err(key(
                    "protocol.request.binary",
                    format!("`binary` must be a size up to 64 MiB with min ≤ max, got {b}"),
                ));
            }
            if matches!(self.matching, Some(MatchSpec::Json(_))) {
                return Err(key(
                    "protocol.match",
                    "`match.json` reads the id the server copies from a text request's `{id}`: use `request.text`, or `match = \"order\"` for binary requests",
                ));
            }
            return Ok(());
        }
        if r.file.as_ref().is_some_and(|f| f.as_os_str().is_empty()) {
            return Err(key(
                "protocol.request.file",
                "`request.file` must name a file",
            ));
        }
        // A file's lines are checked when it is read, before the flood.
        let Some(text) = &r.text else { return Ok(()) };
        let params: Vec<&str> = points
            .iter()
            .flat_map(|p| p.keys().map(String::as_str))
            .collect();
        for (_, name) in placeholders(text) {
            if TEMPLATE_VARS.contains(&name) || params.contains(&name) {
                continue;
            }
            let known: Vec<&str> = TEMPLATE_VARS
                .iter()
                .copied()
                .chain(params.iter().copied())
                .collect();
            return Err(SpecError::new(
                At::Placeholder {
                    within: &["protocol.request.text"],
                    name: name.to_string(),
                },
                format!("unknown placeholder `{{{name}}}` in the request template"),
            )
            .hint(Some(match closest(name, known.iter().copied()) {
                Some(c) => format!("did you mean `{{{c}}}`?"),
                None => format!(
                    "a template knows {} and the point's params; braces around anything else are kept as they are",
                    known.iter().map(|k| format!("`{{{k}}}`")).collect::<Vec<_>>().join(", ")
                ),
            })));
        }
        let has_id = placeholders(text).iter().any(|(_, n)| *n == "id");
        if matches!(self.matching, Some(MatchSpec::Json(_))) && !has_id {
            return Err(key(
                "protocol.request.text",
                "`match.json` matches replies by the request's `{id}`, but the template has no `{id}`",
            ));
        }
        Ok(())
    }

    fn check_end(&self) -> Result<(), SpecError> {
        let Some(EndSpec::Table(t)) = &self.end else {
            return Ok(());
        };
        let ways = [t.json.is_some(), t.count.is_some(), t.idle.is_some()];
        if ways.iter().filter(|w| **w).count() != 1 {
            return Err(key(
                "protocol.end",
                "`end` takes exactly one of `json` (with `equals`), `count` or `idle`",
            ));
        }
        if t.json.is_some() != t.equals.is_some() {
            return Err(key(
                "protocol.end",
                "`end.json` and `end.equals` go together",
            ));
        }
        if t.count == Some(0) {
            return Err(key("protocol.end.count", "`end.count` must be at least 1"));
        }
        if t.idle.is_some_and(|d| d.0.is_zero()) {
            return Err(key("protocol.end.idle", "`end.idle` must be positive"));
        }
        Ok(())
    }
}

fn key(at: &'static str, message: impl Into<String>) -> SpecError {
    SpecError::new(At::Key(at), message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ParamValue;

    fn check(src: &str) -> Result<(), SpecError> {
        let p: ProtocolSpec = toml::from_str(src).unwrap();
        let mut pt = ParamPoint::new();
        pt.insert("prompt".into(), ParamValue::Str("hi".into()));
        p.check(&[pt])
    }

    #[test]
    fn pointers_follow_rfc_6901() {
        for ok in ["", "/", "/id", "/a~0b/c~1d", "/usage/output_tokens", "/0"] {
            assert_eq!(pointer_syntax(ok), None, "{ok}");
        }
        for bad in ["id", "/a~2", "/a~", "usage/x"] {
            assert!(pointer_syntax(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn accepts_a_full_protocol() {
        check(
            r#"request = { text = '{"id":"{id}","c":{conn},"s":{seq},"p":"{prompt}","x":{"y":1}}' }
match = { json = "/id" }
end = { json = "/type", equals = "done" }"#,
        )
        .unwrap();
    }

    #[test]
    fn refusals_name_their_key() {
        let cases: [(&str, &str, At); 7] = [
            (
                "request = { text = '{id}' }\nmatch = { json = \"id\" }",
                "start with `/`",
                At::Key("protocol.match.json"),
            ),
            (
                "request = { text = '{\"a\":\"{idd}\"}' }",
                "unknown placeholder `{idd}`",
                At::Placeholder {
                    within: &["protocol.request.text"],
                    name: "idd".into(),
                },
            ),
            (
                "request = { text = 'x' }\nmatch = { json = \"/id\" }",
                "has no `{id}`",
                At::Key("protocol.request.text"),
            ),
            (
                "request = { binary = 8 }\nmatch = { json = \"/id\" }",
                "binary requests",
                At::Key("protocol.match"),
            ),
            (
                "request = { text = 'x' }\nend = { count = 2, idle = \"1s\" }",
                "exactly one",
                At::Key("protocol.end"),
            ),
            (
                "request = { text = 'x' }\nend = { json = \"/t\" }",
                "go together",
                At::Key("protocol.end"),
            ),
            (
                "request = { text = 'x', binary = 8 }",
                "exactly one of",
                At::Key("protocol.request"),
            ),
        ];
        for (src, want, at) in cases {
            let e = check(src).unwrap_err();
            assert!(e.message.contains(want), "{src}: {e:?}");
            assert_eq!(e.at, at, "{src}");
        }
    }
}
