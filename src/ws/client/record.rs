//! Where a flood's measurements go. Each connection keeps a small batch of
//! raw records and hands it to the shared [`Totals`] under one lock every
//! [`BATCH`] records, so recording costs a few nanoseconds per message and
//! the lock is taken ~1/100th as often as messages arrive. Every RTT goes
//! into an HdrHistogram (3 significant digits, 1 ns to 1 h) and a seeded
//! reservoir that becomes the `rtt` metric's samples.

use std::collections::BTreeMap;
use std::sync::Mutex;

use hdrhistogram::Histogram;

use crate::stats::Reservoir;

/// Records a connection collects before taking the shared lock.
pub const BATCH: usize = 128;
/// Highest value the histograms track: one hour, in nanoseconds.
const HIGHEST_NS: u64 = 3_600_000_000_000;

/// A histogram of nanoseconds with three significant digits.
pub fn ns_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_NS, 3).expect("valid bounds")
}

/// Why a message or connection counts as an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorKind {
    /// The TCP connection or the WebSocket handshake failed.
    Connect,
    /// The server closed the connection (close frame or dropped socket)
    /// before the client did.
    Closed,
    /// A request sent got no reply (connection closed, or the drain timed out).
    Lost,
    /// A reply whose id matches no outstanding request (unknown, duplicate,
    /// or no id at all).
    Unmatched,
    /// The connection failed while reading or writing (protocol error, I/O error).
    Protocol,
    /// A protocol flood's stream got no end (drain deadline, or the
    /// connection closed mid-stream).
    Incomplete,
    /// A protocol flood's `error` frame ended the request.
    ServerError,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 5] = [
        ErrorKind::Connect,
        ErrorKind::Closed,
        ErrorKind::Lost,
        ErrorKind::Unmatched,
        ErrorKind::Protocol,
    ];

    /// The kinds only a protocol flood reports (`[scenario.protocol]`).
    pub const STREAM: [ErrorKind; 2] = [ErrorKind::Incomplete, ErrorKind::ServerError];

    pub fn id(self) -> &'static str {
        match self {
            ErrorKind::Incomplete => "incomplete",
            ErrorKind::ServerError => "server_error",
            ErrorKind::Connect => "connect",
            ErrorKind::Closed => "closed",
            ErrorKind::Lost => "lost",
            ErrorKind::Unmatched => "unmatched",
            ErrorKind::Protocol => "protocol",
        }
    }
}

/// One reply, as a connection saw it.
#[derive(Clone, Copy, Debug)]
pub struct Reply {
    /// Round-trip time, ns; `None` when its request was sent outside the window.
    pub rtt_ns: Option<u64>,
    /// Time slice of the window it arrived in; `None` outside the window.
    pub slice: Option<u32>,
    pub bytes: u32,
}

/// Everything a flood measured, merged over connections.
pub struct Totals {
    pub rtt: Histogram<u64>,
    pub rtt_sample: Reservoir,
    /// Replies and reply bytes per window slice.
    pub slices: Vec<(u64, u64)>,
    /// Open loop: actual send time minus intended send time, ns.
    pub send_lag: Histogram<u64>,
    pub connect_s: Vec<f64>,
    pub connect: Histogram<u64>,
    pub errors: BTreeMap<ErrorKind, u64>,
    /// The first few error messages, for evidence.
    pub error_examples: Vec<String>,
    /// Close codes of connections the server closed first (1006: dropped
    /// without a close frame).
    pub closes: BTreeMap<u16, u64>,
    pub sent_in_window: u64,
    pub sent_bytes_in_window: u64,
    pub received_in_window: u64,
    pub received_bytes_in_window: u64,
    pub sent_total: u64,
    pub received_total: u64,
    /// Messages-mode window end: the last in-window reply, ns since start.
    pub last_reply_ns: u64,
}

/// Shared by every connection of a flood.
pub struct Recorder {
    totals: Mutex<Totals>,
}

impl Recorder {
    pub fn new(reservoir: usize, seed: u64) -> Recorder {
        Recorder {
            totals: Mutex::new(Totals {
                rtt: ns_histogram(),
                rtt_sample: Reservoir::new(reservoir, seed),
                slices: Vec::new(),
                send_lag: ns_histogram(),
                connect_s: Vec::new(),
                connect: ns_histogram(),
                errors: BTreeMap::new(),
                error_examples: Vec::new(),
                closes: BTreeMap::new(),
                sent_in_window: 0,
                sent_bytes_in_window: 0,
                received_in_window: 0,
                received_bytes_in_window: 0,
                sent_total: 0,
                received_total: 0,
                last_reply_ns: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Totals> {
        self.totals.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn connected(&self, ns: u64) {
        let mut t = self.lock();
        t.connect.saturating_record(ns.max(1));
        t.connect_s.push(ns as f64 * 1e-9);
    }

    pub fn error(&self, kind: ErrorKind, n: u64, what: impl FnOnce() -> String) {
        if n == 0 {
            return;
        }
        let mut t = self.lock();
        *t.errors.entry(kind).or_default() += n;
        if t.error_examples.len() < 5 {
            let s = what();
            if !t.error_examples.contains(&s) {
                t.error_examples.push(s);
            }
        }
    }

    pub fn closed(&self, code: u16) {
        *self.lock().closes.entry(code).or_default() += 1;
    }

    /// Moves a connection's batch into the totals.
    pub fn flush(&self, local: &mut Local) {
        let mut t = self.lock();
        for r in local.replies.drain(..) {
            if let Some(ns) = r.rtt_ns {
                t.rtt.saturating_record(ns.max(1));
                t.rtt_sample.push(ns as f64 * 1e-9);
            }
            if let Some(s) = r.slice {
                let s = s as usize;
                if t.slices.len() <= s {
                    t.slices.resize(s + 1, (0, 0));
                }
                t.slices[s].0 += 1;
                t.slices[s].1 += r.bytes as u64;
            }
        }
        for lag in local.lags.drain(..) {
            t.send_lag.saturating_record(lag.max(1));
        }
        t.sent_in_window += std::mem::take(&mut local.sent_in_window);
        t.sent_bytes_in_window += std::mem::take(&mut local.sent_bytes_in_window);
        t.received_in_window += std::mem::take(&mut local.received_in_window);
        t.received_bytes_in_window += std::mem::take(&mut local.received_bytes_in_window);
        t.sent_total += std::mem::take(&mut local.sent_total);
        t.received_total += std::mem::take(&mut local.received_total);
        t.last_reply_ns = t.last_reply_ns.max(local.last_reply_ns);
    }

    pub fn into_totals(self) -> Totals {
        self.totals.into_inner().unwrap_or_else(|p| p.into_inner())
    }
}

/// A connection's unflushed records.
#[derive(Default)]
pub struct Local {
    pub replies: Vec<Reply>,
    pub lags: Vec<u64>,
    pub sent_in_window: u64,
    pub sent_bytes_in_window: u64,
    pub received_in_window: u64,
    pub received_bytes_in_window: u64,
    pub sent_total: u64,
    pub received_total: u64,
    pub last_reply_ns: u64,
}

impl Local {
    pub fn new() -> Local {
        Local {
            replies: Vec::with_capacity(BATCH),
            ..Default::default()
        }
    }

    /// Whether the batch is due for [`Recorder::flush`].
    #[inline]
    pub fn full(&self) -> bool {
        self.replies.len() >= BATCH || self.lags.len() >= BATCH
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_merge_into_totals() {
        let r = Recorder::new(10, 1);
        let mut l = Local::new();
        for i in 0..300u64 {
            l.replies.push(Reply {
                rtt_ns: (i % 2 == 0).then_some(1000 + i),
                slice: Some((i / 100) as u32),
                bytes: 64,
            });
            if l.full() {
                r.flush(&mut l);
            }
        }
        r.flush(&mut l);
        r.error(ErrorKind::Lost, 2, || "x".into());
        r.error(ErrorKind::Lost, 1, || "x".into());
        let t = r.into_totals();
        assert_eq!(t.rtt.len(), 150);
        assert_eq!(t.rtt_sample.seen(), 150);
        assert_eq!(t.slices, vec![(100, 6400); 3]);
        assert_eq!(t.errors[&ErrorKind::Lost], 3);
        assert_eq!(t.error_examples, ["x"]);
    }
}
