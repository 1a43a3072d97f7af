//! The streaming mode's request: `{"op":"generate","id":…,"max_tokens":N}`
//! (docs/websocket.md, "The reference server streams"), read into the id
//! to echo and the number of tokens, or why it cannot be served.

use serde_json::Value;

/// Most tokens one request may ask for.
pub const MAX_TOKENS: u64 = 100_000;

/// A `generate` request: its id as JSON text, and how many tokens.
#[derive(Debug, PartialEq)]
pub(crate) struct Generate {
    pub id: String,
    pub tokens: u32,
}

/// Reads a text request; an error carries the id to answer (JSON `null`
/// when there is none) and the reason.
pub(crate) fn parse(text: &str) -> Result<Generate, (String, String)> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| ("null".to_string(), format!("request is not JSON: {e}")))?;
    let id = match v.get("id") {
        Some(id @ (Value::String(_) | Value::Number(_))) => id.to_string(),
        _ => {
            return Err((
                "null".into(),
                "request needs an `id` (a string or a number)".into(),
            ));
        }
    };
    if v.get("op").and_then(Value::as_str) != Some("generate") {
        return Err((id, "unknown `op`: expected \"generate\"".into()));
    }
    match v.get("max_tokens").and_then(Value::as_u64) {
        Some(n) if (1..=MAX_TOKENS).contains(&n) => Ok(Generate {
            id,
            tokens: n as u32,
        }),
        _ => Err((
            id,
            format!("`max_tokens` must be a whole number from 1 to {MAX_TOKENS}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_refusals() {
        let ok = parse(r#"{"op":"generate","id":"a7","max_tokens":3,"prompt":"x"}"#).unwrap();
        assert_eq!((ok.id.as_str(), ok.tokens), ("\"a7\"", 3));
        assert_eq!(
            parse(r#"{"op":"generate","id":12,"max_tokens":1}"#)
                .unwrap()
                .id,
            "12"
        );
        let cases = [
            ("nope", "null", "not JSON"),
            (
                r#"{"op":"generate","max_tokens":1}"#,
                "null",
                "needs an `id`",
            ),
            (
                r#"{"op":"stop","id":"x","max_tokens":1}"#,
                "\"x\"",
                "unknown `op`",
            ),
            (
                r#"{"op":"generate","id":"x","max_tokens":0}"#,
                "\"x\"",
                "from 1 to",
            ),
            (r#"{"op":"generate","id":"x"}"#, "\"x\"", "from 1 to"),
        ];
        for (text, id, why) in cases {
            let (got_id, got_why) = parse(text).unwrap_err();
            assert_eq!(got_id, id, "{text}");
            assert!(got_why.contains(why), "{text}: {got_why}");
        }
    }
}
