//! The micro-batcher: one OS thread that collects requests from every
//! connection (up to `max_batch`, waiting at most `max_wait` after the first)
//! and runs them as one candle forward pass, then hands each reply back to
//! its connection.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use candle_core::{DType, Device, Tensor};
use tokio::sync::OwnedSemaphorePermit;
use tokio_tungstenite::tungstenite::Message;

use super::ServeConfig;
use super::conn::ConnOut;
use super::stats::Counters;
use crate::model::{Model, ModelError, Precision, Weights};
use crate::plan::batch_sweep::{Arch, ModelSpec};

/// One request waiting for its forward pass.
pub(crate) struct Job {
    pub id: u64,
    pub features: Vec<f32>,
    pub conn: Arc<ConnOut>,
    /// Held until the reply is queued: bounds each connection's requests in flight.
    pub _permit: OwnedSemaphorePermit,
}

/// The model spec the server builds from its config: an MLP
/// `input_dim → hidden[0] → … → hidden[last]` with seeded random weights.
pub fn model_spec(cfg: &ServeConfig) -> ModelSpec {
    let mut layers = vec![cfg.input_dim];
    layers.extend(&cfg.hidden);
    ModelSpec {
        arch: Arch::Mlp,
        layers: Some(layers),
        activation: None,
        d_model: None,
        heads: None,
        seq_len: None,
        blocks: None,
        d_ff: None,
        dtype: None,
        seed: Some(cfg.seed),
        weights: None,
    }
}

/// The server's model on the CPU in f32: what a test compares replies with.
pub fn build_model(cfg: &ServeConfig) -> Result<Model, ModelError> {
    let spec = model_spec(cfg);
    spec.validate().map_err(ModelError::Unsupported)?;
    let w = Weights::random(&spec)?;
    Model::build(&spec, &w, Precision::Float(DType::F32), &Device::Cpu)
}

/// Runs until every sender of `rx` is gone.
pub(crate) fn run(
    model: Model,
    rx: Receiver<Job>,
    max_batch: usize,
    max_wait: Duration,
    stats: Arc<Counters>,
) {
    let max_batch = max_batch.max(1);
    while let Ok(first) = rx.recv() {
        let deadline = Instant::now() + max_wait;
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(j) => {
                    batch.push(j);
                    continue;
                }
                Err(TryRecvError::Disconnected) => break,
                Err(TryRecvError::Empty) => {}
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            match rx.recv_timeout(deadline - now) {
                Ok(j) => batch.push(j),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats
            .batched_rows
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        match forward(&model, &batch) {
            Ok(rows) => {
                for (job, out) in batch.into_iter().zip(rows) {
                    let msg = crate::ws::protocol::encode_features(job.id, &out);
                    job.conn.push(Message::Binary(msg.into()));
                }
            }
            Err(e) => {
                for job in batch {
                    job.conn.push(super::conn::error_reply(
                        job.id,
                        &format!("forward pass: {e}"),
                    ));
                }
            }
        }
    }
}

/// Stacks the requests into one `[batch, input_dim]` tensor and returns one
/// output row per request.
fn forward(model: &Model, batch: &[Job]) -> candle_core::Result<Vec<Vec<f32>>> {
    let dim = batch[0].features.len();
    let mut flat = Vec::with_capacity(batch.len() * dim);
    for j in batch {
        flat.extend_from_slice(&j.features);
    }
    let x = Tensor::from_vec(flat, (batch.len(), dim), &model.device)?;
    model.forward(&x)?.to_dtype(DType::F32)?.to_vec2::<f32>()
}
