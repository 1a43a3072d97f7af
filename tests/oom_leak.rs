//! A leak planted in the host oom_stress child (through its test hook) is
//! caught: the "memory returns" check fails with the numbers. In its own test
//! binary so the hook's environment variable reaches no other test.

use std::path::PathBuf;

use neon_perf::config::parse_suite;
use neon_perf::exec::ExecEnv;
use neon_perf::exec::oom::host::PLANT_LEAK_ENV;
use neon_perf::metric::ChecklistItem;
use neon_perf::result::Outcome;
use neon_perf::run::execute;

#[test]
fn planted_leak_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("leak.toml");
    let text = "[[scenario]]\nname = \"leak\"\nkind = \"oom_stress\"\ndevice = \"cpu\"\n\
                memory_limit = \"96MiB\"\nchunk = \"4MiB\"\nleak_tolerance = \"8MiB\"\n";
    std::fs::write(&path, text).unwrap();
    let plan = parse_suite(&path, text).unwrap().scenarios.remove(0);
    let env = ExecEnv {
        neon_perf_bin: PathBuf::from(env!("CARGO_BIN_EXE_neon-perf")),
        cache_dir: dir.path().to_path_buf(),
    };
    // SAFETY: the only test in this binary; set before any child is spawned.
    unsafe { std::env::set_var(PLANT_LEAK_ENV, (32u64 << 20).to_string()) };
    let r = execute(&plan, &env, &plan.settings, &mut |_| {});
    let cleanup = r
        .checks
        .iter()
        .find(|c| c.item == Some(ChecklistItem::MemoryCleanup))
        .expect("a memory-cleanup check");
    assert!(!cleanup.passed, "leak not caught: {}", cleanup.evidence);
    assert!(
        cleanup.evidence.contains("tolerance 8.00 MiB"),
        "{}",
        cleanup.evidence
    );
    let leaked = r.metric("leaked").unwrap().samples[0];
    assert!(leaked >= 30.0 * 1048576.0, "{leaked}");
    assert!(
        matches!(r.outcome, Outcome::Failed { .. }),
        "{:?}",
        r.outcome
    );
}
