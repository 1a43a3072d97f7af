//! `{suite_dir}` and the child's working folder when the suite is given by a
//! relative path (as in `neon-perf run suites/examples.toml`): the child runs
//! in the suite's folder, so `{suite_dir}` must not stay relative.

use std::fs;
use std::process::Command;

#[test]
fn relative_suite_path_runs_a_script_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("suites/scripts")).unwrap();
    fs::write(
        dir.path().join("suites/scripts/emit.sh"),
        "echo '{\"metric\": \"m\", \"value\": 1, \"unit\": \"ms\"}'\n",
    )
    .unwrap();
    fs::write(
        dir.path().join("suites/rel.toml"),
        r#"
[suite]
name = "rel"

[[scenario]]
name = "beside"
kind = "command"
command = ["sh", "{suite_dir}/scripts/emit.sh"]
primary = "m"
"#,
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_neon-perf"))
        .current_dir(dir.path())
        .args([
            "run",
            "--smoke",
            "suites/rel.toml",
            "--baselines",
            "baselines",
        ])
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(!text.contains("FAILED"), "{text}");
}

/// The samples of metric `m` from a scenario whose program prints how many
/// times it has been started, with the given warm-up settings.
fn counted_samples(warmup: &str) -> Vec<f64> {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("suites")).unwrap();
    fs::write(
        dir.path().join("suites/count.sh"),
        "n=$(cat count 2>/dev/null || echo 0); n=$((n + 1)); echo $n > count\n\
         echo \"{\\\"metric\\\": \\\"m\\\", \\\"value\\\": $n, \\\"unit\\\": \\\"ms\\\"}\"\n",
    )
    .unwrap();
    fs::write(
        dir.path().join("suites/count.toml"),
        format!(
            r#"
[suite]
name = "count"

[defaults]
{warmup}
min_samples = 3
max_samples = 3
max_contention = 1.0

[[scenario]]
name = "starts"
kind = "command"
command = ["sh", "{{suite_dir}}/count.sh"]
primary = "m"
"#
        ),
    )
    .unwrap();
    let json = dir.path().join("r.json");
    let o = Command::new(env!("CARGO_BIN_EXE_neon-perf"))
        .current_dir(dir.path())
        .args([
            "run",
            "suites/count.toml",
            "--baselines",
            "baselines",
            "--json",
        ])
        .arg(&json)
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let report: serde_json::Value = serde_json::from_slice(&fs::read(&json).unwrap()).unwrap();
    let metrics = report["scenarios"][0]["metrics"].as_array().unwrap();
    let m = metrics.iter().find(|m| m["key"] == "m").unwrap();
    m["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v.as_f64().unwrap() * 1000.0).round()) // printed in ms, stored in s
        .collect()
}

#[test]
fn the_probe_run_is_warm_up_unless_there_is_none() {
    // The default: the probe is the one warm-up run.
    assert_eq!(
        counted_samples("warmup = \"0s\"\nwarmup_runs = 1"),
        [2.0, 3.0, 4.0]
    );
    assert_eq!(
        counted_samples("warmup = \"0s\"\nwarmup_runs = 2"),
        [3.0, 4.0, 5.0]
    );
    // No warm-up at all (a paired variant's later runs): the probe is the
    // first sample.
    assert_eq!(
        counted_samples("warmup = \"0s\"\nwarmup_runs = 0"),
        [1.0, 2.0, 3.0]
    );
}

/// `env = { NAME = "{env:VAR}-{n}" }`: the program sees neon-perf's `VAR`
/// (a token, a path) under its own name, with placeholders filled in too.
#[test]
fn env_values_read_neon_perfs_environment() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("env.toml"),
        r#"
[[scenario]]
name = "reads"
kind = "command"
command = ["sh", "-c", "echo \"{\\\"metric\\\": \\\"m\\\", \\\"value\\\": $MODEL_SEED, \\\"unit\\\": \\\"ms\\\"}\""]
env = { MODEL_SEED = "{env:NEON_PERF_TEST_SEED}{n}" }
params = { n = [7] }
primary = "m"
"#,
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_neon-perf"))
        .current_dir(dir.path())
        .args(["run", "--smoke", "env.toml", "--baselines", "b"])
        .args(["--json", "r.json"])
        .env("NEON_PERF_TEST_SEED", "4")
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{text}");
    let r: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.path().join("r.json")).unwrap()).unwrap();
    let m = r["scenarios"][0]["metrics"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["key"] == "m{n=7}"))
        .unwrap_or_else(|| panic!("no m{{n=7}}: {text}"));
    assert_eq!(m["samples"][0], 0.047, "{m}");
}
