//! `malformed`: invalid frames (an unmasked client frame, a reserved opcode)
//! must each close their connection, with close 1002 or without a close
//! frame (RFC 6455 §5.1 and §7.1.7: the server MUST close it and MAY send
//! 1002 first), and the server must go on serving.

use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::peer::Peer;
use super::raw;

/// The invalid frames sent, each on its own connection.
fn cases() -> [(&'static str, Vec<u8>); 2] {
    [
        (
            "unmasked client frame",
            raw::frame(raw::OP_BINARY, &[1u8; 16], false),
        ),
        ("reserved opcode 0x3", raw::frame(0x3, &[1u8; 16], true)),
    ]
}

pub async fn run(peer: &Peer) -> (bool, String) {
    let mut passed = true;
    let mut parts = Vec::new();
    for (name, bytes) in cases() {
        let conn = match peer.connect().await {
            Ok(c) => c,
            Err(e) => return (false, format!("could not connect: {e}")),
        };
        let (mut rd, mut wr) = conn.into_parts();
        let (end, frames) = match wr.write_all(&bytes).await {
            Ok(()) => {
                let (end, frames, _) = rd.until_close(Duration::from_secs(5)).await;
                (end, frames)
            }
            Err(e) => (raw::ReadEnd::Error(e), 0),
        };
        let (ok, note) = judged(&end);
        passed &= ok;
        let how = match (&end, frames) {
            (raw::ReadEnd::Timeout, n) if n > 0 => {
                format!("accepted: answered with {n} frame(s) and left open for 5 s")
            }
            _ => raw::describe(&end),
        };
        parts.push(format!("{name} → {how}{note}"));
    }
    match peer.probe().await {
        Ok(()) => parts.push("a new connection was then served".into()),
        Err(e) => {
            passed = false;
            parts.push(format!("a new connection then failed: {e}"));
        }
    }
    (passed, parts.join("; "))
}

/// Whether the server closed the connection as RFC 6455 asks, and a note
/// for the evidence: close 1002, or the connection closed without a close
/// frame; another close code, or no answer, fails.
fn judged(end: &raw::ReadEnd) -> (bool, &'static str) {
    match (end, raw::close_code(end)) {
        (_, Some(1002)) => (true, ""),
        (_, Some(_)) => (false, " (expected 1002)"),
        (raw::ReadEnd::Eof | raw::ReadEnd::Error(_), _) => (true, " (RFC 6455 allows it)"),
        _ => (false, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raw::{Frame, ReadEnd};

    #[test]
    fn a_close_1002_or_a_dropped_connection_pass() {
        let close = |code: u16| {
            ReadEnd::Frame(Frame {
                opcode: raw::OP_CLOSE,
                payload: code.to_be_bytes().to_vec(),
            })
        };
        assert_eq!(judged(&close(1002)), (true, ""));
        assert_eq!(judged(&close(1000)), (false, " (expected 1002)"));
        assert!(judged(&ReadEnd::Eof).0);
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(judged(&ReadEnd::Error(reset)).0);
        assert_eq!(judged(&ReadEnd::Timeout), (false, ""));
    }
}
