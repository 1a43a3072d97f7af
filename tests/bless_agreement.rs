//! The bless agreement rule end to end (src/baseline/agreement.rs): through
//! the real binary, with a program whose runs come out at levels set per
//! run. Deterministic: no verdict depends on this machine's speed.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::text;

fn suite() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bless-agree/agree.toml")
}

/// Runs `neon-perf <cmd> agree.toml`; the program's runs come out at
/// `values` µs in turn (the last one after that). Returns the output and
/// how many runs there were.
fn neon(cmd: &str, dir: &Path, values: &str) -> (Output, u32) {
    common::run_counted(cmd, &suite(), dir, &[("VALUES", values.to_string())])
}

fn recorded_m(dir: &Path) -> toml::Value {
    common::recorded_m(dir, "agree.toml")
}

fn verdict_m(dir: &Path) -> serde_json::Value {
    common::verdict(dir, "m")
}

#[test]
fn a_bless_whose_runs_disagree_runs_on_until_they_agree() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The 07:45 shape: 940, 985 (+4.8%, inside the bless guard's 10%) and
    // 953 µs spread ±2% for a 5% tolerance (limit ±0.71%); two more runs
    // at 940 make the robust spread of the five small.
    let (o, runs) = neon("bless", d, "940 985 953 940");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(runs, 5, "3 bless runs and 2 extra: {}", text(&o));
    assert!(
        text(&o).contains("the first bless runs disagreed (m: 3 runs spread ±"),
        "{}",
        text(&o)
    );
    assert!(
        text(&o).contains("2 extra run(s) until they agreed"),
        "{}",
        text(&o)
    );
    let m = recorded_m(d);
    assert_eq!(m["runs"].as_array().unwrap().len(), 5, "{m}");
    assert_eq!(m["estimate"].as_float(), Some(0.00094), "{m}");

    // A real +10% slowdown: regressed, with an interval that the one slow
    // blessed run no longer widens.
    let (o, _) = neon("run", d, "1034");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v = verdict_m(d);
    assert_eq!(v["verdict"], "regressed", "{v}");
    let ci = v["ci"].as_array().unwrap();
    let half = (ci[1].as_f64().unwrap() - ci[0].as_f64().unwrap()) / 2.0;
    assert!(half < 0.02, "interval ±{half}: {v}");
}

#[test]
fn a_bless_whose_runs_never_agree_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (o, runs) = neon("bless", dir.path(), "940 985 962 940 985 962");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(runs, 6, "3 bless runs and 3 extra ones: {}", text(&o));
    assert!(
        text(&o).contains("the bless runs still disagree after 3 extra run(s)"),
        "{}",
        text(&o)
    );
    assert_eq!(recorded_m(dir.path())["runs"].as_array().unwrap().len(), 5);
}

#[test]
fn a_bless_whose_runs_agree_runs_no_more() {
    let dir = tempfile::tempdir().unwrap();
    let (o, runs) = neon("bless", dir.path(), "940 943 941");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(runs, 3, "{}", text(&o));
    assert!(!text(&o).contains("extra run"), "{}", text(&o));
}
