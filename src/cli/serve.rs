//! `neon-perf serve`: the reference WebSocket inference server on its own,
//! until SIGINT or SIGTERM.

use std::io::Write;
use std::net::SocketAddr;

use clap::Args;

use super::exit;
use crate::units::{ByteSize, HumanDuration};
use crate::ws::server::{self, ServeConfig};

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (printed when ready).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub bind: SocketAddr,
    /// Most requests folded into one forward pass (1 = no batching).
    #[arg(long, default_value_t = 32)]
    pub max_batch: usize,
    /// Longest a request waits for its batch to fill, e.g. "2ms".
    #[arg(long, default_value = "2ms")]
    pub max_wait: HumanDuration,
    /// Largest message accepted; larger ones get close 1009, e.g. "10MiB".
    #[arg(long, default_value = "10MiB")]
    pub max_message: ByteSize,
    /// Replies waiting for one connection past this cut it off (slow reader).
    #[arg(long, default_value = "1MiB")]
    pub write_buffer: ByteSize,
    /// Requests of one connection in the batcher at once.
    #[arg(long, default_value_t = 256)]
    pub max_in_flight: usize,
    /// Length of a request's f32 feature vector.
    #[arg(long, default_value_t = 256)]
    pub input_dim: usize,
    /// Connections served at once; one more is refused with close 1013
    /// ("try again later"). Each idle connection costs about 130 KiB.
    #[arg(long, default_value_t = crate::plan::websocket::wire::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Hidden layer widths of the MLP, comma-separated; the last is the output width.
    #[arg(long, value_delimiter = ',', default_value = "512,256")]
    pub hidden: Vec<usize>,
    /// Seed of the model's random weights.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Answer JSON `generate` requests with a stream of token frames, one
    /// per decode step (docs/websocket.md, "The reference server streams").
    #[arg(long)]
    pub streaming: bool,
    /// With --streaming: one forward pass per stream per decode step,
    /// instead of one over all active streams (continuous batching).
    #[arg(long, requires = "streaming")]
    pub no_continuous_batching: bool,
}

impl ServeArgs {
    pub fn config(&self) -> ServeConfig {
        ServeConfig {
            bind: self.bind,
            max_batch: self.max_batch,
            max_wait: self.max_wait.0,
            max_message: self.max_message.0 as usize,
            write_buffer: self.write_buffer.0 as usize,
            input_dim: self.input_dim,
            hidden: self.hidden.clone(),
            seed: self.seed,
            max_in_flight: self.max_in_flight,
            max_connections: self.max_connections,
            streaming: self.streaming,
            continuous_batching: !self.no_continuous_batching,
        }
    }
}

pub fn serve(args: ServeArgs) -> i32 {
    let cfg = args.config();
    if let Err(e) = cfg.validate() {
        eprintln!("error: {e}");
        return exit::BAD_INPUT;
    }
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit::BAD_INPUT;
        }
    };
    rt.block_on(async move {
        let srv = match server::start(cfg.clone()).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: cannot serve on {}: {e}", cfg.bind);
                return exit::BAD_INPUT;
            }
        };
        println!("listening on ws://{}", srv.addr());
        let _ = std::io::stdout().flush();
        eprintln!(
            "model: mlp {} → {} (seed {}); max batch {}, max wait {:?}; \
             max message {} B, write buffer {} B, at most {} connections",
            cfg.input_dim,
            cfg.hidden
                .iter()
                .map(|h| h.to_string())
                .collect::<Vec<_>>()
                .join(" → "),
            cfg.seed,
            cfg.max_batch,
            cfg.max_wait,
            cfg.max_message,
            cfg.write_buffer,
            cfg.max_connections
        );
        if cfg.streaming {
            eprintln!(
                "streaming: JSON generate requests, continuous batching {}",
                if cfg.continuous_batching { "on" } else { "off" }
            );
        }
        if let Err(e) = wait_for_signal().await {
            eprintln!("error: cannot listen for signals: {e}");
        }
        let stats = srv.stats();
        srv.shutdown().await;
        eprintln!(
            "shut down: {} connections, {} messages, {} forward passes (mean batch {:.2}), \
             closed {} oversize, {} protocol errors, {} slow readers",
            stats.connections_total,
            stats.messages,
            stats.batches,
            stats.mean_batch(),
            stats.closed_oversize,
            stats.closed_protocol,
            stats.closed_slow
        );
        exit::OK
    })
}

async fn wait_for_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
