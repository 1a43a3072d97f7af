//! Monte-Carlo check of paired mode's error rates on a machine with slow
//! spells (docs/paired.md).
//!
//! A statistical simulation with fixed seeds, not a timed test. Each run's
//! estimate is drawn from the shape measured on the 2-vCPU CI VM: a fast
//! state (~94 µs for the sort workload, ±0.3% run to run) and a slow one
//! (+30–55%), entered and left like a two-state Markov chain over the runs
//! in the order they execute (B H, H B, …), so spells last a few runs. In
//! the slow state most of the effect is hidden (seen: 131 vs 131 µs at
//! +5% work). The decision loop is run_pairs' (`paired::next_target`): 4
//! pairs, 2 more at a time while inconclusive up to 16 (32 when slow spells
//! took more than half of them), then, for a regression whose evidence was
//! not clean (`needs_confirmation`), 4 confirmation pairs judged by
//! `confirm_with_more_pairs` (the extra round run_pairs adds when every
//! confirmation pair was in a spell is not simulated).
//!
//! Targets (issue #6): at most 1 false alarm in 20 A/A runs; a +5% change
//! at a 3% tolerance caught in at least 19 of 20.

use neon_perf::compare::{MetricVerdict, PairOrder, Policy, Verdict, compare_paired};
use neon_perf::metric::{Direction, Estimator, MetricKey, MetricSeries, Unit};
use neon_perf::result::ScenarioResult;
use neon_perf::run::paired::{confirm_with_more_pairs, needs_confirmation, next_target};
use neon_perf::stats::Rng;
use std::collections::BTreeMap;

const PAIRS: usize = 4;

/// The machine: how often a spell starts after a fast run, how often it
/// goes on after a slow one.
#[derive(Clone, Copy, Debug)]
struct Machine {
    name: &'static str,
    enter: f64,
    stay: f64,
}

/// A quiet VM: a spell now and then (about 4% of runs).
const QUIET: Machine = Machine {
    name: "quiet",
    enter: 0.03,
    stay: 0.3,
};
/// Under a CI build on the other vCPU: about 20% of runs slow, in spells
/// of 2–3 runs (measured: 10–25%).
const LOADED: Machine = Machine {
    name: "CI build",
    enter: 0.1,
    stay: 0.6,
};

/// Deep in spells (seen at 14:20): a third of the runs slow, in spells of
/// about five runs. Detection is expected to suffer here, into
/// `inconclusive`; false alarms are not.
const SPELLS: Machine = Machine {
    name: "spells",
    enter: 0.1,
    stay: 0.8,
};

/// The deepest state seen (20:48, 04:35): about half the runs slow, in
/// spells of about eight runs, so whole 16-pair pairings were mostly slow.
const DEEP: Machine = Machine {
    name: "deep",
    enter: 0.1,
    stay: 0.88,
};

struct Sim {
    rng: Rng,
    slow: bool,
    machine: Machine,
}

impl Sim {
    /// One run's samples: 40 around its level, as the workload reports them.
    fn run(&mut self, effect: f64) -> ScenarioResult {
        let p = if self.slow {
            self.machine.stay
        } else {
            self.machine.enter
        };
        self.slow = self.rng.next_f64() < p;
        let level = if self.slow {
            94e-6 * (1.30 + 0.25 * self.rng.next_f64()) * (1.0 + 0.2 * effect)
        } else {
            94e-6 * (1.0 + effect) * (1.0 + 0.003 * self.rng.normal())
        };
        let samples = (0..40)
            .map(|_| level * (1.0 + 0.002 * self.rng.exp1()))
            .collect();
        result(samples)
    }
}

fn result(samples: Vec<f64>) -> ScenarioResult {
    ScenarioResult::from_metrics(
        "mc",
        "sort",
        vec![MetricSeries {
            key: MetricKey::new("sort_time"),
            unit: Unit::Seconds,
            direction: Direction::LowerIsBetter,
            estimator: Estimator::Quantile(0.05),
            samples,
        }],
    )
}

#[derive(Default)]
struct Runs {
    base: Vec<ScenarioResult>,
    head: Vec<ScenarioResult>,
    head_first: Vec<bool>,
}

impl Runs {
    /// `n` more pairs, in B H, H B, B H, … order.
    fn add(&mut self, sim: &mut Sim, effect: f64, n: usize) {
        for _ in 0..n {
            let head_first = self.head_first.len() % 2 == 1;
            if head_first {
                self.head.push(sim.run(effect));
                self.base.push(sim.run(0.0));
            } else {
                self.base.push(sim.run(0.0));
                self.head.push(sim.run(effect));
            }
            self.head_first.push(head_first);
        }
    }

    fn judge(&self, tolerance: f64) -> MetricVerdict {
        let order: Vec<PairOrder> = (0..self.head_first.len())
            .map(PairOrder::alternating)
            .collect();
        compare_paired(
            &self.base,
            &self.head,
            &order,
            &BTreeMap::new(),
            tolerance,
            None,
            &Policy::default(),
        )
        .remove(0)
    }
}

/// One paired scenario, as run_pairs decides it: the final verdict and the
/// pairs it took.
fn scenario(sim: &mut Sim, effect: f64, tolerance: f64) -> (Verdict, usize) {
    let mut runs = Runs::default();
    runs.add(sim, effect, PAIRS);
    let mut v = runs.judge(tolerance);
    let mut target = PAIRS;
    while let Some(next) = next_target(target, PAIRS, std::slice::from_ref(&v)) {
        runs.add(sim, effect, next - target);
        target = next;
        v = runs.judge(tolerance);
    }
    if needs_confirmation(&v) {
        let first = runs.head_first.len();
        runs.add(sim, effect, PAIRS);
        let pooled = runs.judge(tolerance);
        v = confirm_with_more_pairs(std::slice::from_ref(&v), vec![pooled], first).remove(0);
    }
    // NEON_MC_DEBUG=1: every wrong answer to a real change, with its pairs.
    let wrong = effect > 0.0 && !matches!(v.verdict, Verdict::Regressed | Verdict::Inconclusive);
    if wrong && std::env::var_os("NEON_MC_DEBUG").is_some() {
        eprintln!("{:?} {:?} {:?} {:?}", v.verdict, v.change, v.ci, v.note);
        eprintln!("{:?}", v.pairs);
    }
    (v.verdict, runs.head_first.len())
}

#[derive(Default, Debug)]
struct Tally {
    regressed: usize,
    inconclusive: usize,
    other: usize,
    pairs: usize,
}

fn tally(machine: Machine, effect: f64, tolerance: f64, trials: usize, seed: u64) -> Tally {
    let mut sim = Sim {
        rng: Rng::new(seed),
        slow: false,
        machine,
    };
    let mut t = Tally::default();
    for _ in 0..trials {
        let (v, pairs) = scenario(&mut sim, effect, tolerance);
        match v {
            Verdict::Regressed => t.regressed += 1,
            Verdict::Inconclusive => t.inconclusive += 1,
            _ => t.other += 1,
        }
        t.pairs += pairs;
    }
    eprintln!(
        "{:9} effect {:+.0}% tol {:.0}%: {t:?}, mean pairs {:.1}",
        machine.name,
        100.0 * effect,
        100.0 * tolerance,
        t.pairs as f64 / trials as f64
    );
    t
}

const TRIALS: usize = 200;

#[test]
fn unchanged_code_rarely_regresses_even_in_spells() {
    for (i, m) in [QUIET, LOADED, SPELLS, DEEP].into_iter().enumerate() {
        let t = tally(m, 0.0, 0.05, TRIALS, 11 + i as u64);
        // At most 1 in 20 allowed by the target; 1% here, with margin.
        assert!(t.regressed * 100 <= TRIALS, "{}: {t:?}", m.name);
    }
}

#[test]
fn a_five_percent_slowdown_is_caught_at_three_percent_tolerance() {
    for (i, m) in [QUIET, LOADED].into_iter().enumerate() {
        let t = tally(m, 0.05, 0.03, TRIALS, 21 + i as u64);
        assert!(t.regressed * 20 >= TRIALS * 19, "{}: {t:?}", m.name);
        let t = tally(m, 0.10, 0.05, TRIALS, 31 + i as u64);
        assert!(t.regressed * 20 >= TRIALS * 19, "{}: {t:?}", m.name);
    }
    // Deep in spells: what is not caught is `inconclusive`, never `pass`.
    let t = tally(SPELLS, 0.05, 0.03, TRIALS, 41);
    assert_eq!(t.other, 0, "{t:?}");
    // The deepest state: whole pairings can sit in one slow spell, where
    // this model hides 80% of the effect, so a few come out `pass` (1.5% of
    // 2000 at +5%, 4.5% at +10%; unchanged by the spell extension). Going
    // past 16 pairs when spells took most of them
    // (`paired::MAX_SPELL_EXTENSION`) raised the +5% catch from 85% to 91%
    // of 2000 here, and cut A/A `inconclusive` from 4.7% to 0.3%.
    let t = tally(DEEP, 0.05, 0.03, TRIALS, 42);
    assert!(t.regressed * 10 >= TRIALS * 9, "{t:?}");
    assert!(t.other * 50 <= TRIALS, "{t:?}");
}
