//! `oversize`: one message over the server's limit must get close 1009 (or
//! the connection dropped), and the server must then accept a new connection.

use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::observe::mib;
use super::peer::Peer;
use super::raw::{self, OP_BINARY, OP_TEXT, ReadEnd};

/// Probe size when the server's limit is unknown: over the 10 MiB of the
/// reference server and the 1 MiB of Python `websockets`, under the 100 MiB
/// of Node `ws` (which then answers it, and the check says so).
pub const UNKNOWN_LIMIT_PROBE: usize = 16 << 20;

pub async fn run(peer: &Peer, max_message: Option<usize>) -> (bool, String) {
    let size = match max_message {
        Some(m) => m + (1 << 20),
        None => UNKNOWN_LIMIT_PROBE,
    };
    let sized = match max_message {
        Some(m) => format!("{} message (limit {})", mib(size as f64), mib(m as f64)),
        None => format!("{} message (server limit not given)", mib(size as f64)),
    };
    let conn = match peer.connect().await {
        Ok(c) => c,
        Err(e) => return (false, format!("could not connect: {e}")),
    };
    let (mut rd, mut wr) = conn.into_parts();
    // A server whose requests are text gets a text message (of NULs, valid
    // UTF-8): the frame type its handlers read.
    let opcode = if peer.speaks_text() {
        OP_TEXT
    } else {
        OP_BINARY
    };
    // Write the message while reading: a server that refuses it early
    // answers before we are done sending.
    let writer = tokio::spawn(async move {
        let mut written = 0usize;
        let header = raw::frame_header(opcode, size as u64, Some(raw::MASK));
        if wr.write_all(&header).await.is_err() {
            return (written, wr);
        }
        // Zeros masked: the chunk is the same at every 4-byte-aligned offset.
        let mut chunk = vec![0u8; 64 << 10];
        raw::apply_mask(&mut chunk, raw::MASK, 0);
        while written < size {
            let n = chunk.len().min(size - written);
            if wr.write_all(&chunk[..n]).await.is_err() {
                break;
            }
            written += n;
        }
        (written, wr)
    });
    let (end, frames, _) = rd.until_close(Duration::from_secs(20)).await;
    let mut writer = writer;
    let limit = if matches!(end, ReadEnd::Timeout) {
        0
    } else {
        5
    };
    let written = tokio::select! {
        r = &mut writer => match r {
            Ok((n, mut wr)) => {
                let _ = wr.write_all(&raw::close_frame(1000)).await;
                Some(n)
            }
            Err(_) => None,
        },
        _ = tokio::time::sleep(Duration::from_secs(limit)) => {
            writer.abort();
            None
        }
    };
    let sent = match written {
        Some(n) if n >= size => "sent it all".to_string(),
        Some(n) => format!("sent {} of it", mib(n as f64)),
        None => "send did not finish".to_string(),
    };
    let code = raw::close_code(&end);
    let (refused, how) = match (&end, code) {
        (_, Some(1009)) => (true, raw::describe(&end)),
        (ReadEnd::Eof | ReadEnd::Error(_), _) if frames == 0 => {
            (true, format!("{} (refused)", raw::describe(&end)))
        }
        _ if frames > 0 => (false, "answered it: the message was accepted".to_string()),
        _ => (false, raw::describe(&end)),
    };
    let after = match peer.probe().await {
        Ok(()) => "a new connection was then served".to_string(),
        Err(e) => format!("a new connection then failed: {e}"),
    };
    let passed = refused && after.starts_with("a new connection was");
    (passed, format!("{sized}: {sent}; {how}; {after}"))
}
