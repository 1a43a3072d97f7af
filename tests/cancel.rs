//! #21 findings 1 and 2, through the real binary: SIGINT or SIGTERM to
//! `neon-perf run` ends the program the scenario started (and its detached
//! descendants), writes the reports of what finished with the run marked
//! cancelled, and exits 128 + the signal; a bless that is cancelled records
//! nothing. A program that leaves a detached descendant behind is named in
//! a warning, and the descendant is ended.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A suite with one quick scenario and one that starts a detached
/// descendant, writes both pids to `pids`, and sleeps for 300 s.
fn suite(dir: &Path) -> PathBuf {
    let pids = dir.join("pids");
    let body = format!(
        r#"
[suite]
name = "cancel"

[defaults]
warmup = "0ms"
warmup_runs = 0
max_contention = 1.0

[[scenario]]
name = "quick"
kind = "command"
command = ["true"]
min_samples = 3
max_samples = 3

[[scenario]]
name = "stuck"
kind = "command"
command = ["sh", "-c", "setsid sleep 300 & echo $! >> {pids}; echo $$ >> {pids}; sleep 300"]
timeout = "600s"
"#,
        pids = pids.display()
    );
    let path = dir.join("cancel.toml");
    std::fs::write(&path, body).unwrap();
    path
}

fn start(cmd: &str, dir: &Path, suite: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_neon-perf"))
        .current_dir(dir)
        .args([cmd, suite.to_str().unwrap(), "--baselines", "baselines"])
        .args(["--json", "results.json"])
        .args(if cmd == "bless" {
            &["--reason", "t", "--runs", "1"][..]
        } else {
            &[]
        })
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("NEON_PERF_REPORTS_DIR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("neon-perf starts")
}

/// The two pids the stuck scenario wrote, once it has.
fn wait_for_pids(file: &Path) -> Vec<i32> {
    let t0 = Instant::now();
    loop {
        let pids: Vec<i32> = std::fs::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        if pids.len() >= 2 {
            return pids;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the scenario never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn alive(pid: i32) -> bool {
    std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|e| !e.is_empty())
}

/// Whether `pid` is still running 2 s on (a killed process takes a moment
/// to let go of its memory); its /proc/PID/stat if so.
fn survives(pid: i32) -> Option<String> {
    let t0 = Instant::now();
    while alive(pid) {
        if t0.elapsed() > Duration::from_secs(2) {
            return Some(std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

fn cancel_with(sig: i32, cmd: &str) -> (std::process::Output, Vec<i32>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let suite = suite(d);
    let child = start(cmd, d, &suite);
    let pids = wait_for_pids(&d.join("pids"));
    // SAFETY: signals the neon-perf this test started.
    unsafe { libc::kill(child.id() as i32, sig) };
    let t0 = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
    (out, pids, dir)
}

#[test]
fn sigterm_ends_the_workload_and_writes_the_report() {
    let (out, pids, dir) = cancel_with(libc::SIGTERM, "run");
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(143), "{text}");
    for pid in &pids {
        if let Some(stat) = survives(*pid) {
            panic!("pid {pid} outlived the cancel: {stat}\n{text}");
        }
    }
    assert!(text.contains("SIGTERM"), "{text}");
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("results.json")).unwrap()).unwrap();
    assert_eq!(results["exit_code"], 143);
    assert!(
        results["cancelled"].as_str().unwrap().contains("SIGTERM"),
        "{results}"
    );
    let scenarios = results["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), 2, "quick finished, stuck was cut short");
    assert_eq!(scenarios[1]["scenario"], "stuck");
    assert_eq!(scenarios[1]["status"], "failed");
    assert!(
        scenarios[1]["outcome"]["error"]
            .as_str()
            .unwrap()
            .contains("cancelled"),
        "{}",
        scenarios[1]
    );
}

#[test]
fn a_cancelled_bless_records_nothing() {
    let (out, pids, dir) = cancel_with(libc::SIGINT, "bless");
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(130), "{text}");
    for pid in &pids {
        if let Some(stat) = survives(*pid) {
            panic!("pid {pid} outlived the cancel: {stat}\n{text}");
        }
    }
    assert!(
        text.contains("nothing recorded: the bless was cancelled"),
        "{text}"
    );
    assert!(
        !dir.path().join("baselines").exists() || walk(&dir.path().join("baselines")).is_empty(),
        "a cancelled bless wrote {:?}",
        walk(&dir.path().join("baselines"))
    );
}

fn walk(d: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A program that leaves a detached descendant holding its stdout: the run
/// ends (it used to hang for ever), the descendant is ended and named.
#[test]
fn a_detached_descendant_is_ended_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pids = d.join("pids");
    let body = format!(
        r#"
[suite]
name = "leftover"

[defaults]
warmup = "0ms"
warmup_runs = 0
max_contention = 1.0

[[scenario]]
name = "daemon"
kind = "command"
command = ["sh", "-c", "setsid sleep 300 & echo $! >> {pids}"]
min_samples = 3
max_samples = 3
"#,
        pids = pids.display()
    );
    let suite = d.join("leftover.toml");
    std::fs::write(&suite, body).unwrap();
    let t0 = Instant::now();
    let out = start("run", d, &suite).wait_with_output().unwrap();
    let text = common::text(&out);
    assert!(t0.elapsed() < Duration::from_secs(60), "{:?}", t0.elapsed());
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("left processes running after it exited in 3 of 3 run(s)"),
        "{text}"
    );
    // `setsid sleep 300`, or `sleep 300` once setsid has exec'd it.
    assert!(text.contains("sleep 300` ×"), "{text}");
    for pid in std::fs::read_to_string(&pids).unwrap().lines() {
        let pid: i32 = pid.trim().parse().unwrap();
        if let Some(stat) = survives(pid) {
            panic!("pid {pid} was left running: {stat}\n{text}");
        }
    }
}
