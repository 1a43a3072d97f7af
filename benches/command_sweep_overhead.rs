//! The harness's own time inside a `command` scenario's `sweep` (issue #20):
//! the share of the executor's wall time not spent in the program's runs.
//!
//!   cargo bench --bench command_sweep_overhead
//!
//! Runs the real `command` executor on a sweep of batches 1…64 of two
//! programs: the test fixture `tests/fixtures/sweep/model.sh` (a shell and
//! awk, ~2–4 ms a run: the worst case, where spawning weighs most) and the
//! same script after a 50 ms sleep (the scale of a real model script's run).
//! Then:
//!   programs  = Σ wall_time samples (each run timed from spawn to exit)
//!   overhead  = 1 − programs / wall(executor.run)
//! The overhead holds the warm-up probe runs too (counted as harness time),
//! reading the output, the sampler's statistics and the sweep analysis.
//! Prints one line per program; the write-up is in docs/models.md.

use std::path::PathBuf;
use std::time::Instant;

use neon_perf::config::parse_suite;
use neon_perf::exec::{ExecEnv, RunCtx, executor_for};

fn main() {
    // `cargo test --benches` runs this with `--bench` absent: keep it short.
    let quick = !std::env::args().any(|a| a == "--bench");
    let samples = if quick { 3 } else { 20 };
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sweep/model.sh");
    println!(
        "{:<14} {:>8} {:>10} {:>10} {:>10}",
        "program", "runs", "wall", "programs", "overhead"
    );
    for (name, pre) in [("fixture", ""), ("fixture-50ms", "sleep 0.05; ")] {
        let text = format!(
            "[defaults]\nwarmup = \"0s\"\nwarmup_runs = 0\nmin_samples = {samples}\n\
             max_samples = {samples}\nmax_contention = 1.0\n\
             [[scenario]]\nname = \"{name}\"\nkind = \"command\"\n\
             command = [\"sh\", \"-c\", \"{pre}sh {} {{batch}}\"]\n\
             params = {{ batch = [1, 2, 4, 8, 16, 32, 64] }}\nprimary = \"latency\"\n\
             sweep = {{ param = \"batch\", latency_slo = \"20ms\" }}\n",
            fixture.display()
        );
        let plan = parse_suite(&PathBuf::from("bench.toml"), &text)
            .expect("bench suite parses")
            .scenarios
            .remove(0);
        let env = ExecEnv {
            neon_perf_bin: PathBuf::from("neon-perf"),
            cache_dir: std::env::temp_dir(),
        };
        let mut events = |_| {};
        let mut ctx = RunCtx::new(
            &env,
            plan.settings.resolve(),
            &mut events,
            Default::default(),
        );
        let t = Instant::now();
        let out = executor_for(plan.kind())
            .run(&plan, &mut ctx)
            .expect("sweep runs");
        let wall = t.elapsed().as_secs_f64();
        let (programs, runs) = out
            .metrics
            .iter()
            .filter(|m| m.key.name == "wall_time")
            .fold((0.0, 0), |(s, n), m| {
                (s + m.samples.iter().sum::<f64>(), n + m.samples.len())
            });
        assert!(
            out.metrics.iter().any(|m| m.key.name == "best_batch"),
            "the sweep was analysed"
        );
        println!(
            "{:<14} {:>8} {:>9.3}s {:>9.3}s {:>9.2}%",
            name,
            runs,
            wall,
            programs,
            100.0 * (1.0 - programs / wall)
        );
    }
}
