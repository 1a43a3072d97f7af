//! scripts/gpu_check.py and scripts/gpu-check.sh must not fail for a trivial
//! reason on the GPU host: the summary is run here on a hand-made fixture
//! (tests/fixtures/cuda_gpu_check), on JSON produced by the real result
//! types, on an empty folder and on garbage; the shell script is run end to
//! end without a GPU, a binary or torch, and scripts/gpu-session.sh end to
//! end with this build's binary and no GPU.

mod common;
#[macro_use]
mod needs;

use std::path::{Path, PathBuf};
use std::process::Command;

use neon_perf::baseline::key::GpuKey;
use neon_perf::device::doctor::{DoctorReport, GpuInfo};
use neon_perf::metric::{Direction, Estimator, MetricKey, MetricSeries, Unit};
use neon_perf::plan::{Kind, SourceLocation};
use neon_perf::result::{Check, GpuSummary, MonitorSummary, Outcome, ScenarioResult};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn python() -> Option<String> {
    let py = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    Command::new(&py)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|_| py)
}

fn summary(dir: &Path) -> (bool, String) {
    let py = python().unwrap();
    let out = Command::new(py)
        .arg(root().join("scripts/gpu_check.py"))
        .args(["summary", "--out"])
        .arg(dir)
        .output()
        .unwrap();
    (out.status.success(), common::text(&out))
}

fn synthetic_doctor() -> DoctorReport {
    DoctorReport {
        driver_version: Some("580.65.06".into()),
        cuda_driver_version: Some(13000),
        gpus: vec![GpuInfo {
            index: 0,
            name: "NVIDIA H100 80GB HBM3".into(),
            key: Some(GpuKey {
                name: "NVIDIA H100 80GB HBM3".into(),
                memory_bytes: 80 << 30,
                driver_major: 580,
                cuda_version: 13000,
                mig: false,
                ecc: true,
                power_limit_w: 700,
            }),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn fixture_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in ["gpu.json", "torch.json"] {
        std::fs::copy(
            root().join("tests/fixtures/cuda_gpu_check").join(f),
            dir.path().join(f),
        )
        .unwrap();
    }
    std::fs::write(
        dir.path().join("doctor.json"),
        serde_json::to_string(&synthetic_doctor()).unwrap(),
    )
    .unwrap();
    dir
}

fn summary_of_the_hand_made_fixture() {
    let dir = fixture_dir();
    let (ok, text) = summary(dir.path());
    assert!(ok, "{text}");
    for want in [
        // 2.68e12 / 2.7496e12 = 0.975
        "| copy GB/s (read+write) | 2680.0 GB/s | 2749.6 GB/s | 0.975 | >= 0.85 | PASS |",
        "| bf16 GEMM TFLOP/s (torch: 50-rep burst) | n/a | 639.0 TFLOP/s | n/a | >= 0.85 | n/a (metric absent) |",
        // 305 us vs 301 us
        "| saxpy time n=67108864 | 306.0 us | 301.0 us | 1.017 | 0.95..1.05 | PASS |",
        "| NVML | 38 samples, max SM util 100% (off: NVML unavailable: a libloading error occurred) |",
        "| hardware key | nvidia-h100-80gb-hbm3-80gib-drv580-cuda13-ecc-700w |",
        "| OOM recovered | yes - free before 79.1 GiB",
        "- bf16gemm: FAILED: gpu::bf16gemm: cublasGemmEx",
        "INVALID: GPU 0 (NVIDIA H100 80GB HBM3) was throttled",
    ] {
        assert!(text.contains(want), "missing `{want}` in:\n{text}");
    }
    // The table comes last and is also written to summary.md.
    assert!(text.trim_end().ends_with("|"), "{text}");
    let md = std::fs::read_to_string(dir.path().join("summary.md")).unwrap();
    assert_eq!(md, text);
}

fn result(name: &str, metrics: Vec<MetricSeries>, checks: Vec<Check>) -> ScenarioResult {
    ScenarioResult {
        suite: "gpu".into(),
        scenario: name.into(),
        kind: Kind::GpuKernel,
        location: SourceLocation::default(),
        device: "cuda:0 NVIDIA H100 80GB HBM3".into(),
        outcome: Outcome::Ran,
        metrics,
        checks,
        monitor: MonitorSummary {
            gpus: vec![GpuSummary {
                samples: 5,
                sm_util_max: 97.0,
                ..Default::default()
            }],
            ..Default::default()
        },
        invalid_reasons: vec![],
        warnings: vec![],
        wall_time_s: 1.0,
    }
}

fn summary_of_json_from_the_real_result_types() {
    let flops = |v: f64| {
        let mut m = MetricSeries::new(
            MetricKey::new("flops").with("n", 8192),
            Unit::FlopPerSecond,
            Direction::HigherIsBetter,
            Estimator::Median,
        );
        m.samples = vec![v, v];
        m
    };
    let scenarios = vec![
        result("sgemm", vec![flops(5.0e13)], vec![]),
        result("bf16gemm", vec![flops(6.0e14)], vec![]),
        ScenarioResult {
            outcome: Outcome::Ignored {
                reason: "no CUDA driver found".into(),
            },
            ..result("oom", vec![], vec![])
        },
    ];
    let dir = fixture_dir();
    std::fs::write(
        dir.path().join("gpu.json"),
        serde_json::to_string(&serde_json::json!({ "format_version": 1, "scenarios": scenarios }))
            .unwrap(),
    )
    .unwrap();
    let (ok, text) = summary(dir.path());
    assert!(ok, "{text}");
    for want in [
        "| bf16 GEMM TFLOP/s (torch: 50-rep burst) | 600.0 TFLOP/s | 639.0 TFLOP/s | 0.939 | >= 0.85 | PASS |",
        "| f32 GEMM TFLOP/s | 50.0 TFLOP/s | 51.6 TFLOP/s | 0.969 | >= 0.85 | PASS |",
        "| NVML | 15 samples, max SM util 97% |",
        "| OOM recovered | n/a (ignored: no CUDA driver found) |",
    ] {
        assert!(text.contains(want), "missing `{want}` in:\n{text}");
    }
}

fn summary_survives_missing_and_garbage_input() {
    let empty = tempfile::tempdir().unwrap();
    let (ok, text) = summary(empty.path());
    assert!(ok && !text.contains("Traceback"), "{text}");
    assert!(text.contains("gpu.json missing"), "{text}");
    assert!(text.contains("| NVML | 0 samples"), "{text}");

    let garbage = tempfile::tempdir().unwrap();
    std::fs::write(
        garbage.path().join("gpu.json"),
        "{\"scenarios\": [1, null, {\"metrics\": [{}]}]",
    )
    .unwrap();
    std::fs::write(garbage.path().join("torch.json"), "[]").unwrap();
    std::fs::write(garbage.path().join("doctor.json"), "not json").unwrap();
    let (ok, text) = summary(garbage.path());
    assert!(ok && !text.contains("Traceback"), "{text}");
    std::fs::write(garbage.path().join("gpu.json"), "{\"scenarios\": [{\"scenario\": \"copy\", \"metrics\": [{\"key\": \"bandwidth{n=1}\", \"samples\": [\"x\", null]}], \"checks\": [{}], \"monitor\": {\"gpus\": [{}]}}]}").unwrap();
    let (ok, text) = summary(garbage.path());
    assert!(ok && !text.contains("Traceback"), "{text}");
    assert!(text.contains("- copy: ?; checks 0/1 passed"), "{text}");
}

fn gpu_check_script_runs_end_to_end_without_gpu_binary_or_torch() {
    let out_dir = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg("scripts/gpu-check.sh")
        .current_dir(root())
        .env("OUT", out_dir.path())
        .env("NEON_PERF_BIN", PathBuf::from("/nonexistent/neon-perf"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("MISSING /nonexistent/neon-perf"), "{text}");
    assert!(text.contains("## gpu-check summary"), "{text}");
    assert!(text.contains("| OOM recovered |"), "{text}");
    assert!(out_dir.path().join("summary.md").exists());
    assert!(out_dir.path().join("torch.json").exists());
}

/// scripts/gpu-session.sh (what a lent GPU host runs) on this machine:
/// every step says what it did or why it was skipped, the whole keeps to
/// its budget, and nothing is written into the checkout's suites/.
fn gpu_session(budget_s: u32) -> (String, String) {
    let (out_dir, work) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let out = Command::new("bash")
        .arg("scripts/gpu-session.sh")
        .current_dir(root())
        .env("OUT", out_dir.path())
        .env("GPU_WORK", work.path().join("w"))
        .env("BUDGET_S", budget_s.to_string())
        .env("NEON_PERF_BIN", env!("CARGO_BIN_EXE_neon-perf"))
        .env("NEON_PERF_REPORTS_DIR", work.path().join("reports"))
        .env("NEON_PERF_CACHE", work.path().join("cache"))
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap();
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let session = std::fs::read_to_string(out_dir.path().join("session.md")).unwrap();
    // The device tool brings back at most 8 files from $OUT: the session
    // lines, the archive of the work folder, and the summaries.
    let back: Vec<_> = std::fs::read_dir(out_dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        back.len() <= 8 && back.contains(&"all.tgz".into()),
        "{back:?}"
    );
    let listing = Command::new("tar")
        .arg("tzf")
        .arg(out_dir.path().join("all.tgz"))
        .output()
        .unwrap();
    assert!(
        common::text(&listing).contains("./session.md"),
        "{}",
        common::text(&listing)
    );
    assert!(!root().join("suites/gpu-profile.toml").exists());
    (session, text)
}

fn gpu_session_script_reports_every_step_without_a_gpu() {
    let (session, text) = gpu_session(300);
    // Skipped in a fresh clone; where `scripts/gpu-build.sh` filled .gpu/,
    // its CUDA tests run and are ignored without a GPU.
    assert!(
        session.contains("1 cuda_executors: skipped")
            || session.contains("1 cuda_executors: exit 0"),
        "{session}\n{text}"
    );
    for step in [
        "2 pytorch example:",
        "3 ws",
        "4 profilers: nsys=",
        "4 --profile always of gpu::saxpy: exit 0",
        // Skipped without a carried `cuda` build in .gpu/; with one, it
        // says how it ended.
        "5 gpu-models.sh: ",
        "6 gpu-check.sh: exit 0",
        "] done",
    ] {
        assert!(session.contains(step), "no `{step}` in\n{session}\n{text}");
    }
}

fn gpu_session_script_skips_what_its_budget_does_not_allow() {
    let (session, text) = gpu_session(25);
    for step in [
        "4 --profile always of gpu::saxpy: skipped, out of time",
        "6 gpu-check.sh: skipped, out of time",
    ] {
        assert!(session.contains(step), "no `{step}` in\n{session}\n{text}");
    }
}

trials! {
    summary_of_the_hand_made_fixture: needs::PYTHON;
    summary_of_json_from_the_real_result_types: needs::PYTHON;
    summary_survives_missing_and_garbage_input: needs::PYTHON;
    gpu_check_script_runs_end_to_end_without_gpu_binary_or_torch: needs::PYTHON;
    gpu_session_script_reports_every_step_without_a_gpu: needs::PYTHON;
    gpu_session_script_skips_what_its_budget_does_not_allow: needs::PYTHON;
}
