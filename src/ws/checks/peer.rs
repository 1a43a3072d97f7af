//! The server as the raw checks speak to it: where it is, the handshake
//! headers the flood sends (a bearer token), and which requests it answers:
//! neon-perf's own format, or with `[scenario.protocol]` the team's own
//! requests, whose streams of replies are read to their end.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

use super::raw::{self, FrameReader, OP_BINARY, OP_CLOSE, OP_TEXT, RawConn, ReadEnd, WsUrl};
use crate::stats::Rng;
use crate::ws::client::Headers;
use crate::ws::client::stream::reply::Role;
use crate::ws::client::stream::{End, Protocol, Request, quote};

/// A server the checks talk to.
#[derive(Clone, Debug)]
pub struct Peer {
    pub url: WsUrl,
    /// Sent with every handshake; values never appear in evidence.
    pub headers: Headers,
    /// The server's own protocol; `None`: neon-perf's format.
    pub protocol: Option<Protocol>,
}

impl Peer {
    /// neon-perf's format, no headers.
    pub fn plain(url: WsUrl) -> Peer {
        Peer {
            url,
            headers: Headers::default(),
            protocol: None,
        }
    }

    /// A handshake with the headers.
    pub async fn connect(&self) -> Result<RawConn, String> {
        raw::connect(&self.url, &self.headers.0)
            .await
            .map_err(|e| self.headers.redact(&e))
    }

    /// The first half of a handshake, for checks that drop a connection there.
    pub fn handshake_request(&self) -> String {
        raw::handshake_request(&self.url, &self.headers.0)
    }

    /// Request `id` as a whole masked frame: the protocol's (a text
    /// template with `{id}`, or its binary payload), else what `conn`'s
    /// server answers in neon-perf's format.
    pub fn request(&self, conn: &RawConn, id: u64) -> Vec<u8> {
        self.protocol_request(id)
            .unwrap_or_else(|| raw::frame(OP_BINARY, &conn.request(id), true))
    }

    /// The protocol's request `id` as a whole masked frame (`None` without
    /// a protocol).
    pub fn protocol_request(&self, id: u64) -> Option<Vec<u8>> {
        let p = self.protocol.as_ref()?;
        let mut rng = Rng::new(id);
        Some(match p.request.build(&p.matching, id, 0, id, &mut rng).0 {
            Message::Text(t) => raw::frame(OP_TEXT, t.as_bytes(), true),
            Message::Binary(b) => raw::frame(OP_BINARY, &b, true),
            _ => unreachable!("a request is a text or binary message"),
        })
    }

    /// Whether requests go out as text frames (the protocol's text
    /// templates); the probes of `oversize` are then text too.
    pub fn speaks_text(&self) -> bool {
        self.protocol
            .as_ref()
            .is_some_and(|p| !matches!(p.request, Request::Binary(_)))
    }

    /// Reads the answer to one request, within `limit`: its reply in
    /// neon-perf's format, or its whole stream under the protocol (to the
    /// end frame, the N-th reply, an idle gap, or the server's close, as
    /// `end` says). An error frame, a close first, or no answer is `Err`.
    pub async fn answer<R: AsyncRead + Unpin>(
        &self,
        rd: &mut FrameReader<R>,
        limit: Duration,
    ) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut replies = 0u32;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let wait = match self.protocol.as_ref().map(|p| &p.end) {
                Some(End::Idle(d)) if replies > 0 => (*d).min(left),
                _ => left,
            };
            let end = rd.read(wait).await;
            let f = match end {
                ReadEnd::Timeout if replies > 0 && wait < left => return Ok(()),
                ReadEnd::Frame(f) if f.opcode == OP_TEXT || f.opcode == OP_BINARY => f,
                ReadEnd::Frame(f) if f.opcode != OP_CLOSE => continue,
                _ if replies > 0 && self.ends_on_close() => return Ok(()),
                ReadEnd::Timeout => {
                    return Err(format!("no answer within {:.0} s", limit.as_secs_f64()));
                }
                end => return Err(format!("closed before its answer: {}", raw::describe(&end))),
            };
            let Some(p) = &self.protocol else {
                return Ok(());
            };
            let seen = match f.opcode {
                OP_TEXT => p.read_text(&String::from_utf8_lossy(&f.payload)),
                _ => p.read_binary(&f.payload),
            };
            match seen.role {
                Role::Error => {
                    let text = String::from_utf8_lossy(&f.payload);
                    return Err(format!(
                        "an error frame: {}",
                        quote(&self.headers.redact(&text))
                    ));
                }
                Role::End => return Ok(()),
                Role::Skip => {}
                Role::Reply => {
                    replies += 1;
                    match p.end {
                        End::First => return Ok(()),
                        End::Count(n) if replies >= n => return Ok(()),
                        _ => {}
                    }
                }
            }
        }
    }

    fn ends_on_close(&self) -> bool {
        matches!(self.protocol.as_ref().map(|p| &p.end), Some(End::Close))
    }

    /// Whether a fresh connection still gets an answer: handshake, one
    /// request, its answer (its whole stream under the protocol), within
    /// 5 s each. `Err` says what went wrong.
    pub async fn probe(&self) -> Result<(), String> {
        let conn = tokio::time::timeout(Duration::from_secs(5), self.connect())
            .await
            .map_err(|_| "handshake timed out".to_string())??;
        let msg = self.request(&conn, 1);
        let (mut rd, mut wr) = conn.into_parts();
        wr.write_all(&msg)
            .await
            .map_err(|e| format!("write: {e}"))?;
        let got = self
            .answer(&mut rd, Duration::from_secs(5))
            .await
            .map_err(|e| format!("request not answered: {e}"));
        let _ = wr.write_all(&raw::close_frame(1000)).await;
        let _ = rd.until_close(Duration::from_secs(2)).await;
        got
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::client::stream::{Goodput, Matching, request};

    fn protocol(end: End) -> Protocol {
        Protocol {
            request: Request::Text(request::compile(r#"{"id":"{id}"}"#, &[])),
            matching: Matching::Json("/id".into()),
            end,
            skip_empty: None,
            error: Some(("/type".into(), serde_json::json!("error"))),
            units: None,
            goodput: Goodput::default(),
        }
    }

    fn peer(end: End) -> Peer {
        Peer {
            protocol: Some(protocol(end)),
            headers: Headers(vec![("Authorization".into(), "Bearer s3cret-token".into())]),
            ..Peer::plain(raw::parse_url("ws://127.0.0.1:9/").unwrap())
        }
    }

    /// Server frames (unmasked) of `texts`, then a close 1000 when `close`.
    fn frames(texts: &[&str], close: bool) -> Vec<u8> {
        let mut b = Vec::new();
        for t in texts {
            b.extend(raw::frame(OP_TEXT, t.as_bytes(), false));
        }
        if close {
            b.extend(raw::frame(OP_CLOSE, &1000u16.to_be_bytes(), false));
        }
        b
    }

    async fn answer(p: &Peer, bytes: &[u8]) -> Result<(), String> {
        let (rd, _keep) = tokio::io::simplex(1 << 16);
        let mut r = FrameReader::new(rd, bytes.to_vec());
        p.answer(&mut r, Duration::from_millis(300)).await
    }

    #[tokio::test]
    async fn a_stream_is_read_to_the_end_its_protocol_names() {
        let tok = r#"{"id":"1","type":"token"}"#;
        let done = r#"{"id":"1","type":"done"}"#;
        let end = End::Json("/type".into(), serde_json::json!("done"));
        assert_eq!(
            answer(&peer(end.clone()), &frames(&[tok, tok, done], false)).await,
            Ok(())
        );
        // Without its end frame, the stream is not answered.
        let e = answer(&peer(end.clone()), &frames(&[tok, tok], false))
            .await
            .unwrap_err();
        assert!(e.contains("no answer"), "{e}");
        let e = answer(&peer(end), &frames(&[tok], true)).await.unwrap_err();
        assert!(e.contains("closed before its answer: close 1000"), "{e}");
        assert_eq!(
            answer(&peer(End::Count(2)), &frames(&[tok, tok], false)).await,
            Ok(())
        );
        assert!(
            answer(&peer(End::Count(3)), &frames(&[tok, tok], false))
                .await
                .is_err()
        );
        let idle = End::Idle(Duration::from_millis(50));
        assert_eq!(answer(&peer(idle), &frames(&[tok], false)).await, Ok(()));
        assert_eq!(
            answer(&peer(End::Close), &frames(&[tok], true)).await,
            Ok(())
        );
        assert_eq!(
            answer(&peer(End::First), &frames(&[tok], false)).await,
            Ok(())
        );
    }

    #[tokio::test]
    async fn an_error_frame_is_quoted_with_secrets_redacted() {
        let err = r#"{"id":"1","type":"error","message":"bad token s3cret-token"}"#;
        let e = answer(&peer(End::First), &frames(&[err], false))
            .await
            .unwrap_err();
        assert!(e.starts_with("an error frame: "), "{e}");
        assert!(e.contains("<redacted>") && !e.contains("s3cret"), "{e}");
    }

    #[test]
    fn requests_follow_the_protocol_with_a_new_id_each() {
        let p = peer(End::First);
        let unmask = |mut f: Vec<u8>| {
            let payload = f.split_off(6);
            let mut p = payload.clone();
            raw::apply_mask(&mut p, raw::MASK, 0);
            (f[0], String::from_utf8(p).unwrap())
        };
        let (op, text) = unmask(p.protocol_request(7).unwrap());
        assert_eq!(op, 0x80 | OP_TEXT);
        let other = unmask(p.protocol_request(8).unwrap()).1;
        assert!(text.starts_with("{\"id\":\"") && text != other, "{text}");
        assert_eq!(Peer::plain(p.url.clone()).protocol_request(7), None);
        assert!(p.speaks_text());
        assert!(!Peer::plain(p.url.clone()).speaks_text());
        let h = p.handshake_request();
        assert!(
            h.contains("\r\nAuthorization: Bearer s3cret-token\r\n"),
            "{h}"
        );
    }
}
