//! Reads one reply frame under a [`Protocol`]: which request it belongs
//! to, and whether it is a counted reply, a skipped one, the stream's end
//! or an error. The text is parsed as JSON once, and only when a pointer
//! needs it.

use serde_json::Value;

use super::{End, Matching, Protocol};
use crate::ws::protocol::{binary_id, text_id};

/// Which request a frame belongs to.
#[derive(Clone, Debug, PartialEq)]
pub enum Owner {
    /// The request with this id.
    Id(u64),
    /// The oldest unfinished request of the connection.
    Oldest,
    /// None: why (for the `unmatched` evidence).
    Unmatched(&'static str),
}

/// What a frame is to its stream.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Role {
    Reply,
    /// Not counted (`skip_empty`).
    Skip,
    /// Ends the stream; not a reply.
    End,
    /// Ends the request as failed.
    Error,
}

/// A frame, read.
#[derive(Clone, Debug, PartialEq)]
pub struct Seen {
    pub owner: Owner,
    pub role: Role,
    /// The `units` number, when the frame has one.
    pub units: Option<f64>,
}

impl Protocol {
    /// Reads a text frame.
    pub fn read_text(&self, text: &str) -> Seen {
        if !self.reads_json() {
            let owner = match self.matching {
                Matching::Id => id_owner(text_id(text)),
                _ => Owner::Oldest,
            };
            return Seen {
                owner,
                role: Role::Reply,
                units: None,
            };
        }
        let json: Option<Value> = serde_json::from_str(text).ok();
        let owner = match (&self.matching, &json) {
            (Matching::Id, _) => id_owner(text_id(text)),
            (Matching::Order, _) => Owner::Oldest,
            (Matching::Json(_), None) => Owner::Unmatched("a reply that is not JSON"),
            (Matching::Json(p), Some(v)) => json_owner(v.pointer(p)),
        };
        let Some(v) = json else {
            return Seen {
                owner,
                role: Role::Reply,
                units: None,
            };
        };
        let role = self.role(&v);
        // A server that could not read a request often cannot echo its id
        // (`"request_id": null`): an error frame no request claims fails
        // the connection's oldest open one, rather than leave it to the
        // drain deadline and count the error as an unmatched reply.
        let owner = match (role, owner) {
            (Role::Error, Owner::Unmatched(_)) => Owner::Oldest,
            (_, o) => o,
        };
        Seen {
            owner,
            role,
            units: self
                .units
                .as_deref()
                .and_then(|p| v.pointer(p))
                .and_then(Value::as_f64),
        }
    }

    /// Reads a binary frame: always a reply, never an end.
    pub fn read_binary(&self, bytes: &[u8]) -> Seen {
        let owner = match self.matching {
            Matching::Id => id_owner(binary_id(bytes)),
            Matching::Order => Owner::Oldest,
            Matching::Json(_) => Owner::Unmatched(
                "a binary reply under `match.json` (binary frames carry no JSON field: with one stream per connection, `match = \"order\"` matches them)",
            ),
        };
        Seen {
            owner,
            role: Role::Reply,
            units: None,
        }
    }

    fn role(&self, v: &Value) -> Role {
        if let Some((p, want)) = &self.error {
            if v.pointer(p) == Some(want) {
                return Role::Error;
            }
        }
        if let End::Json(p, want) = &self.end {
            if v.pointer(p) == Some(want) {
                return Role::End;
            }
        }
        if let Some(p) = &self.skip_empty {
            if v.pointer(p).and_then(Value::as_str) == Some("") {
                return Role::Skip;
            }
        }
        Role::Reply
    }
}

fn id_owner(id: Option<u64>) -> Owner {
    id.map_or(Owner::Unmatched("a reply without a request id"), Owner::Id)
}

/// The request id at the pointer: a string of digits or a number.
fn json_owner(v: Option<&Value>) -> Owner {
    match v {
        None => Owner::Unmatched("a reply without the `match.json` field"),
        Some(Value::String(s)) => s.parse().map_or(
            Owner::Unmatched("a reply whose id is no request's"),
            Owner::Id,
        ),
        Some(Value::Number(n)) => n.as_u64().map_or(
            Owner::Unmatched("a reply whose id is no request's"),
            Owner::Id,
        ),
        Some(_) => Owner::Unmatched("a reply whose `match.json` field is not a string or number"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::client::stream::{Goodput, Request};
    use serde_json::json;

    fn proto(matching: Matching, end: End) -> Protocol {
        Protocol {
            request: Request::Text(vec![]),
            matching,
            end,
            skip_empty: Some("/text".into()),
            error: Some(("/type".into(), json!("error"))),
            units: Some("/usage/n".into()),
            goodput: Goodput::default(),
        }
    }

    #[test]
    fn reads_owner_and_role() {
        let p = proto(
            Matching::Json("/id".into()),
            End::Json("/type".into(), json!("done")),
        );
        let r = |t: &str| p.read_text(t);
        assert_eq!(r(r#"{"id":"12","text":"a"}"#).owner, Owner::Id(12));
        assert_eq!(r(r#"{"id":12,"text":"a"}"#).role, Role::Reply);
        assert_eq!(r(r#"{"id":"12","text":""}"#).role, Role::Skip);
        let end = r(r#"{"id":"12","type":"done","usage":{"n":7}}"#);
        assert_eq!((end.role, end.units), (Role::End, Some(7.0)));
        assert_eq!(r(r#"{"id":"1","type":"error"}"#).role, Role::Error);
        assert!(matches!(r("not json").owner, Owner::Unmatched(w) if w.contains("not JSON")));
        assert!(matches!(r(r#"{"x":1}"#).owner, Owner::Unmatched(w) if w.contains("field")));
        assert!(matches!(r(r#"{"id":"abc"}"#).owner, Owner::Unmatched(_)));
        // An error frame without the request's id fails the oldest open one.
        for e in [r#"{"id":null,"type":"error"}"#, r#"{"type":"error"}"#] {
            assert_eq!((r(e).owner, r(e).role), (Owner::Oldest, Role::Error));
        }
        assert!(matches!(
            p.read_binary(b"12345678").owner,
            Owner::Unmatched(_)
        ));
    }

    #[test]
    fn order_and_id_matching() {
        let p = proto(Matching::Order, End::Count(3));
        assert_eq!(p.read_text("anything").owner, Owner::Oldest);
        let p = proto(Matching::Id, End::First);
        assert_eq!(p.read_text("00000000000000ffrest").owner, Owner::Id(255));
        assert_eq!(p.read_binary(&7u64.to_le_bytes()).owner, Owner::Id(7));
    }
}
