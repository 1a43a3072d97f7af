//! Where a protocol flood's stream timings go: each connection batches
//! finished streams and reply gaps, and merges them under one lock into
//! HdrHistograms of every value (for `_p50`/`_p90`/`_p99`) and seeded
//! reservoirs (the gate's samples), plus the window's counts for the rates.

use std::sync::Mutex;

use hdrhistogram::Histogram;

use super::open::Stream;
use crate::stats::Reservoir;
use crate::ws::client::record::{BATCH, ns_histogram};

/// A finished stream, as its connection saw it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Done {
    /// Timings count (sent inside the window).
    pub in_window: bool,
    pub ttfr_ns: Option<u64>,
    pub stream_ns: u64,
    pub replies: u32,
    pub units: Option<f64>,
    /// It ended inside the window.
    pub ended_in_window: bool,
    /// The share of its lifetime (send to end) inside the window: what it
    /// adds to the rates (see [`share_in`]).
    pub share: f64,
    /// Met every `goodput` bound.
    pub good: bool,
    /// Which bounds it missed: `[time_to_first_reply, time_per_reply]`.
    pub missed: [bool; 2],
}

impl Done {
    /// `(stream_time − ttfr) / (replies − 1)`, with at least two replies.
    pub fn time_per_reply_ns(&self) -> Option<u64> {
        let ttfr = self.ttfr_ns?;
        (self.replies >= 2).then(|| self.stream_ns.saturating_sub(ttfr) / (self.replies as u64 - 1))
    }

    /// The record of `s` ended at `end_ns`, with the measurement window
    /// `(start, end)` (ns since the flood began; `end` unset in messages
    /// mode).
    pub fn of(s: &Stream, end_ns: u64, window: (u64, u64)) -> Done {
        let ended_in_window = end_ns >= window.0 && end_ns < window.1;
        Done {
            in_window: s.in_window,
            ttfr_ns: s.first_ns.map(|f| f.saturating_sub(s.sent_ns)),
            stream_ns: end_ns.saturating_sub(s.sent_ns),
            replies: s.replies,
            units: s.units,
            ended_in_window,
            share: share_in(s.sent_ns, end_ns, window),
            good: false,
            missed: [false; 2],
        }
    }
}

/// The share of a stream's lifetime `[sent, end]` that lies inside the
/// window `[start, stop)`: 1 for a stream wholly inside, a fraction for one
/// across an edge, 0 outside. Summed over streams and divided by the
/// window, it is completed streams per second without the jump of a whole
/// stream per connection that counting the streams ended inside the window
/// makes when a stream is long against the window (one of 7 per connection
/// ended inside or outside a 2 s window: ±14% between unchanged runs of
/// examples/ws-backend/media.toml). Every stream of a steady flood adds its
/// time inside the window over its length, so the sum is the window over
/// the time per stream, per connection.
pub fn share_in(sent: u64, end: u64, (start, stop): (u64, u64)) -> f64 {
    if end <= sent {
        return if end >= start && end < stop { 1.0 } else { 0.0 };
    }
    let inside = end.min(stop).saturating_sub(sent.max(start));
    inside as f64 / (end - sent) as f64
}

/// One histogram of every value and a reservoir of samples (seconds).
pub struct Dist {
    pub all: Histogram<u64>,
    pub sample: Reservoir,
}

impl Dist {
    fn new(cap: usize, seed: u64) -> Dist {
        Dist {
            all: ns_histogram(),
            sample: Reservoir::new(cap, seed),
        }
    }

    fn ns(&mut self, ns: u64) {
        self.all.saturating_record(ns.max(1));
        self.sample.push(ns as f64 * 1e-9);
    }
}

/// Everything a protocol flood measured about its streams.
pub struct StreamTotals {
    pub ttfr: Dist,
    pub gap: Dist,
    pub tpr: Dist,
    pub stream: Dist,
    /// Replies per request, and units per request.
    pub replies: Reservoir,
    pub units: Reservoir,
    /// Streams ended in the window.
    pub done_in_window: u64,
    /// Streams, good streams and units in the window, each stream by the
    /// share of its lifetime inside it ([`share_in`]): for the rates.
    pub done_share: f64,
    pub good_share: f64,
    pub units_share: f64,
    /// Streams sent in the window, and how many of them missed each
    /// `goodput` bound (`[time_to_first_reply, time_per_reply]`): what
    /// the goodput warning says.
    pub judged: u64,
    pub missed: [u64; 2],
    /// Of those, how many missed at least one bound.
    pub missed_any: u64,
}

/// A connection's unflushed records.
#[derive(Default)]
pub struct StreamLocal {
    pub done: Vec<Done>,
    pub gaps: Vec<u64>,
}

impl StreamLocal {
    pub fn full(&self) -> bool {
        self.done.len() >= BATCH || self.gaps.len() >= BATCH
    }
}

/// Shared by every connection of a protocol flood.
pub struct StreamRecorder {
    totals: Mutex<StreamTotals>,
}

impl StreamRecorder {
    pub fn new(reservoir: usize, seed: u64) -> StreamRecorder {
        let d = |i: u64| Dist::new(reservoir, seed ^ i);
        StreamRecorder {
            totals: Mutex::new(StreamTotals {
                ttfr: d(1),
                gap: d(2),
                tpr: d(3),
                stream: d(4),
                replies: Reservoir::new(reservoir, seed ^ 5),
                units: Reservoir::new(reservoir, seed ^ 6),
                done_in_window: 0,
                done_share: 0.0,
                good_share: 0.0,
                units_share: 0.0,
                judged: 0,
                missed: [0; 2],
                missed_any: 0,
            }),
        }
    }

    /// Moves a connection's batch into the totals.
    pub fn flush(&self, local: &mut StreamLocal) {
        let mut t = self.totals.lock().unwrap_or_else(|p| p.into_inner());
        for g in local.gaps.drain(..) {
            t.gap.ns(g);
        }
        for d in local.done.drain(..) {
            t.add(&d);
        }
    }

    pub fn into_totals(self) -> StreamTotals {
        self.totals.into_inner().unwrap_or_else(|p| p.into_inner())
    }
}

impl StreamTotals {
    fn add(&mut self, d: &Done) {
        if d.in_window {
            if let Some(f) = d.ttfr_ns {
                self.ttfr.ns(f);
            }
            if let Some(t) = d.time_per_reply_ns() {
                self.tpr.ns(t);
            }
            self.stream.ns(d.stream_ns);
            self.replies.push(d.replies as f64);
            if let Some(u) = d.units {
                self.units.push(u);
            }
            self.judged += 1;
            self.missed_any += u64::from(d.missed.contains(&true));
            for (n, m) in self.missed.iter_mut().zip(d.missed) {
                *n += u64::from(m);
            }
        }
        self.done_in_window += u64::from(d.ended_in_window);
        self.done_share += d.share;
        if d.good {
            self.good_share += d.share;
        }
        self.units_share += d.units.unwrap_or(0.0) * d.share;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_merge_into_distributions_and_window_counts() {
        let r = StreamRecorder::new(100, 1);
        let mut l = StreamLocal::default();
        let mut s = Stream::new(1_000, true);
        s.first_ns = Some(21_000);
        s.replies = 5;
        s.units = Some(5.0);
        let mut d = Done::of(&s, 41_000, (0, 100_000));
        d.good = true;
        assert_eq!(d.time_per_reply_ns(), Some(5_000));
        l.done.push(d);
        l.done
            .push(Done::of(&Stream::new(0, false), 10, (100, 200)));
        l.gaps.extend([5_000, 5_000, 5_000, 5_000]);
        r.flush(&mut l);
        let t = r.into_totals();
        assert_eq!(t.ttfr.sample.items(), [20e-6]);
        assert_eq!(t.stream.sample.items(), [40e-6]);
        assert_eq!(t.gap.all.len(), 4);
        assert_eq!(t.replies.items(), [5.0]);
        assert_eq!(t.done_in_window, 1);
        assert_eq!((t.done_share, t.good_share, t.units_share), (1.0, 1.0, 5.0));
    }

    #[test]
    fn a_stream_across_an_edge_counts_by_its_share_inside() {
        let w = (1_000, 2_000);
        assert_eq!(share_in(1_200, 1_800, w), 1.0);
        assert_eq!(share_in(600, 1_400, w), 0.5);
        assert_eq!(share_in(1_900, 2_300, w), 0.25);
        assert_eq!(share_in(0, 900, w), 0.0);
        assert_eq!(share_in(2_000, 2_500, w), 0.0);
        assert_eq!(share_in(1_500, 1_500, w), 1.0);
        // Messages mode: the window has no end yet.
        assert_eq!(share_in(1_500, 9_000, (1_000, u64::MAX)), 1.0);
        // Streams back to back across a window whatever their phase: the
        // shares add up to the window over the time per stream.
        for phase in [0, 70, 130, 250] {
            let total: f64 = (0..10)
                .map(|i| share_in(phase + i * 280, phase + (i + 1) * 280, (300, 2_300)))
                .sum();
            assert!((total - 2_000.0 / 280.0).abs() < 1e-9, "{phase}: {total}");
        }
    }
}
