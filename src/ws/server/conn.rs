//! One connection of the reference server: the handshake, a reader that
//! hands requests to the batcher, a writer that sends replies, and the close
//! that ends it (1009 oversize, 1002 protocol error, 1007 bad UTF-8, 1001
//! shutdown; a reader slower than `write_buffer` is cut off).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::batcher::Job;
use super::decoder::StreamJob;
use super::stats::Counters;
use super::{ServeConfig, wait_shutdown};
use crate::ws::protocol;

/// Response headers that tell a client the model's shapes, so a check or a
/// flood can send well-formed requests without being told them.
pub const INPUT_DIM_HEADER: &str = "x-neon-perf-input-dim";
pub const OUTPUT_DIM_HEADER: &str = "x-neon-perf-output-dim";

/// A client that has not finished its handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a close waits for the peer's close (or EOF) before dropping.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// What every connection shares with the server.
pub(crate) struct Shared {
    pub cfg: ServeConfig,
    pub output_dim: usize,
    pub jobs: std::sync::mpsc::Sender<Job>,
    /// Streaming mode: where `generate` requests go.
    pub streams: Option<std::sync::mpsc::Sender<StreamJob>>,
    pub stats: Arc<Counters>,
}

/// The way replies reach one connection's writer, with the bytes waiting.
pub(crate) struct ConnOut {
    tx: mpsc::UnboundedSender<Message>,
    queued: AtomicUsize,
    limit: usize,
    overflow: Notify,
}

impl ConnOut {
    /// Queues a reply; past the write buffer the connection is cut off.
    pub fn push(&self, m: Message) {
        let len = m.len();
        let now = self.queued.fetch_add(len, Ordering::SeqCst) + len;
        // A closed receiver means the connection already ended.
        let _ = self.tx.send(m);
        if now > self.limit {
            self.overflow.notify_one();
        }
    }

    /// Whether the connection has ended (its writer is gone).
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// A text reply carrying the request's id (protocol text form) and the error.
pub(crate) fn error_reply(id: u64, msg: &str) -> Message {
    let mut s = vec![b'0'; protocol::TEXT_ID_LEN];
    protocol::put_text_id(&mut s, id);
    let mut s = String::from_utf8(s).expect("hex digits");
    s.push_str(" error: ");
    s.push_str(msg);
    Message::Text(s.into())
}

/// Why a connection ended.
enum End {
    PeerClosed,
    PeerGone,
    Oversize(String),
    Protocol(String),
    BadUtf8(String),
    Slow,
    Shutdown,
}

type Sink = SplitSink<WebSocketStream<TcpStream>, Message>;
type Source = SplitStream<WebSocketStream<TcpStream>>;

/// A connection past `max_connections`: the handshake completes, then a
/// close 1013 ("try again later") says why, so the client sees the cause
/// instead of a reset. Bounded by the handshake timeout.
pub(crate) async fn refuse(tcp: TcpStream, max: usize) {
    let refuse = async {
        let mut ws = tokio_tungstenite::accept_async(tcp).await.ok()?;
        let frame = CloseFrame {
            code: CloseCode::Again,
            reason: format!("server at its connection limit ({max}); try again later").into(),
        };
        ws.close(Some(frame)).await.ok()
    };
    let _ = tokio::time::timeout(HANDSHAKE_TIMEOUT, refuse).await;
}

pub(crate) async fn serve(tcp: TcpStream, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let cfg = &shared.cfg;
    let ws_cfg = WebSocketConfig::default()
        .max_message_size(Some(cfg.max_message))
        // Refuse an oversize frame from its header, before reading its payload.
        .max_frame_size(Some(cfg.max_message));
    let (din, dout) = (cfg.input_dim, shared.output_dim);
    // The callback's type is tungstenite's; its error is never built here.
    #[allow(clippy::result_large_err)]
    let add_dims = move |_: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
        let h = resp.headers_mut();
        h.insert(INPUT_DIM_HEADER, HeaderValue::from(din));
        h.insert(OUTPUT_DIM_HEADER, HeaderValue::from(dout));
        Ok(resp)
    };
    let handshake = tokio_tungstenite::accept_hdr_async_with_config(tcp, add_dims, Some(ws_cfg));
    let ws = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(ws)) => ws,
        _ => return,
    };
    let stats = &shared.stats;
    Counters::bump(&stats.connections_total);
    stats.connections_open.fetch_add(1, Ordering::Relaxed);

    let (tx, rx) = mpsc::unbounded_channel();
    let out = Arc::new(ConnOut {
        tx,
        queued: AtomicUsize::new(0),
        limit: cfg.write_buffer,
        overflow: Notify::new(),
    });
    let permits = Arc::new(Semaphore::new(cfg.max_in_flight.max(1)));
    let (mut sink, mut source) = ws.split();
    let end = tokio::select! {
        e = read_loop(&mut source, &shared, &out, &permits) => e,
        e = write_loop(&mut sink, rx, &out) => e,
        _ = out.overflow.notified() => End::Slow,
        _ = wait_shutdown(&mut stop) => End::Shutdown,
    };
    let close = |code: CloseCode, reason: String| CloseFrame {
        code,
        reason: reason.into(),
    };
    match end {
        End::PeerClosed | End::PeerGone => {}
        // The peer is not reading: a close frame would not get through.
        End::Slow => Counters::bump(&stats.closed_slow),
        End::Shutdown => {
            let frame = close(CloseCode::Away, "server shutting down".into());
            if send_close(&mut sink, frame).await {
                // Wait for the client's close so it sees a clean handshake.
                let _ = tokio::time::timeout(CLOSE_LINGER, async {
                    while source.next().await.is_some() {}
                })
                .await;
            }
        }
        End::Oversize(r) => {
            Counters::bump(&stats.closed_oversize);
            fail(sink, source, close(CloseCode::Size, r)).await;
        }
        End::Protocol(r) => {
            Counters::bump(&stats.closed_protocol);
            fail(sink, source, close(CloseCode::Protocol, r)).await;
        }
        End::BadUtf8(r) => {
            Counters::bump(&stats.closed_protocol);
            fail(sink, source, close(CloseCode::Invalid, r)).await;
        }
    }
    stats.connections_open.fetch_sub(1, Ordering::Relaxed);
}

async fn send_close(sink: &mut Sink, frame: CloseFrame) -> bool {
    matches!(
        tokio::time::timeout(CLOSE_LINGER, sink.send(Message::Close(Some(frame)))).await,
        Ok(Ok(()))
    )
}

/// Closes after a read error: sends the close frame, ends our side of the
/// TCP stream, then reads and discards what the peer still sends (e.g. the
/// rest of an oversize message) until it closes. Without that drain the
/// kernel answers the unread bytes with a reset, which can destroy the close
/// frame before the peer reads it.
async fn fail(mut sink: Sink, source: Source, frame: CloseFrame) {
    if !send_close(&mut sink, frame).await {
        return;
    }
    let Ok(mut ws) = source.reunite(sink) else {
        return;
    };
    let tcp = ws.get_mut();
    let _ = tcp.shutdown().await;
    let mut buf = vec![0u8; 64 << 10];
    let _ = tokio::time::timeout(CLOSE_LINGER, async {
        while matches!(tcp.read(&mut buf).await, Ok(n) if n > 0) {}
    })
    .await;
}

async fn read_loop(
    source: &mut Source,
    shared: &Shared,
    out: &Arc<ConnOut>,
    permits: &Arc<Semaphore>,
) -> End {
    let stats = &shared.stats;
    while let Some(item) = source.next().await {
        match item {
            Ok(Message::Binary(b)) => {
                Counters::bump(&stats.messages);
                match protocol::decode_features(&b) {
                    Some((id, features)) if features.len() == shared.cfg.input_dim => {
                        let Ok(permit) = permits.clone().acquire_owned().await else {
                            return End::Shutdown;
                        };
                        let job = Job {
                            id,
                            features,
                            conn: out.clone(),
                            _permit: permit,
                        };
                        if shared.jobs.send(job).is_err() {
                            return End::Shutdown;
                        }
                    }
                    _ => {
                        Counters::bump(&stats.bad_requests);
                        let id = protocol::binary_id(&b).unwrap_or(0);
                        let msg = format!(
                            "expected {} bytes (8-byte id + {} little-endian f32), got {}",
                            protocol::BINARY_ID_LEN + 4 * shared.cfg.input_dim,
                            shared.cfg.input_dim,
                            b.len()
                        );
                        out.push(error_reply(id, &msg));
                    }
                }
            }
            Ok(Message::Text(t)) if shared.streams.is_some() => {
                Counters::bump(&stats.messages);
                if !start_stream(&t, shared, out, permits).await {
                    return End::Shutdown;
                }
            }
            Ok(Message::Text(t)) => {
                Counters::bump(&stats.messages);
                Counters::bump(&stats.bad_requests);
                let id = protocol::text_id(&t).unwrap_or(0);
                out.push(error_reply(
                    id,
                    "the reference server takes binary messages: 8-byte id + f32 features",
                ));
            }
            // The close reply is queued by tungstenite and sent on the next read.
            Ok(_) => {}
            Err(WsError::Capacity(e)) => return End::Oversize(e.to_string()),
            Err(WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake)) => {
                return End::PeerGone;
            }
            Err(WsError::Protocol(e)) => return End::Protocol(e.to_string()),
            Err(WsError::Utf8(e)) => return End::BadUtf8(e),
            Err(_) => return End::PeerGone,
        }
    }
    End::PeerClosed
}

/// Streaming mode: a `generate` request to the decode loop, or an error
/// frame back. `false`: the server is shutting down.
async fn start_stream(
    text: &str,
    shared: &Shared,
    out: &Arc<ConnOut>,
    permits: &Arc<Semaphore>,
) -> bool {
    let Some(streams) = &shared.streams else {
        return false;
    };
    let g = match super::generate::parse(text) {
        Ok(g) => g,
        Err((id, why)) => {
            Counters::bump(&shared.stats.bad_requests);
            out.push(super::decoder::error_frame(&id, &why));
            return true;
        }
    };
    let Ok(permit) = permits.clone().acquire_owned().await else {
        return false;
    };
    let job = StreamJob {
        id: g.id,
        tokens: g.tokens,
        conn: out.clone(),
        _permit: permit,
    };
    streams.send(job).is_ok()
}

async fn write_loop(
    sink: &mut Sink,
    mut rx: mpsc::UnboundedReceiver<Message>,
    out: &ConnOut,
) -> End {
    // `out` keeps a sender alive, so `recv` only ends with the connection.
    while let Some(m) = rx.recv().await {
        let mut bytes = m.len();
        if sink.feed(m).await.is_err() {
            return End::PeerGone;
        }
        // Send what else is ready in one flush.
        for _ in 0..256 {
            let Ok(m) = rx.try_recv() else { break };
            bytes += m.len();
            if sink.feed(m).await.is_err() {
                return End::PeerGone;
            }
        }
        if sink.flush().await.is_err() {
            return End::PeerGone;
        }
        out.queued.fetch_sub(bytes, Ordering::SeqCst);
    }
    End::PeerGone
}
