//! Test fixtures for the HTML report, named for what they are:
//! - [`recorded_h100`]: kernel times recorded on an H100 (the reservoirs in
//!   `baselines/nvidia-h100-*/gpu.toml`, three blessed runs), compared with
//!   that baseline by the real `compare`; the NVML timeline is *synthetic*
//!   (no run has kept one yet), shaped after the figures recorded in
//!   docs/gpu-runs.md (SM clock 1980 MHz max and ≥ 97% of it while busy,
//!   HBM 2619 MHz, 79.6 GiB, peak power 458 W, 100% SM utilization).
//! - [`synthetic`]: made-up samples for the page's logic: a command with a
//!   hostile name, a regression, a batch sweep with an SLO, an ignored one.

use std::collections::BTreeMap;
use std::path::Path;

use crate::baseline::{BaselineMetric, HardwareKey, store};
use crate::compare::{self, Policy, Verdict};
use crate::metric::{Direction, MetricKey, MetricSeries, Unit};
use crate::outcome::{RunReport, ScenarioReport, Status};
use crate::plan::Kind;
use crate::result::{Check, GpuSample, GpuSummary, Outcome, ScenarioResult};
use crate::stats::rng::Rng;

const H100_DIR: &str = "baselines/nvidia-h100-80gb-hbm3-79gib-drv580-cuda13-ecc-700w";

fn result(suite: &str, name: &str, kind: Kind, device: &str) -> ScenarioResult {
    ScenarioResult {
        suite: suite.into(),
        scenario: name.into(),
        kind,
        location: Default::default(),
        device: device.into(),
        outcome: Outcome::Ran,
        metrics: vec![],
        checks: vec![],
        monitor: Default::default(),
        invalid_reasons: vec![],
        warnings: vec![],
        wall_time_s: 1.5,
    }
}

fn status(verdicts: &[crate::compare::MetricVerdict]) -> Status {
    match compare::overall(verdicts).verdict {
        Some(Verdict::Regressed) => Status::Regressed,
        Some(Verdict::Improved) => Status::Improved,
        Some(Verdict::Inconclusive) => Status::Inconclusive,
        Some(Verdict::Invalid) => Status::Invalid,
        Some(Verdict::Pass) => Status::Pass,
        _ => Status::NoBaseline,
    }
}

fn report(hardware_dir: &str, scenarios: Vec<ScenarioReport>) -> RunReport {
    let exit_code = i32::from(scenarios.iter().any(|s| s.status.is_failure()));
    RunReport {
        partition: None,
        not_recorded: Vec::new(),
        cancelled: None,
        format_version: crate::outcome::RESULTS_FORMAT_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").into(),
        created: "2026-11-27T10:00:00Z".into(),
        git_commit: Some("fixture".into()),
        mode: "gate".into(),
        hardware_key: HardwareKey {
            cpu_model: "fixture".into(),
            cpu_cores: 2,
            gpus: vec![],
        },
        hardware_dir: hardware_dir.into(),
        checklist: crate::checklist::evaluate(&scenarios),
        scenarios,
        exit_code,
        blessed: vec![],
    }
}

/// The synthetic NVML timeline (see the module docs): 176 readings, 50 ms apart.
fn h100_timeline() -> Vec<GpuSample> {
    let gib = 1024.0 * 1024.0 * 1024.0;
    let mut rng = Rng::new(7);
    (0..176)
        .map(|i| {
            let t = i as f64 * 0.05;
            let busy = (0.4..8.2).contains(&t);
            let j = rng.next_f64();
            GpuSample {
                t,
                sm_util: if busy { 96.0 + 4.0 * j } else { 0.0 },
                mem_util: if busy { 78.0 + 10.0 * j } else { 0.0 },
                mem_used_bytes: ((if busy { 39.5 } else { 0.6 }) * gib) as u64,
                power_w: if busy { 430.0 + 28.0 * j } else { 72.0 },
                temp_c: 34.0 + 14.0 * (t / 8.8),
                sm_clock_mhz: if busy { 1935.0 + 45.0 * j } else { 1980.0 },
                mem_clock_mhz: 2619.0,
                throttle_reasons: 0,
            }
        })
        .collect()
}

/// Kernel times from the committed H100 baseline, compared with it.
pub fn recorded_h100() -> RunReport {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = root.join(H100_DIR).join("gpu.toml");
    let text = std::fs::read_to_string(&path).expect("H100 baseline is committed");
    let file = store::parse(&path, &text).expect("H100 baseline parses");
    let mut scenarios = Vec::new();
    for name in ["saxpy", "copy"] {
        let base = &file.scenario[name];
        let mut r = result("gpu", name, Kind::GpuKernel, "cuda:0 NVIDIA H100 80GB HBM3");
        r.metrics = base
            .metric
            .iter()
            .map(|(k, m)| MetricSeries {
                key: k.parse().expect("baseline key"),
                unit: m.unit.clone(),
                direction: m.direction,
                estimator: m.estimator,
                samples: m.reservoir.clone(),
            })
            .collect();
        r.checks = vec![Check::new(
            "outputs match reference",
            true,
            "recorded: equal to the naive reference kernel",
            Some(crate::metric::ChecklistItem::CudaSync),
        )];
        let timeline = h100_timeline();
        r.monitor.gpus = vec![GpuSummary {
            index: 0,
            name: "NVIDIA H100 80GB HBM3".into(),
            samples: timeline.len(),
            sm_util_mean: 88.0,
            sm_util_max: 100.0,
            mem_util_mean: 75.0,
            mem_used_peak_bytes: (39.5 * 1024.0 * 1024.0 * 1024.0) as u64,
            process_mem_peak_bytes: (38.9 * 1024.0 * 1024.0 * 1024.0) as u64,
            mem_total_bytes: 85_520_809_984,
            power_mean_w: 400.0,
            power_max_w: 458.0,
            temp_max_c: 48.0,
            sm_clock_max_mhz: 1980.0,
            sm_clock_min_ratio: 0.977,
            throttle_reasons: vec!["software power cap".into()],
            other_processes: vec![],
            foreign_pid_processes: 0,
            withheld_processes: 0,
            timeline,
        }];
        let verdicts =
            compare::compare_scenario(&r, Some(base), &BTreeMap::new(), 0.05, &Policy::default());
        scenarios.push(ScenarioReport {
            status: status(&verdicts),
            result: r,
            verdicts,
            checklist: vec![],
            smoke: false,
            rules: BTreeMap::new(),
            tolerance: 0.05,
            profile: None,
        });
    }
    report(H100_DIR.trim_start_matches("baselines/"), scenarios)
}

/// `n` log-normal-ish samples around `median` seconds (seeded).
fn times(seed: u64, n: usize, median: f64) -> Vec<f64> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| median * (0.05 * rng.normal()).exp() * (1.0 + 0.02 * rng.exp1()))
        .collect()
}

fn series(key: &str, unit: Unit, dir: Direction, samples: Vec<f64>) -> MetricSeries {
    MetricSeries {
        key: key.parse().expect("key"),
        estimator: crate::metric::default_estimator(&unit, dir),
        unit,
        direction: dir,
        samples,
    }
}

/// Made-up results exercising every part of the page (see the module docs).
pub fn synthetic(samples: usize) -> RunReport {
    let policy = Policy::default();
    let mut cmd = result("ex", "sort<&>\"x'", Kind::Command, "cpu");
    cmd.warnings = vec!["<b>not bold</b>".into()];
    cmd.checks = vec![Check::new("exit status", true, "exit 0 <ok>", None)];
    let slow = series(
        "sort_time{n=<10>}",
        Unit::Seconds,
        Direction::LowerIsBetter,
        times(1, samples, 1.1e-3),
    );
    let base_series = series(
        "sort_time{n=<10>}",
        Unit::Seconds,
        Direction::LowerIsBetter,
        times(2, samples, 1.0e-3),
    );
    let base = BaselineMetric::record(None, &base_series, 3).expect("finite");
    let fast = series(
        "throughput",
        Unit::Rate("samples".into()),
        Direction::HigherIsBetter,
        times(4, 50, 500.0),
    );
    let fast_base = BaselineMetric::record(
        None,
        &series(
            "throughput",
            Unit::Rate("samples".into()),
            Direction::HigherIsBetter,
            times(5, 50, 490.0),
        ),
        6,
    )
    .expect("finite");
    let verdicts = vec![
        compare::compare_metric(&slow, Some(&base), None, 0.05, false, &policy),
        compare::compare_metric(&fast, Some(&fast_base), None, 0.05, false, &policy),
    ];
    cmd.metrics = vec![slow, fast];
    let cmd = ScenarioReport {
        status: status(&verdicts),
        result: cmd,
        verdicts,
        checklist: vec![],
        smoke: false,
        rules: BTreeMap::new(),
        tolerance: 0.05,
        profile: None,
    };

    let mut sweep = result("models", "mlp-sweep", Kind::BatchSweep, "cpu");
    for (i, b) in [1usize, 4, 16, 64].into_iter().enumerate() {
        let lat = times(10 + i as u64, 40, 0.5e-3 * (1.0 + b as f64 / 6.0));
        sweep.metrics.push(series(
            &format!("latency{{batch={b}}}"),
            Unit::Seconds,
            Direction::LowerIsBetter,
            lat,
        ));
    }
    for (k, unit, v) in [
        ("best_batch", Unit::Count, 64.0),
        ("latency_slo", Unit::Seconds, 5e-3),
        ("max_batch_under_slo", Unit::Count, 16.0),
    ] {
        sweep.metrics.push(MetricSeries::single(
            MetricKey::new(k),
            unit,
            Direction::Neither,
            v,
        ));
    }
    let sweep_verdicts = compare::compare_scenario(&sweep, None, &BTreeMap::new(), 0.05, &policy);
    let sweep = ScenarioReport {
        status: Status::NoBaseline,
        result: sweep,
        verdicts: sweep_verdicts,
        checklist: vec![],
        smoke: true,
        rules: BTreeMap::new(),
        tolerance: 0.05,
        profile: None,
    };

    let mut ignored = result("gpu", "saxpy", Kind::GpuKernel, "");
    ignored.outcome = Outcome::Ignored {
        reason: "no CUDA driver found".into(),
    };
    let ignored = ScenarioReport {
        status: Status::Ignored,
        result: ignored,
        verdicts: vec![],
        checklist: vec![],
        smoke: false,
        rules: BTreeMap::new(),
        tolerance: 0.05,
        profile: None,
    };
    report("fixture-<host>", vec![cmd, sweep, ignored])
}
