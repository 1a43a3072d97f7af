//! Table-driven verdict tests: each row is a situation and the verdict the
//! gate must give.

use std::collections::BTreeMap;

use neon_perf::baseline::BaselineMetric;
use neon_perf::compare::{
    MetricVerdict, Policy, Verdict, compare_metric, compare_scenario, overall,
    recommended_estimator,
};
use neon_perf::metric::{Direction, Estimator, MetricKey, MetricSeries, Unit};
use neon_perf::plan::{Kind, MetricRule, SourceLocation};
use neon_perf::result::{MonitorSummary, Outcome, ScenarioResult};
use neon_perf::stats::Rng;

/// `n` samples around `centre` with relative noise `noise` (right-skewed:
/// noise only adds time).
fn samples(centre: f64, noise: f64, n: usize, seed: u64) -> Vec<f64> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| centre * (1.0 + noise * rng.exp1()))
        .collect()
}

fn series(unit: Unit, direction: Direction, s: Vec<f64>) -> MetricSeries {
    MetricSeries {
        key: MetricKey::new("m"),
        unit,
        direction,
        estimator: Estimator::Quantile(0.1),
        samples: s,
    }
}

fn baseline_of(s: &MetricSeries, runs: usize, noise_seed: u64) -> BaselineMetric {
    let mut b = BaselineMetric::record(None, s, 1).unwrap();
    for i in 1..runs {
        let more = MetricSeries {
            samples: s
                .samples
                .iter()
                .map(|x| x * (1.0 + 0.001 * ((i as u64 + noise_seed) % 3) as f64))
                .collect(),
            ..s.clone()
        };
        b = BaselineMetric::record(Some(&b), &more, 1).unwrap();
    }
    b
}

struct Row {
    name: &'static str,
    direction: Direction,
    base: (f64, f64),
    cur: (f64, f64),
    n: usize,
    tolerance: f64,
    rule: Option<MetricRule>,
    run_invalid: bool,
    has_baseline: bool,
    want: Verdict,
}

fn row(
    name: &'static str,
    base: (f64, f64),
    cur: (f64, f64),
    tolerance: f64,
    want: Verdict,
) -> Row {
    Row {
        name,
        direction: Direction::LowerIsBetter,
        base,
        cur,
        n: 500,
        tolerance,
        rule: None,
        run_invalid: false,
        has_baseline: true,
        want,
    }
}

fn run_row(r: &Row) -> MetricVerdict {
    let unit = if r.direction == Direction::HigherIsBetter {
        Unit::BytesPerSecond
    } else {
        Unit::Seconds
    };
    let base = series(
        unit.clone(),
        r.direction,
        samples(r.base.0, r.base.1, r.n, 11),
    );
    let b = baseline_of(&base, 3, 0);
    let cur = series(unit, r.direction, samples(r.cur.0, r.cur.1, r.n, 23));
    compare_metric(
        &cur,
        r.has_baseline.then_some(&b),
        r.rule.as_ref(),
        r.tolerance,
        r.run_invalid,
        &Policy::default(),
    )
}

#[test]
fn verdict_table() {
    let ms = 1e-3;
    let rows = vec![
        row(
            "identical samples",
            (ms, 0.01),
            (ms, 0.01),
            0.05,
            Verdict::Pass,
        ),
        row(
            "+10% with tight noise",
            (ms, 0.01),
            (1.10 * ms, 0.01),
            0.05,
            Verdict::Regressed,
        ),
        row(
            "+2% within a 5% tolerance",
            (ms, 0.01),
            (1.02 * ms, 0.01),
            0.05,
            Verdict::Pass,
        ),
        row(
            "point beyond tolerance, interval not: a likely regression left undecided",
            (ms, 0.01),
            (1.045 * ms, 0.01),
            0.04,
            Verdict::Inconclusive,
        ),
        row(
            "-10% with tight noise",
            (ms, 0.01),
            (0.90 * ms, 0.01),
            0.05,
            Verdict::Improved,
        ),
        Row {
            n: 12,
            ..row(
                "noise so wide the CI straddles",
                (ms, 1.0),
                (1.08 * ms, 1.0),
                0.05,
                Verdict::Inconclusive,
            )
        },
        Row {
            rule: Some(MetricRule {
                max: Some(0.9 * ms),
                ..Default::default()
            }),
            ..row(
                "above an absolute max",
                (ms, 0.01),
                (ms, 0.01),
                0.05,
                Verdict::Regressed,
            )
        },
        Row {
            rule: Some(MetricRule {
                max: Some(0.9 * ms),
                ..Default::default()
            }),
            has_baseline: false,
            ..row(
                "bound fails without a baseline",
                (ms, 0.01),
                (ms, 0.01),
                0.05,
                Verdict::Regressed,
            )
        },
        Row {
            rule: Some(MetricRule {
                max: Some(0.9 * ms),
                ..Default::default()
            }),
            run_invalid: true,
            ..row(
                "bound fails on an invalid run",
                (ms, 0.01),
                (ms, 0.01),
                0.05,
                Verdict::Regressed,
            )
        },
        Row {
            rule: Some(MetricRule {
                min: Some(0.5 * ms),
                max: Some(2.0 * ms),
                ..Default::default()
            }),
            ..row(
                "within both bounds",
                (ms, 0.01),
                (ms, 0.01),
                0.05,
                Verdict::Pass,
            )
        },
        Row {
            run_invalid: true,
            ..row(
                "invalid run",
                (ms, 0.01),
                (1.5 * ms, 0.01),
                0.05,
                Verdict::Invalid,
            )
        },
        Row {
            has_baseline: false,
            ..row(
                "no baseline",
                (ms, 0.01),
                (ms, 0.01),
                0.05,
                Verdict::NoBaseline,
            )
        },
        Row {
            rule: Some(MetricRule {
                gate: Some(false),
                ..Default::default()
            }),
            ..row(
                "not gated",
                (ms, 0.01),
                (2.0 * ms, 0.01),
                0.05,
                Verdict::Pass,
            )
        },
        Row {
            rule: Some(MetricRule {
                direction: Some(Direction::Neither),
                ..Default::default()
            }),
            ..row(
                "direction neither",
                (ms, 0.01),
                (2.0 * ms, 0.01),
                0.05,
                Verdict::Pass,
            )
        },
        Row {
            rule: Some(MetricRule {
                tolerance: Some(0.20),
                ..Default::default()
            }),
            ..row(
                "rule tolerance wins",
                (ms, 0.01),
                (1.10 * ms, 0.01),
                0.05,
                Verdict::Pass,
            )
        },
        Row {
            direction: Direction::HigherIsBetter,
            ..row(
                "throughput -10%",
                (1e9, 0.01),
                (0.9e9, 0.01),
                0.05,
                Verdict::Regressed,
            )
        },
        Row {
            direction: Direction::HigherIsBetter,
            ..row(
                "throughput +10%",
                (1e9, 0.01),
                (1.1e9, 0.01),
                0.05,
                Verdict::Improved,
            )
        },
        Row {
            direction: Direction::HigherIsBetter,
            ..row(
                "throughput -2%",
                (1e9, 0.01),
                (0.98e9, 0.01),
                0.05,
                Verdict::Pass,
            )
        },
        Row {
            direction: Direction::HigherIsBetter,
            rule: Some(MetricRule {
                min: Some(1.2e9),
                ..Default::default()
            }),
            ..row(
                "throughput below min",
                (1e9, 0.01),
                (1e9, 0.01),
                0.05,
                Verdict::Regressed,
            )
        },
    ];
    let mut failures = Vec::new();
    for r in &rows {
        let v = run_row(r);
        if v.verdict != r.want {
            failures.push(format!(
                "{}: want {}, got {} ({v:?})",
                r.name, r.want, v.verdict
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn evidence_is_filled_in() {
    let ms = 1e-3;
    let v = run_row(&row(
        "+10%",
        (ms, 0.01),
        (1.10 * ms, 0.01),
        0.05,
        Verdict::Regressed,
    ));
    let change = v.change.unwrap();
    assert!((change - 0.10).abs() < 0.01, "{change}");
    let (lo, hi) = v.ci.unwrap();
    assert!(lo <= change && change <= hi && lo > 0.05);
    assert!(v.p_value.unwrap() < 1e-6);
    assert!(v.gated);
    assert_eq!(v.estimator, Estimator::Quantile(0.1));

    let bound = run_row(&Row {
        rule: Some(MetricRule {
            max: Some(5e-3),
            ..Default::default()
        }),
        ..row(
            "bound",
            (ms, 0.01),
            (6.0 * ms, 0.01),
            0.05,
            Verdict::Regressed,
        )
    });
    assert_eq!(
        bound
            .bound_violation
            .as_deref()
            .map(|s| s.starts_with("above max 5.00 ms")),
        Some(true),
        "{bound:?}"
    );

    let wide = run_row(&Row {
        n: 12,
        ..row(
            "wide",
            (ms, 1.0),
            (1.08 * ms, 1.0),
            0.05,
            Verdict::Inconclusive,
        )
    });
    assert!(wide.note.unwrap().contains("wider than"));
}

#[test]
fn verdicts_are_deterministic() {
    let ms = 1e-3;
    let r = row("x", (ms, 0.05), (1.04 * ms, 0.05), 0.03, Verdict::Pass);
    assert_eq!(run_row(&r), run_row(&r));
}

#[test]
fn serde_and_display() {
    assert_eq!(
        serde_json::to_string(&Verdict::NoBaseline).unwrap(),
        "\"no_baseline\""
    );
    assert_eq!(Verdict::NoBaseline.to_string(), "no-baseline");
    assert_eq!(Verdict::Regressed.to_string(), "regressed");
    let v = run_row(&row("x", (1.0, 0.01), (1.0, 0.01), 0.05, Verdict::Pass));
    let json = serde_json::to_string(&v).unwrap();
    let back: MetricVerdict = serde_json::from_str(&json).unwrap();
    // serde_json's default float parsing may differ in the last bit.
    assert_eq!(back.verdict, v.verdict);
    assert_eq!(back.key, v.key);
    assert!((back.baseline.unwrap() - v.baseline.unwrap()).abs() < 1e-12);
    assert!(json.contains("\"verdict\":\"pass\""), "{json}");
}

#[test]
fn zero_baseline_is_inconclusive_not_a_panic() {
    let s = series(Unit::Count, Direction::LowerIsBetter, vec![0.0; 5]);
    let b = BaselineMetric::record(None, &s, 1).unwrap();
    let same = compare_metric(&s, Some(&b), None, 0.05, false, &Policy::default());
    assert_eq!(same.verdict, Verdict::Pass);
    let worse = series(Unit::Count, Direction::LowerIsBetter, vec![3.0; 5]);
    let v = compare_metric(&worse, Some(&b), None, 0.05, false, &Policy::default());
    assert_eq!(v.verdict, Verdict::Inconclusive);
    assert!(v.note.unwrap().contains("absolute bound"));
}

#[test]
fn empty_samples_are_invalid() {
    let s = series(Unit::Seconds, Direction::LowerIsBetter, vec![]);
    let v = compare_metric(&s, None, None, 0.05, false, &Policy::default());
    assert_eq!(v.verdict, Verdict::Invalid);
    let nan = series(Unit::Seconds, Direction::LowerIsBetter, vec![f64::NAN]);
    assert_eq!(
        compare_metric(&nan, None, None, 0.05, false, &Policy::default()).verdict,
        Verdict::Invalid
    );
}

#[test]
fn a_verdict_with_no_estimate_reads_back_from_json() {
    // serde_json writes NaN as `null`; `compare` and `merge` read it back.
    let s = series(Unit::Seconds, Direction::LowerIsBetter, vec![]);
    let v = compare_metric(&s, None, None, 0.05, false, &Policy::default());
    let json = serde_json::to_string(&v).unwrap();
    assert!(json.contains(r#""current":null"#), "{json}");
    let back: MetricVerdict = serde_json::from_str(&json).unwrap();
    assert!(back.current.is_nan());
    assert_eq!(back.verdict, Verdict::Invalid);
}

#[test]
fn changed_unit_or_estimator_is_reported() {
    let s = series(
        Unit::Seconds,
        Direction::LowerIsBetter,
        samples(1.0, 0.01, 100, 1),
    );
    let mut b = BaselineMetric::record(None, &s, 1).unwrap();
    b.unit = Unit::Bytes;
    let v = compare_metric(&s, Some(&b), None, 0.05, false, &Policy::default());
    assert_eq!(v.verdict, Verdict::NoBaseline);
    assert!(v.note.unwrap().contains("re-bless"));
    let mut b = BaselineMetric::record(None, &s, 1).unwrap();
    b.estimator = Estimator::Median;
    let v = compare_metric(&s, Some(&b), None, 0.05, false, &Policy::default());
    assert_eq!(v.verdict, Verdict::Pass);
    assert!(v.note.unwrap().contains("re-bless"));
}

#[test]
fn a_rate_recorded_before_it_kept_its_name_still_gates() {
    // Baselines recorded `req/s` as plain "per second"; the run now names
    // it. Same quantity: compared, not "re-bless".
    let s = series(
        Unit::Rate("req".into()),
        Direction::HigherIsBetter,
        samples(1000.0, 0.01, 100, 1),
    );
    let mut b = BaselineMetric::record(None, &s, 1).unwrap();
    b.unit = Unit::PerSecond;
    let v = compare_metric(&s, Some(&b), None, 0.05, false, &Policy::default());
    assert_eq!(v.verdict, Verdict::Pass, "{v:?}");
    assert!(v.baseline.is_some());
    b.unit = Unit::Rate("msg".into());
    let v = compare_metric(&s, Some(&b), None, 0.05, false, &Policy::default());
    assert_eq!(v.verdict, Verdict::NoBaseline);
    assert!(v.note.unwrap().contains("msg/s but this run reports req/s"));
}

fn result(outcome: Outcome, metrics: Vec<MetricSeries>, invalid: Vec<String>) -> ScenarioResult {
    ScenarioResult {
        suite: "s".into(),
        scenario: "sc".into(),
        kind: Kind::Command,
        location: SourceLocation::default(),
        device: "cpu".into(),
        outcome,
        metrics,
        checks: vec![],
        monitor: MonitorSummary::default(),
        invalid_reasons: invalid,
        warnings: vec![],
        wall_time_s: 1.0,
    }
}

#[test]
fn scenario_compare_uses_rules_by_exact_key_then_name() {
    let mk = |name: &str, label: Option<&str>, c: f64| {
        let mut key = MetricKey::new(name);
        if let Some(l) = label {
            key = key.with("batch", l);
        }
        MetricSeries {
            key,
            ..series(
                Unit::Seconds,
                Direction::LowerIsBetter,
                samples(c, 0.01, 200, 5),
            )
        }
    };
    let base_r = result(
        Outcome::Ran,
        vec![mk("lat", Some("1"), 1.0), mk("lat", Some("8"), 1.0)],
        vec![],
    );
    let mut scen = neon_perf::baseline::BaselineScenario {
        commit: "c".into(),
        date: "2026-01-01T00:00:00Z".into(),
        metric: BTreeMap::new(),
    };
    for m in &base_r.metrics {
        scen.metric.insert(
            m.key.to_string(),
            BaselineMetric::record(None, m, 3).unwrap(),
        );
    }
    let cur = result(
        Outcome::Ran,
        vec![mk("lat", Some("1"), 1.10), mk("lat", Some("8"), 1.10)],
        vec![],
    );
    let mut rules = BTreeMap::new();
    rules.insert(
        "lat".to_string(),
        MetricRule {
            tolerance: Some(0.5),
            ..Default::default()
        },
    );
    rules.insert(
        "lat{batch=1}".to_string(),
        MetricRule {
            tolerance: Some(0.02),
            ..Default::default()
        },
    );
    let vs = compare_scenario(&cur, Some(&scen), &rules, 0.05, &Policy::default());
    assert_eq!(vs.len(), 2);
    assert_eq!(vs[0].verdict, Verdict::Regressed, "{:?}", vs[0]);
    assert_eq!(vs[1].verdict, Verdict::Pass, "{:?}", vs[1]);
    let o = overall(&vs);
    assert_eq!(
        (o.verdict, o.regressed, o.passed),
        (Some(Verdict::Regressed), 1, 1)
    );

    let throttled = result(
        Outcome::Ran,
        cur.metrics.clone(),
        vec!["GPU thermal throttling".into()],
    );
    let vs = compare_scenario(
        &throttled,
        Some(&scen),
        &BTreeMap::new(),
        0.05,
        &Policy::default(),
    );
    assert!(vs.iter().all(|v| v.verdict == Verdict::Invalid));
    assert!(vs[0].note.as_deref().unwrap().contains("thermal"));

    let ignored = result(
        Outcome::Ignored {
            reason: "no CUDA".into(),
        },
        vec![],
        vec![],
    );
    assert!(
        compare_scenario(&ignored, None, &BTreeMap::new(), 0.05, &Policy::default()).is_empty()
    );
    let failed = result(
        Outcome::Failed {
            error: "exit 1".into(),
        },
        cur.metrics.clone(),
        vec![],
    );
    let vs = compare_scenario(
        &failed,
        Some(&scen),
        &BTreeMap::new(),
        0.05,
        &Policy::default(),
    );
    assert!(vs.iter().all(|v| v.verdict == Verdict::Invalid));
}

#[test]
fn overall_verdicts() {
    use Verdict::*;
    assert_eq!(overall(&[]).verdict, None);
    let mv = |v: Verdict| MetricVerdict {
        verdict: v,
        ..run_row(&row("x", (1.0, 0.01), (1.0, 0.01), 0.05, Verdict::Pass))
    };
    assert_eq!(overall(&[mv(Pass), mv(Improved)]).verdict, Some(Improved));
    assert_eq!(
        overall(&[mv(NoBaseline), mv(NoBaseline)]).verdict,
        Some(NoBaseline)
    );
    assert_eq!(overall(&[mv(NoBaseline), mv(Pass)]).verdict, Some(Pass));
    assert_eq!(
        overall(&[mv(Inconclusive), mv(Invalid), mv(Pass)]).verdict,
        Some(Invalid)
    );
    assert_eq!(
        overall(&[mv(Inconclusive), mv(Regressed)]).verdict,
        Some(Regressed)
    );
}

#[test]
fn recommended_estimators() {
    assert_eq!(
        recommended_estimator(&Unit::Seconds, Direction::LowerIsBetter),
        Estimator::Quantile(0.05)
    );
    assert_eq!(
        recommended_estimator(&Unit::BytesPerSecond, Direction::HigherIsBetter),
        Estimator::Quantile(0.95)
    );
    assert_eq!(
        recommended_estimator(&Unit::Bytes, Direction::LowerIsBetter),
        Estimator::Median
    );
}
