//! `command`: the user's own program, run as a child process.

use crate::exec::{Availability, ExecError, ExecOutput, Executor, RunCtx};
use crate::plan::{Kind, ScenarioPlan};

pub struct CommandExecutor;

impl Executor for CommandExecutor {
    fn kind(&self) -> Kind {
        Kind::Command
    }

    fn availability(&self, _plan: &ScenarioPlan) -> Availability {
        Availability::Ready
    }

    fn run(&self, _plan: &ScenarioPlan, _ctx: &mut RunCtx<'_>) -> Result<ExecOutput, ExecError> {
        Err(ExecError::Failed("command executor not built yet".into()))
    }
}
