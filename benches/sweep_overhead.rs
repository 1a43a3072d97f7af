//! The harness's own overhead inside a batch sweep: the share of the sweep's
//! wall time not spent in the model's forward pass.
//!
//!   cargo bench --bench sweep_overhead
//!
//! Runs the real `batch_sweep` executor on three CPU models, from a tiny one
//! (where per-sample bookkeeping weighs most) to the shipped suite's MLP, with
//! no warm-up so every forward pass is a recorded sample. Then:
//!   forward = Σ latency samples + first and second inference (+ the dtype comparison's
//!             reference and error passes, when asked)
//!   overhead (whole run)   = 1 − forward / wall(executor.run)
//!   overhead (sampling)    = the executor's own `harness_overhead` metric
//! Prints one line per model; the write-up is in docs/models.md.

use std::path::PathBuf;
use std::time::Instant;

use neon_perf::config::parse_suite;
use neon_perf::exec::{ExecEnv, RunCtx, executor_for};

const MODELS: [(&str, &str); 3] = [
    ("tiny-mlp", "{ arch = \"mlp\", layers = [32, 64, 32] }"),
    ("suite-mlp", "{ arch = \"mlp\", layers = [512, 2048, 512] }"),
    (
        "suite-transformer",
        "{ arch = \"transformer\", d_model = 256, heads = 4, seq_len = 64, blocks = 2 }",
    ),
];

fn main() {
    // `cargo test --benches` runs this with `--bench` absent: keep it short.
    let quick = !std::env::args().any(|a| a == "--bench");
    let max_time = if quick { "100ms" } else { "2s" };
    println!(
        "{:<18} {:>8} {:>10} {:>11} {:>13} {:>13}",
        "model", "samples", "wall", "forward", "overhead(run)", "overhead(loop)"
    );
    for (name, model) in MODELS {
        let text = format!(
            "[defaults]\nwarmup = \"0s\"\nwarmup_runs = 0\nmax_time = \"{max_time}\"\n\
             min_samples = 10\ntarget_rel_ci = 0.0001\nmax_samples = 100000\n\
             [[scenario]]\nname = \"{name}\"\nkind = \"batch_sweep\"\ndevice = \"cpu\"\n\
             model = {model}\nbatch_sizes = [1, 4, 16, 64]\n"
        );
        let path = PathBuf::from(format!("{name}.toml"));
        let plan = parse_suite(&path, &text)
            .expect("bench suite parses")
            .scenarios
            .remove(0);
        let env = ExecEnv {
            neon_perf_bin: PathBuf::from("neon-perf"),
            cache_dir: std::env::temp_dir(),
        };
        let exec = executor_for(plan.kind());
        let mut events = |_| {};
        let mut ctx = RunCtx::new(
            &env,
            plan.settings.resolve(),
            &mut events,
            Default::default(),
        );
        let t = Instant::now();
        let out = exec.run(&plan, &mut ctx).expect("sweep runs");
        let wall = t.elapsed().as_secs_f64();
        let sum = |prefix: &str| -> (f64, usize) {
            out.metrics
                .iter()
                .filter(|m| {
                    m.key.name == prefix && m.key.labels.get("batch").is_some_and(|b| b != "best")
                })
                .fold((0.0, 0), |(s, n), m| {
                    (s + m.samples.iter().sum::<f64>(), n + m.samples.len())
                })
        };
        let (lat, n) = sum("latency");
        let first: f64 = out
            .metrics
            .iter()
            .filter(|m| m.key.name == "first_inference" || m.key.name == "second_inference")
            .map(|m| m.samples[0])
            .sum();
        let load: f64 = out
            .metrics
            .iter()
            .find(|m| m.key.name == "load_time")
            .map_or(0.0, |m| m.samples[0]);
        let forward = lat + first;
        let loop_overhead = out
            .metrics
            .iter()
            .find(|m| m.key.name == "harness_overhead")
            .map_or(f64::NAN, |m| m.samples[0]);
        println!(
            "{:<18} {:>8} {:>9.3}s {:>10.3}s {:>12.3}% {:>13.3}%   (load {:.1} ms, counted as overhead)",
            name,
            n,
            wall,
            forward,
            100.0 * (1.0 - forward / wall),
            loop_overhead,
            load * 1e3
        );
    }
}
