//! What every connection of a flood has, whichever flood it runs: the
//! state all connections read ([`Shared`]), what one is asked to do
//! ([`ConnPlan`]), and [`ConnCore`], one connection's socket and the
//! bookkeeping the plain flood ([`super::conn`]) and the protocol floods
//! ([`super::stream::conn`]) share: the schedule, the window's counts of
//! what was sent, the drain deadline, pings, the close frame, the one flush
//! per round and the one timer. The poll loop over it is [`super::drive`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use futures_util::Sink;
use tokio::sync::Notify;
use tokio::sync::futures::OwnedNotified;
use tokio::time::Sleep;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::Ws;
use super::payload::Payload;
use super::ping::Pinger;
use super::record::{ErrorKind, Local, Recorder};
use crate::stats::Rng;

/// Not yet known (window start/end before the coordinator sets them).
pub const UNSET: u64 = u64::MAX;
/// Bits of the id that hold the per-connection sequence number; the
/// connection's index sits above them.
pub const SEQ_BITS: u32 = 40;
/// How long a connection waits for the server's close frame.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// State every connection of a flood reads.
pub struct Shared {
    pub t0: Instant,
    /// Measurement window, ns since `t0`; [`UNSET`] until the coordinator
    /// knows it (after ramp-up). `end_ns` stays unset in messages mode.
    pub start_ns: AtomicU64,
    pub end_ns: AtomicU64,
    pub slice_ns: u64,
    /// Set at the drain deadline: give up on outstanding replies and close.
    pub stop: AtomicBool,
    pub stop_notify: Arc<Notify>,
    pub recorder: Recorder,
    pub payload: Payload,
    /// Keeps the runtime awake between replies ([`super::spin`]).
    pub spin: Option<Arc<super::spin::Spin>>,
    /// A protocol flood's protocol and stream timings ([`super::stream`]).
    pub protocol: Option<super::stream::Protocol>,
    pub streams: Option<super::stream::StreamRecorder>,
    /// The `ping` check's settings and every connection's pings.
    pub ping: Option<super::ping::PingConfig>,
    pub pings: Option<super::ping::PingRecorder>,
}

impl Shared {
    #[inline]
    pub fn now_ns(&self) -> u64 {
        self.t0.elapsed().as_nanos() as u64
    }
}

/// How one connection loads the server.
#[derive(Clone, Copy, Debug)]
pub enum ConnLoad {
    /// Keep `k` requests in flight.
    Closed { k: usize },
    /// Send request `i` at `phase + i · interval` after connecting.
    Open { interval_ns: f64, phase_ns: f64 },
}

/// What one connection is asked to do.
#[derive(Clone, Copy, Debug)]
pub struct ConnPlan {
    pub index: u32,
    pub load: ConnLoad,
    /// Messages mode: in-window requests this connection sends.
    pub quota: Option<u64>,
    pub seed: u64,
}

/// A request [`ConnCore::send`] put on the socket.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sent {
    pub seq: u64,
    /// Send time (closed loop) or intended send time (open loop), ns since
    /// `t0`: what its reply is timed from.
    pub t: u64,
    /// `t` falls in the measurement window: its timings count.
    pub in_window: bool,
}

/// One connection's socket and the state both floods keep alike; each
/// flood adds how it matches replies to requests.
pub(crate) struct ConnCore<'a> {
    pub ws: Ws,
    pub sh: &'a Shared,
    pub plan: ConnPlan,
    id_base: u64,
    pub next_seq: u64,
    /// In-window requests sent (against `plan.quota`).
    window_sent: u64,
    pub local: Local,
    rng: Rng,
    /// Frames were queued since the last flush.
    pub dirty: bool,
    /// No more requests will be sent.
    pub sending_done: bool,
    /// The drain deadline came: replies no longer count.
    pub stopping: bool,
    /// The close frame went out, or the server closed first.
    pub close_sent: bool,
    sched_start_ns: u64,
    /// The next scheduled send, a flood's own deadline, or the close
    /// deadline once the close frame is out.
    timer: Pin<Box<Sleep>>,
    close_timer_armed: bool,
    stop_fut: Option<Pin<Box<OwnedNotified>>>,
    pinger: Option<Pinger>,
}

impl<'a> ConnCore<'a> {
    pub(crate) fn new(ws: Ws, sh: &'a Shared, plan: ConnPlan) -> Self {
        ConnCore {
            ws,
            sh,
            plan,
            id_base: (plan.index as u64) << SEQ_BITS,
            next_seq: 0,
            window_sent: 0,
            local: Local::new(),
            rng: Rng::new(plan.seed),
            dirty: false,
            sending_done: false,
            stopping: false,
            close_sent: false,
            sched_start_ns: sh.now_ns(),
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
            close_timer_armed: false,
            stop_fut: Some(Box::pin(sh.stop_notify.clone().notified_owned())),
            pinger: sh.ping.map(|p| Pinger::new(p, plan.index)),
        }
    }

    /// Goes on over a socket opened again (`end = "close"`): nothing
    /// queued, not closing, no ping awaited.
    pub(crate) fn reopen(&mut self, ws: Ws) {
        self.ws = ws;
        self.dirty = false;
        self.close_sent = false;
        self.close_timer_armed = false;
        if let Some(p) = &mut self.pinger {
            p.reconnected();
        }
    }

    /// The connection is over: its last pings and replies are recorded.
    pub(crate) fn finish(&mut self) {
        if let Some(p) = &mut self.pinger {
            p.finish(self.sh);
        }
        self.sh.recorder.flush(&mut self.local);
    }

    /// When request `seq` is due (open loop), ns since `t0`.
    #[inline]
    pub(crate) fn intended_ns(&self, seq: u64) -> u64 {
        match self.plan.load {
            ConnLoad::Open {
                interval_ns,
                phase_ns,
            } => self.sched_start_ns + (phase_ns + seq as f64 * interval_ns) as u64,
            ConnLoad::Closed { .. } => 0,
        }
    }

    /// The measurement window, ns since `t0` ([`UNSET`] while unknown).
    #[inline]
    pub(crate) fn window(&self) -> (u64, u64) {
        let start = self.sh.start_ns.load(Ordering::Relaxed);
        (start, self.sh.end_ns.load(Ordering::Relaxed))
    }

    /// Whether another request may go out now, with `in_flight` awaited
    /// (and notes when none ever will).
    #[inline]
    pub(crate) fn may_send(&mut self, now: u64, in_flight: usize) -> bool {
        if self.sending_done || self.close_sent {
            return false;
        }
        let end = self.sh.end_ns.load(Ordering::Relaxed);
        if now >= end || self.plan.quota.is_some_and(|q| self.window_sent >= q) {
            self.sending_done = true;
            return false;
        }
        match self.plan.load {
            ConnLoad::Closed { k } => in_flight < k,
            ConnLoad::Open { .. } => self.intended_ns(self.next_seq) <= now,
        }
    }

    /// Sends the next request, which `build` makes from its id, sequence
    /// number and the connection's random numbers (message and its size);
    /// `Pending` while the socket cannot take it.
    #[inline]
    pub(crate) fn send(
        &mut self,
        cx: &mut Context<'_>,
        now: u64,
        build: impl FnOnce(u64, u64, &mut Rng) -> (Message, usize),
    ) -> Poll<Result<Sent, WsError>> {
        ready!(Pin::new(&mut self.ws).poll_ready(cx))?;
        let seq = self.next_seq;
        let (msg, len) = build(self.id_base | seq, seq, &mut self.rng);
        Pin::new(&mut self.ws).start_send(msg)?;
        self.dirty = true;
        self.next_seq += 1;
        let t = match self.plan.load {
            ConnLoad::Closed { .. } => now,
            ConnLoad::Open { .. } => self.intended_ns(seq),
        };
        let in_window = self.note_sent(t, len, now);
        Poll::Ready(Ok(Sent { seq, t, in_window }))
    }

    /// Counts a request of `len` bytes timed from `t`, sent at `now`;
    /// whether it is in the window.
    #[inline]
    fn note_sent(&mut self, t: u64, len: usize, now: u64) -> bool {
        self.local.sent_total += 1;
        let (start, end) = self.window();
        let in_window = t >= start && t < end;
        if in_window {
            self.window_sent += 1;
            self.local.sent_in_window += 1;
            self.local.sent_bytes_in_window += len as u64;
            if let ConnLoad::Open { .. } = self.plan.load {
                self.local.lags.push(now.saturating_sub(t));
            }
        }
        in_window
    }

    /// Whether the drain deadline came just now: sending is then over, and
    /// the flood decides what becomes of the requests in flight.
    pub(crate) fn poll_stop(&mut self, cx: &mut Context<'_>) -> bool {
        if self.stopping {
            return false;
        }
        let notified = self
            .stop_fut
            .as_mut()
            .is_some_and(|f| f.as_mut().poll(cx).is_ready());
        if !notified && !self.sh.stop.load(Ordering::Relaxed) {
            return false;
        }
        self.stop_fut = None;
        self.stopping = true;
        self.sending_done = true;
        true
    }

    /// The `ping` check's pings, while the connection is not closing.
    pub(crate) fn ping(&mut self, cx: &mut Context<'_>) -> Result<(), WsError> {
        if self.close_sent {
            return Ok(());
        }
        if let Some(p) = &mut self.pinger {
            self.dirty |= p.poll(cx, &mut self.ws, self.sh)?;
        }
        Ok(())
    }

    pub(crate) fn on_pong(&mut self, payload: &[u8]) {
        if let Some(p) = &mut self.pinger {
            p.on_pong(payload, self.sh);
        }
    }

    /// Queues the close frame (once), and starts waiting for the server's.
    pub(crate) fn send_close(&mut self, cx: &mut Context<'_>) -> Result<(), WsError> {
        if self.close_sent {
            return Ok(());
        }
        if Pin::new(&mut self.ws).poll_ready(cx)?.is_pending() {
            return Ok(());
        }
        let frame = CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        };
        Pin::new(&mut self.ws).start_send(Message::Close(Some(frame)))?;
        self.close_sent = true;
        self.dirty = true;
        self.arm_close_timer();
        Ok(())
    }

    /// One flush for everything queued this round.
    pub(crate) fn flush(&mut self, cx: &mut Context<'_>) -> Result<(), WsError> {
        if self.dirty && Pin::new(&mut self.ws).poll_flush(cx)?.is_ready() {
            self.dirty = false;
        }
        Ok(())
    }

    /// The next scheduled send (open loop), unless a write blocked: it
    /// wakes the loop when it can go on.
    pub(crate) fn send_due(&self, write_blocked: bool) -> Option<u64> {
        match self.plan.load {
            ConnLoad::Open { .. } if !self.sending_done && !write_blocked => {
                Some(self.intended_ns(self.next_seq))
            }
            _ => None,
        }
    }

    /// Sets the one timer: to the close deadline once the close frame is
    /// out (`Some(Ready)`: it passed, give up), else to `due` (ns since
    /// `t0`). `None`: `due` has come, go round again; `Some(Pending)`: wait.
    pub(crate) fn poll_timer(
        &mut self,
        cx: &mut Context<'_>,
        due: Option<u64>,
    ) -> Option<Poll<()>> {
        if self.close_sent {
            if !self.close_timer_armed {
                self.arm_close_timer();
            }
            return Some(self.timer.as_mut().poll(cx));
        }
        let Some(due) = due else {
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

    fn arm_close_timer(&mut self) {
        self.timer
            .as_mut()
            .reset(tokio::time::Instant::now() + CLOSE_TIMEOUT);
        self.close_timer_armed = true;
    }

    /// Records that the server closed first (`code`; `how`, the evidence):
    /// nothing more can be sent.
    #[cold]
    pub(crate) fn closed_by_server(&mut self, code: u16, how: &str) {
        let idx = self.plan.index;
        self.sh.recorder.closed(code);
        self.sh.recorder.error(ErrorKind::Closed, 1, || {
            format!("connection {idx}: the server {how} (code {code}) before the client closed")
        });
        self.sending_done = true;
        self.close_sent = true;
    }

    #[cold]
    pub(crate) fn protocol_error(&self, e: &WsError) {
        let idx = self.plan.index;
        self.sh
            .recorder
            .error(ErrorKind::Protocol, 1, || format!("connection {idx}: {e}"));
    }
}

/// Whether an error means the server dropped the connection (rather than
/// broke the protocol).
pub(crate) fn is_dropped(e: &WsError) -> bool {
    use std::io::ErrorKind as Io;
    match e {
        WsError::Io(io) => matches!(
            io.kind(),
            Io::ConnectionReset | Io::BrokenPipe | Io::UnexpectedEof | Io::ConnectionAborted
        ),
        WsError::Protocol(p) => matches!(p, ProtocolError::ResetWithoutClosingHandshake),
        WsError::ConnectionClosed | WsError::AlreadyClosed => true,
        _ => false,
    }
}
