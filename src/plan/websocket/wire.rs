//! What the `websocket_flood` plan and the WebSocket code (`crate::ws`)
//! share: the id at the head of every message, the robustness checks a
//! suite names, and the reference server's configuration. Defined here, at
//! the plan's layer, so that `plan` and `config` need nothing from `ws`;
//! `ws` re-exports each where it is used.

use std::net::SocketAddr;
use std::time::Duration;

use crate::metric::ChecklistItem;

/// Bytes taken by the id in a binary message.
pub const BINARY_ID_LEN: usize = 8;
/// Characters taken by the id in a text message.
pub const TEXT_ID_LEN: usize = 16;

/// One robustness check, as named in a suite's `checks = [...]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CheckKind {
    /// A message over the server's limit gets close 1009 (or the connection
    /// refused), and the server still accepts a new connection.
    Oversize,
    /// A client that stops reading: the server's memory stays bounded and it
    /// closes the connection.
    SlowConsumer,
    /// Connections dropped mid-frame: the server survives.
    AbruptDisconnect,
    /// An invalid frame gets close 1002: the server survives.
    Malformed,
    /// Opening and closing many connections leaves no fd or memory growth.
    Churn,
    /// WebSocket pings on every connection during the flood: each answered
    /// within a timeout (`ping_rtt`).
    Ping,
    /// Streams cancelled mid-way (the connection dropped after the first
    /// reply), many times: the server still serves, its memory returns.
    Cancel,
}

impl CheckKind {
    pub const ALL: [CheckKind; 7] = [
        CheckKind::Oversize,
        CheckKind::SlowConsumer,
        CheckKind::AbruptDisconnect,
        CheckKind::Malformed,
        CheckKind::Churn,
        CheckKind::Ping,
        CheckKind::Cancel,
    ];

    /// The name used in suites and reports.
    pub fn id(self) -> &'static str {
        match self {
            CheckKind::Oversize => "oversize",
            CheckKind::SlowConsumer => "slow_consumer",
            CheckKind::AbruptDisconnect => "abrupt_disconnect",
            CheckKind::Malformed => "malformed",
            CheckKind::Churn => "churn",
            CheckKind::Ping => "ping",
            CheckKind::Cancel => "cancel",
        }
    }

    pub fn from_id(s: &str) -> Option<CheckKind> {
        CheckKind::ALL.into_iter().find(|k| k.id() == s)
    }

    /// The checklist item a pass is evidence for.
    pub fn item(self) -> ChecklistItem {
        match self {
            CheckKind::Oversize | CheckKind::SlowConsumer => ChecklistItem::WebsocketBuffers,
            CheckKind::AbruptDisconnect | CheckKind::Malformed => ChecklistItem::ErrorHandling,
            CheckKind::Churn | CheckKind::Cancel => ChecklistItem::MemoryCleanup,
            CheckKind::Ping => ChecklistItem::Monitoring,
        }
    }

    /// Whether the check speaks the flood's own client, TLS included, so
    /// that it works over `wss://`; the others write frames by hand over
    /// plain `ws://` (with the flood's headers, and its `protocol`'s
    /// requests where they send any).
    pub fn over_tls(self) -> bool {
        matches!(self, CheckKind::Ping | CheckKind::Cancel)
    }

    /// Whether the check is measured during the flood (by every
    /// connection) rather than run against the server after it.
    pub fn during_flood(self) -> bool {
        self == CheckKind::Ping
    }
}

/// How the reference server is configured. Defaults are the seed's buffer
/// settings (max message 10 MiB, write buffer 1 MiB) and a small MLP.
#[derive(Clone, Debug, PartialEq)]
pub struct ServeConfig {
    /// Address to bind; 127.0.0.1 unless told otherwise.
    pub bind: SocketAddr,
    /// Most messages folded into one forward pass (1 = no batching).
    pub max_batch: usize,
    /// Longest a message waits for its batch to fill.
    pub max_wait: Duration,
    /// Largest message accepted; larger ones get close 1009.
    pub max_message: usize,
    /// Per-connection write buffer: replies waiting to be written to a
    /// connection past this many bytes mean its reader is too slow, and the
    /// connection is cut off.
    pub write_buffer: usize,
    /// Length of the f32 feature vector a request carries.
    pub input_dim: usize,
    /// Hidden layer widths of the MLP; the output width is the last.
    pub hidden: Vec<usize>,
    /// Seed for the model's random weights.
    pub seed: u64,
    /// Requests of one connection waiting for their forward pass; past it the
    /// server stops reading that connection until replies are queued.
    pub max_in_flight: usize,
    /// Connections served at once; one more is refused with close 1013
    /// ("try again later"). Each idle connection costs about 130 KiB.
    pub max_connections: usize,
    /// Streaming mode: text `generate` requests are answered with a stream
    /// of token frames by the decode loop (binary requests as always).
    pub streaming: bool,
    /// Streaming mode: one forward pass per decode step over every active
    /// stream (`true`), or one per stream per step (`false`, to compare).
    pub continuous_batching: bool,
}

/// `neon-perf serve`'s default connection cap: about 1.3 GiB of idle
/// connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            max_batch: 32,
            max_wait: Duration::from_millis(2),
            max_message: 10 << 20,
            write_buffer: 1 << 20,
            input_dim: 256,
            hidden: vec![512, 256],
            seed: 0,
            max_in_flight: 256,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            streaming: false,
            continuous_batching: true,
        }
    }
}

impl ServeConfig {
    /// Width of a reply's f32 outputs.
    pub fn output_dim(&self) -> usize {
        self.hidden.last().copied().unwrap_or(self.input_dim)
    }

    /// Bytes of the model's f32 weights and biases (`None` past `u64`).
    pub fn model_bytes(&self) -> Option<u64> {
        let mut fan_in = self.input_dim as u64;
        let mut params: u64 = 0;
        for &w in &self.hidden {
            let w = w as u64;
            params = params.checked_add(fan_in.checked_mul(w)?.checked_add(w)?)?;
            fan_in = w;
        }
        params.checked_mul(4)
    }

    /// Why this config cannot serve, if it cannot.
    pub fn validate(&self) -> Result<(), String> {
        let zero = [
            ("max_batch", self.max_batch),
            ("input_dim", self.input_dim),
            ("max_in_flight", self.max_in_flight),
            ("max_message", self.max_message),
            ("write_buffer", self.write_buffer),
            ("max_connections", self.max_connections),
        ];
        if let Some((name, _)) = zero.iter().find(|(_, v)| *v == 0) {
            return Err(format!("`{name}` must be at least 1"));
        }
        if self.hidden.is_empty() || self.hidden.contains(&0) {
            return Err("`hidden` needs at least one layer, each at least 1 wide".into());
        }
        self.model_bytes().ok_or_else(|| {
            "the model's size overflows: make `input_dim` and `hidden` smaller".to_string()
        })?;
        let request = BINARY_ID_LEN + 4 * self.input_dim;
        if request > self.max_message {
            return Err(format!(
                "a request ({request} bytes for input_dim {}) is larger than max_message ({})",
                self.input_dim, self.max_message
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for k in CheckKind::ALL {
            assert_eq!(CheckKind::from_id(k.id()), Some(k));
        }
        assert_eq!(CheckKind::from_id("nope"), None);
    }
}
