//! `find_max_batch` on a `command` scenario (issue #20): the largest batch
//! a real Python program holds under a memory limit; a failure that is not
//! out of memory, and a hang, stop the search with the reason.

mod common;
#[macro_use]
mod needs;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/max_batch/alloc.py")
}

fn run(dir: &Path, mode: &str, extra: &str) -> (Output, Value) {
    run_limit(dir, mode, extra, "512MiB")
}

fn run_limit(dir: &Path, mode: &str, extra: &str, limit: &str) -> (Output, Value) {
    let suite = write_suite(dir, mode, extra, limit);
    common::run_json(&suite, dir, &[])
}

/// DIR/mb.toml: one `find_max_batch` scenario of the fixture in `mode`.
fn write_suite(dir: &Path, mode: &str, extra: &str, limit: &str) -> PathBuf {
    let suite = dir.join("mb.toml");
    std::fs::write(
        &suite,
        format!(
            r#"
[suite]
name = "mb"

[[scenario]]
name = "model"
kind = "command"
command = ["python3", "{}", "{{batch}}", "{mode}"]
find_max_batch = {{ param = "batch", memory_limit = "{limit}", max = 4096 }}
{extra}
"#,
            fixture().display()
        ),
    )
    .unwrap();
    suite
}

fn scenario(r: &Value) -> &Value {
    &r["scenarios"][0]
}

fn one_mib_an_item_under_512_mib() {
    let dir = tempfile::tempdir().unwrap();
    let (o, r) = run(dir.path(), "alloc", "");
    let text = common::text(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    let s = scenario(&r);
    let max = s["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["key"] == "max_batch")
        .and_then(|m| m["samples"][0].as_f64())
        .unwrap_or_else(|| panic!("max_batch in {s:#}"));
    // 512 MiB less the interpreter's own data: a few hundred 1 MiB items.
    assert!((250.0..=512.0).contains(&max), "max_batch {max}");
    let c = &s["checks"][0];
    assert_eq!(c["passed"], true, "{c:#}");
    let e = c["evidence"].as_str().unwrap();
    assert!(e.contains("MemoryError"), "{e}");
    // It met its out of memory and said so: evidence for error handling.
    assert_eq!(c["item"], "error-handling", "{c:#}");
    println!("max_batch = {max}: {e}");
}

/// Every probe fits up to `max`: nothing ran out of memory, so the search
/// is no evidence for "error handling properly implemented".
fn a_search_capped_at_max_is_no_evidence_of_error_handling() {
    let dir = tempfile::tempdir().unwrap();
    let suite = write_suite(dir.path(), "alloc", "", "512MiB");
    let text = std::fs::read_to_string(&suite).unwrap();
    std::fs::write(&suite, text.replace("max = 4096", "max = 16")).unwrap();
    let (o, r) = common::run_json(&suite, dir.path(), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", common::text(&o));
    let c = &scenario(&r)["checks"][0];
    assert_eq!(c["passed"], true, "{c:#}");
    assert!(
        c["evidence"]
            .as_str()
            .unwrap()
            .contains("none up to max = 16"),
        "{c:#}"
    );
    assert!(c["item"].is_null(), "{c:#}");
    assert_ne!(
        common::entry(&r["checklist"], "item", "error-handling")["state"],
        "ticked",
        "{r:#}"
    );
}

/// A bless records one search: `max_batch` is a count the search found,
/// not a sample, so spreading runs over time would only search again
/// (each search is a dozen runs of the team's model).
fn a_bless_records_one_search() {
    let dir = tempfile::tempdir().unwrap();
    let suite = write_suite(dir.path(), "alloc", "", "512MiB");
    let text = std::fs::read_to_string(&suite).unwrap();
    std::fs::write(&suite, text.replace("max = 4096", "max = 16")).unwrap();
    let base = dir.path().join("baselines");
    let o = common::neon_in(
        dir.path(),
        &[
            "bless",
            suite.to_str().unwrap(),
            "--runs",
            "3",
            "--reason",
            "t",
            "--baselines",
            base.to_str().unwrap(),
        ],
        &[],
    );
    let out = common::text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    let file = std::fs::read_dir(&base)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .join("mb.toml");
    let t: toml::Value = toml::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let runs = t["scenario"]["model"]["metric"]["max_batch"]["runs"]
        .as_array()
        .unwrap();
    assert_eq!(runs.len(), 1, "{t:#}");
    assert!(!out.contains("bless run 2"), "{out}");
}

fn another_failure_stops_the_search_with_the_programs_words() {
    let dir = tempfile::tempdir().unwrap();
    let (o, r) = run(dir.path(), "crash", "");
    assert_eq!(o.status.code(), Some(1), "{}", common::text(&o));
    let outcome = scenario(&r)["outcome"].to_string();
    assert!(
        outcome.contains("stopped at batch=8") && outcome.contains("not for lack of memory"),
        "{outcome}"
    );
    assert!(outcome.contains("shapes do not match"), "{outcome}");
}

fn a_hang_is_a_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let (o, r) = run(dir.path(), "hang", "timeout = \"2s\"");
    assert_eq!(o.status.code(), Some(1), "{}", common::text(&o));
    let outcome = scenario(&r)["outcome"].to_string();
    assert!(
        outcome.contains("stopped at batch=8") && outcome.contains("timed out after"),
        "{outcome}"
    );
}

/// `memory_limit = "gpu:0.8"`: without NVML (this machine, CI) the
/// scenario is ignored with the reason, never run unchecked; with it (a GPU
/// runner) the program, which holds no GPU memory, fits every probe.
fn a_gpu_limit_needs_nvml() {
    let dir = tempfile::tempdir().unwrap();
    let (o, r) = run_limit(dir.path(), "alloc", "", "gpu:0.8");
    let text = common::text(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    let s = scenario(&r);
    match neon_perf::monitor::tree_gpu::NvmlProcesses::open() {
        Err(_) => {
            assert_eq!(s["status"], "ignored", "{s:#}");
            let why = s["outcome"]["reason"].as_str().unwrap();
            assert!(
                why.starts_with(
                    "`memory_limit = \"gpu:0.8\"` needs NVML's per-process GPU memory: "
                ),
                "{why}"
            );
        }
        // A container whose NVML lists other processes by host PIDs cannot
        // attribute any: ignored with that reason (tests/nvml_double.rs).
        Ok(_) if s["status"] == "ignored" => {
            let why = s["outcome"]["reason"].as_str().unwrap();
            assert!(why.contains("cannot be judged here: NVML lists"), "{why}");
        }
        Ok(_) => {
            let e = s["checks"][0]["evidence"].as_str().unwrap();
            assert!(e.contains("of GPU memory (gpu:0.8 of"), "{e}");
            assert!(e.contains(": 4096 ("), "{e}");
        }
    }
}

/// `neon-perf run SUITE` under a hard RLIMIT_DATA of 256 MiB (`prlimit`,
/// util-linux), which must exit 0; its output and results.
fn run_capped(suite: &Path, dir: &Path) -> (Output, Value) {
    let (o, r) =
        common::run_json_under(&["prlimit", "--data=268435456:268435456"], suite, dir, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", common::text(&o));
    (o, r)
}

/// A limit the platform cannot enforce: neon-perf itself runs under a hard
/// RLIMIT_DATA of 256 MiB (`prlimit`, util-linux), below the scenario's
/// 512 MiB, and raising it needs CAP_SYS_RESOURCE. The scenario is ignored
/// with the reason and what to do, not failed as "could not start
/// `python3`: Operation not permitted". Where the capability is held (a
/// privileged container), the limit can be raised and the search runs.
fn a_limit_the_platform_cannot_enforce_is_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let suite = write_suite(dir.path(), "alloc", "", "512MiB");
    let (o, r) = run_capped(&suite, dir.path());
    let text = common::text(&o);
    let s = scenario(&r);
    if !neon_perf::exec::command::rlimit::has_cap_sys_resource() {
        assert_eq!(s["status"], "ignored", "{s:#}");
        let why = s["outcome"]["reason"].as_str().unwrap();
        assert!(
            why.starts_with(
                "memory_limit 512 MiB cannot be enforced here: this process's hard RLIMIT_DATA is 256 MiB"
            ),
            "{why}"
        );
        assert!(
            why.contains("lower `memory_limit` to at most 256 MiB"),
            "{why}"
        );
        assert!(text.contains("cannot be enforced here"), "{text}");
    } else {
        assert_eq!(s["outcome"]["status"], "ran", "{s:#}");
    }
}

/// The same for a host `oom_stress`: its `oom-child` sets RLIMIT_DATA on
/// itself, and above the hard limit it inherited (no CAP_SYS_RESOURCE) the
/// scenario is ignored with the reason, not failed with "setrlimit(…):
/// Operation not permitted".
fn a_host_oom_stress_limit_the_platform_cannot_enforce_is_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("oom.toml");
    std::fs::write(
        &suite,
        "[suite]\nname = \"oom\"\n[[scenario]]\nname = \"host\"\nkind = \"oom_stress\"\n\
         device = \"cpu\"\nmemory_limit = \"512MiB\"\nchunk = \"16MiB\"\n",
    )
    .unwrap();
    let (_, r) = run_capped(&suite, dir.path());
    let s = scenario(&r);
    if neon_perf::exec::command::rlimit::has_cap_sys_resource() {
        assert_eq!(s["outcome"]["status"], "ran", "{s:#}");
        return;
    }
    assert_eq!(s["status"], "ignored", "{s:#}");
    let why = s["outcome"]["reason"].as_str().unwrap();
    assert!(
        why.starts_with(
            "memory_limit 512 MiB cannot be enforced here: the oom-child's RLIMIT_DATA would be"
        ),
        "{why}"
    );
    assert!(
        why.contains("above this process's hard RLIMIT_DATA of 256 MiB"),
        "{why}"
    );
}

trials! {
    a_limit_the_platform_cannot_enforce_is_a_reason: needs::PYTHON;
    a_host_oom_stress_limit_the_platform_cannot_enforce_is_a_reason;
    a_gpu_limit_needs_nvml: needs::PYTHON;
    one_mib_an_item_under_512_mib: needs::PYTHON;
    a_search_capped_at_max_is_no_evidence_of_error_handling: needs::PYTHON;
    a_bless_records_one_search: needs::PYTHON;
    another_failure_stops_the_search_with_the_programs_words: needs::PYTHON;
    a_hang_is_a_timeout: needs::PYTHON;
}
