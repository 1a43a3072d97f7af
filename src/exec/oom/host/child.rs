//! The `neon-perf oom-child` process of a host `oom_stress`: lowers its own
//! RLIMIT_DATA, then either allocates in a pattern until refused and proves
//! recovery, or runs one forward pass of a model at one batch (a
//! `find_max_batch` probe). Prints one JSON line for the parent.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{HostOomSettings, PLANT_LEAK_ENV};
use crate::plan::batch_sweep::ModelSpec;
use crate::plan::oom::OomPattern;
use crate::units::format_byte_count;

/// The hidden `neon-perf oom-child` subcommand's arguments.
#[derive(Clone, Debug, clap::Args)]
pub struct OomChildArgs {
    /// Bytes the child may add to its data segment (RLIMIT_DATA above its start).
    #[arg(long)]
    pub limit: u64,
    /// `grow` or `fragment`.
    #[arg(long, default_value = "grow", value_parser = ["grow", "fragment"])]
    pub pattern: String,
    /// Allocation size (grow) or largest size (fragment), bytes.
    #[arg(long, default_value_t = HostOomSettings::DEFAULT_CHUNK)]
    pub chunk: u64,
    /// Probe mode: a model spec as JSON; the child runs one forward pass of
    /// `--batch` under the limit instead of the allocation pattern.
    #[arg(long)]
    pub model: Option<String>,
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Folder that relative `weights` paths resolve against.
    #[arg(long)]
    pub base_dir: Option<PathBuf>,
    /// Probe on this CUDA device (`cuda:N`) instead of the host: no
    /// RLIMIT_DATA; `--limit` is then the device memory the probe may use
    /// (0: `--fraction` of the free device memory), the rest is filled.
    #[arg(long)]
    pub device: Option<String>,
    #[arg(long, default_value_t = 0.8)]
    pub fraction: f64,
}

/// What a stress child reports (one JSON line on stdout).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StressReport {
    pub limit_bytes: u64,
    pub allocated_bytes: u64,
    pub allocations: u64,
    pub refused: bool,
    pub refusal: String,
    pub rss_start: u64,
    pub rss_peak: u64,
    pub rss_after: u64,
    pub realloc_ok: bool,
    /// fragment: bytes re-obtained in double-size blocks after freeing half.
    pub refill_bytes: u64,
    pub alloc_seconds: f64,
}

/// What a probe child reports.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProbeReport {
    pub batch: usize,
    pub fits: bool,
    pub error: String,
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

/// Why the child could not set its RLIMIT_DATA.
#[derive(Debug)]
pub(in crate::exec::oom) enum LimitError {
    /// Above the hard limit it inherited, with no CAP_SYS_RESOURCE to raise
    /// it: the platform cannot enforce this `memory_limit` (a reason, not a
    /// failure).
    Unenforceable(String),
    Other(String),
}

/// What the child prints instead of its report when the limit cannot be
/// enforced; the parent ignores the scenario with `unenforceable`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Unenforceable {
    pub unenforceable: String,
}

/// Lowers this process's RLIMIT_DATA to its current data size + `extra`.
pub(in crate::exec::oom) fn limit_self(extra: u64) -> Result<u64, LimitError> {
    let data = status_kib("VmData:");
    let lim = data.saturating_add(extra);
    if let Some(hard) = crate::exec::command::rlimit::blocking_hard_limit(lim) {
        return Err(LimitError::Unenforceable(format!(
            "memory_limit {} cannot be enforced here: the oom-child's RLIMIT_DATA would be {} \
             (its own {} of data plus the limit), above this process's hard RLIMIT_DATA of {} \
             (`ulimit -Hd`, or the container's limits), and raising it needs CAP_SYS_RESOURCE; \
             lower `memory_limit` to at most {}, or run with a higher hard limit",
            format_byte_count(extra),
            format_byte_count(lim),
            format_byte_count(data),
            format_byte_count(hard),
            format_byte_count(hard.saturating_sub(data)),
        )));
    }
    let r = libc::rlimit {
        rlim_cur: lim as libc::rlim_t,
        rlim_max: lim as libc::rlim_t,
    };
    // SAFETY: plain syscall with a valid pointer to a local struct.
    if unsafe { libc::setrlimit(libc::RLIMIT_DATA, &r) } != 0 {
        return Err(LimitError::Other(format!(
            "setrlimit(RLIMIT_DATA, {lim}): {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(lim)
}

/// Returns freed heap pages to the kernel, so RSS shows what is really held
/// (glibc keeps freed small blocks otherwise).
fn trim() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free memory.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// A block of `n` bytes with every page touched (so it is resident), or the
/// allocator's refusal.
fn block(n: usize) -> Result<Vec<u8>, String> {
    let mut v: Vec<u8> = Vec::new();
    v.try_reserve_exact(n).map_err(|e| e.to_string())?;
    // SAFETY: capacity is n; every byte is written below before being read.
    unsafe { v.set_len(n) };
    for i in (0..n).step_by(4096) {
        v[i] = 1;
    }
    Ok(v)
}

/// The stress pattern, inside the child.
pub fn stress(limit: u64, pattern: OomPattern, chunk: u64) -> Result<StressReport, String> {
    let mut r = StressReport {
        rss_start: status_kib("VmRSS:"),
        ..Default::default()
    };
    r.limit_bytes = limit;
    let mut held: Vec<Vec<u8>> = Vec::new();
    // The list of blocks must never need to grow at the limit.
    held.try_reserve(1 << 16).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let chunk = chunk as usize;
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next_size = || match pattern {
        OomPattern::Grow => chunk,
        OomPattern::Fragment => {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // 4 KiB .. chunk, log-uniform-ish
            let shift = (x % 12) as u32;
            (chunk >> shift).max(4096)
        }
    };
    while held.len() < held.capacity() {
        let n = next_size();
        match block(n) {
            Ok(b) => {
                r.allocated_bytes += n as u64;
                r.allocations += 1;
                held.push(b);
            }
            Err(e) => {
                r.refused = true;
                r.refusal = e;
                break;
            }
        }
    }
    r.alloc_seconds = start.elapsed().as_secs_f64();
    r.rss_peak = status_kib("VmHWM:");
    if pattern == OomPattern::Fragment && r.refused {
        // Free every other block, then ask for blocks twice the largest size:
        // how much of the freed memory can be used again.
        let mut i = 0;
        held.retain(|_| {
            i += 1;
            i % 2 == 0
        });
        trim();
        let mut refill: Vec<Vec<u8>> = Vec::new();
        let _ = refill.try_reserve(1 << 12);
        while refill.len() < refill.capacity() {
            match block(chunk * 2) {
                Ok(b) => {
                    r.refill_bytes += b.len() as u64;
                    refill.push(b);
                }
                Err(_) => break,
            }
        }
        drop(refill);
    }
    drop(held);
    trim();
    if let Some(n) = std::env::var(PLANT_LEAK_ENV)
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        if let Ok(b) = block(n) {
            std::mem::forget(b);
        }
    }
    r.rss_after = status_kib("VmRSS:");
    // Work still runs: a fresh allocation of one chunk succeeds.
    r.realloc_ok = block(chunk).is_ok();
    Ok(r)
}

/// One forward pass of `model` at `batch`, inside the child. candle aborts
/// the process when an allocation fails; the parent reads that as "no fit".
pub(in crate::exec::oom) fn probe(model: &ModelSpec, batch: usize, base_dir: &Path) -> ProbeReport {
    use crate::model::{Model, Precision, Weights};
    let run = || -> Result<(), String> {
        let w = match &model.weights {
            Some(p) => Weights::load(&base_dir.join(p), model),
            None => Weights::random(model),
        }
        .map_err(|e| e.to_string())?;
        let m = Model::build(
            model,
            &w,
            Precision::of_model(model.dtype()),
            &candle_core::Device::Cpu,
        )
        .map_err(|e| e.to_string())?;
        drop(w);
        let x = m.input(batch, model.seed()).map_err(|e| e.to_string())?;
        m.forward(&x).map_err(|e| e.to_string())?;
        Ok(())
    };
    match run() {
        Ok(()) => ProbeReport {
            batch,
            fits: true,
            error: String::new(),
        },
        Err(error) => ProbeReport {
            batch,
            fits: false,
            error,
        },
    }
}

pub(in crate::exec::oom) fn pattern_of(s: &str) -> OomPattern {
    if s == "fragment" {
        OomPattern::Fragment
    } else {
        OomPattern::Grow
    }
}
