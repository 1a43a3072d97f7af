//! The leanest closed-loop flood client tokio-tungstenite allows, for the
//! comparison in docs/websocket.md: one task per connection, send one
//! message, await its reply, repeat. It only counts replies (no RTTs, no id
//! check), so it is the ceiling the library sets; neon-perf does the same
//! work plus correlating and recording every reply.
//!
//! cargo run --release --example lean_ws_client -- URL CONNECTIONS SIZE SECONDS [THREADS]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        eprintln!("usage: lean_ws_client URL CONNECTIONS SIZE SECONDS [THREADS]");
        std::process::exit(2);
    }
    let url = args[0].clone();
    let conns: usize = args[1].parse().expect("connections");
    let size: usize = args[2].parse().expect("size");
    let seconds: f64 = args[3].parse().expect("seconds");
    let threads: usize = args.get(4).map_or(1, |t| t.parse().expect("threads"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let count = Arc::new(AtomicU64::new(0));
        let measuring = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for _ in 0..conns {
            let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
                .await
                .expect("connect");
            let (count, measuring, stop) = (count.clone(), measuring.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                let (mut tx, mut rx) = ws.split();
                let body = vec![7u8; size];
                while !stop.load(Ordering::Relaxed) {
                    tx.send(Message::binary(body.clone())).await.expect("send");
                    match rx.next().await {
                        Some(Ok(_)) => {
                            if measuring.load(Ordering::Relaxed) {
                                count.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        _ => break,
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        measuring.store(true, Ordering::Relaxed);
        let t0 = Instant::now();
        tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
        measuring.store(false, Ordering::Relaxed);
        let s = t0.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        let n = count.load(Ordering::Relaxed);
        println!(
            "{{\"client\":\"lean-tokio-tungstenite\",\"msgs\":{n},\"seconds\":{s:.3},\"msg_per_s\":{:.1}}}",
            n as f64 / s
        );
        std::process::exit(0);
    });
}
