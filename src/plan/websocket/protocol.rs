//! `[scenario.protocol]` of a `websocket_flood`: the team's own wire
//! protocol — what a request looks like, which request a reply belongs to,
//! what ends a stream of replies, and what counts as an error, a unit of
//! work and a good request. The checks are in `protocol_rules`; the engine
//! (`ws::client::stream`) gets these settings translated by the executor.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor, value::MapAccessDeserializer};

use super::payload::SizeSpec;
use crate::units::HumanDuration;

/// `[scenario.protocol]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtocolSpec {
    /// What each request carries.
    pub request: RequestSpec,
    /// Which request a reply belongs to (default `"id"`: today's wire format).
    #[serde(default, rename = "match")]
    pub matching: Option<MatchSpec>,
    /// What ends a request's stream (default: its first reply).
    #[serde(default)]
    pub end: Option<EndSpec>,
    /// A reply whose string at this pointer is empty is not counted.
    #[serde(default)]
    pub skip_empty: Option<String>,
    /// A frame with this value ends its request as failed.
    #[serde(default)]
    pub error: Option<FieldEquals>,
    /// Units of work per request, read from the stream's last frame that has them.
    #[serde(default)]
    pub units: Option<UnitsSpec>,
    /// Bounds a request must meet to count towards `goodput`.
    #[serde(default)]
    pub goodput: Option<GoodputSpec>,
}

/// `request = { text = "<template>" }`, `{ binary = <size> }` or `{ file = "requests.jsonl" }`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    /// A text template: `{id}`, `{conn}`, `{seq}` and the point's params are
    /// substituted, every other brace is literal.
    #[serde(default)]
    pub text: Option<String>,
    /// Random seeded bytes of this size (or `{ min, max }`).
    #[serde(default)]
    pub binary: Option<SizeSpec>,
    /// One text request per line of this file (relative to the suite),
    /// used in turn; placeholders as in `text`.
    #[serde(default)]
    pub file: Option<PathBuf>,
}

/// `match = "id" | "order" | { json = "/pointer" }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MatchSpec {
    Id,
    Order,
    Json(String),
}

/// `end = "close" | { json, equals } | { count } | { idle }`; the table is
/// checked by `protocol_rules` (exactly one way, `equals` with `json`).
#[derive(Clone, Debug, PartialEq)]
pub enum EndSpec {
    Close,
    Table(EndTable),
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndTable {
    #[serde(default)]
    pub json: Option<String>,
    #[serde(default)]
    pub equals: Option<serde_json::Value>,
    #[serde(default)]
    pub count: Option<u64>,
    #[serde(default)]
    pub idle: Option<HumanDuration>,
}

/// `{ json = "/pointer", equals = <value> }`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldEquals {
    pub json: String,
    pub equals: serde_json::Value,
}

/// `units = { json = "/usage/output_tokens", name = "tokens" }`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitsSpec {
    pub json: String,
    /// Default `"units"`.
    #[serde(default)]
    pub name: Option<String>,
}

/// `goodput = { time_to_first_reply = "300ms", time_per_reply = "40ms" }`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoodputSpec {
    #[serde(default)]
    pub time_to_first_reply: Option<HumanDuration>,
    #[serde(default)]
    pub time_per_reply: Option<HumanDuration>,
}

impl ProtocolSpec {
    pub fn matching(&self) -> MatchSpec {
        self.matching.clone().unwrap_or(MatchSpec::Id)
    }

    /// Name of the units, `"units"` unless given.
    pub fn units_name(&self) -> Option<&str> {
        let u = self.units.as_ref()?;
        Some(u.name.as_deref().unwrap_or("units"))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MatchTable {
    json: String,
}

impl<'de> Deserialize<'de> for MatchSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MatchSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"id\", \"order\" or a table `{ json = \"/pointer\" }`")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<MatchSpec, E> {
                match s {
                    "id" => Ok(MatchSpec::Id),
                    "order" => Ok(MatchSpec::Order),
                    other => Err(E::invalid_value(de::Unexpected::Str(other), &self)),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<MatchSpec, A::Error> {
                let t = MatchTable::deserialize(MapAccessDeserializer::new(map))?;
                Ok(MatchSpec::Json(t.json))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for EndSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = EndSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "\"close\" or a table: `{ json = \"/pointer\", equals = <value> }`, `{ count = N }` or `{ idle = \"500ms\" }`",
                )
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<EndSpec, E> {
                match s {
                    "close" => Ok(EndSpec::Close),
                    other => Err(E::invalid_value(de::Unexpected::Str(other), &self)),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<EndSpec, A::Error> {
                EndTable::deserialize(MapAccessDeserializer::new(map)).map(EndSpec::Table)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Result<ProtocolSpec, String> {
        toml::from_str(src).map_err(|e| e.to_string())
    }

    #[test]
    fn reads_every_key() {
        let p = parse(
            r#"request = { text = '{"id":"{id}"}' }
match = { json = "/id" }
end = { json = "/type", equals = "done" }
skip_empty = "/text"
error = { json = "/type", equals = "error" }
units = { json = "/usage/output_tokens", name = "tokens" }
goodput = { time_to_first_reply = "300ms", time_per_reply = "40ms" }"#,
        )
        .unwrap();
        assert_eq!(p.matching(), MatchSpec::Json("/id".into()));
        let EndSpec::Table(t) = p.end.clone().unwrap() else {
            panic!()
        };
        assert_eq!(t.equals, Some(serde_json::json!("done")));
        assert_eq!(p.units_name(), Some("tokens"));
        let o = parse("request = { binary = 64 }\nmatch = \"order\"\nend = \"close\"").unwrap();
        assert_eq!(
            (o.matching(), o.end),
            (MatchSpec::Order, Some(EndSpec::Close))
        );
    }

    #[test]
    fn refuses_unknown_forms() {
        for (src, want) in [
            ("request = { text = 'x' }\nmatch = \"first\"", "\"order\""),
            ("request = { text = 'x' }\nend = \"done\"", "\"close\""),
            (
                "request = { text = 'x' }\nend = { count = 2, after = 1 }",
                "after",
            ),
            ("request = { txt = 'x' }", "txt"),
        ] {
            let e = parse(src).unwrap_err();
            assert!(e.contains(want), "{src}: {e}");
        }
    }
}
