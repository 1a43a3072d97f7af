//! Executors: one module per scenario kind, behind one trait; each kind's
//! spec names its executor ([`Executes`]). An executor
//! measures and returns samples; it never prints and never touches baselines.
//! Progress goes out as [`ExecEvent`]s through the context.

pub mod batch_sweep;
pub mod command;
pub mod gpu_bound;
pub mod gpu_kernel;
pub mod gpus;
pub mod oom;
pub mod sampler;
pub mod search;
pub mod sweep;
pub mod websocket;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::metric::MetricSeries;
use crate::plan::{Kind, KindRules, Resolved, ScenarioPlan};
use crate::result::Check;

/// Whether this host can run a scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Availability {
    Ready,
    /// Shown to users as the reason the scenario is ignored.
    Missing(String),
}

/// Facts about where we run that executors need.
#[derive(Clone, Debug)]
pub struct ExecEnv {
    /// The neon-perf binary, substituted for `{neon_perf}` in commands.
    pub neon_perf_bin: PathBuf,
    /// Cache folder for compiled artefacts (PTX), normally `target/neon-perf`.
    pub cache_dir: PathBuf,
}

/// Progress an executor reports while it runs.
#[derive(Clone, Debug)]
pub enum ExecEvent {
    /// Starting sweep point `index` of `total`, e.g. "n=1048576".
    Point {
        index: usize,
        total: usize,
        label: String,
    },
    /// A measured sample was taken.
    Sample { count: usize },
    /// Work after the measurement, e.g. "profiling head, run 2".
    Phase { label: String },
}

/// What one run of an executor has at hand.
pub struct RunCtx<'a> {
    pub env: &'a ExecEnv,
    /// The scenario's settings, all layers merged.
    pub settings: Resolved,
    events: &'a mut dyn FnMut(ExecEvent),
    /// Child processes started, shared with the monitor so it can attribute
    /// their GPU memory while they run.
    pub child_pids: Arc<Mutex<Vec<u32>>>,
}

impl<'a> RunCtx<'a> {
    pub fn new(
        env: &'a ExecEnv,
        settings: Resolved,
        events: &'a mut dyn FnMut(ExecEvent),
        child_pids: Arc<Mutex<Vec<u32>>>,
    ) -> Self {
        Self {
            env,
            settings,
            events,
            child_pids,
        }
    }

    pub fn event(&mut self, e: ExecEvent) {
        (self.events)(e)
    }
}

/// What an executor hands back when it ran.
#[derive(Clone, Debug, Default)]
pub struct ExecOutput {
    pub metrics: Vec<MetricSeries>,
    pub checks: Vec<Check>,
    /// What it ran on, e.g. "cpu" or "cuda:0 NVIDIA H100 80GB HBM3".
    pub device: String,
    pub warnings: Vec<String>,
    /// Reasons the measurement cannot be trusted.
    pub invalid_reasons: Vec<String>,
}

/// Why an executor did not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The workload itself failed (non-zero exit, wrong output, CUDA error).
    #[error("{0}")]
    Failed(String),
    /// The workload ran past its `timeout` and was killed: a failure too,
    /// told apart so a search can stop on a hang.
    #[error("{0}")]
    TimedOut(String),
    /// The scenario cannot run here after all (discovered while starting).
    #[error("{0}")]
    Unavailable(String),
    /// A SIGINT or SIGTERM asked the run to stop; its programs were ended.
    #[error("{0}")]
    Cancelled(String),
}

/// How one scenario kind runs.
pub trait Executor: Sync {
    /// Cheap check of the hardware and libraries the scenario needs.
    fn availability(&self, plan: &ScenarioPlan) -> Availability;
    /// Runs every sweep point of the scenario and measures it.
    fn run(&self, plan: &ScenarioPlan, ctx: &mut RunCtx<'_>) -> Result<ExecOutput, ExecError>;
}

/// The executor of a kind, implemented by its spec type in the kind's
/// module here; [`executor_for`] is derived from the kind registry
/// (`plan::kinds`), so a kind without one does not compile.
pub trait Executes: KindRules {
    const EXECUTOR: &'static dyn Executor;
}

macro_rules! executors {
    ($($variant:ident $id:literal $spec:ty,)+) => {
        /// The executor for a kind.
        pub fn executor_for(kind: Kind) -> &'static dyn Executor {
            match kind {
                $(Kind::$variant => <$spec as Executes>::EXECUTOR,)+
            }
        }
    };
}
crate::plan::kinds::registry!(executors);
