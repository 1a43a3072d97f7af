//! `kind = "oom_stress"`: allocate until refused, recover, prove memory returns.

use serde::{Deserialize, Serialize};

use crate::plan::batch_sweep::ModelSpec;
use crate::units::ByteSize;

/// Keys of an `oom_stress` scenario besides the common ones.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OomStressSpec {
    /// Fraction of device memory to stop at when no OOM comes first (default 0.8).
    #[serde(default)]
    pub memory_fraction: Option<f64>,

    // Host keys (`device = "cpu"`, see exec/oom_host.rs and HostOomSettings).
    /// How much the child process may allocate beyond its start-up footprint
    /// (set with setrlimit(RLIMIT_DATA)); default 256MiB. Refused when above
    /// half of the memory available on the host.
    #[serde(default)]
    pub memory_limit: Option<ByteSize>,
    /// `grow` (equal chunks) or `fragment` (mixed sizes, every other one freed,
    /// then larger ones asked for); default grow.
    #[serde(default)]
    pub pattern: Option<AllocPattern>,
    /// Size of each allocation (`grow`) or the largest one (`fragment`); default 8MiB.
    #[serde(default)]
    pub chunk: Option<ByteSize>,
    /// Resident memory after freeing may exceed the level before allocating
    /// by at most this much; default 8MiB.
    #[serde(default)]
    pub leak_tolerance: Option<ByteSize>,

    // Host and CUDA.
    /// Find the largest batch of `model` whose forward pass fits the limit,
    /// by bisection (on the host: one child process per probe).
    #[serde(default)]
    pub find_max_batch: bool,
    /// The model for `find_max_batch` (same table as `batch_sweep`'s `model`).
    #[serde(default)]
    pub model: Option<ModelSpec>,
    /// Upper end of the batch search (default 65536).
    #[serde(default)]
    pub max_batch: Option<u32>,
}

/// How the host child allocates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum AllocPattern {
    #[default]
    Grow,
    Fragment,
}
