//! The performance gate as `cargo test`: every scenario in suites/ is a trial.
//! See src/harness.rs for the flags and environment variables.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let suites = std::env::var_os("NEON_PERF_SUITES")
        .map(|s| std::env::split_paths(&s).collect())
        .unwrap_or_else(|| vec![root.join("suites")]);
    neon_perf::harness::main(neon_perf::harness::HarnessOptions {
        suites,
        baselines: std::env::var_os("NEON_PERF_BASELINES")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("baselines")),
        neon_perf_bin: PathBuf::from(env!("CARGO_BIN_EXE_neon-perf")),
        cache_dir: root.join("target").join("neon-perf"),
    })
}
