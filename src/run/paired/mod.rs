//! Paired A/B on one runner: `neon-perf run --against DIR`.
//!
//! DIR is a checkout of the base revision. For each scenario, the base
//! tree's variant (its suite file, kernel sources, scripts, model files: all
//! resolved in its own tree) and the head's run alternately, B H H B B H …,
//! each on a slice of the scenario's budget, and the verdict comes from the
//! paired differences (`compare::compare_paired`). Drift between the day a
//! baseline was recorded and today, and load that is steady over a pair,
//! cancel; stored baselines stay the record on main and the fallback.

mod base;
mod confirm;
mod pairs;
mod undecided;

use std::time::Duration;

use crate::compare::{MetricVerdict, Verdict, spells};
use crate::plan::Settings;
use crate::units::HumanDuration;

pub use base::{Against, BaseTree, BaseTreeError};
pub use confirm::{confirm_with_more_pairs, needs_confirmation};
pub use pairs::{ExecuteFn, Paired, run_pairs};
pub use undecided::decided_by_baseline;

/// Pairs per scenario unless told otherwise: 4 pairs (B H H B B H H B)
/// cancel linear drift twice over and give a t interval with 3 degrees of
/// freedom; measured here, their interval was ±0.2–0.4% on a 2-core VM under
/// load, far inside any useful tolerance.
pub const DEFAULT_PAIRS: usize = 4;

/// An inconclusive pairing is extended, [`EXTENSION_STEP`] pairs at a time,
/// up to this many times the pairs asked for. Measured on the 2-vCPU VM in
/// its slow-spell state (docs/paired.md): 2× left 3 of 40 real regressions
/// inconclusive, most pairs there having a run in a slow spell.
pub const MAX_EXTENSION: usize = 4;

/// Pairs added per extension: one B H and one H B, so the order stays
/// balanced. Most extensions are for a pair or two set aside for a slow
/// spell, which two more pairs make up; `pairs` at a time (4) cost a
/// regression under a CI build 12 pairs where 10 were enough.
pub const EXTENSION_STEP: usize = 2;

/// When a slow state of the machine took most pairs (more than half set
/// aside for slow spells), an inconclusive pairing goes on past
/// [`MAX_EXTENSION`], up to this many times the pairs asked for: the
/// answer is then waiting for the state to pass, not for more noise to
/// average. Seen 2026-11-28 04:35: three +5% pairings ended `inconclusive`
/// at 16 pairs with 13–14 of them set aside; the fast pairs that were left
/// showed +4.6% ± 0.3%, so a few more of them decide.
pub const MAX_SPELL_EXTENSION: usize = 8;

/// The pairs to run next, or `None` when the pairing is decided: while a
/// gated metric is `inconclusive`, [`EXTENSION_STEP`] more, up to
/// [`MAX_EXTENSION`] × `pairs`, or [`MAX_SPELL_EXTENSION`] × `pairs` when
/// slow spells took more than half of an inconclusive metric's pairs.
pub fn next_target(target: usize, pairs: usize, verdicts: &[MetricVerdict]) -> Option<usize> {
    let unclear: Vec<&MetricVerdict> = verdicts
        .iter()
        .filter(|v| v.gated && v.verdict == Verdict::Inconclusive)
        .collect();
    if unclear.is_empty() {
        return None;
    }
    let starved = unclear.iter().any(|v| {
        let kept = spells(&v.pairs, v.direction, v.tolerance)
            .keep
            .iter()
            .filter(|k| **k)
            .count();
        2 * kept < v.pairs.len()
    });
    let cap = pairs
        * if starved {
            MAX_SPELL_EXTENSION
        } else {
            MAX_EXTENSION
        };
    (target < cap).then(|| (target + EXTENSION_STEP).min(cap))
}

/// How much further than `√(2 × pairs)` a paired run's precision target
/// is relaxed. With `√(2 × pairs)` alone the `2 × pairs` runs together
/// took 1.1–2× the samples of a stored run that stops at its sample floor
/// (the gate-quality scenario: 1,100–2,000 against 1,000), and in slow
/// spells, where pairs set aside cost more pairs, a paired A/A pairing
/// took more wall time than the stored run (2026-11-28 07:45–08:30: 0.93–1.06
/// against 0.77–0.85 s at the median). With 2× more, measured 08:39 and
/// 08:45 (37% and 41% of runs slow): 0.76 and 0.67 s against 0.76 and
/// 0.77 s, the median pair noise ±0.50–0.70% instead of ±0.4–0.5%, and
/// no detection lost (+5% at 3%: 20 and 20 of 20).
pub const PAIRED_CI_RELAXATION: f64 = 2.0;

/// One execution's share of the scenario's budget, so that paired mode
/// takes about the wall time of one stored-baseline run: the time limits and
/// the sample floor are split over the `2 × pairs` executions (rounded down,
/// so that all of them together take no more than one stored run's floor,
/// but at least 2 samples each), and the precision target is relaxed by
/// `2 · √(2 × pairs)` ([`PAIRED_CI_RELAXATION`]): samples needed go as
/// 1/target², so the `2 × pairs` runs together take about a quarter of the
/// samples a stored run needs for its target (with `√pairs`, twice as
/// many as one stored run: measured under a CI build, paired mode then
/// took twice stored mode's wall time). The verdict's interval comes from
/// the spread between pairs, not from these within-run targets. Host contention is not a reason to
/// discard a run here: load that is steady over a pair cancels in its
/// ratio, and a burst widens the interval (towards `inconclusive`, never a
/// false `regressed`); it is still reported as a warning.
pub fn execution_settings(settings: &Settings, pairs: usize) -> Settings {
    let r = settings.resolve();
    let pairs = pairs.max(1);
    let k = (2 * pairs) as u32;
    let min_samples = (r.min_samples / k).max(2);
    Settings {
        warmup: Some(HumanDuration(r.warmup / k)),
        max_time: Some(HumanDuration(
            (r.max_time / k).max(Duration::from_millis(50)),
        )),
        min_samples: Some(min_samples),
        max_samples: Some(r.max_samples.max(min_samples)),
        target_rel_ci: Some(r.target_rel_ci * ((2 * pairs) as f64).sqrt() * PAIRED_CI_RELAXATION),
        max_contention: Some(1.0),
        ..settings.clone()
    }
}

/// The settings of a `command` variant's runs after its first: no warm-up
/// at all, neither timed nor counted (the executor's probe run is then the
/// first sample). Every sample of a `command` scenario is a fresh process,
/// so warm-up only warms what outlives a process: the page cache, the
/// clocks, a freshly built binary's first start. The variant's first run
/// did that, and the pairs run back to back. Measured on this VM
/// (docs/paired.md): without the timed warm-up a paired run of the
/// gate-quality scenario took 0.31 s instead of 0.67 s, with the same
/// verdicts. Kinds that set up state per run (a server, a model, a CUDA
/// module) keep their warm-up on every run.
pub fn later_runs(each: &Settings) -> Settings {
    Settings {
        warmup: Some(HumanDuration(Duration::ZERO)),
        warmup_runs: Some(0),
        ..each.clone()
    }
}
