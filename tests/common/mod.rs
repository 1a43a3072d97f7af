//! Helpers shared by the integration tests that drive the real binary
//! against a fixture program which counts its own runs in a file
//! (`tests/slow_state.rs`, `tests/bless_agreement.rs`).

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// Stdout and stderr of a finished command, as one text.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs `neon-perf <cmd> <suite> --baselines DIR/baselines --json
/// DIR/r.json` with `env` set and `COUNT_FILE` at DIR/count (reset first);
/// returns the output and how many times the fixture program ran.
pub fn run_counted(cmd: &str, suite: &Path, dir: &Path, env: &[(&str, String)]) -> (Output, u32) {
    let count = dir.join("count");
    let _ = std::fs::remove_file(&count);
    let o = Command::new(env!("CARGO_BIN_EXE_neon-perf"))
        .args([cmd, suite.to_str().unwrap(), "--baselines"])
        .arg(dir.join("baselines"))
        .arg("--json")
        .arg(dir.join("r.json"))
        .env("COUNT_FILE", &count)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .expect("neon-perf runs");
    let runs = std::fs::read_to_string(&count)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    (o, runs)
}

/// Runs `neon-perf run SUITE --baselines DIR/baselines --json DIR/r.json`
/// with `env` set (and PYTHONPATH, GITHUB_STEP_SUMMARY removed); returns the
/// output and the results file (`Null` when none was written).
pub fn run_json(suite: &Path, dir: &Path, env: &[(&str, &str)]) -> (Output, serde_json::Value) {
    run_json_under(&[], suite, dir, env)
}

/// [`run_json`] with the binary started through `wrapper` (e.g. `prlimit
/// --data=…`), which must run it and exit with its status.
pub fn run_json_under(
    wrapper: &[&str],
    suite: &Path,
    dir: &Path,
    env: &[(&str, &str)],
) -> (Output, serde_json::Value) {
    let json = dir.join("r.json");
    let bin = env!("CARGO_BIN_EXE_neon-perf");
    let (program, args) = match wrapper.split_first() {
        Some((w, rest)) => (*w, [rest, &[bin]].concat()),
        None => (bin, Vec::new()),
    };
    let o = Command::new(program)
        .args(args)
        .arg("run")
        .arg(suite)
        .arg("--baselines")
        .arg(dir.join("baselines"))
        .arg("--json")
        .arg(&json)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("PYTHONPATH")
        .env_remove("GITHUB_STEP_SUMMARY")
        .envs(env.iter().copied())
        .output()
        .expect("neon-perf runs");
    let r = std::fs::read(&json)
        .map(|b| serde_json::from_slice(&b).expect("results JSON"))
        .unwrap_or(serde_json::Value::Null);
    (o, r)
}

/// `neon-perf ARGS` in `dir` with `env` set, outside any CI (no GitHub
/// output, partition or baselines folder from this process's environment).
pub fn neon_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_neon-perf"))
        .args(args)
        .envs(env.iter().copied())
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("NEON_PERF_PARTITION")
        .env_remove("NEON_PERF_BASELINES")
        .current_dir(dir)
        .output()
        .expect("neon-perf runs")
}

/// The verdict of metric `key` of the first scenario in DIR/r.json.
pub fn verdict(dir: &Path, key: &str) -> serde_json::Value {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("r.json")).unwrap()).unwrap();
    entry(&v["scenarios"][0]["verdicts"], "key", key).clone()
}

/// The item of the results array `list` whose `field` is `value` (a
/// scenario by `scenario`, a metric or verdict by `key`, a check by
/// `name`); panics naming what is missing and what is there.
pub fn entry<'a>(list: &'a serde_json::Value, field: &str, value: &str) -> &'a serde_json::Value {
    list.as_array()
        .and_then(|items| items.iter().find(|x| x[field] == value))
        .unwrap_or_else(|| panic!("no {field} {value} in {list:#}"))
}

/// Metric `m` of scenario `emit` as recorded in DIR/baselines/<key>/`file`.
pub fn recorded_m(dir: &Path, file: &str) -> toml::Value {
    let path = std::fs::read_dir(dir.join("baselines"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .join(file);
    let t: toml::Value = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    t["scenario"]["emit"]["metric"]["m"].clone()
}

/// `url` and `server` keys of a `websocket_flood` that starts the example
/// backend (examples/ws-backend, in the venv `scripts/ws/setup.sh` makes
/// under target/) with `flags`.
pub fn ws_backend(flags: &[&str]) -> String {
    let r = env!("CARGO_MANIFEST_DIR");
    let mut argv = vec![
        format!("\"{r}/target/ws-venv/bin/python\""),
        format!("\"{r}/examples/ws-backend/server.py\""),
        "\"{port}\"".to_string(),
    ];
    argv.extend(flags.iter().map(|f| format!("\"{f}\"")));
    format!(
        "url = \"ws://127.0.0.1:{{port}}/ws\"\nserver = {{ command = [{}], ready = \"log:listening on\" }}\n",
        argv.join(", ")
    )
}

/// Writes `text` as `dir/ws.toml`, parses it (panicking with the error and
/// the text) and runs its first scenario in this process, with `dir` as
/// the cache.
pub fn execute_suite_text(dir: &Path, text: &str) -> neon_perf::result::ScenarioResult {
    let path = dir.join("ws.toml");
    std::fs::write(&path, text).unwrap();
    let suite =
        neon_perf::config::parse_suite(&path, text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let plan = &suite.scenarios[0];
    let env = neon_perf::exec::ExecEnv {
        neon_perf_bin: env!("CARGO_BIN_EXE_neon-perf").into(),
        cache_dir: dir.to_path_buf(),
    };
    neon_perf::run::execute(plan, &env, &plan.settings, &mut |_| {})
}

static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Held by the tests of one file that must not run beside each other: runs
/// that measure on this 2-core machine (a second one makes the first
/// invalid as "machine busy"), or the builtin server's memory, which is
/// this process's.
pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// The starter suite `neon-perf init` writes, with its commented-out
/// shapes (a `# [[scenario]]` line and the lines after it up to a blank
/// line) uncommented, as its comments tell a team to do; and how many
/// shapes there were.
pub fn uncomment_starter(text: &str) -> (String, usize) {
    let mut out = String::new();
    let mut blocks = 0;
    let mut inside = false;
    for line in text.lines() {
        if line == "# [[scenario]]" {
            inside = true;
            blocks += 1;
        } else if line.is_empty() {
            inside = false;
        }
        let line = if inside {
            line.strip_prefix("# ")
                .unwrap_or_else(|| panic!("`# ` in `{line}`"))
        } else {
            line
        };
        out.push_str(line);
        out.push('\n');
    }
    (out, blocks)
}
