//! The protocol flood's cost per streamed reply, with criterion: a
//! 100-byte JSON token frame parsed, its request found by the `/id` pointer
//! (and checked against `end`, `error` and `skip_empty` pointers), its
//! stream updated and the reply and gap recorded (batches merged into the
//! histograms and reservoirs every 128). Results: docs/websocket.md.
//!
//! cargo bench --bench ws_stream

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use neon_perf::ws::client::record::{Local, Recorder, Reply};
use neon_perf::ws::client::stream::open::{Open, Stream};
use neon_perf::ws::client::stream::record::StreamLocal;
use neon_perf::ws::client::stream::reply::{Owner, Role};
use neon_perf::ws::client::stream::{End, Goodput, Matching, Protocol, Request, StreamRecorder};
use serde_json::json;

fn protocol() -> Protocol {
    Protocol {
        request: Request::Text(Vec::new()),
        matching: Matching::Json("/id".into()),
        end: End::Json("/type".into(), json!("done")),
        skip_empty: Some("/text".into()),
        error: Some(("/type".into(), json!("error"))),
        units: None,
        goodput: Goodput::default(),
    }
}

/// A token frame of exactly 100 bytes for request `id`.
fn reply(id: u64) -> String {
    let head = format!(r#"{{"id":"{id}","type":"token","index":3,"text":""#);
    let tail = r#""}"#;
    let pad = 100 - head.len() - tail.len();
    format!("{head}{}{tail}", "x".repeat(pad))
}

fn per_reply(c: &mut Criterion) {
    let proto = protocol();
    let ids: Vec<u64> = (0..8).collect();
    let frames: Vec<String> = ids.iter().map(|&i| reply(i)).collect();
    assert!(frames.iter().all(|f| f.len() == 100));
    let mut g = c.benchmark_group("stream_reply");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_only_100B", |b| {
        b.iter(|| serde_json::from_str::<serde_json::Value>(black_box(&frames[0])).unwrap())
    });
    g.bench_function("parse_match_record_100B", |b| {
        let rec = Recorder::new(20_000, 1);
        let srec = StreamRecorder::new(20_000, 1);
        let (mut local, mut slocal) = (Local::new(), StreamLocal::default());
        let mut open = Open::default();
        for &i in &ids {
            open.push(i, Stream::new(0, true));
        }
        let mut now = 1_000u64;
        let mut k = 0usize;
        b.iter(|| {
            k = (k + 1) & 7;
            now += 5_000;
            let seen = proto.read_text(black_box(&frames[k]));
            let Owner::Id(seq) = seen.owner else {
                panic!("{:?}", seen.owner)
            };
            assert_eq!(seen.role, Role::Reply);
            let s = open.get_mut(seq).expect("open");
            if let Some(gap) = s.on_reply(now) {
                slocal.gaps.push(gap);
            }
            local.replies.push(Reply {
                rtt_ns: None,
                slice: Some(0),
                bytes: 100,
            });
            if local.full() {
                rec.flush(&mut local);
            }
            if slocal.full() {
                srec.flush(&mut slocal);
            }
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = per_reply
}
criterion_main!(benches);
