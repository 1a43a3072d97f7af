//! Typed reads of TOML values with located, actionable errors, and the bridge
//! from serde errors (kind specs) to diagnostics.

use std::ops::Range;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeString, DeTable, DeValue, ValueDeserializer};

use super::error::{Diag, closest};
use crate::units::{parse_duration, parse_size};

pub(crate) type Value<'i> = Spanned<DeValue<'i>>;
pub(crate) type Key<'i> = Spanned<DeString<'i>>;

/// A table's entries in the order they were written.
pub(crate) fn entries<'t, 'i>(table: &'t DeTable<'i>) -> Vec<(&'t Key<'i>, &'t Value<'i>)> {
    let mut v: Vec<_> = table.iter().collect();
    v.sort_by_key(|(k, _)| k.span().start);
    v
}

/// "a string", "an integer", ... for messages.
pub(crate) fn a_type(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "string",
        DeValue::Integer(_) => "integer",
        DeValue::Float(_) => "float",
        DeValue::Boolean(_) => "boolean",
        DeValue::Datetime(_) => "datetime",
        DeValue::Array(_) => "array",
        DeValue::Table(_) => "table",
    }
}

fn wrong_type(v: &Value<'_>, expected: &str) -> Diag {
    Diag::new(
        v.span(),
        format!("expected {expected}, found {}", a_type(v.get_ref())),
    )
}

pub(crate) fn as_int(v: &DeValue<'_>) -> Option<i64> {
    match v {
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok(),
        _ => None,
    }
}

pub(crate) fn as_number(v: &DeValue<'_>) -> Option<f64> {
    match v {
        DeValue::Integer(_) => as_int(v).map(|i| i as f64),
        DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
        _ => None,
    }
}

pub(crate) fn string<'a>(v: &'a Value<'_>, key: &str) -> Result<&'a str, Diag> {
    v.get_ref()
        .as_str()
        .ok_or_else(|| wrong_type(v, &format!("a string for `{key}`")))
}

pub(crate) fn boolean(v: &Value<'_>, key: &str) -> Result<bool, Diag> {
    v.get_ref()
        .as_bool()
        .ok_or_else(|| wrong_type(v, &format!("true or false for `{key}`")))
}

pub(crate) fn table<'a, 'i>(v: &'a Value<'i>, key: &str) -> Result<&'a DeTable<'i>, Diag> {
    v.get_ref()
        .as_table()
        .ok_or_else(|| wrong_type(v, &format!("a table for `{key}`")))
}

pub(crate) fn number(v: &Value<'_>, key: &str) -> Result<f64, Diag> {
    let n =
        as_number(v.get_ref()).ok_or_else(|| wrong_type(v, &format!("a number for `{key}`")))?;
    if !n.is_finite() {
        return Err(Diag::new(
            v.span(),
            format!("`{key}` must be a finite number"),
        ));
    }
    Ok(n)
}

pub(crate) fn count(v: &Value<'_>, key: &str) -> Result<u32, Diag> {
    let DeValue::Integer(_) = v.get_ref() else {
        return Err(wrong_type(v, &format!("a whole number for `{key}`")));
    };
    let n = as_int(v.get_ref()).unwrap_or(i64::MAX);
    if n < 0 {
        return Err(Diag::new(v.span(), format!("`{key}` must not be negative")));
    }
    u32::try_from(n).map_err(|_| {
        Diag::new(
            v.span(),
            format!("`{key}` is too large (at most {})", u32::MAX),
        )
    })
}

pub(crate) fn duration(v: &Value<'_>, key: &str) -> Result<std::time::Duration, Diag> {
    match v.get_ref() {
        DeValue::String(s) => parse_duration(s).map_err(|e| Diag::new(v.span(), e)),
        DeValue::Integer(_) | DeValue::Float(_) => {
            let raw = match v.get_ref() {
                DeValue::Integer(i) => i.as_str().to_string(),
                DeValue::Float(f) => f.as_str().to_string(),
                _ => unreachable!(),
            };
            let (likely, other) = bare_duration_units(key, &raw);
            Err(Diag::new(
                v.span(),
                format!(
                    "`{key}` needs a unit: write a string such as \"{raw}{likely}\" or \"{raw}{other}\""
                ),
            )
            .hint(Some(format!(
                "durations are strings with a unit: ns, us, ms, s, m or h (`{key} = \"{raw}{likely}\"`)"
            ))))
        }
        _ => Err(wrong_type(
            v,
            &format!("a duration string such as \"500ms\" for `{key}`"),
        )),
    }
}

/// The likelier reading of a bare number written for a duration key, then
/// the other: milliseconds or seconds, whichever puts it nearer (by ratio)
/// the key's built-in default (`warmup = 500` → "500ms", `timeout = 60` →
/// "60s"); 1 s stands in for a key without one.
fn bare_duration_units(key: &str, raw: &str) -> (&'static str, &'static str) {
    let d = crate::plan::Resolved::default();
    let default = match key {
        "warmup" => d.warmup,
        "max_time" => d.max_time,
        "timeout" => d.timeout,
        "monitor_interval" => d.monitor_interval,
        _ => std::time::Duration::from_secs(1),
    }
    .as_secs_f64();
    let x = raw.replace('_', "").parse::<f64>().map_or(0.0, f64::abs);
    let off = |secs: f64| (secs / default).ln().abs();
    if x > 0.0 && off(x * 1e-3) < off(x) {
        ("ms", "s")
    } else {
        ("s", "ms")
    }
}

#[allow(dead_code)] // kept beside `duration` for keys that take sizes
pub(crate) fn size(v: &Value<'_>, key: &str) -> Result<u64, Diag> {
    match v.get_ref() {
        DeValue::String(s) => parse_size(s).map_err(|e| Diag::new(v.span(), e)),
        DeValue::Integer(_) => match as_int(v.get_ref()) {
            Some(n) if n >= 0 => Ok(n as u64),
            _ => Err(Diag::new(v.span(), format!("`{key}` must not be negative"))),
        },
        _ => Err(wrong_type(
            v,
            &format!("a size such as \"4KiB\" or a number of bytes for `{key}`"),
        )),
    }
}

/// Deserializes a kind's spec struct from the keys left over after the
/// common ones, so its own `deny_unknown_fields` and types decide; serde's
/// error is turned into a located diagnostic with a hint.
pub(crate) fn spec<T: DeserializeOwned>(
    rest: DeTable<'_>,
    table_span: Range<usize>,
    kind: &str,
    common_keys: &[&str],
) -> Result<T, Diag> {
    // serde's messages do not name the key; find it from the error's span.
    let keys: Vec<(String, Range<usize>)> = rest
        .iter()
        .map(|(k, v)| (k.get_ref().to_string(), v.span()))
        .collect();
    let value = Spanned::new(table_span.clone(), DeValue::Table(rest));
    T::deserialize(ValueDeserializer::from(value)).map_err(|e| {
        let span = e.span().unwrap_or(table_span);
        let key = keys
            .iter()
            .find(|(_, v)| v.start <= span.start && span.end <= v.end)
            .map(|(k, _)| k.as_str());
        serde_diag(e.message(), span, kind, key, common_keys)
    })
}

/// The keys a spec struct declares, read from its `Deserialize` impl without
/// any data; used to say which kind an out-of-place key belongs to.
pub(crate) fn spec_fields<T: DeserializeOwned>() -> &'static [&'static str] {
    use serde::de::{Error as _, Visitor, value::Error};

    struct Probe<'a>(&'a mut &'static [&'static str]);
    impl<'de> serde::Deserializer<'de> for Probe<'_> {
        type Error = Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Error> {
            Err(Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Error> {
            *self.0 = fields;
            Err(Error::custom("fields probed"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Probe(&mut fields));
    fields
}

fn backticked(s: &str) -> Vec<&str> {
    s.split('`').skip(1).step_by(2).collect()
}

fn serde_diag(
    msg: &str,
    span: Range<usize>,
    kind: &str,
    key: Option<&str>,
    common_keys: &[&str],
) -> Diag {
    if let Some(rest) = msg.strip_prefix("unknown field ") {
        let words = backticked(rest);
        let (got, expected) = match words.split_first() {
            Some((g, e)) => (*g, e.to_vec()),
            None => ("?", Vec::new()),
        };
        let hint = closest(
            got,
            expected.iter().copied().chain(common_keys.iter().copied()),
        )
        .map(|c| format!("did you mean `{c}`?"))
        .or_else(|| {
            (!expected.is_empty()).then(|| {
                format!(
                    "besides the common scenario keys, a `{kind}` scenario takes: {}",
                    expected
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
        });
        return Diag::new(span, format!("unknown key `{got}` in a `{kind}` scenario")).hint(hint);
    }
    if let Some(rest) = msg.strip_prefix("missing field ") {
        let field = backticked(rest).first().copied().unwrap_or("?");
        return Diag::new(
            span,
            format!("missing key `{field}`: a `{kind}` scenario needs it"),
        );
    }
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some((found, expected)) = msg
            .strip_prefix(prefix)
            .and_then(|rest| rest.split_once(", expected "))
        {
            let expected = plain_type(expected);
            let what = key.map(|k| format!(" for `{k}`")).unwrap_or_default();
            return Diag::new(span, format!("expected {expected}{what}, found {found}"));
        }
    }
    Diag::new(span, lower_first(msg))
}

/// serde names Rust types ("f64", "a sequence"); say what to write in TOML.
fn plain_type(expected: &str) -> &str {
    match expected {
        "f32" | "f64" => "a number",
        "u8" | "u16" | "u32" | "u64" | "usize" | "i8" | "i16" | "i32" | "i64" | "isize" => {
            "a whole number"
        }
        "a sequence" => "an array",
        "a map" => "a table",
        "a boolean" => "true or false",
        other => other,
    }
}

pub(crate) fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Spanned<DeTable<'_>> {
        DeTable::parse(src).unwrap()
    }

    #[test]
    fn a_bare_duration_gets_its_likelier_unit() {
        let cases = [
            ("warmup", "500", "ms"),
            ("warmup", "3", "s"),
            ("warmup", "0", "s"),
            ("max_time", "10", "s"),
            ("max_time", "500", "ms"),
            ("timeout", "60", "s"),
            ("monitor_interval", "50", "ms"),
            ("monitor_interval", "1", "s"),
            ("timeout", "1_000", "s"),
        ];
        for (key, raw, want) in cases {
            assert_eq!(bare_duration_units(key, raw).0, want, "{key} = {raw}");
        }
    }

    #[test]
    fn typed_reads() {
        let doc = parse("a = \"5s\"\nb = 5\nc = true\nd = -3\ne = 1.5\n");
        let t = doc.get_ref();
        assert_eq!(duration(t.get("a").unwrap(), "a").unwrap().as_secs(), 5);
        let e = duration(t.get("b").unwrap(), "b").unwrap_err();
        assert!(e.message.contains("needs a unit"), "{}", e.message);
        let e = duration(t.get("c").unwrap(), "c").unwrap_err();
        assert_eq!(
            e.message,
            "expected a duration string such as \"500ms\" for `c`, found boolean"
        );
        assert_eq!(count(t.get("b").unwrap(), "b").unwrap(), 5);
        assert!(
            count(t.get("d").unwrap(), "d")
                .unwrap_err()
                .message
                .contains("negative")
        );
        assert!(count(t.get("e").unwrap(), "e").is_err());
        assert_eq!(number(t.get("e").unwrap(), "e").unwrap(), 1.5);
        assert_eq!(number(t.get("b").unwrap(), "b").unwrap(), 5.0);
        assert!(boolean(t.get("c").unwrap(), "c").unwrap());
        assert!(string(t.get("b").unwrap(), "b").is_err());
    }

    #[test]
    fn spec_fields_are_probed() {
        assert_eq!(
            spec_fields::<crate::plan::CommandSpec>(),
            [
                "command",
                "shell",
                "env",
                "cwd",
                "primary",
                "sweep",
                "find_max_batch"
            ]
        );
        assert!(spec_fields::<crate::plan::OomStressSpec>().contains(&"memory_fraction"));
    }

    #[test]
    fn serde_messages_become_diagnostics() {
        let cases = [
            (
                "unknown field `comand`, expected one of `command`, `shell`",
                "unknown key `comand` in a `command` scenario",
                Some("did you mean `command`?"),
            ),
            (
                "missing field `command`",
                "missing key `command`: a `command` scenario needs it",
                None,
            ),
            (
                "invalid type: integer `5`, expected a string",
                "expected a string, found integer `5`",
                None,
            ),
        ];
        for (msg, want, hint) in cases {
            let d = serde_diag(msg, 0..1, "command", None, &["name", "max_time"]);
            assert_eq!(d.message, want);
            assert_eq!(d.hint.as_deref(), hint);
        }
    }
}
