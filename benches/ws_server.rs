//! Reference WebSocket server throughput with micro-batching
//! (`max_batch = 32`) and without (`max_batch = 1`), same run, same client.
//!
//!   cargo bench --bench ws_server
//!
//! A closed-loop load generator in this process: 64 tokio-tungstenite
//! connections, each sending one request (default model: 256 f32 in, MLP
//! 256 → 512 → 256) and waiting for its reply before the next. The two
//! settings alternate for ROUNDS rounds so drift on a shared machine hits
//! both. Prints replies/s, mean batch and round-trip percentiles per round;
//! the write-up is in docs/websocket-server.md. Env: WS_BENCH_SECS (per
//! round, default 5), WS_BENCH_ROUNDS (default 3), WS_BENCH_CONNECTIONS (64).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use neon_perf::ws::protocol::encode_features;
use neon_perf::ws::server::{self, ServeConfig};
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Round {
    replies: u64,
    secs: f64,
    mean_batch: f64,
    rtt: Histogram<u64>,
}

async fn round(max_batch: usize, conns: usize, secs: u64) -> Round {
    let cfg = ServeConfig {
        max_batch,
        ..ServeConfig::default()
    };
    let features = vec![0.5f32; cfg.input_dim];
    let srv = server::start(cfg).await.expect("server starts");
    let url = srv.url();
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for c in 0..conns {
        let (mut ws, _) = connect_async(&url).await.expect("connects");
        let (stop, measuring, features) = (stop.clone(), measuring.clone(), features.clone());
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new(3).unwrap();
            let mut n = 0u64;
            let mut id = (c as u64) << 32;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                ws.send(Message::Binary(encode_features(id, &features).into()))
                    .await
                    .expect("send");
                match ws.next().await {
                    Some(Ok(Message::Binary(_))) => {}
                    other => panic!("unexpected reply: {other:?}"),
                }
                if measuring.load(Ordering::Relaxed) {
                    hist.record(t.elapsed().as_micros() as u64).unwrap();
                    n += 1;
                }
                id += 1;
            }
            let _ = ws.close(None).await;
            (n, hist)
        }));
    }
    // One second of warm-up, then the measured window.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = srv.stats();
    measuring.store(true, Ordering::Relaxed);
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = t0.elapsed().as_secs_f64();
    let after = srv.stats();
    stop.store(true, Ordering::Relaxed);
    let mut rtt = Histogram::<u64>::new(3).unwrap();
    let mut replies = 0;
    for t in tasks {
        let (n, h) = t.await.expect("client task");
        replies += n;
        rtt.add(h).unwrap();
    }
    srv.shutdown().await;
    let rows = after.batched_rows - before.batched_rows;
    let batches = (after.batches - before.batches).max(1);
    Round {
        replies,
        secs: elapsed,
        mean_batch: rows as f64 / batches as f64,
        rtt,
    }
}

fn main() {
    // `cargo test --benches` runs this without `--bench`: keep it short.
    let quick = !std::env::args().any(|a| a == "--bench");
    let secs = if quick { 1 } else { env("WS_BENCH_SECS", 5) };
    let rounds = if quick { 1 } else { env("WS_BENCH_ROUNDS", 3) };
    let conns = env("WS_BENCH_CONNECTIONS", 64) as usize;
    let rt = tokio::runtime::Runtime::new().unwrap();
    println!("{conns} connections, closed loop, {secs} s per round");
    println!(
        "| round | max_batch | replies/s | mean batch | p50 RTT | p99 RTT |\n|---|---|---|---|---|---|"
    );
    let mut totals = [(0u64, 0f64); 2];
    for r in 1..=rounds {
        for (i, max_batch) in [32usize, 1].into_iter().enumerate() {
            let res = rt.block_on(round(max_batch, conns, secs));
            let rate = res.replies as f64 / res.secs;
            totals[i].0 += res.replies;
            totals[i].1 += res.secs;
            println!(
                "| {r} | {max_batch} | {rate:.0} | {:.1} | {:.2} ms | {:.2} ms |",
                res.mean_batch,
                res.rtt.value_at_quantile(0.5) as f64 / 1000.0,
                res.rtt.value_at_quantile(0.99) as f64 / 1000.0
            );
        }
    }
    let rate = |(n, s): (u64, f64)| n as f64 / s;
    println!(
        "\nall rounds: max_batch 32: {:.0} replies/s, max_batch 1: {:.0} replies/s, ratio {:.2}",
        rate(totals[0]),
        rate(totals[1]),
        rate(totals[0]) / rate(totals[1])
    );
}
