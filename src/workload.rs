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
    /// Extra work as a fraction (0.05 = 5% more work per sample): an injected
    /// slowdown for gate-quality experiments. For `sort` the input grows so
    /// that n·log n grows by this fraction; for `hash` n grows by it.
    #[arg(long, default_value_t = 0.0, env = "NEON_PERF_SLOWDOWN")]
    pub slowdown: f64,
    /// Seed of the input data.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Add each sample's start time (seconds since the Unix epoch) as `"t"`:
    /// for experiments on how the machine's speed changes over time
    /// (scripts/slow-spells.py).
    #[arg(long)]
    pub stamp: bool,
}

fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

/// The problem size whose cost is `1 + slowdown` times that of `n`.
pub fn scaled_n(kind: WorkKind, n: u64, slowdown: f64) -> u64 {
    let n0 = n.max(2) as f64;
    let target = 1.0 + slowdown;
    let scaled = match kind {
        WorkKind::Hash => n0 * target,
        WorkKind::Sort => {
            // Solve m·ln m = target · n·ln n by Newton's method.
            let goal = target * n0 * n0.ln();
            let mut m = n0 * target;
            for _ in 0..20 {
                m -= (m * m.ln() - goal) / (m.ln() + 1.0);
            }
            m
        }
    };
    if slowdown == 0.0 {
        n
    } else {
        scaled.round().max(1.0) as u64
    }
}

/// Runs the workload, printing `{"metric": "<kind>_time", ...}` per sample.
pub fn run(args: &WorkloadArgs, out: &mut impl Write) -> std::io::Result<()> {
    let n = scaled_n(args.kind, args.n, args.slowdown);
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
        let stamp = args.stamp.then(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64())
        });
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
        match stamp {
            Some(t) => writeln!(
                out,
                r#"{{"metric": "{name}", "value": {secs:e}, "unit": "s", "t": {t:.6}}}"#
            )?,
            None => writeln!(
                out,
                r#"{{"metric": "{name}", "value": {secs:e}, "unit": "s"}}"#
            )?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::command::child::parse_metric_line;

    #[test]
    fn slowdown_scales_the_cost_model() {
        assert_eq!(scaled_n(WorkKind::Hash, 1000, 0.1), 1100);
        assert_eq!(scaled_n(WorkKind::Sort, 10_000, 0.0), 10_000);
        let m = scaled_n(WorkKind::Sort, 10_000, 0.1) as f64;
        let ratio = m * m.ln() / (10_000.0 * 10_000f64.ln());
        assert!((ratio - 1.1).abs() < 1e-3, "{ratio}");
    }

    #[test]
    fn prints_parseable_metric_lines() {
        for (kind, stamp) in [(WorkKind::Sort, false), (WorkKind::Hash, true)] {
            let args = WorkloadArgs {
                kind,
                n: 1000,
                samples: 3,
                slowdown: 0.0,
                seed: 1,
                stamp,
            };
            let mut buf = Vec::new();
            run(&args, &mut buf).unwrap();
            let text = String::from_utf8(buf).unwrap();
            let metrics: Vec<_> = text
                .lines()
                .map(|l| parse_metric_line(l).unwrap().unwrap())
                .collect();
            assert_eq!(metrics.len(), 3);
            assert_eq!(text.matches(r#""t": "#).count(), if stamp { 3 } else { 0 });
            assert!(
                metrics
                    .iter()
                    .all(|m| m.value > 0.0 && m.unit.as_deref() == Some("s"))
            );
        }
    }
}
