//! PLACEHOLDER until the stats branch lands: the agreed API only.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::baseline::store::{BaselineMetric, BaselineScenario};
use crate::metric::{Direction, MetricKey, MetricSeries, Unit};
use crate::plan::MetricRule;
use crate::result::ScenarioResult;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Regressed,
    Improved,
    Inconclusive,
    NoBaseline,
    Invalid,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verdict::Pass => "pass",
            Verdict::Regressed => "regressed",
            Verdict::Improved => "improved",
            Verdict::Inconclusive => "inconclusive",
            Verdict::NoBaseline => "no-baseline",
            Verdict::Invalid => "invalid",
        })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricVerdict {
    pub key: MetricKey,
    pub unit: Unit,
    pub direction: Direction,
    pub verdict: Verdict,
    pub current: f64,
    pub baseline: Option<f64>,
    pub change: Option<f64>,
    pub ci: Option<(f64, f64)>,
    pub p_value: Option<f64>,
    pub tolerance: f64,
    pub bound_violation: Option<String>,
    pub gated: bool,
    pub note: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Policy {
    pub seed: u64,
    pub confidence: f64,
    pub bootstrap_resamples: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            seed: 0,
            confidence: 0.95,
            bootstrap_resamples: 1000,
        }
    }
}

pub fn compare_metric(
    current: &MetricSeries,
    baseline: Option<&BaselineMetric>,
    rule: Option<&MetricRule>,
    default_tolerance: f64,
    run_invalid: bool,
    _policy: &Policy,
) -> MetricVerdict {
    let est = crate::stats::median(&current.samples).unwrap_or(f64::NAN);
    let _ = (baseline, rule, run_invalid);
    MetricVerdict {
        key: current.key.clone(),
        unit: current.unit.clone(),
        direction: current.direction,
        verdict: Verdict::NoBaseline,
        current: est,
        baseline: None,
        change: None,
        ci: None,
        p_value: None,
        tolerance: default_tolerance,
        bound_violation: None,
        gated: true,
        note: None,
    }
}

pub fn compare_scenario(
    result: &ScenarioResult,
    baseline: Option<&BaselineScenario>,
    rules: &BTreeMap<String, MetricRule>,
    tolerance: f64,
    policy: &Policy,
) -> Vec<MetricVerdict> {
    let _ = baseline;
    result
        .metrics
        .iter()
        .map(|m| {
            compare_metric(
                m,
                None,
                rules.get(&m.key.to_string()),
                tolerance,
                !result.invalid_reasons.is_empty(),
                policy,
            )
        })
        .collect()
}
