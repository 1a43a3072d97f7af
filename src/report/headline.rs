//! What a run amounts to, in one phrase and an optional note, said the same
//! way by the terminal, Markdown and HTML reports. A run that compared
//! nothing never reads as a pass: it says so and names the next step.

use crate::outcome::{EXIT_NOT_MEASURED, EXIT_NOT_RECORDED, RunReport, Status};
use crate::result::Outcome;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A SIGINT or SIGTERM stopped the run before it finished.
    Cancelled,
    /// A regression or a failed scenario.
    Failed,
    /// A gate whose scenario stayed invalid after its retries.
    NotMeasured,
    /// Only inconclusive or invalid verdicts, with the policy failing them.
    Inconclusive,
    /// A bless that recorded nothing for a scenario that ran.
    NotRecorded,
    /// A bless that recorded what ran.
    Blessed,
    /// Every scenario was ignored on this machine.
    NothingRan,
    /// Scenarios ran, but none had a baseline to compare with (or smoke mode).
    NothingCompared,
    /// Scenarios were compared and none regressed.
    Pass,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Headline {
    pub kind: Kind,
    /// A few words: "no regressions", "nothing compared", …
    pub title: &'static str,
    /// What to know or do next, when there is something.
    pub note: Option<String>,
}

fn plural(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

pub fn headline(r: &RunReport) -> Headline {
    let (kind, title, note) = stopped(r).unwrap_or_else(|| finished(r));
    Headline { kind, title, note }
}

/// A headline's kind, title and note.
type Parts = (Kind, &'static str, Option<String>);

fn count(r: &RunReport, f: &dyn Fn(Status) -> bool) -> usize {
    r.scenarios.iter().filter(|s| f(s.status)).count()
}

/// A run that did not end in a verdict the gate accepts: cancelled,
/// nothing recorded, not measured, failed or inconclusive.
fn stopped(r: &RunReport) -> Option<Parts> {
    Some(if let Some(why) = &r.cancelled {
        (
            Kind::Cancelled,
            "cancelled",
            Some(format!(
                "{why}; the results are incomplete and gate nothing"
            )),
        )
    } else if r.exit_code == EXIT_NOT_RECORDED {
        (
            Kind::NotRecorded,
            "nothing recorded",
            Some(format!(
                "{} ran but recorded no baseline: {}",
                plural(r.not_recorded.len(), "scenario"),
                r.not_recorded.join("; ")
            )),
        )
    } else if r.exit_code == EXIT_NOT_MEASURED {
        not_measured(r)
    } else if r.exit_code != 0 {
        if count(r, &Status::is_failure) > 0 || r.exit_code != 3 {
            (Kind::Failed, "regressions or failures", None)
        } else {
            (Kind::Inconclusive, "inconclusive", None)
        }
    } else {
        return None;
    })
}

/// A gate whose scenarios stayed invalid: which, and why.
fn not_measured(r: &RunReport) -> Parts {
    let invalid: Vec<String> = r
        .scenarios
        .iter()
        .filter(|s| s.status == Status::Invalid && !s.smoke)
        .map(|s| {
            format!(
                "{} ({})",
                s.result.full_name(),
                s.result.invalid_reasons.join("; ")
            )
        })
        .collect();
    (
        Kind::NotMeasured,
        "not measured",
        Some(format!(
            "{} stayed invalid after retries while the machine was busy, so the gate cannot say whether it regressed: {}",
            plural(invalid.len(), "scenario"),
            invalid.join("; ")
        )),
    )
}

/// A run that exited 0: nothing ran, baselines recorded, smoke, nothing
/// compared (and why), or no regressions.
fn finished(r: &RunReport) -> Parts {
    let ran = r
        .scenarios
        .iter()
        .filter(|s| !matches!(s.result.outcome, Outcome::Ignored { .. }))
        .count();
    let no_baseline = count(r, &|s| s == Status::NoBaseline);
    let compared = count(r, &Status::compared);
    if ran == 0 {
        (
            Kind::NothingRan,
            "nothing ran",
            Some(format!(
                "all {} were ignored on this machine (the reason is beside each)",
                plural(r.scenarios.len(), "scenario")
            )),
        )
    } else if r.mode == "bless" {
        (Kind::Blessed, "baselines recorded", None)
    } else if r.mode == "smoke" {
        (
            Kind::NothingCompared,
            "nothing compared",
            Some(format!(
                "smoke mode: {} ran, speed not gated",
                plural(ran, "scenario")
            )),
        )
    } else if compared == 0 && no_baseline == 0 {
        (
            Kind::NothingCompared,
            "nothing compared",
            Some(format!(
                "no scenario's run could be trusted ({} invalid, the reason under each): \
                 run again on a quiet machine",
                plural(ran, "scenario")
            )),
        )
    } else if compared == 0 {
        (
            Kind::NothingCompared,
            "nothing compared",
            Some(format!(
                "no baseline for {}: {} measured, none compared — record one with `neon-perf bless`",
                r.hardware_dir,
                plural(ran, "scenario")
            )),
        )
    } else {
        let note = (no_baseline > 0).then(|| {
            format!(
                "{} had no baseline for {} and {} not compared — record {} with `neon-perf bless`",
                plural(no_baseline, "scenario"),
                r.hardware_dir,
                if no_baseline == 1 { "was" } else { "were" },
                if no_baseline == 1 { "it" } else { "them" },
            )
        });
        (Kind::Pass, "no regressions", note)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::html::fixture;

    fn with_statuses(statuses: &[Status]) -> RunReport {
        let mut r = fixture::synthetic(20);
        r.mode = "gate".into();
        r.exit_code = 0;
        r.scenarios.truncate(1);
        let one = r.scenarios.remove(0);
        for &st in statuses {
            let mut s = one.clone();
            s.status = st;
            s.result.outcome = match st {
                Status::Ignored => Outcome::Ignored {
                    reason: "no GPU".into(),
                },
                _ => Outcome::Ran,
            };
            r.scenarios.push(s);
        }
        r
    }

    #[test]
    fn a_run_with_no_baseline_says_nothing_was_compared_and_names_bless() {
        let r = with_statuses(&[Status::NoBaseline, Status::NoBaseline, Status::Ignored]);
        let h = headline(&r);
        assert_eq!(h.kind, Kind::NothingCompared);
        assert_eq!(h.title, "nothing compared");
        let note = h.note.unwrap();
        assert!(
            note.contains(&format!("no baseline for {}", r.hardware_dir)),
            "{note}"
        );
        assert!(
            note.contains("2 scenarios measured, none compared"),
            "{note}"
        );
        assert!(note.contains("`neon-perf bless`"), "{note}");
    }

    #[test]
    fn a_run_whose_every_scenario_was_invalid_does_not_point_at_bless() {
        let h = headline(&with_statuses(&[Status::Invalid, Status::Invalid]));
        assert_eq!(
            (h.kind, h.title),
            (Kind::NothingCompared, "nothing compared")
        );
        let note = h.note.unwrap();
        assert!(
            note.contains("2 scenarios invalid, the reason under each"),
            "{note}"
        );
        assert!(note.contains("run again on a quiet machine"), "{note}");
        assert!(!note.contains("bless"), "{note}");
    }

    #[test]
    fn a_pass_with_some_unbaselined_scenarios_says_how_many() {
        let h = headline(&with_statuses(&[Status::Pass, Status::NoBaseline]));
        assert_eq!((h.kind, h.title), (Kind::Pass, "no regressions"));
        assert!(h.note.unwrap().starts_with("1 scenario had no baseline"));
        let h = headline(&with_statuses(&[Status::Pass, Status::Improved]));
        assert_eq!((h.kind, h.note), (Kind::Pass, None));
    }

    #[test]
    fn all_ignored_is_nothing_ran_and_failures_win() {
        assert_eq!(
            headline(&with_statuses(&[Status::Ignored])).kind,
            Kind::NothingRan
        );
        let mut r = with_statuses(&[Status::Regressed, Status::NoBaseline]);
        r.exit_code = 1;
        assert_eq!(headline(&r).kind, Kind::Failed);
        let mut r = with_statuses(&[Status::Inconclusive]);
        r.exit_code = 3;
        assert_eq!(headline(&r).kind, Kind::Inconclusive);
    }

    #[test]
    fn a_bless_that_recorded_nothing_says_which_and_why() {
        let mut r = with_statuses(&[Status::Invalid]);
        r.mode = "bless".into();
        r.exit_code = EXIT_NOT_RECORDED;
        r.not_recorded = vec!["s::a — the run was invalid (busy)".into()];
        let h = headline(&r);
        assert_eq!((h.kind, h.title), (Kind::NotRecorded, "nothing recorded"));
        assert!(h.note.unwrap().contains("s::a — the run was invalid"));
    }
}
