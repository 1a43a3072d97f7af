//! The poll loop every connection of a flood runs, over one WebSocket
//! stream: read every frame that is ready, send what the load allows (k in
//! flight, or what the schedule says is due), ping, close once done, and
//! flush once per round, so a burst of replies costs one write syscall.
//! Reading and writing make progress in the same task, so a server that
//! stops reading cannot deadlock it, and no lock or channel sits on the
//! message path. A [`Flow`] is what a flood adds: how it builds requests
//! and reads replies, what it has in flight, what the server closing means.
//! The loop is generic over it, so each flood gets its own compiled copy,
//! with no dynamic dispatch.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::conn_core::{ConnCore, is_dropped};

/// How a session on one socket ended.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Exit {
    Done,
    /// The server ended it (`end = "close"`) with more to send: open the
    /// connection again.
    Reconnect,
}

/// A flood's own part of a connection.
pub(crate) trait Flow<'a> {
    fn core(&mut self) -> &mut ConnCore<'a>;
    /// Requests sent whose replies are still awaited.
    fn in_flight(&self) -> usize;
    /// Sends the next request ([`ConnCore::send`]) and notes it as awaited.
    fn send_one(&mut self, cx: &mut Context<'_>, now: u64) -> Poll<Result<(), WsError>>;
    fn on_text(&mut self, text: &str);
    fn on_binary(&mut self, bytes: &[u8]);
    /// The server closed the connection (`code`; `how`, the evidence).
    fn server_closed(&mut self, code: u16, how: &str);
    /// A protocol error (already recorded) ends the connection.
    fn protocol_error(&mut self) {}
    /// The drain deadline came (sending is over): the requests in flight.
    fn drain_deadline(&mut self);
    /// Ends what is due by `now` (ns since `t0`); when more will be.
    fn end_due(&mut self, _now: u64) -> Option<u64> {
        None
    }
    /// Whether the session ended with more to send on a new socket.
    fn reconnect(&self) -> bool {
        false
    }
}

/// Drives `f`'s socket until the session on it is over.
pub(crate) fn poll_io<'a, F: Flow<'a>>(f: &mut F, cx: &mut Context<'_>) -> Poll<Exit> {
    loop {
        // 1. Every frame that is ready.
        if let Some(end) = read_ready(f, cx) {
            return end;
        }
        // 2. The drain deadline.
        if f.core().poll_stop(cx) {
            f.drain_deadline();
        }
        // 3. What is due: stream ends, requests the load allows, pings.
        let now = f.core().sh.now_ns();
        let end_due = f.end_due(now);
        let write_blocked = match send_allowed(f, cx, now) {
            Ok(blocked) => blocked,
            Err(e) => return fail(f, e),
        };
        if let Err(e) = f.core().ping(cx) {
            return fail(f, e);
        }
        // 4. Close once everything sent was answered.
        if f.core().sending_done && f.in_flight() == 0 && f.core().send_close(cx).is_err() {
            return Poll::Ready(Exit::Done);
        }
        // 5. One flush for everything queued this round.
        if let Err(e) = f.core().flush(cx) {
            return fail(f, e);
        }
        // 6. The timer: the close deadline, else the next send or stream end.
        let c = f.core();
        let due = [c.send_due(write_blocked), end_due]
            .into_iter()
            .flatten()
            .min();
        if let Some(p) = c.poll_timer(cx, due) {
            return p.map(|()| Exit::Done);
        }
    }
}

/// Reads every frame that is ready; `Some`: the session is over.
fn read_ready<'a, F: Flow<'a>>(f: &mut F, cx: &mut Context<'_>) -> Option<Poll<Exit>> {
    let mut read_any = false;
    loop {
        match Pin::new(&mut f.core().ws).poll_next(cx) {
            Poll::Ready(Some(Ok(m))) => {
                read_any = true;
                on_message(f, m);
            }
            Poll::Ready(Some(Err(e))) => return Some(fail(f, e)),
            Poll::Ready(None) => {
                if !f.core().close_sent {
                    f.server_closed(1006, "closed the socket without a close frame");
                }
                return Some(exit(f));
            }
            Poll::Pending => break,
        }
    }
    if read_any {
        // Keeps the runtime polling for the next reply (`client_spin`).
        let sh = f.core().sh;
        if let Some(spin) = &sh.spin {
            spin.active(sh.now_ns());
        }
    }
    None
}

#[inline]
fn on_message<'a, F: Flow<'a>>(f: &mut F, m: Message) {
    match m {
        Message::Binary(b) => f.on_binary(&b),
        Message::Text(t) => f.on_text(&t),
        Message::Pong(p) => f.core().on_pong(&p),
        // tungstenite queued the pong; make sure it goes out.
        Message::Ping(_) | Message::Frame(_) => f.core().dirty = true,
        Message::Close(frame) => {
            if !f.core().close_sent {
                let code = frame.map_or(1005, |c| u16::from(c.code));
                f.server_closed(code, "sent a close frame");
            }
            f.core().dirty = true;
        }
    }
}

/// Sends what the load allows; `Ok(true)`: a write blocked.
#[inline]
fn send_allowed<'a, F: Flow<'a>>(
    f: &mut F,
    cx: &mut Context<'_>,
    now: u64,
) -> Result<bool, WsError> {
    loop {
        let in_flight = f.in_flight();
        if !f.core().may_send(now, in_flight) {
            return Ok(false);
        }
        match f.send_one(cx, now) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(e)) => return Err(e),
            Poll::Pending => return Ok(true),
        }
    }
}

/// An error on the socket ends the session: the server dropped the
/// connection, or broke the protocol (errors while closing do not matter).
#[cold]
fn fail<'a, F: Flow<'a>>(f: &mut F, e: WsError) -> Poll<Exit> {
    if !f.core().close_sent {
        if is_dropped(&e) {
            f.server_closed(1006, &format!("dropped the connection ({e})"));
        } else {
            f.core().protocol_error(&e);
            f.protocol_error();
        }
    }
    exit(f)
}

fn exit<'a, F: Flow<'a>>(f: &F) -> Poll<Exit> {
    Poll::Ready(if f.reconnect() {
        Exit::Reconnect
    } else {
        Exit::Done
    })
}
