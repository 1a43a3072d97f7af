//! `abrupt_disconnect`: connections dropped mid-frame (half with a reset,
//! half with a plain FIN) and mid-handshake; the server must survive, serve
//! a new connection, and give the dropped connections' descriptors back.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::observe::Server;
use super::peer::Peer;
use super::raw;

/// Connections dropped mid-frame.
pub const MID_FRAME: usize = 16;
/// Connections dropped mid-handshake.
pub const MID_HANDSHAKE: usize = 4;

pub async fn run(peer: &Peer, server: Server) -> (bool, String) {
    let fds_before = server.fds();
    let mut dropped = 0;
    for i in 0..MID_FRAME {
        let conn = match peer.connect().await {
            Ok(c) => c,
            Err(e) => return (false, format!("could not connect: {e}")),
        };
        // A frame header announcing 64 KiB, then 1 KiB of it.
        let mut bytes = raw::frame_header(raw::OP_BINARY, 64 << 10, Some(raw::MASK));
        bytes.extend_from_slice(&[0u8; 1024]);
        let mut tcp = conn.tcp;
        if tcp.write_all(&bytes).await.is_ok() {
            dropped += 1;
        }
        if i % 2 == 0 {
            // SO_LINGER 0: close sends a reset instead of a FIN.
            let _ = tcp.set_zero_linger();
        }
        drop(tcp);
    }
    for _ in 0..MID_HANDSHAKE {
        if let Ok(mut tcp) = TcpStream::connect(&peer.url.authority).await {
            let req = peer.handshake_request();
            let _ = tcp.write_all(&req.as_bytes()[..req.len() / 2]).await;
        }
    }
    let alive = server.alive();
    let served = peer.probe().await;
    let fds_after = match fds_before {
        Some(b) => server.fds_settle(b, Duration::from_secs(5)).await,
        None => None,
    };
    let mut parts = vec![format!(
        "{dropped} connections dropped mid-frame ({} with a reset), {MID_HANDSHAKE} mid-handshake",
        MID_FRAME.div_ceil(2)
    )];
    parts.push(match alive {
        Some(true) => "server process alive".into(),
        Some(false) => "server process gone".into(),
        None => "server process not observed (pid unknown)".into(),
    });
    parts.push(match &served {
        Ok(()) => "a new connection was then served".into(),
        Err(e) => format!("a new connection then failed: {e}"),
    });
    let fds_ok = match (fds_before, fds_after) {
        (Some(b), Some(a)) => {
            parts.push(format!("server fds {b} → {a}"));
            a <= b
        }
        _ => {
            parts.push("server fds not observed".into());
            true
        }
    };
    let passed = alive != Some(false) && served.is_ok() && fds_ok;
    (passed, parts.join("; "))
}
