//! `churn`: open and close many connections, each with one request (its
//! whole stream under a protocol) and a clean close; the server's
//! descriptors and memory must not grow.

use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::observe::{Server, rss_change};
use super::peer::Peer;
use super::raw;

/// Connections opened before measuring (pools, caches and lazy statics fill).
pub const WARMUP: usize = 50;
/// Connections opened and closed while measuring.
pub const CONNECTIONS: usize = 500;
/// Connections open at once.
const CONCURRENCY: usize = 8;
/// Memory growth over [`CONNECTIONS`] that still counts as none (allocator
/// noise); a leak of 16 KiB a connection passes it.
pub const MEMORY_SLACK: u64 = 8 << 20;

/// One connection: handshake, one request, its reply (its whole stream
/// under a protocol), a clean close.
async fn one(peer: &Peer, id: u64) -> Result<(), String> {
    let conn = peer.connect().await?;
    let msg = peer.request(&conn, id);
    let (mut rd, mut wr) = conn.into_parts();
    wr.write_all(&msg).await.map_err(|e| e.to_string())?;
    peer.answer(&mut rd, Duration::from_secs(5)).await?;
    wr.write_all(&raw::close_frame(1000))
        .await
        .map_err(|e| e.to_string())?;
    let _ = rd.until_close(Duration::from_secs(5)).await;
    Ok(())
}

/// Runs `n` connections, [`CONCURRENCY`] at a time; returns failures and the first error.
async fn many(peer: &Peer, n: usize) -> (usize, Option<String>) {
    let mut set = tokio::task::JoinSet::new();
    let (mut failed, mut first) = (0, None);
    for i in 0..n {
        if set.len() >= CONCURRENCY
            && let Some(Ok(Err(e))) = set.join_next().await
        {
            failed += 1;
            first.get_or_insert(e);
        }
        let peer = peer.clone();
        set.spawn(async move { one(&peer, i as u64).await });
    }
    while let Some(r) = set.join_next().await {
        if let Ok(Err(e)) = r {
            failed += 1;
            first.get_or_insert(e);
        }
    }
    (failed, first)
}

pub async fn run(peer: &Peer, server: Server) -> (bool, String) {
    let (failed, first) = many(peer, WARMUP).await;
    if failed == WARMUP {
        return (
            false,
            format!(
                "no warm-up connection worked: {}",
                first.unwrap_or_default()
            ),
        );
    }
    // Let the warm-up connections finish closing on the server's side.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fds_before = server.fds();
    let rss_before = server.rss();
    let (failed, first) = many(peer, CONNECTIONS).await;
    let fds_after = match fds_before {
        Some(b) => server.fds_settle(b, Duration::from_secs(5)).await,
        None => None,
    };
    let rss_after = server.rss();
    let mut parts = vec![format!(
        "{CONNECTIONS} connections opened and closed ({CONCURRENCY} at a time, after {WARMUP} warm-up), {failed} failed"
    )];
    if let Some(e) = first {
        parts.push(format!("first failure: {e}"));
    }
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
    let mem_ok = match (rss_before, rss_after) {
        (Some(b), Some(a)) => a.saturating_sub(b) <= MEMORY_SLACK,
        _ => true,
    };
    parts.push(rss_change(rss_before, rss_after));
    if fds_before.is_none() {
        parts.push("judged on behaviour only".into());
    }
    (failed == 0 && fds_ok && mem_ok, parts.join("; "))
}
