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
mod decoder;
mod generate;
mod stats;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

pub use crate::plan::websocket::wire::ServeConfig;
pub use batcher::{build_model, model_spec};
pub use conn::{INPUT_DIM_HEADER, OUTPUT_DIM_HEADER};
pub use stats::ServerStats;

use conn::Shared;
use stats::Counters;

/// A running server. Dropping it stops the server without waiting;
/// [`ServerHandle::shutdown`] waits.
pub struct ServerHandle {
    addr: SocketAddr,
    stats: Arc<Counters>,
    stop: watch::Sender<bool>,
    accept: tokio::task::JoinHandle<()>,
    batcher: std::thread::JoinHandle<()>,
    decoder: Option<std::thread::JoinHandle<()>>,
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
        let (batcher, decoder) = (self.batcher, self.decoder);
        let _ = tokio::task::spawn_blocking(move || {
            let _ = batcher.join();
            decoder.map(|d| d.join())
        })
        .await;
    }
}

/// Starts the server on the current tokio runtime.
pub async fn start(cfg: ServeConfig) -> std::io::Result<ServerHandle> {
    use std::io::{Error, ErrorKind};
    cfg.validate()
        .map_err(|e| Error::new(ErrorKind::InvalidInput, e))?;
    enough_memory(&cfg)?;
    let model = build_model(&cfg).map_err(|e| Error::other(format!("building the model: {e}")))?;
    let listener = TcpListener::bind(cfg.bind).await?;
    let addr = listener.local_addr()?;
    let stats = Arc::new(Counters::default());
    let (jobs, jobs_rx) = std::sync::mpsc::channel();
    let (max_batch, max_wait, s) = (cfg.max_batch, cfg.max_wait, stats.clone());
    let batcher = std::thread::Builder::new()
        .name("neon-perf-batcher".into())
        .spawn(move || batcher::run(model, jobs_rx, max_batch, max_wait, s))?;
    let (streams, decoder) = match cfg.streaming {
        true => {
            let (tx, rx) = start_decoder(&cfg, stats.clone())?;
            (Some(tx), Some(rx))
        }
        false => (None, None),
    };
    let (stop, stop_rx) = watch::channel(false);
    let shared = Arc::new(Shared {
        output_dim: cfg.output_dim(),
        cfg,
        jobs,
        streams,
        stats: stats.clone(),
    });
    let accept = tokio::spawn(accept_loop(listener, shared, stop_rx));
    Ok(ServerHandle {
        addr,
        stats,
        stop,
        accept,
        batcher,
        decoder,
    })
}

/// The streaming mode's decode loop on its own thread, with its own copy
/// of the model.
fn start_decoder(
    cfg: &ServeConfig,
    stats: Arc<Counters>,
) -> std::io::Result<(
    std::sync::mpsc::Sender<decoder::StreamJob>,
    std::thread::JoinHandle<()>,
)> {
    let model =
        build_model(cfg).map_err(|e| std::io::Error::other(format!("building the model: {e}")))?;
    let (tx, rx) = std::sync::mpsc::channel();
    let (dim, batching) = (cfg.input_dim, cfg.continuous_batching);
    let handle = std::thread::Builder::new()
        .name("neon-perf-decoder".into())
        .spawn(move || decoder::run(model, dim, rx, batching, stats))?;
    Ok((tx, handle))
}

/// The model's weights must fit in the memory there is, twice over (the
/// weights, and the tensors built from them), checked before anything is
/// allocated: an allocation that fails aborts the process.
fn enough_memory(cfg: &ServeConfig) -> std::io::Result<()> {
    use std::io::{Error, ErrorKind};
    let need = cfg.model_bytes().unwrap_or(u64::MAX).saturating_mul(2);
    let Some(free) = crate::host::mem_available() else {
        return Ok(());
    };
    if need > free {
        return Err(Error::new(
            ErrorKind::OutOfMemory,
            format!(
                "the model (input_dim {}, hidden {:?}) needs {} for its f32 weights, and the machine has {} available: make `hidden` smaller",
                cfg.input_dim,
                cfg.hidden,
                crate::units::format_bytes((need / 2) as f64),
                crate::units::format_bytes(free as f64)
            ),
        ));
    }
    Ok(())
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    let max = shared.cfg.max_connections;
    loop {
        tokio::select! {
            _ = wait_shutdown(&mut stop) => break,
            r = listener.accept() => match r {
                Ok((tcp, _)) => {
                    let _ = tcp.set_nodelay(true);
                    if conns.len() >= max {
                        Counters::bump(&shared.stats.refused_full);
                        tokio::spawn(conn::refuse(tcp, max));
                    } else {
                        conns.spawn(conn::serve(tcp, shared.clone(), stop.clone()));
                    }
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
