//! `kind = "gpu_kernel"`: a CUDA kernel compiled with NVRTC, or a built-in one.

use serde::Deserialize;

/// Keys of a `gpu_kernel` scenario besides the common ones.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuKernelSpec {
    /// A `.cu` file relative to the suite file.
    #[serde(default)]
    pub source: Option<String>,
    /// Kernel function name.
    #[serde(default)]
    pub entry: Option<String>,
}
