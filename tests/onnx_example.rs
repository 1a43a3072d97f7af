//! examples/onnx with a real ONNX Runtime (issue #20): the team's own model,
//! built with onnx.helper, as a `sweep` and a `find_max_batch` scenario
//! through `neon-perf run`. Needs `bash scripts/onnx-setup.sh`.

mod common;
#[macro_use]
mod needs;

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run_example(filter: &str) -> Value {
    // One measuring run at a time: beside another it would be "machine busy".
    let _one = common::one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let path = format!(
        "{}:{}",
        root().join("target/onnx-venv/bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let o = Command::new(env!("CARGO_BIN_EXE_neon-perf"))
        .arg("run")
        .arg(root().join("examples/onnx/onnx.toml"))
        .args(["--filter", filter, "--baselines"])
        .arg(dir.path().join("baselines"))
        .arg("--json")
        .arg(&json)
        .env("PATH", path)
        .env("NEON_PERF_CACHE", dir.path().join("cache"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("PYTHONPATH")
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", common::text(&o));
    let r: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    r["scenarios"][0].clone()
}

fn metric(s: &Value, key: &str) -> f64 {
    s["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["key"] == key)
        .and_then(|m| m["samples"][0].as_f64())
        .unwrap_or_else(|| panic!("{key} in {s:#}"))
}

fn the_onnx_model_sweeps_its_batch_sizes() {
    let s = run_example("mlp-sweep");
    let best = metric(&s, "best_batch");
    assert!([1.0, 4.0, 16.0, 64.0].contains(&best), "{best}");
    for b in [1, 4, 16, 64] {
        assert!(metric(&s, &format!("latency_p99{{batch={b}}}")) > 0.0);
    }
    let c = s["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "throughput scales with batch size")
        .unwrap();
    // An MLP on ONNX Runtime's CPU provider: a batch of 64 does far more
    // than 1.5 times the work per second of a batch of 1.
    assert_eq!(c["item"], "batching", "{c:#}");
    assert_eq!(c["passed"], true, "{c:#}");
    println!("sweep: best_batch {best}; {}", c["evidence"]);
}

fn the_onnx_model_finds_its_largest_batch() {
    let s = run_example("mlp-max-batch");
    let max = metric(&s, "max_batch");
    // 512 MiB less the interpreter, numpy, onnx and ONNX Runtime (about
    // 250 MiB) at 1.5 MiB an item: a hundred or so.
    assert!((16.0..4096.0).contains(&max), "{max}");
    let c = &s["checks"][0];
    assert_eq!(c["passed"], true, "{c:#}");
    println!("max_batch {max}; {}", c["evidence"]);
}

trials! {
    the_onnx_model_sweeps_its_batch_sizes: needs::ONNX;
    the_onnx_model_finds_its_largest_batch: needs::ONNX;
}
