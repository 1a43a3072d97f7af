//! One connection of a protocol flood: the shared poll loop
//! ([`crate::ws::client::drive`]) with streams instead of single replies:
//! several requests open at once, replies interleaved, each stream ended
//! by its protocol's `end` (a frame, a count, idleness, or the server
//! closing, after which the connection is opened again).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio_tungstenite::tungstenite::Error as WsError;

mod track;

use super::open::{Open, Stream};
use super::record::{StreamLocal, StreamRecorder};
use super::{End, Protocol};
use crate::ws::client::conn_core::{ConnCore, ConnPlan, Shared};
use crate::ws::client::drive::{self, Exit, Flow};
use crate::ws::client::record::ErrorKind;
use crate::ws::client::{Connector, Ws};

/// How long opening a connection again (`end = "close"`) may take.
const RECONNECT_TIMEOUT: Duration = Duration::from_secs(10);

struct StreamConn<'a> {
    core: ConnCore<'a>,
    proto: &'a Protocol,
    rec: &'a StreamRecorder,
    open: Open,
    slocal: StreamLocal,
    /// The server closed the socket under `end = "close"`.
    ended_by_server: bool,
    /// The last frame it received, quoted when its streams never end.
    last: LastFrame,
}

/// A connection's last frame, its first bytes kept in a buffer used again
/// for every frame (no allocation per frame once it is grown).
#[derive(Default)]
struct LastFrame {
    head: String,
    len: usize,
    binary: bool,
    seen: bool,
}

impl LastFrame {
    fn text(&mut self, text: &str) {
        let mut end = text.len().min(200);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        self.head.clear();
        self.head.push_str(&text[..end]);
        (self.len, self.binary, self.seen) = (text.len(), false, true);
    }

    fn binary(&mut self, len: usize) {
        (self.len, self.binary, self.seen) = (len, true, true);
    }

    /// "; the last frame received: {…}" (as [`super::quote`] cuts it), or
    /// nothing before the first.
    fn said(&self) -> String {
        match (self.len, self.binary) {
            _ if !self.seen => String::new(),
            (n, true) => format!("; the last frame received was binary, {n} bytes"),
            (n, false) if n > self.head.len() => {
                format!("; the last frame received: {:?}… ({n} bytes)", self.head)
            }
            _ => format!("; the last frame received: {:?}", self.head),
        }
    }
}

/// Drives a connected socket (and, under `end = "close"`, the ones opened
/// after it) until the flood is over for this connection.
pub async fn run(ws: Ws, sh: Arc<Shared>, plan: ConnPlan, connector: Connector) {
    let (Some(proto), Some(rec)) = (sh.protocol.as_ref(), sh.streams.as_ref()) else {
        return;
    };
    let mut c = StreamConn {
        core: ConnCore::new(ws, &sh, plan),
        proto,
        rec,
        open: Open::default(),
        slocal: StreamLocal::default(),
        ended_by_server: false,
        last: LastFrame::default(),
    };
    while std::future::poll_fn(|cx| drive::poll_io(&mut c, cx)).await == Exit::Reconnect {
        if sh.stop.load(Ordering::Relaxed) {
            break;
        }
        let r = tokio::time::timeout(RECONNECT_TIMEOUT, connector.connect()).await;
        match r.unwrap_or_else(|_| {
            Err(format!(
                "no handshake within {RECONNECT_TIMEOUT:?} when opening the connection again"
            ))
        }) {
            Ok(ws) => {
                c.core.reopen(ws);
                c.ended_by_server = false;
            }
            Err(e) => {
                sh.recorder.error(ErrorKind::Connect, 1, || e);
                break;
            }
        }
    }
    c.finish();
}

impl StreamConn<'_> {
    fn finish(&mut self) {
        self.incomplete("never ended (the connection closed first)");
        self.core.finish();
        self.rec.flush(&mut self.slocal);
    }

    fn slice_of(&self, ns: u64) -> Option<u32> {
        let (start, end) = self.core.window();
        (ns >= start && ns < end).then(|| ((ns - start) / self.core.sh.slice_ns) as u32)
    }
}

impl<'a> Flow<'a> for StreamConn<'a> {
    #[inline]
    fn core(&mut self) -> &mut ConnCore<'a> {
        &mut self.core
    }

    #[inline]
    fn in_flight(&self) -> usize {
        self.open.len()
    }

    #[inline]
    fn send_one(&mut self, cx: &mut Context<'_>, now: u64) -> Poll<Result<(), WsError>> {
        let (proto, index) = (self.proto, self.core.plan.index);
        let sent = ready!(self.core.send(cx, now, |id, seq, rng| {
            proto.request.build(&proto.matching, id, index, seq, rng)
        }))?;
        self.open
            .push(sent.seq, Stream::new(sent.t, sent.in_window));
        Poll::Ready(Ok(()))
    }

    #[inline]
    fn on_text(&mut self, text: &str) {
        self.last.text(text);
        let seen = self.proto.read_text(text);
        self.on_frame(seen, text.len(), Some(text));
    }

    #[inline]
    fn on_binary(&mut self, bytes: &[u8]) {
        self.last.binary(bytes.len());
        let seen = self.proto.read_binary(bytes);
        self.on_frame(seen, bytes.len(), None);
    }

    #[cold]
    fn server_closed(&mut self, code: u16, how: &str) {
        if self.proto.end == End::Close {
            // Its way of ending streams, never an error (after the drain
            // deadline the open streams were already counted incomplete).
            let now = self.core.sh.now_ns();
            let seqs: Vec<u64> = self.open.iter().map(|(seq, _)| seq).collect();
            for seq in seqs {
                self.end_stream(seq, now);
            }
            self.ended_by_server = true;
            self.core.close_sent = true;
        } else {
            self.core.closed_by_server(code, how);
            self.incomplete("cut off: the server closed the connection mid-stream");
        }
    }

    fn protocol_error(&mut self) {
        self.incomplete("cut off by a protocol error");
    }

    fn drain_deadline(&mut self) {
        self.incomplete("without an end at the drain deadline");
    }

    fn end_due(&mut self, now: u64) -> Option<u64> {
        self.end_idle_streams(now)
    }

    /// After the server ended the session under `end = "close"`, when more
    /// requests are due.
    fn reconnect(&self) -> bool {
        self.ended_by_server && !self.core.sending_done && !self.core.stopping
    }
}
