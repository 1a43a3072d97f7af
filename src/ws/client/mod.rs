//! The flood engine: N WebSocket connections against one url, closed or
//! open loop, every reply matched to its request by the id it carries
//! ([`crate::ws::protocol`]) and timed. Free of plan and config types: the
//! `websocket_flood` executor (src/exec/websocket/) builds a
//! [`FloodConfig`] and turns the [`FloodReport`] into metrics.
//!
//! Timeline of a flood: connections open over `ramp_up` (at most
//! [`FloodConfig::max_connecting`] handshakes at a time) and wait; once
//! every attempt has finished, all start sending together, `warmup` runs, then
//! the measurement window (`duration`, or until `messages` in-window
//! requests were sent and answered). Requests sent inside the window have
//! their RTT recorded, replies received inside it count towards the rates.
//! After the window, connections wait for outstanding replies (at most
//! `drain_timeout`) and close with code 1000.

pub mod conn;
pub mod conn_core;
mod connect;
mod drive;
mod flood;
pub mod limits;
pub mod payload;
pub mod ping;
pub mod process;
pub mod record;
mod refusal;
pub mod spin;
pub mod stream;
pub mod tls;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub use connect::{Connector, Headers};
pub use flood::flood;

pub use payload::{Frame, Payload};
pub use record::{ErrorKind, Totals};

/// One client WebSocket (`wss://`: over rustls).
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Closed or open loop, over all connections.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Load {
    /// `in_flight` requests outstanding per connection at all times.
    Closed { in_flight: usize },
    /// `rate` requests per second in total, on a fixed schedule; RTTs are
    /// measured from each request's intended send time.
    Open { rate: f64 },
}

/// When the measurement window ends.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StopAfter {
    Duration(Duration),
    /// This many requests sent in the window (and answered, or given up on).
    Messages(u64),
}

/// Everything a flood needs.
#[derive(Clone, Debug)]
pub struct FloodConfig {
    pub url: String,
    pub connections: usize,
    pub ramp_up: Duration,
    pub warmup: Duration,
    pub stop: StopAfter,
    pub load: Load,
    pub payload: Payload,
    /// Width of a throughput slice; `None`: a fiftieth of the window,
    /// clamped to 20–250 ms (100 ms in messages mode).
    pub slice: Option<Duration>,
    pub connect_timeout: Duration,
    /// How long to wait for outstanding replies after the window.
    pub drain_timeout: Duration,
    /// Messages mode: the window ends after this long whatever happens.
    pub time_limit: Duration,
    /// Handshakes in progress at once.
    pub max_connecting: usize,
    /// RTTs kept as the `rtt` metric's samples (every RTT is in the histogram).
    pub reservoir: usize,
    pub seed: u64,
    /// Poll without sleeping for this long after each reply ([`spin`]);
    /// zero: sleep whenever nothing is ready.
    pub spin: Duration,
    /// Handshake headers (values redacted in `Debug`).
    pub headers: Headers,
    /// `wss://` urls: which certificates to trust (default: webpki roots).
    pub tls: tls::Trust,
    /// The server's own protocol, with streams of replies; `None`:
    /// neon-perf's format, one reply per request.
    pub protocol: Option<stream::Protocol>,
    /// WebSocket pings on every connection during the window.
    pub ping: Option<ping::PingConfig>,
}

impl FloodConfig {
    /// Defaults for everything but the target and the load.
    pub fn new(url: impl Into<String>, connections: usize, load: Load, payload: Payload) -> Self {
        FloodConfig {
            url: url.into(),
            connections,
            ramp_up: Duration::ZERO,
            warmup: Duration::from_millis(500),
            stop: StopAfter::Duration(Duration::from_secs(5)),
            load,
            payload,
            slice: None,
            connect_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(5),
            time_limit: Duration::from_secs(60),
            max_connecting: 128,
            reservoir: 20_000,
            seed: 0,
            spin: Duration::ZERO,
            headers: Headers::default(),
            tls: tls::Trust::WebPki,
            protocol: None,
            ping: None,
        }
    }

    fn slice(&self) -> Duration {
        self.slice.unwrap_or(match self.stop {
            StopAfter::Duration(d) => {
                (d / 50).clamp(Duration::from_millis(20), Duration::from_millis(250))
            }
            StopAfter::Messages(_) => Duration::from_millis(100),
        })
    }
}

/// What a flood measured.
pub struct FloodReport {
    /// Length of the measurement window.
    pub window: Duration,
    pub slice: Duration,
    pub connections: usize,
    /// Connections whose handshake succeeded.
    pub connected: usize,
    /// Time from the first connection attempt to the last one finishing.
    pub ramp_time: Duration,
    pub totals: Totals,
    /// With `spin`: how often the client stopped polling because threads
    /// waited for a CPU ([`spin::Spin::backed_off`]).
    pub spin_back_offs: Option<u64>,
    /// A protocol flood's stream timings.
    pub streams: Option<stream::StreamTotals>,
    /// With `ping`: every connection's pings.
    pub pings: Option<ping::PingTotals>,
}

impl FloodReport {
    /// Replies per second over the whole window.
    pub fn msg_rate(&self) -> f64 {
        self.totals.received_in_window as f64 / self.window.as_secs_f64().max(1e-9)
    }

    /// Per-slice (replies/s, reply bytes/s) over the window's full slices
    /// (a slice without replies counts as zero); a window shorter than one
    /// slice gives its overall rates.
    pub fn slice_rates(&self) -> Vec<(f64, f64)> {
        let s = self.slice.as_secs_f64();
        let full = (self.window.as_secs_f64() / s).floor() as usize;
        if full == 0 {
            let w = self.window.as_secs_f64().max(1e-9);
            let t = &self.totals;
            return vec![(
                t.received_in_window as f64 / w,
                t.received_bytes_in_window as f64 / w,
            )];
        }
        let mut v: Vec<(f64, f64)> = self
            .totals
            .slices
            .iter()
            .take(full)
            .map(|&(m, b)| (m as f64 / s, b as f64 / s))
            .collect();
        v.resize(full, (0.0, 0.0));
        v
    }

    pub fn errors(&self) -> u64 {
        self.totals.errors.values().sum()
    }
}

/// Live progress: measured slices elapsed so far.
#[derive(Default)]
pub struct Progress {
    pub slices: AtomicU64,
    pub connected: AtomicUsize,
}

fn ws_config(connections: usize, max_size: usize) -> WebSocketConfig {
    // Buffers are per connection: keep 10,000 connections affordable.
    let buf = if connections <= 256 {
        128 << 10
    } else {
        16 << 10
    };
    let buf = buf.min(max_size.next_power_of_two().max(4 << 10));
    WebSocketConfig::default()
        .read_buffer_size(buf)
        .write_buffer_size(buf)
        .max_message_size(None)
        .max_frame_size(None)
}

/// Resolves the url's host and port once for every connection.
pub async fn resolve(url: &str) -> Result<SocketAddr, String> {
    let req = url
        .into_client_request()
        .map_err(|e| format!("invalid url `{url}`: {e}"))?;
    let uri = req.uri();
    let default_port = match uri.scheme_str() {
        Some("ws") => 80,
        Some("wss") => 443,
        _ => return Err(format!("`{url}`: only ws:// and wss:// urls are supported")),
    };
    let host = uri.host().ok_or_else(|| format!("`{url}` has no host"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(default_port);
    tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot resolve `{host}`: {e}"))?
        .next()
        .ok_or_else(|| format!("`{host}` resolves to no address"))
}

/// What opens the connections of a flood with `cfg` to `addr`.
fn connector_to(cfg: &FloodConfig, addr: SocketAddr) -> Result<Connector, String> {
    let secure = cfg.url.starts_with("wss://");
    Ok(Connector {
        addr,
        url: cfg.url.clone(),
        config: ws_config(cfg.connections.max(1), cfg.payload.size_range().1),
        headers: cfg.headers.clone(),
        tls: secure.then(|| tls::client_config(&cfg.tls)).transpose()?,
    })
}

/// What opens one more connection like the flood `cfg`'s (its url
/// resolved, headers, TLS).
pub async fn connector(cfg: &FloodConfig) -> Result<Connector, String> {
    let addr = resolve(&cfg.url).await?;
    connector_to(cfg, addr)
}
