//! The metrics of the `ping` check of one flood point: `ping_rtt` (every
//! answered ping's round trip) and its percentiles; the check itself is
//! [`crate::ws::checks::ping_check`].

use std::collections::BTreeMap;

use crate::metric::{Direction, MetricKey, MetricSeries, Unit, default_estimator};
use crate::stats::quantile_sorted;
use crate::ws::client::ping::PingTotals;

/// Most `ping_rtt` samples kept for the gate (every one is in the percentiles).
const MAX_SAMPLES: usize = 20_000;

/// `ping_rtt`, `ping_rtt_p50`, `_p90`, `_p99`, `ping_rtt_max` and
/// `pings{result=sent|missed}`.
pub(super) fn ping_metrics(
    p: &PingTotals,
    labels: &BTreeMap<String, String>,
    m: &mut Vec<MetricSeries>,
) {
    let key = |name: &str| MetricKey::new(name).with_labels(labels);
    let mut sorted: Vec<f64> = p.rtts_ns.iter().map(|&n| n as f64 * 1e-9).collect();
    if !sorted.is_empty() {
        let step = sorted.len().div_ceil(MAX_SAMPLES);
        let unit = Unit::Seconds;
        // Reported, not gated unless a rule says `direction = "lower"`
        // (then on its p5): a ping a second per connection is too few
        // samples, and sub-millisecond round trips swing too far between
        // runs, to hold them to a tolerance (unchanged reruns against
        // FastAPI and aiohttp moved the p5 by +81% and +141%). The
        // check's timeout is what gates connection health.
        m.push(MetricSeries {
            key: key("ping_rtt"),
            estimator: default_estimator(&unit, Direction::LowerIsBetter),
            unit,
            direction: Direction::Neither,
            samples: sorted.iter().step_by(step).copied().collect(),
        });
        sorted.sort_by(f64::total_cmp);
        for (suffix, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0)] {
            m.push(MetricSeries::single(
                key(&format!("ping_rtt_{suffix}")),
                Unit::Seconds,
                Direction::Neither,
                quantile_sorted(&sorted, q),
            ));
        }
    }
    let missed: u64 = p.missed.values().map(|x| x.pings).sum();
    for (result, n) in [("sent", p.sent), ("missed", missed)] {
        m.push(MetricSeries::single(
            key("pings").with("result", result),
            Unit::Count,
            Direction::Neither,
            n as f64,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn answered_pings_give_rtt_samples_and_percentiles() {
        let t = PingTotals {
            timeout: Duration::from_secs(2),
            sent: 4,
            rtts_ns: vec![1_000_000, 2_000_000, 3_000_000, 4_000_000],
            missed: BTreeMap::new(),
            connections: 2,
        };
        let mut m = Vec::new();
        ping_metrics(&t, &BTreeMap::new(), &mut m);
        let names: Vec<String> = m.iter().map(|s| s.key.to_string()).collect();
        assert!(names.contains(&"ping_rtt_p99".to_string()), "{names:?}");
        assert!(
            names.contains(&"pings{result=missed}".to_string()),
            "{names:?}"
        );
        assert_eq!(m[0].samples.len(), 4);
        // Reported, not gated, unless a rule gives it a direction: then
        // its p5 is compared.
        assert_eq!(m[0].direction, Direction::Neither);
        assert_eq!(m[0].estimator, crate::metric::Estimator::Quantile(0.05));
    }
}
