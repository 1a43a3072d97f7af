//! `metric.<name> = { leak = true }` on a `command` scenario (issue #20): a
//! real Python loop that keeps 1 MiB an iteration fails "memory cleanup: no
//! growth"; the same loop freeing its buffer passes, 20 runs of 20.

mod common;
#[macro_use]
mod needs;

use std::path::{Path, PathBuf};

use serde_json::Value;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/leak/loop.py")
}

/// `neon-perf run` on the loop in `mode`; the output and the scenario's
/// leak check.
fn run(dir: &Path, mode: &str, rule: &str) -> (std::process::Output, Value) {
    run_named(dir, mode, "rss", rule)
}

/// [`run`] with the rule on metric `name`.
fn run_named(dir: &Path, mode: &str, name: &str, rule: &str) -> (std::process::Output, Value) {
    let suite = dir.join("leak.toml");
    std::fs::write(
        &suite,
        format!(
            r#"
[suite]
name = "leak"

[defaults]
warmup = "0s"
warmup_runs = 0
min_samples = 2
max_samples = 2
max_contention = 1.0

[[scenario]]
name = "loop"
kind = "command"
checklist = ["memory-cleanup"]
command = ["python3", "{}", "{mode}"]
metric.{name} = {rule}
"#,
            fixture().display()
        ),
    )
    .unwrap();
    let (o, r) = common::run_json(&suite, dir, &[]);
    let check = r["scenarios"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == format!("memory cleanup: no growth of {name}"))
        .unwrap_or_else(|| panic!("no leak check in {r:#}"))
        .clone();
    (o, check)
}

fn a_planted_leak_fails_with_its_rate() {
    let dir = tempfile::tempdir().unwrap();
    let (o, c) = run(dir.path(), "leak", "{ leak = true }");
    assert_eq!(o.status.code(), Some(1), "{}", common::text(&o));
    assert_eq!(c["passed"], false, "{c:#}");
    assert_eq!(c["item"], "memory-cleanup");
    let e = c["evidence"].as_str().unwrap();
    assert!(
        e.starts_with("grows ") && e.contains("over 30 iterations"),
        "{e}"
    );
    // 1 MiB kept an iteration (the interpreter's own pages may add a little).
    let growth = rss_growth(dir.path());
    assert!((0.99..1.1).contains(&(growth / MIB)), "{growth}");
}

const MIB: f64 = 1024.0 * 1024.0;

/// `rss_growth` from the last run's results.
fn rss_growth(dir: &Path) -> f64 {
    let r: Value = serde_json::from_slice(&std::fs::read(dir.join("r.json")).unwrap()).unwrap();
    r["scenarios"][0]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["key"] == "rss_growth")
        .and_then(|m| m["samples"][0].as_f64())
        .expect("rss_growth")
}

fn a_flat_loop_passes_twenty_runs_of_twenty() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..20 {
        let (o, c) = run(dir.path(), "flat", "{ leak = true }");
        assert_eq!(c["passed"], true, "run {i}: {c:#}\n{}", common::text(&o));
    }
}

fn a_leak_within_its_tolerance_passes() {
    let dir = tempfile::tempdir().unwrap();
    let (_, c) = run(
        dir.path(),
        "leak",
        r#"{ leak = true, leak_tolerance = "2MiB" }"#,
    );
    assert_eq!(c["passed"], true, "{c:#}");
}

/// A leak rule on a name the program never prints fails, naming the
/// closest name it did print.
fn a_leak_rule_typo_names_the_closest_printed_metric() {
    let dir = tempfile::tempdir().unwrap();
    let (o, c) = run_named(dir.path(), "flat", "rsss", "{ leak = true }");
    assert_eq!(o.status.code(), Some(1), "{}", common::text(&o));
    assert_eq!(
        c["evidence"],
        "the program printed no `rsss`: nothing to check for growth (did you mean `metric.rss`?)",
        "{c:#}"
    );
}

trials! {
    a_leak_rule_typo_names_the_closest_printed_metric: needs::PYTHON;
    a_planted_leak_fails_with_its_rate: needs::PYTHON;
    a_flat_loop_passes_twenty_runs_of_twenty: needs::PYTHON;
    a_leak_within_its_tolerance_passes: needs::PYTHON;
}
