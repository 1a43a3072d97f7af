//! The baseline store end to end in a temp dir: bless, load, compare;
//! clear errors for broken files; only scenarios that ran are rewritten; a
//! bless killed mid-write leaves the old baseline intact.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use neon_perf::baseline::{
    BaselineError, BaselineStore, BlessMode, BlessSummary, GpuKey, HardwareKey, Provenance,
    ScenarioStatus,
};
use neon_perf::compare::{Policy, Verdict, compare_scenario};
use neon_perf::metric::{Direction, Estimator, MetricKey, MetricSeries, Unit};
use neon_perf::plan::{Kind, SourceLocation};
use neon_perf::result::{MonitorSummary, Outcome, ScenarioResult};
use neon_perf::stats::Rng;
use tempfile::TempDir;

fn key() -> HardwareKey {
    HardwareKey {
        cpu_model: "Test CPU 9000".into(),
        cpu_cores: 2,
        gpus: vec![],
    }
}

fn gpu_key() -> HardwareKey {
    HardwareKey {
        gpus: vec![GpuKey {
            name: "NVIDIA H100 80GB HBM3".into(),
            memory_bytes: 81559 << 20,
            driver_major: 580,
            cuda_version: 13000,
            mig: false,
            ecc: true,
            power_limit_w: 700,
        }],
        ..key()
    }
}

fn prov(reason: &str) -> Provenance {
    Provenance {
        commit: "0123456789abcdef0123456789abcdef01234567".into(),
        date: "2026-11-27T08:00:00Z".into(),
        tool_version: "0.1.0".into(),
        reason: reason.into(),
    }
}

fn timings(centre: f64, n: usize, seed: u64) -> Vec<f64> {
    let mut rng = Rng::new(seed);
    (0..n).map(|_| centre * (1.0 + 0.01 * rng.exp1())).collect()
}

fn result(scenario: &str, outcome: Outcome, centre: f64, seed: u64) -> ScenarioResult {
    ScenarioResult {
        suite: "inference".into(),
        scenario: scenario.into(),
        kind: Kind::Command,
        location: SourceLocation::default(),
        device: "cpu".into(),
        outcome,
        metrics: vec![
            MetricSeries {
                key: MetricKey::new("wall_time"),
                unit: Unit::Seconds,
                direction: Direction::LowerIsBetter,
                estimator: Estimator::Quantile(0.05),
                samples: timings(centre, 400, seed),
            },
            MetricSeries {
                key: MetricKey::new("latency_p99").with("batch", 8),
                unit: Unit::Seconds,
                direction: Direction::LowerIsBetter,
                estimator: Estimator::Median,
                samples: timings(centre * 3.0, 50, seed + 1),
            },
            MetricSeries::single(
                MetricKey::new("peak_rss"),
                Unit::Bytes,
                Direction::LowerIsBetter,
                1.5e9,
            ),
        ],
        checks: vec![],
        monitor: MonitorSummary::default(),
        invalid_reasons: vec![],
        warnings: vec![],
        wall_time_s: 1.0,
    }
}

fn ran(scenario: &str, centre: f64, seed: u64) -> ScenarioResult {
    result(scenario, Outcome::Ran, centre, seed)
}

#[test]
fn save_load_compare_end_to_end() {
    let dir = TempDir::new().unwrap();
    let store = BaselineStore::new(dir.path());
    assert!(
        store.load(&key(), "inference").unwrap().is_none(),
        "no file yet: Ok(None)"
    );

    let summary = store
        .bless(
            &key(),
            "inference",
            &[ran("a", 1e-3, 1), ran("b", 2e-3, 2)],
            prov("first"),
            BlessMode::Append,
        )
        .unwrap();
    assert_eq!(
        summary.path,
        dir.path().join("test-cpu-9000-2c").join("inference.toml")
    );
    assert!(
        summary
            .scenarios
            .iter()
            .all(|s| s.status == ScenarioStatus::Added)
    );
    let text = summary.to_string();
    assert!(
        text.contains("added     a") && text.contains("wall_time: - -> "),
        "{text}"
    );

    let file = store.load(&key(), "inference").unwrap().unwrap();
    assert_eq!(file.format_version, 1);
    assert_eq!(file.hardware, key());
    assert_eq!(file.provenance.reason, "first");
    let m = &file.scenario["a"].metric["wall_time"];
    assert_eq!(m.runs.len(), 1);
    assert_eq!(m.samples_seen, 400);
    assert!(m.reservoir.len() == 256 && m.reservoir.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(m.estimator, Estimator::Quantile(0.05));
    assert!(
        file.scenario["a"]
            .metric
            .contains_key("latency_p99{batch=8}")
    );

    // Compare fresh runs against what was loaded.
    let rules = BTreeMap::new();
    let same = compare_scenario(
        &ran("a", 1e-3, 99),
        Some(&file.scenario["a"]),
        &rules,
        0.05,
        &Policy::default(),
    );
    assert!(same.iter().all(|v| v.verdict == Verdict::Pass), "{same:#?}");
    let slow = compare_scenario(
        &ran("a", 1.2e-3, 98),
        Some(&file.scenario["a"]),
        &rules,
        0.05,
        &Policy::default(),
    );
    assert_eq!(slow[0].verdict, Verdict::Regressed, "{:?}", slow[0]);
    assert_eq!(slow[1].verdict, Verdict::Regressed, "{:?}", slow[1]);
    assert_eq!(slow[2].verdict, Verdict::Pass, "peak_rss did not change");
}

#[test]
fn file_is_human_diffable_and_stable() {
    let dir = TempDir::new().unwrap();
    let store = BaselineStore::new(dir.path());
    let results = [ran("b", 2e-3, 2), ran("a", 1e-3, 1)];
    store
        .bless(
            &gpu_key(),
            "inference",
            &results,
            prov("x"),
            BlessMode::Replace,
        )
        .unwrap();
    let path = store.path(&gpu_key(), "inference");
    let first = fs::read_to_string(&path).unwrap();
    store
        .bless(
            &gpu_key(),
            "inference",
            &results,
            prov("x"),
            BlessMode::Replace,
        )
        .unwrap();
    assert_eq!(
        first,
        fs::read_to_string(&path).unwrap(),
        "same input, same bytes"
    );
    if std::env::var_os("SHOW_BASELINE").is_some() {
        println!("{first}");
    }
    assert!(first.starts_with("format_version = 1\n"), "{first}");
    for needle in [
        "[provenance]",
        "commit = \"0123456789abcdef",
        "[hardware]",
        "[[hardware.gpus]]",
        "[scenario.a]",
        "[scenario.a.metric.\"latency_p99{batch=8}\"]",
        "[scenario.a.metric.wall_time]",
        "unit = \"seconds\"",
        "direction = \"lower_is_better\"",
        "runs = [",
    ] {
        assert!(first.contains(needle), "missing {needle:?} in\n{first}");
    }
    // Scenarios in name order, whatever order they ran in.
    assert!(first.find("[scenario.a]").unwrap() < first.find("[scenario.b]").unwrap());
}

#[test]
fn append_keeps_the_last_five_runs_and_replace_starts_fresh() {
    let dir = TempDir::new().unwrap();
    let store = BaselineStore::new(dir.path());
    for i in 0..7 {
        let s = store
            .bless(
                &key(),
                "inference",
                &[ran("a", 1e-3 * (1.0 + i as f64 / 1000.0), i)],
                prov("r"),
                BlessMode::default(),
            )
            .unwrap();
        assert_eq!(s.scenarios[0].metrics[0].runs, (i as usize + 1).min(5));
    }
    let f = store.load(&key(), "inference").unwrap().unwrap();
    let m = &f.scenario["a"].metric["wall_time"];
    assert_eq!(m.runs.len(), 5);
    assert!(
        m.runs.windows(2).all(|w| w[0] < w[1]),
        "oldest first, oldest dropped: {:?}",
        m.runs
    );
    assert_eq!(m.samples_seen, 7 * 400);
    let mut sorted = m.runs.clone();
    sorted.sort_by(f64::total_cmp);
    assert_eq!(m.estimate, sorted[2], "the estimate is the median run");

    store
        .bless(
            &key(),
            "inference",
            &[ran("a", 1e-3, 50)],
            prov("r"),
            BlessMode::Replace,
        )
        .unwrap();
    let f = store.load(&key(), "inference").unwrap().unwrap();
    assert_eq!(f.scenario["a"].metric["wall_time"].runs.len(), 1);
    assert_eq!(f.scenario["a"].metric["wall_time"].samples_seen, 400);
}

/// Blesses one run of scenario "a" of suite "inference", around `centre`.
fn bless_a(store: &BaselineStore, centre: f64, seed: u64, mode: BlessMode) -> BlessSummary {
    store
        .bless(
            &key(),
            "inference",
            &[ran("a", centre, seed)],
            prov("r"),
            mode,
        )
        .unwrap()
}

#[test]
fn a_diverging_run_is_not_appended_but_replace_takes_it() {
    let dir = TempDir::new().unwrap();
    let store = BaselineStore::new(dir.path());
    let bless = |centre: f64, seed: u64, mode: BlessMode| bless_a(&store, centre, seed, mode);
    bless(1e-3, 1, BlessMode::Append);
    bless(1.002e-3, 2, BlessMode::Append);
    // A contended bless: 25% slower than the two recorded runs.
    let s = bless(1.25e-3, 3, BlessMode::Append);
    assert_eq!(s.refused.len(), 1, "{s}");
    assert!(
        s.refused[0].starts_with("a: wall_time +2"),
        "{:?}",
        s.refused
    );
    assert!(s.to_string().contains("--replace"), "{s}");
    assert_eq!(s.scenarios[0].status, ScenarioStatus::Kept);
    let f = store.load(&key(), "inference").unwrap().unwrap();
    assert_eq!(
        f.scenario["a"].metric["wall_time"].runs.len(),
        2,
        "kept as it was"
    );
    // A repeat within the limit is appended.
    let s = bless(1.01e-3, 4, BlessMode::Append);
    assert!(s.refused.is_empty(), "{s}");
    assert_eq!(s.scenarios[0].metrics[0].runs, 3);
    // After an intended change, --replace records it.
    let s = bless(1.25e-3, 5, BlessMode::Replace);
    assert!(s.refused.is_empty(), "{s}");
    assert_eq!(s.scenarios[0].metrics[0].runs, 1);
}

#[test]
fn a_run_better_than_every_recorded_one_replaces_them() {
    // Seen with gate-quality.py: the first of three blesses ran in a slow
    // spell (+40%); the next two, in the machine's good state, were refused
    // as "diverging", and the baseline called every run `improved` by 29%.
    let dir = TempDir::new().unwrap();
    let store = BaselineStore::new(dir.path());
    let bless = |centre: f64, seed: u64| bless_a(&store, centre, seed, BlessMode::Append);
    bless(1.4e-3, 1);
    let s = bless(1e-3, 2);
    assert!(s.refused.is_empty(), "{s}");
    assert_eq!(s.superseded.len(), 1, "{s}");
    assert!(s.superseded[0].starts_with("a: wall_time -2"), "{s}");
    assert!(s.to_string().contains("replaced  a:"), "{s}");
    let f = store.load(&key(), "inference").unwrap().unwrap();
    let m = &f.scenario["a"].metric["wall_time"];
    assert_eq!(m.runs.len(), 1, "the slow run is gone");
    assert!(m.estimate < 1.1e-3, "{}", m.estimate);
    // The next repeat is appended as usual; a slow one is still refused.
    assert_eq!(bless(1.005e-3, 3).scenarios[0].metrics[0].runs, 2);
    assert_eq!(bless(1.4e-3, 4).refused.len(), 1);
}

#[test]
fn only_scenarios_that_ran_are_rewritten() {
    let dir = TempDir::new().unwrap();
    let store = BaselineStore::new(dir.path());
    store
        .bless(
            &key(),
            "inference",
            &[ran("a", 1e-3, 1), ran("b", 2e-3, 2), ran("c", 3e-3, 3)],
            prov("old"),
            BlessMode::Append,
        )
        .unwrap();
    let before = store.load(&key(), "inference").unwrap().unwrap();

    let mut other_suite = ran("a", 9e-3, 9);
    other_suite.suite = "other".into();
    let results = [
        ran("a", 1.05e-3, 4),
        result(
            "b",
            Outcome::Ignored {
                reason: "no CUDA driver found".into(),
            },
            5e-3,
            5,
        ),
        result(
            "c",
            Outcome::Failed {
                error: "exit 1".into(),
            },
            5e-3,
            6,
        ),
        other_suite,
        ran("d", 4e-3, 7),
    ];
    let mut p = prov("new");
    p.commit = "fedcba9876543210fedcba9876543210fedcba98".into();
    let summary = store
        .bless(&key(), "inference", &results, p, BlessMode::Append)
        .unwrap();
    let status: BTreeMap<_, _> = summary
        .scenarios
        .iter()
        .map(|s| (s.scenario.as_str(), s.status))
        .collect();
    assert_eq!(status["a"], ScenarioStatus::Changed);
    assert_eq!(status["b"], ScenarioStatus::Kept);
    assert_eq!(status["c"], ScenarioStatus::Kept);
    assert_eq!(status["d"], ScenarioStatus::Added);

    let after = store.load(&key(), "inference").unwrap().unwrap();
    assert_eq!(after.scenario["b"], before.scenario["b"]);
    assert_eq!(after.scenario["c"], before.scenario["c"]);
    assert_ne!(after.scenario["a"], before.scenario["a"]);
    assert_eq!(after.scenario["a"].metric["wall_time"].runs.len(), 2);
    assert!(after.scenario["a"].commit.starts_with("fedcba"));
    assert!(after.scenario["b"].commit.starts_with("012345"));
    assert_eq!(after.provenance.reason, "new");
    assert!(
        store.load(&key(), "other").unwrap().is_none(),
        "other suites untouched"
    );
}

fn write_raw(store: &BaselineStore, key: &HardwareKey, text: &str) -> std::path::PathBuf {
    let path = store.path(key, "inference");
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, text).unwrap();
    path
}

fn blessed_text(store: &BaselineStore) -> String {
    store
        .bless(
            &key(),
            "inference",
            &[ran("a", 1e-3, 1)],
            prov("x"),
            BlessMode::Append,
        )
        .unwrap();
    fs::read_to_string(store.path(&key(), "inference")).unwrap()
}

#[test]
fn corrupt_file_names_the_file_and_line() {
    let dir = TempDir::new().unwrap();
    let store = BaselineStore::new(dir.path());
    let text = "format_version = 1\n[provenance]\ncommit = \"abc\n";
    let path = write_raw(&store, &key(), text);
    let err = store.load(&key(), "inference").unwrap_err();
    match &err {
        BaselineError::Corrupt { path: p, line, .. } => {
            assert_eq!(p, &path);
            assert_eq!(*line, 3);
        }
        other => panic!("want Corrupt, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.starts_with("corrupt baseline ") && msg.contains("inference.toml:3:"),
        "{msg}"
    );
    assert!(msg.contains("hint:"), "{msg}");
}

#[test]
fn hand_edit_with_a_wrong_type_is_an_error_not_a_panic() {
    let dir = TempDir::new().unwrap();
    let store = BaselineStore::new(dir.path());
    let good = blessed_text(&store);
    let line_no = good
        .lines()
        .position(|l| l.starts_with("estimate = "))
        .unwrap()
        + 1;
    write_raw(
        &store,
        &key(),
        &edit_line(&good, "estimate = ", "estimate = \"fast\""),
    );
    let err = store.load(&key(), "inference").unwrap_err();
    let msg = err.to_string();
    match err {
        BaselineError::Corrupt { line, .. } => assert_eq!(line, line_no, "{msg}"),
        other => panic!("want Corrupt, got {other:?}"),
    }
    assert!(msg.contains("inference.toml"), "{msg}");

    // An unknown key (a typo) is reported too.
    let typo = good.replacen("samples_seen", "sample_seen", 1);
    write_raw(&store, &key(), &typo);
    let msg = store.load(&key(), "inference").unwrap_err().to_string();
    assert!(msg.contains("sample_seen"), "{msg}");
}

/// Replaces the first line starting with `prefix` by `line`.
fn edit_line(text: &str, prefix: &str, line: &str) -> String {
    let mut done = false;
    text.lines()
        .map(|l| {
            if !done && l.starts_with(prefix) {
                done = true;
                line.to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn bad_numbers_are_rejected() {
    let dir = TempDir::new().unwrap();
    let store = BaselineStore::new(dir.path());
    let good = blessed_text(&store);
    let cases = [
        ("runs = ", "runs = [nan, 0.001]", "runs[0] is NaN"),
        ("estimate = ", "estimate = -0.001", "cannot be negative"),
        ("estimate = ", "estimate = inf", "not a finite number"),
        ("runs = ", "runs = []", "runs is empty"),
        ("reservoir = ", "reservoir = [0.001, -inf]", "reservoir[1]"),
        (
            "estimator = ",
            "estimator = \"p150\"",
            "quantile must lie in [0, 1]",
        ),
        (
            "date = ",
            "date = \"yesterday\"",
            "not an RFC 3339 timestamp",
        ),
        // #21 finding 5: meaning, not only form.
        ("estimate = ", "estimate = 1e308", "beyond ±1e30"),
        (
            "estimate = ",
            "estimate = 5e-324",
            "too small to take a ratio against",
        ),
        (
            "runs = ",
            "runs = [0.001, 0.001, 0.001, 0.001, 0.001, 0.001]",
            "runs has 6 entries; neon-perf keeps at most 5",
        ),
    ];
    for (prefix, line, want) in cases {
        write_raw(&store, &key(), &edit_line(&good, prefix, line));
        let err = store.load(&key(), "inference").unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(
                err,
                BaselineError::Invalid { .. } | BaselineError::Corrupt { .. }
            ),
            "{line}: {err:?}"
        );
        assert!(
            msg.contains(want) && msg.contains("inference.toml"),
            "{line}: {msg}"
        );
    }
}

/// #21 finding 5: a reservoir beyond the cap (3 million entries were once
/// loaded, 758 MB), two spellings of one metric, a file far too large, and
/// a dangling symbolic link are refused, naming the file.
#[test]
fn baselines_out_of_proportion_or_dangling_are_refused() {
    let dir = TempDir::new().unwrap();
    let store = BaselineStore::new(dir.path());
    let good = blessed_text(&store);
    let long: Vec<String> = (0..300).map(|_| "0.001".to_string()).collect();
    let line = format!("reservoir = [{}]", long.join(", "));
    write_raw(&store, &key(), &edit_line(&good, "reservoir = ", &line));
    let msg = store.load(&key(), "inference").unwrap_err().to_string();
    assert!(
        msg.contains("reservoir has 300 entries; neon-perf keeps at most 256"),
        "{msg}"
    );

    // The blessed metric's table, once more under another spelling of its
    // key: `wall_time{}` is `wall_time`.
    let header = "[scenario.a.metric.wall_time]";
    let start = good.find(header).expect("a wall_time table");
    let end = good[start + 1..]
        .find("\n[")
        .map_or(good.len(), |i| start + 1 + i);
    let table = good[start..end].replacen(header, "[scenario.a.metric.\"wall_time{}\"]", 1);
    write_raw(&store, &key(), &format!("{good}\n{table}\n"));
    let msg = store.load(&key(), "inference").unwrap_err().to_string();
    assert!(
        msg.contains(r#"metrics "wall_time" and "wall_time{}" are one metric"#),
        "{msg}"
    );

    let path = write_raw(&store, &key(), &good);
    let big = vec![b'#'; (neon_perf::baseline::store::MAX_BASELINE_BYTES + 1) as usize];
    fs::write(&path, big).unwrap();
    let msg = store.load(&key(), "inference").unwrap_err().to_string();
    assert!(msg.contains("a baseline file is at most"), "{msg}");

    fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink(dir.path().join("gone.toml"), &path).unwrap();
    let msg = store.load(&key(), "inference").unwrap_err().to_string();
    assert!(
        msg.contains("symbolic link to") && msg.contains("gone.toml"),
        "{msg}"
    );
}

#[test]
fn newer_format_version_says_upgrade() {
    let dir = TempDir::new().unwrap();
    let store = BaselineStore::new(dir.path());
    let good = blessed_text(&store);
    write_raw(
        &store,
        &key(),
        &good.replacen(
            "format_version = 1",
            "format_version = 2\nnew_field = true",
            1,
        ),
    );
    let err = store.load(&key(), "inference").unwrap_err();
    assert!(
        matches!(err, BaselineError::UnsupportedVersion { found: 2, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("upgrade neon-perf"), "{err}");
    write_raw(
        &store,
        &key(),
        &good.replacen("format_version = 1\n", "", 1),
    );
    assert!(
        store
            .load(&key(), "inference")
            .unwrap_err()
            .to_string()
            .contains("missing `format_version`")
    );
}

#[test]
fn hardware_in_file_must_match_its_folder() {
    let dir = TempDir::new().unwrap();
    let store = BaselineStore::new(dir.path());
    store
        .bless(
            &gpu_key(),
            "inference",
            &[ran("a", 1e-3, 1)],
            prov("x"),
            BlessMode::Append,
        )
        .unwrap();
    let text = fs::read_to_string(store.path(&gpu_key(), "inference")).unwrap();
    // Copied into the CPU machine's folder by hand.
    write_raw(&store, &key(), &text);
    let err = store.load(&key(), "inference").unwrap_err();
    assert!(
        matches!(err, BaselineError::HardwareMismatch { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("nvidia-h100"), "{err}");
    // And a bless on top of a broken file refuses rather than overwriting it.
    assert!(
        store
            .bless(
                &key(),
                "inference",
                &[ran("a", 1e-3, 1)],
                prov("x"),
                BlessMode::Replace
            )
            .is_err()
    );
}

// ---- a bless killed mid-write ------------------------------------------

const HELPER_ENV: &str = "NEON_PERF_TEST_BLESS_ROOT";

/// Not a test on its own: the child process of
/// `killed_bless_leaves_old_baseline_intact`, which sets `HELPER_ENV`.
#[test]
#[ignore]
fn helper_huge_bless() {
    let Ok(root) = std::env::var(HELPER_ENV) else {
        return;
    };
    let store = BaselineStore::new(root);
    let results: Vec<ScenarioResult> = (0..3000)
        .map(|i| ran(&format!("s{i:05}"), 1e-3, i))
        .collect();
    store
        .bless(
            &key(),
            "inference",
            &results,
            prov("huge"),
            BlessMode::Replace,
        )
        .unwrap();
}

fn temp_files(dir: &Path) -> Vec<(String, u64)> {
    fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| {
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        e.metadata().map(|m| m.len()).unwrap_or(0),
                    )
                })
                .filter(|(n, _)| n.starts_with('.') && n.ends_with(".tmp"))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(unix)]
#[test]
fn killed_bless_leaves_old_baseline_intact() {
    use std::os::unix::process::ExitStatusExt;

    let dir = TempDir::new().unwrap();
    let store = BaselineStore::new(dir.path());
    store
        .bless(
            &key(),
            "inference",
            &[ran("a", 1e-3, 1)],
            prov("old"),
            BlessMode::Append,
        )
        .unwrap();
    let path = store.path(&key(), "inference");
    let old_bytes = fs::read(&path).unwrap();
    let folder = path.parent().unwrap().to_path_buf();

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "helper_huge_bless",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(HELPER_ENV, dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it as soon as its temp file has bytes in it: mid-write.
    let start = Instant::now();
    loop {
        if temp_files(&folder).iter().any(|(_, len)| *len > 0) {
            child.kill().unwrap();
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("helper finished before it could be killed ({status}); make it bigger");
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "helper never started writing"
        );
        std::thread::sleep(Duration::from_micros(200));
    }
    let status = child.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "killed by SIGKILL, not finished: {status}"
    );

    assert_eq!(
        fs::read(&path).unwrap(),
        old_bytes,
        "the old baseline is byte for byte intact"
    );
    let file = store.load(&key(), "inference").unwrap().unwrap();
    assert_eq!(file.provenance.reason, "old");
    assert_eq!(file.scenario.len(), 1);
    let leftovers = temp_files(&folder);
    assert!(
        !leftovers.is_empty(),
        "the partial temp file is left behind (it is not read)"
    );
    assert_eq!(
        store.suites(&key()).unwrap(),
        vec!["inference".to_string()],
        "temp files are not baselines"
    );

    // The killed writer's temp file is stale once it is old enough; a
    // fresh one (a writer still at work) and another suite's are not.
    let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    for (name, _) in &leftovers {
        fs::File::options()
            .write(true)
            .open(folder.join(name))
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
    }
    let live = folder.join(".inference.toml.live.tmp");
    fs::write(&live, b"a writer at work").unwrap();
    let other = folder.join(".other.toml.old.tmp");
    fs::write(&other, b"another suite's").unwrap();
    fs::File::options()
        .write(true)
        .open(&other)
        .unwrap()
        .set_modified(hour_ago)
        .unwrap();

    // The next bless still works, leaves a loadable file, and sweeps the
    // stale temp file of its own suite only.
    store
        .bless(
            &key(),
            "inference",
            &[ran("a", 1e-3, 2)],
            prov("after"),
            BlessMode::Append,
        )
        .unwrap();
    assert_eq!(
        store
            .load(&key(), "inference")
            .unwrap()
            .unwrap()
            .provenance
            .reason,
        "after"
    );
    let mut left: Vec<String> = temp_files(&folder).into_iter().map(|(n, _)| n).collect();
    left.sort();
    assert_eq!(
        left,
        vec![
            ".inference.toml.live.tmp".to_string(),
            ".other.toml.old.tmp".to_string()
        ],
        "the stale temp file of this suite is gone, the others stay"
    );
}

#[cfg(unix)]
#[test]
fn a_new_baseline_is_readable_by_others_and_a_rewrite_keeps_the_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new().unwrap();
    let store = BaselineStore::new(dir.path());
    let bless = || {
        store
            .bless(
                &key(),
                "inference",
                &[ran("a", 1e-3, 1)],
                prov("p"),
                BlessMode::Append,
            )
            .unwrap();
    };
    bless();
    let path = store.path(&key(), "inference");
    let mode = || fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(), 0o644);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o664)).unwrap();
    bless();
    assert_eq!(mode(), 0o664);
}

#[test]
fn metrics_the_gate_ignores_cannot_refuse_a_run() {
    let dir = TempDir::new().unwrap();
    let store = BaselineStore::new(dir.path());
    bless_a(&store, 1e-3, 1, BlessMode::Append);
    bless_a(&store, 1.002e-3, 2, BlessMode::Append);
    // 25% slower in both timing metrics, which this suite does not gate on
    // (`gate = false`): only peak_rss is gated, and it repeats.
    let only_rss = |_: &ScenarioResult, m: &MetricSeries| m.key.name == "peak_rss";
    let s = store
        .bless_gated(
            &key(),
            "inference",
            &[ran("a", 1.25e-3, 3)],
            prov("r"),
            BlessMode::Append,
            &only_rss,
        )
        .unwrap();
    assert!(s.refused.is_empty() && s.superseded.is_empty(), "{s}");
    let f = store.load(&key(), "inference").unwrap().unwrap();
    assert_eq!(f.scenario["a"].metric["wall_time"].runs.len(), 3);
    // The same run against the same two, every metric gated: refused.
    let dir = TempDir::new().unwrap();
    let store = BaselineStore::new(dir.path());
    bless_a(&store, 1e-3, 1, BlessMode::Append);
    bless_a(&store, 1.002e-3, 2, BlessMode::Append);
    assert_eq!(
        bless_a(&store, 1.25e-3, 3, BlessMode::Append).refused.len(),
        1
    );
}
