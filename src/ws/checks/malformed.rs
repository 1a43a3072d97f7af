//! `malformed`: invalid frames (an unmasked client frame, a reserved opcode)
//! must each get close 1002, and the server must go on serving.

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
        let end = match wr.write_all(&bytes).await {
            Ok(()) => rd.until_close(Duration::from_secs(5)).await.0,
            Err(e) => raw::ReadEnd::Error(e),
        };
        passed &= raw::close_code(&end) == Some(1002);
        parts.push(format!("{name} → {}", raw::describe(&end)));
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
