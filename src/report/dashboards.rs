//! Exports for dashboards, so a team with one can adopt the gate a step at
//! a time: Bencher Metric Format (`--bmf`) and github-action-benchmark's
//! `customSmallerIsBetter` / `customBiggerIsBetter` JSON (`--github-benchmark`).
//!
//! Both carry one value per metric: the gate's own estimate (the estimator
//! the verdict used, e.g. p5 of the samples), in base units (seconds,
//! bytes, bytes per second), with the sample range around it.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::metric::{Direction, MetricKey, MetricSeries, Unit};
use crate::outcome::{RunReport, ScenarioReport};
use crate::result::Outcome;

/// One exported metric.
struct Point<'a> {
    /// `suite::scenario{labels}`: one benchmark per measured point.
    benchmark: String,
    metric: &'a MetricKey,
    unit: &'a Unit,
    direction: Direction,
    value: f64,
    min: f64,
    max: f64,
    samples: usize,
    detail: String,
}

fn points(report: &RunReport) -> Vec<Point<'_>> {
    let mut out = Vec::new();
    for s in report
        .scenarios
        .iter()
        .filter(|s| s.result.outcome == Outcome::Ran)
    {
        for m in &s.result.metrics {
            if let Some(p) = point(s, m) {
                out.push(p);
            }
        }
    }
    out
}

fn point<'a>(s: &'a ScenarioReport, m: &'a MetricSeries) -> Option<Point<'a>> {
    let finite = m.finite_samples();
    let verdict = s.verdicts.iter().find(|v| v.key == m.key);
    let (estimator, direction) = verdict
        .map(|v| (v.estimator, v.direction))
        .unwrap_or((m.estimator, m.direction));
    let value = verdict
        .map(|v| v.current)
        .filter(|v| v.is_finite())
        .or_else(|| crate::baseline::estimate(&finite, estimator))?;
    let min = finite.iter().copied().fold(f64::INFINITY, f64::min);
    let max = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut labels = m.key.labels.clone();
    let name = MetricKey {
        name: s.result.full_name(),
        labels: std::mem::take(&mut labels),
    };
    let mut detail = format!("{estimator} of {} sample(s)", finite.len());
    if let Some(v) = verdict {
        detail.push_str(&format!("; verdict {}", v.verdict));
        if let Some(c) = v.change {
            detail.push_str(&format!(" ({} vs baseline)", super::percent(c)));
        }
    }
    Some(Point {
        benchmark: name.to_string(),
        metric: &m.key,
        unit: &m.unit,
        direction,
        value,
        min,
        max,
        samples: finite.len(),
        detail,
    })
}

#[derive(Serialize)]
struct BmfMetric {
    value: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    lower_value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    upper_value: Option<f64>,
}

/// Bencher Metric Format: `{benchmark: {measure: {value, lower_value,
/// upper_value}}}`. The benchmark is `suite::scenario{labels}`, the measure
/// the metric's name; lower and upper are the smallest and largest sample.
pub fn bmf(report: &RunReport) -> Vec<u8> {
    let mut out: BTreeMap<String, BTreeMap<String, BmfMetric>> = BTreeMap::new();
    for p in points(report) {
        let bounds = p.samples > 1;
        out.entry(p.benchmark).or_default().insert(
            p.metric.name.clone(),
            BmfMetric {
                value: p.value,
                lower_value: bounds.then_some(p.min),
                upper_value: bounds.then_some(p.max),
            },
        );
    }
    let mut v = serde_json::to_vec_pretty(&out).expect("BMF serializes");
    v.push(b'\n');
    v
}

/// Which of github-action-benchmark's two custom tools a file is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BenchDirection {
    /// `tool: customSmallerIsBetter`: lower-is-better metrics.
    Smaller,
    /// `tool: customBiggerIsBetter`: higher-is-better metrics.
    Bigger,
}

impl BenchDirection {
    /// The file-name suffix the CLI gives each file (`bench.json` →
    /// `bench.smaller.json`, `bench.bigger.json`).
    pub fn suffix(self) -> &'static str {
        match self {
            BenchDirection::Smaller => "smaller",
            BenchDirection::Bigger => "bigger",
        }
    }

    /// Where this direction's file goes: `bench.json` → `bench.smaller.json`.
    pub fn path(self, base: &std::path::Path) -> std::path::PathBuf {
        let stem = base.file_stem().unwrap_or_default().to_string_lossy();
        let ext = base
            .extension()
            .map(|e| e.to_string_lossy().into_owned())
            .unwrap_or_else(|| "json".into());
        base.with_file_name(format!("{stem}.{}.{ext}", self.suffix()))
    }

    fn takes(self, d: Direction) -> bool {
        matches!(
            (self, d),
            (BenchDirection::Smaller, Direction::LowerIsBetter)
                | (BenchDirection::Bigger, Direction::HigherIsBetter)
        )
    }
}

#[derive(Serialize)]
struct BenchEntry {
    name: String,
    unit: String,
    value: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    range: Option<String>,
    extra: String,
}

/// github-action-benchmark's custom format: an array of `{name, unit,
/// value, range, extra}` holding the metrics of one direction (metrics whose
/// direction is `neither` are in neither file).
pub fn github_benchmark(report: &RunReport, which: BenchDirection) -> Vec<u8> {
    let entries: Vec<BenchEntry> = points(report)
        .into_iter()
        .filter(|p| which.takes(p.direction))
        .map(|p| BenchEntry {
            name: format!("{} {}", p.benchmark, p.metric.name),
            unit: p.unit.symbol(),
            value: p.value,
            range: (p.samples > 1)
                .then(|| format!("± {}", crate::units::sig3((p.max - p.min) / 2.0))),
            extra: p.detail,
        })
        .collect();
    let mut v = serde_json::to_vec_pretty(&entries).expect("benchmark JSON serializes");
    v.push(b'\n');
    v
}
