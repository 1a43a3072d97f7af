//! Baselines in git: `baselines/<hardware-key>/<suite>.toml`, with
//! provenance, the last few blessed runs' estimates and a bounded sample
//! reservoir per metric, written atomically.
//!
//! This module holds the stored data model and [`estimate`], the one
//! reduction of samples to a number used both when blessing and when
//! comparing, so the two can never disagree. `store` does the file I/O.

pub mod agreement;
pub mod key;
pub mod rounds;
pub mod store;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::metric::{Direction, Estimator, MetricSeries, Unit};
use crate::stats::{self, Reduce};

pub use key::{GpuKey, HardwareKey};
pub use store::{
    BaselineError, BaselineStore, BlessMode, BlessSummary, MetricChange, ScenarioChange,
    ScenarioStatus,
};

/// The file format this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// Blessed runs whose estimates a metric keeps (the between-run spread).
pub const RUNS_KEPT: usize = 5;
/// Most samples a metric's reservoir keeps.
pub const RESERVOIR_CAP: usize = 256;

/// The estimator's value over the finite samples; `None` when there are none.
pub fn estimate(samples: &[f64], estimator: Estimator) -> Option<f64> {
    stats::reduce(samples, reduce_of(estimator))
}

/// The statistics leaf's name for an estimator.
pub fn reduce_of(estimator: Estimator) -> Reduce {
    match estimator {
        Estimator::Median => Reduce::Quantile(0.5),
        Estimator::Quantile(q) => Reduce::Quantile(q),
        Estimator::Mean => Reduce::Mean,
        Estimator::Min => Reduce::Quantile(0.0),
        Estimator::Max => Reduce::Quantile(1.0),
    }
}

/// Who blessed the file, when and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// `git rev-parse HEAD` of the blessed code (the CLI finds it).
    pub commit: String,
    /// RFC 3339, UTC.
    pub date: String,
    pub tool_version: String,
    pub reason: String,
}

impl Provenance {
    /// Provenance dated now, with this build's version.
    pub fn now(commit: impl Into<String>, reason: impl Into<String>) -> Self {
        let now = jiff::Timestamp::now();
        Provenance {
            commit: commit.into(),
            date: now.round(jiff::Unit::Second).unwrap_or(now).to_string(),
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            reason: reason.into(),
        }
    }
}

/// One `baselines/<key>/<suite>.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineFile {
    pub format_version: u32,
    /// The latest bless of any scenario in the file.
    pub provenance: Provenance,
    pub hardware: HardwareKey,
    /// Scenario name → its metrics.
    #[serde(default)]
    pub scenario: BTreeMap<String, BaselineScenario>,
}

/// One scenario's blessed metrics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineScenario {
    /// Commit this scenario was last blessed at (it may be older than the
    /// file's provenance when other scenarios were blessed later).
    pub commit: String,
    pub date: String,
    /// Metric key text (`latency_p99{batch=8}`) → its baseline.
    #[serde(default)]
    pub metric: BTreeMap<String, BaselineMetric>,
}

/// What the gate compares one metric against.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineMetric {
    pub unit: Unit,
    pub direction: Direction,
    /// `"p5"`, `"median"`, `"mean"`, `"min"`, `"max"` (a quantile that `pN`
    /// cannot state exactly is written `q0.0123`).
    #[serde(with = "estimator_text")]
    pub estimator: Estimator,
    /// The value compared against: the median of `runs` when blessed. A reviewer may edit it; the spread still comes from `runs`.
    pub estimate: f64,
    /// The estimator's value in each of the last blessed runs, oldest first
    /// (at most [`RUNS_KEPT`]).
    pub runs: Vec<f64>,
    /// How many samples the blessed runs had in all.
    pub samples_seen: u64,
    /// At most [`RESERVOIR_CAP`] samples of the most typical blessed run
    /// (estimate closest to the centre), sorted.
    pub reservoir: Vec<f64>,
}

impl BaselineMetric {
    /// This run's samples recorded on top of `prev` (its runs carried over
    /// when it used the same estimator and unit; pass `None` to start
    /// fresh). `None` when the run has no finite samples. The reservoir is
    /// a seeded sample of one run: this one, or the kept one when that run's
    /// estimate is closer to the centre of `runs`. The seed mixes `seed` with
    /// the sample count, so re-recording the same data gives the same file.
    pub fn record(prev: Option<&BaselineMetric>, series: &MetricSeries, seed: u64) -> Option<Self> {
        let finite = series.finite_samples();
        let est = estimate(&finite, series.estimator)?;
        let carry =
            prev.filter(|o| o.estimator == series.estimator && o.unit.same_quantity(&series.unit));
        let est = round_sig(est);
        let mut runs: Vec<f64> = carry.map(|o| o.runs.clone()).unwrap_or_default();
        runs.push(est);
        if runs.len() > RUNS_KEPT {
            runs.drain(..runs.len() - RUNS_KEPT);
        }
        let samples_seen = carry.map(|o| o.samples_seen).unwrap_or(0) + finite.len() as u64;
        let centre = runs_centre(&runs).unwrap_or(est);
        // The reservoir stands for one typical blessed run: this run's
        // samples, unless the kept reservoir's run is closer to the centre
        // (a contended run should not become the shape compared against).
        let distance = |e: f64| {
            if e > 0.0 && centre > 0.0 {
                (e / centre).ln().abs()
            } else {
                (e - centre).abs()
            }
        };
        let kept = carry
            .filter(|o| !o.reservoir.is_empty())
            .and_then(|o| estimate(&o.reservoir, series.estimator).map(|e| (o, e)))
            .filter(|(_, e)| distance(*e) < distance(est));
        let reservoir = match kept {
            Some((o, _)) => o.reservoir.clone(),
            None => {
                let mut r = stats::reservoir_sample(&finite, RESERVOIR_CAP, seed ^ samples_seen);
                r.iter_mut().for_each(|x| *x = round_sig(*x));
                r.sort_by(|a, b| a.total_cmp(b));
                r
            }
        };
        Some(BaselineMetric {
            unit: series.unit.clone(),
            direction: series.direction,
            estimator: series.estimator,
            estimate: centre,
            runs,
            samples_seen,
            reservoir,
        })
    }

    /// The between-run spread: a robust standard deviation of `ln(runs)`
    /// (1.4826·MAD from three runs on, so one contended blessed run cannot
    /// inflate it; the plain sample sd for two). `None` with fewer than two
    /// positive run estimates.
    pub fn run_log_sd(&self) -> Option<f64> {
        log_sd_of_runs(&self.runs)
    }
}

/// A robust standard deviation of `ln(runs)`: 1.4826·MAD from three runs
/// on, so one contended run cannot inflate it; the plain sample sd for two.
/// `None` with fewer than two runs, or any run not a positive number.
pub fn log_sd_of_runs(runs: &[f64]) -> Option<f64> {
    if runs.len() < 2 || runs.iter().any(|r| !(r.is_finite() && *r > 0.0)) {
        return None;
    }
    let logs: Vec<f64> = runs.iter().map(|r| r.ln()).collect();
    if logs.len() == 2 {
        return Some((logs[0] - logs[1]).abs() / std::f64::consts::SQRT_2);
    }
    stats::mad_sigma(&logs)
}

/// The centre of a set of run estimates: their median, so one contended
/// blessed run (noise only adds time) does not drag the baseline.
pub fn runs_centre(runs: &[f64]) -> Option<f64> {
    stats::median(runs)
}

/// Seven significant digits: stored numbers stay readable in a diff, and
/// the rounding (≤ 5e-8 relative) is far below any timing noise.
pub fn round_sig(x: f64) -> f64 {
    if !x.is_finite() || x == 0.0 {
        return x;
    }
    format!("{x:.6e}").parse().unwrap_or(x)
}

/// The estimator as one short string in baseline files.
mod estimator_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::metric::Estimator;

    pub fn to_text(e: Estimator) -> String {
        match e {
            Estimator::Median => "median".into(),
            Estimator::Mean => "mean".into(),
            Estimator::Min => "min".into(),
            Estimator::Max => "max".into(),
            Estimator::Quantile(q) => {
                let p = format!("p{}", q * 100.0);
                if from_text(&p) == Ok(e) {
                    p
                } else {
                    format!("q{q}")
                }
            }
        }
    }

    pub fn from_text(s: &str) -> Result<Estimator, String> {
        let bad = || {
            format!(
                "invalid estimator `{s}`: expected \"median\", \"mean\", \"min\", \"max\", \"p5\" (a percentile) or \"q0.05\" (a quantile)"
            )
        };
        Ok(match s {
            "median" => Estimator::Median,
            "mean" => Estimator::Mean,
            "min" => Estimator::Min,
            "max" => Estimator::Max,
            _ => {
                let q = if let Some(p) = s.strip_prefix('p') {
                    p.parse::<f64>().map_err(|_| bad())? / 100.0
                } else if let Some(q) = s.strip_prefix('q') {
                    q.parse::<f64>().map_err(|_| bad())?
                } else {
                    return Err(bad());
                };
                if !(0.0..=1.0).contains(&q) {
                    return Err(format!(
                        "invalid estimator `{s}`: the quantile must lie in [0, 1]"
                    ));
                }
                Estimator::Quantile(q)
            }
        })
    }

    pub fn serialize<S: Serializer>(e: &Estimator, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&to_text(*e))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Estimator, D::Error> {
        let s = String::deserialize(d)?;
        from_text(&s).map_err(serde::de::Error::custom)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn round_trips() {
            for e in [
                Estimator::Median,
                Estimator::Mean,
                Estimator::Min,
                Estimator::Max,
                Estimator::Quantile(0.05),
                Estimator::Quantile(0.1),
                Estimator::Quantile(0.95),
                Estimator::Quantile(0.07),
                Estimator::Quantile(1.0 / 3.0),
            ] {
                assert_eq!(from_text(&to_text(e)), Ok(e), "{}", to_text(e));
            }
            assert_eq!(to_text(Estimator::Quantile(0.05)), "p5");
            assert!(from_text("p150").is_err());
            assert!(from_text("fast").is_err());
        }
    }
}
