//! `oom_stress` with `find_max_batch = true` on a GPU: the largest batch of a
//! candle model whose forward pass fits the device memory allowed
//! (`memory_limit`, or `memory_fraction` of what is free; a filler
//! allocation takes the rest, so the search ends in bounded time on an 80 GB
//! card). Doubling then bisection, one `neon-perf oom-child --device cuda:N`
//! per probe, so a driver abort ends only that probe. Recovery is proved
//! twice: inside the child that ran out of memory (pool trimmed, free memory
//! back, batch 1 still runs) and across processes (a fresh child at the
//! largest batch succeeds after the out-of-memory, and the device's free
//! memory, read by this process, is back within `leak_tolerance`).

pub mod probe;
mod report;

use std::time::{Duration, Instant};

use super::memory::memory_returned;
use crate::device::{self, driver_err};
use crate::exec::oom::host::{describe_exit, run_child};
use crate::exec::search::max_true;
use crate::exec::{ExecError, ExecEvent, ExecOutput, RunCtx};
use crate::plan::batch_sweep::ModelSpec;
use crate::plan::{DeviceSel, OomStressSpec, ScenarioPlan};

pub use probe::CudaProbeReport;

/// The settings of a CUDA `find_max_batch` scenario with defaults applied.
#[derive(Clone, Debug, PartialEq)]
pub struct CudaMaxBatch {
    pub model: ModelSpec,
    pub max_batch: usize,
    /// Bytes each probe may use; 0: `fraction` of the free memory.
    pub limit: u64,
    pub fraction: f64,
    pub leak_tolerance: u64,
}

impl CudaMaxBatch {
    pub const DEFAULT_MAX_BATCH: usize = 65536;

    pub fn from_spec(spec: &OomStressSpec) -> Result<Self, String> {
        let model = spec
            .model
            .clone()
            .filter(|_| spec.find_max_batch)
            .ok_or("`find_max_batch = true` needs a `model = { .. }` to probe")?;
        Ok(CudaMaxBatch {
            model,
            max_batch: spec
                .max_batch
                .map_or(Self::DEFAULT_MAX_BATCH, |b| b as usize)
                .max(1),
            limit: spec.memory_limit.map_or(0, |b| b.0),
            fraction: spec.fraction(),
            leak_tolerance: spec.leak_tolerance_bytes(),
        })
    }

    /// The `oom-child` arguments of one probe.
    pub fn child_args(&self, ordinal: usize, batch: usize, base_dir: &str) -> Vec<String> {
        vec![
            "--device".into(),
            format!("cuda:{ordinal}"),
            "--limit".into(),
            self.limit.to_string(),
            "--fraction".into(),
            self.fraction.to_string(),
            "--model".into(),
            serde_json::to_string(&self.model).unwrap_or_default(),
            "--batch".into(),
            batch.to_string(),
            "--base-dir".into(),
            base_dir.into(),
        ]
    }
}

/// One probe as the parent saw it.
#[derive(Clone, Debug)]
pub struct Probe {
    pub batch: usize,
    pub fits: bool,
    /// The child's report; `None` when it crashed or timed out before printing.
    pub report: Option<CudaProbeReport>,
    /// How the child ended, when it did not end cleanly.
    pub exit: Option<String>,
}

impl Probe {
    fn failure(&self) -> String {
        match (&self.report, &self.exit) {
            (Some(r), None) if !r.error.is_empty() => r.error.clone(),
            (_, Some(e)) => format!("child {e}"),
            _ => "no report".into(),
        }
    }
}

/// The verdicts of a search, pure (tested without a GPU).
#[derive(Clone, Debug, PartialEq)]
pub struct Verdicts {
    /// A probe ran out of memory cleanly (the child reported the CUDA error and exited 0).
    pub clean_oom: bool,
    /// In that child: free memory back within tolerance and batch 1 ran.
    pub in_process_recovered: bool,
    /// The fresh child after the out-of-memory fit.
    pub fresh_child_ok: bool,
    /// Free memory seen by the parent back within tolerance of its start.
    pub device_memory_returned: bool,
}

pub fn verdicts(
    probes: &[Probe],
    after: Option<&Probe>,
    free_start: u64,
    free_end: u64,
    tolerance: u64,
) -> Verdicts {
    let oom = probes
        .iter()
        .find(|p| !p.fits && p.exit.is_none() && p.report.as_ref().is_some_and(|r| r.oom));
    let in_process_recovered = oom.and_then(|p| p.report.as_ref()).is_some_and(|r| {
        r.retry_ok == Some(true)
            && r.free_after_recovery
                .is_some_and(|f| memory_returned(r.free_before_forward, f, tolerance))
    });
    Verdicts {
        clean_oom: oom.is_some(),
        in_process_recovered,
        fresh_child_ok: after.is_some_and(|p| p.fits),
        device_memory_returned: memory_returned(free_start, free_end, tolerance),
    }
}

fn probe_child(
    s: &CudaMaxBatch,
    ordinal: usize,
    batch: usize,
    base: &str,
    timeout: Duration,
    ctx: &mut RunCtx<'_>,
) -> Result<Probe, ExecError> {
    let run = run_child(
        &ctx.env.neon_perf_bin.clone(),
        &s.child_args(ordinal, batch, base),
        timeout,
        ctx,
    )?;
    let report: Option<CudaProbeReport> = run
        .stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok());
    let clean = run.status.is_some_and(|st| st.success()) && !run.timed_out;
    Ok(Probe {
        batch,
        fits: clean && report.as_ref().is_some_and(|r| r.fits),
        report,
        exit: (!clean).then(|| describe_exit(&run)),
    })
}

/// Free device memory as this process sees it, with its cached pool memory given back.
fn device_free(ordinal: usize) -> Result<(u64, u64), String> {
    let ctx = device::context(ordinal)?;
    crate::exec::oom::memory::settle(&ctx)?;
    ctx.mem_get_info()
        .map(|(f, t)| (f as u64, t as u64))
        .map_err(|e| driver_err("cuMemGetInfo", e))
}

/// Runs the search. The lead dispatches CUDA `find_max_batch` scenarios here.
pub fn run_cuda(
    plan: &ScenarioPlan,
    spec: &OomStressSpec,
    ctx: &mut RunCtx<'_>,
) -> Result<ExecOutput, ExecError> {
    let s = CudaMaxBatch::from_spec(spec).map_err(ExecError::Failed)?;
    let ordinal = match plan.device {
        DeviceSel::Cuda(n) => n as usize,
        _ => 0,
    };
    let _gpu = device::exclusive();
    let guard = |r: Result<Result<(u64, u64), String>, String>| {
        r.and_then(|r| r)
            .map_err(|e| ExecError::Failed(device::panic_hint(e)))
    };
    let (free_start, total) = guard(device::guarded("cuMemGetInfo", || device_free(ordinal)))?;
    let base = plan.base_dir.display().to_string();
    let timeout = ctx.settings.timeout;
    let mut probes: Vec<Probe> = Vec::new();
    ctx.event(ExecEvent::Point {
        index: 0,
        total: 2,
        label: "find_max_batch".into(),
    });
    let t = Instant::now();
    let best = max_true(s.max_batch, |b| {
        let p = probe_child(&s, ordinal, b, &base, timeout, ctx)?;
        let fits = p.fits;
        probes.push(p);
        Ok::<_, ExecError>(fits)
    })?;
    let search_time = t.elapsed().as_secs_f64();
    ctx.event(ExecEvent::Point {
        index: 1,
        total: 2,
        label: "recovery".into(),
    });
    let failed = probes.iter().any(|p| !p.fits);
    let after = if failed {
        Some(probe_child(&s, ordinal, best.max(1), &base, timeout, ctx)?)
    } else {
        None
    };
    let (free_end, _) = guard(device::guarded("cuMemGetInfo", || device_free(ordinal)))?;
    let v = verdicts(
        &probes,
        after.as_ref(),
        free_start,
        free_end,
        s.leak_tolerance,
    );
    let search = report::Search {
        s: &s,
        device: plan.device,
        probes: &probes,
        after: after.as_ref(),
        best,
        search_time,
        free_start,
        free_end,
        total,
    };
    Ok(report::report(&search, &v))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn spec(t: &str) -> OomStressSpec {
        toml::from_str(t).unwrap()
    }

    pub(crate) fn probe(batch: usize, fits: bool, oom: bool, retry: bool, after: u64) -> Probe {
        Probe {
            batch,
            fits,
            report: Some(CudaProbeReport {
                batch,
                fits,
                oom,
                error: if fits {
                    String::new()
                } else {
                    "CUDA_ERROR_OUT_OF_MEMORY".into()
                },
                free_before_forward: 1000 << 20,
                free_after_recovery: (!fits).then_some(after << 20),
                retry_ok: (!fits).then_some(retry),
                ..Default::default()
            }),
            exit: None,
        }
    }

    #[test]
    fn settings_and_child_args() {
        let m = "find_max_batch = true\nmodel = { arch = \"mlp\", layers = [8, 8] }\n";
        let s = CudaMaxBatch::from_spec(&spec(m)).unwrap();
        assert_eq!((s.max_batch, s.limit, s.fraction), (65536, 0, 0.8));
        let s = CudaMaxBatch::from_spec(&spec(&format!(
            "{m}memory_limit = \"1GiB\"\nmax_batch = 64"
        )))
        .unwrap();
        assert_eq!((s.max_batch, s.limit), (64, 1 << 30));
        let a = s.child_args(1, 32, "/suites");
        let at = |k: &str| a[a.iter().position(|x| x == k).unwrap() + 1].clone();
        assert_eq!(at("--device"), "cuda:1");
        assert_eq!(at("--batch"), "32");
        assert_eq!(at("--limit"), (1u64 << 30).to_string());
        let back: ModelSpec = serde_json::from_str(&at("--model")).unwrap();
        assert_eq!(back, s.model);
        assert!(CudaMaxBatch::from_spec(&spec("find_max_batch = true")).is_err());
    }

    #[test]
    fn recovery_verdicts() {
        let mib = 1u64 << 20;
        let ok = [
            probe(1, true, false, false, 0),
            probe(2, false, true, true, 990),
        ];
        let fresh = probe(1, true, false, false, 0);
        let v = verdicts(&ok, Some(&fresh), 5000 * mib, 4990 * mib, 64 * mib);
        assert!(
            v.clean_oom && v.in_process_recovered && v.fresh_child_ok && v.device_memory_returned
        );
        // The child kept memory after its failed pass.
        let leaky = [
            probe(1, true, false, false, 0),
            probe(2, false, true, true, 800),
        ];
        assert!(!verdicts(&leaky, Some(&fresh), 1, 1, 64 * mib).in_process_recovered);
        // Batch 1 failed afterwards in the same process.
        let stuck = [probe(2, false, true, false, 1000)];
        assert!(!verdicts(&stuck, None, 1, 1, 0).in_process_recovered);
        // A crash is not a clean out-of-memory.
        let mut crash = probe(2, false, true, true, 1000);
        crash.exit = Some("signal 6".into());
        assert!(!verdicts(&[crash], None, 1, 1, 0).clean_oom);
        // The device lost memory across processes; the fresh child failed.
        let v = verdicts(
            &ok,
            Some(&probe(1, false, true, true, 1000)),
            5000 * mib,
            4000 * mib,
            64 * mib,
        );
        assert!(!v.device_memory_returned && !v.fresh_child_ok);
    }
}
