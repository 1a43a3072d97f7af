//! The reference inference server: the embedded `target = "builtin"` of a
//! `websocket_flood` scenario and `neon-perf serve` on its own.
//!
//! [`start`] binds `cfg.bind` (port 0 = ephemeral) and serves until
//! [`ServerHandle::shutdown`]; requests and replies follow
//! [`crate::ws::protocol`]. Requests from every connection are micro-batched
//! (`max_batch`, `max_wait`) into one candle forward pass of an MLP
//! (`batcher`); each connection (`conn`) gets its own replies back.

mod batcher;
mod conn;
mod stats;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

pub use batcher::{build_model, model_spec};
pub use conn::{INPUT_DIM_HEADER, OUTPUT_DIM_HEADER};
pub use stats::ServerStats;

use conn::Shared;
use stats::Counters;

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
            max_in_flight: 256,
        }
    }
}

impl ServeConfig {
    /// Width of a reply's f32 outputs.
    pub fn output_dim(&self) -> usize {
        self.hidden.last().copied().unwrap_or(self.input_dim)
    }

    /// Why this config cannot serve, if it cannot.
    pub fn validate(&self) -> Result<(), String> {
        let zero = [
            ("max_batch", self.max_batch),
            ("input_dim", self.input_dim),
            ("max_in_flight", self.max_in_flight),
            ("max_message", self.max_message),
            ("write_buffer", self.write_buffer),
        ];
        if let Some((name, _)) = zero.iter().find(|(_, v)| *v == 0) {
            return Err(format!("`{name}` must be at least 1"));
        }
        if self.hidden.is_empty() || self.hidden.contains(&0) {
            return Err("`hidden` needs at least one layer, each at least 1 wide".into());
        }
        let request = crate::ws::protocol::BINARY_ID_LEN + 4 * self.input_dim;
        if request > self.max_message {
            return Err(format!(
                "a request ({request} bytes for input_dim {}) is larger than max_message ({})",
                self.input_dim, self.max_message
            ));
        }
        Ok(())
    }
}

/// A running server. Dropping it stops the server without waiting;
/// [`ServerHandle::shutdown`] waits.
pub struct ServerHandle {
    addr: SocketAddr,
    stats: Arc<Counters>,
    stop: watch::Sender<bool>,
    accept: tokio::task::JoinHandle<()>,
    batcher: std::thread::JoinHandle<()>,
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://ADDR/`.
    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    /// What the server has done so far.
    pub fn stats(&self) -> ServerStats {
        self.stats.snapshot()
    }

    /// Graceful shutdown: stops accepting, closes every connection with 1001
    /// (waiting briefly for each client's close), then waits for the
    /// connection tasks and the batcher thread to end.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.accept.await;
        // Every job sender is gone with the connections: the batcher ends.
        let batcher = self.batcher;
        let _ = tokio::task::spawn_blocking(move || batcher.join()).await;
    }
}

/// Starts the server on the current tokio runtime.
pub async fn start(cfg: ServeConfig) -> std::io::Result<ServerHandle> {
    use std::io::{Error, ErrorKind};
    cfg.validate()
        .map_err(|e| Error::new(ErrorKind::InvalidInput, e))?;
    let model = build_model(&cfg).map_err(|e| Error::other(format!("building the model: {e}")))?;
    let listener = TcpListener::bind(cfg.bind).await?;
    let addr = listener.local_addr()?;
    let stats = Arc::new(Counters::default());
    let (jobs, jobs_rx) = std::sync::mpsc::channel();
    let (max_batch, max_wait, s) = (cfg.max_batch, cfg.max_wait, stats.clone());
    let batcher = std::thread::Builder::new()
        .name("neon-perf-batcher".into())
        .spawn(move || batcher::run(model, jobs_rx, max_batch, max_wait, s))?;
    let (stop, stop_rx) = watch::channel(false);
    let shared = Arc::new(Shared {
        output_dim: cfg.output_dim(),
        cfg,
        jobs,
        stats: stats.clone(),
    });
    let accept = tokio::spawn(accept_loop(listener, shared, stop_rx));
    Ok(ServerHandle {
        addr,
        stats,
        stop,
        accept,
        batcher,
    })
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = wait_shutdown(&mut stop) => break,
            r = listener.accept() => match r {
                Ok((tcp, _)) => {
                    let _ = tcp.set_nodelay(true);
                    conns.spawn(conn::serve(tcp, shared.clone(), stop.clone()));
                }
                // Out of fds or similar: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    drop(shared);
    while conns.join_next().await.is_some() {}
}

/// Resolves once shutdown is asked for or the handle is gone.
async fn wait_shutdown(stop: &mut watch::Receiver<bool>) {
    loop {
        if *stop.borrow_and_update() {
            return;
        }
        if stop.changed().await.is_err() {
            return;
        }
    }
}
