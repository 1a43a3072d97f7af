//! Pairs caught in a slow spell of the machine: which to set aside before
//! the paired interval (`stats::spells` has the statistics; this is the
//! policy: threshold, minimum left, the asymmetry guard).

use crate::metric::Direction;
use crate::stats;

/// Smallest threshold for a slow run: a run worse than the best run nearby
/// by more than `max(2 × tolerance, 5%)` was slowed by the machine (see
/// `stats::spells`); within that, runs count as the same state.
pub const SPELL_MIN_THRESHOLD: f64 = 0.05;
/// One-sided significance at which the head being slow more often than
/// the base blocks a `pass`.
pub const SPELL_ASYMMETRY_P: f64 = 0.05;
/// Fewest pairs left after setting some aside that can decide a verdict;
/// with fewer, it is `inconclusive` (and an inconclusive pairing runs more
/// pairs). Two pairs that agree would give a tight interval on one degree
/// of freedom, and both can sit in one long spell of one side.
pub const SPELL_MIN_KEPT: usize = 3;

/// Which pairs to keep after setting aside those with a slow run.
#[derive(Clone, Debug, PartialEq)]
pub struct Spells {
    /// Per pair: both runs in the same state of the machine.
    pub keep: Vec<bool>,
    /// Pairs were set aside and fewer than [`SPELL_MIN_KEPT`] are left.
    pub too_few: bool,
    pub note: Option<String>,
    pub head_more_often_slow: bool,
}

/// Finds pairs with a run slowed by a spell of the machine, for a metric
/// with this direction and tolerance; metrics with no better direction
/// keep every pair.
pub fn spells(pairs: &[(f64, f64)], direction: Direction, tolerance: f64) -> Spells {
    let all = Spells {
        keep: vec![true; pairs.len()],
        too_few: false,
        note: None,
        head_more_often_slow: false,
    };
    let lower = match direction {
        Direction::LowerIsBetter => true,
        Direction::HigherIsBetter => false,
        Direction::Neither => return all,
    };
    let threshold = (2.0 * tolerance).max(SPELL_MIN_THRESHOLD);
    let slow = stats::slow_runs(pairs, lower, threshold);
    let (b, h) = slow.iter().fold((0, 0), |(b, h), s| {
        (b + usize::from(s.0), h + usize::from(s.1))
    });
    let keep: Vec<bool> = slow.iter().map(|&(b, h)| !b && !h).collect();
    let kept = keep.iter().filter(|k| **k).count();
    if kept == pairs.len() {
        return all;
    }
    let too_few = kept < SPELL_MIN_KEPT;
    Spells {
        keep,
        too_few,
        note: Some(format!(
            "{} of {} pairs set aside for a slow spell of the machine (runs worse by over {:.0}% \
             than the best run nearby: base {b}, head {h}){}",
            pairs.len() - kept,
            pairs.len(),
            100.0 * threshold,
            if too_few {
                format!("; {kept} left, fewer than {SPELL_MIN_KEPT}: cannot decide")
            } else {
                String::new()
            }
        )),
        head_more_often_slow: stats::more_often_slow_p(h, b, pairs.len()) < SPELL_ASYMMETRY_P,
    }
}
