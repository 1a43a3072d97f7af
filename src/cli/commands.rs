//! The subcommands. Each returns its exit code.

use std::io::IsTerminal;
use std::path::PathBuf;

use super::progress::Progress;
use super::{BlessArgs, DoctorArgs, ListArgs, OutputArgs, PathArgs, RunArgs, SelectArgs, exit};
use crate::baseline::BaselineStore;
use crate::compare::Policy;
use crate::exec::{self, Availability, ExecEnv};
use crate::plan::{ScenarioPlan, Settings, Suite, env_ref};
use crate::report::{self, terminal};

use crate::outcome::RunReport;
use crate::run::{self, Mode, RunConfig, Session};

fn stdout_color(out: &OutputArgs) -> terminal::Style {
    terminal::Style {
        color: !out.no_color && std::io::stdout().is_terminal(),
    }
}

/// The environment executors see when run from the CLI.
pub fn exec_env() -> ExecEnv {
    ExecEnv {
        neon_perf_bin: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("neon-perf")),
        cache_dir: std::env::var_os("NEON_PERF_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("target/neon-perf")),
    }
}

/// Loads the suites under `paths` for `check`, `list`, `run`, `bless` and
/// `calibrate`; prints the errors and returns exit 2 on bad input: a suite
/// with errors, no suite file at all, two suites with one name.
pub(super) fn load(paths: &[PathBuf]) -> Result<Vec<Suite>, i32> {
    let color = std::io::stderr().is_terminal();
    let suites = run::load_suites(paths).map_err(|errors| {
        for e in &errors {
            eprintln!("{}", e.render(color));
        }
        eprintln!("error: {} suite file(s) have errors", errors.len());
        exit::BAD_INPUT
    })?;
    if suites.is_empty() {
        eprintln!(
            "error: no suite files found in {}\n  hint: give suite files, or folders that hold \
             *.toml suite files (folders are not searched recursively)",
            list_paths(paths)
        );
        return Err(exit::BAD_INPUT);
    }
    Ok(suites)
}

fn list_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Loads suites and applies the filters; prints errors and returns exit 2 on bad input.
pub(super) fn select(sel: &SelectArgs) -> Result<Vec<ScenarioPlan>, i32> {
    let suites = load(&sel.paths)?;
    let plans: Vec<ScenarioPlan> = suites
        .into_iter()
        .flat_map(|s| s.scenarios)
        .filter(|p| matches_filters(&p.full_name(), &sel.filter, sel.exact))
        .collect();
    if plans.is_empty() {
        let filters = sel
            .filter
            .iter()
            .map(|f| format!("`{f}`"))
            .collect::<Vec<_>>()
            .join(", ");
        eprintln!(
            "error: no scenario in {} matches {}{filters}",
            list_paths(&sel.paths),
            match (sel.filter.len(), sel.exact) {
                (0, _) => "no filter (every scenario)",
                (1, false) => "the filter ",
                (1, true) => "the exact filter ",
                (_, false) => "the filters ",
                (_, true) => "the exact filters ",
            }
        );
        return Err(exit::BAD_INPUT);
    }
    Ok(match &sel.partition {
        // An empty shard is not an error: a matrix may have more runners
        // than a suite has scenarios. It reports nothing and passes.
        Some(p) => p.filter(plans, |p| p.full_name()),
        None => plans,
    })
}

/// The located errors of the selected scenarios that would run here (not
/// ignored for a missing piece) and read an unset `{env:NAME}`.
fn unset_env_errors(plans: &[ScenarioPlan]) -> Vec<crate::config::ConfigError> {
    let stopped: Vec<&ScenarioPlan> = plans
        .iter()
        .filter(|p| !p.unset_env().is_empty())
        .filter(|p| exec::executor_for(p.kind()).availability(p) == Availability::Ready)
        .collect();
    crate::config::unset_env(&stopped)
}

fn print_config_errors(errors: &[crate::config::ConfigError]) {
    let color = std::io::stderr().is_terminal();
    for e in errors {
        eprintln!("{}", e.render(color));
    }
}

/// [`select`] for `bless` and `calibrate`: a selected scenario that reads
/// an unset `{env:NAME}` is bad input, said before anything runs (nothing
/// half-recorded).
pub(super) fn select_to_run(sel: &SelectArgs) -> Result<Vec<ScenarioPlan>, i32> {
    let plans = select(sel)?;
    stop_on(&unset_env_errors(&plans))?;
    Ok(plans)
}

/// Exit 2 when there are `errors` (said, with how to go on).
fn stop_on(errors: &[crate::config::ConfigError]) -> Result<(), i32> {
    if errors.is_empty() {
        return Ok(());
    }
    print_config_errors(errors);
    eprintln!(
        "error: a selected scenario reads an environment variable that is not set \
         (`-f` selects the scenarios that do not)"
    );
    Err(exit::BAD_INPUT)
}

pub fn matches_filters(name: &str, filters: &[String], exact: bool) -> bool {
    filters.is_empty()
        || filters.iter().any(|f| {
            if exact {
                name == f
            } else {
                name.contains(f.as_str())
            }
        })
}

fn execute(
    sel: &SelectArgs,
    overrides: Settings,
    output: &OutputArgs,
    mode: Mode,
    fail_on_inconclusive: bool,
    confirm_regressions: bool,
    against: Option<crate::run::paired::Against>,
) -> i32 {
    // A bless records nothing half; a gate runs what it can (a pull
    // request from a fork has no secrets) and exits 2 at the end, having
    // failed each scenario that reads an unset variable at its text.
    let plans = match select(sel) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let env_errors = unset_env_errors(&plans);
    if matches!(mode, Mode::Bless { .. })
        && let Err(code) = stop_on(&env_errors)
    {
        return code;
    }
    if !env_errors.is_empty() {
        print_config_errors(&env_errors);
        eprintln!(
            "error: the scenarios above read an environment variable that is not set: they \
             fail, the others run, and the run exits 2"
        );
    }
    let reports_dir = std::env::var_os("NEON_PERF_REPORTS_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(super::DEFAULT_REPORTS_DIR));
    let output = &output.with_default_reports(&reports_dir);
    let cfg = RunConfig {
        mode,
        overrides,
        baselines_dir: sel.baselines.clone(),
        policy: Policy::default(),
        env: exec_env(),
        smoke_without_baseline: false,
        fail_on_inconclusive,
        confirm_regressions,
        spread_gap: crate::run::spread::SPREAD_GAP,
        against,
        profile_dir: reports_dir.join("profiles"),
    };
    if let Some(p) = &sel.partition {
        println!("partition {p}: {} scenario(s) in this shard", plans.len());
    }
    let mut session = match Session::new(cfg) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::BAD_INPUT;
        }
    };
    let style = stdout_color(output);
    println!(
        "neon-perf {} · {} scenario(s) · hardware {}",
        env!("CARGO_PKG_VERSION"),
        plans.len(),
        session.hardware().dirname()
    );
    for w in session.warnings() {
        eprintln!("warning: {w}");
    }
    crate::process::cancel::install();
    let mut progress = Progress::new(plans.len());
    let mut reports = Vec::with_capacity(plans.len());
    for plan in &plans {
        if crate::process::cancel::requested().is_some() {
            break;
        }
        progress.start(&plan.full_name());
        let r = session.run_scenario(plan, &mut |e| progress.event(&e));
        match r {
            Ok(r) => {
                progress.line(&terminal::scenario_line(&r, style));
                reports.push(r);
            }
            Err(e) => {
                progress.done();
                eprintln!("error: {e}");
                return exit::BAD_INPUT;
            }
        }
    }
    progress.done();
    profile_pending(&mut session, &mut reports);
    let mut report = match session.finish(reports) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::BAD_INPUT;
        }
    };
    report.partition = sel.partition.map(|p| p.to_string());
    // Bad input outranks what the run found (the reports say so too); a
    // cancelled run keeps 128 + signal.
    if !env_errors.is_empty() && report.exit_code < 128 {
        report.exit_code = exit::BAD_INPUT;
    }
    print!("{}", terminal::details(&report, style));
    let code = write_reports(&report, output);
    if env_errors.is_empty() || code >= 128 {
        return code;
    }
    eprintln!(
        "error: scenarios read an environment variable that is not set (said above): they \
         failed, the others ran; exit 2"
    );
    exit::BAD_INPUT
}

/// The profiles the scenarios asked for (`profile`, `--profile`), taken
/// once every scenario was measured; a line for each as it ends.
fn profile_pending(session: &mut Session, reports: &mut [crate::outcome::ScenarioReport]) {
    let pending = session.pending_profiles();
    if pending.is_empty() {
        return;
    }
    let mut bar = Progress::new(pending.len());
    let mut current = String::new();
    session.profile_pending(reports, &mut |name, e| {
        if name != current {
            if !current.is_empty() {
                bar.line(&format!("    PROFILED {current}"));
            }
            current = name.to_string();
            bar.start(&format!("profiling {name}"));
        }
        bar.event(&e);
    });
    if !current.is_empty() {
        bar.line(&format!("    PROFILED {current}"));
    }
    bar.done();
}

/// Writes every report asked for (run, bless, merge and compare call it),
/// names each one that could not be written, then prints the summary line
/// with the exit code the process really ends with, which it returns: the
/// report's, or 2 when a report could not be written.
pub(super) fn write_reports(report: &RunReport, out: &OutputArgs) -> i32 {
    let files = out.files();
    let report::files::Written { written, failures } = report::files::write_all(report, &files);
    for f in &failures {
        eprintln!("error: {f}");
    }
    let written: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
    if !written.is_empty() {
        println!("reports: {}", written.join(", "));
    }
    let (code, why) = if failures.is_empty() {
        (report.exit_code, None)
    } else {
        (
            exit::BAD_INPUT,
            Some(format!(
                "{} report(s) could not be written; the verdicts alone give exit {}",
                failures.len(),
                report.exit_code
            )),
        )
    };
    print!("{}", terminal::totals(report, code, why.as_deref()));
    code
}

pub fn run(a: RunArgs) -> i32 {
    let mode = if a.smoke { Mode::Smoke } else { Mode::Gate };
    execute(
        &a.select,
        a.sampling.settings(),
        &a.output,
        mode,
        a.fail_on_inconclusive,
        !a.no_confirm,
        a.against.map(|dir| crate::run::paired::Against {
            dir,
            pairs: usize::from(a.pairs),
        }),
    )
}

pub fn bless(a: BlessArgs) -> i32 {
    let mode = Mode::Bless {
        reason: a.reason.clone(),
        replace: a.replace,
        runs: a.runs,
    };
    execute(
        &a.select,
        a.sampling.settings(),
        &a.output,
        mode,
        false,
        false,
        None,
    )
}

pub fn check(a: PathArgs) -> i32 {
    match load(&a.paths) {
        Ok(suites) => {
            let n: usize = suites.iter().map(|s| s.scenarios.len()).sum();
            println!("ok: {} suite(s), {n} scenario(s)", suites.len());
            // Not the suite's mistake, but what a run here would stop on.
            for p in suites.iter().flat_map(|s| &s.scenarios) {
                for e in p.unset_env() {
                    println!(
                        "note: {}: {} here: `run` fails {} and `bless` stops on it",
                        e.location,
                        env_ref::unset_text(&e.what, &e.name).0,
                        p.full_name()
                    );
                }
            }
            exit::OK
        }
        Err(code) => code,
    }
}

#[derive(serde::Serialize)]
struct ListRow {
    name: String,
    kind: String,
    device: String,
    points: usize,
    runs_here: bool,
    needs: Option<String>,
    /// `needs` is an unset `{env:NAME}`: a run fails it (not ignored).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stops: bool,
    baseline: bool,
    location: String,
    /// With `--partition`: the shard (1-based) this scenario runs in.
    #[serde(skip_serializing_if = "Option::is_none")]
    shard: Option<u32>,
}

pub fn list(a: ListArgs) -> i32 {
    // Every selected scenario with the shard it goes to (`run --partition`
    // runs only the given shard's).
    let partition = a.select.partition;
    let unsharded = crate::cli::SelectArgs {
        partition: None,
        ..a.select.clone()
    };
    let plans = match select(&unsharded) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let shards = partition.map(|p| {
        let names: Vec<String> = plans.iter().map(|p| p.full_name()).collect();
        crate::plan::Partition::shards(p.kind, p.n, &names)
    });
    let hw = crate::device::hardware_key();
    let store = BaselineStore::new(a.select.baselines.clone());
    let mut rows = Vec::new();
    for (i, p) in plans.iter().enumerate() {
        let availability = exec::executor_for(p.kind()).availability(p);
        let baseline = match store.load(&hw, &p.suite) {
            Ok(b) => b.is_some_and(|b| b.scenario.contains_key(&p.name)),
            Err(e) => {
                eprintln!("error: {e}");
                return exit::BAD_INPUT;
            }
        };
        // A missing piece ignores it; else an unset `{env:NAME}` fails it.
        let unset = p.unset_env();
        let stops = availability == Availability::Ready && !unset.is_empty();
        let needs = match (availability, unset.first()) {
            (Availability::Missing(r), _) => Some(r),
            (Availability::Ready, Some(e)) => Some(env_ref::unset_text(&e.what, &e.name).0),
            (Availability::Ready, None) => None,
        };
        rows.push(ListRow {
            name: p.full_name(),
            kind: p.kind().to_string(),
            device: p.device.to_string(),
            points: p.points.len(),
            runs_here: needs.is_none(),
            needs,
            stops,
            baseline,
            location: p.location.to_string(),
            shard: shards.as_ref().map(|s| s[i]),
        });
    }
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).expect("serializes")
        );
        return exit::OK;
    }
    println!("hardware key: {}", hw.dirname());
    if let Some(p) = partition {
        let mine = rows.iter().filter(|r| r.shard == Some(p.k)).count();
        println!(
            "partition {p}: {mine} of {} scenario(s) in shard {}",
            rows.len(),
            p.k
        );
    }
    for r in rows {
        let shard = match (r.shard, partition) {
            (Some(s), Some(p)) => format!("shard={s}/{} ", p.n),
            _ => String::new(),
        };
        println!(
            "{shard}{:<40} {:<16} {:<7} points={:<3} baseline={:<3} {}",
            r.name,
            r.kind,
            r.device,
            r.points,
            if r.baseline { "yes" } else { "no" },
            match r.needs {
                None => "runs here".to_string(),
                Some(n) if r.stops => format!("fails here: {n}"),
                Some(n) => format!("ignored here: {n}"),
            }
        );
    }
    exit::OK
}

/// `python-path`: the folder a `command` child gets first on its
/// `PYTHONPATH` (under `NEON_PERF_CACHE`, default target/neon-perf), with
/// the helper written there.
pub fn python_path() -> i32 {
    match crate::exec::command::python::helper_dir(&exec_env().cache_dir) {
        Ok(dir) => {
            println!("{}", dir.display());
            exit::OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::BAD_INPUT
        }
    }
}

pub fn doctor(a: DoctorArgs) -> i32 {
    let hw = crate::device::hardware_key();
    let device = crate::device::probe();
    if a.json {
        let v = serde_json::json!({
            "tool_version": env!("CARGO_PKG_VERSION"),
            "optimized_build": !cfg!(debug_assertions),
            "hardware_key": hw,
            "hardware_dir": hw.dirname(),
            "device": device,
        });
        println!("{}", serde_json::to_string_pretty(&v).expect("serializes"));
        return exit::OK;
    }
    println!("neon-perf {}", env!("CARGO_PKG_VERSION"));
    println!(
        "build: {}",
        if cfg!(debug_assertions) {
            "debug (timings not gated; use --release)"
        } else {
            "optimized"
        }
    );
    println!("cpu: {} ({} cores)", hw.cpu_model, hw.cpu_cores);
    println!("hardware key: {}", hw.dirname());
    println!("{device}");
    exit::OK
}
