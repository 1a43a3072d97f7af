//! Floods that speak the server's own protocol (`[scenario.protocol]`):
//! requests from a template, replies matched by a JSON field, by order or
//! by neon-perf's id, and **streams** of replies per request, each timed
//! from its (intended) send time to its first reply, between replies and to
//! its end. Free of plan types: the executor translates the scenario's
//! `protocol` into a [`Protocol`].
//!
//! `request` builds request frames, `reply` reads a reply frame (which
//! request, what it is), `open` keeps a connection's unfinished streams,
//! `record` collects the timings, `conn` drives one connection (and
//! `conn/track` what each frame does to its stream).

pub mod conn;
pub mod open;
pub mod record;
pub mod reply;
pub mod request;

use std::time::Duration;

pub use record::{StreamRecorder, StreamTotals};
pub use request::{Part, Request};

/// Which request a reply belongs to.
#[derive(Clone, Debug, PartialEq)]
pub enum Matching {
    /// neon-perf's format: the id at the head of the message
    /// ([`crate::ws::protocol`]).
    Id,
    /// The oldest unfinished request on the connection.
    Order,
    /// The request whose `{id}` is the value at this JSON pointer.
    Json(String),
}

/// What ends a stream.
#[derive(Clone, Debug, PartialEq)]
pub enum End {
    /// The first reply (one reply per request).
    First,
    /// A text frame whose value at the pointer equals this; not a reply.
    Json(String, serde_json::Value),
    /// The N-th reply.
    Count(u32),
    /// No reply for this long, once the first reply came.
    Idle(Duration),
    /// The server closes the connection (which is then opened again).
    Close,
}

/// Bounds a request must meet to count towards `goodput`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Goodput {
    pub time_to_first_reply: Option<Duration>,
    pub time_per_reply: Option<Duration>,
}

impl Goodput {
    /// Whether a stream with these timings (ns) meets every bound.
    pub fn met(&self, ttfr_ns: u64, tpr_ns: Option<u64>) -> bool {
        self.missed(ttfr_ns, tpr_ns) == [false; 2]
    }

    /// Which bounds a stream with these timings (ns) misses:
    /// `[time_to_first_reply, time_per_reply]`.
    pub fn missed(&self, ttfr_ns: u64, tpr_ns: Option<u64>) -> [bool; 2] {
        let over = |bound: Option<Duration>, v: u64| bound.is_some_and(|b| v > b.as_nanos() as u64);
        [
            over(self.time_to_first_reply, ttfr_ns),
            tpr_ns.is_some_and(|t| over(self.time_per_reply, t)),
        ]
    }
}

/// A flood's protocol.
#[derive(Clone, Debug)]
pub struct Protocol {
    pub request: Request,
    pub matching: Matching,
    pub end: End,
    /// A text reply whose string at this pointer is `""` is not counted.
    pub skip_empty: Option<String>,
    /// A text frame whose value at the pointer equals this fails its request.
    pub error: Option<(String, serde_json::Value)>,
    /// Units of work of a stream: the number at this pointer in its last
    /// frame that has one (the end frame with `End::Json`).
    pub units: Option<String>,
    pub goodput: Goodput,
}

impl Protocol {
    /// Whether text replies need parsing as JSON.
    pub fn reads_json(&self) -> bool {
        matches!(self.matching, Matching::Json(_))
            || matches!(self.end, End::Json(..))
            || self.skip_empty.is_some()
            || self.error.is_some()
            || self.units.is_some()
    }
}

/// `s` cut to at most 200 bytes (on a character boundary), for evidence.
pub fn quote(s: &str) -> String {
    const MAX: usize = 200;
    if s.len() <= MAX {
        return format!("{s:?}");
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}… ({} bytes)", &s[..end], s.len())
}
