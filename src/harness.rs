//! libtest-mimic glue: every scenario is a `cargo test` trial
//! (`tests/perf.rs`, `harness = false`), driven through the same
//! [`Session`] as the CLI.
//!
//! - `cargo test --test perf -- <filter>`, `--exact`, `--list` work as usual.
//! - Trials run one at a time: measured scenarios never share the machine.
//! - A scenario whose hardware is absent is ignored, with the reason, unless
//!   a baseline on this hardware expects it: then it fails.
//! - Without a baseline for this hardware a scenario runs as a smoke test.
//! - `NEON_BLESS=1` records baselines (`NEON_BLESS_RUNS` runs per scenario,
//!   default 3; `NEON_BLESS_REPLACE=1`, `NEON_BLESS_REASON`);
//!   `NEON_PERF_SMOKE=1` forces smoke mode.
//! - `NEON_PERF_PARTITION=k/n` runs one shard (libtest owns the argv).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use libtest_mimic::{Arguments, Completion, Failed, Trial};

use crate::compare::Policy;
use crate::exec::{self, Availability, ExecEnv};
use crate::outcome::ScenarioReport;
use crate::plan::{Kind, ScenarioPlan, Settings};
use crate::report::{self, terminal};
use crate::run::{self, Mode, RunConfig, Session};

/// Where the harness finds things; `tests/perf.rs` fills it from cargo's env.
pub struct HarnessOptions {
    pub suites: Vec<PathBuf>,
    pub baselines: PathBuf,
    /// The neon-perf binary (`CARGO_BIN_EXE_neon-perf`).
    pub neon_perf_bin: PathBuf,
    pub cache_dir: PathBuf,
}

/// Set in the environment of what the harness of [`main_in`] starts: the
/// test binary then acts as the `neon-perf` CLI (`{neon_perf}` in a suite,
/// the servers and children neon-perf starts itself).
pub const AS_CLI_ENV: &str = "NEON_PERF_AS_CLI";

/// The perf gate of a crate that depends on neon-perf, as its whole
/// `tests/perf.rs` (with `harness = false`):
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     neon_perf::harness::main_in(env!("CARGO_MANIFEST_DIR"))
/// }
/// ```
///
/// Runs `suites/` against `baselines/` under `manifest_dir`
/// (`NEON_PERF_SUITES`, a path list, and `NEON_PERF_BASELINES` move them),
/// caching under `target/neon-perf/`. A dependency has no `neon-perf`
/// binary, so this test binary serves as one: started with
/// [`AS_CLI_ENV`] set, it runs the CLI instead.
pub fn main_in(manifest_dir: impl AsRef<std::path::Path>) -> ExitCode {
    if std::env::var_os(AS_CLI_ENV).is_some() {
        return ExitCode::from(crate::cli::main().clamp(0, 255) as u8);
    }
    // SAFETY: the first thing the test binary does, before any thread starts.
    unsafe { std::env::set_var(AS_CLI_ENV, "1") };
    let root = manifest_dir.as_ref();
    let suites = std::env::var_os("NEON_PERF_SUITES")
        .map(|s| std::env::split_paths(&s).collect())
        .unwrap_or_else(|| vec![root.join("suites")]);
    main(HarnessOptions {
        suites,
        baselines: std::env::var_os("NEON_PERF_BASELINES")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("baselines")),
        neon_perf_bin: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("neon-perf")),
        cache_dir: root.join("target").join("neon-perf"),
    })
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

fn mode_from_env() -> Mode {
    if env_flag("NEON_BLESS") {
        Mode::Bless {
            reason: std::env::var("NEON_BLESS_REASON")
                .unwrap_or_else(|_| "NEON_BLESS=1 cargo test".to_string()),
            replace: env_flag("NEON_BLESS_REPLACE"),
            runs: std::env::var("NEON_BLESS_RUNS")
                .ok()
                .and_then(|v| v.parse().ok())
                .filter(|n| (1..=20).contains(n))
                .unwrap_or(crate::run::spread::DEFAULT_BLESS_RUNS),
        }
    } else if env_flag("NEON_PERF_SMOKE") {
        Mode::Smoke
    } else {
        Mode::Gate
    }
}

/// Runs the harness and returns the process exit code.
pub fn main(opts: HarnessOptions) -> ExitCode {
    let mut args = Arguments::from_args();
    // Ctrl-C or a cancelled CI job ends the programs the scenarios started
    // (the trial running then fails, naming the signal).
    crate::process::cancel::install();
    // Measured scenarios must not run concurrently with each other.
    args.test_threads = Some(1);

    // Bad suites are failing trials, so `cargo test` names them; so are two
    // suites with one name (they would overwrite each other's baselines).
    let suites = match run::load_suites(&opts.suites) {
        Ok(s) => s,
        Err(errors) => return bad_suites(&args, errors),
    };
    let mut plans: Vec<ScenarioPlan> = suites.into_iter().flat_map(|s| s.scenarios).collect();
    let partition = match partition_from_env() {
        Ok(p) => p,
        Err(code) => return code,
    };
    if let Some(p) = partition {
        let all = plans.len();
        plans = p.filter(plans, |p| p.full_name());
        if !args.list {
            eprintln!("partition {p}: {} of {all} scenario(s)", plans.len());
        }
    }
    let session = match Session::new(run_config(&opts)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if !args.list {
        for w in session.warnings() {
            eprintln!("warning: {w}");
        }
    }
    let session = Arc::new(Mutex::new(session));
    let reports: Arc<Mutex<Vec<ScenarioReport>>> = Arc::default();

    let trials = plans
        .into_iter()
        .map(|plan| trial(plan, session.clone(), reports.clone()))
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    if args.list {
        return conclusion.exit_code();
    }
    let mut session = Arc::try_unwrap(session)
        .ok()
        .expect("trials finished")
        .into_inner()
        .expect("session lock");
    let mut reports = std::mem::take(&mut *reports.lock().expect("reports lock"));
    // Profiles (`profile`, NEON_PERF_PROFILE) once every trial was measured.
    for name in session.pending_profiles() {
        eprintln!("profiling {name}");
    }
    session.profile_pending(&mut reports, &mut |_, _| {});
    if reports.is_empty() {
        return conclusion.exit_code();
    }
    match finish(session, reports, partition) {
        Some(code) => code,
        None => conclusion.exit_code(),
    }
}

/// `NEON_PERF_PARTITION`, when set: `Err` is the exit code of a bad one.
fn partition_from_env() -> Result<Option<crate::plan::Partition>, ExitCode> {
    match std::env::var("NEON_PERF_PARTITION") {
        Ok(v) if !v.is_empty() => match v.parse::<crate::plan::Partition>() {
            Ok(p) => Ok(Some(p)),
            Err(e) => {
                eprintln!("error: NEON_PERF_PARTITION: {e}");
                Err(ExitCode::from(2))
            }
        },
        _ => Ok(None),
    }
}

/// The session's settings under `cargo test`: the gate's defaults, the
/// mode and profiling from the environment.
fn run_config(opts: &HarnessOptions) -> RunConfig {
    RunConfig {
        mode: mode_from_env(),
        overrides: Settings {
            profile: profile_from_env(),
            ..Settings::default()
        },
        baselines_dir: opts.baselines.clone(),
        policy: Policy::default(),
        env: ExecEnv {
            neon_perf_bin: opts.neon_perf_bin.clone(),
            cache_dir: opts.cache_dir.clone(),
        },
        smoke_without_baseline: true,
        fail_on_inconclusive: false,
        confirm_regressions: true,
        spread_gap: crate::run::spread::SPREAD_GAP,
        against: None,
        // The CLI's reports folder: `NEON_PERF_REPORTS_DIR`, else beside
        // the cache (`target/neon-perf`).
        profile_dir: std::env::var_os("NEON_PERF_REPORTS_DIR")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| opts.cache_dir.clone())
            .join("profiles"),
    }
}

/// The run's report: the details and totals printed, the report files
/// written. `Some` overrides the trials' exit code (2 when a report could
/// not be written or the session failed, 4 when nothing was recorded).
fn finish(
    session: Session,
    reports: Vec<ScenarioReport>,
    partition: Option<crate::plan::Partition>,
) -> Option<ExitCode> {
    let mut report = match session.finish(reports) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Some(ExitCode::from(2));
        }
    };
    report.partition = partition.map(|p| p.to_string());
    print!(
        "{}",
        terminal::details(&report, terminal::Style { color: false })
    );
    let failures = report::files::write_all(&report, &env_outputs()).failures;
    for f in &failures {
        eprintln!("error: {f}");
    }
    if !failures.is_empty() {
        let why = format!("{} report(s) could not be written", failures.len());
        print!("{}", terminal::totals(&report, 2, Some(&why)));
        return Some(ExitCode::from(2));
    }
    print!("{}", terminal::totals(&report, report.exit_code, None));
    (report.exit_code == crate::outcome::EXIT_NOT_RECORDED)
        .then(|| ExitCode::from(crate::outcome::EXIT_NOT_RECORDED as u8))
}

/// Each suite-file error as a failing trial named after the file.
fn bad_suites(args: &Arguments, errors: Vec<crate::config::ConfigError>) -> ExitCode {
    let trials = errors
        .into_iter()
        .map(|e| {
            let name = format!("suite-file::{}", e.path.display());
            let msg = e.render(false);
            Trial::test(name, move || Err(Failed::from(msg)))
        })
        .collect();
    libtest_mimic::run(args, trials).exit_code()
}

fn trial(
    plan: ScenarioPlan,
    session: Arc<Mutex<Session>>,
    reports: Arc<Mutex<Vec<ScenarioReport>>>,
) -> Trial {
    let kind = match plan.kind() {
        Kind::GpuKernel => "cuda",
        k => k.id(),
    };
    Trial::ignorable_test(plan.full_name(), move || {
        let mut session = session.lock().map_err(|_| "session poisoned")?;
        // Ignored at once, unless a baseline on this hardware expects it:
        // then the session runs it, and fails it (`Session::run_scenario`).
        if let Availability::Missing(reason) = exec::executor_for(plan.kind()).availability(&plan)
            && !session
                .gates_against_a_baseline(&plan)
                .map_err(|e| Failed::from(e.to_string()))?
        {
            return Ok(Completion::ignored_with(reason));
        }
        let report = session
            .run_scenario(&plan, &mut |_| {})
            .map_err(|e| Failed::from(e.to_string()))?;
        drop(session);
        let line = terminal::scenario_line(&report, terminal::Style { color: false });
        let failed = report.status.is_failure();
        let ignored = match &report.result.outcome {
            crate::result::Outcome::Ignored { reason } => Some(reason.clone()),
            // Still invalid after its retries: not measured, never a pass
            // (the command line exits 5 for it).
            _ if report.status == crate::outcome::Status::Invalid && !report.smoke => Some(
                format!("not measured: {}", report.result.invalid_reasons.join("; ")),
            ),
            _ => None,
        };
        let table = terminal::scenario_table(&report);
        reports.lock().map_err(|_| "reports poisoned")?.push(report);
        if failed {
            return Err(Failed::from(format!("{line}\n{table}")));
        }
        Ok(match ignored {
            Some(reason) => Completion::ignored_with(reason),
            None => Completion::Completed,
        })
    })
    .with_kind(kind)
}

/// `NEON_PERF_PROFILE` (`on-regression`, `always`, `off`), as `run
/// --profile`: an unknown value is said and ignored.
fn profile_from_env() -> Option<crate::plan::ProfileWhen> {
    let v = std::env::var("NEON_PERF_PROFILE")
        .ok()
        .filter(|v| !v.is_empty())?;
    let when = crate::plan::ProfileWhen::from_id(v.trim());
    if when.is_none() {
        eprintln!(
            "warning: NEON_PERF_PROFILE={v} is not `on-regression`, `always` or `off`: not profiling"
        );
    }
    when
}

/// Reports requested through the environment (`NEON_PERF_JSON`, `NEON_PERF_JUNIT`,
/// `NEON_PERF_MARKDOWN`, `NEON_PERF_HTML`, `NEON_PERF_BMF`,
/// `NEON_PERF_GITHUB_BENCHMARK`), the GitHub step summary when set, and
/// GitHub annotations on Actions (`NEON_PERF_ANNOTATIONS=github|none`).
fn env_outputs() -> report::files::ReportFiles {
    let path = |var: &str| {
        std::env::var_os(var)
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
    };
    report::files::ReportFiles {
        json: path("NEON_PERF_JSON"),
        junit: path("NEON_PERF_JUNIT"),
        markdown: path("NEON_PERF_MARKDOWN"),
        html: path("NEON_PERF_HTML"),
        bmf: path("NEON_PERF_BMF"),
        github_benchmark: path("NEON_PERF_GITHUB_BENCHMARK"),
        annotations: match std::env::var("NEON_PERF_ANNOTATIONS").as_deref() {
            Ok("github") => true,
            Ok("none") => false,
            _ => std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true"),
        },
        step_summary: true,
    }
}
