//! One connection of the plain flood: requests in neon-perf's id format,
//! one reply each, matched by the id it carries and timed. The poll loop
//! and what every connection keeps alike are [`super::drive`] and
//! [`super::conn_core`]; this is the flood's own part, the requests in
//! flight by sequence number.

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use tokio_tungstenite::tungstenite::Error as WsError;

use super::Ws;
use super::conn_core::{ConnCore, ConnPlan, SEQ_BITS, Shared};
use super::drive::{self, Flow};
use super::record::{ErrorKind, Reply};
use crate::ws::protocol::{binary_id, text_id};

/// Marks an answered request in the outstanding queue.
const ANSWERED: u64 = u64::MAX;

struct Conn<'a> {
    core: ConnCore<'a>,
    base_seq: u64,
    /// Send (closed loop) or intended (open loop) time per outstanding
    /// request, from `base_seq` on; [`ANSWERED`] once its reply came.
    outstanding: VecDeque<u64>,
    pending: usize,
}

/// Drives a connected socket until the flood is over for it.
pub async fn run(ws: Ws, sh: Arc<Shared>, plan: ConnPlan) {
    let mut c = Conn {
        core: ConnCore::new(ws, &sh, plan),
        base_seq: 0,
        outstanding: VecDeque::new(),
        pending: 0,
    };
    std::future::poll_fn(|cx| drive::poll_io(&mut c, cx)).await;
    c.finish();
}

impl Conn<'_> {
    fn finish(&mut self) {
        if self.pending > 0 {
            let n = self.pending as u64;
            let idx = self.core.plan.index;
            self.core.sh.recorder.error(ErrorKind::Lost, n, || {
                format!("connection {idx}: {n} request(s) never answered")
            });
            self.pending = 0;
        }
        self.core.finish();
    }

    fn on_reply(&mut self, id: Option<u64>, bytes: usize) {
        if self.core.stopping {
            return;
        }
        let now = self.core.sh.now_ns();
        self.core.local.received_total += 1;
        let seq = match id {
            Some(id) if id >> SEQ_BITS == self.core.plan.index as u64 => id & ((1 << SEQ_BITS) - 1),
            _ => return self.unmatched(id),
        };
        if seq < self.base_seq || seq >= self.core.next_seq {
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
        let (start, end) = self.core.window();
        let sh = self.core.sh;
        let rtt_ns = (sent >= start && sent < end).then(|| now.saturating_sub(sent));
        let slice = (now >= start && now < end).then(|| ((now - start) / sh.slice_ns) as u32);
        let local = &mut self.core.local;
        if slice.is_some() {
            local.received_in_window += 1;
            local.received_bytes_in_window += bytes as u64;
        }
        if rtt_ns.is_some() {
            local.last_reply_ns = now;
        }
        local.replies.push(Reply {
            rtt_ns,
            slice,
            bytes: bytes as u32,
        });
        if local.full() {
            sh.recorder.flush(local);
        }
    }

    #[cold]
    fn unmatched(&mut self, id: Option<u64>) {
        let idx = self.core.plan.index;
        self.core
            .sh
            .recorder
            .error(ErrorKind::Unmatched, 1, || match id {
                Some(id) => {
                    format!("connection {idx}: reply with id {id:#x} matches no request in flight")
                }
                None => format!("connection {idx}: reply without a request id"),
            });
    }
}

impl<'a> Flow<'a> for Conn<'a> {
    #[inline]
    fn core(&mut self) -> &mut ConnCore<'a> {
        &mut self.core
    }

    #[inline]
    fn in_flight(&self) -> usize {
        self.pending
    }

    #[inline]
    fn send_one(&mut self, cx: &mut Context<'_>, now: u64) -> Poll<Result<(), WsError>> {
        let sh = self.core.sh;
        let sent = ready!(
            self.core
                .send(cx, now, |id, _, rng| sh.payload.message(id, rng))
        )?;
        self.outstanding.push_back(sent.t);
        self.pending += 1;
        Poll::Ready(Ok(()))
    }

    #[inline]
    fn on_text(&mut self, text: &str) {
        self.on_reply(text_id(text), text.len());
    }

    #[inline]
    fn on_binary(&mut self, bytes: &[u8]) {
        self.on_reply(binary_id(bytes), bytes.len());
    }

    /// Nothing more can be sent; outstanding requests are lost.
    #[cold]
    fn server_closed(&mut self, code: u16, how: &str) {
        self.core.closed_by_server(code, how);
    }

    fn drain_deadline(&mut self) {
        if self.pending > 0 {
            let n = self.pending as u64;
            let idx = self.core.plan.index;
            self.core.sh.recorder.error(ErrorKind::Lost, n, || {
                format!("connection {idx}: {n} request(s) unanswered at the drain deadline")
            });
            self.pending = 0;
            self.outstanding.clear();
        }
    }
}
