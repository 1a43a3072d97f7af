//! The reference server's streaming mode (docs/websocket.md, "The
//! reference server streams"), in this process over loopback: JSON
//! `generate` requests answered with one token frame per decode step and a
//! `done` frame, continuous batching (one forward pass per step over every
//! active stream of every connection) against one pass per stream, error
//! frames, and a protocol flood of it with the documented `protocol` table.

use std::collections::BTreeMap;
use std::path::PathBuf;

use futures_util::{SinkExt, StreamExt};
use neon_perf::config::parse_suite;
use neon_perf::exec::ExecEnv;
use neon_perf::result::Outcome;
use neon_perf::ws::server::{self, ServeConfig, ServerStats};
use serde_json::Value;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn streaming(batching: bool) -> ServeConfig {
    ServeConfig {
        input_dim: 16,
        hidden: vec![32, 8],
        streaming: true,
        continuous_batching: batching,
        ..ServeConfig::default()
    }
}

fn generate(id: &str, tokens: u32) -> Message {
    Message::Text(format!(r#"{{"op":"generate","id":"{id}","max_tokens":{tokens}}}"#).into())
}

/// Sends `requests` on one connection in one write, then reads every frame
/// until each of `done` ids has its `done` frame; returns the frames by id.
async fn exchange(url: &str, requests: Vec<Message>, done: usize) -> BTreeMap<String, Vec<Value>> {
    let (mut ws, _) = connect_async(url).await.unwrap();
    for r in requests {
        ws.feed(r).await.unwrap();
    }
    ws.flush().await.unwrap();
    let mut frames: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut ended = 0;
    while ended < done {
        let m = ws.next().await.unwrap().unwrap();
        let v: Value = serde_json::from_str(m.to_text().unwrap()).unwrap();
        let id = v["id"].to_string();
        if v["type"] == "done" || v["type"] == "error" {
            ended += 1;
        }
        frames.entry(id).or_default().push(v);
    }
    frames
}

#[test]
fn streams_every_token_then_done_and_errors_bad_requests() {
    rt().block_on(async {
        let srv = server::start(streaming(true)).await.unwrap();
        let bad = Message::Text(r#"{"op":"generate","id":"c","max_tokens":0}"#.into());
        let frames = exchange(&srv.url(), vec![generate("a", 5), generate("b", 3), bad], 3).await;
        for (id, n) in [("\"a\"", 5), ("\"b\"", 3)] {
            let f = &frames[id];
            assert_eq!(f.len(), n + 1, "{f:?}");
            for (i, t) in f[..n].iter().enumerate() {
                assert_eq!(
                    (t["type"].as_str(), t["index"].as_u64()),
                    (Some("token"), Some(i as u64))
                );
                assert!(t["token"].as_u64().unwrap() < 8, "{t}");
            }
            assert_eq!(f[n]["usage"]["output_tokens"], n as u64);
        }
        let err = &frames["\"c\""][0];
        assert_eq!(err["type"], "error");
        assert!(
            err["message"].as_str().unwrap().contains("max_tokens"),
            "{err}"
        );
        // Binary requests are served as always.
        let s = srv.stats();
        assert_eq!(
            (s.streams_started, s.streams_done, s.bad_requests),
            (2, 2, 1)
        );
        srv.shutdown().await;
    });
}

/// 8 streams of 20 tokens, each on its own connection, the requests sent
/// once all 8 are connected.
async fn eight_streams(batching: bool) -> ServerStats {
    let srv = server::start(streaming(batching)).await.unwrap();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(8));
    let mut tasks = Vec::new();
    for c in 0..8 {
        let (url, barrier) = (srv.url(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let (mut ws, _) = connect_async(url).await.unwrap();
            barrier.wait().await;
            ws.send(generate(&format!("s{c}"), 20)).await.unwrap();
            let mut frames = 0;
            while let Some(Ok(m)) = ws.next().await {
                frames += 1;
                if m.to_text().unwrap().contains("\"done\"") {
                    break;
                }
            }
            frames
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 21);
    }
    let s = srv.stats();
    srv.shutdown().await;
    s
}

#[test]
fn continuous_batching_runs_one_forward_pass_per_step_for_every_stream() {
    rt().block_on(async {
        let on = eight_streams(true).await;
        assert_eq!(on.batched_rows, 160, "{on:?}");
        // One pass per step, each over every stream active then: the 8
        // overlap, so far fewer steps than rows (a stream joins at the next
        // step after its request arrives).
        assert_eq!(on.batches, on.decode_steps, "{on:?}");
        assert!(on.decode_steps >= 20 && on.decode_steps < 80, "{on:?}");
        let off = eight_streams(false).await;
        assert_eq!((off.batched_rows, off.batches), (160, 160), "{off:?}");
    });
}

#[test]
fn a_flood_with_the_documented_protocol_streams_from_the_builtin_server() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"[[scenario]]
name = "builtin-stream"
kind = "websocket_flood"
target = "builtin"
builtin = { streaming = true, input_dim = 16, hidden = [32, 8] }
connections = 4
in_flight = 2
duration = "500ms"
warmup = "100ms"
checks = ["ping", "cancel"]
ping = { interval = "100ms" }
cancel = { streams = 40 }

[scenario.protocol]
request = { text = '{"op":"generate","id":"{id}","max_tokens":16}' }
match = { json = "/id" }
end = { json = "/type", equals = "done" }
error = { json = "/type", equals = "error" }
units = { json = "/usage/output_tokens", name = "tokens" }
"#;
    let path = dir.path().join("s.toml");
    std::fs::write(&path, text).unwrap();
    let suite = parse_suite(&path, text).unwrap();
    let plan = &suite.scenarios[0];
    let env = ExecEnv {
        neon_perf_bin: PathBuf::from(env!("CARGO_BIN_EXE_neon-perf")),
        cache_dir: dir.path().to_path_buf(),
    };
    let r = neon_perf::run::execute(plan, &env, &plan.settings, &mut |_| {});
    for c in &r.checks {
        println!(
            "{} {}: {}",
            if c.passed { "PASS" } else { "FAIL" },
            c.name,
            c.evidence
        );
    }
    assert_eq!(r.outcome, Outcome::Ran, "{:#?}", r.checks);
    assert!(r.checks.iter().all(|c| c.passed), "{:#?}", r.checks);
    let replies = &r.metric("replies_per_request").unwrap().samples;
    assert!(replies.iter().all(|&n| n == 16.0), "{replies:?}");
    assert!(r.metric("inter_reply_gap_p99").is_some());
    let rate = &r.metric("reply_rate").unwrap().unit;
    assert_eq!(*rate, neon_perf::metric::Unit::Rate("tokens".into()));
}
