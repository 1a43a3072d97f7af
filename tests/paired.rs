//! Paired A/B (`run --against DIR`) end to end through the real binary: two
//! trees whose programs differ, each run from its own tree. The programs
//! print deterministic metrics, so no verdict depends on this machine's speed.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

const SUITE: &str = r#"
[suite]
name = "ab"

[defaults]
warmup = "10ms"
warmup_runs = 1
min_samples = 3
max_samples = 10
max_time = "300ms"
# The metric is deterministic: other load on the machine cannot change it.
max_contention = 1.0

[[scenario]]
name = "emit"
kind = "command"
command = ["sh", "{suite_dir}/emit.sh"]
primary = "m"
metric."m" = { tolerance = 0.05 }
metric."wall_time" = { gate = false }
metric."cpu_time" = { gate = false }
metric."peak_rss" = { gate = false }
"#;

const NEW_SCENARIO: &str = r#"
[[scenario]]
name = "new"
kind = "command"
command = ["sh", "{suite_dir}/emit.sh"]
primary = "m"
"#;

/// A tree with the suite and a program that prints `m = value` ms.
fn tree(root: &Path, value: u32, extra: &str) {
    fs::create_dir_all(root.join("suites")).unwrap();
    fs::write(root.join("suites/ab.toml"), format!("{SUITE}{extra}")).unwrap();
    fs::write(
        root.join("suites/emit.sh"),
        format!(
            "for i in 1 2 3; do echo '{{\"metric\": \"m\", \"value\": {value}, \"unit\": \"ms\"}}'; done\n"
        ),
    )
    .unwrap();
}

fn run_against(head: &Path, base: &Path, json: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_neon-perf"))
        .current_dir(head)
        .args(["run", "suites/ab.toml", "--pairs", "3", "--against"])
        .arg(base)
        .arg("--json")
        .arg(json)
        .arg("--baselines")
        .arg(head.join("baselines"))
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .expect("neon-perf runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn scenario<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["scenario"] == name)
        .unwrap_or_else(|| panic!("scenario {name} in {report}"))
}

fn metric_verdict<'a>(s: &'a serde_json::Value, key: &str) -> &'a serde_json::Value {
    s["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["key"] == key)
        .unwrap_or_else(|| panic!("verdict {key} in {s}"))
}

fn warnings(s: &serde_json::Value) -> Vec<String> {
    s["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn each_tree_runs_its_own_program_and_the_pairs_decide() {
    let dir = tempfile::tempdir().unwrap();
    let (head, base) = (dir.path().join("head"), dir.path().join("base"));
    tree(&base, 5, "");
    tree(&head, 6, NEW_SCENARIO);
    let json = dir.path().join("r.json");

    let o = run_against(&head, &base, &json);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let report: serde_json::Value = serde_json::from_slice(&fs::read(&json).unwrap()).unwrap();

    let emit = scenario(&report, "emit");
    assert_eq!(emit["status"], "regressed", "{emit}");
    let m = metric_verdict(emit, "m");
    assert_eq!(m["verdict"], "regressed");
    // 6 ms against 5 ms in every pair: +20% exactly, an interval of zero width.
    assert!((m["change"].as_f64().unwrap() - 0.2).abs() < 1e-9, "{m}");
    assert_eq!(m["baseline"].as_f64().unwrap(), 5.0e-3);
    assert!(
        m["note"]
            .as_str()
            .unwrap()
            .contains("paired: 3 base/head pairs"),
        "{m}"
    );
    // Every pair agreed exactly and none was set aside: clean evidence, so
    // the interval stands without confirmation pairs (needs_confirmation).
    assert!(!m["note"].as_str().unwrap().contains("confirm"), "{m}");
    assert_eq!(m["pairs"].as_array().unwrap().len(), 3, "{m}");
    assert!(
        warnings(emit)[0].starts_with("paired with the base tree: 3 pairs, B H H B order"),
        "{emit}"
    );
    // The head's samples of every pair are kept: 3 head runs, each of at
    // least 2 program runs printing 3 samples.
    let samples = emit["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["key"] == "m")
        .unwrap()["samples"]
        .as_array()
        .unwrap()
        .len();
    assert!(samples >= 18 && samples % 3 == 0, "{samples}");

    // Only in the head tree: compared with the (absent) stored baseline.
    let new = scenario(&report, "new");
    assert_eq!(new["status"], "no_baseline", "{new}");
    assert!(
        warnings(new)
            .iter()
            .any(|w| w.starts_with("not paired: no base variant (new in this tree)")),
        "{new}"
    );
}

#[test]
fn unchanged_program_passes() {
    let dir = tempfile::tempdir().unwrap();
    let (head, base) = (dir.path().join("head"), dir.path().join("base"));
    tree(&base, 5, "");
    tree(&head, 5, "");
    let json = dir.path().join("r.json");
    let o = run_against(&head, &base, &json);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let report: serde_json::Value = serde_json::from_slice(&fs::read(&json).unwrap()).unwrap();
    let m = metric_verdict(scenario(&report, "emit"), "m");
    assert_eq!(m["verdict"], "pass", "{m}");
    assert_eq!(m["change"].as_f64().unwrap(), 0.0);
}

#[test]
fn a_broken_base_suite_falls_back_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let (head, base) = (dir.path().join("head"), dir.path().join("base"));
    tree(&base, 5, "");
    fs::write(base.join("suites/ab.toml"), "[suite\nname = 1\n").unwrap();
    tree(&head, 5, "");
    let json = dir.path().join("r.json");
    let o = run_against(&head, &base, &json);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let report: serde_json::Value = serde_json::from_slice(&fs::read(&json).unwrap()).unwrap();
    let emit = scenario(&report, "emit");
    assert_eq!(emit["status"], "no_baseline", "{emit}");
    let w = warnings(emit);
    assert!(
        w[0].starts_with("not paired: the base tree's suite does not load"),
        "{w:?}"
    );
    assert!(w[0].contains("ab.toml"), "names the file: {w:?}");
}

#[test]
fn a_missing_base_tree_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let head = dir.path().join("head");
    tree(&head, 5, "");
    let o = run_against(&head, &dir.path().join("nope"), &dir.path().join("r.json"));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--against: base tree"), "{}", text(&o));
}
