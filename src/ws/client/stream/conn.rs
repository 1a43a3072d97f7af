//! One connection of a protocol flood: the same shape of poll loop as the
//! plain flood's ([`crate::ws::client::conn`]) — read every ready frame,
//! send what the load allows, flush once — with streams instead of single
//! replies: several requests open at once, replies interleaved, each
//! stream ended by its protocol's `end` (a frame, a count, idleness, or the
//! server closing, after which the connection is opened again).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{Sink, Stream as _};
use tokio::sync::futures::OwnedNotified;
use tokio::time::Sleep;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

mod track;

use super::open::{Open, Stream};
use super::record::{StreamLocal, StreamRecorder};
use super::{End, Protocol};
use crate::stats::Rng;
use crate::ws::client::conn_core::{CLOSE_TIMEOUT, ConnLoad, ConnPlan, SEQ_BITS, Shared};
use crate::ws::client::ping::Pinger;
use crate::ws::client::record::{ErrorKind, Local};
use crate::ws::client::{Connector, Ws};

/// How long opening a connection again (`end = "close"`) may take.
const RECONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How a session on one socket ended.
#[derive(PartialEq)]
enum Exit {
    Done,
    /// The server closed it under `end = "close"`, with more to send.
    Reconnect,
}

struct StreamConn<'a> {
    ws: Ws,
    sh: &'a Shared,
    proto: &'a Protocol,
    rec: &'a StreamRecorder,
    plan: ConnPlan,
    id_base: u64,
    next_seq: u64,
    open: Open,
    window_sent: u64,
    local: Local,
    slocal: StreamLocal,
    rng: Rng,
    dirty: bool,
    sending_done: bool,
    stopping: bool,
    close_sent: bool,
    /// The server closed the socket under `end = "close"`.
    ended_by_server: bool,
    sched_start_ns: u64,
    timer: Pin<Box<Sleep>>,
    close_timer_armed: bool,
    stop_fut: Option<Pin<Box<OwnedNotified>>>,
    pinger: Option<Pinger>,
}

/// Drives a connected socket (and, under `end = "close"`, the ones opened
/// after it) until the flood is over for this connection.
pub async fn run(ws: Ws, sh: Arc<Shared>, plan: ConnPlan, connector: Connector) {
    let (Some(proto), Some(rec)) = (sh.protocol.as_ref(), sh.streams.as_ref()) else {
        return;
    };
    let mut c = StreamConn {
        ws,
        sh: &sh,
        proto,
        rec,
        plan,
        id_base: (plan.index as u64) << SEQ_BITS,
        next_seq: 0,
        open: Open::default(),
        window_sent: 0,
        local: Local::new(),
        slocal: StreamLocal::default(),
        rng: Rng::new(plan.seed),
        dirty: false,
        sending_done: false,
        stopping: false,
        close_sent: false,
        ended_by_server: false,
        sched_start_ns: sh.now_ns(),
        timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
        close_timer_armed: false,
        stop_fut: Some(Box::pin(sh.stop_notify.clone().notified_owned())),
        pinger: sh.ping.map(|p| Pinger::new(p, plan.index)),
    };
    while std::future::poll_fn(|cx| c.poll_io(cx)).await == Exit::Reconnect {
        if sh.stop.load(Ordering::Relaxed) {
            break;
        }
        let r = tokio::time::timeout(RECONNECT_TIMEOUT, connector.connect()).await;
        match r.unwrap_or_else(|_| {
            Err(format!(
                "no handshake within {RECONNECT_TIMEOUT:?} when opening the connection again"
            ))
        }) {
            Ok(ws) => c.reopen(ws),
            Err(e) => {
                sh.recorder.error(ErrorKind::Connect, 1, || e);
                break;
            }
        }
    }
    c.finish();
}

impl StreamConn<'_> {
    fn reopen(&mut self, ws: Ws) {
        self.ws = ws;
        self.dirty = false;
        self.close_sent = false;
        self.ended_by_server = false;
        self.close_timer_armed = false;
        if let Some(p) = &mut self.pinger {
            p.reconnected();
        }
    }

    fn finish(&mut self) {
        if let Some(p) = &mut self.pinger {
            p.finish(self.sh);
        }
        self.incomplete("never ended (the connection closed first)");
        self.sh.recorder.flush(&mut self.local);
        self.rec.flush(&mut self.slocal);
    }

    fn intended_ns(&self, seq: u64) -> u64 {
        match self.plan.load {
            ConnLoad::Open {
                interval_ns,
                phase_ns,
            } => self.sched_start_ns + (phase_ns + seq as f64 * interval_ns) as u64,
            ConnLoad::Closed { .. } => 0,
        }
    }

    fn window(&self) -> (u64, u64) {
        let start = self.sh.start_ns.load(Ordering::Relaxed);
        (start, self.sh.end_ns.load(Ordering::Relaxed))
    }

    fn slice_of(&self, ns: u64) -> Option<u32> {
        let (start, end) = self.window();
        (ns >= start && ns < end).then(|| ((ns - start) / self.sh.slice_ns) as u32)
    }

    fn may_send(&mut self, now: u64) -> bool {
        if self.sending_done || self.close_sent {
            return false;
        }
        if now >= self.window().1 || self.plan.quota.is_some_and(|q| self.window_sent >= q) {
            self.sending_done = true;
            return false;
        }
        match self.plan.load {
            ConnLoad::Closed { k } => self.open.len() < k,
            ConnLoad::Open { .. } => self.intended_ns(self.next_seq) <= now,
        }
    }

    fn send_one(&mut self, cx: &mut Context<'_>, now: u64) -> Result<bool, WsError> {
        match Pin::new(&mut self.ws).poll_ready(cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(e)) => return Err(e),
            Poll::Pending => return Ok(false),
        }
        let seq = self.next_seq;
        let id = self.id_base | seq;
        let (msg, len) = self.proto.request.build(
            &self.proto.matching,
            id,
            self.plan.index,
            seq,
            &mut self.rng,
        );
        Pin::new(&mut self.ws).start_send(msg)?;
        self.dirty = true;
        self.next_seq += 1;
        let t = match self.plan.load {
            ConnLoad::Closed { .. } => now,
            ConnLoad::Open { .. } => self.intended_ns(seq),
        };
        let (start, end) = self.window();
        let in_window = t >= start && t < end;
        self.open.push(seq, Stream::new(t, in_window));
        self.local.sent_total += 1;
        if in_window {
            self.window_sent += 1;
            self.local.sent_in_window += 1;
            self.local.sent_bytes_in_window += len as u64;
            if let ConnLoad::Open { .. } = self.plan.load {
                self.local.lags.push(now.saturating_sub(t));
            }
        }
        Ok(true)
    }

    fn on_message(&mut self, m: Message) {
        match m {
            Message::Text(t) => {
                let seen = self.proto.read_text(&t);
                self.on_frame(seen, t.len(), Some(&t));
            }
            Message::Binary(b) => {
                let seen = self.proto.read_binary(&b);
                self.on_frame(seen, b.len(), None);
            }
            Message::Pong(p) => {
                if let Some(pinger) = &mut self.pinger {
                    pinger.on_pong(&p, self.sh);
                }
            }
            Message::Ping(_) | Message::Frame(_) => self.dirty = true,
            Message::Close(frame) => {
                if !self.close_sent {
                    let code = frame.map_or(1005, |f| u16::from(f.code));
                    self.server_closed(code, "sent a close frame");
                }
                self.dirty = true;
            }
        }
    }

    #[cold]
    fn server_closed(&mut self, code: u16, how: &str) {
        if self.proto.end == End::Close {
            // Its way of ending streams, never an error (after the drain
            // deadline the open streams were already counted incomplete).
            let now = self.sh.now_ns();
            let seqs: Vec<u64> = self.open.iter().map(|(seq, _)| seq).collect();
            for seq in seqs {
                self.end_stream(seq, now);
            }
            self.ended_by_server = true;
        } else {
            let idx = self.plan.index;
            self.sh.recorder.closed(code);
            self.sh.recorder.error(ErrorKind::Closed, 1, || {
                format!("connection {idx}: the server {how} (code {code}) before the client closed")
            });
            self.incomplete("cut off: the server closed the connection mid-stream");
            self.sending_done = true;
        }
        self.close_sent = true;
    }

    #[cold]
    fn on_error(&mut self, e: WsError) {
        if self.close_sent {
            return;
        }
        use std::io::ErrorKind as Io;
        let dropped = match &e {
            WsError::Io(io) => matches!(
                io.kind(),
                Io::ConnectionReset | Io::BrokenPipe | Io::UnexpectedEof | Io::ConnectionAborted
            ),
            WsError::Protocol(p) => matches!(
                p,
                tokio_tungstenite::tungstenite::error::ProtocolError::ResetWithoutClosingHandshake
            ),
            WsError::ConnectionClosed | WsError::AlreadyClosed => true,
            _ => false,
        };
        if dropped {
            self.server_closed(1006, &format!("dropped the connection ({e})"));
        } else {
            let idx = self.plan.index;
            self.sh
                .recorder
                .error(ErrorKind::Protocol, 1, || format!("connection {idx}: {e}"));
            self.incomplete("cut off by a protocol error");
        }
    }

    fn begin_stop(&mut self) {
        self.stopping = true;
        self.sending_done = true;
        self.incomplete("without an end at the drain deadline");
    }

    /// What ends the session: a reconnect when the server ended it under
    /// `end = "close"` and more requests are due.
    fn exit(&self) -> Poll<Exit> {
        let more = !self.sending_done && !self.stopping;
        Poll::Ready(if self.ended_by_server && more {
            Exit::Reconnect
        } else {
            Exit::Done
        })
    }

    fn poll_io(&mut self, cx: &mut Context<'_>) -> Poll<Exit> {
        loop {
            let mut read_any = false;
            loop {
                match Pin::new(&mut self.ws).poll_next(cx) {
                    Poll::Ready(Some(Ok(m))) => {
                        read_any = true;
                        self.on_message(m);
                    }
                    Poll::Ready(Some(Err(e))) => {
                        self.on_error(e);
                        return self.exit();
                    }
                    Poll::Ready(None) => {
                        if !self.close_sent {
                            self.server_closed(1006, "closed the socket without a close frame");
                        }
                        return self.exit();
                    }
                    Poll::Pending => break,
                }
            }
            if read_any {
                // Keeps the runtime polling for the stream's next reply
                // (`client_spin`, as the plain flood does).
                if let Some(spin) = &self.sh.spin {
                    spin.active(self.sh.now_ns());
                }
            }
            if !self.stopping {
                let notified = self
                    .stop_fut
                    .as_mut()
                    .is_some_and(|f| f.as_mut().poll(cx).is_ready());
                if notified || self.sh.stop.load(Ordering::Relaxed) {
                    self.stop_fut = None;
                    self.begin_stop();
                }
            }
            let now = self.sh.now_ns();
            let idle_due = self.end_idle_streams(now);
            let mut write_blocked = false;
            while self.may_send(now) {
                match self.send_one(cx, now) {
                    Ok(true) => {}
                    Ok(false) => {
                        write_blocked = true;
                        break;
                    }
                    Err(e) => {
                        self.on_error(e);
                        return self.exit();
                    }
                }
            }
            if let Err(e) = self.ping(cx) {
                self.on_error(e);
                return self.exit();
            }
            if let Some(p) = self.close_when_done(cx) {
                return p;
            }
            if self.dirty {
                match Pin::new(&mut self.ws).poll_flush(cx) {
                    Poll::Ready(Ok(())) => self.dirty = false,
                    Poll::Ready(Err(e)) => {
                        self.on_error(e);
                        return self.exit();
                    }
                    Poll::Pending => {}
                }
            }
            match self.arm_timer(cx, idle_due, write_blocked) {
                Some(p) => return p,
                None => continue,
            }
        }
    }

    /// The `ping` check's pings, while the connection is not closing.
    fn ping(&mut self, cx: &mut Context<'_>) -> Result<(), WsError> {
        if self.close_sent {
            return Ok(());
        }
        if let Some(p) = &mut self.pinger {
            self.dirty |= p.poll(cx, &mut self.ws, self.sh)?;
        }
        Ok(())
    }

    /// Sends the close frame once nothing more will be sent or awaited.
    fn close_when_done(&mut self, cx: &mut Context<'_>) -> Option<Poll<Exit>> {
        if !(self.sending_done && self.open.is_empty() && !self.close_sent) {
            return None;
        }
        match Pin::new(&mut self.ws).poll_ready(cx) {
            Poll::Ready(Ok(())) => {
                let frame = CloseFrame {
                    code: CloseCode::Normal,
                    reason: "".into(),
                };
                if Pin::new(&mut self.ws)
                    .start_send(Message::Close(Some(frame)))
                    .is_err()
                {
                    return Some(Poll::Ready(Exit::Done));
                }
                self.close_sent = true;
                self.dirty = true;
                None
            }
            Poll::Ready(Err(_)) => Some(Poll::Ready(Exit::Done)),
            Poll::Pending => None,
        }
    }

    /// Sets the one timer to the earliest of the close deadline, the next
    /// scheduled send and the next idle end. `None`: go round again now.
    fn arm_timer(
        &mut self,
        cx: &mut Context<'_>,
        idle_due: Option<u64>,
        write_blocked: bool,
    ) -> Option<Poll<Exit>> {
        if self.close_sent {
            if !self.close_timer_armed {
                self.timer
                    .as_mut()
                    .reset(tokio::time::Instant::now() + CLOSE_TIMEOUT);
                self.close_timer_armed = true;
            }
            return Some(match self.timer.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Exit::Done),
                Poll::Pending => Poll::Pending,
            });
        }
        let send_due = match self.plan.load {
            ConnLoad::Open { .. } if !self.sending_done && !write_blocked => {
                Some(self.intended_ns(self.next_seq))
            }
            _ => None,
        };
        let Some(due) = [send_due, idle_due].into_iter().flatten().min() else {
            return Some(Poll::Pending);
        };
        if due <= self.sh.now_ns() {
            return None;
        }
        let at = self.sh.t0 + Duration::from_nanos(due);
        self.timer
            .as_mut()
            .reset(tokio::time::Instant::from_std(at));
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => None,
            Poll::Pending => Some(Poll::Pending),
        }
    }
}
