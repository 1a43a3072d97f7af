//! The hardware key: which machines' numbers may be compared with each other.

use serde::{Deserialize, Serialize};

/// The GPU part of the key (from NVML / the CUDA driver).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuKey {
    pub name: String,
    pub memory_bytes: u64,
    pub driver_major: u32,
    /// CUDA driver API version, e.g. 13000.
    pub cuda_version: u32,
    pub mig: bool,
    pub ecc: bool,
    pub power_limit_w: u32,
}

/// Identifies comparable hardware. Baselines are never compared across keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardwareKey {
    pub cpu_model: String,
    pub cpu_cores: u32,
    /// GPUs in index order; empty on CPU-only hosts.
    pub gpus: Vec<GpuKey>,
}

impl HardwareKey {
    /// The folder name under `baselines/`: readable, filesystem-safe, stable.
    pub fn dirname(&self) -> String {
        let mut s = if let Some(g) = self.gpus.first() {
            format!(
                "{}-{}gib-drv{}-cuda{}{}{}-{}w",
                g.name,
                g.memory_bytes >> 30,
                g.driver_major,
                g.cuda_version / 1000,
                if g.mig { "-mig" } else { "" },
                if g.ecc { "-ecc" } else { "" },
                g.power_limit_w
            )
        } else {
            format!("{}-{}c", self.cpu_model, self.cpu_cores)
        };
        if self.gpus.len() > 1 {
            s = format!("{}x-{s}", self.gpus.len());
        }
        slug(&s)
    }
}

/// Lower-case ASCII letters, digits and single dashes.
pub fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || c == '.' {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_and_gpu_dirnames() {
        let cpu = HardwareKey {
            cpu_model: "AMD EPYC 7B13 64-Core Processor".into(),
            cpu_cores: 2,
            gpus: vec![],
        };
        assert_eq!(cpu.dirname(), "amd-epyc-7b13-64-core-processor-2c");
        let gpu = HardwareKey {
            gpus: vec![GpuKey {
                name: "NVIDIA H100 80GB HBM3".into(),
                memory_bytes: 81559 << 20,
                driver_major: 580,
                cuda_version: 13000,
                mig: false,
                ecc: true,
                power_limit_w: 700,
            }],
            ..cpu
        };
        assert_eq!(gpu.dirname(), "nvidia-h100-80gb-hbm3-79gib-drv580-cuda13-ecc-700w");
    }
}
