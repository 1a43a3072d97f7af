//! PLACEHOLDER until the cuda branch lands: the agreed API only.

use crate::baseline::GpuKey;

pub fn gpu_keys() -> Result<Vec<GpuKey>, String> {
    Err("device probing not built yet".into())
}

pub fn cuda_unavailable_reason() -> Option<String> {
    Some("device probing not built yet".into())
}

#[derive(Debug, Default, serde::Serialize)]
pub struct DoctorReport {}

impl std::fmt::Display for DoctorReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("device probing not built yet")
    }
}

pub fn probe() -> DoctorReport {
    DoctorReport {}
}
