//! The reference inference server: the embedded `target = "builtin"` of a
//! `websocket_flood` scenario and `neon-perf serve` on its own.
//!
//! Contract (implemented in this module):
//! `pub async fn start(cfg: ServeConfig) -> std::io::Result<ServerHandle>`
//! binds `cfg.bind` (port 0 = ephemeral), serves until
//! `ServerHandle::shutdown().await`, and `ServerHandle::addr()` gives the
//! bound address. Requests and replies follow [`crate::ws::protocol`].

use std::net::SocketAddr;
use std::time::Duration;

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
    /// Per-connection write buffer: a reader slower than this is cut off.
    pub write_buffer: usize,
    /// Length of the f32 feature vector a request carries.
    pub input_dim: usize,
    /// Hidden layer widths of the MLP; the output width is the last.
    pub hidden: Vec<usize>,
    /// Seed for the model's random weights.
    pub seed: u64,
}

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
        }
    }
}
