//! Pushes one flood point's metrics: every key carries the point's labels,
//! a series of samples gets its unit's default estimator, a single value
//! is only reported (direction `Neither`) unless it is a run's rate, and
//! HdrHistogram quantiles (ns) become single values in seconds.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use crate::metric::{Direction, MetricKey, MetricSeries, Unit, default_estimator};

pub(super) struct Push<'a> {
    labels: &'a BTreeMap<String, String>,
    m: &'a mut Vec<MetricSeries>,
}

impl<'a> Push<'a> {
    pub(super) fn new(labels: &'a BTreeMap<String, String>, m: &'a mut Vec<MetricSeries>) -> Self {
        Push { labels, m }
    }

    pub(super) fn key(&self, name: &str) -> MetricKey {
        MetricKey::new(name).with_labels(self.labels)
    }

    /// Samples the gate compares.
    pub(super) fn series(&mut self, name: &str, unit: Unit, dir: Direction, samples: Vec<f64>) {
        self.series_gated(true, (name, unit, dir), samples);
    }

    /// Samples of `name`: gated in `dir`, or (not `gated`) only reported,
    /// direction `Neither`, with the estimator a rule's `direction` would
    /// gate them on.
    pub(super) fn series_gated(
        &mut self,
        gated: bool,
        (name, unit, dir): (&str, Unit, Direction),
        samples: Vec<f64>,
    ) {
        let key = self.key(name);
        self.m.push(MetricSeries {
            key,
            estimator: default_estimator(&unit, dir),
            unit,
            direction: if gated { dir } else { Direction::Neither },
            samples,
        });
    }

    /// One rate for the whole run, gated (higher is better) between runs.
    pub(super) fn rate(&mut self, name: &str, unit: Unit, v: f64) {
        let key = self.key(name);
        self.m.push(MetricSeries::single(
            key,
            unit,
            Direction::HigherIsBetter,
            v,
        ));
    }

    /// One value, reported (direction `Neither`).
    pub(super) fn single(&mut self, key: MetricKey, unit: Unit, v: f64) {
        self.m
            .push(MetricSeries::single(key, unit, Direction::Neither, v));
    }

    /// `name` at each quantile `q` of `h` (nanoseconds), in seconds.
    pub(super) fn quantiles(&mut self, h: &Histogram<u64>, names: &[(&str, f64)]) {
        for &(name, q) in names {
            let key = self.key(name);
            self.single(key, Unit::Seconds, h.value_at_quantile(q) as f64 * 1e-9);
        }
    }
}
