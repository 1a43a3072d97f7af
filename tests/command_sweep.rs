//! `sweep` on a `command` scenario (issue #20): the program's own latency at
//! each batch size, analysed as a `batch_sweep` is. Known answers from a
//! program whose latency is 2 ms + 0.5 ms per item.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sweep/model.sh")
}

/// Runs a one-scenario suite with `extra` keys; returns the output and the
/// results file.
fn run(dir: &Path, extra: &str, env: &[(&str, &str)]) -> (Output, Value) {
    let suite = dir.join("sweep.toml");
    std::fs::write(
        &suite,
        format!(
            r#"
[suite]
name = "sweep"

[defaults]
warmup = "0s"
warmup_runs = 0
min_samples = 3
max_samples = 3
max_contention = 1.0

[[scenario]]
name = "model"
kind = "command"
checklist = ["batching"]
command = ["sh", "{}", "{{batch}}"]
params = {{ batch = [1, 2, 4, 8, 16, 32] }}
primary = "latency"
{extra}
"#,
            fixture().display()
        ),
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_neon-perf"))
        .arg("run")
        .arg(&suite)
        .arg("--baselines")
        .arg(dir.join("baselines"))
        .arg("--json")
        .arg(dir.join("r.json"))
        .arg("--html")
        .arg(dir.join("r.html"))
        .envs(env.iter().copied())
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap();
    let results = std::fs::read(dir.join("r.json"))
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap_or(Value::Null);
    (o, results)
}

fn metric(results: &Value, key: &str) -> Option<f64> {
    results["scenarios"][0]["metrics"]
        .as_array()?
        .iter()
        .find(|m| m["key"] == key)?["samples"][0]
        .as_f64()
}

fn check<'a>(results: &'a Value, name: &str) -> &'a Value {
    results["scenarios"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {results:#}"))
}

#[test]
fn known_answers_best_batch_and_the_largest_under_the_slo() {
    let dir = tempfile::tempdir().unwrap();
    let (o, r) = run(
        dir.path(),
        r#"sweep = { param = "batch", latency = "latency", latency_slo = "11ms" }"#,
        &[],
    );
    let text = common::text(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    // 2.5, 3, 4, 6, 10, 18 ms: throughput grows to the largest batch, and
    // 16 (10 ms) is the largest within 11 ms.
    assert_eq!(metric(&r, "best_batch"), Some(32.0), "{r:#}");
    assert_eq!(metric(&r, "max_batch_under_slo"), Some(16.0));
    let p99 = metric(&r, "latency_p99{batch=16}").unwrap();
    assert!((p99 - 0.010).abs() < 1e-9, "{p99}");
    // throughput(32) / (32 × throughput(1)) = (32/18) / (32 × 1/2.5) = 2.5/18
    let eff = metric(&r, "scaling_efficiency{batch=32}").unwrap();
    assert!((eff - 2.5 / 18.0).abs() < 1e-6, "{eff}");
    let c = check(&r, "throughput scales with batch size");
    assert_eq!(c["passed"], true, "{c:#}");
    assert_eq!(c["item"], "batching");
    let html = std::fs::read_to_string(dir.path().join("r.html")).unwrap();
    assert!(
        html.contains("batch sweep: latency and throughput"),
        "no sweep plot"
    );
}

#[test]
fn a_printed_throughput_is_the_one_judged() {
    let dir = tempfile::tempdir().unwrap();
    let (o, r) = run(
        dir.path(),
        r#"sweep = { param = "batch" }"#,
        &[("THROUGHPUT", "flat")],
    );
    assert_eq!(o.status.code(), Some(1), "{}", common::text(&o));
    // Flat printed throughput: no batch beats batch 1, so the batching
    // check fails although latency / batch would say it scales.
    assert_eq!(metric(&r, "best_batch"), Some(1.0), "{r:#}");
    let c = check(&r, "throughput scales with batch size");
    assert_eq!(c["passed"], false, "{c:#}");
    let e = c["evidence"].as_str().unwrap();
    assert!(
        e.starts_with("no larger batch was faster per sample than batch 1: ")
            && e.contains("x, needs >= 1.50x)"),
        "{c:#}"
    );
}

#[test]
fn a_latency_that_is_never_printed_fails_the_scenario_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (o, r) = run(
        dir.path(),
        r#"sweep = { param = "batch", latency = "step_time" }"#,
        &[],
    );
    let text = common::text(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    let outcome = &r["scenarios"][0]["outcome"];
    assert!(
        outcome
            .to_string()
            .contains("the program printed no `step_time` at batch=1"),
        "{outcome:#}"
    );
}
