//! What a scenario run produced: metrics with every sample, pass/fail checks
//! with evidence, and the monitor's summary. Executors build these; compare
//! and the reporters read them. Serialized as part of the JSON results.

use serde::{Deserialize, Serialize};

use crate::metric::{ChecklistItem, MetricSeries};
use crate::plan::{Kind, SourceLocation};

/// How a scenario ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum Outcome {
    Ran,
    /// The hardware or software it needs is absent (e.g. "no CUDA driver found").
    Ignored {
        reason: String,
    },
    /// The workload failed: a non-zero exit, a CUDA error, a wrong result.
    Failed {
        error: String,
    },
}

/// A pass/fail fact with its evidence, e.g. "outputs match reference".
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub evidence: String,
    /// The checklist item this check is evidence for, if any.
    pub item: Option<ChecklistItem>,
}

impl Check {
    pub fn new(
        name: impl Into<String>,
        passed: bool,
        evidence: impl Into<String>,
        item: Option<ChecklistItem>,
    ) -> Self {
        Self {
            name: name.into(),
            passed,
            evidence: evidence.into(),
            item,
        }
    }
}

/// Host samples taken during the scenario window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HostSummary {
    pub samples: usize,
    /// Peak resident set of this process, bytes.
    pub peak_rss_bytes: u64,
    /// Mean CPU use of the whole host over the window, percent of all cores.
    pub cpu_percent_mean: f64,
    /// Cores' worth of CPU that other processes used during the window
    /// (host busy time minus this process and its waited-for children).
    #[serde(default)]
    pub other_cpu_cores: Option<f64>,
}

/// One NVML reading.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuSample {
    /// Seconds since the window started.
    pub t: f64,
    pub sm_util: f64,
    pub mem_util: f64,
    pub mem_used_bytes: u64,
    pub power_w: f64,
    pub temp_c: f64,
    pub sm_clock_mhz: f64,
    pub mem_clock_mhz: f64,
    /// NVML throttle-reason bitmask (clocks event reasons).
    pub throttle_reasons: u64,
}

/// NVML samples of one GPU over the scenario window, summarised.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuSummary {
    pub index: u32,
    pub name: String,
    pub samples: usize,
    pub sm_util_mean: f64,
    pub sm_util_max: f64,
    pub mem_util_mean: f64,
    pub mem_used_peak_bytes: u64,
    /// Memory used by this process (and its children) on the device, bytes, peak.
    pub process_mem_peak_bytes: u64,
    pub mem_total_bytes: u64,
    pub power_mean_w: f64,
    pub power_max_w: f64,
    pub temp_max_c: f64,
    pub sm_clock_max_mhz: f64,
    /// Lowest SM clock seen while the GPU was busy, over the device's maximum.
    pub sm_clock_min_ratio: f64,
    /// Names of the throttle reasons seen while measuring (thermal, power, ...).
    pub throttle_reasons: Vec<String>,
    /// Other processes seen on the GPU (pid, name).
    pub other_processes: Vec<String>,
    /// Processes NVML listed holding GPU memory whose PIDs do not exist in
    /// this PID namespace (a container's: the driver reports host PIDs),
    /// the most in one sample. With none of ours matched, this process's
    /// figure is not 0 B but unknown.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub foreign_pid_processes: usize,
    /// Processes of ours NVML listed without a figure for their memory
    /// (NVML_VALUE_NOT_AVAILABLE), the most in one sample: this process's
    /// figure is then unknown, not 0 B.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub withheld_processes: usize,
    /// The raw readings, for timelines in the HTML report.
    pub timeline: Vec<GpuSample>,
}

/// Everything the monitors saw during one scenario.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MonitorSummary {
    pub host: HostSummary,
    pub gpus: Vec<GpuSummary>,
    /// Why GPU monitoring is off, when it is ("NVML not found: ...").
    pub gpu_unavailable: Option<String>,
}

/// The result of one scenario on this machine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScenarioResult {
    pub suite: String,
    pub scenario: String,
    pub kind: Kind,
    pub location: SourceLocation,
    /// What it ran on, e.g. "cpu" or "cuda:0 NVIDIA H100 80GB HBM3".
    pub device: String,
    pub outcome: Outcome,
    pub metrics: Vec<MetricSeries>,
    pub checks: Vec<Check>,
    pub monitor: MonitorSummary,
    /// Reasons the measurement cannot be trusted (throttling, low clocks):
    /// metrics get the `invalid` verdict.
    pub invalid_reasons: Vec<String>,
    pub warnings: Vec<String>,
    /// Wall time of the whole scenario, seconds.
    pub wall_time_s: f64,
}

impl ScenarioResult {
    /// Whether the run measured: it ran, or it measured and then failed a
    /// check (a leak, a robustness check), its metrics all there. Such a
    /// run is compared as measured.
    pub fn measured(&self) -> bool {
        match &self.outcome {
            Outcome::Ran => true,
            Outcome::Failed { .. } => {
                !self.metrics.is_empty() && self.checks.iter().any(|c| !c.passed)
            }
            Outcome::Ignored { .. } => false,
        }
    }

    /// A `command` run that holds only `metrics`: nothing monitored, no
    /// checks, at line 1 of `<suite>.toml`. For replaying recorded
    /// estimates and for simulations of the gate (tests/paired_montecarlo.rs).
    pub fn from_metrics(suite: &str, scenario: &str, metrics: Vec<MetricSeries>) -> Self {
        ScenarioResult {
            suite: suite.into(),
            scenario: scenario.into(),
            kind: Kind::Command,
            location: SourceLocation {
                file: format!("{suite}.toml").into(),
                line: 1,
                column: 1,
            },
            device: "cpu".into(),
            outcome: Outcome::Ran,
            metrics,
            checks: vec![],
            monitor: MonitorSummary::default(),
            invalid_reasons: vec![],
            warnings: vec![],
            wall_time_s: 0.0,
        }
    }

    pub fn full_name(&self) -> String {
        format!("{}::{}", self.suite, self.scenario)
    }

    pub fn metric(&self, key: &str) -> Option<&MetricSeries> {
        self.metrics.iter().find(|m| m.key.to_string() == key)
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}
