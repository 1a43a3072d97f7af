//! The Python helper `neon_perf` (python/neon_perf) with the real binary: a
//! `command` scenario whose Python program calls `neon_perf.emit(...)` gets
//! its metrics, values and units through `neon-perf run`, with nothing
//! installed (neon-perf puts the helper on the child's `PYTHONPATH`); bad arguments are
//! refused in Python before anything is printed.

mod common;
#[macro_use]
mod needs;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use common::text;

fn python_source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("python")
}

/// `neon-perf run` of a suite (`suite`) whose one scenario runs `program`
/// (suites/bench.py), with `PYTHONPATH` set to `pythonpath` or unset:
/// nothing installed, so neon-perf's own copy of the helper is the one
/// found. The output and the JSON results.
fn run_program(program: &str, suite: &str, pythonpath: Option<&Path>) -> (Output, Value) {
    let tmp = tempfile::tempdir().unwrap();
    let suites = tmp.path().join("suites");
    std::fs::create_dir_all(&suites).unwrap();
    std::fs::write(suites.join("bench.py"), program).unwrap();
    std::fs::write(suites.join("helper.toml"), suite).unwrap();
    let json = tmp.path().join("r.json");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_neon-perf"));
    cmd.arg("run")
        .arg(&suites)
        .arg("--baselines")
        .arg(tmp.path().join("baselines"))
        .arg("--json")
        .arg(&json)
        .env_remove("PYTHONPATH")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("GITHUB_ACTIONS")
        .current_dir(tmp.path());
    if let Some(p) = pythonpath {
        cmd.env("PYTHONPATH", p);
    }
    let o = cmd.output().expect("neon-perf runs");
    let r = std::fs::read(&json)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| panic!("no results: {}", text(&o)));
    (o, r)
}

/// The first scenario's metric `key` in results `r`.
fn metric(r: &Value, key: &str) -> Value {
    common::entry(&r["scenarios"][0]["metrics"], "key", key).clone()
}

/// The first scenario's check `name` in results `r`.
fn check(r: &Value, name: &str) -> Value {
    common::entry(&r["scenarios"][0]["checks"], "name", name).clone()
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
    let (o, r) = run_program(PROGRAM, SUITE, None);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let scenario = &r["scenarios"][0];
    assert_eq!(scenario["outcome"]["status"], "ran", "{scenario:#}");
    let metric = |key: &str| metric(&r, key);
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

const TIMED: &str = r#"
import neon_perf
neon_perf.time(lambda: sum(range(20000)), name="step", warmup=1, iterations=5)
with neon_perf.phase("load"):
    data = bytearray(16 << 20)
    data[::4096] = b"x" * len(data[::4096])
neon_perf.check("inputs validated", True, "3 of 3 bad requests refused", "error-handling")
"#;

/// `neon_perf.time`, `neon_perf.phase` and `neon_perf.check` through
/// `neon-perf run`: the timed calls, the phase's time and memory, and the
/// printed check with its checklist item.
fn the_timer_phases_and_checks_reach_the_results() {
    let suite = SUITE.replace("primary = \"latency\"", "primary = \"step\"");
    let (o, r) = run_program(TIMED, &suite, None);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let metric = |key: &str| metric(&r, key);
    let step = metric("step");
    let runs = metric("wall_time")["samples"].as_array().unwrap().len();
    assert_eq!(
        step["samples"].as_array().unwrap().len(),
        5 * runs,
        "{step:#}"
    );
    assert_eq!(step["unit"], "seconds");
    assert!(
        metric("phase_time{phase=load}")["samples"][0]
            .as_f64()
            .unwrap()
            > 0.0
    );
    let heap = metric("python_heap_peak{phase=load}")["samples"][0]
        .as_f64()
        .unwrap();
    assert!(heap >= (16 << 20) as f64, "heap peak {heap}");
    let rss_peak = metric("rss_peak{phase=load}")["samples"][0]
        .as_f64()
        .unwrap();
    assert!(rss_peak >= (16 << 20) as f64, "rss peak {rss_peak}");
    let c = check(&r, "inputs validated");
    assert_eq!(c["passed"], true);
    assert_eq!(c["item"], "error-handling");
    assert_eq!(c["evidence"], "3 of 3 bad requests refused");
}

/// The synchronization check's rule on its own (the CUDA path needs PyTorch
/// on a GPU): a call that returns in under half its CUDA-event time fails.
fn the_sync_check_fails_a_call_that_returns_early() {
    let o = Command::new("python3")
        .args([
            "-c",
            "import neon_perf\n\
             neon_perf._sync_check('step', 0.00005, 0.004)\n\
             neon_perf._sync_check('step', 0.0041, 0.004)\n",
        ])
        .env("PYTHONPATH", python_source())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0]["check"], "unsynchronized timing: step");
    assert_eq!(lines[0]["passed"], false, "{out}");
    assert_eq!(lines[0]["item"], "cuda-sync");
    assert!(
        lines[0]["evidence"]
            .as_str()
            .unwrap()
            .contains("asynchronous")
    );
    assert_eq!(lines[1]["passed"], true, "{out}");
}

/// A program on the `torch.cuda` test double (tests/torch_double: harness
/// logic only, no GPU): CUDA starts lazily inside the first phase and
/// inside nothing else, one timed call only launches 4 ms of "GPU work",
/// the other waits for it.
const ON_CUDA: &str = r#"
import torch, neon_perf

def launch():
    torch.cuda.double_kernel(0.004)

def launch_and_wait():
    torch.cuda.double_kernel(0.004)
    torch.cuda.synchronize()

with neon_perf.phase("load"):
    weights = torch.cuda.double_alloc(64 << 20)
with neon_perf.phase("infer"):
    neon_perf.time(launch, name="async_step", warmup=2, iterations=5)
    neon_perf.time(launch_and_wait, name="sync_step", warmup=2, iterations=5)
    scratch = torch.cuda.double_alloc(32 << 20)
    torch.cuda.double_free(scratch)
"#;

/// The helper's CUDA paths through `neon-perf run`, on the `torch.cuda`
/// test double: CUDA-event times of what the "GPU" did, the
/// synchronization check failing the call that only launches (checklist
/// item cuda-sync failed), GPU memory per phase with peaks reset at each
/// phase's start (the `load` phase, where CUDA started, reports host memory
/// too), and a `max` on a PyTorch peak as a GPU-memory check.
fn the_cuda_paths_on_a_torch_double() {
    let suite = SUITE.replace("primary = \"latency\"", "primary = \"sync_step\"")
        + "metric.\"gpu_allocated_peak\" = { max = \"80MiB\" }\n";
    let double = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/torch_double");
    let (o, r) = run_program(ON_CUDA, &suite, Some(&double));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let samples = |key: &str| -> Vec<f64> {
        metric(&r, key)["samples"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    };
    // CUDA-event times: the 4 ms of work, whether or not the call waits.
    for key in ["async_step", "sync_step"] {
        for t in samples(key) {
            assert!((0.0039..0.010).contains(&t), "{key}: {t} s");
        }
    }
    let check = |name: &str| check(&r, name);
    let early = check("unsynchronized timing: async_step");
    assert_eq!(
        (&early["passed"], &early["item"]),
        (&false.into(), &"cuda-sync".into())
    );
    assert!(
        early["evidence"].as_str().unwrap().contains("asynchronous"),
        "{early:#}"
    );
    assert_eq!(check("unsynchronized timing: sync_step")["passed"], true);
    let mib = |key: &str| {
        samples(key)
            .iter()
            .map(|b| b / (1 << 20) as f64)
            .collect::<Vec<_>>()
    };
    for (key, want) in [
        ("gpu_allocated{phase=load}", 64.0),
        ("gpu_allocated_peak{phase=load}", 64.0),
        ("gpu_allocated{phase=infer}", 64.0),
        ("gpu_allocated_peak{phase=infer}", 96.0),
        ("gpu_reserved_peak{phase=infer}", 96.0),
    ] {
        assert!(mib(key).iter().all(|v| *v == want), "{key}: {:?}", mib(key));
    }
    assert!(!samples("rss_peak{phase=load}").is_empty());
    let within = |phase: &str| {
        check(&format!(
            "PyTorch GPU memory within bound (gpu_allocated_peak{{phase={phase}}})"
        ))
    };
    assert_eq!(within("load")["passed"], true);
    let over = within("infer");
    assert_eq!(
        (&over["passed"], &over["item"]),
        (&false.into(), &"gpu-memory".into())
    );
    assert!(
        over["evidence"]
            .as_str()
            .unwrap()
            .contains("max_memory_allocated"),
        "{over:#}"
    );
    let item = |id: &str| {
        r["checklist"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["item"] == id)
            .unwrap()["state"]
            .clone()
    };
    assert_eq!(item("cuda-sync"), "failed");
    assert_eq!(item("gpu-memory"), "failed");
}

/// `neon-perf python-path` prints the folder of neon-perf's copy of the
/// helper, so a script runs by hand as it runs in a scenario.
fn a_script_runs_by_hand_with_the_printed_python_path() {
    let tmp = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_neon-perf"))
        .arg("python-path")
        .env("NEON_PERF_CACHE", tmp.path().join("cache"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let dir = String::from_utf8(o.stdout).unwrap().trim().to_string();
    assert!(
        Path::new(&dir).join("neon_perf/__init__.py").is_file(),
        "{dir}"
    );
    let o = Command::new("python3")
        .args([
            "-c",
            "import neon_perf; neon_perf.emit('latency', 12.5, 'ms')",
        ])
        .env("PYTHONPATH", &dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let line: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(line["metric"], "latency", "{line}");
}

trials! {
    a_script_runs_by_hand_with_the_printed_python_path: needs::PYTHON;
    the_cuda_paths_on_a_torch_double: needs::PYTHON;
    the_timer_phases_and_checks_reach_the_results: needs::PYTHON;
    the_sync_check_fails_a_call_that_returns_early: needs::PYTHON;
    metrics_emitted_by_the_python_helper_reach_the_results: needs::PYTHON;
    bad_arguments_raise_before_anything_is_printed: needs::PYTHON;
    the_python_version_is_the_crate_version;
}
