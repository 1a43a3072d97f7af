//! The Python helper `neon_perf` (python/neon_perf) with the real binary: a
//! `command` scenario whose Python program calls `neon_perf.emit(...)` gets
//! its metrics, values and units through `neon-perf run`, with nothing
//! installed (neon-perf puts the helper on the child's `PYTHONPATH`); bad arguments are
//! refused in Python before anything is printed.

mod common;
#[macro_use]
mod needs;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::text;

fn python_source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("python")
}

const PROGRAM: &str = r#"
import neon_perf
neon_perf.emit("latency", 12.5, "ms")
neon_perf.emit("tput{phase=decode}", 250, "tokens/s")
neon_perf.emit("score", 3, direction="higher")
print("ordinary output is ignored")
"#;

const SUITE: &str = r#"
[suite]
name = "helper"

[defaults]
warmup = "0s"
max_time = "300ms"
min_samples = 3

[[scenario]]
name = "emit"
kind = "command"
command = ["python3", "{suite_dir}/bench.py"]
primary = "latency"
"#;

fn metrics_emitted_by_the_python_helper_reach_the_results() {
    let tmp = tempfile::tempdir().unwrap();
    let suites = tmp.path().join("suites");
    std::fs::create_dir_all(&suites).unwrap();
    std::fs::write(suites.join("bench.py"), PROGRAM).unwrap();
    std::fs::write(suites.join("helper.toml"), SUITE).unwrap();
    let json = tmp.path().join("r.json");

    let o = Command::new(env!("CARGO_BIN_EXE_neon-perf"))
        .arg("run")
        .arg(&suites)
        .arg("--baselines")
        .arg(tmp.path().join("baselines"))
        .arg("--json")
        .arg(&json)
        // Nothing installed: neon-perf puts its built-in copy of the
        // helper on the child's PYTHONPATH.
        .env_remove("PYTHONPATH")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("GITHUB_ACTIONS")
        .current_dir(tmp.path())
        .output()
        .expect("neon-perf runs");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let scenario = &r["scenarios"][0];
    assert_eq!(scenario["outcome"]["status"], "ran", "{scenario:#}");
    let metric = |key: &str| {
        scenario["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["key"] == key)
            .unwrap_or_else(|| panic!("metric {key} in {scenario:#}"))
            .clone()
    };
    // Values arrive in base units, every sample as emitted.
    for (key, unit, direction, value) in [
        (
            "latency",
            serde_json::json!("seconds"),
            "lower_is_better",
            0.0125,
        ),
        (
            "tput{phase=decode}",
            serde_json::json!({ "rate": "tokens" }),
            "higher_is_better",
            250.0,
        ),
        ("score", serde_json::json!("count"), "higher_is_better", 3.0),
    ] {
        let m = metric(key);
        assert_eq!(m["unit"], unit, "{key}: {m:#}");
        assert_eq!(m["direction"], direction, "{key}: {m:#}");
        let samples = m["samples"].as_array().unwrap();
        assert!(samples.len() >= 3, "{key}: {m:#}");
        for s in samples {
            let s = s.as_f64().unwrap();
            assert!((s - value).abs() <= 1e-12 * value, "{key}: {s} != {value}");
        }
    }
}

fn bad_arguments_raise_before_anything_is_printed() {
    let cases = [
        ("neon_perf.emit(7, 1.0)", "TypeError", "name must be a str"),
        (
            "neon_perf.emit('a b', 1.0)",
            "ValueError",
            "invalid metric name 'a b'",
        ),
        (
            "neon_perf.emit('x{batch}', 1.0)",
            "ValueError",
            "invalid label 'batch'",
        ),
        (
            "neon_perf.emit('wall_time', 1.0)",
            "ValueError",
            "measured by neon-perf itself",
        ),
        (
            "neon_perf.emit('x', float('nan'))",
            "ValueError",
            "must be finite",
        ),
        (
            "neon_perf.emit('x', float('inf'), 'ms')",
            "ValueError",
            "must be finite",
        ),
        (
            "neon_perf.emit('x', '1.5')",
            "TypeError",
            "must be a real number",
        ),
        (
            "neon_perf.emit('x', True)",
            "TypeError",
            "must be a real number",
        ),
        (
            "neon_perf.emit('x', 1, 5)",
            "TypeError",
            "unit of 'x' must be a str",
        ),
        (
            "neon_perf.emit('x', 1, direction='up')",
            "ValueError",
            "direction of 'x' must be one of lower, higher, neither",
        ),
    ];
    for (call, kind, message) in cases {
        let o = Command::new("python3")
            .arg("-c")
            .arg(format!("import neon_perf\n{call}"))
            .env("PYTHONPATH", python_source())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{call}");
        assert!(o.stdout.is_empty(), "{call} printed {:?}", o.stdout);
        assert!(
            err.contains(&format!("{kind}: neon_perf.emit: ")) && err.contains(message),
            "{call}: {err}"
        );
    }
}

/// The package's `__version__` is the crate's (the wheel's version comes
/// from Cargo.toml).
fn the_python_version_is_the_crate_version() {
    let init = std::fs::read_to_string(python_source().join("neon_perf/__init__.py")).unwrap();
    let want = format!("__version__ = \"{}\"\n", env!("CARGO_PKG_VERSION"));
    assert!(init.contains(&want), "python/neon_perf/__init__.py: {want}");
}

trials! {
    metrics_emitted_by_the_python_helper_reach_the_results: needs::PYTHON;
    bad_arguments_raise_before_anything_is_printed: needs::PYTHON;
    the_python_version_is_the_crate_version;
}
