//! A small CPU workload built into the binary (`neon-perf workload`), so the
//! shipped example suite and the gate-quality experiment need nothing else.
//! It prints one JSON metric line per sample, as any user program would.

use std::hint::black_box;
use std::io::Write;
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum WorkKind {
    /// Sort `n` seeded random u64 values (cost ~ n log n).
    Sort,
    /// `n` rounds of a xorshift hash chain (cost exactly linear in n).
    Hash,
}

#[derive(Clone, Debug, clap::Args)]
pub struct WorkloadArgs {
    #[arg(long, value_enum, default_value = "sort")]
    pub kind: WorkKind,
    /// Problem size.
    #[arg(long, default_value_t = 10_000)]
    pub n: u64,
    /// Timed samples to print, one JSON line each.
    #[arg(long, default_value_t = 10)]
    pub samples: u32,
    /// Extra work as a fraction (0.05 = 5% larger n): an injected slowdown for
    /// gate-quality experiments.
    #[arg(long, default_value_t = 0.0)]
    pub slowdown: f64,
    /// Seed of the input data.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

/// Runs the workload, printing `{"metric": "<kind>_time", ...}` per sample.
pub fn run(args: &WorkloadArgs, out: &mut impl Write) -> std::io::Result<()> {
    let n = ((args.n as f64) * (1.0 + args.slowdown)).round().max(1.0) as u64;
    let name = match args.kind {
        WorkKind::Sort => "sort_time",
        WorkKind::Hash => "hash_time",
    };
    let mut state = args.seed.max(1);
    let data: Vec<u64> = (0..n)
        .map(|_| {
            state = xorshift(state);
            state
        })
        .collect();
    for _ in 0..args.samples {
        let start = Instant::now();
        match args.kind {
            WorkKind::Sort => {
                let mut v = data.clone();
                v.sort_unstable();
                black_box(&v);
            }
            WorkKind::Hash => {
                let mut x = args.seed.max(1);
                for _ in 0..n {
                    x = xorshift(black_box(x));
                }
                black_box(x);
            }
        }
        let secs = start.elapsed().as_secs_f64();
        writeln!(
            out,
            r#"{{"metric": "{name}", "value": {secs:e}, "unit": "s"}}"#
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::command::child::parse_metric_line;

    #[test]
    fn prints_parseable_metric_lines() {
        for kind in [WorkKind::Sort, WorkKind::Hash] {
            let args = WorkloadArgs {
                kind,
                n: 1000,
                samples: 3,
                slowdown: 0.0,
                seed: 1,
            };
            let mut buf = Vec::new();
            run(&args, &mut buf).unwrap();
            let text = String::from_utf8(buf).unwrap();
            let metrics: Vec<_> = text
                .lines()
                .map(|l| parse_metric_line(l).unwrap().unwrap())
                .collect();
            assert_eq!(metrics.len(), 3);
            assert!(
                metrics
                    .iter()
                    .all(|m| m.value > 0.0 && m.unit.as_deref() == Some("s"))
            );
        }
    }
}
