//! `neon-perf calibrate` end to end: real runs of a program whose metric is
//! deterministic (so the noise, and the recommendation, are known), the
//! table, the JSON, and `--write` editing the suite in place.

use std::fs;
use std::process::Command;

const SUITE: &str = r#"# calibrate me
[suite]
name = "cal"

[defaults]
warmup = "10ms"
warmup_runs = 1
min_samples = 3
max_samples = 6
max_time = "200ms"
max_contention = 1.0

[[scenario]]
name = "emit"
kind = "command"
command = ["sh", "{suite_dir}/emit.sh"]
primary = "m"
metric."m" = { tolerance = 0.05 } # was a guess
metric."wall_time" = { gate = false }
metric."cpu_time" = { gate = false }
metric."peak_rss" = { gate = false }
"#;

#[test]
fn calibrate_reports_noise_and_writes_tolerances() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("cal.toml"), SUITE).unwrap();
    fs::write(
        dir.path().join("emit.sh"),
        "for i in 1 2 3; do echo '{\"metric\": \"m\", \"value\": 7, \"unit\": \"ms\"}'; done\n",
    )
    .unwrap();
    let json = dir.path().join("cal.json");
    let o = Command::new(env!("CARGO_BIN_EXE_neon-perf"))
        .current_dir(dir.path())
        .args(["calibrate", "cal.toml", "--runs", "3", "--write", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(
        text.contains("| cal::emit | m | p5 | 3 | 7.00 ms | ±0.00% | 0.00% | 5.0% | 1.0% |"),
        "{text}"
    );
    assert!(
        text.contains("wrote recommended tolerances into cal.toml"),
        "{text}"
    );

    let cal: serde_json::Value = serde_json::from_slice(&fs::read(&json).unwrap()).unwrap();
    let m = cal[0]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["key"] == "m")
        .unwrap();
    assert_eq!(m["estimates"].as_array().unwrap().len(), 3);
    assert_eq!(m["recommended"].as_f64(), Some(0.01));

    // The suite now carries the recommendation, and nothing else changed:
    // comments kept, ungated metrics left alone, still a valid suite.
    let after = fs::read_to_string(dir.path().join("cal.toml")).unwrap();
    assert_eq!(
        after,
        SUITE.replace(
            r#"metric."m" = { tolerance = 0.05 } # was a guess"#,
            r#"metric."m" = { tolerance = 0.01 } # was a guess"#
        )
    );
    let check = Command::new(env!("CARGO_BIN_EXE_neon-perf"))
        .current_dir(dir.path())
        .args(["check", "cal.toml"])
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(0));
}
