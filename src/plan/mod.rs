//! Scenario plans: the typed, validated form of a suite file that executors
//! consume. `config` builds them from TOML; nothing here does I/O.
//!
//! Kind-specific settings live in one module per kind (`command.rs`,
//! `gpu_kernel.rs`, `oom.rs`, `batch_sweep.rs`, `websocket/`); each is a `serde` struct with
//! `deny_unknown_fields`, so the suite parser reports unknown keys with their
//! location, and implements [`KindRules`]. `kinds.rs` is the registry of
//! kinds.

pub mod batch_sweep;
pub mod command;
pub mod env_ref;
pub mod gpu_kernel;
pub(crate) mod hint;
pub mod kinds;
pub mod oom;
pub mod partition;
pub mod websocket;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::metric::{ChecklistItem, Direction, Estimator};
use crate::units::HumanDuration;

pub use batch_sweep::BatchSweepSpec;
pub use command::CommandSpec;
pub use gpu_kernel::GpuKernelSpec;
pub use kinds::{At, CheckCtx, Kind, KindRules, KindSpec, SpecError};
pub use oom::OomStressSpec;
pub use partition::Partition;
pub use websocket::WebsocketFloodSpec;

/// A parsed suite file.
#[derive(Clone, Debug)]
pub struct Suite {
    pub name: String,
    /// The suite file, as given (relative paths in specs resolve against its folder).
    pub path: PathBuf,
    pub scenarios: Vec<ScenarioPlan>,
}

impl Suite {
    pub fn dir(&self) -> PathBuf {
        self.path
            .parent()
            .map(|p| p.to_path_buf())
            .unwrap_or_else(|| PathBuf::from("."))
    }
}

/// Where a scenario was declared, for messages and CI annotations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SourceLocation {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for SourceLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// `device = "auto" | "cpu" | "cuda" | "cuda:N" | "all"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DeviceSel {
    #[default]
    Auto,
    Cpu,
    Cuda(u32),
    AllGpus,
}

impl DeviceSel {
    pub fn parse(s: &str) -> Result<DeviceSel, String> {
        match s {
            "auto" => Ok(DeviceSel::Auto),
            "cpu" => Ok(DeviceSel::Cpu),
            "cuda" | "gpu" => Ok(DeviceSel::Cuda(0)),
            "all" => Ok(DeviceSel::AllGpus),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(DeviceSel::Cuda)
                .ok_or_else(|| {
                    format!(
                        "invalid device `{other}`: expected \"auto\", \"cpu\", \"cuda\", \"cuda:N\" or \"all\""
                    )
                }),
        }
    }
}

impl fmt::Display for DeviceSel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSel::Auto => f.write_str("auto"),
            DeviceSel::Cpu => f.write_str("cpu"),
            DeviceSel::Cuda(n) => write!(f, "cuda:{n}"),
            DeviceSel::AllGpus => f.write_str("all"),
        }
    }
}

/// Sampling and gating settings. Every field is optional so layers merge:
/// built-in defaults ← `[defaults]` ← scenario ← command line.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Time spent running before measuring.
    pub warmup: Option<HumanDuration>,
    /// Fewest warm-up runs, whatever the time.
    pub warmup_runs: Option<u32>,
    /// Fewest measured samples before stopping may be considered.
    pub min_samples: Option<u32>,
    /// Most measured samples.
    pub max_samples: Option<u32>,
    /// Sampling budget per measured point.
    pub max_time: Option<HumanDuration>,
    /// Stop early once the 95% CI of the primary metric's estimator is within ± this.
    pub target_rel_ci: Option<f64>,
    /// Relative change that counts as a regression.
    pub tolerance: Option<f64>,
    /// Hard limit for one run of the workload (command kind: kills the process tree).
    pub timeout: Option<HumanDuration>,
    /// Interval of the NVML / host monitor.
    pub monitor_interval: Option<HumanDuration>,
    /// Share of the CPU cores other processes may use while a CPU scenario
    /// measures before the run is `invalid` (1 turns the check off).
    pub max_contention: Option<f64>,
    /// Before each retry of an invalid run, the longest wait for other
    /// processes to leave the CPU ("0s": retry at once).
    pub quiet_wait: Option<HumanDuration>,
    /// Bytes of a program's stderr kept while it is drained (the rest is
    /// read and dropped): memory stays bounded whatever it prints.
    pub output_tail: Option<u64>,
    /// When a scenario is run once more under a profiler (issue #22).
    pub profile: Option<ProfileWhen>,
    /// On a GPU runner with Nsight Compute, also profile the scenario's
    /// kernels with `ncu` when it is profiled (slow: kernels are replayed).
    pub profile_kernels: Option<bool>,
}

/// When a scenario is profiled: never (the default; nothing extra runs),
/// after a verdict of `regressed`, or after every run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProfileWhen {
    #[default]
    Off,
    OnRegression,
    Always,
}

impl ProfileWhen {
    pub const ALL: [ProfileWhen; 3] = [
        ProfileWhen::Off,
        ProfileWhen::OnRegression,
        ProfileWhen::Always,
    ];

    /// As written in a suite and on the command line.
    pub fn id(self) -> &'static str {
        match self {
            ProfileWhen::Off => "off",
            ProfileWhen::OnRegression => "on-regression",
            ProfileWhen::Always => "always",
        }
    }

    pub fn from_id(s: &str) -> Option<ProfileWhen> {
        ProfileWhen::ALL.into_iter().find(|w| w.id() == s)
    }
}

impl Settings {
    /// `self` wins where set; `lower` fills the gaps.
    pub fn or(self, lower: &Settings) -> Settings {
        Settings {
            warmup: self.warmup.or(lower.warmup),
            warmup_runs: self.warmup_runs.or(lower.warmup_runs),
            min_samples: self.min_samples.or(lower.min_samples),
            max_samples: self.max_samples.or(lower.max_samples),
            max_time: self.max_time.or(lower.max_time),
            target_rel_ci: self.target_rel_ci.or(lower.target_rel_ci),
            tolerance: self.tolerance.or(lower.tolerance),
            timeout: self.timeout.or(lower.timeout),
            monitor_interval: self.monitor_interval.or(lower.monitor_interval),
            max_contention: self.max_contention.or(lower.max_contention),
            quiet_wait: self.quiet_wait.or(lower.quiet_wait),
            output_tail: self.output_tail.or(lower.output_tail),
            profile: self.profile.or(lower.profile),
            profile_kernels: self.profile_kernels.or(lower.profile_kernels),
        }
    }

    /// Fills every gap with the built-in default.
    pub fn resolve(&self) -> Resolved {
        let d = Resolved::default();
        Resolved {
            warmup: self.warmup.map(|h| h.0).unwrap_or(d.warmup),
            warmup_runs: self.warmup_runs.unwrap_or(d.warmup_runs),
            min_samples: self.min_samples.unwrap_or(d.min_samples).max(1),
            max_samples: self.max_samples.unwrap_or(d.max_samples).max(1),
            max_time: self.max_time.map(|h| h.0).unwrap_or(d.max_time),
            target_rel_ci: self.target_rel_ci.unwrap_or(d.target_rel_ci),
            tolerance: self.tolerance.unwrap_or(d.tolerance),
            timeout: self.timeout.map(|h| h.0).unwrap_or(d.timeout),
            monitor_interval: self
                .monitor_interval
                .map(|h| h.0)
                .unwrap_or(d.monitor_interval),
            max_contention: self.max_contention.unwrap_or(d.max_contention),
            quiet_wait: self.quiet_wait.map(|h| h.0).unwrap_or(d.quiet_wait),
            output_tail: self.output_tail.unwrap_or(d.output_tail),
            profile: self.profile.unwrap_or(d.profile),
            profile_kernels: self.profile_kernels.unwrap_or(d.profile_kernels),
        }
    }
}

/// Settings with every default applied.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Resolved {
    pub warmup: Duration,
    pub warmup_runs: u32,
    pub min_samples: u32,
    pub max_samples: u32,
    pub max_time: Duration,
    pub target_rel_ci: f64,
    pub tolerance: f64,
    pub timeout: Duration,
    pub monitor_interval: Duration,
    pub max_contention: f64,
    pub quiet_wait: Duration,
    pub output_tail: u64,
    pub profile: ProfileWhen,
    pub profile_kernels: bool,
}

impl Default for Resolved {
    fn default() -> Self {
        Resolved {
            warmup: Duration::from_millis(500),
            warmup_runs: 1,
            min_samples: 10,
            max_samples: 10_000,
            max_time: Duration::from_secs(5),
            target_rel_ci: 0.01,
            tolerance: 0.05,
            timeout: Duration::from_secs(60),
            monitor_interval: Duration::from_millis(50),
            max_contention: 0.5,
            quiet_wait: Duration::from_secs(20),
            output_tail: 64 * 1024,
            profile: ProfileWhen::Off,
            profile_kernels: false,
        }
    }
}

/// A bound in the metric's own unit, converted to base units by the parser
/// ("5ms" → 0.005 s, "4GiB" → bytes, "10GB/s" → B/s, a bare number as is).
pub type Bound = f64;

/// Per-metric rules: `metric."latency_p99{batch=1}" = { max = "5ms" }`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricRule {
    pub tolerance: Option<f64>,
    pub max: Option<Bound>,
    pub min: Option<Bound>,
    pub direction: Option<Direction>,
    pub estimator: Option<Estimator>,
    /// `false`: report only, never fail on change (absolute bounds still apply).
    pub gate: Option<bool>,
    /// Check the values one run of the program prints for growth (a leak).
    pub leak: Option<bool>,
    /// Growth per iteration the leak check allows, in the metric's base
    /// unit (default: 0.1% of the run's first value).
    pub leak_tolerance: Option<Bound>,
}

/// One value of a sweep parameter.
#[derive(Clone, Debug, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ParamValue {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Int(v) => write!(f, "{v}"),
            ParamValue::Float(v) => write!(f, "{v}"),
            ParamValue::Bool(v) => write!(f, "{v}"),
            ParamValue::Str(v) => f.write_str(v),
        }
    }
}

impl ParamValue {
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            ParamValue::Int(v) => Some(*v as f64),
            ParamValue::Float(v) => Some(*v),
            _ => None,
        }
    }
}

/// One point of the cartesian product over `params`, in declaration order.
pub type ParamPoint = BTreeMap<String, ParamValue>;

/// Labels a point adds to its metrics: `{n=1048576}`.
pub fn point_labels(point: &ParamPoint) -> BTreeMap<String, String> {
    point
        .iter()
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect()
}

/// One `[[scenario]]`, validated.
#[derive(Clone, Debug)]
pub struct ScenarioPlan {
    pub suite: String,
    pub name: String,
    pub location: SourceLocation,
    /// The suite file's folder; relative paths in the spec resolve against it.
    pub base_dir: PathBuf,
    pub device: DeviceSel,
    pub checklist: Vec<ChecklistItem>,
    pub settings: Settings,
    pub metric_rules: BTreeMap<String, MetricRule>,
    /// Cartesian product of `params`; one empty point when there are none.
    pub points: Vec<ParamPoint>,
    pub spec: KindSpec,
    /// The `{env:NAME}` it reads when it runs, located (`env_ref`).
    pub env: Vec<env_ref::EnvNeed>,
}

impl ScenarioPlan {
    /// `suite::scenario`, the test name in `cargo test` and reports.
    pub fn full_name(&self) -> String {
        format!("{}::{}", self.suite, self.name)
    }

    pub fn kind(&self) -> Kind {
        self.spec.kind()
    }

    /// The `{env:NAME}` it reads that are unset now.
    pub fn unset_env(&self) -> Vec<&env_ref::EnvNeed> {
        self.env.iter().filter(|e| !e.is_set()).collect()
    }

    /// The rule for a metric: an exact `name{labels}` match first, then the bare name.
    pub fn rule_for(&self, key: &crate::metric::MetricKey) -> Option<&MetricRule> {
        self.metric_rules
            .get(&key.to_string())
            .or_else(|| self.metric_rules.get(&key.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_layer_with_or() {
        let defaults = Settings {
            warmup: Some(HumanDuration(Duration::from_secs(1))),
            tolerance: Some(0.05),
            ..Default::default()
        };
        let scenario = Settings {
            tolerance: Some(0.03),
            ..Default::default()
        };
        let merged = scenario.or(&defaults);
        assert_eq!(merged.tolerance, Some(0.03));
        assert_eq!(merged.warmup, Some(HumanDuration(Duration::from_secs(1))));
        let r = merged.resolve();
        assert_eq!(r.tolerance, 0.03);
        assert_eq!(r.max_time, Resolved::default().max_time);
    }

    #[test]
    fn device_parse() {
        assert_eq!(DeviceSel::parse("cuda:1"), Ok(DeviceSel::Cuda(1)));
        assert_eq!(DeviceSel::parse("cuda"), Ok(DeviceSel::Cuda(0)));
        assert!(DeviceSel::parse("tpu").is_err());
    }
}
