//! Baselines in git: `baselines/<hardware-key>/<suite>.toml`, with
//! provenance and a bounded sample reservoir per metric, written atomically.

pub mod key;

pub use key::{GpuKey, HardwareKey};
pub mod store;
