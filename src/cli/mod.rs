//! The `neon-perf` command line: parse, hand off, map errors to exit codes.

mod calibrate;
mod combine;
mod commands;
mod init;
mod progress;
mod serve;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::plan::Settings;
use crate::units::HumanDuration;
use crate::workload::WorkloadArgs;

/// Exit codes (also in the README).
pub mod exit {
    /// Everything passed.
    pub const OK: i32 = 0;
    /// A regression or a failed scenario.
    pub const REGRESSION: i32 = 1;
    /// Bad input or setup: a malformed suite, a corrupt baseline, a debug-build
    /// bless, a report file that cannot be written.
    pub const BAD_INPUT: i32 = 2;
    /// Only inconclusive or invalid verdicts (with --fail-on-inconclusive).
    pub const INCONCLUSIVE: i32 = 3;
    /// A bless that recorded nothing for a scenario that ran (each named, with why).
    pub const NOT_RECORDED: i32 = crate::outcome::EXIT_NOT_RECORDED;
    /// A scenario stayed invalid after its retries: not measured.
    pub const NOT_MEASURED: i32 = crate::outcome::EXIT_NOT_MEASURED;
}

#[derive(Debug, Parser)]
#[command(
    name = "neon-perf",
    version,
    about = "Performance test harness and regression gate for GPU CI runners",
    long_about = "Runs the scenarios in suites/*.toml, compares each metric with the baselines \
                  in baselines/<hardware-key>/, and passes or fails the performance checklist.\n\n\
                  Exit codes: 0 pass, 1 regression or failure, 2 bad input or setup, \
                  3 inconclusive/invalid only (with --fail-on-inconclusive), \
                  4 a bless that recorded nothing for a scenario that ran, \
                  5 not measured (a scenario stayed invalid after its retries), \
                  130/143 cancelled by SIGINT/SIGTERM (programs ended, reports of what finished written)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run scenarios, compare with baselines, print verdicts and the checklist.
    Run(RunArgs),
    /// Run scenarios and record their results as this hardware's baselines.
    Bless(BlessArgs),
    /// List scenarios: kind, what they need, whether a baseline exists.
    List(ListArgs),
    /// Validate suite files without running anything (exit 2 on any error).
    Check(PathArgs),
    /// Set up a repository: a starter suite, baselines/README.md and a
    /// pull-request workflow using the neon-perf GitHub Action (never overwrites).
    Init(init::InitArgs),
    /// Show what was found on this host: CPU, GPUs, CUDA, NVRTC, NVML, hardware key.
    Doctor(DoctorArgs),
    /// Run scenarios N times unchanged: each metric's run-to-run noise on this
    /// runner and the smallest tolerance that keeps false alarms under 1%.
    Calibrate(CalibrateArgs),
    /// Run the reference WebSocket inference server until SIGINT/SIGTERM.
    Serve(serve::ServeArgs),
    /// Merge the JSON results of shards (`run --partition k/n --json`) into one verdict and report.
    Merge(combine::MergeArgs),
    /// Judge NEW.json against OLD.json with the gate's rules (A/B of two runs on one runner).
    Compare(combine::CompareArgs),
    /// Print the folder that holds the built-in Python helper `neon_perf`
    /// (written there first), to run a scenario's script by hand:
    /// `PYTHONPATH=$(neon-perf python-path) python3 infer.py`.
    PythonPath,
    /// A small built-in CPU workload used by the example suite.
    #[command(hide = true)]
    Workload(WorkloadArgs),
    /// Child process of a host `oom_stress` scenario: allocates under a limit.
    #[command(hide = true)]
    OomChild(crate::exec::oom::host::OomChildArgs),
}

#[derive(Debug, Clone, Args)]
pub struct PathArgs {
    /// Suite files or folders of suite files.
    #[arg(default_value = "suites")]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct SelectArgs {
    /// Suite files or folders of suite files.
    #[arg(default_value = "suites")]
    pub paths: Vec<PathBuf>,
    /// Only scenarios whose `suite::name` contains this text (repeatable).
    #[arg(long, short = 'f')]
    pub filter: Vec<String>,
    /// Filters must match the whole `suite::name`.
    #[arg(long)]
    pub exact: bool,
    /// Baselines folder.
    #[arg(long, default_value = "baselines", env = "NEON_PERF_BASELINES")]
    pub baselines: PathBuf,
    /// Only this shard's scenarios: `k/n` or `hash:k/n` (stable hash of the
    /// name), `count:k/n` (round-robin by name). For CI matrices; see docs/ci.md.
    #[arg(long, env = "NEON_PERF_PARTITION")]
    pub partition: Option<crate::plan::Partition>,
}

/// Command-line overrides of the suites' settings, range-checked by the
/// parsers below with the ranges suite files are checked with.
#[derive(Debug, Clone, Args)]
pub struct SamplingArgs {
    /// Sampling budget per measured point (overrides suites), e.g. "10s".
    #[arg(long, value_parser = flag::max_time)]
    pub max_time: Option<HumanDuration>,
    /// Warm-up time (overrides suites), e.g. "500ms".
    #[arg(long)]
    pub warmup: Option<HumanDuration>,
    /// Fewest samples per point (overrides suites), at least 1.
    #[arg(long, value_parser = flag::min_samples)]
    pub min_samples: Option<u32>,
    /// Relative change that counts as a regression (overrides suites), in (0, 1), e.g. 0.05.
    #[arg(long, value_parser = flag::tolerance, allow_negative_numbers = true)]
    pub tolerance: Option<f64>,
    /// Stop sampling once the 95% CI is within ± this fraction (overrides
    /// suites), in (0, 0.5].
    #[arg(long, value_parser = flag::target_rel_ci, allow_negative_numbers = true)]
    pub target_rel_ci: Option<f64>,
    /// Share of the CPU cores other processes may use while a CPU scenario
    /// measures before the run is invalid (overrides suites), in (0, 1]; 1 = never.
    #[arg(long, value_parser = flag::max_contention, allow_negative_numbers = true)]
    pub max_contention: Option<f64>,
    /// Run a scenario once more under a profiler (overrides suites):
    /// `on-regression` (what `--profile` alone means), `always` or `off`.
    /// Profiles go to the reports folder; see docs/profiling.md.
    #[arg(long, env = "NEON_PERF_PROFILE", value_name = "WHEN", num_args = 0..=1, default_missing_value = "on-regression", value_parser = flag::profile)]
    pub profile: Option<crate::plan::ProfileWhen>,
}

/// Parsers of the override flags: the value's type, then its key's range
/// ([`crate::config::limits`]). A value out of range is a usage error
/// (exit 2) that names the flag.
mod flag {
    use crate::config::limits::{self, Limit};
    use crate::units::HumanDuration;

    fn number(s: &str) -> Result<f64, String> {
        s.trim()
            .parse::<f64>()
            .map_err(|_| format!("expected a number, found `{s}`"))
    }

    fn limited<T>(r: Result<T, Limit>) -> Result<T, String> {
        r.map_err(|l| l.for_flag())
    }

    pub fn tolerance(s: &str) -> Result<f64, String> {
        limited(limits::tolerance(number(s)?))
    }

    pub fn target_rel_ci(s: &str) -> Result<f64, String> {
        limited(limits::target_rel_ci(number(s)?))
    }

    pub fn profile(s: &str) -> Result<crate::plan::ProfileWhen, String> {
        crate::plan::ProfileWhen::from_id(s.trim())
            .ok_or_else(|| format!("expected `on-regression`, `always` or `off`, found `{s}`"))
    }

    pub fn max_contention(s: &str) -> Result<f64, String> {
        limited(limits::max_contention(number(s)?))
    }

    pub fn min_samples(s: &str) -> Result<u32, String> {
        let n = s
            .trim()
            .parse::<u32>()
            .map_err(|_| format!("expected a whole number, found `{s}`"))?;
        limited(limits::samples(n))
    }

    pub fn max_time(s: &str) -> Result<HumanDuration, String> {
        let d: HumanDuration = s.parse()?;
        limited(limits::positive_duration(d.0)).map(HumanDuration)
    }
}

impl SamplingArgs {
    pub fn settings(&self) -> Settings {
        Settings {
            max_time: self.max_time,
            warmup: self.warmup,
            min_samples: self.min_samples,
            tolerance: self.tolerance,
            target_rel_ci: self.target_rel_ci,
            max_contention: self.max_contention,
            profile: self.profile,
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// Write JSON results here (schema: docs/json-schema.md).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write JUnit XML here.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Write the Markdown summary here (also appended to $GITHUB_STEP_SUMMARY when set).
    #[arg(long)]
    pub markdown: Option<PathBuf>,
    /// Write the HTML report here: one self-contained page with SVG plots (docs/report.md).
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Write Bencher Metric Format JSON here (for `bencher run --adapter json`).
    #[arg(long)]
    pub bmf: Option<PathBuf>,
    /// Write github-action-benchmark JSON: FILE.json becomes FILE.smaller.json
    /// (customSmallerIsBetter) and FILE.bigger.json (customBiggerIsBetter).
    #[arg(long, value_name = "FILE")]
    pub github_benchmark: Option<PathBuf>,
    /// Print GitHub annotations (`::error file=…,line=…::`) for regressions:
    /// `auto` does when GITHUB_ACTIONS=true.
    #[arg(
        long,
        value_enum,
        default_value = "auto",
        env = "NEON_PERF_ANNOTATIONS"
    )]
    pub annotations: Annotations,
    /// No colours.
    #[arg(long, env = "NO_COLOR", value_parser = clap::builder::FalseyValueParser::new())]
    pub no_color: bool,
}

/// Where `run` and `bless` write the HTML and JSON reports that no flag
/// placed; `NEON_PERF_REPORTS_DIR` moves it.
pub const DEFAULT_REPORTS_DIR: &str = "target/neon-perf";

impl OutputArgs {
    /// These flags, with `report.html` and `results.json` under `dir` for
    /// the two that were not given.
    pub fn with_default_reports(&self, dir: &std::path::Path) -> OutputArgs {
        OutputArgs {
            json: self.json.clone().or_else(|| Some(dir.join("results.json"))),
            html: self.html.clone().or_else(|| Some(dir.join("report.html"))),
            ..self.clone()
        }
    }

    /// The report files these flags ask for.
    pub fn files(&self) -> crate::report::files::ReportFiles {
        crate::report::files::ReportFiles {
            json: self.json.clone(),
            junit: self.junit.clone(),
            markdown: self.markdown.clone(),
            html: self.html.clone(),
            bmf: self.bmf.clone(),
            github_benchmark: self.github_benchmark.clone(),
            annotations: self.annotations.github(),
            step_summary: true,
        }
    }
}

/// Where regressions are annotated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Annotations {
    /// GitHub workflow commands when `GITHUB_ACTIONS=true`, else none.
    Auto,
    Github,
    None,
}

impl Annotations {
    pub fn github(self) -> bool {
        match self {
            Annotations::Auto => std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true"),
            Annotations::Github => true,
            Annotations::None => false,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Prove every scenario runs and reports on a small budget; speed is not gated.
    #[arg(long)]
    pub smoke: bool,
    /// Exit 3 when the only problems are inconclusive or invalid verdicts.
    #[arg(long)]
    pub fail_on_inconclusive: bool,
    /// Claim a regression from one run (by default a scenario that regressed
    /// runs again, and only what both runs show counts; with --against, more
    /// pairs run when the first pairs' evidence was not clean).
    #[arg(long)]
    pub no_confirm: bool,
    /// Paired A/B: run each scenario's variant from this base tree (e.g. a
    /// git worktree of the merge base) alternately with this tree's, and
    /// gate on the paired differences instead of the stored baselines.
    #[arg(long, value_name = "DIR")]
    pub against: Option<PathBuf>,
    /// Base/head pairs per scenario with --against.
    #[arg(long, value_name = "N", default_value_t = crate::run::paired::DEFAULT_PAIRS as u16,
          value_parser = clap::value_parser!(u16).range(2..=50))]
    pub pairs: u16,
}

#[derive(Debug, Clone, Args)]
pub struct BlessArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Why the baselines change; recorded in the baseline file.
    #[arg(long, default_value = "re-recorded")]
    pub reason: String,
    /// Start the baselines afresh instead of adding this run to the recorded runs.
    #[arg(long)]
    pub replace: bool,
    /// Runs to record per scenario, started 1 s apart so that one slow
    /// spell of a shared machine cannot make them all slow; each goes
    /// through the bless guard (refused when slower than the recorded runs,
    /// replacing them when faster beyond the limit).
    #[arg(long, default_value_t = crate::run::spread::DEFAULT_BLESS_RUNS, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub runs: u32,
}

#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct CalibrateArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Runs per scenario.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(3..=200))]
    pub runs: u16,
    /// Write the recommended tolerances into the suite files (review the diff).
    #[arg(long)]
    pub write: bool,
    /// Also write the calibration as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Also write the noise table as Markdown.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Parses the command line, runs it, returns the exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(a) => commands::run(a),
        Command::Bless(a) => commands::bless(a),
        Command::List(a) => commands::list(a),
        Command::Check(a) => commands::check(a),
        Command::Doctor(a) => commands::doctor(a),
        Command::PythonPath => commands::python_path(),
        Command::Init(a) => init::init(a),
        Command::Calibrate(a) => calibrate::calibrate(a),
        Command::Serve(a) => serve::serve(a),
        Command::Merge(a) => combine::merge(a),
        Command::Compare(a) => combine::compare(a),
        Command::OomChild(a) => crate::exec::oom::child_main(&a),
        Command::Workload(a) => {
            let stdout = std::io::stdout();
            match crate::workload::run(&a, &mut stdout.lock()) {
                Ok(()) => exit::OK,
                Err(e) => {
                    eprintln!("error: {e}");
                    exit::BAD_INPUT
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Cli, Command};

    fn run_args(extra: &[&str]) -> Result<Cli, clap::Error> {
        let mut argv = vec!["neon-perf", "run"];
        argv.extend_from_slice(extra);
        Cli::try_parse_from(argv)
    }

    #[test]
    fn overrides_out_of_range_are_usage_errors_naming_the_flag() {
        let cases = [
            (
                "--tolerance=-1",
                "'--tolerance <TOLERANCE>': must be between 0 and 1",
            ),
            (
                "--tolerance=5",
                "'--tolerance <TOLERANCE>': must be between 0 and 1",
            ),
            ("--tolerance=0", "must be between 0 and 1"),
            ("--tolerance=NaN", "must be between 0 and 1"),
            ("--tolerance=5%", "expected a number, found `5%`"),
            (
                "--min-samples=0",
                "'--min-samples <MIN_SAMPLES>': must be at least 1",
            ),
            (
                "--max-time=0s",
                "'--max-time <MAX_TIME>': must be greater than zero",
            ),
            (
                "--max-contention=0",
                "'--max-contention <MAX_CONTENTION>': must be in (0, 1]",
            ),
            ("--max-contention=1.5", "must be in (0, 1]"),
            (
                "--target-rel-ci=0",
                "'--target-rel-ci <TARGET_REL_CI>': must be in (0, 0.5]",
            ),
            ("--target-rel-ci=7", "must be in (0, 0.5]"),
        ];
        for (arg, want) in cases {
            let e = run_args(&[arg]).expect_err(arg);
            assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation, "{arg}");
            assert_eq!(e.exit_code(), 2, "{arg}");
            let msg = e.to_string();
            assert!(msg.contains(want), "{arg}: {msg}");
        }
        // With a space, a negative value is still read as the flag's value.
        let e = run_args(&["--tolerance", "-1"]).expect_err("negative");
        assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation);
    }

    #[test]
    fn overrides_in_range_are_taken() {
        let cli = run_args(&[
            "--tolerance=0.2",
            "--min-samples=1",
            "--max-time=1ms",
            "--max-contention=1",
            "--target-rel-ci=0.5",
        ])
        .unwrap();
        let Command::Run(a) = cli.command else {
            panic!("run")
        };
        let s = a.sampling.settings();
        assert_eq!(s.tolerance, Some(0.2));
        assert_eq!(s.min_samples, Some(1));
        assert_eq!(s.max_time.map(|d| d.0.as_millis()), Some(1));
        assert_eq!(s.max_contention, Some(1.0));
        assert_eq!(s.target_rel_ci, Some(0.5));
    }
}
