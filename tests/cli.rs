//! End to end through the real `neon-perf` binary: exit codes, reports,
//! bless then gate, failures people can act on. The workloads are real child
//! processes; their metrics are deterministic so no verdict depends on how
//! fast this machine is.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_neon-perf"))
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/cli")
        .join(name)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn run(args: &[&str], baselines: &Path) -> Output {
    bin()
        .args(args)
        .arg("--baselines")
        .arg(baselines)
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .expect("neon-perf runs")
}

#[test]
fn bless_then_gate_passes_then_catches_a_regression() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("baselines");
    let five = fixture("gate-5.toml");
    let six = fixture("gate-6.toml");

    let o = run(
        &["bless", five.to_str().unwrap(), "--reason", "first"],
        &base,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let files: Vec<_> = walk(&base);
    assert_eq!(files.len(), 1, "one baseline file: {files:?}");
    assert!(files[0].ends_with("gate.toml"), "{files:?}");
    // One bless records three runs, started 1 s apart.
    assert_eq!(recorded_runs(&files[0]), 3);

    let json = dir.path().join("out/results.json");
    let gate = |suite: &Path| {
        run(
            &[
                "run",
                suite.to_str().unwrap(),
                "--json",
                json.to_str().unwrap(),
            ],
            &base,
        )
    };
    let o = gate(&five);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(v["format_version"], 1);
    let verdicts = v["scenarios"][0]["verdicts"].as_array().unwrap();
    let m = verdicts.iter().find(|x| x["key"] == "m").expect("metric m");
    assert_eq!(m["verdict"], "pass", "{m}");

    // 6 ms against a 5 ms baseline: +20%, every sample identical: regressed,
    // and confirmed by two more runs, each after a 1 s pause, pooled.
    let o = gate(&six);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("REGRESSED"), "{out}");
    assert!(out.contains("gate::emit"), "{out}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let s = &v["scenarios"][0];
    let m = s["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["key"] == "m")
        .unwrap();
    assert_eq!(m["verdict"], "regressed", "{m}");
    assert!(
        m["note"]
            .as_str()
            .unwrap()
            .contains("pooled samples of two more runs"),
        "{m}"
    );
    assert!(
        s["wall_time_s"].as_f64().unwrap() >= 2.0,
        "two pauses of 1 s: {s}"
    );
}

#[test]
fn bless_runs_sets_how_many_runs_one_bless_records() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("baselines");
    let five = fixture("gate-5.toml");
    for _ in 0..2 {
        let o = run(&["bless", five.to_str().unwrap(), "--runs", "1"], &base);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    }
    assert_eq!(recorded_runs(&walk(&base)[0]), 2, "one run per bless");
    let o = run(&["bless", five.to_str().unwrap(), "--runs", "0"], &base);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn overrides_out_of_range_exit_2_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let six = fixture("gate-6.toml");
    for args in [
        ["--tolerance", "-1"],
        ["--tolerance", "5"],
        ["--min-samples", "0"],
        ["--max-time", "0s"],
        ["--max-contention", "0"],
        ["--target-rel-ci", "0"],
        ["--target-rel-ci", "7"],
    ] {
        let o = run(
            &["run", six.to_str().unwrap(), args[0], args[1]],
            dir.path(),
        );
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        let out = text(&o);
        assert!(out.contains(&format!("'{}", args[0])), "{args:?}: {out}");
        assert!(!out.contains("Summary:"), "nothing ran: {out}");
    }
}

#[test]
fn two_suites_with_one_name_are_bad_input_for_every_verb() {
    let dir = tempfile::tempdir().unwrap();
    let (five, six) = (fixture("gate-5.toml"), fixture("gate-6.toml"));
    let (five, six) = (five.to_str().unwrap(), six.to_str().unwrap());
    for verb in ["check", "list", "run", "bless"] {
        let o = if verb == "check" {
            bin().args([verb, five, six]).output().unwrap()
        } else {
            run(&[verb, five, six], dir.path())
        };
        assert_eq!(o.status.code(), Some(2), "{verb}: {}", text(&o));
        let out = text(&o);
        assert!(
            out.contains("suite name `gate` is already used by"),
            "{verb}: {out}"
        );
        assert!(
            out.contains("gate-5.toml") && out.contains("gate-6.toml"),
            "{verb}: {out}"
        );
    }
    assert!(walk(dir.path()).is_empty(), "nothing blessed");
}

#[test]
fn no_suite_file_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    // An empty folder, and a folder whose name looks like a suite file.
    let named = dir.path().join("x.toml");
    std::fs::create_dir(&named).unwrap();
    for path in [dir.path(), named.as_path()] {
        let o = bin().args(["check"]).arg(path).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        let want = format!("no suite files found in {}", path.display());
        assert!(text(&o).contains(&want), "{}", text(&o));
        let o = run(&["run", path.to_str().unwrap()], dir.path());
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains(&want), "{}", text(&o));
        assert!(!text(&o).contains("[]"), "{}", text(&o));
    }
    let o = run(
        &[
            "run",
            fixture("gate-5.toml").to_str().unwrap(),
            "-f",
            "nope",
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("matches the filter `nope`"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_rule_matching_no_metric_or_gating_nothing_is_a_warning_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let o = run(
        &[
            "run",
            fixture("typo-rule.toml").to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = text(&o);
    let typo = "warning: metric rule `wal_time` matches no metric this scenario reported, \
                so it is not enforced: did you mean `wall_time`?";
    assert!(out.contains(typo), "{out}");
    assert!(out.contains("metric rule `m{batch=1}`"), "{out}");
    assert!(!out.contains("rule `peak_rss`"), "a matching rule: {out}");
    let ungated = "warning: metric rule `n` says `gate = true`, but `n` is reported with \
                   direction `neither`, so a change never fails it: add `direction = \"lower\"` \
                   or `direction = \"higher\"` to gate it";
    assert!(out.contains(ungated), "{out}");
    assert!(!out.contains("rule `m` says"), "a gated metric: {out}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let warnings = v["scenarios"][0]["warnings"].as_array().unwrap();
    let rules: Vec<&str> = warnings
        .iter()
        .filter_map(|w| w.as_str())
        .filter(|w| w.starts_with("metric rule"))
        .collect();
    assert_eq!(rules.len(), 3, "{warnings:?}");
}

#[test]
fn failing_program_fails_with_status_and_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let o = run(
        &[
            "run",
            fixture("failing.toml").to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("exited with status 3"), "{out}");
    assert!(out.contains("model file missing: weights.bin"), "{out}");
    let xml = std::fs::read_to_string(junit).unwrap();
    assert!(xml.contains("<testcase name=\"broken\""), "{xml}");
    assert!(xml.contains("<error"), "{xml}");
}

#[test]
fn reports_keep_units_and_say_each_thing_once() {
    let dir = tempfile::tempdir().unwrap();
    let (md, junit) = (dir.path().join("r.md"), dir.path().join("r.xml"));
    let o = run(
        &[
            "run",
            fixture("display.toml").to_str().unwrap(),
            "--no-color",
            "--markdown",
            md.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    let md = std::fs::read_to_string(md).unwrap();
    let xml = std::fs::read_to_string(junit).unwrap();
    for report in [&out, &md, &xml] {
        // A program's `req/s` keeps its name; a zero time is not "0 s".
        assert!(report.contains(" 1.23 kreq/s "), "{report}");
        assert!(report.contains(" 0 ms "), "{report}");
        assert!(
            !report.contains("k/s ") && !report.contains(" 0 s "),
            "{report}"
        );
    }
    assert!(
        out.contains("display::values: lat 12.0 ms is above max 10.0 ms"),
        "{out}"
    );
    assert!(
        xml.contains(r#"<failure message="lat: 12.0 ms is above max 10.0 ms""#),
        "{xml}"
    );
    assert!(!xml.contains("(12.0 ms)"), "{xml}");
    let broken = xml
        .split("<testcase")
        .find(|c| c.contains("\"broken\""))
        .unwrap();
    assert!(
        broken.contains("ask @octocat") && !broken.contains("estimator"),
        "{broken}"
    );
    // The quoted command is a code span, where GitHub mentions nobody.
    assert!(
        md.contains("`sh -c echo 'ask @octocat' >&2; exit 3` exited with status 3"),
        "{md}"
    );
}

#[test]
fn absolute_bound_fails_without_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(
        &["run", fixture("bounds.toml").to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("max"), "{}", text(&o));
}

#[test]
fn a_report_that_cannot_be_written_does_not_stop_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("r.md");
    let json = dir.path().join("r.json");
    let o = run(
        &[
            "run",
            fixture("bounds.toml").to_str().unwrap(),
            // A folder where the JUnit file should go.
            "--junit",
            dir.path().to_str().unwrap(),
            "--markdown",
            md.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stderr.contains(&format!("error: writing {}: ", dir.path().display())),
        "{stderr}"
    );
    assert!(
        md.is_file() && json.is_file(),
        "the other reports are written"
    );
    // The summary's exit code is the process's, printed after the reports.
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.ends_with("exit 2 (1 report(s) could not be written; the verdicts alone give exit 1)"),
        "{stdout}"
    );
    assert!(!stdout.contains("; exit 1"), "{stdout}");
}

#[test]
fn malformed_suite_exits_2_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture("malformed.toml");
    for verb in ["run", "check"] {
        let mut args = vec![verb, path.to_str().unwrap()];
        let o = if verb == "check" {
            args.truncate(2);
            bin().args(&args).output().unwrap()
        } else {
            run(&args, dir.path())
        };
        assert_eq!(o.status.code(), Some(2), "{verb}: {}", text(&o));
        let out = text(&o);
        assert!(out.contains("malformed.toml:7:"), "{verb}: {out}");
        assert!(out.contains("command"), "did-you-mean hint: {out}");
    }
}

#[test]
fn smoke_run_of_examples_writes_all_reports() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let md = dir.path().join("r.md");
    let junit = dir.path().join("r.xml");
    let html = dir.path().join("r.html");
    let suites = Path::new(env!("CARGO_MANIFEST_DIR")).join("suites/examples.toml");
    let o = run(
        &[
            "run",
            "--smoke",
            suites.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
            "--markdown",
            md.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let names: Vec<&str> = v["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["scenario"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["sort", "python-infer"]);
    for s in v["scenarios"].as_array().unwrap() {
        assert_eq!(s["outcome"]["status"], "ran", "{s}");
        let keys: Vec<&str> = s["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["key"].as_str().unwrap())
            .collect();
        assert!(keys.iter().any(|k| k.starts_with("wall_time{")), "{keys:?}");
        assert!(s["monitor"]["host"]["samples"].as_u64().unwrap() > 0, "{s}");
    }
    let checklist = v["checklist"].as_array().unwrap();
    assert_eq!(checklist.len(), 7);
    let monitoring = checklist
        .iter()
        .find(|c| c["item"] == "monitoring")
        .unwrap();
    // Its checks passed, but a smoke run compares nothing: not ticked.
    assert_eq!(monitoring["state"], "not_compared", "{monitoring}");
    assert!(
        monitoring["evidence"][0]
            .as_str()
            .unwrap()
            .contains("host monitoring: "),
        "{monitoring}"
    );
    let md = std::fs::read_to_string(md).unwrap();
    assert!(md.contains("Performance checklist"), "{md}");
    let xml = std::fs::read_to_string(junit).unwrap();
    assert!(xml.contains("<testsuite name=\"examples\""), "{xml}");
    let html = std::fs::read_to_string(html).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("examples::python-infer"));
    // Smoke samples: the command timings still get a distribution plot.
    assert!(html.contains("<svg class=\"plot\""), "no plot in the page");
}

/// How many runs the baseline file records for `emit`'s metric `m`.
fn recorded_runs(file: &Path) -> usize {
    let recorded: toml::Value = toml::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    recorded["scenario"]["emit"]["metric"]["m"]["runs"]
        .as_array()
        .map_or(0, Vec::len)
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// A scenario ignored for a piece this runner lacks (here its server
/// program) passes nothing where it has a baseline on this hardware: it
/// was measured here before, and a runner that lost the piece must not
/// turn the gate green. Without a baseline, ignored with the reason.
#[test]
fn a_missing_server_fails_where_a_baseline_expects_it_and_is_ignored_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("s.toml");
    let write = |program: &str| {
        std::fs::write(
            &suite,
            format!(
                "[suite]\nname = \"s\"\n[[scenario]]\nname = \"flood\"\nkind = \"websocket_flood\"\n\
                 url = \"ws://127.0.0.1:{{port}}/\"\n\
                 server = {{ command = [\"{program}\", \"serve\", \"--bind\", \"127.0.0.1:{{port}}\"], ready = \"log:listening on\" }}\n\
                 connections = 2\nduration = \"300ms\"\nwarmup = \"0s\"\nmax_time = \"2s\"\n"
            ),
        )
        .unwrap()
    };
    let s = suite.to_str().unwrap();
    let base = dir.path().join("baselines");
    let none = dir.path().join("none");
    write("/nonexistent/team-server");
    let o = run(&["run", s], &none);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("IGNORED"), "{}", text(&o));

    write("{neon_perf}");
    let o = run(&["bless", s, "--runs", "1", "--reason", "t"], &base);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    write("/nonexistent/team-server");
    let o = run(&["run", s], &base);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("the server program `/nonexistent/team-server` was not found; this scenario has a baseline on this hardware")
            && out.contains("delete its `[scenario.flood]` tables from ")
            && out.contains("/s.toml"),
        "{out}"
    );
}

/// A run that measured everything and then failed a check (here the
/// program's own, as a leak check would) stays failed, but is compared as
/// measured: its table and verdicts are there, a regression among them,
/// and the checklist counts it as compared.
#[test]
fn a_failed_check_keeps_the_comparison() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("baselines");
    let suite = dir.path().join("gate.toml");
    let script = dir.path().join("emit.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nfor i in 1 2 3 4 5; do echo \"{\\\"metric\\\": \\\"m\\\", \\\"value\\\": $VALUE, \\\"unit\\\": \\\"ms\\\"}\"; done\n\
         echo \"{\\\"check\\\": \\\"inputs validated\\\", \\\"passed\\\": $PASSED, \\\"evidence\\\": \\\"e\\\", \\\"item\\\": \\\"error-handling\\\"}\"\n",
    )
    .unwrap();
    let write = |value: u32, passed: bool| {
        let five = std::fs::read_to_string(fixture("gate-5.toml")).unwrap();
        let s = five
            .replace("{suite_dir}/emit.sh", &script.display().to_string())
            .replace(
                "env = { VALUE = \"5\" }",
                &format!("env = {{ VALUE = \"{value}\", PASSED = \"{passed}\" }}"),
            );
        std::fs::write(&suite, s).unwrap();
    };
    let s = suite.to_str().unwrap();
    write(5, true);
    let o = run(&["bless", s, "--runs", "1", "--reason", "t"], &base);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    write(6, false);
    let json = dir.path().join("r.json");
    let o = run(&["run", s, "--json", json.to_str().unwrap()], &base);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("FAILED") && out.contains("check `inputs validated` failed"),
        "{out}"
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let sc = &v["scenarios"][0];
    assert_eq!(sc["status"], "failed", "{sc:#}");
    let m = sc["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["key"] == "m")
        .unwrap_or_else(|| panic!("no verdict for m: {sc:#}"));
    assert_eq!(m["verdict"], "regressed", "{m}");
    assert!(out.contains("(cpu, "), "the table is printed: {out}");
    let monitoring = v["checklist"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["item"] == "monitoring")
        .unwrap();
    // Its host monitoring passed, and the run was compared: ticked, not
    // "not compared … record one with `neon-perf bless`".
    assert_eq!(monitoring["state"], "ticked", "{monitoring}");
}

/// An unset `{env:NAME}` stops only the scenarios that read it: the suite
/// loads, `list` and `check` say what is missing, a run of the other
/// scenarios works, and a run that selects the one that reads it stops
/// before anything runs (exit 2), at the text that reads it.
#[test]
fn an_unset_secret_stops_only_the_scenario_that_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("s.toml");
    let emit = fixture("emit.sh");
    let scenario = |name: &str, env: &str| {
        format!(
            "[[scenario]]\nname = \"{name}\"\nkind = \"command\"\ncommand = [\"sh\", \"{}\"]\n\
             env = {{ VALUE = \"5\"{env} }}\nmin_samples = 3\nmax_samples = 3\nwarmup = \"0s\"\n",
            emit.display()
        )
    };
    let text_of = format!(
        "[suite]\nname = \"s\"\n{}{}",
        scenario("plain", ""),
        scenario(
            "secret",
            ", TOKEN = \"{env:NEON_PERF_TEST_NEVER_SET_SECRET}\""
        )
    );
    std::fs::write(&suite, &text_of).unwrap();
    let line = 1 + text_of.lines().position(|l| l.contains("{env:")).unwrap();
    let at = format!("s.toml:{line}:");
    let s = suite.to_str().unwrap();
    let base = dir.path().join("baselines");

    let o = run(&["list", s], &base);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("fails here: `env.TOKEN` reads the environment variable `NEON_PERF_TEST_NEVER_SET_SECRET`, which is not set"),
        "{out}"
    );
    let o = bin().args(["check", s]).output().unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("ok: 1 suite(s), 2 scenario(s)"), "{out}");
    assert!(
        out.contains(&at) && out.contains("`run` fails s::secret and `bless` stops on it"),
        "{out}"
    );

    let plain = dir.path().join("plain.json");
    let o = run(
        &["run", s, "-f", "plain", "--json", plain.to_str().unwrap()],
        &base,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // The program prints its own metric, so the process's times are
    // reported, not gated; its memory and its own metric are gated.
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&plain).unwrap()).unwrap();
    let verdicts = v["scenarios"][0]["verdicts"].as_array().unwrap();
    let gated = |key: &str| {
        let m = verdicts.iter().find(|x| x["key"] == key).unwrap();
        (m["gated"].as_bool().unwrap(), m["direction"].clone())
    };
    assert_eq!(gated("wall_time"), (false, "neither".into()));
    assert_eq!(gated("cpu_time"), (false, "neither".into()));
    assert!(gated("peak_rss").0);
    assert!(gated("m").0);

    // A gate runs what it can (a fork's pull request has no secrets): the
    // scenario that reads it fails at its text, the other is measured and
    // reported, and the run exits 2.
    let json = dir.path().join("all.json");
    let o = run(&["run", s, "--json", json.to_str().unwrap()], &base);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(
        out.contains("`env.TOKEN` reads the environment variable `NEON_PERF_TEST_NEVER_SET_SECRET`, which is not set")
            && out.contains(&at)
            && out.contains("they failed, the others ran; exit 2"),
        "{out}"
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let status = |name: &str| {
        let sc = v["scenarios"].as_array().unwrap();
        let x = sc.iter().find(|x| x["scenario"] == name).unwrap();
        x["status"].as_str().unwrap().to_string()
    };
    assert_eq!(status("secret"), "failed", "{v:#}");
    assert_eq!(v["exit_code"], 2, "the reports say the exit too");
    assert!(!out.contains("could not load"), "the suite loaded: {out}");
    assert_ne!(status("plain"), "failed", "{v:#}");
    // A bless records nothing half: it stops before anything runs.
    let o = run(&["bless", s, "--reason", "t"], &base);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(
        out.contains("`-f` selects the scenarios that do not"),
        "{out}"
    );
    assert!(!base.exists(), "nothing recorded: {out}");
    // With the variable set, it runs.
    let o = bin()
        .args(["run", s, "--baselines"])
        .arg(&base)
        .args(["--json", json.to_str().unwrap()])
        .env("NEON_PERF_TEST_NEVER_SET_SECRET", "x")
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

/// A `primary` the program never prints fails with what it printed and
/// the name closest to the typo.
#[test]
fn a_primary_typo_says_what_was_printed_and_the_closest_name() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("p.toml");
    std::fs::write(
        &suite,
        r#"[[scenario]]
name = "typo"
kind = "command"
command = ["sh", "-c", "echo '{\"metric\": \"latency\", \"value\": 1, \"unit\": \"ms\"}'"]
primary = "latncy"
"#,
    )
    .unwrap();
    let o = run(&["run", suite.to_str().unwrap()], &dir.path().join("b"));
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("primary metric `latncy` was not printed by")
            && out.contains("(it printed: latency); did you mean `primary = \"latency\"`?")
            && out.contains("p.toml:1:"),
        "{out}"
    );
}
