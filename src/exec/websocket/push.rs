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
        self.samples(name, unit, (dir, dir), samples);
    }

    /// Samples only reported (direction `Neither`), with the estimator of
    /// `dir`, the direction a rule's `direction` would gate them in.
    pub(super) fn reported(&mut self, name: &str, unit: Unit, dir: Direction, samples: Vec<f64>) {
        self.samples(name, unit, (Direction::Neither, dir), samples);
    }

    /// Samples of `name` with `direction`, and the estimator of `gated_in`.
    fn samples(&mut self, name: &str, unit: Unit, dirs: (Direction, Direction), samples: Vec<f64>) {
        let (direction, gated_in) = dirs;
        let key = self.key(name);
        self.m.push(MetricSeries {
            key,
            estimator: default_estimator(&unit, gated_in),
            unit,
            direction,
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
