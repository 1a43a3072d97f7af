//! The CI side of the gate through the real `neon-perf` binary: shards
//! merged equal one unsharded run, merge refuses what cannot be combined,
//! `compare` judges two results files, annotations point at suite lines, and
//! the dashboard exports have the shapes their tools document. The workloads
//! are real child processes with deterministic metrics (or the shipped suites
//! in smoke mode), so no assertion depends on how fast this machine is.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture() -> PathBuf {
    root().join("tests/fixtures/ci/shards.toml")
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_neon-perf"));
    c.env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("NEON_PERF_PARTITION")
        .env_remove("NEON_PERF_ANNOTATIONS")
        .current_dir(root());
    c
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn neon(args: &[&str]) -> Output {
    bin().args(args).output().expect("neon-perf runs")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn read(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// What must match between a merged and an unsharded run: scenarios in
/// order, status, metric keys with verdicts, checklist states, exit code.
fn structure(v: &Value) -> Value {
    let scenarios: Vec<Value> = v["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let verdicts: Vec<Value> = s["verdicts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| serde_json::json!([x["key"], x["verdict"]]))
                .collect();
            serde_json::json!({
                "name": format!("{}::{}", s["suite"].as_str().unwrap(), s["scenario"].as_str().unwrap()),
                "status": s["status"],
                "verdicts": verdicts,
            })
        })
        .collect();
    let checklist: Vec<Value> = v["checklist"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| serde_json::json!([c["item"], c["state"]]))
        .collect();
    serde_json::json!({
        "scenarios": scenarios,
        "checklist": checklist,
        "exit_code": v["exit_code"],
    })
}

/// Runs `args` unsharded and as two shards, merges the shards, and returns
/// (unsharded, merged) results.
fn unsharded_and_merged(dir: &Path, args: &[&str]) -> (Value, Value) {
    let all = dir.join("all.json");
    let o = neon(&[args, &["--json", s(&all)]].concat());
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", text(&o));
    let mut shards = Vec::new();
    for k in 1..=2 {
        let f = dir.join(format!("shard-{k}.json"));
        let part = format!("{k}/2");
        let o = neon(&[args, &["--partition", &part, "--json", s(&f)]].concat());
        assert!(matches!(o.status.code(), Some(0 | 1)), "{}", text(&o));
        shards.push(f);
    }
    let merged = dir.join("merged.json");
    let md = dir.join("merged.md");
    let mut margs = vec!["merge"];
    margs.extend(shards.iter().map(|p| s(p)));
    margs.extend(["--json", s(&merged), "--markdown", s(&md)]);
    let o = neon(&margs);
    let merged_v = read(&merged);
    assert_eq!(
        o.status.code().map(Value::from),
        Some(merged_v["exit_code"].clone()),
        "merge exits with the code it derived: {}",
        text(&o)
    );
    assert!(
        std::fs::read_to_string(&md)
            .unwrap()
            .contains("Performance checklist")
    );
    (read(&all), merged_v)
}

/// The part of a run that does not depend on how the machine performed:
/// the scenarios in order, which were ignored (and why), and, for those
/// that produced verdicts, which metrics got one. (Whether a CPU run is
/// `invalid` under contention, or a timing check such as batch scaling
/// passes, is a measurement: two runs on a loaded machine can differ.)
fn shape(a: &Value, b: &Value) {
    let (sa, sb) = (
        a["scenarios"].as_array().unwrap(),
        b["scenarios"].as_array().unwrap(),
    );
    let names = |v: &Vec<Value>| -> Vec<String> {
        v.iter()
            .map(|s| {
                format!(
                    "{}::{}",
                    s["suite"].as_str().unwrap(),
                    s["scenario"].as_str().unwrap()
                )
            })
            .collect()
    };
    assert_eq!(names(sa), names(sb));
    for (x, y) in sa.iter().zip(sb) {
        let ignored =
            |s: &Value| (s["status"] == "ignored").then(|| s["outcome"]["reason"].clone());
        assert_eq!(
            ignored(x),
            ignored(y),
            "{} / {}",
            x["scenario"],
            x["status"]
        );
        let keys = |s: &Value| -> Vec<Value> {
            s["verdicts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["key"].clone())
                .collect()
        };
        if !keys(x).is_empty() && !keys(y).is_empty() {
            assert_eq!(keys(x), keys(y), "{}", x["scenario"]);
        }
    }
    let items = |v: &Value| -> Vec<Value> {
        v["checklist"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["item"].clone())
            .collect()
    };
    assert_eq!(items(a), items(b));
}

#[test]
fn two_shards_of_the_shipped_suites_merged_equal_one_unsharded_run() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("baselines");
    let (all, merged) = unsharded_and_merged(
        dir.path(),
        &["run", "suites", "--smoke", "--baselines", s(&base)],
    );
    assert!(all["scenarios"].as_array().unwrap().len() >= 10, "{all}");
    shape(&all, &merged);
}

#[test]
fn two_shards_of_a_gated_suite_merged_equal_one_unsharded_run() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("baselines");
    let o = neon(&[
        "bless",
        s(&fixture()),
        "--baselines",
        s(&base),
        "--runs",
        "1",
    ]);
    // beta breaks its bound, epsilon fails: bless says so with exit 1.
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let (all, merged) =
        unsharded_and_merged(dir.path(), &["run", s(&fixture()), "--baselines", s(&base)]);
    let st = structure(&all);
    let status = |name: &str| {
        st["scenarios"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == name)
            .map(|x| x["status"].clone())
            .unwrap()
    };
    // A mix worth comparing: gated passes, a bound, a failure, an ignored GPU scenario.
    assert_eq!(status("shards::alpha"), "pass");
    assert_eq!(status("shards::beta"), "regressed");
    assert_eq!(status("shards::epsilon"), "failed");
    assert_eq!(status("shards::zeta"), "ignored");
    assert_eq!(st["exit_code"], 1);
    assert_eq!(st, structure(&merged));
    // The merged file's exit code is the unsharded run's (both 1 here).
    assert_eq!(merged["exit_code"], all["exit_code"]);
}

#[test]
fn merge_refuses_what_cannot_be_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let base = d.join("b");
    let mut shards = Vec::new();
    for k in 1..=2 {
        let f = d.join(format!("s{k}.json"));
        let part = format!("{k}/2");
        let o = neon(&[
            "run",
            s(&fixture()),
            "--smoke",
            "--baselines",
            s(&base),
            "--partition",
            &part,
            "--json",
            s(&f),
        ]);
        assert!(matches!(o.status.code(), Some(0 | 1)), "{}", text(&o));
        shards.push(f);
    }
    let (s1, s2) = (&shards[0], &shards[1]);

    // Another machine's shard.
    let mut other = read(s2);
    other["hardware_key"]["cpu_model"] = "Other CPU".into();
    let o2 = d.join("other.json");
    std::fs::write(&o2, other.to_string()).unwrap();
    let o = neon(&["merge", s(s1), s(&o2)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("different hardware") && t.contains("other.json"),
        "{t}"
    );
    assert!(t.contains("other-cpu"), "names the other key: {t}");

    // A file twice, and a shard twice in two files: said as such, not as
    // another shard missing.
    let o = neon(&["merge", s(s1), s(s2), s(s1)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("is given more than once"), "{}", text(&o));
    let o = neon(&["merge", s(s1), s(s1)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("is given more than once"), "{}", text(&o));
    assert!(!text(&o).contains("missing"), "{}", text(&o));
    let copy = d.join("s1-copy.json");
    std::fs::copy(s1, &copy).unwrap();
    let o = neon(&["merge", s(s1), s(&copy)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("shard hash:1/2 is given twice"), "{t}");
    assert!(t.contains("s1.json") && t.contains("s1-copy.json"), "{t}");

    // A missing shard.
    let o = neon(&["merge", s(s1)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("shard(s) 2/2 missing"), "{}", text(&o));

    // The same scenario in two files (no partition recorded).
    let mut dup = read(s1);
    dup["partition"] = Value::Null;
    let (d1, d2) = (d.join("d1.json"), d.join("d2.json"));
    std::fs::write(&d1, dup.to_string()).unwrap();
    std::fs::write(&d2, dup.to_string()).unwrap();
    let o = neon(&["merge", s(&d1), s(&d2)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("is in both"), "{}", text(&o));

    // A truncated file names itself and the position.
    let bytes = std::fs::read(s1).unwrap();
    let cut = d.join("cut.json");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let o = neon(&["merge", s(&cut)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("cut.json:"), "{}", text(&o));

    // A file from a future format.
    let mut future = read(s1);
    future["format_version"] = 99.into();
    let fut = d.join("future.json");
    std::fs::write(&fut, future.to_string()).unwrap();
    let o = neon(&["compare", s(s1), s(&fut)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("format_version 99"), "{}", text(&o));
}

#[test]
fn compare_judges_new_against_old_with_the_gate_rules() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let base = d.join("b");
    let run = |out: &Path| {
        let o = neon(&[
            "run",
            s(&fixture()),
            "--smoke",
            "--baselines",
            s(&base),
            "-f",
            "alpha",
            "--json",
            s(out),
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    };
    // Both runs emit m = 5 ms; the slower one is derived by scaling the
    // samples by 1.2, as a 20% slower build would measure.
    let (old, new) = (d.join("old.json"), d.join("new.json"));
    run(&old);
    run(&new);
    let mut slower = read(&new);
    for m in slower["scenarios"][0]["metrics"].as_array_mut().unwrap() {
        if m["key"] == "m" {
            for x in m["samples"].as_array_mut().unwrap() {
                *x = (x.as_f64().unwrap() * 1.2).into();
            }
        }
    }
    let slow = d.join("slow.json");
    std::fs::write(&slow, slower.to_string()).unwrap();

    let out = d.join("cmp.json");
    let o = neon(&["compare", s(&old), s(&slow), "--json", s(&out)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v = read(&out);
    assert_eq!(v["mode"], "compare");
    let verdicts = v["scenarios"][0]["verdicts"].as_array().unwrap();
    let m = verdicts.iter().find(|x| x["key"] == "m").unwrap();
    assert_eq!(m["verdict"], "regressed", "{m}");
    assert!((m["change"].as_f64().unwrap() - 0.2).abs() < 1e-6, "{m}");
    // `items` is direction = "neither" in the suite: reported, never gated.
    let items = verdicts.iter().find(|x| x["key"] == "items").unwrap();
    assert_eq!(items["gated"], false, "{items}");

    let o = neon(&["compare", s(&old), s(&new)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = neon(&["compare", s(&slow), s(&old)]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "an improvement passes: {}",
        text(&o)
    );
    assert!(text(&o).contains("IMPROVED"), "{}", text(&o));
}

#[test]
fn compare_fails_a_scenario_missing_from_new_and_notes_one_new_in_new() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let both = d.join("both.json");
    let o = neon(&[
        "run",
        s(&fixture()),
        "--smoke",
        "--baselines",
        s(&d.join("b")),
        "-f",
        "alpha",
        "-f",
        "gamma",
        "--json",
        s(&both),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let mut v = read(&both);
    v["scenarios"]
        .as_array_mut()
        .unwrap()
        .retain(|x| x["scenario"] != "gamma");
    let alpha = d.join("alpha.json");
    std::fs::write(&alpha, v.to_string()).unwrap();

    let out = d.join("cmp.json");
    let o = neon(&["compare", s(&both), s(&alpha), "--json", s(&out)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("FAILED"), "{t}");
    assert!(t.contains("shards::gamma"), "{t}");
    assert!(t.contains("missing from"), "{t}");
    let v = read(&out);
    let gamma = v["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["scenario"] == "gamma")
        .expect("gamma is in the report");
    assert_eq!(gamma["status"], "failed", "{gamma}");
    assert_eq!(v["exit_code"], 1);

    // A scenario new in NEW has no baseline: a note, not a failure.
    let o = neon(&["compare", s(&alpha), s(&both)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("note: shards::gamma has no run in"),
        "{}",
        text(&o)
    );
}

#[test]
fn annotations_point_at_the_scenario_in_its_suite_file() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("b");
    let o = bin()
        .args(["run", s(&fixture()), "--smoke", "--baselines", s(&base)])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_WORKSPACE", root())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("::")).collect();
    // beta breaks `max = "6ms"` (its [[scenario]] is line 26), epsilon fails (line 58).
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(
        lines[0].starts_with("::error file=tests/fixtures/ci/shards.toml,line=26,col=1,title=neon-perf%3A shards%3A%3Abeta regressed::m: 7.00 ms is above max 6.00 ms"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with("::error file=tests/fixtures/ci/shards.toml,line=58,"),
        "{}",
        lines[1]
    );
    // Off unless on Actions (or asked for).
    let o = neon(&[
        "run",
        s(&fixture()),
        "--smoke",
        "--baselines",
        s(&base),
        "-f",
        "beta",
    ]);
    assert!(!String::from_utf8_lossy(&o.stdout).contains("::error"));
}

#[test]
fn dashboard_exports_have_the_documented_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (bmf, gb) = (d.join("bmf.json"), d.join("bench.json"));
    let o = neon(&[
        "run",
        s(&fixture()),
        "--smoke",
        "--baselines",
        s(&d.join("b")),
        "--bmf",
        s(&bmf),
        "--github-benchmark",
        s(&gb),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));

    // Bencher Metric Format (bencher.dev/docs/reference/bencher-metric-format):
    // {benchmark: {measure: {value, lower_value?, upper_value?}}}, numbers only.
    let v = read(&bmf);
    let benches = v.as_object().unwrap();
    assert!(benches.contains_key("shards::alpha"), "{v}");
    assert!(
        benches.contains_key("shards::delta{v=2}"),
        "one benchmark per point: {v}"
    );
    assert!(
        !benches.contains_key("shards::epsilon"),
        "a failed run exports nothing"
    );
    for (name, measures) in benches {
        for (measure, m) in measures.as_object().unwrap() {
            let m = m.as_object().unwrap();
            assert!(m["value"].is_number(), "{name}/{measure}");
            for (k, x) in m {
                assert!(
                    ["value", "lower_value", "upper_value"].contains(&k.as_str()),
                    "{k}"
                );
                assert!(x.is_number(), "{name}/{measure}/{k}");
            }
            if let (Some(lo), Some(hi)) = (m.get("lower_value"), m.get("upper_value")) {
                let (lo, hi, val) = (
                    lo.as_f64().unwrap(),
                    hi.as_f64().unwrap(),
                    m["value"].as_f64().unwrap(),
                );
                assert!(lo <= val && val <= hi, "{name}/{measure}");
            }
        }
    }
    assert_eq!(v["shards::alpha"]["m"]["value"], 0.005);

    // github-action-benchmark custom tools: an array of {name, unit, value,
    // range?, extra?}, one file per direction.
    let smaller = read(&d.join("bench.smaller.json"));
    let bigger = read(&d.join("bench.bigger.json"));
    for (file, want_m) in [(&smaller, true), (&bigger, false)] {
        for e in file.as_array().unwrap() {
            let e = e.as_object().unwrap();
            assert!(e["name"].is_string() && e["unit"].is_string() && e["value"].is_number());
            for k in e.keys() {
                assert!(
                    ["name", "unit", "value", "range", "extra"].contains(&k.as_str()),
                    "{k}"
                );
            }
        }
        let names: Vec<&str> = file
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        assert_eq!(names.contains(&"shards::alpha m"), want_m, "{names:?}");
        assert_eq!(names.contains(&"shards::alpha rate"), !want_m, "{names:?}");
        assert!(
            !names.contains(&"shards::alpha items"),
            "direction neither is in neither file"
        );
    }
}
