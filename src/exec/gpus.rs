//! Which GPUs a CUDA scenario runs on, and how per-GPU results are named:
//! `device = "all"` runs on every visible GPU in index order and labels every
//! metric with `gpu=<index>`; any other selection runs on one GPU and leaves
//! metric keys, check names and warnings exactly as they were. Pure, except
//! [`selected`], which asks the driver how many GPUs there are.

use std::collections::BTreeMap;
use std::sync::Arc;

use cudarc::driver::{CudaContext, CudaStream};

use crate::device::{self, driver_err};
use crate::exec::{ExecError, ExecOutput};
use crate::plan::{DeviceSel, ScenarioPlan};

/// The GPUs a scenario runs on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GpuSet {
    /// CUDA ordinals, in index order.
    pub ordinals: Vec<usize>,
    /// `device = "all"`: results carry the GPU (metric label, check name).
    pub per_gpu: bool,
}

impl GpuSet {
    /// `device` resolved against `count` visible GPUs. `"auto"` is GPU 0,
    /// `"cuda:N"` is GPU N (checked against the count when its context is
    /// created), `"all"` is 0..count.
    pub fn resolve(device: DeviceSel, count: usize, kind: &str) -> Result<GpuSet, String> {
        match device {
            DeviceSel::Cpu => Err(format!(
                "{kind} runs on CUDA devices only, but the scenario says device = \"cpu\""
            )),
            DeviceSel::Auto => Ok(GpuSet::one(0)),
            DeviceSel::Cuda(n) => Ok(GpuSet::one(n as usize)),
            DeviceSel::AllGpus if count == 0 => Err(format!(
                "{kind} with device = \"all\" found no GPU (CUDA_VISIBLE_DEVICES={})",
                std::env::var("CUDA_VISIBLE_DEVICES").unwrap_or_else(|_| "unset".into())
            )),
            DeviceSel::AllGpus => Ok(GpuSet {
                ordinals: (0..count).collect(),
                per_gpu: true,
            }),
        }
    }

    fn one(ordinal: usize) -> GpuSet {
        GpuSet {
            ordinals: vec![ordinal],
            per_gpu: false,
        }
    }

    /// Adds `gpu=<ordinal>` to `labels` when results are per GPU.
    pub fn label(&self, ordinal: usize, labels: &mut BTreeMap<String, String>) {
        if self.per_gpu {
            labels.insert("gpu".into(), ordinal.to_string());
        }
    }

    /// `text` with the GPU appended when results are per GPU: check names.
    pub fn name(&self, ordinal: usize, text: &str) -> String {
        if self.per_gpu {
            format!("{text} (cuda:{ordinal})")
        } else {
            text.to_string()
        }
    }

    /// `text` with the GPU in front when results are per GPU: warnings, errors.
    pub fn prefix(&self, ordinal: usize, text: &str) -> String {
        if self.per_gpu {
            format!("cuda:{ordinal}: {text}")
        } else {
            text.to_string()
        }
    }
}

/// The GPUs `device` selects on this host.
pub fn selected(device: DeviceSel, kind: &str) -> Result<GpuSet, String> {
    let count = match device {
        DeviceSel::AllGpus => device::gpu_count()?,
        _ => 0,
    };
    GpuSet::resolve(device, count, kind)
}

/// A CUDA executor's run: one GPU scenario at a time
/// ([`device::exclusive`]), a cudarc panic (a missing library or symbol)
/// turned into an error with a hint, and the error named by the scenario.
pub fn guarded_run(
    plan: &ScenarioPlan,
    kind: &str,
    run: impl FnOnce() -> Result<ExecOutput, String>,
) -> Result<ExecOutput, ExecError> {
    let _gpu = device::exclusive();
    device::guarded(&format!("{kind} panicked inside cudarc"), run)
        .map_err(device::panic_hint)
        .and_then(|r| r)
        .map_err(|e| ExecError::Failed(format!("{}: {e}", plan.full_name())))
}

/// One GPU's turn in [`on_each_gpu`].
pub struct OnGpu<'a> {
    pub set: &'a GpuSet,
    /// Its CUDA ordinal.
    pub ordinal: usize,
    /// Its place in the set (0 for the first GPU run).
    pub index: usize,
    /// Its primary context, current on this thread, and default stream.
    pub ctx: Arc<CudaContext>,
    pub stream: Arc<CudaStream>,
    /// `gpu=<ordinal>` when results are per GPU, else empty.
    pub labels: BTreeMap<String, String>,
}

/// Runs `each` on every GPU `device` selects, in index order; an error is
/// prefixed with its GPU when results are per GPU. Sets `out.device` to
/// the GPUs run on ([`device_text`]).
pub fn on_each_gpu(
    device: DeviceSel,
    kind: &str,
    out: &mut ExecOutput,
    mut each: impl FnMut(&OnGpu<'_>, &mut ExecOutput) -> Result<(), String>,
) -> Result<(), String> {
    let set = selected(device, kind)?;
    let mut names = Vec::new();
    for (index, &ordinal) in set.ordinals.iter().enumerate() {
        // A SIGINT or SIGTERM: the GPUs left are not started.
        if index > 0 && crate::process::cancel::requested().is_some() {
            break;
        }
        let name = (|| {
            let ctx = device::context(ordinal)?;
            let name = ctx.name().map_err(|e| driver_err("cuDeviceGetName", e))?;
            let mut labels = BTreeMap::new();
            set.label(ordinal, &mut labels);
            let gpu = OnGpu {
                set: &set,
                ordinal,
                index,
                stream: ctx.default_stream(),
                ctx,
                labels,
            };
            each(&gpu, out)?;
            Ok::<_, String>(name)
        })()
        .map_err(|e| set.prefix(ordinal, &e))?;
        names.push((ordinal, name));
    }
    out.device = device_text(&names);
    Ok(())
}

/// `ExecOutput::device`: "cuda:0 NVIDIA H100 80GB HBM3" for one GPU,
/// "cuda:0,cuda:1 NVIDIA H100 80GB HBM3" for identical GPUs, and
/// "cuda:0 NVIDIA A100, cuda:1 NVIDIA H100" for mixed ones.
pub fn device_text(gpus: &[(usize, String)]) -> String {
    let mut groups: Vec<(Vec<usize>, &str)> = Vec::new();
    for (ord, name) in gpus {
        match groups.iter_mut().find(|(_, n)| *n == name.as_str()) {
            Some((ords, _)) => ords.push(*ord),
            None => groups.push((vec![*ord], name)),
        }
    }
    if groups.len() == 1 {
        let (ords, name) = &groups[0];
        let ords: Vec<String> = ords.iter().map(|o| format!("cuda:{o}")).collect();
        return format!("{} {name}", ords.join(","));
    }
    gpus.iter()
        .map(|(o, n)| format!("cuda:{o} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why the peer-to-peer copy cannot run with `count` GPUs; `None` when it can.
pub fn p2p_unavailable_reason(count: usize) -> Option<String> {
    (count < 2).then(|| format!("p2p_copy needs two or more GPUs; this host has {count}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_device_selections_keep_results_unlabelled() {
        for (sel, ord) in [(DeviceSel::Auto, 0), (DeviceSel::Cuda(3), 3)] {
            let set = GpuSet::resolve(sel, 8, "gpu_kernel").unwrap();
            assert_eq!(set.ordinals, vec![ord]);
            assert!(!set.per_gpu);
            let mut labels = BTreeMap::from([("n".to_string(), "1024".to_string())]);
            set.label(ord, &mut labels);
            assert_eq!(labels.len(), 1);
            assert_eq!(
                set.name(ord, "builtin copy output is exact"),
                "builtin copy output is exact"
            );
            assert_eq!(set.prefix(ord, "w"), "w");
        }
        let err = GpuSet::resolve(DeviceSel::Cpu, 1, "oom_stress").unwrap_err();
        assert!(err.contains("device = \"cpu\""), "{err}");
    }

    #[test]
    fn all_gpus_label_every_result() {
        let set = GpuSet::resolve(DeviceSel::AllGpus, 2, "gpu_kernel").unwrap();
        assert_eq!(set.ordinals, vec![0, 1]);
        assert!(set.per_gpu);
        let mut labels = BTreeMap::from([("n".to_string(), "16777216".to_string())]);
        set.label(1, &mut labels);
        let key = crate::metric::MetricKey::new("time").with_labels(labels.iter());
        assert_eq!(key.to_string(), "time{gpu=1,n=16777216}");
        assert_eq!(
            set.name(1, "builtin saxpy output is exact"),
            "builtin saxpy output is exact (cuda:1)"
        );
        assert_eq!(
            set.prefix(0, "sampling stopped"),
            "cuda:0: sampling stopped"
        );
        // One GPU: still labelled, so keys do not change when a second GPU appears.
        let one = GpuSet::resolve(DeviceSel::AllGpus, 1, "gpu_kernel").unwrap();
        assert_eq!(one.ordinals, vec![0]);
        assert!(one.per_gpu);
        let err = GpuSet::resolve(DeviceSel::AllGpus, 0, "gpu_kernel").unwrap_err();
        assert!(err.contains("found no GPU"), "{err}");
    }

    #[test]
    fn device_text_groups_identical_gpus() {
        let h = "NVIDIA H100 80GB HBM3".to_string();
        assert_eq!(
            device_text(&[(0, h.clone())]),
            "cuda:0 NVIDIA H100 80GB HBM3"
        );
        assert_eq!(
            device_text(&[(0, h.clone()), (1, h.clone())]),
            "cuda:0,cuda:1 NVIDIA H100 80GB HBM3"
        );
        assert_eq!(
            device_text(&[(0, "NVIDIA A100".into()), (1, "NVIDIA H100".into())]),
            "cuda:0 NVIDIA A100, cuda:1 NVIDIA H100"
        );
    }

    #[test]
    fn p2p_needs_two_gpus() {
        assert_eq!(
            p2p_unavailable_reason(0).as_deref(),
            Some("p2p_copy needs two or more GPUs; this host has 0")
        );
        assert_eq!(
            p2p_unavailable_reason(1).as_deref(),
            Some("p2p_copy needs two or more GPUs; this host has 1")
        );
        assert_eq!(p2p_unavailable_reason(2), None);
        assert_eq!(p2p_unavailable_reason(8), None);
    }
}
