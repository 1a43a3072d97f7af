//! Request frames of a protocol flood: a text template with `{id}`,
//! `{conn}` and `{seq}` filled in per request (the point's params are
//! already literal text), or random binary bodies. Under `match = "id"`
//! the frame starts with neon-perf's id, as without `protocol`.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio_tungstenite::tungstenite::Message;

use super::Matching;
use crate::stats::Rng;
use crate::ws::client::payload::Payload;
use crate::ws::protocol::{TEXT_ID_LEN, put_text_id};

/// A piece of a text template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    Lit(String),
    /// The request's id, in decimal: unique in the flood.
    Id,
    /// The connection's index.
    Conn,
    /// The request's sequence number on its connection.
    Seq,
}

/// What a request carries.
#[derive(Clone, Debug)]
pub enum Request {
    Text(Vec<Part>),
    /// One template per line of a file, used in turn over the whole flood
    /// (`next` is shared by every connection).
    Lines {
        lines: Vec<Vec<Part>>,
        next: Arc<AtomicUsize>,
    },
    /// Random seeded bodies (8-byte id first, as [`Payload`] builds them).
    Binary(Payload),
}

impl Request {
    /// The frame for request `seq` of connection `conn`, whose id is `id`,
    /// and its length in bytes.
    pub fn build(
        &self,
        matching: &Matching,
        id: u64,
        conn: u32,
        seq: u64,
        rng: &mut Rng,
    ) -> (Message, usize) {
        let parts = match self {
            Request::Binary(p) => return p.message(id, rng),
            Request::Text(parts) => parts,
            Request::Lines { lines, next } => {
                &lines[next.fetch_add(1, Ordering::Relaxed) % lines.len().max(1)]
            }
        };
        let mut s = String::with_capacity(64);
        if *matching == Matching::Id {
            let mut head = [0u8; TEXT_ID_LEN];
            put_text_id(&mut head, id);
            s.push_str(std::str::from_utf8(&head).expect("hex digits"));
        }
        render(parts, id, conn, seq, &mut s);
        let len = s.len();
        (Message::Text(s.into()), len)
    }

    /// Request templates, one per line of a file (at least one).
    pub fn lines(templates: Vec<Vec<Part>>) -> Request {
        Request::Lines {
            lines: templates,
            next: Arc::new(AtomicUsize::new(0)),
        }
    }
}

/// Appends the template with its placeholders filled in to `out`.
pub fn render(parts: &[Part], id: u64, conn: u32, seq: u64, out: &mut String) {
    for p in parts {
        // Writing to a String cannot fail.
        let _ = match p {
            Part::Lit(s) => {
                out.push_str(s);
                Ok(())
            }
            Part::Id => write!(out, "{id}"),
            Part::Conn => write!(out, "{conn}"),
            Part::Seq => write!(out, "{seq}"),
        };
    }
}

/// Splits `template` at `{id}`, `{conn}`, `{seq}` and the names in `vars`
/// (replaced by their text); every other brace stays as written.
pub fn compile(template: &str, vars: &[(String, String)]) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        lit.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after.find('}');
        let name = close.map(|c| &after[..c]);
        let part = match name {
            Some("id") => Some(Part::Id),
            Some("conn") => Some(Part::Conn),
            Some("seq") => Some(Part::Seq),
            Some(n) => vars
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| Part::Lit(v.clone())),
            None => None,
        };
        match (part, close) {
            (Some(Part::Lit(v)), Some(c)) => {
                lit.push_str(&v);
                rest = &after[c + 1..];
            }
            (Some(p), Some(c)) => {
                if !lit.is_empty() {
                    parts.push(Part::Lit(std::mem::take(&mut lit)));
                }
                parts.push(p);
                rest = &after[c + 1..];
            }
            _ => {
                lit.push('{');
                rest = after;
            }
        }
    }
    lit.push_str(rest);
    if !lit.is_empty() {
        parts.push(Part::Lit(lit));
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_placeholders_and_keep_other_braces() {
        let vars = [("prompt".to_string(), "hi".to_string())];
        let parts = compile(
            r#"{"id":"{id}","c":{conn},"s":{seq},"p":"{prompt}","o":{"k":{x}}}"#,
            &vars,
        );
        let mut s = String::new();
        render(&parts, 1 << 40 | 7, 1, 7, &mut s);
        assert_eq!(
            s,
            r#"{"id":"1099511627783","c":1,"s":7,"p":"hi","o":{"k":{x}}}"#
        );
        let serde_ok: serde_json::Value = serde_json::from_str(&s.replace("{x}", "1")).unwrap();
        assert_eq!(serde_ok["p"], "hi");
    }

    #[test]
    fn file_lines_are_used_in_turn() {
        let r = Request::lines(vec![compile("a{seq}", &[]), compile("b{seq}", &[])]);
        let texts: Vec<String> = (0..3)
            .map(|seq| {
                let (m, _) = r.build(&Matching::Order, seq, 0, seq, &mut Rng::new(1));
                m.to_text().unwrap().to_string()
            })
            .collect();
        assert_eq!(texts, ["a0", "b1", "a2"]);
    }

    #[test]
    fn id_matching_puts_the_id_first() {
        let r = Request::Text(compile("x{seq}", &[]));
        let (m, len) = r.build(&Matching::Id, 0xab, 0, 3, &mut Rng::new(1));
        assert_eq!(m.to_text().unwrap(), "00000000000000abx3");
        assert_eq!(len, 18);
    }
}
