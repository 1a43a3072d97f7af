//! The streaming mode's decode loop: one OS thread holding every active
//! stream of every connection. Each decode step runs ONE forward pass over
//! all of them (continuous batching: a stream joins at the next step after
//! its request arrives and leaves when it has its tokens), and sends one
//! token frame to each; with batching off, one forward pass per stream per
//! step instead, for comparison. A stream whose connection is gone is
//! dropped at the next step (the cleanup the `cancel` check looks for).
//!
//! Each stream's state is a feature vector of `input_dim`: its token is the
//! argmax of the model's output, and the output, folded back to
//! `input_dim` through `tanh`, is its next state.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, TryRecvError};

use candle_core::{DType, Tensor};
use tokio::sync::OwnedSemaphorePermit;
use tokio_tungstenite::tungstenite::Message;

use super::conn::ConnOut;
use super::stats::Counters;
use crate::model::Model;

/// One stream asked for by a `generate` request.
pub(crate) struct StreamJob {
    /// The request's `id`, as JSON text (a string with its quotes, or a number).
    pub id: String,
    pub tokens: u32,
    pub conn: Arc<ConnOut>,
    /// Held while the stream runs: bounds each connection's open streams.
    pub _permit: OwnedSemaphorePermit,
}

struct Active {
    job: StreamJob,
    state: Vec<f32>,
    produced: u32,
}

/// `{"id":…,"type":"token","index":i,"token":t}`.
pub(crate) fn token_frame(id: &str, index: u32, token: usize) -> Message {
    Message::Text(format!(r#"{{"id":{id},"type":"token","index":{index},"token":{token}}}"#).into())
}

/// `{"id":…,"type":"done","usage":{"output_tokens":n}}`.
pub(crate) fn done_frame(id: &str, tokens: u32) -> Message {
    Message::Text(
        format!(r#"{{"id":{id},"type":"done","usage":{{"output_tokens":{tokens}}}}}"#).into(),
    )
}

/// `{"id":…,"type":"error","message":"…"}` (`id` is JSON text, `null` if none).
pub(crate) fn error_frame(id: &str, message: &str) -> Message {
    let message = serde_json::Value::from(message).to_string();
    Message::Text(format!(r#"{{"id":{id},"type":"error","message":{message}}}"#).into())
}

/// Runs until every sender of `rx` is gone and no stream is left.
pub(crate) fn run(
    model: Model,
    dim: usize,
    rx: Receiver<StreamJob>,
    batching: bool,
    stats: Arc<Counters>,
) {
    let mut active: Vec<Active> = Vec::new();
    let mut open = true;
    loop {
        if active.is_empty() {
            match rx.recv() {
                Ok(job) => active.push(start(job, dim, &stats)),
                Err(_) => return,
            }
        }
        while open {
            match rx.try_recv() {
                Ok(job) => active.push(start(job, dim, &stats)),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => open = false,
            }
        }
        let before = active.len();
        active.retain(|a| !a.job.conn.is_closed());
        let gone = (before - active.len()) as u64;
        stats.streams_cancelled.fetch_add(gone, Ordering::Relaxed);
        if active.is_empty() {
            if !open {
                return;
            }
            continue;
        }
        step(&model, &mut active, batching, &stats);
    }
}

fn start(job: StreamJob, dim: usize, stats: &Counters) -> Active {
    stats.streams_started.fetch_add(1, Ordering::Relaxed);
    // A seeded start per stream, so that streams differ.
    let seed = job
        .id
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31) ^ u32::from(b));
    let state = (0..dim)
        .map(|k| ((seed as usize + 7 * k) % 17) as f32 / 8.0 - 1.0)
        .collect();
    Active {
        job,
        state,
        produced: 0,
    }
}

/// One decode step: the forward pass(es), a token to every stream, the
/// finished ones done and removed.
fn step(model: &Model, active: &mut Vec<Active>, batching: bool, stats: &Counters) {
    let outputs = if batching {
        stats.batches.fetch_add(1, Ordering::Relaxed);
        forward(
            model,
            active.iter().map(|a| a.state.as_slice()),
            active.len(),
        )
    } else {
        let mut rows = Vec::with_capacity(active.len());
        for a in active.iter() {
            stats.batches.fetch_add(1, Ordering::Relaxed);
            match forward(model, std::iter::once(a.state.as_slice()), 1) {
                Ok(mut r) => rows.append(&mut r),
                Err(e) => {
                    rows.clear();
                    return fail_all(active, &e.to_string());
                }
            }
        }
        Ok(rows)
    };
    let outputs = match outputs {
        Ok(o) => o,
        Err(e) => return fail_all(active, &e.to_string()),
    };
    stats.decode_steps.fetch_add(1, Ordering::Relaxed);
    stats
        .batched_rows
        .fetch_add(active.len() as u64, Ordering::Relaxed);
    for (a, out) in active.iter_mut().zip(outputs) {
        let token = argmax(&out);
        let dim = a.state.len();
        for (k, s) in a.state.iter_mut().enumerate() {
            *s = out[(k * out.len()) / dim.max(1)].tanh();
        }
        a.job.conn.push(token_frame(&a.job.id, a.produced, token));
        a.produced += 1;
        if a.produced >= a.job.tokens {
            // Counted before the frame goes out: a client that has read
            // "done" and then asks for the stats finds the stream counted.
            stats.streams_done.fetch_add(1, Ordering::Relaxed);
            a.job.conn.push(done_frame(&a.job.id, a.produced));
        }
    }
    active.retain(|a| a.produced < a.job.tokens);
}

fn fail_all(active: &mut Vec<Active>, why: &str) {
    for a in active.drain(..) {
        a.job
            .conn
            .push(error_frame(&a.job.id, &format!("forward pass: {why}")));
    }
}

fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}

/// Stacks `n` rows into one `[n, dim]` tensor: one forward pass.
fn forward<'a>(
    model: &Model,
    rows: impl Iterator<Item = &'a [f32]>,
    n: usize,
) -> candle_core::Result<Vec<Vec<f32>>> {
    let mut flat = Vec::new();
    for r in rows {
        flat.extend_from_slice(r);
    }
    let dim = flat.len() / n.max(1);
    let x = Tensor::from_vec(flat, (n, dim), &model.device)?;
    model.forward(&x)?.to_dtype(DType::F32)?.to_vec2::<f32>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_the_id_as_given() {
        let t = token_frame("\"r-1\"", 0, 42);
        assert_eq!(
            t.to_text().unwrap(),
            r#"{"id":"r-1","type":"token","index":0,"token":42}"#
        );
        let d = done_frame("7", 3);
        assert_eq!(
            d.to_text().unwrap(),
            r#"{"id":7,"type":"done","usage":{"output_tokens":3}}"#
        );
        let e = error_frame("null", "bad \"x\"");
        let v: serde_json::Value = serde_json::from_str(e.to_text().unwrap()).unwrap();
        assert_eq!(v["message"], "bad \"x\"");
        assert_eq!(argmax(&[0.1, 3.0, -1.0, 3.0]), 1);
    }
}
