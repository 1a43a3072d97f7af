//! `process_gpu_memory{at=start|peak|end}` of a `command`: its process
//! tree's GPU memory in each run (NVML, `monitor::tree_gpu`), one sample
//! per run, gateable like any metric; with a `max` bound it is evidence
//! for the checklist item "GPU memory usage optimized".

use std::collections::BTreeMap;

use super::child::ChildRun;
use crate::exec::gpu_bound::gpu_memory_bound;
use crate::metric::{Direction, MetricKey, MetricSeries, Unit, default_estimator};
use crate::monitor::tree_gpu::TreeGpuMemory;
use crate::plan::ScenarioPlan;
use crate::result::Check;

pub const METRIC: &str = "process_gpu_memory";

/// One of the three figures of a run.
type Pick = fn(&TreeGpuMemory) -> u64;

#[derive(Default)]
pub(super) struct GpuMemoryRuns {
    runs: Vec<TreeGpuMemory>,
    error: Option<String>,
}

impl GpuMemoryRuns {
    pub fn record(&mut self, run: &ChildRun) {
        let why = match &run.gpu_memory {
            Some(Ok(m)) => match m.unattributable() {
                None => return self.runs.push(*m),
                Some(why) => why,
            },
            Some(Err(e)) => e.clone(),
            None => return,
        };
        self.error.get_or_insert(why);
    }

    /// The three series (none without NVML), the bound's check, and a
    /// warning when sampling failed.
    pub fn finish(
        self,
        plan: &ScenarioPlan,
        labels: &BTreeMap<String, String>,
    ) -> (Vec<MetricSeries>, Vec<Check>, Vec<String>) {
        let which = if self.runs.is_empty() {
            "not reported"
        } else {
            "not measured in every run"
        };
        let warnings = self
            .error
            .map(|e| vec![format!("{METRIC} {which}: {e}")])
            .unwrap_or_default();
        if self.runs.is_empty() {
            return (Vec::new(), Vec::new(), warnings);
        }
        let key = |at: &str| {
            let mut l = labels.clone();
            l.insert("at".into(), at.into());
            MetricKey::new(METRIC).with_labels(&l)
        };
        let pick: [(&str, Pick); 3] = [
            ("start", |m| m.start),
            ("peak", |m| m.peak),
            ("end", |m| m.end),
        ];
        let series: Vec<MetricSeries> = pick
            .iter()
            .map(|(at, f)| {
                let mut s = MetricSeries::new(
                    key(at),
                    Unit::Bytes,
                    Direction::LowerIsBetter,
                    default_estimator(&Unit::Bytes, Direction::LowerIsBetter),
                );
                s.samples = self.runs.iter().map(|m| f(m) as f64).collect();
                s
            })
            .collect();
        let checks = bound_check(plan, &key("peak"), &self.runs)
            .into_iter()
            .collect();
        (series, checks, warnings)
    }
}

/// With a `max` on the peak, whether every run stayed under it.
fn bound_check(plan: &ScenarioPlan, peak_key: &MetricKey, runs: &[TreeGpuMemory]) -> Option<Check> {
    let peak = runs.iter().map(|m| m.peak).max().unwrap_or(0);
    let samples: usize = runs.iter().map(|m| m.samples).sum();
    let source = format!(
        "over {} run(s); NVML, {samples} samples of the program's process tree",
        runs.len()
    );
    gpu_memory_bound(plan, peak_key, peak, "process", &source)
}

/// The Python helper's PyTorch peaks (`neon_perf.phase` on CUDA) and where
/// each comes from.
const HELPER_PEAKS: [(&str, &str); 2] = [
    ("gpu_allocated_peak", "torch.cuda.max_memory_allocated"),
    ("gpu_reserved_peak", "torch.cuda.max_memory_reserved"),
];

/// A `max` on one of the helper's PyTorch peaks, as a check for "GPU
/// memory usage optimized" (as on `process_gpu_memory`): the program's own
/// allocator figures, one per phase.
pub(super) fn helper_peak_bounds(plan: &ScenarioPlan, series: &[MetricSeries]) -> Vec<Check> {
    series
        .iter()
        .filter(|s| s.unit == Unit::Bytes)
        .filter_map(|s| {
            let (_, api) = HELPER_PEAKS.iter().find(|(n, _)| *n == s.key.name)?;
            let peak = s.samples.iter().copied().fold(0.0, f64::max);
            let source = format!(
                "over {} run(s); {api}, printed by neon_perf.phase",
                s.samples.len()
            );
            gpu_memory_bound(plan, &s.key, peak as u64, "PyTorch", &source)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::ChecklistItem;
    use std::time::Duration;

    fn plan(rule: &str) -> ScenarioPlan {
        let text = format!(
            "[suite]\nname = \"g\"\n[[scenario]]\nname = \"m\"\nkind = \"command\"\ncommand = [\"true\"]\n{rule}\n"
        );
        let suite = crate::config::parse_suite(std::path::Path::new("g.toml"), &text).unwrap();
        suite.scenarios.into_iter().next().unwrap()
    }

    fn run(m: Option<Result<TreeGpuMemory, String>>) -> ChildRun {
        ChildRun {
            wall: Duration::from_millis(1),
            cpu: Duration::ZERO,
            peak_rss: 0,
            rss_is_own: true,
            metrics: vec![],
            checks: vec![],
            stragglers: vec![],
            output_held_open: false,
            gpu_memory: m,
        }
    }

    fn mem(start: u64, peak: u64, end: u64) -> Option<Result<TreeGpuMemory, String>> {
        Some(Ok(TreeGpuMemory {
            start,
            peak,
            end,
            samples: 10,
            unseen: 0,
            ..Default::default()
        }))
    }

    #[test]
    fn three_series_and_the_bound_is_evidence() {
        let p = plan(r#"metric."process_gpu_memory" = { max = "2GiB" }"#);
        let mut g = GpuMemoryRuns::default();
        g.record(&run(mem(0, 1 << 30, 1 << 20)));
        g.record(&run(mem(0, 3 << 30, 1 << 20)));
        let (series, checks, warnings) = g.finish(&p, &BTreeMap::new());
        let keys: Vec<String> = series.iter().map(|s| s.key.to_string()).collect();
        assert_eq!(
            keys,
            [
                "process_gpu_memory{at=start}",
                "process_gpu_memory{at=peak}",
                "process_gpu_memory{at=end}"
            ]
        );
        assert_eq!(
            series[1].samples,
            [(1u64 << 30) as f64, (3u64 << 30) as f64]
        );
        assert_eq!(checks.len(), 1);
        assert!(!checks[0].passed && checks[0].item == Some(ChecklistItem::GpuMemory));
        assert!(
            checks[0].evidence.contains("peak 3.00 GiB"),
            "{}",
            checks[0].evidence
        );
        assert!(warnings.is_empty());
    }

    #[test]
    fn without_nvml_nothing_is_reported_and_a_failure_is_said() {
        let p = plan("");
        let mut g = GpuMemoryRuns::default();
        g.record(&run(None));
        let (series, checks, warnings) = g.finish(&p, &BTreeMap::new());
        assert!(series.is_empty() && checks.is_empty() && warnings.is_empty());
        let mut g = GpuMemoryRuns::default();
        g.record(&run(mem(1, 2, 3)));
        g.record(&run(Some(Err(
            "NVML: compute processes of GPU 0: lost".into()
        ))));
        let (series, _, warnings) = g.finish(&p, &BTreeMap::new());
        assert_eq!(series.len(), 3);
        assert!(warnings[0].contains("lost"), "{warnings:?}");
    }
}
