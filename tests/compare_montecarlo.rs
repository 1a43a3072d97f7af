//! Monte-Carlo check of the gate's error rates on synthetic timings.
//!
//! A statistical simulation with fixed seeds, not a timed test: it builds
//! timing samples from noise models shaped like the ones measured on a
//! shared 2-core CI machine (right-skewed, bursts of contention whose share
//! changes from run to run so the median drifts by ~10%, while the fastest
//! samples move by well under 1%), blesses fresh baselines, and counts
//! verdicts. Targets (docs/gate-design.md): 20 A/A runs give at most 1
//! `regressed`; a 10% slowdown is flagged 20/20; a 5% slowdown with a 3%
//! tolerance ≥ 18/20.

use neon_perf::baseline::BaselineMetric;
use neon_perf::compare::{Policy, Verdict, compare_metric};
use neon_perf::metric::{Direction, Estimator, MetricKey, MetricSeries, Unit};
use neon_perf::stats::{Rng, quantile};

/// How one run's samples are drawn.
#[derive(Clone, Copy, Debug)]
struct Model {
    name: &'static str,
    /// The undisturbed time, seconds.
    floor: f64,
    /// Run-to-run drift of the floor (log sd): frequency, memory layout.
    floor_drift: f64,
    /// Undisturbed samples: floor · (1 + jitter · Exp(1)).
    jitter: f64,
    /// Share of samples in contention, drawn per run from this range.
    contended: (f64, f64),
    /// Contention adds floor · bump · LogNormal(0, 0.5); bump drawn per run.
    bump: (f64, f64),
    /// Mean length of a contention burst, in samples (samples are not independent).
    burst: f64,
    /// Rare large spikes (preemption).
    spike_p: f64,
}

const SHARED_2CORE: Model = Model {
    name: "shared-2core",
    floor: 126e-6,
    floor_drift: 0.003,
    jitter: 0.004,
    contended: (0.2, 0.8),
    bump: (0.05, 0.35),
    burst: 25.0,
    spike_p: 0.005,
};

/// Harsher: more contention (up to 85% of samples), a wider floor drift.
const HOSTILE: Model = Model {
    name: "hostile",
    floor: 2e-3,
    floor_drift: 0.006,
    jitter: 0.01,
    contended: (0.3, 0.85),
    bump: (0.1, 0.6),
    burst: 60.0,
    spike_p: 0.01,
};

fn run_samples(m: &Model, slowdown: f64, n: usize, rng: &mut Rng) -> Vec<f64> {
    let floor = m.floor * slowdown * (m.floor_drift * rng.normal()).exp();
    let pi = m.contended.0 + (m.contended.1 - m.contended.0) * rng.next_f64();
    let bump = m.bump.0 + (m.bump.1 - m.bump.0) * rng.next_f64();
    // Two-state Markov chain with stationary share `pi` of contention.
    let leave = 1.0 / m.burst;
    let enter = leave * pi / (1.0 - pi);
    let mut contended = rng.next_f64() < pi;
    (0..n)
        .map(|_| {
            let flip = if contended { leave } else { enter };
            if rng.next_f64() < flip {
                contended = !contended;
            }
            let mut x = if contended {
                floor * (1.0 + bump * (0.5 * rng.normal()).exp())
            } else {
                floor * (1.0 + m.jitter * rng.exp1())
            };
            if rng.next_f64() < m.spike_p {
                x *= 1.0 + 3.0 * rng.exp1();
            }
            x
        })
        .collect()
}

fn series(samples: Vec<f64>, est: Estimator) -> MetricSeries {
    MetricSeries {
        key: MetricKey::new("wall_time"),
        unit: Unit::Seconds,
        direction: Direction::LowerIsBetter,
        estimator: est,
        samples,
    }
}

#[derive(Default, Debug, Clone, Copy)]
struct Tally {
    regressed: u32,
    pass: u32,
    inconclusive: u32,
    improved: u32,
}

/// One "world": bless `blessed` runs of unchanged code, then compare 20
/// runs slowed by `slowdown`.
#[allow(clippy::too_many_arguments)]
fn world(
    m: &Model,
    est: Estimator,
    blessed: usize,
    slowdown: f64,
    tolerance: f64,
    n: usize,
    seed: u64,
    policy: &Policy,
) -> Tally {
    let mut rng = Rng::new(seed);
    let mut base: Option<BaselineMetric> = None;
    for _ in 0..blessed {
        let s = series(run_samples(m, 1.0, n, &mut rng), est);
        base = BaselineMetric::record(base.as_ref(), &s, 7);
    }
    let base = base.unwrap();
    let mut t = Tally::default();
    for _ in 0..20 {
        let s = series(run_samples(m, slowdown, n, &mut rng), est);
        let v = compare_metric(&s, Some(&base), None, tolerance, false, policy);
        match v.verdict {
            Verdict::Regressed => t.regressed += 1,
            Verdict::Pass => t.pass += 1,
            Verdict::Inconclusive => t.inconclusive += 1,
            Verdict::Improved => t.improved += 1,
            other => panic!("unexpected {other}"),
        }
    }
    t
}

const WORLDS: u64 = 10;

/// Worst and total `regressed` counts over `WORLDS` independent worlds.
fn sweep(
    m: &Model,
    est: Estimator,
    blessed: usize,
    slowdown: f64,
    tol: f64,
    n: usize,
) -> (u32, u32, u32) {
    sweep_with(
        m,
        est,
        blessed,
        slowdown,
        tol,
        n,
        &Policy::default(),
        WORLDS,
    )
}

#[allow(clippy::too_many_arguments)]
fn sweep_with(
    m: &Model,
    est: Estimator,
    blessed: usize,
    slowdown: f64,
    tol: f64,
    n: usize,
    policy: &Policy,
    worlds: u64,
) -> (u32, u32, u32) {
    let mut worst_hi = 0;
    let mut worst_lo = 20;
    let mut total = 0;
    let mut incon = 0;
    for w in 0..worlds {
        let t = world(m, est, blessed, slowdown, tol, n, 1000 * w + 17, policy);
        worst_hi = worst_hi.max(t.regressed);
        worst_lo = worst_lo.min(t.regressed);
        total += t.regressed;
        incon += t.inconclusive;
    }
    println!(
        "{:<13} {:<6} prior={:.3} blessed={} slowdown={:.2} tol={:.2} n={:<5}: regressed {:>3}/{} (per world {}..{}), inconclusive {}",
        m.name,
        est.to_string(),
        policy.run_noise_prior,
        blessed,
        slowdown,
        tol,
        n,
        total,
        20 * worlds,
        worst_lo,
        worst_hi,
        incon
    );
    (worst_lo, worst_hi, total)
}

#[test]
fn noise_model_matches_the_measured_drift() {
    // The model should reproduce the measured facts: median drifts ~10%
    // between runs, the fastest sample well under 1%.
    let mut rng = Rng::new(99);
    let runs: Vec<Vec<f64>> = (0..40)
        .map(|_| run_samples(&SHARED_2CORE, 1.0, 2000, &mut rng))
        .collect();
    let spread = |q: f64| {
        let v: Vec<f64> = runs.iter().map(|r| quantile(r, q).unwrap().ln()).collect();
        let m = v.iter().sum::<f64>() / v.len() as f64;
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
    };
    let (med, p10, p5, min) = (spread(0.5), spread(0.1), spread(0.05), spread(0.0));
    println!(
        "run-to-run sd: median {:.2}%, p10 {:.2}%, p5 {:.2}%, min {:.2}%",
        med * 100.0,
        p10 * 100.0,
        p5 * 100.0,
        min * 100.0
    );
    assert!(med > 0.05, "median should drift a lot: {med}");
    assert!(
        min < 0.01 && p10 < 0.01,
        "the fast tail should be stable: {min} {p10}"
    );
}

/// The estimator the gate recommends for times (see `recommended_estimator`).
const EST: Estimator = Estimator::Quantile(0.05);

#[test]
fn gate_meets_targets_on_shared_machine_model() {
    for n in [200, 2000] {
        for blessed in [1, 3] {
            let (_, worst_aa, _) = sweep(&SHARED_2CORE, EST, blessed, 1.0, 0.05, n);
            assert!(worst_aa <= 1, "A/A false alarms {worst_aa}/20");
            let (_, worst_aa3, _) = sweep(&SHARED_2CORE, EST, blessed, 1.0, 0.03, n);
            assert!(
                worst_aa3 <= 1,
                "A/A false alarms at 3% tolerance {worst_aa3}/20"
            );
            let (lo10, _, _) = sweep(&SHARED_2CORE, EST, blessed, 1.10, 0.05, n);
            assert_eq!(lo10, 20, "10% slowdown must be flagged 20/20");
            let (lo5, _, total5) = sweep(&SHARED_2CORE, EST, blessed, 1.05, 0.03, n);
            if blessed >= 3 && n >= 2000 {
                assert!(lo5 >= 18, "5% slowdown, 3% tolerance: {lo5}/20");
            } else {
                // One blessed run is one draw, and 200 samples let a whole
                // blessed run be contended: every verdict after it shares
                // that luck. Documented, and asserted on average only.
                assert!(
                    total5 >= 17 * WORLDS as u32,
                    "5% slowdown, 3% tolerance, {blessed} blessed, n={n}: {total5}"
                );
            }
        }
    }
}

#[test]
fn gate_stays_quiet_on_hostile_model() {
    // Floor drift of 0.6% per run makes 5%-vs-3% undecidable for any honest
    // test; the gate must still not cry wolf and must catch 10%.
    for blessed in [1, 3] {
        let (_, worst_aa, _) = sweep(&HOSTILE, EST, blessed, 1.0, 0.05, 2000);
        assert!(worst_aa <= 1, "A/A false alarms {worst_aa}/20");
        let (_, worst_aa3, _) = sweep(&HOSTILE, EST, blessed, 1.0, 0.03, 2000);
        assert!(
            worst_aa3 <= 1,
            "A/A false alarms at 3% tolerance {worst_aa3}/20"
        );
        let (lo10, _, _) = sweep(&HOSTILE, EST, blessed, 1.10, 0.05, 2000);
        assert!(lo10 >= 19, "10% slowdown: {lo10}/20");
        sweep(&HOSTILE, EST, blessed, 1.05, 0.03, 2000);
    }
}

/// Why not the median: the same protocol with the median estimator. Printed
/// for docs/gate-design.md (with p10 beside it for comparison).
#[test]
fn median_estimator_is_the_wrong_choice() {
    let (mut med_total, mut q10_total) = (0, 0);
    for blessed in [1, 3] {
        let (_, _, t) = sweep(&SHARED_2CORE, Estimator::Median, blessed, 1.0, 0.05, 2000);
        med_total += t;
        sweep(&SHARED_2CORE, Estimator::Median, blessed, 1.05, 0.03, 2000);
        let q10 = Estimator::Quantile(0.1);
        let (_, _, t) = sweep(&SHARED_2CORE, q10, blessed, 1.0, 0.05, 2000);
        q10_total += t;
        sweep(
            &SHARED_2CORE,
            Estimator::Quantile(0.1),
            blessed,
            1.05,
            0.03,
            2000,
        );
    }
    println!("A/A regressed in all: median {med_total}, p10 {q10_total}");
    assert!(
        med_total > 5 && med_total > 2 * q10_total,
        "the median ({med_total} false alarms) should be visibly worse than the low quantile ({q10_total})"
    );
}

/// The design sweep behind the defaults (run with `--ignored --nocapture`):
/// the default prior meets the two hard targets (at most 1 false alarm in
/// 20 per world, a 10% slowdown caught 19 times in 20) for both estimators,
/// both machine models and 1, 3 or 5 blessed runs, and the largest prior
/// tried does not; the printed rows of a 5% slowdown at 3% tolerance tell
/// the rest apart.
#[test]
#[ignore]
fn explore_design_space() {
    let mut largest_prior_missed = false;
    for m in [SHARED_2CORE, HOSTILE] {
        for prior in [0.003, 0.004, 0.005, 0.01] {
            let policy = Policy {
                run_noise_prior: prior,
                ..Policy::default()
            };
            for est in [Estimator::Quantile(0.05), Estimator::Quantile(0.1)] {
                for blessed in [1, 3, 5] {
                    let (_, aa, _) = sweep_with(&m, est, blessed, 1.0, 0.03, 2000, &policy, 10);
                    let (lo10, _, _) = sweep_with(&m, est, blessed, 1.10, 0.05, 2000, &policy, 10);
                    sweep_with(&m, est, blessed, 1.05, 0.03, 2000, &policy, 10);
                    let met = aa <= 1 && lo10 >= 19;
                    let at = format!("{} {est} prior {prior} blessed {blessed}", m.name);
                    if prior == Policy::default().run_noise_prior {
                        assert!(met, "{at}: A/A {aa}/20, 10% slowdown caught {lo10}/20");
                    }
                    largest_prior_missed |= prior == 0.01 && !met;
                }
            }
        }
    }
    assert!(
        largest_prior_missed,
        "prior 0.01 met every target: the default could be larger"
    );
}
