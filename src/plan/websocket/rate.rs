//! The open-loop send rate, `rate = "20000msg/s"` (or `"50req/s"`: with
//! a `protocol`, each message is a request).

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// Messages per second: a number or a string with a rate unit ("20000msg/s").
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate(pub f64);

pub(super) fn parse_rate(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(end);
    let v: f64 = num.replace('_', "").parse().map_err(|_| {
        format!(
            "invalid rate `{s}`: expected a number of messages per second, such as \"20000msg/s\""
        )
    })?;
    match unit.trim() {
        "" | "/s" | "msg/s" | "1/s" | "req/s" | "request/s" => Ok(v),
        "k/s" | "kmsg/s" | "kreq/s" => Ok(v * 1e3),
        other => Err(format!(
            "invalid rate `{s}`: unknown unit `{other}` (use /s, msg/s, req/s or k/s)"
        )),
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Rate;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a rate such as \"20000msg/s\" or a number of messages per second")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Rate, E> {
                parse_rate(s).map(Rate).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Rate, E> {
                Ok(Rate(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Rate, E> {
                Ok(Rate(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Rate, E> {
                Ok(Rate(v))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_rate;

    #[test]
    fn messages_or_requests_per_second() {
        assert_eq!(parse_rate("20000msg/s"), Ok(20000.0));
        assert_eq!(parse_rate("50req/s"), Ok(50.0));
        assert_eq!(parse_rate("1.5kreq/s"), Ok(1500.0));
        assert_eq!(parse_rate("2k/s"), Ok(2000.0));
        assert_eq!(parse_rate("40"), Ok(40.0));
        let e = parse_rate("5 tok/s").unwrap_err();
        assert!(
            e.contains("unknown unit `tok/s` (use /s, msg/s, req/s or k/s)"),
            "{e}"
        );
    }
}
