//! Suite loading stays linear in the file's size (issue #21, finding 7):
//! before, each scenario's line was found by counting from the start of the
//! file, and 20,000 scenarios took 11 s to `check`.
//!
//!   cargo bench --bench suite_load
//!
//! Parses generated suites of 2,000, 20,000 and 200,000 `command` scenarios
//! and prints the time per scenario, which should stay flat.

use std::path::Path;
use std::time::Instant;

use neon_perf::config::parse_suite;

fn main() {
    // `cargo test --benches` runs this with `--bench` absent: keep it short.
    let quick = !std::env::args().any(|a| a == "--bench");
    let sizes: &[usize] = if quick {
        &[2_000, 20_000]
    } else {
        &[2_000, 20_000, 200_000]
    };
    println!("{:>10} {:>10} {:>14}", "scenarios", "parse", "per scenario");
    for &n in sizes {
        let text: String = (0..n)
            .map(|i| {
                format!(
                    "[[scenario]]\nname = \"s{i}\"\nkind = \"command\"\ncommand = [\"true\"]\n\n"
                )
            })
            .collect();
        let t = Instant::now();
        let suite = parse_suite(Path::new("big.toml"), &text).expect("parses");
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(suite.scenarios.len(), n);
        println!("{n:>10} {secs:>9.3}s {:>11.2} µs", secs / n as f64 * 1e6);
    }
}
