//! `oom_stress`: allocate until refused, recover, prove memory returns.

use crate::exec::{Availability, ExecError, ExecOutput, Executor, RunCtx};
use crate::plan::{Kind, ScenarioPlan};

pub struct OomStressExecutor;

impl Executor for OomStressExecutor {
    fn kind(&self) -> Kind {
        Kind::OomStress
    }

    fn availability(&self, _plan: &ScenarioPlan) -> Availability {
        Availability::Missing("oom_stress executor not built yet".into())
    }

    fn run(&self, _plan: &ScenarioPlan, _ctx: &mut RunCtx<'_>) -> Result<ExecOutput, ExecError> {
        Err(ExecError::Unavailable("oom_stress executor not built yet".into()))
    }
}
