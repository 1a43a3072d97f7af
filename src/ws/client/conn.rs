//! One connection of a flood: a hand-written poll loop over one
//! WebSocket stream that reads every reply that is ready, sends what the
//! load allows (k in flight, or what the schedule says is due), and flushes
//! once per round, so a burst of replies costs one write syscall. Reading
//! and writing make progress in the same task, so a server that stops
//! reading cannot deadlock it, and no lock or channel sits on the message
//! path.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{Sink, Stream};
use tokio::sync::futures::OwnedNotified;
use tokio::time::Sleep;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::conn_core::{CLOSE_TIMEOUT, ConnLoad, ConnPlan, SEQ_BITS, Shared};
use super::ping::Pinger;
use super::record::{ErrorKind, Local, Reply};
use crate::stats::Rng;
use crate::ws::protocol::{binary_id, text_id};

/// Marks an answered request in the outstanding queue.
const ANSWERED: u64 = u64::MAX;

use super::Ws;

struct Conn<'a> {
    ws: Ws,
    sh: &'a Shared,
    plan: ConnPlan,
    id_base: u64,
    next_seq: u64,
    base_seq: u64,
    /// Send (closed loop) or intended (open loop) time per outstanding
    /// request, from `base_seq` on; [`ANSWERED`] once its reply came.
    outstanding: VecDeque<u64>,
    pending: usize,
    window_sent: u64,
    local: Local,
    rng: Rng,
    dirty: bool,
    sending_done: bool,
    stopping: bool,
    close_sent: bool,
    sched_start_ns: u64,
    timer: Pin<Box<Sleep>>,
    timer_armed: bool,
    stop_fut: Option<Pin<Box<OwnedNotified>>>,
    pinger: Option<Pinger>,
}

/// Drives a connected socket until the flood is over for it.
pub async fn run(ws: Ws, sh: Arc<Shared>, plan: ConnPlan) {
    let stop_fut = Some(Box::pin(sh.stop_notify.clone().notified_owned()));
    let now = sh.now_ns();
    let mut c = Conn {
        ws,
        sh: &sh,
        plan,
        id_base: (plan.index as u64) << SEQ_BITS,
        next_seq: 0,
        base_seq: 0,
        outstanding: VecDeque::new(),
        pending: 0,
        window_sent: 0,
        local: Local::new(),
        rng: Rng::new(plan.seed),
        dirty: false,
        sending_done: false,
        stopping: false,
        close_sent: false,
        sched_start_ns: now,
        timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
        timer_armed: false,
        stop_fut,
        pinger: sh.ping.map(|p| Pinger::new(p, plan.index)),
    };
    std::future::poll_fn(|cx| c.poll_io(cx)).await;
    c.finish();
}

impl Conn<'_> {
    fn finish(&mut self) {
        if let Some(p) = &mut self.pinger {
            p.finish(self.sh);
        }
        if self.pending > 0 {
            let n = self.pending as u64;
            let idx = self.plan.index;
            self.sh.recorder.error(ErrorKind::Lost, n, || {
                format!("connection {idx}: {n} request(s) never answered")
            });
            self.pending = 0;
        }
        self.sh.recorder.flush(&mut self.local);
    }

    #[inline]
    fn intended_ns(&self, seq: u64) -> u64 {
        match self.plan.load {
            ConnLoad::Open {
                interval_ns,
                phase_ns,
            } => self.sched_start_ns + (phase_ns + seq as f64 * interval_ns) as u64,
            ConnLoad::Closed { .. } => 0,
        }
    }

    /// Whether another request may go out now (and notes when none ever will).
    #[inline]
    fn may_send(&mut self, now: u64) -> bool {
        if self.sending_done {
            return false;
        }
        if now >= self.sh.end_ns.load(Ordering::Relaxed) {
            self.sending_done = true;
            return false;
        }
        if let Some(q) = self.plan.quota {
            if self.window_sent >= q {
                self.sending_done = true;
                return false;
            }
        }
        match self.plan.load {
            ConnLoad::Closed { k } => self.pending < k,
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
        let (msg, len) = self.sh.payload.message(self.id_base | seq, &mut self.rng);
        Pin::new(&mut self.ws).start_send(msg)?;
        self.dirty = true;
        self.next_seq += 1;
        let t = match self.plan.load {
            ConnLoad::Closed { .. } => now,
            ConnLoad::Open { .. } => self.intended_ns(seq),
        };
        self.outstanding.push_back(t);
        self.pending += 1;
        self.local.sent_total += 1;
        let start = self.sh.start_ns.load(Ordering::Relaxed);
        if t >= start && t < self.sh.end_ns.load(Ordering::Relaxed) {
            self.window_sent += 1;
            self.local.sent_in_window += 1;
            self.local.sent_bytes_in_window += len as u64;
            if let ConnLoad::Open { .. } = self.plan.load {
                self.local.lags.push(now.saturating_sub(t));
            }
        }
        Ok(true)
    }

    fn on_reply(&mut self, id: Option<u64>, bytes: usize) {
        if self.stopping {
            return;
        }
        let now = self.sh.now_ns();
        self.local.received_total += 1;
        let seq = match id {
            Some(id) if id >> SEQ_BITS == self.plan.index as u64 => id & ((1 << SEQ_BITS) - 1),
            _ => return self.unmatched(id),
        };
        if seq < self.base_seq || seq >= self.next_seq {
            return self.unmatched(id);
        }
        let slot = &mut self.outstanding[(seq - self.base_seq) as usize];
        let sent = *slot;
        if sent == ANSWERED {
            return self.unmatched(id);
        }
        *slot = ANSWERED;
        self.pending -= 1;
        while self.outstanding.front() == Some(&ANSWERED) {
            self.outstanding.pop_front();
            self.base_seq += 1;
        }
        let start = self.sh.start_ns.load(Ordering::Relaxed);
        let end = self.sh.end_ns.load(Ordering::Relaxed);
        let rtt_ns = (sent >= start && sent < end).then(|| now.saturating_sub(sent));
        let slice = (now >= start && now < end).then(|| ((now - start) / self.sh.slice_ns) as u32);
        if slice.is_some() {
            self.local.received_in_window += 1;
            self.local.received_bytes_in_window += bytes as u64;
        }
        if rtt_ns.is_some() {
            self.local.last_reply_ns = now;
        }
        self.local.replies.push(Reply {
            rtt_ns,
            slice,
            bytes: bytes as u32,
        });
        if self.local.full() {
            self.sh.recorder.flush(&mut self.local);
        }
    }

    #[cold]
    fn unmatched(&mut self, id: Option<u64>) {
        let idx = self.plan.index;
        self.sh
            .recorder
            .error(ErrorKind::Unmatched, 1, || match id {
                Some(id) => {
                    format!("connection {idx}: reply with id {id:#x} matches no request in flight")
                }
                None => format!("connection {idx}: reply without a request id"),
            });
    }

    /// Handles one message; `true` ends the connection.
    fn on_message(&mut self, m: Message) -> bool {
        match m {
            Message::Binary(b) => self.on_reply(binary_id(&b), b.len()),
            Message::Text(t) => self.on_reply(text_id(&t), t.len()),
            Message::Pong(p) => {
                if let Some(pinger) = &mut self.pinger {
                    pinger.on_pong(&p, self.sh);
                }
            }
            Message::Ping(_) | Message::Frame(_) => {
                // tungstenite queued the pong; make sure it goes out.
                self.dirty = true;
            }
            Message::Close(frame) => {
                if !self.close_sent {
                    let code = frame.map_or(1005, |f| u16::from(f.code));
                    self.server_closed(code, "sent a close frame");
                }
                self.dirty = true;
            }
        }
        false
    }

    #[cold]
    fn server_closed(&mut self, code: u16, how: &str) {
        let idx = self.plan.index;
        self.sh.recorder.closed(code);
        self.sh.recorder.error(ErrorKind::Closed, 1, || {
            format!("connection {idx}: the server {how} (code {code}) before the client closed")
        });
        self.sending_done = true;
        // Nothing more can be sent; outstanding requests are lost.
        self.close_sent = true;
    }

    #[cold]
    fn on_error(&mut self, e: WsError) {
        if self.close_sent {
            return; // errors while closing do not matter
        }
        use std::io::ErrorKind as Io;
        let dropped = match &e {
            WsError::Io(io) => matches!(
                io.kind(),
                Io::ConnectionReset | Io::BrokenPipe | Io::UnexpectedEof | Io::ConnectionAborted
            ),
            WsError::Protocol(p) => {
                matches!(p, tokio_tungstenite::tungstenite::error::ProtocolError::ResetWithoutClosingHandshake)
            }
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
        }
    }

    fn begin_stop(&mut self) {
        self.stopping = true;
        self.sending_done = true;
        if self.pending > 0 {
            let n = self.pending as u64;
            let idx = self.plan.index;
            self.sh.recorder.error(ErrorKind::Lost, n, || {
                format!("connection {idx}: {n} request(s) unanswered at the drain deadline")
            });
            self.pending = 0;
            self.outstanding.clear();
        }
    }

    fn poll_io(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            // 1. Every reply that is ready.
            let mut read_any = false;
            loop {
                match Pin::new(&mut self.ws).poll_next(cx) {
                    Poll::Ready(Some(Ok(m))) => {
                        read_any = true;
                        self.on_message(m);
                    }
                    Poll::Ready(Some(Err(e))) => {
                        self.on_error(e);
                        return Poll::Ready(());
                    }
                    Poll::Ready(None) => {
                        if !self.close_sent {
                            self.server_closed(1006, "closed the socket without a close frame");
                        }
                        return Poll::Ready(());
                    }
                    Poll::Pending => break,
                }
            }
            if read_any {
                if let Some(spin) = &self.sh.spin {
                    spin.active(self.sh.now_ns());
                }
            }
            // 2. The drain deadline.
            if !self.stopping {
                let notified = match self.stop_fut.as_mut() {
                    Some(f) => f.as_mut().poll(cx).is_ready(),
                    None => false,
                };
                if notified || self.sh.stop.load(Ordering::Relaxed) {
                    self.stop_fut = None;
                    self.begin_stop();
                }
            }
            // 3. Requests the load allows.
            let now = self.sh.now_ns();
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
                        return Poll::Ready(());
                    }
                }
            }
            // 3b. Pings (the `ping` check).
            if !self.close_sent {
                if let Some(p) = &mut self.pinger {
                    match p.poll(cx, &mut self.ws, self.sh) {
                        Ok(queued) => self.dirty |= queued,
                        Err(e) => {
                            self.on_error(e);
                            return Poll::Ready(());
                        }
                    }
                }
            }
            // 4. Close once everything sent was answered.
            if self.sending_done && self.pending == 0 && !self.close_sent {
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
                            return Poll::Ready(());
                        }
                        self.close_sent = true;
                        self.dirty = true;
                        self.timer
                            .as_mut()
                            .reset(tokio::time::Instant::now() + CLOSE_TIMEOUT);
                        self.timer_armed = true;
                    }
                    Poll::Ready(Err(_)) => return Poll::Ready(()),
                    Poll::Pending => {}
                }
            }
            // 5. One flush for everything queued this round.
            if self.dirty {
                match Pin::new(&mut self.ws).poll_flush(cx) {
                    Poll::Ready(Ok(())) => self.dirty = false,
                    Poll::Ready(Err(e)) => {
                        self.on_error(e);
                        return Poll::Ready(());
                    }
                    Poll::Pending => {}
                }
            }
            // 6. Timers: the next scheduled send, or the close deadline.
            if self.close_sent {
                if !self.timer_armed {
                    self.timer
                        .as_mut()
                        .reset(tokio::time::Instant::now() + CLOSE_TIMEOUT);
                    self.timer_armed = true;
                }
                if self.timer.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(());
                }
                return Poll::Pending;
            }
            if let ConnLoad::Open { .. } = self.plan.load {
                // A blocked write wakes us when it can go on.
                if !self.sending_done && !write_blocked {
                    let due = self.intended_ns(self.next_seq);
                    let now = self.sh.now_ns();
                    if due <= now {
                        continue; // more became due meanwhile
                    }
                    let at = self.sh.t0 + Duration::from_nanos(due);
                    self.timer
                        .as_mut()
                        .reset(tokio::time::Instant::from_std(at));
                    if self.timer.as_mut().poll(cx).is_ready() {
                        continue;
                    }
                }
            }
            return Poll::Pending;
        }
    }
}
