//! `kind = "websocket_flood"`: many WebSocket connections send messages to a
//! server and time every reply. Keys are documented in docs/websocket.md.
//!
//! The spec and its plain accessors live here; the pieces it is made of are
//! in `target` (where the flood goes), `payload` (what it sends), `rate`
//! (open-loop send rate); `point` resolves one sweep point, `validate` holds
//! the checks serde cannot do.

pub mod headers;
pub mod health;
mod payload;
mod point;
pub mod protocol;
mod protocol_rules;
mod rate;
mod target;
pub mod tls;
mod validate;
pub mod wire;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::units::{ByteSize, HumanDuration};
use wire::CheckKind;

pub use health::{CancelSettings, PingSettings};
pub use payload::{MessageType, PayloadSpec, SizeSpec};
pub use protocol::{EndSpec, MatchSpec, ProtocolSpec};
pub use protocol_rules::{TEMPLATE_VARS, pointer_syntax};
pub use rate::Rate;
pub use target::{BuiltinSpec, Ready, ServerSpec, Target, host_port};

/// Keys of a `websocket_flood` scenario besides the common ones.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebsocketFloodSpec {
    /// `"builtin"`: the reference server, started in this process.
    #[serde(default)]
    pub target: Option<String>,
    /// `ws://host:port/path` of a server already running, or started by `server`.
    #[serde(default)]
    pub url: Option<String>,
    /// A server neon-perf starts before the flood and stops after it.
    #[serde(default)]
    pub server: Option<ServerSpec>,
    /// Settings of the builtin reference server.
    #[serde(default)]
    pub builtin: Option<BuiltinSpec>,
    /// Concurrent connections (default 1).
    #[serde(default)]
    pub connections: Option<u32>,
    /// Connection attempts are spread evenly over this time (default: as
    /// fast as the server accepts them); messages start once all are done.
    #[serde(default)]
    pub ramp_up: Option<HumanDuration>,
    /// Measured time (default: the `max_time` setting).
    #[serde(default)]
    pub duration: Option<HumanDuration>,
    /// Measured messages in total, instead of a duration.
    #[serde(default)]
    pub messages: Option<u64>,
    /// Closed loop: messages in flight per connection (default 1).
    #[serde(default)]
    pub in_flight: Option<u32>,
    /// Open loop: total send rate over all connections, e.g. "20000msg/s".
    #[serde(default)]
    pub rate: Option<Rate>,
    /// What each message carries (echo servers; the builtin server takes
    /// feature vectors of `builtin.input_dim`).
    #[serde(default)]
    pub payload: Option<PayloadSpec>,
    /// Robustness checks run after the flood, against the same server.
    #[serde(default)]
    pub checks: Vec<String>,
    /// The largest message the server accepts, when known (for `checks`).
    #[serde(default)]
    pub max_message: Option<ByteSize>,
    /// Errors tolerated before the flood's check fails (default 0).
    #[serde(default)]
    pub max_errors: Option<u64>,
    /// Worker threads of the client's runtime (default: half the cores for
    /// an external server, all of them for the builtin one).
    #[serde(default)]
    pub client_threads: Option<u32>,
    /// How long the client keeps polling, without sleeping, after a reply
    /// (default [`DEFAULT_CLIENT_SPIN`] for an external server, none for
    /// the builtin one, which shares the client's runtime; "0s": never).
    #[serde(default)]
    pub client_spin: Option<HumanDuration>,
    /// Handshake headers; `{env:NAME}` reads the environment. Values are
    /// never shown.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The server's own protocol: request template, reply matching, streams.
    #[serde(default)]
    pub protocol: Option<ProtocolSpec>,
    /// Certificates trusted for a `wss://` url.
    #[serde(default)]
    pub tls: Option<tls::TlsSpec>,
    /// Settings of the `ping` check: `{ interval, timeout }`.
    #[serde(default)]
    pub ping: Option<health::PingSpec>,
    /// Settings of the `cancel` check: `{ streams, tolerance }`.
    #[serde(default)]
    pub cancel: Option<health::CancelSpec>,
}

/// Closed loop (a fixed number in flight per connection) or open loop (a
/// fixed total rate, latency measured from each message's intended send time).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Load {
    Closed { in_flight: u32 },
    Open { rate: f64 },
}

/// The settings of one sweep point, `params` applied.
#[derive(Clone, Debug, PartialEq)]
pub struct FloodPoint {
    pub connections: u32,
    pub load: Load,
    pub message: MessageType,
    /// `None` with the builtin target: feature vectors of `input_dim`.
    pub size: Option<SizeSpec>,
}

/// Keys `params` may sweep in a `websocket_flood` scenario.
pub const SWEEPABLE: [&str; 5] = ["connections", "in_flight", "rate", "size", "message"];

/// `client_spin` when not set, with an external server: long enough to
/// cover one round trip of a loopback ping-pong, so a single connection
/// never sleeps between its request and the reply (docs/websocket.md,
/// "Why the client polls between replies").
pub const DEFAULT_CLIENT_SPIN: Duration = Duration::from_millis(1);
/// Longest `client_spin` accepted.
pub const MAX_CLIENT_SPIN: Duration = Duration::from_secs(1);

/// Most connections one scenario may open.
pub const MAX_CONNECTIONS: u32 = 1_000_000;
/// Largest message a flood sends.
pub const MAX_SIZE: u64 = 64 << 20;

impl WebsocketFloodSpec {
    pub fn is_builtin(&self) -> bool {
        self.target.as_deref() == Some("builtin")
    }

    pub fn target(&self) -> Target {
        match (&self.target, &self.url) {
            (_, Some(url)) => Target::Url {
                url: url.clone(),
                server: self.server.clone(),
            },
            _ => Target::Builtin(self.builtin.clone().unwrap_or_default().serve_config()),
        }
    }

    pub fn ramp_up(&self) -> Duration {
        self.ramp_up.map_or(Duration::ZERO, |d| d.0)
    }

    /// The client's spin window: the key, else the default for the target.
    pub fn client_spin(&self) -> Duration {
        match self.client_spin {
            Some(d) => d.0,
            None if self.is_builtin() => Duration::ZERO,
            None => DEFAULT_CLIENT_SPIN,
        }
    }

    pub fn max_errors(&self) -> u64 {
        self.max_errors.unwrap_or(0)
    }

    pub fn check_kinds(&self) -> Vec<CheckKind> {
        self.checks
            .iter()
            .filter_map(|c| CheckKind::from_id(c))
            .collect()
    }

    pub fn ready(&self) -> Option<Ready> {
        let server = self.server.as_ref()?;
        match &server.ready {
            Some(r) => Ready::parse(r).ok(),
            None => {
                let url = self.url.as_deref()?;
                Some(Ready::Tcp(host_port(url)?.to_string()))
            }
        }
    }

    pub fn server_timeout(&self) -> Duration {
        self.server
            .as_ref()
            .and_then(|s| s.timeout)
            .map_or(Duration::from_secs(30), |d| d.0)
    }
}

/// A spec parsed from inline TOML, for the unit tests of the submodules.
#[cfg(test)]
fn parse_spec(src: &str) -> WebsocketFloodSpec {
    toml::from_str(src).unwrap()
}
