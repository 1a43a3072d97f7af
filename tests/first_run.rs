//! The first run tells the truth, through the real binary: with no baseline
//! it says nothing was compared and names `neon-perf bless` (terminal,
//! Markdown, HTML, JSON checklist), writes its HTML and JSON reports to the
//! default place and prints their paths; a bless that records nothing for a
//! scenario that ran exits 4, naming it and why. Deterministic: the program
//! emits set values (tests/fixtures/bless-agree).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::text;

fn suite() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bless-agree/agree.toml")
}

/// `neon-perf <cmd> agree.toml` in DIR (so default reports land there), the
/// program's runs at `values` µs in turn.
fn neon(cmd: &str, dir: &Path, suite: &Path, values: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_neon-perf"))
        .current_dir(dir)
        .args([cmd, suite.to_str().unwrap(), "--baselines", "baselines"])
        .args(extra)
        .env("COUNT_FILE", dir.join("count"))
        .env("VALUES", values)
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("NEON_PERF_REPORTS_DIR")
        .output()
        .expect("neon-perf runs")
}

/// One bless run of the program at `value` µs, which must record it.
fn bless_once(dir: &Path, value: &str) {
    let o = neon(
        "bless",
        dir,
        &suite(),
        value,
        &["--reason", "first", "--runs", "1"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn monitoring_state(results: &serde_json::Value) -> String {
    results["checklist"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["item"] == "monitoring")
        .unwrap()["state"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn a_first_run_says_nothing_was_compared_and_writes_its_reports() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let md = d.join("gate.md");
    let o = neon(
        "run",
        d,
        &suite(),
        "940",
        &["--markdown", md.to_str().unwrap()],
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("nothing compared: no baseline for "), "{out}");
    assert!(
        out.contains("1 scenario measured, none compared — record one with `neon-perf bless`"),
        "{out}"
    );
    assert!(!out.contains("no regressions"), "{out}");
    assert!(
        out.contains("reports: target/neon-perf/report.html, target/neon-perf/results.json, "),
        "{out}"
    );

    let results = json(&d.join("target/neon-perf/results.json"));
    assert_eq!(results["not_recorded"], serde_json::json!([]));
    assert_eq!(monitoring_state(&results), "not_compared");

    let html = std::fs::read_to_string(d.join("target/neon-perf/report.html")).unwrap();
    assert!(html.contains("<title>neon-perf: nothing compared</title>"));
    assert!(html.contains("class=\"result none\""));
    assert!(!html.contains("no regressions"));

    let md = std::fs::read_to_string(&md).unwrap();
    assert!(md.starts_with("## ⚪ neon-perf: nothing compared"), "{md}");
    assert!(md.contains("none compared"), "{md}");
    assert!(!md.contains("✅"), "{md}");

    // Recorded, the next run compares and passes, and the item is ticked.
    bless_once(d, "940");
    let o = neon("run", d, &suite(), "940", &[]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(!out.contains("none compared"), "{out}");
    let results = json(&d.join("target/neon-perf/results.json"));
    assert_eq!(monitoring_state(&results), "ticked");
}

#[test]
fn a_bless_whose_runs_are_all_refused_exits_4_and_names_the_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    bless_once(d, "940");
    // 60% slower than the recorded run: refused, kept as it was.
    let o = neon(
        "bless",
        d,
        &suite(),
        "1500",
        &["--reason", "again", "--runs", "1"],
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(4), "{out}");
    assert!(out.contains("not recorded: agree::emit — "), "{out}");
    assert!(
        out.contains("nothing recorded: 1 scenario ran but recorded no baseline"),
        "{out}"
    );
    let results = json(&d.join("target/neon-perf/results.json"));
    assert_eq!(results["exit_code"], 4);
    assert!(
        results["not_recorded"][0]
            .as_str()
            .unwrap()
            .starts_with("agree::emit — "),
        "{results}"
    );
}

/// The fixture suite, but no other process may use any CPU while it
/// measures (`max_contention = 0.01`) and an invalid run is tried again at
/// once (`quiet_wait = "0s"`); two threads of this test spin for the whole
/// command, and each run of the program lasts half a second.
fn on_a_busy_machine(d: &Path, cmd: &str, extra: &[&str]) -> Output {
    let strict = d.join("suite");
    std::fs::create_dir(&strict).unwrap();
    let fixture = suite();
    let src = fixture.parent().unwrap();
    // Each run lasts long enough for the host sampler to see the spinners.
    let script = std::fs::read_to_string(src.join("agree.sh")).unwrap();
    std::fs::write(strict.join("agree.sh"), format!("sleep 0.5\n{script}")).unwrap();
    let toml = std::fs::read_to_string(&fixture).unwrap().replace(
        "max_contention = 1.0",
        "max_contention = 0.01\nquiet_wait = \"0s\"",
    );
    std::fs::write(strict.join("agree.toml"), toml).unwrap();

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let spinners: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        })
        .collect();
    let o = neon(cmd, d, &strict.join("agree.toml"), "940", extra);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for s in spinners {
        s.join().unwrap();
    }
    o
}

#[test]
fn a_bless_whose_runs_are_all_invalid_exits_4() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = on_a_busy_machine(d, "bless", &["--reason", "busy", "--runs", "1"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(4), "{out}");
    assert!(
        out.contains("not recorded: agree::emit — the run was invalid (other processes used"),
        "{out}"
    );
    assert_eq!(baseline_files(&d.join("baselines")), Vec::<PathBuf>::new());
}

/// #21 finding 10: a gate whose run stays invalid after its retries is
/// "not measured", exit 5, never a pass; each retry is said.
#[test]
fn a_run_that_stays_invalid_is_not_measured_and_exits_5() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = on_a_busy_machine(d, "run", &[]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(5), "{out}");
    assert!(
        out.contains("attempt 1 of 3 invalid (other processes used"),
        "{out}"
    );
    assert!(out.contains("attempt 2 of 3 invalid"), "{out}");
    assert!(
        out.contains("not measured: 1 scenario stayed invalid"),
        "{out}"
    );
    let results = json(&d.join("target/neon-perf/results.json"));
    assert_eq!(results["exit_code"], 5);
    assert_eq!(results["scenarios"][0]["status"], "invalid");
}

/// Every file under `dir` (none when it does not exist).
fn baseline_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        if e.path().is_dir() {
            out.extend(baseline_files(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}
