//! `gpu_kernel`: NVRTC-compiled CUDA kernels timed with CUDA events.

use crate::exec::{Availability, ExecError, ExecOutput, Executor, RunCtx};
use crate::plan::{Kind, ScenarioPlan};

pub struct GpuKernelExecutor;

impl Executor for GpuKernelExecutor {
    fn kind(&self) -> Kind {
        Kind::GpuKernel
    }

    fn availability(&self, _plan: &ScenarioPlan) -> Availability {
        Availability::Missing("gpu_kernel executor not built yet".into())
    }

    fn run(&self, _plan: &ScenarioPlan, _ctx: &mut RunCtx<'_>) -> Result<ExecOutput, ExecError> {
        Err(ExecError::Unavailable("gpu_kernel executor not built yet".into()))
    }
}
