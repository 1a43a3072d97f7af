//! The device stress's phases on one GPU, each its own step: grow with
//! `cuMemAlloc` chunks up to the cap (or a natural out-of-memory), touch
//! them, fragment (free every other chunk, ask for larger ones), provoke an
//! out-of-memory when the cap came first, and recover. [`Stressed`] is what
//! they saw; `mod.rs` turns it into metrics and checks.

use std::sync::Arc;
use std::time::Instant;

use cudarc::driver::{CudaContext, CudaStream, result, sys};

use super::memory::{free_mem, memory_returned, settle};
use super::probe::probe_kernel;
use crate::device::{driver_err, is_oom};
use crate::plan::oom::{OomPattern, OomStressSpec};
use crate::units::format_bytes;

/// One `cuMemAlloc` allocation, freed with `cuMemFree` on drop.
struct Chunk {
    ptr: sys::CUdeviceptr,
    bytes: usize,
}

impl Drop for Chunk {
    fn drop(&mut self) {
        // SAFETY: allocated by cuMemAlloc, freed once; errors surface via
        // the free-memory check that follows.
        let _ = unsafe { result::free_sync(self.ptr) };
    }
}

/// What `cuMemAlloc` said.
enum Alloc {
    Ok(Chunk),
    Oom,
}

fn alloc(bytes: usize) -> Result<Alloc, String> {
    // SAFETY: plain device allocation, owned by the returned Chunk.
    match unsafe { result::malloc_sync(bytes) } {
        Ok(ptr) => Ok(Alloc::Ok(Chunk { ptr, bytes })),
        Err(e) if is_oom(&e) => Ok(Alloc::Oom),
        Err(e) => Err(driver_err(
            &format!(
                "cuMemAlloc({}) (expected success or CUDA_ERROR_OUT_OF_MEMORY)",
                format_bytes(bytes as f64)
            ),
            e,
        )),
    }
}

/// What the stress on one GPU saw, bytes and seconds.
pub(super) struct Stressed {
    pub free0: u64,
    pub total: u64,
    pub chunk: u64,
    pub cap: u64,
    pub tolerance: u64,
    pub peak: u64,
    pub free_at_peak: u64,
    pub natural_oom: bool,
    /// `; fragment: …` under `pattern = "fragment"`, else empty.
    pub frag_note: String,
    /// Free memory before the provoked request.
    pub free_now: u64,
    /// Without a natural out-of-memory: the single request larger than what
    /// was free, and whether it was refused.
    pub provoked: Option<(usize, bool)>,
    pub n_chunks: usize,
    pub alloc_time: f64,
    pub recovery_time: f64,
    pub free1: u64,
    pub returned: bool,
    /// The probe kernel after recovery: what it verified, or why it failed.
    pub probe: Result<String, String>,
}

/// Runs every phase on the GPU of `ctx`.
pub(super) fn stress(
    spec: &OomStressSpec,
    ctx: &Arc<CudaContext>,
    stream: &Arc<CudaStream>,
    cache_dir: &std::path::Path,
) -> Result<Stressed, String> {
    settle(ctx)?;
    let (free0, total) = free_mem(ctx)?;
    let chunk = spec.chunk_bytes() as usize;
    let cap = (spec.fraction() * total as f64) as u64;
    // Grow. cuMemAlloc allocates in the current context: this GPU's.
    ctx.bind_to_thread()
        .map_err(|e| driver_err("cuCtxSetCurrent", e))?;
    let t0 = Instant::now();
    let (mut chunks, peak, mut natural_oom) = grow(chunk, cap)?;
    let alloc_time = t0.elapsed().as_secs_f64();
    touch(&chunks, stream)?;
    let (free_at_peak, _) = free_mem(ctx)?;
    let mut frag_note = String::new();
    if spec.pattern.unwrap_or_default() == OomPattern::Fragment && chunks.len() >= 2 {
        let refused;
        (frag_note, refused) = fragment(&mut chunks, chunk)?;
        natural_oom |= refused;
    }
    let (free_now, _) = free_mem(ctx)?;
    let provoked = if natural_oom {
        None
    } else {
        Some(provoke(free_now)?)
    };
    // Recover.
    let t1 = Instant::now();
    let n_chunks = chunks.len();
    drop(chunks);
    settle(ctx)?;
    let recovery_time = t1.elapsed().as_secs_f64();
    let (free1, _) = free_mem(ctx)?;
    let tolerance = spec.leak_tolerance_bytes();
    Ok(Stressed {
        free0,
        total,
        chunk: chunk as u64,
        cap,
        tolerance,
        peak,
        free_at_peak,
        natural_oom,
        frag_note,
        free_now,
        provoked,
        n_chunks,
        alloc_time,
        recovery_time,
        free1,
        returned: memory_returned(free0, free1, tolerance),
        probe: probe_kernel(ctx, stream, cache_dir),
    })
}

/// Allocates `chunk`-byte chunks while the next still fits under `cap`:
/// the chunks, the bytes held, and whether the driver refused first.
fn grow(chunk: usize, cap: u64) -> Result<(Vec<Chunk>, u64, bool), String> {
    let mut chunks: Vec<Chunk> = Vec::new();
    let mut held: u64 = 0;
    while held + chunk as u64 <= cap {
        match alloc(chunk)? {
            Alloc::Ok(c) => {
                held += c.bytes as u64;
                chunks.push(c);
            }
            Alloc::Oom => return Ok((chunks, held, true)),
        }
    }
    Ok((chunks, held, false))
}

/// Touches every chunk so the memory is really resident.
fn touch(chunks: &[Chunk], stream: &Arc<CudaStream>) -> Result<(), String> {
    for c in chunks {
        // SAFETY: writes a chunk we own.
        unsafe { result::memset_d8_async(c.ptr, 0x5A, c.bytes, stream.cu_stream()) }
            .map_err(|e| driver_err("cuMemsetD8Async (touching allocated chunks)", e))?;
    }
    stream
        .synchronize()
        .map_err(|e| driver_err("cuStreamSynchronize", e))
}

/// Frees every other chunk, then asks for chunks larger than any hole:
/// the evidence note, and whether one was refused.
fn fragment(chunks: &mut Vec<Chunk>, chunk: usize) -> Result<(String, bool), String> {
    let mut keep = Vec::new();
    let mut holes = 0usize;
    for (i, c) in chunks.drain(..).enumerate() {
        if i % 2 == 0 {
            keep.push(c);
        } else {
            holes += 1;
        }
    }
    *chunks = keep;
    let big = 2 * chunk;
    let (mut ok, mut refused) = (0usize, 0usize);
    for _ in 0..holes / 2 + 1 {
        match alloc(big)? {
            Alloc::Ok(c) => {
                ok += 1;
                chunks.push(c);
            }
            Alloc::Oom => {
                refused += 1;
                break;
            }
        }
    }
    let note = format!(
        "; fragment: freed {holes} alternate chunks, then {ok} allocations of {} (2x any hole) succeeded, {refused} refused",
        format_bytes(big as f64)
    );
    Ok((note, refused > 0))
}

/// Without a natural out-of-memory (the cap came first), provokes one: a
/// single request larger than what is free must fail cleanly with
/// CUDA_ERROR_OUT_OF_MEMORY and leave the context usable.
fn provoke(free_now: u64) -> Result<(usize, bool), String> {
    let ask = (free_now + (1 << 30)) as usize;
    Ok(match alloc(ask)? {
        Alloc::Oom => (ask, true),
        Alloc::Ok(c) => {
            drop(c);
            (ask, false)
        }
    })
}
