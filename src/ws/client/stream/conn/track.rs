//! What each frame does to its stream: which open request it belongs to,
//! a counted reply (first reply, gap), the stream's end, an error frame,
//! or no request at all (`unmatched`, quoted); and streams that end by
//! idleness or never end (`incomplete`).

use super::StreamConn;
use crate::ws::client::conn_core::SEQ_BITS;
use crate::ws::client::record::{ErrorKind, Reply};
use crate::ws::client::stream::End;
use crate::ws::client::stream::quote;
use crate::ws::client::stream::record::Done;
use crate::ws::client::stream::reply::{Owner, Role, Seen};

impl StreamConn<'_> {
    /// The open request a frame belongs to.
    fn owner_seq(&self, owner: &Owner) -> Result<u64, &'static str> {
        match owner {
            Owner::Id(id) if id >> SEQ_BITS == self.core.plan.index as u64 => {
                Ok(id & ((1 << SEQ_BITS) - 1))
            }
            Owner::Id(_) => Err("a reply whose id is no request's on this connection"),
            Owner::Oldest => self
                .open
                .oldest()
                .ok_or("a reply while no request was open"),
            Owner::Unmatched(why) => Err(why),
        }
    }

    pub(super) fn on_frame(&mut self, seen: Seen, bytes: usize, text: Option<&str>) {
        if self.core.stopping {
            return;
        }
        let now = self.core.sh.now_ns();
        self.core.local.received_total += 1;
        let seq = match self.owner_seq(&seen.owner) {
            Ok(seq) if self.open.get_mut(seq).is_some() => seq,
            Ok(_) => {
                return self
                    .unmatched("a reply for a request not open (finished or unknown)", text);
            }
            Err(why) => return self.unmatched(why, text),
        };
        let s = self.open.get_mut(seq).expect("checked above");
        if seen.units.is_some() {
            s.units = seen.units;
        }
        match seen.role {
            Role::Skip => {}
            Role::Error => self.server_error(seq, text),
            Role::End => self.end_stream(seq, now),
            Role::Reply => self.reply(seq, now, bytes),
        }
        if self.core.local.full() {
            self.core.sh.recorder.flush(&mut self.core.local);
        }
        if self.slocal.full() {
            self.rec.flush(&mut self.slocal);
        }
    }

    fn reply(&mut self, seq: u64, now: u64, bytes: usize) {
        let s = self.open.get_mut(seq).expect("open");
        if let Some(gap) = s.on_reply(now) {
            self.slocal.gaps.push(gap);
        }
        let replies = s.replies;
        let slice = self.slice_of(now);
        if slice.is_some() {
            self.core.local.received_in_window += 1;
            self.core.local.received_bytes_in_window += bytes as u64;
            self.core.local.last_reply_ns = now;
        }
        self.core.local.replies.push(Reply {
            rtt_ns: None,
            slice,
            bytes: bytes as u32,
        });
        let ends = match self.proto.end {
            End::First => true,
            End::Count(n) => replies >= n,
            _ => false,
        };
        if ends {
            self.end_stream(seq, now);
        }
    }

    /// Ends `seq`'s stream as complete at `end_ns`.
    pub(super) fn end_stream(&mut self, seq: u64, end_ns: u64) {
        let Some(s) = self.open.take(seq) else { return };
        let mut d = Done::of(&s, end_ns, self.core.window());
        if let Some(t) = d.ttfr_ns {
            d.missed = self.proto.goodput.missed(t, d.time_per_reply_ns());
            d.good = d.missed == [false; 2];
        }
        if d.ended_in_window {
            self.core.local.last_reply_ns = self.core.local.last_reply_ns.max(end_ns);
        }
        self.slocal.done.push(d);
    }

    #[cold]
    fn server_error(&mut self, seq: u64, text: Option<&str>) {
        self.open.take(seq);
        let idx = self.core.plan.index;
        let frame = text.map_or_else(|| "(binary)".to_string(), quote);
        self.core.sh.recorder.error(ErrorKind::ServerError, 1, || {
            format!("connection {idx}: request {seq} ended by an error frame: {frame}")
        });
    }

    #[cold]
    fn unmatched(&mut self, why: &str, text: Option<&str>) {
        let idx = self.core.plan.index;
        let frame = text.map_or_else(|| "(binary)".to_string(), quote);
        self.core.sh.recorder.error(ErrorKind::Unmatched, 1, || {
            format!("connection {idx}: {why}: {frame}")
        });
    }

    /// Counts every open stream as `incomplete`.
    pub(super) fn incomplete(&mut self, why: &str) {
        if self.open.is_empty() {
            return;
        }
        let streams = self.open.drain();
        let n = streams.len() as u64;
        let replies = streams[0].replies;
        let idx = self.core.plan.index;
        let last = &self.last;
        self.core.sh.recorder.error(ErrorKind::Incomplete, n, || {
            format!(
                "connection {idx}: {n} stream(s) {why}; the oldest had {replies} repl(ies){}",
                last.said()
            )
        });
    }

    /// Streams idle for `end.idle` since their last reply end there.
    pub(super) fn end_idle_streams(&mut self, now: u64) -> Option<u64> {
        let End::Idle(idle) = self.proto.end else {
            return None;
        };
        let idle = idle.as_nanos() as u64;
        let due: Vec<(u64, u64)> = self
            .open
            .iter()
            .filter(|(_, s)| s.first_ns.is_some() && s.last_ns + idle <= now)
            .map(|(seq, s)| (seq, s.last_ns))
            .collect();
        for (seq, last) in due {
            self.end_stream(seq, last);
        }
        self.open
            .iter()
            .filter(|(_, s)| s.first_ns.is_some())
            .map(|(_, s)| s.last_ns + idle)
            .min()
    }
}
