//! `kind = "oom_stress"`: allocate until refused, recover, prove memory returns.

use serde::Deserialize;

/// Keys of an `oom_stress` scenario besides the common ones.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OomStressSpec {
    /// Fraction of device memory to stop at when no OOM comes first (default 0.8).
    #[serde(default)]
    pub memory_fraction: Option<f64>,
}
