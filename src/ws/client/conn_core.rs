//! What every connection of a flood has, whichever flood it runs: the
//! state all connections read ([`Shared`]) and what one is asked to do
//! ([`ConnPlan`]), for the plain flood ([`super::conn`]) and the protocol
//! floods ([`super::stream::conn`]) alike.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::payload::Payload;
use super::record::Recorder;

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
