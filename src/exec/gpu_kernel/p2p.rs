//! Built-in `p2p_copy`: `n` f32 copied from GPU i to GPU j with
//! `cuMemcpyPeerAsync` for every ordered pair i ≠ j of visible GPUs, with
//! direct peer access enabled where `cuDeviceCanAccessPeer` allows it,
//! timed with CUDA events on the destination's stream and checked exact.

use std::collections::BTreeMap;
use std::sync::Arc;

use cudarc::driver::{CudaContext, CudaStream, DevicePtr, DevicePtrMut, result, sys};

use super::{DEFAULT_SEED, PointEnv, sampling_warning};
use crate::device::buffers::{DevBuf, HostData, compare};
use crate::device::peaks::EventTimer;
use crate::device::{self, driver_err};
use crate::exec::gpus;
use crate::exec::{ExecEvent, ExecOutput, RunCtx};
use crate::metric::{ChecklistItem, Direction, MetricKey, MetricSeries, Unit, default_estimator};
use crate::plan::gpu_kernel::{Dtype, GpuKernelSpec};
use crate::plan::{ParamPoint, Resolved, ScenarioPlan, point_labels};
use crate::result::Check;

/// Every ordered pair `(src, dst)` of `count` GPUs with `src != dst`, by source.
pub(super) fn pairs(count: usize) -> Vec<(usize, usize)> {
    (0..count)
        .flat_map(|s| (0..count).filter(move |&d| d != s).map(move |d| (s, d)))
        .collect()
}

/// How the destination reaches the source's memory.
enum Peer {
    /// `cuCtxEnablePeerAccess` succeeded (or was already on): a direct copy.
    Direct { enabled_here: bool },
    /// `cuDeviceCanAccessPeer` says no: the driver stages through host memory.
    Staged,
    /// `cuDeviceCanAccessPeer` says yes but `cuCtxEnablePeerAccess` refused
    /// (too many peers, unsupported): `cuMemcpyPeerAsync` still copies,
    /// staged by the driver.
    Refused(sys::CUresult),
}

/// Lets `dst`'s context read `src`'s memory where the hardware allows it;
/// access enabled here is disabled again on drop.
struct PeerAccess {
    dst: Arc<CudaContext>,
    src: Arc<CudaContext>,
    peer: Peer,
}

impl PeerAccess {
    fn enable(dst: &Arc<CudaContext>, src: &Arc<CudaContext>) -> Result<PeerAccess, String> {
        let mut can: std::ffi::c_int = 0;
        // SAFETY: writes one int; both devices exist (their contexts do).
        unsafe { sys::cuDeviceCanAccessPeer(&mut can, dst.cu_device(), src.cu_device()) }
            .result()
            .map_err(|e| driver_err("cuDeviceCanAccessPeer", e))?;
        let peer = if can == 0 {
            Peer::Staged
        } else {
            dst.bind_to_thread()
                .map_err(|e| driver_err("cuCtxSetCurrent", e))?;
            // SAFETY: the current context is dst's; src's context is alive.
            match unsafe { sys::cuCtxEnablePeerAccess(src.cu_ctx(), 0) } {
                sys::CUresult::CUDA_SUCCESS => Peer::Direct { enabled_here: true },
                sys::CUresult::CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED => Peer::Direct {
                    enabled_here: false,
                },
                r @ (sys::CUresult::CUDA_ERROR_TOO_MANY_PEERS
                | sys::CUresult::CUDA_ERROR_PEER_ACCESS_UNSUPPORTED) => Peer::Refused(r),
                other => {
                    return Err(driver_err(
                        &format!(
                            "cuCtxEnablePeerAccess (cuda:{} reading cuda:{})",
                            dst.ordinal(),
                            src.ordinal()
                        ),
                        cudarc::driver::DriverError(other),
                    ));
                }
            }
        };
        Ok(PeerAccess {
            dst: dst.clone(),
            src: src.clone(),
            peer,
        })
    }

    fn evidence(&self) -> String {
        match self.peer {
            Peer::Direct { .. } => {
                "direct peer access (cuDeviceCanAccessPeer = 1, cuCtxEnablePeerAccess)".into()
            }
            Peer::Staged => {
                "no direct peer access (cuDeviceCanAccessPeer = 0): the driver staged the copy through host memory".into()
            }
            Peer::Refused(r) => format!(
                "no direct peer access (cuDeviceCanAccessPeer = 1, but cuCtxEnablePeerAccess: {r:?}): the driver staged the copy through host memory"
            ),
        }
    }
}

impl Drop for PeerAccess {
    fn drop(&mut self) {
        if let Peer::Direct { enabled_here: true } = self.peer
            && self.dst.bind_to_thread().is_ok()
        {
            // SAFETY: undoes the cuCtxEnablePeerAccess made in `enable`;
            // every copy using it has completed (the stream was synchronized).
            let _ = unsafe { sys::cuCtxDisablePeerAccess(self.src.cu_ctx()) };
        }
    }
}

pub(super) fn run(
    plan: &ScenarioPlan,
    spec: &GpuKernelSpec,
    rctx: &mut RunCtx<'_>,
) -> Result<ExecOutput, String> {
    let count = device::gpu_count()?;
    if let Some(r) = gpus::p2p_unavailable_reason(count) {
        return Err(r);
    }
    let ctxs: Vec<Arc<CudaContext>> = (0..count).map(device::context).collect::<Result<_, _>>()?;
    let mut names = Vec::new();
    for c in &ctxs {
        names.push((
            c.ordinal(),
            c.name().map_err(|e| driver_err("cuDeviceGetName", e))?,
        ));
    }
    let mut out = ExecOutput {
        device: gpus::device_text(&names),
        ..Default::default()
    };
    let pairs = pairs(count);
    let p2p = P2p {
        plan,
        spec,
        settings: rctx.settings.clone(),
        ctxs: &ctxs,
        total: plan.points.len() * pairs.len(),
    };
    let mut index = 0;
    for point in &plan.points {
        let mut source: Option<Source> = None;
        for &pair in &pairs {
            if crate::process::cancel::requested().is_some() {
                break; // a SIGINT or SIGTERM: the pairs left are not started
            }
            p2p.run_pair(point, pair, index, &mut source, rctx, &mut out)?;
            index += 1;
        }
        p2p.free_source(&mut source)?;
    }
    for c in &ctxs {
        c.synchronize()
            .map_err(|e| driver_err(&format!("cuCtxSynchronize (cuda:{})", c.ordinal()), e))?;
        c.check_err()
            .map_err(|e| driver_err(&format!("a deferred CUDA call on cuda:{}", c.ordinal()), e))?;
    }
    Ok(out)
}

/// One source GPU's buffer and the data in it: its own data, so a copy
/// from the wrong GPU would not pass the check.
struct Source {
    ordinal: usize,
    host: HostData,
    buf: DevBuf,
}

/// What every pair shares.
struct P2p<'a> {
    plan: &'a ScenarioPlan,
    spec: &'a GpuKernelSpec,
    settings: Resolved,
    ctxs: &'a [Arc<CudaContext>],
    /// Points × pairs, for progress.
    total: usize,
}

impl P2p<'_> {
    /// One ordered pair at one point: copied once and checked, then timed.
    fn run_pair(
        &self,
        point: &ParamPoint,
        (s, d): (usize, usize),
        index: usize,
        source: &mut Option<Source>,
        rctx: &mut RunCtx<'_>,
        out: &mut ExecOutput,
    ) -> Result<(), String> {
        let point_text = MetricKey::new("")
            .with_labels(point_labels(point).iter())
            .to_string();
        let at = |e: String| {
            let pair = format!("cuda:{s} → cuda:{d}");
            if point_text.is_empty() {
                format!("{pair}: {e}")
            } else {
                format!("{point_text} {pair}: {e}")
            }
        };
        let labels = pair_labels(point, (s, d));
        let label_text = MetricKey::new("").with_labels(labels.iter()).to_string();
        rctx.event(ExecEvent::Point {
            index,
            total: self.total,
            label: label_text.clone(),
        });
        let (src, dst) = (&self.ctxs[s], &self.ctxs[d]);
        let dst_stream = dst.default_stream();
        let timer = EventTimer::new(dst).map_err(|e| at(e.into()))?;
        let mut env = PointEnv {
            settings: &self.settings,
            stream: &dst_stream,
            timer: &timer,
            flush: None,
            spec: self.spec,
            point,
            base_dir: &self.plan.base_dir,
        };
        let n = env.param("n", None).map_err(at)? as usize;
        let bytes = env
            .eval_opt(&self.spec.bytes, "bytes")
            .map_err(at)?
            .unwrap_or(4.0 * n as f64);
        let src_data = self.source(source, s, n).map_err(at)?;
        let Source {
            host,
            buf: DevBuf::F32(src_buf),
            ..
        } = src_data
        else {
            unreachable!("f32 source buffer")
        };
        let peer = PeerAccess::enable(dst, src).map_err(at)?;
        let mut dst_buf =
            DevBuf::poisoned(&dst_stream, Dtype::F32, n, "dst").map_err(|e| at(e.into()))?;
        let DevBuf::F32(dst_slice) = &mut dst_buf else {
            unreachable!("f32 destination buffer")
        };
        let src_stream = src.default_stream();
        let src_ptr = src_buf.device_ptr(&src_stream).0;
        let dst_ptr = dst_slice.device_ptr_mut(&dst_stream).0;
        // SAFETY: both buffers hold n f32 and outlive the copies, which
        // complete before the buffers drop (the timer waits for its end
        // event; the check synchronizes the stream).
        let copy = || unsafe { peer_copy((dst, dst_ptr), (src, src_ptr), n * 4, &dst_stream) };
        // Correctness first: the destination was poisoned with NaN.
        copy().map_err(at)?;
        let check = check_copy(&dst_stream, &dst_buf, host, (s, d), &peer).map_err(at)?;
        if matches!(peer.peer, Peer::Staged | Peer::Refused(_)) {
            out.warnings
                .push(format!("cuda:{s} → cuda:{d}: {}", peer.evidence()));
        }
        let mut on_sample = |c: usize| rctx.event(ExecEvent::Sample { count: c });
        let what = format!("cuMemcpyPeerAsync cuda:{s} → cuda:{d}");
        let (times, report) = env.measure(&what, copy, &mut on_sample).map_err(at)?;
        dst_stream
            .synchronize()
            .map_err(|e| at(driver_err("cuStreamSynchronize (end of pair)", e)))?;
        drop(dst_buf);
        drop(peer);
        record(out, &labels, &times, bytes);
        out.checks.push(check);
        out.warnings
            .extend(sampling_warning(&report, &label_text, &self.settings));
        Ok(())
    }

    /// The source buffer on GPU `s`: the one already there when it is
    /// `s`'s, else a new one (the previous source's freed first).
    fn source<'s>(
        &self,
        source: &'s mut Option<Source>,
        s: usize,
        n: usize,
    ) -> Result<&'s Source, String> {
        if source.as_ref().map(|src| src.ordinal) != Some(s) {
            self.free_source(source)?;
            let src_stream = self.ctxs[s].default_stream();
            let seed = self.spec.seed.unwrap_or(DEFAULT_SEED);
            let host = HostData::random(Dtype::F32, n, seed.wrapping_add(s as u64));
            let buf = DevBuf::upload(&src_stream, &host, "src")?;
            src_stream
                .synchronize()
                .map_err(|e| driver_err("cuStreamSynchronize (source upload)", e))?;
            *source = Some(Source {
                ordinal: s,
                host,
                buf,
            });
        }
        Ok(source.as_ref().expect("set above"))
    }

    /// Frees the source buffer with its own GPU's context current: cudarc's
    /// `CudaSlice` drop enqueues `cuMemFreeAsync` on the slice's stream
    /// handle without binding its context, and a default stream (NULL)
    /// means the *current* context's, which after a pair is the
    /// destination's.
    fn free_source(&self, source: &mut Option<Source>) -> Result<(), String> {
        if let Some(old) = source.take() {
            self.ctxs[old.ordinal]
                .bind_to_thread()
                .map_err(|e| driver_err("cuCtxSetCurrent", e))?;
            drop(old);
        }
        Ok(())
    }
}

/// The point's labels and the pair's `src` and `dst`.
fn pair_labels(point: &ParamPoint, (s, d): (usize, usize)) -> BTreeMap<String, String> {
    let mut labels = point_labels(point);
    labels.insert("src".into(), s.to_string());
    labels.insert("dst".into(), d.to_string());
    labels
}

/// `nbytes` from `src_ptr` on `src`'s GPU to `dst_ptr` on `dst`'s,
/// enqueued on `stream` (the destination's).
///
/// # Safety
/// Both pointers must hold `nbytes` and stay allocated until the copy has
/// completed on `stream`.
unsafe fn peer_copy(
    (dst, dst_ptr): (&Arc<CudaContext>, sys::CUdeviceptr),
    (src, src_ptr): (&Arc<CudaContext>, sys::CUdeviceptr),
    nbytes: usize,
    stream: &Arc<CudaStream>,
) -> Result<(), String> {
    dst.bind_to_thread()
        .map_err(|e| driver_err("cuCtxSetCurrent", e))?;
    // SAFETY: the caller keeps both buffers alive until the copy is done.
    unsafe {
        result::memcpy_peer_async(
            dst.cu_ctx(),
            dst_ptr,
            src.cu_ctx(),
            src_ptr,
            nbytes,
            stream.cu_stream(),
        )
    }
    .map_err(|e| driver_err(&format!("cuMemcpyPeerAsync ({nbytes} bytes)"), e))
}

/// After one copy: the destination holds exactly the source's data.
fn check_copy(
    dst_stream: &Arc<CudaStream>,
    dst_buf: &DevBuf,
    host: &HostData,
    (s, d): (usize, usize),
    peer: &PeerAccess,
) -> Result<Check, String> {
    dst_stream
        .synchronize()
        .map_err(|e| driver_err("cuStreamSynchronize after the copy", e))?;
    let got = dst_buf.download(dst_stream, "dst")?;
    let r = compare(host.len(), |i| got.get(i), |i| host.get(i), 0.0, 0.0);
    Ok(Check::new(
        format!("builtin p2p_copy cuda:{s} → cuda:{d} is exact"),
        r.passed(),
        format!(
            "{}; {}; timed with CUDA events on the destination's stream, read after cuEventSynchronize",
            r.evidence("dst = src", 0.0, 0.0),
            peer.evidence()
        ),
        Some(ChecklistItem::CudaSync),
    ))
}

/// A pair's `time` and `p2p_bandwidth` series.
fn record(out: &mut ExecOutput, labels: &BTreeMap<String, String>, times: &[f64], bytes: f64) {
    let key = |name: &str| MetricKey::new(name).with_labels(labels.iter());
    let mut time = MetricSeries::new(
        key("time"),
        Unit::Seconds,
        Direction::LowerIsBetter,
        default_estimator(&Unit::Seconds, Direction::LowerIsBetter),
    );
    time.samples = times.to_vec();
    out.metrics.push(time);
    let mut bw = MetricSeries::new(
        key("p2p_bandwidth"),
        Unit::BytesPerSecond,
        Direction::HigherIsBetter,
        default_estimator(&Unit::BytesPerSecond, Direction::HigherIsBetter),
    );
    bw.samples = times.iter().map(|t| bytes / t).collect();
    out.metrics.push(bw);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_ordered_and_exclude_self_copies() {
        assert!(pairs(0).is_empty());
        assert!(pairs(1).is_empty());
        assert_eq!(pairs(2), vec![(0, 1), (1, 0)]);
        let p = pairs(3);
        assert_eq!(p, vec![(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)]);
        assert_eq!(pairs(8).len(), 56);
    }
}
