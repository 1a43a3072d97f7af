//! The slow-state rule end to end (src/compare/state.rs): through the real
//! binary, with a program whose runs are "in a slow state" (98 of 100
//! samples slow, 2 at the machine's fast time) or not, by how many times
//! it has run. Deterministic: no verdict depends on this machine's speed.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::text;

fn suite() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/slow-state/state.toml")
}

/// Runs `neon-perf <cmd> state.toml`; the program's first `slow_runs` runs
/// (counted afresh) are slow at `slow` ms with 2% of samples at `fast`.
fn neon(cmd: &str, dir: &Path, slow_runs: u32, slow: u32, fast: u32) -> (Output, u32) {
    let env = [
        ("SLOW_RUNS", slow_runs.to_string()),
        ("SLOW", slow.to_string()),
        ("FAST", fast.to_string()),
    ];
    common::run_counted(cmd, &suite(), dir, &env)
}

fn metric_m(dir: &Path) -> serde_json::Value {
    common::verdict(dir, "m")
}

fn recorded_m(dir: &Path) -> toml::Value {
    common::recorded_m(dir, "state.toml")
}

#[test]
fn a_bless_runs_past_a_slow_state_and_the_gate_does_not_blame_the_code_for_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // Three slow bless runs, then a fast one: the bless runs on until it
    // comes, and the fast run replaces the slow ones.
    let (o, runs) = neon("bless", d, 3, 135, 94);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(runs, 4, "3 bless runs and 1 extra: {}", text(&o));
    assert!(
        text(&o).contains("1 extra run(s) until one did not"),
        "{}",
        text(&o)
    );
    let m = recorded_m(d);
    assert_eq!(m["estimate"].as_float(), Some(0.094), "{m}");
    assert_eq!(m["runs"].as_array().unwrap().len(), 1, "{m}");

    // Unchanged code, every run slow (+44% at p5) with its fastest samples
    // at the baseline's: not a regression, and the confirmation ran.
    let (o, runs) = neon("run", d, 100, 135, 94);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(runs, 3, "a first run and two confirmation runs");
    let m = metric_m(d);
    assert_eq!(m["verdict"], "inconclusive", "{m}");
    assert!(
        m["note"]
            .as_str()
            .unwrap()
            .contains("slow state of the machine"),
        "{m}"
    );

    // A real +10% slowdown in the same state moves the fastest samples
    // too: regressed.
    let (o, _) = neon("run", d, 100, 148, 103);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(metric_m(d)["verdict"], "regressed");

    // The same +10% on a fast machine: regressed, as ever.
    let (o, _) = neon("run", d, 0, 148, 103);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(metric_m(d)["verdict"], "regressed");
}

#[test]
fn a_bless_that_never_leaves_the_slow_state_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (o, runs) = neon("bless", dir.path(), 100, 135, 94);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(runs, 6, "3 bless runs and 3 extra ones: {}", text(&o));
    assert!(
        text(&o).contains("every bless run, 3 extra ones included"),
        "{}",
        text(&o)
    );
    // Recorded as it came (the user is told to bless again); a later fast
    // run of unchanged code is not called an improvement.
    assert_eq!(recorded_m(dir.path())["estimate"].as_float(), Some(0.135));
    let (o, _) = neon("run", dir.path(), 0, 135, 94);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let m = metric_m(dir.path());
    assert_eq!(m["verdict"], "inconclusive", "{m}");
    assert!(m["note"].as_str().unwrap().contains("re-bless"), "{m}");
}
