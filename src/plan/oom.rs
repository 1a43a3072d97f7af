//! `kind = "oom_stress"`: allocate until refused, recover, prove memory returns.

use serde::Deserialize;

use crate::units::ByteSize;

/// How the device is filled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OomPattern {
    /// Equal chunks until OOM or the cap.
    #[default]
    Grow,
    /// Grow, free every other chunk, then ask for chunks larger than any hole.
    Fragment,
}

/// Keys of an `oom_stress` scenario besides the common ones.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OomStressSpec {
    /// Fraction of device memory to stop at when no OOM comes first (default 0.8).
    #[serde(default)]
    pub memory_fraction: Option<f64>,
    /// Allocation size (default "256MiB").
    #[serde(default)]
    pub chunk: Option<ByteSize>,
    /// `"grow"` (default) or `"fragment"`.
    #[serde(default)]
    pub pattern: Option<OomPattern>,
    /// How far free memory may stay below its starting level after recovery
    /// (default "64MiB"; on the host: RSS above its starting level, default "8MiB").
    #[serde(default)]
    pub leak_tolerance: Option<ByteSize>,

    // Host keys (`device = "cpu"`: exec/oom_host.rs, `HostOomSettings`).
    /// How much the child process may allocate beyond its start-up data size
    /// (setrlimit(RLIMIT_DATA)); default "256MiB". Refused above half of the
    /// host's available memory.
    #[serde(default)]
    pub memory_limit: Option<ByteSize>,
    /// Find the largest batch of `model` whose forward pass fits the limit,
    /// by doubling and bisection (on the host: one child process per probe).
    #[serde(default)]
    pub find_max_batch: bool,
    /// The model for `find_max_batch` (the same table as `batch_sweep`'s `model`).
    #[serde(default)]
    pub model: Option<crate::plan::batch_sweep::ModelSpec>,
    /// Upper end of the batch search (default 65536).
    #[serde(default)]
    pub max_batch: Option<u32>,
}

impl OomStressSpec {
    pub const DEFAULT_FRACTION: f64 = 0.8;
    pub const DEFAULT_CHUNK: u64 = 256 << 20;
    pub const DEFAULT_LEAK_TOLERANCE: u64 = 64 << 20;

    pub fn fraction(&self) -> f64 {
        self.memory_fraction.unwrap_or(Self::DEFAULT_FRACTION)
    }
    pub fn chunk_bytes(&self) -> u64 {
        self.chunk.map(|c| c.0).unwrap_or(Self::DEFAULT_CHUNK)
    }
    pub fn leak_tolerance_bytes(&self) -> u64 {
        self.leak_tolerance
            .map(|c| c.0)
            .unwrap_or(Self::DEFAULT_LEAK_TOLERANCE)
    }

    pub fn validate(&self) -> Result<(), String> {
        let f = self.fraction();
        if !(f > 0.0 && f <= 1.0) {
            return Err(format!("`memory_fraction` must be in (0, 1], got {f}"));
        }
        if self.chunk_bytes() < (1 << 20) {
            return Err(format!(
                "`chunk` must be at least 1MiB, got {} bytes",
                self.chunk_bytes()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_defaults_and_sizes() {
        let s: OomStressSpec =
            toml::from_str("memory_fraction = 0.5\nchunk = \"512MiB\"\npattern = \"fragment\"")
                .unwrap();
        assert_eq!(s.fraction(), 0.5);
        assert_eq!(s.chunk_bytes(), 512 << 20);
        assert_eq!(s.pattern, Some(OomPattern::Fragment));
        assert_eq!(s.leak_tolerance_bytes(), 64 << 20);
        s.validate().unwrap();
        let d: OomStressSpec = toml::from_str("").unwrap();
        assert_eq!((d.fraction(), d.chunk_bytes()), (0.8, 256 << 20));
    }

    #[test]
    fn rejects_bad_values() {
        assert!(
            toml::from_str::<OomStressSpec>("pattern = \"shrink\"")
                .unwrap_err()
                .to_string()
                .contains("unknown variant")
        );
        assert!(
            toml::from_str::<OomStressSpec>("fraction = 0.5")
                .unwrap_err()
                .to_string()
                .contains("unknown field")
        );
        let s: OomStressSpec = toml::from_str("memory_fraction = 1.5").unwrap();
        assert!(s.validate().unwrap_err().contains("memory_fraction"));
        let s: OomStressSpec = toml::from_str("chunk = \"4KiB\"").unwrap();
        assert!(s.validate().unwrap_err().contains("at least 1MiB"));
    }
}
