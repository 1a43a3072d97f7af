//! The flood client's per-message costs outside the kernel, with criterion:
//! building a request (id + body), framing it as tungstenite does on a
//! client socket (mask + header, into the write buffer), reading a server
//! frame back into a message, matching its id, and recording the RTT
//! (batch + HdrHistogram + reservoir). Results: docs/websocket.md.
//!
//! cargo bench --bench ws_client

use std::io::{Cursor, Read, Write};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use neon_perf::stats::Rng;
use neon_perf::ws::client::record::{Local, Recorder, Reply, ns_histogram};
use neon_perf::ws::client::{Frame, Payload};
use neon_perf::ws::protocol::binary_id;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocket, WebSocketConfig};

/// A socket that swallows writes (counting them) and has nothing to read.
#[derive(Default)]
struct Sink(u64);

impl Read for Sink {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        Err(std::io::ErrorKind::WouldBlock.into())
    }
}

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0 += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A socket whose reads replay one server frame forever.
struct Replay {
    frame: Vec<u8>,
    pos: usize,
}

impl Read for Replay {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            let take = (self.frame.len() - self.pos).min(buf.len() - n);
            buf[n..n + take].copy_from_slice(&self.frame[self.pos..self.pos + take]);
            n += take;
            self.pos = (self.pos + take) % self.frame.len();
        }
        Ok(n)
    }
}

impl Write for Replay {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The bytes a server sends for `msg` (unmasked).
fn server_frame(msg: tokio_tungstenite::tungstenite::Message) -> Vec<u8> {
    let mut ws = WebSocket::from_raw_socket(Cursor::new(Vec::new()), Role::Server, None);
    ws.send(msg).unwrap();
    ws.get_ref().get_ref().clone()
}

fn frame_path(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame");
    for size in [64usize, 64 << 10] {
        g.throughput(Throughput::Elements(1));
        let payload = Payload::random(Frame::Binary, size, size, 0);
        let mut rng = Rng::new(1);
        let mut id = 0u64;
        g.bench_function(BenchmarkId::new("build_request", size), |b| {
            b.iter(|| {
                id += 1;
                payload.message(id, &mut rng)
            })
        });
        let cfg = WebSocketConfig::default().write_buffer_size(0);
        let mut ws = WebSocket::from_raw_socket(Sink::default(), Role::Client, Some(cfg));
        g.bench_function(BenchmarkId::new("build_and_send", size), |b| {
            b.iter(|| {
                id += 1;
                let (m, _) = payload.message(id, &mut rng);
                ws.write(m).unwrap();
                ws.flush().unwrap();
            })
        });
        let reply = server_frame(payload.message(7, &mut rng).0);
        let cfg = WebSocketConfig::default()
            .max_message_size(None)
            .max_frame_size(None);
        let mut ws = WebSocket::from_raw_socket(
            Replay {
                frame: reply,
                pos: 0,
            },
            Role::Client,
            Some(cfg),
        );
        g.bench_function(BenchmarkId::new("receive_and_match", size), |b| {
            b.iter(|| {
                let m = ws.read().unwrap();
                binary_id(&m.into_data())
            })
        });
    }
    g.finish();
}

fn recording(c: &mut Criterion) {
    let mut g = c.benchmark_group("record");
    g.throughput(Throughput::Elements(1));
    let mut h = ns_histogram();
    let mut rng = Rng::new(2);
    g.bench_function("hdr_histogram", |b| {
        b.iter(|| h.saturating_record(20_000 + rng.below(1_000_000)))
    });
    let rec = Recorder::new(20_000, 3);
    let mut local = Local::new();
    let mut i = 0u64;
    g.bench_function("reply_batched", |b| {
        b.iter(|| {
            i += 1;
            local.replies.push(Reply {
                rtt_ns: Some(20_000 + (i * 7919) % 1_000_000),
                slice: Some((i / 100_000) as u32 % 512),
                bytes: 64,
            });
            if local.full() {
                rec.flush(&mut local);
            }
        })
    });
    g.bench_function("clock_now", |b| b.iter(std::time::Instant::now));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = frame_path, recording
}
criterion_main!(benches);
