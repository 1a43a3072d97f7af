//! `oom_stress`: allocate until refused, recover, prove memory returns.
//! MERGE NOTE (models branch): only the `device = "cpu"` dispatch to
//! `oom_host::run_host` is real here; the CUDA part is the cuda branch's.

use crate::exec::{Availability, ExecError, ExecOutput, Executor, RunCtx};
use crate::plan::{DeviceSel, Kind, KindSpec, ScenarioPlan};

pub struct OomStressExecutor;

impl Executor for OomStressExecutor {
    fn kind(&self) -> Kind {
        Kind::OomStress
    }

    fn availability(&self, plan: &ScenarioPlan) -> Availability {
        match plan.device {
            DeviceSel::Cpu => Availability::Ready,
            _ => Availability::Missing("oom_stress on CUDA not built yet".into()),
        }
    }

    fn run(&self, plan: &ScenarioPlan, ctx: &mut RunCtx<'_>) -> Result<ExecOutput, ExecError> {
        match (&plan.spec, plan.device) {
            (KindSpec::OomStress(spec), DeviceSel::Cpu) => {
                super::oom_host::run_host(plan, spec, ctx)
            }
            _ => Err(ExecError::Unavailable(
                "oom_stress on CUDA not built yet".into(),
            )),
        }
    }
}
