//! `kind = "oom_stress"`: allocate until refused, recover, prove memory returns.

use serde::Deserialize;

use crate::plan::DeviceSel;
use crate::plan::kinds::{At, CheckCtx, KindRules, SpecError};
use crate::units::ByteSize;

impl KindRules for OomStressSpec {
    /// An out-of-memory probe's samples are few.
    const BLESS_CAN_TELL: bool = false;
    const FRESH_PROCESSES: bool = false;
    const LEAK_RULES: bool = false;

    fn check(&self, ctx: &CheckCtx<'_>) -> Result<(), SpecError> {
        self.validate()
            .map_err(|m| SpecError::new(At::Scenario, m))?;
        self.check_device(ctx.device).map_err(SpecError::from)
    }
}

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

    // Host keys (`device = "cpu"`: exec/oom/host.rs, `HostOomSettings`) and
    // `find_max_batch` on CUDA (exec/oom/cuda.rs).
    /// Host: how much the child process may allocate beyond its start-up data
    /// size (setrlimit(RLIMIT_DATA)); default "256MiB", refused above half of
    /// the host's available memory. CUDA (`find_max_batch` only): the device
    /// memory each probe may use; the rest is taken by a filler allocation.
    #[serde(default)]
    pub memory_limit: Option<ByteSize>,
    /// Find the largest batch of `model` whose forward pass fits the limit,
    /// by doubling and bisection, one child process per probe (host: under
    /// RLIMIT_DATA; CUDA: under `memory_limit` or `memory_fraction` of the
    /// device memory, the rest taken by a filler allocation).
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

    /// The combinations serde cannot reject, as (offending key, message), so
    /// the config reader can point at the key. `device` decides which keys
    /// apply: the host stress, or on CUDA the fill stress or the batch search.
    pub fn check_device(&self, device: DeviceSel) -> Result<(), (&'static str, String)> {
        if self.find_max_batch && self.model.is_none() {
            return Err((
                "find_max_batch",
                "`find_max_batch = true` needs a `model = { .. }` to probe".into(),
            ));
        }
        if !self.find_max_batch {
            for (key, set) in [
                ("model", self.model.is_some()),
                ("max_batch", self.max_batch.is_some()),
            ] {
                if set {
                    return Err((
                        key,
                        format!("`{key}` is only used with `find_max_batch = true`"),
                    ));
                }
            }
        }
        if self.max_batch == Some(0) {
            return Err(("max_batch", "`max_batch` must be at least 1".into()));
        }
        if device == DeviceSel::Cpu {
            return Ok(());
        }
        if !self.find_max_batch {
            if self.memory_limit.is_some() {
                return Err((
                    "memory_limit",
                    "on CUDA `memory_limit` caps the device memory of `find_max_batch` probes; \
                     the fill stress stops at `memory_fraction`"
                        .into(),
                ));
            }
            return Ok(());
        }
        if device == DeviceSel::AllGpus {
            return Err((
                "device",
                "`find_max_batch` probes one GPU: use device = \"cuda\" or \"cuda:N\", not \"all\""
                    .into(),
            ));
        }
        if self.memory_limit.is_some() && self.memory_fraction.is_some() {
            return Err((
                "memory_fraction",
                "give `memory_limit` (bytes) or `memory_fraction` (of free device memory), not both".into(),
            ));
        }
        for (key, set) in [
            ("pattern", self.pattern.is_some()),
            ("chunk", self.chunk.is_some()),
        ] {
            if set {
                return Err((
                    key,
                    format!(
                        "`{key}` belongs to the fill stress; on CUDA a `find_max_batch` scenario runs only \
                         the batch search (put the fill stress in a scenario of its own)"
                    ),
                ));
            }
        }
        if self.memory_limit.is_some_and(|b| b.0 < (16 << 20)) {
            return Err((
                "memory_limit",
                "`memory_limit` on CUDA must be at least 16MiB".into(),
            ));
        }
        Ok(())
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
    fn find_max_batch_combinations() {
        let spec = |t: &str| toml::from_str::<OomStressSpec>(t).unwrap();
        let model = "find_max_batch = true\nmodel = { arch = \"mlp\", layers = [8, 8] }\n";
        let key = |t: &str, d: DeviceSel| spec(t).check_device(d).err().map(|(k, _)| k);
        for d in [DeviceSel::Cpu, DeviceSel::Cuda(0), DeviceSel::Auto] {
            assert_eq!(key(model, d), None, "{d}");
            assert_eq!(key("find_max_batch = true", d), Some("find_max_batch"));
            assert_eq!(key("max_batch = 8", d), Some("max_batch"));
            assert_eq!(key(&format!("{model}max_batch = 0"), d), Some("max_batch"));
        }
        let cuda = DeviceSel::Cuda(0);
        assert_eq!(key("memory_limit = \"1GiB\"", cuda), Some("memory_limit"));
        assert_eq!(key("memory_limit = \"1GiB\"", DeviceSel::Cpu), None);
        assert_eq!(key(&format!("{model}memory_limit = \"1GiB\""), cuda), None);
        assert_eq!(
            key(&format!("{model}memory_limit = \"1MiB\""), cuda),
            Some("memory_limit")
        );
        assert_eq!(
            key(
                &format!("{model}memory_limit = \"1GiB\"\nmemory_fraction = 0.5"),
                cuda
            ),
            Some("memory_fraction")
        );
        assert_eq!(
            key(&format!("{model}pattern = \"grow\""), cuda),
            Some("pattern")
        );
        assert_eq!(
            key(&format!("{model}chunk = \"8MiB\""), cuda),
            Some("chunk")
        );
        assert_eq!(
            key(&format!("{model}chunk = \"8MiB\""), DeviceSel::Cpu),
            None
        );
        assert_eq!(key(model, DeviceSel::AllGpus), Some("device"));
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
