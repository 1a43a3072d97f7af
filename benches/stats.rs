//! Micro-benchmark of the comparison's cost: one `compare_metric` on runs of
//! 1k, 10k and 100k samples (quantile and mean estimators). Plain timing,
//! no framework: `cargo bench --bench stats`.

use std::time::Instant;

use neon_perf::baseline::BaselineMetric;
use neon_perf::compare::{Policy, compare_metric};
use neon_perf::metric::{Direction, Estimator, MetricKey, MetricSeries, Unit};
use neon_perf::stats::Rng;

fn main() {
    let policy = Policy::default();
    for est in [Estimator::Quantile(0.05), Estimator::Mean] {
        for n in [1_000usize, 10_000, 100_000] {
            let mut rng = Rng::new(n as u64);
            let mut run = |c: f64| MetricSeries {
                key: MetricKey::new("wall_time"),
                unit: Unit::Seconds,
                direction: Direction::LowerIsBetter,
                estimator: est,
                samples: (0..n).map(|_| c * (1.0 + 0.05 * rng.exp1())).collect(),
            };
            let base = BaselineMetric::record(None, &run(1e-3), 1).unwrap();
            let cur = run(1.01e-3);
            let reps = 5;
            let t = Instant::now();
            for _ in 0..reps {
                std::hint::black_box(compare_metric(
                    &cur,
                    Some(&base),
                    None,
                    0.05,
                    false,
                    &policy,
                ));
            }
            println!(
                "compare_metric {est:<6} n={n:<7} {:>8.2} ms",
                t.elapsed().as_secs_f64() * 1e3 / reps as f64
            );
        }
    }
}
