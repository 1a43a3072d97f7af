//! examples/pytorch with a real PyTorch (issue #20): the sweep and the
//! largest batch, wherever python3 imports torch (on CUDA when there is a
//! GPU: then the helper's CUDA-event timing, synchronization check and
//! per-phase CUDA memory are exercised too). Ignored with the reason
//! elsewhere.

mod common;
#[macro_use]
mod needs;

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn run_example(filter: &str) -> Value {
    // One measuring run at a time: beside another it would be "machine busy".
    let _one = common::one_at_a_time();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let o = Command::new(env!("CARGO_BIN_EXE_neon-perf"))
        .arg("run")
        .arg(root.join("examples/pytorch/pytorch.toml"))
        .args(["--filter", filter, "--baselines"])
        .arg(dir.path().join("baselines"))
        .arg("--json")
        .arg(&json)
        .env("NEON_PERF_CACHE", dir.path().join("cache"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap();
    let text = common::text(&o);
    println!("{text}");
    assert_eq!(o.status.code(), Some(0), "{text}");
    let r: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    r["scenarios"][0].clone()
}

fn has(s: &Value, name: &str) -> bool {
    s["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["key"].as_str().unwrap().starts_with(name))
}

fn the_pytorch_model_sweeps_and_reports_its_phases() {
    let s = run_example("mlp-sweep");
    assert!(has(&s, "best_batch") && has(&s, "phase_time"), "{s:#}");
    let on_cuda = has(&s, "gpu_allocated_peak");
    if on_cuda {
        let sync = s["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["item"] == "cuda-sync")
            .unwrap_or_else(|| panic!("no synchronization check in {s:#}"));
        // The example times its CUDA work with events and synchronizes.
        assert_eq!(sync["passed"], true, "{sync:#}");
    } else {
        assert!(has(&s, "rss_peak") && has(&s, "python_heap_peak"), "{s:#}");
    }
}

fn the_pytorch_model_finds_its_largest_batch() {
    let s = run_example("mlp-max-batch");
    assert!(has(&s, "max_batch"), "{s:#}");
    assert_eq!(s["checks"][0]["passed"], true, "{s:#}");
}

trials! {
    the_pytorch_model_sweeps_and_reports_its_phases: needs::TORCH;
    the_pytorch_model_finds_its_largest_batch: needs::TORCH;
}
