//! What a scenario's profile adds to its report: where the files are, the
//! functions that changed most (or, with no base, the hottest), and what
//! the profiling cost. Profiles never change a verdict.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::folded::Change;

/// The profile attached to one scenario's report.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProfileReport {
    /// Why it was profiled: `regressed` or `always`.
    pub reason: String,
    /// The sweep point profiled (`batch=8`), empty when the scenario has one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub point: String,
    /// The profiler (`perf`).
    pub profiler: String,
    /// The folder the files are in.
    pub dir: PathBuf,
    /// The head (this tree).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<Side>,
    /// The base tree's program, in paired mode (`--against`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<Side>,
    /// The differential flame graph (head drawn, red where hotter than the
    /// base), when there is a base.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub differential: Option<PathBuf>,
    /// With a base: the functions whose inclusive share changed most,
    /// hotter first. Without: the head's hottest functions by self time
    /// (`base` is 0 in each).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    /// On a GPU runner with `nsys`: the kernels whose total time changed
    /// most from base to head (or the head's longest).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kernels: Vec<super::nsys::Kernel>,
    /// The `.nsys-rep` files (base, head), for Nsight Systems.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nsys_reports: Vec<PathBuf>,
    /// With `profile_kernels = true` and `ncu`: each kernel's achieved % of
    /// peak compute and memory throughput, base beside head.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kernel_figures: Vec<super::ncu::KernelFigures>,
    /// The `ncu` CSV files (base, head).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ncu_reports: Vec<PathBuf>,
    /// Why the GPU profile is missing, on a GPU runner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_error: Option<String>,
    /// Seconds spent profiling (not part of the scenario's wall time).
    pub seconds: f64,
    /// Why the profile is missing or partial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One side's recording.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Side {
    /// Folded stacks (`a;b;c 12`), as inferno and flamegraph.pl read them.
    pub folded: PathBuf,
    /// Its flame graph.
    pub flame_graph: PathBuf,
    pub samples: u64,
    /// Runs of the program recorded.
    pub runs: u32,
}

impl ProfileReport {
    /// Whether `changes` compare a base with the head (else: hottest).
    pub fn is_differential(&self) -> bool {
        self.base.is_some()
    }

    /// The kernel table as lines, when there is one.
    pub fn kernel_lines(&self) -> Vec<String> {
        super::nsys::kernel_lines(&self.kernels, self.nsys_reports.len() > 1)
    }

    /// The kernels' headline figures (ncu) as lines.
    pub fn figure_lines(&self) -> Vec<String> {
        super::ncu::figure_lines(&self.kernel_figures)
    }

    /// The lines people read: top changes, or the hottest functions.
    pub fn lines(&self) -> Vec<String> {
        if self.is_differential() {
            super::change_lines(&self.changes)
        } else {
            super::folded::hot_lines(&self.changes)
        }
    }
}
