//! Counters the reference server keeps while it runs, and their snapshot.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub connections_total: AtomicU64,
    pub connections_open: AtomicU64,
    pub messages: AtomicU64,
    pub batches: AtomicU64,
    pub batched_rows: AtomicU64,
    pub bad_requests: AtomicU64,
    pub closed_oversize: AtomicU64,
    pub closed_protocol: AtomicU64,
    pub closed_slow: AtomicU64,
    pub refused_full: AtomicU64,
    pub decode_steps: AtomicU64,
    pub streams_started: AtomicU64,
    pub streams_done: AtomicU64,
    pub streams_cancelled: AtomicU64,
}

/// What the server has done since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ServerStats {
    /// Connections accepted (WebSocket handshake completed).
    pub connections_total: u64,
    /// Connections open now.
    pub connections_open: u64,
    /// Data messages received.
    pub messages: u64,
    /// Forward passes run.
    pub batches: u64,
    /// Requests those forward passes carried (sum of batch sizes).
    pub batched_rows: u64,
    /// Requests answered with an error reply (wrong length, text).
    pub bad_requests: u64,
    /// Connections closed with 1009 (message over `max_message`).
    pub closed_oversize: u64,
    /// Connections closed with 1002 (protocol violation).
    pub closed_protocol: u64,
    /// Connections cut off because their replies passed `write_buffer`.
    pub closed_slow: u64,
    /// Connections refused with 1013 at `max_connections`.
    pub refused_full: u64,
    /// Streaming mode: decode steps run (each one forward pass over every
    /// active stream, or one per stream with batching off).
    pub decode_steps: u64,
    /// Streaming mode: streams started, finished, and dropped because their
    /// connection went away.
    pub streams_started: u64,
    pub streams_done: u64,
    pub streams_cancelled: u64,
}

impl ServerStats {
    /// Mean requests per forward pass (0 before the first).
    pub fn mean_batch(&self) -> f64 {
        if self.batches == 0 {
            0.0
        } else {
            self.batched_rows as f64 / self.batches as f64
        }
    }
}

impl Counters {
    pub fn snapshot(&self) -> ServerStats {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ServerStats {
            connections_total: g(&self.connections_total),
            connections_open: g(&self.connections_open),
            messages: g(&self.messages),
            batches: g(&self.batches),
            batched_rows: g(&self.batched_rows),
            bad_requests: g(&self.bad_requests),
            closed_oversize: g(&self.closed_oversize),
            closed_protocol: g(&self.closed_protocol),
            closed_slow: g(&self.closed_slow),
            refused_full: g(&self.refused_full),
            decode_steps: g(&self.decode_steps),
            streams_started: g(&self.streams_started),
            streams_done: g(&self.streams_done),
            streams_cancelled: g(&self.streams_cancelled),
        }
    }

    pub fn bump(a: &AtomicU64) {
        a.fetch_add(1, Ordering::Relaxed);
    }
}
