//! WebSocket pings during a flood (the `ping` check): each connection sends
//! a ping every `interval` of the measurement window, one at a time, times
//! its pong, and notes a ping left unanswered past `timeout` — a
//! connection the server no longer serves, although it may still be open.
//! A [`Pinger`] lives in a connection's poll loop; the [`PingRecorder`] is
//! shared by all of them.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Sink;
use tokio::time::Sleep;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::Ws;
use super::conn_core::{Shared, UNSET};

/// How often and how patiently every connection pings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PingConfig {
    pub interval: Duration,
    pub timeout: Duration,
}

/// A connection that left a ping unanswered past the timeout.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Missed {
    /// Pings it left unanswered past the timeout.
    pub pings: u64,
    /// The longest it was seen waiting for a pong, ns.
    pub longest_ns: u64,
    /// Of those pings, how many were answered after all (late).
    pub late: u64,
}

/// Every connection's pings.
#[derive(Clone, Debug, Default)]
pub struct PingTotals {
    pub timeout: Duration,
    /// Pings sent in the window.
    pub sent: u64,
    /// Round-trip time of every ping answered in time, ns.
    pub rtts_ns: Vec<u64>,
    /// By connection index.
    pub missed: BTreeMap<u32, Missed>,
    /// Connections that sent at least one ping.
    pub connections: u64,
}

/// Collects the pings of every connection (a few per second each: a lock
/// per pong costs nothing).
pub struct PingRecorder {
    totals: Mutex<PingTotals>,
}

impl PingRecorder {
    pub fn new(cfg: &PingConfig) -> Self {
        PingRecorder {
            totals: Mutex::new(PingTotals {
                timeout: cfg.timeout,
                ..Default::default()
            }),
        }
    }

    fn with(&self, f: impl FnOnce(&mut PingTotals)) {
        if let Ok(mut t) = self.totals.lock() {
            f(&mut t);
        }
    }

    pub fn into_totals(self) -> PingTotals {
        self.totals.into_inner().unwrap_or_default()
    }
}

/// One ping in flight.
#[derive(Clone, Copy)]
struct InFlight {
    seq: u64,
    sent_ns: u64,
    /// Already counted as missed.
    missed: bool,
}

/// A connection's pinging: when the next ping is due, the one in flight.
pub struct Pinger {
    cfg: PingConfig,
    index: u32,
    timer: Pin<Box<Sleep>>,
    next_ns: u64,
    seq: u64,
    in_flight: Option<InFlight>,
    sent_any: bool,
}

impl Pinger {
    /// Connection `index`'s pinger; connections' first pings are spread
    /// over the first interval.
    pub fn new(cfg: PingConfig, index: u32) -> Self {
        let interval = cfg.interval.as_nanos().max(1) as u64;
        Pinger {
            cfg,
            index,
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
            next_ns: interval / 97 * u64::from(index % 97),
            seq: 0,
            in_flight: None,
            sent_any: false,
        }
    }

    /// Sends a ping when one is due (`Ok(true)`: a frame was queued, flush
    /// it), notes one overdue, and arms the timer for the next of either.
    pub fn poll(
        &mut self,
        cx: &mut Context<'_>,
        ws: &mut Ws,
        sh: &Shared,
    ) -> Result<bool, WsError> {
        let mut queued = false;
        loop {
            let now = sh.now_ns();
            let (start, end) = (
                sh.start_ns.load(Ordering::Relaxed),
                sh.end_ns.load(Ordering::Relaxed),
            );
            if start == UNSET {
                return Ok(queued);
            }
            self.note_overdue(now, sh);
            let due = start + self.next_ns;
            if self.in_flight.is_none() && now >= due && now < end {
                match Pin::new(&mut *ws).poll_ready(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(e)) => return Err(e),
                    Poll::Pending => return Ok(queued),
                }
                self.seq += 1;
                let payload = self.seq.to_le_bytes().to_vec();
                Pin::new(&mut *ws).start_send(Message::Ping(payload.into()))?;
                self.in_flight = Some(InFlight {
                    seq: self.seq,
                    sent_ns: now,
                    missed: false,
                });
                self.count_sent(sh);
                // Missed intervals are skipped, not made up in a burst.
                let interval = self.cfg.interval.as_nanos().max(1) as u64;
                while start + self.next_ns <= now {
                    self.next_ns += interval;
                }
                queued = true;
            }
            let Some(at) = self.wake_at(start, end) else {
                return Ok(queued);
            };
            let at = sh.t0 + Duration::from_nanos(at);
            self.timer
                .as_mut()
                .reset(tokio::time::Instant::from_std(at));
            if self.timer.as_mut().poll(cx).is_pending() {
                return Ok(queued);
            }
        }
    }

    /// When to look again (ns since `t0`): the in-flight ping's timeout,
    /// else the next ping, none past the window's end.
    fn wake_at(&self, start: u64, end: u64) -> Option<u64> {
        match self.in_flight {
            Some(f) if !f.missed => Some(f.sent_ns + self.cfg.timeout.as_nanos() as u64),
            Some(_) => None,
            None => Some(start + self.next_ns).filter(|&due| due < end),
        }
    }

    fn count_sent(&mut self, sh: &Shared) {
        let first = !self.sent_any;
        self.sent_any = true;
        if let Some(r) = &sh.pings {
            r.with(|t| {
                t.sent += 1;
                t.connections += u64::from(first);
            });
        }
    }

    /// Counts the in-flight ping as missed once it waited past the timeout.
    fn note_overdue(&mut self, now: u64, sh: &Shared) {
        let Some(f) = self.in_flight.as_mut() else {
            return;
        };
        let waited = now.saturating_sub(f.sent_ns);
        if f.missed || waited < self.cfg.timeout.as_nanos() as u64 {
            return;
        }
        f.missed = true;
        let index = self.index;
        if let Some(r) = &sh.pings {
            r.with(|t| {
                let m = t.missed.entry(index).or_default();
                m.pings += 1;
                m.longest_ns = m.longest_ns.max(waited);
            });
        }
    }

    /// A pong: times the ping it answers (others, unsolicited, are ignored).
    pub fn on_pong(&mut self, payload: &[u8], sh: &Shared) {
        let Some(f) = self.in_flight else { return };
        if payload != f.seq.to_le_bytes() {
            return;
        }
        self.in_flight = None;
        let rtt = sh.now_ns().saturating_sub(f.sent_ns);
        let index = self.index;
        if let Some(r) = &sh.pings {
            r.with(|t| {
                if f.missed {
                    let m = t.missed.entry(index).or_default();
                    m.late += 1;
                    m.longest_ns = m.longest_ns.max(rtt);
                } else {
                    t.rtts_ns.push(rtt);
                }
            });
        }
    }

    /// The socket was opened again (`end = "close"`): a ping on the old one
    /// can no longer be answered, and is not held against the server.
    pub fn reconnected(&mut self) {
        self.in_flight = None;
    }

    /// The connection ends: a ping still in flight past the timeout is missed.
    pub fn finish(&mut self, sh: &Shared) {
        self.note_overdue(sh.now_ns(), sh);
    }
}
