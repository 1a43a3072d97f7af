//! neon-perf's NVML paths driven end to end on a machine without a GPU,
//! through the NVML **test double** (tests/nvml_double/libnvidia-ml.c, put
//! first on the binary's `LD_LIBRARY_PATH`). The double is harness logic
//! only: it answers NVML's calls with a 1 GiB "GPU" on which a process
//! started with `FAKE_NVML_GPU=1` uses as much memory as its host RSS, so
//! that a program's ordinary allocations stand in for CUDA allocations.
//! Nothing here is a GPU measurement: what these tests show is that the
//! figures NVML gives reach the metrics, checks, limits and checklist as
//! they should (process GPU memory of a `command`, `memory_limit =
//! "gpu:F"`, a flood's `server_gpu_memory` and `cancel`'s GPU half).
//! docs/gpu-runs.md lists what only a real GPU can show.

mod common;
#[macro_use]
mod needs;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

/// Writes `scenarios` as DIR/g.toml and runs it with the double as NVML.
/// One at a time: each measures on this 2-core machine, where a second
/// run beside it would make it wait for the machine to be quiet.
fn run(dir: &Path, scenarios: &str, env: &[(&str, &str)]) -> (Output, Value) {
    let _one = common::one_at_a_time();
    let suite = dir.join("g.toml");
    std::fs::write(&suite, format!("[suite]\nname = \"g\"\n{scenarios}")).unwrap();
    let lib = needs::nvml_double().unwrap();
    let lib = lib.to_str().unwrap();
    let mut all = vec![("LD_LIBRARY_PATH", lib)];
    all.extend_from_slice(env);
    common::run_json(&suite, dir, &all)
}

fn scenario(r: &Value) -> &Value {
    &r["scenarios"][0]
}

fn samples(s: &Value, key: &str) -> Vec<f64> {
    s["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["key"] == key)
        .unwrap_or_else(|| panic!("no {key} in {s:#}"))["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

fn check<'a>(s: &'a Value, name: &str) -> &'a Value {
    s["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str().unwrap().starts_with(name))
        .unwrap_or_else(|| panic!("no check {name} in {s:#}"))
}

fn item<'a>(r: &'a Value, id: &str) -> &'a Value {
    r["checklist"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["item"] == id)
        .unwrap()
}

const MIB: f64 = (1u64 << 20) as f64;

fn alloc_py() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/max_batch/alloc.py")
}

/// A `command` scenario running `python3 -c PROGRAM` `runs` times on the
/// double's GPU (its marker in the program's environment), then `extra`.
fn program_on_gpu(name: &str, program: &str, runs: u32, extra: &str) -> String {
    format!(
        "[[scenario]]\nname = \"{name}\"\nkind = \"command\"\n\
         command = [\"python3\", \"-c\", \"{program}\"]\nenv = {{ FAKE_NVML_GPU = \"1\" }}\n\
         min_samples = {runs}\nmax_samples = {runs}\n{extra}\n"
    )
}

/// `find_max_batch` of tests/fixtures/max_batch/alloc.py (1 MiB per item,
/// held 0.2 s) under half of the double's 1 GiB.
fn max_batch_on_gpu() -> String {
    format!(
        "[[scenario]]\nname = \"model\"\nkind = \"command\"\n\
         command = [\"python3\", \"{}\", \"{{batch}}\", \"hold\"]\nenv = {{ FAKE_NVML_GPU = \"1\" }}\n\
         find_max_batch = {{ param = \"batch\", memory_limit = \"gpu:0.5\", max = 4096 }}\n",
        alloc_py().display()
    )
}

/// A program that grows to 200 MiB, holds it, and frees it: its tree's
/// GPU memory per run at start, peak and end, and a `max` bound below the
/// peak is a failed check for the checklist item "GPU memory usage
/// optimized".
fn a_programs_gpu_memory_is_sampled_at_start_peak_and_end() {
    let dir = tempfile::tempdir().unwrap();
    let program = "import time; time.sleep(0.1); b = [bytes([1]) * (1 << 20) for _ in range(200)]; time.sleep(0.2); del b; time.sleep(0.2)";
    let bound = r#"metric."process_gpu_memory" = { max = "150MiB" }"#;
    let (o, r) = run(dir.path(), &program_on_gpu("grows", program, 3, bound), &[]);
    let text = common::text(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    let s = scenario(&r);
    let (start, peak) = (
        samples(s, "process_gpu_memory{at=start}"),
        samples(s, "process_gpu_memory{at=peak}"),
    );
    assert_eq!(peak.len(), 3, "{s:#}");
    // The interpreter alone at the start; 200 MiB more at the peak.
    assert!(start.iter().all(|&b| b < 50.0 * MIB), "{start:?}");
    assert!(
        peak.iter()
            .all(|&b| (200.0 * MIB..260.0 * MIB).contains(&b)),
        "{peak:?}"
    );
    let c = check(s, "process GPU memory within bound");
    assert_eq!(c["passed"], false, "{c:#}");
    assert_eq!(c["item"], "gpu-memory", "{c:#}");
    let e = c["evidence"].as_str().unwrap();
    assert!(e.contains(", bound 150 MiB (over 3 run(s); NVML,"), "{e}");
    assert_eq!(item(&r, "gpu-memory")["state"], "failed");
}

/// `memory_limit = "gpu:0.5"` of the double's 1 GiB: a program holding
/// 1 MiB per item fits up to 512 MiB less the interpreter's own memory.
fn a_gpu_fraction_limit_finds_the_largest_batch_that_fits() {
    let dir = tempfile::tempdir().unwrap();
    let (o, r) = run(dir.path(), &max_batch_on_gpu(), &[]);
    let text = common::text(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    let s = scenario(&r);
    let max = samples(s, "max_batch")[0];
    assert!((480.0..=512.0).contains(&max), "max_batch {max}\n{s:#}");
    let e = check(s, "largest batch under the memory limit")["evidence"]
        .as_str()
        .unwrap();
    assert!(
        e.contains("512 MiB of GPU memory (gpu:0.5 of 1.00 GiB, NVML per-process samples)"),
        "{e}"
    );
    assert!(e.contains("over the limit 512 MiB"), "{e}");
    println!("max_batch = {max}: {e}");
}

/// The example backend started with the double's marker, flooded, then
/// `cancel` run against it: `leak` is `--leak-kib-per-cancel`'s KiB.
fn cancel_suite(leak: Option<&str>, extra: &str) -> String {
    let mut flags = vec!["--first-delay-ms", "5", "--gap-ms", "5"];
    if let Some(kib) = leak {
        flags.extend(["--leak-kib-per-cancel", kib]);
    }
    let server = common::ws_backend(&flags).replace(
        "ready = \"log:listening on\" }",
        "ready = \"log:listening on\", env = { FAKE_NVML_GPU = \"1\" } }",
    );
    format!(
        "[[scenario]]\nname = \"t\"\nkind = \"websocket_flood\"\nwarmup = \"200ms\"\n{server}\
         connections = 4\nin_flight = 2\nduration = \"1s\"\nchecks = [\"cancel\"]\n\
         cancel = {{ streams = 100 }}\n{extra}\n[scenario.protocol]\n\
         request = {{ text = '{{\"op\":\"generate\",\"id\":\"{{id}}\",\"prompt\":\"hi\",\"max_tokens\":16}}' }}\n\
         match = {{ json = \"/id\" }}\nend = {{ json = \"/type\", equals = \"done\" }}\n"
    )
}

/// A backend that keeps 1 MiB per cancelled stream fails `cancel` on its
/// GPU memory as well as its RSS; one that cleans up passes both halves.
fn cancel_judges_the_servers_gpu_memory_too() {
    let dir = tempfile::tempdir().unwrap();
    let (o, r) = run(dir.path(), &cancel_suite(Some("1024"), ""), &[]);
    let s = scenario(&r);
    let e = check(s, "cancel")["evidence"].as_str().unwrap().to_string();
    assert_eq!(o.status.code(), Some(1), "{}", common::text(&o));
    assert!(
        e.contains("server GPU memory") && e.matches("not back within it").count() == 2,
        "{e}"
    );
    let dir = tempfile::tempdir().unwrap();
    let bound = "metric.server_gpu_memory = { max = \"1GiB\" }";
    let (o, r) = run(dir.path(), &cancel_suite(None, bound), &[]);
    let s = scenario(&r);
    let c = check(s, "cancel");
    assert_eq!(c["passed"], true, "{c:#}\n{}", common::text(&o));
    let e = c["evidence"].as_str().unwrap();
    assert!(e.contains("server GPU memory"), "{e}");
    let peak = samples(s, "server_gpu_memory{at=peak}")[0];
    assert!(peak > 10.0 * MIB, "{s:#}");
    // Start and end of the flood too, as for the server's RSS.
    for at in ["start", "end"] {
        let v = samples(s, &format!("server_gpu_memory{{at={at}}}"))[0];
        assert!(v > 10.0 * MIB && v <= peak, "{at}: {v} against peak {peak}");
    }
    let b = check(
        s,
        "server GPU memory within bound (server_gpu_memory{at=peak})",
    );
    assert_eq!(b["passed"], true, "{b:#}");
    assert_eq!(b["item"], "gpu-memory", "{b:#}");
    let e = b["evidence"].as_str().unwrap();
    assert!(e.contains(", bound 1.00 GiB (NVML, "), "{e}");
    // Checked, passed, and only not ticked for want of a baseline.
    assert_eq!(item(&r, "gpu-memory")["state"], "not_compared", "{r:#}");
}

/// The double's PIDs as from another PID namespace: each one plus 10⁶.
const FOREIGN: [(&str, &str); 1] = [("FAKE_NVML_PID_OFFSET", "1000000")];

/// NVML reports host PIDs; in a container with its own PID namespace
/// (the double's `FAKE_NVML_PID_OFFSET`) no process can be matched. That
/// is said, never reported as 0 bytes or as a batch that fits.
fn a_foreign_pid_namespace_is_said_not_taken_for_zero_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let program = "b = bytes([1]) * (64 << 20); import time; time.sleep(0.2)";
    let scenarios = program_on_gpu("holds", program, 2, "") + &max_batch_on_gpu();
    let (o, r) = run(dir.path(), &scenarios, &FOREIGN);
    let text = common::text(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    let holds = scenario(&r);
    let keys: Vec<&str> = holds["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["key"].as_str().unwrap())
        .collect();
    assert!(
        !keys.iter().any(|k| k.starts_with("process_gpu_memory")),
        "{keys:?}"
    );
    let w = holds["warnings"].to_string();
    assert!(
        w.contains("process_gpu_memory not reported: NVML lists ")
            && w.contains(
                " process(es) holding GPU memory whose PIDs do not exist in this PID namespace"
            ),
        "{w}"
    );
    // The GPU monitor says so too, rather than "this process 0 B" and
    // "shared with other processes".
    let gpu = &holds["monitor"]["gpus"][0];
    assert!(gpu["foreign_pid_processes"].as_u64() >= Some(1), "{gpu:#}");
    assert!(
        w.contains("this process's GPU memory is not reported: NVML lists"),
        "{w}"
    );
    assert!(!w.contains("was shared with other processes"), "{w}");
    let model = &r["scenarios"][1];
    assert_eq!(model["status"], "ignored", "{model:#}");
    let why = model["outcome"]["reason"].as_str().unwrap();
    assert!(
        why.starts_with("`memory_limit = \"gpu:0.5\"` cannot be judged here: NVML lists"),
        "{why}"
    );
    assert!(why.contains("`docker run --pid=host`"), "{why}");

    // What scripts/gpu-session.sh prints of such a file says it too.
    let o = std::process::Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/gpu_session_metrics.py"))
        .arg(dir.path().join("r.json"))
        .args(["process_gpu_memory", "max_batch"])
        .output()
        .unwrap();
    let summary = common::text(&o);
    assert!(o.status.success(), "{summary}");
    assert!(
        summary.contains("  warning: process_gpu_memory not reported: NVML lists "),
        "{summary}"
    );
    assert!(summary.contains("g::model: ignored"), "{summary}");
}

/// The same for a flood's server: no `server_gpu_memory`, and `cancel`
/// says it did not judge the GPU memory.
fn a_foreign_pid_namespace_is_said_for_a_server_too() {
    let dir = tempfile::tempdir().unwrap();
    let (o, r) = run(dir.path(), &cancel_suite(None, ""), &FOREIGN);
    let s = scenario(&r);
    let c = check(s, "cancel");
    assert_eq!(c["passed"], true, "{c:#}\n{}", common::text(&o));
    let e = c["evidence"].as_str().unwrap();
    assert!(
        e.contains("server GPU memory not judged: NVML lists"),
        "{e}"
    );
    assert!(!e.contains("server GPU memory 0 B"), "{e}");
    assert!(
        s["warnings"]
            .to_string()
            .contains("server_gpu_memory not reported: NVML lists"),
        "{s:#}"
    );
}

/// A driver that lists the processes but withholds their memory
/// (NVML_VALUE_NOT_AVAILABLE): unknown, never 0 bytes that fit any limit.
fn memory_nvml_withholds_is_unknown_not_zero_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let program = "b = bytes([1]) * (64 << 20); import time; time.sleep(0.2)";
    let scenarios = program_on_gpu("holds", program, 2, "") + &max_batch_on_gpu();
    let (o, r) = run(dir.path(), &scenarios, &[("FAKE_NVML_MEMORY_NA", "1")]);
    let text = common::text(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    let holds = scenario(&r);
    let m = holds["metrics"].to_string();
    assert!(!m.contains("process_gpu_memory"), "{m}");
    let w = holds["warnings"].to_string();
    assert!(
        w.contains("process_gpu_memory not reported: NVML lists ")
            && w.contains(" of the processes measured here without a figure for their GPU memory"),
        "{w}"
    );
    let model = &r["scenarios"][1];
    assert_eq!(model["status"], "ignored", "{model:#}");
    let why = model["outcome"]["reason"].as_str().unwrap();
    assert!(
        why.starts_with("`memory_limit = \"gpu:0.5\"` cannot be judged here: NVML lists")
            && why.contains("NVML_VALUE_NOT_AVAILABLE"),
        "{why}"
    );
}

trials! {
    a_programs_gpu_memory_is_sampled_at_start_peak_and_end: needs::PYTHON, needs::NVML_DOUBLE;
    a_gpu_fraction_limit_finds_the_largest_batch_that_fits: needs::PYTHON, needs::NVML_DOUBLE;
    cancel_judges_the_servers_gpu_memory_too: needs::WS_PEERS, needs::NVML_DOUBLE;
    a_foreign_pid_namespace_is_said_not_taken_for_zero_bytes: needs::PYTHON, needs::NVML_DOUBLE;
    a_foreign_pid_namespace_is_said_for_a_server_too: needs::WS_PEERS, needs::NVML_DOUBLE;
    memory_nvml_withholds_is_unknown_not_zero_bytes: needs::PYTHON, needs::NVML_DOUBLE;
}
