//! The reference WebSocket server on real loopback sockets: replies, batching
//! across connections, limits, graceful shutdown.

use std::time::Duration;

use candle_core::{Device, Tensor};
use futures_util::{SinkExt, StreamExt};
use neon_perf::ws::protocol::{decode_features, encode_features};
use neon_perf::ws::server::{self, ServeConfig};
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

fn small() -> ServeConfig {
    ServeConfig {
        input_dim: 16,
        hidden: vec![32, 8],
        seed: 7,
        ..ServeConfig::default()
    }
}

fn features(i: u64, dim: usize) -> Vec<f32> {
    (0..dim)
        .map(|k| ((i * 31 + k as u64) % 17) as f32 / 8.0 - 1.0)
        .collect()
}

/// The model run directly on one row, for comparison with a reply.
fn direct(cfg: &ServeConfig, x: &[f32]) -> Vec<f32> {
    let m = server::build_model(cfg).unwrap();
    let t = Tensor::from_vec(x.to_vec(), (1, x.len()), &Device::Cpu).unwrap();
    m.forward(&t).unwrap().to_vec2::<f32>().unwrap().remove(0)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn replies_match_a_direct_forward_pass() {
    rt().block_on(async {
        let cfg = small();
        let srv = server::start(cfg.clone()).await.unwrap();
        let (mut ws, resp) = connect_async(srv.url()).await.unwrap();
        assert_eq!(resp.headers()[server::INPUT_DIM_HEADER], "16");
        assert_eq!(resp.headers()[server::OUTPUT_DIM_HEADER], "8");
        for id in [3u64, 99, u64::MAX] {
            let x = features(id, 16);
            ws.send(Message::Binary(encode_features(id, &x).into()))
                .await
                .unwrap();
            let Some(Ok(Message::Binary(b))) = ws.next().await else {
                panic!("no binary reply")
            };
            let (rid, y) = decode_features(&b).unwrap();
            assert_eq!(rid, id);
            let want = direct(&cfg, &x);
            assert_eq!(y.len(), 8);
            for (a, b) in y.iter().zip(&want) {
                assert!(
                    (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                    "{y:?} vs {want:?}"
                );
            }
        }
        srv.shutdown().await;
    });
}

#[test]
fn wrong_requests_get_an_error_reply_and_the_connection_stays() {
    rt().block_on(async {
        let srv = server::start(small()).await.unwrap();
        let (mut ws, _) = connect_async(srv.url()).await.unwrap();
        ws.send(Message::Binary(encode_features(5, &[1.0; 3]).into()))
            .await
            .unwrap();
        let Some(Ok(Message::Text(t))) = ws.next().await else {
            panic!("no text reply")
        };
        assert!(
            t.starts_with("0000000000000005 error: expected 72 bytes"),
            "{t}"
        );
        ws.send(Message::Text("hello".into())).await.unwrap();
        let Some(Ok(Message::Text(t))) = ws.next().await else {
            panic!("no text reply")
        };
        assert!(t.contains("binary messages"), "{t}");
        // still serving
        ws.send(Message::Binary(encode_features(6, &features(6, 16)).into()))
            .await
            .unwrap();
        assert!(matches!(ws.next().await, Some(Ok(Message::Binary(_)))));
        assert_eq!(srv.stats().bad_requests, 2);
        srv.shutdown().await;
    });
}

/// Sends one request on each of `n` connections at once; returns the stats.
async fn one_request_per_connection(cfg: ServeConfig, n: u64) -> server::ServerStats {
    let dim = cfg.input_dim;
    let srv = server::start(cfg).await.unwrap();
    let mut conns = Vec::new();
    for _ in 0..n {
        conns.push(connect_async(srv.url()).await.unwrap().0);
    }
    let mut tasks = Vec::new();
    for (i, mut ws) in conns.into_iter().enumerate() {
        let i = i as u64;
        tasks.push(tokio::spawn(async move {
            ws.send(Message::Binary(
                encode_features(i, &features(i, dim)).into(),
            ))
            .await
            .unwrap();
            let Some(Ok(Message::Binary(b))) = ws.next().await else {
                panic!("no reply")
            };
            assert_eq!(decode_features(&b).unwrap().0, i);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let stats = srv.stats();
    srv.shutdown().await;
    stats
}

#[test]
fn micro_batching_folds_requests_from_many_connections() {
    rt().block_on(async {
        // A long max_wait: the batch closes when it is full, so the count of
        // batches does not depend on this machine's speed.
        let cfg = ServeConfig {
            max_batch: 16,
            max_wait: Duration::from_secs(5),
            ..small()
        };
        let s = one_request_per_connection(cfg, 16).await;
        assert_eq!(s.messages, 16);
        assert_eq!(s.batched_rows, 16);
        assert!(s.batches < 16, "{s:?}");
        assert!(s.mean_batch() > 1.0, "{s:?}");
        assert_eq!(s.connections_total, 16);
    });
}

#[test]
fn max_batch_one_runs_one_request_per_pass() {
    rt().block_on(async {
        let cfg = ServeConfig {
            max_batch: 1,
            ..small()
        };
        let s = one_request_per_connection(cfg, 8).await;
        assert_eq!((s.batches, s.batched_rows), (8, 8));
    });
}

#[test]
fn oversize_gets_1009_and_the_server_goes_on() {
    rt().block_on(async {
        let cfg = ServeConfig {
            max_message: 4096,
            ..small()
        };
        let srv = server::start(cfg).await.unwrap();
        let (mut ws, _) = connect_async(srv.url()).await.unwrap();
        ws.send(Message::Binary(vec![0u8; 8192].into()))
            .await
            .unwrap();
        let Some(Ok(Message::Close(Some(c)))) = ws.next().await else {
            panic!("no close frame")
        };
        assert_eq!(c.code, CloseCode::Size);
        let (mut ws, _) = connect_async(srv.url()).await.unwrap();
        ws.send(Message::Binary(encode_features(1, &features(1, 16)).into()))
            .await
            .unwrap();
        assert!(matches!(ws.next().await, Some(Ok(Message::Binary(_)))));
        assert_eq!(srv.stats().closed_oversize, 1);
        srv.shutdown().await;
    });
}

#[test]
fn shutdown_closes_clients_with_1001() {
    rt().block_on(async {
        let srv = server::start(small()).await.unwrap();
        let mut clients = Vec::new();
        for _ in 0..3 {
            clients.push(connect_async(srv.url()).await.unwrap().0);
        }
        let addr = srv.addr();
        let readers: Vec<_> = clients
            .into_iter()
            .map(|mut ws| {
                tokio::spawn(async move {
                    loop {
                        match ws.next().await {
                            Some(Ok(Message::Close(c))) => return c.map(|c| c.code),
                            Some(Ok(_)) => continue,
                            other => panic!("{other:?}"),
                        }
                    }
                })
            })
            .collect();
        // let the connections register before shutting down
        while srv.stats().connections_open < 3 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        srv.shutdown().await;
        for r in readers {
            assert_eq!(r.await.unwrap(), Some(CloseCode::Away));
        }
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    });
}

#[test]
fn bad_configs_are_refused() {
    rt().block_on(async {
        let cfg = ServeConfig {
            max_batch: 0,
            ..small()
        };
        let e = server::start(cfg).await.err().unwrap();
        assert!(e.to_string().contains("max_batch"), "{e}");
        let cfg = ServeConfig {
            max_message: 16,
            ..small()
        };
        let e = server::start(cfg).await.err().unwrap();
        assert!(e.to_string().contains("larger than max_message"), "{e}");
    });
}

#[test]
fn invalid_utf8_text_gets_1007() {
    use neon_perf::ws::checks::raw;
    use tokio::io::AsyncWriteExt;
    rt().block_on(async {
        let srv = server::start(small()).await.unwrap();
        let url = raw::parse_url(&srv.url()).unwrap();
        let (mut rd, mut wr) = raw::connect(&url, &[]).await.unwrap().into_parts();
        wr.write_all(&raw::frame(raw::OP_TEXT, &[0xff, 0xfe, 0xfd], true))
            .await
            .unwrap();
        let (end, _, _) = rd.until_close(Duration::from_secs(10)).await;
        assert_eq!(raw::close_code(&end), Some(1007), "{}", raw::describe(&end));
        srv.shutdown().await;
    });
}

/// #21 finding 6b: idle connections cost about 130 KiB each, so the server
/// caps them; one more is refused with close 1013 naming the limit, and is
/// counted.
#[test]
fn connections_past_the_cap_are_refused_with_1013() {
    rt().block_on(async {
        let cfg = ServeConfig {
            max_connections: 2,
            ..small()
        };
        let srv = server::start(cfg).await.unwrap();
        let (_a, _) = connect_async(srv.url()).await.unwrap();
        let (_b, _) = connect_async(srv.url()).await.unwrap();
        let (mut c, _) = connect_async(srv.url()).await.unwrap();
        let msg = tokio::time::timeout(Duration::from_secs(5), c.next())
            .await
            .expect("a close within 5 s");
        match msg {
            Some(Ok(Message::Close(Some(f)))) => {
                assert_eq!(f.code, CloseCode::Again);
                assert!(f.reason.contains("connection limit (2)"), "{}", f.reason);
            }
            other => panic!("want close 1013, got {other:?}"),
        }
        assert_eq!(srv.stats().refused_full, 1);
        assert_eq!(srv.stats().connections_open, 2);
        srv.shutdown().await;
    });
}
