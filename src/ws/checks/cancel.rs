//! `cancel`: streams cancelled mid-way, many times — a request sent, its
//! first reply received, then the connection dropped without a close
//! (half with a reset) while the server is still producing. Afterwards the
//! server must still serve new streams in full, and its memory (the RSS of
//! its process tree; GPU memory too where NVML sees it) must come back to
//! within a tolerance of where it was: the evidence that its handlers clean
//! up after a client that goes away.
//!
//! It speaks the flood's own client (its headers, TLS and `protocol`), so
//! it works against any server a flood can reach.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::Message;

use super::observe::{Server, mib};
use crate::stats::Rng;
use crate::ws::client::process::{tree_gpu_memory, tree_rss};
use crate::ws::client::{self, Connector, FloodConfig, Load, StopAfter, Ws};

/// Cancelled streams before the memory is first read (pools, caches and
/// lazy statics fill), at most.
pub const WARMUP: u32 = 50;
/// Streams cancelled at once.
const CONCURRENCY: usize = 8;
/// Requests sent per cancelled connection without `protocol` (one reply
/// each): the connection is dropped with the others still in flight.
const IN_FLIGHT: usize = 4;
/// Longest wait for a cancelled stream's first reply.
const FIRST_REPLY: Duration = Duration::from_secs(10);
/// How long memory may take to come back.
pub const SETTLE: Duration = Duration::from_secs(5);
/// Streams served in full afterwards, per connection of the probe.
const PROBE_STREAMS: u64 = 4;

/// What the check needs besides the server: the flood's client settings
/// (url, headers, TLS, protocol or payload), how many streams to cancel,
/// and how much memory growth counts as none.
#[derive(Clone, Debug)]
pub struct CancelSetup {
    pub flood: FloodConfig,
    pub connector: Connector,
    pub streams: u32,
    pub tolerance: u64,
}

/// The server's memory: RSS of its process tree (this process alone when
/// the server runs in it), and, where NVML is there, the GPU memory it
/// reports for that tree.
fn memory(pid: Option<u32>) -> (Option<u64>, Option<u64>) {
    reading(pid).0
}

/// [`memory`], and why the GPU memory is not judged when NVML's processes
/// cannot be told apart from another PID namespace's.
fn reading(pid: Option<u32>) -> ((Option<u64>, Option<u64>), Option<String>) {
    let Some(pid) = pid else {
        return ((None, None), None);
    };
    let rss = if pid == std::process::id() {
        Server { pid: Some(pid) }.rss()
    } else {
        tree_rss(pid)
    };
    // With NVML, a server holding no GPU memory holds 0 bytes: a leak that
    // starts from nothing is still a change. Memory that cannot be told
    // (a foreign PID namespace) is not judged: `run` says why.
    match tree_gpu_memory(pid) {
        Some(Ok(gpu)) => ((rss, Some(gpu)), None),
        Some(Err(why)) => ((rss, None), Some(why)),
        None => ((rss, None), None),
    }
}

/// One cancelled stream: connect, request, first reply, drop.
async fn cancel_one(setup: &CancelSetup, n: u64, reset: bool) -> Result<(), String> {
    let mut ws = setup.connector.connect().await?;
    let mut rng = Rng::new(setup.flood.seed ^ n);
    let id = n << 8;
    match &setup.flood.protocol {
        Some(p) => {
            let (msg, _) = p.request.build(&p.matching, id, 0, n, &mut rng);
            ws.send(msg).await.map_err(|e| e.to_string())?;
        }
        None => {
            for k in 0..IN_FLIGHT as u64 {
                let (msg, _) = setup.flood.payload.message(id | k, &mut rng);
                ws.feed(msg).await.map_err(|e| e.to_string())?;
            }
            ws.flush().await.map_err(|e| e.to_string())?;
        }
    }
    first_reply(&mut ws).await?;
    if reset {
        zero_linger(&ws);
    }
    drop(ws);
    Ok(())
}

async fn first_reply(ws: &mut Ws) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + FIRST_REPLY;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return Err(format!("no first reply within {FIRST_REPLY:?}")),
            Ok(None) => return Err("the server closed the connection before a reply".into()),
            Ok(Some(Err(e))) => return Err(e.to_string()),
            Ok(Some(Ok(Message::Text(_) | Message::Binary(_)))) => return Ok(()),
            Ok(Some(Ok(Message::Close(f)))) => {
                return Err(format!(
                    "the server closed the connection before a reply (code {})",
                    f.map_or(1005, |f| u16::from(f.code))
                ));
            }
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// SO_LINGER 0: dropping the socket then sends a reset instead of a FIN.
fn zero_linger(ws: &Ws) {
    let tcp = match ws.get_ref() {
        MaybeTlsStream::Plain(t) => t,
        MaybeTlsStream::Rustls(s) => s.get_ref().0,
        _ => return,
    };
    let _ = tcp.set_zero_linger();
}

/// Cancels streams `from..to`, [`CONCURRENCY`] at a time; returns the
/// failures and the first error.
async fn cancel_many(setup: &CancelSetup, from: u64, to: u64) -> (u64, Option<String>) {
    let mut set = tokio::task::JoinSet::new();
    let (mut failed, mut first) = (0, None);
    let mut note = |r: Result<Result<(), String>, _>| {
        if let Ok(Err(e)) = r {
            failed += 1;
            first.get_or_insert(e);
        }
    };
    for n in from..to {
        if set.len() >= CONCURRENCY {
            if let Some(r) = set.join_next().await {
                note(r);
            }
        }
        let setup = setup.clone();
        set.spawn(async move { cancel_one(&setup, n, n % 2 == 0).await });
    }
    while let Some(r) = set.join_next().await {
        note(r);
    }
    (failed, first)
}

/// New streams after the cancels: a short flood of the same kind, every
/// stream served in full and nothing going wrong.
async fn probe(setup: &CancelSetup) -> Result<String, String> {
    let mut cfg = setup.flood.clone();
    cfg.connections = cfg.connections.clamp(1, 2);
    cfg.load = Load::Closed { in_flight: 1 };
    let want = PROBE_STREAMS * cfg.connections as u64;
    cfg.stop = StopAfter::Messages(want);
    cfg.warmup = Duration::ZERO;
    cfg.time_limit = Duration::from_secs(30);
    cfg.ping = None;
    let r = client::flood(cfg, Default::default()).await?;
    let done = match &r.streams {
        Some(s) => s.done_in_window,
        None => r.totals.received_in_window,
    };
    if r.errors() == 0 && done >= want {
        return Ok(format!("then {done} new streams were served in full"));
    }
    let first = r.totals.error_examples.first().cloned();
    Err(format!(
        "then {done} of {want} new streams were served in full, {} error(s){}",
        r.errors(),
        first.map_or(String::new(), |e| format!(" (first: {e})"))
    ))
}

pub async fn run(pid: Option<u32>, setup: &CancelSetup) -> (bool, String) {
    let n = u64::from(setup.streams);
    let warm = u64::from(WARMUP.min(setup.streams.div_ceil(4)));
    let (failed, first) = cancel_many(setup, 0, warm).await;
    if warm > 0 && failed == warm {
        let e = first.unwrap_or_default();
        return (false, format!("no warm-up stream could be cancelled: {e}"));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (before, gpu_untold) = reading(pid);
    let (failed, first) = cancel_many(setup, warm, warm + n).await;
    let (after, settled) = settle(pid, before, setup.tolerance).await;
    let mut parts = vec![format!(
        "{n} streams cancelled after their first reply ({} with a reset, {CONCURRENCY} at a time, after {warm} warm-up), {failed} failed",
        n.div_ceil(2)
    )];
    if let Some(e) = &first {
        parts.push(format!("first failure: {e}"));
    }
    let mut mem_ok = true;
    for (what, b, a) in [
        ("RSS", before.0, after.0),
        ("GPU memory", before.1, after.1),
    ] {
        if let Some(line) = memory_line(what, b, a, setup.tolerance, settled) {
            mem_ok &= line.0;
            parts.push(line.1);
        }
    }
    if before.0.is_none() {
        parts.push("server memory not observed (pid unknown): judged on behaviour only".into());
    }
    if let Some(why) = gpu_untold {
        parts.push(format!("server GPU memory not judged: {why}"));
    }
    let served = probe(setup).await;
    parts.push(served.clone().unwrap_or_else(|e| e));
    (failed == 0 && mem_ok && served.is_ok(), parts.join("; "))
}

/// Polls the memory until it is back within the tolerance or
/// [`SETTLE`] passes; returns the last reading and how long it took.
async fn settle(
    pid: Option<u32>,
    before: (Option<u64>, Option<u64>),
    tolerance: u64,
) -> ((Option<u64>, Option<u64>), Option<Duration>) {
    let t = Instant::now();
    loop {
        let now = memory(pid);
        let within = |b: Option<u64>, a: Option<u64>| match (b, a) {
            (Some(b), Some(a)) => a.saturating_sub(b) <= tolerance,
            _ => true,
        };
        if within(before.0, now.0) && within(before.1, now.1) {
            return (now, Some(t.elapsed()));
        }
        if t.elapsed() >= SETTLE {
            return (now, None);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// "server RSS 41.0 MiB → 43.2 MiB (+2.2 MiB, tolerance 16.0 MiB)", and
/// whether it is within the tolerance; `None` when not observed.
fn memory_line(
    what: &str,
    before: Option<u64>,
    after: Option<u64>,
    tolerance: u64,
    settled: Option<Duration>,
) -> Option<(bool, String)> {
    let (b, a) = (before?, after?);
    let ok = a.saturating_sub(b) <= tolerance;
    let how = match settled {
        Some(d) => format!("within it after {:.1} s", d.as_secs_f64()),
        None => format!("not back within it after {:.0} s", SETTLE.as_secs_f64()),
    };
    Some((
        ok,
        format!(
            "server {what} {} → {} ({:+.1} MiB, tolerance {}; {how})",
            mib(b as f64),
            mib(a as f64),
            (a as f64 - b as f64) / (1u64 << 20) as f64,
            mib(tolerance as f64),
        ),
    ))
}
