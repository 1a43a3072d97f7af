//! A pairing that cannot decide, decided by the stored baseline
//! (`compare::decidable_by_baseline`, `paired::decided_by_baseline`), end to
//! end through the real binary. The head's program is fast in its first run
//! and slow ever after (counted in a file), so every pair but the first is
//! set aside as a slow spell and the pairs cannot decide; the base's is
//! steady. Deterministic: no verdict depends on this machine's speed.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

const SUITE: &str = r#"
[suite]
name = "ab"

[defaults]
warmup = "0ms"
warmup_runs = 1
min_samples = 2
max_samples = 2
max_time = "2s"
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

/// A tree whose program prints `m` at `first` ms for its first `fast`
/// processes and at `then` ms after (three samples per process).
fn tree(root: &Path, first: u32, fast: u32, then: u32) {
    fs::create_dir_all(root.join("suites")).unwrap();
    fs::write(root.join("suites/ab.toml"), SUITE).unwrap();
    fs::write(
        root.join("suites/emit.sh"),
        format!(
            "c=\"$(dirname \"$0\")/count\"\n\
             n=$(cat \"$c\" 2>/dev/null || echo 0)\n\
             echo $((n + 1)) > \"$c\"\n\
             if [ \"$n\" -lt {fast} ]; then v={first}; else v={then}; fi\n\
             for i in 1 2 3; do echo \"{{\\\"metric\\\": \\\"m\\\", \\\"value\\\": $v, \\\"unit\\\": \\\"ms\\\"}}\"; done\n"
        ),
    )
    .unwrap();
}

fn neon(dir: &Path, args: &[&str], baselines: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_neon-perf"))
        .current_dir(dir)
        .args(args)
        .arg("--baselines")
        .arg(baselines)
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

/// `run --against base --pairs 2` from `head`; the verdict of `m`.
fn run_against(head: &Path, base: &Path, baselines: &Path) -> (Output, serde_json::Value) {
    let json = head.join("r.json");
    let o = neon(
        head,
        &[
            "run",
            "suites/ab.toml",
            "--pairs",
            "2",
            "--against",
            base.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ],
        baselines,
    );
    let v: serde_json::Value = serde_json::from_slice(&fs::read(&json).unwrap()).unwrap();
    let m = v["scenarios"][0]["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["key"] == "m")
        .expect("metric m")
        .clone();
    (o, m)
}

fn bless(tree: &Path, baselines: &Path) {
    let o = neon(tree, &["bless", "suites/ab.toml"], baselines);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn an_undecided_pairing_is_decided_by_a_baseline_that_matches_the_base() {
    let dir = tempfile::tempdir().unwrap();
    let (base, head, baselines) = (
        dir.path().join("base"),
        dir.path().join("head"),
        dir.path().join("baselines"),
    );
    tree(&base, 94, 0, 94);
    // The head is fast (99 ms, +5.3%) for its first run (a warm-up and two
    // samples), then slow (150 ms) ever after.
    tree(&head, 99, 3, 150);
    bless(&base, &baselines);
    let (o, m) = run_against(&head, &base, &baselines);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(m["verdict"], "regressed", "{m}");
    let note = m["note"].as_str().unwrap();
    assert!(note.starts_with("the pairs could not decide ("), "{note}");
    assert!(note.contains("pairs set aside for a slow spell"), "{note}");
    assert!(
        note.contains("decided against the stored baseline, whose runs match the base tree's"),
        "{note}"
    );
    assert!(note.contains("confirmed"), "{note}");
    // The pairs stay as evidence: all 16 the extension ran.
    assert_eq!(m["pairs"].as_array().unwrap().len(), 16, "{m}");
    assert!(
        text(&o)
            .contains("the pairs left m undecided: a stored-baseline run of this tree decided m"),
        "{}",
        text(&o)
    );
}

#[test]
fn without_a_matching_baseline_the_pairing_stays_inconclusive() {
    let dir = tempfile::tempdir().unwrap();
    let (base, head) = (dir.path().join("base"), dir.path().join("head"));
    tree(&base, 94, 0, 94);
    tree(&head, 99, 3, 150);

    // No baseline at all.
    let none = dir.path().join("none");
    let (o, m) = run_against(&head, &base, &none);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(m["verdict"], "inconclusive", "{m}");
    assert!(!text(&o).contains("stored-baseline run"), "{}", text(&o));

    // A baseline blessed when the base's code ran at 80 ms: 17.5% away from
    // the base today, so it does not describe this machine now.
    let old = dir.path().join("old");
    let then = dir.path().join("then");
    tree(&then, 80, 0, 80);
    bless(&then, &old);
    let _ = fs::remove_file(head.join("suites/count"));
    let (o, m) = run_against(&head, &base, &old);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(m["verdict"], "inconclusive", "{m}");
    assert!(!text(&o).contains("stored-baseline run"), "{}", text(&o));
}
